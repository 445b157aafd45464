//! What an unprivileged local account (a compromised `dnsmasq` or `nobody` service on the
//! router) must not achieve against the agent, which runs as root (SECURITY.md), and the
//! daemon's process contract (one daemon per storage directory, signals). Real binary, real
//! unprivileged user (uid/gid 65534, `nobody` on Debian and OpenWrt), real hooks.
//!
//! - The transfer directory: a directory planted by the local account with links in it named
//!   like the agent's files (`1.part`, `1.started`, `1.file`) makes root write nothing through
//!   them; the directory is replaced by a private one (0700, root) that the account cannot
//!   enter, so it cannot swap the image the firmware hook flashes; the hook sees exactly the
//!   bytes downloaded. A transfer directory nested below a sticky directory (`/tmp/x/cwmpd`)
//!   is reached component by component: a link the account planted on the way (`/tmp/x ->`
//!   a directory of root's) is not followed and a directory it owns there is refused; either
//!   way root writes nothing and runs no hook.
//! - Everything the agent and its hooks write is private: the storage directory 0700 and its
//!   files 0600 (also when an older version left them 0755/0644), an uploaded config backup
//!   0600; a config file holding a password readable by others is warned about.
//! - A second daemon on the same storage directory, and `cwmpd inform` beside a daemon, exit 1
//!   naming the running daemon; `cwmpd set` beside it works and the daemon serves the value.
//! - SIGTERM stops the daemon (exit 0); SIGHUP makes it read its config file again.

use support::{acs, cpe, files, tempdir};

use cpe::*;
use files::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use acs::{Acs, AcsOptions};
use cwmpd::soap::{AcsRequest, CpeResponse};

/// The unprivileged account of the tests (`nobody`).
const NOBODY: u32 = 65534;

/// Runs `script` with `sh -c` as the unprivileged account; returns whether it exited 0.
fn as_nobody(script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run sh as nobody")
        .success()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every file below `dir` is 0600 and every directory 0700 (and `dir` itself).
fn assert_private_tree(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).expect("lstat");
        if m.is_dir() {
            assert_private_tree(&p);
        } else {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The transfer directory.

/// A directory planted in the agent's path is not taken as found: without the check the agent
/// created `1.part` through the planted link, truncating and overwriting the victim as root.
#[test]
fn a_transfer_directory_planted_by_another_account_is_replaced_and_never_followed() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let server = FileServer::file(None, "/fw.bin", body.clone(), HttpAuth::None);
    // Like /tmp: world-writable and sticky; the agent's transfer directory is to be made in it.
    let pre = TempDirLike::new();
    let cpe = transfer_cpe(
        "local-xfer",
        &acs.url(),
        None,
        3600,
        &format!("dir = {:?}", pre.shared.join("cwmpd").display().to_string()),
        "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = false\n",
    );
    let d = cpe.dir.path().display().to_string();
    hook_script(
        &cpe,
        "fw",
        &format!(
            "cp \"$CWMPD_FILE\" {d}/fw-seen.bin; \
             stat -c '%u %a' \"$(dirname \"$CWMPD_FILE\")\" \"$CWMPD_FILE\" > {d}/fw-modes"
        ),
        0,
    );
    // The victim: a file only root may change.
    let victim = cpe.dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("write victim");
    // The account prepares the directory the agent will use, open to everyone, with links named
    // like the agent's files of the first transfers.
    let dir = pre.shared.join("cwmpd");
    let mut plant = format!(
        "mkdir {0} && chmod 777 {0}",
        shell_quote(&dir.display().to_string())
    );
    for id in 1..=4 {
        for ext in ["part", "started", "file", "up"] {
            plant.push_str(&format!(
                " && ln -s {} {}",
                shell_quote(&victim.display().to_string()),
                shell_quote(&dir.join(format!("{id}.{ext}")).display().to_string())
            ));
        }
    }
    assert!(as_nobody(&plant), "nobody could not plant {plant}");
    assert_eq!(std::fs::symlink_metadata(&dir).unwrap().uid(), NOBODY);

    let dl = cwmpd::soap::Download {
        file_size: body.len() as u32,
        ..download(
            "planted-1",
            "1 Firmware Upgrade Image",
            &server.url("/fw.bin"),
        )
    };
    acs.push_script([AcsRequest::Download(dl)]);
    let daemon = cpe.spawn_run();
    let (_, tc) = wait_transfer_complete(&acs, "planted-1", WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "root wrote through a planted link\ndaemon: {}",
        daemon.log()
    );
    let seen = std::fs::read(cpe.dir.path().join("fw-seen.bin")).unwrap_or_default();
    assert!(
        seen == body,
        "the hook saw {} bytes, not the image",
        seen.len()
    );
    // The hook's directory was root's and private, its file 0600.
    let modes = std::fs::read_to_string(cpe.dir.path().join("fw-modes")).unwrap_or_default();
    assert_eq!(
        modes.lines().collect::<Vec<_>>(),
        ["0 700", "0 600"],
        "{modes}"
    );
    // The planted directory was moved aside, not used; the new one is root's, 0700.
    let m = std::fs::symlink_metadata(&dir).expect("transfer dir");
    assert!(m.is_dir() && m.uid() == 0 && mode(&dir) == 0o700, "{m:?}");
    assert!(
        list_dir(&pre.shared)
            .iter()
            .any(|n| n.starts_with("cwmpd.untrusted-")),
        "{:?}",
        list_dir(&pre.shared)
    );
    assert!(daemon.log().contains("moved aside"), "{}", daemon.log());
    // The account can neither enter nor put anything in it (no swapping the image).
    let d = shell_quote(&dir.display().to_string());
    assert!(!as_nobody(&format!("ls {d}")));
    assert!(!as_nobody(&format!("touch {d}/9.file")));
    assert!(!as_nobody(&format!("mv {d} {d}.mine")));
    drop(daemon);
}

/// Every component of the transfer directory is protected, not only the last. Without that,
/// its missing parents were made with `create_dir_all` through any link and the resolved path
/// was checked, so a link planted at an intermediate component (`/tmp/x -> /overlay`) made root
/// build the directory and write the image where the account chose (flash).
#[test]
fn a_link_planted_on_the_way_to_a_nested_transfer_directory_is_not_followed() {
    // The link to a directory of root's (flash, /etc).
    nested_transfer_refused(
        "local-nested-link",
        |x, flash| format!("ln -s {} {x}", shell_quote(&flash.display().to_string())),
        |shared, log| {
            assert!(log.contains("is a symbolic link of uid 65534"), "{log}");
            assert_eq!(list_dir(shared), ["x"]);
            let m = std::fs::symlink_metadata(shared.join("x")).expect("the link");
            assert!(m.file_type().is_symlink() && m.uid() == NOBODY, "{m:?}");
        },
    );
    // The account owning the intermediate directory instead: refused too, nothing written (it
    // blocks transfers, as it could before; a private directory right in /tmp avoids that).
    nested_transfer_refused(
        "local-nested-dir",
        |x, _| format!("mkdir {x} && chmod 777 {x}"),
        |shared, log| {
            assert!(
                log.contains("(uid 65534, mode 777) can be changed by another account"),
                "{log}"
            );
            assert!(list_dir(&shared.join("x")).is_empty());
        },
    );
}

/// A daemon whose transfer directory is `<shared>/x/cwmpd` in a sticky world-writable
/// directory, where the unprivileged account first ran `plant(<shared>/x quoted, flash)`: a
/// Download must fail without writing anything in `flash` (a directory of root's) or running
/// the hook; then `check(<shared>, the daemon's log)`.
fn nested_transfer_refused(
    tag: &str,
    plant: impl Fn(&str, &Path) -> String,
    check: impl Fn(&Path, &str),
) {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let server = FileServer::file(None, "/fw.bin", b"image".to_vec(), HttpAuth::None);
    let pre = TempDirLike::new();
    let nested = pre.shared.join("x").join("cwmpd");
    let cpe = transfer_cpe(
        tag,
        &acs.url(),
        None,
        3600,
        &format!("dir = {:?}", nested.display().to_string()),
        "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = false\n",
    );
    hook_script(&cpe, "fw", "", 0);
    let flash = cpe.dir.path().join("flash");
    std::fs::create_dir(&flash).expect("mkdir flash");
    chmod(&flash, 0o755);
    let x = shell_quote(&pre.shared.join("x").display().to_string());
    let plant = plant(&x, &flash);
    assert!(as_nobody(&plant), "nobody could not {plant}");
    acs.push_script([AcsRequest::Download(download(
        "nested-1",
        "1 Firmware Upgrade Image",
        &server.url("/fw.bin"),
    ))]);
    let daemon = cpe.spawn_run();
    let (_, tc) = wait_transfer_complete(&acs, "nested-1", WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let log = daemon.kill();
    assert_ne!(tc.code, 0, "{tc:?}\ndaemon: {log}");
    assert!(
        list_dir(&flash).is_empty(),
        "root wrote below the planted link: {:?}\ndaemon: {log}",
        list_dir(&flash),
    );
    assert!(hook_runs(&cpe, "fw").is_empty(), "the hook ran");
    check(&pre.shared, &log);
}

/// A world-writable, sticky directory like /tmp inside a test directory.
struct TempDirLike {
    _dir: tempdir::TempDir,
    shared: std::path::PathBuf,
}

impl TempDirLike {
    fn new() -> TempDirLike {
        let dir = tempdir::TempDir::new("local-tmp");
        chmod(dir.path(), 0o755);
        let shared = dir.path().join("tmp");
        std::fs::create_dir(&shared).expect("mkdir");
        chmod(&shared, 0o1777);
        TempDirLike { _dir: dir, shared }
    }
}

/// The storage directory is the agent's alone. Without that it was 0755 and its files 0644
/// (readable by every account: passwords, the Connection Request path), and an uploaded config
/// backup 0644.
#[test]
fn storage_and_hook_output_are_private_and_old_modes_are_corrected() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let sink = FileServer::sink(None, 200, HttpAuth::None);
    let cpe = transfer_cpe(
        "local-modes",
        &acs.url(),
        None,
        3600,
        "",
        "upload_config = \"{dir}/up.sh {file}\"\n",
    );
    let d = cpe.dir.path().display().to_string();
    hook_script(
        &cpe,
        "up",
        &format!("echo secret-backup > \"$CWMPD_FILE\"; stat -c %a \"$CWMPD_FILE\" > {d}/up-mode"),
        0,
    );
    // What an older version left: a 0755 storage directory with a 0644 state file, and a config
    // file with passwords readable by everyone.
    let state = cpe.dir.path().join("state");
    std::fs::create_dir(&state).expect("mkdir state");
    chmod(&state, 0o755);
    std::fs::write(state.join("old.toml"), b"# left by an old version\n").expect("write");
    chmod(&state.join("old.toml"), 0o644);
    chmod(&cpe.cfg, 0o644);

    acs.push_script([AcsRequest::Upload(upload(
        "up-1",
        "1 Vendor Configuration File",
        &sink.url("/backup"),
    ))]);
    let daemon = cpe.spawn_run();
    let (_, tc) = wait_transfer_complete(&acs, "up-1", WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    let up_mode = std::fs::read_to_string(cpe.dir.path().join("up-mode")).unwrap_or_default();
    assert_eq!(up_mode.trim(), "600", "the uploaded backup's mode");
    assert_private_tree(&state);
    assert_private_tree(&cpe.dir.path().join("transfer"));
    let log = daemon.log();
    assert!(
        log.contains("holds passwords but has mode 644"),
        "no warning about the readable config file\n{log}"
    );
    drop(daemon);
}

// ----------------------------------------------------------------------------------------------
// One daemon per storage directory; signals.

fn wait_exit(daemon: &mut Daemon, timeout: Duration) -> Option<std::process::ExitStatus> {
    poll(timeout, || daemon.child.try_wait().ok().flatten())
}

fn signal(daemon: &Daemon, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), daemon.child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// One daemon per state directory. Without the lock the second daemon ran beside the first on the
/// same state, and `cwmpd inform` beside a daemon drove a session of its own.
#[test]
fn a_second_daemon_and_an_inform_beside_a_daemon_are_refused_and_set_coordinates() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::new("local-lock", &acs.url(), None);
    let mut first = cpe.spawn_run();
    acs.wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", first.log()));

    let second = cpe.cli(&["run"]);
    second.assert_code(1, "a second daemon");
    let pid = first.child.id().to_string();
    assert!(
        second.all().contains("is running") && second.all().contains(&pid),
        "{second}"
    );
    let inform = cpe.cli(&["inform"]);
    inform.assert_code(1, "inform beside the daemon");
    assert!(inform.all().contains(&pid), "{inform}");

    // `cwmpd set` waits for the daemon's turn and the daemon serves what it wrote.
    let name = "Device.ManagementServer.PeriodicInformInterval";
    cpe.cli(&["set", &format!("{name}=4321")])
        .assert_code(0, "set beside the daemon");
    let got = cpe.cli(&["get", name]);
    got.assert_code(0, "get");
    assert!(got.stdout.contains("= 4321"), "{got}");
    assert!(first.alive(), "{}", first.log());
    signal(&first, "TERM");
    let st = wait_exit(&mut first, WAIT).unwrap_or_else(|| panic!("no exit on SIGTERM"));
    assert!(st.success(), "exit {st:?}\n{}", first.log());
    assert!(first.log().contains("stopping"), "{}", first.log());
    // The lock went with the daemon: `cwmpd inform` runs now, and serves what the CLI wrote.
    acs.push_script([gpv_req(&[name])]);
    let n = acs.completed().len();
    let s = inform_and_wait(&acs, &cpe, "inform after the daemon stopped", n + 1)
        .pop()
        .expect("a session");
    match &s.exchanges[0].response {
        Ok(CpeResponse::GetParameterValues { list }) => {
            assert_eq!(list.get(0).map(|p| p.value), Some("4321"), "{list:?}")
        }
        r => panic!("{r:?}"),
    }
}

/// SIGHUP makes the daemon read its config again; without a handler it killed the daemon
/// (the default action).
#[test]
fn sighup_rereads_the_config_file() {
    let first_acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let second_acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::new("local-hup", &first_acs.url(), None);
    let mut daemon = cpe.spawn_run();
    first_acs
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    let text = text.replacen(&first_acs.url(), &second_acs.url(), 1);
    std::fs::write(&cpe.cfg, text).expect("write config");
    signal(&daemon, "HUP");
    let s = second_acs
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    // A new ACS URL: the device is new to that ACS (§3.7.1.5).
    assert!(s[0].has_event("0 BOOTSTRAP"), "{:?}", s[0].event_codes());
    assert!(daemon.alive(), "{}", daemon.log());
    assert!(
        daemon.log().contains("re-reading the configuration"),
        "{}",
        daemon.log()
    );
    signal(&daemon, "TERM");
    let st = wait_exit(&mut daemon, WAIT).unwrap_or_else(|| panic!("no exit on SIGTERM"));
    assert!(st.success(), "exit {st:?}\n{}", daemon.log());
}
