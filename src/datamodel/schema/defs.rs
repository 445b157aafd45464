//! The definitions as the engine sees them: the root [`Model`] and its embedded files, the
//! definition and binding types of the files, and the pruned tree ([`Schema`]) with its
//! lookups. Plain data, no file access.

use std::collections::BTreeMap;

use crate::datamodel::backend::registry::BackendKind;
use crate::datamodel::backend::ScriptDef;
use crate::datamodel::transform::Transform;
use crate::datamodel::types::TypeSpec;

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

    /// The files embedded in the binary for this model (compiled at build time:
    /// `datamodel/compile.rs`), by their paths in the source tree: definitions first, then
    /// bindings.
    pub fn embedded(self) -> &'static [&'static str] {
        match self {
            Model::Tr181 => TR181_FILES,
            Model::Tr098 => TR098_FILES,
        }
    }

    pub(super) fn other(self) -> Model {
        match self {
            Model::Tr181 => Model::Tr098,
            Model::Tr098 => Model::Tr181,
        }
    }
}

/// Which platform bindings are loaded over the agent's own (`[datamodel] platform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// None: only the parameters the agent owns and computes.
    Generic,
    /// Any Linux system: interfaces, addresses, routes, neighbours and counters from the kernel.
    Linux,
    /// An OpenWrt router: uci, netifd, hostapd and the DHCP servers over ubus, the kernel.
    OpenWrt,
}

impl PlatformKind {
    /// The name `[datamodel] platform` gives it.
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::Generic => "generic",
            PlatformKind::Linux => "linux",
            PlatformKind::OpenWrt => "openwrt",
        }
    }
}

pub(super) const TR181_FILES: &[&str] = &[
    "datamodel/tr181.toml",
    "datamodel/bindings/tr181-agent.toml",
    "datamodel/bindings/tr181-builtin.toml",
    "datamodel/bindings/tr181-diag.toml",
];

pub(super) const TR098_FILES: &[&str] = &[
    "datamodel/tr098.toml",
    "datamodel/bindings/tr098-agent.toml",
    "datamodel/bindings/tr098-builtin.toml",
    "datamodel/bindings/tr098-diag.toml",
];

/// OpenWrt: the kernel's parts every Linux has, then uci, ubus and OpenWrt's files.
pub(super) const TR181_OPENWRT: &[&str] = &[
    "datamodel/bindings/linux/tr181.toml",
    "datamodel/bindings/openwrt/tr181.toml",
];

/// A Linux host that is not OpenWrt: the kernel's parts, then its interfaces, addresses and
/// neighbours as the kernel holds them (rtnetlink, /sys, /proc).
pub(super) const TR181_LINUX: &[&str] = &[
    "datamodel/bindings/linux/tr181.toml",
    "datamodel/bindings/linux/tr181-host.toml",
];

pub(super) const TR098_OPENWRT: &[&str] = &["datamodel/bindings/openwrt/tr098.toml"];

/// ManagementServer bound to `/etc/config/cwmpd`, when the agent's config is that file.
pub(super) const TR181_CWMPD_UCI: &[&str] = &["datamodel/bindings/openwrt/tr181-cwmpd.toml"];

pub(super) const TR098_CWMPD_UCI: &[&str] = &["datamodel/bindings/openwrt/tr098-cwmpd.toml"];

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    #[default]
    ReadOnly,
    ReadWrite,
    /// Writable once, then read-only. The engine treats it as writable.
    WriteOnceReadOnly,
}

crate::from_toml_enum!(Access {
    "readOnly" => ReadOnly,
    "readWrite" => ReadWrite,
    "writeOnceReadOnly" => WriteOnceReadOnly,
});

/// Whether active notification may be refused or is forced (DM Schema `activeNotify`,
/// TR-069 §A.3.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActiveNotify {
    #[default]
    Normal,
    /// The CPE may refuse active notification (9009).
    CanDeny,
    /// Always active; cannot be turned off.
    ForceEnabled,
    /// Active by default; the ACS may change it.
    ForceDefaultEnabled,
}

crate::from_toml_enum!(ActiveNotify {
    "normal" => Normal,
    "canDeny" => CanDeny,
    "forceEnabled" => ForceEnabled,
    "forceDefaultEnabled" => ForceDefaultEnabled,
});

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
    pub access: Access,
    pub forced_inform: bool,
    pub active_notify: ActiveNotify,
    /// Reads back as the null value of its type (passwords; TR-106 A.2.3.5).
    pub hidden: bool,
    pub default: Option<String>,
    pub line: usize,
    /// What few definitions have (read-only enumeration values, patterns, a status), boxed
    /// so that a definition stays small.
    pub notes: Option<Box<ParamNotes>>,
}

/// The parts of a [`ParamDef`] that few definitions have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamNotes {
    pub enum_read_only: Vec<String>,
    /// Patterns of the model, kept as text (not enforced).
    pub patterns: Vec<String>,
    /// `deprecated` or `obsoleted`; `None` when current.
    pub status: Option<String>,
}

impl ParamDef {
    /// The enumeration values the model marks `access="readOnly"`: read, never set by an ACS.
    pub fn enum_read_only(&self) -> &[String] {
        self.notes.as_ref().map_or(&[], |n| &n.enum_read_only)
    }

    /// The model's patterns, as text (not enforced).
    pub fn patterns(&self) -> &[String] {
        self.notes.as_ref().map_or(&[], |n| &n.patterns)
    }

    /// `deprecated` or `obsoleted`; `None` when current.
    pub fn status(&self) -> Option<&str> {
        self.notes.as_ref()?.status.as_deref()
    }
}

/// One unique key of a table (DM Schema `uniqueKey`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UniqueKey {
    pub functional: bool,
    pub params: Vec<String>,
}

crate::from_toml_struct!(UniqueKey { functional, params } required "functional", "params");

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
    /// `transform`: a pure conversion applied before `map` on read, after it on write.
    pub transform: Option<Transform>,
    /// What few bindings have (`map`, `ref`, `under`, `or`), boxed so that a binding stays
    /// small (every exposed parameter holds one for the daemon's life).
    pub more: Option<Box<BindingMore>>,
    /// `notify = "active"`: active notification until the ACS sets another (the DM schema's
    /// `forceDefaultEnabled`), for a parameter the model leaves `normal` that the CPE must
    /// report without being asked (UDPConnectionRequestAddress, TR-069 Annex G).
    pub active_by_default: bool,
    /// How many `{i}` `key` holds, set with it (`u8::MAX`: that many or more, counted at
    /// use). A key is expanded for every parameter of a read: counting them each time was
    /// most of that.
    pub holes: u8,
}

/// The parts of a [`Binding`] that few bindings have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindingMore {
    /// `map`: backend value → model value, tried in order (inverse on write).
    pub map: Vec<(String, String)>,
    /// `ref`: the backend value is the instance key of an instance of this table (generic
    /// path, `Device.WiFi.Radio.{i}.`), shown as that instance's path (TR-106 references).
    pub reference: Option<String>,
    /// `under` (a nested table's `{i}` only): the table has instances only in the enclosing
    /// instance whose key this is; elsewhere it is empty. For instances that would otherwise
    /// show under several parents (port forwards of a firewall zone, listed by each WAN
    /// connection): each appears under exactly one.
    pub under: Option<String>,
    /// `or`: where the value is read when the binding's own backend has none, or one the
    /// parameter's type does not allow (a live value where the configuration has none: the
    /// address a DHCP client obtained, when uci holds only a static one; the channel a radio
    /// set to `auto` is on). Its own `transform`; the binding's `map` and `ref` apply to both.
    /// Writes go to the binding's own backend only.
    pub or: Option<Binding>,
}

impl Binding {
    /// `map` (empty when none).
    pub fn map(&self) -> &[(String, String)] {
        self.more.as_ref().map_or(&[], |m| &m.map)
    }

    /// `ref`: the generic path of the table whose instance key the value is.
    pub fn reference(&self) -> Option<&str> {
        self.more.as_ref()?.reference.as_deref()
    }

    /// `under`: the key of the one enclosing instance that has this table's instances.
    pub fn under(&self) -> Option<&str> {
        self.more.as_ref()?.under.as_deref()
    }

    /// `or`: where the value is read when this binding has none.
    pub fn or(&self) -> Option<&Binding> {
        self.more.as_ref()?.or.as_ref()
    }

    /// The rare parts, for setting one.
    pub fn more_mut(&mut self) -> &mut BindingMore {
        self.more.get_or_insert_with(Box::default)
    }

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
    pub(super) model: Model,
    pub(super) model_name: String,
    pub(super) objects: Vec<Object>,
    pub(super) scripts: BTreeMap<String, ScriptDef>,
    /// The network device of the instances of a table, by the table's object index
    /// (`[device]`: what a diagnostic's `Interface` is bound to).
    pub(super) devices: BTreeMap<usize, Binding>,
}

impl Schema {
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

    /// How the network device of an instance of table `obj` is read (`[device]`).
    pub fn device_binding(&self, obj: usize) -> Option<&Binding> {
        self.devices.get(&obj)
    }

    /// The exposed parameter with this generic path (`Device.ManagementServer.URL`).
    pub fn param(&self, path: &str) -> Option<&Param> {
        let dot = path.rfind('.')?;
        let (obj, name) = path.split_at(dot + 1);
        self.object(obj)?.params.iter().find(|p| p.def.name == name)
    }
}

pub(super) fn load_err(file: &str, line: usize, message: String) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: Some(line),
        message,
    }
}
