//! Building the exposed tree: the definitions and bindings of every file merged (later
//! bindings over earlier ones), checked, and pruned to the bound parameters, in definition
//! order ([`Schema`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::defs::*;
use super::parse::{BindEntry, ParsedFile};
use crate::datamodel::backend::registry::BackendKind;
use crate::datamodel::backend::ScriptDef;

#[derive(Default)]
pub(super) struct Builder {
    model_name: Option<String>,
    objects: Vec<ObjectDef>,
    index: HashMap<String, usize>,
    binds: Vec<BindEntry>,
    scripts: BTreeMap<String, ScriptDef>,
    /// `[device]` entries: table path, binding, file, line (a later one replaces an earlier).
    devices: Vec<(String, Binding, String, usize)>,
}

impl Builder {
    pub(super) fn add(
        &mut self,
        model: Model,
        file: &str,
        parsed: ParsedFile,
        extension: bool,
    ) -> Result<(), LoadError> {
        let root = model.root();
        let other = model.other().root();
        let mut paths = parsed
            .definitions
            .objects
            .iter()
            .map(|o| (o.path.as_str(), o.line))
            .chain(parsed.binds.iter().map(|b| (b.object.as_str(), b.line)));
        if extension {
            // A vendor file serves one root model; files of the other one are skipped.
            let all: Vec<(&str, usize)> = paths.collect();
            if !all.is_empty() && all.iter().all(|(p, _)| p.starts_with(other)) {
                return Ok(());
            }
            if let Some((p, l)) = all.iter().find(|(p, _)| !p.starts_with(root)) {
                return Err(load_err(file, *l, format!("{p} is not under {root}")));
            }
            if parsed.definitions.model.is_some() {
                return Err(LoadError {
                    file: file.to_string(),
                    line: None,
                    message: "[model] belongs only in the generated definitions".into(),
                });
            }
        } else if let Some((p, l)) = paths.find(|(p, _)| !p.starts_with(root)) {
            return Err(load_err(file, l, format!("{p} is not under {root}")));
        }
        if let Some(m) = parsed.definitions.model {
            self.model_name = Some(m);
        }
        for o in parsed.definitions.objects {
            if !o.path.ends_with('.') || o.path.contains("..") {
                return Err(load_err(
                    file,
                    o.line,
                    format!("object name {:?} must end with a single `.`", o.path),
                ));
            }
            for p in &o.params {
                if p.name.is_empty() || p.name.contains('.') || p.name.contains('{') {
                    return Err(load_err(
                        file,
                        p.line,
                        format!("bad parameter name {:?}", p.name),
                    ));
                }
            }
            match self.index.get(&o.path) {
                None => {
                    self.index.insert(o.path.clone(), self.objects.len());
                    self.objects.push(o);
                }
                Some(&i) => {
                    // A vendor file may add parameters to an object defined before.
                    let existing = &mut self.objects[i];
                    for p in o.params {
                        if existing.params.iter().any(|e| e.name == p.name) {
                            return Err(load_err(
                                file,
                                p.line,
                                format!("{}{} is already defined", o.path, p.name),
                            ));
                        }
                        existing.params.push(p);
                    }
                }
            }
        }
        self.binds.extend(parsed.binds);
        for (table, binding, line) in parsed.devices {
            self.devices.push((table, binding, file.to_string(), line));
        }
        for (name, mut def, line) in parsed.scripts {
            if self.scripts.contains_key(&name) {
                return Err(load_err(
                    file,
                    line,
                    format!("script {name} is already declared"),
                ));
            }
            // A relative path is relative to the directory of the file that declares it.
            if def.path.is_relative() {
                if let Some(dir) = Path::new(file).parent() {
                    def.path = dir.join(&def.path);
                }
            }
            self.scripts.insert(name, def);
        }
        Ok(())
    }

    pub(super) fn finish(self, model: Model) -> Result<Schema, LoadError> {
        let root = model.root();
        let Builder {
            model_name,
            objects: mut defs,
            index,
            binds,
            scripts,
            devices: device_entries,
        } = self;
        // A model-wide error names the model's first embedded file.
        let file = || {
            model
                .embedded()
                .first()
                .map_or("datamodel", |f| *f)
                .to_string()
        };
        let model_name = model_name.ok_or_else(|| LoadError {
            file: file(),
            line: None,
            message: "no [model] in the definitions".into(),
        })?;
        let root_idx = *index.get(root).ok_or_else(|| LoadError {
            file: file(),
            line: None,
            message: format!("the root object {root} is not defined"),
        })?;

        // Parents: every object but the root has its containing object defined.
        let mut parent: Vec<Option<usize>> = vec![None; defs.len()];
        for (i, d) in defs.iter().enumerate() {
            if i == root_idx {
                continue;
            }
            let pp = crate::datamodel::generate::parent_path(&d.path).unwrap_or("");
            let p = *index.get(pp).ok_or_else(|| {
                load_err(
                    &d.file,
                    d.line,
                    format!("{}: parent object {pp:?} is not defined", d.path),
                )
            })?;
            if d.path.strip_prefix(pp).is_none_or(|rest| {
                let rest = rest
                    .strip_suffix(".{i}.")
                    .or_else(|| rest.strip_suffix('.'));
                rest.is_none_or(|r| r.is_empty() || r.contains('.') || r.contains('{'))
            }) {
                return Err(load_err(
                    &d.file,
                    d.line,
                    format!("bad object name {:?}", d.path),
                ));
            }
            if d.is_table() != d.path.ends_with(".{i}.") {
                return Err(load_err(
                    &d.file,
                    d.line,
                    format!(
                        "{}: a table is named `….{{i}}.` and has max_entries other than 1",
                        d.path
                    ),
                ));
            }
            parent[i] = Some(p);
        }

        // A script binding names a declared script (`[script.NAME]`), also inside a reference.
        for b in &binds {
            let mut named: Vec<&str> = Vec::new();
            if b.binding.backend == BackendKind::Script {
                named.push(&b.binding.key);
            }
            let mut rest = b.binding.key.as_str();
            while let Some(at) = rest.find("{script:") {
                rest = &rest[at + "{script:".len()..];
                named.push(rest);
            }
            for key in named {
                let name = key.split(':').next().unwrap_or_default();
                if !scripts.contains_key(name) {
                    return Err(load_err(
                        &b.file,
                        b.line,
                        format!(
                            "binding of {}{} uses script {name:?}, which no [script.{name}] declares",
                            b.object, b.name
                        ),
                    ));
                }
            }
        }

        // Bindings, later ones overriding earlier ones.
        let mut table_bind: HashMap<usize, &BindEntry> = HashMap::new();
        let mut param_bind: HashMap<(usize, usize), &BindEntry> = HashMap::new();
        for b in &binds {
            let o = *index.get(&b.object).ok_or_else(|| {
                load_err(
                    &b.file,
                    b.line,
                    format!("binding for undefined object {}", b.object),
                )
            })?;
            if b.name == "{i}" {
                if !defs[o].is_table() {
                    return Err(load_err(
                        &b.file,
                        b.line,
                        format!("{} is not a table: it has no instances to bind", b.object),
                    ));
                }
                for key in std::iter::once(&b.binding)
                    .chain(b.binding.or())
                    .map(|b| &b.key)
                {
                    check_placeholders(key, table_depth(&defs, &parent, o) - 1)
                        .map_err(|m| load_err(&b.file, b.line, m))?;
                }
                if b.binding.under().is_some() && table_depth(&defs, &parent, o) < 2 {
                    return Err(load_err(
                        &b.file,
                        b.line,
                        format!(
                            "`under` needs a table inside another table, not {}",
                            b.object
                        ),
                    ));
                }
                table_bind.insert(o, b);
            } else {
                let p = defs[o]
                    .params
                    .iter()
                    .position(|p| p.name == b.name)
                    .ok_or_else(|| {
                        load_err(
                            &b.file,
                            b.line,
                            format!("binding for undefined parameter {}{}", b.object, b.name),
                        )
                    })?;
                check_placeholders(&b.binding.key, table_depth(&defs, &parent, o))
                    .map_err(|m| load_err(&b.file, b.line, m))?;
                if b.binding.under().is_some() {
                    return Err(load_err(
                        &b.file,
                        b.line,
                        format!(
                            "`under` is for a table's `{{i}}`, not {}{}",
                            b.object, b.name
                        ),
                    ));
                }
                if let Some(d) = &b.binding.default {
                    defs[o].params[p].ty.check(d).map_err(|f| {
                        load_err(
                            &b.file,
                            b.line,
                            format!("default of {}{}: {}", b.object, b.name, f.detail()),
                        )
                    })?;
                }
                if b.binding.active_by_default {
                    let def = &mut defs[o].params[p];
                    if def.active_notify != ActiveNotify::Normal {
                        return Err(load_err(
                            &b.file,
                            b.line,
                            format!(
                                "notify = \"active\" is for a parameter the model leaves normal, not {}{}",
                                b.object, b.name
                            ),
                        ));
                    }
                    def.active_notify = ActiveNotify::ForceDefaultEnabled;
                }
                param_bind.insert((o, p), b);
            }
        }

        // A bound parameter needs every table above it bound too; agent-owned table values live
        // under the table's key so that DeleteObject can remove them.
        for (&(o, _), b) in &param_bind {
            let mut cur = Some(o);
            while let Some(c) = cur {
                if defs[c].is_table() {
                    let Some(tb) = table_bind.get(&c) else {
                        return Err(load_err(
                            &b.file,
                            b.line,
                            format!(
                                "{}{} is bound but its table {} has no `{{i}}` binding",
                                b.object, b.name, defs[c].path
                            ),
                        ));
                    };
                    if tb.binding.backend == BackendKind::Agent
                        && b.binding.backend == BackendKind::Agent
                        && !b
                            .binding
                            .key
                            .starts_with(&format!("{}.{{i}}.", tb.binding.key))
                    {
                        return Err(load_err(
                            &b.file,
                            b.line,
                            format!(
                                "agent key {:?} must start with its table's key {:?} followed by `.{{i}}.`",
                                b.binding.key, tb.binding.key
                            ),
                        ));
                    }
                }
                cur = parent[c];
            }
        }
        for (&t, b) in &table_bind {
            let mut cur = parent[t];
            while let Some(c) = cur {
                if defs[c].is_table() && !table_bind.contains_key(&c) {
                    return Err(load_err(
                        &b.file,
                        b.line,
                        format!(
                            "{} is bound but its table {} has no `{{i}}` binding",
                            defs[t].path, defs[c].path
                        ),
                    ));
                }
                cur = parent[c];
            }
        }

        // Exposed: bound parameters, bound tables, the counts of exposed tables, and every
        // object on the way to them.
        let mut exposed = vec![false; defs.len()];
        exposed[root_idx] = true;
        for &(o, _) in param_bind.keys() {
            exposed[o] = true;
        }
        for &t in table_bind.keys() {
            exposed[t] = true;
        }
        for i in 0..defs.len() {
            if exposed[i] {
                let mut cur = parent[i];
                while let Some(c) = cur {
                    exposed[c] = true;
                    cur = parent[c];
                }
            }
        }
        let mut new_index: Vec<Option<usize>> = vec![None; defs.len()];
        let mut n = 0;
        // The root first, then the others in definition order.
        let order: Vec<usize> = std::iter::once(root_idx)
            .chain((0..defs.len()).filter(|&i| i != root_idx))
            .collect();
        for &i in &order {
            if exposed[i] {
                new_index[i] = Some(n);
                n += 1;
            }
        }
        // The tables whose count parameter each object holds: (object, parameter name) → table.
        let counts: HashMap<(usize, &str), usize> = (0..defs.len())
            .filter(|c| table_bind.contains_key(c))
            .filter_map(|c| Some(((parent[c]?, defs[c].num_entries.as_deref()?), c)))
            .collect();
        let mut objects: Vec<Object> = Vec::with_capacity(n);
        for &i in &order {
            let Some(_) = new_index[i] else { continue };
            let d = &defs[i];
            let name = d
                .path
                .trim_end_matches('.')
                .trim_end_matches(".{i}")
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            let mut params = Vec::new();
            for (pi, p) in d.params.iter().enumerate() {
                let source = if let Some(b) = param_bind.get(&(i, pi)) {
                    Some(Source::Bound(b.binding.clone()))
                } else {
                    // The count of an exposed child table, computed by the engine.
                    counts
                        .get(&(i, p.name.as_str()))
                        .and_then(|&c| new_index[c])
                        .map(Source::Count)
                };
                if let Some(source) = source {
                    params.push(Param {
                        def: p.clone(),
                        source,
                    });
                }
            }
            // Kept for the daemon's life: no room to grow.
            params.shrink_to_fit();
            let table = table_bind.get(&i).map(|b| Table {
                min_entries: d.min_entries,
                max_entries: d.max_entries,
                binding: b.binding.clone(),
            });
            objects.push(Object {
                path: d.path.clone(),
                name,
                writable: d.access != Access::ReadOnly,
                table,
                params,
                children: Vec::new(),
                parent: parent[i].and_then(|p| new_index[p]),
            });
        }
        for i in 0..objects.len() {
            if let Some(p) = objects[i].parent {
                objects[p].children.push(i);
            }
        }
        // A `ref` names a bound top-level table.
        for o in &objects {
            let bindings = o
                .params
                .iter()
                .filter_map(|p| match &p.source {
                    Source::Bound(b) => Some((p.def.name.as_str(), b)),
                    Source::Count(_) => None,
                })
                .chain(o.table.iter().map(|t| ("{i}", &t.binding)));
            for (name, b) in bindings {
                let Some(r) = b.reference() else { continue };
                let ok = objects
                    .iter()
                    .any(|t| t.path == *r && t.table.is_some() && r.matches("{i}").count() == 1);
                if !ok {
                    let bind = binds
                        .iter()
                        .rev()
                        .find(|e| e.object == o.path && e.name == name);
                    return Err(load_err(
                        bind.map_or("datamodel", |e| e.file.as_str()),
                        bind.map_or(0, |e| e.line),
                        format!(
                            "{}{name}: ref {} is not a bound table outside other tables",
                            o.path,
                            r.trim_end_matches("{i}.")
                        ),
                    ));
                }
            }
        }
        // `[device]`: of an exposed table, with a key the backend accepts and no more `{i}`
        // than tables contain it.
        let mut devices = BTreeMap::new();
        for (table, binding, file, line) in device_entries {
            let Some(o) = objects
                .iter()
                .position(|o| o.path == table && o.table.is_some())
            else {
                return Err(load_err(
                    &file,
                    line,
                    format!("device of {table}: not an exposed table"),
                ));
            };
            let depth = objects[o].path.matches("{i}").count();
            check_placeholders(&binding.key, depth)
                .map_err(|m| load_err(&file, line, format!("device of {table}: {m}")))?;
            devices.insert(o, binding);
        }
        Ok(Schema {
            model,
            model_name,
            objects,
            scripts,
            devices,
        })
    }
}

/// How many tables contain object `o` (itself included).
pub(super) fn table_depth(defs: &[ObjectDef], parent: &[Option<usize>], o: usize) -> usize {
    let mut n = 0;
    let mut cur = Some(o);
    while let Some(c) = cur {
        if defs[c].is_table() {
            n += 1;
        }
        cur = parent[c];
    }
    n
}

/// A key may use at most as many `{i}` as there are instances above it.
pub(super) fn check_placeholders(key: &str, depth: usize) -> Result<(), String> {
    let n = key.matches("{i}").count();
    if n > depth {
        return Err(format!(
            "key {key:?} has {n} `{{i}}` but only {depth} table level(s) contain it"
        ));
    }
    Ok(())
}
