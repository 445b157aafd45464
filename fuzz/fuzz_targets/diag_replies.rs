//! Fuzzes what the diagnostics read from the network: a DNS response (`diag::dns::parse`, A,
//! AAAA and the XMPP connection's SRV) and an ICMP message (`diag::icmp::parse`, with and without an IPv4 header, v4 and v6).
//! Besides "no panic, no hang, no unbounded memory", it checks:
//!
//! - a DNS response that parses answers our question: its canonical name is the asked one or
//!   a name read from the bytes (at most 255 bytes), and it holds at most one address per 4
//!   bytes of input;
//! - the response to the query the codec itself writes (the question echoed, no answer)
//!   parses with RCODE 0 and no address;
//! - an ICMP message that parses as an echo reply came from at least 8 bytes;
//! - a TR-143 server's response: its head's end is found the same whether the bytes come at
//!   once or in two pieces, the head's framing is read or refused without panic, and chunked
//!   coding counts the same body bytes (and the same end) however it is cut, never more than
//!   it was given.
//!
//! Seeds: `corpus/diag_replies/` (a query echoed as an answer, an answer with a compressed
//! CNAME chain, an ICMP echo reply with its IPv4 header).
#![no_main]

use cwmpd::diag::http::fuzzing as tr143;
use cwmpd::diag::{dns, icmp};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "www.example.test";

fuzz_target!(|data: &[u8]| {
    for qtype in [dns::TYPE_A, dns::TYPE_AAAA, dns::TYPE_SRV] {
        let id = data
            .get(..2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        if let Ok(r) = dns::parse(data, id, NAME, qtype) {
            assert!(r.canonical.len() <= 255, "{r:?}");
            assert!(r.addresses.len() <= data.len() / 4, "{r:?}");
            // Each SRV record holds 6 bytes and a name of at least one.
            assert!(r.services.len() <= data.len() / 7, "{r:?}");
            assert!(r.services.iter().all(|s| s.target.len() <= 255), "{r:?}");
        }
    }
    let mut echoed = dns::query(7, NAME, dns::TYPE_A).unwrap();
    echoed[2] |= 0x80;
    let r = dns::parse(&echoed, 7, NAME, dns::TYPE_A).unwrap();
    assert_eq!((r.rcode, r.addresses.len()), (0, 0));
    for (v6, ip) in [(false, false), (false, true), (true, false)] {
        if let Some(icmp::Message::EchoReply { .. }) = icmp::parse(v6, ip, data) {
            assert!(data.len() >= icmp::HEADER);
        }
    }
    let cut = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let (whole, pieces) = tr143::head_end(data, cut);
    assert_eq!(whole, pieces, "cut at {cut}");
    if let Some(end) = whole {
        let _ = tr143::framing(&data[..end]);
    }
    if let [Ok((n, done)), Ok((m, done2))] = tr143::chunked(data, cut) {
        assert_eq!((n, done), (m, done2), "cut at {cut}");
        assert!(n <= data.len());
    }
});
