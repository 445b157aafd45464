//! The reads: GetParameterNames, GetParameterValues, GetParameterAttributes (TR-069
//! §A.3.2.2, §A.3.2.3, §A.3.2.5), the walks under a node, and the values as the model shows
//! them (one backend call per request, defaults, hidden values masked, `transform`/`map`/`ref`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::backend::registry::BackendKind;
use super::backend::Cx;
use super::path::has_nested;
use super::path::instance_number;
use super::path::{expand, expand_binding_into, expanded_len, fill, fill_into, filled_len};
use super::path::{nested_refs, parent_of};
use super::path::{Inst, Node, ParamRef};
use super::scan::has_byte_of;
use super::schema::{Access, Source};
use super::{Engine, MAX_PARAMS_PER_REQUEST};
use crate::cwmp::fault::Fault;
use crate::cwmp::value::BaseType;
use crate::cwmp::value::{ParameterAttribute, ParameterInfo, ParameterValues};

/// An entry of a GetParameterNames walk.
pub(super) enum Item {
    Object { path: String, writable: bool },
    Param(ParamRef),
}

/// Where a walk puts what it finds: every entry (GetParameterNames), or only the parameters
/// (the reads: no object's path is built, and no entry is made twice).
pub(super) trait Walked {
    /// Whether the objects are wanted.
    fn objects(&self) -> bool;
    fn object(&mut self, path: String, writable: bool);
    fn param(&mut self, r: ParamRef);
}

impl Walked for Vec<Item> {
    fn objects(&self) -> bool {
        true
    }

    fn object(&mut self, path: String, writable: bool) {
        self.push(Item::Object { path, writable });
    }

    fn param(&mut self, r: ParamRef) {
        self.push(Item::Param(r));
    }
}

impl Walked for Vec<ParamRef> {
    fn objects(&self) -> bool {
        false
    }

    fn object(&mut self, _path: String, _writable: bool) {}

    fn param(&mut self, r: ParamRef) {
        self.push(r);
    }
}

impl Engine {
    /// GetParameterNames (§A.3.2.3).
    pub fn names(&mut self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        let mut items = Vec::new();
        if path.is_empty() {
            // The empty path is the top of the hierarchy: its only child is the root object.
            if next_level {
                return Ok(vec![ParameterInfo {
                    name: self.root().to_string(),
                    writable: false,
                }]);
            }
            self.walk(Node::Object(0, Inst::default()), &mut items)?;
        } else {
            match self.resolve(path)? {
                Node::Param(..) if next_level => {
                    return Err(Fault::InvalidArguments(
                        format!("NextLevel is true but {path} is a parameter"),
                        Vec::new(),
                    ))
                }
                node if next_level => self.children(node, &mut items)?,
                node => self.walk(node, &mut items)?,
            }
        }
        Ok(items
            .into_iter()
            .map(|i| match i {
                Item::Object { path, writable } => ParameterInfo {
                    name: path,
                    writable,
                },
                Item::Param(r) => ParameterInfo {
                    writable: self.param_writable(&r),
                    name: self.param_path(&r),
                },
            })
            .collect())
    }

    /// GetParameterValues (§A.3.2.2): full and partial paths, in request order.
    pub fn values(&mut self, names: &[String]) -> Result<ParameterValues, Fault> {
        self.values_masked(names, true)
    }

    /// Like [`Engine::values`], but hidden values (passwords) as they are: the agent reads
    /// its own settings under a path this way.
    pub fn own_values(&mut self, names: &[String]) -> Result<ParameterValues, Fault> {
        self.values_masked(names, false)
    }

    fn values_masked(&mut self, names: &[String], mask: bool) -> Result<ParameterValues, Fault> {
        self.listed = Some(BTreeMap::new());
        let got = self
            .params_named(names)
            .and_then(|refs| Ok((self.read(&refs, mask)?, refs)));
        self.listed = None;
        let (values, refs) = got?;
        Ok(self.to_values(&refs, &values))
    }

    /// GetParameterAttributes (§A.3.2.5).
    pub fn attributes(&mut self, names: &[String]) -> Result<Vec<ParameterAttribute>, Fault> {
        let refs = self.params_named(names)?;
        Ok(refs
            .iter()
            .map(|r| {
                let name = self.param_path(r);
                let access_list = self
                    .state
                    .attributes
                    .get(&name)
                    .map(|a| a.access_list.clone())
                    .unwrap_or_default();
                ParameterAttribute {
                    notification: self.notification(r, &name),
                    access_list,
                    name,
                }
            })
            .collect())
    }

    /// Reads one value by full path (the agent reads its own settings this way). Unlike
    /// GetParameterValues, a hidden value (a password) is returned as it is.
    pub fn value(&mut self, path: &str) -> Result<String, Fault> {
        let Node::Param(obj, param, inst) = self.resolve(path)? else {
            return Err(Fault::InvalidParameterName(format!(
                "{path} is not a parameter"
            )));
        };
        let r = ParamRef {
            obj,
            param,
            inst: inst.into(),
        };
        Ok(self
            .read(std::slice::from_ref(&r), false)?
            .get(0)
            .to_string())
    }

    /// Where each parameter under `path` lives: `(parameter path, backend, key)` with the
    /// instance keys and nested references filled in; computed counts are left out. For
    /// diagnostics and for the benchmark's per-parameter comparison.
    pub fn bound_keys(&mut self, path: &str) -> Result<Vec<(String, BackendKind, String)>, Fault> {
        let node = if path.is_empty() {
            Node::Object(0, Inst::default())
        } else {
            self.resolve(path)?
        };
        let mut refs = Vec::new();
        self.params_under(node, &mut refs)?;
        let mut out = Vec::new();
        for r in &refs {
            if let Some((kind, Ok(key))) = self.full_key(r) {
                out.push((self.param_path(r), kind, key));
            }
        }
        Ok(out)
    }

    /// A node and everything under it, objects included when the sink wants them (GPN
    /// NextLevel false).
    pub(super) fn walk(&mut self, node: Node, out: &mut impl Walked) -> Result<(), Fault> {
        match node {
            Node::Param(obj, param, inst) => out.param(ParamRef {
                obj,
                param,
                inst: inst.into(),
            }),
            Node::Object(o, inst) => {
                if out.objects() {
                    let writable = self.schema.objects()[o].table.is_some()
                        && self.creatable(o, &parent_of(&inst));
                    out.object(self.object_path(o, &inst), writable);
                }
                let inst = std::rc::Rc::new(inst);
                self.push_params(o, &inst, out);
                // By index: the schema is not changed by a walk, and a copy of every object's
                // list of children was an allocation per object.
                for i in 0..self.schema.objects()[o].children.len() {
                    let c = self.schema.objects()[o].children[i];
                    let child = self.child_node(c, Inst::clone(&inst));
                    self.walk(child, out)?;
                }
            }
            Node::Table(t, inst) => {
                if out.objects() {
                    out.object(self.table_path(t, &inst), self.creatable(t, &inst));
                }
                let list = self.instances(t, &inst)?;
                if self.listed.is_some() {
                    let path = self.table_path(t, &inst);
                    if let Some(l) = &mut self.listed {
                        l.insert(path, list.len().to_string());
                    }
                }
                for (n, k) in list {
                    self.walk(Node::Object(t, inst.with(n, k)), out)?;
                }
            }
        }
        Ok(())
    }

    /// Every parameter of the object `o` in instance context `inst`, in definition order.
    pub(super) fn push_params(&self, o: usize, inst: &std::rc::Rc<Inst>, out: &mut impl Walked) {
        for param in 0..self.schema.objects()[o].params.len() {
            out.param(ParamRef {
                obj: o,
                param,
                inst: inst.clone(),
            });
        }
    }

    /// The next level under a node (GPN NextLevel true).
    pub(super) fn children(&mut self, node: Node, out: &mut Vec<Item>) -> Result<(), Fault> {
        match node {
            Node::Param(..) => {}
            Node::Object(o, inst) => {
                self.push_params(o, &std::rc::Rc::new(inst.clone()), out);
                for c in self.schema.objects()[o].children.clone() {
                    let item = if self.schema.objects()[c].table.is_some() {
                        Item::Object {
                            path: self.table_path(c, &inst),
                            writable: self.creatable(c, &inst),
                        }
                    } else {
                        Item::Object {
                            path: self.object_path(c, &inst),
                            writable: false,
                        }
                    };
                    out.push(item);
                }
            }
            Node::Table(t, inst) => {
                let writable = self.creatable(t, &inst);
                for (n, k) in self.instances(t, &inst)? {
                    out.push(Item::Object {
                        path: self.object_path(t, &inst.with(n, k)),
                        writable,
                    });
                }
            }
        }
        Ok(())
    }

    /// The parameters the names of a Get request stand for, in request order: each full path
    /// itself, each partial path everything below it, an empty name the whole tree (§A.3.2.2).
    fn params_named(&mut self, names: &[String]) -> Result<Vec<ParamRef>, Fault> {
        let mut refs = Vec::new();
        for n in names {
            let node = if n.is_empty() {
                Node::Object(0, Inst::default())
            } else {
                self.resolve(n)?
            };
            self.params_under(node, &mut refs)?;
        }
        // Grown by doubling: up to half of it would be empty for the whole of the read.
        refs.shrink_to_fit();
        Ok(refs)
    }

    pub(super) fn params_under(
        &mut self,
        node: Node,
        out: &mut Vec<ParamRef>,
    ) -> Result<(), Fault> {
        // A walk that fails adds nothing (it is walked straight into `out`).
        let start = out.len();
        if let Err(e) = self.walk(node, out) {
            out.truncate(start);
            return Err(e);
        }
        if out.len() > MAX_PARAMS_PER_REQUEST {
            return Err(Fault::ResourcesExceeded(format!(
                "the request covers more than {MAX_PARAMS_PER_REQUEST} parameters"
            )));
        }
        Ok(())
    }

    /// Whether AddObject (on the table) and DeleteObject (on its instances) are allowed: the
    /// model says `readWrite` and the backend can create.
    pub(super) fn creatable(&self, t: usize, inst: &Inst) -> bool {
        let obj = &self.schema.objects()[t];
        match &obj.table {
            Some(tb)
                if obj.writable
                    && tb
                        .binding
                        .under()
                        .is_none_or(|u| inst.keys.last().map(String::as_str) == Some(u)) =>
            {
                self.backends
                    .peek(tb.binding.backend)
                    .creatable(&expand(&tb.binding.key, &inst.keys))
            }
            _ => false,
        }
    }

    pub(super) fn param_writable(&self, r: &ParamRef) -> bool {
        let p = &self.schema.objects()[r.obj].params[r.param];
        match &p.source {
            Source::Bound(b) if p.def.access != Access::ReadOnly && b.invertible() => {
                let key = expand(&b.key, &r.inst.keys);
                // A reference inside the key is resolved when writing; its shape is enough here.
                let key = if has_nested(&key) {
                    let mut shape = String::with_capacity(key.len());
                    let mut last = 0;
                    for (start, end, _, _) in nested_refs(&key) {
                        shape.push_str(&key[last..start]);
                        shape.push_str("x0");
                        last = end;
                    }
                    shape.push_str(&key[last..]);
                    shape
                } else {
                    key
                };
                self.backends.peek(b.backend).writable(&key)
            }
            _ => false,
        }
    }

    /// Reads many parameters with one call per backend (never one per parameter). With
    /// `mask`, hidden parameters read as their type's null value (TR-106 A.2.3.5).
    pub(super) fn read(&mut self, refs: &[ParamRef], mask: bool) -> Result<ReadValues, Fault> {
        self.read_inner(refs, mask, true)
    }

    /// Like [`Engine::read`], but a failing backend only leaves its values out.
    pub(super) fn read_lenient(&mut self, refs: &[ParamRef], mask: bool) -> Vec<Option<String>> {
        match self.read_inner(refs, mask, false) {
            Ok(v) => (0..refs.len())
                .map(|i| v.value(i).map(str::to_string))
                .collect(),
            Err(_) => vec![None; refs.len()],
        }
    }

    pub(super) fn read_inner(
        &mut self,
        refs: &[ParamRef],
        mask: bool,
        strict: bool,
    ) -> Result<ReadValues, Fault> {
        let mut out = ReadValues::new(refs.len());
        // Each backend's keys, sized first: a whole tree's are thousands.
        let mut sizes: BTreeMap<BackendKind, (usize, usize)> = BTreeMap::new();
        for r in refs {
            let p = &self.schema.objects()[r.obj].params[r.param];
            match &p.source {
                Source::Bound(b) if !(mask && p.def.hidden) => {
                    let (n, text) = sizes.entry(b.backend).or_default();
                    *n += 1;
                    *text += expanded_len(b, &r.inst.keys);
                }
                _ => {}
            }
        }
        let mut groups: BTreeMap<BackendKind, KeyList> = BTreeMap::new();
        for (i, r) in refs.iter().enumerate() {
            let p = &self.schema.objects()[r.obj].params[r.param];
            if mask && p.def.hidden {
                out.set(i, null_value(p.def.ty.base));
                continue;
            }
            match &p.source {
                Source::Count(t) => {
                    let t = *t;
                    if let Some(l) = &self.listed {
                        if let Some(n) = l.get(&self.table_path(t, &r.inst)) {
                            out.set(i, n);
                            continue;
                        }
                    }
                    match self.instances(t, &r.inst) {
                        Ok(l) => out.set(i, &l.len().to_string()),
                        Err(e) if strict => return Err(e),
                        Err(e) => log::warn!("{}: {e}", self.param_path(r)),
                    }
                }
                Source::Bound(b) => {
                    let keys = groups.entry(b.backend).or_insert_with(|| {
                        let (n, text) = sizes.get(&b.backend).copied().unwrap_or_default();
                        KeyList::with_capacity(n, text)
                    });
                    expand_binding_into(&mut keys.text, b, &r.inst.keys);
                    keys.end(i);
                }
            }
        }
        // Keys holding a reference to another backend's value (`{uci:network.lan.device}`)
        // are completed first, all of them with one read per backend.
        let mut unresolved: Vec<usize> = Vec::new();
        for items in groups.values_mut() {
            let nested: Vec<String> = items
                .iter()
                .filter(|(_, k)| has_nested(k))
                .map(|(_, k)| k.to_string())
                .collect();
            if nested.is_empty() {
                continue;
            }
            let mut done = self.resolve_nested(&nested).into_iter();
            let mut completed = KeyList::with_capacity(items.len(), items.text.len());
            for (i, k) in items.iter() {
                if !has_nested(k) {
                    completed.push(i, k);
                    continue;
                }
                match done.next().flatten() {
                    Some(full) => completed.push(i, &full),
                    None => unresolved.push(i),
                }
            }
            *items = completed;
        }
        // Parameters whose backend has no value and whose binding names another source
        // (`or`): read from it in a second pass.
        let mut second: Vec<usize> = Vec::new();
        for i in unresolved {
            if self.alternative(&refs[i]).is_some() {
                second.push(i);
            } else {
                out.set(i, &self.fallback_value(&refs[i]));
            }
        }
        let mut ref_cache: BTreeMap<usize, Vec<(u32, String)>> = BTreeMap::new();
        for (kind, items) in groups {
            let keys: Vec<&str> = items.iter().map(|(_, k)| k).collect();
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            let got = self.backends.get(kind).read(&mut cx, &keys);
            self.dirty |= cx.changed;
            let got = match got {
                Ok(g) => g,
                // A broken vendor script does not cost the rest of the tree either: its
                // parameters read as their defaults, and the failure is logged.
                Err(e) if strict && kind != BackendKind::Script => return Err(e),
                Err(e) => {
                    log::warn!("{} backend: {e}", kind.name());
                    if strict {
                        for (i, _) in items.iter() {
                            out.set(i, &self.fallback_value(&refs[i]));
                        }
                    }
                    continue;
                }
            };
            drop(keys);
            for ((i, _), v) in items.iter().zip(got) {
                let r = &refs[i];
                let v = match v {
                    Some(raw) => self.shown_value(r, raw, None, &mut ref_cache),
                    None => None,
                };
                // No value, or one the type does not allow (uci's `channel 'auto'`): the `or`
                // source's, when the binding names one.
                if self.alternative(r).is_some() && !v.as_deref().is_some_and(|x| self.fits(r, x)) {
                    second.push(i);
                    continue;
                }
                out.set(i, &self.finish(r, v));
            }
        }
        if !second.is_empty() {
            self.read_alternatives(refs, &second, &mut out, &mut ref_cache);
        }
        Ok(out)
    }

    /// Whether a shown value is one the parameter may read as.
    fn fits(&self, r: &ParamRef, v: &str) -> bool {
        let p = &self.schema.objects()[r.obj].params[r.param];
        p.def.ty.check(v).is_ok() || p.def.enum_read_only().iter().any(|e| e == v)
    }

    /// The `or` source of a bound parameter.
    fn alternative(&self, r: &ParamRef) -> Option<&super::schema::Binding> {
        match &self.schema.objects()[r.obj].params[r.param].source {
            Source::Bound(b) => b.or(),
            Source::Count(_) => None,
        }
    }

    /// The second pass of [`Engine::read_inner`]: the parameters at `which` read from their
    /// binding's `or` source, one read per backend; what has no value there either takes the
    /// default. Failures of the second source are logged, never the request's.
    fn read_alternatives(
        &mut self,
        refs: &[ParamRef],
        which: &[usize],
        out: &mut ReadValues,
        ref_cache: &mut BTreeMap<usize, Vec<(u32, String)>>,
    ) {
        let mut groups: BTreeMap<BackendKind, Vec<(usize, String)>> = BTreeMap::new();
        for &i in which {
            if let Some(alt) = self.alternative(&refs[i]) {
                let key = expand(&alt.key, &refs[i].inst.keys);
                groups.entry(alt.backend).or_default().push((i, key));
            }
        }
        for (kind, items) in groups {
            let keys: Vec<String> = items.iter().map(|(_, k)| k.clone()).collect();
            let full = self.resolve_nested(&keys);
            let wanted: Vec<(usize, String)> = items
                .iter()
                .zip(full)
                .filter_map(|((i, _), k)| Some((*i, k?)))
                .collect();
            let list: Vec<&str> = wanted.iter().map(|(_, k)| k.as_str()).collect();
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            let got = self.backends.get(kind).read(&mut cx, &list);
            self.dirty |= cx.changed;
            let got = got.unwrap_or_else(|e| {
                log::warn!("{} backend: {e}", kind.name());
                vec![None; list.len()]
            });
            let mut values: BTreeMap<usize, String> = BTreeMap::new();
            for ((i, _), v) in wanted.iter().zip(got) {
                if let Some(v) = v {
                    values.insert(*i, v);
                }
            }
            for (i, _) in &items {
                let r = &refs[*i];
                let transform = self.alternative(r).and_then(|a| a.transform);
                let v = values
                    .remove(i)
                    .and_then(|raw| self.shown_value(r, raw, Some(transform), ref_cache));
                out.set(*i, &self.finish(r, v));
            }
        }
    }

    /// What a parameter reads as, from what its source gave (`None`: nothing): the value, else
    /// the binding's default, the model's, or the type's null value, in canonical form.
    fn finish(&self, r: &ParamRef, v: Option<String>) -> Cow<'_, str> {
        let p = &self.schema.objects()[r.obj].params[r.param];
        // An empty value where the type has no empty form (an unset dateTime in the config
        // file) counts as no value. A default is borrowed, not copied (hundreds of a GPV's
        // parameters read as one).
        let raw: Cow<'_, str> = match v.filter(|x| !x.is_empty() || p.def.ty.check(x).is_ok()) {
            Some(x) => Cow::Owned(x),
            None => match &p.source {
                Source::Bound(b) => b.default.as_deref(),
                Source::Count(_) => None,
            }
            .or_else(|| {
                p.def
                    .default
                    .as_deref()
                    .filter(|d| p.def.ty.check(d).is_ok())
            })
            .unwrap_or_else(|| null_value(p.def.ty.base))
            .into(),
        };
        // Values come back in their canonical lexical form (e.g. `1` → `true`); one already
        // in it is kept as it is, not copied. A value its type does not allow (uci's
        // `channel 'auto'` for an unsignedInt) is not shown to the ACS: the parameter reads as
        // having no value; a value only the CPE may report (`enum_read_only`) is kept.
        let canonical = match p.def.ty.canonical(&raw) {
            Ok(c) if *c == *raw => Ok(None),
            Ok(c) => Ok(Some(c.into_owned())),
            Err(e) => Err(e),
        };
        match canonical {
            Ok(None) => raw,
            Ok(Some(v)) => v.into(),
            Err(_) if p.def.enum_read_only().iter().any(|e| *e == *raw) => raw,
            Err(e) => {
                log::debug!("{}: {e}; shown as its default", self.param_path(r));
                let fallback = self.fallback_value(r);
                p.def.ty.check(&fallback).unwrap_or(fallback).into()
            }
        }
    }

    /// The value of a parameter whose backend has none: the binding's default, the model's,
    /// or the type's null value.
    pub(super) fn fallback_value(&self, r: &ParamRef) -> String {
        let p = &self.schema.objects()[r.obj].params[r.param];
        let binding_default = match &p.source {
            Source::Bound(b) => b.default.clone(),
            Source::Count(_) => None,
        };
        binding_default
            .or_else(|| p.def.default.clone().filter(|d| p.def.ty.check(d).is_ok()))
            .unwrap_or_else(|| null_value(p.def.ty.base).to_string())
    }

    /// A backend value as the model shows it: the binding's `transform` (or `transform`, when
    /// given: the `or` source's), then `map`, then `ref` (instance keys → instance paths; keys
    /// of no instance are left out). `None` when the transform does not apply (the parameter
    /// then reads as having no value).
    pub(super) fn shown_value(
        &mut self,
        r: &ParamRef,
        raw: String,
        transform: Option<Option<crate::datamodel::transform::Transform>>,
        ref_cache: &mut BTreeMap<usize, Vec<(u32, String)>>,
    ) -> Option<String> {
        let Source::Bound(b) = &self.schema.objects()[r.obj].params[r.param].source else {
            return Some(raw);
        };
        let mut v = match transform.unwrap_or(b.transform) {
            Some(t) => t.read(&raw)?,
            None => raw,
        };
        if let Some((_, m)) = b.map().iter().find(|(k, _)| *k == v) {
            v = m.clone();
        }
        let Some(target) = b.reference().map(str::to_string) else {
            return Some(v);
        };
        let t = self.schema.object_index(&target)?;
        if let std::collections::btree_map::Entry::Vacant(e) = ref_cache.entry(t) {
            e.insert(self.instances(t, &Inst::default()).unwrap_or_default());
        }
        let list = ref_cache.get(&t)?;
        let paths: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .filter_map(|k| list.iter().find(|(_, key)| key == k))
            .map(|(n, _)| fill(target.strip_suffix('.').unwrap_or(&target), &[*n]))
            .collect();
        Some(paths.join(","))
    }

    /// A model value (valid for its type) as the backend stores it: the inverse of
    /// [`Engine::shown_value`]. 9007 when it has none (an unknown instance path).
    pub(super) fn stored_value(&mut self, r: &ParamRef, value: &str) -> Result<String, Fault> {
        let Source::Bound(b) = &self.schema.objects()[r.obj].params[r.param].source else {
            return Ok(value.to_string());
        };
        let (transform, map, reference) = (
            b.transform,
            b.map().to_vec(),
            b.reference().map(str::to_string),
        );
        let mut v = value.to_string();
        if let Some(target) = reference {
            let t = self
                .schema
                .object_index(&target)
                .ok_or_else(|| Fault::internal(format!("no table {target}")))?;
            let list = self.instances(t, &Inst::default())?;
            let prefix = target.strip_suffix("{i}.").unwrap_or(&target);
            let mut keys = Vec::new();
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let n = item
                    .strip_suffix('.')
                    .unwrap_or(item)
                    .strip_prefix(prefix)
                    .and_then(instance_number);
                let key = n.and_then(|n| list.iter().find(|(m, _)| *m == n));
                match key {
                    Some((_, k)) => keys.push(k.clone()),
                    None => {
                        return Err(Fault::InvalidParameterValue(format!(
                            "{item:?} is not an instance of {}",
                            prefix.trim_end_matches('.')
                        )))
                    }
                }
            }
            v = keys.join(",");
        }
        if !map.is_empty() {
            // With a map, only the mapped values can be stored (an enumeration the backend
            // spells its own way).
            match map.iter().find(|(_, m)| *m == v) {
                Some((k, _)) => v = k.clone(),
                None => {
                    return Err(Fault::InvalidParameterValue(format!(
                        "{value:?} is not one of the values this device can store"
                    )))
                }
            }
        }
        if let Some(t) = transform {
            v = t.write(&v).ok_or_else(|| {
                Fault::InvalidParameterValue(format!("{value:?} cannot be stored"))
            })?;
        }
        Ok(v)
    }

    /// The backend and key of a bound parameter with `{i}` filled in and references resolved;
    /// `Err(key)` when a reference in it has no value, `None` for a computed count.
    pub(super) fn full_key(
        &mut self,
        r: &ParamRef,
    ) -> Option<(BackendKind, Result<String, String>)> {
        let Source::Bound(b) = &self.schema.objects()[r.obj].params[r.param].source else {
            return None;
        };
        let kind = b.backend;
        let key = expand(&b.key, &r.inst.keys);
        if !has_nested(&key) {
            return Some((kind, Ok(key)));
        }
        let full = self
            .resolve_nested(std::slice::from_ref(&key))
            .pop()
            .flatten();
        Some((kind, full.ok_or(key)))
    }

    /// Completes keys that hold references to other backends' values: `{kind:key}` is replaced
    /// by that value (read once per backend for all keys). `None` for a key whose reference
    /// has no value.
    pub(super) fn resolve_nested(&mut self, keys: &[String]) -> Vec<Option<String>> {
        let mut wanted: BTreeMap<BackendKind, Vec<String>> = BTreeMap::new();
        for k in keys {
            for (_, _, kind, inner) in nested_refs(k) {
                let list = wanted.entry(kind).or_default();
                if !list.iter().any(|x| x == inner) {
                    list.push(inner.to_string());
                }
            }
        }
        let mut values: BTreeMap<(BackendKind, String), String> = BTreeMap::new();
        for (kind, list) in wanted {
            let refs: Vec<&str> = list.iter().map(String::as_str).collect();
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            match self.backends.get(kind).read(&mut cx, &refs) {
                Ok(got) => {
                    for (k, v) in list.iter().zip(got) {
                        if let Some(v) = v {
                            values.insert((kind, k.clone()), v);
                        }
                    }
                }
                Err(e) => log::warn!("{} backend: {e}", kind.name()),
            }
        }
        keys.iter()
            .map(|k| {
                let mut out = String::with_capacity(k.len());
                let mut last = 0;
                for (start, end, kind, inner) in nested_refs(k) {
                    out.push_str(&k[last..start]);
                    let v = values.get(&(kind, inner.to_string()))?;
                    // A value is one path segment of the key, or one selection of a netlink or
                    // ubus key: nothing may escape it, nor turn it into a listing (`*`), a
                    // match (`=`) or the path of a ubus reply (`#`).
                    if v.is_empty() || has_byte_of(v, b"/{}[]*=#") || v == ".." {
                        return None;
                    }
                    out.push_str(v);
                    last = end;
                }
                out.push_str(&k[last..]);
                Some(out)
            })
            .collect()
    }

    /// The response's list: each parameter's path, its value and its type. The parameters of
    /// one object instance follow each other in a walk, so the object's path is written once
    /// for all of them; the list is sized exactly before it is filled.
    pub(super) fn to_values(&self, refs: &[ParamRef], values: &ReadValues) -> ParameterValues {
        let objects = self.schema.objects();
        let pname = |r: &ParamRef| objects[r.obj].params[r.param].def.name.as_str();
        let same = |a: &ParamRef, b: &ParamRef| a.obj == b.obj && a.inst.numbers == b.inst.numbers;
        let mut text: usize = (0..refs.len()).map(|i| values.get(i).len()).sum();
        let mut last: Option<(&ParamRef, usize)> = None;
        for r in refs {
            let prefix = match last {
                Some((l, len)) if same(l, r) => len,
                _ => filled_len(&objects[r.obj].path, &r.inst.numbers),
            };
            text += prefix + pname(r).len();
            last = Some((r, prefix));
        }
        let mut out = ParameterValues::with_capacity(refs.len(), text);
        let mut prefix = String::new();
        let mut last: Option<&ParamRef> = None;
        for (i, r) in refs.iter().enumerate() {
            if !last.is_some_and(|l| same(l, r)) {
                prefix.clear();
                fill_into(&mut prefix, &objects[r.obj].path, &r.inst.numbers);
            }
            out.push_joined(&prefix, pname(r), values.get(i), self.base(r));
            last = Some(r);
        }
        out
    }
}

/// The values of a read, by the parameter's index in the request: their text back to back in
/// the order they were read (by backend, not the request's), and where each one is. A whole
/// tree's values are thousands of short strings: this holds them in one, beside the response's
/// list while it is built, not in one allocation each.
pub(super) struct ReadValues {
    text: String,
    /// `(start, end)` in `text`; `UNSET` for a parameter that has no value (yet).
    spans: Vec<(usize, usize)>,
}

const UNSET: (usize, usize) = (usize::MAX, 0);

impl ReadValues {
    fn new(n: usize) -> ReadValues {
        ReadValues {
            text: String::new(),
            spans: vec![UNSET; n],
        }
    }

    /// Sets parameter `i`'s value (a value set again leaves the first's text unused).
    fn set(&mut self, i: usize, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        if let Some(span) = self.spans.get_mut(i) {
            *span = (start, self.text.len());
        }
    }

    /// Parameter `i`'s value, `None` when it has none.
    pub(super) fn value(&self, i: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(i)?;
        self.text.get(start..end)
    }

    /// Parameter `i`'s value, empty when it has none.
    pub(super) fn get(&self, i: usize) -> &str {
        self.value(i).unwrap_or_default()
    }
}

/// One backend's keys in a read: their text back to back in one string (a whole tree's are
/// thousands: one allocation, not one each), each with the index of its parameter in the
/// request and where its key ends.
struct KeyList {
    text: String,
    ends: Vec<(usize, usize)>,
}

impl KeyList {
    fn with_capacity(keys: usize, text: usize) -> KeyList {
        KeyList {
            text: String::with_capacity(text),
            ends: Vec::with_capacity(keys),
        }
    }

    /// Ends the key written to `text` since the last one: parameter `i`'s.
    fn end(&mut self, i: usize) {
        self.ends.push((i, self.text.len()));
    }

    fn push(&mut self, i: usize, key: &str) {
        self.text.push_str(key);
        self.end(i);
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// `(parameter index, key)` in order.
    fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(i, end)| {
            let key = self.text.get(start..end).unwrap_or_default();
            start = end;
            (i, key)
        })
    }
}

/// The null value of a base type (TR-106 A.2.3.5): what a hidden parameter reads back as.
pub(super) fn null_value(base: BaseType) -> &'static str {
    match base {
        BaseType::Int | BaseType::UnsignedInt | BaseType::Long | BaseType::UnsignedLong => "0",
        BaseType::Decimal => "0",
        BaseType::Boolean => "false",
        BaseType::DateTime => "0001-01-01T00:00:00Z",
        BaseType::String | BaseType::Base64 | BaseType::HexBinary => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::fixture::{self, code, get, set};

    fn names(e: &mut Engine, path: &str, next_level: bool) -> Vec<(String, bool)> {
        e.names(path, next_level)
            .unwrap()
            .into_iter()
            .map(|i| (i.name, i.writable))
            .collect()
    }

    fn owned(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    #[test]
    fn next_level_lists_one_level() {
        let mut e = fixture::engine();
        // The empty path: the root object only.
        assert_eq!(names(&mut e, "", true), owned(&[("Device.", false)]));
        assert_eq!(
            names(&mut e, "Device.", true),
            owned(&[("Device.A.", false), ("Device.B.", false)])
        );
        let a = names(&mut e, "Device.A.", true);
        let writable: Vec<(&str, bool)> = a.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        assert_eq!(
            writable,
            [
                ("Device.A.X", true),
                ("Device.A.S", true),
                ("Device.A.Big", true),
                ("Device.A.Secret", true),
                ("Device.A.RO", false),
                ("Device.A.Fixed", false),
                ("Device.A.Deny", true),
                ("Device.A.Forced", true),
                ("Device.A.TNumberOfEntries", false),
                // A table that allows AddObject is writable.
                ("Device.A.T.", true),
            ]
        );
        assert!(names(&mut e, "Device.A.T.", true).is_empty());
        e.add_object("Device.A.T.", "").unwrap();
        e.add_object("Device.A.T.", "").unwrap();
        assert_eq!(
            names(&mut e, "Device.A.T.", true),
            owned(&[("Device.A.T.1.", true), ("Device.A.T.2.", true)])
        );
        assert_eq!(
            names(&mut e, "Device.A.T.2.", true),
            owned(&[("Device.A.T.2.V", true), ("Device.A.T.2.U.", true)])
        );
        // NextLevel on a parameter is 9003; an unknown name 9005.
        assert_eq!(code(e.names("Device.A.X", true)), 9003);
        assert_eq!(code(e.names("Device.A.Nope.", true)), 9005);
    }

    #[test]
    fn whole_subtree_lists_objects_and_parameters() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "").unwrap();
        assert_eq!(
            names(&mut e, "Device.A.T.", false),
            owned(&[
                ("Device.A.T.", true),
                ("Device.A.T.1.", true),
                ("Device.A.T.1.V", true),
                ("Device.A.T.1.U.", true),
            ])
        );
        assert_eq!(
            names(&mut e, "Device.B.Z", false),
            owned(&[("Device.B.Z", false)])
        );
        let all = names(&mut e, "", false);
        assert_eq!(all.first().map(|(n, _)| n.as_str()), Some("Device."));
        assert_eq!(all.len(), 17);
    }

    #[test]
    fn a_parameter_without_its_own_value_reads_its_or_source() {
        let mut e = fixture::engine_with(
            r#"
[[object]]
name = "Device.A."
params = [
  { name = "Live", type = "string", access = "readWrite" },
  { name = "ChanText", type = "string", access = "readWrite" },
  { name = "Chan", type = "unsignedInt" },
]
[bind."Device.A."]
Live = { to = "agent:a.live", or = "agent:a.s", or_transform = "upper", map = { "ON" = "on" } }
ChanText = "agent:a.chan"
Chan = { to = "agent:a.chan", or = "const:6" }
"#,
        );
        e.set_values(&[set("Device.A.ChanText", "auto")], "")
            .unwrap();
        assert_eq!(
            e.value("Device.A.Chan").unwrap(),
            "6",
            "a value its type refuses: or"
        );
        e.set_values(&[set("Device.A.ChanText", "11")], "").unwrap();
        assert_eq!(e.value("Device.A.Chan").unwrap(), "11");
        assert_eq!(
            e.value("Device.A.Live").unwrap(),
            "",
            "neither source has a value"
        );
        e.set_values(&[set("Device.A.S", "abc")], "").unwrap();
        assert_eq!(
            e.value("Device.A.Live").unwrap(),
            "ABC",
            "or, with its own transform"
        );
        e.set_values(&[set("Device.A.S", "on")], "").unwrap();
        assert_eq!(
            e.value("Device.A.Live").unwrap(),
            "on",
            "then the binding's map"
        );
        e.set_values(&[set("Device.A.S", "xyz")], "").unwrap();
        e.set_values(&[set("Device.A.Live", "on")], "").unwrap();
        assert_eq!(
            e.value("Device.A.Live").unwrap(),
            "on",
            "its own value wins"
        );
        assert_eq!(
            e.value("Device.A.S").unwrap(),
            "xyz",
            "writes go to its own backend"
        );
        let got = e.values(&["Device.A.".to_string()]).unwrap();
        assert!(got
            .iter()
            .any(|v| v.name == "Device.A.Live" && v.value == "on"));
    }

    #[test]
    fn values_in_request_order_with_defaults_and_masks() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "").unwrap();
        let got = e
            .values(&[
                "Device.B.".to_string(),
                "Device.A.T.".to_string(),
                "Device.A.X".to_string(),
            ])
            .unwrap();
        let pairs: Vec<(&str, &str, BaseType)> =
            got.iter().map(|p| (p.name, p.value, p.ty)).collect();
        // The list was sized exactly before it was filled.
        assert_eq!(got.text_capacity(), got.text_len());
        assert_eq!(
            pairs,
            [
                ("Device.B.Z", "zed", BaseType::String),
                ("Device.A.T.1.V", "", BaseType::String),
                ("Device.A.X", "5", BaseType::UnsignedInt),
            ]
        );
        // A hidden value reads as its type's null value, except to the agent itself.
        assert_eq!(get(&mut e, "Device.A.Secret"), "");
        assert_eq!(e.value("Device.A.Secret").unwrap(), "hunter2");
        // Const values come in their canonical form; counts count.
        assert_eq!(get(&mut e, "Device.A.Fixed"), "true");
        assert_eq!(get(&mut e, "Device.A.TNumberOfEntries"), "1");
        // Values set are read back.
        e.set_values(&[set("Device.A.S", "hello")], "").unwrap();
        assert_eq!(get(&mut e, "Device.A.S"), "hello");
    }

    /// The list names each parameter by its full path: what GetParameterNames lists, in the
    /// same order, instance numbers of one and two digits among them, sized exactly.
    #[test]
    fn values_name_every_parameter_by_its_path() {
        let mut e = fixture::engine();
        // The table holds 3 at most: 9, 10 and 11 are left.
        for k in 1..=11 {
            if k > 3 {
                e.delete_object(&format!("Device.A.T.{}.", k - 3), "")
                    .unwrap();
            }
            e.add_object("Device.A.T.", "").unwrap();
        }
        let got = e.values(&["Device.".to_string()]).unwrap();
        let params: Vec<String> = e
            .names("Device.", false)
            .unwrap()
            .into_iter()
            .filter(|i| !i.name.ends_with('.'))
            .map(|i| i.name)
            .collect();
        let names: Vec<&str> = got.iter().map(|p| p.name).collect();
        assert_eq!(names, params);
        assert!(names.contains(&"Device.A.T.11.V") && names.contains(&"Device.A.T.9.V"));
        assert_eq!(got.text_capacity(), got.text_len());
    }

    #[test]
    fn one_unknown_name_fails_the_request_with_9005() {
        let mut e = fixture::engine();
        for bad in ["Device.A.Nope", "Device.A.X.", "Device.A.T.1.", "Device.A"] {
            let r = e.values(&["Device.A.X".to_string(), bad.to_string()]);
            assert_eq!(code(r), 9005, "{bad}");
            assert_eq!(code(e.attributes(&[bad.to_string()])), 9005, "{bad}");
        }
        assert_eq!(code(e.value("Device.A.")), 9005);
    }

    #[test]
    fn attributes_default_to_off_or_the_models_forced_value() {
        let mut e = fixture::engine();
        let got = e
            .attributes(&["Device.A.X".to_string(), "Device.A.Forced".to_string()])
            .unwrap();
        let n: Vec<(&str, u8)> = got
            .iter()
            .map(|a| (a.name.as_str(), a.notification))
            .collect();
        assert_eq!(n, [("Device.A.X", 0), ("Device.A.Forced", 2)]);
        assert!(got.iter().all(|a| a.access_list.is_empty()));
    }

    #[test]
    fn null_values_of_the_types() {
        assert_eq!(null_value(BaseType::Boolean), "false");
        assert_eq!(null_value(BaseType::UnsignedInt), "0");
        assert_eq!(null_value(BaseType::DateTime), "0001-01-01T00:00:00Z");
        assert_eq!(null_value(BaseType::Base64), "");
    }
}
