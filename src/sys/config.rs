//! The sections of the config file the system rooms own: `[storage]` (where the state that must
//! survive a power cut lives) and `[log]` (where the log goes and how much of it); their defaults
//! and their checks.

use std::path::PathBuf;

/// `[storage]`: where the state that must survive a power cut lives.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Storage {
    /// Directory of the crash-safe state files; must be on persistent storage (on OpenWrt under
    /// /etc, which survives reboots; /var is RAM). Default: "/etc/cwmpd/state".
    pub dir: PathBuf,
}

crate::from_toml_struct!(Storage { dir });

impl Default for Storage {
    fn default() -> Self {
        Storage {
            dir: PathBuf::from("/etc/cwmpd/state"),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Log {
    /// "error", "warn", "info", "debug" or "trace". Default: "info".
    pub level: String,
    /// "auto" (syslog on OpenWrt when `/dev/log` exists, else stderr), "syslog" or "stderr".
    /// Default: "auto".
    pub target: String,
}

crate::from_toml_struct!(Log { level, target });

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            target: "auto".into(),
        }
    }
}

impl Log {
    /// Checks the target and the level.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !["auto", "syslog", "stderr"].contains(&self.target.as_str()) {
            return Err(("log.target", "must be auto, syslog or stderr".into()));
        }
        if log_level(&self.level).is_none() {
            return Err(("level", "must be error, warn, info, debug or trace".into()));
        }
        Ok(())
    }

    /// The level filter (info when the level is not one of the five names).
    pub fn level_filter(&self) -> log::LevelFilter {
        log_level(&self.level).unwrap_or(log::LevelFilter::Info)
    }
}

fn log_level(s: &str) -> Option<log::LevelFilter> {
    Some(match s {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => return None,
    })
}
