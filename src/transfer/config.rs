//! `[transfer]` and `[hooks]` of the config file: how Download and Upload files are moved and
//! the OS actions behind Download, Upload, Reboot and FactoryReset; their defaults and their
//! checks.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[transfer]`: how Download and Upload files are moved (TR-069 §3.4.3, §A.3.2.8, §A.3.2.9).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Transfer {
    /// Where downloads arrive and uploads are produced (created when missing). Not the storage
    /// directory: a firmware image belongs in RAM (`/tmp` on OpenWrt), not in flash. Default:
    /// "/tmp/cwmpd".
    pub dir: PathBuf,
    /// Seconds for the connect and for each read or write with the file server. Default: 30.
    pub timeout: u32,
    /// Extra attempts of a transfer that failed for a network reason (cannot connect,
    /// incomplete, HTTP 5xx). Default: 2.
    pub retries: u32,
    /// Seconds between those attempts. Default: 10.
    pub retry_interval: u32,
    /// Transfers queued at once; more are refused with 9004. Default: 16.
    pub max_queued: u32,
    /// "PUT" or "POST" for uploads. Default: "PUT".
    pub upload_method: String,
    /// Most seconds an apply, produce, reboot or reset hook may run. Default: 900.
    pub hook_timeout: u32,
    /// Seconds to wait for the device to go down after a hook that reboots it returned 0;
    /// after that the agent resumes and reports the failure. Default: 300.
    pub reboot_timeout: u32,
}

crate::from_toml_struct!(Transfer {
    dir,
    timeout,
    retries,
    retry_interval,
    max_queued,
    upload_method,
    hook_timeout,
    reboot_timeout,
});

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            dir: PathBuf::from("/tmp/cwmpd"),
            timeout: 30,
            retries: 2,
            retry_interval: 10,
            max_queued: 16,
            upload_method: "PUT".into(),
            hook_timeout: 900,
            reboot_timeout: 300,
        }
    }
}

impl Transfer {
    /// Checks the ranges and the upload method.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        let t = self;
        let ranges: [(&'static str, u32, u32, u32); 6] = [
            ("transfer.timeout", t.timeout, 1, 3600),
            ("transfer.retries", t.retries, 0, 10),
            ("transfer.retry_interval", t.retry_interval, 1, 86400),
            ("transfer.max_queued", t.max_queued, 1, 256),
            ("transfer.hook_timeout", t.hook_timeout, 1, 86400),
            ("transfer.reboot_timeout", t.reboot_timeout, 1, 86400),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err((key, format!("must be {lo}–{hi}")));
            }
        }
        if !["PUT", "POST"].contains(&t.upload_method.as_str()) {
            return Err(("transfer.upload_method", "must be PUT or POST".into()));
        }
        Ok(())
    }
}

/// `[hooks]`: the OS actions behind Download, Upload, Reboot and FactoryReset (shell command
/// lines). A key left out takes the platform's default ([`Hooks::resolve`]); an empty command
/// means the action is not supported (and its RPC is not listed by GetRPCMethods).
#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Hooks {
    /// Applies a Download of FileType `1 Firmware Upgrade Image`. OpenWrt: `sysupgrade {file}`.
    pub firmware: Option<String>,
    /// Whether the firmware hook reboots the device. OpenWrt: true.
    pub firmware_reboots: Option<bool>,
    /// Applies FileType `2 Web Content`. Default: none.
    pub web_content: Option<String>,
    pub web_content_reboots: Option<bool>,
    /// Applies FileType `3 Vendor Configuration File`. OpenWrt: `sysupgrade -r {file} && reboot`
    /// (the file is a `sysupgrade -b` archive).
    pub config: Option<String>,
    pub config_reboots: Option<bool>,
    /// Produces the file of an Upload of FileType 1 or 3. OpenWrt: `sysupgrade -b {file}`.
    pub upload_config: Option<String>,
    /// Produces the file of an Upload of FileType 2 or 4. OpenWrt: `logread > {file}`.
    pub upload_log: Option<String>,
    /// The Reboot RPC. OpenWrt: `reboot`.
    pub reboot: Option<String>,
    /// The FactoryReset RPC. OpenWrt: `firstboot -y && reboot`.
    pub factory_reset: Option<String>,
    /// Vendor FileTypes (`X <OUI> <name>`) and the command applying each.
    pub vendor: BTreeMap<String, String>,
}

crate::from_toml_struct!(Hooks {
    firmware,
    firmware_reboots,
    web_content,
    web_content_reboots,
    config,
    config_reboots,
    upload_config,
    upload_log,
    reboot,
    factory_reset,
    vendor,
});

/// The hooks in force: the config's, else the platform's defaults. An empty string is "not
/// supported".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedHooks {
    pub firmware: String,
    pub firmware_reboots: bool,
    pub web_content: String,
    pub web_content_reboots: bool,
    pub config: String,
    pub config_reboots: bool,
    pub upload_config: String,
    pub upload_log: String,
    pub reboot: String,
    pub factory_reset: String,
    pub vendor: BTreeMap<String, String>,
}

impl Hooks {
    /// Checks the vendor FileTypes.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        for k in self.vendor.keys() {
            if !super::FileType::is_vendor(k) {
                return Err((
                    "hooks.vendor",
                    format!("{k:?} is not a vendor FileType \"X <OUI> <name>\""),
                ));
            }
        }
        Ok(())
    }

    /// Fills what the config left out with OpenWrt's commands (`openwrt`) or nothing (any other
    /// system: an agent on a development machine must not reboot it).
    pub fn resolve(&self, openwrt: bool) -> ResolvedHooks {
        let pick = |v: &Option<String>, openwrt_default: &str| {
            v.clone().unwrap_or_else(|| {
                if openwrt {
                    openwrt_default.to_string()
                } else {
                    String::new()
                }
            })
        };
        ResolvedHooks {
            firmware: pick(&self.firmware, "sysupgrade {file}"),
            firmware_reboots: self.firmware_reboots.unwrap_or(true),
            web_content: pick(&self.web_content, ""),
            web_content_reboots: self.web_content_reboots.unwrap_or(false),
            config: pick(&self.config, "sysupgrade -r {file} && reboot"),
            config_reboots: self.config_reboots.unwrap_or(true),
            upload_config: pick(&self.upload_config, "sysupgrade -b {file}"),
            upload_log: pick(&self.upload_log, "logread > {file}"),
            reboot: pick(&self.reboot, "reboot"),
            factory_reset: pick(&self.factory_reset, "firstboot -y && reboot"),
            vendor: self
                .vendor
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.trim().to_string(), v.clone()))
                .collect(),
        }
    }
}
