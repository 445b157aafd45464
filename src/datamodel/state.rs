//! What the engine persists ([`DmState`]: agent-owned values, non-default attributes, the
//! instance numbers of every table, §A.3.2.6).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::path::instance_number;

/// What the engine keeps across restarts (persisted by the agent through the store when
/// [`super::Engine::take_dirty`] says it changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmState {
    /// Values owned by the agent backend that were set by the ACS or `cwmpd set`, by key.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Non-default attributes, by full parameter path.
    #[serde(default)]
    pub attributes: BTreeMap<String, Attributes>,
    /// Instance bookkeeping, by table path with instance numbers (`Device.Foo.1.Bar.`).
    #[serde(default)]
    pub tables: BTreeMap<String, TableState>,
}

/// A parameter's attributes (§A.3.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// 0 off, 1 passive, 2 active.
    #[serde(default)]
    pub notification: u8,
    #[serde(default)]
    pub access_list: Vec<String>,
}

/// The instances of one table: instance number → the backend's key for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableState {
    /// The next instance number to hand out (never reused, §A.3.2.6).
    pub next: u32,
    /// Instance number → backend key (a uci section name, an index, …). Written with string
    /// keys, as TOML tables need them.
    #[serde(default, with = "number_keys")]
    pub instances: BTreeMap<u32, String>,
}

/// A map with instance-number keys, serialized with string keys (`"3" = "cfg02"`).
mod number_keys {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<u32, String>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k.to_string(), v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u32, String>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| match super::instance_number(&k) {
                Some(n) => Ok((n, v)),
                None => Err(D::Error::custom(format!("{k:?} is not an instance number"))),
            })
            .collect()
    }
}
