//! The client side of an XMPP stream's negotiation (RFC 6120 §4–§7) as a state machine without
//! I/O: STARTTLS, SASL PLAIN, resource binding, the legacy session where a server still wants
//! it, then the initial presence. The caller owns the socket: it sends what [`Negotiation`]
//! returns, feeds it the events of [`super::stream`], switches to TLS when told, and restarts
//! the stream cutter when told.
//!
//! The rules a CPE follows: TLS before any credential ([`Config::use_tls`], TR-181
//! `XMPP.Connection.{i}.UseTLS`: with it a server that offers no STARTTLS is refused; without
//! it TLS is still negotiated whenever the server offers it, and PLAIN goes in clear only when
//! TLS was turned off and the server offers none);
//! only PLAIN among the mechanisms (RFC 6120 §6.3.4 with the authzid empty); the resource the
//! data model names; the JID the server bound, as ConnReqJabberID.

use crate::soap::xml_escape;

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// The longest JID taken from the server (RFC 7622 §3.1: each part at most 1023 bytes; a
/// bare JID and a resource fit).
const MAX_JID: usize = 2048;

/// What the data model says of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Username and Domain: the JID `username@domain`.
    pub username: String,
    pub domain: String,
    pub password: String,
    pub resource: String,
    /// UseTLS: STARTTLS before the credentials.
    pub use_tls: bool,
}

impl Config {
    /// Whether `jid` (full or bare) is this account's: its bare part is `username@domain`,
    /// case (RFC 7622 maps the localpart and the domain to lower case) and a final dot of the
    /// domain aside.
    pub fn owns(&self, jid: &str) -> bool {
        let fold = |j: &str| j.trim_end_matches('.').to_lowercase();
        let bare = jid.split_once('/').map_or(jid, |(b, _)| b);
        fold(bare) == fold(&format!("{}@{}", self.username, self.domain))
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes.
    Send(String),
    /// Start TLS on the socket (the server said `proceed`), then restart the stream cutter and
    /// call [`Negotiation::stream_start`] again.
    StartTls,
    /// The stream must start anew on the same socket (after SASL): restart the cutter and call
    /// [`Negotiation::stream_start`].
    Restart,
    /// Negotiated: the JID the server bound. Stanzas from now on are the connection's.
    Ready(String),
    /// Nothing yet; wait for the next event.
    Wait,
}

/// Why the negotiation failed (the connection is closed and tried again later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server wants TLS and UseTLS is false, or offers no TLS and UseTLS is true.
    Tls,
    /// No mechanism we speak, or the credentials were refused.
    Auth(String),
    /// The server refused the resource binding (or the legacy session after it): a resource
    /// the client asked for may be taken.
    Bind,
    /// Something RFC 6120 does not allow here, or a stream error.
    Protocol(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Features,
    Proceed,
    SaslResult,
    Bind,
    Session,
    Ready,
}

/// One negotiation, from the first stream header to `Ready`.
#[derive(Debug, Clone)]
pub struct Negotiation {
    cfg: Config,
    state: State,
    tls: bool,
    authenticated: bool,
    jid: String,
}

impl Negotiation {
    pub fn new(cfg: Config) -> Negotiation {
        Negotiation {
            cfg,
            state: State::Features,
            tls: false,
            authenticated: false,
            jid: String::new(),
        }
    }

    /// Whether TLS was started.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The stream header to send at the start and after each restart (RFC 6120 §4.7).
    pub fn stream_start(&mut self) -> String {
        self.state = State::Features;
        format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
             xmlns:stream='{NS_STREAM}'>",
            xml_escape(&self.cfg.domain)
        )
    }

    /// The caller started TLS.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// A top-level element of the stream (from [`super::stream::Event::Stanza`]).
    pub fn element(&mut self, text: &str) -> Result<Step, Failure> {
        super::stream::with_element(text, |e| self.read(e))
            .map_err(|e| Failure::Protocol(format!("unreadable element: {e:?}")))?
            .unwrap_or(Ok(Step::Wait))
    }

    fn read(&mut self, e: roxmltree::Node<'_, '_>) -> Result<Step, Failure> {
        let (name, ns) = (e.tag_name().name(), e.tag_name().namespace().unwrap_or(""));
        if ns == NS_STREAM && name == "error" {
            let cond = e
                .first_element_child()
                .map(|c| c.tag_name().name().to_string())
                .unwrap_or_default();
            return Err(Failure::Protocol(format!("stream error: {cond}")));
        }
        match self.state {
            State::Features => {
                if !(ns == NS_STREAM && name == "features") {
                    return Err(Failure::Protocol(format!("expected features, got {name}")));
                }
                let has = |n: &str, ns: &str| {
                    e.children().find(|c| {
                        c.is_element()
                            && c.tag_name().name() == n
                            && c.tag_name().namespace() == Some(ns)
                    })
                };
                // TLS whenever offered (RFC 6120 §5.3.1 leaves it to the client when not
                // required): a password never goes in clear to a server that could take it
                // encrypted.
                if !self.tls {
                    match (has("starttls", NS_TLS), self.cfg.use_tls) {
                        (Some(_), _) => {
                            self.state = State::Proceed;
                            return Ok(Step::Send(format!("<starttls xmlns='{NS_TLS}'/>")));
                        }
                        (None, true) => return Err(Failure::Tls),
                        (None, false) => {}
                    }
                }
                if !self.authenticated {
                    let plain = has("mechanisms", NS_SASL).is_some_and(|m| {
                        m.children()
                            .any(|c| c.is_element() && c.text().map(str::trim) == Some("PLAIN"))
                    });
                    if !plain {
                        return Err(Failure::Auth("the server offers no PLAIN mechanism".into()));
                    }
                    let token = format!("\0{}\0{}", self.cfg.username, self.cfg.password);
                    let b64 = crate::http::auth::base64_encode(token.as_bytes());
                    self.state = State::SaslResult;
                    return Ok(Step::Send(format!(
                        "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{b64}</auth>"
                    )));
                }
                if has("bind", NS_BIND).is_none() {
                    return Err(Failure::Protocol("no resource binding offered".into()));
                }
                // RFC 3921's session, where a server still asks for it (not marked optional).
                let session = has("session", NS_SESSION)
                    .is_some_and(|s| !s.children().any(|c| c.has_tag_name("optional")));
                self.state = if session { State::Session } else { State::Bind };
                // Without a Resource the server picks one (RFC 6120 §7.6).
                let resource = if self.cfg.resource.is_empty() {
                    String::new()
                } else {
                    format!("<resource>{}</resource>", xml_escape(&self.cfg.resource))
                };
                Ok(Step::Send(format!(
                    "<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'>{resource}</bind></iq>"
                )))
            }
            State::Proceed => match (ns, name) {
                (NS_TLS, "proceed") => Ok(Step::StartTls),
                _ => Err(Failure::Tls),
            },
            State::SaslResult => match (ns, name) {
                (NS_SASL, "success") => {
                    self.authenticated = true;
                    Ok(Step::Restart)
                }
                (NS_SASL, "failure") => Err(Failure::Auth(
                    e.first_element_child()
                        .map(|c| c.tag_name().name().to_string())
                        .unwrap_or_else(|| "refused".into()),
                )),
                _ => Err(Failure::Protocol(format!("unexpected {name} during SASL"))),
            },
            State::Bind | State::Session => {
                // The answer expected now: the binding's, then (once bound) the session's.
                let expected = if self.jid.is_empty() {
                    "bind1"
                } else {
                    "sess1"
                };
                if name != "iq" || e.attribute("id") != Some(expected) {
                    // Not an answer to us: stanzas before binding are not expected; ignored.
                    return Ok(Step::Wait);
                }
                if e.attribute("type") != Some("result") {
                    return Err(Failure::Bind);
                }
                if expected == "bind1" {
                    self.jid = e
                        .descendants()
                        .find(|c| c.has_tag_name((NS_BIND, "jid")))
                        .and_then(|j| j.text())
                        .map(|t| t.trim().to_string())
                        .unwrap_or_default();
                    if self.jid.is_empty() {
                        return Err(Failure::Protocol("no JID bound".into()));
                    }
                    // The account's own JID with a resource (RFC 6120 §7.6.1), within RFC
                    // 7622's bounds: it becomes ConnReqJabberID, which the ACS is told.
                    if self.jid.len() > MAX_JID || !self.cfg.owns(&self.jid) {
                        return Err(Failure::Protocol(
                            "the server bound a JID that is not the account's".into(),
                        ));
                    }
                    if self.state == State::Session {
                        return Ok(Step::Send(format!(
                            "<iq type='set' id='sess1'><session xmlns='{NS_SESSION}'/></iq>"
                        )));
                    }
                }
                self.state = State::Ready;
                Ok(Step::Ready(self.jid.clone()))
            }
            State::Ready => Ok(Step::Wait),
        }
    }

    /// The initial presence, sent once ready (RFC 6121 §4.2).
    pub fn presence() -> &'static str {
        "<presence/>"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(use_tls: bool) -> Config {
        Config {
            username: "cpe1".into(),
            domain: "x.test".into(),
            password: "pw".into(),
            resource: "cwmp".into(),
            use_tls,
        }
    }

    const TLS_FEATURES: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
    const SASL_FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    const BIND_FEATURES: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

    /// A negotiation through SASL, at a server that still requires the legacy session: the
    /// binding request sent.
    fn bound_with_session() -> Negotiation {
        let mut n = Negotiation::new(cfg(false));
        n.stream_start();
        n.element(SASL_FEATURES).unwrap();
        n.element("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            .unwrap();
        n.stream_start();
        n.element(&BIND_FEATURES.replace("<optional/>", ""))
            .unwrap();
        n
    }

    #[test]
    fn starttls_sasl_plain_and_binding_as_prosody_offers_them() {
        let mut n = Negotiation::new(cfg(true));
        assert!(n.stream_start().contains("to='x.test'"));
        assert_eq!(
            n.element(TLS_FEATURES),
            Ok(Step::Send(
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".into()
            ))
        );
        assert_eq!(
            n.element("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            Ok(Step::StartTls)
        );
        n.tls_started();
        n.stream_start();
        let Ok(Step::Send(auth)) = n.element(SASL_FEATURES) else {
            panic!("no auth");
        };
        // base64("\0cpe1\0pw")
        assert!(auth.contains("mechanism='PLAIN'>AGNwZTEAcHc=<"), "{auth}");
        assert_eq!(
            n.element("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
            Ok(Step::Restart)
        );
        n.stream_start();
        let Ok(Step::Send(bind)) = n.element(BIND_FEATURES) else {
            panic!("no bind");
        };
        assert!(bind.contains("<resource>cwmp</resource>"));
        assert_eq!(
            n.element("<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>cpe1@x.test/cwmp</jid></bind></iq>"),
            Ok(Step::Ready("cpe1@x.test/cwmp".into()))
        );
        assert!(n.tls());
    }

    /// A negotiation in clear through SASL, the binding's features given: the binding request
    /// it sent.
    fn at_binding(cfg: Config) -> (Negotiation, String) {
        let mut n = Negotiation::new(cfg);
        n.stream_start();
        n.element(SASL_FEATURES).unwrap();
        n.element("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            .unwrap();
        n.stream_start();
        let Ok(Step::Send(bind)) = n.element(BIND_FEATURES) else {
            panic!("no bind");
        };
        (n, bind)
    }

    #[test]
    fn only_the_accounts_own_jid_is_taken() {
        let long = format!("cpe1@x.test/{}", "r".repeat(MAX_JID));
        for (jid, ok) in [
            ("CPE1@X.test/anything", true),
            ("cpe1@x.test", true),
            ("eve@x.test/cwmp", false),
            ("cpe1@y.test/cwmp", false),
            (long.as_str(), false),
        ] {
            let (mut n, _) = at_binding(cfg(false));
            let got = n.element(&format!("<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{jid}</jid></bind></iq>"));
            assert_eq!(got.is_ok(), ok, "{jid}: {got:?}");
        }
    }

    #[test]
    fn a_refused_binding_is_told_apart() {
        let (mut n, _) = at_binding(cfg(false));
        assert_eq!(
            n.element("<iq type='error' id='bind1'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
            Err(Failure::Bind)
        );
    }

    #[test]
    fn without_a_resource_the_server_picks_one() {
        let (_, bind) = at_binding(Config {
            resource: String::new(),
            ..cfg(false)
        });
        assert!(
            bind.ends_with("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'></bind></iq>"),
            "{bind}"
        );
    }

    #[test]
    fn no_credential_goes_in_clear_and_refusals_end_it() {
        // UseTLS and no STARTTLS offered.
        let mut n = Negotiation::new(cfg(true));
        n.stream_start();
        assert_eq!(n.element(SASL_FEATURES), Err(Failure::Tls));
        // UseTLS off, but the server requires TLS, or only offers it: TLS all the same.
        for features in [
            TLS_FEATURES.to_string(),
            TLS_FEATURES.replace("<required/>", ""),
        ] {
            let mut n = Negotiation::new(cfg(false));
            n.stream_start();
            assert!(
                matches!(n.element(&features), Ok(Step::Send(s)) if s.contains("starttls")),
                "{features}"
            );
        }
        // A session answer before the binding's is not the binding's: no empty JID.
        let mut n = bound_with_session();
        assert_eq!(n.element("<iq type='result' id='sess1'/>"), Ok(Step::Wait));
        // Refused credentials; no PLAIN; a stream error.
        let mut n = Negotiation::new(cfg(false));
        n.stream_start();
        assert!(matches!(n.element(SASL_FEATURES), Ok(Step::Send(_))));
        assert_eq!(
            n.element(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
            ),
            Err(Failure::Auth("not-authorized".into()))
        );
        let mut n = Negotiation::new(cfg(false));
        n.stream_start();
        let scram_only = SASL_FEATURES.replace("<mechanism>PLAIN</mechanism>", "");
        assert!(matches!(n.element(&scram_only), Err(Failure::Auth(_))));
        let mut n = Negotiation::new(cfg(false));
        n.stream_start();
        assert!(matches!(
            n.element("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
            Err(Failure::Protocol(m)) if m.contains("conflict")
        ));
    }

    #[test]
    fn a_server_that_still_wants_a_session_gets_one() {
        let mut n = bound_with_session();
        let Ok(Step::Send(s)) = n.element("<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>cpe1@x.test/r</jid></bind></iq>") else {
            panic!("no session");
        };
        assert!(s.contains("xmpp-session"));
        assert_eq!(
            n.element("<iq type='result' id='sess1'/>"),
            Ok(Step::Ready("cpe1@x.test/r".into()))
        );
    }
}
