//! XMPP Connection Requests (TR-069 Annex K) through a real XMPP server: prosody (Debian's
//! `prosody`) started by the test on 127.0.0.1 with a test CA's certificate for `localhost`,
//! TLS required, two accounts, found through the domain's SRV records (DNS-SRV) served by
//! dnsmasq. The CPE side is the agent's client (`xmpp::client`): STARTTLS
//! verified against the CA, SASL PLAIN, the resource bound; the ACS side is a minimal XMPP
//! client written here from RFC 6120 (STARTTLS, PLAIN, bind) that sends Annex K's
//! connection-request IQ to the CPE's full JID through prosody and reads the answer: a result
//! for the right credentials from an allowed JID, `not-authorized` for wrong ones.
//!
//! End to end: the real daemon, whose XMPP connection an ACS creates and points
//! ConnReqXMPPConnection at (AddObject, SetParameterValues), connects through prosody, reports
//! its ConnReqJabberID in a `4 VALUE CHANGE` without being asked, and opens a
//! `6 CONNECTION REQUEST` session when the ACS's IQ arrives; wrong credentials and a sender not
//! allowed open none.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cwmpd::cwmp::value::BaseType;
use cwmpd::xmpp::client::{Client, NameServers, Servers, Settings};
use cwmpd::xmpp::connreq::{self, Verdict};
use cwmpd::xmpp::negotiate::{Config, Negotiation, Step};
use cwmpd::xmpp::stream::{Event, Splitter};
use support::acs::{Acs, AcsOptions};
use support::cpe::{add_req_at, free_port, gpv_req, gpv_values, poll, spv_req, Cpe};
use support::tls::Pki;

/// prosody with its config and data in a directory of its own; killed on drop.
struct Prosody {
    child: std::process::Child,
    port: u16,
    _dir: support::tempdir::TempDir,
}

impl Prosody {
    /// prosody with the accounts of the tests: the CPE's, the ACS's, and another one's.
    fn with_accounts(pki: &Pki) -> Option<Prosody> {
        Prosody::start(
            pki,
            &[("cpe", "cpe-pw"), ("acs", "acs-pw"), ("eve", "eve-pw")],
        )
    }

    fn start(pki: &Pki, accounts: &[(&str, &str)]) -> Option<Prosody> {
        if std::process::Command::new("prosodyctl")
            .arg("--help")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "prosody is needed (Debian: prosody)"
            );
            return None;
        }
        let dir = support::tempdir::TempDir::new("prosody");
        let port = free_port();
        let accounts_dir = dir.path().join("data/localhost/accounts");
        std::fs::create_dir_all(&accounts_dir).unwrap();
        for (user, password) in accounts {
            // prosody's internal_plain storage: a Lua table per account.
            std::fs::write(
                accounts_dir.join(format!("{user}.dat")),
                format!("return {{\n\t[\"password\"] = \"{password}\";\n}};\n"),
            )
            .unwrap();
        }
        let d = dir.path().display().to_string();
        let cfg = dir.path().join("prosody.cfg.lua");
        std::fs::write(
            &cfg,
            format!(
                "run_as_root = true\ndaemonize = false\npidfile = \"{d}/prosody.pid\"\n\
                 data_path = \"{d}/data\"\nlog = {{ info = \"{d}/prosody.log\" }}\n\
                 modules_enabled = {{ \"roster\"; \"saslauth\"; \"tls\"; \"disco\"; \"ping\" }}\n\
                 c2s_require_encryption = true\nauthentication = \"internal_plain\"\n\
                 interfaces = {{ \"127.0.0.1\" }}\nc2s_ports = {{ {port} }}\ns2s_ports = {{ }}\n\
                 c2s_direct_tls_ports = {{ }}\n\
                 VirtualHost \"localhost\"\n  ssl = {{ key = {:?}; certificate = {:?} }}\n",
                pki.server.key_file.display().to_string(),
                pki.server.cert_file.display().to_string()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("prosody")
            .arg("--config")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prosody");
        let p = Prosody {
            child,
            port,
            _dir: dir,
        };
        poll(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("prosody listens");
        Some(p)
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ACS's side: a connection of its own through STARTTLS, PLAIN and binding, then
/// `send` and `answer` of stanzas.
struct XmppAcs {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    split: Splitter,
}

impl XmppAcs {
    fn connect(port: u16, pki: &Pki, user: &str, password: &str) -> XmppAcs {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut neg = Negotiation::new(Config {
            username: user.into(),
            domain: "localhost".into(),
            password: password.into(),
            resource: "acs".into(),
            use_tls: true,
        });
        let mut plain = tcp;
        plain.write_all(neg.stream_start().as_bytes()).unwrap();
        let mut split = Splitter::new();
        // Until STARTTLS: in clear.
        loop {
            let t = next_stanza(&mut plain, &mut split);
            match neg.element(&t).unwrap() {
                Step::Send(x) => plain.write_all(x.as_bytes()).unwrap(),
                Step::StartTls => break,
                s => panic!("unexpected {s:?} before TLS"),
            }
        }
        let settings = cwmpd::http::tls::TlsSettings {
            ca_file: Some(pki.ca_file.clone()),
            ..Default::default()
        };
        let conn = rustls::ClientConnection::new(
            settings.rustls_config().unwrap(),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, plain);
        neg.tls_started();
        split.restart();
        tls.write_all(neg.stream_start().as_bytes()).unwrap();
        loop {
            let t = next_stanza(&mut tls, &mut split);
            match neg.element(&t).unwrap() {
                Step::Send(x) => tls.write_all(x.as_bytes()).unwrap(),
                Step::Restart => {
                    split.restart();
                    tls.write_all(neg.stream_start().as_bytes()).unwrap();
                }
                Step::Ready(_) => break,
                Step::Wait => {}
                Step::StartTls => panic!("STARTTLS twice"),
            }
        }
        XmppAcs { tls, split }
    }

    /// Sends `iq` and returns the answer with the same id.
    fn request(&mut self, iq: &str, id: &str) -> String {
        self.tls.write_all(iq.as_bytes()).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let t = next_stanza(&mut self.tls, &mut self.split);
            if t.starts_with("<iq") && t.contains(&format!("id='{id}'"))
                || t.contains(&format!("id=\"{id}\""))
            {
                return t;
            }
        }
        panic!("no answer to {id}");
    }
}

/// The next top-level element from `r`.
fn next_stanza(r: &mut impl Read, split: &mut Splitter) -> String {
    let mut buf = [0u8; 4096];
    loop {
        while let Some(e) = split.next_event().unwrap() {
            match e {
                Event::Stanza(t) => return t,
                Event::Open(_) => {}
                Event::Close => panic!("the server closed the stream"),
            }
        }
        let n = r.read(&mut buf).expect("read");
        assert!(n > 0, "the server closed the connection");
        split.push(&buf[..n]).unwrap();
    }
}

/// Annex K's request as GenieACS sends it (`lib/connection-request.ts`: an IQ `get`).
fn connection_request(id: &str, to: &str, user: &str, password: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{to}'><connectionRequest xmlns='{}'>\
         <username>{user}</username><password>{password}</password></connectionRequest></iq>",
        connreq::NS
    )
}

/// The client's status once it is up (within 20 s).
fn connected(client: &Client) -> cwmpd::xmpp::client::Status {
    poll(Duration::from_secs(20), || {
        let s = client.status();
        s.up.then_some(s)
    })
    .unwrap_or_else(|| panic!("the CPE did not connect: {:?}", client.status()))
}

#[test]
fn an_annex_k_connection_request_through_prosody() {
    let pki = Pki::new();
    let Some(server) = Prosody::with_accounts(&pki) else {
        return;
    };
    // The domain's _xmpp-client._tcp records from a real DNS server (dnsmasq): nothing at
    // priority 10, prosody at 20, a listener that must never be reached at 30.
    let later = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    later.set_nonblocking(true).unwrap();
    let dns_port = free_port();
    let dns_addr = std::net::SocketAddr::from(([127, 0, 0, 1], dns_port));
    let srv = |prio: u16, port: u16| {
        format!("--srv-host=_xmpp-client._tcp.localhost,localhost,{port},{prio},0")
    };
    let Some(_dns) = support::servers::Dnsmasq::loopback(
        dns_port,
        &[
            srv(30, later.local_addr().unwrap().port()),
            srv(20, server.port),
            srv(10, free_port()),
            // A domain that says it offers no XMPP service (an SRV target of ".").
            "--srv-host=_xmpp-client._tcp.none.localhost".to_string(),
        ],
    ) else {
        return;
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let srv_of = |domain: &str| {
        Servers::Srv {
            domain: domain.into(),
            name_servers: NameServers::Fixed(vec![dns_addr]),
        }
        .resolve(&stop)
    };
    // Once dnsmasq answers (until then: the fallback).
    let ordered = poll(Duration::from_secs(10), || {
        srv_of("localhost").ok().filter(|o| o.len() > 1)
    })
    .unwrap_or_else(|| panic!("no SRV records: {:?}", srv_of("localhost")));
    let ports: Vec<u16> = ordered.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        ports[1..],
        [server.port, later.local_addr().unwrap().port()]
    );
    // No records (NXDOMAIN): the domain itself at 5222 (RFC 6120 §3.2.2).
    assert_eq!(
        srv_of("nothing.localhost").unwrap(),
        [("nothing.localhost".to_string(), 5222)]
    );
    assert!(
        srv_of("none.localhost").is_err(),
        "{:?}",
        srv_of("none.localhost")
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let client = Client::start(
        Settings {
            // DNS-SRV: a server that is not there first (priority 10), then prosody.
            servers: Servers::Srv {
                domain: "localhost".into(),
                name_servers: NameServers::Fixed(vec![dns_addr]),
            },
            negotiate: Config {
                username: "cpe".into(),
                domain: "localhost".into(),
                password: "cpe-pw".into(),
                resource: "cwmp".into(),
                use_tls: true,
            },
            keepalive: Some(Duration::from_secs(30)),
            ping_after: cwmpd::xmpp::client::PING_AFTER,
            retry_initial: 1,
            retry_multiplier: 2000,
            retry_max: 10,
            tls: cwmpd::http::tls::TlsSettings {
                ca_file: Some(pki.ca_file.clone()),
                ..Default::default()
            },
        },
        None,
        Box::new(move |r| {
            let v = connreq::decide(r, &["acs@localhost".to_string()], "cr-user", "cr-pw");
            if v == Verdict::Accept {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            v
        }),
        Box::new(|| {}),
    )
    .unwrap();
    let status = connected(&client);
    assert_eq!(status.jid, "cpe@localhost/cwmp");
    assert!(status.tls);
    assert!(
        later.accept().is_err(),
        "a server of a later priority was tried"
    );
    let mut acs = XmppAcs::connect(server.port, &pki, "acs", "acs-pw");
    let ok = acs.request(
        &connection_request("cr1", &status.jid, "cr-user", "cr-pw"),
        "cr1",
    );
    assert!(
        ok.contains("type='result'") || ok.contains("type=\"result\""),
        "{ok}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let bad = acs.request(
        &connection_request("cr2", &status.jid, "cr-user", "wrong"),
        "cr2",
    );
    assert!(bad.contains("not-authorized"), "{bad}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Another request than Annex K's: feature-not-implemented.
    let other = acs.request(
        &format!(
            "<iq type='get' id='v1' to='{}'><query xmlns='jabber:iq:version'/></iq>",
            status.jid
        ),
        "v1",
    );
    assert!(other.contains("feature-not-implemented"), "{other}");
    // A JID not in ConnReqAllowedJabberIDs, even with the right credentials.
    let mut eve = XmppAcs::connect(server.port, &pki, "eve", "eve-pw");
    let denied = eve.request(
        &connection_request("cr3", &status.jid, "cr-user", "cr-pw"),
        "cr3",
    );
    assert!(denied.contains("service-unavailable"), "{denied}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The client ends its stream when dropped.
    drop(client);
}

#[test]
fn the_daemon_answers_an_xmpp_connection_request_with_a_session() {
    daemon_flow("Device.", "tr181", "cwmp");
}

#[test]
fn the_daemon_answers_an_xmpp_connection_request_with_a_session_tr098() {
    // Without a Resource: the server picks one, and the daemon asks for it again after a
    // restart (the same JID).
    daemon_flow("InternetGatewayDevice.", "tr098", "");
}

/// The whole flow with the real daemon on the data model `model` (root `root`).
fn daemon_flow(root: &str, model: &str, resource: &str) {
    let jid_param = format!("{root}ManagementServer.ConnReqJabberID");
    let jid_param = jid_param.as_str();
    let pki = Pki::new();
    let Some(server) = Prosody::with_accounts(&pki) else {
        return;
    };
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::with_cr(
        &format!("xmpp-daemon-{model}"),
        &acs.url(),
        "username = \"cr-user\"\npassword = \"cr-secret\"\n",
    );
    // The ACS is plain HTTP here; the CA bundle is the XMPP server's trust.
    let text = std::fs::read_to_string(&cpe.cfg)
        .unwrap()
        .replacen(
            "[acs]\n",
            &format!("[acs]\nca_file = {:?}\n", pki.ca_file.display().to_string()),
            1,
        )
        .replacen(
            "[device]\n",
            &format!("[device]\ndata_model = {model:?}\n"),
            1,
        );
    std::fs::write(&cpe.cfg, text).unwrap();
    let port = server.port.to_string();
    let c = &format!("{root}XMPP.Connection.1.");
    let ms = &format!("{root}ManagementServer.");
    let connection = format!("{root}XMPP.Connection.1");
    let all: Vec<(String, &str, BaseType)> = [
        (c, "Enable", "true", BaseType::Boolean),
        (c, "Username", "cpe", BaseType::String),
        (c, "Password", "cpe-pw", BaseType::String),
        (c, "Domain", "localhost", BaseType::String),
        (c, "Resource", resource, BaseType::String),
        (c, "ServerConnectAlgorithm", "ServerTable", BaseType::String),
        (c, "UseTLS", "true", BaseType::Boolean),
        (c, "KeepAliveInterval", "60", BaseType::Long),
        (c, "ServerRetryInitialInterval", "1", BaseType::UnsignedInt),
        (c, "Server.1.Enable", "true", BaseType::Boolean),
        (c, "Server.1.ServerAddress", "127.0.0.1", BaseType::String),
        (c, "Server.1.Port", &port, BaseType::UnsignedInt),
        (ms, "ConnReqXMPPConnection", &connection, BaseType::String),
        (
            ms,
            "ConnReqAllowedJabberIDs",
            "acs@localhost",
            BaseType::String,
        ),
    ]
    .into_iter()
    .map(|(o, n, v, t)| (format!("{o}{n}"), v, t))
    .collect();
    let spv: Vec<(&str, &str, BaseType)> =
        all.iter().map(|(n, v, t)| (n.as_str(), *v, *t)).collect();
    acs.push_script([
        add_req_at(&format!("{root}XMPP.Connection."), "x1"),
        add_req_at(&format!("{root}XMPP.Connection.1.Server."), "x2"),
        spv_req(&spv, "x3"),
    ]);
    let daemon = cpe.spawn_run();
    // Connected: the JID told without the ACS asking.
    let wait = Duration::from_secs(60);
    let jid = poll(wait, || {
        acs.completed().iter().find_map(|s| {
            s.param(jid_param)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
    })
    .unwrap_or_else(|| panic!("no ConnReqJabberID reported\n{}", daemon.log()));
    match resource {
        "" => assert!(jid.starts_with("cpe@localhost/") && jid.len() > 14, "{jid}"),
        r => assert_eq!(jid, format!("cpe@localhost/{r}")),
    }
    let told = acs
        .completed()
        .into_iter()
        .find(|s| s.param(jid_param).is_some_and(|v| !v.is_empty()))
        .unwrap();
    assert!(told.has_event("4 VALUE CHANGE"), "{:?}", told.event_codes());
    // The connection's state, read in the session the request opens.
    let names: Vec<String> = [
        "Status",
        "JabberID",
        "TLSEstablished",
        "Password",
        "ServerConnectAlgorithm",
    ]
    .iter()
    .map(|n| format!("{c}{n}"))
    .chain([format!("{ms}SupportedConnReqMethods")])
    .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    acs.push_script([gpv_req(&names)]);
    let mut xacs = XmppAcs::connect(server.port, &pki, "acs", "acs-pw");
    let ok = xacs.request(
        &connection_request("cr1", &jid, "cr-user", "cr-secret"),
        "cr1",
    );
    assert!(
        ok.contains("type='result'") || ok.contains("type=\"result\""),
        "{ok}"
    );
    let cr = poll(wait, || {
        acs.completed_with("6 CONNECTION REQUEST")
            .into_iter()
            .next()
    })
    .unwrap_or_else(|| panic!("no session from the XMPP request\n{}", daemon.log()));
    let v = gpv_values(&cr);
    assert_eq!(v[&format!("{c}Status")], "Enabled");
    assert_eq!(v[&format!("{c}JabberID")], jid);
    assert_eq!(v[&format!("{c}TLSEstablished")], "true");
    assert_eq!(v[&format!("{c}Password")], "", "hidden");
    assert_eq!(v[&format!("{c}ServerConnectAlgorithm")], "ServerTable");
    assert_eq!(v[&format!("{ms}SupportedConnReqMethods")], "HTTP,STUN,XMPP");
    // Wrong credentials, and a sender not allowed: answered, no session.
    std::thread::sleep(Duration::from_secs(2));
    let before = acs.completed_with("6 CONNECTION REQUEST").len();
    let bad = xacs.request(&connection_request("cr2", &jid, "cr-user", "wrong"), "cr2");
    assert!(bad.contains("not-authorized"), "{bad}");
    let mut eve = XmppAcs::connect(server.port, &pki, "eve", "eve-pw");
    let denied = eve.request(
        &connection_request("cr3", &jid, "cr-user", "cr-secret"),
        "cr3",
    );
    assert!(denied.contains("service-unavailable"), "{denied}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        acs.completed_with("6 CONNECTION REQUEST").len(),
        before,
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    for secret in ["cr-secret", "cpe-pw"] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
    assert!(log.contains(&format!("XMPP: connected as {jid}")), "{log}");
    // A restart: the same JID bound again is no change to tell the ACS (the one it
    // acknowledged is kept), and connection requests work again.
    daemon.kill();
    let before = acs.completed().len();
    let daemon = cpe.spawn_run();
    let again = poll(wait, || {
        let id = format!("cr-{}", acs.completed().len());
        let answer = xacs.request(&connection_request(&id, &jid, "cr-user", "cr-secret"), &id);
        answer.contains("type='result'").then_some(())
    });
    again.unwrap_or_else(|| panic!("no answer after the restart\n{}", daemon.log()));
    poll(wait, || {
        acs.completed()[before..]
            .iter()
            .any(|s| s.has_event("6 CONNECTION REQUEST"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no session after the restart\n{}", daemon.log()));
    std::thread::sleep(Duration::from_secs(2));
    for s in &acs.completed()[before..] {
        assert!(
            s.param(jid_param).is_none(),
            "{:?}: {:?}",
            s.event_codes(),
            s.param(jid_param)
        );
    }
}

/// A server that negotiates in clear (PLAIN offered, no TLS), binds `cpe@localhost/srv-7` and
/// then never says another word: a connection a NAT or a WAN change dropped without a reset.
/// Its replies are the stanzas RFC 6120's examples (§6.4.6, §7.6.1) give, as prosody sends them
/// in `tests/xmpp.rs`'s other tests. Everything the client sent is kept, per connection.
struct SilentServer {
    port: u16,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let record = record.clone();
                std::thread::spawn(move || {
                    let index = {
                        let mut r = record.lock().unwrap();
                        r.push(String::new());
                        r.len() - 1
                    };
                    let mut text = String::new();
                    let until = |conn: &mut TcpStream, what: &str, text: &mut String| {
                        let mut buf = [0u8; 1024];
                        while !text.contains(what) {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => {
                                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                                    record.lock().unwrap()[index] = text.clone();
                                }
                            }
                        }
                        true
                    };
                    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                        xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>";
                    let steps = [
                        ("<stream:stream", format!("{header}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")),
                        ("</auth>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_string()),
                        ("<stream:stream", format!("{header}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")),
                        ("</iq>", "<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>cpe@localhost/srv-7</jid></bind></iq>".to_string()),
                    ];
                    for (what, reply) in steps {
                        if !until(&mut conn, what, &mut text) {
                            return;
                        }
                        // What follows is read afresh (the client's second header).
                        text = text.replacen(what, "", 1);
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    // Silence: read what comes (the presence, the ping), answer nothing.
                    until(&mut conn, "never sent", &mut text);
                });
            }
        });
        SilentServer { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A server gone silent is pinged (XEP-0199) and given up when it does not answer; the client
/// connects again and asks for the resource the server picked the first time (no Resource
/// set), so the JID the ACS was told stays the same.
#[test]
fn a_silent_server_is_pinged_then_replaced_and_the_resource_kept() {
    let server = SilentServer::start();
    let client = Client::start(
        Settings {
            servers: Servers::List(vec![("127.0.0.1".into(), server.port)]),
            negotiate: Config {
                username: "cpe".into(),
                domain: "localhost".into(),
                password: "cpe-pw".into(),
                resource: String::new(),
                use_tls: false,
            },
            keepalive: None,
            ping_after: Duration::from_secs(1),
            retry_initial: 1,
            retry_multiplier: 2000,
            retry_max: 10,
            tls: cwmpd::http::tls::TlsSettings::default(),
        },
        None,
        Box::new(|_| Verdict::NotAuthorized),
        Box::new(|| {}),
    )
    .unwrap();
    let up = connected(&client);
    assert_eq!(up.jid, "cpe@localhost/srv-7");
    let second = poll(Duration::from_secs(20), || {
        let seen = server.seen();
        (seen.len() >= 2 && seen[1].contains("</iq>")).then_some(seen)
    })
    .unwrap_or_else(|| {
        panic!(
            "no second connection: {:?} {:?}",
            server.seen(),
            client.status()
        )
    });
    assert!(second[0].contains("urn:xmpp:ping"), "{:?}", second[0]);
    assert!(
        !second[0].contains("<resource>"),
        "the first bind names no resource: {:?}",
        second[0]
    );
    assert!(
        second[1].contains("<resource>srv-7</resource>"),
        "{:?}",
        second[1]
    );
    drop(client);
}
