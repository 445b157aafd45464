//! Fuzzes the TOML configuration (`/etc/cwmpd.toml`, see src/cwmpd.toml) on arbitrary UTF-8:
//! [`Config::parse`] parses and validates; a config that passes must answer every derived
//! question (model, log level, agent defaults, hooks, schema selection) without panicking.
#![no_main]

use cwmpd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::parse(text, "f") {
        use_config(&cfg);
    }
});

/// Everything the daemon derives from a valid config at start, without I/O.
fn use_config(cfg: &Config) {
    let _ = cfg.model();
    let _ = cfg.log_level();
    let _ = cfg.agent_defaults();
    let _ = cfg.hooks.resolve(cfg.datamodel.openwrt());
    let _ = cfg.datamodel.platform();
}
