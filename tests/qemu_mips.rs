//! The cross-built big-endian MIPS `cwmpd` (`cross/build.sh mips-unknown-linux-musl`)
//! run under `qemu-mips` user emulation on the fixture router (`tests/fixtures/router/`, with the
//! real `uci`), against the test ACS over HTTPS with Digest authentication (TR-069 §3.4.4) and a
//! session cookie: what an ath79 gateway does in the field, with its byte order.
//!
//! - `--version` and `check` on the embedded configuration run;
//! - `cwmpd get Device.` reads the whole TR-181 tree from the fixture and prints exactly what the
//!   host (little-endian x86_64) binary prints, so no value depends on the byte order (a
//!   netdev's counters, which come from the live kernel over rtnetlink, by their type only:
//!   qemu-user cannot carry a link dump to a big-endian guest whole);
//! - a whole CWMP session (§3.7): Inform, GetRPCMethods, GetParameterNames and
//!   GetParameterValues of `Device.`, SetParameterValues of the SSID (applied through uci after
//!   the session, Status 1), AddObject and DeleteObject of a port mapping; the values the MIPS
//!   agent reports equal the host's, and the SSID lands in the uci file.
//!
//! The peak resident set of the `qemu-mips` process (`VmHWM`, polled) during the session is
//! printed; it includes the emulator's own memory, so it bounds the agent's from above.
//!
//! The binary is `$CWMPD_CROSS_BIN` (e.g. `target/cross/mips-unknown-linux-musl/cwmpd`); the
//! emulator is `$CWMPD_QEMU`, else `qemu-mips` on `PATH`. Without `CWMPD_CROSS_BIN` the tests
//! say so on stderr and pass (a developer's `cargo test`); with it set, a missing emulator or a
//! binary that is not big-endian MIPS fails the test, so CI never passes without running them.

use support::{acs, cpe, tempdir, tls, uci as uci_support};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use acs::{Acs, AcsOptions, Cookie, Turn};
use cpe::*;
use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::{AcsRequest, CpeResponse};
use tempdir::copy_tree;

const SSID1: &str = "Device.WiFi.SSID.1.SSID";
const PORTMAP: &str = "Device.NAT.PortMapping.";
/// A parameter whose value is the time of reading: the one line two runs may differ in.
const CLOCK: &str = "Device.Time.CurrentLocalTime";
/// Bound on one emulated run: software-emulated MIPS on two shared cores is slow.
const QEMU_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn mips_binary_runs_version_and_check() {
    let Some(q) = Qemu::find("mips_binary_runs_version_and_check") else {
        return;
    };
    let (out, _) = q.run(&["--version"]);
    out.assert_code(0, "--version");
    assert_eq!(
        out.stdout.trim(),
        format!("cwmpd {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    // `check` of the embedded default (no -c, from a directory without /etc/cwmpd) parses the
    // built-in data model: the whole schema code path on big-endian.
    let (out, _) = q.run(&["check"]);
    out.assert_code(0, "check");
    assert!(out.stdout.starts_with("ok: config valid"), "{out}");
    let host = cpe::run(&["check"]);
    host.assert_code(0, "host check");
    assert_eq!(
        out.stdout, host.stdout,
        "the same schema on both byte orders"
    );
}

#[test]
fn mips_get_device_prints_what_the_host_prints() {
    let Some(q) = Qemu::find("mips_get_device_prints_what_the_host_prints") else {
        return;
    };
    let router = router_cpe("qemu-get", "http://127.0.0.1:9/acs", None);
    let (out, _) = q.run_cpe(&router, &["get", "Device."]);
    out.assert_code(0, "mips get Device.");
    let mips = values(&out.stdout);
    assert!(
        mips.len() >= 500,
        "a typical router shows at least 500 parameters, got {}: {out}",
        mips.len()
    );
    // Values from the fixture's uci files, /proc and /sys, with their types.
    assert!(
        mips.iter()
            .any(|(k, v)| k.starts_with("Device.IP.Interface.")
                && k.ends_with(".IPAddress")
                && v == "[string] = 192.168.1.1"),
        "the LAN address is read from uci: {out}"
    );
    assert!(
        mips.iter()
            .any(|(k, v)| k.ends_with(".Stats.BytesReceived") && v.starts_with("[unsignedLong] = ")),
        "{out}"
    );
    let host = router.cli(&["get", "Device."]);
    host.assert_code(0, "host get Device.");
    assert_same_values(&values(&host.stdout), &mips);
}

#[test]
fn mips_https_digest_session_on_the_fixture_router() {
    let Some(q) = Qemu::find("mips_https_digest_session_on_the_fixture_router") else {
        return;
    };
    let pki = tls::Pki::new();
    let acs = Acs::start(
        AcsOptions::default()
            .tls(pki.server_tls())
            .digest(USER, PASS)
            .cookie(Cookie::Session),
    )
    .expect("start ACS");
    let router = router_cpe("qemu-session", &acs.url(), Some(&pki.ca_file));
    // Connection Request credentials: without a password nothing listens and the Inform's
    // ConnectionRequestURL reads empty.
    let text = std::fs::read_to_string(&router.cfg).expect("read config");
    let anchor = "[connection_request]\nlisten = \"127.0.0.1:0\"\n";
    assert!(
        text.contains(anchor),
        "no {anchor:?} in the config:\n{text}"
    );
    let text = text.replacen(
        anchor,
        &format!("{anchor}username = \"cr-user\"\npassword = \"cr-pass\"\n"),
        1,
    );
    std::fs::write(&router.cfg, text).expect("write config");
    let mut step = 0;
    acs.push_script_fn(move |t: &Turn<'_>| {
        step += 1;
        Some(match step {
            1 => AcsRequest::GetRpcMethods.into(),
            2 => gpn_req("Device.", false),
            3 => gpv_req(&["Device."]),
            4 => spv_req(&[(SSID1, "Big-Endian-WiFi", BaseType::String)], "qemu-1"),
            5 => gpv_req(&[SSID1]),
            6 => add_req_at(PORTMAP, "qemu-2"),
            7 => {
                let n = t.last.map(instance)?;
                delete_req(&format!("{PORTMAP}{n}."), "qemu-3")
            }
            _ => return None,
        })
    });

    // What the host binary reads from the same fixture before the session.
    let host = router.cli(&["get", "Device."]);
    host.assert_code(0, "host get Device.");
    let before = values(&host.stdout);
    // For scale: the emulator running a short command (the embedded config's check).
    let (_, idle_kb) = q.run(&["check"]);
    let (out, peak_kb) = q.run_cpe(&router, &["inform"]);
    out.assert_code(0, "mips inform");
    eprintln!(
        "qemu-mips peak RSS (VmHWM) during the HTTPS+Digest session: {peak_kb} kB \
         ({:.1} MiB); qemu-mips running `cwmpd check`: {idle_kb} kB",
        peak_kb as f64 / 1024.0
    );
    assert!(peak_kb > 0, "no VmHWM was read from /proc");

    let all = acs
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
    let s = &all[0];
    assert!(s.completed, "{out}");
    assert!(s.errors.is_empty(), "protocol errors: {:#?}", s.errors);
    assert_eq!(s.user.as_deref(), Some(USER));
    assert!(s.has_event("0 BOOTSTRAP"), "events {:?}", s.event_codes());
    assert_eq!(s.inform.device_id.serial_number, SERIAL);
    assert!(
        s.param("Device.ManagementServer.ConnectionRequestURL")
            .is_some_and(|u| u.starts_with("http://")),
        "{:?}",
        s.inform.parameters
    );
    // Digest (a challenge answered), the cookie sent back on every later POST, one connection.
    let http = acs.http_log();
    assert!(http.iter().any(|h| h.status == 401), "{http:#?}");
    let cookie = s.cookie.clone().expect("cookie set");
    let posts: Vec<_> = http.iter().filter(|h| h.session == Some(s.index)).collect();
    for h in posts.iter().filter(|h| h.note != "Inform") {
        assert_eq!(h.auth_scheme.as_deref(), Some("Digest"), "{h:?}");
        assert!(
            h.cookie.as_deref().is_some_and(|c| c.contains(&cookie)),
            "POST without the cookie: {h:?}"
        );
    }
    assert_eq!(s.exchanges.len(), 7, "{:#?}", s.exchanges);
    for e in &s.exchanges {
        assert_eq!(
            e.echoed_id.as_deref(),
            Some(e.id.as_str()),
            "cwmp:ID of {e:?}"
        );
        assert!(e.fault().is_none(), "{e:?}");
    }

    match &s.exchanges[0].response {
        Ok(CpeResponse::GetRpcMethods { methods }) => {
            for m in cwmpd::rpc::REQUIRED_METHODS {
                assert!(
                    methods.iter().any(|x| x == m),
                    "{m} missing from {methods:?}"
                );
            }
        }
        r => panic!("GetRPCMethods answered {r:?}"),
    }
    // Every parameter the MIPS agent names it also reads, with the value the host binary read
    // from the same fixture (through `cwmpd get`, before the session).
    let names = gpn(&s.exchanges[1]);
    let read = gpv(&s.exchanges[2]);
    let leaves: Vec<_> = names.iter().filter(|p| !p.name.ends_with('.')).collect();
    assert!(leaves.len() >= 500, "{} parameters", leaves.len());
    assert_eq!(read.len(), leaves.len(), "GPV of Device. reads every name");
    for p in &leaves {
        assert!(value(&read, &p.name).is_some(), "{} was not read", p.name);
    }
    let session: BTreeMap<String, String> = read
        .iter()
        .map(|v| {
            let ty = v.ty.xsi_type();
            let ty = ty.strip_prefix("xsd:").unwrap_or(ty);
            (v.name.clone(), format!("[{ty}] = {}", v.value))
        })
        .collect();
    assert_same_values(&before, &session);

    match &s.exchanges[3].response {
        Ok(CpeResponse::SetParameterValues { status }) => {
            assert_eq!(*status, 1, "applied after the session")
        }
        r => panic!("SPV answered {r:?}"),
    }
    assert_eq!(
        value(&gpv(&s.exchanges[4]), SSID1).map(|v| v.0),
        Some("Big-Endian-WiFi")
    );
    let n = instance(&s.exchanges[5]);
    assert!(n >= 1, "instance {n}");
    assert!(
        matches!(
            &s.exchanges[6].response,
            Ok(CpeResponse::DeleteObject { .. })
        ),
        "{:?}",
        s.exchanges[6]
    );
    // Applied through the real uci into OpenWrt's file, the service reloaded once.
    let wireless = std::fs::read_to_string(router.dir.path().join("root/etc/config/wireless"))
        .expect("read wireless");
    assert!(wireless.contains("Big-Endian-WiFi"), "{wireless}");
    let reloads =
        std::fs::read_to_string(router.dir.path().join("reloads.log")).unwrap_or_default();
    assert_eq!(
        reloads.lines().filter(|l| *l == "wireless").count(),
        1,
        "{reloads}"
    );
    // The host binary reads the value the MIPS agent wrote.
    let host = router.cli(&["get", SSID1]);
    assert!(host.stdout.contains("Big-Endian-WiFi"), "{host}");
}

/// The emulator and the cross-built binary.
struct Qemu {
    qemu: PathBuf,
    bin: PathBuf,
}

impl Qemu {
    /// `None` (with a note on stderr) when `CWMPD_CROSS_BIN` is unset; panics when it is set but
    /// the binary or the emulator is missing.
    fn find(test: &str) -> Option<Qemu> {
        let Some(bin) = std::env::var_os("CWMPD_CROSS_BIN").filter(|v| !v.is_empty()) else {
            eprintln!(
                "skipped {test}: CWMPD_CROSS_BIN is not set (build with `cross/build.sh \
                 mips-unknown-linux-musl`, then CWMPD_CROSS_BIN=target/cross/\
                 mips-unknown-linux-musl/cwmpd; needs qemu-mips from qemu-user)"
            );
            return None;
        };
        let bin = absolute(PathBuf::from(bin));
        let head = std::fs::read(&bin)
            .unwrap_or_else(|e| panic!("CWMPD_CROSS_BIN={}: {e}", bin.display()));
        // ELF, 32-bit, big-endian (e_ident[EI_DATA] = 2), e_machine = EM_MIPS (8).
        assert!(
            head.len() > 20 && head.starts_with(b"\x7fELF") && head[4] == 1 && head[5] == 2,
            "{} is not a 32-bit big-endian ELF",
            bin.display()
        );
        assert_eq!(
            u16::from_be_bytes([head[18], head[19]]),
            8,
            "{} is not a MIPS binary",
            bin.display()
        );
        let qemu = std::env::var_os("CWMPD_QEMU")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| which("qemu-mips"))
            .or_else(|| which("qemu-mips-static"))
            .unwrap_or_else(|| {
                panic!(
                    "CWMPD_CROSS_BIN is set but qemu-mips is not on PATH (apt-get install \
                     qemu-user, or set CWMPD_QEMU)"
                )
            });
        Some(Qemu { qemu, bin })
    }

    /// `cwmpd -c <cpe's config> ARGS` under the emulator.
    fn run_cpe(&self, cpe: &Cpe, rest: &[&str]) -> (Out, u64) {
        let args = cpe.args(rest);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// Runs the binary under the emulator with `args` in a directory of its own (killed at
    /// [`QEMU_TIMEOUT`]); returns its outcome and the peak resident set of the emulator
    /// process in kB (`VmHWM` of /proc/PID/status, polled every 10 ms until it exits).
    fn run(&self, args: &[&str]) -> (Out, u64) {
        let cwd = tempdir::TempDir::new("qemu-cwd");
        let mut child = Command::new(&self.qemu)
            .arg(&self.bin)
            .args(args)
            .current_dir(cwd.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.qemu.display()));
        let (out, err) = cpe::read_output(&mut child);
        let status = PathBuf::from(format!("/proc/{}/status", child.id()));
        let deadline = Instant::now() + QEMU_TIMEOUT;
        let mut peak = 0;
        let code = loop {
            // Read before reaping: a high-water mark only grows, so the last reading is the
            // peak up to 10 ms before the exit.
            if let Some(kb) = vm_hwm(&status) {
                peak = peak.max(kb);
            }
            match child.try_wait() {
                Ok(Some(st)) => break st.code(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut all = vec![self.bin.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = Out {
            args: all,
            code,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        };
        (out, peak)
    }
}

/// `VmHWM` in kB from a /proc/PID/status file, if it is there.
fn vm_hwm(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        // Relative to the repository, where CI and a developer run cargo.
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }
}

/// A CPE on a fresh copy of the fixture router with the real uci (as `tests/router.rs` sets it
/// up); reload commands append the package name to `reloads.log` in the CPE's directory.
fn router_cpe(tag: &str, url: &str, ca_file: Option<&Path>) -> Cpe {
    let uci = uci_support::uci_bin();
    Cpe::with_config(tag, url, ca_file, 3600, |dir| {
        let root = dir.join("root");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/router"),
            &root,
        );
        let reloads = dir.join("reloads.log");
        let mut s = format!(
            "\n[datamodel]\nplatform = \"openwrt\"\nroot = {:?}\nuci = {:?}\nuci_savedir = {:?}\ndir = {:?}\n\n[datamodel.reload]\n",
            root.display().to_string(),
            uci.display().to_string(),
            dir.join("uci-save").display().to_string(),
            dir.join("datamodel.d").display().to_string(),
        );
        for pkg in ["network", "wireless", "dhcp", "firewall", "system"] {
            s.push_str(&format!(
                "{pkg} = \"echo {pkg} >> '{}'\"\n",
                reloads.display()
            ));
        }
        s
    })
}

/// `name → "[type] = value"` from the output of `cwmpd get`, without the clock.
fn values(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(name, _)| *name != CLOCK)
        .map(|(name, rest)| (name.to_string(), rest.to_string()))
        .collect()
}

/// The two agents read the same names with the same types and values (the clock aside).
/// Whether `name` is a netdev's counter: read from the live kernel over rtnetlink (the
/// fixture holds no kernel), and not through qemu-user, whose translation of a link dump for a
/// big-endian guest is incomplete (it leaves the headers of some nested attributes in the
/// host's order: the guest refuses the dump as truncated and reads the counters as absent). The
/// netlink codec's byte order is the unit tests' and tests/netlink.rs's; here such a value is
/// compared by its type only. A station's counters (`AssociatedDevice.{i}.Stats.`) come from
/// the fixture's ubus replies and are compared whole.
fn kernel_counter(name: &str) -> bool {
    name.contains(".Stats.") && !name.contains(".AssociatedDevice.")
}

/// The type part of a printed value (`[unsignedLong]` of `[unsignedLong] = 12`).
fn type_of(v: &str) -> &str {
    v.split(" = ").next().unwrap_or(v)
}

fn assert_same_values(host: &BTreeMap<String, String>, mips: &BTreeMap<String, String>) {
    let mut host = host.clone();
    let mut mips = mips.clone();
    host.remove(CLOCK);
    mips.remove(CLOCK);
    for (k, v) in host.iter_mut().chain(mips.iter_mut()) {
        if kernel_counter(k) {
            *v = type_of(v).to_string();
        }
    }
    let differ: Vec<String> = host
        .iter()
        .filter(|(k, v)| mips.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: host {v:?}, mips {:?}", mips.get(k)))
        .chain(
            mips.keys()
                .filter(|k| !host.contains_key(*k))
                .map(|k| format!("{k}: only on mips")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "host and MIPS differ:\n{}",
        differ.join("\n")
    );
}
