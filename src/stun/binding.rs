//! The STUN client of TR-111 Part 2 (TR-069 Annex G.2) as a state machine without I/O: what to
//! send from the UDP Connection Request port (the *primary* port) and from a second port, and
//! what the answers teach about the NAT binding. Time (monotonic milliseconds) and transaction
//! IDs are arguments; the caller owns the sockets.
//!
//! - **Binding discovery and maintenance.** A Binding Request from the primary port (with
//!   CONNECTION-REQUEST-BINDING) learns the public address and port of the binding; one is sent
//!   again every keep-alive period, within STUNMinimumKeepAlivePeriod and
//!   STUNMaximumKeepAlivePeriod. Requests are retransmitted as RFC 3489 §9.3 says (100 ms
//!   doubling to 1.6 s, 9 transmissions, 9.5 s in all); a transaction that gets no answer is
//!   tried again after 10 s, doubling up to the period.
//! - **NAT detection.** NATDetected: the mapped address differs from the primary port's own
//!   address and port.
//! - **Binding change.** When the mapped address changes, the next request (at once, not held
//!   back by the minimum period) carries BINDING-CHANGE, and MESSAGE-INTEGRITY whenever a
//!   STUNUsername is set, so the ACS's STUN server can trust it.
//! - **Message integrity** otherwise only after the server asked for it (a 401 Binding Error
//!   Response), and never without a STUNUsername (the data model's rule).
//! - **Binding timeout discovery** (RFC 3489 §10.2), behind a NAT and when the period has room
//!   to choose: after a primary request at *t*, a request from the second port at *t + T* asks
//!   (RESPONSE-ADDRESS) for the answer at the primary port's public address. An answer there
//!   proves the binding outlived *T*; none within 3.1 s (5 transmissions) means it did not (the primary port binds again at
//!   once). *T* doubles from 20 s (never under 5 s, the floor of every period) until a binding dies or the ceiling (STUNMaximumKeepAlivePeriod,
//!   else 30 minutes) is reached, then is halved between what lived and what died to within
//!   10 % (at least 2 s); the keep-alive period is then 90 % of the longest *T* that lived. A
//!   server that does not honour RESPONSE-ADDRESS (its answer comes back to the second port, or
//!   an error) ends the discovery: the period stays the default, 25 s, within the bounds.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use super::msg::{self, Request, Response};

/// The keep-alive period while nothing better is known (seconds): under the 30 s many NATs and
/// Linux's conntrack keep an unanswered UDP binding.
pub const DEFAULT_PERIOD: u32 = 25;
/// The shortest keep-alive period (seconds), whatever STUNMaximumKeepAlivePeriod says: NATs
/// keep a binding far longer (RFC 4787 asks for 2 minutes), and an ACS that points
/// STUNServerAddress at a third party must not make every CPE send to it every second.
pub const MIN_PERIOD: u32 = 5;
/// The first interval the binding timeout discovery tries (seconds).
pub const FIRST_PROBE: u32 = 20;
/// The longest interval tried when STUNMaximumKeepAlivePeriod sets none (seconds).
pub const PROBE_CEILING: u32 = 1800;
/// The retransmission intervals of one transaction (RFC 3489 §9.3), in milliseconds: the
/// transaction fails after the last.
const RETRANSMIT_MS: [u64; 9] = [100, 200, 400, 800, 1600, 1600, 1600, 1600, 1600];
/// Transmissions of a discovery probe: its answer comes within a round trip or the binding is
/// gone, and every second it waits adds to the interval it measures (3.1 s in all).
const PROBE_TRANSMISSIONS: usize = 5;
/// The first wait after a failed transaction (milliseconds); it doubles up to the period.
const RETRY_MS: u64 = 10_000;
/// The shortest time between two BINDING-CHANGE requests (milliseconds): a mapping that flaps
/// (a NAT's churn, or forged answers from an on-path attacker: classic STUN has no answer
/// integrity) cannot make the CPE send at the speed of the round trip.
const CHANGE_FLOOR_MS: u64 = 10_000;

/// What the data model says (`ManagementServer.STUN*`), the server's name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: SocketAddr,
    /// STUNUsername and STUNPassword (message integrity only with a username).
    pub username: String,
    pub password: String,
    /// STUNMinimumKeepAlivePeriod, seconds.
    pub min_period: u32,
    /// STUNMaximumKeepAlivePeriod, seconds (`None`: -1, no maximum).
    pub max_period: Option<u32>,
}

/// The socket a datagram goes out of or came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The UDP Connection Request port.
    Primary,
    /// The port of the binding timeout discovery.
    Secondary,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub port: Port,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Where the binding timeout discovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Not started (no NAT seen yet, or the bounds leave no choice).
    Idle,
    /// Looking: `lived` the longest interval the binding outlived, `died` the shortest it did
    /// not, `next` the interval the next probe tries.
    Searching {
        lived: u32,
        died: Option<u32>,
        next: u32,
    },
    /// The binding outlives this many seconds.
    Found(u32),
    /// The server does not honour RESPONSE-ADDRESS.
    Unsupported,
}

/// A transaction under way.
#[derive(Debug, Clone)]
struct Tx {
    id: [u8; 16],
    bytes: Vec<u8>,
    /// Transmissions so far.
    sent: usize,
    /// When the next retransmission (or, after the last, the failure) is due.
    next_ms: u64,
}

impl Tx {
    fn new(id: [u8; 16], bytes: Vec<u8>, now_ms: u64) -> Tx {
        Tx {
            id,
            bytes,
            sent: 0,
            next_ms: now_ms,
        }
    }
}

/// The probe of the binding timeout discovery under way.
#[derive(Debug, Clone)]
struct Probe {
    tx: Tx,
    /// The interval it tests.
    interval: u32,
}

/// The client's state.
#[derive(Debug, Clone)]
pub struct Binding {
    cfg: Config,
    /// The primary port's own address (the source address towards the server).
    local: Option<SocketAddr>,
    /// The public address of the binding, as last learned.
    public: Option<SocketAddr>,
    /// The binding changed: the next primary request carries BINDING-CHANGE.
    changed: bool,
    /// The server asked for MESSAGE-INTEGRITY.
    integrity: bool,
    primary: Option<Tx>,
    probe: Option<Probe>,
    /// When the next primary request is due (when none is under way).
    primary_at_ms: u64,
    /// When the last primary transaction succeeded.
    primary_ok_ms: Option<u64>,
    /// When the next probe is due (while searching and no probe is under way).
    probe_at_ms: Option<u64>,
    /// Transactions that failed in a row (the retry wait doubles).
    failures: u32,
    discovery: Discovery,
    /// The last error the server answered (for the log), or 0.
    last_error: u16,
    /// When the last BINDING-CHANGE request started.
    change_sent_ms: Option<u64>,
}

impl Binding {
    /// A client for `cfg`, whose first request is due at once.
    pub fn new(cfg: Config, now_ms: u64) -> Binding {
        Binding {
            cfg,
            local: None,
            public: None,
            changed: false,
            integrity: false,
            primary: None,
            probe: None,
            primary_at_ms: now_ms,
            primary_ok_ms: None,
            probe_at_ms: None,
            failures: 0,
            discovery: Discovery::Idle,
            last_error: 0,
            change_sent_ms: None,
        }
    }

    /// New settings: a request is due at once. What was learned of the binding stays when the
    /// server is the same (a change of it is still told by BINDING-CHANGE).
    pub fn reconfigure(&mut self, cfg: Config, now_ms: u64) {
        if cfg == self.cfg {
            return;
        }
        let same_server = cfg.server == self.cfg.server;
        let bounds = (cfg.min_period, cfg.max_period) != (self.cfg.min_period, self.cfg.max_period);
        if !same_server || cfg.username != self.cfg.username {
            self.integrity = false;
        }
        if !same_server || bounds {
            self.discovery = Discovery::Idle;
        }
        self.cfg = cfg;
        self.primary = None;
        self.probe = None;
        self.probe_at_ms = None;
        self.failures = 0;
        self.primary_at_ms = now_ms;
    }

    /// The primary port's own address: NATDetected compares the mapped address with it.
    pub fn set_local(&mut self, local: Option<SocketAddr>) {
        self.local = local;
    }

    /// The public address and port of the binding, once learned.
    pub fn public(&self) -> Option<SocketAddr> {
        self.public
    }

    /// Whether the mapped address differs from the primary port's own (NATDetected).
    pub fn nat_detected(&self) -> bool {
        match (self.public, self.local) {
            (Some(p), Some(l)) => p != l,
            (Some(_), None) => true,
            _ => false,
        }
    }

    pub fn discovery(&self) -> Discovery {
        self.discovery
    }

    /// The last error code the server answered (0: none since the last success).
    pub fn last_error(&self) -> u16 {
        self.last_error
    }

    /// The keep-alive period now, in seconds: what the discovery found (90 % of it) or the
    /// default, within the bounds (the maximum wins over the minimum: it keeps the binding).
    pub fn period(&self) -> u32 {
        let base = match self.discovery {
            Discovery::Found(t) => (t - t / 10).max(MIN_PERIOD),
            _ => DEFAULT_PERIOD,
        };
        let base = base.max(self.cfg.min_period);
        match self.cfg.max_period {
            Some(max) => base.min(max.max(MIN_PERIOD)),
            None => base,
        }
    }

    /// The longest interval the discovery tries.
    fn ceiling(&self) -> u32 {
        self.cfg.max_period.unwrap_or(PROBE_CEILING).max(MIN_PERIOD)
    }

    /// When [`Binding::poll`] has something to do next.
    pub fn next_at(&self) -> u64 {
        let primary = self
            .primary
            .as_ref()
            .map_or(self.primary_at_ms, |t| t.next_ms);
        let probe = match (&self.probe, self.probe_at_ms) {
            (Some(p), _) => Some(p.tx.next_ms),
            (None, at) => at,
        };
        probe.map_or(primary, |p| p.min(primary))
    }

    /// The next datagram to send at `now_ms`, if any; `fresh` is a new random transaction ID
    /// (used only when a transaction starts). Call until it returns `None`.
    pub fn poll(&mut self, now_ms: u64, fresh: [u8; 16]) -> Option<Send> {
        let fresh = classic(fresh);
        // The primary transaction: retransmit, fail, or start one that is due.
        if let Some(tx) = &mut self.primary {
            if now_ms >= tx.next_ms {
                if tx.sent >= RETRANSMIT_MS.len() {
                    self.primary = None;
                    self.primary_failed(now_ms);
                } else {
                    return self.transmit_primary(now_ms);
                }
            }
        } else if now_ms >= self.primary_at_ms && self.probe.is_none() {
            let bytes = msg::request(&Request {
                transaction: fresh,
                connection_request_binding: true,
                response_address: None,
                binding_change: self.changed,
                credentials: self.credentials(self.changed),
            });
            if self.changed {
                self.change_sent_ms = Some(now_ms);
            }
            self.primary = Some(Tx::new(fresh, bytes, now_ms));
            return self.transmit_primary(now_ms);
        }
        // The probe: retransmit, conclude that the binding died, or start one that is due.
        if let Some(p) = &mut self.probe {
            if now_ms >= p.tx.next_ms {
                if p.tx.sent >= PROBE_TRANSMISSIONS {
                    let interval = p.interval;
                    self.probe = None;
                    self.probe_result(false, interval, now_ms);
                    // The primary port binds again at once (the probe is gone: no deeper).
                    return self.poll(now_ms, fresh);
                } else {
                    let bytes = p.tx.bytes.clone();
                    transmitted(&mut p.tx, now_ms);
                    return Some(Send {
                        port: Port::Secondary,
                        to: self.cfg.server,
                        bytes,
                    });
                }
            }
        } else if let (Some(at), None) = (self.probe_at_ms, &self.primary) {
            if now_ms >= at {
                self.probe_at_ms = None;
                let (Discovery::Searching { next, .. }, Some(SocketAddr::V4(public))) =
                    (self.discovery, self.public)
                else {
                    return None;
                };
                let bytes = msg::request(&Request {
                    transaction: fresh,
                    connection_request_binding: false,
                    response_address: Some(public),
                    binding_change: false,
                    credentials: self.credentials(false),
                });
                let mut tx = Tx::new(fresh, bytes.clone(), now_ms);
                transmitted(&mut tx, now_ms);
                self.probe = Some(Probe { tx, interval: next });
                return Some(Send {
                    port: Port::Secondary,
                    to: self.cfg.server,
                    bytes,
                });
            }
        }
        None
    }

    fn transmit_primary(&mut self, now_ms: u64) -> Option<Send> {
        let tx = self.primary.as_mut()?;
        transmitted(tx, now_ms);
        Some(Send {
            port: Port::Primary,
            to: self.cfg.server,
            bytes: tx.bytes.clone(),
        })
    }

    /// USERNAME and MESSAGE-INTEGRITY: with a STUNUsername, once the server asked for them or
    /// on a BINDING-CHANGE request.
    fn credentials(&self, binding_change: bool) -> Option<(&str, &str)> {
        (!self.cfg.username.is_empty() && (self.integrity || binding_change))
            .then_some((self.cfg.username.as_str(), self.cfg.password.as_str()))
    }

    /// A datagram that arrived on `port` from `from`. Returns whether it was ours (a STUN
    /// answer to a transaction under way, from the server); anything else is for the caller
    /// (a UDP Connection Request) or to drop.
    pub fn receive(&mut self, port: Port, from: SocketAddr, bytes: &[u8], now_ms: u64) -> bool {
        if from != self.cfg.server {
            return false;
        }
        let ids = (
            self.primary.as_ref().map(|t| t.id),
            self.probe.as_ref().map(|p| p.tx.id),
        );
        if let Some(id) = ids.0 {
            if let Ok(r) = msg::parse(bytes, &id) {
                if port == Port::Primary {
                    self.primary = None;
                    self.primary_answered(r, now_ms);
                    return true;
                }
            }
        }
        if let Some(id) = ids.1 {
            if let Ok(r) = msg::parse(bytes, &id) {
                let interval = self.probe.as_ref().map_or(0, |p| p.interval);
                self.probe = None;
                match (port, r) {
                    // At the primary port: the binding outlived the interval.
                    (Port::Primary, Response::Binding(_)) => {
                        self.probe_result(true, interval, now_ms)
                    }
                    // Back at the second port, or an error (420: RESPONSE-ADDRESS unknown): the
                    // server does not do what the discovery needs.
                    _ => {
                        self.discovery = Discovery::Unsupported;
                        self.primary_at_ms = now_ms;
                    }
                }
                return true;
            }
        }
        false
    }

    fn primary_answered(&mut self, r: Response, now_ms: u64) {
        match r {
            Response::Binding(mapped) => {
                self.failures = 0;
                self.last_error = 0;
                self.primary_ok_ms = Some(now_ms);
                self.changed = false;
                if self.public.is_some_and(|p| p != mapped) {
                    // A new binding: told to the server at once.
                    self.changed = true;
                }
                self.public = Some(mapped);
                if self.changed {
                    // At once, unless the last BINDING-CHANGE is younger than the floor.
                    self.primary_at_ms = self
                        .change_sent_ms
                        .map_or(now_ms, |t| now_ms.max(t.saturating_add(CHANGE_FLOOR_MS)));
                    return;
                }
                self.primary_at_ms = now_ms + u64::from(self.period()) * 1000;
                self.plan_probe(now_ms);
            }
            Response::Error(401) if !self.integrity && !self.cfg.username.is_empty() => {
                self.integrity = true;
                self.last_error = 401;
                self.primary_at_ms = now_ms;
            }
            Response::Error(code) => {
                self.last_error = code;
                self.primary_failed(now_ms);
            }
        }
    }

    /// A primary transaction failed: tried again after 10 s, doubling up to the period.
    fn primary_failed(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        let wait = RETRY_MS
            .saturating_mul(1u64 << self.failures.saturating_sub(1).min(16))
            .min(u64::from(self.period()) * 1000);
        self.primary_at_ms = now_ms + wait;
    }

    /// After a primary success: the next probe of the discovery, when one is to run. While it
    /// is planned the primary port sends nothing (the probe tests the binding as it ages).
    fn plan_probe(&mut self, now_ms: u64) {
        if !self.nat_detected() || !matches!(self.public, Some(SocketAddr::V4(_))) {
            return;
        }
        let (min, ceiling) = (self.cfg.min_period.max(MIN_PERIOD), self.ceiling());
        if min >= ceiling {
            return;
        }
        if self.discovery == Discovery::Idle {
            self.discovery = Discovery::Searching {
                lived: 0,
                died: None,
                next: FIRST_PROBE.clamp(min, ceiling),
            };
        }
        if let Discovery::Searching { next, .. } = self.discovery {
            self.probe_at_ms = Some(now_ms + u64::from(next) * 1000);
            // The primary's own keep-alive waits for the probe.
            self.primary_at_ms = u64::MAX;
        }
    }

    /// A probe's result: the binding outlived `interval` or not. Either way the primary port
    /// sends at once (a dead binding is made again; a live one gets its next reference time).
    fn probe_result(&mut self, lived_it: bool, interval: u32, now_ms: u64) {
        self.primary_at_ms = now_ms;
        let Discovery::Searching {
            mut lived,
            mut died,
            ..
        } = self.discovery
        else {
            return;
        };
        let (min, ceiling) = (self.cfg.min_period.max(MIN_PERIOD), self.ceiling());
        if lived_it {
            lived = lived.max(interval);
        } else {
            died = Some(died.map_or(interval, |d| d.min(interval)));
        }
        self.discovery = match died {
            None if lived >= ceiling => Discovery::Found(ceiling),
            None => Discovery::Searching {
                lived,
                died,
                next: lived.saturating_mul(2).clamp(min, ceiling),
            },
            // Even the minimum period outlives the binding: nothing shorter is allowed.
            Some(d) if d <= min => Discovery::Found(min),
            Some(d) => {
                let resolution = (lived / 10).max(2);
                if d.saturating_sub(lived) <= resolution {
                    Discovery::Found(lived.max(min))
                } else {
                    Discovery::Searching {
                        lived,
                        died,
                        next: (lived + (d - lived) / 2).clamp(min, ceiling),
                    }
                }
            }
        };
    }
}

/// Marks one transmission of `tx` at `now_ms`.
fn transmitted(tx: &mut Tx, now_ms: u64) {
    let wait = RETRANSMIT_MS.get(tx.sent).copied().unwrap_or(0);
    tx.sent += 1;
    tx.next_ms = now_ms + wait;
}

/// A classic (RFC 3489) transaction ID: not starting with RFC 5389's magic cookie, which a
/// server would take as the newer protocol.
fn classic(mut id: [u8; 16]) -> [u8; 16] {
    if id[..4] == [0x21, 0x12, 0xA4, 0x42] {
        id[0] ^= 0x80;
    }
    id
}

/// The host of an address as UDPConnectionRequestAddress shows it: `host:port`, an IPv6
/// literal in brackets (RFC 3986 authority).
pub fn authority(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

/// `a` as an IPv4 socket address, when it is one (classic STUN is IPv4).
pub fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(v) => Some(v),
        SocketAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "203.0.113.1:3478";

    fn cfg(min: u32, max: Option<u32>) -> Config {
        Config {
            server: SERVER.parse().unwrap(),
            username: String::new(),
            password: String::new(),
            min_period: min,
            max_period: max,
        }
    }

    /// A server's answer to `req` (its transaction) giving `mapped`.
    fn answer(req: &[u8], mapped: &str) -> Vec<u8> {
        let a: SocketAddrV4 = mapped.parse().unwrap();
        let mut m = vec![0x01, 0x01, 0, 12];
        m.extend_from_slice(&req[4..20]);
        m.extend_from_slice(&[0, 1, 0, 8, 0, 1]);
        m.extend_from_slice(&a.port().to_be_bytes());
        m.extend_from_slice(&a.ip().octets());
        m
    }

    fn error(req: &[u8], code: u16) -> Vec<u8> {
        let mut m = vec![0x01, 0x11, 0, 8];
        m.extend_from_slice(&req[4..20]);
        m.extend_from_slice(&[0, 9, 0, 4, 0, 0, (code / 100) as u8, (code % 100) as u8]);
        m
    }

    struct Run {
        b: Binding,
        now: u64,
        n: u8,
    }

    impl Run {
        fn new(c: Config) -> Run {
            let mut b = Binding::new(c, 0);
            b.set_local(Some("10.0.0.2:7547".parse().unwrap()));
            Run { b, now: 0, n: 0 }
        }
        fn poll(&mut self) -> Option<Send> {
            self.n = self.n.wrapping_add(1);
            self.b.poll(self.now, [self.n; 16])
        }
        /// Moves to the next thing the client does and returns it.
        fn next(&mut self) -> Send {
            for _ in 0..100 {
                if let Some(s) = self.poll() {
                    return s;
                }
                let at = self.b.next_at();
                assert!(at > self.now && at != u64::MAX, "stuck at {}", self.now);
                self.now = at;
            }
            panic!("nothing to send");
        }
        fn reply(&mut self, port: Port, bytes: &[u8]) {
            assert!(self
                .b
                .receive(port, SERVER.parse().unwrap(), bytes, self.now));
        }
    }

    fn has(bytes: &[u8], attr: u16) -> bool {
        let mut i = 20;
        while i + 4 <= bytes.len() {
            let t = u16::from_be_bytes([bytes[i], bytes[i + 1]]);
            let l = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            if t == attr {
                return true;
            }
            i += 4 + l;
        }
        false
    }

    #[test]
    fn discovery_nat_detection_keep_alives_and_binding_change() {
        let mut r = Run::new(cfg(10, Some(10)));
        let s = r.next();
        assert_eq!((s.port, r.now), (Port::Primary, 0));
        assert!(has(&s.bytes, 0xC001) && !has(&s.bytes, 0xC002) && !has(&s.bytes, 0x0008));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40000"));
        assert_eq!(r.b.public(), Some("198.51.100.7:40000".parse().unwrap()));
        assert!(r.b.nat_detected());
        // min = max: no discovery; the keep-alive every 10 s.
        let s = r.next();
        assert_eq!((s.port, r.now), (Port::Primary, 10_000));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40000"));
        // The mapping moved: a BINDING-CHANGE request at once, then the period again.
        r.now += 10_000;
        let s = r.next();
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40555"));
        let s = r.next();
        assert_eq!(r.now, 20_000);
        assert!(has(&s.bytes, 0xC002));
        // A mapping that flaps: the next BINDING-CHANGE waits for the floor.
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40666"));
        let s = r.next();
        assert_eq!(r.now, 30_000);
        assert!(has(&s.bytes, 0xC002));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40555"));
        let s = r.next();
        assert_eq!(r.now, 40_000);
        assert!(has(&s.bytes, 0xC002));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40555"));
        let s = r.next();
        assert_eq!(r.now, 50_000);
        assert!(!has(&s.bytes, 0xC002));
        // Not behind a NAT: the mapped address is our own.
        let mut r = Run::new(cfg(0, None));
        let s = r.next();
        r.reply(Port::Primary, &answer(&s.bytes, "10.0.0.2:7547"));
        assert!(!r.b.nat_detected());
        assert_eq!(r.b.discovery(), Discovery::Idle);
        assert_eq!(r.next().port, Port::Primary);
        assert_eq!(r.now, u64::from(DEFAULT_PERIOD) * 1000);
    }

    #[test]
    fn retransmissions_then_a_retry_that_backs_off() {
        let mut r = Run::new(cfg(0, Some(300)));
        let mut times = vec![];
        let mut id = None;
        for _ in 0..9 {
            let s = r.next();
            times.push(r.now);
            // The same transaction each time.
            assert_eq!(*id.get_or_insert(s.bytes.clone()), s.bytes);
        }
        assert_eq!(times, [0, 100, 300, 700, 1500, 3100, 4700, 6300, 7900]);
        // After 9.5 s without an answer: a new transaction 10 s later, then 20 s.
        let s = r.next();
        assert_eq!(r.now, 9_500 + 10_000);
        assert_ne!(s.bytes[4..20], id.unwrap()[4..20]);
        for _ in 0..8 {
            r.next();
        }
        r.next();
        assert_eq!(r.now, 19_500 + 9_500 + 20_000);
        // Answers from elsewhere, or to another transaction, are not ours.
        assert!(!r.b.receive(
            Port::Primary,
            "192.0.2.66:3478".parse().unwrap(),
            &answer(&s.bytes, "1.2.3.4:5"),
            r.now
        ));
        assert!(!r.b.receive(
            Port::Primary,
            SERVER.parse().unwrap(),
            &answer(&s.bytes, "1.2.3.4:5"),
            r.now
        ));
    }

    #[test]
    fn integrity_once_the_server_asks_and_with_binding_change() {
        let mut c = cfg(30, Some(30));
        c.username = "cpe".into();
        c.password = "pw".into();
        let mut r = Run::new(c);
        let s = r.next();
        assert!(!has(&s.bytes, 0x0008));
        r.reply(Port::Primary, &error(&s.bytes, 401));
        let s = r.next();
        assert_eq!(r.now, 0);
        assert!(has(&s.bytes, 0x0006) && has(&s.bytes, 0x0008));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:1"));
        // A 401 again with integrity: a failure, retried later.
        let s = r.next();
        r.reply(Port::Primary, &error(&s.bytes, 401));
        assert_eq!(r.b.last_error(), 401);
        r.next();
        assert_eq!(r.now, 30_000 + 10_000);
        // Without a username: never integrity, even on BINDING-CHANGE.
        let mut r = Run::new(cfg(30, Some(30)));
        let s = r.next();
        r.reply(Port::Primary, &error(&s.bytes, 401));
        let s = r.next();
        assert!(!has(&s.bytes, 0x0008));
    }

    #[test]
    fn the_binding_timeout_is_found_by_probes_from_the_second_port() {
        // A NAT that forgets a binding after 47 s.
        let timeout = 47_000;
        let mut r = Run::new(cfg(5, Some(600)));
        let public = "198.51.100.7:40000";
        let mut last_primary = 0;
        let mut probes = vec![];
        let mut last_probe = vec![];
        for _ in 0..200 {
            if let Discovery::Found(_) = r.b.discovery() {
                break;
            }
            let s = r.next();
            match s.port {
                Port::Primary => {
                    assert!(has(&s.bytes, 0xC001));
                    last_primary = r.now;
                    r.reply(Port::Primary, &answer(&s.bytes, public));
                }
                Port::Secondary => {
                    assert!(!has(&s.bytes, 0xC001) && has(&s.bytes, 0x0002));
                    let age = r.now - last_primary;
                    if s.bytes != last_probe {
                        probes.push(age / 1000);
                        last_probe = s.bytes.clone();
                    }
                    if age < timeout {
                        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:41000"));
                    }
                    // Else no answer: the probe's retransmissions run out.
                }
            }
        }
        assert_eq!(r.b.discovery(), Discovery::Found(45), "probes {probes:?}");
        assert_eq!(probes[..4], [20, 40, 80, 60]);
        assert_eq!(r.b.period(), 41);
        // The keep-alive then follows the period.
        let s = r.next();
        assert_eq!(s.port, Port::Primary);
        r.reply(Port::Primary, &answer(&s.bytes, public));
        let at = r.now;
        assert_eq!(r.next().port, Port::Primary);
        assert_eq!(r.now - at, 41_000);
    }

    #[test]
    fn a_server_that_ignores_response_address_ends_the_discovery() {
        let mut r = Run::new(cfg(0, None));
        let s = r.next();
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40000"));
        let s = r.next();
        assert_eq!((s.port, r.now), (Port::Secondary, 20_000));
        // coturn answers the source of a classic request, whatever RESPONSE-ADDRESS says.
        r.reply(Port::Secondary, &answer(&s.bytes, "198.51.100.7:40001"));
        assert_eq!(r.b.discovery(), Discovery::Unsupported);
        let s = r.next();
        assert_eq!((s.port, r.now), (Port::Primary, 20_000));
        r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:40000"));
        assert_eq!(r.next().port, Port::Primary);
        assert_eq!(r.now, 20_000 + u64::from(DEFAULT_PERIOD) * 1000);
        // The ceiling reached alive: found at the maximum.
        let mut r = Run::new(cfg(0, Some(50)));
        for _ in 0..20 {
            let s = r.next();
            match s.port {
                Port::Primary => r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:1")),
                Port::Secondary => r.reply(Port::Primary, &answer(&s.bytes, "198.51.100.7:2")),
            }
            if r.b.discovery() == Discovery::Found(50) {
                break;
            }
        }
        assert_eq!(r.b.discovery(), Discovery::Found(50));
        assert_eq!(r.b.period(), 45);
    }

    #[test]
    fn bounds_hold_the_period() {
        let mut r = Run::new(cfg(60, Some(30)));
        assert_eq!(r.b.period(), 30, "the maximum wins");
        r.b.reconfigure(cfg(40, None), 0);
        assert_eq!(r.b.period(), 40);
        r.b.reconfigure(cfg(0, Some(0)), 0);
        assert_eq!(r.b.period(), MIN_PERIOD, "never below the floor");
        assert_eq!(
            authority("[2001:db8::1]:7547".parse().unwrap()),
            "[2001:db8::1]:7547"
        );
        assert_eq!(
            authority("192.0.2.1:7547".parse().unwrap()),
            "192.0.2.1:7547"
        );
        assert_eq!(
            classic([0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[0],
            0xA1
        );
    }
}
