//! The fixture router (`tests/fixtures/router/`) scaled up for the benchmarks that run the
//! OpenWrt bindings on it (`benches/gpv.rs`, `benches/report.rs`): port forwards, static leases
//! and their DHCP leases added until the tree has more than 2,000 parameters.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::netns::Netns;
use crate::ubus::{fixture_dir, Json};

use crate::tempdir::copy_tree;

/// Extra port forwards and static leases added to the fixture.
pub const REDIRECTS: usize = 100;
pub const HOSTS: usize = 30;

/// Copies the fixture router to `root` and scales the copy up.
pub fn scaled_router(root: &Path) -> Result<(), String> {
    copy_tree(&crate::repo().join("tests/fixtures/router"), root);
    scale(root)
}

/// Adds port forwards, static leases and their DHCP leases to the fixture copy at `root`.
fn scale(root: &Path) -> Result<(), String> {
    let mut fw = String::new();
    for i in 0..REDIRECTS {
        let _ = write!(
            fw,
            "\nconfig redirect\n\toption name 'bench-{i}'\n\toption src 'wan'\n\toption src_dport '{}'\n\toption dest 'lan'\n\toption dest_ip '192.168.1.{}'\n\toption dest_port '{}'\n\tlist proto 'tcp'\n\toption target 'DNAT'\n",
            20000 + i,
            100 + i % 100,
            8000 + i
        );
    }
    append(&root.join("etc/config/firewall"), &fw)?;
    let mut dhcp = String::new();
    let mut leases = String::new();
    for i in 0..HOSTS {
        let _ = write!(
            dhcp,
            "\nconfig host\n\toption name 'bench-host-{i}'\n\toption mac '02:42:00:00:{:02x}:{:02x}'\n\toption ip '192.168.1.{}'\n",
            i / 256,
            i % 256,
            20 + i
        );
        let _ = writeln!(
            leases,
            "2051218800 02:42:00:00:{:02x}:{:02x} 192.168.1.{} bench-host-{i} *",
            i / 256,
            i % 256,
            20 + i
        );
    }
    append(&root.join("etc/config/dhcp"), &dhcp)?;
    append(&root.join("tmp/dhcp.leases"), &leases)
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    let mut s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    s.push_str(text);
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}

/// What [`mirror_netdevs`] made.
#[derive(Debug, Default)]
pub struct Mirrored {
    pub links: usize,
    pub addresses: usize,
    pub neighbours: usize,
    pub fdb: usize,
}

/// Makes the fixture router's netdevs in `ns`, as the router's kernel holds them when its
/// daemons answer as `tests/fixtures/ubus/<release>/` does for `scenario`:
///
/// - every netdev of `root/sys/class/net/` but `lo`, with its MAC address and MTU: a bridge
///   where the fixture has `bridge/` (its ports from `brif/`), else one end of a veth pair (the
///   peer, `p-NAME`, in the same namespace; a netdev whose `operstate` is `down` gets its peer
///   down, so it has no carrier);
/// - the IPv4 and IPv6 addresses netifd's `network.interface dump` of the scenario gives each
///   `l3_device` (with its lifetimes; IPv6 without duplicate address detection), the local
///   addresses of its IPv6 prefix assignments, and its routes through a next hop;
/// - a neighbour (`nud reachable`) on the LAN bridge for every lease of `root/tmp/dhcp.leases`
///   but those that expired (time 0 is a static lease, kept), and a bridge forwarding entry for
///   its MAC address on the bridge's ports in turn.
///
/// All of it through two processes (`ip -n NS -batch -`, then `bridge -batch -` in the
/// namespace). Errors name the command that failed.
pub fn mirror_netdevs(
    ns: &Netns,
    root: &Path,
    release: &str,
    scenario: &str,
) -> Result<Mirrored, String> {
    let mut m = Mirrored::default();
    let net = root.join("sys/class/net");
    let read = |dev: &str, f: &str| {
        std::fs::read_to_string(net.join(dev).join(f))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let mut devs: Vec<String> = std::fs::read_dir(&net)
        .map_err(|e| format!("{}: {e}", net.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|d| d != "lo")
        .collect();
    devs.sort();
    let mut ip = String::new();
    let mut bridges: Vec<(String, Vec<String>)> = Vec::new();
    // Ports first: a bridge made before its ports would take the first port's MAC otherwise.
    for dev in &devs {
        let (mac, mtu) = (read(dev, "address"), read(dev, "mtu"));
        if net.join(dev).join("bridge").is_dir() {
            let mut ports: Vec<String> = std::fs::read_dir(net.join(dev).join("brif"))
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            ports.sort();
            bridges.push((dev.clone(), ports));
            continue;
        }
        let _ = writeln!(
            ip,
            "link add {dev} address {mac} mtu {mtu} type veth peer name p-{dev}"
        );
        let _ = writeln!(ip, "link set {dev} up");
        if read(dev, "operstate") != "down" {
            let _ = writeln!(ip, "link set p-{dev} up");
        }
        m.links += 1;
    }
    for (br, ports) in &bridges {
        let _ = writeln!(
            ip,
            "link add {br} address {} mtu {} type bridge",
            read(br, "address"),
            read(br, "mtu")
        );
        for p in ports {
            let _ = writeln!(ip, "link set {p} master {br}");
        }
        let _ = writeln!(ip, "link set {br} up");
        m.links += 1;
    }
    // netifd's view of the addresses and routes.
    let dump_file = fixture_dir(release).join(format!("network.interface.dump.{scenario}.json"));
    let dump: Json = std::fs::read_to_string(&dump_file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: {e}", dump_file.display()))?;
    let items = |v: &Json, k: &str| {
        v.get(k)
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).map(str::to_owned);
    for iface in items(&dump, "interface") {
        let Some(dev) = text(&iface, "l3_device").filter(|d| d != "lo" && devs.contains(d)) else {
            continue;
        };
        for (key, v6) in [("ipv4-address", false), ("ipv6-address", true)] {
            for a in items(&iface, key) {
                let (Some(addr), Some(mask)) = (text(&a, "address"), a.get("mask")) else {
                    continue;
                };
                let mut line = format!("addr add {addr}/{mask} dev {dev}");
                if let (Some(v), Some(p)) = (a.get("valid"), a.get("preferred")) {
                    let _ = write!(line, " valid_lft {v} preferred_lft {p}");
                }
                if v6 {
                    line.push_str(" nodad");
                }
                let _ = writeln!(ip, "{line}");
                m.addresses += 1;
            }
        }
        for p in items(&iface, "ipv6-prefix-assignment") {
            let Some(local) = p.get("local-address") else {
                continue;
            };
            if let (Some(addr), Some(mask)) = (text(local, "address"), local.get("mask")) {
                let _ = writeln!(ip, "addr add {addr}/{mask} dev {dev} nodad");
                m.addresses += 1;
            }
        }
        for r in items(&iface, "route") {
            let (Some(target), Some(mask), Some(hop)) =
                (text(&r, "target"), r.get("mask"), text(&r, "nexthop"))
            else {
                continue;
            };
            // A connected route (no next hop) comes with its address; the same route from two
            // sources (netifd's IPv6 source routing) is one route here.
            if hop != "0.0.0.0" && hop != "::" {
                let metric = r
                    .get("metric")
                    .map_or(String::new(), |m| format!(" metric {m}"));
                let _ = writeln!(
                    ip,
                    "route replace {target}/{mask} via {hop} dev {dev}{metric}"
                );
            }
        }
    }
    // The LAN's hosts: dnsmasq's leases.
    let mut fdb = String::new();
    if let Some((br, ports)) = bridges.first() {
        let leases = std::fs::read_to_string(root.join("tmp/dhcp.leases")).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (n, l) in leases.lines().enumerate() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (Some(expiry), Some(mac), Some(addr)) = (f.first(), f.get(1), f.get(2)) else {
                continue;
            };
            if expiry.parse::<u64>().is_ok_and(|e| e != 0 && e < now) {
                continue;
            }
            let _ = writeln!(ip, "neigh add {addr} lladdr {mac} dev {br} nud reachable");
            m.neighbours += 1;
            if let Some(port) = ports.get(n % ports.len().max(1)) {
                let _ = writeln!(fdb, "fdb add {mac} dev {port} master static");
                m.fdb += 1;
            }
        }
    }
    let batch = |cmd: &mut Command, input: &str| -> Result<(), String> {
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{shown}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{shown}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    batch(
        Command::new("ip").args(["-n", ns.name(), "-batch", "-"]),
        &ip,
    )?;
    if !fdb.is_empty() {
        batch(
            Command::new("ip").args(["netns", "exec", ns.name(), "bridge", "-batch", "-"]),
            &fdb,
        )?;
    }
    Ok(m)
}
