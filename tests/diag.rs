//! The diagnostics' network engines against the real kernel, in network namespaces the tests
//! make (as root; skipped elsewhere): ICMP echo over both kinds of socket, IPv4 and IPv6, to a
//! neighbour, to nobody, through a router with a hop limit that expires there and one that
//! does not, bound to an interface, with a large payload; TraceRoute over three routed hops
//! (IPv4 and IPv6), stopped by its hop limit and by a router that refuses; UDP echo (plain
//! and Echo Plus) between two namespaces and a source the server refuses; a TR-143 download
//! from Python's http.server in the other namespace and an upload to a PUT server of Python's
//! standard library there; DNS lookups against dnsmasq serving
//! a test zone, a missing name, nobody listening and a server that does not answer.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cwmpd::diag::dns::{TYPE_A, TYPE_AAAA};
use cwmpd::diag::echo;
use cwmpd::diag::lookup::{lookup, Lookup};
use cwmpd::diag::ping::{self, Method, Outcome, Ping, PingError};
use cwmpd::diag::trace::{self, Route, Trace};
use support::netns::{pair, three_hops, Netns};
use support::servers::{put_log, Dnsmasq, HttpServer};

fn spec(target: &str) -> Ping {
    Ping {
        target: target.parse().unwrap(),
        interface: None,
        count: 3,
        timeout: Duration::from_millis(1000),
        payload: 56,
        dscp: 0,
        ttl: None,
        interval: Duration::from_millis(50),
    }
}

/// Runs `p` inside `ns`.
fn ping_in(ns: &Netns, p: Ping) -> Result<Outcome, PingError> {
    ns.run(move || ping::run(&p, &AtomicBool::new(false)))
}

fn ok(r: Result<Outcome, PingError>) -> Outcome {
    r.unwrap_or_else(|e| panic!("ping failed to run: {e}"))
}

#[test]
fn a_neighbour_answers_over_a_raw_and_a_datagram_socket() {
    let Some((a, _b)) = pair() else { return };
    // As shipped the kernel lets no group open ICMP datagram sockets (`1 0`): root's raw one.
    a.sysctl("net/ipv4/ping_group_range", "1 0");
    let o = ok(ping_in(&a, spec("10.77.1.2")));
    assert_eq!(o.method, Method::Raw);
    assert_eq!((o.sent, o.successes(), o.failures()), (3, 3, 0), "{o:?}");
    assert_eq!(o.source, Some("10.77.1.1".parse::<IpAddr>().unwrap()));
    let (min, avg, max) = o.stats().unwrap();
    assert!(
        min <= avg && avg <= max && max < Duration::from_secs(1),
        "{o:?}"
    );
    // With the group allowed, the unprivileged kind.
    a.sysctl("net/ipv4/ping_group_range", "0 2147483647");
    let o = ok(ping_in(&a, spec("10.77.1.2")));
    assert_eq!(o.method, Method::Datagram);
    assert_eq!((o.sent, o.successes()), (3, 3), "{o:?}");
}

#[test]
fn ipv6_a_large_payload_dscp_and_the_interface() {
    let Some((a, _b)) = pair() else { return };
    let o = ok(ping_in(&a, spec("fd77:1::2")));
    assert_eq!((o.successes(), o.failures()), (3, 0), "{o:?}");
    assert_eq!(o.source, Some("fd77:1::1".parse::<IpAddr>().unwrap()));
    // A payload three times the MTU (fragmented both ways), a DSCP, bound to a0.
    let mut p = spec("10.77.1.2");
    p.payload = 4000;
    p.dscp = 46;
    p.interface = Some("a0".into());
    let o = ok(ping_in(&a, p.clone()));
    assert_eq!(o.successes(), 3, "{o:?}");
    // An interface that does not exist: the run cannot happen.
    p.interface = Some("nope0".into());
    assert!(matches!(ping_in(&a, p), Err(PingError::Socket(_))));
}

#[test]
fn nobody_answers_and_every_request_fails_in_its_time() {
    let Some((a, _b)) = pair() else { return };
    let mut p = spec("10.77.1.9");
    p.count = 2;
    p.timeout = Duration::from_millis(300);
    let o = ok(ping_in(&a, p));
    assert_eq!((o.sent, o.successes(), o.failures()), (2, 0, 2), "{o:?}");
    assert_eq!(o.stats(), None);
    // No route at all: failures too, not an error of the run.
    let mut p = spec("192.0.2.1");
    p.count = 2;
    p.timeout = Duration::from_millis(200);
    let r = ping_in(&a, p);
    match r {
        Ok(o) => assert_eq!(o.successes(), 0, "{o:?}"),
        Err(PingError::Socket(e)) => assert_eq!(e.raw_os_error(), Some(101), "{e}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_hop_limit_that_expires_at_a_router_fails_one_that_does_not_succeeds() {
    let Some([a, _r1, _r2, _b]) = three_hops() else {
        return;
    };
    let mut p = spec("10.77.4.2");
    p.ttl = Some(3);
    let o = ok(ping_in(&a, p.clone()));
    assert_eq!(o.successes(), 3, "{o:?}");
    p.ttl = Some(2);
    p.count = 2;
    p.timeout = Duration::from_millis(300);
    let o = ok(ping_in(&a, p));
    assert_eq!((o.sent, o.successes()), (2, 0), "{o:?}");
}

#[test]
fn values_no_socket_can_honour_are_refused_and_a_cancel_stops_the_run() {
    let mut p = spec("127.0.0.1");
    p.payload = ping::MAX_PAYLOAD + 1;
    assert!(matches!(
        ping::run(&p, &AtomicBool::new(false)),
        Err(PingError::Invalid(_))
    ));
    let mut p = spec("127.0.0.1");
    p.dscp = 64;
    assert!(matches!(
        ping::run(&p, &AtomicBool::new(false)),
        Err(PingError::Invalid(_))
    ));
    let mut p = spec("127.0.0.1");
    p.count = 0;
    assert!(matches!(
        ping::run(&p, &AtomicBool::new(false)),
        Err(PingError::Invalid(_))
    ));
    let Some((a, _b)) = pair() else { return };
    let o = a.run(|| ping::run(&spec("10.77.1.2"), &AtomicBool::new(true)));
    assert_eq!(ok(o).sent, 0);
}

fn lookup_in(ns: &Netns, server: &str, name: &str, qtype: u16, ms: u64) -> Lookup {
    let (server, name) = (server.parse().unwrap(), name.to_string());
    ns.run(move || {
        lookup(
            server,
            &name,
            qtype,
            Duration::from_millis(ms),
            None,
            &AtomicBool::new(false),
        )
    })
    .unwrap_or_else(|e| panic!("lookup failed to run: {e}"))
}

#[test]
fn nslookup_against_dnsmasq_a_missing_name_and_a_silent_server() {
    let Some((a, b)) = pair() else { return };
    b.addr("b0", "10.77.5.53/24");
    a.addr("a0", "10.77.5.1/24");
    let Some(_dns) = Dnsmasq::start(&b, "10.77.5.53") else {
        return;
    };
    let server = "10.77.5.53:53";
    // dnsmasq takes a moment to listen.
    let mut first = None;
    for _ in 0..50 {
        match lookup_in(&a, server, "www.example.test", TYPE_A, 200) {
            Lookup::Answered(r, t) => {
                first = Some((r, t));
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let (r, took) = first.expect("dnsmasq answers");
    assert_eq!(r.rcode, 0);
    assert_eq!(r.addresses, ["10.77.5.80".parse::<IpAddr>().unwrap()]);
    assert_eq!(r.canonical, "www.example.test");
    assert!(took < Duration::from_millis(200));
    let Lookup::Answered(r, _) = lookup_in(&a, server, "alias.example.test", TYPE_AAAA, 1000)
    else {
        panic!("no answer for the alias");
    };
    assert_eq!(r.canonical, "www.example.test");
    assert_eq!(r.addresses, ["fd77:5::80".parse::<IpAddr>().unwrap()]);
    // A name the zone does not have: NXDOMAIN, no address.
    let Lookup::Answered(r, _) = lookup_in(&a, server, "nope.example.test", TYPE_A, 1000) else {
        panic!("no answer for a missing name");
    };
    assert_eq!((r.rcode, r.addresses.len()), (3, 0));
    // Nobody on port 53 of that host: refused at once; a host that drops it: a timeout.
    assert!(matches!(
        lookup_in(&a, "10.77.1.2:53", "www.example.test", TYPE_A, 1000),
        Lookup::Refused
    ));
    b.ip(&["link", "set", "b0", "down"]);
    assert!(matches!(
        lookup_in(&a, server, "www.example.test", TYPE_A, 300),
        Lookup::Timeout
    ));
}

fn trace_spec(target: &str) -> Trace {
    Trace {
        target: target.parse().unwrap(),
        interface: None,
        tries: 3,
        timeout: Duration::from_millis(1000),
        payload: 32,
        dscp: 0,
        max_hops: 30,
    }
}

/// The address that answered each hop (empty for none).
fn hosts(route: &Route) -> Vec<String> {
    route
        .hops
        .iter()
        .map(|h| h.host.map(|a| a.to_string()).unwrap_or_default())
        .collect()
}

fn trace_in(ns: &Netns, t: Trace) -> Route {
    ns.run(move || trace::run(&t, &AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("trace failed to run: {e}"))
}

#[test]
fn traceroute_names_three_hops_and_ends_at_a_refusing_router() {
    let Some([a, _r1, _r2, _b]) = three_hops() else {
        return;
    };
    let route = trace_in(&a, trace_spec("10.77.4.2"));
    assert!(route.reached, "{route:?}");
    assert_eq!(hosts(&route), ["10.77.2.2", "10.77.3.2", "10.77.4.2"]);
    for h in &route.hops {
        assert_eq!(h.rtts.len(), 3, "{h:?}");
        assert!(
            h.rtts
                .iter()
                .all(|r| r.is_some_and(|d| d < Duration::from_secs(1))),
            "{h:?}"
        );
        assert_eq!(h.error, 0);
        assert!(!h.unreachable);
    }
    // The hop limit stops it short.
    let mut t = trace_spec("10.77.4.2");
    t.max_hops = 2;
    t.tries = 1;
    let route = trace_in(&a, t);
    assert!(!route.reached);
    assert_eq!(route.hops.len(), 2);
    // r1 refuses the destination: the trace ends there with the ICMP code.
    let mut t = trace_spec("10.77.9.9");
    t.tries = 1;
    let route = trace_in(&a, t);
    assert!(!route.reached, "{route:?}");
    assert_eq!(route.hops.len(), 1, "{route:?}");
    assert_eq!(route.hops[0].host, Some("10.77.2.2".parse().unwrap()));
    assert_eq!(route.hops[0].error, 13);
    assert!(route.hops[0].unreachable);
    // IPv6 (ICMPv6 probes, no IP header on the socket).
    let route = trace_in(&a, trace_spec("fd77:4::2"));
    assert!(route.reached, "{route:?}");
    assert_eq!(hosts(&route), ["fd77:2::2", "fd77:3::2", "fd77:4::2"]);
}

#[test]
fn a_router_without_a_route_ends_the_trace_with_a_network_unreachable() {
    // Namespaces of its own: a router sends few ICMP errors to one peer (Linux charges a
    // destination unreachable twice to the peer's tokens, refilled one a second), and the
    // other trace test spends them.
    let Some([a, _r1, _r2, _b]) = three_hops() else {
        return;
    };
    // r1 has no route to 10.77.8.0/24: its network unreachable, whose code is 0, ends the
    // route there (the state is Error_NoRouteToHost, not a hop limit reached).
    let mut t = trace_spec("10.77.8.8");
    t.tries = 1;
    let route = trace_in(&a, t);
    assert_eq!(route.hops.len(), 1, "{route:?}");
    assert!(route.hops[0].unreachable && !route.reached, "{route:?}");
    assert_eq!(route.hops[0].host, Some("10.77.2.2".parse().unwrap()));
    assert_eq!(route.hops[0].error, 0);
}

fn echo_client(server: &str) -> echo::Client {
    echo::Client {
        server: server.parse().unwrap(),
        interface: None,
        count: 4,
        timeout: Duration::from_millis(500),
        size: 64,
        dscp: 0,
        interval: Duration::from_millis(20),
    }
}

#[test]
fn udp_echo_plain_and_plus_both_ways_and_a_source_it_refuses() {
    let Some((a, b)) = pair() else { return };
    let start = |plus: bool, source: Option<&str>| {
        let cfg = echo::ServerConfig {
            listen: "10.77.1.2:0".parse().unwrap(),
            interface: Some("b0".into()),
            source: source.map(|s| s.parse().unwrap()),
            plus,
        };
        b.run(move || echo::Server::start(cfg))
            .expect("the echo server starts")
    };
    let measure = |port: u16| {
        let c = echo_client(&format!("10.77.1.2:{port}"));
        a.run(move || echo::measure(&c, &AtomicBool::new(false)))
            .expect("the client runs")
    };
    // A plain echo: every packet back as sent.
    let server = start(false, None);
    let got = measure(server.local_addr().port());
    assert_eq!(got.len(), 4);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.gen_sn, i as u32 + 1);
        assert!(
            r.rtt.is_some_and(|t| t < Duration::from_millis(500)),
            "{r:?}"
        );
        assert_eq!(r.reply.map(|p| (p.resp_sn, p.recv_us)), Some((0, 0)));
    }
    // The server counts an answer once its send returned: the client may hold the 4th answer
    // before that, so the counts are read once they settle (or as they are after 2 s).
    let st = support::cpe::poll(Duration::from_secs(2), || {
        let st = server.stats();
        (st.packets_responded >= 4).then_some(st)
    })
    .unwrap_or_else(|| server.stats());
    assert_eq!((st.packets_received, st.packets_responded), (4, 4));
    assert_eq!((st.bytes_received, st.bytes_responded), (256, 256));
    assert!(st.first_us.is_some() && st.first_us <= st.last_us);
    drop(server);
    // Echo Plus: the server's count and times in each answer.
    let server = start(true, Some("10.77.1.1"));
    let got = measure(server.local_addr().port());
    let plus: Vec<_> = got.iter().map(|r| r.reply.expect("answered")).collect();
    assert_eq!(
        plus.iter().map(|p| p.resp_sn).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(plus
        .iter()
        .all(|p| p.reply_us >= p.recv_us && p.failures == 0));
    assert!(plus.windows(2).all(|w| w[1].recv_us > w[0].recv_us));
    drop(server);
    // Only a given source is answered: another is not.
    let server = start(true, Some("10.77.1.99"));
    let mut c = echo_client(&format!("10.77.1.2:{}", server.local_addr().port()));
    c.count = 2;
    c.timeout = Duration::from_millis(200);
    let got = a
        .run(move || echo::measure(&c, &AtomicBool::new(false)))
        .unwrap();
    assert!(got.iter().all(|r| r.rtt.is_none()), "{got:?}");
    assert_eq!(server.stats().packets_received, 0);
    drop(server);
    // A datagram from a well-known port (another echo or chargen service, whose address may
    // have been spoofed to start a loop) is not answered; a flood is answered at most
    // MAX_RATE times a second.
    let server = start(false, None);
    let port = server.local_addr().port();
    let (loud, answered) = a.run(move || {
        let from_echo = std::net::UdpSocket::bind("10.77.1.1:7").unwrap();
        from_echo.send_to(b"loop?", ("10.77.1.2", port)).unwrap();
        from_echo
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let loud = from_echo.recv(&mut [0u8; 16]).is_ok();
        let flood = std::net::UdpSocket::bind("10.77.1.1:0").unwrap();
        flood.connect(("10.77.1.2", port)).unwrap();
        flood
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // Each datagram its own (the same one twice at once would be taken for a loop).
        for i in 0..3 * echo::MAX_RATE {
            let _ = flood.send(&i.to_be_bytes());
        }
        let mut answered = 0;
        while flood.recv(&mut [0u8; 16]).is_ok() {
            answered += 1;
        }
        (loud, answered)
    });
    assert!(!loud, "a well-known source port was answered");
    assert!(
        answered > 0 && answered <= 2 * echo::MAX_RATE,
        "{answered} answers to a flood of {}",
        3 * echo::MAX_RATE
    );
}

/// The first result of `run` once the server listens (it takes a moment to): a refused
/// connection is tried again, for up to 5 s.
fn once_listening<T>(mut run: impl FnMut() -> Result<T, cwmpd::diag::http::TestError>) -> T {
    for _ in 0..50 {
        match run() {
            Ok(t) => return t,
            Err(cwmpd::diag::http::TestError::Connect(_)) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the server does not answer")
}

#[test]
fn tr143_download_times_bytes_connections_and_a_time_based_test() {
    use cwmpd::diag::http::{self, Download, TestError};
    let Some((a, b)) = pair() else { return };
    let dir = support::tempdir::TempDir::new("tr143");
    std::fs::write(dir.path().join("1m.bin"), vec![7u8; 1 << 20]).unwrap();
    // Sparse: as long as a time-based test needs, without the disk.
    let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    big.set_len(4 << 30).unwrap();
    let _server = HttpServer::start(&b, "10.77.1.2", dir.path());
    let spec = |path: &str, connections: u32, duration: Option<Duration>| Download {
        ipv6: None,
        url: format!("http://10.77.1.2:8080/{path}"),
        interface: Some("a0".into()),
        dscp: 10,
        connections,
        duration,
        measurement_interval: None,
        measurement_offset: Duration::ZERO,
        limit: Duration::from_secs(20),
    };
    let run = |d: Download| a.run(move || http::download(&d, &AtomicBool::new(false)));
    let t = once_listening(|| run(spec("1m.bin", 1, None)));
    assert_eq!(t.connections.len(), 1);
    assert_eq!(t.ip_address_used, Some("10.77.1.1".parse().unwrap()));
    let c = &t.connections[0];
    assert_eq!(c.body_bytes, 1 << 20);
    // The head is counted too.
    assert!(
        c.test_bytes > 1 << 20 && c.test_bytes < (1 << 20) + 1024,
        "{c:?}"
    );
    assert_eq!(t.test_bytes(), c.test_bytes);
    assert!(
        c.tcp_open_request_us <= c.tcp_open_response_us
            && c.tcp_open_response_us <= c.rom_us
            && c.rom_us < c.bom_us
            && c.bom_us <= c.eom_us,
        "{c:?}"
    );
    // a0's counters: every byte of the response crossed it, with the headers of the packets.
    assert_eq!(t.device.as_deref(), Some("a0"));
    let received = t.total_bytes_received.expect("a0's counters");
    assert!(
        received >= c.test_bytes && received < 2 * c.test_bytes,
        "{t:?}"
    );
    // The connection's from its request, the test's from before its connect: the handshake.
    let own = c.total_bytes_received.unwrap();
    assert!(
        own >= c.test_bytes && own <= received && received - own < 1024,
        "{t:?}"
    );
    assert!(
        t.total_bytes_sent.is_some_and(|s| s > 0 && s < received),
        "{t:?}"
    );
    // One connection is fully loaded from its BOM to its EOM, with all its bytes.
    let full = t.full_loading.clone().expect("a full loading");
    assert_eq!(full.period_us, c.eom_us - c.bom_us);
    assert_eq!(full.test_bytes, c.test_bytes);
    assert!(full.total_bytes_received.is_some_and(|r| r <= received));
    assert!(t.incremental.is_empty());
    // Three connections at once, each the whole file.
    let t = run(spec("1m.bin", 3, None)).unwrap();
    assert_eq!(t.connections.len(), 3);
    assert!(
        t.connections.iter().all(|c| c.body_bytes == 1 << 20),
        "{t:?}"
    );
    assert_eq!(
        t.test_bytes(),
        t.connections.iter().map(|c| c.test_bytes).sum::<u64>()
    );
    assert!(t.bom_us() <= t.eom_us() && t.rom_us() < t.bom_us(), "{t:?}");
    assert!(t.total_bytes_received.unwrap() >= t.test_bytes(), "{t:?}");
    // Full loading when every connection began before the first ended: within the test.
    if let Some(full) = &t.full_loading {
        assert!(full.period_us <= t.eom_us() - t.bom_us(), "{t:?}");
        assert!(full.test_bytes <= t.test_bytes(), "{t:?}");
    }
    // Time-based: stops after its duration with what it got.
    let t = run(spec("big.bin", 1, Some(Duration::from_millis(300)))).unwrap();
    let c = &t.connections[0];
    let took = c.eom_us - c.bom_us;
    assert!((300_000..2_000_000).contains(&took), "{c:?}");
    assert!(c.body_bytes > 0 && c.body_bytes < 4 << 30, "{c:?}");
    // Two connections for a second, a result every 200 ms: five, end to end, adding up to the
    // test's bytes (no offset), each within a0's bytes.
    let mut d = spec("big.bin", 2, Some(Duration::from_secs(1)));
    d.measurement_interval = Some(Duration::from_millis(200));
    let t = run(d).unwrap();
    let inc = &t.incremental;
    assert_eq!(inc.len(), 5, "{inc:?}");
    assert!(
        inc[0].start_us >= t.bom_us() && inc[0].start_us < t.bom_us() + 10_000,
        "{t:?}"
    );
    assert!(
        inc.windows(2).all(|w| w[0].end_us == w[1].start_us),
        "{inc:?}"
    );
    assert!(
        inc.iter()
            .all(|i| i.end_us - i.start_us >= 100_000 && i.test_bytes > 0),
        "{inc:?}"
    );
    let last = inc.last().unwrap();
    assert!(last.end_us >= t.bom_us() + 1_000_000 && last.end_us <= t.eom_us());
    assert_eq!(
        inc.iter().map(|i| i.test_bytes).sum::<u64>(),
        t.test_bytes()
    );
    let received: u64 = inc.iter().map(|i| i.total_bytes_received.unwrap()).sum();
    assert_eq!(Some(received), t.total_bytes_received);
    assert!(received >= t.test_bytes(), "{t:?}");
    let full = t
        .full_loading
        .clone()
        .expect("both connections ran the second");
    assert!(
        full.period_us >= 900_000 && full.test_bytes <= t.test_bytes(),
        "{t:?}"
    );
    // An offset: the first result starts that long after the BOM, only whole intervals follow
    // ((1000 - 200) / 300: two), and they add up to less than the test's bytes.
    let mut d = spec("big.bin", 1, Some(Duration::from_secs(1)));
    d.measurement_interval = Some(Duration::from_millis(300));
    d.measurement_offset = Duration::from_millis(200);
    let t = run(d).unwrap();
    let inc = &t.incremental;
    assert_eq!(inc.len(), 2, "{inc:?}");
    assert!(inc[0].start_us >= t.bom_us() + 200_000, "{t:?}");
    assert!(inc[1].end_us >= t.bom_us() + 800_000 && inc[1].end_us < t.eom_us());
    assert!(inc.iter().map(|i| i.test_bytes).sum::<u64>() < t.test_bytes());
    // At most MAX_INCREMENTS of them.
    let mut d = spec("big.bin", 1, Some(Duration::from_millis(600)));
    d.measurement_interval = Some(Duration::from_millis(5));
    let t = run(d).unwrap();
    assert_eq!(t.incremental.len(), http::MAX_INCREMENTS);
    // A missing file, a closed port, a scheme not offered, a URL that would split the request.
    assert!(matches!(
        run(spec("nope.bin", 1, None)),
        Err(TestError::NoResponse(_))
    ));
    let mut d = spec("1m.bin", 1, None);
    d.url = "http://10.77.1.2:8081/1m.bin".into();
    assert!(matches!(run(d.clone()), Err(TestError::Connect(_))));
    d.url = "ftp://10.77.1.2/1m.bin".into();
    assert!(matches!(run(d.clone()), Err(TestError::Invalid(_))));
    d.url = "http://10.77.1.2:8080/1m.bin HTTP/1.1\r\nX: y".into();
    assert!(matches!(run(d.clone()), Err(TestError::Invalid(_))));
    // A network with no route: the kernel says so at once.
    d.url = "http://10.78.0.1:8080/1m.bin".into();
    d.interface = None;
    assert!(matches!(run(d), Err(TestError::NoRoute(_))), "no route");
}

#[test]
fn tr143_upload_a_file_length_three_connections_a_time_based_test_and_failures() {
    use cwmpd::diag::http::{self, Direction, TestError, Upload};
    let Some((a, b)) = pair() else { return };
    let dir = support::tempdir::TempDir::new("tr143-put");
    let log = dir.path().join("put.log");
    let _server = HttpServer::put(&b, "10.77.1.2", &log);
    let spec = |path: &str, connections: u32, duration: Option<Duration>| Upload {
        ipv6: None,
        url: format!("http://10.77.1.2:8081/{path}"),
        interface: Some("a0".into()),
        dscp: 10,
        connections,
        file_length: (1 << 20) + 7,
        duration,
        measurement_interval: None,
        measurement_offset: Duration::ZERO,
        limit: Duration::from_secs(20),
    };
    let run = |u: Upload| a.run(move || http::upload(&u, &AtomicBool::new(false)));
    let t = once_listening(|| run(spec("one", 1, None)));
    // The server read TestFileLength bytes of body.
    assert_eq!(
        put_log(&log),
        [("/one".into(), "length".into(), (1 << 20) + 7)]
    );
    assert_eq!(t.ip_address_used, Some("10.77.1.1".parse().unwrap()));
    let c = &t.connections[0];
    assert_eq!(c.body_bytes, (1 << 20) + 7);
    // The request head is counted too.
    assert!(
        c.test_bytes > (1 << 20) + 7 + 100 && c.test_bytes < (1 << 20) + 7 + 512,
        "{c:?}"
    );
    assert!(
        c.tcp_open_request_us <= c.tcp_open_response_us
            && c.tcp_open_response_us <= c.rom_us
            && c.rom_us <= c.bom_us
            && c.bom_us < c.eom_us,
        "{c:?}"
    );
    let sent = t.total_bytes_sent.expect("a0's counters");
    assert!(sent >= c.test_bytes && sent < 2 * c.test_bytes, "{t:?}");
    assert!(t.total_bytes_received.is_some_and(|r| r < sent), "{t:?}");
    assert_eq!(
        t.full_loading.as_ref().map(|f| f.test_bytes),
        Some(c.test_bytes)
    );
    // Three connections, each its own PUT of the whole length; no interface given: the
    // route's.
    let mut u = spec("three", 3, None);
    u.interface = None;
    let t = run(u).unwrap();
    assert_eq!(t.device.as_deref(), Some("a0"));
    assert!(t.total_bytes_sent.unwrap() >= t.test_bytes(), "{t:?}");
    assert_eq!(t.connections.len(), 3);
    assert!(
        t.connections.iter().all(|c| c.body_bytes == (1 << 20) + 7),
        "{t:?}"
    );
    let three: Vec<_> = put_log(&log).into_iter().skip(1).collect();
    assert_eq!(
        three,
        vec![("/three".into(), "length".into(), (1 << 20) + 7); 3]
    );
    // Time-based: chunks for 600 ms, then the last chunk; the server got every data byte. A
    // result every 200 ms: three, adding up to the test's bytes.
    let mut u = spec("timed", 2, Some(Duration::from_millis(600)));
    u.measurement_interval = Some(Duration::from_millis(200));
    let t = run(u).unwrap();
    let inc = &t.incremental;
    assert_eq!(inc.len(), 3, "{inc:?}");
    assert!(
        inc.windows(2).all(|w| w[0].end_us == w[1].start_us),
        "{inc:?}"
    );
    assert_eq!(
        inc.iter().map(|i| i.test_bytes).sum::<u64>(),
        t.test_bytes()
    );
    assert!(t.total_bytes_sent.unwrap() >= t.test_bytes(), "{t:?}");
    let timed: Vec<_> = put_log(&log).into_iter().skip(4).collect();
    assert_eq!(timed.len(), 2, "{timed:?}");
    let mut sent: Vec<u64> = t.connections.iter().map(|c| c.body_bytes).collect();
    let mut got: Vec<u64> = timed.iter().map(|(_, _, n)| *n).collect();
    sent.sort();
    got.sort();
    assert_eq!(sent, got);
    assert!(timed
        .iter()
        .all(|(p, k, _)| p == "/timed" && k == "chunked"));
    for c in &t.connections {
        // The chunk framing is counted in the test bytes, not in the body.
        assert!(c.body_bytes > 0 && c.test_bytes > c.body_bytes, "{c:?}");
        let took = c.eom_us - t.bom_us();
        assert!((600_000..2_000_000).contains(&took), "{c:?}");
    }
    // An interim 100 before the 201.
    run(spec("continue", 1, None)).unwrap();
    // A status other than 2xx, a close without a response, a server that never answers.
    let e = run(spec("forbidden", 1, None)).unwrap_err();
    assert!(matches!(e, TestError::NoResponse(_)), "{e}");
    assert_eq!(e.state(Direction::Upload), "Error_NoResponse");
    let e = run(spec("close", 1, None)).unwrap_err();
    assert!(matches!(e, TestError::NoResponse(_)), "{e}");
    let mut u = spec("silent", 1, None);
    u.limit = Duration::from_secs(1);
    let e = run(u).unwrap_err();
    assert!(matches!(e, TestError::Timeout(_)), "{e}");
    assert_eq!(e.state(Direction::Upload), "Error_Timeout");
    // A closed port.
    let mut u = spec("one", 2, None);
    u.url = "http://10.77.1.2:8082/one".into();
    let e = run(u).unwrap_err();
    assert!(matches!(e, TestError::Connect(_)), "{e}");
    assert_eq!(e.state(Direction::Upload), "Error_InitConnectionFailed");
    // A cancel stops it.
    let u = spec("one", 1, Some(Duration::from_secs(30)));
    let e = a
        .run(move || http::upload(&u, &AtomicBool::new(true)))
        .unwrap_err();
    assert_eq!(e, TestError::Cancelled);
}
