//! Backends: the only code that reads or changes where values live (ARCHITECTURE-GUIDE habits
//! 8 and 9). Issue 2 has `agent` (values the agent owns: ManagementServer, identity; seeded from
//! the config file and at run time, overridden by the ACS, persisted in [`super::DmState`]),
//! `builtin` (computed read-only values such as UpTime) and `const` (a fixed value written in
//! the binding). Later: uci, sysfs/procfs, script.
//!
//! The [`Backend`] trait is shaped for those: reads come in batches (one call per request with
//! every key it needs), changes are staged, applied revertibly, then committed or rolled back
//! across all backends (TR-069 §A.3.2.1: all or nothing), table instances are listed by backend
//! key, and work that must wait for the end of the session (service reloads) runs in
//! [`Backend::end_session`]. Instance numbers belong to the engine; a backend knows only its
//! own keys (a uci section name, an index).

pub mod file;
pub mod script;
pub mod uci;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Applied;
use crate::cwmp::fault::Fault;

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
    fn renamed(
        &mut self,
        table: &str,
        known: &[String],
        listed: &[String],
    ) -> Vec<(String, String)> {
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
}

/// Where the OS-facing backends find the system (`[datamodel]` of the config file). Tests point
/// these at a fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Prefix of every path the `file` backend reads (`/` on a router).
    pub root: PathBuf,
    /// The `uci` command.
    pub uci_bin: PathBuf,
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

/// The backends a binding can name (`backend:key` in `datamodel/bindings/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Agent,
    Builtin,
    Const,
    Uci,
    File,
    Script,
}

impl BackendKind {
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Agent,
        BackendKind::Builtin,
        BackendKind::Const,
        BackendKind::Uci,
        BackendKind::File,
        BackendKind::Script,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Agent => "agent",
            BackendKind::Builtin => "builtin",
            BackendKind::Const => "const",
            BackendKind::Uci => "uci",
            BackendKind::File => "file",
            BackendKind::Script => "script",
        }
    }

    pub fn from_name(s: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Checks a binding key when the definitions are loaded.
    pub fn check_key(self, key: &str) -> Result<(), String> {
        match self {
            BackendKind::Agent if key.is_empty() => Err("empty agent key".into()),
            BackendKind::Builtin if !BUILTIN_KEYS.contains(&key) => Err(format!(
                "unknown builtin {key:?} (known: {})",
                BUILTIN_KEYS.join(", ")
            )),
            BackendKind::Uci => self::uci::check_key(key),
            BackendKind::File => self::file::check_key(key),
            BackendKind::Script => self::script::check_key(key),
            _ => Ok(()),
        }
    }
}

/// The key under which the engine keeps ParameterKey in the agent backend (TR-069 §A.3.2.1:
/// set only by a successful SetParameterValues, AddObject or DeleteObject).
pub const PARAMETER_KEY: &str = "parameter_key";

/// All backends the engine can bind to.
pub struct Backends {
    agent: AgentBackend,
    builtin: BuiltinBackend,
    constant: ConstBackend,
    uci: self::uci::UciBackend,
    file: self::file::FileBackend,
    script: self::script::ScriptBackend,
}

impl Backends {
    /// Backends with the agent-owned defaults taken from the config, on a router's real paths.
    pub fn new(agent_defaults: BTreeMap<String, String>) -> Backends {
        Backends::with_platform(agent_defaults, &Platform::default())
    }

    /// Backends with the agent-owned defaults taken from the config, on the given paths.
    pub fn with_platform(
        agent_defaults: BTreeMap<String, String>,
        platform: &Platform,
    ) -> Backends {
        Backends {
            uci: self::uci::UciBackend::new(platform),
            file: self::file::FileBackend::new(platform),
            script: self::script::ScriptBackend::new(platform),
            agent: AgentBackend {
                defaults: agent_defaults,
                staged: Vec::new(),
                undo: Vec::new(),
            },
            builtin: BuiltinBackend {
                model: String::new(),
                uptime_file: platform.root.join("proc/uptime").display().to_string(),
            },
            constant: ConstBackend,
        }
    }

    /// Sets a run-time value of the agent backend (not persisted; e.g. ConnectionRequestURL).
    pub fn set_runtime(&mut self, key: &str, value: &str) {
        self.agent
            .defaults
            .insert(key.to_string(), value.to_string());
    }

    /// The default (config or run-time) value of an agent-owned key.
    pub fn agent_default(&self, key: &str) -> Option<&str> {
        self.agent.defaults.get(key).map(String::as_str)
    }

    /// Tells the builtin backend the model name (`Device:2.19`) for RootDataModelVersion and
    /// DeviceSummary.
    pub fn set_model_name(&mut self, name: &str) {
        self.builtin.model = name.to_string();
    }

    /// Reads UpTime from another file than `/proc/uptime` (tests).
    pub fn set_uptime_file(&mut self, path: &str) {
        self.builtin.uptime_file = path.to_string();
    }

    /// Tells the script backend the scripts the data model files declared.
    pub fn set_scripts(&mut self, scripts: BTreeMap<String, ScriptDef>) {
        self.script.set_scripts(scripts);
    }

    /// The backend of a kind.
    pub fn get(&mut self, kind: BackendKind) -> &mut dyn Backend {
        match kind {
            BackendKind::Agent => &mut self.agent,
            BackendKind::Builtin => &mut self.builtin,
            BackendKind::Const => &mut self.constant,
            BackendKind::Uci => &mut self.uci,
            BackendKind::File => &mut self.file,
            BackendKind::Script => &mut self.script,
        }
    }

    /// The backend of a kind, for questions that change nothing.
    pub fn peek(&self, kind: BackendKind) -> &dyn Backend {
        match kind {
            BackendKind::Agent => &self.agent,
            BackendKind::Builtin => &self.builtin,
            BackendKind::Const => &self.constant,
            BackendKind::Uci => &self.uci,
            BackendKind::File => &self.file,
            BackendKind::Script => &self.script,
        }
    }
}

/// The most the agent backend stores (keys and values, in bytes): a bound on what an ACS can
/// make the CPE keep in its state file. A change beyond it fails with 9004.
pub const MAX_AGENT_BYTES: usize = 64 * 1024;

/// Values the agent owns: the ACS's value (kept in `DmState.values`) over the default from the
/// config file or the run time.
struct AgentBackend {
    defaults: BTreeMap<String, String>,
    staged: Vec<AgentOp>,
    /// Old values of what `apply` changed, to restore on rollback.
    undo: Vec<(String, Option<String>)>,
}

enum AgentOp {
    Set(String, String),
    /// Removes every value under this prefix (a deleted instance).
    DeletePrefix(String),
}

impl Backend for AgentBackend {
    fn writable(&self, _key: &str) -> bool {
        true
    }

    fn creatable(&self, _table: &str) -> bool {
        true
    }

    fn read(&mut self, cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys
            .iter()
            .map(|k| cx.values.get(*k).or_else(|| self.defaults.get(*k)).cloned())
            .collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(None)
    }

    fn stage_set(&mut self, _cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        self.staged
            .push(AgentOp::Set(key.to_string(), value.to_string()));
        Ok(())
    }

    fn stage_add(&mut self, _cx: &mut Cx<'_>, _table: &str, number: u32) -> Result<String, Fault> {
        // The instance number is the key: values of the instance start at their defaults.
        Ok(number.to_string())
    }

    fn stage_delete(&mut self, _cx: &mut Cx<'_>, table: &str, instance: &str) -> Result<(), Fault> {
        self.staged
            .push(AgentOp::DeletePrefix(format!("{table}.{instance}.")));
        Ok(())
    }

    fn apply(&mut self, cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        let mut size: usize = cx.values.iter().map(|(k, v)| k.len() + v.len()).sum();
        for op in std::mem::take(&mut self.staged) {
            match op {
                AgentOp::Set(k, v) => {
                    if cx.values.get(&k) != Some(&v) {
                        size += k.len() + v.len();
                        let old = cx.values.insert(k.clone(), v);
                        if let Some(o) = &old {
                            size = size.saturating_sub(k.len() + o.len());
                        }
                        self.undo.push((k, old));
                        if size > MAX_AGENT_BYTES {
                            // The engine rolls back what was applied so far.
                            return Err(Fault::ResourcesExceeded(format!(
                                "the agent store would exceed {MAX_AGENT_BYTES} bytes"
                            )));
                        }
                    }
                }
                AgentOp::DeletePrefix(p) => {
                    let gone: Vec<String> = cx
                        .values
                        .range(p.clone()..)
                        .take_while(|(k, _)| k.starts_with(&p))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in gone {
                        let old = cx.values.remove(&k);
                        self.undo.push((k, old));
                    }
                }
            }
        }
        Ok(Applied::Now)
    }

    fn commit(&mut self, cx: &mut Cx<'_>) {
        if !self.undo.is_empty() {
            cx.changed = true;
        }
        self.undo.clear();
    }

    fn rollback(&mut self, cx: &mut Cx<'_>) {
        self.staged.clear();
        for (k, old) in self.undo.drain(..).rev() {
            match old {
                Some(v) => cx.values.insert(k, v),
                None => cx.values.remove(&k),
            };
        }
    }
}

/// The keys of the builtin backend.
pub const BUILTIN_KEYS: &[&str] = &[
    "uptime",
    "current_local_time",
    "root_data_model_version",
    "device_summary",
];

/// Computed read-only values.
struct BuiltinBackend {
    /// The model name (`Device:2.19`).
    model: String,
    uptime_file: String,
}

impl BuiltinBackend {
    fn value(&self, key: &str) -> Result<Option<String>, Fault> {
        Ok(Some(match key {
            // TR-181 DeviceInfo.UpTime: seconds since boot, from /proc/uptime ("12345.67 …").
            "uptime" => {
                let text = std::fs::read_to_string(&self.uptime_file)
                    .map_err(|e| Fault::internal(format!("{}: {e}", self.uptime_file)))?;
                let secs = text
                    .split(['.', ' '])
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| Fault::internal(format!("{}: unreadable", self.uptime_file)))?;
                secs.min(u32::MAX as u64).to_string()
            }
            // Time.CurrentLocalTime: the system clock, in UTC.
            "current_local_time" => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format_utc(secs)
            }
            // Device.RootDataModelVersion: "2.19" of "Device:2.19".
            "root_data_model_version" => self
                .model
                .split_once(':')
                .map_or(String::new(), |(_, v)| v.to_string()),
            // InternetGatewayDevice.DeviceSummary (TR-106 §3.7): the root object and version,
            // with no profile claimed.
            "device_summary" => format!("{}[]()", self.model),
            _ => return Ok(None),
        }))
    }
}

impl Backend for BuiltinBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        keys.iter().map(|k| self.value(k)).collect()
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(Vec::new()))
    }
}

/// A fixed value: the key is the value (`const:false`).
struct ConstBackend;

impl Backend for ConstBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys.iter().map(|k| Some(k.to_string())).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(Vec::new()))
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` of seconds since the epoch.
pub fn format_utc(secs: u64) -> String {
    crate::schedule::format_datetime_utc(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_763_704_200), "2025-11-21T05:50:00Z");
    }

    #[test]
    fn agent_apply_and_rollback() {
        let mut values = BTreeMap::from([("t.1.a".to_string(), "x".to_string())]);
        let mut b = Backends::new(BTreeMap::from([("k".to_string(), "def".to_string())]));
        let agent = b.get(BackendKind::Agent);
        let mut cx = Cx {
            values: &mut values,
            changed: false,
        };
        assert_eq!(
            agent.read(&mut cx, &["k", "t.1.a", "none"]).unwrap(),
            [Some("def".into()), Some("x".into()), None]
        );
        agent.stage_set(&mut cx, "k", "acs").unwrap();
        agent.stage_delete(&mut cx, "t", "1").unwrap();
        agent.apply(&mut cx).unwrap();
        assert_eq!(cx.values.get("k").map(String::as_str), Some("acs"));
        assert!(!cx.values.contains_key("t.1.a"));
        agent.rollback(&mut cx);
        assert!(!cx.changed);
        assert_eq!(cx.values.len(), 1);
        assert_eq!(cx.values.get("t.1.a").map(String::as_str), Some("x"));
        agent.stage_set(&mut cx, "k", "acs").unwrap();
        agent.apply(&mut cx).unwrap();
        agent.commit(&mut cx);
        assert!(cx.changed);
        assert_eq!(cx.values.get("k").map(String::as_str), Some("acs"));
    }

    #[test]
    fn builtin_values() {
        let mut b = Backends::new(BTreeMap::new());
        b.set_model_name("InternetGatewayDevice:1.14");
        let mut values = BTreeMap::new();
        let mut cx = Cx {
            values: &mut values,
            changed: false,
        };
        let r = b
            .get(BackendKind::Builtin)
            .read(&mut cx, &["root_data_model_version", "device_summary"])
            .unwrap();
        assert_eq!(r[0].as_deref(), Some("1.14"));
        assert_eq!(r[1].as_deref(), Some("InternetGatewayDevice:1.14[]()"));
        b.set_uptime_file("/nonexistent/uptime");
        assert_eq!(
            b.get(BackendKind::Builtin)
                .read(&mut cx, &["uptime"])
                .unwrap_err()
                .code(),
            9002
        );
        assert!(BackendKind::Builtin.check_key("uptime").is_ok());
        assert!(BackendKind::Builtin.check_key("nothing").is_err());
    }
}
