//! Lints of the OpenWrt package (`openwrt/`) that run without an OpenWrt SDK.
//!
//! - `files/cwmpd.init`: `sh -n`, `shellcheck -s sh`, and its functions run by `sh` with procd's
//!   and rc.common's functions replaced by ones that print their arguments, while `config_get`
//!   reads the UCI file through the real `uci`: the command line, respawn, logging to logd, the
//!   firewall rule for the Connection Request port (TR-069 §3.2.2) present only when enabled
//!   and a password is set (the agent does not listen without one), with the port and family
//!   of `listen`, the reload and interface triggers, reload as a restart.
//! - `files/cwmpd.config`: read by the real `uci` (`uci show`, the README's `uci set`/`commit`),
//!   and accepted by the real `cwmpd check` (the UCI config maps onto the TOML config), with its
//!   commented options enabled too.
//! - `Makefile`: the variables and calls a feed package needs, its version equal to Cargo.toml's,
//!   and its own recipes (Build/Prepare, Package/cwmpd/install) run by GNU make with small
//!   stand-ins for OpenWrt's `rules.mk`, `package.mk` and `rust-package.mk`. OpenWrt's own
//!   build system, procd, netifd and the firewall are not here: the cross-compiled build, the
//!   ipk and the service on a router are not verified by this file.
//!
//! `shellcheck` and `make` are needed when `CI` is set; elsewhere a test without them says so
//! on stderr and passes.

use support::uci as uci_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use uci_support::{uci_bin, TempDir, UciDir};

const BIN: &str = env!("CARGO_BIN_EXE_cwmpd");

fn openwrt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn init_script() -> PathBuf {
    openwrt_dir().join("files/cwmpd.init")
}

fn uci_config() -> PathBuf {
    openwrt_dir().join("files/cwmpd.config")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `tool` runs; when it does not, panics under CI (which installs it) and otherwise
/// says on stderr that `test` is skipped.
fn have_tool(tool: &str, args: &[&str], test: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing: CI must install it (apt-get install {tool})"
        );
        eprintln!("{test}: SKIPPED, {tool} is not installed (apt-get install {tool})");
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// The init script.

#[test]
fn init_script_is_valid_sh() {
    let o = run(Command::new("sh").arg("-n").arg(init_script()));
    assert!(o.status.success(), "sh -n failed: {}", text(&o.stderr));
    let script = read(&init_script());
    assert!(
        script.starts_with("#!/bin/sh /etc/rc.common\n"),
        "an OpenWrt init script runs through rc.common"
    );
    assert!(script.contains("\nUSE_PROCD=1\n"), "procd service");
    let start: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("START="))
        .collect();
    assert_eq!(start.len(), 1, "one START= line");
    let n: u32 = start[0].parse().expect("START is a number");
    // After network (20) and firewall (19); boot order runs up to 99.
    assert!((21..=99).contains(&n), "START={n}");
}

#[test]
fn init_script_passes_shellcheck() {
    if !have_tool(
        "shellcheck",
        &["--version"],
        "init_script_passes_shellcheck",
    ) {
        return;
    }
    let o = run(Command::new("shellcheck")
        .args(["-s", "sh", "-S", "style"])
        .arg(init_script())
        .args(
            ["cwmpd.udhcpc", "cwmpd.odhcp6c", "cwmpd.defaults"]
                .map(|f| openwrt_dir().join("files").join(f)),
        ));
    assert!(
        o.status.success(),
        "shellcheck found problems:\n{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Runs `calls` (shell code calling the init script's functions) after sourcing the script with
/// rc.common's and procd's functions replaced by ones that print their arguments, one call per
/// line; `config_load`/`config_get`/`config_get_bool` read `uci`'s config dir through the real
/// uci.
fn init_output(uci: &UciDir, calls: &str) -> Output {
    let stubs = r#"
config_load() { CFG_PKG=$1; }
config_get() {
	_v=$("$UCI" -c "$UCI_CONFIG" -q get "$CFG_PKG.$2.$3") || _v=$4
	eval "$1=\$_v"
}
config_get_bool() {
	config_get "$1" "$2" "$3" "$4"
	eval "_b=\$$1"
	case "$_b" in
	1 | on | true | yes | enabled) _b=1 ;;
	0 | off | false | no | disabled) _b=0 ;;
	*) _b=$4 ;;
	esac
	eval "$1=\$_b"
}
for f in procd_open_instance procd_close_instance procd_set_param procd_open_data \
	procd_close_data procd_open_trigger procd_close_trigger procd_add_reload_trigger \
	procd_add_interface_trigger procd_set_config_changed json_add_array json_close_array \
	json_add_object json_close_object json_add_string json_add_int json_add_boolean \
	start stop; do
	eval "$f() { echo $f \"\$@\"; }"
done
"#;
    let harness = format!(
        "UCI='{}'\nUCI_CONFIG='{}'\n{stubs}\n. '{}'\nFW_STATE='{}'\n{calls}\n",
        uci_bin().display(),
        uci.config.display(),
        init_script().display(),
        uci.dir.path().join("cwmpd.firewall").display()
    );
    run(Command::new("sh").arg("-c").arg(harness))
}

/// [`init_output`]'s stdout; panics when the shell fails or writes to stderr (an unknown
/// command, a warning).
fn run_init(uci: &UciDir, calls: &str) -> String {
    let o = init_output(uci, calls);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "the init script failed ({}): {}",
        o.status,
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// A config dir holding the shipped `/etc/config/cwmpd`, with `changes` applied by the real uci
/// (`uci batch` lines) and committed.
fn shipped_config(tag: &str, changes: &str) -> UciDir {
    let u = UciDir::new(tag);
    u.write("cwmpd", &read(&uci_config()));
    if !changes.is_empty() {
        u.uci(&["batch"], &format!("{changes}\ncommit cwmpd\n"));
    }
    u
}

/// The firewall rules of a `start_service` trace: each `json_add_string` between
/// `json_add_object` and `json_close_object` inside `json_add_array firewall`.
fn firewall_rules(trace: &str) -> Vec<BTreeMap<String, String>> {
    let mut rules = Vec::new();
    let mut in_firewall = false;
    let mut rule: Option<BTreeMap<String, String>> = None;
    for line in trace.lines() {
        let words: Vec<&str> = line.splitn(3, ' ').collect();
        match words.as_slice() {
            ["json_add_array", "firewall"] => in_firewall = true,
            ["json_close_array"] => in_firewall = false,
            ["json_add_object", ..] if in_firewall => rule = Some(BTreeMap::new()),
            ["json_close_object"] => rules.extend(rule.take()),
            ["json_add_string", k, v] => {
                if let Some(r) = rule.as_mut() {
                    r.insert(k.to_string(), v.to_string());
                }
            }
            _ => {}
        }
    }
    rules
}

#[test]
fn start_service_runs_the_agent_on_the_uci_config_under_procd() {
    let u = shipped_config("owrt-start", "");
    let trace = run_init(&u, "start_service");
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.first(), Some(&"procd_open_instance"), "{trace}");
    assert_eq!(lines.last(), Some(&"procd_close_instance"), "{trace}");
    for want in [
        "procd_set_param command /usr/sbin/cwmpd -c /etc/config/cwmpd run",
        "procd_set_param stdout 1",
        "procd_set_param stderr 1",
    ] {
        assert!(lines.contains(&want), "no {want:?} in:\n{trace}");
    }
    // respawn THRESHOLD TIMEOUT RETRY: sane numbers, the retry count bounded.
    let respawn: Vec<u32> = lines
        .iter()
        .find_map(|l| l.strip_prefix("procd_set_param respawn "))
        .unwrap_or_else(|| panic!("no respawn in:\n{trace}"))
        .split(' ')
        .map(|n| n.parse().expect("respawn takes numbers"))
        .collect();
    assert_eq!(respawn.len(), 3, "respawn threshold timeout retry");
    assert!(respawn[0] >= 60 && (1..=60).contains(&respawn[1]) && respawn[2] >= 1);
}

/// The uci batch line that gives the shipped config a Connection Request password.
const WITH_PASSWORD: &str = "set cwmpd.connection_request.password='cr-s3cret'";

#[test]
fn firewall_stays_closed_while_the_password_is_empty() {
    // As shipped: no credentials, so no rule (and the agent does not listen).
    let u = shipped_config("owrt-fw-nopass", "");
    let trace = run_init(&u, "start_service");
    assert!(firewall_rules(&trace).is_empty(), "{trace}");
    assert!(!trace.contains("json_add_array firewall"), "{trace}");
    assert!(trace.contains("procd_set_param command /usr/sbin/cwmpd"));
    // A username alone does not open it; an empty password option neither.
    for changes in [
        "set cwmpd.connection_request.username='acs'",
        "set cwmpd.connection_request.password=''",
    ] {
        let u = shipped_config("owrt-fw-user", changes);
        let trace = run_init(&u, "start_service");
        assert!(firewall_rules(&trace).is_empty(), "{changes}:\n{trace}");
    }
    // The password set (by hand or by the ACS): the rule at the next start.
    let u = shipped_config("owrt-fw-pass", WITH_PASSWORD);
    assert_eq!(firewall_rules(&run_init(&u, "start_service")).len(), 1);
}

#[test]
fn firewall_opens_the_connection_request_port_of_listen_on_wan() {
    let u = shipped_config("owrt-fw", WITH_PASSWORD);
    let trace = run_init(&u, "start_service");
    let rules = firewall_rules(&trace);
    assert_eq!(rules.len(), 1, "one rule in:\n{trace}");
    let r = &rules[0];
    for (k, v) in [
        ("type", "rule"),
        ("src", "wan"),
        ("proto", "tcp"),
        ("dest_port", "7547"),
        ("target", "ACCEPT"),
        ("family", "ipv4"),
    ] {
        assert_eq!(r.get(k).map(String::as_str), Some(v), "{k} in {r:?}");
    }
    assert!(!r.contains_key("dest_ip"), "0.0.0.0 is any address: {r:?}");
    // The rule is procd service data of the instance.
    let open = trace.find("procd_open_data").expect("procd_open_data");
    let close = trace.find("procd_close_data").expect("procd_close_data");
    let inst = trace.find("procd_close_instance").expect("instance");
    assert!(open < close && close < inst, "{trace}");
}

#[test]
fn firewall_follows_the_listen_address_and_port() {
    let cases = [
        ("[::]:30005", "30005", "any", None),
        ("[2001:db8::1]:7547", "7547", "ipv6", Some("2001:db8::1")),
        ("192.0.2.1:8080", "8080", "ipv4", Some("192.0.2.1")),
    ];
    for (listen, port, family, dest_ip) in cases {
        let u = shipped_config(
            "owrt-listen",
            &format!("set cwmpd.connection_request.listen='{listen}'\n{WITH_PASSWORD}"),
        );
        let rules = firewall_rules(&run_init(&u, "start_service"));
        assert_eq!(rules.len(), 1, "{listen}");
        let r = &rules[0];
        assert_eq!(
            r.get("dest_port").map(String::as_str),
            Some(port),
            "{listen}"
        );
        assert_eq!(
            r.get("family").map(String::as_str),
            Some(family),
            "{listen}"
        );
        assert_eq!(r.get("dest_ip").map(String::as_str), dest_ip, "{listen}");
    }
    // No listen option: the agent's default, 0.0.0.0:7547.
    let u = shipped_config(
        "owrt-nolisten",
        &format!("delete cwmpd.connection_request.listen\n{WITH_PASSWORD}"),
    );
    let rules = firewall_rules(&run_init(&u, "start_service"));
    assert_eq!(
        rules
            .first()
            .and_then(|r| r.get("dest_port"))
            .map(String::as_str),
        Some("7547")
    );
}

#[test]
fn firewall_stays_closed_when_connection_requests_are_disabled() {
    for off in ["0", "off", "false"] {
        let u = shipped_config(
            "owrt-crdis",
            &format!("set cwmpd.connection_request.enable='{off}'\n{WITH_PASSWORD}"),
        );
        let trace = run_init(&u, "start_service");
        assert!(firewall_rules(&trace).is_empty(), "enable={off}:\n{trace}");
        assert!(!trace.contains("json_add_array firewall"), "{trace}");
        // The agent still runs (it serves the ACS without Connection Requests).
        assert!(trace.contains("procd_set_param command /usr/sbin/cwmpd"));
    }
    // No enable option: enabled, as in the agent.
    let u = shipped_config(
        "owrt-crdef",
        &format!("delete cwmpd.connection_request.enable\n{WITH_PASSWORD}"),
    );
    assert_eq!(firewall_rules(&run_init(&u, "start_service")).len(), 1);
}

#[test]
fn a_listen_without_a_port_opens_nothing() {
    let u = shipped_config(
        "owrt-noport",
        &format!("set cwmpd.connection_request.listen='0.0.0.0'\n{WITH_PASSWORD}"),
    );
    let o = init_output(&u, "start_service");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(firewall_rules(&text(&o.stdout)).is_empty());
    assert!(
        text(&o.stderr).contains("no port"),
        "the reason is logged: {}",
        text(&o.stderr)
    );
}

#[test]
fn triggers_reload_on_config_changes_and_a_wan_event_restarts_only_for_the_firewall() {
    let u = shipped_config("owrt-trig", "");
    let trace = run_init(&u, "service_triggers");
    let lines: Vec<&str> = trace.lines().collect();
    assert!(lines.contains(&"procd_add_reload_trigger cwmpd"), "{trace}");
    let open = lines.iter().position(|l| *l == "procd_open_trigger");
    let close = lines.iter().position(|l| *l == "procd_close_trigger");
    for iface in ["wan", "wan6"] {
        let want =
            format!("procd_add_interface_trigger interface.* {iface} /etc/init.d/cwmpd wan_event");
        let at = lines.iter().position(|l| *l == want);
        assert!(
            matches!((open, at, close), (Some(o), Some(a), Some(c)) if o < a && a < c),
            "no {want:?} inside procd_open_trigger/procd_close_trigger:\n{trace}"
        );
    }
    // A reload is a restart (the agent rereads its config).
    assert_eq!(run_init(&u, "reload_service"), "stop\nstart\n");
    // A WAN event leaves the agent running (it follows the WAN itself and keeps the values it
    // last reported) while the firewall rule it started with still holds...
    run_init(&u, "start_service; service_started");
    assert_eq!(run_init(&u, "wan_event"), "");
    // ...and restarts it when the ACS set the first Connection Request password since: the
    // rule opening the port comes with the new start.
    u.uci(&["batch"], &format!("{WITH_PASSWORD}\ncommit cwmpd\n"));
    assert_eq!(run_init(&u, "wan_event"), "stop\nstart\n");
    run_init(&u, "start_service; service_started");
    assert_eq!(run_init(&u, "wan_event"), "");
    // A start nobody recorded (the state in RAM lost): restarted once to be sure.
    std::fs::remove_file(u.dir.path().join("cwmpd.firewall")).unwrap();
    assert_eq!(run_init(&u, "wan_event"), "stop\nstart\n");
    // The firewall rereads procd's service data when the service starts and stops.
    for f in ["service_started", "service_stopped"] {
        assert_eq!(
            run_init(&u, f),
            "procd_set_config_changed firewall\n",
            "{f}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The UCI config.

#[test]
fn uci_config_is_read_by_the_real_uci() {
    let u = shipped_config("owrt-uci", "");
    let show = u.uci(&["show", "cwmpd"], "");
    for (section, ty) in [
        ("acs", "acs"),
        ("device", "device"),
        ("connection_request", "connection_request"),
        ("storage", "storage"),
        ("transfer", "transfer"),
        ("hooks", "hooks"),
        ("log", "log"),
    ] {
        let want = format!("cwmpd.{section}={ty}");
        assert!(show.lines().any(|l| l == want), "no {want:?} in:\n{show}");
    }
    // libuci drops an empty option (`option url ''`) when it reads the file: the agent then
    // takes the key's default, which is the same empty value.
    assert_eq!(u.get("cwmpd.acs.url"), None);
    assert_eq!(
        u.get("cwmpd.acs.periodic_inform_interval").as_deref(),
        Some("86400")
    );
    assert_eq!(
        u.get("cwmpd.connection_request.enable").as_deref(),
        Some("1")
    );
    assert_eq!(
        u.get("cwmpd.connection_request.listen").as_deref(),
        Some("0.0.0.0:7547")
    );
    assert_eq!(
        u.get("cwmpd.storage.dir").as_deref(),
        Some("/etc/cwmpd/state")
    );
    // The README's example lands in the file.
    u.uci(
        &["set", "cwmpd.acs.url=https://acs.example.net:7548/cwmp"],
        "",
    );
    u.uci(&["commit", "cwmpd"], "");
    assert!(u
        .read("cwmpd")
        .contains("option url 'https://acs.example.net:7548/cwmp'"));
}

/// Runs `cwmpd -c <dir>/cwmpd check` on `text`; returns (success, stdout + stderr).
fn cwmpd_check(text_of_config: &str, tag: &str) -> (bool, String) {
    let dir = TempDir::new(tag);
    let path = dir.path().join("cwmpd");
    std::fs::write(&path, text_of_config).expect("write config");
    let o = run(Command::new(BIN).arg("-c").arg(&path).arg("check"));
    (
        o.status.success(),
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
    )
}

#[test]
fn cwmpd_check_accepts_the_uci_config() {
    let shipped = read(&uci_config());
    let (ok, out) = cwmpd_check(&shipped, "owrt-check");
    assert!(ok, "cwmpd check failed: {out}");
    // With the OpenWrt bindings forced (on a router `auto` finds /etc/openwrt_release).
    let openwrt = format!("{shipped}\nconfig datamodel 'datamodel'\n\toption platform 'openwrt'\n");
    let (ok, out) = cwmpd_check(&openwrt, "owrt-check-owrt");
    assert!(ok, "cwmpd check (openwrt) failed: {out}");
    assert!(out.contains("openwrt"), "{out}");
    // The commented options are real keys with valid values too.
    let uncommented: String = shipped
        .lines()
        .map(|l| match l.strip_prefix("\t# option ") {
            Some(rest) => format!("\toption {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(uncommented, shipped, "no commented option found");
    let (ok, out) = cwmpd_check(&uncommented, "owrt-check-all");
    assert!(
        ok,
        "cwmpd check with the commented options enabled failed: {out}"
    );
    // And the check is not a rubber stamp: a misspelt option is refused.
    let typo = shipped.replace(
        "option periodic_inform_interval",
        "option periodic_interval",
    );
    let (ok, out) = cwmpd_check(&typo, "owrt-check-typo");
    assert!(!ok, "a misspelt option was accepted: {out}");
}

// ---------------------------------------------------------------------------------------------
// The Makefile.

/// The Makefile's `NAME:=VALUE` assignments (continuation lines joined), the last one winning.
fn make_vars(makefile: &str) -> BTreeMap<String, String> {
    let joined = makefile.replace("\\\n", " ");
    let mut vars = BTreeMap::new();
    for line in joined.lines() {
        let line = line.trim();
        if let Some((name, value)) = line.split_once(":=") {
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                vars.insert(
                    name.to_string(),
                    value.split_whitespace().collect::<Vec<_>>().join(" "),
                );
            }
        }
    }
    vars
}

/// The body of `define NAME` … `endef`.
fn define_block<'a>(makefile: &'a str, name: &str) -> &'a str {
    let head = format!("define {name}\n");
    let start = makefile
        .find(&head)
        .unwrap_or_else(|| panic!("no `define {name}` in the Makefile"))
        + head.len();
    let len = makefile[start..]
        .find("\nendef")
        .unwrap_or_else(|| panic!("`define {name}` has no endef"));
    &makefile[start..start + len]
}

#[test]
fn makefile_has_what_a_feed_package_needs() {
    let mk = read(&openwrt_dir().join("Makefile"));
    let vars = make_vars(&mk);
    let var = |n: &str| {
        vars.get(n)
            .unwrap_or_else(|| panic!("{n} is not set"))
            .as_str()
    };
    let cargo: toml::Table = toml::from_str(&read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
    ))
    .expect("Cargo.toml");
    let package = cargo.get("package").and_then(toml::Value::as_table);
    let cargo_field = |k: &str| {
        package
            .and_then(|p| p.get(k))
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("Cargo.toml has no package.{k}"))
    };

    assert_eq!(var("PKG_NAME"), "cwmpd");
    assert_eq!(
        var("PKG_VERSION"),
        cargo_field("version"),
        "PKG_VERSION != Cargo.toml"
    );
    assert!(var("PKG_RELEASE").parse::<u32>().is_ok_and(|r| r >= 1));
    assert_eq!(var("PKG_LICENSE"), cargo_field("license"));
    assert!(!var("PKG_LICENSE_FILES").is_empty());
    assert!(var("PKG_MAINTAINER").contains('@'));
    assert!(var("PKG_BUILD_DEPENDS")
        .split(' ')
        .any(|d| d == "rust/host"));
    assert_eq!(var("PKG_BUILD_PARALLEL"), "1");
    let deps = var("DEPENDS");
    for d in ["$(RUST_ARCH_DEPENDS)", "+ca-bundle"] {
        assert!(deps.split(' ').any(|x| x == d), "DEPENDS lacks {d}: {deps}");
    }

    let lines: Vec<&str> = mk.lines().map(str::trim_end).collect();
    let at = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("no line {l:?} in the Makefile"))
    };
    let rules = at("include $(TOPDIR)/rules.mk");
    let package_mk = at("include $(INCLUDE_DIR)/package.mk");
    let rust_mk = at("include ../../lang/rust/rust-package.mk");
    let install = at("define Package/cwmpd/install");
    let rust_bin = at("$(eval $(call RustBinPackage,cwmpd))");
    let build = at("$(eval $(call BuildPackage,cwmpd))");
    assert!(rules < package_mk && package_mk < rust_mk && rust_mk < rust_bin);
    // BuildPackage takes the install recipe defined before it (RustBinPackage's own default
    // installs every binary cargo built to /usr/bin).
    assert!(install < build && rust_bin < build);

    let pkg = define_block(&mk, "Package/cwmpd");
    for f in ["SECTION:=net", "CATEGORY:=Network", "TITLE:=", "URL:="] {
        assert!(pkg.contains(f), "Package/cwmpd lacks {f}");
    }
    assert!(!define_block(&mk, "Package/cwmpd/description")
        .trim()
        .is_empty());
    let conffiles: Vec<&str> = define_block(&mk, "Package/cwmpd/conffiles")
        .lines()
        .collect();
    assert_eq!(conffiles, ["/etc/config/cwmpd", "/etc/cwmpd/"]);

    // Every file in files/ is installed, and every ./files/ path installed exists.
    let body = define_block(&mk, "Package/cwmpd/install");
    let used: Vec<&str> = body
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("./files/"))
        .collect();
    let dir = openwrt_dir().join("files");
    for f in &used {
        assert!(dir.join(f).is_file(), "installs missing ./files/{f}");
    }
    for e in std::fs::read_dir(&dir).expect("openwrt/files").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            used.contains(&name.as_str()),
            "files/{name} is not installed"
        );
    }
}

/// Stand-ins for OpenWrt's `rules.mk`, `include/package.mk` and the packages feed's
/// `lang/rust/rust-package.mk` in `top`: just enough for GNU make to run the Makefile's own
/// recipes (`prepare`: Build/Prepare; `install`: Package/cwmpd/install into `$(DEST)`; `info`:
/// the package fields).
fn fake_buildroot(top: &Path) {
    let files = [
        (
            "rules.mk",
            "INCLUDE_DIR:=$(TOPDIR)/include\nBUILD_DIR:=$(TOPDIR)/build\nTAR:=tar\n\
             INSTALL_DIR:=install -d -m0755\nINSTALL_BIN:=install -m0755\n\
             INSTALL_DATA:=install -m0644\nINSTALL_CONF:=install -m0600\n",
        ),
        (
            "include/package.mk",
            "PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)\n\
             PKG_INSTALL_DIR ?= $(PKG_BUILD_DIR)/ipkg-install\nBuild/Patch:=\n\
             define Build/Prepare\n\t@echo default Build/Prepare\nendef\n\
             define BuildPackage\n  $(eval $(Package/$(1)))\n  $(eval DEPENDS_$(1):=$(DEPENDS))\n\
             prepare:\n\tmkdir -p $(PKG_BUILD_DIR)\n\t$$(Build/Prepare)\n\
             install:\n\t$$(call Package/$(1)/install,$(DEST))\n\
             info:\n\t@echo 'SECTION=$(SECTION)'\n\t@echo 'CATEGORY=$(CATEGORY)'\n\
             \t@echo 'DEPENDS=$$(DEPENDS_$(1))'\nendef\n",
        ),
        (
            "feeds/packages/lang/rust/rust-package.mk",
            "RUST_ARCH_DEPENDS:=@(mips||mipsel||arm||aarch64)\n\
             define RustBinPackage\n  ifndef Package/$(1)/install\n    \
             define Package/$(1)/install\n\t@echo default RustBinPackage install\n    endef\n  \
             endif\nendef\n",
        ),
    ];
    for (name, body) in files {
        let p = top.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, body).expect("write");
    }
}

fn make(top: &Path, args: &[&str]) -> String {
    let o = run(Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(openwrt_dir())
        .arg(format!("TOPDIR={}", top.display()))
        .args(args));
    assert!(
        o.status.success(),
        "make {args:?} failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn makefile_recipes_prepare_the_crate_and_install_the_package() {
    if !have_tool(
        "make",
        &["--version"],
        "makefile_recipes_prepare_the_crate_and_install_the_package",
    ) {
        return;
    }
    let dir = TempDir::new("owrt-make");
    let top = dir.path().join("sdk");
    fake_buildroot(&top);

    let info = make(&top, &["info"]);
    assert!(info.contains("SECTION=net\nCATEGORY=Network\n"), "{info}");
    assert!(
        info.contains("DEPENDS=@(mips||mipsel||arm||aarch64) +ca-bundle"),
        "{info}"
    );

    // Build/Prepare: the crate from the checkout, without the package, the tests or a target/.
    make(&top, &["prepare"]);
    let build = top.join("build").join(format!(
        "cwmpd-{}",
        make_vars(&read(&openwrt_dir().join("Makefile")))
            .get("PKG_VERSION")
            .expect("PKG_VERSION")
    ));
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "src/cwmpd.toml",
        "datamodel/tr181.toml",
        // The build script, which compiles the data model files.
        "datamodel/compile.rs",
    ] {
        assert!(build.join(f).is_file(), "prepare did not copy {f}");
    }
    // Cargo.toml's [[bench]] targets must exist for cargo to read the manifest.
    assert!(build.join("benches").is_dir());
    for gone in ["openwrt", "tests", "target", ".git"] {
        assert!(!build.join(gone).exists(), "prepare copied {gone}/");
    }

    // Package/cwmpd/install, with a stand-in for the binary `cargo install` leaves.
    let bin = build.join("ipkg-install/bin/cwmpd");
    std::fs::create_dir_all(bin.parent().expect("parent")).expect("mkdir");
    std::fs::write(&bin, "#!/bin/sh\n").expect("write");
    let root = dir.path().join("root");
    let out = make(&top, &["install", &format!("DEST={}", root.display())]);
    assert!(!out.contains("default RustBinPackage install"), "{out}");
    for (path, m) in [
        ("usr/sbin/cwmpd", 0o755),
        ("etc/init.d/cwmpd", 0o755),
        ("etc/config/cwmpd", 0o600),
        ("etc/udhcpc.user.d/cwmpd", 0o755),
        ("etc/odhcp6c.user.d/cwmpd", 0o755),
        ("etc/uci-defaults/90-cwmpd", 0o755),
        ("lib/upgrade/keep.d/cwmpd", 0o644),
        ("usr/share/cwmpd/examples/acme/acme.toml", 0o644),
        ("usr/share/cwmpd/examples/acme/acme.sh", 0o755),
    ] {
        assert_eq!(mode(&root.join(path)), m, "{path}");
    }
    // /etc/cwmpd holds the state with its passwords: root's alone.
    for dir in ["etc/cwmpd", "etc/cwmpd/datamodel.d"] {
        assert!(root.join(dir).is_dir(), "{dir}");
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    for (installed, source) in [
        ("etc/init.d/cwmpd", "files/cwmpd.init"),
        ("etc/config/cwmpd", "files/cwmpd.config"),
        ("lib/upgrade/keep.d/cwmpd", "files/cwmpd.keep"),
        ("etc/udhcpc.user.d/cwmpd", "files/cwmpd.udhcpc"),
        ("etc/odhcp6c.user.d/cwmpd", "files/cwmpd.odhcp6c"),
        ("etc/uci-defaults/90-cwmpd", "files/cwmpd.defaults"),
    ] {
        assert_eq!(
            read(&root.join(installed)),
            read(&openwrt_dir().join(source)),
            "{installed}"
        );
    }
}
