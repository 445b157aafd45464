//! A small in-memory data model for the engine's unit tests: definitions and bindings given as
//! text, values in the agent and const backends only (no uci, no file, no process).

use std::collections::BTreeMap;

use super::backend::registry::Backends;
use super::schema::{Model, Schema};
use super::{DmState, Engine};
use crate::cwmp::fault::Fault;
use crate::cwmp::value::{SetAttributes, SetValue};

const DEFS: &str = r#"
[model]
name = "Device:2.19"

[[object]]
name = "Device."

[[object]]
name = "Device.A."
params = [
  { name = "X", type = "unsignedInt", access = "readWrite", ranges = [{ min = 1, max = 100 }] },
  { name = "S", type = "string", access = "readWrite", max_length = 16 },
  { name = "Big", type = "string", access = "readWrite" },
  { name = "Secret", type = "string", access = "readWrite", hidden = true },
  { name = "RO", type = "string" },
  { name = "Fixed", type = "boolean" },
  { name = "Deny", type = "string", access = "readWrite", active_notify = "canDeny" },
  { name = "Forced", type = "string", access = "readWrite", active_notify = "forceEnabled" },
  { name = "TNumberOfEntries", type = "unsignedInt" },
]

[[object]]
name = "Device.A.T.{i}."
access = "readWrite"
min_entries = 0
max_entries = 3
num_entries = "TNumberOfEntries"
params = [ { name = "V", type = "string", access = "readWrite" } ]

[[object]]
name = "Device.A.T.{i}.U.{i}."
access = "readWrite"
min_entries = 0
max_entries = "unbounded"
params = [ { name = "W", type = "int", access = "readWrite" } ]

[[object]]
name = "Device.B."
params = [ { name = "Z", type = "string", forced_inform = true } ]
"#;

const BIND: &str = r#"
[bind."Device.A."]
X = { to = "agent:a.x", default = "5" }
S = "agent:a.s"
Big = "agent:a.big"
Secret = { to = "agent:a.secret", default = "hunter2" }
RO = { to = "agent:a.ro", default = "fixed" }
Fixed = "const:1"
Deny = "agent:a.deny"
Forced = "agent:a.forced"
[bind."Device.A.T.{i}."]
"{i}" = "agent:a.t"
V = "agent:a.t.{i}.v"
[bind."Device.A.T.{i}.U.{i}."]
"{i}" = "agent:a.t.{i}.u"
W = "agent:a.t.{i}.u.{i}.w"
[bind."Device.B."]
Z = { to = "agent:b.z", default = "zed" }
"#;

/// The fixture's schema.
pub fn schema() -> Schema {
    let files = [
        ("defs.toml".to_string(), DEFS.to_string(), false),
        ("bind.toml".to_string(), BIND.to_string(), true),
    ];
    Schema::from_files(Model::Tr181, &files).expect("the fixture loads")
}

/// An engine over the fixture, with an empty state.
pub fn engine() -> Engine {
    Engine::new(schema(), Backends::new(BTreeMap::new()), DmState::default())
}

/// An engine over the fixture and one more file (a vendor's: definitions and bindings).
pub fn engine_with(extra: &str) -> Engine {
    let files = [
        ("defs.toml".to_string(), DEFS.to_string(), false),
        ("bind.toml".to_string(), BIND.to_string(), true),
        ("extra.toml".to_string(), extra.to_string(), true),
    ];
    let schema = Schema::from_files(Model::Tr181, &files).expect("the fixture loads");
    Engine::new(schema, Backends::new(BTreeMap::new()), DmState::default())
}

pub fn set(name: &str, value: &str) -> SetValue {
    SetValue {
        name: name.to_string(),
        value: value.to_string(),
        xsi_type: None,
    }
}

pub fn attr(name: &str, notification: u8) -> SetAttributes {
    SetAttributes {
        name: name.to_string(),
        notification_change: true,
        notification,
        access_list_change: false,
        access_list: Vec::new(),
    }
}

/// One value by GetParameterValues.
pub fn get(e: &mut Engine, path: &str) -> String {
    let values = e.values(&[path.to_string()]).expect("readable");
    values.iter().next().expect("one value").value.to_string()
}

/// The fault code of a result.
pub fn code<T: std::fmt::Debug>(r: Result<T, Fault>) -> u32 {
    r.expect_err("a fault").code()
}

/// `(parameter, code)` of each parameter fault of a 9003.
pub fn param_faults<T: std::fmt::Debug>(r: Result<T, Fault>) -> Vec<(String, u32)> {
    match r {
        Err(Fault::InvalidArguments(_, list)) => {
            list.into_iter().map(|p| (p.name, p.fault.code())).collect()
        }
        other => panic!("expected 9003, got {other:?}"),
    }
}
