//! The CWMP session as a sans-IO state machine (TR-069 Amendment 6 §3.7 session flow, §A.2
//! version negotiation, §A.3.3.1 Inform, §A.4.1 SOAP headers, §A.5 faults).
//!
//! It takes HTTP responses and RPC results as inputs and returns what to do next; it owns no
//! socket, clock, file or random source. The agent's loop drives it:
//!
//! ```text
//! let (mut s, mut action) = Session::start(params);
//! loop {
//!     action = match action {
//!         Action::Post(body) => match transport.post(&body) {        // empty body = empty POST
//!             Ok((status, reply)) => s.on_reply(status, &reply),
//!             Err(e) => s.on_failure(&e.to_string()),
//!         },
//!         Action::Execute(req) => s.executed(rpc::execute(&req)),
//!         Action::Done(outcome) => break outcome,
//!     }
//! }
//! ```
//!
//! # States
//!
//! Each state is named for what it awaits; every transition consumes the
//! state and yields the next one and an [`Action`].
//!
//! ```text
//!   start ── POST Inform ──> ExpectInformResponse
//!                              │ InformResponse: record UseCWMPVersion, HoldRequests
//!                              │ (fault, HTTP error, garbage ──> Done(Err); first Inform
//!                              │  refused ──> Done(Err(VersionRejected)))
//!                              v
//!                     [CPE's turn] ── a CPE request pending and not held ──┐
//!                              │                                            │ POST it
//!                              │ otherwise: POST empty                      v
//!                              │                          ExpectCpeRequestResponse
//!                              │                            │ its response ──> [CPE's turn]
//!                              │                            │ 8005 ──> POST it again (bounded)
//!                              v                            │ other fault ──> Done(Err)
//!                      ExpectAcsRequest <───────────────────┼───────────────────────┐
//!                        │ empty reply, request pending     │                       │
//!                        │   and not held ──> POST it ──────┘                       │
//!                        │ empty reply, nothing pending ──> Done(Ok)                │
//!                        │ unknown RPC ──> POST 9000; bad arguments/garbage ──> POST 9003
//!                        │ ACS request ──> Action::Execute                          │
//!                        v                                                          │
//!                     Executing ── executed(resp) ──> POST response with its ID ────┘
//!
//!   In every state: transport failure, or a POST beyond max_exchanges ──> Done(Err)
//! ```
//!
//! After `Done` every input returns the same `Done` again. No input panics.
//!
//! # Versions (§A.2, header comments of `cwmp-1-3.xsd` and `cwmp-1-4.xsd`)
//!
//! CWMP 1.2, 1.3 and 1.4 share the `urn:dslforum-org:cwmp-1-2` namespace. Offering 1.4 means an
//! Inform in `cwmp-1-2` with `SupportedCWMPVersions` "1.0,…,1.4" (mustUnderstand 0) and
//! `SessionTimeout` (1.3+). The ACS's `UseCWMPVersion` picks the session version; without it the
//! version follows the namespace of the InformResponse. The session answers in the namespace
//! the ACS used last, which also accepts the non-standard `cwmp-1-3`/`cwmp-1-4` namespaces seen in
//! the field. When the first Inform is refused (a SOAP fault or an HTTP 400/415/500/501), the
//! session ends with [`SessionError::VersionRejected`] and the agent retries with
//! [`fallback`]`(ns)` (`cwmp-1-1`, then `cwmp-1-0`), remembering per ACS URL what worked
//! ([`Outcome::ns`]). Inform in `cwmp-1-0`/`cwmp-1-1` carries no 1.3/1.4 header.

use std::fmt;

use crate::cwmp::fault::{AcsFault, Fault};
use crate::cwmp::version::{CwmpNs, CwmpVersion};
use crate::soap::{
    self, AcsMessage, AcsRequest, AcsResponse, Body, CpeRequest, CpeResponse, Envelope, Header,
    Inform, Limits, ParseError,
};

/// How many times one CPE request is sent again after an 8005 "Retry request" fault (§A.5)
/// before the session gives up.
pub const MAX_RETRY_REQUEST: u32 = 3;

/// Unparsable ACS messages in a row after which the session ends (each is answered 9003 first).
pub const MAX_MALFORMED_IN_A_ROW: u32 = 3;

/// A default for [`SessionParams::max_exchanges`]: far more POSTs than a provisioning session
/// needs (GenieACS walks a TR-181 tree in a few hundred), few enough to stop a looping ACS.
pub const DEFAULT_MAX_EXCHANGES: u32 = 5000;

/// Everything one session needs, filled in by the agent.
#[derive(Debug, Clone)]
pub struct SessionParams {
    /// The Inform: DeviceId, events, CurrentTime, RetryCount and ParameterList as the agent built
    /// them. `MaxEnvelopes` is always sent as 1 (§A.3.3.1).
    pub inform: Inform,
    /// The highest CWMP version to offer (1.4 normally).
    pub version: CwmpVersion,
    /// The namespace of the Inform: `cwmp-1-2` for 1.2–1.4, or the `cwmp-1-1`/`cwmp-1-0` fallback
    /// the agent remembered for this ACS URL. It also caps the version offered.
    pub ns: CwmpNs,
    /// The CPE's own requests to send after the InformResponse (TransferComplete, …), in order.
    pub cpe_requests: Vec<CpeRequest>,
    /// `SessionTimeout` to announce (CWMP 1.3+; seconds).
    pub session_timeout: Option<u32>,
    /// Parser limits for everything the ACS sends.
    pub limits: Limits,
    /// Most HTTP POSTs in the session, the Inform included (at least the Inform is sent).
    pub max_exchanges: u32,
}

/// What the agent does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// POST this body to the ACS, then call [`Session::on_reply`] (or
    /// [`Session::on_failure`]). An empty body is the empty POST.
    Post(Body),
    /// Execute this ACS request and give the result to [`Session::executed`].
    Execute(AcsRequest),
    /// The session is over.
    Done(Outcome),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<(), SessionError>,
    /// Whether the InformResponse arrived: the Inform's events are delivered
    /// ([`crate::events::EventQueue::delivered`]) even when the session failed later.
    pub inform_accepted: bool,
    /// How many of [`SessionParams::cpe_requests`] (from the front) the ACS answered.
    pub delivered: usize,
    /// The index in [`SessionParams::cpe_requests`] of a request the ACS answered with a fault
    /// (other than 8005 within the retries): the session ended there.
    pub refused: Option<usize>,
    /// The CWMP version of the session (the one offered when no InformResponse came).
    pub version: CwmpVersion,
    /// The namespace the Inform was sent in: what to remember for this ACS URL once accepted.
    pub ns: CwmpNs,
    /// The namespace the ACS answered in last (the Inform's when it never answered).
    pub acs_ns: CwmpNs,
    /// The ACS requests executed, in order, for logs and `cwmpd status`.
    pub executed: Vec<&'static str>,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// The first Inform was refused (SOAP fault, 8006, or HTTP 400/415/500/501) and an older
    /// namespace is left to try ([`fallback`]). The text says what the ACS answered.
    VersionRejected(String),
    /// An HTTP status that ends the session (3xx left over from the transport, 4xx, 5xx, …).
    Http(u16),
    /// A SOAP fault from the ACS that ends the session (8005 on the Inform: retry later, §3.2.1.1).
    AcsFault(AcsFault),
    /// The ACS sent something that is not a SOAP envelope where a response was required.
    Malformed(String),
    /// A well-formed message out of place (a request where a response was due, a wrong response,
    /// an unknown `UseCWMPVersion`, …).
    Protocol(String),
    /// The transport failed (connection, TLS, timeout).
    Transport(String),
    /// The session reached [`SessionParams::max_exchanges`] POSTs.
    TooManyExchanges,
    /// The session ran past the agent's wall-clock limit for one session (seconds).
    TimeLimit(u32),
    /// The agent called the session out of turn (a bug in the caller).
    OutOfOrder(&'static str),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::VersionRejected(why) => write!(f, "ACS refused the Inform: {why}"),
            SessionError::Http(code) => write!(f, "ACS answered HTTP {code}"),
            SessionError::AcsFault(fault) => {
                write!(f, "ACS fault {} {}", fault.code, fault.string)
            }
            SessionError::Malformed(why) => write!(f, "malformed ACS message: {why}"),
            SessionError::Protocol(why) => write!(f, "protocol error: {why}"),
            SessionError::Transport(why) => write!(f, "transport: {why}"),
            SessionError::TooManyExchanges => write!(f, "too many exchanges in one session"),
            SessionError::TimeLimit(secs) => write!(
                f,
                "the session exceeded its time limit of {secs} s ([acs] session_limit)"
            ),
            SessionError::OutOfOrder(why) => write!(f, "session driven out of order: {why}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// The next namespace to try when an ACS refused an Inform (§A.2): `cwmp-1-2` (and the
/// non-standard 1-3/1-4) fall back to `cwmp-1-1`, which falls back to `cwmp-1-0`.
pub fn fallback(ns: CwmpNs) -> Option<CwmpNs> {
    match ns {
        CwmpNs::V1_0 => None,
        CwmpNs::V1_1 => Some(CwmpNs::V1_0),
        CwmpNs::V1_2 | CwmpNs::V1_3 | CwmpNs::V1_4 => Some(CwmpNs::V1_1),
    }
}

/// One CWMP session.
#[derive(Debug)]
pub struct Session {
    state: State,
    /// The version offered in the Inform.
    offered: CwmpVersion,
    /// The version in use (the offered one until the InformResponse).
    version: CwmpVersion,
    /// The Inform's namespace.
    inform_ns: CwmpNs,
    /// The namespace to send in: the one the ACS used last.
    ns: CwmpNs,
    requests: Vec<CpeRequest>,
    delivered: usize,
    /// A CPE request the ACS answered with a fault.
    refused: Option<usize>,
    /// Unparsable ACS messages since the last good one.
    malformed: u32,
    inform_accepted: bool,
    /// `HoldRequests` of the ACS's most recent envelope (§A.4.1; absent = false).
    hold: bool,
    limits: Limits,
    max_exchanges: u32,
    posts: u32,
    next_id: u32,
    executed: Vec<&'static str>,
}

/// What the session awaits.
#[derive(Debug)]
enum State {
    /// The HTTP response to the Inform.
    ExpectInformResponse,
    /// The ACS's response to `requests[index]`, sent `1 + resent` times.
    ExpectCpeRequestResponse {
        index: usize,
        resent: u32,
    },
    /// An ACS request or the empty HTTP response that ends the session.
    ExpectAcsRequest,
    /// The agent executing an ACS request; the response goes out with this ID and namespace.
    Executing {
        id: Option<String>,
        ns: CwmpNs,
        method: &'static str,
    },
    Done(Outcome),
    /// Only while a transition runs.
    Moving,
}

/// An HTTP response, classified. It lives on the stack for one call only, so the size of the
/// `Message` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Reply {
    /// 204, a 2xx with an empty body, or an envelope with an empty Body; `hold` is its
    /// HoldRequests.
    Empty {
        hold: bool,
        ns: Option<CwmpNs>,
    },
    Message(Envelope<AcsMessage>),
    Unparsable(ParseError),
    Status(u16),
}

impl Session {
    /// Starts a session: the first action is the POST of the Inform.
    pub fn start(params: SessionParams) -> (Session, Action) {
        let offered = params.version.min(params.ns.highest());
        let mut s = Session {
            state: State::Moving,
            offered,
            version: offered,
            inform_ns: params.ns,
            ns: params.ns,
            requests: params.cpe_requests,
            delivered: 0,
            refused: None,
            malformed: 0,
            inform_accepted: false,
            hold: false,
            limits: params.limits,
            max_exchanges: params.max_exchanges.max(1),
            posts: 0,
            next_id: 1,
            executed: Vec::new(),
        };
        let mut header = Header {
            id: Some(s.take_id()),
            ..Header::default()
        };
        // §A.2 / cwmp-1-3.xsd: SessionTimeout from 1.3; cwmp-1-4.xsd: SupportedCWMPVersions from
        // 1.4. Neither goes into a cwmp-1-0/1-1 Inform (offered is capped by the namespace).
        if offered >= CwmpVersion::V1_3 {
            header.session_timeout = params.session_timeout;
        }
        if offered >= CwmpVersion::V1_4 {
            let list: Vec<String> = (0..=offered.0).map(|v| CwmpVersion(v).text()).collect();
            header.supported_versions = Some(list.join(","));
        }
        let mut inform = params.inform;
        inform.max_envelopes = 1;
        let body = soap::emit_request(s.ns, &header, &CpeRequest::Inform(inform));
        let (state, action) = s.post(State::ExpectInformResponse, Body::Bytes(body));
        s.state = state;
        (s, action)
    }

    /// An HTTP response arrived for the last POST. HTTP 401 is the transport's business (it
    /// answers the challenge); any status it leaves here other than 2xx (and 500 carrying a SOAP
    /// fault) ends the session.
    pub fn on_reply(&mut self, status: u16, body: &[u8]) -> Action {
        let state = std::mem::replace(&mut self.state, State::Moving);
        let (next, action) = match state {
            State::Done(outcome) => (State::Done(outcome.clone()), Action::Done(outcome)),
            State::Moving | State::Executing { .. } => self.finish(Err(SessionError::OutOfOrder(
                "reply while no POST was pending",
            ))),
            State::ExpectInformResponse => {
                let reply = self.classify(status, body);
                self.inform_reply(reply)
            }
            State::ExpectCpeRequestResponse { index, resent } => {
                let reply = self.classify(status, body);
                self.cpe_request_reply(index, resent, reply)
            }
            State::ExpectAcsRequest => {
                let reply = self.classify(status, body);
                if !matches!(reply, Reply::Unparsable(ParseError::Malformed(_))) {
                    self.malformed = 0;
                }
                self.acs_request(reply)
            }
        };
        self.state = next;
        action
    }

    /// The result of the last [`Action::Execute`]: it is posted with the request's `cwmp:ID`, in
    /// the request's namespace.
    pub fn executed(&mut self, resp: CpeResponse) -> Action {
        let state = std::mem::replace(&mut self.state, State::Moving);
        let (next, action) = match state {
            State::Done(outcome) => (State::Done(outcome.clone()), Action::Done(outcome)),
            State::Executing { id, ns, method } => {
                self.executed.push(method);
                let body = soap::emit_response_body(ns, id.as_deref(), resp);
                self.post(State::ExpectAcsRequest, body)
            }
            _ => self.finish(Err(SessionError::OutOfOrder(
                "executed() while no RPC was executing",
            ))),
        };
        self.state = next;
        action
    }

    /// The transport failed (connection, TLS, timeout): the session ends.
    pub fn on_failure(&mut self, reason: &str) -> Action {
        let state = std::mem::replace(&mut self.state, State::Moving);
        let (next, action) = match state {
            State::Done(outcome) => (State::Done(outcome.clone()), Action::Done(outcome)),
            _ => self.finish(Err(SessionError::Transport(reason.to_string()))),
        };
        self.state = next;
        action
    }

    /// The caller's clock says the session has run for its whole time limit (`secs`): it ends
    /// now, failed, in whatever state it was ([`SessionError::TimeLimit`]). A session already
    /// done stays as it ended.
    pub fn time_limit(&mut self, secs: u32) -> Action {
        let state = std::mem::replace(&mut self.state, State::Moving);
        let (next, action) = match state {
            State::Done(outcome) => (State::Done(outcome.clone()), Action::Done(outcome)),
            _ => self.finish(Err(SessionError::TimeLimit(secs))),
        };
        self.state = next;
        action
    }

    /// Whether the InformResponse arrived (then the Inform's events are delivered).
    pub fn inform_accepted(&self) -> bool {
        self.inform_accepted
    }

    /// How many of the CPE's requests the ACS answered so far.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// The session's CWMP version (the offered one until the InformResponse).
    pub fn version(&self) -> CwmpVersion {
        self.version
    }

    /// Whether the ACS's last envelope said `HoldRequests` true.
    pub fn hold_requests(&self) -> bool {
        self.hold
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    fn classify(&self, status: u16, body: &[u8]) -> Reply {
        if status == 204 {
            return Reply::Empty {
                hold: false,
                ns: None,
            };
        }
        let parse = || match soap::parse_acs(body, &self.limits) {
            Ok(env) if env.body == AcsMessage::Empty => Reply::Empty {
                hold: env.header.hold_requests.unwrap_or(false),
                ns: Some(env.ns),
            },
            Ok(env) => Reply::Message(env),
            Err(e) => Reply::Unparsable(e),
        };
        match status {
            200..=299 if body.trim_ascii().is_empty() => Reply::Empty {
                hold: false,
                ns: None,
            },
            200..=299 => parse(),
            // SOAP 1.1 §6.2: a fault comes with HTTP 500.
            500 if !body.trim_ascii().is_empty() => match parse() {
                fault @ Reply::Message(Envelope {
                    body: AcsMessage::Fault(_),
                    ..
                }) => fault,
                _ => Reply::Status(status),
            },
            _ => Reply::Status(status),
        }
    }

    /// ExpectInformResponse: the InformResponse starts the session proper (§3.7.1.2).
    fn inform_reply(&mut self, reply: Reply) -> (State, Action) {
        let can_fall_back = fallback(self.inform_ns).is_some();
        match reply {
            Reply::Message(Envelope {
                ns,
                header,
                body: AcsMessage::Response(AcsResponse::Inform { .. }),
            }) => {
                let version = match header.use_version.as_deref() {
                    // §A.2.2 (CWMP 1.4): UseCWMPVersion names one of the offered versions.
                    Some(text) => match CwmpVersion::parse(text) {
                        Some(v) if v <= self.offered => v,
                        _ => {
                            return self.finish(Err(SessionError::Protocol(format!(
                                "UseCWMPVersion {text:?} was not offered"
                            ))))
                        }
                    },
                    None => ns.version().min(self.offered),
                };
                self.version = version;
                self.ns = ns;
                self.hold = header.hold_requests.unwrap_or(false);
                self.inform_accepted = true;
                self.cpe_turn()
            }
            Reply::Message(Envelope {
                body: AcsMessage::Fault(fault),
                ..
            }) => {
                // 8005 on the Inform: the ACS is busy; the session is retried per §3.2.1.1.
                if fault.code == 8006 || (can_fall_back && !fault.is_retry()) {
                    self.finish(Err(SessionError::VersionRejected(format!(
                        "fault {} {}",
                        fault.code, fault.string
                    ))))
                } else {
                    self.finish(Err(SessionError::AcsFault(fault)))
                }
            }
            Reply::Status(code) if can_fall_back && matches!(code, 400 | 415 | 500 | 501) => {
                self.finish(Err(SessionError::VersionRejected(format!("HTTP {code}"))))
            }
            Reply::Status(code) => self.finish(Err(SessionError::Http(code))),
            Reply::Message(Envelope { body, .. }) => self.finish(Err(SessionError::Protocol(
                format!("expected InformResponse, got {}", describe(&body)),
            ))),
            Reply::Empty { .. } => self.finish(Err(SessionError::Protocol(
                "empty response to the Inform".to_string(),
            ))),
            Reply::Unparsable(e) => self.finish(Err(unparsable(e, "InformResponse"))),
        }
    }

    /// ExpectCpeRequestResponse: the ACS answers one of the CPE's requests (§3.7.1.3).
    fn cpe_request_reply(&mut self, index: usize, resent: u32, reply: Reply) -> (State, Action) {
        let method = self
            .requests
            .get(index)
            .map_or("request", CpeRequest::method);
        match reply {
            Reply::Message(Envelope {
                ns,
                header,
                body: AcsMessage::Response(resp),
            }) => {
                if !answers(method, &resp) {
                    return self.finish(Err(SessionError::Protocol(format!(
                        "expected {method}Response, got {}",
                        describe(&AcsMessage::Response(resp))
                    ))));
                }
                self.delivered = index + 1;
                self.ns = ns;
                self.hold = header.hold_requests.unwrap_or(false);
                self.cpe_turn()
            }
            Reply::Message(Envelope {
                body: AcsMessage::Fault(fault),
                ..
            }) => {
                // §A.5: 8005 asks the CPE to send the same request again.
                if fault.is_retry() && resent < MAX_RETRY_REQUEST {
                    self.send_request(index, resent + 1)
                } else {
                    self.refused = Some(index);
                    self.finish(Err(SessionError::AcsFault(fault)))
                }
            }
            Reply::Message(Envelope { body, .. }) => self.finish(Err(SessionError::Protocol(
                format!("expected {method}Response, got {}", describe(&body)),
            ))),
            Reply::Empty { .. } => self.finish(Err(SessionError::Protocol(format!(
                "empty response to {method}"
            )))),
            Reply::Status(code) => self.finish(Err(SessionError::Http(code))),
            Reply::Unparsable(e) => self.finish(Err(unparsable(e, "response"))),
        }
    }

    /// ExpectAcsRequest: the ACS sends its requests one at a time until an empty response
    /// (§3.7.1.4, §3.7.2.4).
    fn acs_request(&mut self, reply: Reply) -> (State, Action) {
        match reply {
            Reply::Empty { hold, ns } => {
                self.hold = hold;
                if let Some(ns) = ns {
                    self.ns = ns;
                }
                if !self.hold && self.delivered < self.requests.len() {
                    // §3.7.2.4: the session only ends when the CPE has no more requests; held
                    // ones go now.
                    self.send_request(self.delivered, 0)
                } else {
                    self.finish(Ok(()))
                }
            }
            Reply::Message(Envelope {
                ns,
                header,
                body: AcsMessage::Request(req),
            }) => {
                self.ns = ns;
                self.hold = header.hold_requests.unwrap_or(false);
                if let Some(element) = header.unknown_must_understand.first() {
                    // SOAP 1.1 §4.2.3: a header we must understand and do not: refuse the request.
                    let fault = Fault::MethodNotSupported(format!(
                        "header {element} with mustUnderstand=1 is not supported"
                    ));
                    return self.post_fault(ns, header.id.as_deref(), fault);
                }
                let method = req.method();
                (
                    State::Executing {
                        id: header.id,
                        ns,
                        method,
                    },
                    Action::Execute(req),
                )
            }
            Reply::Unparsable(ParseError::UnknownMethod { id, ns, method }) => {
                self.ns = ns;
                let fault = Fault::MethodNotSupported(format!("{method} is not supported"));
                self.post_fault(ns, id.as_deref(), fault)
            }
            Reply::Unparsable(ParseError::BadArguments {
                id,
                ns,
                method,
                detail,
            }) => {
                self.ns = ns;
                let fault = Fault::InvalidArguments(format!("{method}: {detail}"), Vec::new());
                self.post_fault(ns, id.as_deref(), fault)
            }
            Reply::Unparsable(ParseError::MustUnderstand { id, ns, element }) => {
                self.ns = ns;
                let fault = Fault::MethodNotSupported(format!(
                    "header {element} with mustUnderstand=1 is not supported"
                ));
                self.post_fault(ns, id.as_deref(), fault)
            }
            Reply::Unparsable(ParseError::Malformed(why)) => {
                // Not an envelope at all: answer 9003 without an ID in the session's namespace.
                // An ACS that sends nothing else is broken: the session ends after a few in a
                // row (each may take up to the timeout; max_exchanges alone would allow hours).
                self.malformed += 1;
                if self.malformed >= MAX_MALFORMED_IN_A_ROW {
                    return self.finish(Err(SessionError::Malformed(format!(
                        "{why} ({} unparsable messages in a row)",
                        self.malformed
                    ))));
                }
                let fault =
                    Fault::InvalidArguments(format!("malformed envelope: {why}"), Vec::new());
                self.post_fault(self.ns, None, fault)
            }
            Reply::Message(Envelope {
                body: AcsMessage::Fault(fault),
                ..
            }) => self.finish(Err(SessionError::AcsFault(fault))),
            Reply::Message(Envelope { body, .. }) => self.finish(Err(SessionError::Protocol(
                format!("expected an ACS request, got {}", describe(&body)),
            ))),
            Reply::Status(code) => self.finish(Err(SessionError::Http(code))),
        }
    }

    /// The CPE's turn after an ACS response: its next request unless held, else the empty POST.
    fn cpe_turn(&mut self) -> (State, Action) {
        if !self.hold && self.delivered < self.requests.len() {
            self.send_request(self.delivered, 0)
        } else {
            self.post(State::ExpectAcsRequest, Body::Bytes(Vec::new()))
        }
    }

    fn send_request(&mut self, index: usize, resent: u32) -> (State, Action) {
        let header = Header {
            id: Some(self.take_id()),
            ..Header::default()
        };
        let body = match self.requests.get(index) {
            Some(req) => soap::emit_request(self.ns, &header, req),
            None => return self.finish(Err(SessionError::OutOfOrder("no such CPE request"))),
        };
        self.post(
            State::ExpectCpeRequestResponse { index, resent },
            Body::Bytes(body),
        )
    }

    fn post_fault(&mut self, ns: CwmpNs, id: Option<&str>, fault: Fault) -> (State, Action) {
        let body = soap::emit_response(ns, id, &CpeResponse::Fault(fault));
        self.post(State::ExpectAcsRequest, Body::Bytes(body))
    }

    /// Posts a body unless the session used up its exchanges.
    fn post(&mut self, next: State, body: Body) -> (State, Action) {
        if self.posts >= self.max_exchanges {
            return self.finish(Err(SessionError::TooManyExchanges));
        }
        self.posts += 1;
        (next, Action::Post(body))
    }

    fn finish(&mut self, result: Result<(), SessionError>) -> (State, Action) {
        let outcome = Outcome {
            result,
            inform_accepted: self.inform_accepted,
            delivered: self.delivered,
            refused: self.refused,
            version: self.version,
            ns: self.inform_ns,
            acs_ns: self.ns,
            executed: std::mem::take(&mut self.executed),
        };
        (State::Done(outcome.clone()), Action::Done(outcome))
    }

    fn take_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id.to_string()
    }
}

/// Whether an ACS response answers the CPE request named `method`.
fn answers(method: &str, resp: &AcsResponse) -> bool {
    matches!(
        (method, resp),
        ("TransferComplete", AcsResponse::TransferComplete)
            | (
                "AutonomousTransferComplete",
                AcsResponse::AutonomousTransferComplete
            )
            | ("RequestDownload", AcsResponse::RequestDownload)
            | ("Kicked", AcsResponse::Kicked { .. })
            | ("GetRPCMethods", AcsResponse::GetRpcMethods { .. })
            | ("Inform", AcsResponse::Inform { .. })
    )
}

/// A short name of an ACS message for error texts.
fn describe(msg: &AcsMessage) -> String {
    let name = match msg {
        AcsMessage::Request(req) => req.method(),
        AcsMessage::Response(resp) => resp.element(),
        AcsMessage::Fault(fault) => return format!("fault {}", fault.code),
        AcsMessage::Empty => "an empty envelope",
    };
    name.to_string()
}

/// The session error for a body that did not parse where a response was due.
fn unparsable(e: ParseError, expected: &str) -> SessionError {
    match e {
        ParseError::Malformed(why) => SessionError::Malformed(why),
        ParseError::UnknownMethod { method, .. } => {
            SessionError::Protocol(format!("expected {expected}, got unknown {method}"))
        }
        ParseError::BadArguments { method, detail, .. } => {
            SessionError::Malformed(format!("{method}: {detail}"))
        }
        ParseError::MustUnderstand { element, .. } => SessionError::Protocol(format!(
            "{expected} has an unknown mustUnderstand header {element}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::value::BaseType;
    use crate::cwmp::value::{ParameterValue, ParameterValues};
    use crate::soap::acs::{self, CpeMessage};
    use crate::soap::{DeviceId, EventStruct, FaultStruct};

    const NS12: CwmpNs = CwmpNs::V1_2;

    fn inform() -> Inform {
        Inform {
            device_id: DeviceId {
                manufacturer: "Acme".into(),
                oui: "00D0F8".into(),
                product_class: "Router".into(),
                serial_number: "SN1".into(),
            },
            events: vec![EventStruct {
                code: "1 BOOT".into(),
                command_key: String::new(),
            }],
            max_envelopes: 7,
            current_time: "2026-11-21T05:50:26+00:00".into(),
            retry_count: 0,
            parameters: vec![ParameterValue {
                name: "Device.DeviceInfo.SoftwareVersion".into(),
                value: "1.0".into(),
                ty: BaseType::String,
            }],
        }
    }

    fn transfer_complete(key: &str) -> CpeRequest {
        CpeRequest::TransferComplete {
            command_key: key.into(),
            fault: FaultStruct::default(),
            start_time: "2026-11-21T05:50:26+00:00".into(),
            complete_time: "2026-11-21T05:51:26+00:00".into(),
        }
    }

    fn params(ns: CwmpNs, cpe_requests: Vec<CpeRequest>) -> SessionParams {
        SessionParams {
            inform: inform(),
            version: CwmpVersion::V1_4,
            ns,
            cpe_requests,
            session_timeout: Some(30),
            limits: Limits::default(),
            max_exchanges: DEFAULT_MAX_EXCHANGES,
        }
    }

    /// The body of a POST action (a test failure for any other action).
    fn posted(a: &Action) -> Vec<u8> {
        match a {
            Action::Post(body) => body.to_vec(),
            other => panic!("expected a POST, got {other:?}"),
        }
    }

    fn parsed(a: &Action) -> Envelope<CpeMessage> {
        let body = posted(a);
        assert!(!body.is_empty(), "expected a message, got the empty POST");
        match acs::parse_cpe(&body, &Limits::default()) {
            Ok(env) => env,
            Err(e) => panic!("our own POST does not parse: {e:?}"),
        }
    }

    fn outcome(a: &Action) -> &Outcome {
        match a {
            Action::Done(o) => o,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    fn acs_header(id: &str, hold: Option<bool>) -> Header {
        Header {
            id: Some(id.into()),
            hold_requests: hold,
            ..Header::default()
        }
    }

    fn inform_response(ns: CwmpNs, hold: Option<bool>, use_version: Option<&str>) -> Vec<u8> {
        let header = Header {
            use_version: use_version.map(str::to_string),
            ..acs_header("1", hold)
        };
        acs::emit_acs_response(ns, &header, &AcsResponse::Inform { max_envelopes: 1 })
    }

    fn gpv(ns: CwmpNs, id: &str, hold: Option<bool>) -> Vec<u8> {
        let req = AcsRequest::GetParameterValues {
            names: vec!["Device.DeviceInfo.".into()],
        };
        acs::emit_acs_request(ns, &acs_header(id, hold), &req)
    }

    fn fault_8005() -> AcsFault {
        AcsFault {
            code: 8005,
            string: "Retry request".into(),
        }
    }

    /// A hand-written ACS envelope: `header` and `body` go inside the SOAP Header and Body.
    fn raw_envelope(ns: CwmpNs, header: &str, body: &str) -> Vec<u8> {
        format!(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:cwmp=\"{}\"><soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body>\
             </soap:Envelope>",
            ns.urn()
        )
        .into_bytes()
    }

    fn fault_code(env: &Envelope<CpeMessage>) -> u32 {
        match &env.body {
            CpeMessage::Response(CpeResponse::Fault(f)) => f.code(),
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    /// Starts a session and completes the Inform exchange; returns the action after it.
    fn accepted(p: SessionParams, reply: Vec<u8>) -> (Session, Action) {
        let (mut s, a) = Session::start(p);
        assert!(matches!(a, Action::Post(_)));
        let a = s.on_reply(200, &reply);
        assert!(s.inform_accepted());
        (s, a)
    }

    /// The InformResponse and GetParameterValues of `field-capture-1` (an IIS-based ACS: `soap:`
    /// prefix, cwmp-1-0, HoldRequests in the header, comments in the body), verbatim.
    const FIELD_INFORM_RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope
xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
xmlns:cwmp="urn:dslforum-org:cwmp-1-0"
xmlns:xsd="http://www.w3.org/2001/XMLSchema"
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/">
<soap:Header>
<cwmp:ID soap:mustUnderstand="1">946684824</cwmp:ID>
<cwmp:HoldRequests soap:mustUnderstand="1">0</cwmp:HoldRequests>
</soap:Header>
<soap:Body>
<!-- ACS接受设备端(cpe)端的inform请求(即创建cwmp连接的请求) -->
<cwmp:InformResponse>
<MaxEnvelopes>1</MaxEnvelopes>
</cwmp:InformResponse>
</soap:Body>
</soap:Envelope>
"#;
    const FIELD_GPV: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope
xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
xmlns:cwmp="urn:dslforum-org:cwmp-1-0"
xmlns:xsd="http://www.w3.org/2001/XMLSchema"
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/">
<soap:Header>
<cwmp:ID soap:mustUnderstand="1">1</cwmp:ID>
<cwmp:HoldRequests soap:mustUnderstand="1">0</cwmp:HoldRequests>
</soap:Header>
<soap:Body>
<!-- 请求的方法为getparameterValues,获取设备端的参数信息 -->
<cwmp:GetParameterValues>
<ParameterNames SOAP-ENC:arrayType="xsd:string[2]">
<!-- 获取设备TR069网管用户名 -->
<string>Device.ManagementServer.Username</string>
<!-- 获取设备TR069网管密码 -->
<string>Device.ManagementServer.Password</string>
</ParameterNames>
</cwmp:GetParameterValues>
</soap:Body>
</soap:Envelope>
"#;

    #[test]
    fn field_capture_session() {
        let (mut s, a) = Session::start(params(CwmpNs::V1_0, vec![transfer_complete("k")]));
        assert_eq!(parsed(&a).ns, CwmpNs::V1_0);
        let a = s.on_reply(200, FIELD_INFORM_RESPONSE.as_bytes());
        assert!(s.inform_accepted());
        assert!(!s.hold_requests(), "HoldRequests 0");
        assert_eq!(parsed(&a).body, CpeMessage::Request(transfer_complete("k")));
        let ok = acs::emit_acs_response(
            CwmpNs::V1_0,
            &Header::default(),
            &AcsResponse::TransferComplete,
        );
        let a = s.on_reply(200, &ok);
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(200, FIELD_GPV.as_bytes());
        match &a {
            Action::Execute(AcsRequest::GetParameterValues { names }) => assert_eq!(
                names,
                &[
                    "Device.ManagementServer.Username".to_string(),
                    "Device.ManagementServer.Password".to_string()
                ]
            ),
            other => panic!("expected GPV, got {other:?}"),
        }
        let a = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        let env = parsed(&a);
        assert_eq!(env.ns, CwmpNs::V1_0);
        assert_eq!(env.header.id.as_deref(), Some("1"));
        let a = s.on_reply(204, b"");
        let o = outcome(&a);
        assert_eq!(o.result, Ok(()));
        assert_eq!((o.version, o.delivered), (CwmpVersion::V1_0, 1));
    }

    #[test]
    fn fallback_chain() {
        assert_eq!(fallback(CwmpNs::V1_4), Some(CwmpNs::V1_1));
        assert_eq!(fallback(CwmpNs::V1_3), Some(CwmpNs::V1_1));
        assert_eq!(fallback(CwmpNs::V1_2), Some(CwmpNs::V1_1));
        assert_eq!(fallback(CwmpNs::V1_1), Some(CwmpNs::V1_0));
        assert_eq!(fallback(CwmpNs::V1_0), None);
    }

    #[test]
    fn plain_session() {
        let (mut s, a) = Session::start(params(NS12, vec![]));
        let env = parsed(&a);
        assert_eq!(env.ns, NS12);
        assert_eq!(
            env.header.supported_versions.as_deref(),
            Some("1.0,1.1,1.2,1.3,1.4")
        );
        assert_eq!(env.header.session_timeout, Some(30));
        assert!(env.header.id.is_some());
        match env.body {
            CpeMessage::Request(CpeRequest::Inform(i)) => {
                assert_eq!(i.max_envelopes, 1, "MaxEnvelopes is always 1");
                assert_eq!(i.events, inform().events);
                assert_eq!(i.device_id, inform().device_id);
            }
            other => panic!("expected the Inform, got {other:?}"),
        }
        assert!(!s.inform_accepted());

        let a = s.on_reply(200, &inform_response(NS12, None, None));
        assert!(s.inform_accepted());
        assert_eq!(posted(&a), b"", "nothing to send: the empty POST");
        // Without UseCWMPVersion the namespace decides: cwmp-1-2 is 1.2.
        assert_eq!(s.version(), CwmpVersion::V1_2);

        let a = s.on_reply(204, b"");
        let o = outcome(&a);
        assert_eq!(o.result, Ok(()));
        assert!(o.inform_accepted);
        assert_eq!(o.delivered, 0);
        assert_eq!((o.ns, o.acs_ns), (NS12, NS12));
        assert!(o.executed.is_empty());
        assert!(s.is_done());
    }

    #[test]
    fn get_parameter_values_is_executed_and_answered_with_its_id() {
        let (mut s, a) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(200, &gpv(NS12, "acs-id-17", None));
        match &a {
            Action::Execute(AcsRequest::GetParameterValues { names }) => {
                assert_eq!(names, &["Device.DeviceInfo.".to_string()]);
            }
            other => panic!("expected Execute(GPV), got {other:?}"),
        }
        let resp = CpeResponse::GetParameterValues {
            list: vec![ParameterValue {
                name: "Device.DeviceInfo.UpTime".into(),
                value: "42".into(),
                ty: BaseType::UnsignedInt,
            }]
            .into(),
        };
        let a = s.executed(resp.clone());
        let env = parsed(&a);
        assert_eq!(env.header.id.as_deref(), Some("acs-id-17"));
        assert_eq!(env.ns, NS12);
        assert_eq!(env.body, CpeMessage::Response(resp));
        // 200 with an empty body ends the session like 204.
        let a = s.on_reply(200, b"");
        let o = outcome(&a);
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.executed, ["GetParameterValues"]);
    }

    #[test]
    fn session_ends_on_204_on_200_empty_and_on_empty_body() {
        let empty_envelope = raw_envelope(NS12, "", "");
        for (status, body) in [
            (204, &b"ignored"[..]),
            (200, &b""[..]),
            (200, &b" \r\n "[..]),
            (200, &empty_envelope[..]),
        ] {
            let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
            let a = s.on_reply(status, body);
            assert_eq!(outcome(&a).result, Ok(()), "{status} {body:?}");
        }
    }

    #[test]
    fn cpe_requests_go_right_after_the_inform_response() {
        let reqs = vec![transfer_complete("fw-1"), CpeRequest::GetRpcMethods];
        let (mut s, a) = accepted(params(NS12, reqs), inform_response(NS12, None, None));
        let env = parsed(&a);
        assert_eq!(env.body, CpeMessage::Request(transfer_complete("fw-1")));
        let ok =
            acs::emit_acs_response(NS12, &acs_header("2", None), &AcsResponse::TransferComplete);
        let a = s.on_reply(200, &ok);
        assert_eq!(s.delivered(), 1);
        assert_eq!(
            parsed(&a).body,
            CpeMessage::Request(CpeRequest::GetRpcMethods)
        );
        let methods = AcsResponse::GetRpcMethods {
            methods: vec!["Inform".into()],
        };
        let a = s.on_reply(
            200,
            &acs::emit_acs_response(NS12, &acs_header("3", None), &methods),
        );
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(204, b"");
        assert_eq!(outcome(&a).result, Ok(()));
        assert_eq!(outcome(&a).delivered, 2);
    }

    #[test]
    fn hold_requests_delays_transfer_complete_until_the_empty_response() {
        let p = params(NS12, vec![transfer_complete("fw-1")]);
        let (mut s, a) = accepted(p, inform_response(NS12, Some(true), None));
        assert!(s.hold_requests());
        assert_eq!(
            posted(&a),
            b"",
            "held: the empty POST instead of TransferComplete"
        );
        // The ACS keeps holding while it sends a request.
        let a = s.on_reply(200, &gpv(NS12, "g1", Some(true)));
        assert!(matches!(a, Action::Execute(_)));
        let a = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        assert_eq!(parsed(&a).header.id.as_deref(), Some("g1"));
        assert_eq!(s.delivered(), 0);
        // The empty response lifts the hold: the TransferComplete goes now…
        let a = s.on_reply(204, b"");
        assert!(!s.hold_requests());
        assert_eq!(
            parsed(&a).body,
            CpeMessage::Request(transfer_complete("fw-1"))
        );
        let ok =
            acs::emit_acs_response(NS12, &acs_header("9", None), &AcsResponse::TransferComplete);
        let a = s.on_reply(200, &ok);
        // …then the empty POST again, and the ACS's empty response ends the session.
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(204, b"");
        let o = outcome(&a);
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.delivered, 1);
        assert_eq!(o.executed, ["GetParameterValues"]);
    }

    #[test]
    fn empty_envelope_still_holding_ends_without_sending() {
        let p = params(NS12, vec![transfer_complete("fw-1")]);
        let (mut s, _) = accepted(p, inform_response(NS12, Some(true), None));
        let held_empty = raw_envelope(
            NS12,
            "<cwmp:HoldRequests soap:mustUnderstand=\"1\">1</cwmp:HoldRequests>",
            "",
        );
        let a = s.on_reply(200, &held_empty);
        let o = outcome(&a);
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.delivered, 0, "still pending for the next session");
    }

    #[test]
    fn fault_8005_sends_the_same_request_again() {
        let (mut s, a) = accepted(
            params(NS12, vec![transfer_complete("fw-1")]),
            inform_response(NS12, None, None),
        );
        let first = parsed(&a);
        let retry = acs::emit_acs_fault(NS12, first.header.id.as_deref(), &fault_8005());
        let a = s.on_reply(500, &retry);
        let again = parsed(&a);
        assert_eq!(again.body, first.body);
        let ok =
            acs::emit_acs_response(NS12, &acs_header("x", None), &AcsResponse::TransferComplete);
        let a = s.on_reply(200, &ok);
        assert_eq!(posted(&a), b"");
        assert_eq!(s.delivered(), 1);
    }

    #[test]
    fn fault_8005_retries_are_bounded() {
        let (mut s, mut a) = accepted(
            params(NS12, vec![transfer_complete("fw-1")]),
            inform_response(NS12, None, None),
        );
        let retry = acs::emit_acs_fault(NS12, None, &fault_8005());
        for _ in 0..MAX_RETRY_REQUEST {
            assert!(matches!(parsed(&a).body, CpeMessage::Request(_)));
            a = s.on_reply(500, &retry);
        }
        let a = s.on_reply(500, &retry);
        let o = outcome(&a);
        assert_eq!(o.result, Err(SessionError::AcsFault(fault_8005())));
        assert!(o.inform_accepted);
        assert_eq!(o.delivered, 0);
    }

    #[test]
    fn other_fault_on_transfer_complete_ends_the_session() {
        let (mut s, _) = accepted(
            params(NS12, vec![transfer_complete("fw-1")]),
            inform_response(NS12, None, None),
        );
        let refused = AcsFault {
            code: 8003,
            string: "Invalid arguments".into(),
        };
        let a = s.on_reply(500, &acs::emit_acs_fault(NS12, None, &refused));
        assert_eq!(outcome(&a).result, Err(SessionError::AcsFault(refused)));
        assert_eq!(outcome(&a).delivered, 0);
        // The agent learns which of its requests was refused.
        assert_eq!(outcome(&a).refused, Some(0));
    }

    #[test]
    fn a_fault_to_the_inform_refuses_no_cpe_request() {
        let (mut s, _) = Session::start(params(NS12, vec![transfer_complete("fw-1")]));
        let busy = AcsFault {
            code: 8005,
            string: "Retry request".into(),
        };
        let a = s.on_reply(500, &acs::emit_acs_fault(NS12, None, &busy));
        assert!(outcome(&a).result.is_err(), "{a:?}");
        assert_eq!(outcome(&a).refused, None);
    }

    #[test]
    fn an_acs_sending_only_garbage_ends_the_session() {
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        // One bad message is answered 9003 and the session goes on; a good one resets the count.
        for _ in 0..2 {
            let a = s.on_reply(200, b"<not-soap/>");
            assert_eq!(fault_code(&parsed(&a)), 9003);
        }
        let a = s.on_reply(200, &gpv(NS12, "g", None));
        assert!(matches!(a, Action::Execute(_)));
        let _ = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        for _ in 0..2 {
            let a = s.on_reply(200, b"garbage");
            assert_eq!(fault_code(&parsed(&a)), 9003);
        }
        let a = s.on_reply(200, b"garbage");
        assert!(
            matches!(outcome(&a).result, Err(SessionError::Malformed(_))),
            "{a:?}"
        );
    }

    #[test]
    fn unknown_rpc_is_answered_with_9000() {
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        let body = raw_envelope(
            NS12,
            "<cwmp:ID soap:mustUnderstand=\"1\">u-1</cwmp:ID>",
            "<cwmp:X_ACME_SelfDestruct><Delay>1</Delay></cwmp:X_ACME_SelfDestruct>",
        );
        let a = s.on_reply(200, &body);
        let env = parsed(&a);
        assert_eq!(fault_code(&env), 9000);
        assert_eq!(env.header.id.as_deref(), Some("u-1"));
        // The session goes on.
        let a = s.on_reply(200, &gpv(NS12, "g", None));
        assert!(matches!(a, Action::Execute(_)));
    }

    #[test]
    fn unknown_must_understand_header_is_answered_with_9000() {
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        let body = raw_envelope(
            NS12,
            "<cwmp:ID soap:mustUnderstand=\"1\">m-1</cwmp:ID>\
             <cwmp:X_Frobnicate soap:mustUnderstand=\"1\">yes</cwmp:X_Frobnicate>",
            "<cwmp:GetRPCMethods/>",
        );
        let a = s.on_reply(200, &body);
        let env = parsed(&a);
        assert_eq!(fault_code(&env), 9000);
        assert_eq!(env.header.id.as_deref(), Some("m-1"));
    }

    #[test]
    fn bad_arguments_and_garbage_are_answered_with_9003() {
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        // GetParameterNames whose NextLevel is not a boolean.
        let body = raw_envelope(
            NS12,
            "<cwmp:ID soap:mustUnderstand=\"1\">b-1</cwmp:ID>",
            "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath>\
             <NextLevel>perhaps</NextLevel></cwmp:GetParameterNames>",
        );
        let a = s.on_reply(200, &body);
        let env = parsed(&a);
        assert_eq!(fault_code(&env), 9003);
        assert_eq!(env.header.id.as_deref(), Some("b-1"));
        // Not XML at all.
        let a = s.on_reply(200, b"\x00\xffthis is <not xml");
        let env = parsed(&a);
        assert_eq!(fault_code(&env), 9003);
        assert_eq!(env.header.id, None);
        assert_eq!(env.ns, NS12);
    }

    #[test]
    fn garbage_instead_of_inform_response_fails_the_session() {
        let (mut s, _) = Session::start(params(NS12, vec![]));
        let a = s.on_reply(200, b"<html>hello</html>");
        let o = outcome(&a);
        assert!(matches!(o.result, Err(SessionError::Malformed(_))), "{o:?}");
        assert!(!o.inform_accepted);
    }

    #[test]
    fn version_1_4_accepted_through_use_cwmp_version() {
        let (mut s, a) = accepted(
            params(NS12, vec![]),
            inform_response(NS12, None, Some("1.4")),
        );
        assert_eq!(s.version(), CwmpVersion::V1_4);
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(204, b"");
        let o = outcome(&a);
        assert_eq!(o.version, CwmpVersion::V1_4);
        assert_eq!(o.ns, NS12);
    }

    #[test]
    fn use_cwmp_version_must_be_one_offered() {
        for (offer, answer) in [
            (CwmpVersion::V1_4, "1.5"),
            (CwmpVersion::V1_3, "1.4"),
            (CwmpVersion::V1_4, "x"),
        ] {
            let p = SessionParams {
                version: offer,
                ..params(NS12, vec![])
            };
            let (mut s, _) = Session::start(p);
            let a = s.on_reply(200, &inform_response(NS12, None, Some(answer)));
            assert!(
                matches!(outcome(&a).result, Err(SessionError::Protocol(_))),
                "{answer}"
            );
        }
    }

    #[test]
    fn non_standard_namespace_of_the_acs_is_kept() {
        // GenieACS and others answer a cwmp-1-2 Inform in cwmp-1-4.
        let ns14 = CwmpNs::V1_4;
        let (mut s, a) = accepted(params(NS12, vec![]), inform_response(ns14, None, None));
        assert_eq!(s.version(), CwmpVersion::V1_4);
        assert_eq!(posted(&a), b"");
        let a = s.on_reply(200, &gpv(ns14, "n-1", None));
        assert!(matches!(a, Action::Execute(_)));
        let a = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        assert_eq!(parsed(&a).ns, ns14, "answered in the ACS's namespace");
        let a = s.on_reply(204, b"");
        let o = outcome(&a);
        assert_eq!((o.ns, o.acs_ns), (NS12, ns14));
    }

    #[test]
    fn offering_1_3_sends_session_timeout_only() {
        let p = SessionParams {
            version: CwmpVersion::V1_3,
            ..params(NS12, vec![])
        };
        let (_, a) = Session::start(p);
        let env = parsed(&a);
        assert_eq!(env.header.session_timeout, Some(30));
        assert_eq!(env.header.supported_versions, None);
    }

    #[test]
    fn refused_inform_falls_back_without_new_headers() {
        let (mut s, _) = Session::start(params(NS12, vec![]));
        let a = s.on_reply(500, b"<html>Internal Server Error</html>");
        let o = outcome(&a);
        assert!(
            matches!(o.result, Err(SessionError::VersionRejected(_))),
            "{o:?}"
        );
        assert!(!o.inform_accepted);
        // The agent retries in the fallback namespace: no 1.3/1.4 headers there.
        let ns = fallback(o.ns).unwrap();
        let (mut s, a) = Session::start(params(ns, vec![]));
        let env = parsed(&a);
        assert_eq!(env.ns, CwmpNs::V1_1);
        assert_eq!(env.header.session_timeout, None);
        assert_eq!(env.header.supported_versions, None);
        let a = s.on_reply(200, &inform_response(CwmpNs::V1_1, None, None));
        assert_eq!(posted(&a), b"");
        assert_eq!(s.version(), CwmpVersion::V1_1);
        let a = s.on_reply(204, b"");
        assert_eq!(outcome(&a).ns, CwmpNs::V1_1);
        // At cwmp-1-0 there is nothing left to fall back to: a plain HTTP error.
        let (mut s, _) = Session::start(params(CwmpNs::V1_0, vec![]));
        let a = s.on_reply(500, b"");
        assert_eq!(outcome(&a).result, Err(SessionError::Http(500)));
    }

    #[test]
    fn faults_on_the_inform() {
        let cases = [
            (8003, NS12, "rejected"),
            (8005, NS12, "fault"),
            (8006, NS12, "rejected"),
            (8003, CwmpNs::V1_0, "fault"),
        ];
        for (code, ns, want) in cases {
            let (mut s, _) = Session::start(params(ns, vec![]));
            let fault = AcsFault {
                code,
                string: "no".into(),
            };
            let a = s.on_reply(500, &acs::emit_acs_fault(ns, Some("1"), &fault));
            let got = match &outcome(&a).result {
                Err(SessionError::VersionRejected(_)) => "rejected",
                Err(SessionError::AcsFault(f)) if f.code == code => "fault",
                other => panic!("{code}: {other:?}"),
            };
            assert_eq!(got, want, "{code} at {ns:?}");
        }
        // Authentication and availability problems are not a version problem.
        for status in [401, 403, 404, 503, 302] {
            let (mut s, _) = Session::start(params(NS12, vec![]));
            let a = s.on_reply(status, b"");
            assert_eq!(outcome(&a).result, Err(SessionError::Http(status)));
        }
    }

    #[test]
    fn the_time_limit_ends_the_session_in_any_state() {
        // Before the InformResponse: failed, nothing delivered.
        let (mut s, _) = Session::start(params(NS12, vec![]));
        match s.time_limit(600) {
            Action::Done(o) => {
                assert_eq!(o.result, Err(SessionError::TimeLimit(600)));
                assert!(!o.inform_accepted);
            }
            a => panic!("{a:?}"),
        }
        // Later inputs get the same end.
        assert!(
            matches!(s.on_failure("late"), Action::Done(o) if o.result == Err(SessionError::TimeLimit(600)))
        );
        // After the InformResponse, while the ACS keeps the session going: the Inform stays
        // accepted (its events were delivered), the session failed.
        let (mut s, a) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        assert!(matches!(a, Action::Post(_)), "{a:?}");
        match s.time_limit(5) {
            Action::Done(o) => {
                assert_eq!(o.result, Err(SessionError::TimeLimit(5)));
                assert!(o.inform_accepted);
            }
            a => panic!("{a:?}"),
        }
        assert!(SessionError::TimeLimit(5)
            .to_string()
            .contains("time limit of 5 s"));
    }

    #[test]
    fn max_exchanges_bounds_the_session() {
        let p = SessionParams {
            max_exchanges: 3,
            ..params(NS12, vec![])
        };
        // POST 1: Inform; POST 2: empty; POST 3: the first response; the fourth is refused.
        let (mut s, _) = accepted(p, inform_response(NS12, None, None));
        let a = s.on_reply(200, &gpv(NS12, "1", None));
        let a2 = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        assert!(matches!(a, Action::Execute(_)) && matches!(a2, Action::Post(_)));
        let _ = s.on_reply(200, &gpv(NS12, "2", None));
        let a = s.executed(CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        });
        let o = outcome(&a);
        assert_eq!(o.result, Err(SessionError::TooManyExchanges));
        assert_eq!(o.executed, ["GetParameterValues", "GetParameterValues"]);
        // A looping ACS sending garbage is stopped the same way.
        let p = SessionParams {
            max_exchanges: 10,
            ..params(NS12, vec![])
        };
        let (mut s, _) = accepted(p, inform_response(NS12, None, None));
        let mut n = 0;
        while !s.is_done() {
            let _ = s.on_reply(200, b"garbage");
            n += 1;
            assert!(n <= 10);
        }
    }

    #[test]
    fn transport_failure_ends_the_session() {
        let (mut s, _) = Session::start(params(NS12, vec![]));
        let a = s.on_failure("connection reset");
        let o = outcome(&a);
        assert_eq!(
            o.result,
            Err(SessionError::Transport("connection reset".into()))
        );
        assert!(!o.inform_accepted);
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        let a = s.on_failure("timeout");
        assert!(
            outcome(&a).inform_accepted,
            "events were delivered before the failure"
        );
    }

    #[test]
    fn out_of_order_calls_and_calls_after_done() {
        let (mut s, _) = Session::start(params(NS12, vec![]));
        let a = s.executed(CpeResponse::Reboot);
        assert!(matches!(
            outcome(&a).result,
            Err(SessionError::OutOfOrder(_))
        ));
        let done = a.clone();
        assert_eq!(s.on_reply(200, b""), done);
        assert_eq!(s.on_failure("x"), done);
        assert_eq!(s.executed(CpeResponse::FactoryReset), done);
        // A reply while an RPC executes is out of order too.
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        let _ = s.on_reply(200, &gpv(NS12, "1", None));
        let a = s.on_reply(204, b"");
        assert!(matches!(
            outcome(&a).result,
            Err(SessionError::OutOfOrder(_))
        ));
    }

    #[test]
    fn unexpected_messages_are_protocol_errors() {
        // A request where the response to TransferComplete was due.
        let (mut s, _) = accepted(
            params(NS12, vec![transfer_complete("k")]),
            inform_response(NS12, None, None),
        );
        let a = s.on_reply(200, &gpv(NS12, "1", None));
        assert!(matches!(outcome(&a).result, Err(SessionError::Protocol(_))));
        // A second InformResponse where an ACS request was due.
        let (mut s, _) = accepted(params(NS12, vec![]), inform_response(NS12, None, None));
        let a = s.on_reply(200, &inform_response(NS12, None, None));
        assert!(matches!(outcome(&a).result, Err(SessionError::Protocol(_))));
        // An empty answer to the Inform.
        let (mut s, _) = Session::start(params(NS12, vec![]));
        let a = s.on_reply(204, b"");
        assert!(matches!(outcome(&a).result, Err(SessionError::Protocol(_))));
    }

    #[test]
    fn no_input_panics() {
        let mut bodies: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"garbage".to_vec(),
            b"<".to_vec(),
            b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>".to_vec(),
            vec![0xff; 64],
            raw_envelope(NS12, "", ""),
            raw_envelope(NS12, "", "<cwmp:Nope/>"),
            raw_envelope(
                NS12,
                "<cwmp:ID soap:mustUnderstand=\"1\">",
                "<cwmp:GetRPCMethods/>",
            ),
            inform_response(NS12, Some(true), Some("1.4")),
            inform_response(CwmpNs::V1_0, None, Some("9.9")),
            gpv(NS12, "1", None),
            acs::emit_acs_fault(NS12, None, &fault_8005()),
            acs::emit_acs_response(NS12, &Header::default(), &AcsResponse::TransferComplete),
        ];
        bodies.push("<a>".repeat(10_000).into_bytes());
        for body in &bodies {
            for status in 0..=999u16 {
                for reqs in [vec![], vec![transfer_complete("k")]] {
                    // From ExpectInformResponse, then from ExpectAcsRequest.
                    let (mut s, _) = Session::start(params(NS12, reqs.clone()));
                    let _ = s.on_reply(status, body);
                    let _ = s.on_reply(status, body);
                    let (mut s, _) =
                        accepted(params(NS12, reqs), inform_response(NS12, None, None));
                    let _ = s.on_reply(status, body);
                    let _ = s.executed(CpeResponse::Reboot);
                    let _ = s.on_reply(status, body);
                }
            }
        }
    }
}
