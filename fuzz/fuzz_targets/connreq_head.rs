//! Fuzzes the Connection Request listener's request reading (TR-069 §3.2.2, RFC 9112) on
//! arbitrary bytes, the way `connreq::listener` does it: leading empty lines skipped
//! ([`http::skip_leading_newlines`]), the head delimited ([`http::head_end`]) and parsed
//! ([`http::parse_head`]), the request-target and Host split ([`http::target_path`],
//! [`split_authority`]), the gate's decision ([`Gate::decide`]) and the answer written
//! ([`http::response`]), for every pipelined request in the input.
//!
//! When the gate challenges a request, the Digest answer a client computes for the same head
//! (and the Basic one, when allowed) must be accepted, and a replay of it must be refused as
//! stale. Requests come from a few sources in turn (IPv4, two IPv6 addresses of one /64, an
//! IPv4-mapped IPv6 address), each charged with its failures by the gate's throttle, whose
//! burst is large enough that a correct answer is never throttled here. Nothing may panic.
#![no_main]

use cwmpd::http::auth::{self, Algorithm, DigestSession};
use cwmpd::connreq::gate::{Gate, GateConfig, Outcome};
use cwmpd::connreq::http::{self, Head};
use cwmpd::http::url::split_authority;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

const USER: &str = "cr-user";
const PASS: &str = "cr-pass";

fuzz_target!(|data: &[u8]| {
    let mut digest_only = Gate::new(config(Algorithm::Md5, false), &[7; 32]);
    let mut with_basic = Gate::new(config(Algorithm::Sha256, true), &[9; 32]);
    let mut buf = data;
    let mut now_ms = 1_000u64;
    let peers: [IpAddr; 4] = [
        [192, 0, 2, 7].into(),
        "2001:db8::1".parse().expect("address"),
        "2001:db8::2".parse().expect("address"),
        "::ffff:192.0.2.7".parse().expect("address"),
    ];
    // At most as many requests as a connection may carry (listener: MAX_REQUESTS_PER_CONNECTION).
    for n in 0..16 {
        let peer = peers[n % peers.len()];
        buf = buf
            .get(http::skip_leading_newlines(buf)..)
            .unwrap_or_default();
        let Some(end) = http::head_end(buf) else {
            // An incomplete head: the listener reads on; parse what there is anyway.
            let _ = http::parse_head(buf);
            return;
        };
        assert!(end <= buf.len(), "head_end beyond the buffer");
        let (raw, rest) = buf.split_at(end);
        buf = rest;
        let Ok(head) = http::parse_head(raw) else {
            let _ = http::response(http::Version::Http11, 400, &[], true);
            continue;
        };
        if let Some((authority, path)) = http::target_path(head.target) {
            assert!(head.target.contains(path) || path == "/");
            if let Some(a) = authority {
                let _ = split_authority(a);
            }
        }
        if let Some(h) = head.host {
            let _ = split_authority(h);
        }
        now_ms += 10;
        for gate in [&mut digest_only, &mut with_basic] {
            let reply = gate.decide(&head, peer, now_ms, [1, 2, 3, 4, 5, 6, 7, 8], false);
            let _ = http::response(head.version, reply.status, &reply.challenges, reply.close);
            if reply.status == 401 {
                answer_challenge(gate, &head, peer, &reply.challenges, now_ms);
            }
        }
    }
});

/// The gate's settings: path `/cr`, host `192.0.2.1:7547`, a generous rate limit.
fn config(algorithm: Algorithm, allow_basic: bool) -> GateConfig {
    GateConfig {
        path: "/cr".into(),
        host: "192.0.2.1".into(),
        port: 7547,
        check_host: true,
        username: USER.into(),
        password: PASS.into(),
        realm: "cwmpd \"cr\"".into(),
        algorithm,
        allow_basic,
        nonce_lifetime_ms: 30_000,
        rate_burst: 1_000,
        rate_interval_ms: 1,
        fail_burst: 1_000,
        fail_interval_ms: 1,
    }
}

/// Answers a `401` as a client would and checks that the answer is accepted, once.
fn answer_challenge(
    gate: &mut Gate,
    head: &Head<'_>,
    peer: IpAddr,
    challenges: &[String],
    now_ms: u64,
) {
    let Some(first) = challenges.first() else {
        panic!("401 without a challenge");
    };
    let parsed = match auth::parse_challenges(first) {
        Ok(p) => p,
        Err(e) => panic!("the gate's challenge does not parse: {e}: {first}"),
    };
    let Some(c) = parsed.first() else {
        panic!("the gate's challenge is empty: {first}");
    };
    let mut session = match DigestSession::new(c, "f00dcafe") {
        Ok(s) => s,
        Err(e) => panic!("the gate's challenge cannot be answered: {e}: {first}"),
    };
    let authorization = session.authorization(head.method, head.target, USER, PASS);
    // A request-target near the header limit makes an Authorization over the limit: refused by
    // design, not a finding.
    if authorization.len() <= auth::MAX_HEADER_LEN {
        let answered = Head {
            authorization: Some(&authorization),
            ..head.clone()
        };
        let reply = gate.decide(&answered, peer, now_ms + 1, [0; 8], false);
        assert_eq!(
            reply.outcome,
            Outcome::Accepted,
            "a correct Digest answer was not accepted: {answered:?}"
        );
        let replay = gate.decide(&answered, peer, now_ms + 2, [0; 8], false);
        assert_eq!(
            replay.outcome,
            Outcome::Stale,
            "a replayed Digest answer was not refused as stale"
        );
    }
    if gate.config().allow_basic {
        let basic = auth::basic_authorization(USER, PASS);
        let answered = Head {
            authorization: Some(&basic),
            ..head.clone()
        };
        let reply = gate.decide(&answered, peer, now_ms + 3, [0; 8], true);
        assert_eq!(reply.outcome, Outcome::Coalesced, "Basic was not accepted");
    }
}
