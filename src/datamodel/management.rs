//! The typed view of the parameters the agent itself runs on: `ManagementServer` (TR-181
//! `Device.ManagementServer.`, TR-098 `InternetGatewayDevice.ManagementServer.`) and the
//! identity in `DeviceInfo` the Inform carries (§A.3.3.1 DeviceIdStruct), and its software version. The engine keeps the
//! paths; the agent reads and writes typed fields.
//!
//! Values are read with [`Engine::value`]: a password reads back as stored (GetParameterValues
//! shows it empty, the agent needs it). A parameter the model lacks reads as empty, or as `None`
//! where the field is an `Option` (TR-098 has no HTTPConnectionRequestEnable).

use ureq::http::Uri;

use super::Engine;
use crate::cwmp::fault::Fault;
use crate::cwmp::value::SetValue;

/// Whether `url` is an ACS URL the agent's session client can reach its ACS at, as that client
/// decides it (`http::acs::Target::parse`: the same `Uri` parser and the same rules, which a test
/// of `http::acs` holds to the same decisions and reasons): an absolute `http://` or `https://`
/// URL with a host and without user information (the credentials are ManagementServer.Username
/// and Password). The engine refuses any other ManagementServer.URL with 9007, so that no value
/// can orphan the device; the check lives here so that the data model does not import the HTTP
/// client.
pub fn acs_url_check(url: &str) -> Result<(), &'static str> {
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|_| "the ACS URL is not a valid URL")?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http") => {}
        _ => return Err("the ACS URL must start with http:// or https://"),
    }
    let authority = uri.authority().ok_or("the ACS URL has no host")?;
    if authority.as_str().contains('@') {
        return Err("the ACS URL must not contain user information; use username/password");
    }
    if authority.host().is_empty() {
        return Err("the ACS URL has no host");
    }
    Ok(())
}

/// A ManagementServer parameter the agent reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Url,
    Username,
    Password,
    PeriodicInformEnable,
    PeriodicInformInterval,
    PeriodicInformTime,
    RetryMinimumWaitInterval,
    RetryIntervalMultiplier,
    EnableCwmp,
    DefaultActiveNotificationThrottle,
    ConnectionRequestUrl,
    ConnectionRequestUsername,
    ConnectionRequestPassword,
    HttpConnectionRequestEnable,
    StunEnable,
    StunServerAddress,
    StunServerPort,
    StunUsername,
    StunPassword,
    StunMaximumKeepAlivePeriod,
    StunMinimumKeepAlivePeriod,
    /// TR-098 only.
    UdpConnectionRequestAddressNotificationLimit,
    UdpConnectionRequestAddress,
    HeartbeatEnable,
    HeartbeatReportingInterval,
    HeartbeatInitiationTime,
    ConnReqXmppConnection,
    ConnReqAllowedJabberIds,
    ConnReqJabberId,
}

impl Param {
    /// The parameter's name under `ManagementServer.`.
    pub fn name(self) -> &'static str {
        match self {
            Param::Url => "URL",
            Param::Username => "Username",
            Param::Password => "Password",
            Param::PeriodicInformEnable => "PeriodicInformEnable",
            Param::PeriodicInformInterval => "PeriodicInformInterval",
            Param::PeriodicInformTime => "PeriodicInformTime",
            Param::RetryMinimumWaitInterval => "CWMPRetryMinimumWaitInterval",
            Param::RetryIntervalMultiplier => "CWMPRetryIntervalMultiplier",
            Param::EnableCwmp => "EnableCWMP",
            Param::DefaultActiveNotificationThrottle => "DefaultActiveNotificationThrottle",
            Param::ConnectionRequestUrl => "ConnectionRequestURL",
            Param::ConnectionRequestUsername => "ConnectionRequestUsername",
            Param::ConnectionRequestPassword => "ConnectionRequestPassword",
            Param::HttpConnectionRequestEnable => "HTTPConnectionRequestEnable",
            Param::StunEnable => "STUNEnable",
            Param::StunServerAddress => "STUNServerAddress",
            Param::StunServerPort => "STUNServerPort",
            Param::StunUsername => "STUNUsername",
            Param::StunPassword => "STUNPassword",
            Param::StunMaximumKeepAlivePeriod => "STUNMaximumKeepAlivePeriod",
            Param::StunMinimumKeepAlivePeriod => "STUNMinimumKeepAlivePeriod",
            Param::UdpConnectionRequestAddressNotificationLimit => {
                "UDPConnectionRequestAddressNotificationLimit"
            }
            Param::UdpConnectionRequestAddress => "UDPConnectionRequestAddress",
            Param::HeartbeatEnable => "HeartbeatPolicy.Enable",
            Param::HeartbeatReportingInterval => "HeartbeatPolicy.ReportingInterval",
            Param::HeartbeatInitiationTime => "HeartbeatPolicy.InitiationTime",
            Param::ConnReqXmppConnection => "ConnReqXMPPConnection",
            Param::ConnReqAllowedJabberIds => "ConnReqAllowedJabberIDs",
            Param::ConnReqJabberId => "ConnReqJabberID",
        }
    }

    /// The full path under the model's root (`Device.`, `InternetGatewayDevice.`).
    pub fn path(self, root: &str) -> String {
        format!("{root}ManagementServer.{}", self.name())
    }
}

/// The ManagementServer parameters the agent runs on, as they are now. Numbers that are
/// missing or unreadable are `None`: the agent applies its own defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementServer {
    pub url: String,
    pub username: String,
    pub password: String,
    /// `true` only when the value is `true`.
    pub periodic_inform_enable: bool,
    pub periodic_inform_interval: Option<u32>,
    /// PeriodicInformTime as stored (an xsd:dateTime; the unknown time when none is set).
    pub periodic_inform_time: String,
    pub retry_minimum_wait_interval: Option<u32>,
    pub retry_interval_multiplier: Option<u32>,
    /// EnableCWMP: `false` only when the value is `false` (TR-098 has no such parameter).
    pub enable_cwmp: bool,
    pub default_active_notification_throttle: Option<u32>,
    pub connection_request_username: String,
    pub connection_request_password: String,
    /// HTTPConnectionRequestEnable; `None` where the model has no such parameter (TR-098).
    pub http_connection_request_enable: Option<bool>,
    /// The STUN parameters (TR-111 Part 2).
    pub stun: Stun,
    /// HeartbeatPolicy.Enable: `true` only when the value is `true` (TR-098 has none).
    pub heartbeat_enable: bool,
    pub heartbeat_interval: Option<u32>,
    /// HeartbeatPolicy.InitiationTime as stored (the unknown time when none is set).
    pub heartbeat_time: String,
    /// ConnReqXMPPConnection: the path of an XMPP.Connection instance (`Device.XMPP.Connection.1`),
    /// empty when none.
    pub xmpp_connection: String,
    /// ConnReqAllowedJabberIDs, item by item.
    pub allowed_jabber_ids: Vec<String>,
}

/// `ManagementServer.STUN*` (TR-111 Part 2, TR-069 Annex G). Numbers that are missing or
/// unreadable are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stun {
    /// `true` only when the value is `true`.
    pub enable: bool,
    pub server_address: String,
    pub server_port: Option<u32>,
    pub username: String,
    pub password: String,
    /// -1: no maximum.
    pub maximum_keepalive_period: Option<i64>,
    pub minimum_keepalive_period: Option<u32>,
    /// UDPConnectionRequestAddressNotificationLimit (TR-098; `None` where the model lacks it).
    pub notification_limit: Option<u32>,
}

impl ManagementServer {
    /// Reads the view from the engine.
    pub fn read(engine: &mut Engine) -> ManagementServer {
        let root = engine.root().to_string();
        let mut get = |p: Param| engine.value(&p.path(&root)).ok();
        let mut text = |p: Param| get(p).unwrap_or_default();
        let url = text(Param::Url);
        let username = text(Param::Username);
        let password = text(Param::Password);
        let periodic_inform_enable = text(Param::PeriodicInformEnable) == "true";
        let periodic_inform_interval = text(Param::PeriodicInformInterval).parse().ok();
        let periodic_inform_time = text(Param::PeriodicInformTime);
        let retry_minimum_wait_interval = text(Param::RetryMinimumWaitInterval).parse().ok();
        let retry_interval_multiplier = text(Param::RetryIntervalMultiplier).parse().ok();
        let enable_cwmp = text(Param::EnableCwmp) != "false";
        let default_active_notification_throttle =
            text(Param::DefaultActiveNotificationThrottle).parse().ok();
        let connection_request_username = text(Param::ConnectionRequestUsername);
        let connection_request_password = text(Param::ConnectionRequestPassword);
        let heartbeat_enable = text(Param::HeartbeatEnable) == "true";
        let heartbeat_interval = text(Param::HeartbeatReportingInterval).parse().ok();
        let heartbeat_time = text(Param::HeartbeatInitiationTime);
        let stun = Stun {
            enable: text(Param::StunEnable) == "true",
            server_address: text(Param::StunServerAddress),
            server_port: text(Param::StunServerPort).parse().ok(),
            username: text(Param::StunUsername),
            password: text(Param::StunPassword),
            maximum_keepalive_period: text(Param::StunMaximumKeepAlivePeriod).parse().ok(),
            minimum_keepalive_period: text(Param::StunMinimumKeepAlivePeriod).parse().ok(),
            notification_limit: text(Param::UdpConnectionRequestAddressNotificationLimit)
                .parse()
                .ok(),
        };
        let xmpp_connection = text(Param::ConnReqXmppConnection);
        let allowed_jabber_ids = text(Param::ConnReqAllowedJabberIds)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let http_connection_request_enable =
            get(Param::HttpConnectionRequestEnable).map(|v| v != "false");
        ManagementServer {
            url,
            username,
            password,
            periodic_inform_enable,
            periodic_inform_interval,
            periodic_inform_time,
            retry_minimum_wait_interval,
            retry_interval_multiplier,
            enable_cwmp,
            default_active_notification_throttle,
            connection_request_username,
            connection_request_password,
            http_connection_request_enable,
            stun,
            heartbeat_enable,
            heartbeat_interval,
            heartbeat_time,
            xmpp_connection,
            allowed_jabber_ids,
        }
    }

    /// Writes parameters as a local change (`cwmpd set` semantics: checked against the model,
    /// applied to the backends, held until the caller settles it).
    pub fn write(engine: &mut Engine, values: &[(Param, &str)]) -> Result<(), Fault> {
        let root = engine.root().to_string();
        let list: Vec<SetValue> = values
            .iter()
            .map(|(p, v)| SetValue {
                name: p.path(&root),
                value: v.to_string(),
                xsi_type: None,
            })
            .collect();
        engine.set_local(&list).map(drop)
    }

    /// Whether `path` is ManagementServer.ConnectionRequestURL of the model (the Inform
    /// parameter whose acknowledgement the agent records).
    pub fn is_connection_request_url(engine: &Engine, path: &str) -> bool {
        Self::is(engine, path, Param::ConnectionRequestUrl)
    }

    /// Whether `path` is the ManagementServer parameter `p` of the model.
    pub fn is(engine: &Engine, path: &str, p: Param) -> bool {
        path.strip_prefix(engine.root())
            .and_then(|p| p.strip_prefix("ManagementServer."))
            == Some(p.name())
    }
}

/// An `XMPP.Connection.{i}.` (TR-181) as the agent runs it. Numbers that are missing or
/// unreadable are `None`: the agent applies the model's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmppConnection {
    /// Its path without the final dot (`Device.XMPP.Connection.1`).
    pub path: String,
    /// Its instance number.
    pub number: u32,
    pub enable: bool,
    pub username: String,
    pub password: String,
    pub domain: String,
    pub resource: String,
    pub server_connect_algorithm: String,
    pub keepalive_interval: Option<i64>,
    pub retry_initial: Option<u32>,
    pub retry_multiplier: Option<u32>,
    pub retry_max: Option<u32>,
    pub use_tls: bool,
    /// The Server table, in instance order.
    pub servers: Vec<XmppServer>,
}

/// An `XMPP.Connection.{i}.Server.{i}.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmppServer {
    pub enable: bool,
    pub priority: u32,
    pub address: String,
    pub port: Option<u32>,
}

impl XmppConnection {
    /// Every XMPP connection of the model (none where it has no `XMPP.Connection.`; an error
    /// when the subtree cannot be read).
    pub fn read_all(engine: &mut Engine) -> Result<Vec<XmppConnection>, Fault> {
        let prefix = format!("{}XMPP.Connection.", engine.root());
        if engine
            .schema()
            .object_index(&format!("{prefix}{{i}}."))
            .is_none()
        {
            return Ok(Vec::new());
        }
        let values = engine.own_values(std::slice::from_ref(&prefix))?;
        let mut all: Vec<XmppConnection> = Vec::new();
        // The walk is depth first: a connection's values, its servers' among them, come
        // together; the server being read is the last of its connection.
        let mut server_number = None;
        for v in &values {
            let Some((n, name)) = v.name.strip_prefix(&prefix).and_then(|r| r.split_once('.'))
            else {
                continue;
            };
            let Ok(number) = n.parse::<u32>() else {
                continue;
            };
            if all.last().is_none_or(|c| c.number != number) {
                server_number = None;
                all.push(XmppConnection {
                    path: format!("{prefix}{number}"),
                    number,
                    ..Default::default()
                });
            }
            let Some(c) = all.last_mut() else { continue };
            let value = v.value.to_string();
            if let Some((s, field)) = name.strip_prefix("Server.").and_then(|r| r.split_once('.')) {
                let Ok(s) = s.parse::<u32>() else { continue };
                if server_number != Some(s) {
                    server_number = Some(s);
                    c.servers.push(XmppServer::default());
                }
                if let Some(server) = c.servers.last_mut() {
                    match field {
                        "Enable" => server.enable = value == "true",
                        "Priority" => server.priority = value.parse().unwrap_or(0),
                        "ServerAddress" => server.address = value,
                        "Port" => server.port = value.parse().ok(),
                        _ => {}
                    }
                }
                continue;
            }
            match name {
                "Enable" => c.enable = value == "true",
                "Username" => c.username = value,
                "Password" => c.password = value,
                "Domain" => c.domain = value,
                "Resource" => c.resource = value,
                "ServerConnectAlgorithm" => c.server_connect_algorithm = value,
                "KeepAliveInterval" => c.keepalive_interval = value.parse().ok(),
                "ServerRetryInitialInterval" => c.retry_initial = value.parse().ok(),
                "ServerRetryIntervalMultiplier" => c.retry_multiplier = value.parse().ok(),
                "ServerRetryMaxInterval" => c.retry_max = value.parse().ok(),
                "UseTLS" => c.use_tls = value == "true",
                _ => {}
            }
        }
        Ok(all)
    }
}

/// The device's identity in `DeviceInfo`: the Inform's DeviceIdStruct (§A.3.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub manufacturer: String,
    pub manufacturer_oui: String,
    pub product_class: String,
    pub serial_number: String,
}

/// A `DeviceInfo.` parameter's value (empty when the model lacks it).
fn device_info(engine: &mut Engine, name: &str) -> String {
    let path = format!("{}DeviceInfo.{name}", engine.root());
    engine.value(&path).unwrap_or_default()
}

impl Identity {
    /// Reads the identity from the engine.
    pub fn read(engine: &mut Engine) -> Identity {
        Identity {
            manufacturer: device_info(engine, "Manufacturer"),
            manufacturer_oui: device_info(engine, "ManufacturerOUI"),
            product_class: device_info(engine, "ProductClass"),
            serial_number: device_info(engine, "SerialNumber"),
        }
    }
}

/// `DeviceInfo.SoftwareVersion`: what the agent watches for a firmware change nobody asked for
/// (§A.4.2.2).
pub fn software_version(engine: &mut Engine) -> String {
    device_info(engine, "SoftwareVersion")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::datamodel::backend::registry::Backends;
    use crate::datamodel::DmState;

    fn engine(model: &str, acs: &str) -> Engine {
        let text = format!(
            "[acs]\nurl = \"http://acs.test/cwmp\"\nusername = \"u\"\npassword = \"p\"\n{acs}\n\
             [device]\ndata_model = {model:?}\nmanufacturer = \"M\"\noui = \"00D0F8\"\n\
             product_class = \"PC\"\nserial_number = \"S1\"\nsoftware_version = \"1.2\"\n\
             [connection_request]\nusername = \"cu\"\npassword = \"cp\"\n\
             [datamodel]\nplatform = \"generic\"\n"
        );
        let cfg = Config::parse(&text, "test").unwrap();
        let schema = cfg.datamodel.schema(cfg.model().unwrap()).unwrap();
        let backends = Backends::with_platform(cfg.agent_defaults(), &cfg.datamodel.platform());
        Engine::new(schema, backends, DmState::default())
    }

    #[test]
    fn both_models_read_the_same_view() {
        for model in ["tr181", "tr098"] {
            let mut e = engine(
                model,
                "periodic_inform_interval = 300\nretry_minimum_wait_interval = 7",
            );
            let m = ManagementServer::read(&mut e);
            assert_eq!(m.url, "http://acs.test/cwmp", "{model}");
            assert_eq!((m.username.as_str(), m.password.as_str()), ("u", "p"));
            assert!(m.periodic_inform_enable);
            assert_eq!(m.periodic_inform_interval, Some(300));
            assert_eq!(m.retry_minimum_wait_interval, Some(7));
            assert!(m.enable_cwmp);
            assert_eq!(m.connection_request_username, "cu");
            assert_eq!(m.connection_request_password, "cp");
            let d = Identity::read(&mut e);
            assert_eq!(d.manufacturer_oui, "00D0F8");
            assert_eq!(d.serial_number, "S1");
            assert_eq!(software_version(&mut e), "1.2");
            let cr = Param::ConnectionRequestUrl.path(e.root());
            assert!(ManagementServer::is_connection_request_url(&e, &cr));
            assert!(!ManagementServer::is_connection_request_url(
                &e,
                &Param::Url.path(e.root())
            ));
        }
        // TR-098 has no HTTPConnectionRequestEnable: the config decides there.
        let mut e = engine("tr098", "");
        assert_eq!(
            ManagementServer::read(&mut e).http_connection_request_enable,
            None
        );
        let mut e = engine("tr181", "");
        assert!(ManagementServer::read(&mut e)
            .http_connection_request_enable
            .is_some());
    }

    #[test]
    fn written_values_read_back_typed() {
        let mut e = engine("tr181", "");
        e.hold();
        ManagementServer::write(
            &mut e,
            &[
                (Param::PeriodicInformInterval, "600"),
                (Param::Url, "https://other.test/"),
            ],
        )
        .unwrap();
        e.settle(true);
        let m = ManagementServer::read(&mut e);
        assert_eq!(m.periodic_inform_interval, Some(600));
        assert_eq!(m.url, "https://other.test/");
        let bad = ManagementServer::write(&mut e, &[(Param::PeriodicInformInterval, "soon")]);
        assert!(bad.is_err());
    }
}
