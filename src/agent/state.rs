//! The agent's persisted records (what survives a restart) and their persistence: the store
//! files, the state and daemon locks, and the RequestDownload requests `cwmpd request-download`
//! leaves for the daemon.

use std::collections::BTreeMap;

use super::{Agent, AgentError};

use crate::events::EventQueue;
use crate::transfer::{FileType, Transfers};

/// The store file of the agent's own state.
pub(super) const AGENT_FILE: &str = "agent";

/// The store file of the data model's bookkeeping.
pub(super) const DATAMODEL_FILE: &str = "datamodel";

/// Most ScheduleInform requests kept at once.
pub(super) const MAX_SCHEDULED: usize = 64;

/// What must survive a restart, besides the data model's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    /// Events not yet acknowledged by an InformResponse.
    pub events: EventQueue,
    /// Failed session attempts since the last successful one (the Inform's RetryCount).
    pub retry_count: u32,
    /// The ACS URL whose BOOTSTRAP was acknowledged; BOOTSTRAP is sent again when it differs.
    pub bootstrapped_url: String,
    /// The kernel boot id of the last start, to tell a device boot from an agent restart.
    pub boot_id: String,
    /// The last session's end, for `cwmpd status`.
    pub last_session: Option<LastSession>,
    /// The CWMP namespace that worked, by ACS URL (§A.2 version negotiation fallback).
    pub namespaces: BTreeMap<String, String>,
    /// Pending ScheduleInform requests (§A.4.1.4).
    pub scheduled: Vec<ScheduledInform>,
    /// The random path of ConnectionRequestURL, generated once (§3.2.2: unique per CPE).
    pub connection_request_path: String,
    /// The ACS URL DHCP gave last (ManagementServer.URL is DHCP's while it equals it).
    pub dhcp_acs_url: String,
    /// The ConnectionRequestURL the ACS last acknowledged, so that one changed while the agent
    /// was not running (a restart, a WAN change meanwhile) is reported at start.
    pub reported_connection_request_url: String,
    /// The ConnReqJabberID the ACS last acknowledged: shown again at start until the XMPP
    /// connection binds (the same JID then is no change to notify).
    pub reported_jabber_id: String,
    /// The sources (an IPv4 address, an IPv6 /64) whose Connection Requests authenticated, the
    /// most recent first (at most `connreq::KEPT_SOURCES`): trusted again at start, so that an
    /// attacker who fills the failure throttle's table cannot lock the ACS out after a restart.
    pub trusted_connreq_sources: Vec<String>,
    /// Downloads and Uploads from their request until their TransferComplete is acknowledged.
    pub transfers: Transfers,
    /// A Reboot the ACS asked for (§A.3.2.10), until the next start reports it.
    pub reboot: Option<PendingAction>,
    /// A FactoryReset the ACS asked for (§A.4.1.3), until the next start carries it out.
    pub factory_reset: Option<PendingAction>,
    /// AutonomousTransferComplete reports not yet acknowledged (§A.4.2.2).
    pub autonomous: Vec<AutonomousTransfer>,
    /// RequestDownload calls not yet answered by the ACS (§A.4.2.1).
    pub requests: Vec<DownloadRequest>,
    /// DeviceInfo.SoftwareVersion at the last start, to notice a firmware change the ACS did not
    /// ask for.
    pub software_version: String,
}

/// A Reboot or FactoryReset: journalled when the ACS asks, marked `started` before its hook runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingAction {
    /// The CommandKeys of the Reboot requests (each gets its `M Reboot`).
    pub command_keys: Vec<String>,
    /// The hook was started: the next start is the one after it.
    pub started: bool,
    /// Hook runs that failed.
    pub tries: u32,
    /// Not tried again before this time.
    pub next_try: i64,
}

/// An AutonomousTransferComplete to report (§A.4.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutonomousTransfer {
    pub is_download: bool,
    pub file_type: String,
    pub transfer_url: String,
    pub file_size: u32,
    pub fault_code: u32,
    pub fault_string: String,
}

/// A RequestDownload asked for with `cwmpd request-download` (§A.4.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadRequest {
    /// The request file it came from (so a file picked up twice is queued once).
    pub name: String,
    pub file_type: String,
    pub args: Vec<FileTypeArg>,
}

/// One ArgStruct of a RequestDownload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTypeArg {
    pub name: String,
    pub value: String,
}

/// Where `cwmpd request-download` leaves its requests for the daemon (under the storage dir).
pub const REQUESTS_DIR: &str = "requests";

/// Most RequestDownload calls kept at once.
pub(super) const MAX_REQUESTS: usize = 16;

/// Most ArgStructs of one RequestDownload, and their longest name and value.
pub const MAX_REQUEST_ARGS: usize = 16;

pub const MAX_REQUEST_ARG_LEN: usize = 256;

/// The result of the sessions since `time`: the first session that ended this way (kept
/// unchanged while later sessions end the same way, so that they write nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastSession {
    /// Unix time the first session with this result ended.
    pub time: i64,
    pub ok: bool,
    /// "ok", or the one-line reason it failed.
    pub result: String,
}

/// A ScheduleInform waiting for its time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledInform {
    pub at: i64,
    pub command_key: String,
}

// The store's records (lenient: keys a later version added are ignored; the fields without a
// default are required, as serde's derive had them).
crate::from_toml_struct!(lenient AgentState {
    events, retry_count, bootstrapped_url, boot_id, last_session, namespaces, scheduled,
    connection_request_path, dhcp_acs_url, reported_connection_request_url, reported_jabber_id,
    trusted_connreq_sources, transfers, reboot, factory_reset, autonomous, requests,
    software_version,
});
crate::from_toml_struct!(lenient PendingAction { command_keys, started, tries, next_try });
crate::from_toml_struct!(lenient AutonomousTransfer {
    is_download, file_type, transfer_url, file_size, fault_code, fault_string,
} required "is_download", "file_type");
crate::from_toml_struct!(lenient DownloadRequest { name, file_type, args }
    required "name", "file_type");
crate::from_toml_struct!(lenient FileTypeArg { name, value } required "name", "value");
crate::from_toml_struct!(lenient LastSession { time, ok, result } required "time", "ok", "result");
crate::from_toml_struct!(lenient ScheduledInform { at, command_key } required "at", "command_key");

/// Checks a RequestDownload (from the command line or a request file): a download FileType
/// (§A.4.2.1), at most [`MAX_REQUEST_ARGS`] arguments of bounded length.
pub fn validate_request(r: &DownloadRequest) -> Result<(), AgentError> {
    if FileType::download(&r.file_type).is_none() {
        return Err(AgentError::Request(format!(
            "{:?} is not a download FileType (1 Firmware Upgrade Image, 2 Web Content, 3 Vendor \
             Configuration File or X <OUI> <name>)",
            r.file_type
        )));
    }
    if r.args.len() > MAX_REQUEST_ARGS {
        return Err(AgentError::Request(format!(
            "at most {MAX_REQUEST_ARGS} arguments"
        )));
    }
    for a in &r.args {
        if a.name.is_empty()
            || a.name.chars().count() > 64
            || a.value.chars().count() > MAX_REQUEST_ARG_LEN
        {
            return Err(AgentError::Request(format!(
                "argument {:?}: the name must be 1-64 characters, the value at most \
                 {MAX_REQUEST_ARG_LEN}",
                a.name
            )));
        }
    }
    Ok(())
}

impl Agent {
    /// Writes the engine's and the agent's state if they changed.
    pub fn persist(&mut self) -> Result<(), AgentError> {
        if let Some(dm) = self.engine.take_dirty() {
            self.store
                .save(DATAMODEL_FILE, dm)
                .map_err(super::error::store)?;
        }
        self.store
            .save(AGENT_FILE, &self.state)
            .map_err(super::error::store)?;
        Ok(())
    }

    /// Persists from the loop: a failed write is logged and tried again at the next change.
    pub(super) fn save(&mut self) {
        if let Err(e) = self.persist() {
            log::error!("{e}");
        }
    }

    /// The state lock for a loop turn of the daemon; one that cannot be taken (the lock file
    /// cannot be opened) is logged, and the turn runs without it.
    pub(super) fn lock_state(&self) -> Option<crate::sys::store::StateLock> {
        self.store
            .lock_state(None)
            .map_err(|e| log::error!("{e}"))
            .ok()
    }

    /// Claims the storage directory for a session run outside the daemon (`cwmpd inform`): it
    /// fails when a daemon runs on it (two agents must not drive sessions and write the same
    /// state).
    pub fn lock_daemon(&self) -> Result<crate::sys::store::DaemonLock, AgentError> {
        self.store.lock_daemon().map_err(super::error::store)
    }

    /// Takes the requests `cwmpd request-download` left (§A.4.2.1) into the agent's state, then
    /// removes their files.
    /// Returns whether an event was queued that should end a backoff (a new ACS from DHCP).
    pub(super) fn pick_up_requests(&mut self) -> bool {
        let Some(store) = &mut self.requests else {
            return false;
        };
        let mut taken = Vec::new();
        let mut dhcp = Vec::new();
        for name in store.names() {
            if name.starts_with(super::dhcp::DHCP_REQUEST_PREFIX) {
                match store.load_existing::<super::dhcp::DhcpRequest>(&name) {
                    Ok(Some(r)) => dhcp.push(r),
                    Ok(None) => {}
                    Err(e) => log::error!("{e}"),
                }
                taken.push(name);
                continue;
            }
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
            return false;
        }
        // The newest DHCP lease counts (names sort by time).
        let queued = dhcp.last().is_some_and(|r| self.apply_dhcp(r));
        self.ensure_cpe_events();
        self.save();
        if let Some(store) = &mut self.requests {
            for name in taken {
                if let Err(e) = store.remove(&name) {
                    log::error!("{e}");
                }
            }
        }
        queued
    }
}
