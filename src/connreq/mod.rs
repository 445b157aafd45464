//! The Connection Request (TR-069 §3.2.2): the ACS asks the CPE to open a session by an HTTP
//! GET to `ManagementServer.ConnectionRequestURL`.
//!
//! - [`http`]: the request head, parsed from bytes (pure).
//! - [`gate`]: what to answer: path, Host, Digest/Basic authentication, nonces, replay, rate
//!   limit, coalescing (pure: time and randomness are arguments).
//! - [`throttle`]: failed authentication throttled per source, in a table of fixed size.
//! - [`listener`]: the socket, its threads and their limits.
//! - [`url`]: how the URL is made (pure); the addresses come from [`crate::sys::os`].
//! - [`udp`]: the UDP Connection Request of TR-069 Annex G, parsed and validated (pure).
//! - [`udp_listener`]: the UDP port: its thread runs the STUN client of TR-111 Part 2
//!   ([`crate::stun`]) and admits UDP Connection Requests through the TCP listener's gate.
//!
//! [`ConnReq`] ties them together for the agent's loop: it keeps the URL right as the WAN
//! address moves (re-evaluated every `check_interval` and after every session), rebinds the
//! listener when it must, and follows what the ACS sets (credentials, enable). Nothing listens
//! while `ConnectionRequestPassword` is empty (the ACS sets it, or the config): no request can
//! start a session without a secret, and ConnectionRequestURL reads empty meanwhile.
//!
//! The URL's path is a secret too (the only one an ACS needs besides the credentials): it is
//! never logged; the log names the address and port.

pub mod config;
pub mod gate;
pub mod http;
pub mod listener;
pub mod throttle;
pub mod udp;
pub mod udp_listener;
pub mod url;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::http::auth::Algorithm;
use gate::{Gate, GateConfig};
use listener::{Limits, Listener, Phase};
use udp_listener::UdpListener;
use url::HostSource;

/// How long a resolved ACS address is used before it is looked up again.
const RESOLVE_TTL: Duration = Duration::from_secs(300);
/// How long after a failed look-up of the ACS name the next one is tried.
const RESOLVE_RETRY: Duration = Duration::from_secs(60);

/// What the agent's data model says, read at every loop turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `ManagementServer.HTTPConnectionRequestEnable` (and EnableCWMP): the TCP listener.
    pub enabled: bool,
    /// `ManagementServer.EnableCWMP`: UDP Connection Requests (HTTPConnectionRequestEnable is
    /// about HTTP only).
    pub cwmp_enabled: bool,
    pub username: String,
    pub password: String,
    /// `ManagementServer.URL`, for the "acs" host source.
    pub acs_url: String,
    /// `ManagementServer.STUN*`.
    pub stun: StunInputs,
}

/// `ManagementServer.STUN*` (TR-111 Part 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StunInputs {
    pub enable: bool,
    /// Empty: the ACS URL's host.
    pub server_address: String,
    /// 0: the default, 3478.
    pub server_port: u16,
    pub username: String,
    pub password: String,
    /// STUNMinimumKeepAlivePeriod, seconds.
    pub min_period: u32,
    /// STUNMaximumKeepAlivePeriod, seconds (`None`: no maximum).
    pub max_period: Option<u32>,
}

/// The STUN port when STUNServerPort is 0.
const STUN_PORT: u16 = 3478;

/// The listener and its URL.
pub struct ConnReq {
    cfg: config::ConnectionRequest,
    source: HostSource,
    listen: SocketAddr,
    /// The served path (configured, from the fixed URL, or the persisted random one).
    path: String,
    listener: Listener,
    /// The UDP Connection Request port and its STUN client.
    udp: UdpListener,
    /// The STUN server's name, what it resolved to (empty when the look-up failed), and when.
    stun_resolved: Option<(String, Vec<SocketAddr>, Instant)>,
    /// The STUN inputs the UDP port was last configured from.
    stun_inputs: Option<StunInputs>,
    /// The URL's host as it goes into the URL (IPv6 in brackets); empty while unknown.
    host: String,
    url: String,
    next_check: Instant,
    /// The ACS host, what it resolved to (empty when the look-up failed), and when.
    resolved: Option<(String, Vec<SocketAddr>, Instant)>,
    /// The last bind or address error, logged once until it changes.
    last_error: String,
    /// The port last bound (the URL keeps it while the listener is disabled).
    port: Option<u16>,
    /// The port of a configured `url` (a port forward), which the URL always carries.
    fixed_port: Option<u16>,
    /// Closed for want of a password (logged once per change).
    no_password: bool,
}

impl ConnReq {
    /// The listener for `cfg` (validated), serving `path` when the config names none. `wake` is
    /// called after a request was accepted, `stun_changed` when what STUN learned changed
    /// ([`ConnReq::udp_address`], [`ConnReq::nat_detected`]). Nothing is bound until
    /// [`ConnReq::update`].
    pub fn new(
        cfg: &config::ConnectionRequest,
        path: &str,
        key: &[u8; 32],
        wake: impl Fn() + Send + Sync + 'static,
        stun_changed: impl Fn() + Send + Sync + 'static,
    ) -> ConnReq {
        let listen = cfg
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 7547)));
        let fixed = url::split_url(&cfg.url);
        let (source, path) = match &fixed {
            Some((host, _, p)) => (HostSource::Fixed(host.clone()), p.clone()),
            None => (
                HostSource::parse(&cfg.host).unwrap_or(HostSource::Acs),
                if cfg.path.is_empty() {
                    path.to_string()
                } else {
                    cfg.path.clone()
                },
            ),
        };
        let gate = Gate::new(
            GateConfig {
                path: path.clone(),
                host: String::new(),
                port: 0,
                check_host: cfg.check_host,
                username: cfg.username.clone(),
                password: cfg.password.clone(),
                realm: cfg.realm.clone(),
                algorithm: Algorithm::parse(&cfg.digest_algorithm).unwrap_or(Algorithm::Md5),
                allow_basic: cfg.allow_basic,
                nonce_lifetime_ms: u64::from(cfg.nonce_lifetime) * 1000,
                rate_burst: cfg.rate_burst,
                rate_interval_ms: u64::from(cfg.rate_interval) * 1000,
                fail_burst: cfg.auth_fail_burst,
                fail_interval_ms: u64::from(cfg.auth_fail_interval) * 1000,
            },
            key,
        );
        let limits = Limits {
            max_connections: cfg.max_connections as usize,
            max_header_bytes: cfg.max_header_bytes as usize,
            request_timeout: Duration::from_secs(cfg.request_timeout.into()),
        };
        let listener = Listener::new(gate, limits, wake);
        let udp = UdpListener::new(listener.admission(), stun_changed);
        ConnReq {
            cfg: cfg.clone(),
            source,
            listen,
            path,
            listener,
            udp,
            stun_resolved: None,
            stun_inputs: None,
            host: String::new(),
            url: String::new(),
            next_check: Instant::now(),
            resolved: None,
            last_error: String::new(),
            port: None,
            fixed_port: fixed.map(|(_, port, _)| port),
            no_password: false,
        }
    }

    /// The URL as last evaluated (empty while no host is known or no password is set).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local address the listener is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.bound().map(|(_, local)| local)
    }

    /// Time until the address is due for its next look.
    pub fn until_check(&self) -> Duration {
        self.next_check.saturating_duration_since(Instant::now())
    }

    /// What another way of asking for a session (XMPP) shares with this listener: the
    /// credentials, the failure throttle, the rate limit and the coalescing.
    pub fn admission(&self) -> listener::Admission {
        self.listener.admission()
    }

    /// Tells the listener whether a session is under way.
    pub fn set_phase(&self, phase: Phase) {
        self.listener.set_phase(phase);
    }

    /// Whether a request joined a running session since the last call (and clears it).
    pub fn take_joined(&self) -> bool {
        self.listener.take_joined()
    }

    /// The sources that authenticated, the most recent first, at most [`KEPT_SOURCES`], as
    /// text (the agent keeps them in its state).
    pub fn trusted_sources(&self) -> Vec<String> {
        self.listener
            .with_gate(|g| g.throttle().trusted(KEPT_SOURCES))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Trusts the sources the agent kept from before (text that does not parse is skipped):
    /// an ACS that authenticated once is not locked out by an attacker who fills the throttle's
    /// table after a restart.
    pub fn trust_sources(&self, sources: &[String]) {
        let list: Vec<throttle::Source> = sources
            .iter()
            .take(KEPT_SOURCES)
            .filter_map(|s| s.parse().ok())
            .collect();
        self.listener.trust(&list);
    }

    /// Follows the data model and the network: credentials and enable at every call, the
    /// address every `check_interval` (or now, with `recheck`). Returns the new URL when it
    /// changed.
    pub fn update(&mut self, inputs: &Inputs, recheck: bool) -> Option<String> {
        let now = Instant::now();
        let due = recheck || now >= self.next_check;
        if due {
            self.next_check = now + Duration::from_secs(self.cfg.check_interval.into());
            match self.evaluate_host(&inputs.acs_url) {
                Ok(host) => self.host = host,
                Err(e) => self.note_error(format!("ConnectionRequestURL: {e}")),
            }
        }
        let host_ip = crate::http::url::host_ip(&self.host);
        // Bound to the URL's address only: nothing is opened before that address is known
        // (the WAN may come up after the agent), so the LAN never sees the port.
        let waiting = self.cfg.bind_url_address && host_ip.is_none();
        // No password, no listener: anyone could answer a challenge for empty credentials.
        let no_password = inputs.password.is_empty();
        if no_password != self.no_password {
            self.no_password = no_password;
            if no_password && inputs.enabled {
                log::info!(
                    "connection requests: not listening until ConnectionRequestPassword is set \
                     (by the ACS, or [connection_request] password)"
                );
            }
        }
        if inputs.enabled && !waiting && !no_password {
            let want = url::bind_address(self.listen, host_ip, self.cfg.bind_url_address);
            if self
                .listener
                .bound()
                .is_none_or(|(requested, _)| requested != want)
            {
                match self.listener.bind(want) {
                    Ok(local) => {
                        log::info!("connection requests: listening on {local}");
                        self.port = Some(local.port());
                        self.last_error.clear();
                    }
                    Err(e) => self
                        .note_error(format!("connection requests: cannot listen on {want}: {e}")),
                }
            }
        } else if self.listener.bound().is_some() {
            if !inputs.enabled {
                log::info!(
                    "connection requests: disabled (HTTPConnectionRequestEnable, EnableCWMP)"
                );
            } else if no_password {
                log::info!("connection requests: closed, ConnectionRequestPassword is empty");
            } else if waiting {
                log::info!("connection requests: closed until the URL's address is known");
            }
            self.listener.unbind();
        }
        let port = self.fixed_port.or(self.port).unwrap_or(self.listen.port());
        self.listener.with_gate(|g| {
            let mut c = g.config().clone();
            c.host = self.host.clone();
            c.port = port;
            c.username = inputs.username.clone();
            c.password = inputs.password.clone();
            if c != *g.config() {
                g.reconfigure(c);
            }
        });
        self.update_udp(inputs, inputs.cwmp_enabled && !waiting && !no_password, due);
        self.listener
            .log_summary(Duration::from_secs(self.cfg.summary_interval.into()));
        // Nothing serves the URL without a password: the ACS is told none (an ACS that sets
        // the credentials hears of the URL at once, through `4 VALUE CHANGE`).
        let url = if self.host.is_empty() || no_password {
            String::new()
        } else {
            url::format_url(&self.host, port, &self.path)
        };
        if url == self.url {
            return None;
        }
        // Without the path: it is a secret.
        log::info!(
            "ConnectionRequestURL is now {}",
            if url.is_empty() {
                "empty".to_string()
            } else {
                format!("http://{}:{port}/…", self.host)
            }
        );
        self.url = url.clone();
        Some(url)
    }

    /// The UDP port follows the TCP listener (`open`: it may listen) and `[connection_request]
    /// udp`; the STUN client follows the STUN parameters (the server's name resolved again,
    /// and the port's own address looked at again, when `due`).
    fn update_udp(&mut self, inputs: &Inputs, open: bool, due: bool) {
        let wanted = open
            && match self.cfg.udp.as_str() {
                "always" => true,
                "stun" => inputs.stun.enable,
                _ => false,
            };
        if !wanted {
            if self.udp.bound().is_some() {
                log::info!("connection requests over UDP: closed");
                self.udp.unbind();
            }
            self.stun_inputs = None;
            return;
        }
        let tcp = self.listener.bound();
        let port = match u16::try_from(self.cfg.udp_port) {
            Ok(0) | Err(_) => tcp.map_or(self.listen.port(), |(_, local)| local.port()),
            Ok(p) => p,
        };
        let want = SocketAddr::new(tcp.map_or(self.listen.ip(), |(asked, _)| asked.ip()), port);
        if self.udp.bound().is_none_or(|(asked, _)| asked != want) {
            match self.udp.bind(want) {
                Ok(local) => {
                    log::info!("connection requests over UDP: listening on {local}");
                    self.stun_inputs = None;
                }
                Err(e) => {
                    self.note_error(format!(
                        "connection requests over UDP: cannot listen on {want}: {e}"
                    ));
                    return;
                }
            }
        }
        if !due && self.stun_inputs.as_ref() == Some(&inputs.stun) {
            return;
        }
        self.stun_inputs = Some(inputs.stun.clone());
        let stun = if inputs.stun.enable {
            self.stun_config(&inputs.stun, &inputs.acs_url)
        } else {
            None
        };
        let bound = self.udp.bound().map(|(_, local)| local.port());
        let local = stun
            .as_ref()
            .and_then(|c| crate::sys::os::source_address(c.server).ok())
            .zip(bound)
            .map(|(ip, port)| SocketAddr::new(ip, port));
        self.udp.configure(udp_listener::Settings {
            stun,
            local,
            window: self.cfg.udp_window.into(),
            summary_interval: Duration::from_secs(self.cfg.summary_interval.into()),
        });
    }

    /// The STUN client's settings: the server (STUNServerAddress, else the ACS URL's host)
    /// resolved to its first IPv4 address (classic STUN is IPv4), at most every
    /// [`RESOLVE_TTL`].
    fn stun_config(
        &mut self,
        s: &StunInputs,
        acs_url: &str,
    ) -> Option<crate::stun::binding::Config> {
        let host = if s.server_address.is_empty() {
            match acs_host_port(acs_url) {
                Some((h, _)) => h,
                None => {
                    self.note_error("STUN: no STUNServerAddress and no ACS URL".into());
                    return None;
                }
            }
        } else {
            s.server_address.clone()
        };
        let port = if s.server_port == 0 {
            STUN_PORT
        } else {
            s.server_port
        };
        let addrs = lookup(&mut self.stun_resolved, &host, port);
        let Some(server) = addrs.into_iter().find(SocketAddr::is_ipv4) else {
            self.note_error(format!("STUN: the server {host} has no IPv4 address"));
            return None;
        };
        Some(crate::stun::binding::Config {
            server,
            username: s.username.clone(),
            password: s.password.clone(),
            min_period: s.min_period,
            max_period: s.max_period,
        })
    }

    /// UDPConnectionRequestAddress: with STUN, the binding's public address and port once
    /// learned; without, the URL's host and the UDP port; empty while nothing listens.
    pub fn udp_address(&self) -> String {
        let Some((_, local)) = self.udp.bound() else {
            return String::new();
        };
        if self.stun_inputs.as_ref().is_some_and(|s| s.enable) {
            return self
                .udp
                .status()
                .public
                .map(crate::stun::binding::authority)
                .unwrap_or_default();
        }
        if self.host.is_empty() {
            return String::new();
        }
        format!("{}:{}", self.host, local.port())
    }

    /// NATDetected: STUN is on and the binding's public address differs from the port's own.
    pub fn nat_detected(&self) -> bool {
        self.stun_inputs.as_ref().is_some_and(|s| s.enable) && self.udp.status().nat_detected
    }

    /// The local address the UDP port is bound to.
    pub fn udp_local_addr(&self) -> Option<SocketAddr> {
        self.udp.bound().map(|(_, local)| local)
    }

    /// The URL's host from the configured source.
    fn evaluate_host(&mut self, acs_url: &str) -> Result<String, String> {
        let source = self.source.clone();
        host_from(&source, || self.acs_route(acs_url))
    }

    /// The local address the kernel uses towards the ACS (its name looked up at most every
    /// [`RESOLVE_TTL`]). Without a usable ACS URL: the listen address when it is a specific one.
    fn acs_route(&mut self, acs_url: &str) -> Result<IpAddr, String> {
        let Some((host, port)) = acs_host_port(acs_url) else {
            if !self.listen.ip().is_unspecified() {
                return Ok(self.listen.ip());
            }
            return Err("no ACS URL to find the WAN address from".into());
        };
        let addrs = lookup(&mut self.resolved, &host, port);
        if addrs.is_empty() {
            return Err(format!("cannot resolve the ACS host {host}"));
        }
        // The first address with a route (an unroutable IPv6 answer must not hide IPv4).
        addrs
            .iter()
            .find_map(|a| crate::sys::os::source_address(*a).ok())
            .ok_or_else(|| format!("no route to the ACS at {host}"))
    }

    fn note_error(&mut self, e: String) {
        if e != self.last_error {
            log::warn!("{e}");
            self.last_error = e;
        }
    }
}

/// `host:port` resolved through `cache`: what it holds when it is for the same name and still
/// fresh ([`RESOLVE_TTL`]; a failure is remembered for [`RESOLVE_RETRY`]: with DNS down, the
/// loop must not block on the resolver at every check).
fn lookup(
    cache: &mut Option<(String, Vec<SocketAddr>, Instant)>,
    host: &str,
    port: u16,
) -> Vec<SocketAddr> {
    let key = format!("{host} {port}");
    let fresh =
        |at: &Instant, ok: bool| at.elapsed() < if ok { RESOLVE_TTL } else { RESOLVE_RETRY };
    match cache {
        Some((k, a, at)) if *k == key && fresh(at, !a.is_empty()) => a.clone(),
        _ => {
            let a = crate::sys::os::resolve(host, port).unwrap_or_default();
            *cache = Some((key, a.clone(), Instant::now()));
            a
        }
    }
}

/// ConnectionRequestURL as far as it can be known without a listener (for the command line):
/// the configured URL, or the host from its source — without a DNS look-up — with the listen
/// port. Empty when unknown.
/// How many authenticated sources the agent keeps across restarts (an ACS behind a few
/// addresses or load balancers).
pub const KEPT_SOURCES: usize = 8;

pub fn provisional_url(cfg: &config::ConnectionRequest, path: &str, acs_url: &str) -> String {
    if !cfg.url.is_empty() {
        return cfg.url.clone();
    }
    let listen: Option<SocketAddr> = cfg.listen.parse().ok();
    let host = HostSource::parse(&cfg.host).and_then(|source| {
        host_from(&source, || {
            acs_host_port(acs_url)
                .and_then(|(h, p)| Some(SocketAddr::new(crate::http::url::host_ip(&h)?, p)))
                .and_then(|a| crate::sys::os::source_address(a).ok())
                .or(listen.map(|l| l.ip()).filter(|ip| !ip.is_unspecified()))
                .ok_or_else(String::new)
        })
        .ok()
    });
    let path = if cfg.path.is_empty() { path } else { &cfg.path };
    match (host, listen) {
        (Some(h), Some(l)) => url::format_url(&h, l.port(), path),
        _ => String::new(),
    }
}

/// The URL's host from `source`; `acs_route` gives the local address towards the ACS.
fn host_from(
    source: &HostSource,
    acs_route: impl FnOnce() -> Result<IpAddr, String>,
) -> Result<String, String> {
    match source {
        HostSource::Fixed(h) => Ok(h.clone()),
        HostSource::Interface(name) => {
            let all = crate::sys::os::interface_addresses().map_err(|e| e.to_string())?;
            url::pick_address(&all, name)
                .map(url::url_host)
                .ok_or_else(|| format!("interface {name} has no usable address"))
        }
        HostSource::Acs => acs_route().map(url::url_host),
    }
}

/// The host and port of an `http(s)://` ACS URL.
fn acs_host_port(acs_url: &str) -> Option<(String, u16)> {
    let u = crate::http::url::Url::parse(acs_url).ok()?;
    if !(u.is_http() || u.is_https()) {
        return None;
    }
    Some((u.host.to_string(), u.port_or_default()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acs_hosts() {
        assert_eq!(
            acs_host_port("https://acs.example/x"),
            Some(("acs.example".into(), 443))
        );
        assert_eq!(
            acs_host_port("http://10.0.0.1:7557/"),
            Some(("10.0.0.1".into(), 7557))
        );
        assert_eq!(acs_host_port("http://[::1]:9/a"), Some(("[::1]".into(), 9)));
        assert_eq!(acs_host_port("http://u:p@h:1"), Some(("h".into(), 1)));
        assert_eq!(acs_host_port("ftp://h"), None);
        assert_eq!(acs_host_port(""), None);
    }

    fn inputs(acs: &str) -> Inputs {
        Inputs {
            enabled: true,
            cwmp_enabled: true,
            username: "u".into(),
            password: "p".into(),
            acs_url: acs.into(),
            stun: StunInputs::default(),
        }
    }

    #[test]
    fn url_from_the_route_to_the_acs_with_the_bound_port() {
        let cfg = config::ConnectionRequest {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        };
        let mut cr = ConnReq::new(&cfg, "/abc", &[1; 32], || {}, || {});
        let url = cr
            .update(&inputs("http://127.0.0.1:9/acs"), true)
            .expect("a URL");
        let port = cr.local_addr().expect("bound").port();
        assert_ne!(port, 0);
        assert_eq!(url, format!("http://127.0.0.1:{port}/abc"));
        assert_eq!(cr.update(&inputs("http://127.0.0.1:9/acs"), true), None);
        // Disabled by the ACS: the socket closes, the URL stays.
        let mut off = inputs("http://127.0.0.1:9/acs");
        off.enabled = false;
        assert_eq!(cr.update(&off, false), None);
        assert!(cr.local_addr().is_none());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn nothing_listens_and_no_url_without_a_password() {
        let cfg = config::ConnectionRequest {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        };
        let mut cr = ConnReq::new(&cfg, "/abc", &[1; 32], || {}, || {});
        let mut none = inputs("http://127.0.0.1:9/acs");
        none.username.clear();
        none.password.clear();
        assert_eq!(cr.update(&none, true), None);
        assert!(cr.local_addr().is_none());
        assert_eq!(cr.url(), "");
        // A username alone is not enough.
        none.username = "u".into();
        assert_eq!(cr.update(&none, true), None);
        assert!(cr.local_addr().is_none());
        // The password set (by the ACS): open, and the URL is told.
        let url = cr
            .update(&inputs("http://127.0.0.1:9/acs"), false)
            .expect("a URL");
        let port = cr.local_addr().expect("bound").port();
        assert_eq!(url, format!("http://127.0.0.1:{port}/abc"));
        // Cleared again: closed, and the URL empty.
        assert_eq!(cr.update(&none, false).as_deref(), Some(""));
        assert!(cr.local_addr().is_none());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn fixed_url_and_interface_sources() {
        let cfg = config::ConnectionRequest {
            listen: "127.0.0.1:0".into(),
            url: "http://cpe.example:8000/fixed".into(),
            ..Default::default()
        };
        let mut cr = ConnReq::new(&cfg, "/ignored", &[1; 32], || {}, || {});
        assert_eq!(
            cr.update(&inputs(""), true).as_deref(),
            Some("http://cpe.example:8000/fixed")
        );
        let cfg = config::ConnectionRequest {
            listen: "127.0.0.1:0".into(),
            host: "interface:lo".into(),
            path: "/p".into(),
            ..Default::default()
        };
        let mut cr = ConnReq::new(&cfg, "/ignored", &[1; 32], || {}, || {});
        let url = cr.update(&inputs(""), true).expect("a URL");
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/p"),
            "{url}"
        );
    }
}
