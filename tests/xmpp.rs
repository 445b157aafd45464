//! XMPP Connection Requests (TR-069 Annex K) through a real XMPP server: prosody (Debian's
//! `prosody`) started by the test on 127.0.0.1 with a test CA's certificate for `localhost`,
//! TLS required, two accounts. The CPE side is the agent's client (`xmpp::client`): STARTTLS
//! verified against the CA, SASL PLAIN, the resource bound; the ACS side is a minimal XMPP
//! client written here from RFC 6120 (STARTTLS, PLAIN, bind) that sends Annex K's
//! connection-request IQ to the CPE's full JID through prosody and reads the answer: a result
//! for the right credentials from an allowed JID, `not-authorized` for wrong ones.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cwmpd::xmpp::client::{Client, Settings};
use cwmpd::xmpp::connreq::{self, Verdict};
use cwmpd::xmpp::negotiate::{Config, Negotiation, Step};
use cwmpd::xmpp::stream::{Event, Splitter};
use support::cpe::poll;
use support::tls::Pki;

/// prosody with its config and data in a directory of its own; killed on drop.
struct Prosody {
    child: std::process::Child,
    port: u16,
    _dir: support::tempdir::TempDir,
}

impl Prosody {
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
struct Acs {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    split: Splitter,
}

impl Acs {
    fn connect(port: u16, pki: &Pki, user: &str, password: &str) -> Acs {
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
        Acs { tls, split }
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

fn connection_request(id: &str, to: &str, user: &str, password: &str) -> String {
    format!(
        "<iq type='set' id='{id}' to='{to}'><connectionRequest xmlns='{}'>\
         <username>{user}</username><password>{password}</password></connectionRequest></iq>",
        connreq::NS
    )
}

#[test]
fn an_annex_k_connection_request_through_prosody() {
    let pki = Pki::new();
    let Some(server) = Prosody::start(
        &pki,
        &[("cpe", "cpe-pw"), ("acs", "acs-pw"), ("eve", "eve-pw")],
    ) else {
        return;
    };
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let client = Client::start(
        Settings {
            host: "127.0.0.1".into(),
            port: server.port,
            negotiate: Config {
                username: "cpe".into(),
                domain: "localhost".into(),
                password: "cpe-pw".into(),
                resource: "cwmp".into(),
                use_tls: true,
            },
            keepalive: Some(Duration::from_secs(30)),
            retry_initial: 1,
            retry_multiplier: 2000,
            retry_max: 10,
            tls: cwmpd::http::tls::TlsSettings {
                ca_file: Some(pki.ca_file.clone()),
                ..Default::default()
            },
        },
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
    let status = poll(Duration::from_secs(20), || {
        let s = client.status();
        s.up.then_some(s)
    })
    .unwrap_or_else(|| panic!("the CPE did not connect: {:?}", client.status()));
    assert_eq!(status.jid, "cpe@localhost/cwmp");
    assert!(status.tls);
    let mut acs = Acs::connect(server.port, &pki, "acs", "acs-pw");
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
    let mut eve = Acs::connect(server.port, &pki, "eve", "eve-pw");
    let denied = eve.request(
        &connection_request("cr3", &status.jid, "cr-user", "cr-pw"),
        "cr3",
    );
    assert!(denied.contains("service-unavailable"), "{denied}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The client ends its stream when dropped.
    drop(client);
}
