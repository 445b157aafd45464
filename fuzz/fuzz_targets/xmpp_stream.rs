//! Fuzzes what an XMPP server (or whoever sits in its place before TLS) sends the CPE: the
//! stream cut into stanzas by `xmpp::stream::Splitter` (the bytes fed in chunks whose sizes the
//! first byte picks) and each stanza read by `xmpp::connreq::read`. Besides "no panic, no hang,
//! no unbounded memory", it checks that a stanza handed out is within `MAX_STANZA` and that the
//! same bytes fed whole give the same events.
//!
//! Seeds: `corpus/xmpp_stream/` (a server's features and an Annex K connection request).
#![no_main]

use cwmpd::xmpp::{connreq, stream};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> Result<Vec<stream::Event>, stream::StreamError> {
    let mut s = stream::Splitter::new();
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        s.push(c)?;
        while let Some(e) = s.next_event()? {
            if let stream::Event::Stanza(t) = &e {
                assert!(t.len() <= stream::MAX_STANZA + 1024);
                let _ = connreq::read(t);
            }
            out.push(e);
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunked = run(rest, usize::from(first % 17) + 1);
    let whole = run(rest, rest.len());
    if let (Ok(a), Ok(b)) = (&chunked, &whole) {
        assert_eq!(a, b);
    }
});
