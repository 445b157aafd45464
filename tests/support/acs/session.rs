//! The sans-IO core of the test ACS: given one HTTP request (method, target, headers, body) it
//! answers one HTTP response and records the exchange. Authentication (TR-069 §3.4.4: Basic, or
//! Digest with the nonce bound to the connection), cookies, the session scripts (§3.7.1), busy
//! answers with `Retry-After`, namespace refusals, the session records, the HTTP log and the
//! transcript records ([`Event`]) all live here; no socket, thread, clock or file: the caller
//! passes the time of each request and owns the connection ([`Connection`]).
//!
//! The TCP/TLS server ([`super::Acs`]) drives it from its connection threads; a test can drive
//! it in memory, one POST at a time:
//!
//! ```ignore
//! let mut acs = AcsCore::with_seed(AcsOptions::default(), 1);
//! acs.push_script([AcsRequest::GetRpcMethods]);
//! let mut conn = Connection::new(1);
//! let reply = acs.handle(&mut conn, &HttpRequest::post("/acs", inform_xml), Instant::now());
//! // … POST reply bodies until `reply.body` is empty; then acs.sessions(), acs.transcript().
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use cwmpd::cwmp::fault::AcsFault;
use cwmpd::cwmp::version::CwmpNs;
use cwmpd::http::auth::{self, DigestServer, NonceStatus, Verdict};
use cwmpd::soap::acs::{
    emit_acs_fault, emit_acs_request, emit_acs_response, parse_cpe, CpeMessage,
};
use cwmpd::soap::{AcsResponse, CpeRequest, CpeResponse, Header, Inform, Limits, ParseError};

use super::{
    transcript, AcsOptions, Auth, Call, Cookie, Exchange, HttpEntry, Reject, ScriptFn,
    SessionRecord, Turn,
};
use crate::rng::Rng;

/// One HTTP request as the core sees it (header names lower-cased).
pub use crate::http::Request as HttpRequest;

impl HttpRequest {
    /// A POST of `body` to `target` with `Content-Length` (what a CPE sends).
    pub fn post(target: &str, body: impl Into<Vec<u8>>) -> HttpRequest {
        let body = body.into();
        HttpRequest {
            method: "POST".into(),
            target: target.into(),
            headers: vec![
                ("content-type".into(), "text/xml; charset=\"utf-8\"".into()),
                ("content-length".into(), body.len().to_string()),
            ],
            body,
        }
    }

    /// The request with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The `Cookie` header(s), joined with `; `.
    pub fn cookies(&self) -> Option<String> {
        let all = self.headers_all("cookie");
        if all.is_empty() {
            None
        } else {
            Some(all.join("; "))
        }
    }
}

/// The HTTP response the core answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this response.
    pub close: bool,
}

impl HttpResponse {
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    fn xml(body: Vec<u8>) -> HttpResponse {
        HttpResponse {
            headers: vec![("Content-Type".into(), "text/xml; charset=\"utf-8\"".into())],
            body,
            ..HttpResponse::new(200)
        }
    }

    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::find_header(&self.headers, name)
    }
}

/// What the ACS keeps per TCP connection: its number and the Digest nonce issued on it
/// (GenieACS binds the nonce to the connection) with the last nonce count seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// 1 for the first connection accepted, 2 for the next…
    pub id: u64,
    nonce: Option<String>,
    last_nc: u32,
}

impl Connection {
    pub fn new(id: u64) -> Connection {
        Connection {
            id,
            nonce: None,
            last_nc: 0,
        }
    }
}

/// One transcript record: a message or a decision of the ACS, in order. The verbose mode prints
/// each as it happens ([`super::transcript::render`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A TLS handshake failed (recorded by the server).
    TlsFailed(String),
    /// A 401; `digest` = (algorithm, realm, connection) for a Digest challenge.
    AuthRefused {
        note: String,
        digest: Option<(String, String, u64)>,
    },
    /// A POST the codec refused.
    Unparsable(String),
    OutsideSession,
    CookieMissing(String),
    Inform {
        index: usize,
        ns: CwmpNs,
        header: Header,
        inform: Inform,
        conn: u64,
    },
    /// 503 with `Retry-After: secs`.
    Busy(u32),
    RefusedHttp {
        status: u16,
        ns: CwmpNs,
    },
    RefusedFault(AcsFault),
    InformResponse {
        response: AcsResponse,
        use_version: Option<String>,
        /// The namespace of the answer when it is not the Inform's.
        other_ns: Option<CwmpNs>,
        /// The `Set-Cookie` value sent.
        set_cookie: Option<String>,
    },
    CpeRequest {
        request: CpeRequest,
        ns: CwmpNs,
        conn: u64,
    },
    AcsResponse(AcsResponse),
    EmptyPost,
    CpeResponse {
        response: Result<CpeResponse, String>,
        ns: Option<CwmpNs>,
    },
    Call {
        call: Call,
        id: String,
    },
    /// The empty response that ends the session, with its status.
    End(u16),
}

/// Most HTTP entries kept in the log.
const MAX_LOG: usize = 10_000;

/// The session in progress.
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

/// The sans-IO test ACS (see the module documentation).
pub struct AcsCore {
    opts: AcsOptions,
    sessions: Vec<SessionRecord>,
    live: Option<Live>,
    scripts: VecDeque<ScriptFn>,
    http: Vec<HttpEntry>,
    events: Vec<Event>,
    /// Nonces and session cookies.
    rng: Rng,
}

impl AcsCore {
    /// A core whose nonces and cookies come from the clock (unpredictable across runs).
    pub fn new(opts: AcsOptions) -> AcsCore {
        AcsCore::from_rng(opts, Rng::from_clock())
    }

    /// A core whose nonces and cookies follow `seed` (reproducible transcripts).
    pub fn with_seed(opts: AcsOptions, seed: u64) -> AcsCore {
        AcsCore::from_rng(opts, Rng::spread(seed))
    }

    fn from_rng(opts: AcsOptions, rng: Rng) -> AcsCore {
        AcsCore {
            opts,
            sessions: Vec::new(),
            live: None,
            scripts: VecDeque::new(),
            http: Vec::new(),
            events: Vec::new(),
            rng,
        }
    }

    pub fn options(&self) -> &AcsOptions {
        &self.opts
    }

    /// Queues a script closure for the next session that has none.
    pub fn push_script_fn(&mut self, f: ScriptFn) {
        self.scripts.push_back(f);
    }

    /// Queues a script of fixed requests for the next session that has none.
    pub fn push_script<I, C>(&mut self, calls: I)
    where
        I: IntoIterator<Item = C>,
        C: Into<Call>,
    {
        let mut queue: VecDeque<Call> = calls.into_iter().map(Into::into).collect();
        self.push_script_fn(Box::new(move |_: &Turn<'_>| queue.pop_front()));
    }

    /// Every session so far (completed, rejected or in progress).
    pub fn sessions(&self) -> &[SessionRecord] {
        &self.sessions
    }

    /// Every HTTP request so far (up to 10,000).
    pub fn http_log(&self) -> &[HttpEntry] {
        &self.http
    }

    /// Every transcript record so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The transcript so far, as the verbose mode prints it.
    pub fn transcript(&self) -> String {
        transcript::transcript(&self.events)
    }

    /// Records an event that happened outside a request (a failed TLS handshake).
    pub fn record(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Answers one request that arrived at `now` on `conn`: authentication, then the CWMP session.
    pub fn handle(
        &mut self,
        conn: &mut Connection,
        req: &HttpRequest,
        now: Instant,
    ) -> HttpResponse {
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
        let reply = if req.method != "POST" {
            entry.note = "not a POST".into();
            HttpResponse::new(405)
        } else {
            match self.authenticate(conn, req) {
                Err((reply, note)) => {
                    entry.note = note;
                    reply
                }
                Ok(user) => self.cwmp(req, user, &mut entry, now),
            }
        };
        entry.status = reply.status;
        if self.http.len() < MAX_LOG {
            self.http.push(entry);
        }
        reply
    }

    /// 128 random bits as hex, for nonces and cookies.
    fn random(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64())
    }

    /// Checks the `Authorization` header (§3.4.4); `Ok(user)` or the 401 to send.
    fn authenticate(
        &mut self,
        conn: &mut Connection,
        req: &HttpRequest,
    ) -> Result<Option<String>, (HttpResponse, String)> {
        let authorization = req.header("authorization");
        match self.opts.auth.clone() {
            Auth::None => Ok(None),
            Auth::Basic { username, password } => match authorization {
                Some(a) if auth::verify_basic(a, &username, &password) => Ok(Some(username)),
                Some(_) if self.opts.bare_refusal => Err(self.bare_refusal()),
                other => {
                    let mut r = HttpResponse::new(401);
                    r.headers.push((
                        "WWW-Authenticate".into(),
                        auth::basic_challenge(&self.opts.realm),
                    ));
                    let note = if other.is_some() {
                        "401 bad Basic credentials"
                    } else {
                        "401 Basic challenge"
                    };
                    self.events.push(Event::AuthRefused {
                        note: note.into(),
                        digest: None,
                    });
                    Err((r, note.into()))
                }
            },
            Auth::Digest {
                username,
                password,
                algorithm,
            } => {
                let server = DigestServer {
                    realm: self.opts.realm.clone(),
                    algorithm,
                    opaque: None,
                };
                let verdict = match authorization {
                    None => None,
                    Some(a) => {
                        let (bound, last) = (conn.nonce.clone(), conn.last_nc);
                        let mut seen_nc = None;
                        let v = server.verify(
                            a,
                            &req.method,
                            &req.target,
                            &username,
                            &password,
                            |n, nc| {
                                // The nonce must have been issued on this very TCP connection,
                                // and the nonce count must grow (RFC 7616 §3.4 replay
                                // protection).
                                if bound.as_deref() == Some(n) && nc > last {
                                    seen_nc = Some(nc);
                                    NonceStatus::Valid
                                } else {
                                    NonceStatus::Stale
                                }
                            },
                        );
                        if let Some(nc) = seen_nc {
                            conn.last_nc = nc;
                        }
                        Some(v)
                    }
                };
                match verdict {
                    Some(Verdict::Ok) => Ok(Some(username)),
                    Some(Verdict::Bad) if self.opts.bare_refusal => Err(self.bare_refusal()),
                    v => {
                        let stale = v == Some(Verdict::Stale);
                        let nonce = self.random();
                        conn.nonce = Some(nonce.clone());
                        conn.last_nc = 0;
                        let mut r = HttpResponse::new(401);
                        r.headers
                            .push(("WWW-Authenticate".into(), server.challenge(&nonce, stale)));
                        let note = match v {
                            None => "401 Digest challenge",
                            Some(Verdict::Stale) => {
                                "401 stale nonce (not issued on this connection)"
                            }
                            _ => "401 bad Digest credentials",
                        };
                        self.events.push(Event::AuthRefused {
                            note: note.into(),
                            digest: Some((
                                algorithm.name().to_string(),
                                self.opts.realm.clone(),
                                conn.id,
                            )),
                        });
                        Err((r, note.into()))
                    }
                }
            }
        }
    }

    /// GenieACS's answer to wrong credentials: 401, no challenge, `Connection: close`.
    fn bare_refusal(&mut self) -> (HttpResponse, String) {
        let note = "401 bad credentials (no challenge, closed)";
        self.events.push(Event::AuthRefused {
            note: note.into(),
            digest: None,
        });
        let mut r = HttpResponse::new(401);
        r.close = true;
        (r, note.into())
    }

    /// The CWMP part of a POST (§3.7.1).
    fn cwmp(
        &mut self,
        req: &HttpRequest,
        user: Option<String>,
        entry: &mut HttpEntry,
        now: Instant,
    ) -> HttpResponse {
        let limits = Limits::default();
        let parsed = if req.body.iter().all(|b| b.is_ascii_whitespace()) {
            None
        } else {
            match parse_cpe(&req.body, &limits) {
                Ok(env) => Some(env),
                Err(e) => {
                    let msg = format!("unparsable POST: {}", parse_error_text(&e));
                    entry.note = msg.clone();
                    self.events.push(Event::Unparsable(msg.clone()));
                    if let Some(live) = &self.live {
                        if let Some(s) = self.sessions.get_mut(live.index) {
                            s.errors.push(msg);
                        }
                        entry.session = Some(live.index);
                    }
                    return HttpResponse::new(400);
                }
            }
        };

        // An Inform opens a session (§3.7.1.1), whatever came before.
        if let Some(env) = &parsed {
            if let CpeMessage::Request(CpeRequest::Inform(inform)) = &env.body {
                return self.start_session(env.ns, &env.header, inform, user, entry, now);
            }
        }

        let Some(live) = self.live.as_ref() else {
            entry.note = "POST outside a session".into();
            self.events.push(Event::OutsideSession);
            return HttpResponse::new(400);
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
                self.events.push(Event::CookieMissing(msg.clone()));
                if let Some(s) = self.sessions.get_mut(index) {
                    s.errors.push(msg);
                }
                return HttpResponse::new(400);
            }
        }

        let ns = self.opts.reply_ns.unwrap_or(live.ns);
        match parsed {
            Some(env) => match env.body {
                CpeMessage::Request(r) => {
                    entry.note = r.method().to_string();
                    self.events.push(Event::CpeRequest {
                        request: r.clone(),
                        ns: env.ns,
                        conn: entry.conn,
                    });
                    let resp = answer_cpe_request(&r);
                    let header = Header {
                        id: env.header.id.clone(),
                        ..Header::default()
                    };
                    if let Some(s) = self.sessions.get_mut(index) {
                        s.cpe_requests.push((env.ns, r));
                    }
                    let body = emit_acs_response(ns, &header, &resp);
                    self.events.push(Event::AcsResponse(resp));
                    HttpResponse::xml(body)
                }
                CpeMessage::Response(resp) => {
                    entry.note = match &resp {
                        CpeResponse::Fault(f) => format!("Fault {}", f.code()),
                        r => r.element().unwrap_or("response").to_string(),
                    };
                    self.record_answer(index, env.header.id, Some(env.ns), Ok(resp));
                    self.next_request(ns, now)
                }
                CpeMessage::Empty => {
                    entry.note = "empty POST (envelope without body)".into();
                    self.empty_post(index, ns, now)
                }
            },
            None => {
                entry.note = "empty POST".into();
                self.empty_post(index, ns, now)
            }
        }
    }

    fn empty_post(&mut self, index: usize, ns: CwmpNs, now: Instant) -> HttpResponse {
        self.events.push(Event::EmptyPost);
        let outstanding = self.live.as_ref().is_some_and(|l| l.outstanding.is_some());
        if outstanding {
            self.record_answer(
                index,
                None,
                None,
                Err("an empty POST instead of a response".into()),
            );
        }
        self.next_request(ns, now)
    }

    fn start_session(
        &mut self,
        ns: CwmpNs,
        header: &Header,
        inform: &Inform,
        user: Option<String>,
        entry: &mut HttpEntry,
        now: Instant,
    ) -> HttpResponse {
        // A session left open by the CPE (a new Inform before our empty response) is abandoned.
        if let Some(old) = self.live.take() {
            if let Some(s) = self.sessions.get_mut(old.index) {
                s.errors.push("abandoned: a new Inform arrived".into());
            }
        }
        let index = self.sessions.len();
        entry.session = Some(index);
        entry.note = "Inform".into();
        let busy = self.opts.busy.filter(|(n, _)| index < *n).map(|(_, s)| s);
        let rejected = busy.is_some() || self.opts.reject_inform.contains(&ns);
        self.sessions.push(SessionRecord {
            index,
            started: now,
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
        self.events.push(Event::Inform {
            index,
            ns,
            header: header.clone(),
            inform: inform.clone(),
            conn: entry.conn,
        });
        if let Some(secs) = busy {
            entry.note = format!("busy, Retry-After {secs}");
            self.events.push(Event::Busy(secs));
            let mut reply = HttpResponse::new(503);
            reply.headers.push(("Retry-After".into(), secs.to_string()));
            return reply;
        }
        if rejected {
            entry.note = format!("Inform refused ({})", ns.urn());
            return match self.opts.reject_with {
                Reject::Http(status) => {
                    self.events.push(Event::RefusedHttp { status, ns });
                    HttpResponse::new(status)
                }
                Reject::Fault(code) => {
                    let fault = AcsFault {
                        code,
                        string: format!("{} is not supported", ns.urn()),
                    };
                    let body = emit_acs_fault(ns, header.id.as_deref(), &fault);
                    self.events.push(Event::RefusedFault(fault));
                    HttpResponse {
                        status: 500,
                        ..HttpResponse::xml(body)
                    }
                }
            };
        }
        let reply_ns = self.opts.reply_ns.unwrap_or(ns);
        let cookie = match self.opts.cookie {
            Cookie::Off => None,
            Cookie::Session => Some((format!("session={}", self.random()), "Path=/")),
            Cookie::SerialNumber => Some((
                format!("SerialNumber={}", inform.device_id.serial_number),
                "path=/",
            )),
        };
        let script = self.scripts.pop_front();
        if let Some(s) = self.sessions.get_mut(index) {
            s.cookie = cookie.as_ref().map(|(c, _)| c.clone());
        }
        self.live = Some(Live {
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
            use_version: self.opts.use_version.clone(),
            ..Header::default()
        };
        let mut reply = HttpResponse::xml(emit_acs_response(reply_ns, &out_header, &resp));
        let set_cookie = cookie.map(|(c, attrs)| format!("{c}; {attrs}"));
        if let Some(c) = &set_cookie {
            reply.headers.push(("Set-Cookie".into(), c.clone()));
        }
        self.events.push(Event::InformResponse {
            response: resp,
            use_version: self.opts.use_version.clone(),
            other_ns: (reply_ns != ns).then_some(reply_ns),
            set_cookie,
        });
        reply
    }

    /// Records the CPE's answer to the outstanding request.
    fn record_answer(
        &mut self,
        index: usize,
        echoed_id: Option<String>,
        ns: Option<CwmpNs>,
        response: Result<CpeResponse, String>,
    ) {
        let outstanding = self.live.as_mut().and_then(|l| l.outstanding.take());
        self.events.push(Event::CpeResponse {
            response: response.clone(),
            ns,
        });
        let Some(session) = self.sessions.get_mut(index) else {
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
    fn next_request(&mut self, ns: CwmpNs, now: Instant) -> HttpResponse {
        let AcsCore {
            sessions,
            live,
            events,
            opts,
            ..
        } = self;
        let Some(l) = live.as_mut() else {
            return HttpResponse::new(400);
        };
        let index = l.index;
        let next = match (&mut l.script, sessions.get(index)) {
            (Some(script), Some(session)) => {
                let turn = Turn {
                    session,
                    last: session.exchanges.last(),
                    at: now,
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
                events.push(Event::Call {
                    call: call.clone(),
                    id: id.clone(),
                });
                l.outstanding = Some((id, call));
                HttpResponse::xml(body)
            }
            None => {
                *live = None;
                if let Some(s) = sessions.get_mut(index) {
                    s.completed = true;
                    s.ended = Some(now);
                }
                let status = if opts.end_with_200 { 200 } else { 204 };
                events.push(Event::End(status));
                HttpResponse::new(status)
            }
        }
    }
}

fn has_cookie(sent: Option<&str>, want: &str) -> bool {
    sent.is_some_and(|s| s.split(';').any(|c| c.trim() == want))
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

#[cfg(test)]
mod tests;
