//! The `agent` backend: values the agent owns (ManagementServer, identity), seeded from the
//! config file and at run time, overridden by the ACS and kept in `DmState.values`.

use std::collections::BTreeMap;

use super::{Applied, Backend, Cx};
use crate::cwmp::fault::Fault;

/// The most the agent backend stores (keys and values, in bytes): a bound on what an ACS can
/// make the CPE keep in its state file. A change beyond it fails with 9004.
pub const MAX_AGENT_BYTES: usize = 64 * 1024;

/// Values the agent owns: the ACS's value (kept in `DmState.values`) over the default from the
/// config file or the run time.
pub struct AgentBackend {
    /// The default (config or run-time) value of each agent-owned key.
    pub(super) defaults: BTreeMap<String, String>,
    staged: Vec<AgentOp>,
    /// Old values of what `apply` changed, to restore on rollback.
    undo: Vec<(String, Option<String>)>,
}

enum AgentOp {
    Set(String, String),
    /// Removes every value under this prefix (a deleted instance).
    DeletePrefix(String),
}

impl AgentBackend {
    pub fn new(defaults: BTreeMap<String, String>) -> AgentBackend {
        AgentBackend {
            defaults,
            staged: Vec::new(),
            undo: Vec::new(),
        }
    }
}

impl Backend for AgentBackend {
    fn writable(&self, _key: &str) -> bool {
        true
    }

    fn creatable(&self, _table: &str) -> bool {
        true
    }

    fn read(&mut self, cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys
            .iter()
            .map(|k| cx.values.get(*k).or_else(|| self.defaults.get(*k)).cloned())
            .collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(None)
    }

    fn stage_set(&mut self, _cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        self.staged
            .push(AgentOp::Set(key.to_string(), value.to_string()));
        Ok(())
    }

    fn stage_add(&mut self, _cx: &mut Cx<'_>, _table: &str, number: u32) -> Result<String, Fault> {
        // The instance number is the key: values of the instance start at their defaults.
        Ok(number.to_string())
    }

    fn stage_delete(&mut self, _cx: &mut Cx<'_>, table: &str, instance: &str) -> Result<(), Fault> {
        self.staged
            .push(AgentOp::DeletePrefix(format!("{table}.{instance}.")));
        Ok(())
    }

    fn apply(&mut self, cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        let mut size: usize = cx.values.iter().map(|(k, v)| k.len() + v.len()).sum();
        for op in std::mem::take(&mut self.staged) {
            match op {
                AgentOp::Set(k, v) => {
                    if cx.values.get(&k) != Some(&v) {
                        size += k.len() + v.len();
                        let old = cx.values.insert(k.clone(), v);
                        if let Some(o) = &old {
                            size = size.saturating_sub(k.len() + o.len());
                        }
                        self.undo.push((k, old));
                        if size > MAX_AGENT_BYTES {
                            // The engine rolls back what was applied so far.
                            return Err(Fault::ResourcesExceeded(format!(
                                "the agent store would exceed {MAX_AGENT_BYTES} bytes"
                            )));
                        }
                    }
                }
                AgentOp::DeletePrefix(p) => {
                    let gone: Vec<String> = cx
                        .values
                        .range(p.clone()..)
                        .take_while(|(k, _)| k.starts_with(&p))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in gone {
                        let old = cx.values.remove(&k);
                        self.undo.push((k, old));
                    }
                }
            }
        }
        Ok(Applied::Now)
    }

    fn commit(&mut self, cx: &mut Cx<'_>) {
        if !self.undo.is_empty() {
            cx.changed = true;
        }
        self.undo.clear();
    }

    fn rollback(&mut self, cx: &mut Cx<'_>) {
        self.staged.clear();
        for (k, old) in self.undo.drain(..).rev() {
            match old {
                Some(v) => cx.values.insert(k, v),
                None => cx.values.remove(&k),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_apply_and_rollback() {
        let mut values = BTreeMap::from([("t.1.a".to_string(), "x".to_string())]);
        let mut agent = AgentBackend::new(BTreeMap::from([("k".to_string(), "def".to_string())]));
        let mut cx = Cx {
            values: &mut values,
            changed: false,
        };
        assert_eq!(
            agent.read(&mut cx, &["k", "t.1.a", "none"]).unwrap(),
            [Some("def".into()), Some("x".into()), None]
        );
        agent.stage_set(&mut cx, "k", "acs").unwrap();
        agent.stage_delete(&mut cx, "t", "1").unwrap();
        agent.apply(&mut cx).unwrap();
        assert_eq!(cx.values.get("k").map(String::as_str), Some("acs"));
        assert!(!cx.values.contains_key("t.1.a"));
        agent.rollback(&mut cx);
        assert!(!cx.changed);
        assert_eq!(cx.values.len(), 1);
        assert_eq!(cx.values.get("t.1.a").map(String::as_str), Some("x"));
        agent.stage_set(&mut cx, "k", "acs").unwrap();
        agent.apply(&mut cx).unwrap();
        agent.commit(&mut cx);
        assert!(cx.changed);
        assert_eq!(cx.values.get("k").map(String::as_str), Some("acs"));
    }
}
