//! The `builtin` backend (computed read-only values: UpTime, CurrentLocalTime, the model's
//! version) and the `const` backend (the binding's key is the value). `uptime` reads
//! `/proc/uptime`; `current_local_time` reads the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Backend, Cx};
use crate::cwmp::fault::Fault;

/// The keys of the builtin backend.
pub const BUILTIN_KEYS: &[&str] = &[
    "uptime",
    "current_local_time",
    "root_data_model_version",
    "device_summary",
];

/// Computed read-only values.
pub struct BuiltinBackend {
    /// The model name (`Device:2.19`).
    pub(super) model: String,
    pub(super) uptime_file: String,
}

impl BuiltinBackend {
    /// UpTime from `uptime_file` (`/proc/uptime` on a router); the model name comes later.
    pub fn new(uptime_file: String) -> BuiltinBackend {
        BuiltinBackend {
            model: String::new(),
            uptime_file,
        }
    }

    fn value(&self, key: &str) -> Result<Option<String>, Fault> {
        Ok(Some(match key {
            // TR-181 DeviceInfo.UpTime: seconds since boot, from /proc/uptime ("12345.67 …").
            "uptime" => {
                let text = std::fs::read_to_string(&self.uptime_file)
                    .map_err(|e| Fault::internal(format!("{}: {e}", self.uptime_file)))?;
                let secs = text
                    .split(['.', ' '])
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| Fault::internal(format!("{}: unreadable", self.uptime_file)))?;
                secs.min(u32::MAX as u64).to_string()
            }
            // Time.CurrentLocalTime: the system clock, in UTC.
            "current_local_time" => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format_utc(secs)
            }
            // Device.RootDataModelVersion: "2.19" of "Device:2.19".
            "root_data_model_version" => self
                .model
                .split_once(':')
                .map_or(String::new(), |(_, v)| v.to_string()),
            // InternetGatewayDevice.DeviceSummary (TR-106 §3.7): the root object and version,
            // with no profile claimed.
            "device_summary" => format!("{}[]()", self.model),
            _ => return Ok(None),
        }))
    }
}

impl Backend for BuiltinBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        keys.iter().map(|k| self.value(k)).collect()
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(Vec::new()))
    }
}

/// A fixed value: the key is the value (`const:false`).
pub struct ConstBackend;

impl Backend for ConstBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys.iter().map(|k| Some(k.to_string())).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, _table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(Vec::new()))
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` of seconds since the epoch.
pub fn format_utc(secs: u64) -> String {
    crate::cwmp::time::format_datetime_utc(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_763_704_200), "2025-11-21T05:50:00Z");
    }
}
