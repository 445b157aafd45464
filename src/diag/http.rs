//! TR-143 DownloadDiagnostics and UploadDiagnostics over HTTP: GET a URL, or PUT generated
//! bytes to it, on one or more TCP connections at once, and time each step as the data model
//! asks (OS: TCP sockets, the clocks, a thread per connection; nothing is read from or written
//! to any file: a download's body is counted and dropped, an upload's is sent from one buffer).
//!
//! Per connection (TR-143 §4.1 and §4.2, TR-181 DownloadDiagnostics and UploadDiagnostics):
//! TCPOpenRequestTime when the connect starts, TCPOpenResponseTime when it is established, then
//!
//! - download: ROMTime when the GET is sent, BOMTime when the first byte of the response
//!   arrives, EOMTime when the last byte of the body arrives; TestBytesReceived counts every
//!   byte read from BOM to EOM, the response head included;
//! - upload: ROMTime when the PUT is sent, BOMTime when the first byte of its body is sent,
//!   EOMTime when the final (`2xx`) response arrives. TR-181's upload descriptions repeat the
//!   download's words ("sends the GET", "first data packet is received"); these are TR-143's, as
//!   TR-098 UploadDiagnostics words them. TestBytesSent counts the request head ("including
//!   HTTP headers", as the download counts its head) and the body as sent, chunk framing
//!   included.
//!
//! A time-based test (TimeBasedTestDuration) runs for its duration from the test's BOMTime (the
//! earliest connection's): a download stops reading then (EOMTime is that moment), an upload
//! (sent with `chunked` coding) finishes the chunk under way, sends the last chunk and waits
//! for the response. Without a duration each download connection fetches the whole body and
//! each upload connection sends TestFileLength bytes (`Content-Length`).
//!
//! Times are wall-clock microseconds taken from one reading of the wall clock and the monotonic
//! clock at the start, so they are ordered whatever NTP does meanwhile.
//!
//! The interface's bytes (TotalBytesReceived, TotalBytesSent: per connection, per test, under
//! full loading, per increment) are the differences of its counters read at the two ends of
//! the span, the counters "at BOMTime" being read before the request is sent (the test's
//! before any connection's, a connection's before its own: a BOM is known only once the first
//! read returns, later than the bytes it returns arrived). They are the counters of
//! `/proc/thread-self/net/dev`, the same figures as
//! `/sys/class/net/DEV/statistics/{rx,tx}_bytes` (both are `dev_get_stats`) but of the network
//! namespace of the thread that reads them, where sysfs shows the namespace it was mounted in.
//! The interface is the one given, else the one holding the local address the kernel picks
//! for the server (a connected UDP socket's, matched against the interfaces' addresses); when
//! neither is known, or the counters cannot be read, those figures are `None` (TR-181: "cannot
//! be determined", reported as 0).
//!
//! Full loading (TR-181 PeriodOfFullLoading and the …UnderFullLoading figures) is the span
//! from the latest connection's BOM to the earliest connection's EOM, when every connection
//! was transferring (its counters are read when that BOM is seen, the others transferring
//! already); there is none when one connection ended before another began.
//!
//! Incremental results (TR-181 IncrementalResult: a time-based test with a
//! TimeBasedTestMeasurementInterval): from the test's BOM plus TimeBasedTestMeasurementOffset,
//! one result per whole interval that fits in the test's duration, at most [`MAX_INCREMENTS`]:
//! the test bytes of every connection and the interface's bytes between its StartTime and
//! EndTime. The calling thread takes them while the connections run; an interval that ends
//! with the test's duration takes the figures of the test's EOM, so that without an offset the
//! increments add up to the test's bytes exactly.
//!
//! The responses: a status line and headers within [`MAX_HEAD`] bytes. A download wants `200`
//! and a body delimited by `Content-Length`, by `chunked` transfer coding, or by the close of
//! the connection; an upload wants a `2xx` after any `1xx`, its body is not read. Every read and
//! write has the test's deadline and looks at the cancel flag at least every [`SLICE`]; when
//! one connection fails the others stop, and the test reports that failure.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::http::url::Url;

/// Bytes of status line and headers read before the response is refused (for an upload: every
/// head of the response together, interim `1xx` ones included).
pub const MAX_HEAD: usize = 16 * 1024;
/// The most connections of one test (TR-181 DownloadDiagnosticMaxConnections,
/// UploadDiagnosticsMaxConnections).
pub const MAX_CONNECTIONS: u32 = 8;
/// The longest one read or write waits before the test looks at its cancel flag again.
pub use super::SLICE;
/// An upload's chunk.
const BUF: usize = 64 * 1024;
/// A download connection's read buffer: 256 KiB reads (with the read timeout set once, not per
/// read) took a 1 GiB download over a veth pair from about 1.9 to 2.8 GB/s on a 2-core machine
/// (curl's about 2.2 there).
const READ_BUF: usize = 256 * 1024;
/// A connection's thread's stack (its buffers are on the heap).
const STACK: usize = 256 * 1024;
/// The most incremental results of one test (TR-181 DownloadDiagnosticsMaxIncrementalResult,
/// UploadDiagnosticsMaxIncrementalResult).
pub const MAX_INCREMENTS: usize = 100;
/// The most of `/proc/thread-self/net/dev` read (about 150 bytes an interface).
const MAX_NET_DEV: u64 = 256 * 1024;

/// What to download and how.
#[derive(Debug, Clone)]
pub struct Download {
    /// `http://HOST[:PORT]/PATH` (TR-181 DownloadURL).
    pub url: String,
    /// The server's address family (TR-181 ProtocolVersion): `Some(true)` IPv6 only,
    /// `Some(false)` IPv4 only, `None` the first address the name has.
    pub ipv6: Option<bool>,
    pub interface: Option<String>,
    pub dscp: u8,
    /// Connections opened at once, each fetching the URL (TR-181 NumberOfConnections).
    pub connections: u32,
    /// A time-based test: stop every connection when this long has passed since the test's
    /// BOMTime (TR-181 TimeBasedTestDuration); `None`: each fetches the whole body.
    pub duration: Option<Duration>,
    /// Incremental results every this long, in a time-based test (TR-181
    /// TimeBasedTestMeasurementInterval; `None` or zero: none).
    pub measurement_interval: Option<Duration>,
    /// The first increment starts this long after the test's BOMTime (TR-181
    /// TimeBasedTestMeasurementOffset).
    pub measurement_offset: Duration,
    /// The longest the whole test may take.
    pub limit: Duration,
}

/// What to upload and how.
#[derive(Debug, Clone)]
pub struct Upload {
    /// `http://HOST[:PORT]/PATH` (TR-181 UploadURL), the target of the PUT.
    pub url: String,
    /// The server's address family, as [`Download::ipv6`].
    pub ipv6: Option<bool>,
    pub interface: Option<String>,
    pub dscp: u8,
    /// Connections opened at once, each sending its own PUT (TR-181 NumberOfConnections).
    pub connections: u32,
    /// The bytes of body each connection sends when the test is not time-based (TR-181
    /// TestFileLength; `Content-Length`).
    pub file_length: u64,
    /// A time-based test: each connection sends (with `chunked` coding) until this long has
    /// passed since the test's BOMTime (TR-181 TimeBasedTestDuration); `file_length` is then
    /// not used.
    pub duration: Option<Duration>,
    /// Incremental results every this long, in a time-based test (TR-181
    /// TimeBasedTestMeasurementInterval; `None` or zero: none).
    pub measurement_interval: Option<Duration>,
    /// The first increment starts this long after the test's BOMTime (TR-181
    /// TimeBasedTestMeasurementOffset).
    pub measurement_offset: Duration,
    /// The longest the whole test may take.
    pub limit: Duration,
}

/// One connection's figures; times in microseconds since the Unix epoch (TR-181
/// PerConnectionResult).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub tcp_open_request_us: u64,
    pub tcp_open_response_us: u64,
    pub rom_us: u64,
    pub bom_us: u64,
    pub eom_us: u64,
    /// TestBytesReceived (download: every byte read from BOM to EOM, the head included) or
    /// TestBytesSent (upload: the request head and the body as sent, chunk framing included).
    pub test_bytes: u64,
    /// Bytes of the body alone: a download's, or an upload's data without its chunk framing.
    pub body_bytes: u64,
    /// The interface's bytes received from this connection's BOM to its EOM (all its traffic,
    /// the other connections' too); `None` when they cannot be determined.
    pub total_bytes_received: Option<u64>,
    /// The interface's bytes sent from this connection's BOM to its EOM.
    pub total_bytes_sent: Option<u64>,
}

/// One interval of a time-based test (TR-181 IncrementalResult); times in microseconds since
/// the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Increment {
    pub start_us: u64,
    pub end_us: u64,
    /// The test bytes of every connection from StartTime to EndTime (TestBytesReceived or
    /// TestBytesSent).
    pub test_bytes: u64,
    /// The interface's bytes received from StartTime to EndTime.
    pub total_bytes_received: Option<u64>,
    /// The interface's bytes sent from StartTime to EndTime.
    pub total_bytes_sent: Option<u64>,
}

/// The span when every connection was transferring: from the latest BOM to the earliest EOM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FullLoading {
    /// PeriodOfFullLoading, in microseconds.
    pub period_us: u64,
    /// TestBytesReceivedUnderFullLoading or TestBytesSentUnderFullLoading: every connection's.
    pub test_bytes: u64,
    /// TotalBytesReceivedUnderFullLoading.
    pub total_bytes_received: Option<u64>,
    /// TotalBytesSentUnderFullLoading.
    pub total_bytes_sent: Option<u64>,
}

/// A test's figures (TR-181 DownloadDiagnostics, UploadDiagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Test {
    /// Every connection's figures, in the order they were opened (PerConnectionResult).
    pub connections: Vec<Connection>,
    /// Every whole interval of a time-based test, in order (IncrementalResult).
    pub incremental: Vec<Increment>,
    /// The interface's bytes received from the test's BOM to its EOM (TotalBytesReceived);
    /// `None` when they cannot be determined.
    pub total_bytes_received: Option<u64>,
    /// The interface's bytes sent from the test's BOM to its EOM (TotalBytesSent).
    pub total_bytes_sent: Option<u64>,
    /// When every connection was transferring at once; `None` when one ended before another
    /// began.
    pub full_loading: Option<FullLoading>,
    /// The local address of the first connection (IPAddressUsed).
    pub ip_address_used: Option<IpAddr>,
    /// The netdev whose counters gave the interface's bytes: the one given, else the one of
    /// the route to the server.
    pub device: Option<String>,
}

impl Test {
    /// ROMTime: the earliest across the connections (0 without any).
    pub fn rom_us(&self) -> u64 {
        self.connections.iter().map(|c| c.rom_us).min().unwrap_or(0)
    }

    /// BOMTime: the earliest across the connections.
    pub fn bom_us(&self) -> u64 {
        self.connections.iter().map(|c| c.bom_us).min().unwrap_or(0)
    }

    /// EOMTime: the latest across the connections.
    pub fn eom_us(&self) -> u64 {
        self.connections.iter().map(|c| c.eom_us).max().unwrap_or(0)
    }

    /// TCPOpenRequestTime: the latest across the connections.
    pub fn tcp_open_request_us(&self) -> u64 {
        self.connections
            .iter()
            .map(|c| c.tcp_open_request_us)
            .max()
            .unwrap_or(0)
    }

    /// TCPOpenResponseTime: the latest across the connections.
    pub fn tcp_open_response_us(&self) -> u64 {
        self.connections
            .iter()
            .map(|c| c.tcp_open_response_us)
            .max()
            .unwrap_or(0)
    }

    /// TestBytesReceived or TestBytesSent: the sum across the connections.
    pub fn test_bytes(&self) -> u64 {
        self.connections
            .iter()
            .fold(0u64, |s, c| s.saturating_add(c.test_bytes))
    }
}

/// Which test an error ended: the same failure is named differently in the two objects'
/// DiagnosticsState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

/// Why a test ended without its figures; [`TestError::state`] names the DiagnosticsState.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// Not an `http://` URL, or a value that cannot be honoured (`Error_Other`; the data model
    /// refuses such values when they are set).
    Invalid(String),
    /// The host name does not resolve (`Error_CannotResolveHostName`).
    Resolve(String),
    /// No route to the server: the network or host is unreachable (`Error_NoRouteToHost`).
    NoRoute(String),
    /// The connection could not be made: refused, not answered, no such interface
    /// (`Error_InitConnectionFailed`).
    Connect(String),
    /// No response, or not the one wanted: closed before a response, a status other than
    /// `200` (download) or `2xx` (upload), a head that is not HTTP/1.x or too long
    /// (`Error_NoResponse`).
    NoResponse(String),
    /// The transfer broke: the connection failed or closed before the end of the body
    /// (download `Error_TransferFailed`, upload `Error_NoTransferComplete`).
    Transfer(String),
    /// The test's limit passed before it ended (`Error_Timeout`).
    Timeout(String),
    /// The caller cancelled the test (the state becomes `None`: TR-181 DiagnosticsState,
    /// "Canceled").
    Cancelled,
    /// A connection's thread could not start or failed (`Error_Internal`).
    Internal(String),
}

/// The name the download's API had, kept for its callers.
pub type DownloadError = TestError;
/// The errors of an upload: the same as a download's.
pub type UploadError = TestError;

impl TestError {
    /// The DiagnosticsState this error leaves in the object of `direction`.
    pub fn state(&self, direction: Direction) -> &'static str {
        match self {
            TestError::Invalid(_) => "Error_Other",
            TestError::Resolve(_) => "Error_CannotResolveHostName",
            TestError::NoRoute(_) => "Error_NoRouteToHost",
            TestError::Connect(_) => "Error_InitConnectionFailed",
            TestError::NoResponse(_) => "Error_NoResponse",
            TestError::Transfer(_) => match direction {
                Direction::Download => "Error_TransferFailed",
                Direction::Upload => "Error_NoTransferComplete",
            },
            TestError::Timeout(_) => "Error_Timeout",
            TestError::Cancelled => "None",
            TestError::Internal(_) => "Error_Internal",
        }
    }
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestError::Invalid(m)
            | TestError::Resolve(m)
            | TestError::NoRoute(m)
            | TestError::Connect(m)
            | TestError::NoResponse(m)
            | TestError::Transfer(m)
            | TestError::Timeout(m)
            | TestError::Internal(m) => write!(f, "{m}"),
            TestError::Cancelled => write!(f, "cancelled"),
        }
    }
}

/// Runs a download test: every connection's figures, in order.
pub fn download(d: &Download, cancel: &AtomicBool) -> Result<Test, TestError> {
    let spec = Spec {
        url: &d.url,
        ipv6: d.ipv6,
        interface: d.interface.as_deref(),
        dscp: d.dscp,
        connections: d.connections,
        duration: d.duration,
        interval: d.measurement_interval.filter(|i| !i.is_zero()),
        offset: d.measurement_offset,
        limit: d.limit,
    };
    run(&spec, Method::Get, cancel)
}

/// Runs an upload test: every connection's figures, in order.
pub fn upload(u: &Upload, cancel: &AtomicBool) -> Result<Test, TestError> {
    let spec = Spec {
        url: &u.url,
        ipv6: u.ipv6,
        interface: u.interface.as_deref(),
        dscp: u.dscp,
        connections: u.connections,
        duration: u.duration,
        interval: u.measurement_interval.filter(|i| !i.is_zero()),
        offset: u.measurement_offset,
        limit: u.limit,
    };
    let length = match u.duration {
        Some(_) => None,
        None => Some(u.file_length),
    };
    run(&spec, Method::Put(length), cancel)
}

/// What the two directions have in common.
struct Spec<'a> {
    url: &'a str,
    ipv6: Option<bool>,
    interface: Option<&'a str>,
    dscp: u8,
    connections: u32,
    duration: Option<Duration>,
    interval: Option<Duration>,
    offset: Duration,
    limit: Duration,
}

/// What each connection does once connected.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    /// The body's length, or `None` for a time-based upload (chunked).
    Put(Option<u64>),
}

/// The clocks read once: wall-clock microseconds of any later instant.
#[derive(Clone, Copy)]
struct Clock {
    wall_us: u64,
    at: Instant,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            wall_us: super::wall_us(SystemTime::now()),
            at: Instant::now(),
        }
    }

    fn us(&self, t: Instant) -> u64 {
        let since = u64::try_from(t.saturating_duration_since(self.at).as_micros()).unwrap_or(0);
        self.wall_us.saturating_add(since)
    }
}

/// One test under way, shared by its connections' threads.
struct Run<'a> {
    spec: &'a Spec<'a>,
    method: Method,
    addr: SocketAddr,
    /// The request head, the same for every connection.
    request: String,
    clock: Clock,
    deadline: Instant,
    cancel: &'a AtomicBool,
    /// Set by a connection that failed: the others stop.
    halt: AtomicBool,
    /// The netdev whose counters are read.
    device: Option<String>,
    /// Its counters read before any request was sent: they stand for the counters at the
    /// test's BOM. What a quiet interface carries from then on is the test's exchanges (and
    /// the connects'), where counters read when the first read returns would miss what the
    /// kernel had received before the reading thread ran (by a whole response, when threads
    /// wait for a CPU).
    start_net: Option<Net>,
    /// Each connection's test bytes so far (a lock, not an `AtomicU64`: 32-bit MIPS has no
    /// 64-bit atomics, and a 32-bit count would wrap within a long test).
    progress: Vec<Mutex<u64>>,
    /// Connections that began (BOM) and that ended (EOM).
    began: AtomicU32,
    finished: AtomicU32,
    /// The test's BOM (the first connection's), the latest BOM, the earliest EOM, the test's
    /// EOM (the last connection's).
    first_bom: OnceLock<Mark>,
    last_bom: OnceLock<Mark>,
    first_eom: OnceLock<Mark>,
    last_eom: OnceLock<Mark>,
    /// Connections whose thread is done, success or not; `wake` tells the increments' sampler.
    ended: Mutex<u32>,
    wake: Condvar,
}

/// The figures at one instant: every connection's test bytes, the interface's counters.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    bytes: u64,
    net: Option<Net>,
}

/// An interface's byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    rx: u64,
    tx: u64,
}

/// The interface's bytes received and sent from `a` to `b`.
fn net_between(a: Option<Net>, b: Option<Net>) -> (Option<u64>, Option<u64>) {
    match (a, b) {
        (Some(a), Some(b)) => (
            Some(b.rx.saturating_sub(a.rx)),
            Some(b.tx.saturating_sub(a.tx)),
        ),
        _ => (None, None),
    }
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.cancel.load(Ordering::Acquire) || self.halt.load(Ordering::Acquire)
    }

    /// When a time-based test ends (known from the test's BOM on).
    fn stop_at(&self) -> Option<Instant> {
        let d = self.spec.duration?;
        self.first_bom.get()?.at.checked_add(d)
    }

    /// The device's counters now.
    fn net(&self) -> Option<Net> {
        read_net(self.device.as_deref()?)
    }

    /// Every connection's test bytes so far.
    fn sum(&self) -> u64 {
        self.progress
            .iter()
            .fold(0u64, |s, p| s.saturating_add(p.lock().map_or(0, |n| *n)))
    }

    fn mark(&self, at: Instant) -> Mark {
        Mark {
            at,
            bytes: self.sum(),
            net: self.net(),
        }
    }

    /// A connection's BOM at `at` (before its first bytes are counted): the test's first, the
    /// latest.
    fn begin(&self, at: Instant) {
        // No connection counts a byte before its BOM, so none was counted before the first.
        self.first_bom.get_or_init(|| Mark {
            at,
            bytes: 0,
            net: self.start_net,
        });
        if self.began.fetch_add(1, Ordering::AcqRel) + 1 == self.spec.connections {
            // Read now: the other connections are transferring already.
            let _ = self.last_bom.set(self.mark(at));
        }
        self.notify();
    }

    /// A connection's EOM at `at` (after its last bytes were counted): the earliest, the
    /// test's; the counters then.
    fn end(&self, at: Instant) -> Option<Net> {
        let k = self.finished.fetch_add(1, Ordering::AcqRel);
        // Taken after the count: every connection that ended before counted its bytes before.
        let mark = self.mark(at);
        if k == 0 {
            let _ = self.first_eom.set(mark);
        }
        if k + 1 == self.spec.connections {
            let _ = self.last_eom.set(mark);
        }
        mark.net
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u32> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the sampler; under the lock, so that it cannot miss what changed before.
    fn notify(&self) {
        let _ended = self.lock();
        self.wake.notify_all();
    }

    /// Waits until `t` (`true`), or until every connection has ended (`false`).
    fn sleep_until(&self, t: Instant) -> bool {
        let mut ended = self.lock();
        loop {
            if *ended >= self.spec.connections {
                return false;
            }
            let Some(left) = t
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return true;
            };
            ended = self
                .wake
                .wait_timeout(ended, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the test's BOM; `None` when every connection ended without one.
    fn wait_bom(&self) -> Option<Mark> {
        let mut ended = self.lock();
        loop {
            if let Some(m) = self.first_bom.get() {
                return Some(*m);
            }
            if *ended >= self.spec.connections {
                return None;
            }
            ended = self
                .wake
                .wait_timeout(ended, SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until every connection has ended.
    fn wait_all(&self) {
        let mut ended = self.lock();
        while *ended < self.spec.connections {
            ended = self
                .wake
                .wait_timeout(ended, SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What is left of the test's time, else [`TestError::Timeout`].
    fn left(&self, what: &str) -> Result<Duration, TestError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| TestError::Timeout(format!("the test's time ran out {what}")))
    }

    /// How long the next read or write may wait for `until` (at most a [`SLICE`]), or `None`
    /// once `until` has passed.
    fn wait(until: Instant) -> Option<Duration> {
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .map(|d| d.min(SLICE))
    }
}

/// A connection's figures as they are taken.
struct Meter<'r, 'a> {
    run: &'r Run<'a>,
    /// The connection's place in `run.progress`.
    i: usize,
    c: Connection,
    began: bool,
    /// The interface's counters read just before the request was sent: they stand for the
    /// counters at its BOM (see [`Run::start_net`]).
    rom_net: Option<Net>,
}

impl Meter<'_, '_> {
    /// BOM: the first byte of the response (download) or of the body (upload).
    fn begin(&mut self, at: Instant) {
        if self.began {
            return;
        }
        self.began = true;
        self.c.bom_us = self.run.clock.us(at);
        self.run.begin(at);
    }

    /// `n` more test bytes.
    fn count(&mut self, n: usize) {
        self.c.test_bytes = self.c.test_bytes.saturating_add(n as u64);
        if let Some(Ok(mut p)) = self.run.progress.get(self.i).map(Mutex::lock) {
            *p = p.saturating_add(n as u64);
        }
    }

    /// EOM.
    fn end(&mut self, at: Instant) {
        self.c.eom_us = self.run.clock.us(at);
        let net = self.run.end(at);
        (self.c.total_bytes_received, self.c.total_bytes_sent) = net_between(self.rom_net, net);
    }
}

/// Checks the spec, resolves the server, runs every connection in a thread of its own.
fn run(spec: &Spec, method: Method, cancel: &AtomicBool) -> Result<Test, TestError> {
    let url = Url::parse(spec.url).map_err(|e| TestError::Invalid(format!("{e}")))?;
    if !url.is_http() {
        return Err(TestError::Invalid(format!(
            "{}: only http:// is offered",
            crate::http::url::redact(spec.url)
        )));
    }
    // Nothing a request line or a header could be split by.
    if !url
        .host
        .bytes()
        .chain(url.path_query.bytes())
        .all(|b| b.is_ascii_graphic())
    {
        return Err(TestError::Invalid(format!(
            "{}: a space or control character in the URL",
            crate::http::url::redact(spec.url)
        )));
    }
    if spec.connections == 0 || spec.connections > MAX_CONNECTIONS || spec.dscp > 63 {
        return Err(TestError::Invalid(format!(
            "{} connections (1 to {MAX_CONNECTIONS}), DSCP {}",
            spec.connections, spec.dscp
        )));
    }
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_default().unwrap_or(80);
    let addr = crate::sys::os::resolve(host, port)
        .map_err(|e| TestError::Resolve(format!("{host}: {e}")))?
        .into_iter()
        .find(|a| spec.ipv6.is_none_or(|v6| a.is_ipv6() == v6))
        .ok_or_else(|| TestError::Resolve(format!("{host}: no address of the family asked")))?;
    let device = match spec.interface {
        Some(dev) => Some(dev.to_string()),
        None => route_device(addr),
    };
    let run = Run {
        spec,
        method,
        addr,
        request: request_head(method, &url),
        clock: Clock::now(),
        // A limit beyond any clock: a day is as good.
        deadline: Instant::now()
            .checked_add(spec.limit)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400)),
        cancel,
        halt: AtomicBool::new(false),
        start_net: device.as_deref().and_then(read_net),
        device,
        progress: (0..spec.connections).map(|_| Mutex::new(0)).collect(),
        began: AtomicU32::new(0),
        finished: AtomicU32::new(0),
        first_bom: OnceLock::new(),
        last_bom: OnceLock::new(),
        first_eom: OnceLock::new(),
        last_eom: OnceLock::new(),
        ended: Mutex::new(0),
        wake: Condvar::new(),
    };
    let mut incremental = Vec::new();
    let results: Vec<Result<(Connection, Option<IpAddr>), TestError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.connections)
            .map(|i| {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("tr143-{i}"))
                    .stack_size(STACK)
                    .spawn_scoped(s, move || connection(run, i as usize))
            })
            .collect();
        if handles.iter().any(Result::is_err) {
            // The test cannot be whole: the others stop.
            run.halt.store(true, Ordering::Release);
        } else if let (Some(duration), Some(interval)) = (spec.duration, spec.interval) {
            incremental = increments(&run, duration, interval, spec.offset);
        }
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    Err(TestError::Internal("a connection's thread failed".into()))
                }),
                Err(e) => Err(TestError::Internal(format!(
                    "a connection's thread cannot start: {e}"
                ))),
            })
            .collect()
    });
    let (total_bytes_received, total_bytes_sent) = match (run.first_bom.get(), run.last_eom.get()) {
        (Some(a), Some(b)) => net_between(a.net, b.net),
        _ => (None, None),
    };
    let full_loading = match (run.last_bom.get(), run.first_eom.get()) {
        (Some(a), Some(b)) if a.at <= b.at => {
            let (received, sent) = net_between(a.net, b.net);
            Some(FullLoading {
                period_us: run.clock.us(b.at).saturating_sub(run.clock.us(a.at)),
                test_bytes: b.bytes.saturating_sub(a.bytes),
                total_bytes_received: received,
                total_bytes_sent: sent,
            })
        }
        _ => None,
    };
    let mut test = Test {
        incremental,
        total_bytes_received,
        total_bytes_sent,
        full_loading,
        device: run.device.clone(),
        ..Test::default()
    };
    let mut failure: Option<TestError> = None;
    for r in results {
        match r {
            Ok((c, local)) => {
                if test.connections.is_empty() {
                    test.ip_address_used = local;
                }
                test.connections.push(c);
            }
            // The first failure, rather than the stops it caused in the other connections.
            Err(e) => {
                if failure.is_none() || failure == Some(TestError::Cancelled) {
                    failure = Some(e);
                }
            }
        }
    }
    match failure {
        Some(TestError::Cancelled) if !cancel.load(Ordering::Acquire) => Err(TestError::Internal(
            "a connection stopped for no reason given".into(),
        )),
        Some(e) => Err(e),
        None => Ok(test),
    }
}

/// The incremental results of a time-based test, taken while its connections run: from the
/// test's BOM plus `offset`, every whole `interval` within `duration`, at most
/// [`MAX_INCREMENTS`]. Returns when the last one is taken or every connection has ended.
fn increments(
    run: &Run,
    duration: Duration,
    interval: Duration,
    offset: Duration,
) -> Vec<Increment> {
    let mut out = Vec::new();
    if offset
        .checked_add(interval)
        .is_none_or(|first| first > duration)
    {
        return out;
    }
    let Some(bom) = run.wait_bom() else {
        return out;
    };
    let mut start = if offset.is_zero() {
        bom
    } else {
        match bom.at.checked_add(offset) {
            Some(t) if run.sleep_until(t) => run.mark(Instant::now()),
            _ => return out,
        }
    };
    for k in 1..=MAX_INCREMENTS as u32 {
        let Some(span) = interval.checked_mul(k).and_then(|s| s.checked_add(offset)) else {
            break;
        };
        let Some(t) = bom.at.checked_add(span).filter(|_| span <= duration) else {
            break;
        };
        let end = if span == duration {
            // The interval ends with the test: its figures are the test's EOM's, once every
            // connection has ended (and only if they ran until then).
            run.wait_all();
            match run.last_eom.get() {
                Some(m) if m.at >= t => *m,
                _ => break,
            }
        } else if run.sleep_until(t) {
            run.mark(Instant::now())
        } else {
            // Every connection ended before the interval did.
            break;
        };
        let (received, sent) = net_between(start.net, end.net);
        out.push(Increment {
            start_us: run.clock.us(start.at),
            end_us: run.clock.us(end.at),
            test_bytes: end.bytes.saturating_sub(start.bytes),
            total_bytes_received: received,
            total_bytes_sent: sent,
        });
        start = end;
    }
    out
}

/// The netdev holding the local address the kernel picks to reach `addr`.
fn route_device(addr: SocketAddr) -> Option<String> {
    let local = crate::sys::os::source_address(addr).ok()?;
    crate::sys::os::interface_addresses()
        .ok()?
        .into_iter()
        .find(|(_, ip)| *ip == local)
        .map(|(name, _)| name)
}

/// `dev`'s counters, from the calling thread's network namespace.
fn read_net(dev: &str) -> Option<Net> {
    let file = std::fs::File::open("/proc/thread-self/net/dev")
        .or_else(|_| std::fs::File::open("/proc/self/net/dev"))
        .ok()?;
    let mut text = String::new();
    file.take(MAX_NET_DEV).read_to_string(&mut text).ok()?;
    net_dev(&text, dev)
}

/// `dev`'s bytes received and sent in the text of `/proc/net/dev` (proc(5): two lines of
/// titles, then `NAME: rx_bytes rx_packets …` eight receive fields, then `tx_bytes …`).
fn net_dev(text: &str, dev: &str) -> Option<Net> {
    let fields = text.lines().skip(2).find_map(|line| {
        let (name, fields) = line.split_once(':')?;
        (name.trim() == dev).then_some(fields)
    })?;
    let mut fields = fields.split_whitespace();
    let rx = fields.next()?.parse().ok()?;
    let tx = fields.nth(7)?.parse().ok()?;
    Some(Net { rx, tx })
}

/// The request head: a GET, or a PUT with the body's length or `chunked` coding.
fn request_head(method: Method, url: &Url) -> String {
    // The Host header names the port when the URL does (RFC 9110 §7.2).
    let authority = match url.port {
        Some(p) => format!("{}:{p}", url.host),
        None => url.host.to_string(),
    };
    let target = if url.path_query.is_empty() {
        "/"
    } else {
        url.path_query
    };
    let (line, body) = match method {
        Method::Get => ("GET", String::new()),
        Method::Put(Some(n)) => (
            "PUT",
            format!("Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n"),
        ),
        Method::Put(None) => (
            "PUT",
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n".into(),
        ),
    };
    format!(
        "{line} {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: cwmpd\r\nAccept: */*\r\n{body}Connection: close\r\n\r\n"
    )
}

/// One connection from its SYN to its EOM; its figures and its local address. A failure stops
/// the other connections.
fn connection(run: &Run, i: usize) -> Result<(Connection, Option<IpAddr>), TestError> {
    /// Counts the connection as ended however its thread ends, so that the sampler never
    /// waits for it; a panic stops the others.
    struct Ended<'r, 'a>(&'r Run<'a>);
    impl Drop for Ended<'_, '_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.halt.store(true, Ordering::Release);
            }
            let mut ended = self.0.lock();
            *ended += 1;
            self.0.wake.notify_all();
        }
    }
    let _ended = Ended(run);
    let r = transfer(run, i);
    if r.as_ref().is_err_and(|e| *e != TestError::Cancelled) {
        run.halt.store(true, Ordering::Release);
    }
    r
}

fn transfer(run: &Run, i: usize) -> Result<(Connection, Option<IpAddr>), TestError> {
    let mut m = Meter {
        run,
        i,
        c: Connection::default(),
        began: false,
        rom_net: None,
    };
    m.c.tcp_open_request_us = run.clock.us(Instant::now());
    let mut stream = connect(
        run.addr,
        run.spec,
        run.left("before connecting")?,
        run.cancel,
        &run.halt,
    )
    .map_err(|e| {
        if run.stopped() {
            TestError::Cancelled
        } else {
            connect_error(run.addr, &e)
        }
    })?;
    m.c.tcp_open_response_us = run.clock.us(Instant::now());
    let local = stream.local_addr().ok().map(|a| a.ip());
    stream
        .set_write_timeout(Some(run.left("before the request")?.min(SLICE)))
        .map_err(|e| TestError::Transfer(e.to_string()))?;
    m.rom_net = run.net();
    m.c.rom_us = run.clock.us(Instant::now());
    send(
        &mut stream,
        run,
        run.request.as_bytes(),
        "sending the request",
    )?;
    match run.method {
        Method::Get => get(&mut stream, &mut m)?,
        Method::Put(length) => put(&mut stream, &mut m, length)?,
    }
    Ok((m.c, local))
}

/// Connects within `timeout`, in [`SLICE`]s that look at `cancel` (a SYN the far end never
/// answers is retried by the kernel for minutes: a cancel must not wait for that).
fn connect(
    addr: SocketAddr,
    spec: &Spec,
    timeout: Duration,
    cancel: &AtomicBool,
    halt: &AtomicBool,
) -> io::Result<TcpStream> {
    use nix::poll::{poll, PollFd, PollFlags};
    use std::os::fd::AsFd;
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    super::device_and_dscp(&sock, addr.is_ipv6(), spec.interface, spec.dscp)?;
    sock.set_nonblocking(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {
            let deadline = Instant::now() + timeout;
            loop {
                let stop =
                    super::slice_until(deadline, cancel).filter(|_| !halt.load(Ordering::Acquire));
                let Some(left) = stop else {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        if cancel.load(Ordering::Acquire) {
                            "cancelled"
                        } else {
                            "connection timed out"
                        },
                    ));
                };
                let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, ms) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                    Ok(_) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    sock.set_nonblocking(false)?;
    Ok(sock.into())
}

/// An unreachable network or host is `Error_NoRouteToHost`; anything else the connection's.
fn connect_error(addr: SocketAddr, e: &io::Error) -> TestError {
    match e.kind() {
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
            TestError::NoRoute(format!("{addr}: {e}"))
        }
        _ => TestError::Connect(format!("{addr}: {e}")),
    }
}

/// Whether an I/O error is a timeout of the socket (the loop then looks at the clock).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Writes all of `data` within the test's deadline (the socket's write timeout is a slice).
fn send(stream: &mut TcpStream, run: &Run, mut data: &[u8], what: &str) -> Result<(), TestError> {
    while !data.is_empty() {
        if run.stopped() {
            return Err(TestError::Cancelled);
        }
        run.left(what)?;
        match stream.write(data) {
            Ok(0) => {
                return Err(TestError::Transfer(format!(
                    "{what}: the connection closed"
                )))
            }
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(TestError::Transfer(format!("{what}: {e}"))),
        }
    }
    Ok(())
}

/// A download: the response's head, then its body, counted and dropped.
fn get(stream: &mut TcpStream, m: &mut Meter) -> Result<(), TestError> {
    let run = m.run;
    let mut buf = vec![0u8; READ_BUF];
    let mut head = Vec::new();
    let mut body = Body::Unknown;
    let mut in_body: u64 = 0;
    let mut chunk = Chunked::default();
    // The read timeout in force: set again only when the wait changes (a slice, but for the
    // last one before a deadline), not with a system call per read.
    let mut timeout = None;
    loop {
        if run.stopped() {
            return Err(TestError::Cancelled);
        }
        let stop_at = run.stop_at();
        let until = stop_at.map_or(run.deadline, |s| s.min(run.deadline));
        let Some(wait) = Run::wait(until) else {
            if stop_at.is_some_and(|s| Instant::now() >= s) && m.began {
                // A time-based test ends here, once a 200 came: bytes without a response
                // (a stalled head, a trickle) are no download.
                if matches!(body, Body::Unknown) {
                    return Err(TestError::NoResponse(
                        "no complete response head within the test's duration".into(),
                    ));
                }
                m.c.body_bytes = in_body;
                m.end(Instant::now());
                return Ok(());
            }
            return Err(TestError::Timeout(
                "the test's time ran out before the body ended".into(),
            ));
        };
        if timeout != Some(wait) {
            stream
                .set_read_timeout(Some(wait))
                .map_err(|e| TestError::Transfer(e.to_string()))?;
            timeout = Some(wait);
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(TestError::Transfer(e.to_string())),
        };
        let now = Instant::now();
        if n > 0 {
            m.begin(now);
            m.count(n);
        }
        let data = buf.get(..n).unwrap_or_default();
        let mut rest = data;
        if matches!(body, Body::Unknown) {
            let scanned = head.len();
            head.extend_from_slice(data);
            let Some(end) = find_head_end(&head, scanned) else {
                if n == 0 {
                    return Err(TestError::NoResponse(
                        "the connection closed before a response".into(),
                    ));
                }
                if head.len() > MAX_HEAD {
                    return Err(TestError::NoResponse(format!(
                        "a response head over {MAX_HEAD} bytes"
                    )));
                }
                continue;
            };
            body = parse_head(head.get(..end).unwrap_or_default())?;
            let consumed = data.len().saturating_sub(head.len() - end);
            rest = data.get(consumed..).unwrap_or_default();
        }
        let done = match body {
            Body::Length(total) => {
                in_body += rest.len() as u64;
                in_body >= total || n == 0
            }
            Body::Chunked => {
                in_body += chunk.feed(rest).map_err(TestError::Transfer)? as u64;
                chunk.done || n == 0
            }
            Body::Close => {
                in_body += rest.len() as u64;
                n == 0
            }
            Body::Unknown => n == 0,
        };
        if done {
            if let Body::Length(total) = body {
                if in_body < total {
                    return Err(TestError::Transfer(format!(
                        "the connection closed after {in_body} of {total} bytes"
                    )));
                }
            }
            if matches!(body, Body::Chunked) && !chunk.done {
                return Err(TestError::Transfer("the chunked body was cut short".into()));
            }
            m.c.body_bytes = in_body;
            m.end(now);
            return Ok(());
        }
    }
}

/// An upload: the body from one buffer (its length, or chunks until the test's duration has
/// passed, then the last chunk), then the response's final status.
fn put(stream: &mut TcpStream, m: &mut Meter, length: Option<u64>) -> Result<(), TestError> {
    let run = m.run;
    let frame = Frame::new(BUF);
    let mut body = match length {
        Some(n) => Source::Length(n),
        None => Source::Chunks(0),
    };
    m.begin(Instant::now());
    m.count(run.request.len());
    loop {
        if run.stopped() {
            return Err(TestError::Cancelled);
        }
        let stop_at = run.stop_at();
        let ended = stop_at.is_some_and(|s| Instant::now() >= s);
        let Some(data) = body.next(&frame, ended) else {
            break;
        };
        // Until the end of a time-based test, then (to finish the chunk) the deadline.
        let until = match stop_at {
            Some(s) if !ended => s.min(run.deadline),
            _ => run.deadline,
        };
        let Some(wait) = Run::wait(until) else {
            run.left("while sending the body")?;
            continue;
        };
        stream
            .set_write_timeout(Some(wait))
            .map_err(|e| TestError::Transfer(e.to_string()))?;
        match stream.write(data) {
            Ok(0) => {
                return Err(TestError::Transfer(
                    "the connection closed during the body".into(),
                ))
            }
            Ok(n) => {
                m.count(n);
                m.c.body_bytes += body.advance(n, &frame) as u64;
            }
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(TestError::Transfer(format!("sending the body: {e}"))),
        }
    }
    let at = final_status(stream, run)?;
    m.end(at);
    Ok(())
}

/// Reads an upload's response until its final status: when a `2xx` arrived (after any `1xx`).
fn final_status(stream: &mut TcpStream, run: &Run) -> Result<Instant, TestError> {
    let mut buf = vec![0u8; 4096];
    let mut heads: Vec<u8> = Vec::new();
    // Where the current head starts, and how far it was searched for its end.
    let mut start = 0;
    let mut scanned = 0;
    loop {
        if run.stopped() {
            return Err(TestError::Cancelled);
        }
        let wait = run.left("before the response")?.min(SLICE);
        stream
            .set_read_timeout(Some(wait))
            .map_err(|e| TestError::NoResponse(e.to_string()))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(TestError::NoResponse(format!("reading the response: {e}"))),
        };
        let now = Instant::now();
        if n == 0 {
            return Err(TestError::NoResponse(
                "the connection closed before a final response".into(),
            ));
        }
        heads.extend_from_slice(buf.get(..n).unwrap_or_default());
        while let Some(end) = find_head_end(heads.get(start..).unwrap_or_default(), scanned) {
            let head = heads.get(start..start + end).unwrap_or_default();
            let code = status(head)?;
            if (200..300).contains(&code) {
                return Ok(now);
            }
            if !(100..200).contains(&code) {
                return Err(refused(head));
            }
            // An interim response: the next head follows.
            start += end;
            scanned = 0;
        }
        scanned = heads.len() - start;
        if heads.len() > MAX_HEAD {
            return Err(TestError::NoResponse(format!(
                "response heads over {MAX_HEAD} bytes"
            )));
        }
    }
}

/// The data of an upload's body, from one buffer: what to write next, and what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `Content-Length`: the bytes left.
    Length(u64),
    /// Chunks of the frame, the offset in the current one.
    Chunks(usize),
    /// The last chunk (`0` CRLF CRLF), the offset in it.
    Last(usize),
}

const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// One chunk of an upload: its size line, its data, its CRLF; the data also serves a body of
/// known length.
struct Frame {
    bytes: Vec<u8>,
    /// Where the data starts and ends.
    data: std::ops::Range<usize>,
}

impl Frame {
    fn new(size: usize) -> Frame {
        let mut bytes = format!("{size:x}\r\n").into_bytes();
        let start = bytes.len();
        // Any bytes do; these are not all alike.
        bytes.extend((0..size).map(|i| b'a' + (i % 26) as u8));
        bytes.extend_from_slice(b"\r\n");
        Frame {
            bytes,
            data: start..start + size,
        }
    }

    fn data(&self) -> &[u8] {
        self.bytes.get(self.data.clone()).unwrap_or_default()
    }
}

impl Source {
    /// What to write next (`None`: the body is complete). `ended`: a time-based test's time
    /// is over, so the last chunk follows the chunk under way.
    fn next<'f>(&mut self, frame: &'f Frame, ended: bool) -> Option<&'f [u8]> {
        if let Source::Chunks(0) = self {
            if ended {
                *self = Source::Last(0);
            }
        }
        match *self {
            Source::Length(0) => None,
            Source::Length(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX);
                frame.data().get(..n.min(frame.data().len()))
            }
            Source::Chunks(at) => frame.bytes.get(at..),
            Source::Last(at) => LAST_CHUNK.get(at..).filter(|r| !r.is_empty()),
        }
    }

    /// `n` bytes of what [`Source::next`] gave were written; how many of them were data.
    fn advance(&mut self, n: usize, frame: &Frame) -> usize {
        match self {
            Source::Length(left) => {
                *left = left.saturating_sub(n as u64);
                n
            }
            Source::Chunks(at) => {
                let from = *at;
                let to = from + n;
                let data = to
                    .min(frame.data.end)
                    .saturating_sub(from.max(frame.data.start));
                *at = if to >= frame.bytes.len() { 0 } else { to };
                data
            }
            Source::Last(at) => {
                *at += n;
                0
            }
        }
    }
}

/// How the body ends.
#[derive(Debug, Clone, Copy)]
enum Body {
    Unknown,
    Length(u64),
    Chunked,
    Close,
}

/// Where the head in `buf` ends (after its blank line). `scanned`: how much of `buf` was
/// already searched, so that a head arriving in pieces is searched once (the end may straddle
/// the pieces).
fn find_head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(3);
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p + 4)
}

/// The status code of a response head (`HTTP/1.x NNN …`).
fn status(head: &[u8]) -> Result<u16, TestError> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut words = text.split(' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    match code.parse::<u16>() {
        Ok(c)
            if version.starts_with("HTTP/1.")
                && code.len() == 3
                && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(c)
        }
        _ => Err(refused(head)),
    }
}

/// A response that is not the one wanted, its status line quoted.
fn refused(head: &[u8]) -> TestError {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    TestError::NoResponse(format!(
        "the server answered {:?}",
        String::from_utf8_lossy(line)
            .chars()
            .take(80)
            .collect::<String>()
    ))
}

/// The status must be 200; the body's framing from the headers (RFC 9112 §6.3).
fn parse_head(head: &[u8]) -> Result<Body, TestError> {
    if status(head)? != 200 {
        return Err(refused(head));
    }
    let text = String::from_utf8_lossy(head);
    let mut body = Body::Close;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().ends_with("chunked")
        {
            return Ok(Body::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            body =
                Body::Length(value.parse().map_err(|_| {
                    TestError::NoResponse(format!("a Content-Length of {value:?}"))
                })?);
        }
    }
    Ok(body)
}

/// The chunked transfer coding, read as it comes: counts the data bytes, notices the end.
#[derive(Debug, Default)]
struct Chunked {
    /// Data bytes left in the current chunk, then its CRLF.
    left: u64,
    crlf: u8,
    /// The size line being read.
    line: Vec<u8>,
    done: bool,
}

impl Chunked {
    /// Reads `data`; returns how many of its bytes are body data.
    fn feed(&mut self, mut data: &[u8]) -> Result<usize, String> {
        let mut body = 0;
        while !data.is_empty() && !self.done {
            if self.left > 0 {
                let take = (self.left.min(data.len() as u64)) as usize;
                body += take;
                self.left -= take as u64;
                data = data.get(take..).unwrap_or_default();
                if self.left == 0 {
                    self.crlf = 2;
                }
            } else if self.crlf > 0 {
                self.crlf -= 1;
                data = data.get(1..).unwrap_or_default();
            } else {
                let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
                data = rest;
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.line);
                    let size = line.trim().split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| format!("a chunk size of {size:?}"))?;
                    self.line.clear();
                    if size == 0 {
                        // The last chunk; trailers are not read.
                        self.done = true;
                    } else {
                        self.left = size;
                    }
                } else if self.line.len() > 1024 {
                    return Err("a chunk size line over 1 KiB".into());
                } else {
                    self.line.push(b);
                }
            }
        }
        Ok(body)
    }
}

/// Thin wrappers over the private parsers of a TR-143 server's response, for the
/// `diag_replies` fuzz target (`fuzz/`) only: not part of the API, hidden from the docs.
#[doc(hidden)]
pub mod fuzzing {
    /// Where the head of `buf` ends, searched at once or in two pieces split at `cut`: the two
    /// must agree.
    pub fn head_end(buf: &[u8], cut: usize) -> (Option<usize>, Option<usize>) {
        let whole = super::find_head_end(buf, 0);
        let cut = cut.min(buf.len());
        let pieces = super::find_head_end(buf.get(..cut).unwrap_or_default(), 0)
            .or_else(|| super::find_head_end(buf, cut));
        (whole, pieces)
    }

    /// How a download's response head frames its body (`Length(n)`, `Chunked`, `Close`), or
    /// why it is refused.
    pub fn framing(head: &[u8]) -> Result<String, String> {
        super::parse_head(head)
            .map(|b| format!("{b:?}"))
            .map_err(|e| e.to_string())
    }

    /// Body bytes and whether the last chunk came, for `data` read at once and in two pieces
    /// split at `cut` (`Err` when it is not chunked coding).
    pub fn chunked(data: &[u8], cut: usize) -> [Result<(usize, bool), String>; 2] {
        let mut one = super::Chunked::default();
        let whole = one.feed(data).map(|n| (n, one.done));
        let cut = cut.min(data.len());
        let mut two = super::Chunked::default();
        let split = two
            .feed(data.get(..cut).unwrap_or_default())
            .and_then(|a| {
                if two.done {
                    return Ok(a);
                }
                two.feed(data.get(cut..).unwrap_or_default()).map(|b| a + b)
            })
            .map(|n| (n, two.done));
        [whole, split]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_frame_the_body_or_refuse() {
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            Ok(Body::Length(10))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
            Ok(Body::Chunked)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.0 200 OK\r\n\r\n"),
            Ok(Body::Close)
        ));
        for bad in [
            &b"HTTP/1.1 404 Not Found\r\n\r\n"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err());
        }
    }

    #[test]
    fn chunks_are_counted_however_they_are_cut() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        for cut in 1..body.len() {
            let mut c = Chunked::default();
            let n = c.feed(&body[..cut]).unwrap() + c.feed(&body[cut..]).unwrap();
            assert_eq!(n, 23, "cut at {cut}");
            assert!(c.done);
        }
        assert!(Chunked::default().feed(b"zz\r\n").is_err());
    }

    #[test]
    fn a_head_end_is_found_however_the_head_arrives() {
        let head = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        for cut in 0..head.len() {
            // The first piece searched, then the whole from where the search left off.
            let found = find_head_end(&head[..cut], 0).or_else(|| find_head_end(head, cut));
            assert_eq!(found, Some(25), "cut at {cut}");
        }
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n", 0), None);
        assert_eq!(find_head_end(b"\r\n", 10), None);
    }

    #[test]
    fn status_lines_give_their_code_or_a_refusal() {
        assert_eq!(status(b"HTTP/1.1 201 Created\r\n\r\n"), Ok(201));
        assert_eq!(status(b"HTTP/1.0 100 Continue\r\n\r\n"), Ok(100));
        for bad in [
            &b"HTTP/2 200\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 +20 OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"",
        ] {
            assert!(
                matches!(status(bad), Err(TestError::NoResponse(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn requests_ask_for_the_body_they_will_send() {
        let url = Url::parse("http://[fd00::1]:8080/up?x=1#frag").unwrap();
        let get = request_head(Method::Get, &url);
        assert!(get.starts_with("GET /up?x=1 HTTP/1.1\r\nHost: [fd00::1]:8080\r\n"));
        assert!(!get.contains("Content-Length") && get.ends_with("\r\n\r\n"));
        let url = Url::parse("http://h").unwrap();
        let put = request_head(Method::Put(Some(10)), &url);
        assert!(put.starts_with("PUT / HTTP/1.1\r\nHost: h\r\n"), "{put}");
        assert!(put.contains("\r\nContent-Length: 10\r\n"), "{put}");
        let put = request_head(Method::Put(None), &url);
        assert!(put.contains("\r\nTransfer-Encoding: chunked\r\n"), "{put}");
        assert!(!put.contains("Content-Length"), "{put}");
    }

    /// Writes `source` whole, `step` bytes at most per write, ending the time after `after`
    /// writes: every byte written, and the data among them.
    fn drain(mut source: Source, frame: &Frame, step: usize, after: usize) -> (Vec<u8>, usize) {
        let (mut out, mut data) = (Vec::new(), 0);
        let mut writes = 0;
        while let Some(next) = source.next(frame, writes >= after) {
            let n = next.len().min(step);
            out.extend_from_slice(&next[..n]);
            data += source.advance(n, frame);
            writes += 1;
            assert!(writes < 10_000, "no end");
        }
        (out, data)
    }

    #[test]
    fn an_upload_body_is_its_length_or_whole_chunks_and_the_last_one() {
        let frame = Frame::new(10);
        assert_eq!(frame.bytes, b"a\r\nabcdefghij\r\n");
        // A known length: that many data bytes, however the writes are cut.
        for step in [1, 3, 10, 64] {
            let (out, data) = drain(Source::Length(25), &frame, step, usize::MAX);
            assert_eq!((out.len(), data), (25, 25), "step {step}");
        }
        assert_eq!(drain(Source::Length(0), &frame, 4, 0), (Vec::new(), 0));
        // Chunked: the time ends mid-chunk, the chunk is finished, then the last chunk.
        for step in [1, 4, 15, 100] {
            for after in [0, 1, 5, 7] {
                let (out, data) = drain(Source::Chunks(0), &frame, step, after);
                let mut c = Chunked::default();
                assert_eq!(c.feed(&out), Ok(data), "step {step} after {after}");
                assert!(c.done && out.ends_with(b"\r\n0\r\n\r\n") || out == b"0\r\n\r\n");
                assert_eq!(data % 10, 0);
            }
        }
    }

    #[test]
    fn a_test_sums_its_connections_and_errors_name_their_state() {
        let c = |open: u64, rom: u64, bom: u64, eom: u64, bytes: u64| Connection {
            tcp_open_request_us: open,
            tcp_open_response_us: open + 1,
            rom_us: rom,
            bom_us: bom,
            eom_us: eom,
            test_bytes: bytes,
            body_bytes: bytes,
            ..Connection::default()
        };
        let t = Test {
            connections: vec![c(5, 10, 20, 90, 100), c(7, 12, 15, 80, 50)],
            ..Test::default()
        };
        assert_eq!((t.rom_us(), t.bom_us(), t.eom_us()), (10, 15, 90));
        assert_eq!((t.tcp_open_request_us(), t.tcp_open_response_us()), (7, 8));
        assert_eq!(t.test_bytes(), 150);
        assert_eq!(Test::default().bom_us(), 0);
        let transfer = TestError::Transfer(String::new());
        assert_eq!(transfer.state(Direction::Download), "Error_TransferFailed");
        assert_eq!(
            transfer.state(Direction::Upload),
            "Error_NoTransferComplete"
        );
        assert_eq!(TestError::Cancelled.state(Direction::Upload), "None");
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
        assert!(matches!(
            connect_error(addr, &refused),
            TestError::Connect(_)
        ));
        let unreachable = io::Error::from_raw_os_error(101);
        assert!(matches!(
            connect_error(addr, &unreachable),
            TestError::NoRoute(_)
        ));
    }

    #[test]
    fn interface_counters_are_read_from_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:  123456      10    0    0    0     0          0         0   123456      10    0    0    0     0       0          0\n  \
            a0: 18446744073709551615 7 0 0 0 0 0 0 42 3 0 0 0 0 0 0\n";
        assert_eq!(
            net_dev(text, "lo"),
            Some(Net {
                rx: 123456,
                tx: 123456
            })
        );
        assert_eq!(
            net_dev(text, "a0"),
            Some(Net {
                rx: u64::MAX,
                tx: 42
            })
        );
        assert_eq!(net_dev(text, "a"), None);
        assert_eq!(net_dev(text, "face |bytes"), None);
        assert_eq!(net_dev("x\ny\n  b0: 1 2 3\n", "b0"), None);
        let (a, b) = (Net { rx: 10, tx: 20 }, Net { rx: 15, tx: 20 });
        assert_eq!(net_between(Some(a), Some(b)), (Some(5), Some(0)));
        // A counter that went back (the device was replaced): nothing, not a wrap.
        assert_eq!(net_between(Some(b), Some(a)), (Some(0), Some(0)));
        assert_eq!(net_between(None, Some(a)), (None, None));
    }
}
