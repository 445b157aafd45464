//! The netlink socket (`datamodel::backend::netlink::socket`) against the real kernel, in
//! network namespaces each test makes (`support::netns`): links (veth pairs, a bridge and its
//! port, down, MTU, MAC, kind), counters after traffic between two namespaces, IPv4/IPv6
//! addresses with and without lifetimes, routes (default, connected, metric, another table),
//! neighbours and the bridge FDB after traffic, and the change monitor. Every dump is also
//! compared with what iproute2 (`ip -j …`, an independent implementation of the same
//! protocol) prints for the same namespace. The backend over it: counters read afresh within a
//! session, its links kept.
//!
//! Needs root and `ip netns` (skipped with a line otherwise, never under `CI`). Traffic is UDP
//! sent from a thread inside a namespace: nothing leaves the namespaces.

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use cwmpd::datamodel::backend::netlink::socket::{Monitor, Rtnl};
use cwmpd::datamodel::backend::netlink::wire::{Addr, Link, Neigh, Route, AF_BRIDGE, AF_INET};
use support::netns::{Json, Netns};

// linux/if.h, linux/if_addr.h, linux/neighbour.h, linux/rtnetlink.h.
const IFF_UP: u32 = 0x1;
const IF_OPER_DOWN: u8 = 2;
const IF_OPER_LOWERLAYERDOWN: u8 = 3;
const IF_OPER_UP: u8 = 6;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_PERMANENT: u32 = 0x80;
const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;
const NUD_DELAY: u16 = 0x08;
const NUD_PROBE: u16 = 0x10;
const RT_TABLE_MAIN: u32 = 254;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_LINK: u8 = 253;

/// A dump client whose socket was opened inside `ns` (a socket belongs to the namespace it
/// was made in; it is then used from the test's own thread).
fn rtnl(ns: &Netns) -> Rtnl {
    ns.run(|| Rtnl::open(Duration::from_secs(5)).expect("open NETLINK_ROUTE"))
}

fn link<'a>(links: &'a [Link], name: &str) -> &'a Link {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no link {name} in {links:#?}"))
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// iproute2's operstate names (ip/ipaddress.c: `oper_states`).
fn oper_name(oper: u8) -> &'static str {
    [
        "UNKNOWN",
        "NOTPRESENT",
        "DOWN",
        "LOWERLAYERDOWN",
        "TESTING",
        "DORMANT",
        "UP",
    ]
    .get(usize::from(oper))
    .copied()
    .unwrap_or("?")
}

/// UDP datagrams from `from` (an address of ns `src`) to `to`: traffic across the namespaces.
fn send_udp(src: &Netns, from: IpAddr, to: IpAddr, count: usize, size: usize) {
    src.run(move || {
        let s = UdpSocket::bind((from, 0)).expect("bind");
        for _ in 0..count {
            s.send_to(&vec![0x5a; size], (to, 9)).expect("send");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// Every link matches `ip -j -d link` of the same namespace: index, name, MTU, MAC,
/// operstate, UP, master, kind.
fn compare_links(ns: &Netns, links: &[Link]) {
    let theirs = Json::parse(&ns.ip_json(&["-d", "link", "show"]));
    assert_eq!(theirs.items().len(), links.len(), "{links:#?}");
    for t in theirs.items() {
        let name = t.get("ifname").and_then(Json::str).unwrap();
        let l = link(links, name);
        assert_eq!(
            Some(u64::from(l.index)),
            t.get("ifindex").and_then(Json::u64)
        );
        assert_eq!(
            l.mtu.map(u64::from),
            t.get("mtu").and_then(Json::u64),
            "{name}"
        );
        assert_eq!(
            l.mac.as_deref().map(mac_text).as_deref(),
            t.get("address").and_then(Json::str),
            "{name}"
        );
        assert_eq!(
            Some(oper_name(l.oper)),
            t.get("operstate").and_then(Json::str),
            "{name}"
        );
        let up = t
            .get("flags")
            .unwrap()
            .items()
            .iter()
            .any(|f| f.str() == Some("UP"));
        assert_eq!(l.flags & IFF_UP != 0, up, "{name}");
        let master = l.master.map(|m| link_name(links, m));
        assert_eq!(
            master.as_deref(),
            t.get("master").and_then(Json::str),
            "{name}"
        );
        let kind = t
            .get("linkinfo")
            .and_then(|i| i.get("info_kind"))
            .and_then(Json::str);
        assert_eq!(l.kind.as_deref(), kind, "{name}");
    }
}

fn link_name(links: &[Link], index: u32) -> String {
    links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
        .unwrap_or_default()
}

#[test]
fn links_veth_bridge_down_mtu_mac_master_kind() {
    let Some(ns) = Netns::new() else { return };
    ns.veth("v0", "v1");
    ns.bridge("br0");
    ns.enslave("v1", "br0");
    ns.ip(&["link", "set", "v0", "mtu", "1400"]);
    ns.ip(&["link", "set", "v0", "address", "02:00:5e:10:00:01"]);
    let mut rt = rtnl(&ns);

    // Carrier and operstate settle shortly after `up` (linkwatch runs asynchronously).
    let deadline = Instant::now() + Duration::from_secs(5);
    let links = loop {
        let links = rt.links().unwrap();
        if link(&links, "v0").oper == IF_OPER_UP && link(&links, "br0").oper == IF_OPER_UP
            || Instant::now() > deadline
        {
            break links;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let v0 = link(&links, "v0");
    let v1 = link(&links, "v1");
    let br = link(&links, "br0");
    let lo = link(&links, "lo");
    assert_eq!((v0.oper, v0.carrier), (IF_OPER_UP, Some(true)));
    assert_eq!((v0.mtu, v1.mtu), (Some(1400), Some(1500)));
    assert_eq!(v0.mac.as_deref(), Some(&[2, 0, 0x5e, 0x10, 0, 1][..]));
    assert_eq!(
        (v0.kind.as_deref(), br.kind.as_deref()),
        (Some("veth"), Some("bridge"))
    );
    assert_eq!(lo.kind, None);
    assert_eq!((v0.link_type, lo.link_type), (1, 772)); // ARPHRD_ETHER, ARPHRD_LOOPBACK
    assert_eq!((v1.master, v0.master), (Some(br.index), None));
    assert_eq!(ns.index("v0"), v0.index);
    assert!(v0.stats.is_some() && v0.carrier_changes.is_some());
    compare_links(&ns, &links);

    // Down: the end taken down is DOWN, its peer loses its carrier (veth: both carriers go).
    // The kernel sets the peer's operstate from its linkwatch work, which may run up to a
    // second later (a CI run read UP there once): polled, as going up is above.
    ns.down("v1");
    let deadline = Instant::now() + Duration::from_secs(5);
    let links = loop {
        let links = rt.links().unwrap();
        if link(&links, "v0").oper == IF_OPER_LOWERLAYERDOWN || Instant::now() > deadline {
            break links;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (v0, v1) = (link(&links, "v0"), link(&links, "v1"));
    assert_eq!((v1.oper, v1.flags & IFF_UP), (IF_OPER_DOWN, 0));
    assert_eq!(v0.carrier, Some(false));
    assert_eq!(v0.oper, IF_OPER_LOWERLAYERDOWN);
    assert!(v0.carrier_changes.unwrap() >= 2);
    compare_links(&ns, &links);
}

/// Two namespaces joined by a veth pair; `b` holds a bridge `br0` with the pair's end as its
/// port and `10.77.0.2/24`, `a` holds `a0` with `10.77.0.1/24`.
fn two_namespaces() -> Option<(Netns, Netns)> {
    let a = Netns::new()?;
    let b = Netns::new()?;
    a.veth_to("a0", &b, "b0");
    b.bridge("br0");
    b.enslave("b0", "br0");
    a.addr("a0", "10.77.0.1/24");
    b.addr("br0", "10.77.0.2/24");
    Some((a, b))
}

#[test]
fn counters_neighbours_and_fdb_after_traffic() {
    let Some((a, b)) = two_namespaces() else {
        return;
    };
    let (mut ra, mut rb) = (rtnl(&a), rtnl(&b));
    let before = link(&ra.links().unwrap(), "a0").stats.clone().unwrap();
    let before_b = link(&rb.links().unwrap(), "b0").stats.clone().unwrap();
    let (ip_a, ip_b): (IpAddr, IpAddr) =
        ("10.77.0.1".parse().unwrap(), "10.77.0.2".parse().unwrap());
    send_udp(&a, ip_a, ip_b, 20, 1000);

    // Counters: at least the 20 datagrams of 1000 bytes of payload each (+ 28 IP/UDP + 14
    // Ethernet), sent by a0 and received by its peer b0.
    let links = ra.links().unwrap();
    let after = link(&links, "a0").stats.clone().unwrap();
    assert!(
        after.tx_packets >= before.tx_packets + 20,
        "{before:?} {after:?}"
    );
    assert!(
        after.tx_bytes >= before.tx_bytes + 20 * 1042,
        "{before:?} {after:?}"
    );
    let after_b = link(&rb.links().unwrap(), "b0").stats.clone().unwrap();
    assert!(after_b.rx_packets >= before_b.rx_packets + 20);
    assert!(after_b.rx_bytes >= before_b.rx_bytes + 20 * 1042);
    // The same counters as iproute2's (read after ours: never fewer).
    let theirs = Json::parse(&a.ip_json(&["-s", "link", "show", "a0"]));
    let tx = theirs.items()[0].get("stats64").unwrap().get("tx").unwrap();
    let their_tx = tx.get("packets").and_then(Json::u64).unwrap();
    assert!(their_tx >= after.tx_packets && their_tx <= after.tx_packets + 10);
    assert_eq!(
        after.tx_errors,
        tx.get("errors").and_then(Json::u64).unwrap()
    );

    // Neighbours: a knows b's bridge (ARP answered: REACHABLE, or STALE/DELAY/PROBE later),
    // with br0's MAC.
    let mac_b = b.mac("br0");
    let neighs = ra.neighs().unwrap();
    let n = neighs
        .iter()
        .find(|n| n.family == AF_INET && n.dst == Some(ip_b))
        .unwrap_or_else(|| panic!("no neighbour 10.77.0.2 in {neighs:#?}"));
    assert_eq!(n.lladdr.as_deref().map(mac_text), Some(mac_b));
    assert_eq!(n.index, a.index("a0"));
    assert_ne!(
        n.state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE),
        0,
        "{n:?}"
    );
    compare_neighs(&a, || ra.neighs().unwrap());

    // The bridge FDB of b: a0's MAC learnt on the port b0, master br0.
    let mac_a = a.mac("a0");
    let neighs = rb.fdb().unwrap();
    assert!(neighs.iter().all(|n| n.family == AF_BRIDGE), "{neighs:#?}");
    assert!(rb.neighs().unwrap().iter().all(|n| n.family != AF_BRIDGE));
    let links_b = rb.links().unwrap();
    let fdb = neighs
        .iter()
        .find(|n| n.family == AF_BRIDGE && n.lladdr.as_deref().map(mac_text) == Some(mac_a.clone()))
        .unwrap_or_else(|| panic!("no FDB entry for {mac_a} in {neighs:#?}"));
    assert_eq!(fdb.index, link(&links_b, "b0").index);
    assert_eq!(fdb.master, Some(link(&links_b, "br0").index));
    // iproute2's `bridge -j fdb` lists the same learnt entry.
    let out = b.exec(&["bridge", "-j", "fdb", "show", "br", "br0"]);
    if out.status.success() {
        let theirs = Json::parse(&String::from_utf8_lossy(&out.stdout));
        assert!(theirs.items().iter().any(|e| {
            e.get("mac").and_then(Json::str) == Some(mac_a.as_str())
                && e.get("ifname").and_then(Json::str) == Some("b0")
        }));
    }
    compare_neighs(&b, || rb.neighs().unwrap());
}

/// The IPv4/IPv6 neighbours match `ip -j neigh show nud all` (address, device, MAC). The
/// kernel adds IPv6 multicast entries (NOARP) on its own while addresses settle (MLD for a new
/// solicited-node address), so the two reads may see different moments: both are taken again,
/// 100 ms apart for up to 2 s, until they hold the same number of entries.
fn compare_neighs(ns: &Netns, mut dump: impl FnMut() -> Vec<Neigh>) {
    let mut attempt = 0;
    let (neighs, theirs) = loop {
        let neighs = dump();
        // `nud all`: ip hides NOARP entries (the IPv6 multicast ones) by default.
        let theirs = Json::parse(&ns.ip_json(&["neigh", "show", "nud", "all"]));
        let count = neighs.iter().filter(|n| n.family != AF_BRIDGE).count();
        attempt += 1;
        if count == theirs.items().len() || attempt >= 20 {
            break (neighs, theirs);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let ours: Vec<&Neigh> = neighs.iter().filter(|n| n.family != AF_BRIDGE).collect();
    assert_eq!(ours.len(), theirs.items().len(), "{ours:#?} {theirs:?}");
    for t in theirs.items() {
        let dst: IpAddr = t.get("dst").and_then(Json::str).unwrap().parse().unwrap();
        let dev = ns.index(t.get("dev").and_then(Json::str).unwrap());
        let n = ours
            .iter()
            .find(|n| n.dst == Some(dst) && n.index == dev)
            .unwrap_or_else(|| panic!("ip has {t:?}, we have not: {ours:#?}"));
        assert_eq!(
            n.lladdr.as_deref().map(mac_text).as_deref(),
            t.get("lladdr").and_then(Json::str)
        );
    }
}

fn addr<'a>(addrs: &'a [Addr], ip: &str) -> &'a Addr {
    let ip: IpAddr = ip.parse().unwrap();
    addrs
        .iter()
        .find(|a| a.address == ip)
        .unwrap_or_else(|| panic!("no address {ip} in {addrs:#?}"))
}

#[test]
fn addresses_static_dynamic_ipv6() {
    let Some(ns) = Netns::new() else { return };
    ns.veth("v0", "v1");
    ns.addr("v0", "192.0.2.1/24");
    // As udhcpc's script sets a lease: valid_lft = lease time.
    ns.addr_lft("v0", "198.51.100.7/24", 3600, 1800, &[]);
    ns.addr("v0", "2001:db8:1::1/64");
    ns.addr_lft("v0", "2001:db8:2::1/64", 7200, 3600, &["nodad"]);
    let mut rt = rtnl(&ns);
    let addrs = rt.addrs().unwrap();
    let v0 = ns.index("v0");

    let st = addr(&addrs, "192.0.2.1");
    assert_eq!((st.family, st.index, st.prefix_len), (AF_INET, v0, 24));
    assert_ne!(st.flags & IFA_F_PERMANENT, 0);
    assert_eq!((st.valid, st.preferred), (Some(u32::MAX), Some(u32::MAX)));
    assert_eq!(st.broadcast, None); // `ip addr add` sets none unless asked (`brd +`)
    assert_eq!(st.label.as_deref(), Some("v0"));
    assert_eq!(st.peer, None);

    let dy = addr(&addrs, "198.51.100.7");
    assert_eq!(dy.flags & IFA_F_PERMANENT, 0);
    let (valid, preferred) = (dy.valid.unwrap(), dy.preferred.unwrap());
    assert!((3590..=3600).contains(&valid), "{dy:?}");
    assert!((1790..=1800).contains(&preferred), "{dy:?}");

    // Written before DAD ran: tentative; with nodad: never tentative.
    let dad = addr(&addrs, "2001:db8:1::1");
    assert_ne!(dad.flags & IFA_F_TENTATIVE, 0, "{dad:?}");
    assert_eq!(dad.valid, Some(u32::MAX));
    let nodad = addr(&addrs, "2001:db8:2::1");
    assert_eq!(nodad.flags & (IFA_F_NODAD | IFA_F_TENTATIVE), IFA_F_NODAD);
    assert!((7190..=7200).contains(&nodad.valid.unwrap()));
    compare_addrs(&ns, &addrs);

    // The lifetimes count down.
    std::thread::sleep(Duration::from_millis(2100));
    let addrs = rt.addrs().unwrap();
    let later = addr(&addrs, "198.51.100.7");
    assert!(later.valid.unwrap() <= valid - 2, "{later:?}");
    assert!(later.preferred.unwrap() <= preferred - 2, "{later:?}");
    assert_eq!(addr(&addrs, "192.0.2.1").valid, Some(u32::MAX));
}

/// The addresses match `ip -j addr` (address, prefix, device, lifetimes within the seconds
/// between the two reads, tentative/nodad/permanent-by-`dynamic`).
fn compare_addrs(ns: &Netns, addrs: &[Addr]) {
    let theirs = Json::parse(&ns.ip_json(&["addr", "show"]));
    let mut n = 0;
    for l in theirs.items() {
        let index = l.get("ifindex").and_then(Json::u64).unwrap() as u32;
        for t in l.get("addr_info").unwrap().items() {
            n += 1;
            let ip: IpAddr = t.get("local").and_then(Json::str).unwrap().parse().unwrap();
            let a = addrs
                .iter()
                .find(|a| a.address == ip && a.index == index)
                .unwrap_or_else(|| panic!("ip has {ip}, we have not: {addrs:#?}"));
            assert_eq!(
                Some(u64::from(a.prefix_len)),
                t.get("prefixlen").and_then(Json::u64)
            );
            assert_eq!(a.flags & IFA_F_PERMANENT == 0, t.flag("dynamic"), "{a:?}");
            assert_eq!(a.flags & IFA_F_NODAD != 0, t.flag("nodad"), "{a:?}");
            let their_valid = t.get("valid_life_time").and_then(Json::u64).unwrap();
            let ours = u64::from(a.valid.unwrap());
            assert!(
                ours >= their_valid && ours <= their_valid + 2,
                "{a:?} {t:?}"
            );
            assert_eq!(
                a.label.as_deref(),
                t.get("label").and_then(Json::str),
                "{a:?}"
            );
        }
    }
    assert_eq!(n, addrs.len(), "{addrs:#?}");
}

fn route<'a>(routes: &'a [Route], table: u32, dst: Option<&str>, len: u8) -> &'a Route {
    let dst: Option<IpAddr> = dst.map(|d| d.parse().unwrap());
    routes
        .iter()
        .find(|r| r.table == table && r.dst == dst && r.dst_len == len)
        .unwrap_or_else(|| panic!("no route {dst:?}/{len} in table {table}: {routes:#?}"))
}

#[test]
fn routes_default_connected_metric_table() {
    let Some(ns) = Netns::new() else { return };
    ns.veth("v0", "v1");
    ns.addr("v0", "10.1.0.1/24");
    ns.addr_lft("v0", "2001:db8:5::1/64", 600, 600, &["nodad"]);
    ns.route(&["add", "default", "via", "10.1.0.254", "metric", "7"]);
    ns.route(&["add", "203.0.113.0/24", "via", "10.1.0.2", "table", "100"]);
    ns.route(&[
        "add",
        "2001:db8:99::/48",
        "via",
        "2001:db8:5::fe",
        "metric",
        "42",
    ]);
    let mut rt = rtnl(&ns);
    let routes = rt.routes().unwrap();
    let v0 = ns.index("v0");

    let def = route(&routes, RT_TABLE_MAIN, None, 0);
    assert_eq!(def.gateway, Some("10.1.0.254".parse().unwrap()));
    assert_eq!((def.oif, def.priority), (Some(v0), Some(7)));
    assert_eq!((def.protocol, def.kind), (RTPROT_BOOT, 1)); // `ip route add`; RTN_UNICAST
    let conn = route(&routes, RT_TABLE_MAIN, Some("10.1.0.0"), 24);
    assert_eq!((conn.gateway, conn.oif), (None, Some(v0)));
    assert_eq!((conn.protocol, conn.scope), (RTPROT_KERNEL, RT_SCOPE_LINK));
    assert_eq!(conn.prefsrc, Some("10.1.0.1".parse().unwrap()));
    let t100 = route(&routes, 100, Some("203.0.113.0"), 24);
    assert_eq!(t100.gateway, Some("10.1.0.2".parse().unwrap()));
    let v6 = route(&routes, RT_TABLE_MAIN, Some("2001:db8:99::"), 48);
    assert_eq!(v6.gateway, Some("2001:db8:5::fe".parse().unwrap()));
    assert_eq!(v6.priority, Some(42));
    // The local table: the kernel's route to our own address (RTN_LOCAL).
    assert_eq!(route(&routes, 255, Some("10.1.0.1"), 32).kind, 2);

    // The same routes as `ip -j route show table all` for both families.
    let mut theirs = Vec::new();
    for fam in ["-4", "-6"] {
        let j = Json::parse(&ns.ip(&["-j", fam, "route", "show", "table", "all"]));
        for t in j.items() {
            let table = match t.get("table").and_then(Json::str) {
                None | Some("main") => RT_TABLE_MAIN,
                Some("local") => 255,
                Some(n) => n.parse().unwrap(),
            };
            let dst = t.get("dst").and_then(Json::str).unwrap();
            let (ip, len) = match dst {
                "default" => (None, 0),
                d => {
                    let (ip, len) = d.split_once('/').unwrap_or((d, ""));
                    let ip: IpAddr = ip.parse().unwrap();
                    let full = if ip.is_ipv4() { 32 } else { 128 };
                    (Some(ip), len.parse().unwrap_or(full))
                }
            };
            let gw = t
                .get("gateway")
                .and_then(Json::str)
                .map(|g| g.parse().unwrap());
            let metric = t.get("metric").and_then(Json::u64).map(|m| m as u32);
            let dev = t.get("dev").and_then(Json::str).map(|d| ns.index(d));
            theirs.push((table, ip, len, gw, metric, dev));
        }
    }
    let mut ours: Vec<_> = routes
        .iter()
        .map(|r| (r.table, r.dst, r.dst_len, r.gateway, r.priority, r.oif))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn monitor_wakes_on_address_and_link_changes() {
    let Some(ns) = Netns::new() else { return };
    // Without IPv6 on the new links, no link-local address, DAD or MLD events come late.
    ns.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    ns.veth("v0", "v1");
    let mut mon = ns.run(|| Monitor::open().expect("monitor"));
    // Let the setup's own events (link up, IPv6 link-local addresses and their DAD) pass;
    // then a quiet namespace times out with 0.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mon.wait(Some(Duration::from_millis(1500))).unwrap() > 0 {
        assert!(Instant::now() < deadline, "the namespace never went quiet");
    }
    let t = Instant::now();
    assert_eq!(mon.wait(Some(Duration::from_millis(200))).unwrap(), 0);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < Duration::from_secs(2));

    ns.addr("v0", "192.0.2.9/24");
    assert!(mon.wait(Some(Duration::from_secs(5))).unwrap() >= 1);
    ns.addr_del("v0", "192.0.2.9/24");
    assert!(mon.wait(Some(Duration::from_secs(5))).unwrap() >= 1);
    ns.down("v1");
    assert!(mon.wait(Some(Duration::from_secs(5))).unwrap() >= 1);
    // A wait without a timeout returns as soon as a change arrives.
    let waiter = std::thread::spawn(move || mon.wait(None).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    ns.up("v1");
    assert!(waiter.join().unwrap() >= 1);
}

#[test]
fn dump_of_a_namespace_with_many_addresses() {
    // Larger than one 32 KiB datagram: the dump spans several, all read.
    let Some(ns) = Netns::new() else { return };
    ns.veth("v0", "v1");
    let batch: String = (0..600)
        .map(|i| format!("addr add 10.{}.{}.1/32 dev v0\n", 100 + i / 250, i % 250))
        .collect();
    let path = std::env::temp_dir().join(format!("cwmpd-netlink-batch-{}", std::process::id()));
    std::fs::write(&path, batch).unwrap();
    ns.ip(&["-batch", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    let mut rt = rtnl(&ns);
    let addrs = rt.addrs().unwrap();
    let v4 = addrs.iter().filter(|a| a.family == AF_INET).count();
    assert_eq!(v4, 601, "600 and 127.0.0.1");
    let routes = rt.routes().unwrap();
    assert!(routes.iter().filter(|r| r.table == 255).count() >= 600);
}

/// The fuzz seeds (`fuzz/corpus/netlink_parse/`, real datagrams captured by
/// `fuzz/netlink_capture.py` on a little-endian host) parse, with what the capture set up.
#[cfg(target_endian = "little")]
#[test]
fn captured_datagrams_parse() {
    use cwmpd::datamodel::backend::netlink::wire::{parse, Msg};
    let dir = support::repo().join("fuzz/corpus/netlink_parse");
    let mut all = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let msgs = parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!msgs.is_empty(), "{}", path.display());
        all.extend(msgs.into_iter().map(|m| m.2));
    }
    let has = |f: &dyn Fn(&Msg) -> bool| all.iter().any(f);
    assert!(has(
        &|m| matches!(m, Msg::NewLink(l) if l.name == "v0" && l.mtu == Some(1492))
    ));
    assert!(has(
        &|m| matches!(m, Msg::NewLink(l) if l.name == "br0" && l.kind.as_deref() == Some("bridge"))
    ));
    assert!(has(
        &|m| matches!(m, Msg::NewAddr(a) if a.address.to_string() == "198.51.100.7"
        && a.valid.is_some_and(|v| v <= 3600) && a.preferred.is_some_and(|p| p <= 1800))
    ));
    assert!(has(
        &|m| matches!(m, Msg::NewAddr(a) if a.address.to_string() == "100.64.0.2"
        && a.peer.map(|p| p.to_string()).as_deref() == Some("100.64.0.1"))
    ));
    assert!(has(
        &|m| matches!(m, Msg::NewAddr(a) if a.label.as_deref() == Some("v0:lan")
        && a.broadcast.map(|b| b.to_string()).as_deref() == Some("192.0.2.255"))
    ));
    assert!(has(&|m| matches!(m, Msg::NewRoute(r) if r.table == 100)));
    assert!(has(
        &|m| matches!(m, Msg::NewNeigh(n) if n.family == AF_BRIDGE
        && n.lladdr.as_deref() == Some(&[2, 0, 0, 0, 0, 0x0b][..]))
    ));
    assert!(has(
        &|m| matches!(m, Msg::DelAddr(a) if a.address.to_string() == "192.0.2.77")
    ));
    assert!(has(&|m| matches!(m, Msg::Done)));
}

#[test]
fn monitor_survives_an_overrun() {
    // 5000 addresses at once: 5000 RTM_NEWADDR and 5000 local-route RTM_NEWROUTE (about 8 MB
    // of socket buffer), more than the monitor's receive buffer (1 MiB asked, doubled by the
    // kernel, capped at net.core.rmem_max) holds while nobody reads: the kernel drops messages
    // and reports ENOBUFS, which `wait` counts as a change, never an error.
    let Some(ns) = Netns::new() else { return };
    ns.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    ns.veth("v0", "v1");
    let mut mon = ns.run(|| Monitor::open().expect("monitor"));
    while mon.wait(Some(Duration::from_millis(500))).unwrap() > 0 {}
    let batch: String = (0..5000)
        .map(|i| format!("addr add 10.{}.{}.1/32 dev v0\n", 100 + i / 250, i % 250))
        .collect();
    let path = std::env::temp_dir().join(format!("cwmpd-netlink-overrun-{}", std::process::id()));
    std::fs::write(&path, batch).unwrap();
    ns.ip(&["-batch", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    let mut total = 0;
    loop {
        match mon.wait(Some(Duration::from_millis(500))).unwrap() {
            0 => break,
            n => total += n,
        }
    }
    // Fewer than the 10000 messages sent when the buffer overran (ENOBUFS counted as 1).
    eprintln!("{total} messages counted of 10000 sent");
    assert!(total >= 1);
    // Still listening after the overrun.
    ns.down("v1");
    assert!(mon.wait(Some(Duration::from_secs(5))).unwrap() >= 1);
}

/// The backend as the engine uses it: a link's counters are read afresh once the snapshot's
/// are older than `COUNTER_AGE` (an ACS reading them twice in a session sees them move, as it
/// did when they came from sysfs), while the links themselves stay the snapshot's until it is
/// invalidated (a link added since is not listed; the instances of a GPN and the GPV after it
/// agree).
#[test]
fn the_backend_reads_counters_afresh_and_keeps_its_links() {
    use cwmpd::datamodel::backend::netlink::{NetlinkBackend, COUNTER_AGE};
    use cwmpd::datamodel::backend::{Backend, Cx};
    use std::collections::BTreeMap;
    let Some((a, _b)) = two_namespaces() else {
        return;
    };
    // Everything in one thread inside `a`: the backend's socket and `ip`, its child, are there.
    a.run(|| {
        let mut be = NetlinkBackend::new();
        let mut values = BTreeMap::new();
        let mut cx = Cx {
            values: &mut values,
            changed: false,
        };
        let packets = |be: &mut NetlinkBackend, cx: &mut Cx<'_>| -> u64 {
            let got = be.read(cx, &["link[a0].tx_packets"]).unwrap();
            got[0].as_deref().unwrap().parse().unwrap()
        };
        let links = |be: &mut NetlinkBackend, cx: &mut Cx<'_>| -> Vec<String> {
            be.instances(cx, "link[*]").unwrap().unwrap()
        };
        let first = links(&mut be, &mut cx);
        let before = packets(&mut be, &mut cx);
        let s = UdpSocket::bind(("10.77.0.1", 0)).expect("bind");
        for _ in 0..20 {
            s.send_to(&[0x5a; 100], ("10.77.0.2", 9)).expect("send");
        }
        let added = std::process::Command::new("ip")
            .args(["link", "add", "v7a", "type", "veth", "peer", "name", "v7b"])
            .status()
            .unwrap();
        assert!(added.success());
        std::thread::sleep(COUNTER_AGE + Duration::from_millis(100));
        let after = packets(&mut be, &mut cx);
        assert!(after >= before + 20, "tx_packets {before} -> {after}");
        assert_eq!(
            links(&mut be, &mut cx),
            first,
            "the snapshot's links changed"
        );
        assert!(!first.contains(&"v7a".to_string()));
        be.invalidate();
        assert!(links(&mut be, &mut cx).contains(&"v7a".to_string()));
    });
}
