//! The agent's side of the Connection Request listener (§3.2.2): starting it, following the
//! ManagementServer settings, and the ConnectionRequestURL the data model shows.

use super::AgentError;
use super::{Agent, Settings, Trigger};
use crate::connreq::{self, listener::Phase, ConnReq};
use crate::cwmp::value::{BaseType, ParameterValue};
use crate::datamodel::management::Param;
use crate::events;

impl Agent {
    /// Starts the Connection Request listener (§3.2.2) and sets ConnectionRequestURL.
    pub(super) fn start_connreq(&mut self) -> Result<(), AgentError> {
        let key = self.random()?;
        let tx = self.tx.clone();
        let tx2 = self.tx.clone();
        self.connreq = Some(ConnReq::new(
            &self.cfg.connection_request,
            &self.state.connection_request_path,
            &key,
            move || {
                let _ = tx.send(Trigger::ConnectionRequest);
            },
            // What STUN learned changed: the next turn shows it (and checks notifications).
            move || {
                let _ = tx2.send(Trigger::ValuesChanged);
            },
        ));
        if let Some(cr) = &self.connreq {
            cr.trust_sources(&self.state.trusted_connreq_sources);
        }
        // Notification bookkeeping is RAM: in this run the ACS has heard of no UDP binding, so
        // the first one STUN learns is a change (even when learned before the first check).
        let udp = Param::UdpConnectionRequestAddress.path(self.engine.root());
        // The XMPP connection's JID the ACS knows stands until the connection binds one.
        let jid = self.state.reported_jabber_id.clone();
        self.engine
            .backends_mut()
            .set_runtime("connection_request.jabber_id", &jid);
        self.engine.mark_reported(&[
            ParameterValue {
                name: udp,
                value: String::new(),
                ty: BaseType::String,
            },
            ParameterValue {
                name: Param::ConnReqJabberId.path(self.engine.root()),
                value: jid,
                ty: BaseType::String,
            },
        ]);
        // With an empty ConnectionRequestPassword the listener stays closed (and says so).
        let s = self.settings();
        self.follow_connreq(&s, true);
        self.url_changed = false;
        // The listener's URL from now on, even when it is the empty one it starts from.
        if let Some(url) = self.connreq.as_ref().map(|c| c.url().to_string()) {
            self.engine
                .backends_mut()
                .set_runtime("connection_request.url", &url);
        }
        // Notification bookkeeping is RAM: a URL that moved while the agent was down is told
        // here (a forced active notification, TR-181), else the ACS could not reach the CPE.
        let url = self.connreq.is_some().then(|| self.shown_connreq_url());
        if let Some(url) = url {
            let known = self.state.reported_connection_request_url.clone();
            if !known.is_empty() && known != url && self.queue(events::VALUE_CHANGE, "") {
                // Not the URLs themselves: their path is a secret.
                log::info!("ConnectionRequestURL changed since it was last reported");
                self.save();
            }
        }
        Ok(())
    }

    /// ConnectionRequestURL before the listener runs (empty while no password is set: nothing
    /// will serve it).
    pub(super) fn provisional_url(&mut self) -> String {
        let s = self.settings();
        if s.connection_request.password.is_empty() {
            return String::new();
        }
        connreq::provisional_url(
            &self.cfg.connection_request,
            &self.state.connection_request_path,
            &s.url,
        )
    }

    /// Lets the listener follow the settings; when ConnectionRequestURL changed, the agent
    /// backend reports the new one and `url_changed` is set.
    pub(super) fn follow_connreq(&mut self, s: &Settings, recheck: bool) {
        let Some(cr) = &mut self.connreq else {
            return;
        };
        cr.update(&s.connection_request, recheck);
        let url = cr.url().to_string();
        let (udp, nat) = (cr.udp_address(), cr.nat_detected());
        if self.show_connreq_url(&url, s.connection_request.enabled) {
            self.url_changed = true;
        }
        if self.show_stun(&udp, nat, s.udp_notification_limit) {
            self.url_changed = true;
        }
        if self.follow_xmpp(s) {
            self.url_changed = true;
        }
    }

    /// Sets UDPConnectionRequestAddress and NATDetected in the data model (TR-069 Annex G):
    /// a new address at most once per `limit` seconds (UDPConnectionRequestAddressNotificationLimit;
    /// it is actively notified). Returns whether either changed.
    fn show_stun(&mut self, address: &str, nat: bool, limit: u32) -> bool {
        let b = self.engine.backends_mut();
        let nat = if nat { "true" } else { "false" };
        let mut changed = false;
        if b.agent_default("stun.nat_detected").unwrap_or("false") != nat {
            b.set_runtime("stun.nat_detected", nat);
            changed = true;
        }
        if b.agent_default("connection_request.udp_address")
            .unwrap_or_default()
            != address
        {
            let held = limit > 0
                && self
                    .udp_shown_at
                    .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(limit.into()));
            if !held {
                b.set_runtime("connection_request.udp_address", address);
                self.udp_shown_at = Some(std::time::Instant::now());
                changed = true;
            }
        }
        changed
    }

    /// Sets ConnectionRequestURL in the data model: `url`, or empty while connection requests
    /// are disabled (TR-181 HTTPConnectionRequestEnable: "ConnectionRequestURL MUST be set to
    /// empty"; in GetParameterValues and in the Inform alike). Returns whether it changed.
    pub(super) fn show_connreq_url(&mut self, url: &str, enabled: bool) -> bool {
        let shown = if enabled { url } else { "" };
        if self.shown_connreq_url() == shown {
            return false;
        }
        self.engine
            .backends_mut()
            .set_runtime("connection_request.url", shown);
        true
    }

    /// ConnectionRequestURL as the data model shows it now.
    pub(super) fn shown_connreq_url(&mut self) -> String {
        self.engine
            .backends_mut()
            .agent_default("connection_request.url")
            .unwrap_or_default()
            .to_string()
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        if let Some(cr) = &self.connreq {
            cr.set_phase(phase);
        }
    }

    /// Whether a connection request joined the running session since the last look.
    pub(super) fn take_joined(&self) -> bool {
        self.connreq.as_ref().is_some_and(ConnReq::take_joined)
    }

    /// Keeps the Connection Request sources that authenticated (written only when the set
    /// changed, not when the same sources alternate: no write per Connection Request).
    pub(super) fn keep_trusted_sources(&mut self) {
        let Some(list) = self.connreq.as_ref().map(ConnReq::trusted_sources) else {
            return;
        };
        let sorted = |l: &[String]| {
            let mut v = l.to_vec();
            v.sort();
            v
        };
        if sorted(&list) != sorted(&self.state.trusted_connreq_sources) {
            self.state.trusted_connreq_sources = list;
            self.save();
        }
    }
}
