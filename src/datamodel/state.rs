//! What the engine persists ([`DmState`]: agent-owned values, non-default attributes, the
//! instance numbers of every table, §A.3.2.6).

use std::collections::BTreeMap;

use super::path::instance_number;

/// What the engine keeps across restarts (persisted by the agent through the store when
/// [`super::Engine::take_dirty`] says it changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmState {
    /// Values owned by the agent backend that were set by the ACS or `cwmpd set`, by key.
    pub values: BTreeMap<String, String>,
    /// Non-default attributes, by full parameter path.
    pub attributes: BTreeMap<String, Attributes>,
    /// Instance bookkeeping, by table path with instance numbers (`Device.Foo.1.Bar.`).
    pub tables: BTreeMap<String, TableState>,
}

/// A parameter's attributes (§A.3.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// 0 off, 1 passive, 2 active.
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// The instances of one table: instance number → the backend's key for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// The next instance number to hand out (never reused, §A.3.2.6).
    pub next: u32,
    /// Instance number → backend key (a uci section name, an index, …). Written with string
    /// keys, as TOML tables need them (`"3" = "cfg02"`).
    pub instances: BTreeMap<u32, String>,
}

// Written by the macro's writer; read by the hand-written reader below (instance numbers as
// keys are checked).
crate::from_toml_struct!(@write TableState { next, instances });

crate::from_toml_struct!(lenient DmState { values, attributes, tables });
crate::from_toml_struct!(lenient Attributes { notification, access_list });

impl crate::toml_read::FromToml for TableState {
    fn from_toml(v: &crate::toml_read::Value<'_>) -> Result<Self, crate::toml_read::Error> {
        use crate::toml_read;
        let mut out = TableState::default();
        for (k, v) in toml_read::table(v)? {
            match toml_read::key(k) {
                "next" => out.next = u32::from_toml(v)?,
                "instances" => {
                    for (number, key) in toml_read::table(v)? {
                        let n = instance_number(toml_read::key(number)).ok_or_else(|| {
                            toml_read::Error::at(
                                number.span().start,
                                format!("{:?} is not an instance number", toml_read::key(number)),
                            )
                        })?;
                        out.instances.insert(n, String::from_toml(key)?);
                    }
                }
                _ => {}
            }
        }
        toml_read::require(v, &["next"])?;
        Ok(out)
    }
}
