//! The data model engine: a typed parameter tree defined as data (files under `datamodel/`),
//! with instance numbers, attributes and all-or-nothing transactions (TR-069 §A.3.2.1–§A.3.2.7,
//! TR-106 for types and naming).
//!
//! The engine reaches values only through [`backend::Backend`]s; it keeps its own bookkeeping
//! (instance numbers, attributes, ParameterKey, values the agent owns) in a [`DmState`] that the
//! agent persists through the store. The RPC layer (`crate::rpc`) calls the methods of [`Engine`]
//! and never sees a backend.
//!
//! Paths (TR-069 §A.2.2.1, TR-106 §3.1): a parameter is `Device.Foo.3.Bar`; a partial path ends
//! with `.` and names an object (`Device.Foo.`: the table itself, `Device.Foo.3.`: one instance);
//! the empty path is the top of the tree (GetParameterNames, §A.3.2.3). Anything else is 9005.
//! Instance numbers are the engine's: handed out in order, never reused, kept across restarts
//! in [`DmState::tables`] (§A.3.2.6).
//!
//! The methods of [`Engine`] live by RPC family: `path` (name resolution, partial paths,
//! instance numbers), `read` (GetParameterNames/Values/Attributes), `txn` (SetParameterValues,
//! AddObject, DeleteObject, the transaction and its rollback), `notify` (SetParameterAttributes,
//! value-change detection, the Inform's parameters); `state` is what the engine persists. Those
//! modules import the engine from here, never the other way round.

pub mod backend;
pub mod config;
pub mod generate;
pub mod management;
pub mod schema;
pub mod transform;
pub mod types;

mod device;
#[cfg(test)]
mod fixture;
mod notify;
mod path;
mod read;
mod scan;
mod state;
mod txn;

pub use state::{Attributes, DmState, TableState};

use std::collections::BTreeMap;

use crate::cwmp::fault::Fault;
use backend::registry::{BackendKind, Backends};
use backend::Cx;
use schema::Schema;

/// The most instances one table may have, whatever the model says (a bound on what an ACS can
/// make the CPE allocate; AddObject beyond it is 9004).
pub const MAX_INSTANCES: usize = 1024;

/// Most parameters one GetParameterValues, GetParameterAttributes or SetParameterAttributes may
/// cover after partial paths are expanded; beyond it the request answers 9004. One ACS message of
/// 4 MiB could otherwise name `Device.` a hundred thousand times and expand the whole tree each
/// time.
pub const MAX_PARAMS_PER_REQUEST: usize = 20_000;

/// The parameter tree: schema + backends + bookkeeping.
pub struct Engine {
    schema: schema::Schema,
    backends: Backends,
    state: DmState,
    dirty: bool,
    /// Last value reported to the ACS (or first seen) of each parameter with notification on,
    /// by full path. Kept in RAM only: a notification check must not write to flash.
    reported: BTreeMap<String, String>,
    /// The instance numbers of the tables bound to a live backend ([`BackendKind::live`]), by
    /// table path: RAM only, like `reported` (they change with the system, not with the ACS).
    live_tables: BTreeMap<String, state::TableState>,
    /// The tables that listed more than [`MAX_INSTANCES`] (logged once until they shrink).
    crowded: std::collections::BTreeSet<String>,
    /// During a GetParameterValues, how many instances its walk listed, by table path (the
    /// value of its `NumberOfEntries`, which reads this instead of listing the table again:
    /// the request answers from one listing of each table). String to string: a map type the
    /// binary has anyway.
    listed: Option<BTreeMap<String, String>>,
    /// Set by [`Engine::hold`]: changes wait for [`Engine::settle`] to be committed.
    hold: bool,
    /// What a held change can be undone with.
    pending: Option<Pending>,
}

/// A change applied (revertibly) but not committed yet: what it is undone with.
struct Pending {
    state: DmState,
    reported: BTreeMap<String, String>,
    /// The backends whose applied changes wait for their commit.
    touched: Vec<BackendKind>,
}

impl Engine {
    /// Builds an engine from a loaded schema, the backends it binds to, and the persisted state.
    pub fn new(schema: schema::Schema, mut backends: Backends, state: DmState) -> Engine {
        backends.set_model_name(schema.model_name());
        backends.set_scripts(schema.scripts().clone());
        Engine {
            schema,
            backends,
            state,
            dirty: false,
            reported: BTreeMap::new(),
            live_tables: BTreeMap::new(),
            crowded: Default::default(),
            listed: None,
            hold: false,
            pending: None,
        }
    }

    /// The root object name (`Device.` or `InternetGatewayDevice.`).
    pub fn root(&self) -> &str {
        self.schema.root()
    }

    /// The loaded definitions.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Runs what was deferred to the end of the session (service reloads). Returns what failed.
    pub fn end_session(&mut self) -> Vec<Fault> {
        let mut faults = Vec::new();
        for kind in BackendKind::ALL {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            faults.extend(self.backends.get(kind).end_session(&mut cx));
            self.dirty |= cx.changed;
        }
        faults
    }

    /// Drops every backend's snapshot: the next reads see the system as it is now. Called when
    /// a session starts and before each notification check; in between, all reads of a
    /// backend come from one snapshot.
    pub fn invalidate(&mut self) {
        for kind in BackendKind::ALL {
            self.backends.get(kind).invalidate();
        }
    }

    /// What the backends want watched for changes (the uci config directory).
    pub fn watch_paths(&self) -> Vec<std::path::PathBuf> {
        BackendKind::ALL
            .iter()
            .flat_map(|k| self.backends.peek(*k).watch_paths())
            .collect()
    }

    /// The change-event sources of the backends the bindings use (directly or inside another
    /// key as `{kind:key}`), for the agent to run in threads of their own.
    pub fn event_sources(&self) -> Vec<Box<dyn backend::EventSource>> {
        let mut used = std::collections::BTreeSet::new();
        let mut note = |b: &schema::Binding| {
            for b in std::iter::once(b).chain(b.or()) {
                used.insert(b.backend);
                for (_, _, kind, _) in path::nested_refs(&b.key) {
                    used.insert(kind);
                }
            }
        };
        for o in self.schema.objects() {
            if let Some(t) = &o.table {
                note(&t.binding);
            }
            for p in &o.params {
                if let schema::Source::Bound(b) = &p.source {
                    note(b);
                }
            }
        }
        used.into_iter()
            .filter_map(|k| self.backends.peek(k).event_source())
            .collect()
    }

    /// The UDP echo server's settings (UDPEchoConfig, kept in the store by the `diag`
    /// backend) when they differ from what the last call returned.
    pub fn echo_config_changed(&mut self) -> Option<backend::diag::EchoConfig> {
        self.backends.diag().take_echo_config(&self.state.values)
    }

    /// The backends, for the agent to push runtime values (e.g. ConnectionRequestURL).
    pub fn backends_mut(&mut self) -> &mut Backends {
        &mut self.backends
    }

    /// The persisted state, if it changed since the last call (the agent writes it to the store).
    pub fn take_dirty(&mut self) -> Option<&DmState> {
        if std::mem::take(&mut self.dirty) {
            Some(&self.state)
        } else {
            None
        }
    }

    /// The persisted state as it is now.
    pub fn state(&self) -> &DmState {
        &self.state
    }

    /// Takes the state another process wrote to the store (`cwmpd set` while the daemon runs).
    pub fn replace_state(&mut self, state: DmState) {
        self.state = state;
        self.dirty = false;
    }

    /// Forgets everything the ACS set (FactoryReset): values, attributes, instances. Values
    /// return to the config file's and the model's defaults; ParameterKey becomes empty.
    pub fn factory_reset(&mut self) {
        self.state = DmState::default();
        self.dirty = true;
    }
}
