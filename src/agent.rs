//! The driver loop: the one place that blocks (TR-069 §3.2 session initiation, §3.7 sessions).
//!
//! [`Agent`] owns the store, the data model engine, the persisted agent state and the channel
//! other threads (the Connection Request listener, signal handlers) use to wake it. Everything it
//! drives is pure: the session state machine ([`crate::session`]) says what to post, the codec
//! ([`crate::soap`]) makes the bytes, the RPC layer ([`crate::rpc`]) runs requests on the engine.
//! The loop decides *when*: at start (BOOT/BOOTSTRAP), periodic informs, scheduled informs,
//! value changes with active notification, connection requests, and retries with the backoff of
//! §3.2.1.1. Nothing else sleeps.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::connreq::{self, listener::Phase, ConnReq};
use crate::datamodel::{backend::Backends, DmState, Engine};
use crate::events::{self, Event, EventQueue};
use crate::fault::Fault;
use crate::rpc::{self, Control};
use crate::schedule;
use crate::session::{self, Action, Session, SessionParams};
use crate::soap::msg::{CwmpNs, CwmpVersion, DeviceId, Inform, ParameterValue};
use crate::store::Store;
use crate::transport::{Transport, TransportConfig};

/// The store file of the agent's own state.
const AGENT_FILE: &str = "agent";
/// The store file of the data model's bookkeeping.
const DATAMODEL_FILE: &str = "datamodel";
/// The longest `Retry-After` of an ACS that is honoured, in seconds.
const MAX_RETRY_AFTER: u32 = 3600;
/// How often values with notification on are compared (active notification latency).
/// Most ScheduleInform requests kept at once.
const MAX_SCHEDULED: usize = 64;

/// What must survive a restart, besides the data model's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Events not yet acknowledged by an InformResponse.
    #[serde(default)]
    pub events: EventQueue,
    /// Failed session attempts since the last successful one (the Inform's RetryCount).
    #[serde(default)]
    pub retry_count: u32,
    /// The ACS URL whose BOOTSTRAP was acknowledged; BOOTSTRAP is sent again when it differs.
    #[serde(default)]
    pub bootstrapped_url: String,
    /// The kernel boot id of the last start, to tell a device boot from an agent restart.
    #[serde(default)]
    pub boot_id: String,
    /// The last session's end, for `cwmpd status`.
    #[serde(default)]
    pub last_session: Option<LastSession>,
    /// The CWMP namespace that worked, by ACS URL (§A.2 version negotiation fallback).
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
    /// Pending ScheduleInform requests (§A.4.1.4).
    #[serde(default)]
    pub scheduled: Vec<ScheduledInform>,
    /// The random path of ConnectionRequestURL, generated once (§3.2.2: unique per CPE).
    #[serde(default)]
    pub connection_request_path: String,
    /// The ConnectionRequestURL the ACS last acknowledged, so that one changed while the agent
    /// was not running (a restart, a WAN change meanwhile) is reported at start.
    #[serde(default)]
    pub reported_connection_request_url: String,
}

/// The end of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSession {
    /// Unix time the session ended.
    pub time: i64,
    pub ok: bool,
    /// "ok", or the one-line reason it failed.
    pub result: String,
}

/// A ScheduleInform waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledInform {
    pub at: i64,
    pub command_key: String,
}

/// What wakes the loop from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An authenticated Connection Request (§3.2.2): a session with `6 CONNECTION REQUEST`.
    ConnectionRequest,
    /// A watched file changed (uci config): check the notified values now.
    ValuesChanged,
    /// Stop the loop (tests, signals).
    Stop,
}

/// The effective ManagementServer settings, read back from the data model after every change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    url: String,
    username: String,
    password: String,
    periodic_enable: bool,
    periodic_interval: u32,
    periodic_time: Option<i64>,
    retry_min_wait: u32,
    retry_multiplier: u32,
    /// `ManagementServer.EnableCWMP`: false stops every session (TR-181).
    enable_cwmp: bool,
    /// `ManagementServer.DefaultActiveNotificationThrottle`: minimum seconds between two
    /// sessions started for active notifications.
    active_throttle: u32,
    /// What the Connection Request listener follows.
    connection_request: connreq::Inputs,
}

/// The agent: configuration, store, data model, persisted state and the wake-up channel.
pub struct Agent {
    cfg: Config,
    store: Store,
    engine: Engine,
    state: AgentState,
    tx: Sender<Trigger>,
    rx: Receiver<Trigger>,
    rng: ring::rand::SystemRandom,
    /// `Retry-After` of the last 503/429 from the ACS, used as the least backoff (RFC 9110 §10.2.3).
    retry_after: Option<u32>,
    /// The Connection Request listener, while the daemon runs.
    connreq: Option<ConnReq>,
    /// ConnectionRequestURL changed since the loop last looked.
    url_changed: bool,
}

/// The outcome of one session run by [`Agent::run_session`].
pub type SessionResult = Result<(), String>;

impl Agent {
    /// Builds the agent from a validated config: opens the store, loads the data model and the
    /// persisted state.
    pub fn new(mut cfg: Config) -> Result<Agent, String> {
        if cfg.device.serial_number.is_empty() {
            cfg.device.serial_number = crate::os::default_serial_number();
        }
        if cfg.device.software_version.is_empty() {
            cfg.device.software_version = env!("CARGO_PKG_VERSION").to_string();
        }
        let model = cfg.model().ok_or("invalid data_model")?;
        let schema = cfg.datamodel.schema(model).map_err(|e| e.to_string())?;
        let mut store = Store::open(&cfg.storage.dir).map_err(|e| e.to_string())?;
        let dm: DmState = store.load(DATAMODEL_FILE).map_err(|e| e.to_string())?;
        let mut state: AgentState = store.load(AGENT_FILE).map_err(|e| e.to_string())?;
        // A state file is trusted no more than the ACS: the same bound as ScheduleInform's.
        state.scheduled.truncate(MAX_SCHEDULED);
        let backends = Backends::with_platform(cfg.agent_defaults(), &cfg.datamodel.platform());
        let engine = Engine::new(schema, backends, dm);
        let (tx, rx) = mpsc::channel();
        let mut agent = Agent {
            cfg,
            store,
            engine,
            state,
            tx,
            rx,
            rng: ring::rand::SystemRandom::new(),
            retry_after: None,
            connreq: None,
            url_changed: false,
        };
        // The random path is made once and kept (§3.2.2: unique per CPE, stable for the ACS).
        if agent.state.connection_request_path.is_empty() {
            agent.state.connection_request_path = connreq::url::random_path(&agent.random()?);
            agent
                .store
                .save(AGENT_FILE, &agent.state)
                .map_err(|e| e.to_string())?;
        }
        // What the CLI shows; the daemon replaces it once its listener is bound.
        let acs_url = agent.settings().url;
        let url = connreq::provisional_url(
            &agent.cfg.connection_request,
            &agent.state.connection_request_path,
            &acs_url,
        );
        agent
            .engine
            .backends_mut()
            .set_runtime("connection_request.url", &url);
        Ok(agent)
    }

    /// Starts the Connection Request listener (§3.2.2) and sets ConnectionRequestURL.
    fn start_connreq(&mut self) -> Result<(), String> {
        let key = self.random()?;
        let tx = self.tx.clone();
        self.connreq = Some(ConnReq::new(
            &self.cfg.connection_request,
            &self.state.connection_request_path,
            &key,
            move || {
                let _ = tx.send(Trigger::ConnectionRequest);
            },
        ));
        let s = self.settings();
        if s.connection_request.username.is_empty() && s.connection_request.password.is_empty() {
            log::warn!(
                "ConnectionRequestUsername and ConnectionRequestPassword are empty: any client \
                 can compute the digest until the ACS sets them"
            );
        }
        self.follow_connreq(&s, true);
        self.url_changed = false;
        // Notification bookkeeping is RAM: a URL that moved while the agent was down is told
        // here (a forced active notification, TR-181), else the ACS could not reach the CPE.
        let url = self.connreq.as_ref().map(|c| c.url().to_string());
        if let Some(url) = url {
            let known = self.state.reported_connection_request_url.clone();
            if !known.is_empty() && known != url && self.queue(events::VALUE_CHANGE, "") {
                log::info!("ConnectionRequestURL changed since it was last reported ({known})");
                self.save();
            }
        }
        Ok(())
    }

    /// Lets the listener follow the settings; when ConnectionRequestURL changed, the agent
    /// backend reports the new one and `url_changed` is set.
    fn follow_connreq(&mut self, s: &Settings, recheck: bool) {
        let Some(cr) = &mut self.connreq else {
            return;
        };
        if let Some(url) = cr.update(&s.connection_request, recheck) {
            self.engine
                .backends_mut()
                .set_runtime("connection_request.url", &url);
            self.url_changed = true;
        }
    }

    fn set_phase(&self, phase: Phase) {
        if let Some(cr) = &self.connreq {
            cr.set_phase(phase);
        }
    }

    /// A sender other threads use to wake the loop.
    pub fn trigger_sender(&self) -> Sender<Trigger> {
        self.tx.clone()
    }

    /// The persisted state (for `cwmpd status` and tests).
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// The data model engine (for `cwmpd get/set`).
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Writes the engine's and the agent's state if they changed.
    pub fn persist(&mut self) -> Result<(), String> {
        if let Some(dm) = self.engine.take_dirty() {
            self.store
                .save(DATAMODEL_FILE, dm)
                .map_err(|e| e.to_string())?;
        }
        self.store
            .save(AGENT_FILE, &self.state)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Queues an event (from the CLI or a trigger). Returns whether a new event was queued (a
    /// single event already pending is not new).
    pub fn add_event(&mut self, code: &str, command_key: &str) -> Result<bool, String> {
        self.state
            .events
            .add(Event::new(code, command_key))
            .map_err(|e| e.to_string())
    }

    /// Queues `1 BOOT` when the device booted since the last start (a new kernel boot id), and
    /// `0 BOOTSTRAP` when this ACS URL never acknowledged one. Called once at start.
    pub fn note_start(&mut self) -> Result<(), String> {
        let boot = crate::os::boot_id().unwrap_or_default();
        if boot.is_empty() || boot != self.state.boot_id {
            self.state.events.rebooted();
            self.add_event(events::BOOT, "")?;
            self.state.boot_id = boot;
        }
        self.note_url()?;
        self.persist()
    }

    /// Queues BOOTSTRAP when the ACS URL differs from the one that acknowledged it.
    fn note_url(&mut self) -> Result<(), String> {
        let url = self.settings().url;
        if !url.is_empty()
            && url != self.state.bootstrapped_url
            && !self.state.events.contains(events::BOOTSTRAP)
        {
            if self.state.bootstrapped_url.is_empty() {
                self.add_event(events::BOOTSTRAP, "")?;
            } else {
                self.state.events.url_changed();
            }
        }
        Ok(())
    }

    fn settings(&mut self) -> Settings {
        let root = self.engine.root().to_string();
        let mut get = |name: &str| {
            self.engine
                .value(&format!("{root}ManagementServer.{name}"))
                .unwrap_or_default()
        };
        let url = get("URL");
        let username = get("Username");
        let periodic_enable = get("PeriodicInformEnable") == "true";
        let periodic_interval = get("PeriodicInformInterval")
            .parse()
            .unwrap_or(86400)
            .max(1);
        let periodic_time = schedule::periodic_reference(&get("PeriodicInformTime"));
        let retry_min_wait = get("CWMPRetryMinimumWaitInterval")
            .parse()
            .unwrap_or(self.cfg.acs.retry_minimum_wait_interval);
        let retry_multiplier = get("CWMPRetryIntervalMultiplier")
            .parse()
            .unwrap_or(self.cfg.acs.retry_interval_multiplier);
        let enable_cwmp = get("EnableCWMP") != "false";
        let active_throttle = get("DefaultActiveNotificationThrottle")
            .parse()
            .unwrap_or(0);
        // GetParameterValues reads passwords back empty; `Engine::value` gives the stored one.
        let password = get("Password");
        let cr_username = get("ConnectionRequestUsername");
        let cr_password = get("ConnectionRequestPassword");
        let connection_request = connreq::Inputs {
            // TR-098 has no HTTPConnectionRequestEnable: the config decides there. With
            // EnableCWMP false no request is accepted either (TR-181 ManagementServer).
            enabled: self
                .engine
                .value(&format!(
                    "{root}ManagementServer.HTTPConnectionRequestEnable"
                ))
                .map_or(self.cfg.connection_request.enable, |v| v != "false")
                && enable_cwmp,
            username: cr_username,
            password: cr_password,
            acs_url: url.clone(),
        };
        Settings {
            url,
            username,
            password,
            periodic_enable,
            periodic_interval,
            periodic_time,
            retry_min_wait,
            retry_multiplier,
            enable_cwmp,
            active_throttle,
            connection_request,
        }
    }

    fn random_u64(&self) -> u64 {
        // A failing system RNG only makes the retry wait less random.
        u64::from_le_bytes(self.random().unwrap_or_default())
    }

    /// `N` bytes from the system CSPRNG.
    fn random<const N: usize>(&self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        ring::rand::SecureRandom::fill(&self.rng, &mut b)
            .map_err(|_| "the system random generator failed")?;
        Ok(b)
    }

    /// Runs one session now with the pending events. Returns Ok when the session completed;
    /// every failure, including one before the first byte was sent, counts as a failed attempt
    /// (RetryCount + 1, §3.2.1.1), so the caller's backoff always applies.
    pub fn run_session(&mut self) -> SessionResult {
        self.retry_after = None;
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
        for f in self.engine.end_session() {
            log::warn!("deferred change failed: {f}");
        }
        // RetryCount counts attempts to deliver the Inform (§3.2.1.1, §A.3.3.1): once an
        // InformResponse arrived, that session is no longer being retried.
        if inform_accepted {
            self.state.retry_count = 0;
        }
        match &result {
            Ok(n) => {
                log::info!("session ended: ok ({n} requests from the ACS)");
            }
            Err(e) => {
                if !inform_accepted {
                    self.state.retry_count = self.state.retry_count.saturating_add(1);
                }
                log::warn!(
                    "session failed: {e} (retry count {})",
                    self.state.retry_count
                );
            }
        }
        self.state.last_session = Some(LastSession {
            time: now_unix(),
            ok: result.is_ok(),
            result: match &result {
                Ok(_) => "ok".into(),
                Err(e) => e.clone(),
            },
        });
        // The ACS may have changed the URL: the next session bootstraps the new ACS.
        if let Err(e) = self.note_url() {
            log::error!("{e}");
        }
        self.save();
        result.map(|_| ())
    }

    /// One session, with the CWMP version fallback of §A.2: how many ACS requests ran, and
    /// whether the InformResponse arrived.
    fn attempt(&mut self) -> (Result<usize, String>, bool) {
        let mut accepted = false;
        let r = self.attempt_inner(&mut accepted);
        (r, accepted)
    }

    fn attempt_inner(&mut self, accepted: &mut bool) -> Result<usize, String> {
        // The URL may have changed outside a session (`cwmpd set`, a config reload).
        self.note_url()?;
        let settings = self.settings();
        if !usable_url(&settings.url) {
            return Err(format!(
                "no usable ACS URL (ManagementServer.URL is {:?})",
                settings.url
            ));
        }
        // One snapshot of the system per session, from its start (§A.3.2: a GetParameterNames
        // and the GetParameterValues that follows see the same instances).
        self.engine.invalidate();
        let (changed, _) = self.engine.notifications();
        if !changed.is_empty() {
            self.queue(events::VALUE_CHANGE, "");
        }
        let codes: Vec<String> = self
            .state
            .events
            .pending()
            .map(|e| e.code.clone())
            .collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let mut params = self.engine.inform_parameters(&codes);
        for p in changed {
            if !params.iter().any(|q| q.name == p.name) {
                params.push(p);
            }
        }
        let root = self.engine.root().to_string();
        let mut info = |n: &str| {
            self.engine
                .value(&format!("{root}DeviceInfo.{n}"))
                .unwrap_or_default()
        };
        let device_id = DeviceId {
            manufacturer: info("Manufacturer"),
            oui: info("ManufacturerOUI"),
            product_class: info("ProductClass"),
            serial_number: info("SerialNumber"),
        };
        let (event_list, in_flight) = self.state.events.for_inform();
        let fresh_start = event_list
            .iter()
            .any(|e| e.code == events::BOOT || e.code == events::BOOTSTRAP);
        let delivery = Delivery {
            in_flight,
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
            settings.url,
            event_list
                .iter()
                .map(|e| e.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut transport = Transport::new(self.transport_config(&settings)).map_err(|e| {
            self.state.events.failed(&delivery.in_flight);
            e.to_string()
        })?;
        let outcome = loop {
            let inform = Inform {
                device_id: device_id.clone(),
                events: event_list.clone(),
                max_envelopes: 1,
                current_time: schedule::format_datetime(now_unix(), 0),
                retry_count: self.state.retry_count,
                parameters: delivery.params.clone(),
            };
            let p = SessionParams {
                inform,
                version: if ns == version.namespace() {
                    version
                } else {
                    ns_version(ns)
                },
                ns,
                cpe_requests: Vec::new(),
                session_timeout: Some(self.cfg.acs.timeout),
                limits: Default::default(),
                max_exchanges: session::DEFAULT_MAX_EXCHANGES,
            };
            let outcome = self.drive(&mut transport, p, &delivery);
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

    /// Drives one session attempt to its end.
    fn drive(
        &mut self,
        transport: &mut Transport,
        p: SessionParams,
        delivery: &Delivery,
    ) -> session::Outcome {
        let (mut session, mut action) = Session::start(p);
        let mut delivered = false;
        loop {
            action = match action {
                Action::Post(body) => match transport.post(&body) {
                    Ok(reply) => {
                        if matches!(reply.status, 429 | 503) {
                            self.retry_after = reply.retry_after.map(|s| s.min(MAX_RETRY_AFTER));
                        }
                        session.on_reply(reply.status, &reply.body)
                    }
                    Err(e) => session.on_failure(&e.to_string()),
                },
                Action::Execute(req) => {
                    log::info!("ACS request: {}", req.method());
                    let now = now_unix();
                    let resp = {
                        let mut ctl = AgentControl {
                            state: &mut self.state,
                            now,
                        };
                        rpc::execute(&mut self.engine, &mut ctl, &req)
                    };
                    if let crate::soap::msg::CpeResponse::Fault(f) = &resp {
                        log::info!("answered {} with fault {f}", req.method());
                    }
                    // What the ACS changed is persisted before the response is sent.
                    self.save();
                    session.executed(resp)
                }
                Action::Done(outcome) => return outcome,
            };
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
                    .find(|p| p.name.ends_with("ManagementServer.ConnectionRequestURL"))
                {
                    self.state.reported_connection_request_url = p.value.clone();
                }
                if let Some(url) = &delivery.bootstrap_url {
                    self.state.bootstrapped_url = url.clone();
                }
                self.save();
            }
        }
    }

    fn transport_config(&self, s: &Settings) -> TransportConfig {
        let a = &self.cfg.acs;
        TransportConfig {
            url: s.url.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            ca_file: a.ca_file.clone(),
            client_cert: a.client_cert.clone(),
            client_key: a.client_key.clone(),
            connect_timeout: Duration::from_secs(a.timeout.into()),
            timeout: Duration::from_secs(a.timeout.into()),
            max_body: 4 << 20,
            user_agent: concat!("cwmpd/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Queues an event from the loop: a refused event is logged, never fatal. Returns whether a
    /// new event was queued (a single event already pending is not new).
    fn queue(&mut self, code: &str, command_key: &str) -> bool {
        self.add_event(code, command_key).unwrap_or_else(|e| {
            log::error!("cannot queue event {code}: {e}");
            false
        })
    }

    /// Persists from the loop: a failed write is logged and tried again at the next change.
    fn save(&mut self) {
        if let Err(e) = self.persist() {
            log::error!("{e}");
        }
    }

    /// The daemon: runs until a [`Trigger::Stop`] arrives. Only a failure to start (an unusable
    /// store) is returned; everything after that is logged and retried.
    pub fn run(&mut self) -> Result<(), String> {
        self.note_start()?;
        self.start_connreq()?;
        let watch_pending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        watch(
            self.engine.watch_paths(),
            self.tx.clone(),
            watch_pending.clone(),
        );
        let mut next_periodic: Option<i64> = None;
        let mut retry_at: i64 = 0;
        let mut next_poll = now_unix();
        let mut warned_idle = false;
        // When the last session for an active notification started (the throttle's reference).
        let mut last_active: Option<i64> = None;
        // The periodic settings the current plan was made from.
        let mut planned_for = None;
        loop {
            let now = now_unix();
            let s = self.settings();
            // ConnectionRequestURL follows the WAN address; a change is a forced active
            // notification (TR-181 ManagementServer.ConnectionRequestURL): checked now.
            self.follow_connreq(&s, false);
            if std::mem::take(&mut self.url_changed) {
                next_poll = now;
            }
            // Periodic informs (§3.2.1): planned from the settings, re-planned only when they
            // change (an ACS SPV, `cwmpd set`), so other sessions do not push the next one away.
            let plan = (s.periodic_enable, s.periodic_interval, s.periodic_time);
            if planned_for != Some(plan) {
                planned_for = Some(plan);
                next_periodic = None;
            }
            if s.periodic_enable {
                let due = *next_periodic.get_or_insert_with(|| {
                    schedule::next_periodic(now, s.periodic_interval, s.periodic_time)
                });
                if now >= due {
                    // A new event ends a retry backoff: the session is attempted now.
                    if self.queue(events::PERIODIC, "") {
                        retry_at = 0;
                    }
                    next_periodic = Some(schedule::next_periodic(
                        now,
                        s.periodic_interval,
                        s.periodic_time,
                    ));
                }
            } else {
                next_periodic = None;
            }
            // ScheduleInform requests that came due (§A.4.1.4).
            let due: Vec<ScheduledInform> = self
                .state
                .scheduled
                .iter()
                .filter(|x| x.at <= now)
                .cloned()
                .collect();
            if !due.is_empty() {
                self.state.scheduled.retain(|x| x.at > now);
                self.queue(events::SCHEDULED, "");
                for d in due {
                    self.queue(events::M_SCHEDULE_INFORM, &d.command_key);
                }
                retry_at = 0;
                self.save();
            }
            // A `cwmpd set` from the command line while the daemon runs.
            if self.store.changed_on_disk(DATAMODEL_FILE) {
                match self.store.load_existing::<DmState>(DATAMODEL_FILE) {
                    Ok(Some(dm)) => self.engine.replace_state(dm),
                    // Removed or corrupt under a running daemon: its own state is the good
                    // copy (instance numbers must never be handed out twice); write it back.
                    Ok(None) => {
                        if let Err(e) = self.store.save(DATAMODEL_FILE, self.engine.state()) {
                            log::error!("{e}");
                        }
                    }
                    Err(e) => log::error!("{e}"),
                }
            }
            // Value changes: an active notification starts a session (§3.2.1).
            if now >= next_poll {
                next_poll = now + i64::from(self.cfg.datamodel.poll_interval);
                // Values are read anew: the system may have changed since the last look.
                self.engine.invalidate();
                let (_, active) = self.engine.notifications();
                let throttled = last_active
                    .is_some_and(|t| now < t.saturating_add(i64::from(s.active_throttle)));
                if active && !throttled && self.queue(events::VALUE_CHANGE, "") {
                    last_active = Some(now);
                    retry_at = 0;
                }
            }
            if !self.state.events.is_empty() && now >= retry_at {
                if !usable_url(&s.url) || !s.enable_cwmp {
                    // Nothing will serve a pending connection request: later ones are new.
                    self.set_phase(Phase::Idle);
                    if !warned_idle {
                        log::warn!(
                            "events pending but no session is possible: {}",
                            if !usable_url(&s.url) {
                                "no usable ACS URL is configured"
                            } else {
                                "ManagementServer.EnableCWMP is false"
                            }
                        );
                        warned_idle = true;
                    }
                } else {
                    warned_idle = false;
                    if self.run_session().is_err() {
                        let s = self.settings();
                        let wait = schedule::retry_wait(
                            self.state.retry_count.max(1),
                            s.retry_min_wait,
                            s.retry_multiplier,
                            self.random_u64(),
                        )
                        .max(Duration::from_secs(self.retry_after.unwrap_or(0).into()));
                        log::info!("next attempt in {} s", wait.as_secs());
                        retry_at = now_unix() + wait.as_secs() as i64;
                    } else {
                        retry_at = 0;
                    }
                    continue;
                }
            }
            let mut deadline = next_poll;
            if let Some(p) = next_periodic {
                deadline = deadline.min(p);
            }
            if let Some(x) = self.state.scheduled.iter().map(|x| x.at).min() {
                deadline = deadline.min(x);
            }
            if !self.state.events.is_empty() && retry_at > now {
                deadline = deadline.min(retry_at);
            }
            let mut wait = Duration::from_secs(deadline.saturating_sub(now_unix()).max(0) as u64);
            if let Some(cr) = &self.connreq {
                wait = wait.min(cr.until_check());
            }
            let wait = wait.max(Duration::from_millis(200));
            match self.rx.recv_timeout(wait) {
                Ok(Trigger::ConnectionRequest) => {
                    self.queue(events::CONNECTION_REQUEST, "");
                    // A connection request is answered now, whatever the backoff (§3.2.2).
                    retry_at = 0;
                }
                Ok(Trigger::ValuesChanged) => {
                    watch_pending.store(false, std::sync::atomic::Ordering::Release);
                    next_poll = now_unix();
                }
                Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// Watches `paths` (directories) with inotify from a thread of its own and sends
/// [`Trigger::ValuesChanged`] after each burst of changes (a `uci commit` renames a file into
/// place). A path that cannot be watched is logged; polling still covers it.
fn watch(
    paths: Vec<std::path::PathBuf>,
    tx: Sender<Trigger>,
    pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use inotify::{Inotify, WatchMask};
    if paths.is_empty() {
        return;
    }
    let mut ino = match Inotify::init() {
        Ok(i) => i,
        Err(e) => {
            log::warn!("inotify: {e}; changes are found by polling only");
            return;
        }
    };
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM;
    let mut any = false;
    for p in &paths {
        match ino.watches().add(p, mask) {
            Ok(_) => any = true,
            Err(e) => log::warn!("inotify: cannot watch {}: {e}", p.display()),
        }
    }
    if !any {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match ino.read_events_blocking(&mut buf) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::warn!("inotify: {e}; changes are found by polling only");
                        return;
                    }
                }
                // A burst (a uci commit of several packages) makes one check.
                std::thread::sleep(Duration::from_millis(200));
                while let Ok(mut ev) = ino.read_events(&mut buf) {
                    if ev.next().is_none() {
                        break;
                    }
                }
                // One check pending at a time: bursts during a long session do not pile up.
                if !pending.swap(true, std::sync::atomic::Ordering::AcqRel)
                    && tx.send(Trigger::ValuesChanged).is_err()
                {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("inotify thread: {e}");
    }
}

/// What an Inform carries that is settled when its InformResponse arrives.
struct Delivery {
    in_flight: events::InFlight,
    params: Vec<ParameterValue>,
    /// The ACS URL, when the Inform carried `0 BOOTSTRAP`.
    bootstrap_url: Option<String>,
}

/// Whether an ACS URL can be used: http(s) with a host.
fn usable_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.starts_with(':'))
}

/// The agent's side of the RPCs that act on the device (ScheduleInform now; Reboot, FactoryReset
/// and transfers come with their own issue).
struct AgentControl<'a> {
    state: &'a mut AgentState,
    now: i64,
}

impl Control for AgentControl<'_> {
    fn supported(&self) -> &[&'static str] {
        &["ScheduleInform"]
    }

    fn schedule_inform(&mut self, delay_seconds: u32, command_key: &str) -> Result<(), Fault> {
        // §A.4.1.4: DelaySeconds must be greater than zero.
        if delay_seconds == 0 {
            return Err(Fault::InvalidArguments(
                "DelaySeconds must be greater than 0".into(),
                Vec::new(),
            ));
        }
        if command_key.chars().count() > events::MAX_COMMAND_KEY_LEN {
            return Err(Fault::InvalidArguments(
                "CommandKey longer than 32 characters".into(),
                Vec::new(),
            ));
        }
        if self.state.scheduled.len() >= MAX_SCHEDULED {
            return Err(Fault::ResourcesExceeded(
                "too many scheduled informs".into(),
            ));
        }
        self.state.scheduled.push(ScheduledInform {
            at: self.now + i64::from(delay_seconds),
            command_key: command_key.to_string(),
        });
        Ok(())
    }
}

/// The version a fallback namespace speaks.
fn ns_version(ns: CwmpNs) -> CwmpVersion {
    match ns {
        CwmpNs::V1_0 => CwmpVersion::V1_0,
        CwmpNs::V1_1 => CwmpVersion::V1_1,
        _ => CwmpVersion::V1_2,
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
