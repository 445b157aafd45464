//! Which backend serves a binding: the [`BackendKind`] a binding names (`backend:key`) and the
//! set of [`Backends`] the engine reaches values through.

use std::collections::BTreeMap;

use super::agent::AgentBackend;
use super::builtin::{BuiltinBackend, ConstBackend, BUILTIN_KEYS};
use super::{diag, file, netlink, script, ubus, uci};
use super::{Backend, Platform, ScriptDef};

/// The backends a binding can name (`backend:key` in `datamodel/bindings/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Agent,
    Builtin,
    Const,
    Uci,
    File,
    Script,
    Netlink,
    Ubus,
    Diag,
}

impl BackendKind {
    pub const ALL: [BackendKind; 9] = [
        BackendKind::Agent,
        BackendKind::Builtin,
        BackendKind::Const,
        BackendKind::Uci,
        BackendKind::File,
        BackendKind::Script,
        BackendKind::Netlink,
        BackendKind::Ubus,
        BackendKind::Diag,
    ];

    /// Whether a table listed by `key` of this backend is live state the system makes and
    /// unmakes by itself (the kernel's tables, the daemons' stations, the DHCP leases, the
    /// processes): the instance numbers of such tables are kept in RAM only, so a station
    /// associating, a lease or a process never writes to flash. Everything netlink and ubus
    /// list; the files under /proc, /sys, /tmp, /var and /run; the diagnostics' result rows.
    pub fn live(self, key: &str) -> bool {
        match self {
            BackendKind::Netlink | BackendKind::Ubus | BackendKind::Diag => true,
            BackendKind::File => ["/proc/", "/sys/", "/tmp/", "/var/", "/run/"]
                .iter()
                .any(|p| key.starts_with(p)),
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Agent => "agent",
            BackendKind::Builtin => "builtin",
            BackendKind::Const => "const",
            BackendKind::Uci => "uci",
            BackendKind::File => "file",
            BackendKind::Script => "script",
            BackendKind::Netlink => "netlink",
            BackendKind::Ubus => "ubus",
            BackendKind::Diag => "diag",
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
            BackendKind::Uci => uci::check_key(key),
            BackendKind::File => file::check_key(key),
            BackendKind::Script => script::check_key(key),
            BackendKind::Netlink => netlink::check_key(key),
            BackendKind::Ubus => ubus::check_key(key),
            BackendKind::Diag => diag::check_key(key),
            _ => Ok(()),
        }
    }
}

/// All backends the engine can bind to.
pub struct Backends {
    agent: AgentBackend,
    builtin: BuiltinBackend,
    constant: ConstBackend,
    uci: uci::UciBackend,
    file: file::FileBackend,
    script: script::ScriptBackend,
    netlink: netlink::NetlinkBackend,
    ubus: ubus::UbusBackend,
    diag: diag::DiagBackend,
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
            uci: uci::UciBackend::new(platform),
            file: file::FileBackend::new(platform),
            script: script::ScriptBackend::new(platform),
            netlink: netlink::NetlinkBackend::new(),
            ubus: ubus::UbusBackend::new(platform),
            diag: diag::DiagBackend::new(),
            agent: AgentBackend::new(agent_defaults),
            builtin: BuiltinBackend::new(
                platform.root.join("proc/uptime").display().to_string(),
                platform.root.join("proc/stat").display().to_string(),
            ),
            constant: ConstBackend,
        }
    }

    /// Sets a run-time value of the agent backend (not persisted; e.g. ConnectionRequestURL).
    pub fn set_runtime(&mut self, key: &str, value: &str) {
        self.agent
            .defaults
            .insert(key.to_string(), value.to_string());
    }

    /// Forgets the run-time values of the agent backend whose keys start with `prefix` and
    /// that `keep` refuses (those of deleted instances).
    pub fn retain_runtime(&mut self, prefix: &str, keep: impl Fn(&str) -> bool) {
        self.agent
            .defaults
            .retain(|k, _| !k.starts_with(prefix) || keep(k));
    }

    /// The default (config or run-time) value of an agent-owned key.
    pub fn agent_default(&self, key: &str) -> Option<&str> {
        self.agent.defaults.get(key).map(String::as_str)
    }

    /// Tells the builtin backend the model name (`Device:2.19`) for RootDataModelVersion and
    /// DeviceSummary.
    pub fn set_model_name(&mut self, name: &str) {
        self.builtin.model = name.to_string();
        self.diag.set_model_name(name);
    }

    /// The diagnostics' store: what the agent runs and where their results go.
    pub fn diag(&mut self) -> &mut diag::DiagBackend {
        &mut self.diag
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
            BackendKind::Netlink => &mut self.netlink,
            BackendKind::Ubus => &mut self.ubus,
            BackendKind::Diag => &mut self.diag,
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
            BackendKind::Netlink => &self.netlink,
            BackendKind::Ubus => &self.ubus,
            BackendKind::Diag => &self.diag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::backend::Cx;

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
