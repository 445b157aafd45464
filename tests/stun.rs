//! STUN and UDP Connection Requests (TR-111 Part 2, TR-069 Annex G) through a real NAT: three
//! network namespaces the test made (as root; skipped elsewhere):
//!
//! ```text
//!  cpe (10.88.1.2) --- nat (10.88.1.1 | 198.51.100.1, nftables masquerade) --- wan (198.51.100.2)
//!  the real cwmpd                                                          coturn :3478, the ACS
//! ```
//!
//! The agent learns the public address of its UDP Connection Request port from coturn (Debian's
//! `coturn`, classic STUN), reports it as UDPConnectionRequestAddress in a `4 VALUE CHANGE`
//! without the ACS having asked, reads NATDetected true, and a signed UDP Connection Request
//! sent to the public address, from the STUN server's address and port as Annex G says (a
//! port-restricted NAT lets nothing else in), reaches it through the NAT's binding and makes a
//! `6 CONNECTION REQUEST` session. A wrong signature, a replay and another username make none.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use support::acs::{Acs, AcsOptions};
use support::cpe::*;
use support::netns::Netns;
use support::servers::Coturn;

const WAIT: Duration = Duration::from_secs(60);
const CR_USER: &str = "cr-user";
const CR_PASS: &str = "cr-secret";
const UDP_ADDR: &str = "Device.ManagementServer.UDPConnectionRequestAddress";

/// cpe - nat - wan, the NAT masquerading what leaves towards wan.
fn nat_topology() -> Option<(Netns, Netns, Netns)> {
    let (cpe, nat, wan) = (Netns::new()?, Netns::new()?, Netns::new()?);
    cpe.veth_to("c0", &nat, "n0");
    nat.veth_to("n1", &wan, "w0");
    cpe.addr("c0", "10.88.1.2/24");
    nat.addr("n0", "10.88.1.1/24");
    nat.addr("n1", "198.51.100.1/24");
    wan.addr("w0", "198.51.100.2/24");
    cpe.route(&["add", "default", "via", "10.88.1.1"]);
    nat.sysctl("net/ipv4/ip_forward", "1");
    let rules = "table ip nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat;\n  oifname \"n1\" masquerade\n }\n}\n";
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", nat.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(rules.as_bytes())?;
            c.wait_with_output()
        });
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("nft: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "nft is needed (Debian: nftables): {e}"
            );
            return None;
        }
    }
    Some((cpe, nat, wan))
}

/// A UDP datagram from `src` to `dst` sent through a raw socket in `ns` (an ACS sends UDP
/// Connection Requests from its STUN server's address and port, which coturn holds).
fn send_from(ns: &Netns, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
    let mut p = Vec::with_capacity(28 + payload.len());
    let total = (28 + payload.len()) as u16;
    // IPv4 header: the kernel fills in the checksum (and an ID for 0).
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    // UDP header, no checksum (optional over IPv4).
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    ns.run(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        // IPPROTO_RAW: the header is ours (IP_HDRINCL implied).
        // SOCK_RAW (3): socket2 names it only with its `all` feature.
        let s = Socket::new(Domain::IPV4, Type::from(3), Some(Protocol::from(255))).expect("raw");
        s.send_to(&p, &std::net::SocketAddr::V4(dst).into())
            .expect("send the datagram");
    });
}

/// A UDP Connection Request of Annex G signed with `password`.
fn udp_request(ts: u64, id: &str, user: &str, password: &str, to: SocketAddrV4) -> Vec<u8> {
    let cn = "XTGRWIPC6D3IPXS3";
    let sig: String = cwmpd::connreq::udp::signature(password, ts, id, user, cn)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("GET http://{to}?ts={ts}&id={id}&un={user}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: {to}\r\n\r\n")
        .into_bytes()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_udp_connection_request_reaches_the_cpe_through_the_nat_binding_stun_found() {
    let Some((cpe_ns, _nat, wan)) = nat_topology() else {
        return;
    };
    let dir = support::tempdir::TempDir::new("stun-coturn");
    let Some(_coturn) = Coturn::start(&wan, "198.51.100.2", dir.path()) else {
        return;
    };
    let acs = wan.run(|| {
        Acs::start(AcsOptions::default().bind("198.51.100.2:0".parse().unwrap()))
            .expect("start ACS")
    });
    let cpe = Cpe::with_cr_listen(
        "stun-nat",
        &acs.url(),
        "0.0.0.0:0",
        &format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n"),
    );
    let text = std::fs::read_to_string(&cpe.cfg).unwrap()
        + "\n[stun]\nenable = true\nserver_address = \"198.51.100.2\"\n";
    std::fs::write(&cpe.cfg, text).unwrap();
    acs.push_script([gpv_req(&[
        "Device.ManagementServer.NATDetected",
        UDP_ADDR,
        "Device.ManagementServer.SupportedConnReqMethods",
        "Device.ManagementServer.STUNEnable",
    ])]);
    let daemon = cpe.spawn_run_in(cpe_ns.name());
    // The binding, told without the ACS asking (UDPConnectionRequestAddress is actively
    // notified by default): the NAT's public address and the port it mapped.
    let public = poll(WAIT, || {
        acs.completed()
            .iter()
            .filter_map(|s| s.param(UDP_ADDR).map(str::to_string))
            .find(|v| v.starts_with("198.51.100.1:"))
    })
    .unwrap_or_else(|| panic!("no UDPConnectionRequestAddress reported\n{}", daemon.log()));
    let public: SocketAddrV4 = public.parse().expect("host:port");
    let changed = acs
        .completed()
        .into_iter()
        .find(|s| s.param(UDP_ADDR).is_some())
        .unwrap();
    assert!(
        changed.has_event("4 VALUE CHANGE"),
        "{:?}",
        changed.event_codes()
    );
    let first = &acs.completed()[0];
    let v = gpv_values(first);
    assert_eq!(v["Device.ManagementServer.STUNEnable"], "true");
    assert_eq!(
        v["Device.ManagementServer.SupportedConnReqMethods"],
        "HTTP,STUN,XMPP"
    );
    // The NAT is seen once the binding is known.
    acs.push_script([gpv_req(&["Device.ManagementServer.NATDetected"])]);
    let stun_server = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 3478);
    let ts = now();
    let good = udp_request(ts, "1001", CR_USER, CR_PASS, public);
    // An ACS sends its request several times: one session.
    for _ in 0..3 {
        send_from(&wan, stun_server, public, &good);
    }
    let cr = poll(WAIT, || {
        acs.completed_with("6 CONNECTION REQUEST")
            .into_iter()
            .next()
    })
    .unwrap_or_else(|| panic!("no session from the UDP request\n{}", daemon.log()));
    let nat: Vec<String> = cr
        .calls("GetParameterValues")
        .iter()
        .flat_map(|e| gpv(e))
        .map(|p| p.value)
        .collect();
    assert_eq!(nat, ["true"], "NATDetected");
    // Forged, replayed, another user's, from elsewhere than the binding's peer: nothing.
    std::thread::sleep(Duration::from_secs(2));
    let before = acs.completed_with("6 CONNECTION REQUEST").len();
    send_from(&wan, stun_server, public, &good);
    send_from(
        &wan,
        stun_server,
        public,
        &udp_request(ts + 1, "1002", CR_USER, "wrong", public),
    );
    send_from(
        &wan,
        stun_server,
        public,
        &udp_request(ts + 1, "1003", "someone", CR_PASS, public),
    );
    send_from(
        &wan,
        SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 4000),
        public,
        &udp_request(ts + 1, "1004", CR_USER, CR_PASS, public),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        acs.completed_with("6 CONNECTION REQUEST").len(),
        before,
        "{}",
        daemon.log()
    );
    // A new request (new id, later ts): a new session.
    send_from(
        &wan,
        stun_server,
        public,
        &udp_request(ts + 2, "1005", CR_USER, CR_PASS, public),
    );
    poll(WAIT, || {
        (acs.completed_with("6 CONNECTION REQUEST").len() > before).then_some(())
    })
    .unwrap_or_else(|| panic!("no session from the second request\n{}", daemon.log()));
    let log = daemon.log();
    assert!(
        log.contains("STUN: the UDP Connection Request binding is 198.51.100.1:"),
        "{log}"
    );
    assert!(!log.contains(CR_PASS), "the password reached the log");
}

/// What the classic STUN peer saw of one Binding Request.
#[derive(Debug, Clone)]
struct Seen {
    from: std::net::SocketAddr,
    /// CONNECTION-REQUEST-BINDING (0xC001).
    crb: bool,
    /// RESPONSE-ADDRESS (0x0002).
    response_address: Option<SocketAddrV4>,
}

/// A classic STUN server (RFC 3489 §8.1) that honours RESPONSE-ADDRESS (§11.2.2: "the response
/// MUST be sent to the address and port" it names), as TR-111's STUN servers do and coturn does
/// not (coturn answers the source: `ns_turn_server.c`, `handle_turn_binding`). Its answers are
/// RFC 3489 Binding Responses with MAPPED-ADDRESS, the format coturn sends to a classic request
/// (the other test holds the agent to coturn's). Runs in `ns` until dropped; records what it saw.
struct ClassicStun {
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClassicStun {
    fn start(ns: &Netns, addr: &str) -> ClassicStun {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        // A socket stays in the namespace it was made in.
        let socket = ns.run(move || std::net::UdpSocket::bind(addr).expect("bind the STUN peer"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(std::sync::atomic::Ordering::Acquire) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let m = &buf[..n];
                // A Binding Request: type 0x0001, the length of its attributes.
                if n < 20
                    || m[..2] != [0, 1]
                    || usize::from(u16::from_be_bytes([m[2], m[3]])) != n - 20
                {
                    continue;
                }
                let (mut crb, mut response_address) = (false, None);
                let mut i = 20;
                while i + 4 <= n {
                    let t = u16::from_be_bytes([m[i], m[i + 1]]);
                    let l = usize::from(u16::from_be_bytes([m[i + 2], m[i + 3]]));
                    let v = &m[(i + 4).min(n)..(i + 4 + l).min(n)];
                    match t {
                        0xC001 => crb = true,
                        0x0002 if v.len() == 8 && v[1] == 1 => {
                            response_address = Some(SocketAddrV4::new(
                                Ipv4Addr::new(v[4], v[5], v[6], v[7]),
                                u16::from_be_bytes([v[2], v[3]]),
                            ));
                        }
                        _ => {}
                    }
                    i += 4 + l;
                }
                let std::net::SocketAddr::V4(src) = from else {
                    continue;
                };
                seen2.lock().unwrap().push(Seen {
                    from,
                    crb,
                    response_address,
                });
                let mut r = vec![0x01, 0x01, 0, 12];
                r.extend_from_slice(&m[4..20]);
                r.extend_from_slice(&[0, 1, 0, 8, 0, 1]);
                r.extend_from_slice(&src.port().to_be_bytes());
                r.extend_from_slice(&src.ip().octets());
                let to = response_address.map_or(from, std::net::SocketAddr::V4);
                let _ = socket.send_to(&r, to);
            }
        });
        ClassicStun {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ClassicStun {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The number in the log line that starts with `prefix` (`… at least 7 s…`).
fn logged_number(log: &str, prefix: &str) -> Option<u32> {
    let rest = &log[log.find(prefix)? + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_binding_timeout_is_found_through_a_nat_that_forgets_after_8_s() {
    let Some((cpe_ns, nat, wan)) = nat_topology() else {
        return;
    };
    // The NAT forgets a UDP binding 8 s after its last packet (answered or not).
    nat.sysctl("net/netfilter/nf_conntrack_udp_timeout", "8");
    nat.sysctl("net/netfilter/nf_conntrack_udp_timeout_stream", "8");
    let peer = ClassicStun::start(&wan, "198.51.100.2:3479");
    let acs = wan.run(|| {
        Acs::start(AcsOptions::default().bind("198.51.100.2:0".parse().unwrap()))
            .expect("start ACS")
    });
    let cpe = Cpe::with_cr_listen(
        "stun-lifetime",
        &acs.url(),
        "0.0.0.0:0",
        &format!("username = {CR_USER:?}\npassword = {CR_PASS:?}\n"),
    );
    // At most 12 s between keep-alives: the discovery looks between 5 s (the floor) and 12 s.
    let text = std::fs::read_to_string(&cpe.cfg).unwrap()
        + "\n[stun]\nenable = true\nserver_address = \"198.51.100.2\"\nserver_port = 3479\n\
           maximum_keepalive_period = 12\n";
    std::fs::write(&cpe.cfg, text).unwrap();
    let daemon = cpe.spawn_run_in(cpe_ns.name());
    let found = poll(Duration::from_secs(120), || {
        logged_number(&daemon.log(), "STUN: the NAT keeps the binding at least ")
    })
    .unwrap_or_else(|| panic!("no binding timeout found\n{}", daemon.log()));
    // 12 s died, 6 s lived, 9 s died, then 7 s lived (or died, by a scheduling hair).
    assert!((6..=7).contains(&found), "{found}\n{}", daemon.log());
    let period = logged_number(&daemon.log(), "; a keep-alive every ").unwrap();
    assert_eq!(period, found - found / 10);
    let seen = peer.seen();
    let primary: Vec<&Seen> = seen.iter().filter(|s| s.crb).collect();
    let probes: Vec<&Seen> = seen.iter().filter(|s| !s.crb).collect();
    assert!(!primary.is_empty() && probes.len() >= 4, "{seen:#?}");
    // Probes: from another port than the binding's, their answers asked at the binding's
    // public address as last learned (a binding that died may come back on another port).
    let mut public = None;
    for s in &seen {
        if s.crb {
            assert!(s.response_address.is_none(), "{seen:#?}");
            public = Some(s.from);
        } else {
            assert_ne!(Some(s.from), public, "{seen:#?}");
            assert_eq!(
                s.response_address.map(std::net::SocketAddr::V4),
                public,
                "{seen:#?}"
            );
        }
    }
}
