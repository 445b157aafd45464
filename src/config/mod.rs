//! The configuration file (TOML, default path [`DEFAULT_PATH`]).
//!
//! Each component owns its section, with its defaults and checks: `[connection_request]`
//! ([`crate::connreq::config`]), `[datamodel]` ([`crate::datamodel::config`]), `[transfer]` and
//! `[hooks]` ([`crate::transfer::config`]), `[storage]` and `[log]` ([`crate::sys::config`]);
//! `[acs]` and `[device]` are here. This module aggregates them, reads the TOML or UCI file,
//! and names the file and the line of an error.
//!
//! Every field is documented with its default beside it and in the embedded example
//! (`src/cwmpd.toml`, used as is when no config file exists). Values the ACS sets through
//! `ManagementServer.*` override these and persist in the store; FactoryReset returns to them.
//! Unknown keys are errors (a misspelt key must not be silently ignored); errors name the file and
//! the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::toml_read::{Item, Table};
use crate::toml_write::Node;

pub use crate::connreq::config::{ConnectionRequest, Stun};
pub use crate::datamodel::config::Datamodel;
pub use crate::sys::config::{Log, Storage};
pub use crate::transfer::config::{Hooks, ResolvedHooks, Transfer};

/// Where the daemon looks for its config when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/cwmpd/cwmpd.toml";

/// The UCI form of the config on OpenWrt, used when [`DEFAULT_PATH`] does not exist.
pub const UCI_PATH: &str = "/etc/config/cwmpd";

/// The largest config file read; a bigger one (or an endless one such as `/dev/zero`) is an
/// error naming the file. The embedded default is about 7 KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The embedded default configuration (also the documented example).
pub const EMBEDDED: &str = include_str!("../cwmpd.toml");

/// The whole configuration.
#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Config {
    pub acs: Acs,
    pub device: Device,
    pub connection_request: ConnectionRequest,
    pub stun: Stun,
    pub storage: Storage,
    pub datamodel: Datamodel,
    pub transfer: Transfer,
    pub hooks: Hooks,
    pub log: Log,
}

crate::from_toml_struct!(Config {
    acs,
    device,
    connection_request,
    stun,
    storage,
    datamodel,
    transfer,
    hooks,
    log,
});

/// `[acs]`: how to reach the ACS (`ManagementServer.*`).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Acs {
    /// ACS URL (`ManagementServer.URL`). Default: empty (the agent does nothing until set).
    pub url: String,
    /// User name for the ACS (`ManagementServer.Username`). Default: empty.
    pub username: String,
    /// Password for the ACS (`ManagementServer.Password`). Default: empty.
    pub password: String,
    /// PEM file of CA certificates to verify the ACS. Default: the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS. Default: none.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`. Default: none.
    pub client_key: Option<PathBuf>,
    /// Answer a Basic challenge over plain http (the ACS, or a file server of a Download or
    /// Upload), which sends the password in clear text. Default: false: over http only Digest
    /// is answered, so an on-path attacker cannot downgrade Digest to Basic to read it.
    pub allow_basic_over_http: bool,
    /// `ManagementServer.PeriodicInformEnable`. Default: true.
    pub periodic_inform_enable: bool,
    /// `ManagementServer.PeriodicInformInterval`, seconds (≥ 1). Default: 86400.
    pub periodic_inform_interval: u32,
    /// `ManagementServer.PeriodicInformTime` (xsd:dateTime phase reference). Default: unknown
    /// time `0001-01-01T00:00:00Z` (no alignment).
    pub periodic_inform_time: String,
    /// `ManagementServer.HeartbeatPolicy.Enable` (CWMP 1.4, TR-181 only). Default: false.
    pub heartbeat_enable: bool,
    /// `ManagementServer.HeartbeatPolicy.ReportingInterval`, seconds (≥ 30). Default: 3600.
    pub heartbeat_interval: u32,
    /// `ManagementServer.HeartbeatPolicy.InitiationTime` (xsd:dateTime phase reference).
    /// Default: unknown time (a random phase, chosen at each start).
    pub heartbeat_time: String,
    /// `ManagementServer.CWMPRetryMinimumWaitInterval`, seconds. Default: 5.
    pub retry_minimum_wait_interval: u32,
    /// `ManagementServer.CWMPRetryIntervalMultiplier` (thousandths). Default: 2000.
    pub retry_interval_multiplier: u32,
    /// Seconds to wait for each connect, send and reply. Default: 30.
    pub timeout: u32,
    /// Most seconds one session may last, from its first connect to its end, however the ACS
    /// paces it (an endless stream of requests, each answer just inside `timeout`): then it
    /// ends as a failed session (§3.2.1.1 retry) and the loop goes on with periodic Informs
    /// and Connection Requests. Default: 600, twice a full GenieACS discovery (about 250
    /// exchanges, 1 MB up) over a 64 kbit/s link with 600 ms round trips. 1–86400.
    pub session_limit: u32,
    /// Highest CWMP version to offer: "1.0" … "1.4". Default: "1.4".
    pub cwmp_version: String,
    /// ACS discovery by DHCP (TR-069 §3.1): "auto" uses the ACS URL a DHCP server gives
    /// (DHCPv4 option 43, DHCPv6 option 17) while ManagementServer.URL is empty or DHCP's,
    /// "always" lets DHCP win over a URL set otherwise, "off" ignores it. Default: "auto".
    pub dhcp_discovery: String,
}

crate::from_toml_struct!(Acs {
    url,
    username,
    password,
    ca_file,
    client_cert,
    client_key,
    allow_basic_over_http,
    periodic_inform_enable,
    periodic_inform_interval,
    periodic_inform_time,
    heartbeat_enable,
    heartbeat_interval,
    heartbeat_time,
    retry_minimum_wait_interval,
    retry_interval_multiplier,
    timeout,
    session_limit,
    cwmp_version,
    dhcp_discovery,
});

impl Acs {
    /// The TLS settings of the ACS connection, which file transfers use too (§3.4.3).
    pub fn tls(&self) -> crate::http::tls::TlsSettings {
        crate::http::tls::TlsSettings {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

impl Default for Acs {
    fn default() -> Self {
        Acs {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            allow_basic_over_http: false,
            periodic_inform_enable: true,
            periodic_inform_interval: 86400,
            periodic_inform_time: "0001-01-01T00:00:00Z".into(),
            heartbeat_enable: false,
            heartbeat_interval: 3600,
            heartbeat_time: "0001-01-01T00:00:00Z".into(),
            retry_minimum_wait_interval: 5,
            retry_interval_multiplier: 2000,
            timeout: 30,
            session_limit: 600,
            cwmp_version: "1.4".into(),
            dhcp_discovery: "auto".into(),
        }
    }
}

/// `[device]`: identity (`DeviceInfo.*`, the Inform's DeviceId) and the data model.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Device {
    /// `DeviceInfo.Manufacturer`. Default: "cwmpd".
    pub manufacturer: String,
    /// `DeviceInfo.ManufacturerOUI`: six upper-case hex digits. Default: "000000".
    pub oui: String,
    /// `DeviceInfo.ProductClass`. Default: "Router".
    pub product_class: String,
    /// `DeviceInfo.SerialNumber`. Default: empty, meaning the MAC address of the first network
    /// interface (upper-case hex, no separators), else the host name.
    pub serial_number: String,
    /// `DeviceInfo.HardwareVersion`. Default: empty.
    pub hardware_version: String,
    /// `DeviceInfo.SoftwareVersion`. Default: this agent's version.
    pub software_version: String,
    /// `DeviceInfo.ModelName`. Default: "Router".
    pub model_name: String,
    /// `DeviceInfo.Description`. Default: "cwmpd TR-069 CPE".
    pub description: String,
    /// `DeviceInfo.ProvisioningCode` before the ACS sets one. Default: empty.
    pub provisioning_code: String,
    /// The root data model: "tr181" (`Device.`) or "tr098" (`InternetGatewayDevice.`).
    /// Default: "tr181".
    pub data_model: String,
}

crate::from_toml_struct!(Device {
    manufacturer,
    oui,
    product_class,
    serial_number,
    hardware_version,
    software_version,
    model_name,
    description,
    provisioning_code,
    data_model,
});

impl Default for Device {
    fn default() -> Self {
        Device {
            manufacturer: "cwmpd".into(),
            oui: "000000".into(),
            product_class: "Router".into(),
            serial_number: String::new(),
            hardware_version: String::new(),
            software_version: env!("CARGO_PKG_VERSION").into(),
            model_name: "Router".into(),
            description: "cwmpd TR-069 CPE".into(),
            provisioning_code: String::new(),
            data_model: "tr181".into(),
        }
    }
}

/// A config error: the file, the line when known, and what is wrong (the same shape as a data
/// model file's error).
pub type ConfigError = crate::datamodel::schema::LoadError;

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let name = path.display().to_string();
        let err = |message: String| ConfigError {
            file: name.clone(),
            line: None,
            message,
        };
        // Bounded: `-c /dev/zero` (or any endless file) is refused, never read to the end.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| err(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(err(format!(
                "larger than {} KiB: not a config file",
                MAX_CONFIG_BYTES >> 10
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            err(format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        if looks_like_uci(&text) {
            let mut cfg = Config::parse_uci(&text, &name)?;
            // The data model binds ManagementServer to this package when it is the one the uci
            // backend reads (`<uci_config>/cwmpd`).
            let dir = cfg
                .datamodel
                .uci_config
                .clone()
                .unwrap_or_else(|| cfg.datamodel.root.join("etc/config"));
            cfg.datamodel.cwmpd_uci = path.file_name().is_some_and(|f| f == "cwmpd")
                && path.parent().and_then(|p| p.canonicalize().ok()) == dir.canonicalize().ok();
            return Ok(cfg);
        }
        Config::parse(&text, &name)
    }

    /// The embedded default configuration.
    pub fn embedded() -> Config {
        // safety: the embedded file is checked by a unit test.
        Config::parse(EMBEDDED, "embedded default config").expect("embedded config is valid")
    }

    /// Parses and validates a UCI config file (`/etc/config/cwmpd`): each section's type is a
    /// table of the TOML config (`config acs` is `[acs]`, `config reload` is
    /// `[datamodel.reload]`), each option a key, typed as the TOML key is (booleans `1`/`0`,
    /// `true`/`false`, `yes`/`no`, `on`/`off`); `list vendor 'X <OUI> <name>=COMMAND'` in
    /// `config hooks` fills `[hooks.vendor]`. An empty option of a key without a default is left
    /// out. Errors name the file and the line.
    pub fn parse_uci(text: &str, name: &str) -> Result<Config, ConfigError> {
        let err = |line: Option<usize>, message: String| ConfigError {
            file: name.to_string(),
            line,
            message,
        };
        let sections = crate::uci::parse(text).map_err(|(l, m)| err(Some(l), m))?;
        let embedded =
            crate::toml_read::parse(EMBEDDED).map_err(|e| err(None, format!("internal: {e}")))?;
        let defaults =
            crate::toml_read::table(&embedded).map_err(|e| err(None, format!("internal: {e}")))?;
        let mut root: BTreeMap<String, Node> = BTreeMap::new();
        // "table.key" -> line, to name the line of a validation error.
        let mut lines: Vec<(String, usize)> = Vec::new();
        for s in &sections {
            let path: Vec<&str> = match s.ty.as_str() {
                "reload" => vec!["datamodel", "reload"],
                t => vec![t],
            };
            let mut default_table = Some(defaults);
            for p in &path {
                default_table = default_table
                    .and_then(|t| t.get(p))
                    .and_then(|v| v.get_ref().as_table());
            }
            if path.len() == 1 && !defaults.contains_key(path[0]) {
                return Err(err(
                    Some(s.line),
                    format!("unknown section type {:?}", s.ty),
                ));
            }
            let mut table = BTreeMap::new();
            for o in &s.options {
                let at = |m: String| err(Some(o.line), format!("{}.{}: {m}", s.ty, o.name));
                lines.push((format!("{}.{}", path.join("."), o.name), o.line));
                if s.ty == "hooks" && o.name == "vendor" {
                    let mut vendor = BTreeMap::new();
                    for v in &o.values {
                        let (ft, cmd) = v
                            .split_once('=')
                            .ok_or_else(|| at(format!("{v:?} is not FILETYPE=COMMAND")))?;
                        vendor.insert(ft.trim().to_string(), Node::String(cmd.to_string()));
                    }
                    table.insert("vendor".into(), Node::Table(vendor));
                    continue;
                }
                let kind = Config::uci_kind(s.ty.as_str(), &o.name, default_table);
                let one = |v: &str| -> Result<Node, ConfigError> {
                    Ok(match kind {
                        Some(Item::Boolean(_)) => {
                            Node::Boolean(match v.to_ascii_lowercase().as_str() {
                                "1" | "true" | "yes" | "on" | "enabled" => true,
                                "0" | "false" | "no" | "off" | "disabled" => false,
                                _ => return Err(at(format!("{v:?} is not a boolean (1/0)"))),
                            })
                        }
                        Some(Item::Integer(..)) => Node::Integer(
                            v.trim()
                                .parse()
                                .map_err(|_| at(format!("{v:?} is not a number")))?,
                        ),
                        _ => Node::String(v.to_string()),
                    })
                };
                let value = if o.list || matches!(kind, Some(Item::Array(_))) {
                    Node::Array(o.values.iter().map(|v| one(v)).collect::<Result<_, _>>()?)
                } else {
                    let v = o.values.first().map(String::as_str).unwrap_or("");
                    if v.is_empty() && kind.is_none() {
                        continue;
                    }
                    one(v)?
                };
                table.insert(o.name.clone(), value);
            }
            // Insert at the path, merging with a table already there (two sections of a type).
            let mut at = &mut root;
            for p in &path {
                at = match at
                    .entry(p.to_string())
                    .or_insert_with(|| Node::Table(BTreeMap::new()))
                {
                    Node::Table(t) => t,
                    _ => return Err(err(Some(s.line), format!("{} given twice", s.ty))),
                };
            }
            for (k, v) in table {
                if at.insert(k.clone(), v).is_some() {
                    return Err(err(Some(s.line), format!("{}.{k} given twice", s.ty)));
                }
            }
        }
        let line_of = |key: &str| {
            lines
                .iter()
                .find(|(k, _)| k == key || k.ends_with(&format!(".{key}")))
                .map(|(_, l)| *l)
        };
        // Through TOML text, read as the TOML form is (`toml_read`).
        let cfg: Config = crate::toml_read::from_str(&crate::toml_write::to_string(&root))
            .map_err(|e| {
                let message = e.message;
                // "unknown field `x`": point at the option.
                let line = message.split('`').nth(1).and_then(&line_of);
                err(line, message)
            })?;
        cfg.validate()
            .map_err(|(key, message)| err(line_of(key), format!("{key}: {message}")))?;
        Ok(cfg)
    }

    /// The TOML type the UCI reader gives option `key` of a section: its default's in the
    /// embedded config (`defaults`: the section's table there), which has every key with a
    /// default (a unit test compares it with the defaults serialized), and boolean for the
    /// optional booleans, which have no default (so `option firmware_reboots 1` is not read as
    /// the string "1" and refused as not a boolean). Optional text keys have none: an empty
    /// option of one is left out (the platform's default applies), not taken as "".
    fn uci_kind<'a>(
        section: &str,
        key: &str,
        defaults: Option<&'a Table<'static>>,
    ) -> Option<&'a Item<'static>> {
        const FALSE: Item<'static> = Item::Boolean(false);
        if section == "hooks" && Config::OPTIONAL_HOOK_BOOLS.contains(&key) {
            return Some(&FALSE);
        }
        defaults?.get(key).map(|v| v.get_ref())
    }

    /// The `[hooks]` booleans without a default (`None`: the platform's), so absent from the
    /// embedded config: [`Config::uci_kind`] types them.
    const OPTIONAL_HOOK_BOOLS: [&'static str; 3] =
        ["firmware_reboots", "web_content_reboots", "config_reboots"];

    /// Parses and validates config text; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let cfg: Config = crate::toml_read::from_str(text).map_err(|e| ConfigError {
            file: name.to_string(),
            line: e.offset.map(|o| line_of(text, o)),
            message: e.message,
        })?;
        cfg.validate().map_err(|(key, message)| ConfigError {
            file: name.to_string(),
            line: find_key_line(text, key),
            message: format!("{key}: {message}"),
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let a = &self.acs;
        let http = a.url.starts_with("http://") || a.url.starts_with("https://");
        if !a.url.is_empty() && !http {
            return Err((
                "url",
                format!("{:?} is not an http:// or https:// URL", a.url),
            ));
        }
        if a.periodic_inform_interval == 0 {
            return Err(("periodic_inform_interval", "must be at least 1".into()));
        }
        if !crate::cwmp::time::is_datetime(&a.periodic_inform_time) {
            return Err(("periodic_inform_time", "must be an xsd:dateTime".into()));
        }
        if !["auto", "always", "off"].contains(&a.dhcp_discovery.as_str()) {
            return Err((
                "dhcp_discovery",
                "must be \"auto\", \"always\" or \"off\"".into(),
            ));
        }
        if a.heartbeat_interval < 30 {
            return Err(("heartbeat_interval", "must be at least 30".into()));
        }
        if !crate::cwmp::time::is_datetime(&a.heartbeat_time) {
            return Err(("heartbeat_time", "must be an xsd:dateTime".into()));
        }
        if !(1..=65535).contains(&a.retry_minimum_wait_interval) {
            return Err(("retry_minimum_wait_interval", "must be 1–65535".into()));
        }
        if !(1000..=65535).contains(&a.retry_interval_multiplier) {
            return Err(("retry_interval_multiplier", "must be 1000–65535".into()));
        }
        if a.timeout == 0 {
            return Err(("timeout", "must be at least 1 second".into()));
        }
        if !(1..=86400).contains(&a.session_limit) {
            return Err(("session_limit", "must be 1–86400 seconds".into()));
        }
        if crate::cwmp::version::CwmpVersion::parse(&a.cwmp_version).is_none() {
            return Err((
                "cwmp_version",
                "must be one of 1.0, 1.1, 1.2, 1.3, 1.4".into(),
            ));
        }
        if !a.tls().is_paired() {
            return Err((
                "client_cert",
                "client_cert and client_key go together".into(),
            ));
        }
        let oui = &self.device.oui;
        let upper_hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
        if oui.len() != 6 || !oui.bytes().all(upper_hex) {
            return Err(("oui", "must be six upper-case hex digits".into()));
        }
        if self.model().is_none() {
            return Err(("data_model", "must be \"tr181\" or \"tr098\"".into()));
        }
        self.connection_request.validate()?;
        self.stun.validate()?;
        self.log.validate()?;
        self.datamodel.validate()?;
        self.transfer.validate()?;
        self.hooks.validate()?;
        Ok(())
    }

    /// The root data model chosen.
    pub fn model(&self) -> Option<crate::datamodel::schema::Model> {
        use crate::datamodel::schema::Model;
        match self.device.data_model.as_str() {
            "tr181" => Some(Model::Tr181),
            "tr098" => Some(Model::Tr098),
            _ => None,
        }
    }

    /// The log level filter.
    pub fn log_level(&self) -> log::LevelFilter {
        self.log.level_filter()
    }

    /// The defaults of agent-owned data model values (the `agent` backend's keys), from this
    /// config. `serial_number` must already be resolved by the caller when empty.
    pub fn agent_defaults(&self) -> BTreeMap<String, String> {
        let a = &self.acs;
        let d = &self.device;
        let c = &self.connection_request;
        let st = &self.stun;
        let methods = if c.udp == "off" {
            "HTTP,XMPP"
        } else {
            "HTTP,STUN,XMPP"
        };
        let pairs: [(&str, String); 34] = [
            ("heartbeat.enable", a.heartbeat_enable.to_string()),
            (
                "heartbeat.reporting_interval",
                a.heartbeat_interval.to_string(),
            ),
            ("heartbeat.initiation_time", a.heartbeat_time.clone()),
            ("connection_request.methods", methods.to_string()),
            ("stun.enable", st.enable.to_string()),
            ("stun.server_address", st.server_address.clone()),
            ("stun.server_port", st.server_port.to_string()),
            ("stun.username", st.username.clone()),
            ("stun.password", st.password.clone()),
            (
                "stun.maximum_keepalive_period",
                st.maximum_keepalive_period.to_string(),
            ),
            (
                "stun.minimum_keepalive_period",
                st.minimum_keepalive_period.to_string(),
            ),
            ("acs.url", a.url.clone()),
            ("acs.username", a.username.clone()),
            ("acs.password", a.password.clone()),
            (
                "acs.periodic_inform_enable",
                a.periodic_inform_enable.to_string(),
            ),
            (
                "acs.periodic_inform_interval",
                a.periodic_inform_interval.to_string(),
            ),
            ("acs.periodic_inform_time", a.periodic_inform_time.clone()),
            (
                "acs.retry_minimum_wait_interval",
                a.retry_minimum_wait_interval.to_string(),
            ),
            (
                "acs.retry_interval_multiplier",
                a.retry_interval_multiplier.to_string(),
            ),
            ("connection_request.url", c.url.clone()),
            ("connection_request.enable", c.enable.to_string()),
            ("connection_request.username", c.username.clone()),
            ("connection_request.password", c.password.clone()),
            ("device.manufacturer", d.manufacturer.clone()),
            ("device.oui", d.oui.clone()),
            ("device.product_class", d.product_class.clone()),
            ("device.serial_number", d.serial_number.clone()),
            ("device.hardware_version", d.hardware_version.clone()),
            ("device.software_version", d.software_version.clone()),
            ("device.model_name", d.model_name.clone()),
            ("device.description", d.description.clone()),
            ("device.provisioning_code", d.provisioning_code.clone()),
            ("parameter_key", String::new()),
            ("acs.enable_cwmp", "true".to_string()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// A UCI file starts (after comments and blank lines) with `package` or `config`; TOML cannot.
fn looks_like_uci(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("config ") || l == "config" || l.starts_with("package "))
}

/// The line where `key =` is written, for validation errors. A `section.key` is looked for
/// inside its `[section]` only.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let (section, key) = match key.split_once('.') {
        Some((s, k)) => (Some(s), k),
        None => (None, key),
    };
    let mut inside = section.is_none();
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            if let Some(s) = section {
                if l.starts_with('[') {
                    inside = l.trim_end() == format!("[{s}]");
                    return false;
                }
            }
            inside
                && l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uci_config_maps_onto_the_same_settings() {
        let text = "config acs 'acs'\n\
                    \toption url 'https://acs.example/cwmp'\n\
                    \toption periodic_inform_enable 'no'\n\
                    \toption periodic_inform_interval '600'\n\
                    \toption ca_file ''\n\
                    config connection_request\n\
                    \toption allow_basic 1\n\
                    config hooks 'hooks'\n\
                    \toption reboot '/sbin/reboot'\n\
                    \tlist vendor 'X 00D0F8 Voice=/bin/voice {file}'\n\
                    config reload 'reload'\n\
                    \toption network ''\n\
                    config log 'log'\n\
                    \toption level 'debug'\n";
        assert!(looks_like_uci(text));
        let c = Config::parse_uci(text, "/etc/config/cwmpd").unwrap();
        assert_eq!(c.acs.url, "https://acs.example/cwmp");
        assert!(!c.acs.periodic_inform_enable);
        assert_eq!(c.acs.periodic_inform_interval, 600);
        assert_eq!(
            c.acs.ca_file, None,
            "an empty option without a default is left out"
        );
        assert!(c.connection_request.allow_basic);
        assert_eq!(c.hooks.reboot.as_deref(), Some("/sbin/reboot"));
        assert_eq!(
            c.hooks.vendor.get("X 00D0F8 Voice").map(String::as_str),
            Some("/bin/voice {file}")
        );
        assert_eq!(
            c.datamodel.reload.get("network").map(String::as_str),
            Some("")
        );
        assert_eq!(c.log.level, "debug");
        // Defaults for what the file leaves out.
        assert_eq!(c.connection_request.listen, "0.0.0.0:7547");
        for (bad, line, what) in [
            (
                "config acs\n\toption periodic_inform_interval 'often'\n",
                2,
                "not a number",
            ),
            (
                "config acs\n\toption periodic_inform_enable 'maybe'\n",
                2,
                "not a boolean",
            ),
            (
                "config acs\n\toption periodic_inform_interval '0'\n",
                2,
                "at least 1",
            ),
            ("config acs\n\n\toption urll 'x'\n", 3, "unknown field"),
            ("config nonsense\n", 1, "unknown section"),
        ] {
            let e = Config::parse_uci(bad, "f").unwrap_err();
            assert_eq!(e.line, Some(line), "{bad:?}: {e}");
            assert!(e.message.contains(what), "{bad:?}: {e}");
        }
        assert!(!looks_like_uci(EMBEDDED));
    }

    #[test]
    fn uci_reboots_options_are_booleans() {
        for key in ["firmware_reboots", "web_content_reboots", "config_reboots"] {
            for (text, want) in [("1", true), ("0", false), ("yes", true), ("off", false)] {
                let uci = format!("config hooks 'hooks'\n\toption {key} '{text}'\n");
                let c = Config::parse_uci(&uci, "/etc/config/cwmpd")
                    .unwrap_or_else(|e| panic!("{key} {text}: {e}"));
                let got = match key {
                    "firmware_reboots" => c.hooks.firmware_reboots,
                    "web_content_reboots" => c.hooks.web_content_reboots,
                    _ => c.hooks.config_reboots,
                };
                assert_eq!(got, Some(want), "{key} {text}");
            }
            let uci = format!("config hooks\n\toption {key} 'maybe'\n");
            let e = Config::parse_uci(&uci, "f").unwrap_err();
            assert_eq!(e.line, Some(2), "{e}");
            assert!(e.message.contains("not a boolean"), "{e}");
        }
        // Left out, they take the platform's default; an empty text hook is still left out.
        let c = Config::parse_uci("config hooks\n\toption firmware ''\n", "f").unwrap();
        assert_eq!((c.hooks.firmware, c.hooks.firmware_reboots), (None, None));
    }

    #[test]
    fn a_config_file_is_read_up_to_a_bound() {
        let dir = std::env::temp_dir().join(format!("cwmpd-cfg-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.toml");
        let mut text = String::from("[acs]\n");
        while (text.len() as u64) <= MAX_CONFIG_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&big, &text).unwrap();
        let e = Config::load(&big).unwrap_err();
        assert_eq!(e.file, big.display().to_string());
        assert!(e.message.contains("larger than 1024 KiB"), "{e}");
        let bytes = dir.join("bytes.toml");
        std::fs::write(&bytes, b"[acs]\nurl = \"\xff\"\n").unwrap();
        let e = Config::load(&bytes).unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        // An endless file stops at the bound.
        let e = Config::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().starts_with("/dev/zero: larger than"), "{e}");
    }

    /// The UCI reader types each option by [`Config::uci_kind`]: the embedded config must
    /// hold every key the defaults serialize, each of the same TOML type (`Serialize` on the
    /// config types exists in tests only, for this check).
    #[test]
    fn uci_kinds_cover_every_key_of_the_defaults() {
        fn walk(
            path: &str,
            section: &str,
            want: &toml::Table,
            have: Option<&Table<'static>>,
            missing: &mut Vec<String>,
        ) {
            for (k, v) in want {
                let key = format!("{path}{k}");
                let found = Config::uci_kind(section, k, have);
                match (v, found) {
                    (toml::Value::Table(w), Some(Item::Table(h))) => {
                        walk(&format!("{key}."), k, w, Some(h), missing)
                    }
                    // An empty table (hooks.vendor) is typed by the reader itself.
                    (toml::Value::Table(w), None) if w.is_empty() => {}
                    (_, Some(h)) if h.type_str() == v.type_str() => {}
                    (_, h) => missing.push(format!("{key}: {} vs {:?}", v.type_str(), h)),
                }
            }
        }
        let mut c = Config::default();
        c.hooks.firmware_reboots = Some(false);
        c.hooks.web_content_reboots = Some(false);
        c.hooks.config_reboots = Some(false);
        let want: toml::Table = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        let embedded = crate::toml_read::parse(EMBEDDED).unwrap();
        let have = crate::toml_read::table(&embedded).unwrap();
        let mut missing = Vec::new();
        walk("", "", &want, Some(have), &mut missing);
        assert!(missing.is_empty(), "{missing:?}");
        assert!(want.len() >= 9);
    }

    #[test]
    fn embedded_config_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.acs.periodic_inform_interval, 86400);
        assert_eq!(c.connection_request.listen, "0.0.0.0:7547");
        assert!(c.model().is_some());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Config::parse("[acs]\nurl = \"ftp://x\"\n", "f.toml").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("f.toml:2: url:"), "{e}");
        let e = Config::parse("[acs]\n\nperiodc = 3\n", "g.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = Config::parse("[acs\n", "h.toml").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        let e = Config::parse("[device]\noui = \"00d0f8\"\n", "i.toml").unwrap_err();
        assert!(e.to_string().contains("oui"), "{e}");
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let c = Config::parse("[acs]\nurl = \"https://acs.example:7548/\"\n", "x").unwrap();
        assert_eq!(c.acs.retry_minimum_wait_interval, 5);
        assert_eq!(c.acs.retry_interval_multiplier, 2000);
        assert_eq!(c.storage.dir, PathBuf::from("/etc/cwmpd/state"));
        assert_eq!(c.agent_defaults()["acs.url"], "https://acs.example:7548/");
    }
}
