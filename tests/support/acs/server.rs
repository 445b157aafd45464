//! The TCP/TLS server of the test ACS: it listens on 127.0.0.1 over plain HTTP or HTTPS, one
//! thread per connection (keep-alive), with bounded heads, bodies, connection counts and idle
//! time, reads each request with [`crate::http::read_request`] and hands it to the sans-IO core
//! ([`AcsCore`]) under one lock; in verbose mode it prints the core's new transcript records.
//!
//! Threads: `acs-accept` (the accept loop) and one `acs-conn-N` per live connection; all end
//! when the [`Acs`] is dropped.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::session::{AcsCore, Connection, Event, HttpResponse};
use super::transcript::render;
use super::{AcsOptions, Call, HttpEntry, SessionRecord, Turn};
use crate::http::{self, Limits};
use crate::tls::Conn;

/// Most connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 32;
/// Largest request head.
const MAX_HEAD: usize = 16 * 1024;
/// Idle time after which a connection is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running ACS; stops on drop.
pub struct Acs {
    addr: SocketAddr,
    https: bool,
    path: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    /// The listening socket, to wake the accept loop on drop when a connection cannot reach it
    /// (an ACS listening inside a network namespace the dropping thread is not in).
    listener: Option<TcpListener>,
}

struct Shared {
    tls: Option<Arc<rustls::ServerConfig>>,
    verbose: bool,
    inner: Mutex<Inner>,
    changed: Condvar,
    stop: AtomicBool,
    conns: AtomicU64,
    live: AtomicUsize,
}

struct Inner {
    core: AcsCore,
    /// Transcript records printed so far (verbose mode).
    printed: usize,
    tls_failures: Vec<String>,
    sockets: Vec<(u64, TcpStream)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Prints the transcript records not printed yet (verbose mode).
    fn print_new(&mut self, verbose: bool) {
        let events = self.core.events();
        if verbose && self.printed < events.len() {
            let out = io::stdout();
            let mut out = out.lock();
            for e in events.get(self.printed..).unwrap_or_default() {
                let _ = out.write_all(render(e).as_bytes());
            }
            let _ = out.flush();
        }
        self.printed = events.len();
    }
}

impl Acs {
    /// Starts listening.
    pub fn start(opts: AcsOptions) -> io::Result<Acs> {
        let listener = TcpListener::bind(opts.bind)?;
        let addr = listener.local_addr()?;
        let https = opts.tls.is_some();
        let path = opts.path.clone();
        let shared = Arc::new(Shared {
            tls: opts.tls.clone(),
            verbose: opts.verbose,
            inner: Mutex::new(Inner {
                core: AcsCore::new(opts),
                printed: 0,
                tls_failures: Vec::new(),
                sockets: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let wake = listener.try_clone().ok();
        let accept = thread::Builder::new()
            .name("acs-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Acs {
            addr,
            https,
            path,
            shared,
            accept: Some(accept),
            listener: wake,
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
        self.shared.lock().core.push_script(calls);
    }

    /// Queues a script closure for the next session that has none.
    pub fn push_script_fn<F>(&self, f: F)
    where
        F: FnMut(&Turn<'_>) -> Option<Call> + Send + 'static,
    {
        self.shared.lock().core.push_script_fn(Box::new(f));
    }

    /// Every session so far (completed, rejected or in progress).
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.shared.lock().core.sessions().to_vec()
    }

    /// The completed sessions so far.
    pub fn completed(&self) -> Vec<SessionRecord> {
        completed(self.shared.lock().core.sessions())
    }

    /// The completed sessions whose Inform carried the event `code`.
    pub fn completed_with(&self, code: &str) -> Vec<SessionRecord> {
        self.completed()
            .into_iter()
            .filter(|s| s.has_event(code))
            .collect()
    }

    /// Every HTTP request so far.
    pub fn http_log(&self) -> Vec<HttpEntry> {
        self.shared.lock().core.http_log().to_vec()
    }

    /// The transcript so far, as the verbose mode prints it.
    pub fn transcript(&self) -> String {
        self.shared.lock().core.transcript()
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
        let mut inner = self.shared.lock();
        loop {
            if done(inner.core.sessions()) {
                return Ok(inner.core.sessions().to_vec());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after {timeout:?}; sessions: {:#?}\nHTTP: {:#?}\nTLS failures: {:?}",
                    inner.core.sessions(),
                    inner.core.http_log(),
                    inner.tls_failures
                ));
            }
            inner = match self.shared.changed.wait_timeout(inner, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Drop for Acs {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag, then close every live connection. Shutting
        // the listening socket down ends a blocked accept(2) on Linux (EINVAL) from any
        // namespace; the connection covers the rest.
        if let Some(l) = &self.listener {
            let _ = socket2::SockRef::from(l).shutdown(Shutdown::Read);
        }
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

fn serve(tcp: TcpStream, id: u64, shared: &Shared) -> io::Result<()> {
    tcp.set_read_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_write_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let mut stream = Conn::new(tcp, shared.tls.clone())?;
    if let Conn::Tls(s) = &mut stream {
        while s.conn.is_handshaking() {
            if let Err(e) = s.conn.complete_io(&mut s.sock) {
                let msg = format!("conn {id}: TLS handshake failed: {e}");
                let mut inner = shared.lock();
                inner.tls_failures.push(msg.clone());
                inner.core.record(Event::TlsFailed(msg));
                inner.print_new(shared.verbose);
                drop(inner);
                shared.changed.notify_all();
                return Err(e);
            }
        }
    }
    let limits = Limits {
        max_head: MAX_HEAD,
        max_body: cwmpd::soap::Limits::default().max_bytes,
    };
    let mut conn = Connection::new(id);
    let mut buf = Vec::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let req = match http::read_request(&mut stream, &mut buf, limits) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A malformed or oversized request: answer 400 and close.
                let mut r = HttpResponse::new(400);
                r.close = true;
                let _ = write_reply(&mut stream, &r);
                return Err(e);
            }
        };
        let mut reply = {
            // The entry is logged under the same lock as the session change, so a waiter never
            // sees a completed session without its last HTTP entry.
            let mut inner = shared.lock();
            let reply = inner.core.handle(&mut conn, &req, Instant::now());
            inner.print_new(shared.verbose);
            reply
        };
        shared.changed.notify_all();
        reply.close |= req.wants_close();
        write_reply(&mut stream, &reply)?;
        if reply.close {
            if let Conn::Tls(s) = &mut stream {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            return Ok(());
        }
    }
}

fn write_reply(stream: &mut Conn, r: &HttpResponse) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, http::reason(r.status));
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
