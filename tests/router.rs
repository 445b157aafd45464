//! The real `cwmpd` binary on the fixture router (`tests/fixtures/router/`: uci config files,
//! /sys, /proc, /tmp) with the real `uci` command, against the test ACS: what an operator's ACS
//! does with a home gateway (TR-069 Annex A parameter RPCs on TR-181 `Device:2`).
//!
//! - a GenieACS-style discovery: GetParameterNames with NextLevel=true level by level, then
//!   GetParameterValues in batches of 32 (every name answers, with its type);
//! - SetParameterValues of the Wi-Fi SSID and the DHCP pool range in one call: the values land in
//!   the uci files, Status is 1 and each touched service is reloaded once, after the session;
//! - a SetParameterValues that fails leaves the uci files as they were: a bad value (9007) and a
//!   failure while applying (a vendor script refusing) both roll everything back;
//! - AddObject/DeleteObject of a port mapping and of a static DHCP lease (uci sections);
//! - a uci value edited outside the agent, with active notification on, starts a
//!   `4 VALUE CHANGE` session carrying the new value (inotify on the config directory).
//!
//! The active notification throttle is proven in memory: `tests/sessions`, case
//! `notification_throttle`.

use support::{acs, cpe, netns::Netns, tempdir, ubus::Broker, uci as uci_support};
use tempdir::{copy_tree, make_executable};

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use acs::{Acs, AcsOptions, Call, SessionRecord, Turn};
use cpe::*;
use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::{AcsRequest, CpeResponse};

const SSID1: &str = "Device.WiFi.SSID.1.SSID";
const POOL1: &str = "Device.DHCPv4.Server.Pool.1.";
const PORTMAP: &str = "Device.NAT.PortMapping.";

/// A CPE on a fresh copy of the fixture router; reload commands append the package name to
/// `reloads.log` in the CPE's directory.
struct Router {
    cpe: Cpe,
}

impl Router {
    fn new(tag: &str, acs: &Acs, vendor: Option<&Path>) -> Router {
        Router::with(tag, acs, vendor, "")
    }

    /// [`Router::new`] with more `[datamodel]` lines (`ubus_socket = …`).
    fn with(tag: &str, acs: &Acs, vendor: Option<&Path>, datamodel: &str) -> Router {
        let uci = uci_support::uci_bin();
        let cpe = Cpe::with_config(tag, &acs.url(), None, 3600, |dir| {
            let root = dir.join("root");
            copy_tree(&fixture(), &root);
            let reloads = dir.join("reloads.log");
            let vendor_dir = vendor.map_or_else(|| dir.join("datamodel.d"), Path::to_path_buf);
            let mut s = format!(
                "\n[datamodel]\nplatform = \"openwrt\"\nroot = {:?}\nuci = {:?}\nuci_savedir = {:?}\ndir = {:?}\npoll_interval = 2\n{datamodel}\n[datamodel.reload]\n",
                root.display().to_string(),
                uci.display().to_string(),
                dir.join("uci-save").display().to_string(),
                vendor_dir.display().to_string(),
            );
            for pkg in ["network", "wireless", "dhcp", "firewall", "system"] {
                s.push_str(&format!(
                    "{pkg} = \"echo {pkg} >> '{}'\"\n",
                    reloads.display()
                ));
            }
            s
        });
        Router { cpe }
    }

    fn dir(&self) -> &Path {
        self.cpe.dir.path()
    }

    fn config_dir(&self) -> PathBuf {
        self.dir().join("root/etc/config")
    }

    /// `uci -c <config dir> -t <its own save dir> ARGS` with the real uci; its stdout.
    fn uci(&self, args: &[&str]) -> String {
        let save = self.dir().join("uci-test-save");
        uci_support::run(&self.config_dir(), &save, args, "")
            .trim()
            .to_string()
    }

    fn reloads(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir().join("reloads.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// One session run with `cwmpd inform` (the CLI runs exactly one session and exits).
    fn session(&self) {
        self.cpe.cli(&["inform"]).assert_code(0, "inform");
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/router")
}

fn last_session(acs: &Acs) -> SessionRecord {
    acs.completed().pop().expect("a completed session")
}

fn response(s: &SessionRecord, i: usize) -> &CpeResponse {
    match &s.exchanges[i].response {
        Ok(r) => r,
        Err(e) => panic!("exchange {i}: {e}"),
    }
}

fn spv_status(s: &SessionRecord, i: usize) -> u8 {
    match response(s, i) {
        CpeResponse::SetParameterValues { status } => *status,
        r => panic!("SPV answered {r:?}"),
    }
}

/// The section name behind an instance, found through the uci values it shows.
fn section_with(r: &Router, pkg: &str, option: &str, value: &str) -> Option<String> {
    r.uci(&["-X", "show", pkg])
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, v)| k.ends_with(&format!(".{option}")) && v.trim_matches('\'') == value)
        .and_then(|(k, _)| k.split('.').nth(1).map(str::to_string))
}

#[test]
fn genieacs_style_discovery_reads_every_parameter_in_batches() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("discovery", &acs, None);
    // Level by level, as GenieACS discovers a new device, then GPVs of 32 names.
    let mut queue = vec!["Device.".to_string()];
    let mut params: Vec<String> = Vec::new();
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut started_gpv = false;
    acs.push_script_fn(move |t: &Turn<'_>| {
        if let Some(last) = t.last {
            if let Ok(CpeResponse::GetParameterNames { list }) = &last.response {
                for p in list {
                    if p.name.ends_with('.') {
                        queue.push(p.name.clone());
                    } else {
                        params.push(p.name.clone());
                    }
                }
            }
        }
        if let Some(path) = queue.pop() {
            return Some(gpn_req(&path, true));
        }
        if !started_gpv {
            started_gpv = true;
            params.sort();
            batches = params.chunks(32).map(<[String]>::to_vec).collect();
            batches.reverse();
        }
        let b = batches.pop()?;
        let names: Vec<&str> = b.iter().map(String::as_str).collect();
        Some(gpv_req(&names))
    });
    router.session();
    let s = last_session(&acs);
    let mut names = Vec::new();
    let mut values: BTreeMap<String, (String, BaseType)> = BTreeMap::new();
    for (i, e) in s.exchanges.iter().enumerate() {
        match response(&s, i) {
            CpeResponse::GetParameterNames { list } => {
                names.extend(list.iter().filter(|p| !p.name.ends_with('.')).cloned())
            }
            CpeResponse::GetParameterValues { list } => {
                let asked = match &e.call {
                    Call::Rpc(AcsRequest::GetParameterValues { names }) => names.len(),
                    c => panic!("unexpected {c:?}"),
                };
                assert_eq!(list.len(), asked, "every name of a batch answers");
                for v in list {
                    values.insert(v.name.to_string(), (v.value.to_string(), v.ty));
                }
            }
            r => panic!("unexpected answer {r:?}"),
        }
    }
    assert!(
        names.len() >= 500,
        "a typical router shows at least 500 parameters, got {}",
        names.len()
    );
    assert_eq!(values.len(), names.len(), "each name read exactly once");
    for n in &names {
        assert!(values.contains_key(&n.name), "{} was not read", n.name);
    }
    // Live values from the fixture, with their types.
    let v = |n: &str| values.get(n).map(|(v, t)| (v.as_str(), *t));
    assert_eq!(
        v("Device.WiFi.SSIDNumberOfEntries").map(|x| x.1),
        Some(BaseType::UnsignedInt)
    );
    let ssid_count: usize = v("Device.WiFi.SSIDNumberOfEntries")
        .unwrap()
        .0
        .parse()
        .unwrap();
    assert!(ssid_count >= 2);
    let lan_ip = values.iter().find(|(k, (val, _))| {
        k.starts_with("Device.IP.Interface.") && k.ends_with(".IPAddress") && val == "192.168.1.1"
    });
    assert!(lan_ip.is_some(), "the LAN address is read from uci");
    assert!(values
        .iter()
        .any(|(k, (_, t))| k.ends_with(".Stats.BytesReceived") && *t == BaseType::UnsignedLong));
    // The discovery wrote nothing to the router's configuration.
    assert!(router.reloads().is_empty());
}

#[test]
fn spv_of_ssid_and_dhcp_range_lands_in_uci_and_reloads_each_service_once() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("spv", &acs, None);
    let ssid_before = { router.cpe.cli(&["get", SSID1]).stdout };
    assert!(ssid_before.contains(SSID1), "{ssid_before}");
    let min = format!("{POOL1}MinAddress");
    let max = format!("{POOL1}MaxAddress");
    acs.push_script([
        spv_req(
            &[
                (SSID1, "Operator-WiFi", BaseType::String),
                (&min, "192.168.1.50", BaseType::String),
                (&max, "192.168.1.99", BaseType::String),
            ],
            "spv-1",
        ),
        gpv_req(&[SSID1, &min, &max]),
    ]);
    router.session();
    let s = last_session(&acs);
    assert_eq!(spv_status(&s, 0), 1, "applied when the session ends");
    let got = gpv(&s.exchanges[1]);
    assert_eq!(value(&got, SSID1).map(|v| v.0), Some("Operator-WiFi"));
    assert_eq!(value(&got, &min).map(|v| v.0), Some("192.168.1.50"));
    assert_eq!(value(&got, &max).map(|v| v.0), Some("192.168.1.99"));
    // In the uci files, in OpenWrt's own form.
    assert!(section_with(&router, "wireless", "ssid", "Operator-WiFi").is_some());
    assert_eq!(router.uci(&["get", "dhcp.lan.start"]), "50");
    assert_eq!(router.uci(&["get", "dhcp.lan.limit"]), "50");
    // Each touched service reloaded once, after the session.
    let mut reloads = router.reloads();
    reloads.sort();
    assert_eq!(reloads, ["dhcp", "wireless"]);
    // What a reload command writes is readable by services that drop root (dnsmasq reads the
    // `/tmp/hosts/dhcp.*` its init script writes as user `dnsmasq`): the commands run with umask
    // 022, not the agent's 077. The reload log must stay 0644, not 0600.
    let log_mode = std::fs::metadata(router.dir().join("reloads.log"))
        .expect("reloads.log")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        log_mode, 0o644,
        "mode of the file the reload command created"
    );
    // Read back through the CLI too (a new process: nothing cached).
    let out = router.cpe.cli(&["get", &min]);
    assert!(out.stdout.contains("192.168.1.50"), "{out}");

    // The same values again (an ACS re-sending its configuration): nothing is written, nothing
    // reloaded, and the change is effective at once (Status 0).
    let wireless = router.uci(&["export", "wireless"]);
    acs.push_script([spv_req(
        &[
            (SSID1, "Operator-WiFi", BaseType::String),
            (&max, "192.168.1.99", BaseType::String),
        ],
        "spv-2",
    )]);
    router.session();
    assert_eq!(spv_status(&last_session(&acs), 0), 0);
    assert_eq!(router.reloads().len(), 2, "no new reload");
    assert_eq!(router.uci(&["export", "wireless"]), wireless);
}

#[test]
fn failing_spv_leaves_uci_untouched() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    // A vendor parameter whose script refuses every change while applying.
    let vendor = TempDir::new("refusing-vendor");
    std::fs::write(
        vendor.path().join("refuse.sh"),
        "#!/bin/sh\ncase \"$1\" in\n  get) while read k; do printf 'ok\\t%s\\toff\\n' \"$k\"; done ;;\n  set) cat >/dev/null; echo 'flash is read-only' >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    make_executable(&vendor.path().join("refuse.sh"));
    std::fs::write(
        vendor.path().join("refuse.toml"),
        "[script.refuse]\npath = \"refuse.sh\"\n\n[[object]]\nname = \"Device.X_TEST_Refuse.\"\nparams = [{ name = \"Mode\", type = \"string\", access = \"readWrite\" }]\n\n[bind.\"Device.X_TEST_Refuse.\"]\nMode = \"script:refuse:mode\"\n",
    )
    .unwrap();
    let router = Router::new("rollback", &acs, Some(vendor.path()));
    // What uci holds (a commit rewrites a hand-written file in uci's own layout, so the
    // comparison is of the configuration, in order, not of the bytes).
    let before = router.uci(&["export", "wireless"]);
    let dhcp_before = router.uci(&["export", "dhcp"]);
    let max = format!("{POOL1}MaxAddress");
    acs.push_script([
        // A value outside the LAN subnet: refused before anything is applied.
        spv_req(
            &[
                (SSID1, "Never-1", BaseType::String),
                (&max, "10.9.9.9", BaseType::String),
            ],
            "bad-1",
        ),
        // Everything valid, but one backend fails while applying: uci is rolled back.
        spv_req(
            &[
                (SSID1, "Never-2", BaseType::String),
                ("Device.X_TEST_Refuse.Mode", "on", BaseType::String),
            ],
            "bad-2",
        ),
        gpv_req(&[SSID1, "Device.ManagementServer.ParameterKey"]),
    ]);
    router.session();
    let s = last_session(&acs);
    let f = s.exchanges[0].fault().expect("fault for the bad value");
    assert_eq!(f.code(), 9003);
    assert_eq!(f.param_faults().len(), 1, "{f:?}");
    assert_eq!(f.param_faults()[0].name, max);
    assert_eq!(f.param_faults()[0].fault.code(), 9007);
    let f = s.exchanges[1].fault().expect("fault for the failed apply");
    assert!(f.code() >= 9000, "{f:?}");
    let got = gpv(&s.exchanges[2]);
    assert!(!value(&got, SSID1).unwrap().0.starts_with("Never"));
    assert_eq!(
        value(&got, "Device.ManagementServer.ParameterKey").map(|v| v.0),
        Some(""),
        "ParameterKey changes only on success"
    );
    assert_eq!(router.uci(&["export", "wireless"]), before);
    assert_eq!(router.uci(&["export", "dhcp"]), dhcp_before);
    assert!(router.reloads().is_empty(), "nothing to reload");
}

#[test]
fn add_and_delete_a_port_mapping_and_a_static_lease() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("addobj", &acs, None);
    let redirects_before = router
        .uci(&["-X", "show", "firewall"])
        .matches("=redirect")
        .count();
    let hosts_before = router.uci(&["-X", "show", "dhcp"]).matches("=host").count();
    let lease = format!("{POOL1}StaticAddress.");
    acs.push_script_fn({
        let lease = lease.clone();
        let mut step = 0;
        let mut pm = 0;
        let mut sa = 0;
        move |t: &Turn<'_>| {
            step += 1;
            match step {
                1 => Some(add_req_at(PORTMAP, "add-pm")),
                2 => {
                    pm = instance(t.last?);
                    let p = |n: &str| format!("{PORTMAP}{pm}.{n}");
                    Some(spv_req(
                        &[
                            (&p("Enable"), "true", BaseType::Boolean),
                            (&p("ExternalPort"), "8443", BaseType::UnsignedInt),
                            (&p("InternalPort"), "443", BaseType::UnsignedInt),
                            (&p("InternalClient"), "192.168.1.77", BaseType::String),
                            (&p("Protocol"), "TCP", BaseType::String),
                            (&p("Description"), "tr069-test", BaseType::String),
                        ],
                        "set-pm",
                    ))
                }
                3 => Some(add_req_at(&lease, "add-sa")),
                4 => {
                    sa = instance(t.last?);
                    let p = |n: &str| format!("{lease}{sa}.{n}");
                    Some(spv_req(
                        &[
                            (&p("Chaddr"), "02:00:00:aa:bb:cc", BaseType::String),
                            (&p("Yiaddr"), "192.168.1.88", BaseType::String),
                        ],
                        "set-sa",
                    ))
                }
                5 => Some(gpv_req(&[
                    &format!("{PORTMAP}{pm}."),
                    &format!("{lease}{sa}."),
                ])),
                _ => None,
            }
        }
    });
    router.session();
    let s = last_session(&acs);
    for (i, e) in s.exchanges.iter().enumerate() {
        assert!(e.fault().is_none(), "exchange {i}: {:?}", e.response);
    }
    let pm = instance(&s.exchanges[0]);
    let sa = instance(&s.exchanges[2]);
    let got = gpv(&s.exchanges[4]);
    assert_eq!(
        value(&got, &format!("{PORTMAP}{pm}.InternalClient")).map(|v| v.0),
        Some("192.168.1.77")
    );
    // New uci sections with OpenWrt's options.
    let section = section_with(&router, "firewall", "dest_ip", "192.168.1.77").expect("redirect");
    assert_eq!(
        router.uci(&["get", &format!("firewall.{section}")]),
        "redirect"
    );
    assert_eq!(
        router.uci(&["get", &format!("firewall.{section}.src_dport")]),
        "8443"
    );
    assert_eq!(
        router.uci(&["get", &format!("firewall.{section}.dest_port")]),
        "443"
    );
    assert_eq!(
        router.uci(&["get", &format!("firewall.{section}.src")]),
        "wan"
    );
    let host = section_with(&router, "dhcp", "ip", "192.168.1.88").expect("host");
    assert_eq!(
        router
            .uci(&["get", &format!("dhcp.{host}.mac")])
            .to_ascii_lowercase(),
        "02:00:00:aa:bb:cc"
    );
    assert_eq!(
        router
            .uci(&["-X", "show", "firewall"])
            .matches("=redirect")
            .count(),
        redirects_before + 1
    );

    // Deleting them removes the sections; the instance numbers are not reused.
    acs.push_script([
        delete_req(&format!("{PORTMAP}{pm}."), "del-pm"),
        delete_req(&format!("{lease}{sa}."), "del-sa"),
        add_req_at(PORTMAP, "add-again"),
    ]);
    router.session();
    let s = last_session(&acs);
    assert!(
        s.exchanges[0].fault().is_none(),
        "{:?}",
        s.exchanges[0].response
    );
    assert!(
        s.exchanges[1].fault().is_none(),
        "{:?}",
        s.exchanges[1].response
    );
    assert!(instance(&s.exchanges[2]) > pm);
    assert!(section_with(&router, "firewall", "dest_ip", "192.168.1.77").is_none());
    assert!(section_with(&router, "dhcp", "ip", "192.168.1.88").is_none());
    assert_eq!(
        router.uci(&["-X", "show", "dhcp"]).matches("=host").count(),
        hosts_before
    );
}

#[test]
fn a_uci_edit_outside_the_agent_starts_a_value_change_session() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("notify", &acs, None);
    acs.push_script([spa_req(SSID1, 2)]);
    let daemon = router.cpe.spawn_run();
    acs.wait_sessions(1, WAIT).expect("boot session");
    assert!(
        poll(WAIT, || (acs.completed().len() == 1).then_some(())).is_some(),
        "{}",
        daemon.log()
    );
    // Someone edits the Wi-Fi name with uci (LuCI, ssh) and commits.
    let shown = router.cpe.cli(&["get", SSID1]).stdout;
    let ssid = shown.rsplit(" = ").next().unwrap().trim();
    let section = section_with(&router, "wireless", "ssid", ssid).expect("the section of SSID 1");
    router.uci(&["set", &format!("wireless.{section}.ssid=Changed-By-Hand")]);
    router.uci(&["commit", "wireless"]);
    let s = poll(WAIT, || {
        acs.completed()
            .into_iter()
            .find(|s| s.has_event("4 VALUE CHANGE"))
    })
    .unwrap_or_else(|| panic!("no VALUE CHANGE session\n{}", daemon.log()));
    assert_eq!(s.param(SSID1), Some("Changed-By-Hand"));
    // The agent's own change is not notified back.
    assert!(!daemon.log().contains("panicked"));
}

#[test]
fn cli_get_lists_both_trees_with_types_and_check_names_a_bad_file() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let vendor = TempDir::new("cli-vendor");
    let router = Router::new("cli", &acs, Some(vendor.path()));
    let out = router.cpe.cli(&["check"]);
    out.assert_code(0, "check");
    assert!(out.stdout.contains("openwrt"), "{out}");
    // Every parameter with its type and value.
    let out = router.cpe.cli(&["get", "Device."]);
    out.assert_code(0, "get Device.");
    let got = out.typed_values();
    assert!(got.len() >= 500, "{} parameters", got.len());
    for (name, (ty, _)) in &got {
        assert!(name.starts_with("Device."), "{name}");
        assert!(
            BaseType::from_xsi(ty).is_some_and(|t| t.name() == ty),
            "{name} [{ty}]"
        );
    }
    assert!(out
        .stdout
        .contains("Device.DeviceInfo.SoftwareVersion [string] = 23.05"));
    // The same router as TR-098.
    let cfg = std::fs::read_to_string(&router.cpe.cfg).unwrap();
    std::fs::write(
        &router.cpe.cfg,
        cfg.replace("[device]\n", "[device]\ndata_model = \"tr098\"\n"),
    )
    .unwrap();
    let out = router.cpe.cli(&["get", "InternetGatewayDevice."]);
    out.assert_code(0, "get InternetGatewayDevice.");
    assert!(out.stdout.lines().count() >= 300, "{out}");
    // The CPU's load from the fixture's /proc/stat (a first reading counts since boot).
    let (ty, cpu) =
        out.typed_values()["InternetGatewayDevice.DeviceInfo.ProcessStatus.CPUUsage"].clone();
    assert_eq!(ty, "unsignedInt");
    assert!(cpu.parse::<u32>().is_ok_and(|c| c <= 100), "{cpu:?}");
    assert!(out.stdout.contains(
        "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.MinAddress [string] = 192.168.1.100"
    ), "{out}");
    // A broken vendor file: exit 2 and the file and line.
    let bad = vendor.path().join("broken.toml");
    std::fs::write(
        &bad,
        "[bind.\"InternetGatewayDevice.DeviceInfo.\"]\nModelName = \"const:x\"\nNoSuch = \"uci:system.@system[0].hostname\"\n",
    )
    .unwrap();
    let out = router.cpe.cli(&["check"]);
    out.assert_code(2, "check with a broken file");
    assert!(
        out.stderr.contains(&format!("{}:3", bad.display())),
        "{out}"
    );
}

#[test]
fn instance_numbers_follow_their_sections_when_others_are_deleted() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("stable", &acs, None);
    let descriptions = |s: &SessionRecord, i: usize| -> BTreeMap<String, String> {
        gpv(&s.exchanges[i])
            .into_iter()
            .filter(|v| v.name.ends_with(".Description"))
            .map(|v| (v.name, v.value))
            .collect()
    };
    let leases = format!("{POOL1}StaticAddress.");
    acs.push_script([gpv_req(&[PORTMAP]), gpv_req(&[&leases])]);
    router.session();
    let s = last_session(&acs);
    let before = descriptions(&s, 0);
    assert!(before.len() >= 3, "{before:?}");
    let lease_count = gpv(&s.exchanges[1]).len();
    assert!(lease_count > 0);
    // The first port forward goes: the anonymous sections after it are renamed by uci
    // (cfg02… becomes cfg01…), but each keeps its instance number. The WAN pool goes: it
    // lists no static lease (they are in the LAN's subnet), so the LAN pool's stay.
    let first = before
        .keys()
        .next()
        .unwrap()
        .trim_end_matches("Description")
        .to_string();
    acs.push_script([
        delete_req(&first, "del-1"),
        gpv_req(&[PORTMAP]),
        delete_req("Device.DHCPv4.Server.Pool.2.", "del-pool"),
        gpv_req(&[&leases]),
    ]);
    router.session();
    let s = last_session(&acs);
    for i in [0, 2] {
        assert!(
            s.exchanges[i].fault().is_none(),
            "{:?}",
            s.exchanges[i].response
        );
    }
    let after = descriptions(&s, 1);
    let mut expected = before.clone();
    expected.retain(|k, _| !k.starts_with(&first));
    assert_eq!(after, expected);
    assert_eq!(gpv(&s.exchanges[3]).len(), lease_count, "the leases stay");
    // Also in a new process (numbers and keys come from the store).
    let out = router.cpe.cli(&["get", PORTMAP]);
    for (name, value) in &expected {
        assert!(
            out.stdout.contains(&format!("{name} [string] = {value}")),
            "{out}"
        );
    }
}

/// Deleting an anonymous uci section makes uci rename those after it;
/// the agent must record the new names with the delete, before it answers. The daemon is
/// SIGKILLed the moment the DeleteObjectResponse reaches the ACS (no listing after it), and
/// the next process still shows the survivors under their numbers: {1, 3}, not {1, 4}.
#[test]
fn instance_numbers_survive_a_kill_right_after_delete_object() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("delete-kill", &acs, None);
    let pid = Arc::new(AtomicU32::new(0));
    acs.push_script_fn({
        let pid = pid.clone();
        let mut step = 0;
        move |_: &Turn<'_>| {
            step += 1;
            match step {
                1 => Some(gpv_req(&[PORTMAP])),
                2 => Some(delete_req(&format!("{PORTMAP}2."), "del-2")),
                _ => {
                    // The DeleteObjectResponse has arrived: a power cut now.
                    let p = poll(WAIT, || {
                        Some(pid.load(Ordering::SeqCst)).filter(|p| *p != 0)
                    })
                    .expect("the daemon's pid");
                    let killed = Command::new("kill")
                        .args(["-KILL", &p.to_string()])
                        .status()
                        .expect("run kill");
                    assert!(killed.success());
                    None
                }
            }
        }
    });
    let mut daemon = router.cpe.spawn_run();
    pid.store(daemon.child.id(), Ordering::SeqCst);
    let sessions = acs
        .wait_for(WAIT, |s| s.first().is_some_and(|s| s.exchanges.len() >= 2))
        .unwrap_or_else(|e| {
            panic!(
                "{e}
{}",
                daemon.log()
            )
        });
    assert!(
        poll(WAIT, || (!daemon.alive()).then_some(())).is_some(),
        "the daemon was killed"
    );
    let first = &sessions[0];
    let descriptions: BTreeMap<String, String> = gpv(&first.exchanges[0])
        .into_iter()
        .filter(|v| v.name.ends_with(".Description"))
        .map(|v| (v.name, v.value))
        .collect();
    assert_eq!(descriptions.len(), 3, "{descriptions:?}");
    assert!(
        first.exchanges[1].fault().is_none(),
        "{:?}",
        first.exchanges[1].response
    );
    let log = daemon.kill();

    // The next start (a new process: only the store knows the numbers).
    acs.push_script([gpn_req(PORTMAP, true), gpv_req(&[PORTMAP])]);
    router.session();
    let s = last_session(&acs);
    let names: Vec<String> = gpn(&s.exchanges[0]).into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [format!("{PORTMAP}1."), format!("{PORTMAP}3.")],
        "daemon log:\n{log}"
    );
    let after: BTreeMap<String, String> = gpv(&s.exchanges[1])
        .into_iter()
        .filter(|v| v.name.ends_with(".Description"))
        .map(|v| (v.name, v.value))
        .collect();
    let mut expected = descriptions.clone();
    expected.retain(|k, _| !k.starts_with(&format!("{PORTMAP}2.")));
    assert_eq!(after, expected, "each keeps its section");
}

/// A tmpfs mounted on a directory for the life of the value (the test runs as root, as CI
/// does); unmounted on drop, also when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill the storage and must run as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes `dir/filler` until the filesystem is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create the filler");
    let block = [0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

/// Nothing is acknowledged that is not durable. With the storage
/// directory's filesystem full, SetParameterValues and AddObject cannot record what they change
/// (the ParameterKey, the new instance): they answer 9002 and everything is undone, the uci
/// side included, so the ACS and the device agree. Once there is room the same requests work.
#[test]
fn a_full_storage_refuses_changes_and_leaves_uci_untouched() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("full", &acs, None);
    let state = router.dir().join("state");
    let _tmpfs = Tmpfs::mount(&state, "256k");
    // A first session: the state files exist, the port forwards have their numbers.
    acs.push_script([gpv_req(&[PORTMAP])]);
    router.session();
    let wireless = router.uci(&["export", "wireless"]);
    let firewall = router.uci(&["export", "firewall"]);
    let key = "Device.ManagementServer.ParameterKey";
    let requests = || {
        [
            spv_req(&[(SSID1, "Full-Disk", BaseType::String)], "full-1"),
            add_req_at(PORTMAP, "full-2"),
            gpv_req(&[SSID1, key]),
            gpn_req(PORTMAP, true),
        ]
    };
    let filler = fill(&state);
    acs.push_script(requests());
    // The end of the session cannot be recorded either: the exit code is not the point here.
    let out = router.cpe.cli(&["inform"]);
    let s = last_session(&acs);
    for i in [0, 1] {
        assert_eq!(
            fault_code(&s.exchanges[i]),
            Some(9002),
            "exchange {i}
{out}"
        );
    }
    let got = gpv(&s.exchanges[2]);
    assert_ne!(value(&got, SSID1).map(|v| v.0), Some("Full-Disk"));
    assert_eq!(value(&got, key).map(|v| v.0), Some(""));
    let names: Vec<String> = gpn(&s.exchanges[3]).into_iter().map(|p| p.name).collect();
    assert_eq!(names.len(), 3, "no new instance: {names:?}");
    assert_eq!(router.uci(&["export", "wireless"]), wireless);
    assert_eq!(router.uci(&["export", "firewall"]), firewall);
    assert!(router.reloads().is_empty(), "nothing to reload");

    // Room again: the same requests are applied and recorded.
    std::fs::remove_file(&filler).expect("free the space");
    acs.push_script(requests());
    router.session();
    let s = last_session(&acs);
    assert!(
        s.exchanges[0].fault().is_none(),
        "{:?}",
        s.exchanges[0].response
    );
    assert_eq!(instance(&s.exchanges[1]), 4);
    let got = gpv(&s.exchanges[2]);
    assert_eq!(value(&got, SSID1).map(|v| v.0), Some("Full-Disk"));
    assert_eq!(value(&got, key).map(|v| v.0), Some("full-2"));
    assert!(section_with(&router, "wireless", "ssid", "Full-Disk").is_some());
    assert_ne!(router.uci(&["export", "firewall"]), firewall);
}

/// On OpenWrt the agent's config is `/etc/config/cwmpd`: the same settings as the
/// TOML file, read from UCI; ManagementServer values the ACS sets are written back there, so
/// `uci show cwmpd` shows them and the next start uses them.
#[test]
fn the_uci_config_is_the_config_and_follows_the_acs() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let router = Router::new("rt-ucicfg", &acs, None);
    let dir = router.dir().to_path_buf();
    let root = dir.join("root");
    let conf = router.config_dir().join("cwmpd");
    std::fs::write(
        &conf,
        format!(
            "# cwmpd on the fixture router\n\
             config acs 'acs'\n\
             \toption url '{url}'\n\
             \toption username '{USER}'\n\
             \toption password \"{PASS}\"\n\
             \toption periodic_inform_enable '1'\n\
             \toption periodic_inform_interval '3600'\n\
             \toption timeout 5\n\n\
             config device 'device'\n\
             \toption oui '00D0F8'\n\
             \toption serial_number '{SERIAL}'\n\n\
             config connection_request 'connection_request'\n\
             \toption enable '1'\n\
             \toption listen '127.0.0.1:0'\n\n\
             config storage 'storage'\n\
             \toption dir '{state}'\n\n\
             config datamodel 'datamodel'\n\
             \toption platform 'openwrt'\n\
             \toption root '{root}'\n\
             \toption uci '{uci}'\n\
             \toption uci_savedir '{save}'\n\n\
             config reload 'reload'\n\
             \toption network ''\n\n\
             config log 'log'\n\
             \toption level 'debug'\n\
             \toption target 'stderr'\n",
            url = acs.url(),
            state = dir.join("uci-state").display(),
            root = root.display(),
            uci = uci_support::uci_bin().display(),
            save = dir.join("uci-save2").display(),
        ),
    )
    .expect("write /etc/config/cwmpd");
    let conf_s = conf.display().to_string();
    run(&["-c", &conf_s, "check"]).assert_code(0, "check of the uci config");
    acs.push_script([spv_req(
        &[
            (
                "Device.ManagementServer.PeriodicInformInterval",
                "1234",
                BaseType::UnsignedInt,
            ),
            (
                "Device.ManagementServer.ConnectionRequestUsername",
                "cr-user",
                BaseType::String,
            ),
        ],
        "uci-1",
    )]);
    run(&["-c", &conf_s, "inform"]).assert_code(0, "inform with the uci config");
    let s = last_session(&acs);
    assert_eq!(s.inform.device_id.serial_number, SERIAL);
    assert!(
        s.exchanges[0].fault().is_none(),
        "{:?}",
        s.exchanges[0].response
    );
    let shown = router.uci(&["show", "cwmpd"]);
    assert!(
        shown.contains("cwmpd.acs.periodic_inform_interval='1234'"),
        "{shown}"
    );
    assert!(
        shown.contains("cwmpd.connection_request.username='cr-user'"),
        "{shown}"
    );
    // The next process reads it back from the file.
    let out = run(&[
        "-c",
        &conf_s,
        "get",
        "Device.ManagementServer.PeriodicInformInterval",
    ]);
    assert!(out.stdout.contains("= 1234"), "{out}");
    // A typo names the file and the line.
    // (uci commit rewrote the file in its own layout: the line is looked up.)
    let text = std::fs::read_to_string(&conf).expect("read back");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("option timeout"))
        .expect("the timeout option is still there");
    std::fs::write(&conf, text.replace("option timeout", "option timout")).expect("write");
    let out = run(&["-c", &conf_s, "check"]);
    out.assert_code(2, "a misspelt option");
    assert!(
        out.stderr
            .contains(&format!("cwmpd:{line}: unknown field `timout`")),
        "{out}"
    );
}

/// The MAC address of the ISP's gateway, a neighbour on the WAN.
const GATEWAY_MAC: &str = "00:00:5e:00:53:01";

/// The fixture router at one moment of its life: netifd, hostapd and iwinfo answering over ubus
/// (the test broker serving OpenWrt 23.05's replies for this router, `tests/fixtures/ubus/`),
/// and the kernel in a network namespace holding the router's netdevs as netifd and the DHCP or
/// PPP client left them. `cwmpd` runs inside the namespace.
struct LiveRouter {
    router: Router,
    ns: Netns,
    broker: Broker,
}

impl LiveRouter {
    /// `scenario`: `dhcp` or `pppoe` (the WAN's protocol); `None` where namespaces cannot be
    /// made (not root).
    fn new(tag: &str, acs: &Acs, scenario: &str) -> Option<LiveRouter> {
        let ns = Netns::new()?;
        let broker = Broker::start();
        assert!(broker.serve_fixtures("openwrt-23.05", scenario) >= 15);
        let router = Router::with(
            tag,
            acs,
            None,
            &format!(
                "ubus_socket = {:?}\n",
                broker.socket().display().to_string()
            ),
        );
        // The router's netdevs (tests/fixtures/router/README.md): the WAN port, the LAN bridge
        // with a port and the two access points; each a veth whose other end stays beside it.
        for (dev, peer, mac) in [
            ("wan", "isp", "14:91:82:3a:5c:11"),
            ("lan1", "lan1-host", "14:91:82:3a:5c:10"),
            ("phy0-ap0", "sta0", "14:91:82:3a:5c:12"),
            ("phy1-ap0", "sta1", "14:91:82:3a:5c:13"),
        ] {
            ns.veth(dev, peer);
            ns.ip(&["link", "set", dev, "address", mac]);
            ns.up(dev);
            ns.up(peer);
        }
        ns.bridge("br-lan");
        for port in ["lan1", "phy0-ap0", "phy1-ap0"] {
            ns.enslave(port, "br-lan");
        }
        ns.up("br-lan");
        ns.addr("br-lan", "192.168.1.1/24");
        match scenario {
            // What netifd sets from udhcpc's lease (dhcp.script: address, no lifetime).
            "dhcp" => {
                ns.addr("wan", "203.0.113.45/24");
                ns.route(&["add", "default", "via", "203.0.113.1", "dev", "wan"]);
            }
            // pppd's session netdev (a veth standing in: the kernel's view of an address with
            // a peer is the same), MTU 1492 as netifd asks for PPPoE.
            _ => {
                ns.veth("pppoe-wan", "ac");
                ns.ip(&["link", "set", "pppoe-wan", "mtu", "1492"]);
                ns.up("pppoe-wan");
                ns.ip(&[
                    "addr",
                    "add",
                    "198.51.100.77",
                    "peer",
                    "198.51.100.1/32",
                    "dev",
                    "pppoe-wan",
                ]);
                ns.route(&["add", "default", "via", "198.51.100.1", "dev", "pppoe-wan"]);
                router.uci(&["set", "network.wan.proto=pppoe"]);
                router.uci(&["commit", "network"]);
            }
        }
        // Two LAN hosts the kernel has seen: the laptop on Wi-Fi, the NAS on port lan1.
        ns.neigh(&[
            "add",
            "192.168.1.123",
            "lladdr",
            "f0:18:98:4e:5d:6c",
            "dev",
            "br-lan",
            "nud",
            "reachable",
        ]);
        ns.neigh(&[
            "add",
            "192.168.1.10",
            "lladdr",
            "00:11:32:aa:bb:cc",
            "dev",
            "br-lan",
            "nud",
            "stale",
        ]);
        // A printer with a static address (no lease) on port lan1, and the WAN's gateway.
        ns.neigh(&[
            "add",
            "192.168.1.50",
            "lladdr",
            "3c:2a:f4:11:22:33",
            "dev",
            "br-lan",
            "nud",
            "reachable",
        ]);
        let (gw, gw_dev) = match scenario {
            "dhcp" => ("203.0.113.1", "wan"),
            _ => ("198.51.100.1", "pppoe-wan"),
        };
        ns.neigh(&[
            "add",
            gw,
            "lladdr",
            GATEWAY_MAC,
            "dev",
            gw_dev,
            "nud",
            "reachable",
        ]);
        for (mac, port) in [
            ("f0:18:98:4e:5d:6c", "phy0-ap0"),
            ("00:11:32:aa:bb:cc", "lan1"),
            ("3c:2a:f4:11:22:33", "lan1"),
        ] {
            let out = ns.exec(&["bridge", "fdb", "add", mac, "dev", port, "master", "static"]);
            assert!(out.status.success(), "bridge fdb add: {out:?}");
        }
        Some(LiveRouter { router, ns, broker })
    }

    /// `cwmpd get PATHS` in the namespace, as name → value.
    fn get(&self, paths: &[&str]) -> BTreeMap<String, String> {
        let mut args = vec!["get"];
        args.extend_from_slice(paths);
        let out = self.router.cpe.cli_in(self.ns.name(), &args);
        out.assert_code(0, "get");
        out.values()
    }
}

fn assert_values(got: &BTreeMap<String, String>, want: &[(&str, &str)]) {
    for (name, value) in want {
        assert_eq!(
            got.get(*name).map(String::as_str),
            Some(*value),
            "{name}\n{got:#?}"
        );
    }
}

#[test]
fn a_dhcp_wan_shows_its_lease_stations_and_hosts_from_netifd_hostapd_and_the_kernel() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let Some(live) = LiveRouter::new("live-dhcp", &acs, "dhcp") else {
        return;
    };
    let got = live.get(&["Device."]);
    // IP.Interface: 1 loopback, 2 lan, 3 wan, 4 wan6, 5 wanppp (the uci order).
    assert_values(
        &got,
        &[
            ("Device.IP.Interface.3.Name", "wan"),
            ("Device.IP.Interface.3.Status", "Up"),
            ("Device.IP.Interface.3.LastChange", "356096"),
            (
                "Device.IP.Interface.3.IPv4Address.1.IPAddress",
                "203.0.113.45",
            ),
            (
                "Device.IP.Interface.3.IPv4Address.1.SubnetMask",
                "255.255.255.0",
            ),
            ("Device.IP.Interface.3.IPv4Address.1.AddressingType", "DHCP"),
            // The LAN's static address stays uci's (and writable).
            (
                "Device.IP.Interface.2.IPv4Address.1.IPAddress",
                "192.168.1.1",
            ),
            (
                "Device.IP.Interface.2.IPv4Address.1.AddressingType",
                "Static",
            ),
            ("Device.IP.Interface.5.Status", "Down"),
            ("Device.DHCPv4.Client.1.Interface", "Device.IP.Interface.3"),
            ("Device.DHCPv4.Client.1.DHCPStatus", "Bound"),
            ("Device.DHCPv4.Client.1.IPAddress", "203.0.113.45"),
            ("Device.DHCPv4.Client.1.SubnetMask", "255.255.255.0"),
            ("Device.DHCPv4.Client.1.IPRouters", "203.0.113.1"),
            (
                "Device.DHCPv4.Client.1.DNSServers",
                "203.0.113.53,203.0.113.54",
            ),
            ("Device.DHCPv4.Client.1.DHCPServer", "198.51.100.10"),
            // Wi-Fi: the 2.4 GHz AP has two stations, the 5 GHz one none.
            ("Device.WiFi.SSID.1.Name", "phy0-ap0"),
            ("Device.WiFi.SSID.1.Status", "Up"),
            ("Device.WiFi.SSID.1.MACAddress", "14:91:82:3a:5c:12"),
            ("Device.WiFi.AccessPoint.1.Status", "Enabled"),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDeviceNumberOfEntries",
                "2",
            ),
            (
                "Device.WiFi.AccessPoint.2.AssociatedDeviceNumberOfEntries",
                "0",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.MACAddress",
                "f0:18:98:4e:5d:6c",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.AuthenticationState",
                "true",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength",
                "-58",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.LastDataDownlinkRate",
                "144400",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.LastDataUplinkRate",
                "130000",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.Active",
                "true",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.Stats.BytesSent",
                "3012456789",
            ),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDevice.1.Stats.BytesReceived",
                "398765432",
            ),
            ("Device.WiFi.Radio.1.Status", "Up"),
            ("Device.WiFi.Radio.1.Channel", "6"),
            // Hosts: the leases; activity and the port from the kernel.
            ("Device.Hosts.Host.4.PhysAddress", "f0:18:98:4e:5d:6c"),
            ("Device.Hosts.Host.4.Active", "true"),
            ("Device.Hosts.Host.4.Layer1Interface", ""),
            ("Device.Hosts.Host.1.PhysAddress", "00:11:32:aa:bb:cc"),
            ("Device.Hosts.Host.1.Active", "true"),
            (
                "Device.Hosts.Host.1.Layer1Interface",
                "Device.Ethernet.Interface.1",
            ),
            (
                "Device.Hosts.Host.1.IPv4Address.1.IPAddress",
                "192.168.1.10",
            ),
            ("Device.Hosts.Host.2.Active", "false"),
            (
                "Device.Hosts.Host.1.Layer3Interface",
                "Device.IP.Interface.2",
            ),
            // The kernel's routes.
            (
                "Device.Routing.Router.1.IPv4Forwarding.1.GatewayIPAddress",
                "203.0.113.1",
            ),
        ],
    );
    // The printer, which has no lease, is a host too, as the kernel knows it; the ISP's
    // gateway, a neighbour on the WAN, is not.
    let host = |mac: &str| {
        got.iter()
            .find(|(k, v)| {
                k.starts_with("Device.Hosts.Host.") && k.ends_with(".PhysAddress") && *v == mac
            })
            .map(|(k, _)| k.trim_end_matches("PhysAddress").to_string())
    };
    let printer = host("3c:2a:f4:11:22:33").unwrap_or_else(|| panic!("no printer: {got:#?}"));
    assert_values(
        &got,
        &[
            (&format!("{printer}IPAddress"), "192.168.1.50"),
            (&format!("{printer}HostName"), ""),
            (&format!("{printer}Active"), "true"),
            (
                &format!("{printer}Layer3Interface"),
                "Device.IP.Interface.2",
            ),
            (
                &format!("{printer}Layer1Interface"),
                "Device.Ethernet.Interface.1",
            ),
            (&format!("{printer}IPv4Address.1.IPAddress"), "192.168.1.50"),
        ],
    );
    assert_eq!(host(GATEWAY_MAC), None);
    // One call per object and method for the whole tree, whatever the number of parameters.
    for (object, method) in [
        ("network.interface", "dump"),
        ("network.wireless", "status"),
        ("hostapd.phy0-ap0", "get_clients"),
    ] {
        assert_eq!(live.broker.invokes(object, method), 1, "{object} {method}");
    }
}

#[test]
fn a_pppoe_wan_shows_its_session_and_its_last_error() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let Some(live) = LiveRouter::new("live-pppoe", &acs, "pppoe") else {
        return;
    };
    let got = live.get(&["Device.PPP.", "Device.IP.Interface.3."]);
    // PPP.Interface: 1 wan (now pppoe), 2 wanppp.
    assert_values(
        &got,
        &[
            ("Device.PPP.Interface.1.Name", "pppoe-wan"),
            ("Device.PPP.Interface.1.Status", "Up"),
            ("Device.PPP.Interface.1.ConnectionStatus", "Connected"),
            ("Device.PPP.Interface.1.LastChange", "16234"),
            ("Device.PPP.Interface.1.LastConnectionError", "ERROR_NONE"),
            ("Device.PPP.Interface.1.CurrentMRUSize", "1492"),
            (
                "Device.PPP.Interface.1.IPCP.LocalIPAddress",
                "198.51.100.77",
            ),
            (
                "Device.PPP.Interface.1.IPCP.RemoteIPAddress",
                "198.51.100.1",
            ),
            (
                "Device.PPP.Interface.1.IPCP.DNSServers",
                "203.0.113.53,203.0.113.54",
            ),
            ("Device.PPP.Interface.2.Status", "Down"),
            (
                "Device.IP.Interface.3.IPv4Address.1.IPAddress",
                "198.51.100.77",
            ),
            (
                "Device.IP.Interface.3.IPv4Address.1.SubnetMask",
                "255.255.255.255",
            ),
            ("Device.IP.Interface.3.IPv4Address.1.AddressingType", "IPCP"),
        ],
    );
    // A wrong password: pppd retries, netifd keeps its exit code until the next ifup.
    live.broker
        .serve_fixtures("openwrt-23.05", "pppoe-autherror");
    let got = live.get(&["Device.PPP.Interface.1."]);
    assert_values(
        &got,
        &[
            ("Device.PPP.Interface.1.Status", "Down"),
            ("Device.PPP.Interface.1.ConnectionStatus", "Disconnected"),
            (
                "Device.PPP.Interface.1.LastConnectionError",
                "ERROR_AUTHENTICATION_FAILURE",
            ),
        ],
    );
}

#[test]
fn a_hostapd_that_does_not_answer_costs_one_deadline_and_the_rest_of_the_tree_reads() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let Some(live) = LiveRouter::new("live-hang", &acs, "dhcp") else {
        return;
    };
    // hostapd of the 2.4 GHz AP stuck (a driver hang): it takes the call and never answers.
    live.broker.reply_with(
        "hostapd.phy0-ap0",
        "get_clients",
        support::ubus::json!({}),
        support::ubus::Reply::Hang,
    );
    let got = live.get(&["Device."]);
    assert_values(
        &got,
        &[
            ("Device.IP.Interface.3.Status", "Up"),
            (
                "Device.IP.Interface.3.IPv4Address.1.IPAddress",
                "203.0.113.45",
            ),
            ("Device.WiFi.SSID.1.Status", "Up"),
            (
                "Device.WiFi.AccessPoint.1.AssociatedDeviceNumberOfEntries",
                "0",
            ),
            ("Device.Hosts.Host.1.Active", "true"),
        ],
    );
    // Called once for the whole tree, not once per station parameter; the calls after it went
    // to the other objects on a new connection.
    assert_eq!(live.broker.invokes("hostapd.phy0-ap0", "get_clients"), 1);
    assert_eq!(live.broker.invokes("hostapd.phy1-ap0", "get_clients"), 1);
}

#[test]
fn a_ubusd_that_never_says_hello_is_tried_once_per_session() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let dir = tempdir::TempDir::new("silent-ubusd");
    let socket = dir.path().join("ubus.sock");
    // A ubusd that accepts and says nothing (stopped, or wedged): each connection is kept open.
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let accepted = Arc::new(AtomicU32::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    let router = Router::with(
        "silent-ubusd",
        &acs,
        None,
        &format!("ubus_socket = {:?}\n", socket.display().to_string()),
    );
    let out = router.cpe.cli(&["get", "Device."]);
    out.assert_code(0, "get");
    // uci's values are there; the daemons' read as absent after one try.
    assert!(
        out.stdout.contains("Device.WiFi.SSID.1.SSID [string] = "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Device.IP.Interface.2.IPv4Address.1.IPAddress [string] = 192.168.1.1"),
        "{}",
        out.stdout
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
