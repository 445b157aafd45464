//! The configuration file (TOML, default path [`DEFAULT_PATH`]).
//!
//! Every field is documented with its default here and in the embedded example
//! (`src/cwmpd.toml`, used as is when no config file exists). Values the ACS sets through
//! `ManagementServer.*` override these and persist in the store; FactoryReset returns to them.
//! Unknown keys are errors (a misspelt key must not be silently ignored); errors name the file and
//! the line.

pub mod uci;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub acs: Acs,
    #[serde(default)]
    pub device: Device,
    #[serde(default)]
    pub connection_request: ConnectionRequest,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub datamodel: Datamodel,
    #[serde(default)]
    pub transfer: Transfer,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub log: Log,
}

/// `[acs]`: how to reach the ACS (`ManagementServer.*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
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
            retry_minimum_wait_interval: 5,
            retry_interval_multiplier: 2000,
            timeout: 30,
            session_limit: 600,
            cwmp_version: "1.4".into(),
        }
    }
}

/// `[device]`: identity (`DeviceInfo.*`, the Inform's DeviceId) and the data model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
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

/// `[connection_request]`: the listener the ACS calls (TR-069 §3.2.2).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionRequest {
    /// `ManagementServer.HTTPConnectionRequestEnable`'s default: listen at all. Default: true.
    pub enable: bool,
    /// Address to listen on; port 0 takes any free port. Default: "0.0.0.0:7547".
    pub listen: String,
    /// `ManagementServer.ConnectionRequestUsername`. Default: empty.
    pub username: String,
    /// `ManagementServer.ConnectionRequestPassword`; while it is empty nothing listens (the
    /// ACS usually sets it in its first session). Default: empty.
    pub password: String,
    /// A complete `http://` URL to report instead of a derived one (a port forward in front of
    /// the CPE); its path is the one served, its host the one checked. Default: empty.
    pub url: String,
    /// Where the URL's host comes from: "acs" (the local address used to reach the ACS),
    /// "interface:NAME" (that interface's address), or a fixed host name or address.
    /// Default: "acs".
    pub host: String,
    /// The URL's path; empty means random, generated once and kept in the store.
    /// Default: empty.
    pub path: String,
    /// Bind only the URL's address (rebound when it changes) rather than `listen`'s.
    /// Default: false.
    pub bind_url_address: bool,
    /// Requests must name the URL's host in `Host` (a DNS-rebinding defence). Default: true.
    pub check_host: bool,
    /// Digest realm (printable, without `"` or `\`: it goes into a header). Default: "cwmpd".
    pub realm: String,
    /// Digest algorithm challenged: "MD5", "MD5-sess", "SHA-256" or "SHA-256-sess".
    /// Default: "MD5" (many ACSes compute MD5 whatever the challenge says).
    pub digest_algorithm: String,
    /// Accept HTTP Basic too (old ACSes; the password crosses the network in clear).
    /// Default: false.
    pub allow_basic: bool,
    /// Seconds a nonce is valid; then `stale=true`. Default: 30.
    pub nonce_lifetime: u32,
    /// Requests that start a session: this many back to back… Default: 3.
    pub rate_burst: u32,
    /// …then one more per this many seconds (0: no limit); beyond, 503. Default: 5.
    pub rate_interval: u32,
    /// Wrong answers a source (an IPv4 address, an IPv6 /64) may give back to back…
    /// Default: 20.
    pub auth_fail_burst: u32,
    /// …then one more per this many seconds; meanwhile its requests get 503 unverified
    /// (0: no throttling). Default: 10.
    pub auth_fail_interval: u32,
    /// Seconds between two summaries of the rejected requests in the log. Default: 60.
    pub summary_interval: u32,
    /// Connections (each one thread) served at once. Default: 8.
    pub max_connections: u32,
    /// Bytes of request line and headers. Default: 8192.
    pub max_header_bytes: u32,
    /// Seconds a connection has to send a whole request head (and keep-alive idle time).
    /// Default: 5.
    pub request_timeout: u32,
    /// Seconds between re-evaluations of the URL's address. Default: 10.
    pub check_interval: u32,
}

impl Default for ConnectionRequest {
    fn default() -> Self {
        ConnectionRequest {
            enable: true,
            listen: "0.0.0.0:7547".into(),
            username: String::new(),
            password: String::new(),
            url: String::new(),
            host: "acs".into(),
            path: String::new(),
            bind_url_address: false,
            check_host: true,
            realm: "cwmpd".into(),
            digest_algorithm: "MD5".into(),
            allow_basic: false,
            nonce_lifetime: 30,
            rate_burst: 3,
            rate_interval: 5,
            auth_fail_burst: 20,
            auth_fail_interval: 10,
            summary_interval: 60,
            max_connections: 8,
            max_header_bytes: 8192,
            request_timeout: 5,
            check_interval: 10,
        }
    }
}

impl ConnectionRequest {
    /// Checks the fields a running listener relies on.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        use crate::connreq::url;
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "connection_request.listen",
                "must be an address:port like 0.0.0.0:7547".into(),
            ));
        }
        if !self.url.is_empty() && url::split_url(&self.url).is_none() {
            return Err((
                "connection_request.url",
                format!("{:?} is not an http://host[:port]/path URL", self.url),
            ));
        }
        if url::HostSource::parse(&self.host).is_none() {
            return Err((
                "connection_request.host",
                "must be \"acs\", \"interface:NAME\" or a host name or address".into(),
            ));
        }
        let path_ok = self.path.is_empty()
            || (self.path.starts_with('/')
                && self.path.len() <= 256
                && self
                    .path
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#'));
        if !path_ok {
            return Err((
                "connection_request.path",
                "must start with / and hold no spaces, ? or #".into(),
            ));
        }
        if crate::http::auth::Algorithm::parse(&self.digest_algorithm).is_none() {
            return Err((
                "connection_request.digest_algorithm",
                "must be MD5, MD5-sess, SHA-256 or SHA-256-sess".into(),
            ));
        }
        // It goes into WWW-Authenticate: a CR or LF would start another header.
        if self.realm.is_empty()
            || self.realm.contains(['"', '\\'])
            || self.realm.chars().any(char::is_control)
        {
            return Err((
                "connection_request.realm",
                "must be non-empty, without \", \\ or control characters (CR, LF, tab…)".into(),
            ));
        }
        let ranges: [(&'static str, u32, u32, u32); 10] = [
            (
                "connection_request.nonce_lifetime",
                self.nonce_lifetime,
                1,
                3600,
            ),
            (
                "connection_request.rate_burst",
                self.rate_burst,
                1,
                1_000_000,
            ),
            (
                "connection_request.rate_interval",
                self.rate_interval,
                0,
                86400,
            ),
            (
                "connection_request.auth_fail_burst",
                self.auth_fail_burst,
                1,
                1_000_000,
            ),
            (
                "connection_request.auth_fail_interval",
                self.auth_fail_interval,
                0,
                86400,
            ),
            (
                "connection_request.summary_interval",
                self.summary_interval,
                1,
                86400,
            ),
            (
                "connection_request.max_connections",
                self.max_connections,
                1,
                256,
            ),
            (
                "connection_request.max_header_bytes",
                self.max_header_bytes,
                1024,
                65536,
            ),
            (
                "connection_request.request_timeout",
                self.request_timeout,
                1,
                300,
            ),
            (
                "connection_request.check_interval",
                self.check_interval,
                1,
                86400,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err((key, format!("must be {lo}–{hi}")));
            }
        }
        Ok(())
    }
}

/// `[storage]`: where the state that must survive a power cut lives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Directory of the crash-safe state files; must be on persistent storage (on OpenWrt under
    /// /etc, which survives reboots; /var is RAM). Default: "/etc/cwmpd/state".
    pub dir: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            dir: PathBuf::from("/etc/cwmpd/state"),
        }
    }
}

/// `[datamodel]`: where the data model finds the system (the backends' paths).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Datamodel {
    /// "auto" (OpenWrt when `<root>/etc/openwrt_release` exists), "openwrt" or "generic": with
    /// OpenWrt the built-in bindings to uci, /sys and /proc are loaded. Default: "auto".
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
    #[serde(skip)]
    pub cwmpd_uci: bool,
}

impl Default for Datamodel {
    fn default() -> Self {
        let p = crate::datamodel::backend::Platform::default();
        Datamodel {
            platform: "auto".into(),
            root: p.root,
            dir: PathBuf::from("/etc/cwmpd/datamodel.d"),
            uci: p.uci_bin,
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
        match self.platform.as_str() {
            "openwrt" => true,
            "generic" => false,
            _ => self.root.join("etc/openwrt_release").exists(),
        }
    }

    /// The backends' view of the system.
    pub fn platform(&self) -> crate::datamodel::backend::Platform {
        crate::datamodel::backend::Platform {
            root: self.root.clone(),
            uci_bin: self.uci.clone(),
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
            self.openwrt(),
            self.cwmpd_uci,
            Some(&self.dir),
        )
    }
}

/// `[transfer]`: how Download and Upload files are moved (TR-069 §3.4.3, §A.3.2.8, §A.3.2.9).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
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

/// `[hooks]`: the OS actions behind Download, Upload, Reboot and FactoryReset (shell command
/// lines). A key left out takes the platform's default ([`Hooks::resolve`]); an empty command
/// means the action is not supported (and its RPC is not listed by GetRPCMethods).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
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

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// "error", "warn", "info", "debug" or "trace". Default: "info".
    pub level: String,
    /// "auto" (syslog on OpenWrt when `/dev/log` exists, else stderr), "syslog" or "stderr".
    /// Default: "auto".
    pub target: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            target: "auto".into(),
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
        let sections = crate::config::uci::parse(text).map_err(|(l, m)| err(Some(l), m))?;
        let defaults = toml::Table::try_from(Config::uci_types())
            .map_err(|e| err(None, format!("internal: {e}")))?;
        let mut root = toml::Table::new();
        // "table.key" -> line, to name the line of a validation error.
        let mut lines: Vec<(String, usize)> = Vec::new();
        for s in &sections {
            let path: Vec<&str> = match s.ty.as_str() {
                "reload" => vec!["datamodel", "reload"],
                t => vec![t],
            };
            let mut default_table = Some(&defaults);
            for p in &path {
                default_table = default_table
                    .and_then(|t| t.get(*p))
                    .and_then(toml::Value::as_table);
            }
            if path.len() == 1 && !defaults.contains_key(path[0]) {
                return Err(err(
                    Some(s.line),
                    format!("unknown section type {:?}", s.ty),
                ));
            }
            let mut table = toml::Table::new();
            for o in &s.options {
                let at = |m: String| err(Some(o.line), format!("{}.{}: {m}", s.ty, o.name));
                lines.push((format!("{}.{}", path.join("."), o.name), o.line));
                if s.ty == "hooks" && o.name == "vendor" {
                    let mut vendor = toml::Table::new();
                    for v in &o.values {
                        let (ft, cmd) = v
                            .split_once('=')
                            .ok_or_else(|| at(format!("{v:?} is not FILETYPE=COMMAND")))?;
                        vendor.insert(ft.trim().to_string(), toml::Value::String(cmd.to_string()));
                    }
                    table.insert("vendor".into(), toml::Value::Table(vendor));
                    continue;
                }
                let kind = default_table.and_then(|t| t.get(&o.name));
                let one = |v: &str| -> Result<toml::Value, ConfigError> {
                    Ok(match kind {
                        Some(toml::Value::Boolean(_)) => {
                            toml::Value::Boolean(match v.to_ascii_lowercase().as_str() {
                                "1" | "true" | "yes" | "on" | "enabled" => true,
                                "0" | "false" | "no" | "off" | "disabled" => false,
                                _ => return Err(at(format!("{v:?} is not a boolean (1/0)"))),
                            })
                        }
                        Some(toml::Value::Integer(_)) => toml::Value::Integer(
                            v.trim()
                                .parse()
                                .map_err(|_| at(format!("{v:?} is not a number")))?,
                        ),
                        _ => toml::Value::String(v.to_string()),
                    })
                };
                let value = if o.list || matches!(kind, Some(toml::Value::Array(_))) {
                    toml::Value::Array(o.values.iter().map(|v| one(v)).collect::<Result<_, _>>()?)
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
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                {
                    toml::Value::Table(t) => t,
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
        let cfg: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| {
                let message = e.message().to_string();
                // "unknown field `x`": point at the option.
                let line = message.split('`').nth(1).and_then(&line_of);
                err(line, message)
            })?;
        cfg.validate()
            .map_err(|(key, message)| err(line_of(key), format!("{key}: {message}")))?;
        Ok(cfg)
    }

    /// The defaults, plus a value of the right type for each optional key that has a type other
    /// than text: the UCI reader types an option by its key's default, and a `None` is absent
    /// from the serialized defaults (so `option firmware_reboots 1` was read as the string "1"
    /// and refused as not a boolean). Optional text keys stay absent: an empty option of one is
    /// left out (the platform's default applies), not taken as "".
    fn uci_types() -> Config {
        let mut c = Config::default();
        c.hooks = Hooks {
            firmware_reboots: Some(false),
            web_content_reboots: Some(false),
            config_reboots: Some(false),
            ..c.hooks
        };
        c
    }

    /// Parses and validates config text; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError {
            file: name.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
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
        if a.client_cert.is_some() != a.client_key.is_some() {
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
        if !["auto", "syslog", "stderr"].contains(&self.log.target.as_str()) {
            return Err(("log.target", "must be auto, syslog or stderr".into()));
        }
        if log_level(&self.log.level).is_none() {
            return Err(("level", "must be error, warn, info, debug or trace".into()));
        }
        let d = &self.datamodel;
        if !["auto", "openwrt", "generic"].contains(&d.platform.as_str()) {
            return Err(("platform", "must be auto, openwrt or generic".into()));
        }
        if d.poll_interval == 0 {
            return Err(("poll_interval", "must be at least 1 second".into()));
        }
        if !(1..=3600).contains(&d.script_timeout) {
            return Err(("script_timeout", "must be 1–3600 seconds".into()));
        }
        let t = &self.transfer;
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
        for k in self.hooks.vendor.keys() {
            if !crate::transfer::FileType::is_vendor(k) {
                return Err((
                    "hooks.vendor",
                    format!("{k:?} is not a vendor FileType \"X <OUI> <name>\""),
                ));
            }
        }
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
        log_level(&self.log.level).unwrap_or(log::LevelFilter::Info)
    }

    /// The defaults of agent-owned data model values (the `agent` backend's keys), from this
    /// config. `serial_number` must already be resolved by the caller when empty.
    pub fn agent_defaults(&self) -> BTreeMap<String, String> {
        let a = &self.acs;
        let d = &self.device;
        let c = &self.connection_request;
        let pairs: [(&str, String); 23] = [
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

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// The line where `key =` is written, for validation errors. A `section.key` is looked for
/// inside its `[section]` only.
/// A UCI file starts (after comments and blank lines) with `package` or `config`; TOML cannot.
fn looks_like_uci(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("config ") || l == "config" || l.starts_with("package "))
}

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
