//! The `linux` platform on the real kernel: `cwmpd` in a network namespace the test made, its
//! interfaces and addresses read over rtnetlink, and the kernel's change messages turning into
//! `4 VALUE CHANGE` sessions (TR-069 §A.3.2.4) without waiting for the poll.
//!
//! - `cwmpd get Device.IP.Interface.` lists the namespace's links with their state, MTU and
//!   addresses as `ip` made them (a static address, one with the lifetimes a DHCP client sets);
//! - with active notification on an interface's Status and on its IPv4 address count, a link
//!   going down and an address added each reach the ACS in a VALUE CHANGE session within
//!   seconds, with a poll interval of an hour: the netlink event source drives them;
//! - an Ethernet link's and a bridge port's counters, read in one rtnetlink dump, are what the
//!   kernel's sysfs files print for that netdev.
//!
//! The namespaces need root (CI is root); elsewhere the tests say so and pass.

use support::{acs, cpe, netns::Netns};

use std::collections::BTreeMap;
use std::time::Duration;

use acs::{Acs, AcsOptions};
use cpe::*;

const WAIT: Duration = Duration::from_secs(20);

/// A CPE on the linux platform (no poll for an hour: only events can start a notification).
fn linux_cpe(tag: &str, url: &str) -> Cpe {
    Cpe::with_config(tag, url, None, 3600, |dir| {
        format!(
            "\n[datamodel]\nplatform = \"linux\"\ndir = {:?}\npoll_interval = 3600\n",
            dir.join("datamodel.d").display().to_string()
        )
    })
}

/// The instance path of the IP interface named `name`.
fn interface(v: &BTreeMap<String, String>, name: &str) -> String {
    instance_named(v, "Device.IP.Interface.", name)
}

#[test]
fn get_lists_the_namespace_interfaces_and_addresses_as_the_kernel_holds_them() {
    let Some(ns) = Netns::new() else { return };
    ns.veth("wan0", "isp0");
    ns.ip(&["link", "set", "wan0", "mtu", "1480"]);
    ns.up("wan0");
    ns.up("isp0");
    ns.addr("isp0", "192.0.2.1/24");
    // As udhcpc's default script or dhclient set a lease: a valid and preferred lifetime.
    ns.addr_lft("wan0", "192.0.2.77/24", 3600, 1800, &[]);
    ns.addr("wan0", "2001:db8:7::2/64");
    ns.route(&["add", "default", "via", "192.0.2.1", "dev", "wan0"]);
    let cpe = linux_cpe("live-get", "http://127.0.0.1:9/");
    let out = cpe.cli_in(ns.name(), &["get", "Device.IP.", "Device.Routing."]);
    out.assert_code(0, "get");
    let v = out.values();
    let lo = interface(&v, "lo");
    let wan = interface(&v, "wan0");
    let want = [
        // The loopback keeps no operstate (`unknown`): it is up by its lower layer.
        (format!("{lo}Status"), "Up"),
        (format!("{lo}Type"), "Loopback"),
        (format!("{wan}Status"), "Up"),
        (format!("{wan}Enable"), "true"),
        (format!("{wan}MaxMTUSize"), "1480"),
        (format!("{wan}IPv4AddressNumberOfEntries"), "1"),
        (format!("{wan}IPv4Address.1.IPAddress"), "192.0.2.77"),
        (format!("{wan}IPv4Address.1.SubnetMask"), "255.255.255.0"),
        (format!("{wan}IPv4Address.1.AddressingType"), "DHCP"),
    ];
    for (name, value) in &want {
        assert_eq!(
            v.get(name).map(String::as_str),
            Some(*value),
            "{name}\n{out}"
        );
    }
    // The static IPv6 address, and the link-local one the kernel made.
    let v6: Vec<&String> = v
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{wan}IPv6Address.")) && k.ends_with(".IPAddress"))
        .map(|(_, val)| val)
        .collect();
    assert!(v6.iter().any(|a| *a == "2001:db8:7::2"), "{v6:?}");
    assert!(v6.iter().any(|a| a.starts_with("fe80::")), "{v6:?}");
    // The default route, on that interface.
    let gw = v
        .iter()
        .find(|(k, val)| k.ends_with(".GatewayIPAddress") && *val == "192.0.2.1")
        .map(|(k, _)| k.trim_end_matches("GatewayIPAddress").to_string())
        .unwrap_or_else(|| panic!("no default route\n{out}"));
    assert_eq!(
        v.get(&format!("{gw}Interface")).map(String::as_str),
        Some(wan.trim_end_matches('.')),
    );
    // Taken down, it reads Down, and so does the link whose peer went down with it.
    ns.down("lo");
    ns.down("isp0");
    let v = cpe
        .cli_in(
            ns.name(),
            &["get", &format!("{lo}Status"), &format!("{wan}Status")],
        )
        .values();
    assert_eq!(
        v.get(&format!("{lo}Status")).map(String::as_str),
        Some("Down")
    );
    assert_eq!(
        v.get(&format!("{wan}Status")).map(String::as_str),
        Some("LowerLayerDown")
    );
}

/// A namespace with a WAN link `wan0` (192.0.2.77/24, its peer `isp0`) and the test ACS
/// listening inside it (its socket is made by a thread that entered it); `None` where
/// namespaces cannot be made.
fn wan_with_acs() -> Option<(Netns, Acs)> {
    let ns = Netns::new()?;
    ns.veth("wan0", "isp0");
    ns.up("wan0");
    ns.up("isp0");
    ns.addr("wan0", "192.0.2.77/24");
    let acs = ns.run(|| Acs::start(AcsOptions::default()).expect("start ACS"));
    Some((ns, acs))
}

#[test]
fn a_link_going_down_and_a_new_address_reach_the_acs_as_they_happen() {
    let Some((ns, acs)) = wan_with_acs() else {
        return;
    };
    let cpe = linux_cpe("live-notify", &acs.url());
    let v = cpe
        .cli_in(ns.name(), &["get", "Device.IP.Interface."])
        .values();
    let wan = interface(&v, "wan0");
    let status = format!("{wan}Status");
    let count = format!("{wan}IPv4AddressNumberOfEntries");
    acs.push_script([spa_req(&status, 2), spa_req(&count, 2)]);
    let daemon = cpe.spawn_run_in(ns.name());
    acs.wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("boot session: {e}\n{}", daemon.log()));
    assert!(
        poll(WAIT, || (acs.completed().len() == 1).then_some(())).is_some(),
        "{}",
        daemon.log()
    );
    let changed = |name: &str, value: &str, seen: usize| {
        poll(WAIT, || {
            acs.completed()
                .into_iter()
                .skip(seen)
                .find(|s| s.has_event("4 VALUE CHANGE") && s.param(name) == Some(value))
        })
        .unwrap_or_else(|| panic!("no VALUE CHANGE with {name} = {value}\n{}", daemon.log()))
    };
    // The peer unplugged: the kernel reports the link's carrier lost.
    ns.down("isp0");
    let seen = acs.completed().len().saturating_sub(1);
    changed(&status, "LowerLayerDown", seen);
    // A second address, as a renumbering would add it: a new instance of a table the kernel
    // makes, numbered in RAM, so the data model's store is not written (flash).
    let store = cpe.dir.path().join("state").join("datamodel.toml");
    let before = std::fs::read(&store).expect("the attributes the ACS set are stored");
    let seen = acs.completed().len();
    ns.addr("wan0", "198.51.100.9/24");
    changed(&count, "2", seen);
    let v = cpe
        .cli_in(ns.name(), &["get", &format!("{wan}IPv4Address.")])
        .values();
    assert!(
        v.values().any(|a| a == "198.51.100.9"),
        "the new address is an instance: {v:#?}"
    );
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "datamodel.toml was rewritten for a kernel table's new instance"
    );
}

#[test]
fn the_connection_request_url_follows_a_new_wan_address_at_once() {
    let Some((ns, acs)) = wan_with_acs() else {
        return;
    };
    let cpe = linux_cpe("live-crurl", &acs.url());
    // The URL's host is wan0's address, looked at only every hour by the clock: a quicker
    // change can come only from the kernel's address event.
    let cfg = std::fs::read_to_string(&cpe.cfg).unwrap();
    let cfg = cfg.replace(
        "[connection_request]\nlisten = \"127.0.0.1:0\"\n",
        "[connection_request]\nlisten = \"0.0.0.0:0\"\npassword = \"cr-s3cret\"\n\
         host = \"interface:wan0\"\ncheck_interval = 3600\n",
    );
    std::fs::write(&cpe.cfg, cfg).unwrap();
    let daemon = cpe.spawn_run_in(ns.name());
    const URL: &str = "Device.ManagementServer.ConnectionRequestURL";
    let informed = |prefix: &str, seen: usize| {
        poll(WAIT, || {
            acs.completed()
                .into_iter()
                .skip(seen)
                .find(|s| s.param(URL).is_some_and(|u| u.starts_with(prefix)))
        })
        .unwrap_or_else(|| panic!("no Inform with {URL} = {prefix}…\n{}", daemon.log()))
    };
    informed("http://192.0.2.77:", 0);
    // Renumbered: the old address goes, a new one comes.
    let seen = acs.completed().len();
    ns.ip(&["addr", "del", "192.0.2.77/24", "dev", "wan0"]);
    ns.addr("wan0", "192.0.2.88/24");
    let s = informed("http://192.0.2.88:", seen);
    assert!(s.has_event("4 VALUE CHANGE"), "{:?}", s.event_codes());
}

/// The name of the instance under `table` (`Device.Ethernet.Link.`) whose `Name` is `name`.
fn instance_named(v: &BTreeMap<String, String>, table: &str, name: &str) -> String {
    v.iter()
        .find(|(k, val)| {
            k.starts_with(table)
                && k.ends_with(".Name")
                && k[table.len()..].matches('.').count() == 1
                && *val == name
        })
        .map(|(k, _)| k.trim_end_matches("Name").to_string())
        .unwrap_or_else(|| panic!("no {table} named {name}: {v:#?}"))
}

#[test]
fn ethernet_link_and_bridge_port_counters_are_the_kernel_s_sysfs_ones() {
    // A bridge `br0` with the port `lan0`, a veth whose peer is in another namespace that
    // pings the bridge: the counters of both move. Each of the agent's values (one rtnetlink
    // dump) must lie between what sysfs printed for that counter just before and just after
    // (the files the bindings read before): the kernel may still send a report of its own
    // (IGMP) in between. IPv6 is off in both namespaces, so little else moves them.
    let Some(ns) = Netns::new() else { return };
    let Some(peer) = Netns::new() else { return };
    for n in [&ns, &peer] {
        n.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
        n.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    }
    ns.veth_to("lan0", &peer, "host0");
    ns.bridge("br0");
    ns.enslave("lan0", "br0");
    ns.up("br0");
    ns.addr("br0", "192.0.2.1/24");
    peer.addr("host0", "192.0.2.2/24");
    let ping = peer.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1"]);
    assert!(ping.status.success(), "ping: {ping:?}");
    let counters = [
        ("BytesSent", "tx_bytes"),
        ("BytesReceived", "rx_bytes"),
        ("PacketsSent", "tx_packets"),
        ("PacketsReceived", "rx_packets"),
        ("ErrorsSent", "tx_errors"),
        ("ErrorsReceived", "rx_errors"),
        ("DiscardPacketsSent", "tx_dropped"),
        ("DiscardPacketsReceived", "rx_dropped"),
        ("MulticastPacketsReceived", "multicast"),
        ("UnknownProtoPacketsReceived", "rx_nohandler"),
    ];
    // Every counter of both netdevs, as sysfs prints them.
    let sysfs = || -> BTreeMap<(&str, &str), u64> {
        let mut out = BTreeMap::new();
        for dev in ["br0", "lan0"] {
            for (_, counter) in counters {
                let o = ns.exec(&["cat", &format!("/sys/class/net/{dev}/statistics/{counter}")]);
                assert!(o.status.success(), "{dev}/{counter}: {o:?}");
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let n = text
                    .parse()
                    .unwrap_or_else(|_| panic!("{dev}/{counter}: {text:?}"));
                out.insert((dev, counter), n);
            }
        }
        out
    };
    let cpe = linux_cpe("live-counters", "http://127.0.0.1:9/");
    let before = sysfs();
    let out = cpe.cli_in(
        ns.name(),
        &["get", "Device.Ethernet.Link.", "Device.Bridging."],
    );
    let after = sysfs();
    out.assert_code(0, "get");
    let v = out.values();
    let link = format!(
        "{}Stats.",
        instance_named(&v, "Device.Ethernet.Link.", "br0")
    );
    let bridge = instance_named(&v, "Device.Bridging.Bridge.", "br0");
    let port = format!(
        "{}Stats.",
        instance_named(&v, &format!("{bridge}Port."), "lan0")
    );
    for (stats, dev) in [(&link, "br0"), (&port, "lan0")] {
        for (param, counter) in counters {
            let name = format!("{stats}{param}");
            let got: u64 = v
                .get(&name)
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{name}: {:?}\n{out}", v.get(&name)));
            let (lo, hi) = (before[&(dev, counter)], after[&(dev, counter)]);
            assert!(
                (lo..=hi).contains(&got),
                "{name} = {got}, {dev}/statistics/{counter} was {lo} before and {hi} after\n{out}"
            );
        }
        // The pings and their answers went through both.
        for (_, counter) in &counters[2..4] {
            assert!(before[&(dev, *counter)] >= 3, "{dev}/{counter}: {before:?}");
        }
    }
}
