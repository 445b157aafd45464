//! The `uci` backend (OpenWrt configuration). Not written yet: reads nothing, writes nothing.

use super::backend::{Backend, Cx, Platform};
use crate::fault::Fault;

pub struct UciBackend {}

impl UciBackend {
    pub fn new(platform: &Platform) -> UciBackend {
        let _ = platform;
        UciBackend {}
    }
}

/// Checks a binding key when the definitions are loaded.
pub fn check_key(key: &str) -> Result<(), String> {
    let _ = key;
    Ok(())
}

impl Backend for UciBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }
    fn creatable(&self, _table: &str) -> bool {
        false
    }
    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(vec![None; keys.len()])
    }
    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(Vec::new()))
    }
}
