//! Failed authentication throttled per source, in a table of fixed size (pure: time is an
//! argument).
//!
//! A source is an IPv4 address or an IPv6 /64 (one subscriber's prefix: the addresses inside
//! it cost an attacker nothing), or the bare JID an XMPP connection request came from (the
//! XMPP server vouches for it; kept as 8 bytes of its SHA-256). Each source has an allowance of failures (GCRA, like the
//! session rate limit): `burst` wrong answers back to back, then one more per `interval`. A
//! source without room for one more failure gets no verdict on any request (the listener
//! answers `503` without looking at it), so guessing from it runs at one guess per `interval`;
//! other sources are not affected. A source that authenticates is forgiven its failures and
//! marked trusted: it keeps its entry when the table is full. The agent keeps the few most
//! recently trusted sources in its state and hands them back at start ([`Throttle::trust`]), so
//! an attacker who fills the table with debtors after a restart cannot lock the ACS out.
//!
//! The table holds at most [`MAX_SOURCES`] entries, allocated once. A new source takes a free
//! entry, else the entry of an untrusted source with no debt (nothing is lost), else the
//! untrusted entry with the most allowance, whose allowance it inherits: rotating through
//! more addresses than the table holds buys no fresh bursts, so all sources together get at
//! most `MAX_SOURCES` failures per `interval` once the table is full of debtors. The same table
//! counts each source's rejected requests for the listener's summary.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Sources remembered at once (about 40 bytes each).
pub const MAX_SOURCES: usize = 128;

/// Where a request came from, as the throttle counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    V4([u8; 4]),
    /// The /64 prefix.
    V6([u8; 8]),
    /// A bare JID (`user@domain`, case folded), by the first 8 bytes of its SHA-256.
    Jid([u8; 8]),
}

impl Source {
    /// The source of a peer address (an IPv4-mapped IPv6 address is its IPv4 address).
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&a.octets()[..8]);
                    Source::V6(p)
                }
            },
        }
    }
}

impl Source {
    /// The source of an XMPP request from `jid` (full or bare: the resource is not counted,
    /// a sender may pick any).
    pub fn of_jid(jid: &str) -> Source {
        let bare = jid.split_once('/').map_or(jid, |(b, _)| b).to_lowercase();
        let digest = ring::digest::digest(&ring::digest::SHA256, bare.as_bytes());
        let mut h = [0u8; 8];
        h.copy_from_slice(&digest.as_ref()[..8]);
        Source::Jid(h)
    }
}

impl std::str::FromStr for Source {
    type Err = ();

    /// What [`Source`]'s `Display` writes: an IPv4 address, an IPv6 prefix with `/64`, or
    /// `xmpp:` and 16 hexadecimal digits.
    fn from_str(s: &str) -> Result<Source, ()> {
        if let Some(hex) = s.strip_prefix("xmpp:") {
            let mut h = [0u8; 8];
            if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            for (i, b) in h.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| ())?;
            }
            return Ok(Source::Jid(h));
        }
        match s.strip_suffix("/64") {
            Some(p) => p.parse::<Ipv6Addr>().map(|a| Source::of(IpAddr::V6(a))),
            None => s.parse::<Ipv4Addr>().map(|a| Source::V4(a.octets())),
        }
        .map_err(|_| ())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(a) => write!(f, "{}", Ipv4Addr::from(*a)),
            Source::V6(p) => {
                let mut o = [0u8; 16];
                o[..8].copy_from_slice(p);
                write!(f, "{}/64", Ipv6Addr::from(o))
            }
            Source::Jid(h) => {
                f.write_str("xmpp:")?;
                h.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    source: Source,
    /// Failures' worth of time the source may still spend, as of `at_ms`.
    allowance_ms: u64,
    at_ms: u64,
    /// Authenticated since it entered the table (or handed back as trusted at start).
    trusted: bool,
    /// When it last authenticated.
    trusted_ms: u64,
    /// Rejected requests since the last summary.
    rejected: u32,
    /// The last time anything was noted for it.
    seen_ms: u64,
}

/// The per-source table.
#[derive(Debug)]
pub struct Throttle {
    entries: Vec<Entry>,
    burst: u32,
    interval_ms: u64,
}

impl Throttle {
    /// `burst` failures back to back, then one per `interval_ms` (0: no throttling).
    pub fn new(burst: u32, interval_ms: u64) -> Throttle {
        Throttle {
            entries: Vec::with_capacity(MAX_SOURCES),
            burst,
            interval_ms,
        }
    }

    /// New settings; the entries stay (an allowance above the new maximum is cut to it).
    pub fn configure(&mut self, burst: u32, interval_ms: u64) {
        self.burst = burst;
        self.interval_ms = interval_ms;
        let full = self.full();
        for e in &mut self.entries {
            e.allowance_ms = e.allowance_ms.min(full);
        }
    }

    fn full(&self) -> u64 {
        u64::from(self.burst).saturating_mul(self.interval_ms)
    }

    fn allowance(&self, e: &Entry, now_ms: u64) -> u64 {
        e.allowance_ms
            .saturating_add(now_ms.saturating_sub(e.at_ms))
            .min(self.full())
    }

    fn find(&self, source: Source) -> Option<usize> {
        self.entries.iter().position(|e| e.source == source)
    }

    /// Whether a request from `source` may be verified now: it has room for one more failure.
    pub fn allows(&self, source: Source, now_ms: u64) -> bool {
        if self.interval_ms == 0 {
            return true;
        }
        let allowance = match self.find(source).and_then(|i| self.entries.get(i)) {
            Some(e) => self.allowance(e, now_ms),
            None if self.entries.len() < MAX_SOURCES => self.full(),
            // What it would inherit.
            None => self.victim(now_ms).map_or(0, |(_, a)| a),
        };
        allowance >= self.interval_ms
    }

    /// The entry a new source takes when the table is full, and the allowance it inherits:
    /// untrusted first; among them one without debt, the fewest rejections, the oldest. Only
    /// when every entry is trusted does the oldest trusted one go.
    fn victim(&self, now_ms: u64) -> Option<(usize, u64)> {
        let full = self.full();
        let i = (0..self.entries.len()).min_by_key(|&i| {
            let e = &self.entries[i];
            let debt = self.allowance(e, now_ms) < full;
            (e.trusted, debt, e.rejected, e.seen_ms)
        })?;
        Some((i, self.allowance(&self.entries[i], now_ms)))
    }

    /// Charges one failed authentication to `source`.
    pub fn failed(&mut self, source: Source, now_ms: u64) {
        if self.interval_ms == 0 {
            return;
        }
        let i = self.entry(source, now_ms);
        let cost = self.interval_ms;
        if let Some(e) = self.entries.get(i) {
            let left = self.allowance(e, now_ms).saturating_sub(cost);
            if let Some(e) = self.entries.get_mut(i) {
                e.allowance_ms = left;
                e.at_ms = now_ms;
            }
        }
    }

    /// `source` authenticated: its failures are forgiven and it keeps its entry.
    pub fn succeeded(&mut self, source: Source, now_ms: u64) {
        let i = self.entry(source, now_ms);
        let full = self.full();
        if let Some(e) = self.entries.get_mut(i) {
            e.trusted = true;
            e.trusted_ms = now_ms;
            e.allowance_ms = full;
            e.at_ms = now_ms;
        }
    }

    /// Marks sources trusted as if they had authenticated now (the ones the agent kept from
    /// before a restart); at most [`MAX_SOURCES`] take entries.
    pub fn trust(&mut self, sources: &[Source], now_ms: u64) {
        for s in sources {
            self.succeeded(*s, now_ms);
        }
    }

    /// The trusted sources, the most recently authenticated first, at most `n`.
    pub fn trusted(&self, n: usize) -> Vec<Source> {
        let mut t: Vec<&Entry> = self.entries.iter().filter(|e| e.trusted).collect();
        t.sort_by_key(|e| std::cmp::Reverse(e.trusted_ms));
        t.into_iter().take(n).map(|e| e.source).collect()
    }

    /// Counts a rejected request of `source` for the summary.
    pub fn rejected(&mut self, source: Source, now_ms: u64) {
        let i = self.entry(source, now_ms);
        if let Some(e) = self.entries.get_mut(i) {
            e.rejected = e.rejected.saturating_add(1);
        }
    }

    /// The `n` sources with the most rejected requests since the last call, most first; the
    /// counts start again from zero.
    pub fn take_top(&mut self, n: usize) -> Vec<(Source, u32)> {
        let mut top: Vec<(Source, u32)> = self
            .entries
            .iter()
            .filter(|e| e.rejected > 0)
            .map(|e| (e.source, e.rejected))
            .collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        top.truncate(n);
        for e in &mut self.entries {
            e.rejected = 0;
        }
        top
    }

    /// The index of `source`'s entry, made if needed (see the module's eviction rules).
    fn entry(&mut self, source: Source, now_ms: u64) -> usize {
        if let Some(i) = self.find(source) {
            if let Some(e) = self.entries.get_mut(i) {
                e.seen_ms = now_ms;
            }
            return i;
        }
        let full = self.full();
        let fresh = Entry {
            source,
            allowance_ms: full,
            at_ms: now_ms,
            trusted: false,
            trusted_ms: 0,
            rejected: 0,
            seen_ms: now_ms,
        };
        if self.entries.len() < MAX_SOURCES {
            self.entries.push(fresh);
            return self.entries.len() - 1;
        }
        let Some((i, inherited)) = self.victim(now_ms) else {
            return 0;
        };
        self.entries[i] = Entry {
            allowance_ms: inherited,
            ..fresh
        };
        i
    }

    /// Entries in use (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(203, 0, 113, last)))
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_prefixes() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Source::of(mapped).to_string(), "192.0.2.7");
        assert_eq!(Source::of(mapped), Source::of("192.0.2.7".parse().unwrap()));
        // A JID: its bare form, case folded; another account is another source.
        let acs = Source::of_jid("ACS@Example.net/any");
        assert_eq!(acs, Source::of_jid("acs@example.net"));
        assert_ne!(acs, Source::of_jid("eve@example.net"));
        let text = acs.to_string();
        assert!(text.starts_with("xmpp:") && text.len() == 21, "{text}");
        assert_eq!(text.parse::<Source>(), Ok(acs));
        for bad in [
            "xmpp:",
            "xmpp:00112233445566",
            "xmpp:001122334455667g",
            "xmpp:+011223344556677",
        ] {
            assert!(bad.parse::<Source>().is_err(), "{bad}");
        }
    }

    /// A table full of debtors (an attacker's 128 or more addresses, each spending what it
    /// earns) locks out a new source; a source handed back as trusted (the ACS, kept by the
    /// agent across a restart) is let through, and the sources round-trip as text.
    #[test]
    fn a_trusted_source_gets_in_when_debtors_fill_the_table() {
        let mut t = Throttle::new(2, 1_000);
        let acs = v4(250);
        let round = |t: &mut Throttle, now: u64| {
            for i in 0..MAX_SOURCES {
                let s = Source::V4([198, 51, (i / 256) as u8, (i % 256) as u8]);
                while t.allows(s, now) {
                    t.failed(s, now);
                }
            }
        };
        round(&mut t, 0);
        assert!(
            !t.allows(acs, 0),
            "a new source inherits a debtor's allowance"
        );
        let mut kept = Throttle::new(2, 1_000);
        let text: Vec<String> = [acs, Source::of("2001:db8:7::5".parse().unwrap())]
            .iter()
            .map(Source::to_string)
            .collect();
        let back: Vec<Source> = text.iter().map(|s| s.parse().unwrap()).collect();
        kept.trust(&back, 0);
        assert_eq!(kept.trusted(8), back);
        for now in [0, 10_000, 60_000] {
            round(&mut kept, now);
            assert!(
                kept.allows(acs, now),
                "the trusted ACS is locked out at {now}"
            );
        }
        assert!("203.0.113.1/64".parse::<Source>().is_err());
        assert!("2001:db8::1".parse::<Source>().is_err());
    }

    #[test]
    fn burst_then_one_per_interval_per_source() {
        let mut t = Throttle::new(3, 1_000);
        let (a, b) = (v4(1), v4(2));
        for _ in 0..3 {
            assert!(t.allows(a, 0));
            t.failed(a, 0);
        }
        assert!(!t.allows(a, 0));
        assert!(!t.allows(a, 999));
        // Another source is not affected.
        assert!(t.allows(b, 0));
        // One more after an interval, not two.
        assert!(t.allows(a, 1_000));
        t.failed(a, 1_000);
        assert!(!t.allows(a, 1_000));
        // A success forgives.
        t.succeeded(a, 1_500);
        for _ in 0..3 {
            assert!(t.allows(a, 1_500));
            t.failed(a, 1_500);
        }
        assert!(!t.allows(a, 1_500));
        // Interval 0: off.
        let mut off = Throttle::new(1, 0);
        for _ in 0..100 {
            off.failed(a, 0);
        }
        assert!(off.allows(a, 0));
    }

    #[test]
    fn rotating_sources_keep_the_table_bounded_and_gain_no_fresh_bursts() {
        let mut t = Throttle::new(5, 10_000);
        let acs = Source::V4([198, 51, 100, 1]);
        t.succeeded(acs, 0);
        // An attacker spending every allowance of thousands of /64s.
        let mut verified = 0;
        for i in 0..20_000u32 {
            let mut p = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];
            p[4..].copy_from_slice(&i.to_be_bytes());
            let s = Source::V6(p);
            if t.allows(s, 1) {
                t.failed(s, 1);
                verified += 1;
            }
            assert!(t.len() <= MAX_SOURCES);
        }
        // The table's worth of bursts, not one per address.
        assert!(
            verified <= MAX_SOURCES * 5,
            "{verified} guesses verified from rotating sources"
        );
        // The ACS that authenticated kept its entry and its allowance.
        assert!(t.allows(acs, 1));
        assert!(t.find(acs).is_some());
        assert!(t.entries.capacity() <= MAX_SOURCES);
    }

    #[test]
    fn top_sources_by_rejections_then_reset() {
        let mut t = Throttle::new(5, 1_000);
        for (s, n) in [(v4(1), 2), (v4(2), 7), (v4(3), 4), (v4(4), 1)] {
            for _ in 0..n {
                t.rejected(s, 0);
            }
        }
        let top = t.take_top(3);
        assert_eq!(top, vec![(v4(2), 7), (v4(3), 4), (v4(1), 2)]);
        assert!(t.take_top(3).is_empty());
    }
}
