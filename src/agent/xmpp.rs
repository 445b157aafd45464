//! The agent's side of XMPP Connection Requests (TR-069 Annex K): the connection that
//! `ManagementServer.ConnReqXMPPConnection` names runs ([`crate::xmpp::client`], its own
//! thread) while it is enabled and EnableCWMP is true; it restarts when its settings change.
//!
//! A connection request that arrives on it is decided as Annex K says — a sender not in
//! ConnReqAllowedJabberIDs gets `service-unavailable` before anything else is looked at, wrong
//! credentials `not-authorized` — and then goes through the Connection Request listener's
//! [`Admission`]: the same credentials as the HTTP listener, its failure throttle (per sender's
//! bare JID: `resource-constraint` without a verdict once a sender spent its allowance), its
//! rate limit (`resource-constraint`) and its coalescing (a request while a session is pending
//! or running joins it).
//!
//! What the connection does is shown in the data model at every loop turn (the thread wakes
//! the loop when it changes): `Status`, `LastChangeDate`, `JabberID`, `TLSEstablished` of every
//! XMPP.Connection, and ManagementServer.ConnReqJabberID (actively notified by default). The
//! JabberID stays while the connection reconnects (each reconnect would otherwise be two value
//! changes for the ACS), and is cleared when the connection stops.

use std::sync::Mutex;
use std::time::Duration;

use super::{Agent, Settings, Trigger};
use crate::connreq::gate::Outcome;
use crate::connreq::listener::{Admission, Auth};
use crate::connreq::throttle::Source;
use crate::datamodel::management::XmppConnection;
use crate::xmpp::client::{self, Client, NameServers, Problem, Servers};
use crate::xmpp::connreq::{self, Request, Verdict};
use crate::xmpp::negotiate;

/// The connection the agent runs.
pub(super) struct Running {
    number: u32,
    settings: client::Settings,
    client: Client,
}

/// What a connection's settings lack for it to run (TR-181 `Error_Misconfigured`).
/// `resolv_conf` names the name servers the SRV records are asked of (DNS-SRV, the default).
fn client_settings(
    c: &XmppConnection,
    tls: crate::http::tls::TlsSettings,
    resolv_conf: &std::path::Path,
) -> Result<client::Settings, &'static str> {
    if c.username.is_empty() || c.domain.is_empty() {
        return Err("Username and Domain must be set");
    }
    let servers = match c.server_connect_algorithm.as_str() {
        "ServerTable" => Servers::List(server_table(c)),
        "DNS" => Servers::List(vec![(c.domain.clone(), client::PORT)]),
        _ => Servers::Srv {
            domain: c.domain.clone(),
            name_servers: NameServers::ResolvConf(resolv_conf.to_path_buf()),
        },
    };
    if servers == Servers::List(Vec::new()) {
        return Err("ServerConnectAlgorithm is ServerTable and no Server is enabled");
    }
    Ok(client::Settings {
        servers,
        negotiate: negotiate::Config {
            username: c.username.clone(),
            domain: c.domain.clone(),
            password: c.password.clone(),
            resource: c.resource.clone(),
            use_tls: c.use_tls,
        },
        keepalive: c
            .keepalive_interval
            .filter(|k| *k > 0)
            .map(|k| Duration::from_secs(k.unsigned_abs())),
        ping_after: client::PING_AFTER,
        retry_initial: c.retry_initial.unwrap_or(60).clamp(1, 65535),
        retry_multiplier: c.retry_multiplier.unwrap_or(2000).clamp(1000, 65535),
        retry_max: c.retry_max.unwrap_or(30720).max(1),
        tls,
    })
}

/// The enabled Server entries with an address: the lowest Priority first, the table's order
/// among equals (Weight is not used); a Port of 0 is the default one.
fn server_table(c: &XmppConnection) -> Vec<(String, u16)> {
    let mut table: Vec<_> = c
        .servers
        .iter()
        .filter(|s| s.enable && !s.address.is_empty())
        .collect();
    table.sort_by_key(|s| s.priority);
    table
        .iter()
        .map(|s| {
            let port = s
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .unwrap_or(client::PORT);
            (s.address.clone(), port)
        })
        .collect()
}

/// Decides a connection request: the allowed senders, then the credentials through the
/// listener's throttle, then its rate limit and coalescing.
fn decide(r: &Request, allowed: &Mutex<Vec<String>>, admission: &Admission) -> Verdict {
    let from = connreq::bare(&r.from);
    if !connreq::is_allowed(r, &allowed.lock().unwrap_or_else(|e| e.into_inner())) {
        log::debug!("XMPP connection request from {from:?}: not in ConnReqAllowedJabberIDs");
        return Verdict::NotAllowed;
    }
    match admission.authenticate(Source::of_jid(&r.from), |user, password| {
        connreq::holds_credentials(r, user, password)
    }) {
        Auth::Throttled => Verdict::Busy,
        Auth::Failed => {
            // Counted in the listener's summary (the throttle's rejections); one line each
            // only at debug: any account on the server could fill the log otherwise.
            log::debug!("XMPP connection request from {from:?}: wrong credentials");
            Verdict::NotAuthorized
        }
        Auth::Ok => match admission.admit() {
            Outcome::RateLimited => {
                log::debug!("XMPP connection request from {from:?}: over the rate limit");
                Verdict::Busy
            }
            Outcome::Accepted => {
                log::info!("connection request over XMPP from {from:?}");
                Verdict::Accept
            }
            _ => Verdict::Accept,
        },
    }
}

impl Agent {
    /// Runs, restarts or stops the XMPP connection as the data model says, and shows what it
    /// does. Returns whether ConnReqJabberID changed.
    pub(super) fn follow_xmpp(&mut self, s: &Settings) -> bool {
        let all = match XmppConnection::read_all(&mut self.engine) {
            Ok(all) => all,
            Err(e) => {
                // Nothing changes on a failed read: the connection runs on as it was.
                let e = format!("XMPP: cannot read the connections: {e}");
                if self.xmpp_error.as_deref() != Some(e.as_str()) {
                    log::warn!("{e}");
                    self.xmpp_error = Some(e);
                }
                return false;
            }
        };
        let wanted = all
            .iter()
            .find(|c| c.path == s.xmpp_connection && c.enable)
            .filter(|_| s.enable_cwmp);
        *self.xmpp_allowed.lock().unwrap_or_else(|e| e.into_inner()) = s.allowed_jabber_ids.clone();
        let resolv_conf = self.cfg.datamodel.platform().root.join("etc/resolv.conf");
        let mut misconfigured = None;
        let mut error = None;
        let desired =
            wanted.and_then(
                |c| match client_settings(c, self.cfg.acs.tls(), &resolv_conf) {
                    Ok(settings) => Some((c.number, settings)),
                    Err(e) => {
                        misconfigured = Some(c.number);
                        error = Some(format!("XMPP: {}: {e}", c.path));
                        None
                    }
                },
            );
        if error != self.xmpp_error {
            if let Some(e) = &error {
                log::warn!("{e}");
            }
            self.xmpp_error = error;
        }
        let keep = match (&self.xmpp, &desired) {
            (Some(r), Some((n, settings))) => r.number == *n && r.settings == *settings,
            (None, None) => true,
            _ => false,
        };
        if !keep {
            if let Some(r) = self.xmpp.take() {
                log::info!(
                    "XMPP: stopping the connection of XMPP.Connection.{}",
                    r.number
                );
                // Not waited for: a connect or a DNS look-up under way would hold the loop.
                r.client.detach();
                // The JabberID stays when the same account comes back (a changed retry
                // setting, a server added): the ACS is not told of a change that is none.
                let same_account = desired.as_ref().is_some_and(|(n, d)| {
                    *n == r.number
                        && (
                            &d.negotiate.username,
                            &d.negotiate.domain,
                            &d.negotiate.resource,
                        ) == (
                            &r.settings.negotiate.username,
                            &r.settings.negotiate.domain,
                            &r.settings.negotiate.resource,
                        )
                });
                if !same_account {
                    self.show_jid(r.number, "");
                }
            }
            if let (Some((number, settings)), Some(cr)) = (desired, &self.connreq) {
                let admission = cr.admission();
                let allowed = self.xmpp_allowed.clone();
                let tx = self.tx.clone();
                let handler: client::Handler =
                    Box::new(move |r: &Request| decide(r, &allowed, &admission));
                let on_status = Box::new(move || {
                    let _ = tx.send(Trigger::ValuesChanged);
                });
                log::info!("XMPP: connecting XMPP.Connection.{number}");
                // The JID the ACS last acknowledged, while this account has none yet (after a
                // restart): the same JID bound again is no change.
                let known = self
                    .engine
                    .backends_mut()
                    .agent_default("connection_request.jabber_id")
                    .unwrap_or_default()
                    .to_string();
                if settings.negotiate.owns(&known) && self.jid_of(number).is_empty() {
                    self.show_jid(number, &known);
                }
                // Without a Resource: the one of the JID shown, so that the server binds the
                // same JID again.
                let resume = self
                    .jid_of(number)
                    .split_once('/')
                    .map(|(_, r)| r.to_string());
                match Client::start(settings.clone(), resume, handler, on_status) {
                    Ok(client) => {
                        self.xmpp = Some(Running {
                            number,
                            settings,
                            client,
                        })
                    }
                    Err(e) => log::error!("XMPP: cannot start its thread: {e}"),
                }
            }
        }
        // The run-time values of deleted connections go.
        let numbers: Vec<String> = all
            .iter()
            .map(|c| format!("{PREFIX}{}.", c.number))
            .collect();
        self.engine.backends_mut().retain_runtime(PREFIX, |k| {
            numbers.iter().any(|n| k.starts_with(n.as_str()))
        });
        let status = self.xmpp.as_ref().map(|r| (r.number, r.client.status()));
        for c in &all {
            let shown = match &status {
                Some((n, st)) if *n == c.number => {
                    if st.up {
                        self.show_jid(c.number, &st.jid);
                    }
                    match (st.up, st.problem) {
                        (true, _) => "Enabled",
                        (false, Problem::None) => "Connecting",
                        (false, Problem::Unreachable) => "ServerNotPresent",
                        (false, Problem::Auth) => "Error_AuthenticationFailure",
                        (false, Problem::Bind | Problem::Other) => "Error",
                    }
                }
                _ if misconfigured == Some(c.number) => "Error_Misconfigured",
                // Enabled, but not the one connection requests use (or CWMP is off).
                _ if c.enable => "Dormant",
                _ => "Disabled",
            };
            let tls = status
                .as_ref()
                .is_some_and(|(n, st)| *n == c.number && st.up && st.tls);
            self.show_connection(c.number, shown, tls);
        }
        let jid = match self.xmpp.as_ref().map(|r| r.number) {
            Some(n) => self.jid_of(n),
            None => String::new(),
        };
        let b = self.engine.backends_mut();
        if b.agent_default("connection_request.jabber_id")
            .unwrap_or_default()
            != jid
        {
            b.set_runtime("connection_request.jabber_id", &jid);
            return true;
        }
        false
    }

    /// A connection's JabberID as shown.
    fn jid_of(&mut self, number: u32) -> String {
        self.engine
            .backends_mut()
            .agent_default(&format!("{PREFIX}{number}.jabber_id"))
            .unwrap_or_default()
            .to_string()
    }

    /// Sets a connection's JabberID.
    fn show_jid(&mut self, number: u32, jid: &str) {
        self.engine
            .backends_mut()
            .set_runtime(&format!("{PREFIX}{number}.jabber_id"), jid);
    }

    /// Sets a connection's Status (and LastChangeDate when it changed) and TLSEstablished.
    fn show_connection(&mut self, number: u32, status: &str, tls: bool) {
        let now = crate::cwmp::time::format_datetime_utc(self.now_unix());
        let b = self.engine.backends_mut();
        let key = format!("{PREFIX}{number}.status");
        if b.agent_default(&key).unwrap_or("Disabled") != status {
            b.set_runtime(&key, status);
            b.set_runtime(&format!("{PREFIX}{number}.last_change"), &now);
        }
        b.set_runtime(
            &format!("{PREFIX}{number}.tls_established"),
            if tls { "true" } else { "false" },
        );
    }
}

/// The agent keys of XMPP.Connection (datamodel/bindings/tr181-agent.toml).
const PREFIX: &str = "xmpp.connection.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connreq::{config::ConnectionRequest, listener::Phase, ConnReq, Inputs};
    use crate::datamodel::management::XmppServer;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn request(from: &str, password: &str) -> Request {
        Request {
            id: "1".into(),
            from: from.into(),
            username: "cr".into(),
            password: password.into(),
        }
    }

    /// Annex K's order (the allowed senders before anything else), then the HTTP listener's
    /// throttle per sender, rate limit and coalescing.
    #[test]
    fn requests_go_through_the_listeners_admission() {
        let cfg = ConnectionRequest {
            listen: "127.0.0.1:0".into(),
            auth_fail_burst: 2,
            auth_fail_interval: 600,
            rate_burst: 1,
            rate_interval: 600,
            udp: "off".into(),
            ..Default::default()
        };
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let mut cr = ConnReq::new(
            &cfg,
            "/p",
            &[7; 32],
            move || {
                w.fetch_add(1, Ordering::SeqCst);
            },
            || {},
        );
        cr.update(
            &Inputs {
                enabled: true,
                cwmp_enabled: true,
                username: "cr".into(),
                password: "pw".into(),
                acs_url: "http://127.0.0.1:9/".into(),
                stun: Default::default(),
            },
            true,
        );
        let admission = cr.admission();
        let allowed = Mutex::new(vec!["acs@x.test".to_string(), "ops@x.test/cr".to_string()]);
        let d = |from: &str, pw: &str| decide(&request(from, pw), &allowed, &admission);
        // Not allowed: refused before the password, which costs nothing.
        for _ in 0..5 {
            assert_eq!(d("eve@x.test/a", "guess"), Verdict::NotAllowed);
        }
        assert_eq!(d("ops@x.test/other", "pw"), Verdict::NotAllowed);
        // Two failures, then no verdict for that sender, whatever its resource.
        assert_eq!(d("acs@x.test/a", "guess"), Verdict::NotAuthorized);
        assert_eq!(d("acs@x.test/b", "guess"), Verdict::NotAuthorized);
        assert_eq!(d("acs@x.test/c", "pw"), Verdict::Busy);
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        // Another sender is not affected: accepted, then coalesced while the session is
        // pending, then over the rate limit once the agent is idle again.
        assert_eq!(d("ops@x.test/cr", "pw"), Verdict::Accept);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert_eq!(d("ops@x.test/cr", "pw"), Verdict::Accept);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        cr.set_phase(Phase::Idle);
        assert_eq!(d("ops@x.test/cr", "pw"), Verdict::Busy);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        // An empty list allows any sender.
        allowed.lock().unwrap().clear();
        assert_eq!(d("eve@x.test/a", "guess"), Verdict::NotAuthorized);
    }

    #[test]
    fn the_servers_come_from_the_domain_or_the_table() {
        let tls = crate::http::tls::TlsSettings::default();
        let resolv = std::path::Path::new("/r/etc/resolv.conf");
        let settings = |c: &XmppConnection| client_settings(c, tls.clone(), resolv);
        let list =
            |h: &[(&str, u16)]| Servers::List(h.iter().map(|(h, p)| (h.to_string(), *p)).collect());
        let mut c = XmppConnection {
            username: "cpe".into(),
            domain: "x.test".into(),
            server_connect_algorithm: "DNS".into(),
            keepalive_interval: Some(-1),
            ..Default::default()
        };
        let s = settings(&c).unwrap();
        assert_eq!(s.servers, list(&[("x.test", 5222)]));
        assert_eq!(s.keepalive, None);
        assert_eq!(
            (s.retry_initial, s.retry_multiplier, s.retry_max),
            (60, 2000, 30720)
        );
        // The model's default: the SRV records, asked of the device's name servers.
        c.server_connect_algorithm = "DNS-SRV".into();
        assert_eq!(
            settings(&c).unwrap().servers,
            Servers::Srv {
                domain: "x.test".into(),
                name_servers: NameServers::ResolvConf(resolv.to_path_buf()),
            }
        );
        c.server_connect_algorithm = "ServerTable".into();
        assert!(settings(&c).is_err(), "no server");
        let server = |enable, priority, address: &str, port| XmppServer {
            enable,
            priority,
            address: address.into(),
            port,
        };
        c.servers = vec![
            server(true, 20, "b.x.test", Some(5223)),
            server(false, 1, "off.x.test", None),
            server(true, 10, "a.x.test", Some(0)),
            server(true, 20, "c.x.test", None),
        ];
        c.keepalive_interval = Some(30);
        let s = settings(&c).unwrap();
        assert_eq!(
            s.servers,
            list(&[("a.x.test", 5222), ("b.x.test", 5223), ("c.x.test", 5222)])
        );
        assert_eq!(s.keepalive, Some(Duration::from_secs(30)));
        c.domain.clear();
        assert!(settings(&c).is_err(), "no domain");
    }
}
