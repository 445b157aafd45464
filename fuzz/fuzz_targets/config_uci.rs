//! Fuzzes the UCI configuration (`/etc/config/cwmpd`, see openwrt/files/cwmpd.config) on
//! arbitrary UTF-8: [`Config::parse_uci`] parses and validates; a config that passes must answer
//! every derived question without panicking. The same text is read as a router's package would
//! be, in the agent's process (the uci backend's `direct` reader), which must not panic either.
#![no_main]

use cwmpd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cwmpd::datamodel::backend::uci::checking::direct_parses(text);
    if let Ok(cfg) = Config::parse_uci(text, "f") {
        let _ = cfg.model();
        let _ = cfg.log_level();
        let _ = cfg.agent_defaults();
        let _ = cfg.hooks.resolve(cfg.datamodel.openwrt());
        let _ = cfg.datamodel.platform();
    }
});
