//! `[connection_request]` of the config file: the listener's settings, their defaults and their
//! checks (the config file aggregates this section; errors name the key, the caller adds the
//! file and the line).

/// `[connection_request]`: the listener the ACS calls (TR-069 §3.2.2).
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
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
    /// When to listen for UDP Connection Requests (TR-069 Annex G): "stun" while
    /// ManagementServer.STUNEnable is true, "always" whenever the TCP listener listens, "off"
    /// never. Default: "stun".
    pub udp: String,
    /// The UDP port (0: the TCP listener's port). Default: 0.
    pub udp_port: u32,
    /// Seconds a UDP Connection Request's `ts` may differ from the CPE's clock (once the clock
    /// is set; a request older than the newest accepted is refused whatever the window).
    /// Default: 300.
    pub udp_window: u32,
}

crate::from_toml_struct!(ConnectionRequest {
    enable,
    listen,
    username,
    password,
    url,
    host,
    path,
    bind_url_address,
    check_host,
    realm,
    digest_algorithm,
    allow_basic,
    nonce_lifetime,
    rate_burst,
    rate_interval,
    auth_fail_burst,
    auth_fail_interval,
    summary_interval,
    max_connections,
    max_header_bytes,
    request_timeout,
    check_interval,
    udp,
    udp_port,
    udp_window,
});

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
            udp: "stun".into(),
            udp_port: 0,
            udp_window: 300,
        }
    }
}

impl ConnectionRequest {
    /// Checks the fields a running listener relies on.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
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
        if !["stun", "always", "off"].contains(&self.udp.as_str()) {
            return Err((
                "connection_request.udp",
                "must be \"stun\", \"always\" or \"off\"".into(),
            ));
        }
        let ranges: [(&'static str, u32, u32, u32); 12] = [
            ("connection_request.udp_port", self.udp_port, 0, 65535),
            ("connection_request.udp_window", self.udp_window, 1, 86400),
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

/// `[stun]`: the defaults of ManagementServer's STUN parameters (TR-111 Part 2), which the ACS
/// may set; the values it set win.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Stun {
    /// STUNEnable. Default: false.
    pub enable: bool,
    /// STUNServerAddress (empty: the ACS URL's host). Default: empty.
    pub server_address: String,
    /// STUNServerPort. Default: 3478.
    pub server_port: u32,
    /// STUNUsername (empty: no MESSAGE-INTEGRITY). Default: empty.
    pub username: String,
    /// STUNPassword. Default: empty.
    pub password: String,
    /// STUNMaximumKeepAlivePeriod in seconds (-1: none). Default: -1.
    pub maximum_keepalive_period: i64,
    /// STUNMinimumKeepAlivePeriod in seconds. Default: 0.
    pub minimum_keepalive_period: u32,
}

crate::from_toml_struct!(Stun {
    enable,
    server_address,
    server_port,
    username,
    password,
    maximum_keepalive_period,
    minimum_keepalive_period,
});

impl Default for Stun {
    fn default() -> Self {
        Stun {
            enable: false,
            server_address: String::new(),
            server_port: 3478,
            username: String::new(),
            password: String::new(),
            maximum_keepalive_period: -1,
            minimum_keepalive_period: 0,
        }
    }
}

impl Stun {
    /// Checks the values against the data model's ranges.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.server_port > 65535 {
            return Err(("stun.server_port", "must be 0–65535".into()));
        }
        if !(-1..=i64::from(u32::MAX)).contains(&self.maximum_keepalive_period) {
            return Err((
                "stun.maximum_keepalive_period",
                "must be -1 (none) or a number of seconds".into(),
            ));
        }
        if self.server_address.len() > 256 || self.username.len() > 256 || self.password.len() > 256
        {
            return Err((
                "stun.server_address",
                "server_address, username and password hold at most 256 characters".into(),
            ));
        }
        Ok(())
    }
}
