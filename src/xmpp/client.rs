//! The XMPP connection of TR-069 Annex K: one thread (`xmpp`) that connects to the server,
//! negotiates the stream ([`super::negotiate`]: STARTTLS with the agent's CA bundle, SASL
//! PLAIN, the resource), then answers what arrives: a connection request is decided by the
//! caller's handler and answered ([`super::connreq`]), any other request gets
//! `feature-not-implemented`. It keeps the connection alive with whitespace (RFC 6120 §4.6.1)
//! every KeepAliveInterval, pings the server (XEP-0199) after [`PING_AFTER`] of silence and
//! gives the connection up when nothing comes back, and when the connection fails it connects
//! again after ServerRetryInitialInterval, the wait multiplied by ServerRetryIntervalMultiplier
//! up to ServerRetryMaxInterval (TR-181 `XMPP.Connection.{i}.`; the wait starts again from the
//! initial one only after a connection that stayed up [`STABLE`]).
//!
//! Every wait is bounded: the connect (10 s), the negotiation (30 s), each read (200 ms, then
//! the stop flag and the keep-alive are looked at), the writes (10 s). What the server sends
//! is cut and parsed within [`super::stream`]'s bounds; the thread reads 4 KiB at a time.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::connreq::{self, Request, Stanza, Verdict};
use super::negotiate::{Config, Failure, Negotiation, Step};
use super::stream::{Event, Splitter};

/// Stack of the thread.
const STACK: usize = 256 * 1024;
/// The slice of every read (the stop flag and the keep-alive are looked at between two).
const SLICE: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence from the server after which it is pinged (XEP-0199), whatever KeepAliveInterval
/// says: a connection a NAT or a WAN change dropped without a word is found and replaced.
pub const PING_AFTER: Duration = Duration::from_secs(300);
/// How long the server has to say anything after a ping (at most; less when pings come
/// sooner).
const PING_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection up at least this long resets the retry wait (one that drops sooner does not:
/// a server that closes each stream after binding gets the backoff).
const STABLE: Duration = Duration::from_secs(60);

/// Where the servers are (TR-181 `ServerConnectAlgorithm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Servers {
    /// These hosts and ports, tried in this order (the Server table's; DNS: the Domain at
    /// 5222).
    List(Vec<(String, u16)>),
    /// DNS-SRV: the Domain's `_xmpp-client._tcp` records, asked at every attempt (RFC 6120
    /// §3.2.1), by priority and then weight; the Domain at 5222 when it has none or no name
    /// server answers (§3.2.2).
    Srv {
        domain: String,
        name_servers: NameServers,
    },
}

/// Whom the SRV records are asked of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameServers {
    /// The `nameserver` lines of this resolv.conf, read at every attempt (port 53).
    ResolvConf(std::path::PathBuf),
    Fixed(Vec<std::net::SocketAddr>),
}

/// The XMPP client port (RFC 6120 §14.7).
pub const PORT: u16 = 5222;
/// SRV targets tried in one attempt.
const MAX_TARGETS: usize = 8;
/// Addresses connected to in one attempt (each up to [`CONNECT_TIMEOUT`]).
const MAX_ADDRESSES: usize = 8;
/// How long one name server has to answer the SRV question.
const SRV_TIMEOUT: Duration = Duration::from_secs(5);

impl Servers {
    /// The hosts and ports to try now, in order; an error when the domain says it offers no
    /// XMPP service (an SRV record with the target `.`).
    pub fn resolve(&self, stop: &AtomicBool) -> Result<Vec<(String, u16)>, String> {
        let (domain, name_servers) = match self {
            Servers::List(l) => return Ok(l.clone()),
            Servers::Srv {
                domain,
                name_servers,
            } => (domain, name_servers),
        };
        let fallback = vec![(domain.clone(), PORT)];
        let servers: Vec<std::net::SocketAddr> = match name_servers {
            NameServers::Fixed(l) => l.clone(),
            NameServers::ResolvConf(path) => match crate::diag::lookup::name_servers(path) {
                Ok(l) => l
                    .into_iter()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
                    .collect(),
                Err(e) => {
                    log::debug!("XMPP: {}: {e}", path.display());
                    Vec::new()
                }
            },
        };
        let name = format!("_xmpp-client._tcp.{domain}");
        for server in servers.iter().take(4) {
            use crate::diag::{dns, lookup};
            match lookup::lookup(*server, &name, dns::TYPE_SRV, SRV_TIMEOUT, None, stop) {
                // A truncated answer without records says nothing (no retry over TCP here):
                // the next name server is asked.
                Ok(lookup::Lookup::Answered(r, _))
                    if (r.rcode == 0 || r.rcode == 3)
                        && !(r.truncated && r.services.is_empty()) =>
                {
                    let mut found = r.services;
                    if found.len() == 1 && found[0].target.is_empty() {
                        return Err(format!("{domain} offers no XMPP service (SRV)"));
                    }
                    // Host names only (RFC 2782), at most MAX_TARGETS of them: whoever answers
                    // DNS cannot make one attempt last for ever.
                    found.retain(|s| {
                        !s.target.is_empty() && s.target.parse::<std::net::IpAddr>().is_err()
                    });
                    if found.is_empty() {
                        return Ok(fallback);
                    }
                    // Lowest priority first; within one, the heaviest first (RFC 2782's
                    // weighted choice made deterministic).
                    found.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
                    found.truncate(MAX_TARGETS);
                    return Ok(found.into_iter().map(|s| (s.target, s.port)).collect());
                }
                Ok(other) => log::debug!("XMPP: SRV of {name} at {server}: {other:?}"),
                Err(e) => log::debug!("XMPP: SRV of {name} at {server}: {e}"),
            }
        }
        Ok(fallback)
    }
}

/// What the data model says of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the servers are.
    pub servers: Servers,
    pub negotiate: Config,
    /// KeepAliveInterval (`None`: -1, no keep-alive).
    pub keepalive: Option<Duration>,
    /// Silence after which the server is pinged ([`PING_AFTER`]).
    pub ping_after: Duration,
    /// ServerRetryInitialInterval, seconds (at least 1).
    pub retry_initial: u32,
    /// ServerRetryIntervalMultiplier, thousandths (at least 1000).
    pub retry_multiplier: u32,
    /// ServerRetryMaxInterval, seconds.
    pub retry_max: u32,
    /// The agent's TLS trust (the ACS's CA bundle and client certificate).
    pub tls: crate::http::tls::TlsSettings,
}

/// What the connection is doing (TR-181 `Status`, `JabberID`, `TLSEstablished`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub up: bool,
    /// The JID the server bound (ConnReqJabberID), while up.
    pub jid: String,
    pub tls: bool,
    /// Why the last attempt failed (for the log), and its kind (TR-181 `Status`).
    pub last_error: String,
    pub problem: Problem,
}

/// What kind of failure ended the last attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Problem {
    /// None yet (connecting, or up).
    #[default]
    None,
    /// No server could be resolved or reached.
    Unreachable,
    /// The server refused the credentials.
    Auth,
    /// The server refused the resource binding.
    Bind,
    /// Anything else: TLS, the stream, the negotiation, a closed connection.
    Other,
}

/// The handler of a connection request: the verdict (and, on `Accept`, the session it owes).
pub type Handler = Box<dyn Fn(&Request) -> Verdict + Send>;

/// A running connection; dropping it closes the connection and joins the thread.
pub struct Client {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<Status>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Starts the connection; `on_status` is called (from the thread) when [`Client::status`]
    /// changed.
    /// Without a Resource in the settings, `resume` is the one to ask for first (the one the
    /// server gave before: the JID stays the same).
    pub fn start(
        settings: Settings,
        resume: Option<String>,
        handler: Handler,
        on_status: Box<dyn Fn() + Send>,
    ) -> io::Result<Client> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(Status::default()));
        let (stop2, status2) = (stop.clone(), status.clone());
        let thread = thread::Builder::new()
            .name("xmpp".into())
            .stack_size(STACK)
            .spawn(move || run(&settings, resume, &handler, &*on_status, &stop2, &status2))?;
        Ok(Client {
            stop,
            status,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Stops the connection without waiting for the thread: it closes the stream at its next
    /// look at the flag (within a read slice, or once a connect or write under way ends).
    pub fn detach(mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread = None;
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: connections one after the other, the retry wait between them.
fn run(
    s: &Settings,
    resume: Option<String>,
    handler: &Handler,
    on_status: &dyn Fn(),
    stop: &AtomicBool,
    status: &Mutex<Status>,
) {
    let initial = u64::from(s.retry_initial.max(1));
    let mut wait = initial;
    // Without a Resource, the one the server picked is asked for again: the JID the ACS was
    // told stays the same across reconnects (and restarts: `resume`). One the server refuses
    // (a conflict with a session of ours it still holds) is given up: it picks again.
    let learned = s.negotiate.resource.is_empty();
    let mut s = s.clone();
    if learned {
        s.negotiate.resource = resume.unwrap_or_default();
    }
    while !stop.load(Ordering::Acquire) {
        let mut ready_at = None;
        let result = connection(&s, handler, on_status, stop, status, &mut ready_at);
        let (was_up, jid) = {
            let st = lock(status);
            (st.up, st.jid.clone())
        };
        if learned {
            if let Some((_, resource)) = jid.split_once('/') {
                s.negotiate.resource = resource.to_string();
            } else if matches!(&result, Err((Problem::Bind, _))) {
                s.negotiate.resource.clear();
            }
        }
        set_status(status, on_status, |st| {
            st.up = false;
            st.jid.clear();
            st.tls = false;
            match &result {
                Err((problem, e)) => {
                    st.last_error = e.clone();
                    st.problem = *problem;
                }
                Ok(()) => st.problem = Problem::None,
            }
        });
        if stop.load(Ordering::Acquire) {
            break;
        }
        if was_up && ready_at.is_some_and(|t: Instant| t.elapsed() >= STABLE) {
            wait = initial;
        }
        match &result {
            Ok(()) => log::info!("XMPP: the server closed the stream"),
            Err((_, e)) => log::warn!("XMPP: {e}; connecting again in {wait} s"),
        }
        let until = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            thread::sleep(SLICE);
        }
        let next = wait.saturating_mul(u64::from(s.retry_multiplier.max(1000))) / 1000;
        wait = next.clamp(initial, u64::from(s.retry_max).max(initial));
    }
}

fn set_status(status: &Mutex<Status>, on_status: &dyn Fn(), f: impl FnOnce(&mut Status)) {
    let changed = {
        let mut st = lock(status);
        let before = st.clone();
        f(&mut st);
        *st != before
    };
    if changed {
        on_status();
    }
}

/// The socket, plain or (after STARTTLS) TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        match self {
            Conn::Plain(t) => t.write_all(text.as_bytes()),
            Conn::Tls(t) => {
                t.write_all(text.as_bytes())?;
                t.flush()
            }
        }
    }
}

/// One connection, from the connect to its end: Ok when the server ended the stream.
fn connection(
    s: &Settings,
    handler: &Handler,
    on_status: &dyn Fn(),
    stop: &AtomicBool,
    status: &Mutex<Status>,
    ready_at: &mut Option<Instant>,
) -> Result<(), (Problem, String)> {
    let servers = s
        .servers
        .resolve(stop)
        .map_err(|e| (Problem::Unreachable, e))?;
    let tcp = connect(&servers, stop).map_err(|e| (Problem::Unreachable, e))?;
    session(s, tcp, handler, on_status, stop, status, ready_at).map_err(|e| (e.problem, e.message))
}

/// Why a session ended: its kind and its one line.
struct Ended {
    problem: Problem,
    message: String,
}

/// Any failure but the negotiation's own is [`Problem::Other`].
impl From<String> for Ended {
    fn from(message: String) -> Ended {
        Ended {
            problem: Problem::Other,
            message,
        }
    }
}

impl From<&str> for Ended {
    fn from(message: &str) -> Ended {
        Ended::from(message.to_string())
    }
}

impl From<Failure> for Ended {
    fn from(f: Failure) -> Ended {
        let (problem, message) = match f {
            Failure::Tls => (
                Problem::Other,
                "TLS is required by one side and not offered by the other".to_string(),
            ),
            Failure::Auth(m) => (Problem::Auth, format!("authentication failed: {m}")),
            Failure::Bind => (Problem::Bind, "resource binding refused".to_string()),
            Failure::Protocol(m) => (Problem::Other, m),
        };
        Ended { problem, message }
    }
}

/// The first server (in order; each address of each) that accepts a TCP connection.
fn connect(servers: &[(String, u16)], stop: &AtomicBool) -> Result<TcpStream, String> {
    let mut last = String::from("no server");
    let mut tried = 0;
    for (host, port) in servers {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match (name, *port).to_socket_addrs() {
            Ok(a) => a,
            Err(e) => {
                last = format!("cannot resolve {host}: {e}");
                continue;
            }
        };
        for a in addrs {
            tried += 1;
            if stop.load(Ordering::Acquire) || tried > MAX_ADDRESSES {
                return Err(last);
            }
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(t) => return Ok(t),
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
    }
    Err(last)
}

/// The stream on a connected socket: negotiation, then requests until the end.
fn session(
    s: &Settings,
    tcp: TcpStream,
    handler: &Handler,
    on_status: &dyn Fn(),
    stop: &AtomicBool,
    status: &Mutex<Status>,
    ready_at: &mut Option<Instant>,
) -> Result<(), Ended> {
    tcp.set_read_timeout(Some(SLICE))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut conn = Conn::Plain(tcp);
    let mut neg = Negotiation::new(s.negotiate.clone());
    let mut split = Splitter::new();
    let io = |e: io::Error| e.to_string();
    conn.send(&neg.stream_start()).map_err(io)?;
    let started = Instant::now();
    let mut ready = false;
    let mut last_write = Instant::now();
    let mut last_read = Instant::now();
    let mut pinged: Option<Instant> = None;
    let ping = format!(
        "<iq type='get' id='cwmpd-ping' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
        crate::soap::xml_escape(&s.negotiate.domain)
    );
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Acquire) {
        if !ready && started.elapsed() > NEGOTIATION_TIMEOUT {
            return Err("the negotiation took too long".into());
        }
        match conn.read(&mut buf) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => {
                last_read = Instant::now();
                pinged = None;
                split
                    .push(&buf[..n])
                    .map_err(|e| format!("the server's stream: {e:?}"))?
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if let Some(k) = s.keepalive.filter(|_| ready) {
                    if last_write.elapsed() >= k {
                        conn.send(" ").map_err(io)?;
                        last_write = Instant::now();
                    }
                }
                match pinged {
                    Some(at) if at.elapsed() >= s.ping_after.min(PING_TIMEOUT) => {
                        return Err("the server stopped answering".into())
                    }
                    None if ready && last_read.elapsed() >= s.ping_after => {
                        conn.send(&ping).map_err(io)?;
                        pinged = Some(Instant::now());
                        last_write = Instant::now();
                    }
                    _ => {}
                }
                continue;
            }
            Err(e) => return Err(e.to_string().into()),
        }
        while let Some(ev) = split
            .next_event()
            .map_err(|e| format!("the server's stream: {e:?}"))?
        {
            let text = match ev {
                Event::Open(_) => continue,
                Event::Close => return Ok(()),
                Event::Stanza(t) => t,
            };
            if !ready {
                match neg.element(&text)? {
                    Step::Send(x) => conn.send(&x).map_err(io)?,
                    Step::StartTls => {
                        let Conn::Plain(tcp) = conn else {
                            return Err("STARTTLS twice".into());
                        };
                        let config = s.tls.rustls_config()?;
                        let name =
                            rustls::pki_types::ServerName::try_from(s.negotiate.domain.clone())
                                .map_err(|e| format!("{}: {e}", s.negotiate.domain))?;
                        let tls = rustls::ClientConnection::new(config, name)
                            .map_err(|e| e.to_string())?;
                        conn = Conn::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)));
                        neg.tls_started();
                        split.restart();
                        conn.send(&neg.stream_start()).map_err(io)?;
                    }
                    Step::Restart => {
                        split.restart();
                        conn.send(&neg.stream_start()).map_err(io)?;
                    }
                    Step::Ready(jid) => {
                        conn.send(Negotiation::presence()).map_err(io)?;
                        ready = true;
                        *ready_at = Some(Instant::now());
                        log::info!("XMPP: connected as {jid}");
                        let tls = neg.tls();
                        set_status(status, on_status, |st| {
                            st.up = true;
                            st.jid = jid;
                            st.tls = tls;
                            st.last_error.clear();
                            st.problem = Problem::None;
                        });
                    }
                    Step::Wait => {}
                }
                last_write = Instant::now();
                continue;
            }
            match connreq::read(&text) {
                Stanza::ConnectionRequest(r) => {
                    let v = handler(&r);
                    conn.send(&connreq::answer(&r.id, &r.from, v)).map_err(io)?;
                }
                Stanza::OtherRequest { id, from } => {
                    conn.send(&connreq::not_implemented(&id, &from))
                        .map_err(io)?;
                }
                Stanza::Ignored => continue,
            }
            last_write = Instant::now();
        }
    }
    let _ = conn.send("</stream:stream>");
    Ok(())
}
