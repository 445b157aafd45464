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
//! Four rooms: [`server`] (the TCP/TLS server: threads, connections, bounds), [`session`] (the
//! sans-IO core: one HTTP request in, one response out, everything recorded; usable in memory
//! without sockets, see [`AcsCore`]), [`transcript`] (the verbose text, a pure function of the
//! records) and [`memory`] (the core as the agent's transport, over a fake clock: whole sessions
//! in memory). This file holds the words they share: the options, the scripts and the records.
//!
//! It uses only the `cwmpd` library (its ACS-side codec `cwmpd::soap::acs` and the server side
//! of `cwmpd::http::auth`), std and rustls.

pub mod memory;
pub mod server;
pub mod session;
pub mod transcript;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cwmpd::cwmp::version::CwmpNs;
use cwmpd::http::auth::Algorithm;
use cwmpd::soap::{AcsRequest, CpeRequest, CpeResponse, Header, Inform};

pub use server::Acs;
pub use session::{AcsCore, Connection, Event, HttpRequest, HttpResponse};
pub use transcript::{render, transcript};

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
    /// When the POST that asks for this turn had been read whole (before the ACS parsed it), on
    /// the transport's clock: the real one for the TCP/TLS server, the test's manual clock for
    /// the in-memory transport.
    pub at: Instant,
}

/// A session script as a closure: called after the empty POST and after each response; `None`
/// ends the session.
pub type ScriptFn = Box<dyn FnMut(&Turn<'_>) -> Option<Call> + Send>;
