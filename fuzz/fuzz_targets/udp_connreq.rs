//! Fuzzes what the internet sends to the CPE's UDP Connection Request port (TR-069 Annex G):
//! the UDP Connection Request (`connreq::udp::parse` and `Replay::check`) and the STUN
//! server's answers (`stun::msg::parse`, with the transaction the bytes carry, so that the
//! attributes are read). Besides "no panic, no hang, no
//! unbounded memory", it checks:
//!
//! - a datagram that parses is at most `MAX_DATAGRAM` bytes and its fields within `MAX_FIELD`;
//! - a fuzzed datagram never passes `check` under a password it was not signed with (the
//!   signature is verified before anything else), and one that does pass once is a replay
//!   the second time;
//! - the same fields signed with the password (`udp::signature`) pass;
//! - a STUN response that gives an address came from a Binding Response of at least 28 bytes.
//!
//! Seeds: `corpus/udp_connreq/` (Annex G's example request).
#![no_main]

use cwmpd::connreq::udp::{self, Refusal, Replay};
use cwmpd::stun::msg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(t) = data.get(4..20).and_then(|t| <[u8; 16]>::try_from(t).ok()) {
        if let Ok(msg::Response::Binding(_)) = msg::parse(data, &t) {
            assert!(data.len() >= 28 && data[..2] == [1, 1]);
        }
    }
    let Ok(r) = udp::parse(data) else {
        return;
    };
    assert!(data.len() <= udp::MAX_DATAGRAM);
    assert!(r.id.len() <= udp::MAX_FIELD && r.un.len() <= udp::MAX_FIELD);
    let mut replay = Replay::default();
    // A fuzzed signature is no key's: refused before the username or the time are looked at.
    assert_eq!(
        replay.check(&r, &r.un, "the CPE's password", None, 60),
        Err(Refusal::Signature)
    );
    let signed = udp::UdpRequest {
        sig: udp::signature("pw", r.ts, &r.id, &r.un, &r.cn),
        ..r.clone()
    };
    assert_eq!(replay.check(&signed, &r.un, "pw", Some(r.ts), 0), Ok(()));
    assert_eq!(
        replay.check(&signed, &r.un, "pw", Some(r.ts), 0),
        Err(Refusal::Replay)
    );
});
