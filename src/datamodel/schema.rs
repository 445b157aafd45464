//! The data model definitions and bindings, loaded from the TOML files under `datamodel/` (the
//! format is in `datamodel/README.md`).
//!
//! Definitions (objects, parameters, TR-106 types, access, `forcedInform`, `activeNotify`) are
//! generated from the BBF XML by `cwmpd-dmgen`; bindings (which backend holds each parameter,
//! under which key) are ours. Both are embedded in the binary, and a vendor directory may add
//! files of either kind. Only bound parameters are exposed: [`Schema`] is the pruned tree the
//! engine serves, in definition order.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::backend::registry::BackendKind;
use super::backend::ScriptDef;
use super::transform::Transform;
use super::types::{BaseType, Range, TypeSpec};

/// Which standard root the device presents (`[device] data_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// TR-181 `Device:2`.
    Tr181,
    /// TR-098 `InternetGatewayDevice:1`.
    Tr098,
}

impl Model {
    pub fn root(self) -> &'static str {
        match self {
            Model::Tr181 => "Device.",
            Model::Tr098 => "InternetGatewayDevice.",
        }
    }

    /// The files embedded in the binary for this model: definitions first, then bindings, as
    /// `(name, text)`.
    pub fn embedded(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Model::Tr181 => TR181_FILES,
            Model::Tr098 => TR098_FILES,
        }
    }

    fn other(self) -> Model {
        match self {
            Model::Tr181 => Model::Tr098,
            Model::Tr098 => Model::Tr181,
        }
    }
}

macro_rules! embed {
    ($name:literal) => {
        (
            concat!("datamodel/", $name),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/datamodel/", $name)),
        )
    };
}

const TR181_FILES: &[(&str, &str)] = &[
    embed!("tr181.toml"),
    embed!("bindings/tr181-agent.toml"),
    embed!("bindings/tr181-builtin.toml"),
];

const TR098_FILES: &[(&str, &str)] = &[
    embed!("tr098.toml"),
    embed!("bindings/tr098-agent.toml"),
    embed!("bindings/tr098-builtin.toml"),
];

const TR181_OPENWRT: &[(&str, &str)] = &[embed!("bindings/openwrt/tr181.toml")];

const TR098_OPENWRT: &[(&str, &str)] = &[embed!("bindings/openwrt/tr098.toml")];

/// ManagementServer bound to `/etc/config/cwmpd`, when the agent's config is that file.
const TR181_CWMPD_UCI: &[(&str, &str)] = &[embed!("bindings/openwrt/tr181-cwmpd.toml")];

const TR098_CWMPD_UCI: &[(&str, &str)] = &[embed!("bindings/openwrt/tr098-cwmpd.toml")];

/// An error loading a file (a data model file, the config file): names the file and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Parameter or object access (DM Schema `ParameterAccess`; absent means `readOnly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Access {
    #[default]
    #[serde(rename = "readOnly")]
    ReadOnly,
    #[serde(rename = "readWrite")]
    ReadWrite,
    /// Writable once, then read-only. The engine treats it as writable.
    #[serde(rename = "writeOnceReadOnly")]
    WriteOnceReadOnly,
}

/// Whether active notification may be refused or is forced (DM Schema `activeNotify`,
/// TR-069 §A.3.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ActiveNotify {
    #[default]
    #[serde(rename = "normal")]
    Normal,
    /// The CPE may refuse active notification (9009).
    #[serde(rename = "canDeny")]
    CanDeny,
    /// Always active; cannot be turned off.
    #[serde(rename = "forceEnabled")]
    ForceEnabled,
    /// Active by default; the ACS may change it.
    #[serde(rename = "forceDefaultEnabled")]
    ForceDefaultEnabled,
}

impl ActiveNotify {
    /// The notification attribute a parameter has until the ACS sets one.
    pub fn default_notification(self) -> u8 {
        match self {
            ActiveNotify::ForceEnabled | ActiveNotify::ForceDefaultEnabled => 2,
            _ => 0,
        }
    }
}

/// One parameter definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDef {
    pub name: String,
    /// The type and its facets. `ty.enumeration` holds the values an ACS may set (those marked
    /// `access="readOnly"` in the model are in [`ParamDef::enum_read_only`]).
    pub ty: TypeSpec,
    pub enum_read_only: Vec<String>,
    /// Patterns of the model, kept as text (not enforced).
    pub patterns: Vec<String>,
    pub access: Access,
    pub forced_inform: bool,
    pub active_notify: ActiveNotify,
    /// Reads back as the null value of its type (passwords; TR-106 A.2.3.5).
    pub hidden: bool,
    pub default: Option<String>,
    /// `deprecated` or `obsoleted`; `None` when current.
    pub status: Option<String>,
    pub line: usize,
}

/// One unique key of a table (DM Schema `uniqueKey`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueKey {
    pub functional: bool,
    pub params: Vec<String>,
}

/// One object definition (`X.` or a table `X.{i}.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDef {
    /// The generic path (`Device.ManagementServer.InformParameter.{i}.`).
    pub path: String,
    pub access: Access,
    pub min_entries: u32,
    /// `None` for unbounded.
    pub max_entries: Option<u32>,
    pub num_entries: Option<String>,
    pub enable: Option<String>,
    pub unique_keys: Vec<UniqueKey>,
    pub status: Option<String>,
    pub params: Vec<ParamDef>,
    pub file: String,
    pub line: usize,
}

impl ObjectDef {
    /// A multi-instance object: `maxEntries` is not 1 (DM Schema).
    pub fn is_table(&self) -> bool {
        self.max_entries != Some(1)
    }
}

/// The definitions of one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Definitions {
    /// The model name (`Device:2.19`) of a generated file.
    pub model: Option<String>,
    pub objects: Vec<ObjectDef>,
}

/// Where a bound parameter's value lives: a backend and its key (with `{i}` placeholders for
/// instance keys), and the value to use when the backend has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub backend: BackendKind,
    pub key: String,
    pub default: Option<String>,
    /// `map`: backend value → model value, tried in order (inverse on write).
    pub map: Vec<(String, String)>,
    /// `transform`: a pure conversion applied before `map` on read, after it on write.
    pub transform: Option<Transform>,
    /// `ref`: the backend value is the instance key of an instance of this table (generic
    /// path, `Device.WiFi.Radio.{i}.`), shown as that instance's path (TR-106 references).
    pub reference: Option<String>,
    /// `under` (a nested table's `{i}` only): the table has instances only in the enclosing
    /// instance whose key this is; elsewhere it is empty. For instances that would otherwise
    /// show under several parents (port forwards of a firewall zone, listed by each WAN
    /// connection): each appears under exactly one.
    pub under: Option<String>,
}

impl Binding {
    /// Whether a model value can be turned back into a backend value.
    pub fn invertible(&self) -> bool {
        self.transform.is_none_or(Transform::writable)
    }
}

/// An exposed parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub def: ParamDef,
    pub source: Source,
}

/// Where an exposed parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Bound(Binding),
    /// The number of instances of a table (its `numEntriesParameter`), computed by the engine.
    Count(usize),
}

/// An exposed table's instances binding and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub min_entries: u32,
    pub max_entries: Option<u32>,
    pub binding: Binding,
}

/// An exposed object of the pruned tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The generic path (`…InformParameter.{i}.` for a table).
    pub path: String,
    /// The name of the last node (`InformParameter`; `Device` for the root).
    pub name: String,
    /// `access="readWrite"`: for a table, AddObject/DeleteObject are allowed by the model.
    pub writable: bool,
    pub table: Option<Table>,
    pub params: Vec<Param>,
    /// Exposed child objects (single objects and tables), in definition order.
    pub children: Vec<usize>,
    pub parent: Option<usize>,
}

/// The loaded definitions and bindings of one root model: only exposed objects and parameters.
#[derive(Debug, Clone)]
pub struct Schema {
    model: Model,
    model_name: String,
    objects: Vec<Object>,
    scripts: BTreeMap<String, ScriptDef>,
}

impl Schema {
    /// Loads the embedded definitions of `model` plus every extra file in `extra_dir` (vendor
    /// extensions, `*.toml` in name order), when given. Files of the other root model are
    /// skipped, so one directory can serve both.
    pub fn load(model: Model, extra_dir: Option<&Path>) -> Result<Schema, LoadError> {
        Schema::load_for(model, false, extra_dir)
    }

    /// Like [`Schema::load`], with the embedded OpenWrt bindings (`datamodel/bindings/openwrt/`)
    /// when `openwrt`. A missing `extra_dir` counts as empty.
    pub fn load_for(
        model: Model,
        openwrt: bool,
        extra_dir: Option<&Path>,
    ) -> Result<Schema, LoadError> {
        Schema::load_with(model, openwrt, false, extra_dir)
    }

    /// [`Schema::load_for`], and with `cwmpd_uci` ManagementServer bound to the agent's own uci
    /// package (the config came from `/etc/config/cwmpd`).
    pub fn load_with(
        model: Model,
        openwrt: bool,
        cwmpd_uci: bool,
        extra_dir: Option<&Path>,
    ) -> Result<Schema, LoadError> {
        let platform: &[(&str, &str)] = match (openwrt, model) {
            (false, _) => &[],
            (true, Model::Tr181) => TR181_OPENWRT,
            (true, Model::Tr098) => TR098_OPENWRT,
        };
        let own: &[(&str, &str)] = match (cwmpd_uci, model) {
            (false, _) => &[],
            (true, Model::Tr181) => TR181_CWMPD_UCI,
            (true, Model::Tr098) => TR098_CWMPD_UCI,
        };
        let mut files: Vec<(String, String, bool)> = model
            .embedded()
            .iter()
            .chain(platform)
            .chain(own)
            .map(|(n, t)| (n.to_string(), t.to_string(), false))
            .collect();
        if let Some(dir) = extra_dir.filter(|d| d.exists()) {
            let err = |e: std::io::Error| LoadError {
                file: dir.display().to_string(),
                line: None,
                message: e.to_string(),
            };
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .map_err(err)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).map_err(|e| LoadError {
                    file: p.display().to_string(),
                    line: None,
                    message: e.to_string(),
                })?;
                files.push((p.display().to_string(), text, true));
            }
        }
        Schema::from_files(model, &files)
    }

    /// Builds a schema from `(file name, text, is_extension)` triples: the definitions and
    /// bindings of every file, later bindings overriding earlier ones.
    pub fn from_files(model: Model, files: &[(String, String, bool)]) -> Result<Schema, LoadError> {
        let mut b = Builder::default();
        for (name, text, extension) in files {
            let parsed = parse_file(name, text)?;
            b.add(model, name, parsed, *extension)?;
        }
        b.finish(model)
    }

    pub fn root(&self) -> &str {
        self.model.root()
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// The model name of the generated definitions (`Device:2.19`).
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Every exposed object; index 0 is the root.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The exposed object with this generic path.
    pub fn object(&self, path: &str) -> Option<&Object> {
        self.objects.get(self.object_index(path)?)
    }

    /// The index in [`Schema::objects`] of the exposed object with this generic path.
    pub fn object_index(&self, path: &str) -> Option<usize> {
        self.objects.iter().position(|o| o.path == path)
    }

    /// The vendor scripts the files declared (`[script.NAME]`).
    pub fn scripts(&self) -> &BTreeMap<String, ScriptDef> {
        &self.scripts
    }

    /// The exposed parameter with this generic path (`Device.ManagementServer.URL`).
    pub fn param(&self, path: &str) -> Option<&Param> {
        let dot = path.rfind('.')?;
        let (obj, name) = path.split_at(dot + 1);
        self.object(obj)?.params.iter().find(|p| p.def.name == name)
    }
}

/// Parses the definitions of one file (its bindings are ignored), e.g. to compare a generated
/// file with the BBF XML.
pub fn parse_definitions(file: &str, text: &str) -> Result<Definitions, LoadError> {
    parse_file(file, text).map(|p| p.definitions)
}

// ---- the file format -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    model: Option<RawModel>,
    #[serde(default)]
    object: Vec<RawObject>,
    #[serde(default)]
    bind: BTreeMap<String, BTreeMap<String, Spanned<RawBinding>>>,
    #[serde(default)]
    script: BTreeMap<String, Spanned<RawScript>>,
}

/// `[script.NAME]`: a vendor script of the `script` backend.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    path: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MaxEntries {
    Count(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObject {
    name: Spanned<String>,
    #[serde(default)]
    access: Access,
    #[serde(default)]
    min_entries: Option<u32>,
    #[serde(default)]
    max_entries: Option<MaxEntries>,
    #[serde(default)]
    num_entries: Option<String>,
    #[serde(default)]
    enable: Option<String>,
    #[serde(default)]
    unique_keys: Vec<UniqueKey>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    params: Vec<RawParam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: Spanned<String>,
    #[serde(rename = "type")]
    base: BaseType,
    #[serde(default)]
    list: bool,
    #[serde(default)]
    max_length: Option<u32>,
    #[serde(default)]
    min_length: Option<u32>,
    #[serde(default)]
    item_max_length: Option<u32>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default, rename = "enum")]
    enumeration: Vec<String>,
    #[serde(default)]
    enum_read_only: Vec<String>,
    #[serde(default)]
    pattern: Vec<String>,
    #[serde(default)]
    named: Option<String>,
    #[serde(default)]
    access: Access,
    #[serde(default)]
    forced_inform: bool,
    #[serde(default)]
    active_notify: ActiveNotify,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// A range facet (TOML integers are 64-bit).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    step: Option<i64>,
}

/// A binding: `"backend:key"`, or `{ to = "backend:key", default = "value" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawBinding {
    Short(String),
    Long(LongBinding),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongBinding {
    to: String,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    #[serde(default)]
    transform: Option<String>,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    under: Option<String>,
}

/// One binding entry: `[bind."<object>"] <name> = …` (`<name>` is a parameter, or `{i}` for the
/// instances of a table).
struct BindEntry {
    object: String,
    name: String,
    binding: Binding,
    file: String,
    line: usize,
}

struct ParsedFile {
    definitions: Definitions,
    binds: Vec<BindEntry>,
    /// Declared scripts with the line of their declaration; paths as written.
    scripts: Vec<(String, ScriptDef, usize)>,
}

/// Line numbers of byte offsets (1-based), with one pass over the text.
struct Lines(Vec<usize>);

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

fn parse_file(file: &str, text: &str) -> Result<ParsedFile, LoadError> {
    let lines = Lines::new(text);
    let line_of = |_: &str, offset: usize| lines.of(offset);
    let raw: RawFile = toml::from_str(text).map_err(|e| LoadError {
        file: file.to_string(),
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let err = |offset: usize, message: String| LoadError {
        file: file.to_string(),
        line: Some(line_of(text, offset)),
        message,
    };
    let mut objects = Vec::with_capacity(raw.object.len());
    for o in raw.object {
        let line = line_of(text, o.name.span().start);
        let path = o.name.into_inner();
        let max_entries = match o.max_entries {
            None => Some(1),
            Some(MaxEntries::Count(n)) => Some(n),
            Some(MaxEntries::Word(w)) if w == "unbounded" => None,
            Some(MaxEntries::Word(w)) => {
                return Err(load_err(
                    file,
                    line,
                    format!(
                        "object {path}: max_entries must be a number or \"unbounded\", not {w:?}"
                    ),
                ))
            }
        };
        let mut params = Vec::with_capacity(o.params.len());
        for p in o.params {
            let pline = line_of(text, p.name.span().start);
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
                enum_read_only: p.enum_read_only,
                patterns: p.pattern,
                access: p.access,
                forced_inform: p.forced_inform,
                active_notify: p.active_notify,
                hidden: p.hidden,
                default: p.default,
                status: p.status,
                line: pline,
            });
        }
        objects.push(ObjectDef {
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
        });
    }
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
                line: line_of(text, offset),
            });
        }
    }
    let mut scripts = Vec::new();
    for (name, raw) in raw.script {
        let line = line_of(text, raw.span().start);
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
    Ok(ParsedFile {
        definitions: Definitions {
            model: raw.model.map(|m| m.name),
            objects,
        },
        binds,
        scripts,
    })
}

/// Reads the long form of a binding: `{ to, default, map, transform, ref, under }`.
fn long_binding(l: LongBinding) -> Result<Binding, String> {
    let mut b = parse_binding(&l.to, l.default)?;
    b.map = l.map.into_iter().collect();
    if let Some(t) = l.transform {
        b.transform = Some(Transform::from_name(&t).ok_or_else(|| {
            let known: Vec<&str> = Transform::ALL.iter().map(|t| t.name()).collect();
            format!("unknown transform {t:?} (known: {})", known.join(", "))
        })?);
    }
    if let Some(r) = l.reference {
        if !r.ends_with('.') || r.contains("{i}") {
            return Err(format!(
                "ref {r:?} must name a table with a final `.` (`Device.WiFi.Radio.`)"
            ));
        }
        b.reference = Some(format!("{r}{{i}}."));
    }
    if let Some(u) = l.under {
        if u.is_empty() || u.contains(['{', '}']) {
            return Err(format!("under {u:?} must be an instance key"));
        }
        b.under = Some(u);
    }
    Ok(b)
}

/// Reads `backend:key`.
fn parse_binding(to: &str, default: Option<String>) -> Result<Binding, String> {
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
        map: Vec::new(),
        transform: None,
        reference: None,
        under: None,
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

// ---- building the exposed tree ---------------------------------------------------------------

#[derive(Default)]
struct Builder {
    model_name: Option<String>,
    objects: Vec<ObjectDef>,
    index: HashMap<String, usize>,
    binds: Vec<BindEntry>,
    scripts: BTreeMap<String, ScriptDef>,
}

fn load_err(file: &str, line: usize, message: String) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: Some(line),
        message,
    }
}

impl Builder {
    fn add(
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

    fn finish(self, model: Model) -> Result<Schema, LoadError> {
        let root = model.root();
        let Builder {
            model_name,
            objects: defs,
            index,
            binds,
            scripts,
        } = self;
        let model_name = model_name.ok_or_else(|| LoadError {
            file: model
                .embedded()
                .first()
                .map_or("datamodel", |f| f.0)
                .to_string(),
            line: None,
            message: "no [model] in the definitions".into(),
        })?;
        let root_idx = *index.get(root).ok_or_else(|| LoadError {
            file: model
                .embedded()
                .first()
                .map_or("datamodel", |f| f.0)
                .to_string(),
            line: None,
            message: format!("the root object {root} is not defined"),
        })?;

        // Parents: every object but the root has its containing object defined.
        let mut parent: Vec<Option<usize>> = vec![None; defs.len()];
        for (i, d) in defs.iter().enumerate() {
            if i == root_idx {
                continue;
            }
            let pp = super::generate::parent_path(&d.path).unwrap_or("");
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
                check_placeholders(&b.binding.key, table_depth(&defs, &parent, o) - 1)
                    .map_err(|m| load_err(&b.file, b.line, m))?;
                if b.binding.under.is_some() && table_depth(&defs, &parent, o) < 2 {
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
                if b.binding.under.is_some() {
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
                let Some(r) = &b.reference else { continue };
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
        Ok(Schema {
            model,
            model_name,
            objects,
            scripts,
        })
    }
}

/// How many tables contain object `o` (itself included).
fn table_depth(defs: &[ObjectDef], parent: &[Option<usize>], o: usize) -> usize {
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
fn check_placeholders(key: &str, depth: usize) -> Result<(), String> {
    let n = key.matches("{i}").count();
    if n > depth {
        return Err(format!(
            "key {key:?} has {n} `{{i}}` but only {depth} table level(s) contain it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = r#"
[model]
name = "Device:2.19"

[[object]]
name = "Device."

[[object]]
name = "Device.A."
params = [
  { name = "X", type = "unsignedInt", access = "readWrite", ranges = [{ min = 1 }] },
  { name = "Y", type = "string" },
  { name = "TNumberOfEntries", type = "unsignedInt" },
]

[[object]]
name = "Device.A.T.{i}."
access = "readWrite"
min_entries = 0
max_entries = "unbounded"
num_entries = "TNumberOfEntries"
params = [ { name = "V", type = "string", access = "readWrite" } ]

[[object]]
name = "Device.B."
params = [ { name = "Z", type = "string" } ]
"#;

    fn files(extra: &[(&str, &str)]) -> Vec<(String, String, bool)> {
        let mut v = vec![("defs.toml".to_string(), DEFS.to_string(), false)];
        v.extend(
            extra
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string(), true)),
        );
        v
    }

    #[test]
    fn prunes_to_bound_parameters() {
        let bind = r#"
[bind."Device.A."]
X = { to = "agent:a.x", default = "5" }
[bind."Device.A.T.{i}."]
"{i}" = "agent:a.t"
V = "agent:a.t.{i}.v"
"#;
        let s = Schema::from_files(Model::Tr181, &files(&[("b.toml", bind)])).unwrap();
        assert_eq!(s.model_name(), "Device:2.19");
        let paths: Vec<&str> = s.objects().iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["Device.", "Device.A.", "Device.A.T.{i}."]);
        let a = s.object("Device.A.").unwrap();
        let names: Vec<&str> = a.params.iter().map(|p| p.def.name.as_str()).collect();
        assert_eq!(names, ["X", "TNumberOfEntries"]);
        assert_eq!(a.params[1].source, Source::Count(2));
        assert_eq!(s.objects()[0].children, [1]);
        assert_eq!(a.children, [2]);
        let x = s.param("Device.A.X").unwrap();
        assert_eq!(x.def.ty.ranges[0].min, Some(1));
        assert!(matches!(&x.source, Source::Bound(b) if b.default.as_deref() == Some("5")));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("[bind.\"Device.A.\"]\nX = \"nope:a.x\"\n", 2, "unknown backend"),
            ("[bind.\"Device.A.\"]\n\nQ = \"agent:a.q\"\n", 3, "undefined parameter"),
            ("[bind.\"Device.A.T.{i}.\"]\nV = \"agent:a.t.{i}.v\"\n", 2, "no `{i}` binding"),
            ("[bind.\"Device.A.T.{i}.\"]\n\"{i}\" = \"agent:a.t\"\nV = \"agent:other.{i}.v\"\n", 3, "must start with"),
            ("[bind.\"Device.A.\"]\nX = \"agent:a.{i}.x\"\n", 2, "table level"),
            ("[bind.\"Device.A.\"]\nX = { to = \"agent:a.x\", default = \"0\" }\n", 2, "default"),
            ("[[object]]\nname = \"Device.C.\"\nparams = [\n  { name = \"Q\", type = \"strin\" },\n]\n", 4, "unknown variant"),
            ("[[object]]\nname = \"Device.Q.R.\"\n", 2, "parent object"),
            ("\n[[object]]\nname = \"Device.A.\"\nparams = [ { name = \"X\", type = \"int\" } ]\n", 4, "already defined"),
            ("[bind.\"Device.A.\"]\nY = \"builtin:nothing\"\n", 2, "builtin"),
            ("[bind.\"Device.A.\"]\nX = { to = \"agent:a.x\", under = \"wan\" }\n", 2, "`under` is for a table"),
            ("[bind.\"Device.A.T.{i}.\"]\n\"{i}\" = { to = \"agent:a.t\", under = \"wan\" }\n", 2, "inside another table"),
        ];
        for (text, line, what) in cases {
            let e = Schema::from_files(Model::Tr181, &files(&[("vendor.toml", text)])).unwrap_err();
            assert_eq!(e.file, "vendor.toml", "{text}: {e}");
            assert_eq!(e.line, Some(*line), "{text}: {e}");
            assert!(e.message.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn other_model_files_are_skipped() {
        let other = "[bind.\"InternetGatewayDevice.A.\"]\nX = \"agent:x\"\n";
        assert!(Schema::from_files(Model::Tr181, &files(&[("igd.toml", other)])).is_ok());
        let mixed = "[bind.\"InternetGatewayDevice.A.\"]\nX = \"agent:x\"\n[bind.\"Device.A.\"]\nX = \"agent:x\"\n";
        assert!(Schema::from_files(Model::Tr181, &files(&[("m.toml", mixed)])).is_err());
    }
}
