//! The HTTPS transport to the ACS (TR-069 §3.4) against real TLS and real sockets: CA checks,
//! host name checks, client certificates, Digest/Basic with the 401 answered on the same
//! connection, cookies, redirects, timeouts and body limits.

use support::tls;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cwmpd::http::acs::{Transport, TransportConfig, TransportError};
use cwmpd::http::auth::{self, Algorithm, DigestServer, NonceStatus, Verdict};
use tls::{Pki, Request, Response, TestServer};

const USER: &str = "cpe-000001";
const PASS: &str = "s3cr3t-pa55";

fn config(url: String, ca: &std::path::Path) -> TransportConfig {
    TransportConfig {
        url,
        username: USER.into(),
        password: PASS.into(),
        ca_file: Some(ca.to_path_buf()),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    }
}

fn echo(req: &Request) -> Response {
    if req.body.is_empty() {
        Response::new(204)
    } else {
        Response::new(200)
            .header("Content-Type", "text/xml")
            .body(req.body.clone())
    }
}

fn expect_err(r: Result<cwmpd::http::acs::HttpReply, TransportError>) -> TransportError {
    match r {
        Ok(reply) => panic!("expected an error, got status {}", reply.status),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "multi-line error: {text}");
            assert!(!text.contains(PASS), "password in error: {text}");
            e
        }
    }
}

#[test]
fn https_with_ca_file_headers_and_keep_alive() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), echo);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();

    let reply = t.post(b"<Envelope/>").unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"<Envelope/>");
    assert_eq!(reply.retry_after, None);
    let empty = t.post(b"").unwrap();
    assert_eq!(empty.status, 204);
    assert!(empty.body.is_empty());
    assert_eq!(
        server.connections(),
        1,
        "the session must stay on one TCP connection"
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let (soap, empty) = (&reqs[0], &reqs[1]);
    assert_eq!((soap.method.as_str(), soap.path.as_str()), ("POST", "/acs"));
    assert_eq!(
        soap.header("content-type"),
        Some("text/xml; charset=\"utf-8\"")
    );
    assert_eq!(soap.header("soapaction"), Some(""));
    assert_eq!(soap.header("content-length"), Some("11"));
    assert!(soap.header("user-agent").unwrap().starts_with("cwmpd/"));
    assert_eq!(
        soap.header("authorization"),
        None,
        "no credentials before a challenge"
    );
    assert_eq!(empty.headers_all("content-length"), vec!["0"]);
    assert_eq!(empty.header("content-type"), None);
    assert_eq!(empty.header("soapaction"), None);

    // A new session opens a new connection.
    t.end_session();
    t.post(b"x").unwrap();
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests()[2].conn, 2);
}

#[test]
fn an_acs_named_by_host_name_keeps_its_session_on_one_connection() {
    // `localhost` through the system's resolver (/etc/hosts), the certificate checked against
    // the name: the session's POSTs reuse the one connection and the name's addresses.
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), echo);
    let url = server.url("/acs").replace("127.0.0.1", "localhost");
    let mut t = Transport::new(config(url, &pki.ca_file)).unwrap();
    for _ in 0..3 {
        assert_eq!(t.post(b"<Envelope/>").unwrap().status, 200);
    }
    assert_eq!(t.post(b"").unwrap().status, 204);
    assert_eq!(server.connections(), 1);
    t.end_session();
    assert_eq!(t.post(b"x").unwrap().status, 200);
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn unknown_ca_is_refused() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), echo);
    let mut t = Transport::new(config(server.url("/"), &pki.other_ca_file)).unwrap();
    let e = expect_err(t.post(b"x"));
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(server.requests().is_empty());
}

#[test]
fn wrong_host_name_is_refused() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_config(&pki.wrong_name, false)), echo);
    let mut t = Transport::new(config(server.url("/"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"x"));
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    assert!(server.requests().is_empty());
}

#[test]
fn client_certificate_required_and_presented() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_config(&pki.server, true)), echo);

    let mut without = Transport::new(config(server.url("/"), &pki.ca_file)).unwrap();
    let e = expect_err(without.post(b"x"));
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    assert!(server.requests().is_empty());

    let mut cfg = config(server.url("/"), &pki.ca_file);
    cfg.client_cert = Some(pki.client.cert_file.clone());
    cfg.client_key = Some(pki.client.key_file.clone());
    let mut with = Transport::new(cfg).unwrap();
    assert_eq!(with.post(b"x").unwrap().status, 200);
    assert!(server.requests()[0].client_cert);

    // A key that does not match the certificate is a configuration error, not a panic.
    let mut bad = config(server.url("/"), &pki.ca_file);
    bad.client_cert = Some(pki.client.cert_file.clone());
    bad.client_key = Some(pki.server.key_file.clone());
    assert!(matches!(
        Transport::new(bad),
        Err(TransportError::Config(_))
    ));
    let mut half = config(server.url("/"), &pki.ca_file);
    half.client_cert = Some(pki.client.cert_file.clone());
    assert!(matches!(
        Transport::new(half),
        Err(TransportError::Config(_))
    ));
}

/// A GenieACS-like Digest server: the nonce is bound to the TCP connection, nc must grow, and
/// after `uses_per_nonce` successful requests the nonce becomes stale.
fn digest_server(
    pki: &Pki,
    algorithm: Algorithm,
    password: &'static str,
    uses_per_nonce: u32,
) -> TestServer {
    let ds = DigestServer {
        realm: "acs".into(),
        algorithm,
        opaque: Some("op4que".into()),
    };
    // Per connection: (nonce, last nc, uses).
    type Nonces = HashMap<usize, (String, u32, u32)>;
    let state: Arc<Mutex<Nonces>> = Arc::default();
    let counter = Arc::new(Mutex::new(0u32));
    TestServer::start(Some(pki.server_tls()), move |req| {
        let mut st = state.lock().unwrap();
        let fresh = || {
            let mut c = counter.lock().unwrap();
            *c += 1;
            format!("n{}c{}", *c, req.conn)
        };
        let Some(h) = req.header("authorization") else {
            let nonce = fresh();
            st.insert(req.conn, (nonce.clone(), 0, 0));
            return Response::new(401).header("WWW-Authenticate", &ds.challenge(&nonce, false));
        };
        let current = st.get(&req.conn).cloned();
        let verdict = ds.verify(
            h,
            "POST",
            &req.path,
            USER,
            password,
            |nonce, nc| match &current {
                Some((n, last, uses)) if n == nonce && nc > *last && *uses < uses_per_nonce => {
                    NonceStatus::Valid
                }
                _ => NonceStatus::Stale,
            },
        );
        match verdict {
            Verdict::Ok => {
                if let Some(e) = st.get_mut(&req.conn) {
                    e.1 += 1;
                    e.2 += 1;
                }
                echo(req)
            }
            Verdict::Stale | Verdict::Bad => {
                let nonce = fresh();
                st.insert(req.conn, (nonce.clone(), 0, 0));
                Response::new(401).header(
                    "WWW-Authenticate",
                    &ds.challenge(&nonce, verdict == Verdict::Stale),
                )
            }
        }
    })
}

fn param(req: &Request, name: &str) -> Option<String> {
    let h = req.header("authorization")?;
    auth::parse_credentials(h)
        .ok()?
        .param(name)
        .map(str::to_owned)
}

#[test]
fn digest_answered_on_the_same_connection_then_preauthorized() {
    for alg in [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256] {
        let pki = Pki::new();
        let server = digest_server(&pki, alg, PASS, 100);
        let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();

        let r = t.post(b"inform").unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"inform"[..]),
            "{alg:?}"
        );
        assert_eq!(t.post(b"").unwrap().status, 204);
        assert_eq!(t.post(b"third").unwrap().status, 200);

        let reqs = server.requests();
        assert_eq!(reqs.len(), 4, "{alg:?}: one 401 then pre-authorized posts");
        assert!(
            reqs.iter().all(|r| r.conn == 1),
            "{alg:?}: all on one connection"
        );
        assert_eq!(reqs[0].header("authorization"), None);
        assert_eq!(reqs[1].body, b"inform", "the same body is re-sent");
        assert_eq!(param(&reqs[1], "algorithm").as_deref(), Some(alg.name()));
        assert_eq!(param(&reqs[1], "opaque").as_deref(), Some("op4que"));
        assert_eq!(param(&reqs[1], "uri").as_deref(), Some("/acs"));
        let ncs: Vec<_> = reqs[1..].iter().map(|r| param(r, "nc").unwrap()).collect();
        assert_eq!(ncs, ["00000001", "00000002", "00000003"]);
        let nonce = param(&reqs[1], "nonce");
        assert!(reqs[2..].iter().all(|r| param(r, "nonce") == nonce));
        assert!(reqs
            .iter()
            .all(|r| !r.header("authorization").unwrap_or("").contains(PASS)));

        // The next session starts without credentials and on a new connection.
        t.end_session();
        t.post(b"again").unwrap();
        let reqs = server.requests();
        assert_eq!(reqs[4].header("authorization"), None);
        assert_eq!(reqs[4].conn, 2);
    }
}

/// A GetParameterValuesResponse of thousands of values goes out as it is written: with its
/// length as `Content-Length` (no chunked coding), the same bytes as the message emitted whole,
/// and again from its start after the 401 and after a redirect.
#[test]
fn a_streamed_message_is_sent_whole_again_after_a_401_and_a_redirect() {
    use cwmpd::cwmp::value::{BaseType, ParameterValue};
    use cwmpd::cwmp::version::CwmpNs;
    use cwmpd::soap::{emit_response, emit_response_body, Body, CpeResponse};

    let list: Vec<ParameterValue> = (0..3_000)
        .map(|i| ParameterValue {
            name: format!("Device.Hosts.Host.{i}.HostName"),
            value: format!("host <{i}> & \"café\" \r"),
            ty: BaseType::String,
        })
        .collect();
    let resp = CpeResponse::GetParameterValues { list: list.into() };
    let whole = emit_response(CwmpNs::V1_2, Some("id-1"), &resp);
    let Body::Values(body) = emit_response_body(CwmpNs::V1_2, Some("id-1"), resp) else {
        panic!("a GetParameterValuesResponse is streamed");
    };
    assert!(whole.len() > 200_000);

    let pki = Pki::new();
    let server = digest_server(&pki, Algorithm::Md5, PASS, 100);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let r = t.post_streamed(&body).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == whole, "the echo is the message emitted whole");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one 401, then the message again");
    for req in &reqs {
        assert!(req.body == whole, "the same bytes each time");
        assert_eq!(
            req.header("content-length"),
            Some(whole.len().to_string().as_str())
        );
        assert_eq!(req.header("transfer-encoding"), None);
    }

    let moved = TestServer::start(Some(pki.server_tls()), |req| {
        if req.path == "/acs" {
            Response::new(307).header("Location", "/final")
        } else {
            echo(req)
        }
    });
    let mut t = Transport::new(config(moved.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post_streamed(&body).unwrap().status, 200);
    let reqs = moved.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.body == whole));
}

/// A streamed message that ends before its length fails at once (not at the send timeout,
/// ureq waiting for the rest); one longer than its length is cut at it.
#[test]
fn a_streamed_message_is_held_to_its_length() {
    struct Lying {
        len: usize,
        real: usize,
    }
    impl cwmpd::http::acs::Streamed for Lying {
        fn len(&self) -> usize {
            self.len
        }
        fn reader(&self) -> Box<dyn std::io::Read + '_> {
            Box::new(std::io::repeat(b'x').take(self.real as u64))
        }
    }
    use std::io::Read as _;
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), echo);
    let mut cfg = config(server.url("/acs"), &pki.ca_file);
    cfg.timeout = Duration::from_secs(60);
    let mut t = Transport::new(cfg).unwrap();
    let e = expect_err(t.post_streamed(&Lying { len: 100, real: 90 }));
    assert!(!matches!(e, TransportError::Timeout(_)), "{e:?}");
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let r = t
        .post_streamed(&Lying {
            len: 100,
            real: 500,
        })
        .unwrap();
    assert_eq!(r.body, vec![b'x'; 100]);
}

#[test]
fn digest_stale_nonce_is_renewed_without_failing() {
    let pki = Pki::new();
    // Each nonce serves one request only.
    let server = digest_server(&pki, Algorithm::Md5, PASS, 1);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"one").unwrap().status, 200);
    assert_eq!(t.post(b"two").unwrap().status, 200);
    let reqs = server.requests();
    // 401, ok (nonce 1), stale 401 on the pre-authorized post, ok with the new nonce.
    assert_eq!(reqs.len(), 4);
    assert_eq!(param(&reqs[2], "nc").as_deref(), Some("00000002"));
    assert_eq!(param(&reqs[3], "nc").as_deref(), Some("00000001"));
    assert_ne!(param(&reqs[2], "nonce"), param(&reqs[3], "nonce"));
    assert_eq!(reqs[3].body, b"two");
}

#[test]
fn digest_wrong_password_fails_without_looping() {
    let pki = Pki::new();
    let server = digest_server(&pki, Algorithm::Sha256, "another-password", 100);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Auth(_)), "{e:?}");
    assert_eq!(server.requests().len(), 2);
}

fn basic_server(pki: &Pki, password: &'static str) -> TestServer {
    TestServer::start(Some(pki.server_tls()), move |req| {
        match req.header("authorization") {
            Some(h) if auth::verify_basic(h, USER, password) => echo(req),
            _ => Response::new(401).header("WWW-Authenticate", &auth::basic_challenge("acs")),
        }
    })
}

#[test]
fn basic_only_after_a_basic_challenge() {
    let pki = Pki::new();
    let server = basic_server(&pki, PASS);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"inform").unwrap().status, 200);
    assert_eq!(t.post(b"").unwrap().status, 204);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].header("authorization"), None, "never Basic unasked");
    assert_eq!(
        reqs[1].header("authorization"),
        Some(auth::basic_authorization(USER, PASS).as_str())
    );
    assert!(reqs[2].header("authorization").is_some());
    assert!(reqs.iter().all(|r| r.conn == 1));

    let bad = basic_server(&pki, "not-it");
    let mut t = Transport::new(config(bad.url("/acs"), &pki.ca_file)).unwrap();
    assert!(matches!(expect_err(t.post(b"x")), TransportError::Auth(_)));
    assert_eq!(bad.requests().len(), 2);
}

#[test]
fn mandatory_cookie_echoed_then_dropped_at_session_end() {
    let pki = Pki::new();
    // Like GenieACS: the Inform gets a session cookie; any later POST without it gets 400.
    let server = TestServer::start(Some(pki.server_tls()), |req| {
        let has = req
            .header("cookie")
            .is_some_and(|c| c.split("; ").any(|p| p == "session=s1"));
        if req.body == b"inform" {
            Response::new(200)
                .header("Set-Cookie", "session=s1; Path=/; HttpOnly")
                .header("Set-Cookie", "SerialNumber=0010; path=/")
                .body("informresponse")
        } else if has {
            echo(req)
        } else {
            Response::new(400)
        }
    });
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"inform").unwrap().status, 200);
    assert_eq!(t.post(b"").unwrap().status, 204);
    assert_eq!(t.post(b"gpvresponse").unwrap().status, 200);
    let reqs = server.requests();
    assert_eq!(reqs[0].header("cookie"), None);
    for r in &reqs[1..] {
        assert_eq!(
            r.headers_all("cookie"),
            vec!["session=s1; SerialNumber=0010"]
        );
    }
    t.end_session();
    assert_eq!(t.post(b"gpvresponse").unwrap().status, 400);
    assert_eq!(server.requests()[3].header("cookie"), None);
}

#[test]
fn redirects_followed_for_the_session_and_loops_refused() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), |req| {
        let p = req.path.as_str();
        if p == "/acs" {
            Response::new(302).header("Location", "moved?x=1")
        } else if p == "/moved?x=1" {
            Response::new(307).header("Location", "/final")
        } else if p == "/final" {
            echo(req)
        } else if let Some(n) = p.strip_prefix("/loop") {
            let n: u32 = n.parse().unwrap_or(0);
            Response::new(if n % 2 == 0 { 301 } else { 308 })
                .header("Location", &format!("/loop{}", n + 1))
        } else if let Some(n) = p.strip_prefix("/chain") {
            let n: u32 = n.parse().unwrap_or(0);
            if n == 5 {
                echo(req)
            } else {
                Response::new(302).header("Location", &format!("/chain{}", n + 1))
            }
        } else {
            Response::new(404)
        }
    });
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let r = t.post(b"inform").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"inform"[..]));
    let reqs = server.requests();
    let paths: Vec<_> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/acs", "/moved?x=1", "/final"]);
    assert!(
        reqs.iter().all(|r| r.body == b"inform"),
        "the body is re-posted"
    );
    // The rest of the session goes straight to the new URL (§3.4.5)…
    t.post(b"").unwrap();
    assert_eq!(server.requests()[3].path, "/final");
    // …and the next session starts at the configured URL again.
    t.end_session();
    t.post(b"x").unwrap();
    assert_eq!(server.requests()[4].path, "/acs");

    let before = server.requests().len();
    let mut chain = Transport::new(config(server.url("/chain0"), &pki.ca_file)).unwrap();
    assert_eq!(
        chain.post(b"c").unwrap().status,
        200,
        "5 redirects are followed"
    );
    assert_eq!(server.requests().len() - before, 6);

    let before = server.requests().len();
    let mut looping = Transport::new(config(server.url("/loop0"), &pki.ca_file)).unwrap();
    assert_eq!(
        expect_err(looping.post(b"l")),
        TransportError::TooManyRedirects
    );
    assert_eq!(
        server.requests().len() - before,
        6,
        "no more than 5 redirects followed"
    );
}

#[test]
fn silent_servers_time_out() {
    let pki = Pki::new();
    let quick = |url: String| TransportConfig {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        ..config(url, &pki.ca_file)
    };
    // An HTTP server that reads the request and never answers.
    let server = TestServer::start(None, |_| Response::hang());
    let mut t = Transport::new(quick(server.url("/acs"))).unwrap();
    let start = Instant::now();
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Timeout(_)), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests().len(), 1);

    // A TCP listener that accepts and never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let held = listener.accept();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let mut t = Transport::new(quick(format!("https://{addr}/acs"))).unwrap();
    let start = Instant::now();
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Timeout(_)), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let _ = holder.join();
}

#[test]
fn the_session_deadline_cuts_a_post_short_and_refuses_the_next() {
    // The per-call budget is 4 x 20 s; the session's deadline, 1 s away, cuts the wait for a
    // server that never answers.
    let pki = Pki::new();
    let server = TestServer::start(None, |_| Response::hang());
    let mut t = Transport::new(TransportConfig {
        connect_timeout: Duration::from_secs(20),
        timeout: Duration::from_secs(20),
        ..config(server.url("/acs"), &pki.ca_file)
    })
    .unwrap();
    let start = Instant::now();
    t.set_deadline(Some(start + Duration::from_secs(1)));
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Timeout(_)), "{e:?}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // Past the deadline no exchange starts.
    let e = expect_err(t.post(b"inform"));
    assert!(e.to_string().contains("time limit"), "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn oversized_body_and_retry_after() {
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), |req| {
        if req.body == b"big" {
            Response::new(200).body(vec![b'a'; 300_000])
        } else {
            Response::new(503).header("Retry-After", "120")
        }
    });
    let mut cfg = config(server.url("/acs"), &pki.ca_file);
    cfg.max_body = 100_000;
    let mut t = Transport::new(cfg).unwrap();
    let e = expect_err(t.post(b"big"));
    assert_eq!(e, TransportError::BodyTooLarge(100_000));
    let r = t.post(b"inform").unwrap();
    assert_eq!((r.status, r.retry_after), (503, Some(120)));
}

/// A response head over the cap is refused as such (not as a connection that made no
/// progress); one just under it is read.
#[test]
fn a_response_head_over_the_cap_is_named_as_such() {
    use cwmpd::http::acs::MAX_RESPONSE_HEAD;
    let pki = Pki::new();
    let server = TestServer::start(Some(pki.server_tls()), |req| {
        let size = if req.body == b"over" {
            MAX_RESPONSE_HEAD + 200
        } else {
            MAX_RESPONSE_HEAD - 2048
        };
        Response::new(200).header("X-Filler", &"f".repeat(size))
    });
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"over"));
    assert!(e.to_string().contains("header is too big"), "{e}");
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"under").unwrap().status, 200);
}

#[test]
fn plain_http_and_bad_configuration() {
    let pki = Pki::new();
    let server = TestServer::start(None, echo);
    // A plain http URL works without any CA file.
    let mut cfg = config(server.url("/acs"), &pki.ca_file);
    cfg.ca_file = Some(pki.dir.join("missing.pem"));
    let mut t = Transport::new(cfg).unwrap();
    assert_eq!(t.post(b"x").unwrap().status, 200);
    // An https URL with a missing CA file is refused up front.
    let mut cfg = config("https://127.0.0.1:1/acs".into(), &pki.ca_file);
    cfg.ca_file = Some(pki.dir.join("missing.pem"));
    assert!(matches!(
        Transport::new(cfg),
        Err(TransportError::Config(_))
    ));
    // A connection refused is reported as such.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut t = Transport::new(config(format!("http://{addr}/"), &pki.ca_file)).unwrap();
    assert!(matches!(
        expect_err(t.post(b"x")),
        TransportError::Connect(_)
    ));
}

// ----------------------------------------------------------------------------------------------
// Where the password may go: Basic only where it is not in clear text, and
// credentials only to the configured ACS origin.

/// A server that asks for Basic only, as an on-path attacker of a plain-http ACS would after
/// replacing the ACS's Digest challenge.
fn basic_only(req: &Request) -> Response {
    match req.header("authorization") {
        Some(h) if auth::verify_basic(h, USER, PASS) => echo(req),
        _ => Response::new(401).header("WWW-Authenticate", &auth::basic_challenge("acs")),
    }
}

#[test]
fn basic_over_plain_http_is_refused_unless_allowed() {
    let pki = Pki::new();
    let server = TestServer::start(None, basic_only);
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Auth(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("Basic") && text.contains("plain http"),
        "{text}"
    );
    assert!(text.contains("allow_basic_over_http"), "{text}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "nothing after the Basic challenge");
    assert_eq!(reqs[0].header("authorization"), None);

    // The explicit opt-in of the config: the password is sent after the challenge.
    let mut cfg = config(server.url("/acs"), &pki.ca_file);
    cfg.allow_basic_over_http = true;
    let mut t = Transport::new(cfg).unwrap();
    assert_eq!(t.post(b"inform").unwrap().status, 200);
    let reqs = server.requests();
    assert_eq!(
        reqs.last().unwrap().header("authorization"),
        Some(auth::basic_authorization(USER, PASS).as_str())
    );

    // Digest offered next to Basic over http is answered (Digest wins).
    let ds = DigestServer {
        realm: "acs".into(),
        algorithm: Algorithm::Md5,
        opaque: None,
    };
    let both = TestServer::start(None, move |req| match req.header("authorization") {
        Some(h) if h.starts_with("Digest") => echo(req),
        _ => Response::new(401)
            .header("WWW-Authenticate", &auth::basic_challenge("acs"))
            .header("WWW-Authenticate", &ds.challenge("n0nce", false)),
    });
    let mut t = Transport::new(config(both.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"inform").unwrap().status, 200);
}

/// An https server that asks for Digest (any answer passes) on every path but `/open`; a body
/// `move` is answered 307 to `to` + `/acs`, a path `/same` 307 to `/final` on the same server.
fn digest_any(pki: &Pki, to: Option<String>) -> TestServer {
    let ds = DigestServer {
        realm: "acs".into(),
        algorithm: Algorithm::Md5,
        opaque: None,
    };
    TestServer::start(Some(pki.server_tls()), move |req| {
        if req.path == "/same" {
            return Response::new(307).header("Location", "/final");
        }
        if req.header("authorization").is_none() && req.path != "/open" {
            return Response::new(401).header("WWW-Authenticate", &ds.challenge("n0nce", false));
        }
        match &to {
            Some(to) if req.body == b"move" => {
                Response::new(307).header("Location", &format!("{to}/acs"))
            }
            _ => echo(req),
        }
    })
}

#[test]
fn credentials_go_only_to_the_configured_acs_origin() {
    let pki = Pki::new();
    // Another port of the same host is another origin.
    let other = digest_any(&pki, None);
    let acs = digest_any(&pki, Some(other.url("")));
    assert_ne!(acs.url(""), other.url(""));

    // The session authenticates with the ACS, then the ACS redirects to the other server, which
    // asks for credentials: none are sent to it, pre-authorized or answered.
    let mut t = Transport::new(config(acs.url("/acs"), &pki.ca_file)).unwrap();
    assert_eq!(t.post(b"inform").unwrap().status, 200);
    let e = expect_err(t.post(b"move"));
    assert!(matches!(e, TransportError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("only sent to"), "{e}");
    assert!(e.to_string().contains(&acs.url("")), "{e}");
    let seen = other.requests();
    assert_eq!(seen.len(), 1, "one request, no answer to the challenge");
    assert!(seen.iter().all(|r| r.header("authorization").is_none()));

    // A fresh session redirected there at once: the same.
    t.end_session();
    let mut t = Transport::new(config(acs.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"move"));
    assert!(e.to_string().contains("only sent to"), "{e}");
    assert!(other
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));

    // A redirect within the ACS origin keeps authenticating.
    let mut t = Transport::new(config(acs.url("/same"), &pki.ca_file)).unwrap();
    let r = t.post(b"inform").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"inform"[..]));
    let reqs = acs.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.path, "/final");
    assert_eq!(param(last, "uri").as_deref(), Some("/final"));
}

#[test]
fn a_refused_password_is_named_as_such() {
    let pki = Pki::new();
    // GenieACS answers wrong credentials with a 401 that has no new challenge, and closes.
    let ds = DigestServer {
        realm: "acs".into(),
        algorithm: Algorithm::Md5,
        opaque: None,
    };
    let server = TestServer::start(Some(pki.server_tls()), move |req| {
        if req.header("authorization").is_some() {
            Response::new(401).body("Unauthorized").close()
        } else {
            Response::new(401).header("WWW-Authenticate", &ds.challenge("n0nce", false))
        }
    });
    let mut t = Transport::new(config(server.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"inform"));
    assert!(matches!(e, TransportError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("refused the credentials"), "{e}");
    assert_eq!(server.requests().len(), 2);

    // A 401 without a challenge to a request without credentials is not a refused password.
    let bare = TestServer::start(Some(pki.server_tls()), |_| Response::new(401));
    let mut t = Transport::new(config(bare.url("/acs"), &pki.ca_file)).unwrap();
    let e = expect_err(t.post(b"inform"));
    assert!(
        e.to_string().contains("without a usable WWW-Authenticate"),
        "{e}"
    );
}
