//! Backends: the only code that reads or changes where values live. Issue 2 has the `agent`
//! backend (values the agent owns: ManagementServer, identity; seeded from the config file,
//! overridden by the ACS, persisted in [`super::DmState`]) and `builtin` (computed values such as
//! UpTime and CurrentLocalTime). Later: uci, sysfs/procfs, script.

use std::collections::BTreeMap;

/// All backends the engine can bind to.
pub struct Backends {
    /// Defaults of agent-owned values, by key (`acs.url`, `device.manufacturer`, …): from the
    /// config file, or pushed at run time by the agent (`connection_request.url`).
    agent_defaults: BTreeMap<String, String>,
}

impl Backends {
    /// Backends with the agent-owned defaults taken from the config.
    pub fn new(agent_defaults: BTreeMap<String, String>) -> Backends {
        Backends { agent_defaults }
    }

    /// Sets a run-time value of the agent backend (not persisted; e.g. ConnectionRequestURL).
    pub fn set_runtime(&mut self, key: &str, value: &str) {
        self.agent_defaults.insert(key.to_string(), value.to_string());
    }

    /// The default (config or run-time) value of an agent-owned key.
    pub fn agent_default(&self, key: &str) -> Option<&str> {
        self.agent_defaults.get(key).map(String::as_str)
    }
}
