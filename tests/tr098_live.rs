//! The live router in the TR-098 tree (`datamodel/bindings/openwrt/tr098.toml`): the real
//! `cwmpd get` on the fixture router (`tests/fixtures/router/`, the real `uci`), with netifd,
//! hostapd and iwinfo served by the test ubus broker from `tests/fixtures/ubus/openwrt-23.05/`
//! (the same E8450 at one moment) and the kernel's state from a network namespace that mirrors
//! the fixture router's netdevs (`wan`, `br-lan`, `phy0-ap0`, `phy1-ap0`; for the PPPoE
//! moment `pppoe-wan`, a veth with the session's point-to-point address).
//!
//! - DHCP WAN: WANIPConnection status, uptime, the lease's address, mask, gateway and DNS
//!   servers (uci has none: the `or` source), the link's MAC and counters, the WAN Ethernet
//!   link; what uci holds wins and stays writable (`cwmpd set` lands in uci); Wi-Fi stations
//!   with their lease address, authorization and rate in Mbps; the channel of a radio set to
//!   `auto` from iwinfo; the AP netdevs' state and counters; hosts active by the kernel's
//!   neighbour table; `cwmpd check` and a whole `get InternetGatewayDevice.` with every name
//!   typed.
//! - PPPoE WAN (uci `wan` switched to `proto pppoe`, as the fixture's moment): WANPPPConnection
//!   status, uptime, IPCP local and remote address, DNS servers, MRU from the session netdev;
//!   pppd's exit code after an authentication failure as TR-098's LastConnectionError, and a
//!   code TR-098 has no name for as ERROR_UNKNOWN.
//!
//! - No ubusd: the same tree answers, the live values absent or their defaults, with a log
//!   line, never a failed request.
//!
//! Counters are compared with what iproute2 (`ip -j -s link`) reads for the same netdev after
//! known traffic (IPv6 is off in the namespaces, so nothing else moves them). Needs root and
//! `ip netns` (skipped with a line otherwise, never under `CI`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cwmpd::cwmp::value::BaseType;
use support::cpe::Cpe;
use support::netns::{Json as IpJson, Netns};
use support::tempdir::copy_tree;
use support::ubus::{json, Broker, Json};
use support::uci as uci_support;

const IGD: &str = "InternetGatewayDevice.";
const WAN: &str = "InternetGatewayDevice.WANDevice.1.";
const CONN: &str = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.";
const WLAN: &str = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.";
const HOST: &str = "InternetGatewayDevice.LANDevice.1.Hosts.Host.";
const WAN_MAC: &str = "14:91:82:3a:5c:11";
const AP0_MAC: &str = "14:91:82:3a:5c:12";
const AP1_MAC: &str = "14:91:82:3a:5c:13";
const LAN_MAC: &str = "14:91:82:3a:5c:10";
const LAPTOP: &str = "f0:18:98:4e:5d:6c";
const PRINTER: &str = "3c:2a:f4:12:34:56";
const NAS: &str = "00:11:32:aa:bb:cc";
const TV: &str = "a8:23:fe:9a:8b:7c";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/router")
}

/// A CPE on a fresh copy of the fixture router, TR-098, platform openwrt, reading ubus from
/// `broker`; reload commands only append to a log (no service is touched).
struct Router {
    cpe: Cpe,
}

impl Router {
    fn new(tag: &str, broker: &Broker) -> Router {
        Router::with_socket(tag, broker.socket())
    }

    /// A router whose ubus socket is `socket` (one that may not exist: no ubusd).
    fn with_socket(tag: &str, socket: &Path) -> Router {
        let uci = uci_support::uci_bin();
        let socket = socket.to_path_buf();
        let cpe = Cpe::with_config(tag, "http://127.0.0.1:9/acs", None, 3600, |dir| {
            let root = dir.join("root");
            copy_tree(&fixture(), &root);
            let reloads = dir.join("reloads.log");
            let mut s = format!(
                "\n[datamodel]\nplatform = \"openwrt\"\nroot = {:?}\nuci = {:?}\nuci_savedir = {:?}\nubus_socket = {:?}\n\n[datamodel.reload]\n",
                root.display().to_string(),
                uci.display().to_string(),
                dir.join("uci-save").display().to_string(),
                socket.display().to_string(),
            );
            for pkg in ["network", "wireless", "dhcp", "firewall", "system"] {
                s.push_str(&format!(
                    "{pkg} = \"echo {pkg} >> '{}'\"\n",
                    reloads.display()
                ));
            }
            s
        });
        let cfg = std::fs::read_to_string(&cpe.cfg).expect("read config");
        std::fs::write(
            &cpe.cfg,
            cfg.replace("[device]\n", "[device]\ndata_model = \"tr098\"\n"),
        )
        .expect("write config");
        Router { cpe }
    }

    /// `uci -c <config dir> -t <its own save dir> ARGS` with the real uci; its stdout.
    fn uci(&self, args: &[&str]) -> String {
        let dir = self.cpe.dir.path();
        uci_support::run(
            &dir.join("root/etc/config"),
            &dir.join("uci-test-save"),
            args,
            "",
        )
        .trim()
        .to_string()
    }

    /// `cwmpd get PATHS…` inside `ns`: name → (type, value).
    fn get(&self, ns: &Netns, paths: &[&str]) -> BTreeMap<String, (String, String)> {
        let mut args = vec!["get"];
        args.extend_from_slice(paths);
        let out = self.cpe.cli_in(ns.name(), &args);
        out.assert_code(0, "get");
        out.typed_values()
    }
}

/// The value of `name` in a `get` answer.
fn val<'a>(got: &'a BTreeMap<String, (String, String)>, name: &str) -> &'a str {
    got.get(name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {got:#?}"))
}

/// The instance prefix (`…AssociatedDevice.2.`) of the table at `table` whose parameter
/// `param` reads `value`.
fn instance_with(
    got: &BTreeMap<String, (String, String)>,
    table: &str,
    param: &str,
    value: &str,
) -> String {
    got.iter()
        .find_map(|(n, (_, v))| {
            let rest = n.strip_prefix(table)?;
            let (num, p) = rest.split_once('.')?;
            (p == param && v == value && num.bytes().all(|b| b.is_ascii_digit()))
                .then(|| format!("{table}{num}."))
        })
        .unwrap_or_else(|| panic!("no {table}{{i}}.{param} = {value} in {got:#?}"))
}

/// A netdev's counters as iproute2 reads them (`ip -j -s link show DEV`): (tx bytes, rx bytes,
/// tx packets, rx packets).
fn ip_counters(ns: &Netns, dev: &str) -> (u64, u64, u64, u64) {
    let j = IpJson::parse(&ns.ip_json(&["-s", "link", "show", dev]));
    let l = &j.items()[0];
    let stats = l.get("stats64").expect("stats64");
    let n = |dir: &str, what: &str| {
        stats
            .get(dir)
            .and_then(|d| d.get(what))
            .and_then(IpJson::u64)
            .unwrap_or_else(|| panic!("no stats64.{dir}.{what} for {dev}"))
    };
    (
        n("tx", "bytes"),
        n("rx", "bytes"),
        n("tx", "packets"),
        n("rx", "packets"),
    )
}

/// Bytes sent and received, packets sent and received.
type Counters = (u64, u64, u64, u64);

/// `dev`'s counters as `ip` reads them and the agent's `get` of `object` (its counters among
/// them), read again until `ip` reads the same before and after the agent (up to 10 times):
/// the kernel sends on its own (IPv6 neighbour discovery, MLD), and a packet between the two
/// reads is no disagreement.
fn counters_and_get(
    router: &Router,
    ns: &Netns,
    dev: &str,
    object: &str,
) -> (Counters, BTreeMap<String, (String, String)>) {
    let mut last = None;
    for _ in 0..10 {
        let before = ip_counters(ns, dev);
        let got = router.get(ns, &[object]);
        if ip_counters(ns, dev) == before {
            return (before, got);
        }
        last = Some((before, got));
    }
    last.expect("ten reads")
}

/// Sends `n` UDP datagrams of `len` bytes from a socket bound to `from` to `to` (port 9,
/// discard), on a thread inside `ns`.
fn send_udp(ns: &Netns, from: &'static str, to: &'static str, n: usize, len: usize) {
    ns.run(move || {
        let s = std::net::UdpSocket::bind((from, 0)).expect("bind");
        for _ in 0..n {
            s.send_to(&vec![0x5a; len], (to, 9)).expect("send");
        }
    });
}

/// The fixture router's netdevs in a namespace: `wan` (its MAC, 203.0.113.45/24, a veth to
/// the ISP's namespace holding 203.0.113.1), `br-lan` (192.168.1.1/24) with the ports `lan1`
/// and the APs `phy0-ap0`/`phy1-ap0` (their MACs), and the LAN hosts in the neighbour table:
/// the laptop and the NAS reachable, the printer stale, the TV and the phone absent. IPv6 is
/// off, so that no router solicitation moves a counter.
fn router_netns() -> Option<(Netns, Netns)> {
    let ns = Netns::new()?;
    let isp = Netns::new()?;
    for n in [&ns, &isp] {
        n.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
        n.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    }
    ns.veth_to("wan", &isp, "isp0");
    ns.ip(&["link", "set", "wan", "address", WAN_MAC]);
    ns.addr("wan", "203.0.113.45/24");
    isp.addr("isp0", "203.0.113.1/24");
    ns.bridge("br-lan");
    ns.ip(&["link", "set", "br-lan", "address", LAN_MAC]);
    ns.addr("br-lan", "192.168.1.1/24");
    for (dev, peer, mac) in [
        ("lan1", "lan1-host", None),
        ("phy0-ap0", "sta0", Some(AP0_MAC)),
        ("phy1-ap0", "sta1", Some(AP1_MAC)),
    ] {
        ns.veth(dev, peer);
        if let Some(mac) = mac {
            ns.ip(&["link", "set", dev, "address", mac]);
        }
        ns.enslave(dev, "br-lan");
    }
    for (ip, mac, nud) in [
        ("192.168.1.123", LAPTOP, "reachable"),
        ("192.168.1.10", NAS, "reachable"),
        ("192.168.1.11", PRINTER, "stale"),
    ] {
        ns.neigh(&["add", ip, "lladdr", mac, "dev", "br-lan", "nud", nud]);
    }
    Some((ns, isp))
}

#[test]
fn dhcp_wan_wifi_stations_and_hosts_from_netifd_hostapd_and_the_kernel() {
    let Some((ns, _isp)) = router_netns() else {
        return;
    };
    let broker = Broker::start();
    assert!(broker.serve_fixtures("openwrt-23.05", "dhcp") > 10);
    let router = Router::new("tr098-dhcp", &broker);

    // The configuration and the tree check.
    let out = router.cpe.cli_in(ns.name(), &["check"]);
    out.assert_code(0, "check");
    assert!(out.stdout.contains("InternetGatewayDevice."), "{out}");

    // Known traffic on the WAN: 5 datagrams of 1000 bytes to the ISP's side; on the LAN: 4 to
    // the laptop, which the bridge floods to every port (it has not learnt the laptop's MAC).
    send_udp(&ns, "203.0.113.45", "203.0.113.1", 5, 1000);
    send_udp(&ns, "192.168.1.1", "192.168.1.123", 4, 300);
    let ((tx_b, rx_b, tx_p, rx_p), got) = counters_and_get(&router, &ns, "wan", IGD);
    assert!(tx_p >= 5 && tx_b >= 5000, "{tx_p} packets, {tx_b} bytes");

    // Every name answers with its type.
    assert!(got.len() >= 300, "{} parameters", got.len());
    for (name, (ty, _)) in &got {
        assert!(
            BaseType::from_xsi(ty).is_some_and(|t| t.name() == ty),
            "{name} [{ty}]"
        );
    }

    // WAN link and counters (rtnetlink).
    let common = format!("{WAN}WANCommonInterfaceConfig.");
    assert_eq!(val(&got, &format!("{common}PhysicalLinkStatus")), "Up");
    assert_eq!(
        val(&got, &format!("{common}TotalBytesSent")),
        (tx_b % (1 << 32)).to_string()
    );
    assert_eq!(
        val(&got, &format!("{common}TotalBytesReceived")),
        (rx_b % (1 << 32)).to_string()
    );
    assert_eq!(
        val(&got, &format!("{common}TotalPacketsSent")),
        tx_p.to_string()
    );
    assert_eq!(
        val(&got, &format!("{common}TotalPacketsReceived")),
        rx_p.to_string()
    );
    let eth = format!("{WAN}WANEthernetInterfaceConfig.");
    assert_eq!(val(&got, &format!("{eth}Status")), "Up");
    assert_eq!(val(&got, &format!("{eth}Enable")), "true");
    assert_eq!(val(&got, &format!("{eth}MACAddress")), WAN_MAC);
    assert_eq!(
        val(&got, &format!("{eth}Stats.PacketsSent")),
        tx_p.to_string()
    );

    // The DHCP connection (`wan`): netifd's lease where uci has nothing.
    let ip = format!("{CONN}WANIPConnection.1.");
    assert_eq!(
        val(&got, &format!("{CONN}WANIPConnectionNumberOfEntries")),
        "1"
    );
    assert_eq!(val(&got, &format!("{ip}Name")), "wan");
    assert_eq!(val(&got, &format!("{ip}AddressingType")), "DHCP");
    assert_eq!(val(&got, &format!("{ip}ConnectionStatus")), "Connected");
    assert_eq!(val(&got, &format!("{ip}Uptime")), "356096");
    assert_eq!(val(&got, &format!("{ip}ExternalIPAddress")), "203.0.113.45");
    assert_eq!(val(&got, &format!("{ip}SubnetMask")), "255.255.255.0");
    assert_eq!(val(&got, &format!("{ip}DefaultGateway")), "203.0.113.1");
    assert_eq!(
        val(&got, &format!("{ip}DNSServers")),
        "203.0.113.53,203.0.113.54"
    );
    assert_eq!(val(&got, &format!("{ip}MACAddress")), WAN_MAC);
    assert_eq!(val(&got, &format!("{ip}MaxMTUSize")), "1500");
    assert_eq!(val(&got, &format!("{ip}LastConnectionError")), "ERROR_NONE");
    assert_eq!(
        val(&got, &format!("{ip}Stats.EthernetBytesSent")),
        (tx_b % (1 << 32)).to_string()
    );
    // The PPPoE interface that is configured but disabled: netifd does not run it.
    let ppp = format!("{CONN}WANPPPConnection.1.");
    assert_eq!(val(&got, &format!("{ppp}Name")), "wanppp");
    assert_eq!(val(&got, &format!("{ppp}ConnectionStatus")), "Disconnected");
    assert_eq!(val(&got, &format!("{ppp}Uptime")), "0");
    assert_eq!(val(&got, &format!("{ppp}ExternalIPAddress")), "");
    assert_eq!(
        val(&got, &format!("{ppp}LastConnectionError")),
        "ERROR_NONE"
    );
    assert_eq!(val(&got, &format!("{ppp}CurrentMRUSize")), "1492");

    // Wi-Fi: the APs' live netdevs, their stations and channels.
    let ap0 = instance_with(&got, WLAN, "Name", "phy0-ap0");
    let ap1 = instance_with(&got, WLAN, "Name", "phy1-ap0");
    let guest = instance_with(&got, WLAN, "Name", "phy0-ap1");
    assert_eq!(val(&got, &format!("{ap0}Status")), "Up");
    assert_eq!(val(&got, &format!("{ap0}BSSID")), AP0_MAC);
    assert_eq!(val(&got, &format!("{ap1}BSSID")), AP1_MAC);
    assert_eq!(val(&got, &format!("{ap0}Channel")), "6");
    assert_eq!(val(&got, &format!("{ap1}Channel")), "36");
    // The disabled guest AP has no netdev: no state, no station.
    assert_eq!(val(&got, &format!("{guest}Status")), "Disabled");
    assert_eq!(val(&got, &format!("{guest}TotalAssociations")), "0");
    assert_eq!(val(&got, &format!("{ap0}TotalAssociations")), "2");
    assert_eq!(val(&got, &format!("{ap1}TotalAssociations")), "0");
    let ((ap_tx_b, ap_rx_b, ap_tx_p, ap_rx_p), ap_got) =
        counters_and_get(&router, &ns, "phy0-ap0", &ap0);
    assert!(
        ap_tx_p >= 4 && ap_tx_b >= 1200,
        "{ap_tx_p} packets, {ap_tx_b} bytes"
    );
    assert_eq!(
        val(&ap_got, &format!("{ap0}TotalBytesSent")),
        ap_tx_b.to_string()
    );
    assert_eq!(
        val(&ap_got, &format!("{ap0}TotalBytesReceived")),
        ap_rx_b.to_string()
    );
    assert_eq!(
        val(&ap_got, &format!("{ap0}TotalPacketsSent")),
        ap_tx_p.to_string()
    );
    assert_eq!(
        val(&ap_got, &format!("{ap0}TotalPacketsReceived")),
        ap_rx_p.to_string()
    );
    assert_eq!(val(&got, &format!("{ap0}Stats.ErrorsSent")), "0");
    let stations = format!("{ap0}AssociatedDevice.");
    let laptop = instance_with(&got, &stations, "AssociatedDeviceMACAddress", LAPTOP);
    let printer = instance_with(&got, &stations, "AssociatedDeviceMACAddress", PRINTER);
    assert_eq!(
        val(&got, &format!("{laptop}AssociatedDeviceIPAddress")),
        "192.168.1.123"
    );
    assert_eq!(
        val(&got, &format!("{printer}AssociatedDeviceIPAddress")),
        "192.168.1.11"
    );
    assert_eq!(
        val(
            &got,
            &format!("{laptop}AssociatedDeviceAuthenticationState")
        ),
        "true"
    );
    // hostapd's 144400 and 72200 kbit/s, in Mbps.
    assert_eq!(val(&got, &format!("{laptop}LastDataTransmitRate")), "144");
    assert_eq!(val(&got, &format!("{printer}LastDataTransmitRate")), "72");

    // Hosts: active when the kernel has a usable neighbour entry.
    for (mac, active) in [
        (LAPTOP, "true"),
        (NAS, "true"),
        (PRINTER, "true"),
        (TV, "false"),
        ("da:a1:19:77:88:99", "false"),
    ] {
        let h = instance_with(&got, HOST, "MACAddress", mac);
        assert_eq!(val(&got, &format!("{h}Active")), active, "{mac}");
    }

    // A radio set to `auto`: the channel it is on (iwinfo on its AP).
    router.uci(&["set", "wireless.radio1.channel=auto"]);
    router.uci(&["commit", "wireless"]);
    let got = router.get(&ns, &[&format!("{ap1}Channel")]);
    assert_eq!(val(&got, &format!("{ap1}Channel")), "36");

    // What uci holds wins, and stays writable: a DNS server set by the ACS lands in uci.
    let out = router
        .cpe
        .cli_in(ns.name(), &["set", &format!("{ip}DNSServers=9.9.9.9")]);
    out.assert_code(0, "set DNSServers");
    assert_eq!(router.uci(&["get", "network.wan.dns"]), "9.9.9.9");
    let got = router.get(
        &ns,
        &[
            &format!("{ip}DNSServers"),
            &format!("{ip}ExternalIPAddress"),
        ],
    );
    assert_eq!(val(&got, &format!("{ip}DNSServers")), "9.9.9.9");
    assert_eq!(val(&got, &format!("{ip}ExternalIPAddress")), "203.0.113.45");
}

/// The uci change of the fixture's PPPoE moment: `wan` is `proto pppoe`, `wan6` removed.
fn to_pppoe(router: &Router) {
    router.uci(&["set", "network.wan.proto=pppoe"]);
    router.uci(&["set", "network.wan.username=customer123@isp.example"]);
    router.uci(&["set", "network.wan.ipv6=auto"]);
    router.uci(&["delete", "network.wan6"]);
    router.uci(&["commit", "network"]);
}

/// The PPPoE session netdev: a veth named `pppoe-wan` with the IPCP addresses, MTU 1492 and no
/// ARP (a point-to-point link: what is sent to the peer goes out at once).
fn pppoe_netdev(ns: &Netns) {
    ns.veth("pppoe-wan", "ppp-peer");
    ns.ip(&["link", "set", "pppoe-wan", "mtu", "1492", "arp", "off"]);
    ns.ip(&[
        "addr",
        "add",
        "198.51.100.77",
        "peer",
        "198.51.100.1/32",
        "dev",
        "pppoe-wan",
    ]);
}

#[test]
fn pppoe_wan_session_from_netifd_and_the_session_netdev() {
    let Some((ns, _isp)) = router_netns() else {
        return;
    };
    pppoe_netdev(&ns);
    let broker = Broker::start();
    assert!(broker.serve_fixtures("openwrt-23.05", "pppoe") > 10);
    let router = Router::new("tr098-pppoe", &broker);
    to_pppoe(&router);

    send_udp(&ns, "198.51.100.77", "198.51.100.1", 3, 500);
    let got = router.get(&ns, &[WAN]);
    assert_eq!(
        val(&got, &format!("{CONN}WANIPConnectionNumberOfEntries")),
        "0"
    );
    assert_eq!(
        val(&got, &format!("{CONN}WANPPPConnectionNumberOfEntries")),
        "2"
    );
    let ppp = instance_with(&got, &format!("{CONN}WANPPPConnection."), "Name", "wan");
    assert_eq!(val(&got, &format!("{ppp}TransportType")), "PPPoE");
    assert_eq!(val(&got, &format!("{ppp}ConnectionStatus")), "Connected");
    assert_eq!(val(&got, &format!("{ppp}Uptime")), "16234");
    assert_eq!(
        val(&got, &format!("{ppp}ExternalIPAddress")),
        "198.51.100.77"
    );
    assert_eq!(val(&got, &format!("{ppp}RemoteIPAddress")), "198.51.100.1");
    assert_eq!(val(&got, &format!("{ppp}DefaultGateway")), "198.51.100.1");
    assert_eq!(
        val(&got, &format!("{ppp}DNSServers")),
        "203.0.113.53,203.0.113.54"
    );
    assert_eq!(val(&got, &format!("{ppp}MACAddress")), WAN_MAC);
    assert_eq!(val(&got, &format!("{ppp}CurrentMRUSize")), "1492");
    assert_eq!(
        val(&got, &format!("{ppp}LastConnectionError")),
        "ERROR_NONE"
    );
    assert_eq!(
        val(&got, &format!("{ppp}Username")),
        "customer123@isp.example"
    );
    // The session's counters are the PPP netdev's (3 datagrams sent on it).
    let (tx_b, _, tx_p, _) = ip_counters(&ns, "pppoe-wan");
    assert!(tx_p >= 3, "{tx_p}");
    assert_eq!(
        val(&got, &format!("{ppp}Stats.EthernetPacketsSent")),
        tx_p.to_string()
    );
    assert_eq!(
        val(&got, &format!("{ppp}Stats.EthernetBytesSent")),
        tx_b.to_string()
    );
    // The Ethernet WAN below it is still up.
    assert_eq!(
        val(
            &got,
            &format!("{WAN}WANCommonInterfaceConfig.PhysicalLinkStatus")
        ),
        "Up"
    );
    let other = instance_with(&got, &format!("{CONN}WANPPPConnection."), "Name", "wanppp");
    assert_eq!(
        val(&got, &format!("{other}ConnectionStatus")),
        "Disconnected"
    );
}

/// netifd's dump of the PPPoE moment with `wan` replaced by its status while pppd retries
/// after exit `code` (the `pppoe-autherror` fixture, with another code when not
/// `AUTH_TOPEER_FAILED`).
fn dump_with_ppp_error(code: &str) -> Json {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ubus/openwrt-23.05");
    // The broker's JSON type is serde_json's Value.
    let read = |name: &str| -> Json {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        text.parse::<Json>().expect("JSON fixture")
    };
    let mut dump = read("network.interface.dump.pppoe.json");
    let mut wan = read("network.interface.wan.status.pppoe-autherror.json");
    wan["interface"] = json!("wan");
    wan["errors"][0]["code"] = json!(code);
    let list = dump["interface"].as_array_mut().expect("interface array");
    let at = list
        .iter()
        .position(|i| i["interface"] == "wan")
        .expect("wan in the dump");
    list[at] = wan;
    dump
}

#[test]
fn pppoe_authentication_failure_and_an_unnamed_pppd_exit_code() {
    let Some((ns, _isp)) = router_netns() else {
        return;
    };
    let broker = Broker::start();
    assert!(broker.serve_fixtures("openwrt-23.05", "pppoe") > 10);
    let router = Router::new("tr098-ppperr", &broker);
    to_pppoe(&router);
    let ppp_path = |got: &BTreeMap<String, (String, String)>| {
        instance_with(got, &format!("{CONN}WANPPPConnection."), "Name", "wan")
    };

    // pppd exit 19 (ppp.sh: AUTH_TOPEER_FAILED), no session netdev.
    broker.reply(
        "network.interface",
        "dump",
        dump_with_ppp_error("AUTH_TOPEER_FAILED"),
    );
    let got = router.get(&ns, &[CONN]);
    let ppp = ppp_path(&got);
    assert_eq!(
        val(&got, &format!("{ppp}LastConnectionError")),
        "ERROR_AUTHENTICATION_FAILURE"
    );
    assert_eq!(val(&got, &format!("{ppp}ConnectionStatus")), "Disconnected");
    assert_eq!(val(&got, &format!("{ppp}Uptime")), "0");
    assert_eq!(val(&got, &format!("{ppp}ExternalIPAddress")), "");
    assert_eq!(val(&got, &format!("{ppp}RemoteIPAddress")), "");
    // No `pppoe-wan`: the MRU the next session asks for.
    assert_eq!(val(&got, &format!("{ppp}CurrentMRUSize")), "1492");

    // A code TR-098 has no name for reads ERROR_UNKNOWN; no PADO is a time-out.
    for (code, want) in [
        ("SOME_FUTURE_CODE", "ERROR_UNKNOWN"),
        ("CONNECT_FAILED", "ERROR_ISP_TIME_OUT"),
    ] {
        broker.reply("network.interface", "dump", dump_with_ppp_error(code));
        let got = router.get(&ns, &[&format!("{ppp}LastConnectionError")]);
        assert_eq!(
            val(&got, &format!("{ppp}LastConnectionError")),
            want,
            "{code}"
        );
    }
}

#[test]
fn without_ubusd_the_live_values_read_as_their_defaults() {
    let Some((ns, _isp)) = router_netns() else {
        return;
    };
    let dir = support::tempdir::TempDir::new("tr098-noubus");
    let router = Router::with_socket("tr098-noubus", &dir.path().join("no-ubusd.sock"));
    let out = router.cpe.cli_in(ns.name(), &["get", IGD]);
    out.assert_code(0, "get without ubusd");
    // One log line for the whole request, however many parameters read ubus.
    let ubus_lines = out
        .stderr
        .lines()
        .filter(|l| l.contains("ubus: ") && l.contains("WARN"))
        .count();
    assert_eq!(ubus_lines, 1, "{out}");
    let got = out.typed_values();
    assert!(got.len() >= 300, "{} parameters", got.len());
    let ip = format!("{CONN}WANIPConnection.1.");
    assert_eq!(val(&got, &format!("{ip}ConnectionStatus")), "Disconnected");
    assert_eq!(val(&got, &format!("{ip}Uptime")), "0");
    assert_eq!(val(&got, &format!("{ip}ExternalIPAddress")), "");
    assert_eq!(val(&got, &format!("{ip}LastConnectionError")), "ERROR_NONE");
    // The kernel's part still answers.
    assert_eq!(val(&got, &format!("{ip}MACAddress")), WAN_MAC);
    assert_eq!(
        val(
            &got,
            &format!("{WAN}WANCommonInterfaceConfig.PhysicalLinkStatus")
        ),
        "Up"
    );
    // Wi-Fi: the configuration, no live netdev, no station.
    let ap0 = instance_with(&got, WLAN, "Name", "phy0-ap0");
    assert_eq!(val(&got, &format!("{ap0}SSID")), "HomeNet");
    assert_eq!(val(&got, &format!("{ap0}Channel")), "6");
    assert_eq!(val(&got, &format!("{ap0}Status")), "Disabled");
    assert_eq!(val(&got, &format!("{ap0}TotalAssociations")), "0");
}
