//! The `builtin` backend (computed read-only values: UpTime, CurrentLocalTime, CPUUsage, the
//! model's version) and the `const` backend (the binding's key is the value). `uptime` reads
//! `/proc/uptime`; `cpu_usage` reads `/proc/stat`; `current_local_time` reads the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Backend, Cx};
use crate::cwmp::fault::Fault;

/// The keys of the builtin backend.
pub const BUILTIN_KEYS: &[&str] = &[
    "uptime",
    "cpu_usage",
    "current_local_time",
    "root_data_model_version",
    "device_summary",
];

/// Computed read-only values.
pub struct BuiltinBackend {
    /// The model name (`Device:2.19`).
    pub(super) model: String,
    pub(super) uptime_file: String,
    /// `/proc/stat` (under the platform's root).
    pub(super) stat_file: String,
    /// The CPU times of the previous `cpu_usage` reading: (busy, total) in clock ticks.
    cpu: Option<(u64, u64)>,
}

impl BuiltinBackend {
    /// UpTime from `uptime_file` (`/proc/uptime` on a router); the model name comes later.
    pub fn new(uptime_file: String, stat_file: String) -> BuiltinBackend {
        BuiltinBackend {
            model: String::new(),
            uptime_file,
            stat_file,
            cpu: None,
        }
    }

    /// TR-181 ProcessStatus.CPUUsage: the percentage of CPU time not idle since the previous
    /// reading, or since boot at the first (or when no tick passed since the previous one).
    fn cpu_usage(&mut self) -> Result<String, Fault> {
        let text = std::fs::read_to_string(&self.stat_file)
            .map_err(|e| Fault::internal(format!("{}: {e}", self.stat_file)))?;
        let (busy, total) = cpu_times(&text)
            .ok_or_else(|| Fault::internal(format!("{}: no cpu line", self.stat_file)))?;
        let (db, dt) = match self.cpu {
            Some((b, t)) if total > t && busy >= b => (busy - b, total - t),
            _ => (busy, total),
        };
        self.cpu = Some((busy, total));
        let pct = db
            .saturating_mul(100)
            .saturating_add(dt / 2)
            .checked_div(dt)
            .unwrap_or(0);
        Ok(pct.min(100).to_string())
    }

    fn value(&mut self, key: &str) -> Result<Option<String>, Fault> {
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
            // A kernel without /proc/stat (none known) leaves CPUUsage without a value rather
            // than failing the request.
            "cpu_usage" => match self.cpu_usage() {
                Ok(v) => v,
                Err(e) => {
                    log::debug!("{e}");
                    return Ok(None);
                }
            },
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

/// The busy and total CPU times of `/proc/stat`'s first line (`cpu  user nice system idle
/// iowait irq softirq steal …`, proc(5)): idle and iowait are idle; guest time is already in
/// user and nice.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let t: Vec<u64> = f.take(8).map(|x| x.parse().unwrap_or(0)).collect();
    if t.len() < 4 {
        return None;
    }
    let total = t.iter().fold(0u64, |a, x| a.saturating_add(*x));
    let idle = t[3].saturating_add(t.get(4).copied().unwrap_or(0));
    Some((total.saturating_sub(idle), total))
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

    #[test]
    fn cpu_usage_between_readings() {
        assert_eq!(
            cpu_times("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            Some((150, 1000))
        );
        assert_eq!(cpu_times("intr 1 2 3\n"), None);
        assert_eq!(cpu_times(""), None);
        let dir = std::env::temp_dir().join(format!("cwmpd-cpu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stat = dir.join("stat");
        std::fs::write(&stat, "cpu  100 0 50 800 50 0 0 0 0 0\n").unwrap();
        let mut b = BuiltinBackend::new(String::new(), stat.display().to_string());
        assert_eq!(
            b.cpu_usage().unwrap(),
            "15",
            "since boot at the first reading"
        );
        std::fs::write(&stat, "cpu  400 0 50 900 50 0 0 0 0 0\n").unwrap();
        assert_eq!(
            b.cpu_usage().unwrap(),
            "75",
            "300 busy of 400 ticks since the previous"
        );
        assert_eq!(b.cpu_usage().unwrap(), "32", "no tick passed: since boot");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
