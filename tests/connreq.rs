//! End-to-end tests of the Connection Request listener (TR-069 Amendment 6 §3.2.2): the
//! real `cwmpd run` daemon (`tests/support/cpe.rs`) with the test ACS (`tests/support/acs.rs`),
//! called by real HTTP clients: `curl` (its Digest does the same-connection retry GenieACS
//! does) and raw `TcpStream` requests whose Digest responses (RFC 7616) are computed here with
//! `md-5` and `ring`, never with `cwmpd::http::auth` (that is what is under test).
//!
//! What is covered (the listener's contract):
//! - an unauthenticated GET gets 401 with a Digest challenge (realm, `qop="auth"`, algorithm,
//!   a fresh nonce per challenge), keeps the connection open, and starts no session (§3.2.2);
//! - a correct Digest with MD5, SHA-256 and MD5-sess (curl and raw) and SHA-256-sess (raw)
//!   gets 200 with an empty body, closes the connection, and a session with
//!   `6 CONNECTION REQUEST` (§3.7.1.5 Table 7) reaches the ACS within 5 s; the 200 is answered
//!   before the session goes on (the ACS holds the session until the test has the 200);
//! - failures get 401 and start nothing: wrong password, user, realm or uri, a query the `uri`
//!   leaves out, no qop (RFC 2069), qop without nc/cnonce, another algorithm, a nonce never
//!   issued, a bad response, Basic when not allowed; a replayed nonce+nc and an expired nonce
//!   get `stale=true`; the next nc of the same nonce is accepted; rejections are not logged
//!   one by one;
//! - the ways real ACSes call: a plain GET then the Digest retry on the same keep-alive
//!   connection (GenieACS), a new connection per attempt, `Connection: close`, HTTP/1.0;
//! - coalescing: 10 authenticated requests sent at the same moment all get 200 and make one
//!   session; the rate limit answers 503 without Retry-After and starts nothing;
//! - hardening: 404 with no detail for another path, method or Host (before any
//!   authentication), 413 for a body, 431 for a head over `max_header_bytes`, 400 for garbage
//!   and malformed heads; half-sent heads beyond `max_connections` evicted and cut after
//!   `request_timeout` without an answer while a valid request gets through at once; Basic
//!   refused by default and accepted with `allow_basic`;
//! - the URL: a random path of 32 hex digits kept across a restart, a configured path, the
//!   credentials set by the ACS with SetParameterValues (old ones refused), `host = "acs"`
//!   following the ACS from 127.0.0.1 to [::1] with `bind_url_address` (listener rebound, old
//!   address closed), `host = "interface:lo"` and a fixed host name with its Host check;
//! - the daemon survives every test (it is checked alive at the end of each).
//!
//! Every test has its own CPE (temporary directory, config, daemon) and ACS; every wait has a
//! deadline; the daemon is killed on drop. curl parts are skipped (with a message) when `curl`
//! is not installed.

use support::{acs, cpe, tempdir};

use cpe::*;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acs::{Acs, AcsOptions, SessionRecord};
use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::CpeResponse;
use md5::{Digest as _, Md5};

const CR_USER: &str = "cr-admin";
const CR_PASS: &str = "cr-s3cret";
const CRURL: &str = "Device.ManagementServer.ConnectionRequestURL";
const CR_EVENT: &str = "6 CONNECTION REQUEST";
/// The session after an accepted request, when the agent is idle.
const SESSION_WAIT: Duration = Duration::from_secs(5);
/// How long we watch for a session that must not come.
const QUIET: Duration = Duration::from_millis(1500);
/// Bound on every socket read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ----------------------------------------------------------------------------------------------
// 1. The challenge.

#[test]
fn unauthenticated_get_is_challenged_and_starts_nothing() {
    let env = Env::start("cr-challenge", "");
    let mut conn = env.url.connect();
    let r = send(&mut conn, &env.url.get(&[]));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.version, "HTTP/1.1", "{r:?}");
    r.assert_empty();
    let c = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.param("realm"), Some("cwmpd"), "{c:?}");
    assert!(
        c.param("qop")
            .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")),
        "qop=\"auth\" missing: {c:?}"
    );
    assert_eq!(c.param("algorithm"), Some("MD5"), "{c:?}");
    assert!(c.nonce().len() >= 16, "a short nonce: {c:?}");
    assert!(!c.stale(), "stale on a first challenge: {c:?}");
    assert!(
        !r.headers_named("www-authenticate")
            .iter()
            .any(|v| v.to_ascii_lowercase().starts_with("basic")),
        "Basic offered without allow_basic: {r:?}"
    );
    // Keep-alive is kept after a 401 (HTTP/1.1): the same connection takes another request,
    // and every challenge carries a new nonce (RFC 7616 §3.3, CSPRNG nonces).
    let r2 = send(&mut conn, &env.url.get(&[]));
    assert_eq!(r2.status, 401, "{r2:?}");
    let c2 = r2.challenge().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(c.nonce(), c2.nonce(), "the same nonce twice");
    env.assert_no_cr(0, "unauthenticated GETs");
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 2. Correct Digests: 200 at once, then the session.

#[test]
fn digest_md5_gets_200_before_the_session_and_the_session_at_once() {
    let env = Env::start("cr-md5-raw", "");
    // The ACS holds the session at its first turn until the test has the 200: a listener that
    // answered only after the session would leave the ACS waiting (3 s) and this test failing.
    let (tx, rx) = mpsc::channel::<()>();
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let mut rx = Some(rx);
    env.acs.push_script_fn(move |_| {
        if let Some(rx) = rx.take() {
            flag.store(
                rx.recv_timeout(Duration::from_secs(3)).is_ok(),
                Ordering::SeqCst,
            );
        }
        None
    });

    let c = env.url.challenge();
    let authz = env.url.authz(&c).header();
    let mut conn = env.url.connect();
    let sent = Instant::now();
    let r = send(&mut conn, &env.url.get(&[("Authorization", &authz)]));
    let answered = sent.elapsed();
    let _ = tx.send(());
    assert_eq!(r.status, 200, "{r:?}\ndaemon: {}", env.daemon.log());
    r.assert_empty();
    assert!(
        answered < Duration::from_secs(2),
        "answered after {answered:?}"
    );
    assert!(closed(&mut conn), "the connection stays open after 200");

    let all = env.wait_cr(1);
    let s = cr_sessions(&all)[0];
    assert!(
        released.load(Ordering::SeqCst),
        "the session reached the ACS but the 200 came only after it: {:?}",
        s.event_codes()
    );
    assert!(
        !s.has_event("0 BOOTSTRAP") && !s.has_event("1 BOOT"),
        "{:?}",
        s.event_codes()
    );
    let log = env.daemon.log();
    assert_eq!(
        count_lines(&log, &["connection request from 127.0.0.1:", ": accepted"]),
        1,
        "want one `accepted` line:\n{log}"
    );
    env.finish();
}

#[test]
fn digest_md5_with_curl() {
    algorithm_test("cr-curl-md5", "MD5", true);
}

#[test]
fn digest_sha256_with_curl() {
    algorithm_test("cr-curl-sha256", "SHA-256", true);
}

#[test]
fn digest_md5_sess_with_curl() {
    algorithm_test("cr-curl-md5sess", "MD5-sess", true);
}

#[test]
fn digest_sha256_sess_raw() {
    algorithm_test("cr-sha256sess", "SHA-256-sess", false);
}

/// `digest_algorithm = alg`: the challenge names it; curl (when `with_curl`) and the raw client
/// each get 200 with an empty body and a session.
fn algorithm_test(tag: &str, alg: &str, with_curl: bool) {
    let env = Env::start(tag, &format!("digest_algorithm = {alg:?}\n"));
    let c = env.url.challenge();
    assert_eq!(c.param("algorithm"), Some(alg), "{c:?}");
    let mut n = 0;
    if with_curl {
        let userpass = format!("{CR_USER}:{CR_PASS}");
        if let Some(out) = curl(&["--digest", "-u", &userpass, &env.url.text]) {
            assert_eq!(
                (out.status, out.size),
                (200, 0),
                "{out:?}\ndaemon: {}",
                env.daemon.log()
            );
            assert_eq!(
                out.connects, 1,
                "curl's retry used a new connection: {out:?}"
            );
            n += 1;
            let all = env.wait_cr(n);
            assert!(cr_sessions(&all)[0].has_event(CR_EVENT));
            env.wait_idle();
        }
    }
    let c = env.url.challenge();
    let authz = env.url.authz(&c);
    assert_eq!(authz.alg.token(), alg);
    let (r, mut conn) = env
        .url
        .send_new(&env.url.get(&[("Authorization", &authz.header())]));
    assert_eq!(r.status, 200, "{r:?}\ndaemon: {}", env.daemon.log());
    r.assert_empty();
    assert!(closed(&mut conn), "the connection stays open after 200");
    n += 1;
    env.wait_cr(n);
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 3. Failed authentication: 401, nothing started.

#[test]
fn failed_digests_get_401_and_start_nothing() {
    let env = Env::start("cr-failures", "");
    let url = &env.url;
    let with_query = format!("{}?x=1", url.path);
    type Tweak = Box<dyn Fn(&mut Authz)>;
    let cases: Vec<(&str, Tweak)> = vec![
        ("wrong password", Box::new(|a| a.pass = "wrong".into())),
        ("wrong user", Box::new(|a| a.user = "intruder".into())),
        ("wrong realm", Box::new(|a| a.realm = "other".into())),
        ("wrong uri", Box::new(|a| a.uri = "/somewhere-else".into())),
        (
            "no qop (RFC 2069)",
            Box::new(|a| {
                a.qop = None;
                a.nc = None;
                a.cnonce = None;
            }),
        ),
        (
            "qop without nc and cnonce",
            Box::new(|a| {
                a.nc = None;
                a.cnonce = None;
            }),
        ),
        (
            "another algorithm",
            Box::new(|a| {
                a.alg = Alg::Sha256;
                a.algorithm = Some("SHA-256".into());
            }),
        ),
        (
            "a nonce never issued",
            Box::new(|a| a.nonce = "0123456789abcdef0123456789abcdef".into()),
        ),
        (
            "a wrong response",
            Box::new(|a| a.response = Some("0".repeat(32))),
        ),
    ];
    for (what, tweak) in &cases {
        let c = url.challenge();
        let mut a = url.authz(&c);
        tweak(&mut a);
        let (r, _) = url.send_new(&url.get(&[("Authorization", &a.header())]));
        assert_eq!(r.status, 401, "{what}: {r:?}");
        r.assert_empty();
        let c = r
            .challenge()
            .unwrap_or_else(|e| panic!("{what}: no fresh challenge: {e}"));
        assert!(
            !c.stale(),
            "{what}: stale=true for wrong credentials: {c:?}"
        );
    }
    // The digest `uri` must be the request-target exactly, query included.
    let c = url.challenge();
    let a = url.authz(&c);
    let req = request(
        "GET",
        &with_query,
        "HTTP/1.1",
        Some(&url.authority()),
        &[("Authorization", &a.header())],
    );
    let (r, _) = url.send_new(&req);
    assert_eq!(r.status, 401, "uri without the query: {r:?}");
    // Basic with the right credentials, not allowed by default.
    let basic = format!(
        "Basic {}",
        base64(format!("{CR_USER}:{CR_PASS}").as_bytes())
    );
    let (r, _) = url.send_new(&url.get(&[("Authorization", &basic)]));
    assert_eq!(r.status, 401, "Basic accepted without allow_basic: {r:?}");
    r.assert_empty();

    env.assert_no_cr(0, "failed authentications");
    let log = env.daemon.log();
    assert_eq!(
        count_lines(&log, &["connection request from"]),
        0,
        "rejected requests logged one by one:\n{log}"
    );
    assert!(
        count_lines(&log, &["connection requests in the last"]) <= 1,
        "more than one summary line within a minute:\n{log}"
    );
    assert!(
        !log.contains("intruder"),
        "an attacker's input reached the log:\n{log}"
    );
    // The same client with the right credentials gets in: the 401s above were the tweaks.
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn replayed_nonce_count_is_stale_and_starts_nothing() {
    let env = Env::start("cr-replay", "");
    let c = env.url.challenge();
    let mut a = env.url.authz(&c);
    let first = a.header();
    let (r, _) = env.url.send_new(&env.url.get(&[("Authorization", &first)]));
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.wait_idle();

    // The same Authorization again (a captured request replayed): stale, no session.
    let (r, _) = env.url.send_new(&env.url.get(&[("Authorization", &first)]));
    assert_eq!(r.status, 401, "replay accepted: {r:?}");
    r.assert_empty();
    let c2 = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    assert!(c2.stale(), "a replayed nc without stale=true: {c2:?}");
    // The same nc with another cnonce is a replay too (nc not greater than the highest).
    a.cnonce = Some(cnonce());
    let (r, _) = env
        .url
        .send_new(&env.url.get(&[("Authorization", &a.header())]));
    assert_eq!(r.status, 401, "nc=1 with a new cnonce accepted: {r:?}");
    env.assert_no_cr(1, "replayed nonce counts");

    // The next nc of the same nonce is a new request (RFC 7616 §3.4).
    a.nc = Some(2);
    let (r, _) = env
        .url
        .send_new(&env.url.get(&[("Authorization", &a.header())]));
    assert_eq!(r.status, 200, "nc=2 refused: {r:?}");
    env.wait_cr(2);
    env.finish();
}

#[test]
fn expired_nonce_is_stale_and_its_fresh_challenge_works() {
    // 3 s, so the fresh nonce of the stale answer outlives the wait for no session.
    let env = Env::start("cr-expired", "nonce_lifetime = 3\n");
    let c = env.url.challenge();
    thread::sleep(Duration::from_millis(4100));
    let (r, _) = env.url.send_new(
        &env.url
            .get(&[("Authorization", &env.url.authz(&c).header())]),
    );
    assert_eq!(r.status, 401, "an expired nonce accepted: {r:?}");
    r.assert_empty();
    let fresh = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    assert!(fresh.stale(), "expired nonce without stale=true: {fresh:?}");
    assert_ne!(fresh.nonce(), c.nonce());
    env.assert_no_cr(0, "an expired nonce");
    // The stale challenge's nonce works at once (what a client does on stale=true).
    let (r, _) = env.url.send_new(
        &env.url
            .get(&[("Authorization", &env.url.authz(&fresh).header())]),
    );
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 4. How real ACSes call.

#[test]
fn genieacs_style_retry_on_the_same_connection() {
    let env = Env::start("cr-genieacs", "");
    let mut conn = env.url.connect();
    let r = send(&mut conn, &env.url.get(&[]));
    assert_eq!(r.status, 401, "{r:?}");
    let c = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    let r = send(
        &mut conn,
        &env.url
            .get(&[("Authorization", &env.url.authz(&c).header())]),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_empty();
    assert!(closed(&mut conn), "the connection stays open after 200");
    env.wait_cr(1);
    env.wait_idle();

    // curl's Digest does the same: two requests, one connection.
    let userpass = format!("{CR_USER}:{CR_PASS}");
    if let Some(out) = curl(&["--digest", "-u", &userpass, &env.url.text]) {
        assert_eq!((out.status, out.size, out.connects), (200, 0, 1), "{out:?}");
        env.wait_cr(2);
    }
    env.finish();
}

#[test]
fn new_connection_per_attempt_connection_close_and_http_1_0() {
    let env = Env::start("cr-conn-styles", "rate_burst = 10\n");
    let mut n = 0;

    // A new connection per attempt: the challenge on one, the answer on another.
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    n += 1;
    env.wait_cr(n);
    env.wait_idle();

    // `Connection: close` on both: each answer closes the connection.
    let close = ("Connection", "close");
    let (r, mut conn) = env.url.send_new(&env.url.get(&[close]));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(closed(&mut conn), "Connection: close not honoured on 401");
    let c = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    let authz = env.url.authz(&c).header();
    let (r, mut conn) = env
        .url
        .send_new(&env.url.get(&[close, ("Authorization", &authz)]));
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_empty();
    assert!(closed(&mut conn));
    n += 1;
    env.wait_cr(n);
    env.wait_idle();

    // HTTP/1.0: answered in HTTP/1.0 and closed, also the 401.
    let host = env.url.authority();
    let req = request("GET", &env.url.path, "HTTP/1.0", Some(&host), &[]);
    let (r, mut conn) = env.url.send_new(&req);
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 401), "{r:?}");
    assert!(closed(&mut conn), "HTTP/1.0 connection kept open");
    let c = r.challenge().unwrap_or_else(|e| panic!("{e}"));
    let authz = env.url.authz(&c).header();
    let req = request(
        "GET",
        &env.url.path,
        "HTTP/1.0",
        Some(&host),
        &[("Authorization", &authz)],
    );
    let (r, mut conn) = env.url.send_new(&req);
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200), "{r:?}");
    r.assert_empty();
    assert!(closed(&mut conn));
    n += 1;
    env.wait_cr(n);
    env.wait_idle();

    // curl: HTTP/1.0, then Connection: close (each attempt on its own connection).
    let userpass = format!("{CR_USER}:{CR_PASS}");
    for extra in [["--http1.0"], ["-HConnection: close"]] {
        let mut args = vec!["--digest", "-u", &userpass, &env.url.text];
        args.extend(extra);
        let Some(out) = curl(&args) else { break };
        assert_eq!((out.status, out.size), (200, 0), "{out:?}");
        assert_eq!(out.connects, 2, "two attempts, two connections: {out:?}");
        n += 1;
        env.wait_cr(n);
        env.wait_idle();
    }
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 5. Coalescing and the rate limit.

#[test]
fn ten_simultaneous_requests_coalesce_into_one_session() {
    // Enough connections for all ten, and tokens for ten sessions: only coalescing can keep
    // them to one.
    let env = Env::start(
        "cr-coalesce",
        "max_connections = 16\nrate_burst = 20\nrate_interval = 1\n",
    );
    // The session lasts a second at the ACS, so every request meets it pending or running.
    let mut held = false;
    env.acs.push_script_fn(move |_| {
        if !held {
            held = true;
            thread::sleep(Duration::from_secs(1));
        }
        None
    });
    const N: usize = 10;
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let barrier = barrier.clone();
            let url = env.url.clone();
            thread::spawn(move || {
                // Fetch the challenge first (GenieACS-style, same connection); every thread
                // reaches the barrier, failed or not, so none waits forever.
                let prepared = (|| {
                    let mut conn = url.try_connect()?;
                    let r = try_send(&mut conn, &url.get(&[]))?;
                    let c = r.challenge()?;
                    Ok::<_, String>((conn, url.authz(&c).header()))
                })();
                barrier.wait();
                let (mut conn, authz) = prepared?;
                try_send(&mut conn, &url.get(&[("Authorization", &authz)])).map(|r| r.status)
            })
        })
        .collect();
    let statuses: Vec<Result<u16, String>> = threads
        .into_iter()
        .map(|t| t.join().unwrap_or_else(|_| Err("thread panicked".into())))
        .collect();
    assert!(
        statuses.iter().all(|s| s == &Ok(200)),
        "{statuses:?}\ndaemon: {}",
        env.daemon.log()
    );
    env.wait_cr(1);
    thread::sleep(Duration::from_millis(2500));
    let all = env.acs.sessions();
    assert_eq!(
        cr_sessions(&all).len(),
        1,
        "ten requests, more than one session: {:?}",
        all.iter().map(|s| s.event_codes()).collect::<Vec<_>>()
    );
    assert_eq!(all.len(), 2, "boot and one more: {all:#?}");
    let log = env.daemon.log();
    let accepted = count_lines(&log, &["connection request from", ": accepted"]);
    let coalesced = count_lines(&log, &["connection request from", ": coalesced"]);
    assert_eq!((accepted, coalesced), (1, N - 1), "{log}");
    env.finish();
}

#[test]
fn beyond_the_rate_503_without_retry_after_and_no_session() {
    let env = Env::start("cr-rate", "rate_burst = 1\nrate_interval = 60\n");
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    // The phase is idle again once the daemon logs `session ended` (boot + this one).
    env.wait_idle();
    assert!(env.ended() >= 2, "{}", env.daemon.log());

    let r = env.url.authorized_get();
    assert_eq!(r.status, 503, "{r:?}\ndaemon: {}", env.daemon.log());
    r.assert_empty();
    assert!(r.header("retry-after").is_none(), "Retry-After sent: {r:?}");
    env.assert_no_cr(1, "a rate-limited request");
    let log = env.daemon.log();
    assert_eq!(
        count_lines(&log, &["connection request from", ": refused (rate limit)"]),
        1,
        "{log}"
    );
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 6. Hardening: 404, 413, 431, 400; Basic.

#[test]
fn other_path_method_or_host_get_404_and_bodies_413() {
    let env = Env::start("cr-404", "");
    let url = &env.url;
    let host = url.authority();
    let wrong_host = format!("evil.example:{}", url.port);
    let c = url.challenge();
    let mut post_authz = url.authz(&c);
    post_authz.method = "POST".into();
    let post_authz = post_authz.header();
    let trailing = format!("{}/", url.path);
    let upper = url.path.to_ascii_uppercase();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("root", request("GET", "/", "HTTP/1.1", Some(&host), &[])),
        (
            "another path",
            request("GET", "/cwmp", "HTTP/1.1", Some(&host), &[]),
        ),
        (
            "the path plus a slash",
            request("GET", &trailing, "HTTP/1.1", Some(&host), &[]),
        ),
        (
            "the path in capitals",
            request("GET", &upper, "HTTP/1.1", Some(&host), &[]),
        ),
        (
            "POST",
            request("POST", &url.path, "HTTP/1.1", Some(&host), &[]),
        ),
        (
            "POST with a valid Digest for POST",
            request(
                "POST",
                &url.path,
                "HTTP/1.1",
                Some(&host),
                &[("Authorization", &post_authz)],
            ),
        ),
        (
            "HEAD",
            request("HEAD", &url.path, "HTTP/1.1", Some(&host), &[]),
        ),
        (
            "another Host",
            request("GET", &url.path, "HTTP/1.1", Some(&wrong_host), &[]),
        ),
    ];
    for (what, req) in &cases {
        let (r, mut conn) = url.send_new(req);
        assert_eq!(r.status, 404, "{what}: {r:?}");
        r.assert_empty();
        assert!(
            r.header("www-authenticate").is_none(),
            "{what}: a challenge on 404: {r:?}"
        );
        assert!(closed(&mut conn), "{what}: 404 left the connection open");
    }
    // A query is not part of the path: challenged, not 404.
    let q = format!("{}?x=1", url.path);
    let (r, _) = url.send_new(&request("GET", &q, "HTTP/1.1", Some(&host), &[]));
    assert_eq!(r.status, 401, "a query: {r:?}");

    // Bodies: only the head is sent, so the 413 cannot be lost to a reset.
    for (what, header) in [
        ("Content-Length", ("Content-Length", "10")),
        ("chunked", ("Transfer-Encoding", "chunked")),
    ] {
        let (r, mut conn) = url.send_new(&url.get(&[header]));
        assert_eq!(r.status, 413, "{what}: {r:?}");
        r.assert_empty();
        assert!(closed(&mut conn), "{what}: 413 left the connection open");
    }
    let (r, _) = url.send_new(&url.get(&[("Content-Length", "0")]));
    assert_eq!(r.status, 401, "Content-Length: 0 is no body: {r:?}");

    env.assert_no_cr(0, "404s and 413s");
    env.finish();
}

#[test]
fn oversized_and_malformed_heads_get_431_and_400() {
    let env = Env::start("cr-400", "max_header_bytes = 4096\n");
    let url = &env.url;
    let host = url.authority();
    // Within the cap: a normal challenge.
    let filler = "x".repeat(3000);
    let (r, _) = url.send_new(&url.get(&[("X-Filler", &filler)]));
    assert_eq!(r.status, 401, "a 3 kB head: {r:?}");
    // Over it: 431 and closed.
    let filler = "x".repeat(5000);
    let (r, mut conn) = url.send_new(&url.get(&[("X-Filler", &filler)]));
    assert_eq!(
        r.status, 431,
        "a 5 kB head with max_header_bytes = 4096: {r:?}"
    );
    r.assert_empty();
    assert!(closed(&mut conn), "431 left the connection open");

    let path = &url.path;
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"hello there\r\n\r\n".to_vec()),
        (
            "binary",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
        ),
        ("no version", format!("GET {path}\r\n\r\n").into_bytes()),
        (
            "unknown version",
            format!("GET {path} HTTP/9.9\r\nHost: {host}\r\n\r\n").into_bytes(),
        ),
        (
            "HTTP/1.1 without Host",
            format!("GET {path} HTTP/1.1\r\n\r\n").into_bytes(),
        ),
        (
            "a header without a colon",
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nNoColonHere\r\n\r\n").into_bytes(),
        ),
        (
            "line folding",
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-A: one\r\n two\r\n\r\n").into_bytes(),
        ),
        (
            "two Host headers",
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n").into_bytes(),
        ),
        (
            "two Authorization headers",
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Digest a=b\r\n\
                 Authorization: Digest c=d\r\n\r\n"
            )
            .into_bytes(),
        ),
        ("non-UTF-8", {
            let mut v = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Bad: ").into_bytes();
            v.extend_from_slice(b"\xff\xfe\xc3\x28\r\n\r\n");
            v
        }),
    ];
    for (what, req) in &garbage {
        let (r, mut conn) = url.send_new(req);
        assert_eq!(r.status, 400, "{what}: {r:?}");
        r.assert_empty();
        assert!(closed(&mut conn), "{what}: 400 left the connection open");
    }

    env.assert_no_cr(0, "garbage");
    // Still serving: a valid request works.
    let r = url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn slow_and_idle_connections_are_cut_and_do_not_block_a_valid_request() {
    let env = Env::start("cr-slowloris", "max_connections = 2\nrequest_timeout = 2\n");
    // Twice as many half-sent heads as there are connection slots (slowloris).
    let mut slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = env.url.connect();
            c.write_all(b"GET ").expect("write");
            c
        })
        .collect();
    // A valid request still gets through at once: new connections evict the oldest waiting.
    let sent = Instant::now();
    let r = env.url.authorized_get();
    let took = sent.elapsed();
    assert_eq!(r.status, 200, "{r:?}\ndaemon: {}", env.daemon.log());
    assert!(took < Duration::from_secs(1), "served after {took:?}");
    env.wait_cr(1);
    // Every slow connection is closed without an answer (evicted or timed out).
    for (i, c) in slow.iter_mut().enumerate() {
        assert!(closed(c), "slow connection {i} still open or answered");
    }
    env.finish();
}

#[test]
fn basic_is_accepted_only_with_allow_basic() {
    let env = Env::start("cr-basic", "allow_basic = true\n");
    let r = env.url.send_new(&env.url.get(&[])).0;
    assert_eq!(r.status, 401, "{r:?}");
    let challenges = r.headers_named("www-authenticate");
    assert_eq!(challenges.len(), 2, "Digest then Basic: {r:?}");
    assert!(challenges[0].starts_with("Digest "), "{r:?}");
    let basic = challenges[1]
        .strip_prefix("Basic ")
        .unwrap_or_else(|| panic!("the second challenge is not Basic: {r:?}"));
    assert!(
        auth_params(basic).contains(&("realm".into(), "cwmpd".into())),
        "{r:?}"
    );

    let wrong = format!("Basic {}", base64(format!("{CR_USER}:nope").as_bytes()));
    let (r, _) = env.url.send_new(&env.url.get(&[("Authorization", &wrong)]));
    assert_eq!(r.status, 401, "Basic with a wrong password: {r:?}");
    env.assert_no_cr(0, "a wrong Basic password");

    let right = format!(
        "Basic {}",
        base64(format!("{CR_USER}:{CR_PASS}").as_bytes())
    );
    let (r, mut conn) = env.url.send_new(&env.url.get(&[("Authorization", &right)]));
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_empty();
    assert!(closed(&mut conn));
    env.wait_cr(1);
    env.wait_idle();
    // Digest still works next to it.
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(2);
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 7. The URL: path, credentials, host.

#[test]
fn random_path_is_32_hex_and_kept_across_a_restart() {
    // A fixed port, so the restarted daemon's URL is known without an Inform: a restart
    // without a new kernel boot has no event to report.
    let port = free_port();
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::with_cr_listen(
        "cr-path",
        &acs.url(),
        &format!("127.0.0.1:{port}"),
        &format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n"),
    );
    let mut env = Env::launch(acs, cpe);
    assert_eq!(
        (env.url.host.as_str(), env.url.port),
        ("127.0.0.1", port),
        "{}",
        env.url.text
    );
    let hex = env.url.path.strip_prefix('/').unwrap_or_default();
    assert!(
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "path {:?} is not / + 32 hex digits",
        env.url.path
    );
    let first = env.url.clone();
    let (r, _) = first.send_new(&first.get(&[]));
    assert_eq!(r.status, 401, "the reported URL is not served: {r:?}");
    env.finish_ref();

    // Restart: the same path is served, and reported with the next session.
    let _ = env.daemon.child.kill();
    let _ = env.daemon.child.wait();
    env.daemon = env.cpe.spawn_run();
    let r = poll(WAIT, || {
        let mut c = first.try_connect().ok()?;
        try_send(&mut c, &first.get(&[])).ok()
    })
    .unwrap_or_else(|| panic!("the restarted daemon never served:\n{}", env.daemon.log()));
    assert_eq!(r.status, 401, "the path changed with a restart: {r:?}");
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    let all = env.wait_cr(1);
    assert_eq!(cr_sessions(&all)[0].param(CRURL), Some(first.text.as_str()));
    env.finish();
}

#[test]
fn url_changed_while_the_agent_was_down_is_reported_at_start() {
    // listen = 127.0.0.1:0: the restarted daemon binds another port, as a router whose WAN
    // address moved while cwmpd was not running gets another URL. No boot, so no BOOT event:
    // the new URL must still reach the ACS, with `4 VALUE CHANGE`.
    let mut env = Env::start("cr-url-restart", "");
    let first = env.url.clone();
    let _ = env.daemon.child.kill();
    let _ = env.daemon.child.wait();
    let before = env.acs.completed().len();
    env.daemon = env.cpe.spawn_run();
    let all = env.acs.wait_sessions(before + 1, WAIT).unwrap_or_else(|e| {
        panic!(
            "no session after the restart: {e}
{}",
            env.daemon.log()
        )
    });
    let s = all.last().expect("a session");
    assert!(s.has_event("4 VALUE CHANGE"), "{:?}", s.event_codes());
    let now = s.param(CRURL).expect("the URL in the Inform").to_string();
    assert_ne!(now, first.text, "the port did not change: {now}");
    // The new URL is the one served (once this daemon's session is over).
    poll(WAIT, || {
        env.daemon.log().contains("session ended").then_some(())
    })
    .unwrap_or_else(|| panic!("the session never ended:\n{}", env.daemon.log()));
    env.url = CrUrl::parse(&now);
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn configured_path_is_served() {
    let env = Env::start("cr-fixed-path", "path = \"/cr-fixed\"\n");
    assert_eq!(env.url.path, "/cr-fixed", "{}", env.url.text);
    let host = env.url.authority();
    let (r, _) = env
        .url
        .send_new(&request("GET", "/", "HTTP/1.1", Some(&host), &[]));
    assert_eq!(r.status, 404, "{r:?}");
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn credentials_set_by_the_acs_replace_the_configured_ones() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::with_cr(
        "cr-acs-creds",
        &acs.url(),
        &format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n"),
    );
    // The boot session sets new credentials (TR-181 ManagementServer, writable by the ACS).
    acs.push_script([spv_req(
        &[
            (
                "Device.ManagementServer.ConnectionRequestUsername",
                "acs-chose-this",
                BaseType::String,
            ),
            (
                "Device.ManagementServer.ConnectionRequestPassword",
                "and-this-pass",
                BaseType::String,
            ),
        ],
        "cr-creds",
    )]);
    let env = Env::launch(acs, cpe);
    let boot = &env.acs.completed()[0];
    assert!(
        matches!(
            boot.exchanges.first().map(|e| &e.response),
            Some(Ok(CpeResponse::SetParameterValues { status: 0 | 1 }))
        ),
        "{:?}",
        boot.exchanges
    );

    let c = env.url.challenge();
    let (r, _) = env.url.send_new(
        &env.url
            .get(&[("Authorization", &env.url.authz(&c).header())]),
    );
    assert_eq!(r.status, 401, "the old credentials still work: {r:?}");
    env.assert_no_cr(0, "the old credentials");

    let c = env.url.challenge();
    let mut a = env.url.authz(&c);
    a.user = "acs-chose-this".into();
    a.pass = "and-this-pass".into();
    let (r, _) = env
        .url
        .send_new(&env.url.get(&[("Authorization", &a.header())]));
    assert_eq!(r.status, 200, "the new credentials are refused: {r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn url_follows_the_acs_to_ipv6_and_the_listener_is_rebound() {
    let b = match Acs::start(
        AcsOptions::default().bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))),
    ) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIP url_follows_the_acs_to_ipv6: no IPv6 loopback here ({e})");
            return;
        }
    };
    let a = Acs::start(AcsOptions::default()).expect("start ACS A");
    a.push_script([spv_req(
        &[("Device.ManagementServer.URL", &b.url(), BaseType::String)],
        "move",
    )]);
    let cpe = Cpe::with_cr(
        "cr-move",
        &a.url(),
        &format!(
            "username = {CR_USER:?}\npassword = {CR_PASS:?}\nhost = \"acs\"\n\
             bind_url_address = true\n"
        ),
    );
    let env = Env::launch(a, cpe);
    let old = env.url.clone();
    assert_eq!(old.host, "127.0.0.1", "{}", old.text);

    // The next session goes to B and reports the URL on [::1].
    let sb = b
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", env.daemon.log()));
    let new = CrUrl::parse(sb[0].param(CRURL).unwrap_or_default());
    assert_eq!(new.host, "[::1]", "first session at B: {}", new.text);
    assert_eq!(new.path, old.path);
    wait_idle(&env.daemon, &[&env.acs, &b]);

    let r = new.authorized_get();
    assert_eq!(r.status, 200, "{r:?}\ndaemon: {}", env.daemon.log());
    b.wait_for(SESSION_WAIT, |s| {
        s.iter().any(|s| s.completed && s.has_event(CR_EVENT))
    })
    .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", env.daemon.log()));
    // Bound to the URL's address only: the old one no longer answers.
    assert!(
        TcpStream::connect_timeout(&old.addr(), Duration::from_secs(2)).is_err(),
        "{} still accepts connections after the rebind",
        old.addr()
    );
    assert_eq!(env.cr_count(), 0, "a CR session went to the old ACS");
    env.finish();
}

#[test]
fn interface_lo_gives_127_0_0_1() {
    let env = Env::start("cr-iface", "host = \"interface:lo\"\n");
    assert_eq!(env.url.host, "127.0.0.1", "{}", env.url.text);
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.finish();
}

#[test]
fn fixed_host_name_is_reported_and_checked() {
    let env = Env::start("cr-fixed-host", "host = \"cpe.example\"\n");
    assert_eq!(env.url.host, "cpe.example", "{}", env.url.text);
    assert_eq!(env.url.addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    // The Host check now wants that name; the address is not enough.
    let by_ip = format!("127.0.0.1:{}", env.url.port);
    let req = request("GET", &env.url.path, "HTTP/1.1", Some(&by_ip), &[]);
    let (r, _) = env.url.send_new(&req);
    assert_eq!(r.status, 404, "Host: {by_ip}: {r:?}");
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "Host: cpe.example: {r:?}");
    env.wait_cr(1);
    env.wait_idle();
    // curl with the name resolved to 127.0.0.1.
    let resolve = format!("cpe.example:{}:127.0.0.1", env.url.port);
    let userpass = format!("{CR_USER}:{CR_PASS}");
    if let Some(out) = curl(&[
        "--resolve",
        &resolve,
        "--digest",
        "-u",
        &userpass,
        &env.url.text,
    ]) {
        assert_eq!((out.status, out.size), (200, 0), "{out:?}");
        env.wait_cr(2);
    }
    env.finish();
}

#[test]
fn a_request_that_joined_a_session_held_to_the_time_limit_still_gets_a_session() {
    // An ACS that never ends a session (a cheap request every 300 ms, forever) holds it only
    // until `[acs] session_limit`; a request that joined the held session (answered 200,
    // coalesced) is still owed a session, which follows after the §3.2.1.1 wait (1 s here).
    const LIMIT: Duration = Duration::from_secs(4);
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let lines = format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n");
    let cpe = Cpe::with_cr("cr-held", &acs.url(), &lines);
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    assert!(text.contains("\ntimeout = 5\n"), "{text}");
    let text = text.replacen(
        "\ntimeout = 5\n",
        &format!("\ntimeout = 5\nsession_limit = {}\n", LIMIT.as_secs()),
        1,
    );
    std::fs::write(&cpe.cfg, text).expect("write config");
    let env = Env::launch(acs, cpe);
    env.acs.push_script_fn(|_| {
        thread::sleep(Duration::from_millis(300));
        Some(cwmpd::soap::AcsRequest::GetRpcMethods.into())
    });
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    let held = env
        .acs
        .wait_for(SESSION_WAIT, |s| s.len() >= 2 && !s[1].exchanges.is_empty())
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", env.daemon.log()))
        .remove(1);
    assert!(held.has_event(CR_EVENT), "{:?}", held.event_codes());
    // This one joins the held session.
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    let all = env
        .acs
        .wait_for(LIMIT + WAIT, |s| {
            s.iter()
                .skip(2)
                .any(|s| s.completed && s.has_event(CR_EVENT))
        })
        .unwrap_or_else(|e| {
            panic!(
                "no session for the joined request: {e}\ndaemon: {}",
                env.daemon.log()
            )
        });
    let held = &all[1];
    assert!(!held.completed, "the ACS ended the held session itself");
    assert!(
        held.exchanges.len() >= 3,
        "the session was not held: {:?}",
        held.exchanges
    );
    let next = all
        .iter()
        .skip(2)
        .find(|s| s.has_event(CR_EVENT))
        .expect("the joined request's session");
    assert!(
        next.started.duration_since(held.started) >= LIMIT,
        "the next session started {:?} after the held one",
        next.started.duration_since(held.started)
    );
    let log = env.daemon.log();
    assert!(
        log.contains("time limit of 4 s"),
        "the held session's end is not logged as the time limit:\n{log}"
    );
    env.finish();
}

// ----------------------------------------------------------------------------------------------
// 8. Safe defaults: no credentials, no listener; failures throttled per source; the
// summary; the path kept out of the log; the realm kept out of other headers.

#[test]
fn empty_credentials_listen_nowhere_until_the_acs_sets_them() {
    let port = free_port();
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    // The embedded defaults: no username, no password.
    let cpe = Cpe::with_cr_listen(
        "cr-nocreds",
        &acs.url(),
        &format!("127.0.0.1:{port}"),
        "check_interval = 1\n",
    );
    // The boot session is held (at most 3 s) while the test looks, then sets the credentials,
    // as GenieACS's provisioning does in the first session.
    let (tx, rx) = mpsc::channel::<()>();
    let mut rx = Some(rx);
    let mut set = false;
    acs.push_script_fn(move |_| {
        if let Some(rx) = rx.take() {
            let _ = rx.recv_timeout(Duration::from_secs(3));
        }
        if set {
            return None;
        }
        set = true;
        Some(spv_req(
            &[
                (
                    "Device.ManagementServer.ConnectionRequestUsername",
                    "acs-set-user",
                    BaseType::String,
                ),
                (
                    "Device.ManagementServer.ConnectionRequestPassword",
                    "acs-set-pass",
                    BaseType::String,
                ),
            ],
            "cr-creds",
        ))
    });
    let daemon = cpe.spawn_run();
    let first = acs
        .wait_for(WAIT, |s| !s.is_empty())
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(
        first[0].param(CRURL),
        Some(""),
        "the boot Inform names a URL nothing may serve: {:?}",
        first[0].inform.parameters
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "{addr} accepts connections with empty credentials:\n{}",
        daemon.log()
    );
    if let Some(out) = curl(&["--digest", "-u", ":", &format!("http://{addr}/")]) {
        assert_eq!(out.status, 0, "{out:?}");
    }
    let _ = tx.send(());

    // The credentials set: the port opens and the ACS hears of the URL at once.
    let all = acs
        .wait_sessions(2, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert!(
        matches!(
            all[0].exchanges.first().map(|e| &e.response),
            Some(Ok(CpeResponse::SetParameterValues { status: 0 | 1 }))
        ),
        "{:?}",
        all[0].exchanges
    );
    let told = &all[1];
    assert!(told.has_event("4 VALUE CHANGE"), "{:?}", told.event_codes());
    let url = CrUrl::parse(told.param(CRURL).unwrap_or_default());
    assert_eq!(url.port, port, "{}", url.text);
    wait_idle(&daemon, &[&acs]);
    if let Some(out) = curl(&["--digest", "-u", "acs-set-user:acs-set-pass", &url.text]) {
        assert_eq!((out.status, out.size), (200, 0), "{out:?}");
    } else {
        let c = url.challenge();
        let mut a = url.authz(&c);
        a.user = "acs-set-user".into();
        a.pass = "acs-set-pass".into();
        let (r, _) = url.send_new(&url.get(&[("Authorization", &a.header())]));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let log = daemon.log();
    assert!(
        log.contains("not listening until ConnectionRequestPassword is set"),
        "{log}"
    );
    let env = Env {
        acs,
        cpe,
        daemon,
        url,
    };
    env.wait_cr(1);
    env.finish();
}

/// `number LABEL` in a summary line (0 when absent).
fn number_before(line: &str, label: &str) -> usize {
    line.find(label)
        .and_then(|i| {
            line[..i]
                .rsplit(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_failing_source_is_throttled_another_gets_in_and_the_summary_names_it() {
    let env = Env::start(
        "cr-throttle",
        "auth_fail_burst = 3\nauth_fail_interval = 3600\nsummary_interval = 1\n\
         check_interval = 1\n",
    );
    let wrong = format!("{CR_USER}:not-the-password");
    let right = format!("{CR_USER}:{CR_PASS}");
    // curl answers the challenge on the same connection, as an ACS does; 127.0.0.2 is another
    // source on the loopback.
    let from = |source: &str, userpass: &str| {
        curl(&[
            "--interface",
            source,
            "--digest",
            "-u",
            userpass,
            &env.url.text,
        ])
    };
    let Some(first) = from("127.0.0.2", &wrong) else {
        return;
    };
    assert_eq!(first.status, 401, "{first:?}");
    for _ in 1..3 {
        let o = from("127.0.0.2", &wrong).expect("curl");
        assert_eq!(o.status, 401, "{o:?}");
    }
    // Its allowance spent: 503 at once, even for the right password; no session.
    for userpass in [&wrong, &right] {
        let o = from("127.0.0.2", userpass).expect("curl");
        assert_eq!(o.status, 503, "{o:?}\ndaemon: {}", env.daemon.log());
    }
    env.assert_no_cr(0, "a throttled source");
    // The ACS, from another source, gets in.
    let o = from("127.0.0.1", &right).expect("curl");
    assert_eq!((o.status, o.size), (200, 0), "{o:?}");
    env.wait_cr(1);

    // The summaries (one a second here): the challenge curl got before its 200 is not a
    // rejection; the attacker is named.
    let want = |lines: &[String], label: &str| -> usize {
        lines.iter().map(|l| number_before(l, label)).sum()
    };
    let lines = poll(WAIT, || {
        let lines: Vec<String> = env
            .daemon
            .log()
            .lines()
            .filter(|l| l.contains("connection requests in the last"))
            .map(String::from)
            .collect();
        (want(&lines, " accepted") >= 1 && want(&lines, " throttled") >= 2).then_some(lines)
    })
    .unwrap_or_else(|| panic!("no summary of it:\n{}", env.daemon.log()));
    let shown = lines.join("\n");
    assert_eq!(want(&lines, " accepted"), 1, "{shown}");
    assert_eq!(want(&lines, " failed authentication"), 3, "{shown}");
    assert_eq!(want(&lines, " throttled"), 2, "{shown}");
    assert!(!shown.contains("challenged"), "{shown}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("most rejected from 127.0.0.2 (")),
        "{shown}"
    );
    assert!(!shown.contains("from 127.0.0.1 ("), "{shown}");
    env.finish();
}

/// More sources than the failure throttle's table holds, each spending its
/// allowance, lock out every new source; the ACS's source, which authenticated before a
/// restart, is kept in the agent's state and trusted again, so it still gets in. Fails before:
/// after the restart the ACS was a new source and got 503.
#[test]
fn the_acs_source_is_trusted_across_a_restart_while_debtors_fill_the_table() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let port = free_port();
    let lines = format!(
        "username = {CR_USER:?}\npassword = {CR_PASS:?}\n\
         auth_fail_burst = 1\nauth_fail_interval = 3600\n"
    );
    let cpe = Cpe::with_cr_listen(
        "cr-trusted",
        &acs.url(),
        &format!("127.0.0.1:{port}"),
        &lines,
    );
    let env = Env::launch(acs, cpe);
    let right = format!("{CR_USER}:{CR_PASS}");
    let wrong = format!("{CR_USER}:not-the-password");
    let url = env.url.text.clone();
    let from = |source: &str, userpass: &str| {
        curl(&["--interface", source, "--digest", "-u", userpass, &url])
    };
    let Some(o) = from("127.0.0.1", &right) else {
        return;
    };
    assert_eq!(o.status, 200, "{o:?}");
    env.wait_cr(1);
    let state = env.cpe.dir.path().join("state").join("agent.toml");
    poll(WAIT, || {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        text.contains("trusted_connreq_sources = [\"127.0.0.1\"]")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the ACS's source is not kept\ndaemon: {}", env.daemon.log()));

    // A restart: the table is empty again; the same URL (a fixed port).
    let Env {
        acs, cpe, daemon, ..
    } = env;
    drop(daemon);
    let daemon = cpe.spawn_run();
    poll(WAIT, || {
        let o = from("127.0.0.9", &wrong).expect("curl");
        (o.status == 401).then_some(())
    })
    .unwrap_or_else(|| panic!("the listener is not back\ndaemon: {}", daemon.log()));
    // An attacker's 140 sources, each spending its one failure: the table holds 128.
    for i in 0..140u32 {
        let source = format!("127.0.{}.{}", 1 + i / 200, 1 + i % 200);
        let o = from(&source, &wrong).expect("curl");
        assert!(matches!(o.status, 401 | 503), "{o:?}");
    }
    // A new source inherits a debtor's allowance: nothing of it is verified.
    let o = from("127.0.0.3", &right).expect("curl");
    assert_eq!(o.status, 503, "{o:?}");
    // The ACS is trusted from the state and gets in.
    let o = from("127.0.0.1", &right).expect("curl");
    assert_eq!(o.status, 200, "{o:?}\ndaemon: {}", daemon.log());
    acs.wait_for(SESSION_WAIT, |s| {
        s.iter()
            .filter(|s| s.completed && s.has_event(CR_EVENT))
            .count()
            >= 2
    })
    .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    drop(cpe);
}

#[test]
fn the_path_is_never_logged_even_at_trace() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::with_cr(
        "cr-trace",
        &acs.url(),
        &format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n"),
    );
    let text = std::fs::read_to_string(&cpe.cfg).expect("config");
    std::fs::write(
        &cpe.cfg,
        text.replace("level = \"debug\"", "level = \"trace\""),
    )
    .expect("config");
    let mut env = Env::launch(acs, cpe);
    let secret = env.url.path.trim_start_matches('/').to_string();
    assert_eq!(secret.len(), 32, "{}", env.url.text);
    // A session by Connection Request, a failed one, a wrong path, a malformed head.
    let r = env.url.authorized_get();
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_cr(1);
    env.wait_idle();
    let c = env.url.challenge();
    let mut a = env.url.authz(&c);
    a.pass = "wrong".into();
    let (r, _) = env
        .url
        .send_new(&env.url.get(&[("Authorization", &a.header())]));
    assert_eq!(r.status, 401, "{r:?}");
    let guess = format!("{}x", env.url.path);
    let (r, _) = env.url.send_new(&request(
        "GET",
        &guess,
        "HTTP/1.1",
        Some(&env.url.authority()),
        &[],
    ));
    assert_eq!(r.status, 404, "{r:?}");
    let (r, _) = env.url.send_new(b"GET\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    let mut logs = env.daemon.log();
    // A restart on another port: the new URL is reported (and the change noted).
    let _ = env.daemon.child.kill();
    let _ = env.daemon.child.wait();
    let before = env.acs.completed().len();
    env.daemon = env.cpe.spawn_run();
    env.acs
        .wait_sessions(before + 1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", env.daemon.log()));
    poll(WAIT, || {
        env.daemon.log().contains("session ended").then_some(())
    })
    .unwrap_or_else(|| panic!("the session never ended:\n{}", env.daemon.log()));
    logs.push_str(&env.daemon.log());
    assert!(logs.contains("TRACE") || logs.contains("trace"), "{logs}");
    assert!(
        !logs.to_ascii_lowercase().contains(&secret),
        "the ConnectionRequestURL path is in the log:\n{logs}"
    );
    env.finish();
}

#[test]
fn a_realm_with_control_characters_is_refused_when_the_config_is_read() {
    for (tag, realm) in [
        ("cr-realm-crlf", r#""cwmpd\r\nX-Injected: 1""#),
        ("cr-realm-lf", r#""cwmpd\nSet-Cookie: a=b""#),
        ("cr-realm-tab", r#""cwmpd\tx""#),
    ] {
        let cpe = Cpe::with_cr(tag, "http://127.0.0.1:9/", &format!("realm = {realm}\n"));
        let line = std::fs::read_to_string(&cpe.cfg)
            .expect("config")
            .lines()
            .position(|l| l.starts_with("realm = "))
            .expect("the realm line")
            + 1;
        for cmd in [&["check"][..], &["run"][..]] {
            let out = cpe.cli(cmd);
            out.assert_code(2, tag);
            let want = format!("{}:{line}: connection_request.realm", cpe.cfg.display());
            assert!(out.all().contains(&want), "{tag}: no {want:?} in {out}");
        }
    }
    // The UCI form (/etc/config/cwmpd): a CR inside the quoted value.
    let dir = tempdir::TempDir::new("cr-realm-uci");
    let path = dir.path().join("cwmpd");
    std::fs::write(
        &path,
        "config connection_request 'connection_request'\n\
         \toption enable '1'\n\
         \toption realm 'cwmpd\rX-Injected: 1'\n",
    )
    .expect("write");
    let path_text = path.display().to_string();
    let out = run(&["-c", &path_text, "check"]);
    out.assert_code(2, "uci realm");
    let want = format!("{path_text}:3: connection_request.realm");
    assert!(out.all().contains(&want), "no {want:?} in {out}");
}

// ----------------------------------------------------------------------------------------------
// The test environment: one ACS, one CPE, its daemon, the URL it reported.

struct Env {
    acs: Acs,
    cpe: Cpe,
    daemon: Daemon,
    url: CrUrl,
}

impl Env {
    /// An ACS and a daemon whose `[connection_request]` has the test credentials and
    /// `cr_lines`; returns once the boot session is over.
    fn start(tag: &str, cr_lines: &str) -> Env {
        let acs = Acs::start(AcsOptions::default()).expect("start ACS");
        let lines = format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n{cr_lines}");
        let cpe = Cpe::with_cr(tag, &acs.url(), &lines);
        Env::launch(acs, cpe)
    }

    /// Starts the daemon, waits for its boot session and for it to be idle, and reads the
    /// ConnectionRequestURL from the last Inform.
    fn launch(acs: Acs, cpe: Cpe) -> Env {
        let daemon = cpe.spawn_run();
        acs.wait_sessions(1, WAIT)
            .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
        wait_idle(&daemon, &[&acs]);
        let completed = acs.completed();
        let text = completed
            .last()
            .and_then(|s| s.param(CRURL))
            .unwrap_or_else(|| panic!("no {CRURL} in the Inform: {completed:#?}"))
            .to_string();
        Env {
            url: CrUrl::parse(&text),
            acs,
            cpe,
            daemon,
        }
    }

    /// Sessions at the ACS with `6 CONNECTION REQUEST` (completed or not).
    fn cr_count(&self) -> usize {
        cr_sessions(&self.acs.sessions()).len()
    }

    /// Waits until `n` completed sessions with `6 CONNECTION REQUEST`; returns all sessions.
    fn wait_cr(&self, n: usize) -> Vec<SessionRecord> {
        self.acs
            .wait_for(SESSION_WAIT, |s| {
                s.iter()
                    .filter(|s| s.completed && s.has_event(CR_EVENT))
                    .count()
                    >= n
            })
            .unwrap_or_else(|e| {
                panic!(
                    "waiting for {n} connection request session(s): {e}\ndaemon: {}",
                    self.daemon.log()
                )
            })
    }

    /// Watches for [`QUIET`]: still `n` sessions with `6 CONNECTION REQUEST`.
    fn assert_no_cr(&self, n: usize, after: &str) {
        thread::sleep(QUIET);
        let all = self.acs.sessions();
        assert_eq!(
            cr_sessions(&all).len(),
            n,
            "a session after {after}: {:?}\ndaemon: {}",
            all.iter().map(|s| s.event_codes()).collect::<Vec<_>>(),
            self.daemon.log()
        );
    }

    fn wait_idle(&self) {
        wait_idle(&self.daemon, &[&self.acs]);
    }

    /// `session ended` lines in the daemon log.
    fn ended(&self) -> usize {
        ended(&self.daemon)
    }

    /// The daemon is alive and never panicked.
    fn finish_ref(&mut self) {
        let alive = self.daemon.alive();
        let log = self.daemon.log();
        assert!(alive, "the daemon died:\n{log}");
        assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
    }

    fn finish(mut self) {
        self.finish_ref();
    }
}

/// Waits (bounded) until every session at `acss` is completed, the daemon has logged
/// `session ended` for each, and no new one starts for 300 ms.
fn wait_idle(daemon: &Daemon, acss: &[&Acs]) {
    let idle = || {
        let sessions: Vec<SessionRecord> = acss.iter().flat_map(|a| a.sessions()).collect();
        let done = sessions.iter().filter(|s| s.completed).count();
        (sessions.iter().all(|s| s.completed || s.rejected) && ended(daemon) >= done)
            .then_some(sessions.len())
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(n) = idle() {
            thread::sleep(Duration::from_millis(300));
            if idle() == Some(n) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never became idle:\n{}",
            daemon.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn ended(daemon: &Daemon) -> usize {
    daemon.log().matches("session ended").count()
}

fn cr_sessions(all: &[SessionRecord]) -> Vec<&SessionRecord> {
    all.iter().filter(|s| s.has_event(CR_EVENT)).collect()
}

/// Log lines containing every one of `parts`.
fn count_lines(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

// ----------------------------------------------------------------------------------------------
// The ConnectionRequestURL and requests to it.

#[derive(Debug, Clone, Default)]
struct CrUrl {
    text: String,
    /// As in the URL (an IPv6 address in brackets).
    host: String,
    port: u16,
    path: String,
}

impl CrUrl {
    /// `http://HOST:PORT/PATH`, the form the spec requires (an explicit port).
    fn parse(text: &str) -> CrUrl {
        let bad = || -> ! { panic!("ConnectionRequestURL {text:?} is not http://HOST:PORT/PATH") };
        let rest = text.strip_prefix("http://").unwrap_or_else(|| bad());
        let slash = rest.find('/').unwrap_or_else(|| bad());
        let (authority, path) = rest.split_at(slash);
        let colon = authority.rfind(':').unwrap_or_else(|| bad());
        let (host, port) = authority.split_at(colon);
        let port = port[1..].parse().unwrap_or_else(|_| bad());
        if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
            bad();
        }
        CrUrl {
            text: text.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
        }
    }

    /// `HOST:PORT`, the Host header.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Where to connect: the URL's address, or 127.0.0.1 for a host name.
    fn addr(&self) -> SocketAddr {
        let ip = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        SocketAddr::new(ip, self.port)
    }

    fn try_connect(&self) -> Result<TcpStream, String> {
        let addr = self.addr();
        let c = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        c.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|_| c.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("socket timeouts: {e}"))?;
        Ok(c)
    }

    fn connect(&self) -> TcpStream {
        self.try_connect().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A GET of the URL's path with its Host and `extra` headers.
    fn get(&self, extra: &[(&str, &str)]) -> Vec<u8> {
        request(
            "GET",
            &self.path,
            "HTTP/1.1",
            Some(&self.authority()),
            extra,
        )
    }

    /// `req` on a new connection; the reply and the connection.
    fn send_new(&self, req: &[u8]) -> (Reply, TcpStream) {
        let mut conn = self.connect();
        let r = send(&mut conn, req);
        (r, conn)
    }

    /// The Digest challenge of an unauthenticated GET on a new connection.
    fn challenge(&self) -> Challenge {
        let (r, _) = self.send_new(&self.get(&[]));
        assert_eq!(r.status, 401, "an unauthenticated GET: {r:?}");
        r.challenge().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The right answer to `c` with the test credentials.
    fn authz(&self, c: &Challenge) -> Authz {
        Authz::new(c, CR_USER, CR_PASS, &self.path)
    }

    /// A challenge on one connection, the Digest answer on another; the answer's reply.
    fn authorized_get(&self) -> Reply {
        let c = self.challenge();
        self.send_new(&self.get(&[("Authorization", &self.authz(&c).header())]))
            .0
    }
}

/// An HTTP request head (no body).
fn request(
    method: &str,
    target: &str,
    version: &str,
    host: Option<&str>,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut s = format!("{method} {target} {version}\r\n");
    if let Some(h) = host {
        s.push_str(&format!("Host: {h}\r\n"));
    }
    s.push_str("User-Agent: cwmpd-connreq-test\r\n");
    for (n, v) in extra {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// One HTTP answer.
struct Reply {
    version: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.version, self.status)?;
        for (n, v) in &self.headers {
            write!(f, " | {n}: {v}")?;
        }
        write!(f, " | body {:?}", String::from_utf8_lossy(&self.body))
    }
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).first().copied()
    }

    fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `Content-Length: 0` and nothing after the head.
    fn assert_empty(&self) {
        assert_eq!(self.header("content-length"), Some("0"), "{self:?}");
        assert!(self.body.is_empty(), "{self:?}");
    }

    /// The first `WWW-Authenticate: Digest …`.
    fn challenge(&self) -> Result<Challenge, String> {
        self.headers_named("www-authenticate")
            .into_iter()
            .find_map(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("digest").then(|| Challenge {
                    params: auth_params(rest),
                })
            })
            .ok_or_else(|| format!("no Digest challenge in {self:?}"))
    }
}

fn send(conn: &mut TcpStream, req: &[u8]) -> Reply {
    try_send(conn, req).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes `req` and reads one reply (its body by Content-Length), bounded in time and size.
fn try_send(conn: &mut TcpStream, req: &[u8]) -> Result<Reply, String> {
    let shown = String::from_utf8_lossy(&req[..req.len().min(200)]).into_owned();
    conn.write_all(req)
        .map_err(|e| format!("writing {shown:?}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 65536 {
            return Err(format!("a reply head over 64 KiB to {shown:?}"));
        }
        match conn.read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "closed without a complete reply to {shown:?} (got {:?})",
                    String::from_utf8_lossy(&buf)
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                return Err(format!(
                    "reading the reply to {shown:?}: {e} (got {:?})",
                    String::from_utf8_lossy(&buf)
                ))
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(Reply {
        version,
        status,
        headers,
        body,
    })
}

/// Whether the peer closed the connection (EOF or reset within 3 s, and no stray bytes).
fn closed(conn: &mut TcpStream) -> bool {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    let mut b = [0u8; 64];
    match conn.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        ),
    }
}

// ----------------------------------------------------------------------------------------------
// HTTP Digest, client side (RFC 7616 §3.4), computed here from the RFC.

/// A `WWW-Authenticate: Digest` challenge's parameters.
#[derive(Debug, Clone)]
struct Challenge {
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn nonce(&self) -> &str {
        self.param("nonce").unwrap_or_default()
    }

    fn stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// `a=b, c="d, e"` as (lower-case name, unquoted value) pairs (RFC 7235 §2.1 auth-params).
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut end = q.len();
            let mut chars = q.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &q[end..];
            v
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let v = rest[..end].trim().to_string();
            rest = &rest[end..];
            v
        };
        out.push((name, value));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Alg {
    fn parse(s: &str) -> Option<Alg> {
        [Alg::Md5, Alg::Md5Sess, Alg::Sha256, Alg::Sha256Sess]
            .into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(s))
    }

    fn token(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Md5Sess => "MD5-sess",
            Alg::Sha256 => "SHA-256",
            Alg::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, s: &str) -> String {
        let bytes: Vec<u8> = match self {
            Alg::Md5 | Alg::Md5Sess => Md5::digest(s.as_bytes()).to_vec(),
            Alg::Sha256 | Alg::Sha256Sess => {
                ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
                    .as_ref()
                    .to_vec()
            }
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An `Authorization: Digest` header; fields public so tests can spoil one.
#[derive(Debug, Clone)]
struct Authz {
    user: String,
    /// Used for the hash only.
    pass: String,
    realm: String,
    nonce: String,
    uri: String,
    method: String,
    /// The hash used.
    alg: Alg,
    /// The `algorithm=` sent (none when `None`).
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<u32>,
    cnonce: Option<String>,
    opaque: Option<String>,
    /// Sent instead of the computed response.
    response: Option<String>,
}

impl Authz {
    /// The correct answer to `c` for a GET of `uri`.
    fn new(c: &Challenge, user: &str, pass: &str, uri: &str) -> Authz {
        let alg = c
            .param("algorithm")
            .map(|a| Alg::parse(a).unwrap_or_else(|| panic!("unknown algorithm in {c:?}")))
            .unwrap_or(Alg::Md5);
        Authz {
            user: user.into(),
            pass: pass.into(),
            realm: c.param("realm").unwrap_or_default().into(),
            nonce: c.nonce().into(),
            uri: uri.into(),
            method: "GET".into(),
            alg,
            algorithm: Some(alg.token().into()),
            qop: Some("auth".into()),
            nc: Some(1),
            cnonce: Some(cnonce()),
            opaque: c.param("opaque").map(Into::into),
            response: None,
        }
    }

    /// RFC 7616 §3.4.1–3.4.3 (and RFC 2069 without qop).
    fn compute(&self) -> String {
        let a = self.alg;
        let cnonce = self.cnonce.as_deref().unwrap_or_default();
        let mut ha1 = a.hash(&format!("{}:{}:{}", self.user, self.realm, self.pass));
        if matches!(a, Alg::Md5Sess | Alg::Sha256Sess) {
            ha1 = a.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = a.hash(&format!("{}:{}", self.method, self.uri));
        match &self.qop {
            Some(qop) => a.hash(&format!(
                "{ha1}:{}:{:08x}:{cnonce}:{qop}:{ha2}",
                self.nonce,
                self.nc.unwrap_or(0)
            )),
            None => a.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    fn header(&self) -> String {
        let response = self.response.clone().unwrap_or_else(|| self.compute());
        let mut h = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
            self.user, self.realm, self.nonce, self.uri
        );
        if let Some(a) = &self.algorithm {
            h.push_str(&format!(", algorithm={a}"));
        }
        if let Some(q) = &self.qop {
            h.push_str(&format!(", qop={q}"));
        }
        if let Some(nc) = self.nc {
            h.push_str(&format!(", nc={nc:08x}"));
        }
        if let Some(c) = &self.cnonce {
            h.push_str(&format!(", cnonce=\"{c}\""));
        }
        if let Some(o) = &self.opaque {
            h.push_str(&format!(", opaque=\"{o}\""));
        }
        h
    }
}

/// A client nonce unique within the run.
fn cnonce() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:016x}{:04x}", t as u64, rand_tag())
}

/// RFC 4648 base64 with padding, for Basic.
fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------
// curl.

struct CurlOut {
    args: Vec<String>,
    status: u16,
    size: u64,
    connects: u32,
    stderr: String,
}

impl std::fmt::Debug for CurlOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`curl {}`: status {}, {} body bytes, {} connection(s); stderr {:?}",
            self.args.join(" "),
            self.status,
            self.size,
            self.connects,
            self.stderr
        )
    }
}

/// Runs curl (bounded by `--max-time`) with `args` after the common ones; `None` (and a
/// message) when curl is not installed.
fn curl(args: &[&str]) -> Option<CurlOut> {
    let common = [
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{num_connects}",
    ];
    let out = match Command::new("curl").args(common).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("SKIP the curl part: curl is not installed");
            return None;
        }
        Err(e) => panic!("running curl: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut f = stdout.split_whitespace();
    let mut next = || f.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (status, size, connects) = (next(), next(), next());
    Some(CurlOut {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: u16::try_from(status).unwrap_or(0),
        size,
        connects: u32::try_from(connects).unwrap_or(0),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
