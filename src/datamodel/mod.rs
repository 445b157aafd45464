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

pub mod backend;
pub mod generate;
pub mod schema;
pub mod transform;
pub mod types;

mod path;
mod read;
mod state;

pub use state::{Attributes, DmState, TableState};

use path::{expand, generic_matches, instance_number, parent_of, Inst, Node, ParamRef};
use read::null_value;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::cwmp::fault::{Fault, ParamFault};
use crate::soap::msg::{ParameterValue, SetAttributes, SetValue, XsiType};
use backend::{BackendKind, Cx, PARAMETER_KEY};
use schema::{ActiveNotify, Schema};
use types::BaseType;

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

/// The most instances one table may have, whatever the model says (a bound on what an ACS can
/// make the CPE allocate; AddObject beyond it is 9004).
pub const MAX_INSTANCES: usize = 1024;

/// Most parameters one GetParameterValues, GetParameterAttributes or SetParameterAttributes may
/// cover after partial paths are expanded; beyond it the request answers 9004. One ACS message of
/// 4 MiB could otherwise name `Device.` a hundred thousand times and expand the whole tree each
/// time.
pub const MAX_PARAMS_PER_REQUEST: usize = 20_000;

/// The only AccessList entity defined by TR-069 (§A.3.2.4).
const SUBSCRIBER: &str = "Subscriber";

/// The parameter path (relative to the root) of the InformParameter table (TR-069 §3.7.1.4).
const INFORM_PARAMETER: &str = "ManagementServer.InformParameter.{i}.";

/// The parameter tree: schema + backends + bookkeeping.
pub struct Engine {
    schema: schema::Schema,
    backends: backend::Backends,
    state: DmState,
    dirty: bool,
    /// Last value reported to the ACS (or first seen) of each parameter with notification on,
    /// by full path. Kept in RAM only: a notification check must not write to flash.
    reported: BTreeMap<String, String>,
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
    pub fn new(schema: schema::Schema, mut backends: backend::Backends, state: DmState) -> Engine {
        backends.set_model_name(schema.model_name());
        backends.set_scripts(schema.scripts().clone());
        Engine {
            schema,
            backends,
            state,
            dirty: false,
            reported: BTreeMap::new(),
            hold: false,
            pending: None,
        }
    }

    /// Holds the commit of the changes that follow (SetParameterValues, SetParameterAttributes,
    /// AddObject, DeleteObject) until [`Engine::settle`]: the caller first makes the changed
    /// state durable, since nothing may be acknowledged that a power cut would lose.
    pub fn hold(&mut self) {
        self.hold = true;
    }

    /// Ends a [`Engine::hold`]. `durable`: the state after the change was written, so the
    /// change is committed. Otherwise it is undone everywhere — the backends roll back what they
    /// applied (uci runs the inverse batch), the engine's state and notification bookkeeping
    /// return to what they were — and `true` is returned when there was something to undo.
    pub fn settle(&mut self, durable: bool) -> bool {
        self.hold = false;
        let Some(p) = self.pending.take() else {
            return false;
        };
        if durable {
            self.commit_all(&p.touched);
            return false;
        }
        let undone = !p.touched.is_empty() || p.state != self.state || p.reported != self.reported;
        self.rollback_all(&p.touched);
        self.state = p.state;
        self.reported = p.reported;
        // What is in memory now may differ from the file (a write that failed midway): the
        // next persist compares and writes what is needed.
        self.dirty = true;
        undone
    }

    /// Under [`Engine::hold`], remembers the state before the first change of the request.
    fn begin_change(&mut self) {
        if self.hold && self.pending.is_none() {
            self.pending = Some(Pending {
                state: self.state.clone(),
                reported: self.reported.clone(),
                touched: Vec::new(),
            });
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

    /// SetParameterValues (§A.3.2.1): all validated first, then applied all-or-nothing;
    /// ParameterKey updated only on success.
    pub fn set_values(&mut self, list: &[SetValue], parameter_key: &str) -> Result<Applied, Fault> {
        check_parameter_key(parameter_key)?;
        self.begin_change();
        let applied = self.apply_sets(list, true)?;
        self.set_parameter_key(parameter_key);
        Ok(applied)
    }

    /// A local change (`cwmpd set`): validated and applied like SetParameterValues, but the
    /// ParameterKey is left alone (only ACS methods change it, §A.3.2.1) and the changes are
    /// not marked reported, so a notification tells the ACS about them (§A.3.2.4).
    pub fn set_local(&mut self, list: &[SetValue]) -> Result<Applied, Fault> {
        self.begin_change();
        self.apply_sets(list, false)
    }

    /// SetParameterAttributes (§A.3.2.4): all-or-nothing; 9009 where notification is refused.
    ///
    /// Active notification is refused (9009) on `canDeny` parameters, and turning it off on
    /// `forceEnabled` ones; lightweight notification (3–6) is not supported (9009). For a
    /// partial path the change applies to the parameters of the subtree that accept it; the
    /// others keep their attribute (GetParameterAttributes shows it).
    pub fn set_attributes(&mut self, list: &[SetAttributes]) -> Result<(), Fault> {
        self.begin_change();
        // Validate everything first.
        // (parameter, its path, new notification, new access list)
        type Change = (ParamRef, String, Option<u8>, Option<Vec<String>>);
        let mut plan: Vec<Change> = Vec::new();
        for s in list {
            let node = if s.name.is_empty() {
                Node::Object(0, Inst::default())
            } else {
                self.resolve(&s.name)?
            };
            let single = matches!(node, Node::Param(..));
            if s.notification_change {
                match s.notification {
                    0..=2 => {}
                    3..=6 => {
                        return Err(Fault::NotificationRejected(format!(
                            "lightweight notification ({}) is not supported",
                            s.notification
                        )))
                    }
                    n => {
                        return Err(Fault::InvalidArguments(
                            format!("notification {n} is not 0–6"),
                            Vec::new(),
                        ))
                    }
                }
            }
            let access = if s.access_list_change {
                let mut l: Vec<String> = Vec::new();
                for e in &s.access_list {
                    if e != SUBSCRIBER {
                        return Err(Fault::InvalidArguments(
                            format!("access list entity {e:?} is not {SUBSCRIBER:?}"),
                            Vec::new(),
                        ));
                    }
                    if !l.contains(e) {
                        l.push(e.clone());
                    }
                }
                Some(l)
            } else {
                None
            };
            let mut refs = Vec::new();
            self.params_under(node, &mut refs)?;
            for r in refs {
                let name = self.param_path(&r);
                let mut notification = s.notification_change.then_some(s.notification);
                if let Some(n) = notification {
                    let an = self.schema.objects()[r.obj].params[r.param]
                        .def
                        .active_notify;
                    let refused = match an {
                        ActiveNotify::CanDeny => n == 2,
                        ActiveNotify::ForceEnabled => n != 2,
                        _ => false,
                    };
                    if refused {
                        if single {
                            return Err(Fault::NotificationRejected(format!(
                                "notification {n} is not allowed on {name}"
                            )));
                        }
                        notification = None;
                    }
                }
                plan.push((r, name, notification, access.clone()));
            }
        }
        // Then apply. Newly notified parameters start from their current value (§A.3.2.4:
        // only later changes are notified).
        let mut baseline = Vec::new();
        for (r, name, notification, access) in plan {
            let old_n = self.notification(&r, &name);
            let def = &self.schema.objects()[r.obj].params[r.param].def;
            let default_n = def.active_notify.default_notification();
            let mut a = self
                .state
                .attributes
                .get(&name)
                .cloned()
                .unwrap_or(Attributes {
                    notification: default_n,
                    access_list: Vec::new(),
                });
            if let Some(n) = notification {
                a.notification = n;
            }
            if let Some(l) = access {
                a.access_list = l;
            }
            let is_default = a.notification == default_n && a.access_list.is_empty();
            let changed = if is_default {
                self.state.attributes.remove(&name).is_some()
            } else if self.state.attributes.get(&name) != Some(&a) {
                self.state.attributes.insert(name.clone(), a.clone());
                true
            } else {
                false
            };
            self.dirty |= changed;
            let new_n = self.notification(&r, &name);
            if new_n == 0 {
                self.reported.remove(&name);
            } else if old_n == 0 || !self.reported.contains_key(&name) {
                baseline.push(r);
            }
        }
        if !baseline.is_empty() {
            let values = self.read_lenient(&baseline, true);
            for (r, v) in baseline.iter().zip(values) {
                if let Some(v) = v {
                    let name = self.param_path(r);
                    self.note_reported(name, v);
                }
            }
        }
        Ok(())
    }

    /// AddObject (§A.3.2.6): returns the new instance number.
    pub fn add_object(&mut self, path: &str, parameter_key: &str) -> Result<(u32, Applied), Fault> {
        check_parameter_key(parameter_key)?;
        self.begin_change();
        let not_table = || Fault::InvalidParameterName(format!("{path} is not a table"));
        if !path.ends_with('.') {
            return Err(not_table());
        }
        let (t, inst) = match self.resolve(path)? {
            Node::Table(t, inst) => (t, inst),
            _ => return Err(not_table()),
        };
        if !self.creatable(t, &inst) {
            return Err(Fault::InvalidParameterName(format!(
                "{path} does not allow AddObject"
            )));
        }
        let existing = self.instances(t, &inst)?;
        let Some(table) = self.schema.objects()[t].table.clone() else {
            return Err(not_table());
        };
        let max = table
            .max_entries
            .map_or(MAX_INSTANCES, |m| (m as usize).min(MAX_INSTANCES));
        if existing.len() >= max {
            return Err(Fault::ResourcesExceeded(format!(
                "{path} already has {} instances",
                existing.len()
            )));
        }
        let tpath = self.table_path(t, &inst);
        let ts = self.state.tables.get(&tpath).cloned().unwrap_or_default();
        let last = existing.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let number = ts.next.max(last.saturating_add(1)).max(1);
        if number == u32::MAX {
            return Err(Fault::ResourcesExceeded(format!(
                "{path}: no instance numbers left"
            )));
        }
        let tkey = expand(&table.binding.key, &inst.keys);
        let kind = table.binding.backend;
        let key = {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            let b = self.backends.get(kind);
            match b.stage_add(&mut cx, &tkey, number) {
                Ok(k) => k,
                Err(e) => {
                    b.rollback(&mut cx);
                    return Err(e);
                }
            }
        };
        let applied = self.apply_all(&[kind])?;
        let entry = self.state.tables.entry(tpath).or_default();
        entry.instances.insert(number, key);
        entry.next = number + 1;
        self.dirty = true;
        self.set_parameter_key(parameter_key);
        Ok((number, applied))
    }

    /// DeleteObject (§A.3.2.7): removes the instance and everything under it (nested
    /// instances, attributes, agent values).
    pub fn delete_object(&mut self, path: &str, parameter_key: &str) -> Result<Applied, Fault> {
        check_parameter_key(parameter_key)?;
        self.begin_change();
        let not_instance =
            || Fault::InvalidParameterName(format!("{path} is not a table instance"));
        if !path.ends_with('.') {
            return Err(not_instance());
        }
        let (t, inst) = match self.resolve(path)? {
            Node::Object(t, inst) if self.schema.objects()[t].table.is_some() => (t, inst),
            _ => return Err(not_instance()),
        };
        let mut parent_inst = inst.clone();
        let (Some(number), Some(_)) = (parent_inst.numbers.pop(), parent_inst.keys.pop()) else {
            return Err(not_instance());
        };
        if !self.creatable(t, &parent_inst) {
            return Err(Fault::InvalidParameterName(format!(
                "{path} does not allow DeleteObject"
            )));
        }
        let min = self.schema.objects()[t]
            .table
            .as_ref()
            .map_or(0, |tb| tb.min_entries as usize);
        if self.instances(t, &parent_inst)?.len() <= min {
            return Err(Fault::RequestDenied(format!(
                "{path}: the table needs at least {min} instance(s)"
            )));
        }
        // Nested instances first (innermost first), then the instance itself.
        let mut doomed: Vec<(usize, Inst)> = Vec::new();
        self.nested_instances(t, &inst, &mut doomed)?;
        doomed.push((t, inst.clone()));
        let mut touched: Vec<BackendKind> = Vec::new();
        for (obj, i) in &doomed {
            let Some(tb) = self.schema.objects()[*obj].table.as_ref() else {
                continue;
            };
            let kind = tb.binding.backend;
            let (Some(own_key), outer) = (i.keys.last(), &i.keys[..i.keys.len().saturating_sub(1)])
            else {
                continue;
            };
            let nested = *obj != t;
            // A nested table whose instances do not hang on this one (port forwards of the
            // WAN zone shown under its `wan` connection, `under`) or that cannot be deleted
            // (addresses read from /proc) loses only its bookkeeping: deleting a connection
            // must not delete the firewall's port forwards.
            if nested && (!tb.binding.key.contains("{i}") || !self.creatable(*obj, &parent_of(i))) {
                continue;
            }
            let tkey = expand(&tb.binding.key, outer);
            if !touched.contains(&kind) {
                touched.push(kind);
            }
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            if let Err(e) = self
                .backends
                .get(kind)
                .stage_delete(&mut cx, &tkey, own_key)
            {
                self.rollback_all(&touched);
                return Err(e);
            }
        }
        let applied = self.apply_all(&touched)?;
        let tpath = self.table_path(t, &parent_inst);
        if let Some(ts) = self.state.tables.get_mut(&tpath) {
            ts.instances.remove(&number);
            ts.next = ts.next.max(number.saturating_add(1));
        }
        let prefix = format!("{tpath}{number}.");
        self.state.tables.retain(|k, _| !k.starts_with(&prefix));
        self.state.attributes.retain(|k, _| !k.starts_with(&prefix));
        self.reported.retain(|k, _| !k.starts_with(&prefix));
        self.dirty = true;
        self.set_parameter_key(parameter_key);
        Ok(applied)
    }

    /// The parameters forced into every Inform (`forcedInform` in the model), with values, then
    /// the enabled `InformParameter` entries whose EventList is empty (TR-069 §3.7.1.4).
    pub fn forced_inform(&mut self) -> Vec<ParameterValue> {
        self.inform_parameters(&[])
    }

    /// The Inform ParameterList for these event codes, before notifications (TR-069 §3.7.1.4):
    /// the forced parameters, then the parameters named by enabled `InformParameter` entries
    /// whose EventList holds one of `events` (an empty EventList means every event but
    /// `4 VALUE CHANGE`; with no events given, only entries with an empty EventList count).
    /// Values that cannot be read are left out.
    pub fn inform_parameters(&mut self, events: &[&str]) -> Vec<ParameterValue> {
        let mut refs = Vec::new();
        for o in 0..self.schema.objects().len() {
            let forced: Vec<usize> = self.schema.objects()[o]
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| p.def.forced_inform)
                .map(|(i, _)| i)
                .collect();
            if forced.is_empty() {
                continue;
            }
            for inst in self.all_instances(o) {
                for &param in &forced {
                    refs.push(ParamRef {
                        obj: o,
                        param,
                        inst: inst.clone(),
                    });
                }
            }
        }
        let mut seen: HashSet<String> = refs.iter().map(|r| self.param_path(r)).collect();
        for pattern in self.inform_parameter_patterns(events) {
            for r in self.expand_pattern(&pattern) {
                if seen.insert(self.param_path(&r)) {
                    refs.push(r);
                }
            }
        }
        let values = self.read_lenient(&refs, true);
        refs.iter()
            .zip(values)
            .filter_map(|(r, v)| {
                v.map(|value| ParameterValue {
                    name: self.param_path(r),
                    value,
                    ty: self.base(r),
                })
            })
            .collect()
    }

    /// Parameters with notification 1 or 2 whose value differs from the last reported one:
    /// `(changed, any_active)`. Call [`Engine::mark_reported`] once the Inform was accepted.
    /// A parameter seen for the first time (e.g. a default-active one after the first start)
    /// has its current value recorded instead of being reported.
    pub fn notifications(&mut self) -> (Vec<ParameterValue>, bool) {
        let mut candidates: BTreeSet<String> = self
            .state
            .attributes
            .iter()
            .filter(|(_, a)| (1..=2).contains(&a.notification))
            .map(|(p, _)| p.clone())
            .collect();
        for o in 0..self.schema.objects().len() {
            let forced: Vec<usize> = self.schema.objects()[o]
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| p.def.active_notify.default_notification() != 0)
                .map(|(i, _)| i)
                .collect();
            if forced.is_empty() {
                continue;
            }
            for inst in self.all_instances(o) {
                for &param in &forced {
                    candidates.insert(self.param_path(&ParamRef {
                        obj: o,
                        param,
                        inst: inst.clone(),
                    }));
                }
            }
        }
        let mut refs = Vec::new();
        let mut notes = Vec::new();
        for path in candidates {
            if let Ok(Node::Param(obj, param, inst)) = self.resolve(&path) {
                let r = ParamRef { obj, param, inst };
                let n = self.notification(&r, &path);
                if n != 0 {
                    refs.push(r);
                    notes.push(n);
                }
            }
        }
        let values = self.read_lenient(&refs, true);
        let mut changed = Vec::new();
        let mut active = false;
        for ((r, n), v) in refs.iter().zip(notes).zip(values) {
            let Some(value) = v else { continue };
            let name = self.param_path(r);
            match self.reported.get(&name) {
                Some(old) if *old == value => {}
                Some(_) => {
                    active |= n == 2;
                    changed.push(ParameterValue {
                        name,
                        value,
                        ty: self.base(r),
                    });
                }
                None => self.note_reported(name, value),
            }
        }
        (changed, active)
    }

    /// Records values as reported to the ACS (after an InformResponse, or for changes the ACS made).
    pub fn mark_reported(&mut self, values: &[ParameterValue]) {
        for pv in values {
            if let Ok(Node::Param(obj, param, inst)) = self.resolve(&pv.name) {
                let r = ParamRef { obj, param, inst };
                if self.notification(&r, &pv.name) != 0 {
                    self.note_reported(pv.name.clone(), pv.value.clone());
                }
            }
        }
    }

    /// The last value reported to the ACS (or first seen) of a parameter with notification on;
    /// kept in RAM only.
    pub fn last_reported(&self, path: &str) -> Option<&str> {
        self.reported.get(path).map(String::as_str)
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

    /// The backends, for the agent to push runtime values (e.g. ConnectionRequestURL).
    pub fn backends_mut(&mut self) -> &mut backend::Backends {
        &mut self.backends
    }

    // ---- changes -----------------------------------------------------------------------------

    /// Validates every change, stages them, applies them across backends, all or nothing.
    fn apply_sets(&mut self, list: &[SetValue], from_acs: bool) -> Result<Applied, Fault> {
        let mut seen = HashSet::new();
        for sv in list {
            if !seen.insert(sv.name.as_str()) {
                return Err(Fault::InvalidArguments(
                    format!("{} is given more than once", sv.name),
                    Vec::new(),
                ));
            }
        }
        let mut faults = Vec::new();
        let mut checked = Vec::new();
        for sv in list {
            match self.check_set(sv) {
                Ok(x) => checked.push(x),
                Err(fault) => faults.push(ParamFault {
                    name: sv.name.clone(),
                    fault,
                }),
            }
        }
        if !faults.is_empty() {
            return Err(invalid(faults));
        }
        // A value that already reads as asked is not written: an ACS re-sending its whole
        // configuration reloads no service, and a backend value several model values share
        // (WPA2 and WPA3 both shown as `11i`) is not replaced by another.
        let refs: Vec<ParamRef> = checked.iter().map(|(r, _, _)| r.clone()).collect();
        let current = self.read_lenient(&refs, false);
        let checked: Vec<(ParamRef, String, String)> = checked
            .into_iter()
            .zip(current)
            .filter(|((_, value, _), now)| now.as_ref() != Some(value))
            .map(|(c, _)| c)
            .collect();
        let mut touched: Vec<BackendKind> = Vec::new();
        // What was staged where: (backend, key, parameter path), to name refused parameters.
        let mut staged: Vec<(BackendKind, String, String)> = Vec::new();
        for (r, _, stored) in &checked {
            let (kind, key) = match self.full_key(r) {
                None => continue,
                Some((kind, Ok(key))) => (kind, key),
                Some((_, Err(key))) => {
                    faults.push(ParamFault {
                        name: self.param_path(r),
                        fault: Fault::internal(format!("{key}: a reference has no value")),
                    });
                    continue;
                }
            };
            if !touched.contains(&kind) {
                touched.push(kind);
            }
            staged.push((kind, key.clone(), self.param_path(r)));
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            if let Err(fault) = self.backends.get(kind).stage_set(&mut cx, &key, stored) {
                if (9005..=9008).contains(&fault.code()) {
                    faults.push(ParamFault {
                        name: self.param_path(r),
                        fault,
                    });
                } else {
                    self.rollback_all(&touched);
                    return Err(fault);
                }
            }
        }
        if !faults.is_empty() {
            self.rollback_all(&touched);
            return Err(invalid(faults));
        }
        let applied = match self.apply_all(&touched) {
            Ok(a) => a,
            Err(e) => {
                // A backend that refused values while applying says which (§A.3.2.1: 9003
                // with the refused parameters); everything was rolled back already.
                let mut faults = Vec::new();
                // Indexed once: a backend may refuse as many values as were staged.
                let mut by_key: std::collections::HashMap<(BackendKind, &str), &String> =
                    std::collections::HashMap::with_capacity(staged.len());
                for (k, key, name) in &staged {
                    by_key.entry((*k, key.as_str())).or_insert(name);
                }
                for &kind in &touched {
                    for (key, fault) in self.backends.get(kind).take_set_faults() {
                        if let Some(name) = by_key.get(&(kind, key.as_str())) {
                            faults.push(ParamFault {
                                name: (*name).clone(),
                                fault,
                            });
                        }
                    }
                }
                return Err(if faults.is_empty() {
                    e
                } else {
                    invalid(faults)
                });
            }
        };
        if from_acs {
            // Changes made by the ACS are not notified back to it (§A.3.2.4).
            for (r, value, _) in &checked {
                let name = self.param_path(r);
                if self.notification(r, &name) != 0 {
                    let p = &self.schema.objects()[r.obj].params[r.param].def;
                    let shown = if p.hidden {
                        null_value(p.ty.base).to_string()
                    } else {
                        value.clone()
                    };
                    self.note_reported(name, shown);
                }
            }
        }
        Ok(applied)
    }

    /// Checks one SetParameterValuesStruct: the name (9005), writability (9008), the xsi:type
    /// (9006; `xsd:string` is accepted for any type, as many ACSes send it) and the value
    /// (9007). Returns the parameter and the value in canonical form.
    fn check_set(&mut self, sv: &SetValue) -> Result<(ParamRef, String, String), Fault> {
        let Node::Param(obj, param, inst) = self.resolve(&sv.name)? else {
            return Err(Fault::InvalidParameterName(sv.name.clone()));
        };
        let r = ParamRef { obj, param, inst };
        if !self.param_writable(&r) {
            return Err(Fault::NonWritableParameter(sv.name.clone()));
        }
        let ty = &self.schema.objects()[obj].params[param].def.ty;
        match &sv.xsi_type {
            None => {}
            Some(XsiType::Known(t)) if *t == ty.base || *t == BaseType::String => {}
            Some(XsiType::Known(t)) => {
                return Err(Fault::InvalidParameterType(format!(
                    "{} is {}, not {}",
                    sv.name,
                    ty.base.xsi_type(),
                    t.xsi_type()
                )))
            }
            Some(XsiType::Unknown(t)) => {
                return Err(Fault::InvalidParameterType(format!("unknown type {t:?}")))
            }
        }
        let value = ty.check(&sv.value)?;
        self.check_inform_parameter(&r, &value)?;
        self.check_acs_url(&r, &value)?;
        let stored = self.stored_value(&r, &value)?;
        Ok((r, value, stored))
    }

    /// The rules of the InformParameter table (TR-181 `ManagementServer.InformParameter.{i}.`,
    /// TR-069 §3.7.1.4): ParameterName may use `*` only in place of instance numbers and may not
    /// name a forced Inform parameter; EventList may not hold `4 VALUE CHANGE` (9007).
    fn check_inform_parameter(&mut self, r: &ParamRef, value: &str) -> Result<(), Fault> {
        let obj = &self.schema.objects()[r.obj];
        if obj.path != format!("{}{INFORM_PARAMETER}", self.root()) {
            return Ok(());
        }
        match obj.params[r.param].def.name.as_str() {
            "ParameterName" => {
                if !self.wildcards_on_instances(value) {
                    return Err(Fault::InvalidParameterValue(format!(
                        "{value:?}: `*` may only replace an instance number"
                    )));
                }
                let forced = self.expand_pattern(value).iter().any(|p| {
                    self.schema.objects()[p.obj].params[p.param]
                        .def
                        .forced_inform
                });
                if forced && !value.ends_with('.') {
                    return Err(Fault::InvalidParameterValue(format!(
                        "{value} is a forced Inform parameter"
                    )));
                }
            }
            "EventList" if value.split(',').any(|e| e.trim() == "4 VALUE CHANGE") => {
                return Err(Fault::InvalidParameterValue(
                    "\"4 VALUE CHANGE\" is not allowed in EventList".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// `ManagementServer.URL` (TR-181 and TR-098) "MUST be in the form of a valid HTTP or
    /// HTTPS URL" (9007 otherwise): a URL the agent can reach its ACS at, so that no value can
    /// orphan the device (`file://`, empty, a line break). The value is not echoed: a URL with
    /// user information would carry a password.
    fn check_acs_url(&self, r: &ParamRef, value: &str) -> Result<(), Fault> {
        let obj = &self.schema.objects()[r.obj];
        if obj.path != format!("{}ManagementServer.", self.root())
            || obj.params[r.param].def.name != "URL"
        {
            return Ok(());
        }
        let bad = |why: &str| {
            Err(Fault::InvalidParameterValue(format!(
                "ManagementServer.URL must be a valid HTTP or HTTPS URL: {why}"
            )))
        };
        if value.is_empty() {
            return bad("it is empty");
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad("it holds a space or a control character");
        }
        match crate::http::acs::Target::parse(value) {
            Ok(_) => Ok(()),
            Err(why) => bad(&why),
        }
    }

    /// Whether every `*` of a pattern stands where the tree has an instance number.
    fn wildcards_on_instances(&self, pattern: &str) -> bool {
        if !pattern.contains('*') {
            return true;
        }
        let body = pattern.strip_suffix('.').unwrap_or(pattern);
        let segs: Vec<&str> = body.split('.').collect();
        if segs.first() != Some(&self.root().trim_end_matches('.')) {
            return false;
        }
        let objects = self.schema.objects();
        let mut o = 0;
        let mut instance_position = false;
        for (i, seg) in segs.iter().enumerate().skip(1) {
            if instance_position {
                if *seg != "*" && instance_number(seg).is_none() {
                    return false;
                }
                instance_position = false;
                continue;
            }
            match objects[o]
                .children
                .iter()
                .find(|&&c| objects[c].name == *seg)
            {
                Some(&c) => {
                    o = c;
                    instance_position = objects[c].table.is_some();
                }
                // `*` where the tree has an object or a parameter name.
                None if seg.contains('*') => return false,
                // Past a parameter, or a name this CPE does not have, only the form can be
                // checked: `*` is a whole node.
                None => return segs[i..].iter().all(|s| *s == "*" || !s.contains('*')),
            }
        }
        true
    }

    /// The ParameterName of each enabled InformParameter entry that applies to `events`.
    fn inform_parameter_patterns(&mut self, events: &[&str]) -> Vec<String> {
        let path = format!("{}{INFORM_PARAMETER}", self.root());
        let Some(t) = self.schema.object_index(&path) else {
            return Vec::new();
        };
        let field = |s: &Self, name: &str| {
            s.schema.objects()[t]
                .params
                .iter()
                .position(|p| p.def.name == name)
        };
        let (Some(enable), Some(pname), Some(elist)) = (
            field(self, "Enable"),
            field(self, "ParameterName"),
            field(self, "EventList"),
        ) else {
            return Vec::new();
        };
        let mut refs = Vec::new();
        for inst in self.all_instances(t) {
            for param in [enable, pname, elist] {
                refs.push(ParamRef {
                    obj: t,
                    param,
                    inst: inst.clone(),
                });
            }
        }
        let values = self.read_lenient(&refs, false);
        values
            .chunks(3)
            .filter_map(|c| match c {
                [Some(en), Some(name), Some(list)] if en == "true" && !name.is_empty() => {
                    let list: Vec<&str> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .collect();
                    let applies = if list.is_empty() {
                        events.is_empty() || events.iter().any(|e| *e != "4 VALUE CHANGE")
                    } else {
                        events.iter().any(|e| list.contains(e))
                    };
                    applies.then(|| name.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn apply_all(&mut self, touched: &[BackendKind]) -> Result<Applied, Fault> {
        let mut applied = Applied::Now;
        for &kind in touched {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            match self.backends.get(kind).apply(&mut cx) {
                Ok(Applied::AtSessionEnd) => applied = Applied::AtSessionEnd,
                Ok(Applied::Now) => {}
                Err(e) => {
                    self.rollback_all(touched);
                    return Err(e);
                }
            }
        }
        // Keys the change itself renamed (uci names anonymous sections by position: a deleted
        // section renames those after it) are followed now, so the state written before the
        // response already maps each instance number to its section's new name.
        self.follow_renames(touched);
        if self.hold {
            if let Some(p) = &mut self.pending {
                for &kind in touched {
                    if !p.touched.contains(&kind) {
                        p.touched.push(kind);
                    }
                }
                self.dirty = true;
                return Ok(applied);
            }
        }
        self.commit_all(touched);
        Ok(applied)
    }

    fn commit_all(&mut self, touched: &[BackendKind]) {
        for &kind in touched {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            self.backends.get(kind).commit(&mut cx);
            self.dirty |= cx.changed;
        }
    }

    /// Takes the renames of the applied change from each backend and moves the instances (and
    /// agent values such as an Alias) of the tables in their scope to the new keys.
    fn follow_renames(&mut self, touched: &[BackendKind]) {
        for &kind in touched {
            let renames = self.backends.get(kind).take_renames();
            if renames.is_empty() {
                continue;
            }
            let mut by_scope: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for (scope, old, new) in renames {
                by_scope.entry(scope).or_default().insert(old, new);
            }
            // The tables of this backend in each scope, by generic table path.
            let tables: Vec<(String, &BTreeMap<String, String>)> = self
                .schema
                .objects()
                .iter()
                .filter_map(|o| {
                    let tb = o.table.as_ref().filter(|tb| tb.binding.backend == kind)?;
                    let scope = tb.binding.key.split('.').next()?;
                    let pairs = by_scope.get(scope)?;
                    let generic = o.path.strip_suffix("{i}.").unwrap_or(&o.path);
                    Some((generic.to_string(), pairs))
                })
                .collect();
            for (tpath, ts) in self.state.tables.iter_mut() {
                let Some((_, pairs)) = tables.iter().find(|(g, _)| generic_matches(g, tpath))
                else {
                    continue;
                };
                // All at once: two sections may trade names.
                for v in ts.instances.values_mut() {
                    if let Some(new) = pairs.get(v.as_str()) {
                        v.clone_from(new);
                        self.dirty = true;
                    }
                }
            }
            for pairs in by_scope.values() {
                self.rekey_agent_values(pairs);
            }
        }
    }

    fn rollback_all(&mut self, touched: &[BackendKind]) {
        for &kind in touched {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            self.backends.get(kind).rollback(&mut cx);
        }
    }

    /// Sets ParameterKey after a successful SetParameterValues, AddObject or DeleteObject
    /// (§A.3.2.1); the ACS made this change, so it is not notified back.
    fn set_parameter_key(&mut self, key: &str) {
        if self.state.values.get(PARAMETER_KEY).map(String::as_str) != Some(key) {
            self.state
                .values
                .insert(PARAMETER_KEY.to_string(), key.to_string());
            self.dirty = true;
        }
        let path = format!("{}ManagementServer.ParameterKey", self.root());
        if let Ok(Node::Param(obj, param, inst)) = self.resolve(&path) {
            if self.notification(&ParamRef { obj, param, inst }, &path) != 0 {
                self.note_reported(path, key.to_string());
            }
        }
    }

    // ---- attributes --------------------------------------------------------------------------

    /// The effective notification attribute: forced where the model forces it.
    fn notification(&self, r: &ParamRef, path: &str) -> u8 {
        let an = self.schema.objects()[r.obj].params[r.param]
            .def
            .active_notify;
        if an == ActiveNotify::ForceEnabled {
            return 2;
        }
        self.state
            .attributes
            .get(path)
            .map_or(an.default_notification(), |a| a.notification)
    }

    fn note_reported(&mut self, path: String, value: String) {
        self.reported.insert(path, value);
    }
}

/// ParameterKey is a string(32) (§A.3.2.1, `ParameterKeyType` of the RPC schema).
fn check_parameter_key(key: &str) -> Result<(), Fault> {
    if key.chars().count() > 32 {
        return Err(Fault::InvalidArguments(
            "ParameterKey is longer than 32 characters".into(),
            Vec::new(),
        ));
    }
    Ok(())
}

fn invalid(faults: Vec<ParamFault>) -> Fault {
    Fault::InvalidArguments(
        format!("{} parameter(s) cannot be set", faults.len()),
        faults,
    )
}
