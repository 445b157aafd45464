//! ACS discovery by DHCP (TR-069 §3.1) on the agent's side: the settings `cwmpd dhcp-acs` left
//! in the requests directory (from the DHCP clients' hooks, `openwrt/`) are taken by the loop.
//!
//! `[acs] dhcp_discovery` decides: "auto" (the default) uses a discovered URL only while
//! ManagementServer.URL is empty or is the one DHCP gave before (a URL the ACS, the config or
//! `cwmpd set` gave wins); "always" lets DHCP win; "off" ignores it. The URL, the
//! ProvisioningCode and the two retry settings are written as a local change (checked like
//! `cwmpd set`: ManagementServer.URL must be an http(s) URL the session client can use),
//! persisted, and a new URL is a new ACS: `0 BOOTSTRAP` (Table 7).
//!
//! Only root writes the requests directory (it is in the private storage directory), so only
//! the DHCP clients' hooks, which run as root, can feed it; what a DHCP server says is trusted
//! as far as the mode allows (SECURITY.md).

use super::Agent;
use crate::cwmp::value::SetValue;
use crate::datamodel::management::{ManagementServer, Param};
use crate::dhcp::Discovered;

/// The request file's name prefix.
pub const DHCP_REQUEST_PREFIX: &str = "dhcp-";

/// What `cwmpd dhcp-acs` left for the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpRequest {
    /// "v4" or "v6": where it came from (for the log).
    pub family: String,
    pub url: String,
    pub provisioning_code: Option<String>,
    pub min_wait: Option<u32>,
    pub multiplier: Option<u32>,
}

crate::from_toml_struct!(lenient DhcpRequest {
    family, url, provisioning_code, min_wait, multiplier,
} required "family", "url");

impl DhcpRequest {
    pub fn new(family: &str, d: Discovered) -> DhcpRequest {
        DhcpRequest {
            family: family.to_string(),
            url: d.url,
            provisioning_code: d.provisioning_code,
            min_wait: d.min_wait,
            multiplier: d.multiplier,
        }
    }
}

/// The least time between two changes of the ACS URL that DHCP makes (a server, or a rogue one,
/// whose leases alternate between URLs cannot make a BOOTSTRAP and a flash write at each).
pub const URL_CHANGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

impl Agent {
    /// What applying `r` would change, as `[acs] dhcp_discovery` allows: the parameters to set
    /// (none: nothing to do), or why it is not used. `cwmpd dhcp-acs` asks first, so a lease
    /// renewal that brings nothing new writes nothing.
    pub fn dhcp_changes(&mut self, r: &DhcpRequest) -> Result<Vec<SetValue>, String> {
        let mode = self.cfg.acs.dhcp_discovery.clone();
        if mode == "off" {
            return Err("[acs] dhcp_discovery is off".into());
        }
        let m = ManagementServer::read(&mut self.engine);
        let ours = m.url.is_empty() || m.url == self.state.dhcp_acs_url;
        if mode != "always" && !ours {
            return Err("ManagementServer.URL is set and wins ([acs] dhcp_discovery = \"always\" lets DHCP win)".into());
        }
        let root = self.engine.root().to_string();
        let mut list: Vec<SetValue> = Vec::new();
        let mut set = |engine: &mut crate::datamodel::Engine, name: String, value: String| {
            if engine.value(&name).ok().as_deref() != Some(value.as_str()) {
                list.push(SetValue {
                    name,
                    value,
                    xsi_type: None,
                });
            }
        };
        if !r.url.is_empty() {
            set(&mut self.engine, Param::Url.path(&root), r.url.clone());
        }
        if let Some(p) = &r.provisioning_code {
            set(
                &mut self.engine,
                format!("{root}DeviceInfo.ProvisioningCode"),
                p.clone(),
            );
        }
        if let Some(w) = r.min_wait {
            set(
                &mut self.engine,
                Param::RetryMinimumWaitInterval.path(&root),
                w.to_string(),
            );
        }
        if let Some(k) = r.multiplier {
            set(
                &mut self.engine,
                Param::RetryIntervalMultiplier.path(&root),
                k.to_string(),
            );
        }
        Ok(list)
    }

    /// Applies what a DHCP server offered (see [`Agent::dhcp_changes`]); a new URL at most once
    /// per [`URL_CHANGE_INTERVAL`]. Returns whether an event was queued (a new ACS:
    /// `0 BOOTSTRAP`).
    pub(super) fn apply_dhcp(&mut self, r: &DhcpRequest) -> bool {
        let shown = crate::http::url::redact(&r.url);
        let list = match self.dhcp_changes(r) {
            Ok(l) => l,
            Err(why) => {
                log::info!("DHCP{} offered the ACS {shown}: {why}", r.family);
                return false;
            }
        };
        if list.is_empty() {
            return false;
        }
        let url_path = Param::Url.path(self.engine.root());
        let new_url = list.iter().any(|v| v.name == url_path);
        if new_url
            && self
                .dhcp_url_changed
                .is_some_and(|t| t.elapsed() < URL_CHANGE_INTERVAL)
        {
            log::warn!(
                "DHCP{} offered another ACS ({shown}) within {} s of the last change: not used",
                r.family,
                URL_CHANGE_INTERVAL.as_secs()
            );
            return false;
        }
        // Committed only once persisted, like every change.
        self.engine.hold();
        if let Err(f) = self.engine.set_local(&list) {
            self.engine.settle(false);
            log::warn!(
                "DHCP{} offered ACS settings that are refused: {f}",
                r.family
            );
            return false;
        }
        let before = self.state.dhcp_acs_url.clone();
        if new_url {
            self.state.dhcp_acs_url = r.url.clone();
        }
        let saved = self.persist();
        self.engine.settle(saved.is_ok());
        if let Err(e) = saved {
            self.state.dhcp_acs_url = before;
            log::error!("DHCP's ACS settings could not be recorded: {e}");
            return false;
        }
        if new_url {
            self.dhcp_url_changed = Some(std::time::Instant::now());
        }
        log::info!(
            "DHCP{}: the ACS is {shown}{}",
            r.family,
            r.provisioning_code
                .as_ref()
                .map(|p| format!(", ProvisioningCode {p:?}"))
                .unwrap_or_default()
        );
        let had = self.state.events.contains(crate::events::BOOTSTRAP);
        if let Err(e) = self.note_url() {
            log::error!("{e}");
        }
        self.save();
        !had && self.state.events.contains(crate::events::BOOTSTRAP)
    }
}
