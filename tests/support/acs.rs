//! A small but real ACS for the demo (`examples/demo.rs`) and the end-to-end tests
//! (`tests/integration.rs`): TR-069 §3.4 (HTTP transport, authentication, cookies) and §3.7
//! (the CWMP session) seen from the ACS side.
//!
//! It listens on 127.0.0.1 over plain HTTP or HTTPS (a rustls `ServerConfig` given by the
//! caller, e.g. from `tests/support/tls.rs`), one thread per TCP connection, keep-alive, with
//! bounded heads, bodies and connection counts. It behaves like the ACSes met in the field:
//!
//! - Authentication: none, Basic, or Digest (RFC 7616, `qop=auth`) with the nonce bound to the TCP
//!   connection as GenieACS does: a nonce presented on another connection is refused with a new
//!   challenge (`stale=true`). Every POST is authenticated; the client may reuse the nonce with
//!   an increasing nonce count. Wrong credentials get a new challenge, or (`bare_refusal`, as
//!   GenieACS does) a 401 without any and the connection closed.
//! - Cookies: optionally a session cookie set with the InformResponse (`session=<random>; Path=/`
//!   like GenieACS, or `SerialNumber=…; path=/` like the IIS-based ACS of the field capture),
//!   after which a POST of the session without it gets **400** (GenieACS behaviour).
//! - Sessions (§3.7.1): an Inform opens a session and is answered with an InformResponse
//!   (optionally with `UseCWMPVersion`, optionally in a namespace of the caller's choice); a
//!   namespace can be refused (HTTP error or ACS fault) to exercise the CPE's version fallback.
//!   CPE requests (TransferComplete, GetRPCMethods, …) are answered; after the empty POST the
//!   session's script sends ACS requests one at a time, each with a fresh `cwmp:ID`, and the
//!   session ends with an empty response (204, or 200 with an empty body).
//!
//! Everything is recorded (the Inform, headers, cookies, every request/response pair, HTTP
//! facts with TCP connection numbers) for tests to assert on; [`Acs::wait_sessions`] waits with a
//! deadline. In verbose mode every message is printed as it happens, for a human reader.
//!
//! It uses only the `cwmpd` library (its ACS-side codec `cwmpd::soap::acs` and the server side
//! of `cwmpd::http::auth`), std and rustls.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cwmpd::cwmp::fault::AcsFault;
use cwmpd::http::auth::{self, Algorithm, DigestServer, NonceStatus, Verdict};
use cwmpd::soap::acs::{
    emit_acs_fault, emit_acs_request, emit_acs_response, parse_cpe, CpeMessage,
};
use cwmpd::soap::{
    AcsRequest, AcsResponse, CpeRequest, CpeResponse, CwmpNs, Header, Inform, Limits, ParseError,
};

/// How the ACS authenticates the CPE (TR-069 §3.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        username: String,
        password: String,
    },
    Digest {
        username: String,
        password: String,
        algorithm: Algorithm,
    },
}

/// The session cookie the ACS sets with the InformResponse (§3.4.4: the CPE must send every
/// cookie back on later POSTs of the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    /// No cookie.
    Off,
    /// `session=<random>; Path=/`, mandatory on every later POST of the session (GenieACS).
    Session,
    /// `SerialNumber=<serial>; path=/` (the field capture's IIS-based ACS), also mandatory.
    SerialNumber,
}

/// How the ACS refuses an Inform in a namespace it does not speak (an "old" ACS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// An HTTP error status with an empty body.
    Http(u16),
    /// An ACS SOAP fault (8000–8005) sent with HTTP 500 (SOAP 1.1 §6.2).
    Fault(u32),
}

/// What the ACS does; build with [`AcsOptions::default`] and the builder methods.
#[derive(Clone)]
pub struct AcsOptions {
    /// HTTPS when set; plain HTTP otherwise.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where to listen. Default: 127.0.0.1 on a free port.
    pub bind: SocketAddr,
    /// The URL path of the ACS. Default: `/acs`.
    pub path: String,
    pub auth: Auth,
    pub cookie: Cookie,
    /// `UseCWMPVersion` sent in the InformResponse (CWMP 1.4 negotiation). Default: none.
    pub use_version: Option<String>,
    /// Namespace of every ACS message. Default: the namespace of the CPE's Inform (GenieACS).
    pub reply_ns: Option<CwmpNs>,
    /// Informs in these namespaces are refused with `reject_with`.
    pub reject_inform: Vec<CwmpNs>,
    pub reject_with: Reject,
    /// The first `n` Informs are answered `503 Service Unavailable` with `Retry-After: secs`
    /// (an overloaded ACS). Default: none.
    pub busy: Option<(usize, u32)>,
    /// End sessions with 200 and an empty body instead of 204 (both allowed by §3.7.2.4).
    pub end_with_200: bool,
    /// Print every message as it happens.
    pub verbose: bool,
    /// Digest realm.
    pub realm: String,
    /// Wrong credentials get a 401 without a challenge and the connection is closed (GenieACS).
    pub bare_refusal: bool,
}

impl Default for AcsOptions {
    fn default() -> Self {
        AcsOptions {
            tls: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: "/acs".into(),
            auth: Auth::None,
            cookie: Cookie::Off,
            use_version: None,
            reply_ns: None,
            reject_inform: Vec::new(),
            reject_with: Reject::Http(500),
            busy: None,
            end_with_200: false,
            verbose: false,
            realm: "cwmpd test ACS".into(),
            bare_refusal: false,
        }
    }
}

impl AcsOptions {
    pub fn tls(mut self, cfg: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(cfg);
        self
    }

    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    pub fn basic(mut self, username: &str, password: &str) -> Self {
        self.auth = Auth::Basic {
            username: username.into(),
            password: password.into(),
        };
        self
    }

    /// Digest with MD5 (what GenieACS challenges with).
    pub fn digest(self, username: &str, password: &str) -> Self {
        self.digest_with(username, password, Algorithm::Md5)
    }

    pub fn digest_with(mut self, username: &str, password: &str, algorithm: Algorithm) -> Self {
        self.auth = Auth::Digest {
            username: username.into(),
            password: password.into(),
            algorithm,
        };
        self
    }

    pub fn cookie(mut self, cookie: Cookie) -> Self {
        self.cookie = cookie;
        self
    }

    pub fn use_version(mut self, version: &str) -> Self {
        self.use_version = Some(version.into());
        self
    }

    pub fn reply_ns(mut self, ns: CwmpNs) -> Self {
        self.reply_ns = Some(ns);
        self
    }

    pub fn reject(mut self, ns: CwmpNs, how: Reject) -> Self {
        self.reject_inform.push(ns);
        self.reject_with = how;
        self
    }

    pub fn busy(mut self, informs: usize, retry_after: u32) -> Self {
        self.busy = Some((informs, retry_after));
        self
    }

    pub fn end_with_200(mut self) -> Self {
        self.end_with_200 = true;
        self
    }

    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }

    /// Refuse wrong credentials as GenieACS does: 401 without a challenge, connection closed.
    pub fn bare_refusal(mut self) -> Self {
        self.bare_refusal = true;
        self
    }
}

/// One ACS request of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// A typed RPC, emitted by `cwmpd::soap::acs::emit_acs_request`.
    Rpc(AcsRequest),
    /// An RPC written by hand (e.g. one the CPE does not know, to see 9000): `body` is the
    /// content of `<SOAP-ENV:Body>`, with the `cwmp:` prefix bound to the session's namespace.
    Raw { method: String, body: String },
}

impl Call {
    pub fn method(&self) -> &str {
        match self {
            Call::Rpc(r) => r.method(),
            Call::Raw { method, .. } => method,
        }
    }
}

impl From<AcsRequest> for Call {
    fn from(r: AcsRequest) -> Call {
        Call::Rpc(r)
    }
}

/// One ACS request and what the CPE answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The `cwmp:ID` the ACS sent.
    pub id: String,
    pub call: Call,
    /// The `cwmp:ID` the CPE echoed.
    pub echoed_id: Option<String>,
    /// The namespace of the CPE's answer.
    pub ns: Option<CwmpNs>,
    /// The CPE's response or fault; `Err` when the answer was not a response (unparsable, an
    /// empty POST, a request).
    pub response: Result<CpeResponse, String>,
}

impl Exchange {
    /// The fault the CPE answered with, if it did.
    pub fn fault(&self) -> Option<&cwmpd::cwmp::fault::Fault> {
        match &self.response {
            Ok(CpeResponse::Fault(f)) => Some(f),
            _ => None,
        }
    }
}

/// Everything about one session (one Inform and what followed it).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// 0 for the first Inform this ACS received, 1 for the next…
    pub index: usize,
    /// When the Inform arrived.
    pub started: Instant,
    /// Namespace of the Inform.
    pub ns: CwmpNs,
    /// The Inform's SOAP header (ID, SupportedCWMPVersions, SessionTimeout…).
    pub header: Header,
    pub inform: Inform,
    /// The Inform was refused (see [`AcsOptions::reject_inform`]): no session followed.
    pub rejected: bool,
    /// The session ended with the ACS's empty response.
    pub completed: bool,
    /// When the ACS decided on that empty response (before it was sent: the CPE's session
    /// ends after this).
    pub ended: Option<Instant>,
    /// The cookie the ACS set (`name=value`), if any.
    pub cookie: Option<String>,
    /// The user name the CPE authenticated as (Basic or Digest).
    pub user: Option<String>,
    /// CPE requests after the Inform (TransferComplete, GetRPCMethods, …) with their namespace.
    pub cpe_requests: Vec<(CwmpNs, CpeRequest)>,
    pub exchanges: Vec<Exchange>,
    /// Protocol errors seen in this session (a missing cookie, an unexpected message, …).
    pub errors: Vec<String>,
}

impl SessionRecord {
    /// The Inform's event codes, in order.
    pub fn event_codes(&self) -> Vec<String> {
        self.inform.events.iter().map(|e| e.code.clone()).collect()
    }

    pub fn has_event(&self, code: &str) -> bool {
        self.inform.events.iter().any(|e| e.code == code)
    }

    /// The CommandKey of event `code`, if present.
    pub fn command_key(&self, code: &str) -> Option<&str> {
        self.inform
            .events
            .iter()
            .find(|e| e.code == code)
            .map(|e| e.command_key.as_str())
    }

    /// The value of an Inform parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inform
            .parameters
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The exchanges of one method, in order.
    pub fn calls(&self, method: &str) -> Vec<&Exchange> {
        self.exchanges
            .iter()
            .filter(|e| e.call.method() == method)
            .collect()
    }
}

/// One HTTP request as the ACS saw it and answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEntry {
    /// TCP connection number (1 for the first accepted).
    pub conn: u64,
    pub method: String,
    pub target: String,
    /// The status the ACS sent.
    pub status: u16,
    /// The scheme of the `Authorization` header, if one was sent.
    pub auth_scheme: Option<String>,
    /// The `Cookie` header(s), joined with `; `.
    pub cookie: Option<String>,
    pub body_len: usize,
    /// The session the request belonged to, when it got that far.
    pub session: Option<usize>,
    /// What the ACS made of it (`Inform`, `empty POST`, `401 challenge`, …).
    pub note: String,
}

/// What a script sees when asked for its next request.
pub struct Turn<'a> {
    pub session: &'a SessionRecord,
    /// The previous exchange of this session, if any.
    pub last: Option<&'a Exchange>,
}

/// A session script as a closure: called after the empty POST and after each response; `None`
/// ends the session.
pub type ScriptFn = Box<dyn FnMut(&Turn<'_>) -> Option<Call> + Send>;

/// A running ACS; stops on drop.
pub struct Acs {
    addr: SocketAddr,
    https: bool,
    path: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Acs {
    /// Starts listening.
    pub fn start(opts: AcsOptions) -> io::Result<Acs> {
        let listener = TcpListener::bind(opts.bind)?;
        let addr = listener.local_addr()?;
        let https = opts.tls.is_some();
        let path = opts.path.clone();
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            ids: AtomicU64::new(0),
            hasher: RandomState::new(),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("acs-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Acs {
            addr,
            https,
            path,
            shared,
            accept: Some(accept),
        })
    }

    /// `http(s)://127.0.0.1:PORT/acs`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, self.path)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a script of fixed requests for the next session that has none.
    pub fn push_script<I, C>(&self, calls: I)
    where
        I: IntoIterator<Item = C>,
        C: Into<Call>,
    {
        let mut queue: VecDeque<Call> = calls.into_iter().map(Into::into).collect();
        self.push_script_fn(move |_: &Turn<'_>| queue.pop_front());
    }

    /// Queues a script closure for the next session that has none.
    pub fn push_script_fn<F>(&self, f: F)
    where
        F: FnMut(&Turn<'_>) -> Option<Call> + Send + 'static,
    {
        self.shared.lock().scripts.push_back(Box::new(f));
    }

    /// Every session so far (completed, rejected or in progress).
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.shared.lock().sessions.clone()
    }

    /// The completed sessions so far.
    pub fn completed(&self) -> Vec<SessionRecord> {
        completed(&self.shared.lock().sessions)
    }

    /// Every HTTP request so far.
    pub fn http_log(&self) -> Vec<HttpEntry> {
        self.shared.lock().http.clone()
    }

    /// TLS handshakes that failed (e.g. the client did not trust our certificate).
    pub fn tls_failures(&self) -> Vec<String> {
        self.shared.lock().tls_failures.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.conns.load(Ordering::SeqCst)
    }

    /// Waits until `n` sessions have completed; returns the completed sessions, or what was seen
    /// when the deadline passed.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Result<Vec<SessionRecord>, String> {
        self.wait_for(timeout, |s| completed(s).len() >= n)
            .map(|s| completed(&s))
            .map_err(|e| format!("waiting for {n} completed session(s): {e}"))
    }

    /// Waits until `done` holds for the sessions recorded; returns them all.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[SessionRecord]) -> bool,
    ) -> Result<Vec<SessionRecord>, String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state.sessions) {
                return Ok(state.sessions.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after {timeout:?}; sessions: {:#?}\nHTTP: {:#?}\nTLS failures: {:?}",
                    state.sessions, state.http, state.tls_failures
                ));
            }
            state = match self.shared.changed.wait_timeout(state, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Drop for Acs {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag, then close every live connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, s) in self.shared.lock().sockets.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn completed(sessions: &[SessionRecord]) -> Vec<SessionRecord> {
    sessions.iter().filter(|s| s.completed).cloned().collect()
}

/// Most connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 32;
/// Largest request head.
const MAX_HEAD: usize = 16 * 1024;
/// Idle time after which a connection is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most HTTP entries kept in the log.
const MAX_LOG: usize = 10_000;

struct Shared {
    opts: AcsOptions,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    conns: AtomicU64,
    live: AtomicUsize,
    ids: AtomicU64,
    hasher: RandomState,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 128 random bits as hex, for nonces and cookies (not cryptographic-grade, which a test ACS
    /// does not need: unique and unguessable enough).
    fn random(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::SeqCst);
        let mut out = String::with_capacity(32);
        for salt in 0..2u64 {
            let mut h = self.hasher.build_hasher();
            h.write_u64(n);
            h.write_u64(salt);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            out.push_str(&format!("{:016x}", h.finish()));
        }
        out
    }

    fn say(&self, text: &str) {
        if self.opts.verbose {
            let out = io::stdout();
            let mut out = out.lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

#[derive(Default)]
struct State {
    sessions: Vec<SessionRecord>,
    /// The session in progress.
    live: Option<Live>,
    scripts: VecDeque<ScriptFn>,
    http: Vec<HttpEntry>,
    tls_failures: Vec<String>,
    sockets: Vec<(u64, TcpStream)>,
}

struct Live {
    index: usize,
    ns: CwmpNs,
    /// The cookie the CPE must send back (`name=value`).
    cookie: Option<String>,
    script: Option<ScriptFn>,
    /// The request sent and not yet answered.
    outstanding: Option<(String, Call)>,
    next_id: u32,
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let id = shared.conns.fetch_add(1, Ordering::SeqCst) + 1;
        shared.live.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared.lock().sockets.push((id, clone));
        }
        let s = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("acs-conn-{id}"))
            .spawn(move || {
                let _ = serve(stream, id, &s);
                s.lock().sockets.retain(|(i, _)| *i != id);
                s.live.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Per-connection state: the Digest nonce issued on this connection (GenieACS binds it here).
struct ConnState {
    id: u64,
    nonce: Option<String>,
    last_nc: u32,
}

/// One parsed HTTP request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> Option<String> {
        let all: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        if all.is_empty() {
            None
        } else {
            Some(all.join("; "))
        }
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// An HTTP reply.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    fn xml(body: Vec<u8>) -> Reply {
        Reply {
            headers: vec![("Content-Type".into(), "text/xml; charset=\"utf-8\"".into())],
            body,
            ..Reply::new(200)
        }
    }
}

fn serve(tcp: TcpStream, id: u64, shared: &Shared) -> io::Result<()> {
    tcp.set_read_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_write_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let mut stream = match &shared.opts.tls {
        None => Stream::Plain(tcp),
        Some(cfg) => {
            let mut conn = rustls::ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
            let mut tcp = tcp;
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut tcp) {
                    let msg = format!("conn {id}: TLS handshake failed: {e}");
                    shared.say(&format!("\n!! {msg}\n"));
                    shared.lock().tls_failures.push(msg);
                    shared.changed.notify_all();
                    return Err(e);
                }
            }
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    };
    let mut conn = ConnState {
        id,
        nonce: None,
        last_nc: 0,
    };
    let mut buf = Vec::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let req = match read_request(&mut stream, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A malformed or oversized request: answer 400 and close.
                let mut r = Reply::new(400);
                r.close = true;
                let _ = write_reply(&mut stream, &r);
                return Err(e);
            }
        };
        let mut reply = handle(shared, &mut conn, &req);
        reply.close |= req.wants_close();
        write_reply(&mut stream, &reply)?;
        if reply.close {
            if let Stream::Tls(s) = &mut stream {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            return Ok(());
        }
    }
}

/// Reads one request (Content-Length or chunked body); `None` when the client closed cleanly.
fn read_request(stream: &mut Stream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        if !fill(stream, buf)? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    buf.drain(..head_end + 4);
    let max = Limits::default().max_bytes;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(stream, buf, max)?
    } else {
        let len = match header("content-length") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| io::Error::other("bad Content-Length"))?,
        };
        if len > max {
            return Err(io::Error::other("body too large"));
        }
        while buf.len() < len {
            if !fill(stream, buf)? {
                return Err(io::Error::other("body cut short"));
            }
        }
        buf.drain(..len).collect()
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

fn read_chunked(stream: &mut Stream, buf: &mut Vec<u8>, max: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if buf.len() > 1024 || !fill(stream, buf)? {
                return Err(io::Error::other("bad chunk header"));
            }
        };
        let line = String::from_utf8_lossy(buf.get(..line_end).unwrap_or_default()).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| io::Error::other("bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            loop {
                if let Some(i) = find(buf, b"\r\n") {
                    let empty = i == 0;
                    buf.drain(..i + 2);
                    if empty {
                        return Ok(body);
                    }
                } else if buf.len() > 1024 || !fill(stream, buf)? {
                    return Err(io::Error::other("bad chunk trailer"));
                }
            }
        }
        if body.len() + size > max {
            return Err(io::Error::other("body too large"));
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf)? {
                return Err(io::Error::other("chunk cut short"));
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

/// Reads more bytes into `buf`; false at the end of the stream.
fn fill(stream: &mut Stream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn write_reply(stream: &mut Stream, r: &Reply) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (n, v) in &r.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if r.status != 204 {
        out.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    if r.close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&r.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Handles one request: authentication, then the CWMP session.
fn handle(shared: &Shared, conn: &mut ConnState, req: &Request) -> Reply {
    let mut entry = HttpEntry {
        conn: conn.id,
        method: req.method.clone(),
        target: req.target.clone(),
        status: 0,
        auth_scheme: req
            .header("authorization")
            .and_then(|a| a.split_whitespace().next())
            .map(str::to_string),
        cookie: req.cookies(),
        body_len: req.body.len(),
        session: None,
        note: String::new(),
    };
    let mut state;
    let reply = if req.method != "POST" {
        entry.note = "not a POST".into();
        state = shared.lock();
        Reply::new(405)
    } else {
        match authenticate(shared, conn, req) {
            Err((reply, note)) => {
                entry.note = note;
                state = shared.lock();
                reply
            }
            Ok(user) => {
                state = shared.lock();
                cwmp(shared, &mut state, req, user, &mut entry)
            }
        }
    };
    // The entry is logged under the same lock as the session change, so a waiter never sees a
    // completed session without its last HTTP entry.
    entry.status = reply.status;
    if state.http.len() < MAX_LOG {
        state.http.push(entry);
    }
    drop(state);
    shared.changed.notify_all();
    reply
}

/// Checks the `Authorization` header (§3.4.4); `Ok(user)` or the 401 to send.
fn authenticate(
    shared: &Shared,
    conn: &mut ConnState,
    req: &Request,
) -> Result<Option<String>, (Reply, String)> {
    let opts = &shared.opts;
    let authorization = req.header("authorization");
    match &opts.auth {
        Auth::None => Ok(None),
        Auth::Basic { username, password } => match authorization {
            Some(a) if auth::verify_basic(a, username, password) => Ok(Some(username.clone())),
            Some(_) if opts.bare_refusal => Err(bare_refusal(shared)),
            other => {
                let mut r = Reply::new(401);
                r.headers.push((
                    "WWW-Authenticate".into(),
                    auth::basic_challenge(&opts.realm),
                ));
                let note = if other.is_some() {
                    "401 bad Basic credentials"
                } else {
                    "401 Basic challenge"
                };
                shared.say(&format!("   ACS: {note}\n"));
                Err((r, note.into()))
            }
        },
        Auth::Digest {
            username,
            password,
            algorithm,
        } => {
            let server = DigestServer {
                realm: opts.realm.clone(),
                algorithm: *algorithm,
                opaque: None,
            };
            let verdict = match authorization {
                None => None,
                Some(a) => {
                    let (bound, last) = (conn.nonce.clone(), conn.last_nc);
                    let mut seen_nc = None;
                    let v =
                        server.verify(a, &req.method, &req.target, username, password, |n, nc| {
                            // The nonce must have been issued on this very TCP connection, and the
                            // nonce count must grow (RFC 7616 §3.4 replay protection).
                            if bound.as_deref() == Some(n) && nc > last {
                                seen_nc = Some(nc);
                                NonceStatus::Valid
                            } else {
                                NonceStatus::Stale
                            }
                        });
                    if let Some(nc) = seen_nc {
                        conn.last_nc = nc;
                    }
                    Some(v)
                }
            };
            match verdict {
                Some(Verdict::Ok) => Ok(Some(username.clone())),
                Some(Verdict::Bad) if opts.bare_refusal => Err(bare_refusal(shared)),
                v => {
                    let stale = v == Some(Verdict::Stale);
                    let nonce = shared.random();
                    conn.nonce = Some(nonce.clone());
                    conn.last_nc = 0;
                    let mut r = Reply::new(401);
                    r.headers
                        .push(("WWW-Authenticate".into(), server.challenge(&nonce, stale)));
                    let note = match v {
                        None => "401 Digest challenge",
                        Some(Verdict::Stale) => "401 stale nonce (not issued on this connection)",
                        _ => "401 bad Digest credentials",
                    };
                    shared.say(&format!(
                        "   ACS: {note} ({} {}, conn {})\n",
                        algorithm.name(),
                        opts.realm,
                        conn.id
                    ));
                    Err((r, note.into()))
                }
            }
        }
    }
}

/// GenieACS's answer to wrong credentials: 401, no challenge, `Connection: close`.
fn bare_refusal(shared: &Shared) -> (Reply, String) {
    let note = "401 bad credentials (no challenge, closed)";
    shared.say(&format!("   ACS: {note}\n"));
    let mut r = Reply::new(401);
    r.close = true;
    (r, note.into())
}

/// The CWMP part of a POST (§3.7.1).
fn cwmp(
    shared: &Shared,
    state: &mut State,
    req: &Request,
    user: Option<String>,
    entry: &mut HttpEntry,
) -> Reply {
    let opts = &shared.opts;
    let limits = Limits::default();
    let parsed = if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        match parse_cpe(&req.body, &limits) {
            Ok(env) => Some(env),
            Err(e) => {
                let msg = format!("unparsable POST: {}", parse_error_text(&e));
                entry.note = msg.clone();
                shared.say(&format!("\n!! CPE sent {msg}\n"));
                if let Some(live) = &state.live {
                    if let Some(s) = state.sessions.get_mut(live.index) {
                        s.errors.push(msg);
                    }
                    entry.session = Some(live.index);
                }
                return Reply::new(400);
            }
        }
    };

    // An Inform opens a session (§3.7.1.1), whatever came before.
    if let Some(env) = &parsed {
        if let CpeMessage::Request(CpeRequest::Inform(inform)) = &env.body {
            return start_session(shared, state, env.ns, &env.header, inform, user, entry);
        }
    }

    let Some(live) = state.live.as_mut() else {
        entry.note = "POST outside a session".into();
        shared.say("\n!! CPE POST outside a session: 400\n");
        return Reply::new(400);
    };
    let index = live.index;
    entry.session = Some(index);

    // GenieACS answers 400 to a POST of the session without its cookie.
    if let Some(cookie) = &live.cookie {
        if !has_cookie(entry.cookie.as_deref(), cookie) {
            let msg = format!(
                "POST without the session cookie {cookie} (got {:?})",
                entry.cookie
            );
            entry.note = msg.clone();
            shared.say(&format!("\n!! {msg}: 400\n"));
            if let Some(s) = state.sessions.get_mut(index) {
                s.errors.push(msg);
            }
            return Reply::new(400);
        }
    }

    let ns = opts.reply_ns.unwrap_or(live.ns);
    match parsed {
        Some(env) => match env.body {
            CpeMessage::Request(r) => {
                entry.note = r.method().to_string();
                shared.say(&describe_cpe_request(&r, env.ns, entry));
                let resp = answer_cpe_request(&r);
                let header = Header {
                    id: env.header.id.clone(),
                    ..Header::default()
                };
                if let Some(s) = state.sessions.get_mut(index) {
                    s.cpe_requests.push((env.ns, r));
                }
                shared.say(&describe_acs_response(&resp));
                Reply::xml(emit_acs_response(ns, &header, &resp))
            }
            CpeMessage::Response(resp) => {
                entry.note = match &resp {
                    CpeResponse::Fault(f) => format!("Fault {}", f.code()),
                    r => r.element().unwrap_or("response").to_string(),
                };
                record_answer(shared, state, index, env.header.id, Some(env.ns), Ok(resp));
                next_request(shared, state, ns)
            }
            CpeMessage::Empty => {
                entry.note = "empty POST (envelope without body)".into();
                empty_post(shared, state, index, ns)
            }
        },
        None => {
            entry.note = "empty POST".into();
            empty_post(shared, state, index, ns)
        }
    }
}

fn empty_post(shared: &Shared, state: &mut State, index: usize, ns: CwmpNs) -> Reply {
    shared.say("\n── CPE → ACS ── empty POST (no more CPE requests)\n");
    let outstanding = state.live.as_ref().is_some_and(|l| l.outstanding.is_some());
    if outstanding {
        record_answer(
            shared,
            state,
            index,
            None,
            None,
            Err("an empty POST instead of a response".into()),
        );
    }
    next_request(shared, state, ns)
}

fn has_cookie(sent: Option<&str>, want: &str) -> bool {
    sent.is_some_and(|s| s.split(';').any(|c| c.trim() == want))
}

#[allow(clippy::too_many_arguments)]
fn start_session(
    shared: &Shared,
    state: &mut State,
    ns: CwmpNs,
    header: &Header,
    inform: &Inform,
    user: Option<String>,
    entry: &mut HttpEntry,
) -> Reply {
    let opts = &shared.opts;
    // A session left open by the CPE (a new Inform before our empty response) is abandoned.
    if let Some(old) = state.live.take() {
        if let Some(s) = state.sessions.get_mut(old.index) {
            s.errors.push("abandoned: a new Inform arrived".into());
        }
    }
    let index = state.sessions.len();
    entry.session = Some(index);
    entry.note = "Inform".into();
    let busy = opts.busy.filter(|(n, _)| index < *n).map(|(_, secs)| secs);
    let rejected = busy.is_some() || opts.reject_inform.contains(&ns);
    state.sessions.push(SessionRecord {
        index,
        started: Instant::now(),
        ns,
        header: header.clone(),
        inform: inform.clone(),
        rejected,
        completed: false,
        ended: None,
        cookie: None,
        user,
        cpe_requests: Vec::new(),
        exchanges: Vec::new(),
        errors: Vec::new(),
    });
    shared.say(&describe_inform(index, ns, header, inform, entry));
    if let Some(secs) = busy {
        entry.note = format!("busy, Retry-After {secs}");
        shared.say(&format!("── ACS → CPE ── HTTP 503, Retry-After: {secs}\n"));
        let mut reply = Reply::new(503);
        reply.headers.push(("Retry-After".into(), secs.to_string()));
        return reply;
    }
    if rejected {
        entry.note = format!("Inform refused ({})", ns.urn());
        return match opts.reject_with {
            Reject::Http(status) => {
                shared.say(&format!(
                    "── ACS → CPE ── HTTP {status}: this ACS does not speak {}\n",
                    ns.urn()
                ));
                Reply::new(status)
            }
            Reject::Fault(code) => {
                let fault = AcsFault {
                    code,
                    string: format!("{} is not supported", ns.urn()),
                };
                shared.say(&format!("── ACS → CPE ── Fault {code} {}\n", fault.string));
                let body = emit_acs_fault(ns, header.id.as_deref(), &fault);
                Reply {
                    status: 500,
                    ..Reply::xml(body)
                }
            }
        };
    }
    let reply_ns = opts.reply_ns.unwrap_or(ns);
    let cookie = match opts.cookie {
        Cookie::Off => None,
        Cookie::Session => Some((format!("session={}", shared.random()), "Path=/")),
        Cookie::SerialNumber => Some((
            format!("SerialNumber={}", inform.device_id.serial_number),
            "path=/",
        )),
    };
    let script = state.scripts.pop_front();
    if let Some(s) = state.sessions.get_mut(index) {
        s.cookie = cookie.as_ref().map(|(c, _)| c.clone());
    }
    state.live = Some(Live {
        index,
        ns,
        cookie: cookie.as_ref().map(|(c, _)| c.clone()),
        script,
        outstanding: None,
        next_id: 1,
    });
    let resp = AcsResponse::Inform { max_envelopes: 1 };
    let out_header = Header {
        id: header.id.clone(),
        use_version: opts.use_version.clone(),
        ..Header::default()
    };
    let mut reply = Reply::xml(emit_acs_response(reply_ns, &out_header, &resp));
    let mut text = describe_acs_response(&resp);
    if let Some(v) = &opts.use_version {
        text.push_str(&format!("   UseCWMPVersion {v}\n"));
    }
    if reply_ns != ns {
        text.push_str(&format!("   (in namespace {})\n", reply_ns.urn()));
    }
    if let Some((c, attrs)) = cookie {
        text.push_str(&format!("   Set-Cookie: {c}; {attrs}\n"));
        reply
            .headers
            .push(("Set-Cookie".into(), format!("{c}; {attrs}")));
    }
    shared.say(&text);
    reply
}

/// The ACS's answer to a CPE request (§A.3.3, §A.4.2).
fn answer_cpe_request(r: &CpeRequest) -> AcsResponse {
    match r {
        CpeRequest::Inform(_) => AcsResponse::Inform { max_envelopes: 1 },
        CpeRequest::TransferComplete { .. } => AcsResponse::TransferComplete,
        CpeRequest::AutonomousTransferComplete { .. } => AcsResponse::AutonomousTransferComplete,
        CpeRequest::RequestDownload { .. } => AcsResponse::RequestDownload,
        CpeRequest::Kicked { .. } => AcsResponse::Kicked {
            next_url: String::new(),
        },
        CpeRequest::GetRpcMethods => AcsResponse::GetRpcMethods {
            methods: [
                "Inform",
                "GetRPCMethods",
                "TransferComplete",
                "AutonomousTransferComplete",
                "RequestDownload",
                "Kicked",
            ]
            .iter()
            .map(|m| m.to_string())
            .collect(),
        },
    }
}

/// Records the CPE's answer to the outstanding request.
fn record_answer(
    shared: &Shared,
    state: &mut State,
    index: usize,
    echoed_id: Option<String>,
    ns: Option<CwmpNs>,
    response: Result<CpeResponse, String>,
) {
    let outstanding = state.live.as_mut().and_then(|l| l.outstanding.take());
    match &response {
        Ok(r) => shared.say(&describe_cpe_response(r, ns)),
        Err(e) => shared.say(&format!("\n!! {e}\n")),
    }
    let Some(session) = state.sessions.get_mut(index) else {
        return;
    };
    match outstanding {
        Some((id, call)) => {
            if echoed_id.as_deref() != Some(id.as_str()) && response.is_ok() {
                session.errors.push(format!(
                    "{} answered with cwmp:ID {echoed_id:?}, sent {id}",
                    call.method()
                ));
            }
            session.exchanges.push(Exchange {
                id,
                call,
                echoed_id,
                ns,
                response,
            });
        }
        None => session
            .errors
            .push(format!("a response nobody asked for: {response:?}")),
    }
}

/// Sends the script's next request, or ends the session (§3.7.2.4).
fn next_request(shared: &Shared, state: &mut State, ns: CwmpNs) -> Reply {
    let State { sessions, live, .. } = state;
    let Some(l) = live.as_mut() else {
        return Reply::new(400);
    };
    let index = l.index;
    let next = match (&mut l.script, sessions.get(index)) {
        (Some(script), Some(session)) => {
            let turn = Turn {
                session,
                last: session.exchanges.last(),
            };
            script(&turn)
        }
        _ => None,
    };
    match next {
        Some(call) => {
            let id = format!("acs-{}-{}", index, l.next_id);
            l.next_id += 1;
            let header = Header {
                id: Some(id.clone()),
                ..Header::default()
            };
            let body = match &call {
                Call::Rpc(r) => emit_acs_request(ns, &header, r),
                Call::Raw { body, .. } => raw_envelope(ns, &id, body),
            };
            shared.say(&describe_call(&call, &id));
            l.outstanding = Some((id, call));
            Reply::xml(body)
        }
        None => {
            *live = None;
            if let Some(s) = sessions.get_mut(index) {
                s.completed = true;
                s.ended = Some(Instant::now());
            }
            let status = if shared.opts.end_with_200 { 200 } else { 204 };
            shared.say(&format!(
                "── ACS → CPE ── HTTP {status}, empty body: the session is over\n"
            ));
            Reply::new(status)
        }
    }
}

fn raw_envelope(ns: CwmpNs, id: &str, body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:SOAP-ENC=\"http://schemas.xmlsoap.org/soap/encoding/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"{}\">\
         <SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand=\"1\">{id}</cwmp:ID></SOAP-ENV:Header>\
         <SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>",
        ns.urn()
    )
    .into_bytes()
}

fn parse_error_text(e: &ParseError) -> String {
    match e {
        ParseError::Malformed(m) => format!("malformed: {m}"),
        ParseError::UnknownMethod { method, .. } => format!("unknown method {method}"),
        ParseError::BadArguments { method, detail, .. } => format!("{method}: {detail}"),
        ParseError::MustUnderstand { element, .. } => {
            format!("unknown mustUnderstand header {element}")
        }
    }
}

// What follows renders messages for a human reader (verbose mode): one block per message, an
// arrow for the direction, the method and its key arguments.

/// Most list lines printed per message.
const MAX_LINES: usize = 24;

fn ns_short(ns: CwmpNs) -> &'static str {
    ns.urn().trim_start_matches("urn:dslforum-org:")
}

fn lines(out: &mut String, items: impl IntoIterator<Item = String>) {
    let mut n = 0;
    let mut rest = 0;
    for item in items {
        if n < MAX_LINES {
            out.push_str("   ");
            out.push_str(&item);
            out.push('\n');
            n += 1;
        } else {
            rest += 1;
        }
    }
    if rest > 0 {
        out.push_str(&format!("   … and {rest} more\n"));
    }
}

fn describe_inform(
    index: usize,
    ns: CwmpNs,
    header: &Header,
    inform: &Inform,
    entry: &HttpEntry,
) -> String {
    let d = &inform.device_id;
    let mut out = format!(
        "\n━━ session {} ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n\
         ── CPE → ACS ── Inform ({}, TCP connection {})\n",
        index + 1,
        ns_short(ns),
        entry.conn
    );
    out.push_str(&format!(
        "   DeviceId   {} / OUI {} / {} / serial {}\n",
        d.manufacturer, d.oui, d.product_class, d.serial_number
    ));
    let events: Vec<String> = inform.events.iter().map(|e| e.to_string()).collect();
    out.push_str(&format!("   Events     {}\n", events.join(", ")));
    out.push_str(&format!(
        "   RetryCount {}   CurrentTime {}\n",
        inform.retry_count, inform.current_time
    ));
    if let Some(v) = &header.supported_versions {
        out.push_str(&format!("   SupportedCWMPVersions {v}\n"));
    }
    lines(
        &mut out,
        inform
            .parameters
            .iter()
            .map(|p| format!("{} = {}", p.name, p.value)),
    );
    out
}

fn describe_acs_response(r: &AcsResponse) -> String {
    match r {
        AcsResponse::Inform { max_envelopes } => {
            format!("── ACS → CPE ── InformResponse (MaxEnvelopes {max_envelopes})\n")
        }
        AcsResponse::GetRpcMethods { methods } => format!(
            "── ACS → CPE ── GetRPCMethodsResponse: {}\n",
            methods.join(", ")
        ),
        other => format!("── ACS → CPE ── {other:?}\n"),
    }
}

fn describe_cpe_request(r: &CpeRequest, ns: CwmpNs, entry: &HttpEntry) -> String {
    let mut out = format!(
        "\n── CPE → ACS ── {} ({}, TCP connection {})\n",
        r.method(),
        ns_short(ns),
        entry.conn
    );
    match r {
        CpeRequest::TransferComplete {
            command_key, fault, ..
        } => out.push_str(&format!(
            "   CommandKey {command_key:?}  FaultCode {}\n",
            fault.code
        )),
        CpeRequest::GetRpcMethods => {}
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}

fn describe_call(call: &Call, id: &str) -> String {
    let mut out = format!("\n── ACS → CPE ── {} (cwmp:ID {id})\n", call.method());
    let r = match call {
        Call::Raw { body, .. } => {
            out.push_str(&format!("   {body}\n"));
            return out;
        }
        Call::Rpc(r) => r,
    };
    match r {
        AcsRequest::GetRpcMethods => {}
        AcsRequest::GetParameterNames { path, next_level } => {
            out.push_str(&format!(
                "   ParameterPath {path:?}  NextLevel {next_level}\n"
            ));
        }
        AcsRequest::GetParameterValues { names } | AcsRequest::GetParameterAttributes { names } => {
            lines(&mut out, names.iter().cloned());
        }
        AcsRequest::SetParameterValues {
            list,
            parameter_key,
        } => {
            lines(
                &mut out,
                list.iter().map(|p| {
                    let ty = match &p.xsi_type {
                        Some(cwmpd::soap::XsiType::Known(t)) => t.xsi_type().to_string(),
                        Some(cwmpd::soap::XsiType::Unknown(t)) => t.clone(),
                        None => "no type".into(),
                    };
                    format!("{} = {:?}  ({ty})", p.name, p.value)
                }),
            );
            out.push_str(&format!("   ParameterKey {parameter_key:?}\n"));
        }
        AcsRequest::SetParameterAttributes { list } => lines(
            &mut out,
            list.iter().map(|a| {
                let mut s = a.name.clone();
                if a.notification_change {
                    s.push_str(&format!("  Notification → {}", a.notification));
                }
                if a.access_list_change {
                    s.push_str(&format!("  AccessList → {:?}", a.access_list));
                }
                s
            }),
        ),
        AcsRequest::AddObject {
            object_name,
            parameter_key,
        }
        | AcsRequest::DeleteObject {
            object_name,
            parameter_key,
        } => out.push_str(&format!(
            "   {object_name}  ParameterKey {parameter_key:?}\n"
        )),
        AcsRequest::ScheduleInform {
            delay_seconds,
            command_key,
        } => out.push_str(&format!(
            "   DelaySeconds {delay_seconds}  CommandKey {command_key:?}\n"
        )),
        AcsRequest::Reboot { command_key } | AcsRequest::CancelTransfer { command_key } => {
            out.push_str(&format!("   CommandKey {command_key:?}\n"));
        }
        AcsRequest::Download(d) => out.push_str(&format!(
            "   FileType {:?}  URL {}  CommandKey {:?}\n",
            d.file_type, d.url, d.command_key
        )),
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}

fn describe_cpe_response(r: &CpeResponse, ns: Option<CwmpNs>) -> String {
    let name = r.element().unwrap_or("Fault");
    let mut out = format!(
        "── CPE → ACS ── {name}{}\n",
        ns.map(|n| format!(" ({})", ns_short(n)))
            .unwrap_or_default()
    );
    match r {
        CpeResponse::GetRpcMethods { methods } => {
            out.push_str(&format!("   {}\n", methods.join(", ")));
        }
        CpeResponse::GetParameterNames { list } => lines(
            &mut out,
            list.iter()
                .map(|p| format!("{}{}", p.name, if p.writable { "  (writable)" } else { "" })),
        ),
        CpeResponse::GetParameterValues { list } => lines(
            &mut out,
            list.iter()
                .map(|p| format!("{} = {:?}  ({})", p.name, p.value, p.ty.xsi_type())),
        ),
        CpeResponse::GetParameterAttributes { list } => lines(
            &mut out,
            list.iter().map(|a| {
                format!(
                    "{}  Notification {}  AccessList {:?}",
                    a.name, a.notification, a.access_list
                )
            }),
        ),
        CpeResponse::SetParameterValues { status } | CpeResponse::DeleteObject { status } => {
            out.push_str(&format!("   Status {status}\n"));
        }
        CpeResponse::AddObject {
            instance_number,
            status,
        } => out.push_str(&format!(
            "   InstanceNumber {instance_number}  Status {status}\n"
        )),
        CpeResponse::Fault(f) => {
            out.push_str(&format!("   {} {}\n", f.code(), f.fault_string()));
            lines(
                &mut out,
                f.param_faults()
                    .iter()
                    .map(|p| format!("{}: {} {}", p.name, p.fault.code(), p.fault.fault_string())),
            );
        }
        CpeResponse::SetParameterAttributes
        | CpeResponse::ScheduleInform
        | CpeResponse::Reboot
        | CpeResponse::FactoryReset => {}
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}
