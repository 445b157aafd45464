//! The data model definitions and bindings, loaded from the TOML files under `datamodel/` (the
//! format is in `datamodel/README.md`).
//!
//! Definitions (objects, parameters, TR-106 types, access, `forcedInform`, `activeNotify`) are
//! generated from the BBF XML by `cwmpd-dmgen`; bindings (which backend holds each parameter,
//! under which key) are ours. Both are embedded in the binary, and a vendor directory may add
//! files of either kind. Only bound parameters are exposed: [`Schema`] is the pruned tree the
//! engine serves, in definition order.

mod build;
mod compiled;
mod defs;
mod parse;

pub use defs::{
    Access, ActiveNotify, Binding, BindingMore, Definitions, LoadError, Model, Object, Param,
    ParamDef, ParamNotes, PlatformKind, Schema, Source, Table, UniqueKey,
};
pub use parse::nested_end;

use std::path::Path;

use build::Builder;
use defs::{TR098_CWMPD_UCI, TR098_OPENWRT, TR181_CWMPD_UCI, TR181_LINUX, TR181_OPENWRT};
use parse::{parse_compiled, parse_file, ParsedFile};

impl Schema {
    /// Loads the embedded definitions of `model` plus every extra file in `extra_dir` (vendor
    /// extensions, `*.toml` in name order), when given. Files of the other root model are
    /// skipped, so one directory can serve both.
    pub fn load(model: Model, extra_dir: Option<&Path>) -> Result<Schema, LoadError> {
        Schema::load_for(model, PlatformKind::Generic, extra_dir)
    }

    /// Like [`Schema::load`], with the embedded bindings of the platform
    /// (`datamodel/bindings/openwrt/`, `datamodel/bindings/linux/`). A missing `extra_dir`
    /// counts as empty.
    pub fn load_for(
        model: Model,
        platform: PlatformKind,
        extra_dir: Option<&Path>,
    ) -> Result<Schema, LoadError> {
        Schema::load_with(model, platform, false, extra_dir)
    }

    /// [`Schema::load_for`], and with `cwmpd_uci` ManagementServer bound to the agent's own uci
    /// package (the config came from `/etc/config/cwmpd`).
    pub fn load_with(
        model: Model,
        platform: PlatformKind,
        cwmpd_uci: bool,
        extra_dir: Option<&Path>,
    ) -> Result<Schema, LoadError> {
        let embedded = embedded_files(model, platform, cwmpd_uci);
        let mut files: Vec<(String, String, bool)> = Vec::new();
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
        Schema::build(model, &embedded, &files)
    }

    /// Builds a schema from `(file name, text, is_extension)` triples: the definitions and
    /// bindings of every file, later bindings overriding earlier ones.
    pub fn from_files(model: Model, files: &[(String, String, bool)]) -> Result<Schema, LoadError> {
        Schema::build(model, &[], files)
    }

    /// The schema of the `embedded` files (compiled into the binary: the definitions first,
    /// then bindings), then `files` (their text).
    fn build(
        model: Model,
        embedded: &[&str],
        files: &[(String, String, bool)],
    ) -> Result<Schema, LoadError> {
        Schema::build_with(model, embedded, files, true)
    }

    /// [`Schema::build`]; with `elide`, the parameters of the definitions' objects that no file
    /// binds at or below are not read into definitions: they could not be exposed (only what
    /// is bound is, and the objects on the way to it), and reading them is most of the
    /// transient memory of a load (the TR-181 definitions hold 1,046 parameters; 275 are
    /// exposed on the generic platform), which musl's allocator keeps as RSS after it is freed.
    /// An object a vendor file defines keeps its parameters: one defined again is an error.
    fn build_with(
        model: Model,
        embedded: &[&str],
        files: &[(String, String, bool)],
        elide: bool,
    ) -> Result<Schema, LoadError> {
        let not_compiled = |name: &str| LoadError {
            file: name.to_string(),
            line: None,
            message: "not compiled into this binary".into(),
        };
        // Read before the definitions, for what they bind; an error is reported in file order,
        // when the file's turn comes.
        let texts: Vec<Result<ParsedFile, LoadError>> = files
            .iter()
            .map(|(name, text, _)| parse_file(name, text))
            .collect();
        let mut b = Builder::default();
        if let Some((defs, bindings)) = embedded.split_first() {
            let blob = compiled::Blob::embedded()?;
            let bindings = bindings
                .iter()
                .map(|name| {
                    parse_compiled(&blob, name, &|_| true)?.ok_or_else(|| not_compiled(name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let vendor = texts.iter().filter_map(|t| t.as_ref().ok());
            // Every object any file binds (a parameter, a table's instances, a device), sorted:
            // the paths under an object follow it in order, so whether one is bound is one
            // binary search, not a scan of every binding for each object.
            let mut bound: Vec<&str> = bindings
                .iter()
                .chain(vendor.clone())
                .flat_map(|p| {
                    p.binds
                        .iter()
                        .map(|e| e.object.as_str())
                        .chain(p.devices.iter().map(|(t, _, _)| t.as_str()))
                })
                .collect();
            bound.sort_unstable();
            let defined: Vec<&str> = vendor
                .flat_map(|p| p.definitions.objects.iter().map(|o| o.path.as_str()))
                .collect();
            let keep = |path: &str| {
                !elide
                    || path == model.root()
                    || bound
                        .get(bound.partition_point(|b| *b < path))
                        .is_some_and(|b| b.starts_with(path))
                    || defined.contains(&path)
            };
            let parsed = parse_compiled(&blob, defs, &keep)?.ok_or_else(|| not_compiled(defs))?;
            b.add(model, defs, parsed, false)?;
            for (name, parsed) in embedded[1..].iter().zip(bindings) {
                b.add(model, name, parsed, false)?;
            }
        }
        for ((name, _, extension), parsed) in files.iter().zip(texts) {
            b.add(model, name, parsed?, *extension)?;
        }
        b.finish(model)
    }
}

/// The embedded files a load reads, in order: the model's definitions and bindings, the
/// platform's bindings, ManagementServer bound to the agent's own uci package.
fn embedded_files(model: Model, platform: PlatformKind, cwmpd_uci: bool) -> Vec<&'static str> {
    // TR-098 models a gateway: a Linux host that is not OpenWrt serves it with the agent's own
    // parameters only.
    let platform: &[&str] = match (platform, model) {
        (PlatformKind::Generic, _) | (PlatformKind::Linux, Model::Tr098) => &[],
        (PlatformKind::Linux, Model::Tr181) => TR181_LINUX,
        (PlatformKind::OpenWrt, Model::Tr181) => TR181_OPENWRT,
        (PlatformKind::OpenWrt, Model::Tr098) => TR098_OPENWRT,
    };
    let own: &[&str] = match (cwmpd_uci, model) {
        (false, _) => &[],
        (true, Model::Tr181) => TR181_CWMPD_UCI,
        (true, Model::Tr098) => TR098_CWMPD_UCI,
    };
    model
        .embedded()
        .iter()
        .chain(platform)
        .chain(own)
        .copied()
        .collect()
}

/// Parses the definitions of one file (its bindings are ignored), e.g. to compare a generated
/// file with the BBF XML.
pub fn parse_definitions(file: &str, text: &str) -> Result<Definitions, LoadError> {
    parse_file(file, text).map(|p| p.definitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded combination loads the same schema whether the parameters of objects
    /// nothing binds are read or not.
    #[test]
    fn eliding_unbound_objects_changes_nothing() {
        for model in [Model::Tr181, Model::Tr098] {
            for platform in [
                PlatformKind::Generic,
                PlatformKind::Linux,
                PlatformKind::OpenWrt,
            ] {
                for cwmpd_uci in [false, true] {
                    let embedded = embedded_files(model, platform, cwmpd_uci);
                    // A table no embedded file binds.
                    let vendor = [(
                        "datamodel.d/v.toml".to_string(),
                        format!(
                            "[bind.\"{0}ManagementServer.ManageableDevice.{{i}}.\"]\n\
                             \"{{i}}\" = \"agent:md\"\nManufacturerOUI = \"agent:md.{{i}}.oui\"\n",
                            model.root()
                        ),
                        true,
                    )];
                    for files in [&[][..], &vendor[..]] {
                        let a = Schema::build_with(model, &embedded, files, true).unwrap();
                        let b = Schema::build_with(model, &embedded, files, false).unwrap();
                        let what = format!("{model:?} {platform:?} {cwmpd_uci} {}", files.len());
                        assert_eq!(a.objects, b.objects, "{what}");
                        assert_eq!(a.scripts, b.scripts, "{what}");
                        assert_eq!(a.devices, b.devices, "{what}");
                        assert_eq!(a.model_name, b.model_name, "{what}");
                        assert!(a.objects.len() > 10, "{what}");
                        if !files.is_empty() {
                            let md =
                                format!("{}ManagementServer.ManageableDevice.{{i}}.", model.root());
                            let oui = a.object(&md).and_then(|o| o.params.first());
                            assert_eq!(
                                oui.map(|p| p.def.name.as_str()),
                                Some("ManufacturerOUI"),
                                "{what}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A vendor file that defines a parameter the embedded definitions have, in an object
    /// nothing binds, is still refused.
    #[test]
    fn a_vendor_definition_of_an_unbound_parameter_is_still_refused() {
        let files = [(
            "datamodel.d/v.toml".to_string(),
            "[[object]]\nname = \"Device.DeviceInfo.VendorConfigFile.{i}.\"\nmax_entries = \"unbounded\"\n\
             params = [{ name = \"Version\", type = \"string\" }]\n"
                .to_string(),
            true,
        )];
        let e = Schema::build(Model::Tr181, Model::Tr181.embedded(), &files).unwrap_err();
        assert!(e.message.contains("already defined"), "{e}");
    }

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
  { name = "D", type = "string", active_notify = "canDeny" },
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
Y = { to = "agent:a.y", notify = "active" }
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
        assert_eq!(names, ["X", "Y", "TNumberOfEntries"]);
        assert_eq!(a.params[2].source, Source::Count(2));
        assert_eq!(s.objects()[0].children, [1]);
        assert_eq!(a.children, [2]);
        let x = s.param("Device.A.X").unwrap();
        assert_eq!(x.def.ty.ranges[0].min, Some(1));
        assert!(matches!(&x.source, Source::Bound(b) if b.default.as_deref() == Some("5")));
        // `notify = "active"`: active until the ACS says otherwise.
        assert_eq!(x.def.active_notify, ActiveNotify::Normal);
        let y = s.param("Device.A.Y").unwrap();
        assert_eq!(y.def.active_notify, ActiveNotify::ForceDefaultEnabled);
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
            ("[bind.\"Device.A.\"]\nY = { to = \"agent:a.y\", notify = \"loud\" }\n", 2, "only \"active\""),
            ("[bind.\"Device.A.\"]\nD = { to = \"agent:a.d\", notify = \"active\" }\n", 2, "leaves normal"),
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
