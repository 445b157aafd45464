//! The driver loop: the one place that blocks (TR-069 §3.2 session initiation, §3.7 sessions).
//!
//! [`Agent`] owns the store, the data model engine, the persisted agent state and the channel
//! other threads (the Connection Request listener, the watches, the transfer jobs, signal
//! handlers) use to wake it. Everything it drives is pure: the session state machine
//! ([`crate::session`]) says what to post, the codec ([`crate::soap`]) makes the bytes, the RPC
//! layer ([`crate::rpc`]) runs requests on the engine, and the planner ([`plan`]) says what is
//! due and when to wake: at start (BOOT/BOOTSTRAP), periodic informs, scheduled informs, value
//! changes with active notification, connection requests, and retries with the backoff of
//! §3.2.1.1. The loop reads the time and sleeps only through its [`Clock`], and reaches the ACS
//! only through an [`AcsTransport`] opened by its [`Connect`]: with a test's clock and
//! transport, [`Agent::start_loop`] and [`Agent::turn`] run whole sessions in memory.
//!
//! The rooms: `state` (the persisted records and their persistence), `start` (BOOT, BOOTSTRAP,
//! recovery at start), `session` (one CWMP session), `control` (the [`crate::rpc::Control`]
//! implementation, Reboot and FactoryReset), `transfers` (the transfer steps between sessions), `diagnostics` (the tests the ACS requested, after the session that asked, and the UDP echo server),
//! `listener` (the Connection Request listener's side), `xmpp` (the XMPP connection of connection requests, TR-069 Annex K), `watch` (the inotify threads: the watched config directories, the requests directory), `plan`,
//! `clock`, `transport`, `error`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;

use crate::config::{Config, ResolvedHooks};
use crate::connreq::{self, listener::Phase, ConnReq};
use crate::cwmp::fault::TransferFailure;
use crate::datamodel::backend::registry::Backends;
use crate::datamodel::management::ManagementServer;
use crate::datamodel::{DmState, Engine};
use crate::events::{self, Event};
use crate::jobs::Jobs;
use crate::schedule;
use crate::sys::store::Store;

pub mod clock;
mod control;
mod dhcp;
mod diagnostics;
mod error;
mod heartbeat;
mod listener;
pub mod plan;
mod session;
mod start;
mod state;
mod transfers;
pub mod transport;
mod watch;
mod xmpp;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dhcp::{DhcpRequest, DHCP_REQUEST_PREFIX};
pub use diagnostics::DiagDone;
pub use error::AgentError;
use plan::{Facts, Periodic, Planner};
use session::usable_url;
pub use session::SessionResult;
pub use state::{
    validate_request, AgentState, AutonomousTransfer, DownloadRequest, FileTypeArg, LastSession,
    PendingAction, ScheduledInform, MAX_REQUEST_ARGS, MAX_REQUEST_ARG_LEN, REQUESTS_DIR,
};
use state::{AGENT_FILE, DATAMODEL_FILE, MAX_SCHEDULED};
pub use transport::{AcsTransport, Connect};
use watch::{watch, watch_events};

/// What wakes the loop from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An authenticated Connection Request (§3.2.2): a session with `6 CONNECTION REQUEST`.
    ConnectionRequest,
    /// A watched file changed (uci config): check the notified values now.
    ValuesChanged,
    /// A transfer's fetch, upload or apply finished in its thread.
    Transfer(JobDone),
    /// A diagnostic ended in its thread.
    Diagnostic(DiagDone),
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
    pub result: Result<(), TransferFailure>,
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
    /// UDPConnectionRequestAddressNotificationLimit (TR-098; 0 elsewhere): seconds between two
    /// changes of UDPConnectionRequestAddress shown (each is actively notified).
    udp_notification_limit: u32,
    /// ManagementServer.HeartbeatPolicy (CWMP 1.4); its reference `None` for the unknown time.
    heartbeat: Periodic,
    /// ManagementServer.ConnReqXMPPConnection (a path, empty for none).
    xmpp_connection: String,
    /// ManagementServer.ConnReqAllowedJabberIDs.
    allowed_jabber_ids: Vec<String>,
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
    /// The XMPP connection of connection requests, while it runs (TR-069 Annex K).
    xmpp: Option<xmpp::Running>,
    /// ConnReqAllowedJabberIDs as its request handler sees them.
    xmpp_allowed: Arc<std::sync::Mutex<Vec<String>>>,
    /// Why the XMPP connection cannot run (logged once).
    xmpp_error: Option<String>,
    /// When UDPConnectionRequestAddress last changed in the data model.
    udp_shown_at: Option<std::time::Instant>,
    /// The Heartbeat's phase when HeartbeatPolicy.InitiationTime is the unknown time: a random
    /// Unix millisecond chosen once per run (TR-181: the CPE picks a random reference).
    heartbeat_reference: Option<i64>,
    /// When DHCP last changed the ACS URL (RAM: at most one change per
    /// `dhcp::URL_CHANGE_INTERVAL`).
    dhcp_url_changed: Option<std::time::Instant>,
    /// The hooks in force (config, else the platform's defaults).
    hooks: ResolvedHooks,
    /// When a Reboot/FactoryReset hook returned 0: the agent holds until it is stopped.
    hold_since: Option<i64>,
    /// Where `cwmpd request-download` leaves requests (opened by the daemon).
    requests: Option<Store>,
    /// The kernel boot id changed since the last start (`1 BOOT` is queued).
    booted: bool,
    /// Where the time comes from, and how the loop waits.
    clock: Box<dyn Clock>,
    /// Opens the ACS transport of a session.
    connect: Connect,
    /// Starts the transfer jobs, which report with [`Trigger::Transfer`].
    jobs: Jobs<Trigger>,
    /// Where the retry wait's point in its range comes from (§3.2.1.1); the system CSPRNG when
    /// `None`.
    retry_random: Option<RetryRandom>,
    /// The diagnostic running in the `diag` job.
    diag_running: Option<diagnostics::Running>,
    /// TR-143's UDP echo server, while UDPEchoConfig enables it.
    echo: Option<diagnostics::EchoRun>,
    /// The system announced a change: the echo server's device is looked at again.
    echo_recheck: bool,
}

/// A source of the random numbers that place each retry wait in its range
/// ([`Agent::with_retry_random`]).
pub type RetryRandom = Box<dyn FnMut() -> u64 + Send>;

impl Agent {
    /// [`Agent::new`], on the heap: the daemon's command keeps a pointer, not the agent's
    /// 6 KB (x86_64) in its stack frame below every call of the daemon's life (stack pages
    /// once touched stay in the RSS).
    #[inline(never)]
    pub fn new_boxed(cfg: Config) -> Result<Box<Agent>, AgentError> {
        Agent::new(cfg).map(Box::new)
    }

    /// Builds the agent from a validated config: opens the store, loads the data model and the
    /// persisted state.
    pub fn new(mut cfg: Config) -> Result<Agent, AgentError> {
        if cfg.device.serial_number.is_empty() {
            cfg.device.serial_number = crate::sys::os::default_serial_number();
        }
        if cfg.device.software_version.is_empty() {
            cfg.device.software_version = env!("CARGO_PKG_VERSION").to_string();
        }
        let model = cfg
            .model()
            .ok_or_else(|| AgentError::Config("invalid data_model".into()))?;
        let schema = cfg
            .datamodel
            .schema(model)
            .map_err(|e| AgentError::Config(e.to_string()))?;
        let mut store = Store::open(&cfg.storage.dir).map_err(error::store)?;
        let mut state: AgentState = store.load(AGENT_FILE).map_err(error::store)?;
        let dm: DmState = store.load(DATAMODEL_FILE).map_err(error::store)?;
        // A state file is trusted no more than the ACS: the same bound as ScheduleInform's.
        state.scheduled.truncate(MAX_SCHEDULED);
        let backends = Backends::with_platform(cfg.agent_defaults(), &cfg.datamodel.platform());
        let engine = Engine::new(schema, backends, dm);
        let (tx, rx) = mpsc::channel();
        let jobs = {
            let tx = tx.clone();
            Jobs::new(move |t| {
                let _ = tx.send(t);
            })
        };
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
            xmpp: None,
            xmpp_allowed: Arc::default(),
            xmpp_error: None,
            udp_shown_at: None,
            heartbeat_reference: None,
            dhcp_url_changed: None,
            hooks,
            hold_since: None,
            requests: None,
            booted: false,
            clock: Box::new(SystemClock),
            connect: transport::http(),
            jobs,
            retry_random: None,
            diag_running: None,
            echo: None,
            echo_recheck: false,
        };
        // The random path is made once and kept (§3.2.2: unique per CPE, stable for the ACS).
        if agent.state.connection_request_path.is_empty() {
            agent.state.connection_request_path = connreq::url::random_path(&agent.random()?);
            agent
                .store
                .save(AGENT_FILE, &agent.state)
                .map_err(error::store)?;
        }
        // What the CLI shows; the daemon replaces it once its listener is bound.
        let s = agent.settings();
        let url = agent.provisional_url();
        agent.show_connreq_url(&url, s.connection_request.enabled);
        Ok(agent)
    }

    /// The agent with another clock (a test's: no real time passes).
    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Agent {
        self.clock = clock;
        self
    }

    /// The agent with another ACS transport (a test's in-memory ACS).
    pub fn with_transport(mut self, connect: Connect) -> Agent {
        self.connect = connect;
        self
    }

    /// The agent with the retry waits placed by `random` instead of the system CSPRNG (a test's
    /// seeded generator: the same waits on every run).
    pub fn with_retry_random(mut self, random: RetryRandom) -> Agent {
        self.retry_random = Some(random);
        self
    }

    /// The clock's Unix time in whole seconds.
    fn now_unix(&self) -> i64 {
        plan::secs(self.clock.wall())
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

    /// Queues an event (from the CLI or a trigger). Returns whether a new event was queued (a
    /// single event already pending is not new).
    pub fn add_event(&mut self, code: &str, command_key: &str) -> Result<bool, AgentError> {
        self.state
            .events
            .add(Event::new(code, command_key))
            .map_err(|e| AgentError::Event(e.to_string()))
    }

    fn settings(&mut self) -> Settings {
        // Passwords as stored: GetParameterValues reads them back empty, the view does not.
        let m = ManagementServer::read(&mut self.engine);
        let connection_request = connreq::Inputs {
            // TR-098 has no HTTPConnectionRequestEnable: the config decides there. With
            // EnableCWMP false no request is accepted either (TR-181 ManagementServer).
            enabled: m
                .http_connection_request_enable
                .unwrap_or(self.cfg.connection_request.enable)
                && m.enable_cwmp,
            cwmp_enabled: m.enable_cwmp,
            username: m.connection_request_username,
            password: m.connection_request_password,
            acs_url: m.url.clone(),
            stun: connreq::StunInputs {
                enable: m.stun.enable,
                server_address: m.stun.server_address,
                // Out of range reads as 0: the default port.
                server_port: m
                    .stun
                    .server_port
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                username: m.stun.username,
                password: m.stun.password,
                min_period: m.stun.minimum_keepalive_period.unwrap_or(0),
                max_period: m
                    .stun
                    .maximum_keepalive_period
                    .filter(|v| *v >= 0)
                    .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            },
        };
        Settings {
            url: m.url,
            username: m.username,
            password: m.password,
            periodic_enable: m.periodic_inform_enable,
            periodic_interval: m.periodic_inform_interval.unwrap_or(86400).max(1),
            periodic_time: schedule::periodic_reference(&m.periodic_inform_time),
            retry_min_wait: m
                .retry_minimum_wait_interval
                .unwrap_or(self.cfg.acs.retry_minimum_wait_interval),
            retry_multiplier: m
                .retry_interval_multiplier
                .unwrap_or(self.cfg.acs.retry_interval_multiplier),
            enable_cwmp: m.enable_cwmp,
            active_throttle: m.default_active_notification_throttle.unwrap_or(0),
            connection_request,
            udp_notification_limit: m.stun.notification_limit.unwrap_or(0),
            heartbeat: Periodic {
                enable: m.heartbeat_enable,
                interval: m
                    .heartbeat_interval
                    .unwrap_or(self.cfg.acs.heartbeat_interval)
                    .max(30),
                reference_ms: schedule::periodic_reference(&m.heartbeat_time),
            },
            xmpp_connection: m.xmpp_connection,
            allowed_jabber_ids: m.allowed_jabber_ids,
        }
    }

    fn random_u64(&mut self) -> u64 {
        if let Some(random) = &mut self.retry_random {
            return random();
        }
        // A failing system RNG only makes the retry wait less random.
        u64::from_le_bytes(self.random().unwrap_or_default())
    }

    /// `N` bytes from the system CSPRNG.
    fn random<const N: usize>(&self) -> Result<[u8; N], AgentError> {
        let mut b = [0u8; N];
        ring::rand::SecureRandom::fill(&self.rng, &mut b).map_err(|_| AgentError::Random)?;
        Ok(b)
    }

    /// Queues an event from the loop: a refused event is logged, never fatal. Returns whether a
    /// new event was queued (a single event already pending is not new).
    /// The earliest pending ScheduleInform (Unix seconds).
    fn next_scheduled(&self) -> Option<i64> {
        self.state.scheduled.iter().map(|x| x.at).min()
    }

    fn queue(&mut self, code: &str, command_key: &str) -> bool {
        self.add_event(code, command_key).unwrap_or_else(|e| {
            log::error!("cannot queue event {code}: {e}");
            false
        })
    }

    /// The daemon: runs until a [`Trigger::Stop`] arrives, or a [`Trigger::Reload`] and no
    /// transfer step runs. Only a failure to start (an unusable store, another daemon on the
    /// same storage directory) is returned; everything after that is logged and retried.
    ///
    /// The state lock is held for each loop turn and its session, and released while the loop
    /// waits: a `cwmpd set` runs between two turns, and the turn after it reads what it wrote.
    pub fn run(&mut self) -> Result<Exit, AgentError> {
        let daemon_lock = self.store.lock_daemon().map_err(error::store)?;
        let mut lp = self.start_loop()?;
        self.start_connreq()?;
        watch(
            self.engine.watch_paths(),
            self.tx.clone(),
            lp.watch_pending.clone(),
            Trigger::ValuesChanged,
        );
        watch_events(
            self.engine.event_sources(),
            self.tx.clone(),
            lp.watch_pending.clone(),
            Trigger::ValuesChanged,
        );
        // `cwmpd request-download` leaves its requests in a directory of their own.
        match Store::open(&self.cfg.storage.dir.join(REQUESTS_DIR)) {
            Ok(store) => {
                watch(
                    vec![store.dir().to_path_buf()],
                    self.tx.clone(),
                    lp.requests_pending.clone(),
                    Trigger::Requests,
                );
                self.requests = Some(store);
            }
            Err(e) => log::error!("{e}; request-download is not available"),
        }
        // A request left while the daemon was down (a new ACS from DHCP queues its BOOTSTRAP).
        let _ = self.pick_up_requests();
        loop {
            if let Some(exit) = self.turn(&mut lp) {
                drop(lp);
                drop(daemon_lock);
                return Ok(exit);
            }
        }
    }

    /// The daemon's start without its threads and sockets: the start events and the recovery
    /// of the previous run ([`Agent::run`] then starts the Connection Request listener and the
    /// watches). A test drives the loop from here with [`Agent::turn`].
    pub fn start_loop(&mut self) -> Result<Loop, AgentError> {
        let state_lock = Some(self.lock_state());
        self.start_daemon()?;
        // The loop runs the diagnostics the ACS requests.
        self.engine.backends_mut().diag().set_runs(true);
        Ok(Loop {
            plan: Planner::new(self.clock.wall()),
            warned_idle: false,
            reload: false,
            state_lock,
            watch_pending: Default::default(),
            requests_pending: Default::default(),
            connreq_recheck: false,
        })
    }

    /// One turn of the loop: what is due now (a Reboot, a transfer step, the events of the
    /// timers, a session), then a wait through the clock for a trigger or the next timer.
    /// `Some` when the loop ends.
    pub fn turn(&mut self, lp: &mut Loop) -> Option<Exit> {
        let plan = &mut lp.plan;
        if lp.state_lock.is_none() {
            lp.state_lock = Some(self.lock_state());
        }
        if lp.reload && !self.state.transfers.busy() {
            log::info!("re-reading the configuration");
            return Some(Exit::Reload);
        }
        let now = self.now_unix();
        let s = self.settings();
        // ConnectionRequestURL follows the WAN address; a change is a forced active
        // notification (TR-181 ManagementServer.ConnectionRequestURL): checked now.
        self.follow_connreq(&s, std::mem::take(&mut lp.connreq_recheck));
        if std::mem::take(&mut self.url_changed) {
            plan.poll_now(self.clock.wall());
        }
        // Reboot/FactoryReset after the session that asked; the wait for the device to go
        // down; the transfers that are due (between sessions only).
        let hold = self.device_step(now);
        let transfer_wake = if hold { None } else { self.transfer_step(now) };
        // The diagnostics the ACS requested, after the session that asked.
        let diag_wake = if hold {
            None
        } else {
            self.diagnostics_step(now)
        };
        let transfer_wake = match (transfer_wake, diag_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Chosen the first time it is needed (a random draw only then).
        let heartbeat_reference = match (s.heartbeat.reference_ms, self.heartbeat_reference) {
            (Some(r), _) | (None, Some(r)) => Some(r),
            (None, None) if s.heartbeat.enable => {
                let now_ms = i64::try_from(self.clock.wall().as_millis()).unwrap_or(0);
                let r = now_ms.saturating_add((self.random_u64() % 86_400_000) as i64);
                self.heartbeat_reference = Some(r);
                Some(r)
            }
            (None, None) => None,
        };
        let mut facts = Facts {
            periodic: Periodic {
                enable: s.periodic_enable,
                interval: s.periodic_interval,
                reference_ms: s.periodic_time,
            },
            heartbeat: Periodic {
                reference_ms: heartbeat_reference,
                ..s.heartbeat
            },
            poll_interval: self.cfg.datamodel.poll_interval,
            next_scheduled: self.next_scheduled(),
            events_pending: false,
            transfer_wake,
            hold_until: self
                .hold_since
                .map(|since| since + i64::from(self.cfg.transfer.reboot_timeout) + 1),
            connreq_check: None,
        };
        let t = self.clock.wall();
        let due = plan.due(t, &facts);
        // Periodic informs (§3.2.1), at the phase of PeriodicInformTime.
        if due.periodic && self.queue(events::PERIODIC, "") {
            plan.event_queued();
        }
        // ScheduleInform requests that came due (§A.4.1.4).
        if due.scheduled {
            let now = plan::secs(t);
            let due: Vec<ScheduledInform> = self
                .state
                .scheduled
                .iter()
                .filter(|x| x.at <= now)
                .cloned()
                .collect();
            self.state.scheduled.retain(|x| x.at > now);
            self.queue(events::SCHEDULED, "");
            for d in due {
                self.queue(events::M_SCHEDULE_INFORM, &d.command_key);
            }
            plan.event_queued();
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
        if due.poll {
            if self.pick_up_requests() {
                plan.event_queued();
            }
            // Values are read anew: the system may have changed since the last look.
            self.engine.invalidate();
            let (_, active) = self.engine.notifications();
            // A session only for an active notification waits for the throttle; the change
            // stays pending (it is compared with the last reported value).
            if active
                && plan.active_change(t, s.active_throttle)
                && self.queue(events::VALUE_CHANGE, "")
            {
                plan.event_queued();
            }
        }
        // A Heartbeat Inform (CWMP 1.4): a session of its own, at once, never retried; what
        // else came due in this turn (a periodic Inform, a poll) was taken above and goes in
        // the session that follows. Not while a failed session waits for its retry (that Inform
        // goes first, and the ACS is unreachable anyway), nor before a new ACS heard its
        // `0 BOOTSTRAP` (the first contact with an ACS is a bootstrap).
        if due.heartbeat {
            // A URL changed outside a session (`cwmpd set`, DHCP) is a new ACS: its BOOTSTRAP.
            if let Err(e) = self.note_url() {
                log::error!("{e}");
            }
            let backoff = !self.state.events.is_empty() && plan.retry_at() > plan::secs(t);
            let bootstrap = self.state.events.contains(events::BOOTSTRAP);
            if hold || !usable_url(&s.url) || !s.enable_cwmp || backoff || bootstrap {
                log::info!("heartbeat skipped: no heartbeat session is possible now");
            } else {
                let _ = self.run_heartbeat();
                return None;
            }
        }
        let events_pending = !self.state.events.is_empty();
        if plan.session_due(t, events_pending, hold) {
            if !usable_url(&s.url) || !s.enable_cwmp {
                // Nothing will serve a pending connection request: later ones are new.
                self.set_phase(Phase::Idle);
                if !lp.warned_idle {
                    log::warn!(
                        "events pending but no session is possible: {}",
                        if !usable_url(&s.url) {
                            "no usable ACS URL is configured"
                        } else {
                            "ManagementServer.EnableCWMP is false"
                        }
                    );
                    lp.warned_idle = true;
                }
            } else {
                lp.warned_idle = false;
                let result = self.run_session();
                let failure = result.is_err().then(|| {
                    let s = self.settings();
                    plan::Failure {
                        retry_count: self.state.retry_count,
                        min_wait: s.retry_min_wait,
                        multiplier: s.retry_multiplier,
                        random: self.random_u64(),
                        retry_after: self.retry_after,
                    }
                });
                let retry_at = plan.session_ended(self.clock.wall(), failure);
                if failure.is_some() {
                    log::info!("next attempt in {} s", retry_at - self.now_unix());
                }
                return None;
            }
        }
        facts.events_pending = events_pending;
        facts.next_scheduled = self.next_scheduled();
        facts.connreq_check = self.connreq.as_ref().map(ConnReq::until_check);
        let wait = plan.poll_at(self.clock.wall(), &facts);
        drop(lp.state_lock.take());
        let got = self.clock.wait(&self.rx, wait);
        lp.state_lock = Some(self.lock_state());
        let plan = &mut lp.plan;
        match got {
            Ok(Trigger::ConnectionRequest) => {
                self.keep_trusted_sources();
                self.queue(events::CONNECTION_REQUEST, "");
                // A connection request is answered now, whatever the backoff (§3.2.2).
                plan.event_queued();
            }
            Ok(Trigger::ValuesChanged) => {
                lp.watch_pending.store(false, Ordering::Release);
                lp.connreq_recheck = true;
                self.echo_recheck = true;
                plan.poll_now(self.clock.wall());
            }
            Ok(Trigger::Transfer(done)) => self.job_done(done),
            Ok(Trigger::Diagnostic(done)) => self.diagnostic_done(done),
            Ok(Trigger::Requests) => {
                lp.requests_pending.store(false, Ordering::Release);
                // A new ACS from DHCP is contacted now, whatever the backoff.
                if self.pick_up_requests() {
                    plan.event_queued();
                }
            }
            Ok(Trigger::Reload) => {
                if self.state.transfers.busy() {
                    log::info!("SIGHUP: the configuration is re-read when the transfer ends");
                }
                lp.reload = true;
            }
            Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => {
                log::info!("stopping");
                return Some(Exit::Stop);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        None
    }
}

/// The loop's state between two turns (see [`Agent::turn`]).
pub struct Loop {
    plan: Planner,
    /// "No session is possible" was logged (once until a session runs again).
    warned_idle: bool,
    /// SIGHUP arrived: the loop ends once no transfer step runs.
    reload: bool,
    /// The state lock of the turn, released while the loop waits.
    state_lock: Option<Option<crate::sys::store::StateLock>>,
    /// One check pending at a time per watch: set by the watch thread, cleared when taken.
    watch_pending: Arc<AtomicBool>,
    requests_pending: Arc<AtomicBool>,
    /// The system announced a change (a uci edit, a kernel or netifd event): the Connection
    /// Request address is looked at again at the next turn, not only every `check_interval`.
    connreq_recheck: bool,
}

/// Why [`Agent::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped (SIGTERM, SIGINT, [`Trigger::Stop`]).
    Stop,
    /// SIGHUP: start again with the configuration file read anew.
    Reload,
}

#[cfg(test)]
mod tests;
