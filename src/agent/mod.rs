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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ResolvedHooks};
use crate::connreq::{self, listener::Phase, ConnReq};
use crate::cwmp::fault::Fault;
use crate::datamodel::{backend::Backends, DmState, Engine};
use crate::events::{self, Event, EventQueue};
use crate::http::acs::{Transport, TransportConfig};
use crate::http::files as client;
use crate::rpc::{self, Control};
use crate::schedule;
use crate::session::{self, Action, Session, SessionParams};
use crate::soap::msg::{
    AcsRequest, CpeRequest, CpeResponse, CwmpNs, CwmpVersion, DeviceId, Download, FaultStruct,
    Inform, ParameterValue, QueuedTransfer, ScheduleDownload, Upload,
};
use crate::sys::private::PrivateDir;
use crate::sys::process;
use crate::sys::store::Store;
use crate::transfer::{self, hooks, FileKind, FileType, Next, Transfers};

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
    /// The sources (an IPv4 address, an IPv6 /64) whose Connection Requests authenticated, the
    /// most recent first (at most `connreq::KEPT_SOURCES`): trusted again at start, so that an
    /// attacker who fills the failure throttle's table cannot lock the ACS out after a restart.
    #[serde(default)]
    pub trusted_connreq_sources: Vec<String>,
    /// Downloads and Uploads from their request until their TransferComplete is acknowledged.
    #[serde(default)]
    pub transfers: Transfers,
    /// A Reboot the ACS asked for (§A.3.2.10), until the next start reports it.
    #[serde(default)]
    pub reboot: Option<PendingAction>,
    /// A FactoryReset the ACS asked for (§A.4.1.3), until the next start carries it out.
    #[serde(default)]
    pub factory_reset: Option<PendingAction>,
    /// AutonomousTransferComplete reports not yet acknowledged (§A.4.2.2).
    #[serde(default)]
    pub autonomous: Vec<AutonomousTransfer>,
    /// RequestDownload calls not yet answered by the ACS (§A.4.2.1).
    #[serde(default)]
    pub requests: Vec<DownloadRequest>,
    /// DeviceInfo.SoftwareVersion at the last start, to notice a firmware change the ACS did not
    /// ask for.
    #[serde(default)]
    pub software_version: String,
}

/// A Reboot or FactoryReset: journalled when the ACS asks, marked `started` before its hook runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    /// The CommandKeys of the Reboot requests (each gets its `M Reboot`).
    #[serde(default)]
    pub command_keys: Vec<String>,
    /// The hook was started: the next start is the one after it.
    #[serde(default)]
    pub started: bool,
    /// Hook runs that failed.
    #[serde(default)]
    pub tries: u32,
    /// Not tried again before this time.
    #[serde(default)]
    pub next_try: i64,
}

/// An AutonomousTransferComplete to report (§A.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutonomousTransfer {
    pub is_download: bool,
    pub file_type: String,
    #[serde(default)]
    pub transfer_url: String,
    #[serde(default)]
    pub file_size: u32,
    #[serde(default)]
    pub fault_code: u32,
    #[serde(default)]
    pub fault_string: String,
}

/// A RequestDownload asked for with `cwmpd request-download` (§A.4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRequest {
    /// The request file it came from (so a file picked up twice is queued once).
    pub name: String,
    pub file_type: String,
    #[serde(default)]
    pub args: Vec<FileTypeArg>,
}

/// One ArgStruct of a RequestDownload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTypeArg {
    pub name: String,
    pub value: String,
}

/// Where `cwmpd request-download` leaves its requests for the daemon (under the storage dir).
pub const REQUESTS_DIR: &str = "requests";
/// Most RequestDownload calls kept at once.
const MAX_REQUESTS: usize = 16;
/// Most ArgStructs of one RequestDownload, and their longest name and value.
pub const MAX_REQUEST_ARGS: usize = 16;
pub const MAX_REQUEST_ARG_LEN: usize = 256;
/// Runs of a failing Reboot/FactoryReset hook before the request is given up.
const MAX_HOOK_TRIES: u32 = 3;
/// Seconds between two runs of a failing Reboot/FactoryReset hook.
const HOOK_RETRY_WAIT: i64 = 60;

/// The result of the sessions since `time`: the first session that ended this way (kept
/// unchanged while later sessions end the same way, so that they write nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSession {
    /// Unix time the first session with this result ended.
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
    /// A transfer's fetch, upload or apply finished in its thread.
    Transfer(JobDone),
    /// `cwmpd request-download` left a request.
    Requests,
    /// Stop the loop (tests, SIGTERM, SIGINT).
    Stop,
    /// Re-read the configuration (SIGHUP): the loop returns [`Exit::Reload`] once no transfer
    /// step is running, and the daemon starts again on the new file.
    Reload,
}

/// What a transfer thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDone {
    pub id: u64,
    /// Which step finished.
    pub apply: bool,
    pub result: Result<(), client::Failure>,
}

/// The effective ManagementServer settings, read back from the data model after every change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    url: String,
    username: String,
    password: String,
    periodic_enable: bool,
    periodic_interval: u32,
    /// PeriodicInformTime in Unix milliseconds, its fraction kept; `None` for the unknown time.
    periodic_time: Option<i64>,
    retry_min_wait: u32,
    retry_multiplier: u32,
    /// `ManagementServer.EnableCWMP`: false stops every session (TR-181).
    enable_cwmp: bool,
    /// `ManagementServer.DefaultActiveNotificationThrottle`: minimum seconds from the end of the
    /// last successfully completed session (of any kind) to a session started only for an
    /// active notification.
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
    /// The hooks in force (config, else the platform's defaults).
    hooks: ResolvedHooks,
    /// When a Reboot/FactoryReset hook returned 0: the agent holds until it is stopped.
    hold_since: Option<i64>,
    /// Where `cwmpd request-download` leaves requests (opened by the daemon).
    requests: Option<Store>,
    /// The kernel boot id changed since the last start (`1 BOOT` is queued).
    booted: bool,
}

/// The outcome of one session run by [`Agent::run_session`].
pub type SessionResult = Result<(), String>;

impl Agent {
    /// Builds the agent from a validated config: opens the store, loads the data model and the
    /// persisted state.
    pub fn new(mut cfg: Config) -> Result<Agent, String> {
        if cfg.device.serial_number.is_empty() {
            cfg.device.serial_number = crate::sys::os::default_serial_number();
        }
        if cfg.device.software_version.is_empty() {
            cfg.device.software_version = env!("CARGO_PKG_VERSION").to_string();
        }
        let model = cfg.model().ok_or("invalid data_model")?;
        let schema = cfg.datamodel.schema(model).map_err(|e| e.to_string())?;
        let mut store = Store::open(&cfg.storage.dir).map_err(|e| e.to_string())?;
        let mut state: AgentState = store.load(AGENT_FILE).map_err(|e| e.to_string())?;
        let dm: DmState = store.load(DATAMODEL_FILE).map_err(|e| e.to_string())?;
        // A state file is trusted no more than the ACS: the same bound as ScheduleInform's.
        state.scheduled.truncate(MAX_SCHEDULED);
        let backends = Backends::with_platform(cfg.agent_defaults(), &cfg.datamodel.platform());
        let engine = Engine::new(schema, backends, dm);
        let (tx, rx) = mpsc::channel();
        let hooks = cfg.hooks.resolve(cfg.datamodel.openwrt());
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
            hooks,
            hold_since: None,
            requests: None,
            booted: false,
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
        let s = agent.settings();
        let url = agent.provisional_url();
        agent.show_connreq_url(&url, s.connection_request.enabled);
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
        if let Some(cr) = &self.connreq {
            cr.trust_sources(&self.state.trusted_connreq_sources);
        }
        // With an empty ConnectionRequestPassword the listener stays closed (and says so).
        let s = self.settings();
        self.follow_connreq(&s, true);
        self.url_changed = false;
        // The listener's URL from now on, even when it is the empty one it starts from.
        if let Some(url) = self.connreq.as_ref().map(|c| c.url().to_string()) {
            self.engine
                .backends_mut()
                .set_runtime("connection_request.url", &url);
        }
        // Notification bookkeeping is RAM: a URL that moved while the agent was down is told
        // here (a forced active notification, TR-181), else the ACS could not reach the CPE.
        let url = self.connreq.is_some().then(|| self.shown_connreq_url());
        if let Some(url) = url {
            let known = self.state.reported_connection_request_url.clone();
            if !known.is_empty() && known != url && self.queue(events::VALUE_CHANGE, "") {
                // Not the URLs themselves: their path is a secret.
                log::info!("ConnectionRequestURL changed since it was last reported");
                self.save();
            }
        }
        Ok(())
    }

    /// ConnectionRequestURL before the listener runs (empty while no password is set: nothing
    /// will serve it).
    fn provisional_url(&mut self) -> String {
        let s = self.settings();
        if s.connection_request.password.is_empty() {
            return String::new();
        }
        connreq::provisional_url(
            &self.cfg.connection_request,
            &self.state.connection_request_path,
            &s.url,
        )
    }

    /// Lets the listener follow the settings; when ConnectionRequestURL changed, the agent
    /// backend reports the new one and `url_changed` is set.
    fn follow_connreq(&mut self, s: &Settings, recheck: bool) {
        let Some(cr) = &mut self.connreq else {
            return;
        };
        cr.update(&s.connection_request, recheck);
        let url = cr.url().to_string();
        if self.show_connreq_url(&url, s.connection_request.enabled) {
            self.url_changed = true;
        }
    }

    /// Sets ConnectionRequestURL in the data model: `url`, or empty while connection requests
    /// are disabled (TR-181 HTTPConnectionRequestEnable: "ConnectionRequestURL MUST be set to
    /// empty"; in GetParameterValues and in the Inform alike). Returns whether it changed.
    fn show_connreq_url(&mut self, url: &str, enabled: bool) -> bool {
        let shown = if enabled { url } else { "" };
        if self.shown_connreq_url() == shown {
            return false;
        }
        self.engine
            .backends_mut()
            .set_runtime("connection_request.url", shown);
        true
    }

    /// ConnectionRequestURL as the data model shows it now.
    fn shown_connreq_url(&mut self) -> String {
        self.engine
            .backends_mut()
            .agent_default("connection_request.url")
            .unwrap_or_default()
            .to_string()
    }

    fn set_phase(&self, phase: Phase) {
        if let Some(cr) = &self.connreq {
            cr.set_phase(phase);
        }
    }

    /// Whether a connection request joined the running session since the last look.
    fn take_joined(&self) -> bool {
        self.connreq.as_ref().is_some_and(ConnReq::take_joined)
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
        let boot = crate::sys::os::boot_id().unwrap_or_default();
        let booted = boot.is_empty() || boot != self.state.boot_id;
        if booted {
            self.state.events.rebooted();
            self.add_event(events::BOOT, "")?;
            self.state.boot_id = boot;
        }
        self.booted = booted;
        self.note_url()?;
        self.persist()
    }

    /// The daemon's start: a FactoryReset carried out, `1 BOOT`/`0 BOOTSTRAP`, then what the
    /// records of the previous run mean now ([`Agent::recover`]). Only the daemon does this: a
    /// `cwmpd inform` beside a running daemon must not touch its transfers.
    fn start_daemon(&mut self) -> Result<(), String> {
        if self.state.factory_reset.as_ref().is_some_and(|f| f.started) {
            // §A.4.1.3: the reset hook ran (OpenWrt's firstboot wipes the storage directory
            // itself). What the agent kept goes too, so it starts as new: `0 BOOTSTRAP` (no URL
            // acknowledged one) and `1 BOOT` (no boot id known). Idempotent if cut midway: the
            // mark goes with the agent file, written last.
            log::warn!("factory reset: forgetting everything the ACS set");
            self.state = AgentState {
                connection_request_path: connreq::url::random_path(&self.random()?),
                ..AgentState::default()
            };
            self.engine.factory_reset();
            match self.transfer_dir() {
                Ok(dir) => clean_transfer_dir(&dir, &self.state.transfers),
                Err(e) => log::error!("{e}"),
            }
            let url = self.provisional_url();
            self.engine
                .backends_mut()
                .set_runtime("connection_request.url", &url);
        }
        self.note_start()?;
        self.recover(self.booted)?;
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
                time: now_unix(),
                ok: result.is_ok(),
                result: text,
            });
        }
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
        // The wall-clock budget of the whole attempt, version fallbacks included: no ACS holds
        // the one loop longer (`[acs] session_limit`).
        let limit = self.cfg.acs.session_limit;
        let deadline = Instant::now() + Duration::from_secs(limit.into());
        // The URL may have changed outside a session (`cwmpd set`, a config reload).
        self.note_url()?;
        let settings = self.settings();
        if !usable_url(&settings.url) {
            return Err(format!(
                "no usable ACS URL (ManagementServer.URL is {:?})",
                transfer::redact_url(&settings.url)
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
        // The CPE's own requests, and the events they need in this Inform (§3.7.1.5).
        self.ensure_cpe_events();
        let (cpe_requests, cpe_items) = self.cpe_requests();
        let (event_list, in_flight) = self.state.events.for_inform();
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
            transfer::redact_url(&settings.url),
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
        transport.set_deadline(Some(deadline));
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
                    ns.standard().version()
                },
                ns,
                cpe_requests: cpe_requests.clone(),
                session_timeout: Some(self.cfg.acs.timeout),
                limits: Default::default(),
                max_exchanges: session::DEFAULT_MAX_EXCHANGES,
            };
            let outcome = self.drive(&mut transport, p, &delivery, (deadline, limit));
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
    fn drive(
        &mut self,
        transport: &mut Transport,
        p: SessionParams,
        delivery: &Delivery,
        limit: (Instant, u32),
    ) -> session::Outcome {
        let (mut session, mut action) = Session::start(p);
        let mut delivered = false;
        let mut settled = 0;
        let expired = || Instant::now() >= limit.0;
        loop {
            action = match action {
                // Every POST starts within the limit, and the transport cuts it at the limit.
                Action::Post(_) if expired() => session.time_limit(limit.1),
                Action::Post(body) => match transport.post(&body) {
                    Ok(reply) => {
                        if matches!(reply.status, 429 | 503) {
                            self.retry_after = reply.retry_after.map(|s| s.min(MAX_RETRY_AFTER));
                        }
                        session.on_reply(reply.status, &reply.body)
                    }
                    Err(_) if expired() => session.time_limit(limit.1),
                    Err(e) => session.on_failure(&e.to_string()),
                },
                Action::Execute(req) => {
                    log::info!("ACS request: {}", req.method());
                    // Rounded up: what the ACS delays by DelaySeconds never fires early.
                    let now = unix_after(Duration::ZERO);
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

    /// The daemon: runs until a [`Trigger::Stop`] arrives, or a [`Trigger::Reload`] and no
    /// transfer step runs. Only a failure to start (an unusable store, another daemon on the
    /// same storage directory) is returned; everything after that is logged and retried.
    ///
    /// The state lock is held for each loop turn and its session, and released while the loop
    /// waits: a `cwmpd set` runs between two turns, and the turn after it reads what it wrote.
    pub fn run(&mut self) -> Result<Exit, String> {
        let daemon_lock = self.store.lock_daemon().map_err(|e| e.to_string())?;
        let mut state_lock = Some(self.lock_state());
        self.start_daemon()?;
        self.start_connreq()?;
        let watch_pending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        watch(
            self.engine.watch_paths(),
            self.tx.clone(),
            watch_pending.clone(),
            Trigger::ValuesChanged,
        );
        // `cwmpd request-download` leaves its requests in a directory of their own.
        let requests_pending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        match Store::open(&self.cfg.storage.dir.join(REQUESTS_DIR)) {
            Ok(store) => {
                watch(
                    vec![store.dir().to_path_buf()],
                    self.tx.clone(),
                    requests_pending.clone(),
                    Trigger::Requests,
                );
                self.requests = Some(store);
            }
            Err(e) => log::error!("{e}; request-download is not available"),
        }
        self.pick_up_requests();
        // In Unix milliseconds: PeriodicInformTime may carry a fraction (schedule::next_periodic).
        let mut next_periodic: Option<i64> = None;
        let mut retry_at: i64 = 0;
        let mut next_poll = now_unix();
        let mut warned_idle = false;
        // When the last successfully completed session ended, whatever it carried: the
        // reference of DefaultActiveNotificationThrottle (TR-181; RAM only, as it allows).
        let mut last_completed: Option<i64> = None;
        // The periodic settings the current plan was made from.
        let mut planned_for = None;
        let mut reload = false;
        loop {
            if state_lock.is_none() {
                state_lock = Some(self.lock_state());
            }
            if reload && !self.state.transfers.busy() {
                log::info!("re-reading the configuration");
                drop(daemon_lock);
                return Ok(Exit::Reload);
            }
            let now = now_unix();
            let s = self.settings();
            // ConnectionRequestURL follows the WAN address; a change is a forced active
            // notification (TR-181 ManagementServer.ConnectionRequestURL): checked now.
            self.follow_connreq(&s, false);
            if std::mem::take(&mut self.url_changed) {
                next_poll = now;
            }
            // Reboot/FactoryReset after the session that asked; the wait for the device to go
            // down; the transfers that are due (between sessions only).
            let hold = self.device_step(now);
            let transfer_wake = if hold { None } else { self.transfer_step(now) };
            // Periodic informs (§3.2.1): planned from the settings, re-planned only when they
            // change (an ACS SPV, `cwmpd set`), so other sessions do not push the next one away.
            let plan = (s.periodic_enable, s.periodic_interval, s.periodic_time);
            if planned_for != Some(plan) {
                planned_for = Some(plan);
                next_periodic = None;
            }
            if s.periodic_enable {
                let now_ms = now_unix_ms();
                let due = *next_periodic.get_or_insert_with(|| {
                    schedule::next_periodic(now_ms, s.periodic_interval, s.periodic_time)
                });
                if now_ms >= due {
                    // A new event ends a retry backoff: the session is attempted now.
                    if self.queue(events::PERIODIC, "") {
                        retry_at = 0;
                    }
                    next_periodic = Some(schedule::next_periodic(
                        now_ms,
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
                self.pick_up_requests();
                // Values are read anew: the system may have changed since the last look.
                self.engine.invalidate();
                let (_, active) = self.engine.notifications();
                // A session only for an active notification waits until the throttle has
                // passed since the last completed session; the change stays pending (it is
                // compared with the last reported value) and goes with any earlier session.
                let until = last_completed
                    .filter(|_| s.active_throttle > 0)
                    .map(|t| t.saturating_add(i64::from(s.active_throttle)))
                    .filter(|&until| now < until);
                match until {
                    Some(until) if active => next_poll = next_poll.min(until),
                    _ => {
                        if active && self.queue(events::VALUE_CHANGE, "") {
                            retry_at = 0;
                        }
                    }
                }
            }
            if !hold && !self.state.events.is_empty() && now >= retry_at {
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
                    let result = self.run_session();
                    if result.is_ok() {
                        // Rounded up: the throttle is never shorter than asked.
                        last_completed = Some(unix_after(Duration::ZERO));
                    }
                    if result.is_err() {
                        let s = self.settings();
                        let wait = schedule::retry_wait(
                            self.state.retry_count.max(1),
                            s.retry_min_wait,
                            s.retry_multiplier,
                            self.random_u64(),
                        )
                        .max(Duration::from_secs(self.retry_after.unwrap_or(0).into()));
                        retry_at = unix_after(wait);
                        log::info!("next attempt in {} s", retry_at - now_unix());
                    } else {
                        retry_at = 0;
                    }
                    continue;
                }
            }
            let mut deadline = next_poll;
            if let Some(x) = self.state.scheduled.iter().map(|x| x.at).min() {
                deadline = deadline.min(x);
            }
            if !self.state.events.is_empty() && retry_at > now {
                deadline = deadline.min(retry_at);
            }
            if let Some(t) = transfer_wake {
                deadline = deadline.min(t);
            }
            if let Some(since) = self.hold_since {
                deadline = deadline.min(since + i64::from(self.cfg.transfer.reboot_timeout) + 1);
            }
            let mut wait = until_unix(deadline);
            if let Some(p) = next_periodic {
                wait = wait.min(until_unix_ms(p));
            }
            if let Some(cr) = &self.connreq {
                wait = wait.min(cr.until_check());
            }
            let wait = wait.max(Duration::from_millis(200));
            drop(state_lock.take());
            let got = self.rx.recv_timeout(wait);
            state_lock = Some(self.lock_state());
            match got {
                Ok(Trigger::ConnectionRequest) => {
                    self.keep_trusted_sources();
                    self.queue(events::CONNECTION_REQUEST, "");
                    // A connection request is answered now, whatever the backoff (§3.2.2).
                    retry_at = 0;
                }
                Ok(Trigger::ValuesChanged) => {
                    watch_pending.store(false, std::sync::atomic::Ordering::Release);
                    next_poll = now_unix();
                }
                Ok(Trigger::Transfer(done)) => self.job_done(done),
                Ok(Trigger::Requests) => {
                    requests_pending.store(false, std::sync::atomic::Ordering::Release);
                    self.pick_up_requests();
                }
                Ok(Trigger::Reload) => {
                    if self.state.transfers.busy() {
                        log::info!("SIGHUP: the configuration is re-read when the transfer ends");
                    }
                    reload = true;
                }
                Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    log::info!("stopping");
                    drop(daemon_lock);
                    return Ok(Exit::Stop);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// Why [`Agent::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped (SIGTERM, SIGINT, [`Trigger::Stop`]).
    Stop,
    /// SIGHUP: start again with the configuration file read anew.
    Reload,
}

/// One of the CPE's own requests in a session, so that an acknowledged one is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CpeItem {
    Transfer(u64),
    Autonomous,
    Request(String),
}

impl Agent {
    /// What the records of the previous run mean now (a reboot, a kill, a power cut happened).
    /// `booted`: the kernel boot id changed (then `1 BOOT` is queued already).
    fn recover(&mut self, booted: bool) -> Result<(), String> {
        let now = now_unix();
        // The start after a Reboot's hook ran (§A.3.2.10): `1 BOOT` and `M Reboot` with each
        // CommandKey, written together with the record's removal: exactly once. A restart of
        // the agent alone counts too (the hook was started: the device is, or was, going down).
        if let Some(r) = self.state.reboot.take() {
            if r.started {
                if !booted {
                    self.state.events.rebooted();
                    self.add_event(events::BOOT, "")?;
                }
                for k in &r.command_keys {
                    self.add_event(events::M_REBOOT, k)?;
                }
                log::info!("started after the Reboot hook ran");
            } else {
                // Asked for but never carried out: still owed.
                self.state.reboot = Some(r);
            }
        }
        let hooks = self.hooks.clone();
        // A directory that cannot be made private counts as empty: its files are not trusted.
        let dir = self.transfer_dir().map_err(|e| log::error!("{e}")).ok();
        let present = |id: u64, ext: &str| {
            dir.as_ref()
                .is_some_and(|d| d.open_file(&transfer_file(id, ext)).is_ok())
        };
        let firmware = self.state.transfers.recover(
            now,
            |k| apply_reboots(&hooks, k),
            |id| present(id, "file"),
            |id| present(id, "started"),
        );
        if let Some(dir) = &dir {
            clean_transfer_dir(dir, &self.state.transfers);
            // A whole file kept for its apply, written by an older version: 0600 now.
            crate::sys::private::make_private(dir.path());
        }
        // A firmware the ACS did not install (§A.4.2.2 AutonomousTransferComplete): the version
        // changed and no Download of ours explains it.
        let root = self.engine.root().to_string();
        let sw = self
            .engine
            .value(&format!("{root}DeviceInfo.SoftwareVersion"))
            .unwrap_or_default();
        let known = std::mem::replace(&mut self.state.software_version, sw.clone());
        if !known.is_empty() && known != sw && firmware == 0 {
            log::info!("software version changed from {known} to {sw} without a Download");
            if self.state.autonomous.len() < MAX_SCHEDULED {
                self.state.autonomous.push(AutonomousTransfer {
                    is_download: true,
                    file_type: "1 Firmware Upgrade Image".into(),
                    transfer_url: String::new(),
                    file_size: 0,
                    fault_code: 0,
                    fault_string: String::new(),
                });
            }
        }
        self.ensure_cpe_events();
        Ok(())
    }

    /// Queues the events the CPE's own pending requests need (§3.7.1.5): `7 TRANSFER COMPLETE`
    /// and one `M Download`/`M ScheduleDownload`/`M Upload` per completed transfer,
    /// `10 AUTONOMOUS TRANSFER COMPLETE`, `9 REQUEST DOWNLOAD`. Called whenever one is added and
    /// before every Inform, so a session that ended before the request was acknowledged is
    /// followed by one that carries its events again.
    fn ensure_cpe_events(&mut self) {
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
            .find(|c| *c == e.code)
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
    fn cpe_requests(&self) -> (Vec<CpeRequest>, Vec<CpeItem>) {
        let mut reqs = Vec::new();
        let mut items = Vec::new();
        for t in self.state.transfers.completed() {
            reqs.push(CpeRequest::TransferComplete {
                command_key: t.command_key.clone(),
                fault: t.fault(),
                start_time: time_text(t.start_time),
                complete_time: time_text(t.complete_time),
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
                start_time: time_text(transfer::UNKNOWN_TIME),
                complete_time: time_text(transfer::UNKNOWN_TIME),
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
    fn settle(&mut self, item: &CpeItem) {
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

    /// Reboot and FactoryReset (§A.3.2.10, §A.4.1.3) once the session that asked has ended, and
    /// the wait for the device to go down after a hook that reboots it. Returns whether the agent
    /// holds (no session, no transfer).
    fn device_step(&mut self, now: i64) -> bool {
        let timeout = i64::from(self.cfg.transfer.reboot_timeout);
        let mut changed = false;
        for t in &mut self.state.transfers.list {
            if t.state == transfer::State::AwaitingReboot && now > t.since.saturating_add(timeout) {
                log::error!(
                    "the device did not restart within {timeout} s after the apply hook of {:?}",
                    t.command_key
                );
                t.finish(
                    now,
                    9010,
                    format!("the device did not restart within {timeout} s after the apply hook"),
                );
                changed = true;
                // Whatever the hook did to the firmware, the ACS asked for it: no
                // AutonomousTransferComplete for it at the next start.
                if t.kind() == FileKind::Firmware {
                    self.state.software_version.clear();
                }
            }
        }
        if changed {
            self.ensure_cpe_events();
            self.save();
        }
        if let Some(since) = self.hold_since {
            if now <= since.saturating_add(timeout) {
                return true;
            }
            log::error!("the device did not restart within {timeout} s after the hook");
            self.hold_since = None;
            for a in [&mut self.state.factory_reset, &mut self.state.reboot] {
                if let Some(p) = a.as_mut().filter(|p| p.started) {
                    p.started = false;
                    p.tries += 1;
                    p.next_try = now + HOOK_RETRY_WAIT;
                    if p.tries >= MAX_HOOK_TRIES {
                        log::error!(
                            "the hook did not restart the device {} times; giving up",
                            p.tries
                        );
                        *a = None;
                    }
                }
            }
            self.save();
        }
        if self.state.transfers.awaiting_reboot() {
            return true;
        }
        // Never while a transfer's file is moving or being installed (a reboot in the middle of
        // a sysupgrade would brick the device): after it.
        if self.state.transfers.busy() {
            return false;
        }
        // A FactoryReset first (it reboots too), else a Reboot.
        for reset in [true, false] {
            let (what, line) = if reset {
                ("FactoryReset", self.hooks.factory_reset.clone())
            } else {
                ("Reboot", self.hooks.reboot.clone())
            };
            let slot = if reset {
                &mut self.state.factory_reset
            } else {
                &mut self.state.reboot
            };
            let Some(p) = slot.as_mut() else {
                continue;
            };
            if p.started || now < p.next_try {
                continue;
            }
            // Marked before the hook runs: a cut during it is the reboot it was meant to be.
            p.started = true;
            let key = p.command_keys.first().cloned().unwrap_or_default();
            self.save();
            let call = hooks::Call {
                command_key: &key,
                ..Default::default()
            };
            let hook_timeout = Duration::from_secs(self.cfg.transfer.hook_timeout.into());
            let result = if line.trim().is_empty() {
                Err(hooks::HookError {
                    code: 9002,
                    message: format!("no {what} hook is configured"),
                })
            } else {
                hooks::run(&line, &call, hook_timeout, 9002)
            };
            match result {
                Ok(()) => {
                    log::info!("{what} hook done; waiting for the device to restart");
                    self.hold_since = Some(now_unix());
                    return true;
                }
                Err(e) => {
                    let slot = if reset {
                        &mut self.state.factory_reset
                    } else {
                        &mut self.state.reboot
                    };
                    if let Some(p) = slot.as_mut() {
                        p.started = false;
                        p.tries += 1;
                        p.next_try = now + HOOK_RETRY_WAIT;
                        if p.tries >= MAX_HOOK_TRIES {
                            log::error!(
                                "{what} failed {} times, giving up: {}",
                                p.tries,
                                e.message
                            );
                            *slot = None;
                        } else {
                            log::error!("{what} failed (try {}): {}", p.tries, e.message);
                        }
                    }
                    self.save();
                }
            }
        }
        false
    }

    /// Starts what is due among the transfers (never during a session: the loop calls this
    /// between sessions). Returns when to look again.
    fn transfer_step(&mut self, now: i64) -> Option<i64> {
        let before = self.state.transfers.completed().count();
        let next = self.state.transfers.next(now);
        let mut changed = self.state.transfers.completed().count() != before;
        let wake = match next {
            Next::Wait(t) => t,
            Next::Start(id) => {
                self.start_job(id, false, now);
                changed = true;
                None
            }
            Next::Apply(id) => {
                self.start_job(id, true, now);
                changed = true;
                None
            }
        };
        if changed {
            self.ensure_cpe_events();
            self.save();
        }
        wake
    }

    /// Marks and persists the transfer's next step, then runs it in a thread of its own, which
    /// reports with [`Trigger::Transfer`].
    fn start_job(&mut self, id: u64, apply: bool, now: i64) {
        // Opened and checked before every job: private to the agent, whatever was there.
        let dir = self.transfer_dir();
        let hooks = self.hooks.clone();
        let Some(t) = self.state.transfers.get_mut(id) else {
            return;
        };
        let dir = match dir {
            Ok(d) => d,
            Err(e) => {
                let code = if t.origin.is_download() { 9010 } else { 9011 };
                t.finish(now, code, e);
                return;
            }
        };
        let prev = t.clone();
        if apply {
            t.state = transfer::State::Applying;
        } else {
            t.state = transfer::State::Fetching;
            t.attempts += 1;
            t.start_time = now;
        }
        let t = t.clone();
        // Written before the step begins; a step that cannot be recorded does not begin (it is
        // tried again after retry_interval).
        if let Err(e) = self.persist() {
            log::error!("{e}; transfer {:?} postponed", t.command_key);
            if let Some(r) = self.state.transfers.get_mut(id) {
                *r = transfer::Transfer {
                    not_before: now.saturating_add(self.cfg.transfer.retry_interval.into()),
                    ..prev
                };
            }
            return;
        }
        let hook_timeout = Duration::from_secs(self.cfg.transfer.hook_timeout.into());
        let cfg = self.client_config();
        let method = if self.cfg.transfer.upload_method == "POST" {
            client::UploadMethod::Post
        } else {
            client::UploadMethod::Put
        };
        let kind = t.kind();
        log::info!(
            "{} {} {:?} ({}) attempt {}",
            if apply { "applying" } else { "starting" },
            match t.origin {
                transfer::Origin::Download => "Download",
                transfer::Origin::ScheduleDownload => "ScheduleDownload",
                transfer::Origin::Upload => "Upload",
            },
            t.command_key,
            t.file_type,
            t.attempts
        );
        let job = move || -> Result<(), client::Failure> {
            let fail = |code: u32, message: String| client::Failure {
                code,
                message,
                retryable: false,
            };
            let file_name = transfer_file(t.id, "file");
            let file = dir.join(&file_name);
            if apply {
                let line = apply_hook(&hooks, kind, &t.file_type);
                if line.is_empty() {
                    return Err(fail(9010, format!("no hook applies {:?}", t.file_type)));
                }
                // The hook gets a path nobody else can rename or rewrite: the directory is
                // still the private one opened, and the file in it is a regular file.
                if let Err(e) = dir
                    .check()
                    .and_then(|()| dir.open_file(&file_name).map(drop))
                {
                    return Err(fail(
                        9010,
                        format!("{} is not the file downloaded: {e}", file.display()),
                    ));
                }
                let call = hooks::Call {
                    file: Some(&file),
                    target: &t.target_file_name,
                    file_type: &t.file_type,
                    instance: None,
                    command_key: &t.command_key,
                };
                // The mark `recover` tells a started hook by (a hook that reboots may never
                // return).
                if let Err(e) = dir.create(&transfer_file(t.id, "started")) {
                    return Err(fail(9010, e.to_string()));
                }
                return hooks::run(line, &call, hook_timeout, 9010)
                    .map_err(|e| fail(e.code, e.message));
            }
            if !t.origin.is_download() {
                let up_name = transfer_file(t.id, "up");
                let up = dir.join(&up_name);
                // The produce hook writes a new file: nothing left from before is sent.
                if let Err(e) = dir.remove(&up_name) {
                    return Err(fail(9011, e.to_string()));
                }
                let line = produce_hook(&hooks, kind);
                let instance = FileType::upload(&t.file_type).and_then(|f| f.instance);
                let call = hooks::Call {
                    file: Some(&up),
                    target: "",
                    file_type: &t.file_type,
                    instance,
                    command_key: &t.command_key,
                };
                let r = hooks::run(line, &call, hook_timeout, 9011)
                    .map_err(|e| fail(e.code, e.message))
                    .and_then(|()| {
                        dir.check()
                            .map_err(|e| fail(9011, e.to_string()))
                            .and_then(|()| {
                                client::upload(&cfg, &t.url, &t.username, &t.password, method, &up)
                            })
                    });
                let _ = dir.remove(&up_name);
                return r;
            }
            let expected = (t.file_size > 0).then_some(u64::from(t.file_size));
            let free = client::free_space(dir.path());
            // Without a FileSize, a quarter of the free space stays free (the directory is
            // RAM on a router).
            let mut cfg = cfg;
            cfg.max_download = free.map(|f| f - f / 4);
            if let (Some(size), Some(free)) = (expected, free) {
                if size > free {
                    return Err(fail(
                        9010,
                        format!(
                            "the file ({size} bytes) does not fit in {} ({free} bytes free)",
                            dir.path().display()
                        ),
                    ));
                }
            }
            let part_name = transfer_file(t.id, "part");
            let part = dir.join(&part_name);
            let r = dir
                .create(&part_name)
                .map_err(|e| fail(9010, e.to_string()))
                .and_then(|dest| {
                    client::download_to(
                        &cfg,
                        &t.url,
                        &t.username,
                        &t.password,
                        dest,
                        &part,
                        expected,
                    )
                })
                .and_then(|_| {
                    dir.rename(&part_name, &file_name)
                        .map_err(|e| fail(9010, e.to_string()))
                });
            if r.is_err() {
                let _ = dir.remove(&part_name);
            }
            r
        };
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("transfer".into())
            .spawn(move || {
                // A panic in the transfer code must not leave the record marked as running
                // with no thread behind it: it becomes a retryable internal error.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                    .unwrap_or_else(|_| {
                        Err(client::Failure {
                            code: 9002,
                            message: "internal error in the transfer thread".into(),
                            retryable: true,
                        })
                    });
                let _ = tx.send(Trigger::Transfer(JobDone { id, apply, result }));
            });
        if let Err(e) = spawned {
            self.job_done(JobDone {
                id,
                apply,
                result: Err(client::Failure {
                    code: 9002,
                    message: format!("cannot start the transfer thread: {e}"),
                    retryable: true,
                }),
            });
        }
    }

    /// A transfer thread finished a step: the record moves on and is persisted.
    fn job_done(&mut self, done: JobDone) {
        let now = now_unix();
        let retry_interval = self.cfg.transfer.retry_interval;
        let (reboots, kind) = {
            let Some(t) = self.state.transfers.get(done.id) else {
                return;
            };
            (apply_reboots(&self.hooks, t.kind()), t.kind())
        };
        let Some(t) = self.state.transfers.get_mut(done.id) else {
            return;
        };
        let key = t.command_key.clone();
        match (done.apply, done.result) {
            (false, Ok(())) if t.origin.is_download() => {
                log::info!("{key:?}: file downloaded; applying it next");
                t.state = transfer::State::Fetched;
            }
            (false, Ok(())) => {
                log::info!("{key:?}: upload done");
                t.finish(now, 0, "");
            }
            (false, Err(f)) => {
                log::warn!("{key:?}: transfer failed with {}: {}", f.code, f.message);
                self.state.transfers.failed(
                    done.id,
                    now,
                    f.code,
                    &f.message,
                    f.retryable,
                    retry_interval,
                );
            }
            (true, Ok(())) if reboots => {
                log::info!("{key:?}: applied; waiting for the device to restart");
                t.state = transfer::State::AwaitingReboot;
                t.since = now;
            }
            (true, Ok(())) => {
                log::info!("{key:?}: applied");
                t.finish(now, 0, "");
            }
            (true, Err(f)) => {
                log::warn!("{key:?}: apply failed with {}: {}", f.code, f.message);
                t.finish(now, f.code, f.message);
            }
        }
        let finished = self
            .state
            .transfers
            .get(done.id)
            .is_none_or(|t| t.state == transfer::State::Done);
        if done.apply && finished && kind == FileKind::Firmware {
            // The ACS asked for this firmware: no AutonomousTransferComplete for the version it
            // brought.
            self.state.software_version.clear();
        }
        self.ensure_cpe_events();
        // Written before the files go: a cut in between finds the record done, not an apply
        // whose file vanished.
        self.save();
        if done.apply && finished {
            match self.transfer_dir() {
                Ok(dir) => {
                    let _ = dir.remove(&transfer_file(done.id, "file"));
                    let _ = dir.remove(&transfer_file(done.id, "started"));
                }
                Err(e) => log::error!("{e}"),
            }
        }
    }

    /// Keeps the Connection Request sources that authenticated (written only when the set
    /// changed, not when the same sources alternate: no write per Connection Request).
    fn keep_trusted_sources(&mut self) {
        let Some(list) = self.connreq.as_ref().map(ConnReq::trusted_sources) else {
            return;
        };
        let sorted = |l: &[String]| {
            let mut v = l.to_vec();
            v.sort();
            v
        };
        if sorted(&list) != sorted(&self.state.trusted_connreq_sources) {
            self.state.trusted_connreq_sources = list;
            self.save();
        }
    }

    /// The state lock for a loop turn of the daemon; one that cannot be taken (the lock file
    /// cannot be opened) is logged, and the turn runs without it.
    fn lock_state(&self) -> Option<crate::sys::store::StateLock> {
        self.store
            .lock_state(None)
            .map_err(|e| log::error!("{e}"))
            .ok()
    }

    /// Claims the storage directory for a session run outside the daemon (`cwmpd inform`): it
    /// fails when a daemon runs on it (two agents must not drive sessions and write the same
    /// state).
    pub fn lock_daemon(&self) -> Result<crate::sys::store::DaemonLock, String> {
        self.store.lock_daemon().map_err(|e| e.to_string())
    }

    /// The transfer directory, opened as a private directory (created 0700; a symlink or a
    /// directory of another owner moved aside and replaced).
    fn transfer_dir(&self) -> Result<PrivateDir, String> {
        PrivateDir::open(&self.cfg.transfer.dir).map_err(|e| {
            format!(
                "transfer directory {}: {e}",
                self.cfg.transfer.dir.display()
            )
        })
    }

    /// The file server client's settings: the ACS connection's TLS settings (§3.4.3).
    fn client_config(&self) -> client::ClientConfig {
        let a = &self.cfg.acs;
        client::ClientConfig {
            tls: a.tls(),
            timeout: Duration::from_secs(self.cfg.transfer.timeout.into()),
            user_agent: concat!("cwmpd/", env!("CARGO_PKG_VERSION")).to_string(),
            max_download: None,
            allow_basic_over_http: a.allow_basic_over_http,
        }
    }

    /// Takes the requests `cwmpd request-download` left (§A.4.2.1) into the agent's state, then
    /// removes their files.
    fn pick_up_requests(&mut self) {
        let Some(store) = &mut self.requests else {
            return;
        };
        let mut taken = Vec::new();
        for name in store.names() {
            match store.load_existing::<DownloadRequest>(&name) {
                Ok(Some(mut r)) => {
                    r.name = name.clone();
                    if self.state.requests.iter().any(|x| x.name == name) {
                    } else if let Err(e) = validate_request(&r) {
                        log::error!("request {name}: {e}; dropped");
                    } else if self.state.requests.len() >= MAX_REQUESTS {
                        log::error!("request {name}: {MAX_REQUESTS} requests pending; dropped");
                    } else {
                        log::info!("RequestDownload of {:?} queued", r.file_type);
                        self.state.requests.push(r);
                    }
                    taken.push(name);
                }
                Ok(None) => {}
                Err(e) => log::error!("{e}"),
            }
        }
        if taken.is_empty() {
            return;
        }
        self.ensure_cpe_events();
        self.save();
        if let Some(store) = &mut self.requests {
            for name in taken {
                if let Err(e) = store.remove(&name) {
                    log::error!("{e}");
                }
            }
        }
    }
}

/// Watches `paths` (directories) with inotify from a thread of its own and sends `trigger`
/// ([`Trigger::ValuesChanged`], [`Trigger::Requests`]) after each burst of changes (a `uci commit` renames a file into
/// place). A path that cannot be watched is logged; polling still covers it.
fn watch(
    paths: Vec<std::path::PathBuf>,
    tx: Sender<Trigger>,
    pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    trigger: Trigger,
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
                    && tx.send(trigger.clone()).is_err()
                {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("inotify thread: {e}");
    }
}

/// What an Inform carries that is settled when its InformResponse arrives, and the CPE's own
/// requests of the session, settled one by one as the ACS answers them.
struct Delivery {
    in_flight: events::InFlight,
    cpe_items: Vec<CpeItem>,
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

/// The agent's side of the RPCs that act on the device: ScheduleInform, Reboot, FactoryReset and
/// the transfers. Each only journals the request in the state (persisted by the loop before the
/// response is posted); the work happens after the session.
struct AgentControl<'a> {
    state: &'a mut AgentState,
    hooks: &'a ResolvedHooks,
    limits: transfer::Limits,
    now: i64,
}

impl AgentControl<'_> {
    fn downloads(&self) -> bool {
        !self.hooks.firmware.is_empty()
            || !self.hooks.web_content.is_empty()
            || !self.hooks.config.is_empty()
            || !self.hooks.vendor.is_empty()
    }

    fn uploads(&self) -> bool {
        !self.hooks.upload_config.is_empty() || !self.hooks.upload_log.is_empty()
    }

    fn require(&self, supported: bool, method: &str) -> Result<(), Fault> {
        if supported {
            Ok(())
        } else {
            Err(Fault::MethodNotSupported(format!(
                "{method} is not supported by this CPE (no hook is configured)"
            )))
        }
    }
}

impl Control for AgentControl<'_> {
    fn supported(&self) -> Vec<&'static str> {
        let mut m = vec!["ScheduleInform"];
        if !self.hooks.reboot.is_empty() {
            m.push("Reboot");
        }
        if !self.hooks.factory_reset.is_empty() {
            m.push("FactoryReset");
        }
        if self.downloads() {
            m.extend([
                "Download",
                "ScheduleDownload",
                "CancelTransfer",
                "GetQueuedTransfers",
                "GetAllQueuedTransfers",
            ]);
        }
        if self.uploads() {
            m.push("Upload");
            if !self.downloads() {
                m.extend([
                    "CancelTransfer",
                    "GetQueuedTransfers",
                    "GetAllQueuedTransfers",
                ]);
            }
        }
        m
    }

    fn schedule_inform(&mut self, delay_seconds: u32, command_key: &str) -> Result<(), Fault> {
        // §A.4.1.4: DelaySeconds must be greater than zero.
        if delay_seconds == 0 {
            return Err(Fault::InvalidArguments(
                "DelaySeconds must be greater than 0".into(),
                Vec::new(),
            ));
        }
        transfer::check_command_key(command_key)?;
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

    fn reboot(&mut self, command_key: &str) -> Result<(), Fault> {
        self.require(!self.hooks.reboot.is_empty(), "Reboot")?;
        transfer::check_command_key(command_key)?;
        let r = self.state.reboot.get_or_insert_with(PendingAction::default);
        if r.command_keys.len() >= MAX_SCHEDULED {
            return Err(Fault::ResourcesExceeded("too many Reboot requests".into()));
        }
        r.command_keys.push(command_key.to_string());
        Ok(())
    }

    fn factory_reset(&mut self) -> Result<(), Fault> {
        self.require(!self.hooks.factory_reset.is_empty(), "FactoryReset")?;
        self.state
            .factory_reset
            .get_or_insert_with(PendingAction::default);
        Ok(())
    }

    fn download(&mut self, d: &Download) -> Result<(u8, String, String), Fault> {
        self.require(self.downloads(), "Download")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .download(d, self.now, self.limits, |ft, text| {
                !apply_hook(hooks, ft.kind, text).is_empty()
            })?;
        log::info!(
            "Download {:?} ({}) of {} queued for {}",
            t.command_key,
            t.file_type,
            transfer::redact_url(&t.url),
            schedule::format_datetime(t.not_before, 0)
        );
        // Status 1: the result follows in TransferComplete (§A.3.2.8).
        Ok((
            1,
            time_text(transfer::UNKNOWN_TIME),
            time_text(transfer::UNKNOWN_TIME),
        ))
    }

    fn upload(&mut self, u: &Upload) -> Result<(u8, String, String), Fault> {
        self.require(self.uploads(), "Upload")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .upload(u, self.now, self.limits, |ft| {
                !produce_hook(hooks, ft.kind).is_empty()
            })?;
        log::info!(
            "Upload {:?} ({}) to {} queued",
            t.command_key,
            t.file_type,
            transfer::redact_url(&t.url)
        );
        Ok((
            1,
            time_text(transfer::UNKNOWN_TIME),
            time_text(transfer::UNKNOWN_TIME),
        ))
    }

    fn schedule_download(&mut self, d: &ScheduleDownload) -> Result<(), Fault> {
        self.require(self.downloads(), "ScheduleDownload")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .schedule_download(d, self.now, self.limits, |ft, text| {
                !apply_hook(hooks, ft.kind, text).is_empty()
            })?;
        log::info!(
            "ScheduleDownload {:?} ({}) of {} queued",
            t.command_key,
            t.file_type,
            transfer::redact_url(&t.url)
        );
        Ok(())
    }

    fn cancel_transfer(&mut self, command_key: &str) -> Result<(), Fault> {
        self.require(self.downloads() || self.uploads(), "CancelTransfer")?;
        self.state.transfers.cancel(command_key)
    }

    fn queued_transfers(&mut self) -> Result<Vec<QueuedTransfer>, Fault> {
        self.require(self.downloads() || self.uploads(), "GetQueuedTransfers")?;
        Ok(self
            .state
            .transfers
            .list
            .iter()
            .map(transfer::Transfer::queued)
            .collect())
    }
}

/// The hook applying a downloaded file of this kind ("" = none).
fn apply_hook<'a>(hooks: &'a ResolvedHooks, kind: FileKind, file_type: &str) -> &'a str {
    match kind {
        FileKind::Firmware => &hooks.firmware,
        FileKind::WebContent => &hooks.web_content,
        FileKind::Config => &hooks.config,
        FileKind::Log => "",
        FileKind::Vendor => {
            let want = transfer::normalize(file_type);
            hooks
                .vendor
                .iter()
                .find(|(k, _)| transfer::normalize(k) == want)
                .map_or("", |(_, v)| v.as_str())
        }
    }
}

/// Whether the apply hook of this kind reboots the device.
fn apply_reboots(hooks: &ResolvedHooks, kind: FileKind) -> bool {
    match kind {
        FileKind::Firmware => hooks.firmware_reboots,
        FileKind::WebContent => hooks.web_content_reboots,
        FileKind::Config => hooks.config_reboots,
        FileKind::Log | FileKind::Vendor => false,
    }
}

/// The hook producing an upload's file of this kind ("" = none).
fn produce_hook(hooks: &ResolvedHooks, kind: FileKind) -> &str {
    match kind {
        FileKind::Config => &hooks.upload_config,
        FileKind::Log => &hooks.upload_log,
        _ => "",
    }
}

/// A Unix time as xsd:dateTime; [`transfer::UNKNOWN_TIME`] is written as the schema writes it
/// (`0001-01-01T00:00:00Z`).
fn time_text(t: i64) -> String {
    if t == transfer::UNKNOWN_TIME {
        schedule::format_datetime_utc(t)
    } else {
        schedule::format_datetime(t, 0)
    }
}

/// The file of transfer `id` in the transfer directory: `part` while it arrives, `file` when
/// whole, `up` for an upload being produced.
fn transfer_file(id: u64, ext: &str) -> String {
    format!("{id}.{ext}")
}

/// Removes what a cut left in the transfer directory: every partial download and upload, and
/// whole files no record waits to apply.
fn clean_transfer_dir(dir: &PrivateDir, transfers: &Transfers) {
    let Ok(names) = dir.names() else {
        return;
    };
    for name in names {
        let Some((id, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else {
            continue;
        };
        let keep = ext == "file"
            && transfers
                .get(id)
                .is_some_and(|t| t.state == transfer::State::Fetched);
        if matches!(ext, "part" | "file" | "up" | "started") && !keep {
            let _ = dir.remove(&name);
        }
    }
}

/// Checks a RequestDownload (from the command line or a request file): a download FileType
/// (§A.4.2.1), at most [`MAX_REQUEST_ARGS`] arguments of bounded length.
pub fn validate_request(r: &DownloadRequest) -> Result<(), String> {
    if FileType::download(&r.file_type).is_none() {
        return Err(format!(
            "{:?} is not a download FileType (1 Firmware Upgrade Image, 2 Web Content, 3 Vendor \
             Configuration File or X <OUI> <name>)",
            r.file_type
        ));
    }
    if r.args.len() > MAX_REQUEST_ARGS {
        return Err(format!("at most {MAX_REQUEST_ARGS} arguments"));
    }
    for a in &r.args {
        if a.name.is_empty()
            || a.name.chars().count() > 64
            || a.value.chars().count() > MAX_REQUEST_ARG_LEN
        {
            return Err(format!(
                "argument {:?}: the name must be 1-64 characters, the value at most \
                 {MAX_REQUEST_ARG_LEN}",
                a.name
            ));
        }
    }
    Ok(())
}

/// The first whole second of the Unix epoch at least `wait` from now: an attempt the loop starts
/// once `now_unix()` reaches it has waited `wait` or longer, never less (§3.2.1.1's minimum wait,
/// a Retry-After), and less than a second more. With no wait, now rounded up: a time
/// `unix_after(Duration::ZERO) + n` is at least `n` seconds away.
fn unix_after(wait: Duration) -> i64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(wait);
    i64::try_from(t.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(t.subsec_nanos() > 0))
}

/// How long from now until the Unix time `at` (whole seconds) begins; zero when it has.
fn until_unix(at: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(u64::try_from(at).unwrap_or(0)).saturating_sub(now)
}

/// How long from now until the Unix time `at_ms` (milliseconds); zero when it has passed.
fn until_unix_ms(at_ms: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(u64::try_from(at_ms).unwrap_or(0)).saturating_sub(now)
}

/// Milliseconds since the Unix epoch.
fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_secs() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    #[test]
    fn a_retry_time_is_never_early_and_less_than_a_second_late() {
        for ms in [0, 1, 999, 1000, 1500, 7300] {
            let wait = Duration::from_millis(ms);
            let before = now_secs();
            let at = unix_after(wait);
            let after = now_secs();
            assert!(
                at as f64 >= before + wait.as_secs_f64(),
                "{ms} ms: {at} < {before}"
            );
            assert!(
                at as f64 <= after + wait.as_secs_f64() + 1.0,
                "{ms} ms: {at} > {after}"
            );
        }
        assert_eq!(unix_after(Duration::MAX), i64::MAX);
    }

    #[test]
    fn the_sleep_until_a_time_ends_when_its_second_begins() {
        assert_eq!(until_unix(now_unix() - 5), Duration::ZERO);
        assert_eq!(until_unix(-1), Duration::ZERO);
        let at = now_unix() + 2;
        let sleep = until_unix(at);
        assert!(
            sleep > Duration::from_secs(1) && sleep <= Duration::from_secs(2),
            "{sleep:?}"
        );
        let wake = now_secs() + sleep.as_secs_f64();
        assert!((wake - at as f64).abs() < 0.05, "wakes at {wake}, not {at}");
    }
}
