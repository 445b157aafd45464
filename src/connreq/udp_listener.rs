//! The UDP Connection Request port (TR-069 Annex G, TR-111 Part 2): one socket and one thread
//! (`cr-udp`) that does two things on it.
//!
//! - **STUN** ([`crate::stun::binding`]): the Binding Requests go out of this port (the
//!   *primary* port), so the binding the STUN server sees is the one an ACS reaches the CPE
//!   through; the binding timeout discovery sends its probes from a second socket, open only
//!   while it runs. What the client learns (the public address, NATDetected) is published in
//!   [`Status`] and the agent is told ([`UdpListener::new`]'s `on_status`).
//! - **UDP Connection Requests** ([`super::udp`]): a datagram that is not an answer of the
//!   STUN server to a transaction under way is read as a request: parsed within 1 KiB, its
//!   signature checked first, then the username, the time window and the replay table; one
//!   that holds goes through the TCP listener's [`Admission`] (the same rate limit, the same
//!   coalescing into the session pending or running, the same wake-up).
//!
//! This port faces the internet, and UDP sources are forged at will: nothing is answered (a
//! probe learns nothing, and the port cannot reflect traffic at anyone), nothing is charged to
//! a source (a forger would lock the ACS out), nothing grows (one buffer, read into again; a
//! request's fields are at most 256 bytes, freed with it), each datagram costs at most one
//! parse and one HMAC-SHA1, and the thread reads at most 64
//! datagrams per socket between two looks at its timers, so a flood delays the STUN client by
//! a few milliseconds, never stops it; the kernel drops what the socket buffer cannot hold.
//! Rejections are counted and summarised in the log at most once per summary interval.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use ring::rand::SecureRandom;

use super::gate::Outcome;
use super::listener::{lock, Admission, Bound};
use super::udp::{self, Refusal};
use crate::stun::binding::{self, Binding, Discovery, Port};

/// The stack of the thread: parsing and HMACs need little.
const STACK: usize = 128 * 1024;
/// The longest the thread waits before it looks at its stop flag and settings again.
const TICK: Duration = Duration::from_millis(200);
/// Datagrams read from one socket between two looks at the timers.
const BURST: usize = 64;
/// A buffer larger than any datagram read as a request or a STUN answer: a longer one is
/// truncated, and both parsers refuse it by its length.
const BUFFER: usize = 2048;
/// The socket's receive buffer (root may go past `net.core.rmem_max`): kernel memory used
/// only while datagrams wait, it rides out a few milliseconds of the thread not running under a
/// flood of full-size datagrams, so a valid request behind them is not dropped.
const RECEIVE_BUFFER: usize = 1 << 20;
/// Before this time (2020-09-13) the CPE's clock is taken as not set: a request's `ts` is then
/// not compared with it (only with the newest accepted).
const CLOCK_SET: u64 = 1_600_000_000;

/// What the agent's data model says, resolved by [`super::ConnReq`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The STUN client's settings (`None`: STUNEnable is false, or the server is unknown).
    pub stun: Option<binding::Config>,
    /// The primary port's own address towards the STUN server (NATDetected compares the
    /// mapped address with it).
    pub local: Option<SocketAddr>,
    /// Seconds a request's `ts` may differ from the CPE's clock.
    pub window: u64,
    /// How often the rejections are summarised in the log.
    pub summary_interval: Duration,
}

/// What the STUN client learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The public address and port of the binding (UDPConnectionRequestAddress with STUN).
    pub public: Option<SocketAddr>,
    /// NATDetected.
    pub nat_detected: bool,
    /// The keep-alive period in use, seconds (0 without STUN).
    pub period: u32,
}

/// What the thread shares with the agent's side.
struct Shared {
    admission: Admission,
    /// The settings and their generation (the thread re-reads them when it moved).
    settings: Mutex<(u64, Settings)>,
    status: Mutex<Status>,
    on_status: Box<dyn Fn() + Send + Sync>,
    /// What was accepted: kept across rebinds (a new WAN address, STUN toggled), so a request
    /// seen before cannot be replayed at the new socket.
    replay: Mutex<udp::Replay>,
    /// `on_status` was called and the agent has not read the status since: one call pending
    /// at most, however fast the status moves.
    told: AtomicBool,
    epoch: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The UDP port: rebindable, with settings the agent updates.
pub struct UdpListener {
    shared: Arc<Shared>,
    bound: Option<Bound>,
}

impl UdpListener {
    /// A port (not bound yet) admitting requests through `admission`; `on_status` is called
    /// (from the thread) when [`UdpListener::status`] changed.
    pub fn new(admission: Admission, on_status: impl Fn() + Send + Sync + 'static) -> UdpListener {
        UdpListener {
            shared: Arc::new(Shared {
                admission,
                settings: Mutex::new((0, Settings::default())),
                status: Mutex::new(Status::default()),
                on_status: Box::new(on_status),
                told: AtomicBool::new(false),
                replay: Mutex::new(udp::Replay::default()),
                epoch: Instant::now(),
            }),
            bound: None,
        }
    }

    /// Binds `addr` (unless already bound to it) and starts the thread; an earlier socket is
    /// closed first. Returns the local address.
    pub fn bind(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        if let Some((requested, local)) = self.bound() {
            if requested == addr {
                return Ok(local);
            }
        }
        self.unbind();
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        // Best effort: without the privilege the default stays.
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::RcvBufForce,
            &RECEIVE_BUFFER,
        );
        let local = socket.local_addr()?;
        let shared = self.shared.clone();
        self.bound = Some(Bound::start("cr-udp", STACK, addr, local, move |stop| {
            run(&socket, &shared, &stop)
        })?);
        Ok(local)
    }

    /// Closes the socket (its thread joined: the port is free again). What STUN learned is
    /// forgotten.
    pub fn unbind(&mut self) {
        if let Some(b) = self.bound.take() {
            b.stop();
            *lock(&self.shared.status) = Status::default();
        }
    }

    /// The address asked for and the one bound, while bound.
    pub fn bound(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.bound.as_ref().map(Bound::addrs)
    }

    /// New settings (taken by the thread within [`TICK`]; nothing happens when they are the
    /// same).
    pub fn configure(&self, settings: Settings) {
        let mut s = lock(&self.shared.settings);
        if s.1 != settings {
            s.0 = s.0.wrapping_add(1);
            s.1 = settings;
        }
    }

    /// What the STUN client learned (the default while unbound or without STUN).
    pub fn status(&self) -> Status {
        self.shared.told.store(false, Ordering::Release);
        lock(&self.shared.status).clone()
    }
}

impl Drop for UdpListener {
    fn drop(&mut self) {
        self.unbind();
    }
}

/// What became of datagrams since the last summary.
#[derive(Debug, Default)]
struct Counts {
    accepted: u64,
    /// Copies of a request already accepted (an ACS sends several): not a rejection.
    repeated: u64,
    malformed: u64,
    signature: u64,
    username: u64,
    stale: u64,
    no_password: u64,
    rate_limited: u64,
    /// Neither a STUN answer of ours nor a request.
    other: u64,
}

impl Counts {
    fn rejections(&self) -> u64 {
        self.malformed
            + self.signature
            + self.username
            + self.stale
            + self.no_password
            + self.rate_limited
            + self.other
    }
}

/// The thread: the STUN client's timers, then the datagrams, until `stop`.
fn run(socket: &UdpSocket, shared: &Shared, stop: &AtomicBool) {
    let mut generation = u64::MAX;
    let mut settings = Settings::default();
    let mut client: Option<Binding> = None;
    let mut discovery = Discovery::Idle;
    let mut second: Option<UdpSocket> = None;

    let mut counts = Counts::default();
    let mut summary_at = Instant::now();
    let mut buf = vec![0u8; BUFFER];
    let rng = ring::rand::SystemRandom::new();
    while !stop.load(Ordering::Acquire) {
        let now = shared.now_ms();
        {
            let s = lock(&shared.settings);
            if s.0 != generation {
                generation = s.0;
                settings = s.1.clone();
                match (&settings.stun, &mut client) {
                    (Some(c), Some(b)) => b.reconfigure(c.clone(), now),
                    (Some(c), None) => client = Some(Binding::new(c.clone(), now)),
                    (None, _) => client = None,
                }
                if let Some(b) = &mut client {
                    b.set_local(settings.local);
                }
            }
        }
        if let Some(b) = &mut client {
            for _ in 0..8 {
                let mut id = [0u8; 16];
                // A failing system RNG leaves the ID zero: the next transaction then reuses
                // it, which only a server that sees both could confuse.
                let _ = rng.fill(&mut id);
                let Some(out) = b.poll(now, id) else {
                    break;
                };
                let sent = match out.port {
                    Port::Primary => socket.send_to(&out.bytes, family(socket, out.to)),
                    Port::Secondary => secondary(&mut second, socket)
                        .and_then(|s| s.send_to(&out.bytes, family(s, out.to))),
                };
                if let Err(e) = sent {
                    log::debug!("STUN: cannot send to {}: {e}", out.to);
                }
            }
            if !matches!(b.discovery(), Discovery::Searching { .. }) {
                second = None;
            }
            if b.discovery() != discovery {
                discovery = b.discovery();
                match discovery {
                    Discovery::Found(t) => log::info!(
                        "STUN: the NAT keeps the binding at least {t} s; a keep-alive every {} s",
                        b.period()
                    ),
                    Discovery::Unsupported => log::info!(
                        "STUN: the server does not honour RESPONSE-ADDRESS (no binding timeout \
                         discovery); a keep-alive every {} s",
                        b.period()
                    ),
                    _ => {}
                }
            }
        } else {
            second = None;
        }
        publish(shared, client.as_ref());
        // Before the wait: the last window of a flood is told when it ends, not when the next
        // datagram comes.
        if summary_at.elapsed() >= settings.summary_interval.max(Duration::from_secs(1)) {
            summarise(&counts, summary_at.elapsed());
            counts = Counts::default();
            summary_at = Instant::now();
        }
        let wait = client.as_ref().map_or(TICK, |b| {
            Duration::from_millis(b.next_at().saturating_sub(shared.now_ms())).min(TICK)
        });
        if !wait_readable(socket, second.as_ref(), wait) {
            continue;
        }
        for _ in 0..BURST {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            // An IPv4 peer of a dual-stack socket, as the STUN client knows it.
            let from = SocketAddr::new(from.ip().to_canonical(), from.port());
            let data = buf.get(..n).unwrap_or_default();
            let now = shared.now_ms();
            if client
                .as_mut()
                .is_some_and(|b| b.receive(Port::Primary, from, data, now))
            {
                continue;
            }
            if data.starts_with(b"GET ") {
                request(shared, &mut counts, &settings, from, data);
            } else {
                counts.other += 1;
            }
        }
        if let (Some(s), Some(b)) = (&second, &mut client) {
            for _ in 0..BURST {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    break;
                };
                let data = buf.get(..n).unwrap_or_default();
                let from = SocketAddr::new(from.ip().to_canonical(), from.port());
                b.receive(Port::Secondary, from, data, shared.now_ms());
            }
        }
    }
}

/// `to` as the socket can send to it: an IPv4 address mapped into IPv6 for an IPv6 socket
/// (`[::]:7547` takes both).
fn family(socket: &UdpSocket, to: SocketAddr) -> SocketAddr {
    match (socket.local_addr(), to) {
        (Ok(SocketAddr::V6(_)), SocketAddr::V4(v4)) => {
            SocketAddr::new(std::net::IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => to,
    }
}

/// The second socket of the binding timeout discovery, opened on first use (any port, the
/// primary's address family).
fn secondary<'a>(
    second: &'a mut Option<UdpSocket>,
    primary: &UdpSocket,
) -> io::Result<&'a UdpSocket> {
    if second.is_none() {
        let mut any = primary.local_addr()?;
        any.set_port(0);
        let s = UdpSocket::bind(any)?;
        s.set_nonblocking(true)?;
        *second = Some(s);
    }
    second
        .as_ref()
        .ok_or_else(|| io::Error::other("no second socket"))
}

/// Waits up to `wait` for a datagram on either socket. Returns whether one may be there.
fn wait_readable(primary: &UdpSocket, second: Option<&UdpSocket>, wait: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags};
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    let mut fds = vec![PollFd::new(primary.as_fd(), PollFlags::POLLIN)];
    if let Some(s) = second {
        fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, ms) {
        Ok(n) => n > 0,
        Err(nix::errno::Errno::EINTR) => false,
        Err(_) => {
            thread::sleep(wait);
            false
        }
    }
}

/// Sets [`Status`] from the client and tells the agent when it changed.
fn publish(shared: &Shared, client: Option<&Binding>) {
    let now = match client {
        Some(b) => Status {
            public: b.public(),
            nat_detected: b.nat_detected(),
            period: b.period(),
        },
        None => Status::default(),
    };
    let changed = {
        let mut s = lock(&shared.status);
        if *s == now {
            false
        } else {
            if s.public != now.public || s.nat_detected != now.nat_detected {
                log::info!(
                    "STUN: the UDP Connection Request binding is {}{}",
                    now.public
                        .map_or_else(|| "unknown".to_string(), binding::authority),
                    if now.nat_detected {
                        " (behind a NAT)"
                    } else {
                        ""
                    }
                );
            }
            let moved = s.public != now.public || s.nat_detected != now.nat_detected;
            *s = now;
            moved
        }
    };
    if changed && !shared.told.swap(true, Ordering::AcqRel) {
        (shared.on_status)();
    }
}

/// A datagram that may be a UDP Connection Request.
fn request(
    shared: &Shared,
    counts: &mut Counts,
    settings: &Settings,
    from: SocketAddr,
    data: &[u8],
) {
    let parsed = udp::parse(data);
    // The credentials (under the gate's lock) only for what parsed.
    let (username, password) = match parsed {
        Ok(_) => shared.admission.credentials(),
        Err(_) => (String::new(), String::new()),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .ok()
        .filter(|s| *s >= CLOCK_SET);
    let verdict = parsed
        .and_then(|r| lock(&shared.replay).check(&r, &username, &password, now, settings.window));
    match verdict {
        Ok(()) => match shared.admission.admit() {
            Outcome::Accepted => {
                counts.accepted += 1;
                log::info!("connection request over UDP from {}", from.ip());
            }
            Outcome::RateLimited => counts.rate_limited += 1,
            _ => counts.accepted += 1,
        },
        Err(Refusal::Replay) => counts.repeated += 1,
        Err(Refusal::Malformed) => counts.malformed += 1,
        Err(Refusal::Signature) => counts.signature += 1,
        Err(Refusal::Username) => counts.username += 1,
        Err(Refusal::Stale) => counts.stale += 1,
        Err(Refusal::NoPassword) => counts.no_password += 1,
    }
}

/// One log line for what was rejected since the last one (nothing when nothing was).
fn summarise(c: &Counts, elapsed: Duration) {
    if c.rejections() == 0 {
        return;
    }
    let parts: Vec<String> = [
        (c.accepted, "accepted"),
        (c.repeated, "repeated"),
        (c.signature, "with a wrong signature"),
        (c.username, "for another username"),
        (c.stale, "stale"),
        (c.malformed, "malformed"),
        (c.no_password, "without a password set"),
        (c.rate_limited, "rate limited"),
        (c.other, "other datagrams"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    log::info!(
        "UDP connection requests in the last {} s: {}",
        elapsed.as_secs(),
        parts.join(", ")
    );
}
