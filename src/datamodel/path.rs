//! Paths (TR-069 §A.2.2.1, TR-106 §3.1): name resolution, partial paths, InformParameter
//! patterns, and the instance numbers of tables (handed out in order, never reused, §A.3.2.6).

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use super::backend::registry::BackendKind;
use super::backend::Cx;
use super::scan::{byte_at, count_holes, has_byte_of, next_hole};
use super::schema::Binding;
use super::{Engine, MAX_INSTANCES};
use crate::cwmp::fault::Fault;
use crate::cwmp::value::{BaseType, Count};

/// The longest path accepted (the `Name` of the RPC schema is a string(256)).
const MAX_PATH: usize = 256;

/// The instance numbers and backend keys on a path, outermost first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Inst {
    pub(super) numbers: Vec<u32>,
    pub(super) keys: Vec<String>,
}

impl Inst {
    /// This instance context with one more level: `key` is moved in when it is a `String`.
    pub(super) fn with(&self, number: u32, key: impl Into<String>) -> Inst {
        let mut i = self.clone();
        i.numbers.push(number);
        i.keys.push(key.into());
        i
    }
}

/// What a path names.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// A single object, or one instance of a table (then the index is the `X.{i}.` object).
    Object(usize, Inst),
    /// A table: the collection `X.` of the `X.{i}.` object.
    Table(usize, Inst),
    /// A parameter: object index, parameter index.
    Param(usize, usize, Inst),
}

/// One parameter instance.
#[derive(Debug, Clone)]
pub(super) struct ParamRef {
    pub(super) obj: usize,
    pub(super) param: usize,
    /// Shared by the parameters of one object instance (a walk lists thousands).
    pub(super) inst: Rc<Inst>,
}

impl Engine {
    /// Resolves a path (not the empty one) to what it names; 9005 when it names nothing.
    pub(super) fn resolve(&mut self, path: &str) -> Result<Node, Fault> {
        let bad = || Fault::InvalidParameterName(path.to_string());
        if path.len() > MAX_PATH {
            return Err(bad());
        }
        let partial = path.ends_with('.');
        let body = path.strip_suffix('.').unwrap_or(path);
        let mut segs = body.split('.');
        let root = self.root().trim_end_matches('.');
        if segs.next() != Some(root) {
            return Err(bad());
        }
        let segs: Vec<&str> = segs.collect();
        let mut node = Node::Object(0, Inst::default());
        for (i, seg) in segs.iter().enumerate() {
            if seg.is_empty() {
                return Err(bad());
            }
            let last = i + 1 == segs.len();
            node = match node {
                Node::Object(o, inst) => {
                    let obj = &self.schema.objects()[o];
                    if let Some(p) = obj.params.iter().position(|p| p.def.name == *seg) {
                        if partial || !last {
                            return Err(bad());
                        }
                        Node::Param(o, p, inst)
                    } else {
                        let c = *obj
                            .children
                            .iter()
                            .find(|&&c| self.schema.objects()[c].name == *seg)
                            .ok_or_else(bad)?;
                        self.child_node(c, inst)
                    }
                }
                Node::Table(t, inst) => {
                    let n = instance_number(seg).ok_or_else(bad)?;
                    let list = self.instances(t, &inst)?;
                    let (_, key) = list.iter().find(|(m, _)| *m == n).ok_or_else(bad)?;
                    Node::Object(t, inst.with(n, key))
                }
                Node::Param(..) => return Err(bad()),
            };
        }
        match (&node, partial) {
            (Node::Param(..), false) | (Node::Object(..) | Node::Table(..), true) => Ok(node),
            _ => Err(bad()),
        }
    }

    /// The parameters named by an InformParameter pattern: a full or partial path where `*` may
    /// stand for any instance number (TR-069 §3.7.1.4). Unknown names give nothing.
    pub(super) fn expand_pattern(&mut self, pattern: &str) -> Vec<ParamRef> {
        let partial = pattern.ends_with('.');
        let body = pattern.strip_suffix('.').unwrap_or(pattern);
        let mut segs = body.split('.');
        if pattern.len() > MAX_PATH || segs.next() != Some(self.root().trim_end_matches('.')) {
            return Vec::new();
        }
        let segs: Vec<&str> = segs.collect();
        let mut nodes = vec![Node::Object(0, Inst::default())];
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let mut next = Vec::new();
            for node in nodes {
                match node {
                    Node::Object(o, inst) => {
                        let obj = &self.schema.objects()[o];
                        if let Some(p) = obj.params.iter().position(|p| p.def.name == *seg) {
                            if last && !partial {
                                next.push(Node::Param(o, p, inst));
                            }
                        } else if let Some(&c) = obj
                            .children
                            .iter()
                            .find(|&&c| self.schema.objects()[c].name == *seg)
                        {
                            next.push(self.child_node(c, inst));
                        }
                    }
                    Node::Table(t, inst) => {
                        let wanted = if *seg == "*" {
                            None
                        } else {
                            instance_number(seg)
                        };
                        if wanted.is_none() && *seg != "*" {
                            continue;
                        }
                        for (n, key) in self.instances(t, &inst).unwrap_or_default() {
                            if wanted.is_none_or(|w| w == n) {
                                next.push(Node::Object(t, inst.with(n, key)));
                            }
                        }
                    }
                    Node::Param(..) => {}
                }
            }
            nodes = next;
        }
        let mut refs = Vec::new();
        for node in nodes {
            let ok = matches!(node, Node::Param(..)) != partial;
            if ok {
                let _ = self.params_under(node, &mut refs);
            }
        }
        refs
    }

    /// The instances of a table: `(number, backend key)`, by number. Instances a backend lists
    /// get numbers on first sight; the numbers of vanished ones are not reused.
    pub(super) fn instances(&mut self, t: usize, inst: &Inst) -> Result<Vec<(u32, String)>, Fault> {
        let Some(table) = self.schema.objects()[t].table.as_ref() else {
            return Ok(Vec::new());
        };
        let kind = table.binding.backend;
        let live = std::iter::once(&table.binding)
            .chain(table.binding.or())
            .any(|b| {
                b.backend.live(&b.key) || nested_refs(&b.key).any(|(_, _, k, inner)| k.live(inner))
            });
        let tkey = expand(&table.binding.key, &inst.keys);
        // `or` on a table: its keys join the own ones (the hosts with a lease, then those only
        // the kernel knows).
        let alt = table
            .binding
            .or()
            .map(|b| (b.backend, expand(&b.key, &inst.keys)));
        let tpath = self.table_path(t, inst);
        if live && self.state.tables.remove(&tpath).is_some() {
            // Kept by an earlier version in the store: RAM from now on.
            self.dirty = true;
        }
        if table
            .binding
            .under()
            .is_some_and(|u| inst.keys.last().map(String::as_str) != Some(u))
        {
            // Its instances belong to another parent instance.
            if self.state.tables.remove(&tpath).is_some() {
                self.dirty = true;
            }
            self.live_tables.remove(&tpath);
            return Ok(Vec::new());
        }
        let tkey = if has_nested(&tkey) {
            match self
                .resolve_nested(std::slice::from_ref(&tkey))
                .pop()
                .flatten()
            {
                Some(k) => k,
                // What the table hangs on does not exist: it has no instances.
                None => return Ok(Vec::new()),
            }
        } else {
            tkey
        };
        let listed = {
            let mut cx = Cx {
                values: &mut self.state.values,
                changed: false,
            };
            let r = self.backends.get(kind).instances(&mut cx, &tkey);
            self.dirty |= cx.changed;
            match r {
                // A broken vendor script does not cost the rest of the tree: its table keeps
                // the instances last listed.
                Err(e) if kind == BackendKind::Script => {
                    log::warn!("{tpath}: {e}");
                    None
                }
                r => r?,
            }
        };
        let listed = match (listed, alt) {
            (Some(keys), Some((akind, akey))) => Some(self.join_listing(keys, akind, &akey)?),
            (listed, _) => listed,
        };
        if let Some(mut keys) = listed {
            // Instances whose key changed (a uci anonymous section renamed because one before
            // it was deleted, or moved) keep their number: the backend says which, as pairs
            // applied all at once (two sections may swap names). Keys that could reach into
            // another key (`{`, `}`, or the brackets of a netlink or ubus selection) are not
            // taken.
            // In a selector key (netlink, ubus) a key `*…` would become a listing and one with
            // `=` a field match: not taken either.
            keys.retain(|k| {
                !has_byte_of(k, b"{}[]") && !(live && (k.starts_with('*') || k.contains('=')))
            });
            let tables = if live {
                &self.live_tables
            } else {
                &self.state.tables
            };
            let current = tables.get(&tpath);
            let known: Vec<&str> = current
                .map(|ts| ts.instances.values().map(String::as_str).collect())
                .unwrap_or_default();
            let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
            let pairs: BTreeMap<String, String> = self
                .backends
                .get(kind)
                .renamed(&tkey, &known, &keys)
                .into_iter()
                .filter(|(_, new)| listed.contains(new.as_str()))
                .collect();
            // The same instances as last time, none renamed (what a walk sees table after
            // table): nothing to number, move or prune, and nothing copied to find that out.
            if let Some(ts) = current.filter(|ts| {
                pairs.is_empty()
                    && keys.len() <= MAX_INSTANCES
                    && ts.instances.len() == keys.len()
                    && listed.len() == keys.len()
                    && {
                        let known: HashSet<&str> = known.iter().copied().collect();
                        keys.iter().all(|k| known.contains(k.as_str()))
                    }
            }) {
                let same = ts.instances.iter().map(|(n, k)| (*n, k.clone())).collect();
                self.crowded.remove(&tpath);
                return Ok(same);
            }
            let mut ts = current.cloned().unwrap_or_default();
            let before = ts.clone();
            drop(known);
            if !pairs.is_empty() {
                for v in ts.instances.values_mut() {
                    if let Some(new) = pairs.get(v.as_str()) {
                        v.clone_from(new);
                    }
                }
                self.rekey_agent_values(&pairs);
            }
            ts.instances.retain(|_, k| listed.contains(k.as_str()));
            let mut have: HashSet<String> = ts.instances.values().cloned().collect();
            // Logged once per run over the bound (a LAN host can keep a table there).
            if keys.len() > MAX_INSTANCES {
                if self.crowded.insert(tpath.clone()) {
                    log::warn!(
                        "{tpath}: {} instances, only the first {MAX_INSTANCES} are served",
                        keys.len()
                    );
                }
            } else {
                self.crowded.remove(&tpath);
            }
            for k in keys.iter().take(MAX_INSTANCES) {
                if have.insert(k.clone()) {
                    let last = ts.instances.keys().next_back().copied().unwrap_or(0);
                    let n = ts.next.max(last.saturating_add(1)).max(1);
                    ts.instances.insert(n, k.clone());
                    ts.next = n.saturating_add(1);
                }
            }
            // What hung on instances that are gone (their own tables, the values last
            // reported) goes with them: a table whose keys churn (hosts, stations) would
            // otherwise leave its children behind for ever.
            let gone: HashSet<u32> = before
                .instances
                .keys()
                .filter(|n| !ts.instances.contains_key(n))
                .copied()
                .collect();
            if !gone.is_empty() {
                prune_under(&mut self.live_tables, &tpath, &gone);
                prune_under(&mut self.reported, &tpath, &gone);
                self.dirty |= prune_under(&mut self.state.tables, &tpath, &gone);
            }
            if ts != before && live {
                self.live_tables.insert(tpath.clone(), ts);
            } else if ts != before {
                self.state.tables.insert(tpath.clone(), ts);
                self.dirty = true;
            }
        }
        let tables = if live {
            &self.live_tables
        } else {
            &self.state.tables
        };
        Ok(tables
            .get(&tpath)
            .map(|ts| ts.instances.iter().map(|(n, k)| (*n, k.clone())).collect())
            .unwrap_or_default())
    }

    /// `keys` followed by those of the `or` listing `akey` that are not among them.
    fn join_listing(
        &mut self,
        mut keys: Vec<String>,
        akind: BackendKind,
        akey: &str,
    ) -> Result<Vec<String>, Fault> {
        let akey = if has_nested(akey) {
            match self.resolve_nested(&[akey.to_string()]).pop().flatten() {
                Some(k) => k,
                None => return Ok(keys),
            }
        } else {
            akey.to_string()
        };
        let mut cx = Cx {
            values: &mut self.state.values,
            changed: false,
        };
        let more = self.backends.get(akind).instances(&mut cx, &akey)?;
        self.dirty |= cx.changed;
        let mut seen: HashSet<String> = keys.iter().cloned().collect();
        for k in more.into_iter().flatten() {
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// Moves agent-owned values (an Alias) from instances' old keys to their new ones: every
    /// dot-separated segment that is an old key is replaced.
    pub(super) fn rekey_agent_values(&mut self, pairs: &BTreeMap<String, String>) {
        let moved: Vec<String> = self
            .state
            .values
            .keys()
            .filter(|k| k.split('.').any(|seg| pairs.contains_key(seg)))
            .cloned()
            .collect();
        // All at once: take every moved value out, then put them back under the new keys.
        let taken: Vec<(String, String)> = moved
            .into_iter()
            .filter_map(|k| self.state.values.remove(&k).map(|v| (k, v)))
            .collect();
        for (k, v) in taken {
            let nk: Vec<&str> = k
                .split('.')
                .map(|seg| pairs.get(seg).map_or(seg, String::as_str))
                .collect();
            self.state.values.insert(nk.join("."), v);
            self.dirty = true;
        }
    }

    /// Every instance combination of object `o` (one empty [`Inst`] outside tables).
    pub(super) fn all_instances(&mut self, o: usize) -> Vec<Inst> {
        let mut chain = Vec::new();
        let mut cur = Some(o);
        while let Some(c) = cur {
            chain.push(c);
            cur = self.schema.objects()[c].parent;
        }
        let mut insts = vec![Inst::default()];
        for &c in chain.iter().rev() {
            if self.schema.objects()[c].table.is_none() {
                continue;
            }
            let mut next = Vec::new();
            for i in insts {
                for (n, k) in self.instances(c, &i).unwrap_or_default() {
                    next.push(i.with(n, k));
                }
            }
            insts = next;
        }
        insts
    }

    /// The instances of every table under the instance `(t, inst)`, innermost first.
    pub(super) fn nested_instances(
        &mut self,
        o: usize,
        inst: &Inst,
        out: &mut Vec<(usize, Inst)>,
    ) -> Result<(), Fault> {
        for c in self.schema.objects()[o].children.clone() {
            if self.schema.objects()[c].table.is_some() {
                for (n, k) in self.instances(c, inst)? {
                    let i = inst.with(n, k);
                    self.nested_instances(c, &i, out)?;
                    out.push((c, i));
                }
            } else {
                self.nested_instances(c, inst, out)?;
            }
        }
        Ok(())
    }

    /// What the child object `c` of an object with instance context `inst` is: a table, or a
    /// single object.
    pub(super) fn child_node(&self, c: usize, inst: Inst) -> Node {
        if self.schema.objects()[c].table.is_some() {
            Node::Table(c, inst)
        } else {
            Node::Object(c, inst)
        }
    }

    pub(super) fn object_path(&self, o: usize, inst: &Inst) -> String {
        fill(&self.schema.objects()[o].path, &inst.numbers)
    }

    pub(super) fn table_path(&self, t: usize, inst: &Inst) -> String {
        let p = &self.schema.objects()[t].path;
        fill(p.strip_suffix("{i}.").unwrap_or(p), &inst.numbers)
    }

    pub(super) fn param_path(&self, r: &ParamRef) -> String {
        let mut s = self.object_path(r.obj, &r.inst);
        s.push_str(&self.schema.objects()[r.obj].params[r.param].def.name);
        s
    }

    pub(super) fn base(&self, r: &ParamRef) -> BaseType {
        self.schema.objects()[r.obj].params[r.param].def.ty.base
    }
}

/// An instance number as written in a path: digits, no leading zero, 1 or more (TR-106 §3.1).
pub(super) fn instance_number(seg: &str) -> Option<u32> {
    if seg.starts_with('0') || !seg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seg.parse().ok().filter(|n| *n > 0)
}

/// Whether a path with instance numbers (`Device.A.3.B.`) is an instance of a generic path
/// (`Device.A.{i}.B.`).
pub(super) fn generic_matches(generic: &str, path: &str) -> bool {
    let mut g = generic.split('.');
    let mut p = path.split('.');
    loop {
        match (g.next(), p.next()) {
            (None, None) => return true,
            (Some("{i}"), Some(n)) if instance_number(n).is_some() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Replaces each `{i}` of a generic path with the instance numbers, in order.
pub(super) fn fill(generic: &str, numbers: &[u32]) -> String {
    let mut out = String::with_capacity(generic.len() + 8);
    fill_into(&mut out, generic, numbers);
    out
}

/// [`fill`], appended to `out`.
pub(super) fn fill_into(out: &mut impl std::fmt::Write, generic: &str, numbers: &[u32]) {
    // Writing into a String or a count cannot fail.
    let mut rest = generic;
    let mut nums = numbers.iter();
    while let Some(pos) = next_hole(rest) {
        let _ = out.write_str(&rest[..pos]);
        let _ = match nums.next() {
            Some(n) => write!(out, "{n}"),
            None => out.write_str("{i}"),
        };
        rest = &rest[pos + 3..];
    }
    let _ = out.write_str(rest);
}

/// The length of what [`fill`] returns, counted without building it.
pub(super) fn filled_len(generic: &str, numbers: &[u32]) -> usize {
    let mut n = Count(0);
    fill_into(&mut n, generic, numbers);
    n.0
}

/// Replaces the `{i}` of a binding key with the innermost instance keys, in order (a key with
/// one `{i}` takes the key of the innermost instance).
pub(super) fn expand(template: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    expand_holes_into(&mut out, template, keys, count_holes(template));
    out
}

/// [`expand`] of a template with `n` holes, written to `out`.
fn expand_holes_into(out: &mut impl std::fmt::Write, template: &str, keys: &[String], n: usize) {
    let mut rest = template;
    let mut used = keys[keys.len().saturating_sub(n)..].iter();
    for _ in 0..n {
        let Some(pos) = next_hole(rest) else {
            break;
        };
        let _ = out.write_str(&rest[..pos]);
        let _ = out.write_str(used.next().map_or("{i}", String::as_str));
        rest = &rest[pos + 3..];
    }
    let _ = out.write_str(rest);
}

/// The holes of a binding's key, counted when it was read unless there are too many.
fn binding_holes(b: &Binding) -> usize {
    match b.holes {
        u8::MAX => count_holes(&b.key),
        n => usize::from(n),
    }
}

/// [`expand`] of a binding's key, written to `out`.
pub(super) fn expand_binding_into(out: &mut impl std::fmt::Write, b: &Binding, keys: &[String]) {
    expand_holes_into(out, &b.key, keys, binding_holes(b));
}

/// The length of what [`expand_binding_into`] writes, from the lengths of the instance keys
/// it takes (each in place of a `{i}`; a hole without a key stays `{i}`).
pub(super) fn expanded_len(b: &Binding, keys: &[String]) -> usize {
    let n = binding_holes(b);
    let used = &keys[keys.len().saturating_sub(n)..];
    let taken: usize = used.iter().map(String::len).sum();
    (b.key.len() + taken).saturating_sub(3 * used.len())
}

/// Whether a key (after `{i}` expansion) holds a reference to another backend's value.
pub(super) fn has_nested(key: &str) -> bool {
    nested_refs(key).next().is_some()
}

/// The references `{kind:key}` in a key: (start, end, backend, inner key), `end` exclusive,
/// found as they are iterated (a read asks [`has_nested`] of every key: a list of them was an
/// allocation for each key that has one).
pub(super) fn nested_refs(key: &str) -> impl Iterator<Item = (usize, usize, BackendKind, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(pos) = key.get(from..).and_then(|k| byte_at(k, b'{')) {
            let start = from + pos;
            let after = &key[start + 1..];
            let colon = byte_at(after, b':')?;
            let Some(kind) = BackendKind::from_name(&after[..colon]) else {
                from = start + 1;
                continue;
            };
            let close = byte_at(after, b'}')?;
            if close < colon {
                from = start + 1;
                continue;
            }
            from = start + close + 2;
            return Some((start, start + close + 2, kind, &after[colon + 1..close]));
        }
        None
    })
}

/// The instance context of the table that holds an instance.
pub(super) fn parent_of(inst: &Inst) -> Inst {
    let mut p = inst.clone();
    p.numbers.pop();
    p.keys.pop();
    p
}

/// Removes the entries of `map` under the instances `gone` of the table `tpath`
/// (`{tpath}{n}.…`: contiguous in the map's order); says whether any was.
fn prune_under<V>(map: &mut BTreeMap<String, V>, tpath: &str, gone: &HashSet<u32>) -> bool {
    let doomed: Vec<String> = map
        .range::<str, _>((std::ops::Bound::Included(tpath), std::ops::Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(tpath))
        .filter(|(k, _)| {
            let rest = &k[tpath.len()..];
            rest.split_once('.')
                .and_then(|(n, _)| n.parse::<u32>().ok())
                .is_some_and(|n| gone.contains(&n))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &doomed {
        map.remove(k);
    }
    !doomed.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(fill("Device.A.{i}.B.{i}.", &[3, 7]), "Device.A.3.B.7.");
        assert_eq!(fill("Device.A.", &[]), "Device.A.");
        let keys = vec!["cfg1".to_string(), "cfg2".to_string()];
        assert_eq!(expand("a.{i}.b.{i}.c", &keys), "a.cfg1.b.cfg2.c");
        assert_eq!(expand("net.{i}.proto", &keys), "net.cfg2.proto");
        assert_eq!(expand("x", &keys), "x");
        assert_eq!(instance_number("12"), Some(12));
        assert!(generic_matches("Device.A.{i}.B.", "Device.A.3.B."));
        assert!(generic_matches("Device.A.", "Device.A."));
        assert!(!generic_matches("Device.A.{i}.B.", "Device.A.3.C."));
        assert!(!generic_matches("Device.A.{i}.B.", "Device.A.x.B."));
        assert!(!generic_matches("Device.A.", "Device.A.1."));
        for bad in ["0", "01", "-1", "1a", "", "99999999999"] {
            assert_eq!(instance_number(bad), None, "{bad}");
        }
    }

    use crate::datamodel::fixture::{self, code};

    fn kind(n: &Node) -> (&'static str, Vec<u32>) {
        match n {
            Node::Object(_, i) => ("object", i.numbers.clone()),
            Node::Table(_, i) => ("table", i.numbers.clone()),
            Node::Param(_, _, i) => ("param", i.numbers.clone()),
        }
    }

    #[test]
    fn resolves_full_and_partial_paths() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "").unwrap();
        e.add_object("Device.A.T.", "").unwrap();
        for (path, want, numbers) in [
            ("Device.", "object", vec![]),
            ("Device.A.", "object", vec![]),
            ("Device.A.X", "param", vec![]),
            ("Device.A.T.", "table", vec![]),
            ("Device.A.T.2.", "object", vec![2]),
            ("Device.A.T.2.V", "param", vec![2]),
            ("Device.A.T.1.U.", "table", vec![1]),
        ] {
            let node = e.resolve(path).unwrap_or_else(|f| panic!("{path}: {f:?}"));
            assert_eq!(kind(&node), (want, numbers), "{path}");
        }
    }

    #[test]
    fn names_that_name_nothing_are_9005() {
        let mut e = fixture::engine();
        e.add_object("Device.A.T.", "").unwrap();
        let long = format!("Device.A.{}", "Y".repeat(MAX_PATH));
        for path in [
            "Device",        // an object without its dot
            "Device.A",      // likewise
            "Device.A.X.",   // a parameter with a dot
            "Device.A.Nope", // an unknown parameter
            "Device.Nope.",  // an unknown object
            "InternetGatewayDevice.A.X",
            "Device..A.X",
            "Device.A.T.7.",  // no such instance
            "Device.A.T.01.", // not an instance number
            "Device.A.T.0.",
            "Device.A.T.1.V.W", // past a parameter
            "Device.A.T.V",     // a parameter of the instances, named on the table
            long.as_str(),
        ] {
            assert_eq!(code(e.resolve(path)), 9005, "{path}");
        }
    }

    #[test]
    fn patterns_expand_stars_over_instances() {
        let mut e = fixture::engine();
        for _ in 0..3 {
            e.add_object("Device.A.T.", "").unwrap();
        }
        e.delete_object("Device.A.T.2.", "").unwrap();
        let paths = |e: &mut Engine, p: &str| -> Vec<String> {
            let refs = e.expand_pattern(p);
            refs.iter().map(|r| e.param_path(r)).collect()
        };
        assert_eq!(
            paths(&mut e, "Device.A.T.*.V"),
            ["Device.A.T.1.V", "Device.A.T.3.V"]
        );
        assert_eq!(paths(&mut e, "Device.A.T.3.V"), ["Device.A.T.3.V"]);
        assert_eq!(
            paths(&mut e, "Device.A.T.*."),
            ["Device.A.T.1.V", "Device.A.T.3.V"]
        );
        // Unknown names and a partial path on a parameter give nothing.
        assert!(paths(&mut e, "Device.A.T.*.Nope").is_empty());
        assert!(paths(&mut e, "Device.A.X.").is_empty());
        assert!(paths(&mut e, "Other.A.X").is_empty());
    }

    #[test]
    fn instances_listed_get_numbers_in_order_and_keep_them() {
        let mut e = fixture::engine();
        let (n1, _) = e.add_object("Device.A.T.", "").unwrap();
        let (n2, _) = e.add_object("Device.A.T.", "").unwrap();
        assert_eq!((n1, n2), (1, 2));
        let t = e.schema.object_index("Device.A.T.{i}.").unwrap();
        let list = e.instances(t, &Inst::default()).unwrap();
        // The agent backend's key of an instance is its number.
        assert_eq!(list, [(1, "1".to_string()), (2, "2".to_string())]);
        assert_eq!(e.all_instances(t).len(), 2);
        let u = e.schema.object_index("Device.A.T.{i}.U.{i}.").unwrap();
        e.add_object("Device.A.T.2.U.", "").unwrap();
        let all: Vec<Vec<u32>> = e.all_instances(u).into_iter().map(|i| i.numbers).collect();
        assert_eq!(all, [vec![2, 1]]);
    }

    /// A table listed again with the same instances answers the same numbers and changes
    /// nothing in the store; one that lost an instance keeps the others' numbers.
    #[test]
    fn a_listing_as_before_keeps_its_numbers_and_writes_nothing() {
        let mut e = fixture::engine();
        for _ in 0..3 {
            e.add_object("Device.A.T.", "").unwrap();
        }
        let t = e.schema.object_index("Device.A.T.{i}.").unwrap();
        let first = e.instances(t, &Inst::default()).unwrap();
        let want: Vec<(u32, String)> = (1..=3).map(|n| (n, n.to_string())).collect();
        assert_eq!(first, want);
        e.dirty = false;
        let stored = e.state.tables.clone();
        assert_eq!(e.instances(t, &Inst::default()).unwrap(), want);
        assert!(!e.dirty);
        assert_eq!(e.state.tables, stored);
        e.delete_object("Device.A.T.2.", "").unwrap();
        assert_eq!(
            e.instances(t, &Inst::default()).unwrap(),
            [(1, "1".to_string()), (3, "3".to_string())]
        );
        let (n, _) = e.add_object("Device.A.T.", "").unwrap();
        assert_eq!(n, 4, "a number is not given twice");
    }

    #[test]
    fn prune_under_takes_only_what_hangs_on_the_gone_instances() {
        let mut m: BTreeMap<String, u8> = [
            "Device.A.T.",
            "Device.A.T.1.U.",
            "Device.A.T.1.U.3.W",
            "Device.A.T.10.U.",
            "Device.A.T.2.U.",
            "Device.A.TX.1.U.",
            "Device.B.Z",
        ]
        .into_iter()
        .map(|k| (k.to_string(), 0))
        .collect();
        assert!(prune_under(&mut m, "Device.A.T.", &HashSet::from([1])));
        let left: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            left,
            [
                "Device.A.T.",
                "Device.A.T.10.U.",
                "Device.A.T.2.U.",
                "Device.A.TX.1.U.",
                "Device.B.Z"
            ]
        );
        assert!(!prune_under(&mut m, "Device.A.T.", &HashSet::from([7])));
    }
}
