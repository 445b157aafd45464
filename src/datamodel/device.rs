//! The network device of an interface a diagnostic names (TR-181 `Interface`:
//! `Device.IP.Interface.2`; TR-098: a WANIPConnection, WANPPPConnection or LAN IPInterface): the
//! table's `[device]` binding read for that instance (netifd's `l3_device` of a uci interface on
//! OpenWrt, the netdev itself on Linux).

use super::path::{expand, has_nested, Node};
use super::Engine;
use crate::cwmp::fault::Fault;
use crate::datamodel::backend::Cx;

impl Engine {
    /// The device of the interface at `path` (with or without its final `.`): `Ok(None)` for
    /// the empty path (the routing table decides) and for an interface without a device now
    /// (down); 9007 for a path that names no instance of a table with a `[device]` binding.
    pub fn device_of(&mut self, path: &str) -> Result<Option<String>, Fault> {
        let Some((binding, keys)) = self.interface(path)? else {
            return Ok(None);
        };
        let mut key = expand(&binding.key, &keys);
        if has_nested(&key) {
            match self
                .resolve_nested(std::slice::from_ref(&key))
                .pop()
                .flatten()
            {
                Some(k) => key = k,
                None => return Ok(None),
            }
        }
        if binding.backend == crate::datamodel::backend::registry::BackendKind::Const {
            return Ok(Some(key).filter(|k| !k.is_empty()));
        }
        let mut cx = Cx {
            values: &mut self.state.values,
            changed: false,
        };
        let got = self.backends.get(binding.backend).read(&mut cx, &[&key])?;
        Ok(got.into_iter().next().flatten().filter(|d| !d.is_empty()))
    }

    /// The `[device]` binding and instance keys of the interface at `path`; `None` for the
    /// empty path.
    pub(super) fn interface(
        &mut self,
        path: &str,
    ) -> Result<Option<(super::schema::Binding, Vec<String>)>, Fault> {
        if path.is_empty() {
            return Ok(None);
        }
        let bad =
            || Fault::InvalidParameterValue(format!("{path:?} is not an interface of this device"));
        let partial = if path.ends_with('.') {
            path.to_string()
        } else {
            format!("{path}.")
        };
        let Ok(Node::Object(o, inst)) = self.resolve(&partial) else {
            return Err(bad());
        };
        let binding = self.schema.device_binding(o).cloned().ok_or_else(bad)?;
        if inst.keys.is_empty() {
            return Err(bad());
        }
        Ok(Some((binding, inst.keys)))
    }
}
