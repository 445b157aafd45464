//! The test ACS in memory, as the agent's transport: [`AcsCore`] behind
//! [`cwmpd::agent::AcsTransport`], over a [`ManualClock`]. No socket, thread or sleep: the agent
//! built with [`cwmpd::agent::Agent::with_transport`]`(acs.connect())` and
//! [`cwmpd::agent::Agent::with_clock`] runs whole sessions against it, one loop turn at a time.
//!
//! It stands where the network and the real client ([`cwmpd::http::acs::Transport`]) stand, and
//! carries what the real client carries: each session attempt opens a new connection (a fresh
//! [`Connection`], numbered across the whole network); the cookies the ACS sets are kept in the
//! real client's jar ([`CookieJar`]) and sent back on every later POST of the session, and
//! dropped when it ends; a response that closes the connection makes the next POST open a new
//! one; `Retry-After` is read as delta-seconds. Authentication is not carried (the real client's
//! is tested over sockets): the ACSes here run with `Auth::None`.
//!
//! One [`MemoryAcs`] is a small network: one ACS per URL ([`MemoryAcs::serve`]), each an
//! [`AcsCore`], and one transcript for them all: before each connection a line with the clock's
//! time, then what the ACS's verbose mode prints ([`super::transcript`]), then what the network
//! did to the connection. A URL nothing serves refuses the connection; [`MemoryAcs::fail_next`]
//! breaks the next attempts on purpose (an unreachable ACS, a connection reset).
//!
//! ```ignore
//! let clock = ManualClock::new(T0);
//! let acs = MemoryAcs::new(&clock);
//! acs.serve("http://acs.test/acs", AcsOptions::default(), 1);
//! acs.push_script("http://acs.test/acs", [AcsRequest::GetRpcMethods]);
//! let mut agent = Agent::new(cfg)?.with_clock(Box::new(clock.clone())).with_transport(acs.connect());
//! let mut lp = agent.start_loop()?;
//! while acs.completed() < 1 { agent.turn(&mut lp); }
//! println!("{}", acs.transcript());
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cwmpd::agent::{AcsTransport, Clock, Connect};
use cwmpd::cwmp::time::format_datetime_utc;
use cwmpd::http::acs::{HttpReply, TransportConfig, TransportError};
use cwmpd::http::cookie::{CookieJar, Site};
use cwmpd::http::url::Url;
use cwmpd::soap::Body;

use super::{AcsCore, AcsOptions, Call, Connection, HttpRequest, SessionRecord};
use cwmpd::agent::ManualClock;

/// What the network does to the next session attempt ([`MemoryAcs::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing answers: the connection is refused before any byte is sent.
    Refused,
    /// The first POST (the Inform) reaches the ACS, and the connection breaks before the ACS's
    /// reply reaches the CPE.
    Reset,
}

/// A network of in-memory ACSes and its transcript; clones share it.
#[derive(Clone)]
pub struct MemoryAcs {
    net: Arc<Mutex<Net>>,
}

struct Net {
    clock: ManualClock,
    sites: Vec<Served>,
    /// Connections opened so far (the next one is numbered `conns + 1`).
    conns: u64,
    failures: VecDeque<Failure>,
    /// The clock's time since its start at each session attempt.
    attempts: Vec<Duration>,
    text: String,
}

/// One ACS: its URL, its core, and how many of its transcript records are in the text.
struct Served {
    url: String,
    core: AcsCore,
    shown: usize,
}

impl Net {
    fn site(&mut self, url: &str) -> Option<&mut Served> {
        self.sites.iter_mut().find(|s| s.url == url)
    }

    /// Appends the records `url`'s ACS made since the last call.
    fn show(&mut self, url: &str) {
        let Some(site) = self.sites.iter_mut().find(|s| s.url == url) else {
            return;
        };
        let fresh = &site.core.events()[site.shown..];
        site.shown += fresh.len();
        let text: String = fresh.iter().map(super::render).collect();
        self.text.push_str(&text);
    }

    fn line(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
    }
}

fn lock(net: &Mutex<Net>) -> MutexGuard<'_, Net> {
    net.lock().unwrap_or_else(|p| p.into_inner())
}

/// `2026-01-01T00:00:10.500Z`: the clock's wall time with milliseconds.
fn wall_text(clock: &ManualClock) -> String {
    let ms = clock.unix_ms();
    let mut s = format_datetime_utc(ms.div_euclid(1000));
    s.pop();
    format!("{s}.{:03}Z", ms.rem_euclid(1000))
}

impl MemoryAcs {
    /// An empty network on `clock` (the agent's clock: the transcript shows its times).
    pub fn new(clock: &ManualClock) -> MemoryAcs {
        MemoryAcs {
            net: Arc::new(Mutex::new(Net {
                clock: clock.clone(),
                sites: Vec::new(),
                conns: 0,
                failures: VecDeque::new(),
                attempts: Vec::new(),
                text: String::new(),
            })),
        }
    }

    /// Serves an ACS at `url` (compared as the agent's `ManagementServer.URL` is), its nonces
    /// and cookies from `seed`.
    pub fn serve(&self, url: &str, opts: AcsOptions, seed: u64) {
        lock(&self.net).sites.push(Served {
            url: url.into(),
            core: AcsCore::with_seed(opts, seed),
            shown: 0,
        });
    }

    /// Runs `f` on the core of the ACS at `url` (its scripts, its records).
    pub fn with_core<R>(&self, url: &str, f: impl FnOnce(&mut AcsCore) -> R) -> R {
        let mut net = lock(&self.net);
        let site = net
            .site(url)
            .unwrap_or_else(|| panic!("no ACS is served at {url}"));
        f(&mut site.core)
    }

    /// Queues a script of fixed requests for the next session at `url` that has none.
    pub fn push_script<I, C>(&self, url: &str, calls: I)
    where
        I: IntoIterator<Item = C>,
        C: Into<Call>,
    {
        self.with_core(url, |c| c.push_script(calls));
    }

    /// The sessions of the ACS at `url` so far.
    pub fn sessions(&self, url: &str) -> Vec<SessionRecord> {
        self.with_core(url, |c| c.sessions().to_vec())
    }

    /// Sessions completed with the ACS's empty response, at every ACS.
    pub fn completed(&self) -> usize {
        lock(&self.net)
            .sites
            .iter()
            .map(|s| s.core.sessions().iter().filter(|s| s.completed).count())
            .sum()
    }

    /// Connections opened so far (session attempts, refused ones included).
    pub fn connections(&self) -> u64 {
        lock(&self.net).conns
    }

    /// The clock's time since its start at each session attempt so far.
    pub fn attempts(&self) -> Vec<Duration> {
        lock(&self.net).attempts.clone()
    }

    /// The next session attempts fail this way, one per attempt, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        lock(&self.net).failures.extend(failures);
    }

    /// A line of the test's own in the transcript (what it did to the device), as `## text`.
    pub fn note(&self, text: &str) {
        let mut net = lock(&self.net);
        let at = wall_text(&net.clock);
        net.line(&format!("\n## {at} {text}"));
    }

    /// The transcript so far.
    pub fn transcript(&self) -> String {
        lock(&self.net).text.clone()
    }

    /// The factory the agent opens each session attempt with
    /// ([`cwmpd::agent::Agent::with_transport`]).
    pub fn connect(&self) -> Connect {
        let net = self.net.clone();
        Box::new(move |cfg: &TransportConfig, _deadline: Instant| {
            let mut guard = lock(&net);
            let n = &mut *guard;
            n.conns += 1;
            let id = n.conns;
            let at = wall_text(&n.clock);
            let since = n.clock.elapsed();
            n.attempts.push(since);
            let since = since.as_secs_f64();
            n.line(&format!(
                "\n@@ {at} (+{since:.3} s) the CPE connects to {} (TCP connection {id})",
                cfg.url
            ));
            let failure = n.failures.pop_front();
            if failure == Some(Failure::Refused) || n.site(&cfg.url).is_none() {
                n.line("!! connection refused");
                return Err(TransportError::Connect("connection refused".into()));
            }
            Ok(Box::new(MemoryTransport {
                net: net.clone(),
                url: cfg.url.clone(),
                conn: Some(Connection::new(id)),
                jar: CookieJar::default(),
                reset: failure == Some(Failure::Reset),
            }) as Box<dyn AcsTransport>)
        })
    }
}

/// One session attempt's connection to an in-memory ACS.
struct MemoryTransport {
    net: Arc<Mutex<Net>>,
    url: String,
    /// `None` once closed (by the ACS, or at the end of the session): the next POST opens a
    /// new one.
    conn: Option<Connection>,
    /// The session's cookies, kept as the real client keeps them.
    jar: CookieJar,
    /// The connection breaks after the next POST reaches the ACS ([`Failure::Reset`]).
    reset: bool,
}

impl AcsTransport for MemoryTransport {
    fn post(&mut self, body: &Body) -> Result<HttpReply, TransportError> {
        let mut guard = lock(&self.net);
        let net = &mut *guard;
        let url = Url::parse(&self.url)
            .map_err(|e| TransportError::Config(format!("{}: {e:?}", self.url)))?;
        let host = url.host.to_ascii_lowercase();
        let site = Site {
            https: url.is_https(),
            host: &host,
            path: url.path(),
        };
        let now_s = u64::try_from(net.clock.unix_ms() / 1000).unwrap_or(0);
        let mut req = HttpRequest::post(url.path_query, body.to_vec());
        if let Some(cookie) = self.jar.header(&site, now_s) {
            req = req.with_header("Cookie", &cookie);
        }
        let now = net.clock.instant();
        if self.conn.is_none() {
            net.conns += 1;
            self.conn = Some(Connection::new(net.conns));
        }
        let (Some(acs), Some(conn)) = (net.site(&self.url), self.conn.as_mut()) else {
            return Err(TransportError::Connect("connection refused".into()));
        };
        let reply = acs.core.handle(conn, &req, now);
        net.show(&self.url);
        if std::mem::take(&mut self.reset) {
            net.line("!! the connection breaks: the ACS's reply never reaches the CPE");
            return Err(TransportError::Io("connection reset by peer".into()));
        }
        for (name, value) in &reply.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                self.jar.store(value, &site, now_s);
            }
        }
        if reply.close {
            self.conn = None;
        }
        let retry_after = reply
            .header("retry-after")
            .and_then(|v| v.trim().parse().ok());
        Ok(HttpReply {
            status: reply.status,
            body: reply.body,
            retry_after,
        })
    }

    fn end_session(&mut self) {
        // As the real client: the cookies go, and the next session opens a new connection.
        self.jar.clear();
        self.conn = None;
    }
}
