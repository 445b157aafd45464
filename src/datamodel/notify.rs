//! Attributes and notification: SetParameterAttributes (TR-069 §A.3.2.4, with the model's
//! `activeNotify` rules), value-change detection against the last reported values, and the
//! Inform's forced and InformParameter parameters (§3.7.1.4).

use std::collections::{BTreeSet, HashSet};

use super::path::{instance_number, Inst, Node, ParamRef};
use super::schema::{ActiveNotify, ParamDef};
use super::{Attributes, Engine};
use crate::cwmp::fault::Fault;
use crate::cwmp::value::{ParameterValue, SetAttributes};

/// The only AccessList entity defined by TR-069 (§A.3.2.4).
pub(super) const SUBSCRIBER: &str = "Subscriber";

/// The parameter path (relative to the root) of the InformParameter table (TR-069 §3.7.1.4).
pub(super) const INFORM_PARAMETER: &str = "ManagementServer.InformParameter.{i}.";

impl Engine {
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

    /// Every instance of every parameter whose definition `keep` selects, object by object in
    /// schema order.
    fn every_instance_of(&mut self, keep: impl Fn(&ParamDef) -> bool) -> Vec<ParamRef> {
        let mut refs = Vec::new();
        for o in 0..self.schema.objects().len() {
            let params: Vec<usize> = self.schema.objects()[o]
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| keep(&p.def))
                .map(|(i, _)| i)
                .collect();
            if params.is_empty() {
                continue;
            }
            for inst in self.all_instances(o) {
                let inst = std::rc::Rc::new(inst);
                for &param in &params {
                    refs.push(ParamRef {
                        obj: o,
                        param,
                        inst: inst.clone(),
                    });
                }
            }
        }
        refs
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
        let mut refs = self.every_instance_of(|def| def.forced_inform);
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
        for r in self.every_instance_of(|def| def.active_notify.default_notification() != 0) {
            candidates.insert(self.param_path(&r));
        }
        let mut refs = Vec::new();
        let mut notes = Vec::new();
        for path in candidates {
            if let Ok(Node::Param(obj, param, inst)) = self.resolve(&path) {
                let r = ParamRef {
                    obj,
                    param,
                    inst: inst.into(),
                };
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
                let r = ParamRef {
                    obj,
                    param,
                    inst: inst.into(),
                };
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

    /// The rules of the InformParameter table (TR-181 `ManagementServer.InformParameter.{i}.`,
    /// TR-069 §3.7.1.4): ParameterName may use `*` only in place of instance numbers and may not
    /// name a forced Inform parameter; EventList may not hold `4 VALUE CHANGE` (9007).
    pub(super) fn check_inform_parameter(
        &mut self,
        r: &ParamRef,
        value: &str,
    ) -> Result<(), Fault> {
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

    /// Whether every `*` of a pattern stands where the tree has an instance number.
    pub(super) fn wildcards_on_instances(&self, pattern: &str) -> bool {
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
    pub(super) fn inform_parameter_patterns(&mut self, events: &[&str]) -> Vec<String> {
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
            let inst = std::rc::Rc::new(inst);
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

    /// The effective notification attribute: forced where the model forces it.
    pub(super) fn notification(&self, r: &ParamRef, path: &str) -> u8 {
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

    pub(super) fn note_reported(&mut self, path: String, value: String) {
        self.reported.insert(path, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::fixture::{self, attr, code, set};

    fn notification(e: &mut Engine, path: &str) -> u8 {
        e.attributes(&[path.to_string()]).unwrap()[0].notification
    }

    fn changed(e: &mut Engine) -> (Vec<(String, String)>, bool) {
        let (list, active) = e.notifications();
        (
            list.into_iter().map(|p| (p.name, p.value)).collect(),
            active,
        )
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn the_models_active_notify_rules() {
        let mut e = fixture::engine();
        // canDeny: active notification refused on the parameter itself (9009); passive allowed.
        assert_eq!(code(e.set_attributes(&[attr("Device.A.Deny", 2)])), 9009);
        e.set_attributes(&[attr("Device.A.Deny", 1)]).unwrap();
        assert_eq!(notification(&mut e, "Device.A.Deny"), 1);
        // forceEnabled: always 2, cannot be turned off.
        assert_eq!(code(e.set_attributes(&[attr("Device.A.Forced", 0)])), 9009);
        assert_eq!(notification(&mut e, "Device.A.Forced"), 2);
        // On a partial path, the parameters that refuse keep their attribute.
        e.set_attributes(&[attr("Device.A.", 2)]).unwrap();
        assert_eq!(notification(&mut e, "Device.A.X"), 2);
        assert_eq!(notification(&mut e, "Device.A.Deny"), 1);
        e.set_attributes(&[attr("Device.A.", 0)]).unwrap();
        assert_eq!(notification(&mut e, "Device.A.X"), 0);
        assert_eq!(notification(&mut e, "Device.A.Forced"), 2);
        // Defaults are not stored.
        assert!(e.state().attributes.keys().all(|k| k == "Device.A.Deny"));
    }

    #[test]
    fn attribute_requests_are_checked_whole() {
        let mut e = fixture::engine();
        // Lightweight notification is not supported (9009); 7 is no notification (9003).
        assert_eq!(code(e.set_attributes(&[attr("Device.A.X", 3)])), 9009);
        assert_eq!(code(e.set_attributes(&[attr("Device.A.X", 7)])), 9003);
        assert_eq!(code(e.set_attributes(&[attr("Device.A.Nope", 1)])), 9005);
        // AccessList: only "Subscriber", kept once.
        let mut a = attr("Device.A.X", 1);
        a.access_list_change = true;
        a.access_list = vec!["Other".into()];
        assert_eq!(code(e.set_attributes(std::slice::from_ref(&a))), 9003);
        a.access_list = vec!["Subscriber".into(), "Subscriber".into()];
        // All or nothing: one bad entry, nothing changes.
        assert_eq!(
            code(e.set_attributes(&[a.clone(), attr("Device.A.X", 4)])),
            9009
        );
        assert_eq!(notification(&mut e, "Device.A.X"), 0);
        e.set_attributes(&[a]).unwrap();
        let got = e.attributes(&["Device.A.X".to_string()]).unwrap();
        assert_eq!(
            (got[0].notification, got[0].access_list.clone()),
            (1, vec!["Subscriber".to_string()])
        );
    }

    #[test]
    fn value_changes_are_detected_against_the_last_reported() {
        let mut e = fixture::engine();
        // The forceEnabled parameter is first seen: recorded, not reported.
        assert_eq!(changed(&mut e), (vec![], false));
        e.set_attributes(&[attr("Device.A.X", 1), attr("Device.A.S", 2)])
            .unwrap();
        // Newly notified parameters start from their current value.
        assert_eq!(e.last_reported("Device.A.X"), Some("5"));
        assert_eq!(changed(&mut e), (vec![], false));
        // A local change is notified; passive alone does not ask for an Inform.
        e.set_local(&[set("Device.A.X", "6")]).unwrap();
        assert_eq!(changed(&mut e), (vec![pair("Device.A.X", "6")], false));
        e.set_local(&[set("Device.A.S", "s"), set("Device.A.Forced", "f")])
            .unwrap();
        let (list, active) = changed(&mut e);
        // By path.
        assert_eq!(
            list,
            [
                pair("Device.A.Forced", "f"),
                pair("Device.A.S", "s"),
                pair("Device.A.X", "6")
            ]
        );
        assert!(active);
        // Once the Inform is accepted, those values are the reported ones.
        let (values, _) = e.notifications();
        e.mark_reported(&values);
        assert_eq!(changed(&mut e), (vec![], false));
        // Changes the ACS makes are not notified back to it.
        e.set_values(&[set("Device.A.X", "8"), set("Device.A.S", "t")], "")
            .unwrap();
        assert_eq!(changed(&mut e), (vec![], false));
        // Turned off, a parameter is forgotten.
        e.set_attributes(&[attr("Device.A.S", 0)]).unwrap();
        assert_eq!(e.last_reported("Device.A.S"), None);
        e.set_local(&[set("Device.A.S", "u")]).unwrap();
        assert_eq!(changed(&mut e), (vec![], false));
    }

    #[test]
    fn forced_inform_parameters_with_values() {
        let mut e = fixture::engine();
        let got: Vec<(String, String)> = e
            .forced_inform()
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        assert_eq!(got, [pair("Device.B.Z", "zed")]);
    }
}
