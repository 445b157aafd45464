//! UDP echo as TR-143 defines it (Annex A, "UDP Echo Plus"): the server that answers
//! (UDPEchoConfig) and the client that measures (UDPEchoDiagnostics) (OS: UDP sockets, the
//! monotonic clock; the server runs in a thread of its own).
//!
//! A UDP Echo Plus packet starts with five 32-bit big-endian fields: TestGenSN (the client's
//! sequence number), TestRespSN (the server's count of packets answered), TestRespRecvTimeStamp
//! and TestRespReplyTimeStamp (microseconds of the server's clock when the packet came in and
//! when the answer left), TestRespReplyFailureCount (answers the server could not send). A
//! plain echo server returns the packet unchanged; with Echo Plus on, it fills the four
//! response fields of a packet of at least 20 bytes. [`plus_reply`] is that rule (pure).
//!
//! The server accepts datagrams only from the configured source address, when one is set,
//! and keeps the counters TR-181 shows. The client sends one packet at a time, each waiting for
//! its answer up to its timeout, spaced by the inter-transmission time, and matches answers by
//! TestGenSN.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Bytes of the Echo Plus header.
pub const PLUS_HEADER: usize = 20;
/// The largest datagram answered or sent.
pub const MAX_DATAGRAM: usize = 65_507;

/// The five Echo Plus fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plus {
    pub gen_sn: u32,
    pub resp_sn: u32,
    pub recv_us: u32,
    pub reply_us: u32,
    pub failures: u32,
}

impl Plus {
    /// The fields at the start of `packet`; `None` when it is shorter than the header.
    pub fn read(packet: &[u8]) -> Option<Plus> {
        let h = packet.get(..PLUS_HEADER)?;
        let f = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Plus {
            gen_sn: f(0),
            resp_sn: f(4),
            recv_us: f(8),
            reply_us: f(12),
            failures: f(16),
        })
    }

    /// Writes the fields over the start of `packet` (at least [`PLUS_HEADER`] bytes).
    pub fn write(&self, packet: &mut [u8]) {
        for (i, v) in [
            self.gen_sn,
            self.resp_sn,
            self.recv_us,
            self.reply_us,
            self.failures,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(slot) = packet.get_mut(i * 4..i * 4 + 4) {
                slot.copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

/// The Echo Plus answer to `packet` (in place): the response fields filled with the server's
/// count `resp_sn`, the times `recv_us` and `reply_us` and its failure count. A packet shorter
/// than the header is echoed unchanged (TR-143 A.1.1).
pub fn plus_reply(packet: &mut [u8], resp_sn: u32, recv_us: u32, reply_us: u32, failures: u32) {
    if let Some(mut p) = Plus::read(packet) {
        p.resp_sn = resp_sn;
        p.recv_us = recv_us;
        p.reply_us = reply_us;
        p.failures = failures;
        p.write(packet);
    }
}

/// What the server counts (TR-181 UDPEchoConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_responded: u64,
    pub bytes_received: u64,
    pub bytes_responded: u64,
    /// Wall-clock time of the first and the last packet received (µs since the Unix epoch).
    pub first_us: Option<u64>,
    pub last_us: Option<u64>,
}

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where it listens (address and UDPPort).
    pub listen: SocketAddr,
    /// Bound to this netdev (TR-181 Interface); `None`: any.
    pub interface: Option<String>,
    /// Only datagrams from this address are answered (TR-181 SourceIPAddress); `None`: any.
    pub source: Option<IpAddr>,
    /// Fill the Echo Plus fields.
    pub plus: bool,
}

/// Whether no socket holds UDP `port` now (a bind on the wildcard address of either family
/// succeeds).
pub fn port_free(port: u16) -> bool {
    // One after the other (the first closed before the second binds): with
    // `net.ipv6.bindv6only` a port may be held in one family only.
    let v6 = UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, port)).map(drop);
    if v6
        .as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::AddrInUse)
    {
        return false;
    }
    UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// The most datagrams the server answers per second, and bytes: a bound on what a flood, or a
/// loop with another echo server (a datagram spoofed from it), can make it send.
pub const MAX_RATE: u32 = 1000;
pub const MAX_BYTES_PER_SECOND: u64 = 8 * 1024 * 1024;

/// A running echo server; stopped (and its thread joined) on drop.
pub struct Server {
    stats: Arc<Mutex<ServerStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl Server {
    pub fn start(cfg: ServerConfig) -> io::Result<Server> {
        let sock = UdpSocket::bind(cfg.listen)?;
        super::bind_device(&sock, cfg.interface.as_deref())?;
        // The loop looks at `stop` this often.
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let local = sock.local_addr()?;
        let stats = Arc::new(Mutex::new(ServerStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (stats.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("udp-echo".into())
            .stack_size(128 * 1024)
            .spawn(move || serve(&sock, &cfg, &s, &st))?;
        Ok(Server {
            stats,
            stop,
            thread: Some(thread),
            local,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stats(&self) -> ServerStats {
        read_stats(&self.stats)
    }

    /// A reader of the counters that outlives no one: it reads zero once the server is gone.
    pub fn stats_reader(&self) -> impl Fn() -> ServerStats + Send + 'static {
        let weak = Arc::downgrade(&self.stats);
        move || weak.upgrade().map(|s| read_stats(&s)).unwrap_or_default()
    }
}

fn read_stats(stats: &Mutex<ServerStats>) -> ServerStats {
    stats.lock().map(|s| s.clone()).unwrap_or_default()
}

impl ServerStats {
    /// A counter by its TR-181 name (UDPEchoConfig): the counts modulo 2³² (unsignedInt), the
    /// times as `dateTime` with microseconds.
    pub fn field(&self, name: &str) -> Option<String> {
        let wrap = |n: u64| (n & 0xffff_ffff).to_string();
        Some(match name {
            "PacketsReceived" => wrap(self.packets_received),
            "PacketsResponded" => wrap(self.packets_responded),
            "BytesReceived" => wrap(self.bytes_received),
            "BytesResponded" => wrap(self.bytes_responded),
            "TimeFirstPacketReceived" => super::datetime_us(self.first_us?),
            "TimeLastPacketReceived" => super::datetime_us(self.last_us?),
            _ => return None,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sock: &UdpSocket, cfg: &ServerConfig, stats: &Mutex<ServerStats>, stop: &AtomicBool) {
    let epoch = Instant::now();
    let local_port = sock.local_addr().map_or(0, |a| a.port());
    let mut budget = Budget::new(Instant::now());
    let mut recent = Recent::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (mut answered, mut failed) = (0u32, 0u32);
    while !stop.load(Ordering::Acquire) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            // Anything else (an ICMP error reported on the socket): not a reason to spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let recv_us = micros_since(epoch);
        if cfg.source.is_some_and(|s| s != from.ip()) {
            continue;
        }
        // A well-known port (echo, chargen, DNS…) or our own is another service, not a
        // client: answering it could start a loop between two servers.
        if from.port() < 1024 || from.port() == local_port {
            continue;
        }
        // The same datagram back from the same peer at once is our answer echoed by another
        // server (a loop a spoofed datagram started): not answered again, which ends the loop.
        let Some(seen) = buf.get(..n) else {
            continue;
        };
        if recent.repeat(from, seen, Instant::now()) {
            continue;
        }
        let wall = super::wall_us(SystemTime::now());
        if let Ok(mut s) = stats.lock() {
            s.packets_received += 1;
            s.bytes_received += n as u64;
            s.first_us.get_or_insert(wall);
            s.last_us = Some(wall);
        }
        let Some(packet) = buf.get_mut(..n) else {
            continue;
        };
        if cfg.plus {
            plus_reply(
                packet,
                answered.wrapping_add(1),
                recv_us,
                micros_since(epoch),
                failed,
            );
        }
        if !budget.take(n) {
            continue;
        }
        match sock.send_to(packet, from) {
            Ok(_) => {
                answered = answered.wrapping_add(1);
                if let Ok(mut s) = stats.lock() {
                    s.packets_responded += 1;
                    s.bytes_responded += n as u64;
                }
            }
            Err(_) => failed = failed.wrapping_add(1),
        }
    }
}

/// The datagrams answered last (peer, fingerprint, when), to notice one coming straight back.
#[derive(Default)]
struct Recent {
    last: Vec<(SocketAddr, u64, Instant)>,
}

/// How many answered datagrams [`Recent`] remembers.
const RECENT: usize = 16;
/// A datagram equal to one answered this recently to the same peer is a loop's.
const LOOP_WINDOW: Duration = Duration::from_millis(500);

impl Recent {
    /// Whether `packet` from `from` repeats one answered to that peer within [`LOOP_WINDOW`]
    /// (the Echo Plus response fields left out: another Echo Plus server rewrites them); else
    /// it is remembered.
    fn repeat(&mut self, from: SocketAddr, packet: &[u8], now: Instant) -> bool {
        let print = fingerprint(packet);
        let hit = self
            .last
            .iter()
            .any(|(p, f, at)| *p == from && *f == print && now.duration_since(*at) < LOOP_WINDOW);
        if !hit {
            if self.last.len() >= RECENT {
                self.last.remove(0);
            }
            self.last.push((from, print, now));
        }
        hit
    }
}

/// FNV-1a of a datagram without its Echo Plus response fields (bytes 4 to 20).
fn fingerprint(packet: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, b) in packet.iter().enumerate() {
        let b = if (4..PLUS_HEADER).contains(&i) { 0 } else { *b };
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ packet.len() as u64
}

/// What the server may still answer in the current second ([`MAX_RATE`],
/// [`MAX_BYTES_PER_SECOND`]).
struct Budget {
    second: Instant,
    packets: u32,
    bytes: u64,
}

impl Budget {
    fn new(now: Instant) -> Budget {
        Budget {
            second: now,
            packets: 0,
            bytes: 0,
        }
    }

    /// Takes one answer of `n` bytes from the budget; `false` when the second's is spent.
    fn take(&mut self, n: usize) -> bool {
        let now = Instant::now();
        if now.duration_since(self.second) >= Duration::from_secs(1) {
            *self = Budget::new(now);
        }
        if self.packets >= MAX_RATE || self.bytes + n as u64 > MAX_BYTES_PER_SECOND {
            return false;
        }
        self.packets += 1;
        self.bytes += n as u64;
        true
    }
}

/// Microseconds since `epoch`, modulo 2³² (the Echo Plus fields' width).
fn micros_since(epoch: Instant) -> u32 {
    (epoch.elapsed().as_micros() & 0xffff_ffff) as u32
}

/// What the client sends.
#[derive(Debug, Clone)]
pub struct Client {
    pub server: SocketAddr,
    pub interface: Option<String>,
    pub count: u32,
    /// How long each packet waits for its answer.
    pub timeout: Duration,
    /// Bytes of each packet (at least the Echo Plus header, at most [`MAX_DATAGRAM`]).
    pub size: usize,
    pub dscp: u8,
    /// Time from one packet to the next (TR-181 InterTransmissionTime).
    pub interval: Duration,
}

/// One packet's fate (TR-181 IndividualPacketResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketResult {
    pub gen_sn: u32,
    /// When it was sent, in wall-clock microseconds since the Unix epoch.
    pub sent_us: u64,
    /// Round-trip time, when answered in time.
    pub rtt: Option<Duration>,
    /// The server's Echo Plus fields of the answer (all zero from a plain echo server).
    pub reply: Option<Plus>,
}

/// Sends `c.count` packets and waits for each one's echo; stops early when `cancel` is set.
pub fn measure(c: &Client, cancel: &AtomicBool) -> io::Result<Vec<PacketResult>> {
    if c.size < PLUS_HEADER || c.size > MAX_DATAGRAM || c.count == 0 || c.dscp > 63 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} packets of {} bytes (at least {PLUS_HEADER}, at most {MAX_DATAGRAM}), DSCP {}",
                c.count, c.size, c.dscp
            ),
        ));
    }
    let sock = super::udp_socket_for(c.server)?;
    super::device_and_dscp(&sock, c.server.is_ipv6(), c.interface.as_deref(), c.dscp)?;
    sock.connect(c.server)?;
    let mut out = Vec::new();
    let mut packet = vec![0u8; c.size];
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for i in 0..c.count {
        if cancel.load(Ordering::Acquire) {
            break;
        }
        let gen_sn = i + 1;
        Plus {
            gen_sn,
            ..Plus::default()
        }
        .write(&mut packet);
        let start = Instant::now();
        let mut result = PacketResult {
            gen_sn,
            sent_us: super::wall_us(SystemTime::now()),
            rtt: None,
            reply: None,
        };
        if sock.send(&packet).is_ok() {
            let deadline = start + c.timeout;
            // Foreign datagrams are bounded; the waits are slices of the timeout.
            let mut foreign = 0usize;
            while foreign < super::ping::MAX_FOREIGN {
                let Some(left) = super::slice_until(deadline, cancel) else {
                    break;
                };
                sock.set_read_timeout(Some(left))?;
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let got = buf.get(..n).and_then(Plus::read);
                        if got.is_some_and(|p| p.gen_sn == gen_sn) {
                            result.rtt = Some(start.elapsed());
                            result.reply = got;
                            break;
                        }
                        foreign += 1;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted
                                | io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                        ) => {}
                    // The port refused (ICMP on the connected socket).
                    Err(_) => break,
                }
            }
        }
        out.push(result);
        if i + 1 < c.count {
            super::pause_until(start + c.interval, cancel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_straight_back_from_the_same_peer_is_a_loop() {
        let mut r = Recent::default();
        let t0 = Instant::now();
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut p = vec![0u8; 32];
        Plus {
            gen_sn: 1,
            ..Plus::default()
        }
        .write(&mut p);
        assert!(!r.repeat(peer, &p, t0));
        // Another Echo Plus server rewrote the response fields: still ours.
        plus_reply(&mut p, 9, 1, 2, 0);
        assert!(r.repeat(peer, &p, t0 + Duration::from_millis(1)));
        // The next request of a client (TestGenSN + 1), another peer, or later: not a loop.
        let mut next = p.clone();
        next[3] = 2;
        assert!(!r.repeat(peer, &next, t0 + Duration::from_millis(2)));
        assert!(!r.repeat("192.0.2.8:40000".parse().unwrap(), &p, t0));
        assert!(!r.repeat(peer, &p, t0 + LOOP_WINDOW + Duration::from_millis(5)));
        // Bounded: many peers keep at most RECENT entries.
        for port in 0..100u16 {
            r.repeat(SocketAddr::new(peer.ip(), 2000 + port), &p, t0);
        }
        assert!(r.last.len() <= RECENT);
    }

    #[test]
    fn echo_plus_fills_the_response_fields_only() {
        let mut p = vec![0u8; 24];
        Plus {
            gen_sn: 7,
            ..Plus::default()
        }
        .write(&mut p);
        p[20..].copy_from_slice(b"data");
        plus_reply(&mut p, 3, 1000, 1050, 1);
        assert_eq!(
            Plus::read(&p),
            Some(Plus {
                gen_sn: 7,
                resp_sn: 3,
                recv_us: 1000,
                reply_us: 1050,
                failures: 1
            })
        );
        assert_eq!(&p[20..], b"data");
        // Shorter than the header: echoed as it is.
        let mut short = vec![1u8, 2, 3];
        plus_reply(&mut short, 1, 2, 3, 4);
        assert_eq!(short, [1, 2, 3]);
        assert_eq!(Plus::read(&short), None);
    }
}
