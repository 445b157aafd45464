//! Fuzzes the rtnetlink parse (`datamodel::backend::netlink::wire::parse`) on arbitrary bytes,
//! as if they were one datagram from a `NETLINK_ROUTE` socket. Besides "no panic, no hang, no
//! unbounded memory", it checks what the harness can tell on its own by walking the
//! `nlmsghdr` lengths (netlink(7): `nlmsg_len` at the start of each message, messages
//! `NLMSG_ALIGN`ed to 4 bytes):
//!
//! - a parse that succeeds returns one message per header the harness walks, with each
//!   header's `nlmsg_seq` and `nlmsg_flags`, so at most one per 16 bytes;
//! - the parse of a prefix cut at a message boundary is the prefix of the messages (each
//!   message is parsed on its own bytes only);
//! - every dump request (`wire::dump_request`) parses back as one `Msg::Other` of its type,
//!   with its sequence number and `NLM_F_REQUEST | NLM_F_DUMP`.
//!
//! Seeds: `corpus/netlink_parse/`, real datagrams of the kernel (dumps of links, addresses,
//! routes, neighbours and the bridge FDB, and multicast change messages) captured from a
//! namespace by `fuzz/netlink_capture.py`.
#![no_main]

use cwmpd::datamodel::backend::netlink::wire::{self, Dump, Msg};
use libfuzzer_sys::fuzz_target;

/// (offset, nlmsg_len, seq, flags) of each message, or None where the harness sees the
/// datagram is malformed.
fn walk(data: &[u8]) -> Option<Vec<(usize, usize, u32, u16)>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < data.len() {
        let h = data.get(off..off + 16)?;
        let len = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as usize;
        let flags = u16::from_ne_bytes(h[6..8].try_into().unwrap());
        let seq = u32::from_ne_bytes(h[8..12].try_into().unwrap());
        if len < 16 || len > data.len() - off {
            return None;
        }
        out.push((off, len, seq, flags));
        off = (off + ((len + 3) & !3)).min(data.len());
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let parsed = wire::parse(data);
    let walked = walk(data);
    if let Ok(msgs) = &parsed {
        let walked = walked.as_ref().expect("parse accepted what the header walk rejects");
        assert_eq!(msgs.len(), walked.len());
        assert!(msgs.len() <= data.len() / 16);
        for ((seq, flags, _), (_, _, wseq, wflags)) in msgs.iter().zip(walked) {
            assert_eq!((*seq, *flags), (*wseq, *wflags));
        }
        // A prefix at each message boundary: the prefix of the messages.
        for (k, (off, _, _, _)) in walked.iter().enumerate().skip(1) {
            let prefix = wire::parse(&data[..*off]).expect("a prefix of a valid datagram");
            assert_eq!(&prefix[..], &msgs[..k]);
        }
    } else if let Some(walked) = &walked {
        // A malformed message makes the whole datagram fail, whatever comes after it: the
        // datagram cut after that message fails too.
        let first_bad = walked
            .iter()
            .position(|(off, len, _, _)| wire::parse(&data[*off..*off + *len]).is_err());
        assert!(first_bad.is_some(), "every message parses alone but not together");
    }

    // The requests cwmpd sends parse back.
    let seq = data.first().map_or(0, |b| u32::from(*b) << 8 | 7);
    for kind in [Dump::Links, Dump::Addrs, Dump::Routes, Dump::Neighs] {
        let req = wire::dump_request(kind, data.get(1).copied().unwrap_or(0), seq);
        let back = wire::parse(&req).expect("our own request");
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].0, back[0].1), (seq, wire::NLM_F_REQUEST | wire::NLM_F_DUMP));
        assert!(matches!(back[0].2, Msg::Other(_)));
    }
});
