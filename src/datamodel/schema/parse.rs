//! The file format of `datamodel/*.toml` (see `datamodel/README.md`): one file's definitions,
//! bindings and scripts, with the line of each; parsing only (no file access).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::compiled;
use super::defs::*;
use crate::cwmp::value::BaseType;
use crate::datamodel::backend::registry::BackendKind;
use crate::datamodel::backend::ScriptDef;
use crate::datamodel::transform::Transform;
use crate::datamodel::types::{Range, TypeSpec};
use crate::toml_read::{self, At, FromToml};

#[derive(Default)]
pub(super) struct RawFile {
    model: Option<RawModel>,
    object: Vec<RawObject>,
    bind: BTreeMap<String, BTreeMap<String, At<RawBinding>>>,
    script: BTreeMap<String, At<RawScript>>,
    device: BTreeMap<String, At<String>>,
}

/// `[script.NAME]`: a vendor script of the `script` backend.
#[derive(Default)]
pub(super) struct RawScript {
    path: String,
    timeout_ms: Option<u64>,
}

#[derive(Default)]
pub(super) struct RawModel {
    name: String,
    #[allow(dead_code)]
    source: Option<String>,
}

pub(super) enum MaxEntries {
    Count(u32),
    Word(String),
}

#[derive(Default)]
pub(super) struct RawObject {
    name: At<String>,
    access: Access,
    min_entries: Option<u32>,
    max_entries: Option<MaxEntries>,
    num_entries: Option<String>,
    enable: Option<String>,
    unique_keys: Vec<UniqueKey>,
    status: Option<String>,
    params: Vec<RawParam>,
}

#[derive(Default)]
pub(super) struct RawParam {
    name: At<String>,
    base: BaseType,
    list: bool,
    max_length: Option<u32>,
    min_length: Option<u32>,
    item_max_length: Option<u32>,
    ranges: Vec<RawRange>,
    enumeration: Vec<String>,
    enum_read_only: Vec<String>,
    pattern: Vec<String>,
    named: Option<String>,
    access: Access,
    forced_inform: bool,
    active_notify: ActiveNotify,
    hidden: bool,
    default: Option<String>,
    status: Option<String>,
}

/// A range facet (TOML integers are 64-bit).
#[derive(Default)]
pub(super) struct RawRange {
    min: Option<i64>,
    max: Option<i64>,
    step: Option<i64>,
}

/// A binding: `"backend:key"`, or `{ to = "backend:key", default = "value" }`.
pub(super) enum RawBinding {
    Short(String),
    Long(LongBinding),
}

#[derive(Default)]
pub(super) struct LongBinding {
    to: String,
    default: Option<String>,
    map: BTreeMap<String, String>,
    transform: Option<String>,
    reference: Option<String>,
    under: Option<String>,
    or: Option<String>,
    or_transform: Option<String>,
    notify: Option<String>,
}

crate::from_toml_struct!(RawFile {
    model,
    object,
    bind,
    script,
    device
});
crate::from_toml_struct!(RawScript { path, timeout_ms } required "path");
crate::from_toml_struct!(RawModel { name, source } required "name");
crate::from_toml_struct!(RawObject {
    name, access, min_entries, max_entries, num_entries, enable, unique_keys, status, params,
} required "name");
crate::from_toml_struct!(RawParam {
    name, base = "type", list, max_length, min_length, item_max_length, ranges,
    enumeration = "enum", enum_read_only, pattern, named, access, forced_inform, active_notify,
    hidden, default, status,
} required "name", "type");
crate::from_toml_struct!(RawRange { min, max, step });
crate::from_toml_struct!(LongBinding {
    to, default, map, transform, reference = "ref", under, or, or_transform, notify,
} required "to");

/// `max_entries`: a count, or a word (`"unbounded"`, checked by the caller).
impl FromToml for MaxEntries {
    fn from_toml(v: &toml_read::Value<'_>) -> Result<Self, toml_read::Error> {
        match v.get_ref() {
            toml_read::Item::String(s) => Ok(MaxEntries::Word(s.to_string())),
            toml_read::Item::Integer(..) => u32::from_toml(v).map(MaxEntries::Count),
            _ => Err(toml_read::invalid_type(v, "a count or \"unbounded\"")),
        }
    }
}

/// A binding: its short form (a string) or its long one (a table).
impl FromToml for RawBinding {
    fn from_toml(v: &toml_read::Value<'_>) -> Result<Self, toml_read::Error> {
        match v.get_ref() {
            toml_read::Item::String(s) => Ok(RawBinding::Short(s.to_string())),
            toml_read::Item::Table(_) => LongBinding::from_toml(v).map(RawBinding::Long),
            _ => Err(toml_read::invalid_type(v, "a string or a table")),
        }
    }
}

/// One binding entry: `[bind."<object>"] <name> = …` (`<name>` is a parameter, or `{i}` for the
/// instances of a table).
#[derive(Debug, PartialEq)]
pub(super) struct BindEntry {
    pub(super) object: String,
    pub(super) name: String,
    pub(super) binding: Binding,
    pub(super) file: String,
    pub(super) line: usize,
}

#[derive(Debug, PartialEq)]
pub(super) struct ParsedFile {
    pub(super) definitions: Definitions,
    pub(super) binds: Vec<BindEntry>,
    /// Declared scripts with the line of their declaration; paths as written.
    pub(super) scripts: Vec<(String, ScriptDef, usize)>,
    /// `[device]`: the network device of a table's instances (`"Device.IP.Interface.{i}." =
    /// "backend:key"`), with the line of each.
    pub(super) devices: Vec<(String, Binding, usize)>,
}

/// Line numbers of byte offsets (1-based), with one pass over the text.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Reads the TOML text of a file.
pub(super) fn parse_file(file: &str, text: &str) -> Result<ParsedFile, LoadError> {
    let lines = Lines::new(text);
    let root = toml_read::parse(text).map_err(|e| LoadError {
        file: file.to_string(),
        line: e.offset.map(|o| lines.of(o)),
        message: e.message,
    })?;
    parse_value(file, &root, &|offset| lines.of(offset))
}

/// Reads the root table of a file read from its text; `line_of` gives the line of a value's
/// place.
pub(super) fn parse_value(
    file: &str,
    root: &toml_read::Value<'_>,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<ParsedFile, LoadError> {
    let mut raw = RawFile::from_toml(root).map_err(|e| read_err(file, e, line_of))?;
    let objects = std::mem::take(&mut raw.object)
        .into_iter()
        .map(|o| object_def(file, o, line_of))
        .collect::<Result<Vec<_>, _>>()?;
    parsed(file, raw, objects, line_of)
}

/// Reads the embedded file `file` from the compiled data model (`None`: not embedded). Its
/// objects are read one at a time, so the file's whole tree is never in memory (a transient
/// of about 1 MB for `tr181.toml`, which the allocator keeps after it is freed); its values are
/// placed at their lines. The parameters of an object that `keep` refuses (by its path) are
/// decoded and dropped, not read into definitions.
pub(super) fn parse_compiled(
    blob: &compiled::Blob<'_>,
    file: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Option<ParsedFile>, LoadError> {
    let line_of = |line: usize| line;
    let mut objects = Vec::new();
    let mut rest = Vec::new();
    let found = blob.entries(file, "object", &mut |key, mut value| {
        if key == "object" {
            if let toml_read::Item::Table(t) = value.get_mut() {
                let kept = match t.get("name").map(toml_read::Value::get_ref) {
                    Some(toml_read::Item::String(path)) => keep(path),
                    _ => true,
                };
                if !kept {
                    t.remove("params");
                }
            }
            let raw = RawObject::from_toml(&value).map_err(|e| read_err(file, e, &line_of))?;
            objects.push(object_def(file, raw, &line_of)?);
        } else {
            rest.push((toml_read::At::new(value.span(), Cow::Borrowed(key)), value));
        }
        Ok(())
    })?;
    if !found {
        return Ok(None);
    }
    let root = toml_read::Value::new(0..0, toml_read::Item::Table(toml_read::Table::new(rest)));
    let raw = RawFile::from_toml(&root).map_err(|e| read_err(file, e, &line_of))?;
    parsed(file, raw, objects, &line_of).map(Some)
}

fn read_err(file: &str, e: toml_read::Error, line_of: &dyn Fn(usize) -> usize) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: e.offset.map(line_of),
        message: e.message,
    }
}

/// One object of a file.
fn object_def(
    file: &str,
    o: RawObject,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<ObjectDef, LoadError> {
    let line = line_of(o.name.span().start);
    let path = o.name.into_inner();
    let max_entries = match o.max_entries {
        None => Some(1),
        Some(MaxEntries::Count(n)) => Some(n),
        Some(MaxEntries::Word(w)) if w == "unbounded" => None,
        Some(MaxEntries::Word(w)) => {
            return Err(load_err(
                file,
                line,
                format!("object {path}: max_entries must be a number or \"unbounded\", not {w:?}"),
            ))
        }
    };
    let mut params = Vec::with_capacity(o.params.len());
    for p in o.params {
        let pline = line_of(p.name.span().start);
        let name = p.name.into_inner();
        let writable: Vec<String> = p
            .enumeration
            .iter()
            .filter(|v| !p.enum_read_only.contains(v))
            .cloned()
            .collect();
        let ty = TypeSpec {
            base: p.base,
            max_length: p.max_length,
            min_length: p.min_length,
            item_max_length: p.item_max_length,
            ranges: p
                .ranges
                .iter()
                .map(|r| Range {
                    min: r.min.map(i128::from),
                    max: r.max.map(i128::from),
                    step: r.step.map(i128::from),
                })
                .collect(),
            enumeration: writable,
            list: p.list,
            named: p.named,
        };
        params.push(ParamDef {
            name,
            ty,

            access: p.access,
            forced_inform: p.forced_inform,
            active_notify: p.active_notify,
            hidden: p.hidden,
            default: p.default,
            line: pline,
            notes: (!p.enum_read_only.is_empty() || !p.pattern.is_empty() || p.status.is_some())
                .then(|| {
                    Box::new(ParamNotes {
                        enum_read_only: p.enum_read_only,
                        patterns: p.pattern,
                        status: p.status,
                    })
                }),
        });
    }
    Ok(ObjectDef {
        path,
        access: o.access,
        min_entries: o.min_entries.unwrap_or(1),
        max_entries,
        num_entries: o.num_entries,
        enable: o.enable,
        unique_keys: o.unique_keys,
        status: o.status,
        params,
        file: file.to_string(),
        line,
    })
}

/// The rest of a file (its bindings, scripts and devices) after its objects.
fn parsed(
    file: &str,
    raw: RawFile,
    objects: Vec<ObjectDef>,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<ParsedFile, LoadError> {
    let err = |offset: usize, message: String| LoadError {
        file: file.to_string(),
        line: Some(line_of(offset)),
        message,
    };
    let mut binds = Vec::new();
    for (object, entries) in raw.bind {
        for (name, value) in entries {
            let offset = value.span().start;
            let binding = match value.into_inner() {
                RawBinding::Short(s) => parse_binding(&s, None),
                RawBinding::Long(l) => long_binding(l),
            }
            .map_err(|m| err(offset, format!("binding of {object}{name}: {m}")))?;
            binds.push(BindEntry {
                object: object.clone(),
                name,
                binding,
                file: file.to_string(),
                line: line_of(offset),
            });
        }
    }
    let mut scripts = Vec::new();
    for (name, raw) in raw.script {
        let line = line_of(raw.span().start);
        let raw = raw.into_inner();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(load_err(file, line, format!("bad script name {name:?}")));
        }
        if raw.path.is_empty() {
            return Err(load_err(file, line, format!("script {name}: empty path")));
        }
        scripts.push((
            name,
            ScriptDef {
                path: PathBuf::from(raw.path),
                timeout: raw.timeout_ms.map(Duration::from_millis),
            },
            line,
        ));
    }
    let mut devices = Vec::new();
    for (table, key) in raw.device {
        let offset = key.span().start;
        let binding = parse_binding(key.get_ref(), None)
            .map_err(|m| err(offset, format!("device of {table}: {m}")))?;
        devices.push((table, binding, line_of(offset)));
    }
    Ok(ParsedFile {
        definitions: Definitions {
            model: raw.model.map(|m| m.name),
            objects,
        },
        binds,
        scripts,
        devices,
    })
}

/// Reads the long form of a binding: `{ to, default, map, transform, ref, under, or,
/// or_transform, notify }`.
pub(super) fn long_binding(l: LongBinding) -> Result<Binding, String> {
    let mut b = parse_binding(&l.to, l.default)?;
    match l.notify.as_deref() {
        None => {}
        Some("active") => b.active_by_default = true,
        Some(n) => return Err(format!("notify {n:?}: only \"active\" is known")),
    }
    if !l.map.is_empty() {
        b.more_mut().map = l.map.into_iter().collect();
    }
    let transform = |t: String| {
        Transform::from_name(&t).ok_or_else(|| {
            let known: Vec<&str> = Transform::ALL.iter().map(|t| t.name()).collect();
            format!("unknown transform {t:?} (known: {})", known.join(", "))
        })
    };
    if let Some(t) = l.transform {
        b.transform = Some(transform(t)?);
    }
    match (l.or, l.or_transform) {
        (Some(or), t) => {
            let mut alt = parse_binding(&or, None)?;
            alt.transform = t.map(transform).transpose()?;
            b.more_mut().or = Some(alt);
        }
        (None, Some(_)) => return Err("or_transform without or".into()),
        (None, None) => {}
    }
    if let Some(r) = l.reference {
        if !r.ends_with('.') || r.contains("{i}") {
            return Err(format!(
                "ref {r:?} must name a table with a final `.` (`Device.WiFi.Radio.`)"
            ));
        }
        b.more_mut().reference = Some(format!("{r}{{i}}."));
    }
    if let Some(u) = l.under {
        if u.is_empty() || u.contains(['{', '}']) {
            return Err(format!("under {u:?} must be an instance key"));
        }
        b.more_mut().under = Some(u);
    }
    Ok(b)
}

/// Reads `backend:key`.
pub(super) fn parse_binding(to: &str, default: Option<String>) -> Result<Binding, String> {
    let (backend, key) = to
        .split_once(':')
        .ok_or_else(|| format!("{to:?} is not `backend:key`"))?;
    let kind = BackendKind::from_name(backend).ok_or_else(|| {
        let known: Vec<&str> = BackendKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown backend {backend:?} (known: {})", known.join(", "))
    })?;
    // Nested references (`{uci:network.{i}.device}`) are checked with their own backend;
    // the outer key is checked with placeholders in their place.
    let mut outer = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(start) = rest.find('{') {
        outer.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix("i}") {
            outer.push_str("i0");
            rest = tail;
            continue;
        }
        let inner_end = nested_end(after).ok_or_else(|| format!("unclosed `{{` in {key:?}"))?;
        let inner = &after[..inner_end];
        let (ib, ik) = inner
            .split_once(':')
            .ok_or_else(|| format!("`{{{inner}}}` in {key:?} is not `{{backend:key}}`"))?;
        let ikind = BackendKind::from_name(ib)
            .ok_or_else(|| format!("unknown backend {ib:?} in {key:?}"))?;
        if ik.contains('{') && ik.replace("{i}", "").contains('{') {
            return Err(format!("{key:?}: references nest one level only"));
        }
        ikind.check_key(&ik.replace("{i}", "i0"))?;
        outer.push_str("x0");
        rest = &after[inner_end + 1..];
    }
    outer.push_str(rest);
    if kind != BackendKind::Const {
        kind.check_key(&outer)?;
    }
    Ok(Binding {
        backend: kind,
        key: key.to_string(),
        default,
        transform: None,
        more: None,
        active_by_default: false,
        holes: u8::try_from(crate::datamodel::scan::count_holes(key)).unwrap_or(u8::MAX),
    })
}

/// The offset of the `}` closing a nested reference that starts right after a `{` (the
/// reference may itself hold `{i}`).
pub fn nested_end(after: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in after.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}
