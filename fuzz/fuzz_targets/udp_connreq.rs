//! Fuzzes the UDP Connection Request (TR-069 Annex G), what the internet sends to the CPE's
//! UDP port: `connreq::udp::parse` and `Replay::check`. Besides "no panic, no hang, no
//! unbounded memory", it checks:
//!
//! - a datagram that parses is at most `MAX_DATAGRAM` bytes and its fields within `MAX_FIELD`;
//! - a fuzzed datagram never passes `check` under a password it was not signed with (the
//!   signature is verified before anything else), and one that does pass once is a replay
//!   the second time;
//! - the same fields signed with the password (`udp::signature`) pass.
//!
//! Seeds: `corpus/udp_connreq/` (Annex G's example request).
#![no_main]

use cwmpd::connreq::udp::{self, Refusal, Replay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
