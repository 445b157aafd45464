//! The data model engine: a typed parameter tree defined as data (files under `datamodel/`),
//! with instance numbers, attributes and all-or-nothing transactions (TR-069 §A.3.2.1–§A.3.2.7,
//! TR-106 for types and naming).
//!
//! The engine reaches values only through [`backend::Backend`]s; it keeps its own bookkeeping
//! (instance numbers, attributes, ParameterKey, values the agent owns) in a [`DmState`] that the
//! agent persists through the store. The RPC layer (`crate::rpc`) calls the methods of [`Engine`]
//! and never sees a backend.

pub mod backend;
pub mod schema;
pub mod types;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::fault::Fault;
use crate::soap::msg::{ParameterAttribute, ParameterInfo, ParameterValue, SetAttributes, SetValue};

/// What the engine keeps across restarts (persisted by the agent through the store when
/// [`Engine::take_dirty`] says it changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmState {
    /// Values owned by the agent backend that were set by the ACS or `cwmpd set`, by key.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Non-default attributes, by full parameter path.
    #[serde(default)]
    pub attributes: BTreeMap<String, Attributes>,
    /// Instance bookkeeping, by table path with instance numbers (`Device.Foo.1.Bar.`).
    #[serde(default)]
    pub tables: BTreeMap<String, TableState>,
    /// Last value reported to the ACS of each parameter with notification on, by full path.
    #[serde(default)]
    pub reported: BTreeMap<String, String>,
}

/// A parameter's attributes (§A.3.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// 0 off, 1 passive, 2 active.
    #[serde(default)]
    pub notification: u8,
    #[serde(default)]
    pub access_list: Vec<String>,
}

/// The instances of one table: instance number → the backend's key for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableState {
    /// The next instance number to hand out (never reused, §A.3.2.6).
    pub next: u32,
    /// Instance number → backend key (a uci section name, an index, …).
    #[serde(default)]
    pub instances: BTreeMap<u32, String>,
}

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

/// The parameter tree: schema + backends + bookkeeping.
pub struct Engine {
    schema: schema::Schema,
    backends: backend::Backends,
    state: DmState,
    dirty: bool,
}

impl Engine {
    /// Builds an engine from a loaded schema, the backends it binds to, and the persisted state.
    pub fn new(schema: schema::Schema, backends: backend::Backends, state: DmState) -> Engine {
        Engine {
            schema,
            backends,
            state,
            dirty: false,
        }
    }

    /// The root object name (`Device.` or `InternetGatewayDevice.`).
    pub fn root(&self) -> &str {
        self.schema.root()
    }

    /// GetParameterNames (§A.3.2.3).
    pub fn names(&mut self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        let _ = (path, next_level);
        todo!("Engine::names")
    }

    /// GetParameterValues (§A.3.2.2): full and partial paths, in request order.
    pub fn values(&mut self, names: &[String]) -> Result<Vec<ParameterValue>, Fault> {
        let _ = names;
        todo!("Engine::values")
    }

    /// SetParameterValues (§A.3.2.1): all validated first, then applied all-or-nothing;
    /// ParameterKey updated only on success.
    pub fn set_values(&mut self, list: &[SetValue], parameter_key: &str) -> Result<Applied, Fault> {
        let _ = (list, parameter_key);
        todo!("Engine::set_values")
    }

    /// GetParameterAttributes (§A.3.2.5).
    pub fn attributes(&mut self, names: &[String]) -> Result<Vec<ParameterAttribute>, Fault> {
        let _ = names;
        todo!("Engine::attributes")
    }

    /// SetParameterAttributes (§A.3.2.4): all-or-nothing; 9009 where notification is refused.
    pub fn set_attributes(&mut self, list: &[SetAttributes]) -> Result<(), Fault> {
        let _ = list;
        todo!("Engine::set_attributes")
    }

    /// AddObject (§A.3.2.6): returns the new instance number.
    pub fn add_object(&mut self, path: &str, parameter_key: &str) -> Result<(u32, Applied), Fault> {
        let _ = (path, parameter_key);
        todo!("Engine::add_object")
    }

    /// DeleteObject (§A.3.2.7).
    pub fn delete_object(&mut self, path: &str, parameter_key: &str) -> Result<Applied, Fault> {
        let _ = (path, parameter_key);
        todo!("Engine::delete_object")
    }

    /// The parameters forced into every Inform (`forcedInform` in the model), with values.
    pub fn forced_inform(&mut self) -> Vec<ParameterValue> {
        todo!("Engine::forced_inform")
    }

    /// Parameters with notification 1 or 2 whose value differs from the last reported one:
    /// `(changed, any_active)`. Call [`Engine::mark_reported`] once the Inform was accepted.
    pub fn notifications(&mut self) -> (Vec<ParameterValue>, bool) {
        todo!("Engine::notifications")
    }

    /// Records values as reported to the ACS (after an InformResponse, or for changes the ACS made).
    pub fn mark_reported(&mut self, values: &[ParameterValue]) {
        let _ = values;
        todo!("Engine::mark_reported")
    }

    /// Reads one value by full path (the agent reads its own settings this way).
    pub fn value(&mut self, path: &str) -> Result<String, Fault> {
        let r = self.values(&[path.to_string()])?;
        r.into_iter()
            .next()
            .map(|p| p.value)
            .ok_or_else(|| Fault::InvalidParameterName(path.to_string()))
    }

    /// Runs what was deferred to the end of the session (service reloads). Returns what failed.
    pub fn end_session(&mut self) -> Vec<Fault> {
        todo!("Engine::end_session")
    }

    /// The persisted state, if it changed since the last call (the agent writes it to the store).
    pub fn take_dirty(&mut self) -> Option<&DmState> {
        if std::mem::take(&mut self.dirty) {
            Some(&self.state)
        } else {
            None
        }
    }

    /// Forgets everything the ACS set (FactoryReset): values, attributes, instances.
    pub fn factory_reset(&mut self) {
        self.state = DmState::default();
        self.dirty = true;
    }

    /// The backends, for the agent to push runtime values (e.g. ConnectionRequestURL).
    pub fn backends_mut(&mut self) -> &mut backend::Backends {
        &mut self.backends
    }
}
