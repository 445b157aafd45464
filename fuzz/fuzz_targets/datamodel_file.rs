//! Fuzzes the data model file loader (datamodel/README.md: `[[object]]` definitions, `[bind.*]`
//! bindings, `[script.*]`) on arbitrary UTF-8, through the public entry points that take a
//! file's text: [`schema::parse_definitions`] and [`Schema::from_files`], the latter with the
//! text alone (as a base file) and as a vendor extension on top of a small base (what
//! `/etc/cwmpd/datamodel.d/*.toml` is). A schema that loads must answer lookups of each of its
//! objects and parameters. Nothing may panic.
//!
//! The real embedded base (datamodel/tr181.toml, 84 KB) is not loaded per run: it would cut the
//! execution rate a hundredfold; the small base below has the same shapes (a root, a plain
//! object, a table with a NumberOfEntries counter, bindings).
#![no_main]

use cwmpd::datamodel::schema::{self, Model, Schema};
use libfuzzer_sys::fuzz_target;

/// A minimal base in the format of the generated files.
const BASE: &str = r#"
[model]
name = "Device:2.19"
source = "fuzz"

[[object]]
name = "Device."
params = [
  { name = "RootDataModelVersion", type = "string", max_length = 32, forced_inform = true },
  { name = "XNumberOfEntries", type = "unsignedInt" },
]

[[object]]
name = "Device.DeviceInfo."
params = [
  { name = "UpTime", type = "unsignedInt", active_notify = "canDeny" },
  { name = "HostName", type = "string", max_length = 255, access = "readWrite" },
]

[[object]]
name = "Device.X.{i}."
access = "readWrite"
min_entries = 0
max_entries = "unbounded"
num_entries = "XNumberOfEntries"
unique_keys = [{ functional = false, params = ["Alias"] }]
params = [
  { name = "Alias", type = "string", access = "readWrite", max_length = 64 },
  { name = "Enable", type = "boolean", access = "readWrite", default = "false" },
]

[bind."Device."]
RootDataModelVersion = "builtin:root_data_model_version"

[bind."Device.DeviceInfo."]
UpTime = "builtin:uptime"
HostName = "agent:device.hostname"

[bind."Device.X.{i}."]
"{i}" = "agent:x"
Alias = "agent:x.{i}.alias"
Enable = "agent:x.{i}.enable"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = schema::parse_definitions("f.toml", text);
    for model in [Model::Tr181, Model::Tr098] {
        if let Ok(s) = Schema::from_files(model, &[("f.toml".into(), text.into(), false)]) {
            walk(&s);
        }
    }
    let files = [
        ("base.toml".to_string(), BASE.to_string(), false),
        ("datamodel.d/f.toml".to_string(), text.to_string(), true),
    ];
    if let Ok(s) = Schema::from_files(Model::Tr181, &files) {
        walk(&s);
    }
});

/// Every object and parameter of a loaded schema can be found again by its path.
fn walk(s: &Schema) {
    let _ = (s.root(), s.model(), s.model_name(), s.scripts().len());
    for (i, o) in s.objects().iter().enumerate() {
        assert_eq!(
            s.object_index(&o.path),
            Some(i),
            "object {} not found by path",
            o.path
        );
        for p in &o.params {
            let path = format!("{}{}", o.path, p.def.name);
            assert!(
                s.param(&path).is_some(),
                "parameter {path} not found by path"
            );
        }
    }
}
