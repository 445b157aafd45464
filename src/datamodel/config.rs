//! `[datamodel]` of the config file: where the data model finds the system (the backends'
//! paths), its defaults and its checks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::datamodel::schema::PlatformKind;

/// `[datamodel]`: where the data model finds the system (the backends' paths).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Datamodel {
    /// "auto" (OpenWrt when `<root>/etc/openwrt_release` exists, else Linux), "openwrt",
    /// "linux" or "generic": which built-in bindings are loaded over the agent's own
    /// parameters (OpenWrt: uci, ubus, the kernel, /sys and /proc; Linux: the kernel, /sys and
    /// /proc; generic: none). Default: "auto".
    pub platform: String,
    /// Prefix of every path the `file` backend reads, and of the default uci directory. A
    /// fixture tree in tests. Default: "/".
    pub root: PathBuf,
    /// Vendor data model files (definitions, bindings, scripts), `*.toml` loaded in name order
    /// after the built-in ones; a missing directory is empty. Default:
    /// "/etc/cwmpd/datamodel.d".
    pub dir: PathBuf,
    /// The uci command. Default: "uci".
    pub uci: PathBuf,
    /// ubusd's socket. Default: "/var/run/ubus/ubus.sock" (and "/var/run/ubus.sock" when that
    /// one is missing: OpenWrt before 19.07).
    pub ubus_socket: PathBuf,
    /// The uci configuration directory. Default: `<root>/etc/config`.
    pub uci_config: Option<PathBuf>,
    /// Where the agent stages its own uci changes (RAM). Default: "/var/run/cwmpd/uci".
    pub uci_savedir: PathBuf,
    /// Command run at the end of a session that changed a uci package, by package; an empty
    /// command applies without a reload. Default: OpenWrt's init scripts (network, wireless,
    /// dhcp, firewall, system, dropbear).
    pub reload: BTreeMap<String, String>,
    /// Seconds between two checks of values not watched with inotify (passive and active
    /// notification). Default: 30.
    pub poll_interval: u32,
    /// Most seconds a vendor script may run per call. Default: 10.
    pub script_timeout: u32,
    /// The config was read from `<uci_config>/cwmpd` (OpenWrt): ManagementServer's settings
    /// are then bound to that uci package, so what the ACS sets shows in `uci show cwmpd`.
    #[cfg_attr(test, serde(skip))]
    pub cwmpd_uci: bool,
}

crate::from_toml_struct!(Datamodel {
    platform,
    root,
    dir,
    uci,
    ubus_socket,
    uci_config,
    uci_savedir,
    reload,
    poll_interval,
    script_timeout,
});

impl Default for Datamodel {
    fn default() -> Self {
        let p = crate::datamodel::backend::Platform::default();
        Datamodel {
            platform: "auto".into(),
            root: p.root,
            dir: PathBuf::from("/etc/cwmpd/datamodel.d"),
            uci: p.uci_bin,
            ubus_socket: p.ubus_socket,
            uci_config: None,
            uci_savedir: p.uci_savedir,
            reload: p.reload,
            poll_interval: 30,
            script_timeout: 10,
            cwmpd_uci: false,
        }
    }
}

impl Datamodel {
    /// Whether the OpenWrt bindings apply.
    pub fn openwrt(&self) -> bool {
        self.kind() == PlatformKind::OpenWrt
    }

    /// The platform whose bindings apply (`auto` resolved).
    pub fn kind(&self) -> PlatformKind {
        match self.platform.as_str() {
            "openwrt" => PlatformKind::OpenWrt,
            "generic" => PlatformKind::Generic,
            "linux" => PlatformKind::Linux,
            _ if self.root.join("etc/openwrt_release").exists() => PlatformKind::OpenWrt,
            _ => PlatformKind::Linux,
        }
    }

    /// The backends' view of the system.
    pub fn platform(&self) -> crate::datamodel::backend::Platform {
        crate::datamodel::backend::Platform {
            root: self.root.clone(),
            uci_bin: self.uci.clone(),
            ubus_socket: self.ubus_socket.clone(),
            uci_config: self
                .uci_config
                .clone()
                .unwrap_or_else(|| self.root.join("etc/config")),
            uci_savedir: self.uci_savedir.clone(),
            reload: self
                .reload
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            script_timeout: std::time::Duration::from_secs(u64::from(self.script_timeout)),
        }
    }

    /// Loads the data model files this configuration selects.
    pub fn schema(
        &self,
        model: crate::datamodel::schema::Model,
    ) -> Result<crate::datamodel::schema::Schema, crate::datamodel::schema::LoadError> {
        crate::datamodel::schema::Schema::load_with(
            model,
            self.kind(),
            self.cwmpd_uci,
            Some(&self.dir),
        )
    }
}

impl Datamodel {
    /// Checks the platform and the intervals.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !["auto", "openwrt", "linux", "generic"].contains(&self.platform.as_str()) {
            return Err(("platform", "must be auto, openwrt, linux or generic".into()));
        }
        if self.poll_interval == 0 {
            return Err(("poll_interval", "must be at least 1 second".into()));
        }
        if !(1..=3600).contains(&self.script_timeout) {
            return Err(("script_timeout", "must be 1–3600 seconds".into()));
        }
        Ok(())
    }
}
