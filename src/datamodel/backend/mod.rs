//! Backends: the only code that reads or changes where values live. This module holds the
//! words every backend and the engine share (the [`Backend`] trait, [`Cx`], [`Applied`],
//! [`Platform`]) and imports none of the backends; [`registry`] knows them all and says which
//! serves a binding. The backends: `agent` (values the agent owns: ManagementServer, identity;
//! seeded from the config file and at run time, overridden by the ACS, persisted in
//! `DmState`), `builtin` (computed read-only values such as UpTime) and `const` (a fixed value
//! written in the binding), `uci`, `file` (sysfs/procfs and other files), `script` (vendor
//! scripts).
//!
//! The [`Backend`] trait is shaped for those: reads come in batches (one call per request with
//! every key it needs), changes are staged, applied revertibly, then committed or rolled back
//! across all backends (TR-069 §A.3.2.1: all or nothing), table instances are listed by backend
//! key, and work that must wait for the end of the session (service reloads) runs in
//! [`Backend::end_session`]. Instance numbers belong to the engine; a backend knows only its
//! own keys (a uci section name, an index).

pub mod agent;
pub mod builtin;
pub mod diag;
pub mod file;
pub mod netlink;
pub mod registry;
pub mod script;
pub mod select;
pub mod ubus;
pub mod uci;

// The registry's types at their former place, for the users outside the data model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cwmp::fault::Fault;

/// The result of a change that may apply later (SetParameterValues, AddObject, DeleteObject
/// Status: 0 applied, 1 applied when the session ends, §A.3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    AtSessionEnd,
}

impl Applied {
    pub fn status(self) -> u8 {
        match self {
            Applied::Now => 0,
            Applied::AtSessionEnd => 1,
        }
    }
}

/// What the engine lends a backend for one call.
pub struct Cx<'a> {
    /// The engine's persisted store of backend-owned values (`DmState.values`).
    pub values: &'a mut BTreeMap<String, String>,
    /// Set by a backend that changed `values` for good (the engine then persists its state).
    pub changed: bool,
}

/// A place where values live.
///
/// Keys are the binding keys with the `{i}` placeholders already replaced by instance keys.
/// Change methods are called as: `stage_*`… then `apply` (revertible), then `commit`; or
/// `rollback` at any point before `commit`.
pub trait Backend {
    /// Whether the value under `key` can be changed through this backend.
    fn writable(&self, key: &str) -> bool;

    /// Whether the instances of the table under `table` can be added and deleted.
    fn creatable(&self, table: &str) -> bool;

    /// Reads many keys at once; `None` where the backend has no value (the engine then uses
    /// the binding's or the model's default).
    fn read(&mut self, cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault>;

    /// The instance keys of the table under `table`, when the backend lists them (uci
    /// sections); `None` when the engine's own bookkeeping is the list (agent-owned tables).
    fn instances(&mut self, cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault>;

    /// Whether a write of `key` is made even when the parameter already reads the value (a
    /// diagnostic's `Requested` again restarts it).
    fn always_write(&self, key: &str) -> bool {
        let _ = key;
        false
    }

    /// Stages a new value (already type-checked). A 9005–9008 fault is reported for this
    /// parameter; any other fails the whole request.
    fn stage_set(&mut self, cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        let _ = (cx, value);
        Err(Fault::NonWritableParameter(key.to_string()))
    }

    /// Stages a new instance of the table under `table`; `number` is the engine's instance
    /// number for it. Returns the backend's key of the new instance.
    fn stage_add(&mut self, cx: &mut Cx<'_>, table: &str, number: u32) -> Result<String, Fault> {
        let _ = (cx, number);
        Err(Fault::RequestDenied(format!("{table} is not creatable")))
    }

    /// Stages the deletion of one instance (and what it contains).
    fn stage_delete(&mut self, cx: &mut Cx<'_>, table: &str, instance: &str) -> Result<(), Fault> {
        let _ = (cx, instance);
        Err(Fault::RequestDenied(format!("{table} is not deletable")))
    }

    /// Makes the staged changes effective, revertibly. Says whether they apply now or when the
    /// session ends (SetParameterValues Status 0 or 1).
    fn apply(&mut self, cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        let _ = cx;
        Ok(Applied::Now)
    }

    /// Makes applied changes permanent.
    fn commit(&mut self, cx: &mut Cx<'_>) {
        let _ = cx;
    }

    /// Drops staged changes and reverts applied ones.
    fn rollback(&mut self, cx: &mut Cx<'_>) {
        let _ = cx;
    }

    /// Runs what was deferred to the end of the session; drops caches. Returns what failed.
    fn end_session(&mut self, cx: &mut Cx<'_>) -> Vec<Fault> {
        let _ = cx;
        Vec::new()
    }

    /// The values the last failed `apply` refused (9005–9008), by key; the engine reports them
    /// per parameter (§A.3.2.1). Taking them clears the list.
    fn take_set_faults(&mut self) -> Vec<(String, Fault)> {
        Vec::new()
    }

    /// Drops cached snapshots, so the next read sees the system as it is now. The engine calls
    /// it when a session starts and before each notification check; between two calls every
    /// read of a backend comes from one snapshot (no instance appears between a
    /// GetParameterNames and the GetParameterValues that follows).
    fn invalidate(&mut self) {}

    /// Called after each listing of `table` with the keys the engine knows its instances by
    /// (`known`) and the keys just listed: which known keys now name another instance, and the
    /// key their instance goes by now, as `(old, new)` pairs applied all at once. (libuci
    /// renames every anonymous section after a deleted one: the instance numbers must follow
    /// the sections, not the names.)
    fn renamed(&mut self, table: &str, known: &[&str], listed: &[String]) -> Vec<(String, String)> {
        let _ = (table, known, listed);
        Vec::new()
    }

    /// After a successful `apply`: the instance keys that change renamed, as `(scope, old,
    /// new)` applied all at once, where the scope is the head of the table keys concerned (up
    /// to their first `.`: a uci package). (libuci names anonymous sections by position: a
    /// deleted section renames every anonymous one after it. The engine maps the instance
    /// numbers to the new names before the change is acknowledged, so a restart before the
    /// next listing keeps them.) Taking them clears the list; a rollback drops them.
    fn take_renames(&mut self) -> Vec<(String, String, String)> {
        Vec::new()
    }

    /// Files or directories whose change may change values of this backend (watched with
    /// inotify by the agent; e.g. the uci config directory).
    fn watch_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The system's own change events for this backend's values (rtnetlink's multicast groups,
    /// ubus events), when it has such a source. The agent runs it in a thread of its own and
    /// checks the notifications after each burst; `None` leaves the backend to the poll.
    fn event_source(&self) -> Option<Box<dyn EventSource>> {
        None
    }
}

/// A stream of change events from the system (a netlink multicast socket, a ubus listener),
/// run by the agent in a thread of its own: each change it reports makes the agent read the
/// parameters with notification again (TR-069 §A.3.2.4), so a value that changes reaches the
/// ACS when it changes, not at the next poll.
pub trait EventSource: Send {
    /// What the source listens to, for log lines (`netlink`, `ubus`).
    fn name(&self) -> &'static str;

    /// Blocks until the system reports a change that may change values of the backend (`true`)
    /// or `timeout` passes (`false`; `None` waits without end). An error ends this wait: the
    /// agent logs it and calls again after a pause, and the source connects again then.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, String>;
}

/// Where the OS-facing backends find the system (`[datamodel]` of the config file). Tests point
/// these at a fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Prefix of every path the `file` backend reads (`/` on a router).
    pub root: PathBuf,
    /// The `uci` command.
    pub uci_bin: PathBuf,
    /// ubusd's unix socket.
    pub ubus_socket: PathBuf,
    /// The uci configuration directory (`uci -c`).
    pub uci_config: PathBuf,
    /// The directory of the agent's own uncommitted uci changes (`uci -t`); in RAM.
    pub uci_savedir: PathBuf,
    /// Shell command run once at the end of a session in which a uci package changed, by
    /// package (`network` = `/etc/init.d/network reload`). A package without one is applied
    /// at once.
    pub reload: BTreeMap<String, String>,
    /// Most time a vendor script may take per call.
    pub script_timeout: Duration,
}

impl Default for Platform {
    fn default() -> Platform {
        let reload = [
            ("network", "/etc/init.d/network reload"),
            ("wireless", "/sbin/wifi reload"),
            ("dhcp", "/etc/init.d/dnsmasq reload"),
            ("firewall", "/etc/init.d/firewall reload"),
            ("system", "/etc/init.d/system reload"),
            ("dropbear", "/etc/init.d/dropbear reload"),
        ];
        Platform {
            root: PathBuf::from("/"),
            uci_bin: PathBuf::from("uci"),
            ubus_socket: PathBuf::from("/var/run/ubus/ubus.sock"),
            uci_config: PathBuf::from("/etc/config"),
            uci_savedir: PathBuf::from("/var/run/cwmpd/uci"),
            reload: reload
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            script_timeout: Duration::from_secs(10),
        }
    }
}

/// A vendor script declared in a data model file (`[script.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptDef {
    /// The executable, resolved against the directory of the file that declared it.
    pub path: PathBuf,
    /// Overrides [`Platform::script_timeout`].
    pub timeout: Option<Duration>,
}

/// The key under which the engine keeps ParameterKey in the agent backend (TR-069 §A.3.2.1:
/// set only by a successful SetParameterValues, AddObject or DeleteObject).
pub const PARAMETER_KEY: &str = "parameter_key";
