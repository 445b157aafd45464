//! The Connection Request listener's sockets and threads (TR-069 §3.2.2), made to hold on a
//! port that faces the internet.
//!
//! One accept thread and a fixed pool of `max_connections` worker threads, started once: the
//! thread count does not move under attack, and no thread is created per connection. When every
//! worker is busy, a new connection evicts a connection still waiting for its request: first
//! the oldest that has not completed one (floods, slowloris), and only then a keep-alive one
//! that already got our challenge (an ACS about to answer it). Each connection has
//! `request_timeout` in total to deliver a whole head, read into one buffer of
//! `max_header_bytes` allocated when it is taken: nothing an attacker sends makes anything
//! bigger. The accept socket is polled, so the accept thread can be stopped and joined before
//! a rebind, even when its address has gone. The decisions are [`super::gate`]'s, the parsing
//! [`super::http`]'s.
//!
//! Why not `tiny_http` (the design's first choice): it starts a thread for every connection
//! without a cap, sets no read deadline, and reads a header line into a vector that grows
//! without bound; `benches/cr_attack.rs` measures both under the same attacks.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::gate::{Gate, Outcome, Reply};
use super::http::{self, Version};
use super::throttle::Source;

/// Requests served on one keep-alive connection (a Digest exchange needs two).
const MAX_REQUESTS_PER_CONNECTION: usize = 8;
/// Stack of a worker thread: parsing and digest hashing need little.
const CONNECTION_STACK: usize = 128 * 1024;
/// How long the accept thread waits for a worker to be free (an evicted connection's worker
/// is free within microseconds).
const EVICTION_WAIT: Duration = Duration::from_millis(200);
/// Connections the kernel queues before the accept thread takes them (capped by
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;
/// How often an idle accept thread looks for a connection or a stop.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// Whether a session is under way, as the listener needs to know (§3.2.2: requests before the
/// session starts make only one session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Idle = 0,
    /// An accepted request woke the agent; its session has not started yet.
    Pending = 1,
    Running = 2,
}

/// The socket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
}

/// What became of requests and connections, for the rate-limited summary log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Authenticated: a session started or joined (`200`).
    Accepted,
    /// Challenged without credentials (the first leg of Digest: not a rejection by itself).
    Challenged,
    /// Carried credentials that got a verdict (each answers a challenge).
    Answered,
    AuthFailed,
    Throttled,
    NotFound,
    BodyRefused,
    BadRequest,
    TooLarge,
    TimedOut,
    Evicted,
    Refused,
    RateLimited,
}

/// The rejections, as the summary names them (challenges that were never answered are
/// counted apart: `Challenged` minus `Answered`).
const REJECTIONS: [(Count, &str); 10] = [
    (Count::AuthFailed, "failed authentication"),
    (Count::Throttled, "throttled"),
    (Count::NotFound, "not found"),
    (Count::BodyRefused, "with a body"),
    (Count::BadRequest, "malformed"),
    (Count::TooLarge, "header too large"),
    (Count::TimedOut, "timed out"),
    (Count::Evicted, "evicted"),
    (Count::Refused, "refused (no free slot)"),
    (Count::RateLimited, "rate limited"),
];

/// Every counter, in the order of `Shared::counts`.
const COUNTS: [Count; 13] = [
    Count::Accepted,
    Count::Challenged,
    Count::Answered,
    Count::AuthFailed,
    Count::Throttled,
    Count::NotFound,
    Count::BodyRefused,
    Count::BadRequest,
    Count::TooLarge,
    Count::TimedOut,
    Count::Evicted,
    Count::Refused,
    Count::RateLimited,
];

/// Sources the summary names.
const TOP_SOURCES: usize = 3;

/// What the threads share.
struct Shared {
    gate: Mutex<Gate>,
    phase: AtomicU8,
    /// A request was accepted into a running session (coalesced, no wake-up) since the agent
    /// last looked ([`Listener::take_joined`]).
    joined: AtomicBool,
    wake: Box<dyn Fn() + Send + Sync>,
    limits: Limits,
    epoch: Instant,
    pool: Mutex<Pool>,
    /// Signalled when a connection is queued for the workers (or the pool closes).
    work: Condvar,
    /// Signalled when a worker becomes free.
    freed: Condvar,
    // usize, not u64: 32-bit MIPS has no 64-bit atomics (the ids only need to differ among the
    // connections alive at once; fetch_add wraps).
    next_id: AtomicUsize,
    counts: [AtomicUsize; COUNTS.len()],
}

/// The workers' state.
#[derive(Default)]
struct Pool {
    /// Connections being served, one per busy worker.
    slots: Vec<Slot>,
    /// A connection handed over by the accept thread, not yet taken by a worker.
    queued: Option<TcpStream>,
    /// Workers waiting for a connection.
    idle: usize,
    /// Workers started.
    workers: usize,
    /// The listener is gone: workers end.
    closed: bool,
}

/// A connection being served.
struct Slot {
    id: u64,
    /// When it started waiting for its current request.
    since: Instant,
    /// Waiting for or reading a request (may be evicted); false while answering one.
    reading: bool,
    /// Requests answered on it (a connection still open after one got our challenge: only
    /// wrong paths, hosts and heads close at once).
    served: usize,
    /// Shut down by eviction; its worker is about to be free.
    evicted: bool,
    stream: TcpStream,
}

/// What the UDP Connection Request shares with the TCP listener (see
/// [`Listener::admission`]).
#[derive(Clone)]
pub struct Admission(Arc<Shared>);

impl Admission {
    /// ConnectionRequestUsername and ConnectionRequestPassword as the gate has them.
    pub fn credentials(&self) -> (String, String) {
        let gate = lock(&self.0.gate);
        (
            gate.config().username.clone(),
            gate.config().password.clone(),
        )
    }

    /// Authenticates a request that came some other way (an XMPP connection request from
    /// `source`): `check` is given ConnectionRequestUsername and ConnectionRequestPassword and
    /// says whether the request holds them. The source's failures are throttled as a TCP
    /// source's are: once its allowance is spent, `check` is not called at all.
    pub fn authenticate(&self, source: Source, check: impl FnOnce(&str, &str) -> bool) -> Auth {
        let mut gate = lock(&self.0.gate);
        let now = self.0.now_ms();
        if !gate.throttle().allows(source, now) {
            gate.throttle().rejected(source, now);
            return Auth::Throttled;
        }
        // Nothing to check against: no request holds an empty password.
        let held = {
            let c = gate.config();
            !c.password.is_empty() && check(&c.username, &c.password)
        };
        if held {
            gate.throttle().succeeded(source, now);
            Auth::Ok
        } else {
            gate.throttle().failed(source, now);
            gate.throttle().rejected(source, now);
            Auth::Failed
        }
    }

    /// A request whose authentication held: it starts a session (the agent is woken), joins
    /// the one pending or running, or is over the rate limit, as a TCP request would.
    pub fn admit(&self) -> Outcome {
        let outcome = {
            let mut gate = lock(&self.0.gate);
            let phase = self.0.phase.load(Ordering::Acquire);
            let outcome = gate.admit(self.0.now_ms(), phase != Phase::Idle as u8);
            self.0.note_phase(outcome, phase);
            outcome
        };
        if outcome == Outcome::Accepted {
            (self.0.wake)();
        }
        outcome
    }
}

/// What [`Admission::authenticate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Ok,
    Failed,
    /// The source spent its allowance of failures: not verified.
    Throttled,
}

/// A bound socket and its accept thread.
pub(super) struct Bound {
    requested: SocketAddr,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Bound {
    /// Runs `body` in a thread named `name`, with the flag that stops it; `requested` is the
    /// address asked for, `local` the one bound.
    pub(super) fn start(
        name: &str,
        stack: usize,
        requested: SocketAddr,
        local: SocketAddr,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> io::Result<Bound> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name(name.into())
            .stack_size(stack)
            .spawn(move || body(flag))?;
        Ok(Bound {
            requested,
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// The address asked for and the one bound.
    pub(super) fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.requested, self.local)
    }

    /// Stops the thread and waits for it to end (its socket closed with it).
    pub(super) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The listener: rebindable, with the gate the agent reconfigures.
pub struct Listener {
    shared: Arc<Shared>,
    bound: Option<Bound>,
    summary_at: Instant,
    /// Challenges of the last summary's period not answered in it.
    unanswered: usize,
}

impl Listener {
    /// A listener (not bound yet). `wake` is called after a request was accepted and answered.
    pub fn new(gate: Gate, limits: Limits, wake: impl Fn() + Send + Sync + 'static) -> Listener {
        Listener {
            shared: Arc::new(Shared {
                gate: Mutex::new(gate),
                phase: AtomicU8::new(Phase::Idle as u8),
                joined: AtomicBool::new(false),
                wake: Box::new(wake),
                limits,
                epoch: Instant::now(),
                pool: Mutex::new(Pool::default()),
                work: Condvar::new(),
                freed: Condvar::new(),
                next_id: AtomicUsize::new(0),
                counts: Default::default(),
            }),
            bound: None,
            summary_at: Instant::now(),
            unanswered: 0,
        }
    }

    /// Binds `addr` (if not already bound to it) and starts accepting; an earlier socket is
    /// closed. On failure the earlier socket, if any, keeps serving. Returns the local address.
    pub fn bind(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        if let Some(b) = &self.bound {
            if b.requested == addr {
                return Ok(b.local);
            }
        }
        let socket = match listen(addr) {
            Ok(s) => s,
            // The old socket may hold the port (a wildcard address): close it and retry.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && self.bound.is_some() => {
                let old = self.bound.as_ref().map(|b| b.requested);
                self.unbind();
                match listen(addr) {
                    Ok(s) => s,
                    Err(e) => {
                        if let Some(old) = old {
                            let _ = self.bind(old);
                        }
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let local = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        self.unbind();
        self.start_workers();
        let shared = self.shared.clone();
        self.bound = Some(Bound::start(
            "cr-accept",
            CONNECTION_STACK,
            addr,
            local,
            move |stop| accept_loop(socket, shared, stop),
        )?);
        Ok(local)
    }

    /// Starts the workers that are missing (once; a failed start is retried at the next bind).
    fn start_workers(&self) {
        let missing = {
            let pool = lock(&self.shared.pool);
            self.shared
                .limits
                .max_connections
                .max(1)
                .saturating_sub(pool.workers)
        };
        for _ in 0..missing {
            let shared = self.shared.clone();
            let started = thread::Builder::new()
                .name("cr-conn".into())
                .stack_size(CONNECTION_STACK)
                .spawn(move || worker(&shared));
            match started {
                Ok(_) => lock(&self.shared.pool).workers += 1,
                Err(e) => {
                    log::warn!("connection requests: cannot start a worker: {e}");
                    break;
                }
            }
        }
    }

    /// Stops accepting and waits for the accept thread to end, so the address is free again
    /// (connections being served finish on their own).
    pub fn unbind(&mut self) {
        if let Some(b) = self.bound.take() {
            b.stop();
        }
    }

    /// The address asked for and the one bound, while bound.
    pub fn bound(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.bound.as_ref().map(Bound::addrs)
    }

    /// Tells the listener whether a session is under way.
    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::Release);
    }

    /// Whether a request joined a running session since the last call (and clears it): if
    /// that session failed, the request is still owed a session.
    pub fn take_joined(&self) -> bool {
        self.shared.joined.swap(false, Ordering::AcqRel)
    }

    /// Runs `f` on the gate (to reconfigure it).
    pub fn with_gate<R>(&self, f: impl FnOnce(&mut Gate) -> R) -> R {
        f(&mut lock(&self.shared.gate))
    }

    /// The way in for the UDP Connection Request (TR-069 Annex G): this listener's
    /// credentials, rate limit, session phase and wake-up, so that requests over both
    /// coalesce into one session.
    pub fn admission(&self) -> Admission {
        Admission(self.shared.clone())
    }

    /// Marks `sources` as trusted in the gate's throttle, as of now.
    pub fn trust(&self, sources: &[Source]) {
        let now = self.shared.now_ms();
        self.with_gate(|g| g.throttle().trust(sources, now));
    }

    /// Logs what was accepted and rejected since the last summary, with the sources most
    /// rejected, at most once per `every` (nothing when nothing happened).
    pub fn log_summary(&mut self, every: Duration) {
        let elapsed = self.summary_at.elapsed();
        if elapsed < every {
            return;
        }
        self.summary_at = Instant::now();
        if let Some(line) = self.summary(elapsed) {
            log::info!("{line}");
        }
    }

    /// The summary line of the counts since the last one (which it resets); `None` when
    /// nothing was accepted or rejected.
    fn summary(&mut self, elapsed: Duration) -> Option<String> {
        let mut n = [0usize; COUNTS.len()];
        for (v, c) in n.iter_mut().zip(&self.shared.counts) {
            *v = c.swap(0, Ordering::Relaxed);
        }
        let get = |k: Count| {
            COUNTS
                .iter()
                .position(|c| *c == k)
                .and_then(|i| n.get(i).copied())
                .unwrap_or(0)
        };
        let top = self.with_gate(|g| g.throttle().take_top(TOP_SOURCES));
        let mut parts = Vec::new();
        let mut total = 0;
        // A challenge answered (on its connection or another) shares that answer's fate. One
        // not answered by the end of the next summary's period never was (the nonce is stale
        // by then); answers go to the older challenges first.
        let answered = get(Count::Answered);
        let settled = self.unanswered.min(answered);
        let unanswered = self.unanswered - settled;
        self.unanswered = get(Count::Challenged).saturating_sub(answered - settled);
        if unanswered > 0 {
            total += unanswered;
            parts.push(format!("{unanswered} challenged, never answered"));
        }
        for (k, name) in REJECTIONS {
            let v = get(k);
            if v > 0 {
                total += v;
                parts.push(format!("{v} {name}"));
            }
        }
        let accepted = get(Count::Accepted);
        if total == 0 && accepted == 0 {
            return None;
        }
        let mut line = format!(
            "connection requests in the last {} s: {accepted} accepted, {total} rejected",
            elapsed.as_secs(),
        );
        if !parts.is_empty() {
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
        if !top.is_empty() {
            let named: Vec<String> = top.iter().map(|(s, v)| format!("{s} ({v})")).collect();
            line.push_str("; most rejected from ");
            line.push_str(&named.join(", "));
        }
        Some(line)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.unbind();
        lock(&self.shared.pool).closed = true;
        self.shared.work.notify_all();
    }
}

/// A listening socket with a backlog deep enough for a burst of connections (std's is 128),
/// `SO_REUSEADDR` (a rebind right after a close), and both families on `[::]`.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Where the system default is IPv6 only, [::] would not take IPv4.
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn count(&self, c: Count) {
        if let Some(i) = COUNTS.iter().position(|k| *k == c) {
            if let Some(n) = self.counts.get(i) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts a rejection and charges it to `peer`'s line of the summary.
    fn reject(&self, c: Count, peer: IpAddr) {
        self.count(c);
        let now = self.now_ms();
        lock(&self.gate).throttle().rejected(Source::of(peer), now);
    }

    /// After the gate's outcome, under its lock: an accepted request makes the session
    /// pending; one that joined a running session is noted (`phase` as read before).
    fn note_phase(&self, outcome: Outcome, phase: u8) {
        match outcome {
            Outcome::Accepted => self.phase.store(Phase::Pending as u8, Ordering::Release),
            Outcome::Coalesced if phase == Phase::Running as u8 => {
                self.joined.store(true, Ordering::Release)
            }
            _ => {}
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks a connection as waiting for a request (from now: a keep-alive connection that
    /// just got its challenge is younger than a slowloris one) or as being answered.
    fn set_reading(&self, id: u64, reading: bool) {
        if let Some(s) = lock(&self.pool).slots.iter_mut().find(|s| s.id == id) {
            if reading && !s.reading {
                s.since = Instant::now();
                s.served += 1;
            }
            s.reading = reading;
        }
    }
}

fn accept_loop(socket: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    // The poll interval starts at a millisecond after a connection and doubles up to
    // ACCEPT_POLL while none comes: a burst is accepted as fast as it arrives (the kernel's
    // backlog must not overflow into SYN retries), an idle listener wakes ten times a second.
    let mut idle = Duration::from_millis(1);
    while !stop.load(Ordering::Acquire) {
        match socket.accept() {
            Ok((stream, peer)) => {
                idle = Duration::from_millis(1);
                admit(&shared, stream, peer.ip());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(idle);
                idle = (idle * 2).min(ACCEPT_POLL);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of file descriptors or memory: let the system breathe instead of spinning.
            Err(e) => {
                log::debug!("connection request accept: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Hands a connection to a free worker. When none is free, a connection waiting for its
/// request is evicted: the oldest that has not completed a request first, then the oldest
/// idle keep-alive one.
fn admit(shared: &Shared, stream: TcpStream, peer: IpAddr) {
    // Accepted sockets do not inherit the listener's non-blocking mode on Linux; be sure.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let mut pool = lock(&shared.pool);
    let deadline = Instant::now() + EVICTION_WAIT;
    let mut evicted = false;
    loop {
        // The previous connection is taken by its worker at once; only then is it known
        // whether a worker is left.
        if pool.queued.is_none() {
            if pool.idle > 0 {
                break;
            }
            if !evicted {
                evicted = true;
                let victim = pool
                    .slots
                    .iter_mut()
                    .filter(|s| s.reading && !s.evicted)
                    .min_by_key(|s| (s.served > 0, s.since));
                if let Some(v) = victim {
                    v.evicted = true;
                    let _ = v.stream.shutdown(Shutdown::Both);
                    shared.count(Count::Evicted);
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            drop(pool);
            shared.reject(Count::Refused, peer);
            return;
        }
        pool = match shared.freed.wait_timeout(pool, left) {
            Ok((p, _)) => p,
            Err(e) => e.into_inner().0,
        };
    }
    pool.queued = Some(stream);
    shared.work.notify_one();
}

/// A worker: serves one connection at a time, for the listener's life.
fn worker(shared: &Shared) {
    let mut pool = lock(&shared.pool);
    loop {
        pool.idle += 1;
        shared.freed.notify_all();
        while pool.queued.is_none() && !pool.closed {
            pool = match shared.work.wait(pool) {
                Ok(p) => p,
                Err(e) => e.into_inner(),
            };
        }
        pool.idle -= 1;
        if pool.closed {
            pool.workers -= 1;
            return;
        }
        let Some(stream) = pool.queued.take() else {
            continue;
        };
        shared.freed.notify_all();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        match stream.try_clone() {
            Ok(handle) => pool.slots.push(Slot {
                id,
                since: Instant::now(),
                reading: true,
                served: 0,
                evicted: false,
                stream: handle,
            }),
            Err(_) => continue,
        }
        drop(pool);
        serve(shared, stream, id);
        pool = lock(&shared.pool);
        pool.slots.retain(|s| s.id != id);
    }
}

/// Serves the requests of one connection until it closes, errs, times out or is evicted.
fn serve(shared: &Shared, mut stream: TcpStream, id: u64) {
    // An address that cannot be known counts as 0.0.0.0 (one source for all of them).
    let peer = stream
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let limits = shared.limits;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.request_timeout));
    let mut buf: Vec<u8> = Vec::with_capacity(limits.max_header_bytes);
    for n in 1..=MAX_REQUESTS_PER_CONNECTION {
        shared.set_reading(id, true);
        let end = match read_head(&mut stream, &mut buf, &limits) {
            Ok(end) => end,
            Err(ReadEnd::TooLarge) => {
                shared.reject(Count::TooLarge, peer);
                answer(&mut stream, Version::Http11, 431, &[], true);
                return;
            }
            Err(ReadEnd::TimedOut) => {
                shared.reject(Count::TimedOut, peer);
                return;
            }
            Err(ReadEnd::Closed) => return,
        };
        shared.set_reading(id, false);
        let (reply, close) = match http::parse_head(buf.get(..end).unwrap_or_default()) {
            Err(e) => {
                log::debug!("connection request from {peer}: {e}");
                shared.reject(Count::BadRequest, peer);
                answer(&mut stream, Version::Http11, 400, &[], true);
                return;
            }
            Ok(head) => {
                let reply = decide(shared, &head, peer);
                let close = reply.close || head.close || n == MAX_REQUESTS_PER_CONNECTION;
                answer(
                    &mut stream,
                    head.version,
                    reply.status,
                    &reply.challenges,
                    close,
                );
                (reply, close)
            }
        };
        // Per-request lines only at debug: with the credentials known, these could otherwise
        // flood the log at wire speed. The summary counts the refusals (`decide` charged them
        // to their source).
        match reply.outcome {
            Outcome::Accepted => {
                log::info!("connection request from {peer}: accepted");
                // §3.2.2: the answer goes out before the session starts.
                (shared.wake)();
            }
            Outcome::Coalesced => log::debug!("connection request from {peer}: coalesced"),
            Outcome::RateLimited => {
                log::debug!("connection request from {peer}: refused (rate limit)");
            }
            _ => {}
        }
        if close {
            return;
        }
        buf.drain(..end.min(buf.len()));
    }
}

/// The gate's answer, with the session phase read and set under the gate's lock so two
/// simultaneous requests cannot both start a session; counted, a rejection charged to `peer`.
fn decide(shared: &Shared, head: &http::Head<'_>, peer: IpAddr) -> Reply {
    let mut random = [0u8; 8];
    // A failing system RNG leaves the nonce's random part zero; its MAC and time still make it
    // unique per millisecond and unforgeable.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let mut gate = lock(&shared.gate);
    let phase = shared.phase.load(Ordering::Acquire);
    let now = shared.now_ms();
    let reply = gate.decide(head, peer, now, random, phase != Phase::Idle as u8);
    shared.note_phase(reply.outcome, phase);
    let (count, rejected) = match reply.outcome {
        Outcome::Accepted | Outcome::Coalesced => (Some(Count::Accepted), false),
        Outcome::Challenged => (Some(Count::Challenged), false),
        // Right credentials on an old nonce: a challenge again, answered by the retry.
        Outcome::Stale => (None, false),
        Outcome::RateLimited => (Some(Count::RateLimited), true),
        Outcome::AuthFailed => (Some(Count::AuthFailed), true),
        Outcome::Throttled => (Some(Count::Throttled), true),
        Outcome::NotFound => (Some(Count::NotFound), true),
        Outcome::BodyRefused => (Some(Count::BodyRefused), true),
    };
    if head.authorization.is_some() && reply.outcome != Outcome::Throttled {
        shared.count(Count::Answered);
    }
    if let Some(c) = count {
        shared.count(c);
    }
    if rejected {
        gate.throttle().rejected(Source::of(peer), now);
    }
    reply
}

enum ReadEnd {
    TooLarge,
    TimedOut,
    Closed,
}

/// Reads into `buf` (never beyond its capacity) until it holds a whole head, within the
/// request deadline. Returns the head's length.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: &Limits) -> Result<usize, ReadEnd> {
    let deadline = Instant::now() + limits.request_timeout;
    let mut chunk = [0u8; 1024];
    // Bytes already searched for the end of the head (each read only adds to it).
    let mut scanned = 0usize;
    loop {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        let skip = http::skip_leading_newlines(buf);
        if skip > 0 {
            buf.drain(..skip);
            scanned = 0;
        }
        // The end marker is at most 4 bytes: resume 3 bytes before where the last search
        // stopped, so a head trickled byte by byte costs linear time, not quadratic.
        let from = scanned.saturating_sub(3);
        if let Some(end) = buf.get(from..).and_then(http::head_end) {
            return Ok(from + end);
        }
        scanned = buf.len();
        let room = limits.max_header_bytes.saturating_sub(buf.len());
        if room == 0 {
            return Err(ReadEnd::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadEnd::TimedOut);
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadEnd::Closed);
        }
        let want = room.min(chunk.len());
        match stream.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => return Err(ReadEnd::Closed),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadEnd::TimedOut)
            }
            Err(_) => return Err(ReadEnd::Closed),
        }
    }
}

/// Writes an answer; a connection that ends is shut down for writing so the client sees the
/// whole answer before the close.
fn answer(
    stream: &mut TcpStream,
    version: Version,
    status: u16,
    challenges: &[String],
    close: bool,
) {
    let bytes = http::response(version, status, challenges, close);
    let _ = stream.write_all(&bytes);
    if close {
        let _ = stream.shutdown(Shutdown::Write);
    }
}
