//! The changes: SetParameterValues, AddObject, DeleteObject (TR-069 §A.3.2.1, §A.3.2.6,
//! §A.3.2.7), all or nothing across backends (stage, apply revertibly, commit or roll back),
//! ParameterKey, and the hold that keeps a change uncommitted until its state is durable.

use std::collections::{BTreeMap, HashSet};

use super::backend::registry::BackendKind;
use super::backend::{Cx, PARAMETER_KEY};
use super::path::{expand, generic_matches, parent_of, Inst, Node, ParamRef};
use super::read::null_value;
use super::Engine;
use super::Pending;
use super::MAX_INSTANCES;
use crate::cwmp::fault::{Fault, ParamFault};
use crate::cwmp::value::BaseType;
use crate::cwmp::value::{SetValue, XsiType};
use crate::datamodel::backend::Applied;

impl Engine {
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
    pub(super) fn begin_change(&mut self) {
        if self.hold && self.pending.is_none() {
            self.pending = Some(Pending {
                state: self.state.clone(),
                reported: self.reported.clone(),
                touched: Vec::new(),
            });
        }
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
        self.live_tables.retain(|k, _| !k.starts_with(&prefix));
        self.state.attributes.retain(|k, _| !k.starts_with(&prefix));
        self.reported.retain(|k, _| !k.starts_with(&prefix));
        self.dirty = true;
        self.set_parameter_key(parameter_key);
        Ok(applied)
    }

    /// Validates every change, stages them, applies them across backends, all or nothing.
    pub(super) fn apply_sets(
        &mut self,
        list: &[SetValue],
        from_acs: bool,
    ) -> Result<Applied, Fault> {
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
        // The values that passed are staged even so: a backend's own refusals join the list,
        // so the fault names every parameter in error (§A.3.2.1), and nothing is applied.
        // A value that already reads as asked is not written: an ACS re-sending its whole
        // configuration reloads no service, and a backend value several model values share
        // (WPA2 and WPA3 both shown as `11i`) is not replaced by another.
        let refs: Vec<ParamRef> = checked.iter().map(|(r, _, _)| r.clone()).collect();
        let mut current = self.read_lenient(&refs, false);
        // Each parameter's backend key, made once (its references read once) for the
        // decision below and the staging.
        let keys: Vec<_> = refs.iter().map(|r| self.full_key(r)).collect();
        // Unless the backend wants every write (a diagnostic requested again restarts).
        for (k, now) in keys.iter().zip(current.iter_mut()) {
            if let Some((kind, Ok(key))) = k {
                if self.backends.peek(*kind).always_write(key) {
                    *now = None;
                }
            }
        }
        type Keyed = (
            (ParamRef, String, String),
            Option<(BackendKind, Result<String, String>)>,
        );
        let checked: Vec<Keyed> = checked
            .into_iter()
            .zip(keys)
            .zip(current)
            .filter(|(((_, value, _), _), now)| now.as_ref() != Some(value))
            .map(|(c, _)| c)
            .collect();
        let mut touched: Vec<BackendKind> = Vec::new();
        // What was staged where: (backend, key, parameter path), to name refused parameters.
        let mut staged: Vec<(BackendKind, String, String)> = Vec::new();
        for ((r, _, stored), full_key) in &checked {
            let (kind, key) = match full_key {
                None => continue,
                Some((kind, Ok(key))) => (*kind, key.clone()),
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
            for ((r, value, _), _) in &checked {
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
    pub(super) fn check_set(&mut self, sv: &SetValue) -> Result<(ParamRef, String, String), Fault> {
        let Node::Param(obj, param, inst) = self.resolve(&sv.name)? else {
            return Err(Fault::InvalidParameterName(sv.name.clone()));
        };
        let r = ParamRef {
            obj,
            param,
            inst: inst.into(),
        };
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
        self.check_interface(&r, &value)?;
        let stored = self.stored_value(&r, &value)?;
        Ok((r, value, stored))
    }

    /// A diagnostic's `Interface` (and the UDP echo server's) must name an interface whose
    /// device the agent can find (a `[device]` binding), or be empty: a test bound to nothing
    /// it can honour is refused now (9007), not run on the wrong interface later.
    pub(super) fn check_interface(&mut self, r: &ParamRef, value: &str) -> Result<(), Fault> {
        let super::schema::Source::Bound(b) = &self.schema.objects()[r.obj].params[r.param].source
        else {
            return Ok(());
        };
        if b.backend != BackendKind::Diag || !b.key.ends_with(".Interface") {
            return Ok(());
        }
        self.interface(value).map(drop)
    }

    /// `ManagementServer.URL` (TR-181 and TR-098) "MUST be in the form of a valid HTTP or
    /// HTTPS URL" (9007 otherwise): a URL the agent can reach its ACS at, so that no value can
    /// orphan the device (`file://`, empty, a line break). The value is not echoed: a URL with
    /// user information would carry a password.
    pub(super) fn check_acs_url(&self, r: &ParamRef, value: &str) -> Result<(), Fault> {
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
        match super::management::acs_url_check(value) {
            Ok(()) => Ok(()),
            Err(why) => bad(why),
        }
    }

    pub(super) fn apply_all(&mut self, touched: &[BackendKind]) -> Result<Applied, Fault> {
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

    pub(super) fn commit_all(&mut self, touched: &[BackendKind]) {
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
    pub(super) fn follow_renames(&mut self, touched: &[BackendKind]) {
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

    pub(super) fn rollback_all(&mut self, touched: &[BackendKind]) {
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
    pub(super) fn set_parameter_key(&mut self, key: &str) {
        if self.state.values.get(PARAMETER_KEY).map(String::as_str) != Some(key) {
            self.state
                .values
                .insert(PARAMETER_KEY.to_string(), key.to_string());
            self.dirty = true;
        }
        let path = format!("{}ManagementServer.ParameterKey", self.root());
        if let Ok(Node::Param(obj, param, inst)) = self.resolve(&path) {
            let r = ParamRef {
                obj,
                param,
                inst: inst.into(),
            };
            if self.notification(&r, &path) != 0 {
                self.note_reported(path, key.to_string());
            }
        }
    }
}

/// ParameterKey is a string(32) (§A.3.2.1, `ParameterKeyType` of the RPC schema).
pub(super) fn check_parameter_key(key: &str) -> Result<(), Fault> {
    if key.chars().count() > 32 {
        return Err(Fault::InvalidArguments(
            "ParameterKey is longer than 32 characters".into(),
            Vec::new(),
        ));
    }
    Ok(())
}

pub(super) fn invalid(faults: Vec<ParamFault>) -> Fault {
    Fault::InvalidArguments(
        format!("{} parameter(s) cannot be set", faults.len()),
        faults,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::backend::agent::MAX_AGENT_BYTES;
    use crate::datamodel::fixture::{self, code, get, param_faults, set};

    fn key(e: &Engine) -> Option<&str> {
        e.state().values.get(PARAMETER_KEY).map(String::as_str)
    }

    #[test]
    fn set_values_all_or_nothing_with_a_fault_per_parameter() {
        let mut e = fixture::engine();
        let r = e.set_values(
            &[
                set("Device.A.S", "fine"),
                set("Device.A.X", "0"),     // out of range: 9007
                set("Device.A.RO", "x"),    // read-only: 9008
                set("Device.A.Fixed", "0"), // const: 9008
                set("Device.A.Nope", "1"),  // unknown: 9005
                set("Device.A.S2", "1"),    // unknown: 9005
            ],
            "k1",
        );
        assert_eq!(
            param_faults(r),
            [
                ("Device.A.X".to_string(), 9007),
                ("Device.A.RO".to_string(), 9008),
                ("Device.A.Fixed".to_string(), 9008),
                ("Device.A.Nope".to_string(), 9005),
                ("Device.A.S2".to_string(), 9005),
            ]
        );
        // Nothing applied, ParameterKey untouched.
        assert_eq!(get(&mut e, "Device.A.S"), "");
        assert_eq!(key(&e), None);
        assert_eq!(e.take_dirty(), None);
        // The same without the bad ones applies, and sets the key.
        assert_eq!(
            e.set_values(&[set("Device.A.S", "fine"), set("Device.A.X", "7")], "k1"),
            Ok(Applied::Now)
        );
        assert_eq!(get(&mut e, "Device.A.S"), "fine");
        assert_eq!(get(&mut e, "Device.A.X"), "7");
        assert_eq!(key(&e), Some("k1"));
        assert!(e.take_dirty().is_some());
    }

    #[test]
    fn request_level_faults() {
        let mut e = fixture::engine();
        // A name given twice: 9003 without parameter faults.
        let twice = e.set_values(&[set("Device.A.S", "a"), set("Device.A.S", "b")], "");
        assert_eq!(param_faults(twice), []);
        // A ParameterKey over 32 characters.
        assert_eq!(
            code(e.set_values(&[set("Device.A.S", "a")], &"k".repeat(33))),
            9003
        );
        assert_eq!(code(e.add_object("Device.A.T.", &"k".repeat(33))), 9003);
        // The xsi:type must be the parameter's, or xsd:string.
        let mut typed = set("Device.A.X", "9");
        typed.xsi_type = Some(XsiType::Known(BaseType::Boolean));
        assert_eq!(
            param_faults(e.set_values(std::slice::from_ref(&typed), "")),
            [("Device.A.X".to_string(), 9006)]
        );
        typed.xsi_type = Some(XsiType::Known(BaseType::String));
        assert!(e.set_values(&[typed], "").is_ok());
        assert_eq!(get(&mut e, "Device.A.X"), "9");
    }

    #[test]
    fn a_failed_apply_rolls_every_value_back() {
        let mut e = fixture::engine();
        e.set_values(&[set("Device.A.S", "before")], "k0").unwrap();
        e.take_dirty();
        // The second value makes the agent store exceed its bound while applying: 9004, and the
        // first, applied already, is undone.
        let big = "b".repeat(MAX_AGENT_BYTES);
        let r = e.set_values(
            &[set("Device.A.S", "after"), set("Device.A.Big", &big)],
            "k1",
        );
        assert_eq!(code(r), 9004);
        assert_eq!(get(&mut e, "Device.A.S"), "before");
        assert_eq!(get(&mut e, "Device.A.Big"), "");
        assert_eq!(key(&e), Some("k0"));
    }

    #[test]
    fn a_held_change_is_undone_unless_durable() {
        let mut e = fixture::engine();
        e.hold();
        e.set_values(&[set("Device.A.S", "held")], "k1").unwrap();
        assert_eq!(get(&mut e, "Device.A.S"), "held");
        // The state could not be written: everything returns to what it was.
        assert!(e.settle(false));
        assert_eq!(get(&mut e, "Device.A.S"), "");
        assert_eq!(key(&e), None);
        e.hold();
        e.add_object("Device.A.T.", "k2").unwrap();
        assert!(!e.settle(true));
        assert_eq!(get(&mut e, "Device.A.TNumberOfEntries"), "1");
        assert_eq!(key(&e), Some("k2"));
        // Nothing held: nothing to undo.
        assert!(!e.settle(false));
    }

    #[test]
    fn instance_numbers_are_never_reused() {
        let mut e = fixture::engine();
        let add = |e: &mut Engine| e.add_object("Device.A.T.", "").map(|(n, _)| n);
        assert_eq!(add(&mut e), Ok(1));
        assert_eq!(add(&mut e), Ok(2));
        assert_eq!(add(&mut e), Ok(3));
        // max_entries = 3.
        assert_eq!(code(add(&mut e)), 9004);
        e.set_values(&[set("Device.A.T.3.V", "three")], "").unwrap();
        assert_eq!(e.delete_object("Device.A.T.3.", "k"), Ok(Applied::Now));
        assert_eq!(key(&e), Some("k"));
        // The number of a deleted instance is not handed out again, nor are its values.
        assert_eq!(add(&mut e), Ok(4));
        assert_eq!(get(&mut e, "Device.A.T.4.V"), "");
        assert_eq!(code(e.values(&["Device.A.T.3.V".to_string()])), 9005);
        let ts = &e.state().tables["Device.A.T."];
        assert_eq!(ts.next, 5);
        assert_eq!(ts.instances.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
    }

    #[test]
    fn delete_takes_the_nested_instances_and_their_bookkeeping() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "").unwrap();
        e.add_object("Device.A.T.1.U.", "").unwrap();
        e.set_values(&[set("Device.A.T.1.U.1.W", "-4")], "")
            .unwrap();
        assert!(e.state().tables.contains_key("Device.A.T.1.U."));
        e.delete_object("Device.A.T.1.", "").unwrap();
        assert!(!e.state().tables.contains_key("Device.A.T.1.U."));
        assert!(e.state().values.keys().all(|k| !k.starts_with("a.t.1.")));
        // Re-created, the nested table starts empty.
        e.add_object("Device.A.T.", "").unwrap();
        assert_eq!(e.names("Device.A.T.2.U.", true).unwrap(), []);
    }

    #[test]
    fn add_and_delete_name_what_they_act_on() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "k0").unwrap();
        // AddObject needs a table, DeleteObject an instance.
        for bad in [
            "Device.A.T",
            "Device.A.",
            "Device.A.T.1.",
            "Device.B.",
            "Device.A.X",
        ] {
            assert_eq!(code(e.add_object(bad, "")), 9005, "{bad}");
        }
        for bad in ["Device.A.T.", "Device.A.T.1", "Device.A.", "Device.A.T.9."] {
            assert_eq!(code(e.delete_object(bad, "")), 9005, "{bad}");
        }
        assert_eq!(key(&e), Some("k0"));
    }
}
