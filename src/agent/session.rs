//! One CWMP session (§3.7): the Inform and its events, the CWMP version fallback (§A.2), the
//! exchanges driven by [`crate::session`], and the CPE's own requests (TransferComplete,
//! AutonomousTransferComplete, RequestDownload) settled as the ACS answers them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::control::AgentControl;
use super::plan::unix_after;
use super::state::LastSession;
use super::transport::AcsTransport;
use super::AgentError;
use super::{Agent, Settings};
use crate::connreq::listener::Phase;
use crate::cwmp::fault::Fault;
use crate::cwmp::time;
use crate::cwmp::value::ParameterValue;
use crate::cwmp::version::{CwmpNs, CwmpVersion};
use crate::datamodel::management::{Identity, ManagementServer};
use crate::events;
use crate::http::acs::TransportConfig;
use crate::http::url;
use crate::rpc;
use crate::session::{self, Action, Session, SessionParams};
use crate::soap::msg::{AcsRequest, CpeRequest, CpeResponse, DeviceId, FaultStruct, Inform};
use crate::sys::process;
use crate::transfer;

/// The longest `Retry-After` of an ACS that is honoured, in seconds.
pub(super) const MAX_RETRY_AFTER: u32 = 3600;

/// The outcome of one session run by [`Agent::run_session`].
pub type SessionResult = Result<(), AgentError>;

/// One of the CPE's own requests in a session, so that an acknowledged one is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CpeItem {
    Transfer(u64),
    Autonomous,
    Request(String),
}

impl Agent {
    /// Runs one session now with the pending events. Returns Ok when the session completed;
    /// every failure, including one before the first byte was sent, counts as a failed attempt
    /// (RetryCount + 1, §3.2.1.1), so the caller's backoff always applies.
    pub fn run_session(&mut self) -> SessionResult {
        self.retry_after = None;
        let spawns = process::spawns();
        // Requests that joined an earlier session were settled with it.
        self.take_joined();
        // Connection requests from here on join this session (§3.2.2).
        self.set_phase(Phase::Running);
        let (result, inform_accepted) = self.attempt();
        // The session may have moved the ACS (and so the route to it) or changed the
        // credentials: the listener follows before it takes the next request as new. From
        // here on a request means a new session (§3.2.2): the deferred work below (service
        // reloads) may take a while, and the ACS may ask right after it ended the session.
        let s = self.settings();
        self.follow_connreq(&s, true);
        self.set_phase(Phase::Idle);
        // A request that joined this session was answered 200 on the promise of a session; if
        // this one failed (an ACS that held it to the time limit, a broken connection), it is
        // still owed one: `6 CONNECTION REQUEST` goes with the next, after the §3.2.1.1 wait
        // (a request that joined is not rate-limited, so it does not cut the backoff short).
        if self.take_joined() && result.is_err() && self.queue(events::CONNECTION_REQUEST, "") {
            log::info!("a connection request joined the failed session; it is kept for the next");
        }
        for f in self.engine.end_session() {
            log::warn!("deferred change failed: {f}");
        }
        // RetryCount counts attempts to deliver the Inform (§3.2.1.1, §A.3.3.1): once an
        // InformResponse arrived, that session is no longer being retried.
        if inform_accepted {
            self.state.retry_count = 0;
        }
        // Processes the data model backends started (uci, scripts) in this session.
        let spawned = process::spawns().saturating_sub(spawns);
        match &result {
            Ok(n) => {
                log::info!(
                    "session ended: ok ({n} requests from the ACS, {spawned} processes started)"
                );
            }
            Err(e) => {
                if !inform_accepted {
                    self.state.retry_count = self.state.retry_count.saturating_add(1);
                }
                log::warn!(
                    "session failed: {e} (retry count {}, {spawned} processes started)",
                    self.state.retry_count
                );
            }
        }
        let text = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.clone(),
        };
        // Written only when the result differs from the last one: a periodic session that
        // changes nothing writes nothing to flash (its time would be the only new byte).
        if self
            .state
            .last_session
            .as_ref()
            .is_none_or(|l| l.ok != result.is_ok() || l.result != text)
        {
            self.state.last_session = Some(LastSession {
                time: self.now_unix(),
                ok: result.is_ok(),
                result: text,
            });
        }
        // The ACS may have changed the URL: the next session bootstraps the new ACS.
        if let Err(e) = self.note_url() {
            log::error!("{e}");
        }
        self.save();
        result.map(|_| ()).map_err(AgentError::Session)
    }

    /// One session, with the CWMP version fallback of §A.2: how many ACS requests ran, and
    /// whether the InformResponse arrived.
    pub(super) fn attempt(&mut self) -> (Result<usize, String>, bool) {
        let mut accepted = false;
        let r = self.attempt_inner(&mut accepted, false);
        (r, accepted)
    }

    /// One attempt of a session: with the pending events, or (`heartbeat`) a Heartbeat Inform
    /// with `14 HEARTBEAT` alone, its Inform parameters only, and none of the CPE's own requests
    /// (the pending events wait for their own session).
    pub(super) fn attempt_inner(
        &mut self,
        accepted: &mut bool,
        heartbeat: bool,
    ) -> Result<usize, String> {
        // The wall-clock budget of the whole attempt, version fallbacks included: no ACS holds
        // the one loop longer (`[acs] session_limit`).
        let limit = self.cfg.acs.session_limit;
        let deadline = self.clock.instant() + Duration::from_secs(limit.into());
        // The URL may have changed outside a session (`cwmpd set`, a config reload).
        self.note_url().map_err(|e| e.to_string())?;
        let settings = self.settings();
        if !usable_url(&settings.url) {
            return Err(format!(
                "no usable ACS URL (ManagementServer.URL is {:?})",
                url::redact(&settings.url)
            ));
        }
        // One snapshot of the system per session, from its start (§A.3.2: a GetParameterNames
        // and the GetParameterValues that follows see the same instances).
        self.engine.invalidate();
        let changed = if heartbeat {
            Vec::new()
        } else {
            self.engine.notifications().0
        };
        if !changed.is_empty() {
            self.queue(events::VALUE_CHANGE, "");
        }
        let codes: Vec<String> = if heartbeat {
            vec![events::HEARTBEAT.to_string()]
        } else {
            self.state
                .events
                .pending()
                .map(|e| e.code.to_string())
                .collect()
        };
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let mut params = self.engine.inform_parameters(&codes);
        for p in changed {
            if !params.iter().any(|q| q.name == p.name) {
                params.push(p);
            }
        }
        let info = Identity::read(&mut self.engine);
        let device_id = DeviceId {
            manufacturer: info.manufacturer,
            oui: info.manufacturer_oui,
            product_class: info.product_class,
            serial_number: info.serial_number,
        };
        // The CPE's own requests, and the events they need in this Inform (§3.7.1.5).
        let (cpe_requests, cpe_items, event_list, in_flight) = if heartbeat {
            let only = crate::soap::msg::EventStruct {
                code: events::HEARTBEAT.to_string(),
                command_key: String::new(),
            };
            (
                Vec::new(),
                Vec::new(),
                vec![only],
                events::InFlight::default(),
            )
        } else {
            self.ensure_cpe_events();
            let (requests, items) = self.cpe_requests();
            let (list, in_flight) = self.state.events.for_inform();
            (requests, items, list, in_flight)
        };
        if event_list.is_empty() {
            // Never an Inform without an event (§3.7.1.5): the callers queue one first.
            return Err("no event to report: an Inform carries at least one".into());
        }
        let fresh_start = event_list
            .iter()
            .any(|e| e.code == events::BOOT || e.code == events::BOOTSTRAP);
        let delivery = Delivery {
            in_flight,
            cpe_items,
            params,
            bootstrap_url: event_list
                .iter()
                .any(|e| e.code == events::BOOTSTRAP)
                .then(|| settings.url.clone()),
        };
        let version = CwmpVersion::parse(&self.cfg.acs.cwmp_version).unwrap_or(CwmpVersion::V1_4);
        // The namespace that worked for this ACS, except after a boot or a bootstrap, when the
        // highest version is offered again (the ACS may have been upgraded, or the fallback was
        // caused by a passing error).
        let mut ns = self
            .state
            .namespaces
            .get(&settings.url)
            .and_then(|u| CwmpNs::from_urn(u))
            .filter(|_| !fresh_start)
            .unwrap_or(version.namespace());
        log::info!(
            "session to {}: events [{}]",
            url::redact(&settings.url),
            event_list
                .iter()
                .map(|e| e.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cfg = self.transport_config(&settings);
        let mut transport = (self.connect)(&cfg, deadline).map_err(|e| {
            self.state.events.failed(&delivery.in_flight);
            e.to_string()
        })?;
        let outcome = loop {
            let inform = Inform {
                device_id: device_id.clone(),
                events: event_list.clone(),
                max_envelopes: 1,
                current_time: time::format_datetime(self.now_unix(), 0),
                retry_count: self.state.retry_count,
                parameters: delivery.params.clone(),
            };
            let p = SessionParams {
                inform,
                version: if ns == version.namespace() {
                    version
                } else {
                    ns.standard().version()
                },
                ns,
                cpe_requests: cpe_requests.clone(),
                session_timeout: Some(self.cfg.acs.timeout),
                limits: Default::default(),
                max_exchanges: session::DEFAULT_MAX_EXCHANGES,
            };
            let outcome = self.drive(transport.as_mut(), p, &delivery, (deadline, limit));
            transport.end_session();
            match (&outcome.result, session::fallback(ns)) {
                (Err(session::SessionError::VersionRejected(_)), Some(lower))
                    if !outcome.inform_accepted =>
                {
                    log::warn!(
                        "ACS refused the {} Inform; retrying with {}",
                        ns.urn(),
                        lower.urn()
                    );
                    ns = lower;
                }
                _ => break outcome,
            }
        };
        *accepted = outcome.inform_accepted;
        if !outcome.inform_accepted {
            self.state.events.failed(&delivery.in_flight);
        }
        // An ACS that refuses a RequestDownload or an AutonomousTransferComplete (8000 and the
        // like) will refuse it again: it is dropped. A refused TransferComplete is kept: the
        // ACS asked for that transfer and must hear how it ended.
        if let Err(session::SessionError::AcsFault(f)) = &outcome.result {
            if let Some(item) = outcome.refused.and_then(|i| delivery.cpe_items.get(i)) {
                if !matches!(item, CpeItem::Transfer(_)) {
                    log::warn!("the ACS refused {item:?} with {f:?}; dropped");
                    self.settle(item);
                    self.save();
                }
            }
        }
        match outcome.result {
            Ok(()) => {
                // Only the current ACS's namespace is kept, so the file cannot grow with URLs.
                self.state.namespaces.retain(|u, _| *u == settings.url);
                self.state
                    .namespaces
                    .insert(settings.url, outcome.ns.urn().to_string());
                Ok(outcome.executed.len())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Drives one session attempt to its end, or to `limit`: (the instant, its seconds).
    pub(super) fn drive(
        &mut self,
        transport: &mut dyn AcsTransport,
        p: SessionParams,
        delivery: &Delivery,
        limit: (Instant, u32),
    ) -> session::Outcome {
        let (mut session, mut action) = Session::start(p);
        let mut delivered = false;
        let mut settled = 0;
        loop {
            action = match action {
                // Every POST starts within the limit, and the transport cuts it at the limit.
                Action::Post(_) if self.clock.instant() >= limit.0 => session.time_limit(limit.1),
                Action::Post(body) => match transport.post(&body) {
                    Ok(reply) => {
                        if matches!(reply.status, 429 | 503) {
                            self.retry_after = reply.retry_after.map(|s| s.min(MAX_RETRY_AFTER));
                        }
                        session.on_reply(reply.status, &reply.body)
                    }
                    Err(_) if self.clock.instant() >= limit.0 => session.time_limit(limit.1),
                    Err(e) => session.on_failure(&e.to_string()),
                },
                Action::Execute(req) => {
                    log::info!("ACS request: {}", req.method());
                    // Rounded up: what the ACS delays by DelaySeconds never fires early.
                    let now = unix_after(self.clock.wall(), Duration::ZERO);
                    // The requests that are journalled: their response promises work that a
                    // failed write would lose, so a failed write answers 9002 and undoes them.
                    let journalled = matches!(
                        req,
                        AcsRequest::Download(_)
                            | AcsRequest::Upload(_)
                            | AcsRequest::ScheduleDownload(_)
                            | AcsRequest::Reboot { .. }
                            | AcsRequest::FactoryReset
                            | AcsRequest::ScheduleInform { .. }
                            | AcsRequest::CancelTransfer { .. }
                    );
                    let before = journalled.then(|| self.state.clone());
                    // A data model change is committed only once it is persisted (below).
                    self.engine.hold();
                    let mut resp = {
                        let mut ctl = AgentControl {
                            state: &mut self.state,
                            hooks: &self.hooks,
                            limits: transfer::Limits {
                                max_queued: self.cfg.transfer.max_queued as usize,
                                retries: self.cfg.transfer.retries,
                            },
                            now,
                        };
                        rpc::execute(&mut self.engine, &mut ctl, &req)
                    };
                    if let CpeResponse::Fault(f) = &resp {
                        log::info!("answered {} with fault {f}", req.method());
                    }
                    // What the ACS changed is persisted before the response is sent; what
                    // could not be recorded is undone everywhere (uci included) and answered
                    // 9002: nothing is acknowledged that a restart would lose.
                    let saved = self.persist();
                    let undone = self.engine.settle(saved.is_ok());
                    if let Err(e) = saved {
                        log::error!("{e}");
                        let refused = if let Some(before) = before {
                            self.state = before;
                            true
                        } else {
                            undone && !matches!(resp, CpeResponse::Fault(_))
                        };
                        if refused {
                            resp = CpeResponse::Fault(Fault::internal(format!(
                                "{} could not be recorded: {e}",
                                req.method()
                            )));
                        }
                    }
                    session.executed(resp)
                }
                Action::Done(outcome) => return outcome,
            };
            // A TransferComplete (or other CPE request) the ACS answered is settled and written
            // at once: it is never sent again (§3.7.1.5, exactly once as far as a cut allows).
            if session.delivered() > settled {
                let upto = session.delivered();
                let items: Vec<CpeItem> = delivery
                    .cpe_items
                    .get(settled..upto)
                    .unwrap_or_default()
                    .to_vec();
                for item in &items {
                    self.settle(item);
                }
                settled = upto;
                self.save();
            }
            if !delivered && session.inform_accepted() {
                // The InformResponse arrived: its events are delivered (§3.7.1.5), the values
                // it carried are reported (so a change the ACS makes later in this session is
                // not reported back to it), and a BOOTSTRAP is acknowledged. Persisted at once.
                delivered = true;
                self.state.events.delivered(&delivery.in_flight);
                self.engine.mark_reported(&delivery.params);
                if let Some(p) = delivery
                    .params
                    .iter()
                    .find(|p| ManagementServer::is_connection_request_url(&self.engine, &p.name))
                {
                    self.state.reported_connection_request_url = p.value.clone();
                }
                if let Some(p) = delivery.params.iter().find(|p| {
                    ManagementServer::is(
                        &self.engine,
                        &p.name,
                        crate::datamodel::management::Param::ConnReqJabberId,
                    )
                }) {
                    self.state.reported_jabber_id = p.value.clone();
                }
                if let Some(url) = &delivery.bootstrap_url {
                    self.state.bootstrapped_url = url.clone();
                }
                self.save();
            }
        }
    }

    pub(super) fn transport_config(&self, s: &Settings) -> TransportConfig {
        let a = &self.cfg.acs;
        TransportConfig {
            url: s.url.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            allow_basic_over_http: a.allow_basic_over_http,
            ca_file: a.ca_file.clone(),
            client_cert: a.client_cert.clone(),
            client_key: a.client_key.clone(),
            connect_timeout: Duration::from_secs(a.timeout.into()),
            timeout: Duration::from_secs(a.timeout.into()),
            max_body: 4 << 20,
            user_agent: concat!("cwmpd/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Queues the events the CPE's own pending requests need (§3.7.1.5): `7 TRANSFER COMPLETE`
    /// and one `M Download`/`M ScheduleDownload`/`M Upload` per completed transfer,
    /// `10 AUTONOMOUS TRANSFER COMPLETE`, `9 REQUEST DOWNLOAD`. Called whenever one is added and
    /// before every Inform, so a session that ended before the request was acknowledged is
    /// followed by one that carries its events again.
    pub(super) fn ensure_cpe_events(&mut self) {
        let mut want: Vec<(&'static str, String)> = Vec::new();
        for t in self.state.transfers.completed() {
            want.push((t.origin.event(), t.command_key.clone()));
        }
        if !want.is_empty() && !self.state.events.contains(events::TRANSFER_COMPLETE) {
            self.queue(events::TRANSFER_COMPLETE, "");
        }
        let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for e in self.state.events.pending() {
            if let Some(code) = [
                events::M_DOWNLOAD,
                events::M_SCHEDULE_DOWNLOAD,
                events::M_UPLOAD,
            ]
            .into_iter()
            .find(|c| e.code == *c)
            {
                *counts.entry((code, e.command_key.clone())).or_default() += 1;
            }
        }
        for (code, key) in want {
            let have = counts.entry((code, key.clone())).or_default();
            if *have > 0 {
                *have -= 1;
            } else {
                self.queue(code, &key);
            }
        }
        if !self.state.autonomous.is_empty()
            && !self
                .state
                .events
                .contains(events::AUTONOMOUS_TRANSFER_COMPLETE)
        {
            self.queue(events::AUTONOMOUS_TRANSFER_COMPLETE, "");
        }
        if !self.state.requests.is_empty() && !self.state.events.contains(events::REQUEST_DOWNLOAD)
        {
            self.queue(events::REQUEST_DOWNLOAD, "");
        }
    }

    /// The CPE's own requests for the next session, in order: TransferCompletes,
    /// AutonomousTransferCompletes, RequestDownloads.
    pub(super) fn cpe_requests(&self) -> (Vec<CpeRequest>, Vec<CpeItem>) {
        let mut reqs = Vec::new();
        let mut items = Vec::new();
        for t in self.state.transfers.completed() {
            reqs.push(CpeRequest::TransferComplete {
                command_key: t.command_key.clone(),
                fault: t.fault(),
                start_time: transfer::time_text(t.start_time),
                complete_time: transfer::time_text(t.complete_time),
            });
            items.push(CpeItem::Transfer(t.id));
        }
        for a in &self.state.autonomous {
            reqs.push(CpeRequest::AutonomousTransferComplete {
                announce_url: String::new(),
                transfer_url: a.transfer_url.clone(),
                is_download: a.is_download,
                file_type: a.file_type.clone(),
                file_size: a.file_size,
                target_file_name: String::new(),
                fault: FaultStruct {
                    code: a.fault_code,
                    string: a.fault_string.clone(),
                },
                start_time: transfer::time_text(time::UNKNOWN_TIME),
                complete_time: transfer::time_text(time::UNKNOWN_TIME),
            });
            items.push(CpeItem::Autonomous);
        }
        for r in &self.state.requests {
            reqs.push(CpeRequest::RequestDownload {
                file_type: r.file_type.clone(),
                args: r
                    .args
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect(),
            });
            items.push(CpeItem::Request(r.name.clone()));
        }
        (reqs, items)
    }

    /// The ACS answered one of the CPE's requests: it is settled for good.
    pub(super) fn settle(&mut self, item: &CpeItem) {
        match item {
            CpeItem::Transfer(id) => {
                if let Some(t) = self.state.transfers.get(*id) {
                    log::info!(
                        "TransferComplete for {:?} acknowledged by the ACS",
                        t.command_key
                    );
                }
                self.state.transfers.remove(*id);
            }
            CpeItem::Autonomous => {
                if !self.state.autonomous.is_empty() {
                    self.state.autonomous.remove(0);
                }
            }
            CpeItem::Request(name) => self.state.requests.retain(|r| r.name != *name),
        }
    }
}

/// What an Inform carries that is settled when its InformResponse arrives, and the CPE's own
/// requests of the session, settled one by one as the ACS answers them.
pub(super) struct Delivery {
    in_flight: events::InFlight,
    cpe_items: Vec<CpeItem>,
    params: Vec<ParameterValue>,
    /// The ACS URL, when the Inform carried `0 BOOTSTRAP`.
    bootstrap_url: Option<String>,
}

/// Whether an ACS URL can be used: http(s) with a host (RFC 3986 §3, [`url::Url`]).
pub(super) fn usable_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.is_http() || u.is_https())
}
