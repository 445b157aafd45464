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
//! The responses: a status line and headers within [`MAX_HEAD`] bytes. A download wants `200`
//! and a body delimited by `Content-Length`, by `chunked` transfer coding, or by the close of
//! the connection; an upload wants a `2xx` after any `1xx`, its body is not read. Every read and
//! write has the test's deadline and looks at the cancel flag at least every [`SLICE`]; when
//! one connection fails the others stop, and the test reports that failure.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::url::Url;

/// Bytes of status line and headers read before the response is refused (for an upload: every
/// head of the response together, interim `1xx` ones included).
pub const MAX_HEAD: usize = 16 * 1024;
/// The most connections of one test (TR-181 DownloadDiagnosticMaxConnections,
/// UploadDiagnosticsMaxConnections).
pub const MAX_CONNECTIONS: u32 = 8;
/// The longest one read or write waits before the test looks at its cancel flag again.
pub const SLICE: Duration = Duration::from_millis(250);
/// A download connection's read buffer; an upload's chunk.
const BUF: usize = 64 * 1024;
/// A connection's thread's stack (its buffers are on the heap).
const STACK: usize = 256 * 1024;

/// What to download and how.
#[derive(Debug, Clone)]
pub struct Download {
    /// `http://HOST[:PORT]/PATH` (TR-181 DownloadURL).
    pub url: String,
    pub interface: Option<String>,
    pub dscp: u8,
    /// Connections opened at once, each fetching the URL (TR-181 NumberOfConnections).
    pub connections: u32,
    /// A time-based test: stop every connection when this long has passed since the test's
    /// BOMTime (TR-181 TimeBasedTestDuration); `None`: each fetches the whole body.
    pub duration: Option<Duration>,
    /// The longest the whole test may take.
    pub limit: Duration,
}

/// What to upload and how.
#[derive(Debug, Clone)]
pub struct Upload {
    /// `http://HOST[:PORT]/PATH` (TR-181 UploadURL), the target of the PUT.
    pub url: String,
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
}

/// A test's figures (TR-181 DownloadDiagnostics, UploadDiagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Test {
    /// Every connection's figures, in the order they were opened (PerConnectionResult).
    pub connections: Vec<Connection>,
    /// The local address of the first connection (IPAddressUsed).
    pub ip_address_used: Option<IpAddr>,
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
        interface: d.interface.as_deref(),
        dscp: d.dscp,
        connections: d.connections,
        duration: d.duration,
        limit: d.limit,
    };
    run(&spec, Method::Get, cancel)
}

/// Runs an upload test: every connection's figures, in order.
pub fn upload(u: &Upload, cancel: &AtomicBool) -> Result<Test, TestError> {
    let spec = Spec {
        url: &u.url,
        interface: u.interface.as_deref(),
        dscp: u.dscp,
        connections: u.connections,
        duration: u.duration,
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
    interface: Option<&'a str>,
    dscp: u8,
    connections: u32,
    duration: Option<Duration>,
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
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Clock {
            wall_us,
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
    /// The test's BOM: the first connection to begin sets it.
    first_bom: OnceLock<Instant>,
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.cancel.load(Ordering::Acquire) || self.halt.load(Ordering::Acquire)
    }

    /// When a time-based test ends (known from the test's BOM on).
    fn stop_at(&self) -> Option<Instant> {
        let d = self.spec.duration?;
        self.first_bom.get()?.checked_add(d)
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
    c: Connection,
    began: bool,
}

impl Meter<'_, '_> {
    /// BOM: the first byte of the response (download) or of the body (upload).
    fn begin(&mut self, at: Instant) {
        if self.began {
            return;
        }
        self.began = true;
        self.c.bom_us = self.run.clock.us(at);
        self.run.first_bom.get_or_init(|| at);
    }

    /// `n` more test bytes.
    fn count(&mut self, n: usize) {
        self.c.test_bytes = self.c.test_bytes.saturating_add(n as u64);
    }

    /// EOM.
    fn end(&mut self, at: Instant) {
        self.c.eom_us = self.run.clock.us(at);
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
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| TestError::Resolve(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| TestError::Resolve(format!("{host}: no address")))?;
    let run = Run {
        spec,
        method,
        addr,
        request: request_head(method, &url),
        clock: Clock::now(),
        deadline: Instant::now() + spec.limit,
        cancel,
        halt: AtomicBool::new(false),
        first_bom: OnceLock::new(),
    };
    let results: Vec<Result<(Connection, Option<IpAddr>), TestError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.connections)
            .map(|i| {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("tr143-{i}"))
                    .stack_size(STACK)
                    .spawn_scoped(s, move || connection(run))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    run.halt.store(true, Ordering::Release);
                    Err(TestError::Internal("a connection's thread failed".into()))
                }),
                Err(e) => {
                    run.halt.store(true, Ordering::Release);
                    Err(TestError::Internal(format!(
                        "a connection's thread cannot start: {e}"
                    )))
                }
            })
            .collect()
    });
    let mut test = Test::default();
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
fn connection(run: &Run) -> Result<(Connection, Option<IpAddr>), TestError> {
    let r = transfer(run);
    if r.as_ref().is_err_and(|e| *e != TestError::Cancelled) {
        run.halt.store(true, Ordering::Release);
    }
    r
}

fn transfer(run: &Run) -> Result<(Connection, Option<IpAddr>), TestError> {
    let mut m = Meter {
        run,
        c: Connection::default(),
        began: false,
    };
    m.c.tcp_open_request_us = run.clock.us(Instant::now());
    let mut stream = connect(run.addr, run.spec, run.left("before connecting")?)
        .map_err(|e| connect_error(run.addr, &e))?;
    m.c.tcp_open_response_us = run.clock.us(Instant::now());
    let local = stream.local_addr().ok().map(|a| a.ip());
    stream
        .set_write_timeout(Some(run.left("before the request")?.min(SLICE)))
        .map_err(|e| TestError::Transfer(e.to_string()))?;
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

fn connect(addr: SocketAddr, spec: &Spec, timeout: Duration) -> io::Result<TcpStream> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    super::device_and_dscp(&sock, addr.is_ipv6(), spec.interface, spec.dscp)?;
    sock.connect_timeout(&addr.into(), timeout)?;
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
    let mut buf = vec![0u8; BUF];
    let mut head = Vec::new();
    let mut body = Body::Unknown;
    let mut in_body: u64 = 0;
    let mut chunk = Chunked::default();
    loop {
        if run.stopped() {
            return Err(TestError::Cancelled);
        }
        let stop_at = run.stop_at();
        let until = stop_at.map_or(run.deadline, |s| s.min(run.deadline));
        let Some(wait) = Run::wait(until) else {
            if stop_at.is_some_and(|s| Instant::now() >= s) && m.began {
                // A time-based test ends here.
                m.c.body_bytes = in_body;
                m.end(Instant::now());
                return Ok(());
            }
            return Err(TestError::Timeout(
                "the test's time ran out before the body ended".into(),
            ));
        };
        stream
            .set_read_timeout(Some(wait))
            .map_err(|e| TestError::Transfer(e.to_string()))?;
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
}
