//! What the Connection Request listener answers (TR-069 §3.2.2), as a pure function of a parsed
//! request head, the time and random bytes.
//!
//! The checks, in order: method, path and Host (`404`, no detail), a body (`413`), the source's
//! failure allowance ([`super::throttle`]: `503` without a verdict once it is spent), HTTP
//! Digest authentication with `qop="auth"` (RFC 7616; `401` with a fresh challenge,
//! `stale=true` for an expired nonce or a replayed nonce count; never accepted while the
//! password is empty), Basic only when configured (RFC 7617), then the
//! session policy: a request while a session is pending or running joins it (`200`, §3.2.2:
//! "only one session"), otherwise a token of the rate limit is taken (`200`, a session starts)
//! or there is none (`503` without `Retry-After`, as §3.2.2 asks).
//!
//! Nonces need no table: each one carries its issue time and an HMAC-SHA-256 under a key drawn
//! from the CSPRNG when the listener starts, so an unauthenticated flood costs no memory. Only
//! nonces that authenticated a request are remembered (with their highest nonce count, a bounded
//! table), which is what replay detection needs.

use std::net::IpAddr;

use ring::hmac;

use super::http::{self, Head};
use super::throttle::{Source, Throttle};
use crate::http::auth::{self, Algorithm, DigestServer, NonceStatus, Verdict};

/// Nonces remembered with their highest nonce count. Only authenticated requests add one.
const MAX_USED_NONCES: usize = 32;
/// Bytes of a nonce before hex: issue time (8), random (8), MAC (16).
const NONCE_BYTES: usize = 32;

/// The policy's settings; replaced as a whole when the ACS changes the credentials or the URL
/// moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// The path of ConnectionRequestURL: the only one served.
    pub path: String,
    /// The host of ConnectionRequestURL (an IPv6 literal in brackets) and its port: the `Host`
    /// a request must name when `check_host` is on.
    pub host: String,
    pub port: u16,
    pub check_host: bool,
    pub username: String,
    pub password: String,
    pub realm: String,
    pub algorithm: Algorithm,
    pub allow_basic: bool,
    /// How long a nonce is good for, in milliseconds.
    pub nonce_lifetime_ms: u64,
    /// Accepted requests that may start a session back to back.
    pub rate_burst: u32,
    /// Milliseconds after which one more may.
    pub rate_interval_ms: u64,
    /// Wrong answers a source may give back to back…
    pub fail_burst: u32,
    /// …then one more per this many milliseconds (0: no throttling).
    pub fail_interval_ms: u64,
}

/// What became of a request: the listener counts these and logs the accepted ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticated; a session is to start (the caller wakes the agent after answering).
    Accepted,
    /// Authenticated while a session was pending or running: joins it.
    Coalesced,
    /// Authenticated, but over the rate limit: `503`.
    RateLimited,
    /// No credentials: the first leg of the Digest exchange.
    Challenged,
    /// Wrong credentials, or an answer to another challenge than ours.
    AuthFailed,
    /// From a source that spent its failure allowance: `503`, nothing verified.
    Throttled,
    /// Right credentials with an expired or replayed nonce.
    Stale,
    /// Another method, path or host.
    NotFound,
    /// A request with a body.
    BodyRefused,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `WWW-Authenticate` values, for `401`.
    pub challenges: Vec<String>,
    /// Close the connection after answering.
    pub close: bool,
    pub outcome: Outcome,
}

/// A nonce that authenticated a request.
#[derive(Debug, Clone)]
struct Used {
    nonce: String,
    issued_ms: u64,
    nc: u32,
}

/// The policy state: configuration, nonce key, replay table and rate limit.
pub struct Gate {
    cfg: GateConfig,
    key: hmac::Key,
    used: Vec<Used>,
    /// Nonces issued at or before this time may have been forgotten by the replay table after
    /// they were used; they count as stale.
    forgotten_until_ms: Option<u64>,
    /// The rate limit as a time allowance (GCRA): one accepted request costs
    /// `rate_interval_ms`; the allowance grows with time up to `rate_burst` requests' worth.
    allowance_ms: u64,
    allowance_at_ms: u64,
    /// Failed authentication per source.
    throttle: Throttle,
}

impl Gate {
    /// A gate with its nonce key (32 bytes from the CSPRNG).
    pub fn new(cfg: GateConfig, key: &[u8; 32]) -> Gate {
        let allowance_ms = full_allowance(&cfg);
        let throttle = Throttle::new(cfg.fail_burst, cfg.fail_interval_ms);
        Gate {
            throttle,
            cfg,
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            used: Vec::new(),
            forgotten_until_ms: None,
            allowance_ms,
            allowance_at_ms: 0,
        }
    }

    /// The current settings.
    pub fn config(&self) -> &GateConfig {
        &self.cfg
    }

    /// New settings (credentials set by the ACS, a new URL). Nonces stay valid; a change of the
    /// rate limit starts it full.
    pub fn reconfigure(&mut self, cfg: GateConfig) {
        let rate_changed = (cfg.rate_burst, cfg.rate_interval_ms)
            != (self.cfg.rate_burst, self.cfg.rate_interval_ms);
        self.throttle
            .configure(cfg.fail_burst, cfg.fail_interval_ms);
        self.cfg = cfg;
        if rate_changed {
            self.allowance_ms = full_allowance(&self.cfg);
        }
    }

    /// The per-source table (the listener counts rejections in it for its summary).
    pub fn throttle(&mut self) -> &mut Throttle {
        &mut self.throttle
    }

    /// Decides the answer to `head` from `peer`. `now_ms` is monotonic milliseconds, `random`
    /// fresh CSPRNG bytes for a nonce, `busy` whether a session is pending or running. The
    /// caller, holding the same lock, marks a session pending on [`Outcome::Accepted`].
    pub fn decide(
        &mut self,
        head: &Head<'_>,
        peer: IpAddr,
        now_ms: u64,
        random: [u8; 8],
        busy: bool,
    ) -> Reply {
        if !self.is_ours(head) {
            return self.plain(404, Outcome::NotFound);
        }
        if head.has_body {
            return self.plain(413, Outcome::BodyRefused);
        }
        let source = Source::of(peer);
        if !self.throttle.allows(source, now_ms) {
            return self.plain(503, Outcome::Throttled);
        }
        let Some(authorization) = head.authorization else {
            return self.challenge(head, now_ms, random, false, Outcome::Challenged);
        };
        let verdict = if self.cfg.password.is_empty() {
            // Nothing to check against: anyone could compute the answer (the listener is not
            // even bound then; this holds while it closes).
            Verdict::Bad
        } else if authorization
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
        {
            if self.cfg.allow_basic
                && auth::verify_basic(authorization, &self.cfg.username, &self.cfg.password)
            {
                Verdict::Ok
            } else {
                Verdict::Bad
            }
        } else {
            let server = self.digest();
            let (username, password) = (self.cfg.username.clone(), self.cfg.password.clone());
            server.verify(
                authorization,
                head.method,
                head.target,
                &username,
                &password,
                |nonce, nc| self.check_nonce(nonce, nc, now_ms),
            )
        };
        match verdict {
            Verdict::Bad => self.throttle.failed(source, now_ms),
            // Right credentials on a fresh nonce: this source is the ACS.
            Verdict::Ok => self.throttle.succeeded(source, now_ms),
            // Right credentials on an old or used nonce prove nothing about this source (a
            // captured answer replayed gives it): neither charged nor forgiven.
            Verdict::Stale => {}
        }
        match verdict {
            Verdict::Bad => self.challenge(head, now_ms, random, false, Outcome::AuthFailed),
            Verdict::Stale => self.challenge(head, now_ms, random, true, Outcome::Stale),
            Verdict::Ok => match self.admit(now_ms, busy) {
                Outcome::RateLimited => self.plain(503, Outcome::RateLimited),
                o => self.plain(200, o),
            },
        }
    }

    /// What becomes of an authenticated request (over TCP, or a UDP Connection Request whose
    /// signature held): it joins the session pending or running (`busy`), starts one within
    /// the rate limit, or is over it.
    pub fn admit(&mut self, now_ms: u64, busy: bool) -> Outcome {
        if busy {
            Outcome::Coalesced
        } else if self.take_token(now_ms) {
            Outcome::Accepted
        } else {
            Outcome::RateLimited
        }
    }

    /// The Digest side of the configuration (the challenge and its verification).
    fn digest(&self) -> DigestServer {
        DigestServer {
            realm: self.cfg.realm.clone(),
            algorithm: self.cfg.algorithm,
            opaque: None,
        }
    }

    /// Method, path and Host are those of ConnectionRequestURL.
    fn is_ours(&self, head: &Head<'_>) -> bool {
        if head.method != "GET" {
            return false;
        }
        let Some((authority, path)) = http::target_path(head.target) else {
            return false;
        };
        if path != self.cfg.path {
            return false;
        }
        if !self.cfg.check_host {
            return true;
        }
        // An absolute-form target names the host too (RFC 9112 §3.2.2); both must match.
        authority.is_none_or(|a| self.is_our_host(a))
            && head.host.is_none_or(|h| self.is_our_host(h))
    }

    fn is_our_host(&self, authority: &str) -> bool {
        let Some((host, port)) = crate::http::url::split_authority(authority) else {
            return false;
        };
        host.eq_ignore_ascii_case(&self.cfg.host) && port.unwrap_or(80) == self.cfg.port
    }

    fn plain(&self, status: u16, outcome: Outcome) -> Reply {
        Reply {
            status,
            challenges: Vec::new(),
            close: true,
            outcome,
        }
    }

    /// `401` with a fresh nonce; the connection stays open for the retry unless the client
    /// closes it.
    fn challenge(
        &self,
        head: &Head<'_>,
        now_ms: u64,
        random: [u8; 8],
        stale: bool,
        outcome: Outcome,
    ) -> Reply {
        let mut challenges = vec![self.digest().challenge(&self.nonce(now_ms, random), stale)];
        if self.cfg.allow_basic {
            challenges.push(auth::basic_challenge(&self.cfg.realm));
        }
        Reply {
            status: 401,
            challenges,
            close: head.close,
            outcome,
        }
    }

    /// A nonce: hex of issue time, random bytes and their MAC.
    fn nonce(&self, now_ms: u64, random: [u8; 8]) -> String {
        let mut b = [0u8; NONCE_BYTES];
        b[..8].copy_from_slice(&now_ms.to_be_bytes());
        b[8..16].copy_from_slice(&random);
        let tag = hmac::sign(&self.key, &b[..16]);
        b[16..].copy_from_slice(&tag.as_ref()[..16]);
        auth::hex(&b)
    }

    /// Whether a nonce presented with correct credentials is ours, fresh and not replayed;
    /// records its nonce count when it is.
    fn check_nonce(&mut self, nonce: &str, nc: u32, now_ms: u64) -> NonceStatus {
        let Some(b) = unhex::<NONCE_BYTES>(nonce) else {
            return NonceStatus::Unknown;
        };
        let tag = hmac::sign(&self.key, &b[..16]);
        // The tag is truncated, so ring's verify cannot be used: compare the prefix in
        // constant time.
        if !auth::constant_time_eq(&tag.as_ref()[..16], &b[16..]) {
            return NonceStatus::Unknown;
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[..8]);
        let issued_ms = u64::from_be_bytes(t);
        if now_ms.saturating_sub(issued_ms) > self.cfg.nonce_lifetime_ms {
            return NonceStatus::Stale;
        }
        // Keyed on the decoded bytes: the same nonce in another case is the same nonce.
        let nonce = auth::hex(&b);
        if let Some(u) = self.used.iter_mut().find(|u| u.nonce == nonce) {
            if nc <= u.nc {
                return NonceStatus::Stale;
            }
            u.nc = nc;
            return NonceStatus::Valid;
        }
        if self.forgotten_until_ms.is_some_and(|f| issued_ms <= f) {
            return NonceStatus::Stale;
        }
        if self.used.len() >= MAX_USED_NONCES {
            // Forget the oldest; anything issued up to it can no longer be checked for replay.
            if let Some(i) = (0..self.used.len()).min_by_key(|&i| self.used[i].issued_ms) {
                let gone = self.used.swap_remove(i);
                self.forgotten_until_ms =
                    Some(self.forgotten_until_ms.unwrap_or(0).max(gone.issued_ms));
            }
        }
        self.used.push(Used {
            nonce,
            issued_ms,
            nc,
        });
        NonceStatus::Valid
    }

    /// Takes one request's worth of the rate allowance, if there is one.
    fn take_token(&mut self, now_ms: u64) -> bool {
        let full = full_allowance(&self.cfg);
        let elapsed = now_ms.saturating_sub(self.allowance_at_ms);
        self.allowance_ms = self.allowance_ms.saturating_add(elapsed).min(full);
        self.allowance_at_ms = now_ms.max(self.allowance_at_ms);
        let cost = self.cfg.rate_interval_ms;
        if self.allowance_ms >= cost {
            self.allowance_ms -= cost;
            true
        } else {
            false
        }
    }
}

fn full_allowance(cfg: &GateConfig) -> u64 {
    u64::from(cfg.rate_burst).saturating_mul(cfg.rate_interval_ms)
}

/// Decodes exactly `N` bytes of hex (either case).
pub(super) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connreq::http::parse_head;
    use crate::http::auth::{parse_challenges, DigestSession};

    fn cfg() -> GateConfig {
        GateConfig {
            path: "/cr".into(),
            host: "10.0.0.1".into(),
            port: 7547,
            check_host: true,
            username: "acs".into(),
            password: "secret".into(),
            realm: "cwmpd".into(),
            algorithm: Algorithm::Md5,
            allow_basic: false,
            nonce_lifetime_ms: 30_000,
            rate_burst: 2,
            rate_interval_ms: 5_000,
            fail_burst: 20,
            fail_interval_ms: 10_000,
        }
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn gate() -> Gate {
        Gate::new(cfg(), &[7u8; 32])
    }

    fn get(target: &str, host: &str, authorization: Option<&str>) -> String {
        let mut s = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
        if let Some(a) = authorization {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        s + "\r\n"
    }

    fn decide(g: &mut Gate, raw: &str, now: u64, busy: bool) -> Reply {
        let head = parse_head(raw.as_bytes()).expect("head");
        g.decide(&head, PEER, now, [now as u8; 8], busy)
    }

    /// The client side of one Digest exchange, as an ACS does it.
    fn answer(reply: &Reply, user: &str, pass: &str, uri: &str) -> (DigestSession, String) {
        let ch = parse_challenges(&reply.challenges[0]).unwrap();
        let mut s = DigestSession::new(&ch[0], "0a4f113b").unwrap();
        let a = s.authorization("GET", uri, user, pass);
        (s, a)
    }

    #[test]
    fn challenge_then_accept() {
        let mut g = gate();
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 0, false);
        assert_eq!(
            (r.status, r.outcome, r.close),
            (401, Outcome::Challenged, false)
        );
        assert!(r.challenges[0]
            .starts_with("Digest realm=\"cwmpd\", qop=\"auth\", algorithm=MD5, nonce=\""));
        assert!(!r.challenges[0].contains("stale"));
        let (_, a) = answer(&r, "acs", "secret", "/cr");
        let ok = decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), 10, false);
        assert_eq!(
            (ok.status, ok.outcome, ok.close),
            (200, Outcome::Accepted, true)
        );
        // The same answer again is a replay: stale, and no session.
        let again = decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), 20, false);
        assert_eq!((again.status, again.outcome), (401, Outcome::Stale));
        assert!(again.challenges[0].ends_with("stale=true"));
    }

    #[test]
    fn next_nonce_count_on_the_same_nonce_is_accepted() {
        let mut g = gate();
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 0, false);
        let (mut s, a1) = answer(&r, "acs", "secret", "/cr");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a1)), 1, false).status,
            200
        );
        let a2 = s.authorization("GET", "/cr", "acs", "secret");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a2)), 2, true).outcome,
            Outcome::Coalesced
        );
    }

    #[test]
    fn failures_are_401_without_stale() {
        let mut g = gate();
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 0, false);
        for (user, pass, uri) in [
            ("acs", "wrong", "/cr"),
            ("other", "secret", "/cr"),
            ("acs", "secret", "/cr?x"),
        ] {
            let (_, a) = answer(&r, user, pass, uri);
            let bad = decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), 5, false);
            assert_eq!(
                (bad.status, bad.outcome),
                (401, Outcome::AuthFailed),
                "{user} {pass} {uri}"
            );
            assert!(!bad.challenges[0].contains("stale"));
        }
        // Missing qop (RFC 2069 style) is refused: the challenge demanded qop=auth.
        let (_, a) = answer(&r, "acs", "secret", "/cr");
        let no_qop: String = a
            .split(", ")
            .filter(|p| {
                !p.starts_with("qop=") && !p.starts_with("nc=") && !p.starts_with("cnonce=")
            })
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            decide(
                &mut g,
                &get("/cr", "10.0.0.1:7547", Some(&no_qop)),
                5,
                false
            )
            .outcome,
            Outcome::AuthFailed
        );
        // A nonce of another key (another agent, or before a restart).
        let other = Gate::new(cfg(), &[8u8; 32]);
        let foreign = decide(&mut { other }, &get("/cr", "10.0.0.1:7547", None), 0, false);
        let (_, a) = answer(&foreign, "acs", "secret", "/cr");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), 5, false).outcome,
            Outcome::AuthFailed
        );
        // Basic is not accepted unless configured.
        let basic = auth::basic_authorization("acs", "secret");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&basic)), 5, false).outcome,
            Outcome::AuthFailed
        );
    }

    #[test]
    fn expired_nonce_is_stale() {
        let mut g = gate();
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 1_000, false);
        let (_, a) = answer(&r, "acs", "secret", "/cr");
        let late = decide(
            &mut g,
            &get("/cr", "10.0.0.1:7547", Some(&a)),
            31_001 + 1,
            false,
        );
        assert_eq!((late.status, late.outcome), (401, Outcome::Stale));
    }

    #[test]
    fn basic_when_allowed() {
        let mut g = Gate::new(
            GateConfig {
                allow_basic: true,
                ..cfg()
            },
            &[1; 32],
        );
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 0, false);
        assert_eq!(r.challenges.len(), 2);
        assert!(r.challenges[1].starts_with("Basic realm=\"cwmpd\""));
        let ok = auth::basic_authorization("acs", "secret");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&ok)), 0, false).status,
            200
        );
        let bad = auth::basic_authorization("acs", "nope");
        assert_eq!(
            decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&bad)), 0, false).status,
            401
        );
    }

    #[test]
    fn other_paths_methods_hosts_and_bodies() {
        let mut g = gate();
        for raw in [
            get("/other", "10.0.0.1:7547", None),
            get("/cr/", "10.0.0.1:7547", None),
            get("/cr", "evil.example", None),
            get("/cr", "10.0.0.1:80", None),
            get("/cr", "10.0.0.1", None),
            get("http://evil/cr", "10.0.0.1:7547", None),
            get("*", "10.0.0.1:7547", None),
            "POST /cr HTTP/1.1\r\nHost: 10.0.0.1:7547\r\n\r\n".into(),
            "HEAD /cr HTTP/1.1\r\nHost: 10.0.0.1:7547\r\n\r\n".into(),
        ] {
            let r = decide(&mut g, &raw, 0, false);
            assert_eq!(
                (r.status, r.outcome, r.close),
                (404, Outcome::NotFound, true),
                "{raw}"
            );
        }
        let ok = decide(&mut g, &get("/cr?x=1", "10.0.0.1:7547", None), 0, false);
        assert_eq!(ok.status, 401);
        let ok = decide(
            &mut g,
            &get("http://10.0.0.1:7547/cr", "10.0.0.1:7547", None),
            0,
            false,
        );
        assert_eq!(ok.status, 401);
        let ok = decide(&mut g, "GET /cr HTTP/1.0\r\n\r\n", 0, false);
        assert_eq!((ok.status, ok.close), (401, true));
        let body = "GET /cr HTTP/1.1\r\nHost: 10.0.0.1:7547\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(decide(&mut g, body, 0, false).status, 413);
        let mut g = Gate::new(
            GateConfig {
                check_host: false,
                ..cfg()
            },
            &[1; 32],
        );
        assert_eq!(
            decide(&mut g, &get("/cr", "anything", None), 0, false).status,
            401
        );
    }

    #[test]
    fn rate_limit_burst_then_one_per_interval() {
        let mut g = gate();
        let at = |g: &mut Gate, now: u64| {
            let r = decide(g, &get("/cr", "10.0.0.1:7547", None), now, false);
            let (_, a) = answer(&r, "acs", "secret", "/cr");
            decide(g, &get("/cr", "10.0.0.1:7547", Some(&a)), now, false).status
        };
        assert_eq!(at(&mut g, 100), 200);
        assert_eq!(at(&mut g, 200), 200);
        assert_eq!(at(&mut g, 300), 503);
        // One more as soon as five seconds' worth of allowance has built up again.
        assert_eq!(at(&mut g, 5_000), 503);
        assert_eq!(at(&mut g, 5_100), 200);
        assert_eq!(at(&mut g, 5_300), 503);
        assert_eq!(at(&mut g, 60_000), 200);
        assert_eq!(at(&mut g, 60_001), 200);
        assert_eq!(at(&mut g, 60_002), 503);
    }

    #[test]
    fn replay_table_is_bounded_and_forgotten_nonces_are_stale() {
        let mut g = gate();
        let mut first = None;
        for i in 0..(MAX_USED_NONCES as u64 + 5) {
            let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), i, false);
            let (_, a) = answer(&r, "acs", "secret", "/cr");
            assert_eq!(
                decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), i, true).status,
                200
            );
            first.get_or_insert(a);
        }
        assert!(g.used.len() <= MAX_USED_NONCES);
        let replay = decide(
            &mut g,
            &get("/cr", "10.0.0.1:7547", first.as_deref()),
            100,
            true,
        );
        assert_eq!(replay.outcome, Outcome::Stale);
    }

    #[test]
    fn an_empty_password_accepts_nothing() {
        let mut g = Gate::new(
            GateConfig {
                username: String::new(),
                password: String::new(),
                ..cfg()
            },
            &[3; 32],
        );
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", None), 0, false);
        let (_, a) = answer(&r, "", "", "/cr");
        let r = decide(&mut g, &get("/cr", "10.0.0.1:7547", Some(&a)), 1, false);
        assert_eq!((r.status, r.outcome), (401, Outcome::AuthFailed));
    }

    #[test]
    fn a_failing_source_is_throttled_and_others_are_not() {
        let mut g = Gate::new(
            GateConfig {
                fail_burst: 3,
                ..cfg()
            },
            &[4; 32],
        );
        let attacker = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));
        let ask = |g: &mut Gate, peer: IpAddr, pass: &str, now: u64| {
            let raw = get("/cr", "10.0.0.1:7547", None);
            let head = parse_head(raw.as_bytes()).expect("head");
            let r = g.decide(&head, peer, now, [1; 8], false);
            if r.status != 401 {
                return r;
            }
            let (_, a) = answer(&r, "acs", pass, "/cr");
            let raw = get("/cr", "10.0.0.1:7547", Some(&a));
            let head = parse_head(raw.as_bytes()).expect("head");
            g.decide(&head, peer, now, [2; 8], true)
        };
        for _ in 0..3 {
            assert_eq!(
                ask(&mut g, attacker, "guess", 0).outcome,
                Outcome::AuthFailed
            );
        }
        // Spent: nothing is verified, not even the right password.
        let r = ask(&mut g, attacker, "guess", 0);
        assert_eq!(
            (r.status, r.outcome, r.close),
            (503, Outcome::Throttled, true)
        );
        assert_eq!(
            ask(&mut g, attacker, "secret", 0).outcome,
            Outcome::Throttled
        );
        // The ACS elsewhere gets in, again and again.
        for now in [0, 1, 2] {
            assert_eq!(ask(&mut g, PEER, "secret", now).outcome, Outcome::Coalesced);
        }
        // One more guess per interval.
        assert_eq!(
            ask(&mut g, attacker, "guess", 10_000).outcome,
            Outcome::AuthFailed
        );
        assert_eq!(
            ask(&mut g, attacker, "guess", 10_000).outcome,
            Outcome::Throttled
        );
    }

    /// A captured answer replayed from another address is stale: it proves nothing about that
    /// source, which is neither forgiven its failures nor trusted (before, it was both, and
    /// interleaving replays with guesses defeated the throttle).
    #[test]
    fn a_replayed_answer_neither_forgives_nor_trusts_a_source() {
        let mut g = Gate::new(
            GateConfig {
                fail_burst: 3,
                ..cfg()
            },
            &[5; 32],
        );
        let attacker = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));
        let plain = get("/cr", "10.0.0.1:7547", None);
        let first = parse_head(plain.as_bytes()).expect("head");
        let r = g.decide(&first, PEER, 0, [1; 8], false);
        let (_, captured) = answer(&r, "acs", "secret", "/cr");
        let raw = get("/cr", "10.0.0.1:7547", Some(&captured));
        let good = parse_head(raw.as_bytes()).expect("head");
        assert_eq!(
            g.decide(&good, PEER, 0, [2; 8], false).outcome,
            Outcome::Accepted
        );
        let guess = |g: &mut Gate| {
            let r = g.decide(&first, attacker, 0, [3; 8], true);
            if r.status != 401 {
                return r.outcome;
            }
            let (_, a) = answer(&r, "acs", "guess", "/cr");
            let raw = get("/cr", "10.0.0.1:7547", Some(&a));
            let head = parse_head(raw.as_bytes()).expect("head");
            g.decide(&head, attacker, 0, [4; 8], true).outcome
        };
        for _ in 0..2 {
            assert_eq!(guess(&mut g), Outcome::AuthFailed);
        }
        assert_eq!(
            g.decide(&good, attacker, 0, [5; 8], true).outcome,
            Outcome::Stale
        );
        assert_eq!(guess(&mut g), Outcome::AuthFailed);
        assert_eq!(guess(&mut g), Outcome::Throttled);
        let trusted = g.throttle().trusted(8);
        assert_eq!(trusted, vec![Source::of(PEER)]);
    }

    #[test]
    fn junk_authorization_never_panics() {
        let mut g = gate();
        for a in [
            "",
            "Digest",
            "Digest ,,,",
            "Digest nonce=\"zz\"",
            "Basic",
            "Basic !!!",
            "Digest nonce=\"\u{e9}\u{e9}\"",
        ] {
            let raw = get("/cr", "10.0.0.1:7547", Some(a));
            if let Ok(head) = parse_head(raw.as_bytes()) {
                assert_eq!(g.decide(&head, PEER, 0, [0; 8], false).status, 401, "{a}");
            }
        }
        assert_eq!(unhex::<2>("0g00"), None);
        assert_eq!(unhex::<2>("00e9"), Some([0, 0xe9]));
    }
}
