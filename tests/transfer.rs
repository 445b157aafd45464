//! End-to-end tests of Download (TR-069 Amendment 6 §A.3.2.8) and Upload (§A.3.2.9) with the
//! real `cwmpd run` daemon, the test ACS (`tests/support/acs.rs`) and a real HTTP(S) file
//! server (`tests/support/files.rs` on `tests/support/tls.rs`).
//!
//! Each test sends a Download or Upload in the first session, then looks for the
//! TransferComplete (§A.3.3.2) the agent sends in a later session and checks:
//! - the FaultStruct code the contract picks for the failure (9010–9018);
//! - on success: StartTime and CompleteTime are known times and StartTime <= CompleteTime;
//! - the Inform of that session carries `7 TRANSFER COMPLETE` and `M Download`/`M Upload` with
//!   the CommandKey (§3.7.1.5 Table 7);
//! - it is sent exactly once: a later session (periodic, every few seconds) does not repeat it.
//!
//! Cases: firmware download with the exact bytes seen by the hook; a rebooting firmware hook
//! (the agent holds, then reports after a restart; or reports 9010 after `reboot_timeout`);
//! https with the CPE's CA and with an unknown CA (9015); 404 (9016); 401 without credentials
//! and with a wrong password (9012); Digest and Basic with the right credentials; a truncated
//! body (9017 after one retry); a wrong FileSize (9018); ftp (9013); a closed port (9015); apply
//! hook exit statuses (18 → 9018, 1 → 9010 with its stderr); FileType case, unsupported
//! FileType, over-long CommandKey and URL (9003 in the response); an identical Download not
//! queued twice; DelaySeconds; uploads (PUT bytes, POST with Digest, instance numbers, 500 →
//! 9011); shell quoting of hook arguments; GetRPCMethods following the configured hooks.
//!
//! Every test has its own CPE, ACS and file server on ephemeral ports; every wait has a
//! deadline; the daemon is killed on drop.

use support::{acs, cpe, files, tls};

use cpe::*;
use files::*;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acs::{Acs, AcsOptions, Call, Exchange, SessionRecord, Turn};
use cwmpd::soap::{AcsRequest, CpeResponse, Download, Upload};
use tls::{Pki, Response};

const FW: &str = "1 Firmware Upgrade Image";
const WEB: &str = "2 Web Content";
/// Periodic Inform interval of most tests: a later session comes by itself, so a repeated
/// TransferComplete would be seen.
const INTERVAL: u32 = 3;
/// The firmware hook line: the hook script `fw.sh` gets the file and the target.
const FW_HOOK: &str = "firmware = \"{dir}/fw.sh {file} {target}\"\nfirmware_reboots = false\n";
/// A port nothing listens on (privileged: no test can bind it).
const CLOSED: &str = "http://127.0.0.1:1/fw.bin";

// ----------------------------------------------------------------------------------------------
// Helpers.

/// `n` bytes of a fixed pseudo-random sequence (every byte value occurs).
fn image(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Waits for the first completed session that has an exchange of `method`; returns them.
fn exchanges_of(acs: &Acs, daemon: &Daemon, method: &str) -> Vec<Exchange> {
    let all = acs
        .wait_for(WAIT, |s| {
            s.iter().any(|s| s.completed && !s.calls(method).is_empty())
        })
        .unwrap_or_else(|e| panic!("no {method} answered: {e}\ndaemon: {}", daemon.log()));
    let s = all
        .iter()
        .find(|s| s.completed && !s.calls(method).is_empty())
        .expect("found above");
    s.calls(method).into_iter().cloned().collect()
}

/// Asserts a DownloadResponse/UploadResponse with Status 1 and unknown times (§A.3.2.8: the
/// transfer completes later, reported by TransferComplete).
fn assert_status_1(e: &Exchange, daemon: &Daemon) {
    match &e.response {
        Ok(CpeResponse::Download {
            status,
            start_time,
            complete_time,
        })
        | Ok(CpeResponse::Upload {
            status,
            start_time,
            complete_time,
        }) => {
            assert_eq!(*status, 1, "{e:?}");
            assert_eq!(start_time, TIME_UNKNOWN, "{e:?}");
            assert_eq!(complete_time, TIME_UNKNOWN, "{e:?}");
        }
        r => panic!(
            "{} answered {r:?}\ndaemon: {}",
            e.call.method(),
            daemon.log()
        ),
    }
}

/// Waits for the TransferComplete of `key`; checks the events of its session (`method` is `M
/// Download` or `M Upload`) and that a later session does not repeat it.
fn reported(acs: &Acs, daemon: &Daemon, key: &str, method: &str) -> (SessionRecord, Tc) {
    let (s, tc) = wait_transfer_complete(acs, key, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_transfer_events(&s, method, key);
    assert_reported_once(acs, key, s.index, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    (s, tc)
}

/// A fresh ACS and CPE `tag` (periodic interval `interval`, `[transfer]` lines `transfer`,
/// `[hooks]` body `hooks`) with the hook script `<hook.0>.sh` that runs `hook.1` and exits 0.
fn setup(tag: &str, interval: u32, transfer: &str, hooks: &str, hook: (&str, &str)) -> (Acs, Cpe) {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(tag, &acs.url(), None, interval, transfer, hooks);
    hook_script(&cpe, hook.0, hook.1, 0);
    (acs, cpe)
}

/// Sends `req` (a Download or an Upload) in the first session of a new daemon of `cpe`; checks
/// the response (Status 1), the events and that the TransferComplete is reported once
/// (§A.3.3.2); returns the daemon and the TransferComplete.
fn transfer_once(acs: &Acs, cpe: &Cpe, req: AcsRequest) -> (Daemon, Tc) {
    let (key, method) = match &req {
        AcsRequest::Download(d) => (d.command_key.clone(), "Download"),
        AcsRequest::Upload(u) => (u.command_key.clone(), "Upload"),
        r => panic!("not a transfer: {r:?}"),
    };
    acs.push_script([req]);
    let daemon = cpe.spawn_run();
    assert_status_1(&exchanges_of(acs, &daemon, method)[0], &daemon);
    let (_, tc) = reported(acs, &daemon, &key, &format!("M {method}"));
    (daemon, tc)
}

/// A finished Download: what the test needs to look at.
struct Outcome {
    acs: Acs,
    cpe: Cpe,
    daemon: Daemon,
    tc: Tc,
}

/// Runs `dl` on a fresh CPE `tr-<CommandKey>` (CA `ca`, `[transfer]` lines `transfer`) whose
/// firmware hook `fw.sh` runs `body` and exits `status` (see [`transfer_once`]).
fn download_outcome(
    ca: Option<&Path>,
    transfer: &str,
    dl: Download,
    body: &str,
    status: i32,
) -> Outcome {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let tag = format!("tr-{}", dl.command_key);
    let cpe = transfer_cpe(&tag, &acs.url(), ca, INTERVAL, transfer, FW_HOOK);
    hook_script(&cpe, "fw", body, status);
    let (daemon, tc) = transfer_once(&acs, &cpe, AcsRequest::Download(dl));
    Outcome {
        acs,
        cpe,
        daemon,
        tc,
    }
}

/// Asserts the TransferComplete has `code` (with known times when it is 0) and the firmware
/// hook ran `runs` times (with the daemon's log on failure).
fn expect(o: &Outcome, code: u32, runs: usize) {
    assert_eq!(o.tc.code, code, "{:?}\ndaemon: {}", o.tc, o.daemon.log());
    if code == 0 {
        assert_times(&o.tc);
    }
    let seen = hook_runs(&o.cpe, "fw");
    assert_eq!(
        seen.len(),
        runs,
        "hook runs {seen:#?}\ndaemon: {}",
        o.daemon.log()
    );
}

/// A fault-matrix case: `dl` with the defaults of [`download_outcome`] (no CA, no `[transfer]`
/// lines, a hook that succeeds), then [`expect`].
fn case(dl: Download, code: u32, runs: usize) -> Outcome {
    let o = download_outcome(None, "", dl, "", 0);
    expect(&o, code, runs);
    o
}

/// The small image of the fault-matrix cases, served at `/fw.bin` behind `auth`.
fn fw_server(auth: HttpAuth) -> FileServer {
    FileServer::file(None, "/fw.bin", image(1000, 2), auth)
}

/// The credentials of the protected file servers.
const FILE_USER: &str = "fileuser";
const FILE_PASS: &str = "filepass";

/// A firmware Download of `url` that logs in as [`FILE_USER`] with `pass`.
fn fw_login(key: &str, url: &str, pass: &str) -> Download {
    Download {
        username: FILE_USER.into(),
        password: pass.into(),
        ..download(key, FW, url)
    }
}

// ----------------------------------------------------------------------------------------------
// 1. A firmware download over http, applied by a hook that does not reboot.

#[test]
fn firmware_download_ok_hook_sees_the_exact_bytes() {
    let body = image(300_000, 7);
    let server = FileServer::file(None, "/fw/image.bin", body.clone(), HttpAuth::None);
    let before = now_unix();
    let dl = Download {
        file_size: body.len() as u32,
        target_file_name: "image.bin".into(),
        ..download("fw-ok-1", FW, &server.url("/fw/image.bin"))
    };
    let o = download_outcome(None, "", dl, "cp \"$CWMPD_FILE\" {dir}/fw-seen.bin", 0);
    expect(&o, 0, 1);
    let start = parse_time(&o.tc.start_time).unwrap_or(0.0);
    assert!(
        start >= before - 2.0,
        "StartTime before the test: {:?}",
        o.tc
    );

    let runs = hook_runs(&o.cpe, "fw");
    let run = &runs[0];
    let file = run.var("CWMPD_FILE");
    assert_eq!(run.args, vec![file.to_string(), "image.bin".to_string()]);
    assert!(
        Path::new(file).starts_with(o.cpe.dir.path().join("transfer")),
        "the file is not in [transfer] dir: {file}"
    );
    assert_eq!(run.var("CWMPD_TARGET"), "image.bin");
    assert_eq!(run.var("CWMPD_FILE_TYPE"), FW);
    assert_eq!(run.var("CWMPD_COMMAND_KEY"), "fw-ok-1");
    assert_eq!(run.var("SIZE"), body.len().to_string());
    let seen = std::fs::read(o.cpe.dir.path().join("fw-seen.bin")).unwrap_or_default();
    assert!(
        seen == body,
        "the hook saw {} bytes, not the image",
        seen.len()
    );
    assert_eq!(server.count("GET"), 1, "{:#?}", server.requests());
    drop(o.acs);
}

// ----------------------------------------------------------------------------------------------
// 2. A firmware hook that reboots: the agent holds; the result comes after the restart.

/// The hook line of a firmware hook that reboots the device.
const FW_REBOOTS: &str = "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = true\n";

#[test]
fn rebooting_firmware_hook_holds_then_reports_once_after_restart() {
    let body = image(50_000, 9);
    let server = FileServer::file(None, "/fw.bin", body.clone(), HttpAuth::None);
    let (acs, cpe) = setup("tr-fw-reboot", 2, "", FW_REBOOTS, ("fw", ""));
    acs.push_script([AcsRequest::Download(download(
        "fw-reboot",
        FW,
        &server.url("/fw.bin"),
    ))]);
    let mut daemon = cpe.spawn_run();
    assert_status_1(&exchanges_of(&acs, &daemon, "Download")[0], &daemon);
    poll(WAIT, || (!hook_runs(&cpe, "fw").is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("the hook did not run\ndaemon: {}", daemon.log()));
    assert_eq!(hook_runs(&cpe, "fw")[0].var("SIZE"), body.len().to_string());

    // Holding: no session although the periodic interval is 2 s, and still running.
    thread::sleep(Duration::from_millis(300));
    let n = acs.sessions().len();
    thread::sleep(Duration::from_secs(5));
    assert_eq!(
        acs.sessions().len(),
        n,
        "a session while holding for the reboot\ndaemon: {}",
        daemon.log()
    );
    assert!(
        transfer_completes(&acs.sessions()).is_empty(),
        "TransferComplete sent before the reboot"
    );
    assert!(daemon.alive(), "the agent exited instead of holding");

    // The "reboot": SIGKILL and start again.
    let log1 = daemon.kill();
    let daemon = cpe.spawn_run();
    let (s, tc) = wait_transfer_complete(&acs, "fw-reboot", WAIT)
        .unwrap_or_else(|e| panic!("{e}\nfirst run: {log1}\ndaemon: {}", daemon.log()));
    assert!(s.index >= n, "reported by the first run");
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    assert_times(&tc);
    assert_transfer_events(&s, "M Download", "fw-reboot");
    assert_reported_once(&acs, "fw-reboot", s.index, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(
        hook_runs(&cpe, "fw").len(),
        1,
        "the rebooting hook ran again after the restart"
    );
    assert_eq!(server.count("GET"), 1, "{:#?}", server.requests());
}

#[test]
fn rebooting_hook_that_never_reboots_reports_9010_after_reboot_timeout() {
    let server = fw_server(HttpAuth::None);
    let transfer = "reboot_timeout = 2\n";
    let (acs, cpe) = setup("tr-fw-noreboot", INTERVAL, transfer, FW_REBOOTS, ("fw", ""));
    let dl = download("fw-stuck", FW, &server.url("/fw.bin"));
    let (daemon, tc) = transfer_once(&acs, &cpe, AcsRequest::Download(dl));
    assert_eq!(tc.code, 9010, "{tc:?}\ndaemon: {}", daemon.log());
}

// ----------------------------------------------------------------------------------------------
// 3. HTTPS file servers: the CPE's CA (the ACS connection's TLS settings) and an unknown CA.

/// A Download from an https file server whose certificate the CPE's CA signed (`trusted`) or
/// another CA signed.
fn https_download(key: &str, trusted: bool) -> (FileServer, Outcome) {
    let pki = Pki::new();
    let unknown = Pki::new();
    let signer = if trusted { &pki } else { &unknown };
    let tls = Some(signer.server_tls());
    let server = FileServer::file(tls, "/fw.bin", image(20_000, 11), HttpAuth::None);
    let dl = download(key, FW, &server.url("/fw.bin"));
    let o = download_outcome(Some(&pki.ca_file), "", dl, "", 0);
    (server, o)
}

#[test]
fn https_file_server_signed_by_the_cpe_ca() {
    let (server, o) = https_download("https-ok", true);
    expect(&o, 0, 1);
    assert_eq!(server.count("GET"), 1);
}

#[test]
fn https_file_server_of_an_unknown_ca_is_9015() {
    let (server, o) = https_download("https-unknown", false);
    expect(&o, 9015, 0);
    assert_eq!(server.count("GET"), 0, "a request passed the handshake");
}

// ----------------------------------------------------------------------------------------------
// 4. HTTP errors and authentication.

#[test]
fn not_found_is_9016() {
    let server = fw_server(HttpAuth::None);
    case(download("nf", FW, &server.url("/missing.bin")), 9016, 0);
}

#[test]
fn unauthorized_without_username_is_9012() {
    let server = fw_server(HttpAuth::digest("u", "p"));
    case(download("noauth", FW, &server.url("/fw.bin")), 9012, 0);
}

#[test]
fn digest_with_the_right_credentials() {
    let body = image(40_000, 5);
    let auth = HttpAuth::digest(FILE_USER, FILE_PASS);
    let server = FileServer::file(None, "/secret/fw.bin", body.clone(), auth);
    let o = case(
        fw_login("digest-ok", &server.url("/secret/fw.bin"), FILE_PASS),
        0,
        1,
    );
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "GET" && digest_ok(r, FILE_USER, FILE_PASS)),
        "no correct Digest GET: {reqs:#?}"
    );
    assert_eq!(
        hook_runs(&o.cpe, "fw")[0].var("SIZE"),
        body.len().to_string()
    );
}

#[test]
fn digest_with_a_wrong_password_is_9012() {
    let server = fw_server(HttpAuth::digest(FILE_USER, FILE_PASS));
    case(
        fw_login("digest-bad", &server.url("/fw.bin"), "wrong"),
        9012,
        0,
    );
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.header("authorization").is_some()),
        "the credentials were never sent: {reqs:#?}"
    );
}

#[test]
fn basic_with_the_right_credentials() {
    // Over https: over plain http Basic is refused by default (next test).
    let pki = Pki::new();
    let auth = HttpAuth::basic(FILE_USER, FILE_PASS);
    let server = FileServer::file(Some(pki.server_tls()), "/fw.bin", image(1000, 2), auth);
    let dl = fw_login("basic-ok", &server.url("/fw.bin"), FILE_PASS);
    let o = download_outcome(Some(&pki.ca_file), "", dl, "", 0);
    expect(&o, 0, 1);
}

/// A file server (or anyone on the path to it) that asks for Basic over
/// plain http gets no password, unless `[acs] allow_basic_over_http` says so.
#[test]
fn basic_over_plain_http_only_with_the_opt_in() {
    let server = fw_server(HttpAuth::basic(FILE_USER, FILE_PASS));
    let o = case(
        fw_login("basic-http", &server.url("/fw.bin"), FILE_PASS),
        9012,
        0,
    );
    assert!(o.tc.string.contains("allow_basic_over_http"), "{:?}", o.tc);
    let reqs = server.requests();
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().all(|r| r.header("authorization").is_none()),
        "the password went out: {reqs:#?}"
    );

    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("tr-basic-opt-in", &acs.url(), None, INTERVAL, "", FW_HOOK);
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    let text = text.replacen("[acs]\n", "[acs]\nallow_basic_over_http = true\n", 1);
    std::fs::write(&cpe.cfg, text).expect("write config");
    hook_script(&cpe, "fw", "", 0);
    let dl = fw_login("basic-opt-in", &server.url("/fw.bin"), FILE_PASS);
    let (daemon, tc) = transfer_once(&acs, &cpe, AcsRequest::Download(dl));
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
}

// ----------------------------------------------------------------------------------------------
// 5. Broken transfers, other schemes, nobody listening.

#[test]
fn truncated_body_is_9017_after_one_retry() {
    let server = FileServer::start(None, |_| {
        Response::new(200)
            .header("Content-Length", "100000")
            .body(image(1000, 6))
            .close()
    });
    let dl = download("trunc", FW, &server.url("/fw.bin"));
    let o = download_outcome(None, "retries = 1\nretry_interval = 1\n", dl, "", 0);
    expect(&o, 9017, 0);
    assert_eq!(server.count("GET"), 2, "{:#?}", server.requests());
}

#[test]
fn file_size_other_than_the_body_is_9018() {
    let server = fw_server(HttpAuth::None);
    let dl = Download {
        file_size: 1000 + 10,
        ..download("size", FW, &server.url("/fw.bin"))
    };
    case(dl, 9018, 0);
}

#[test]
fn ftp_url_is_9013() {
    case(download("ftp", FW, "ftp://127.0.0.1:21/fw.bin"), 9013, 0);
}

#[test]
fn connection_refused_is_9015() {
    case(download("refused", FW, CLOSED), 9015, 0);
}

// ----------------------------------------------------------------------------------------------
// 6. The apply hook's exit status.

/// A good download whose firmware hook runs `body` and exits `status`: the hook runs once and
/// the TransferComplete has `code`.
fn apply_hook_case(key: &str, body: &str, status: i32, code: u32) -> Outcome {
    let server = fw_server(HttpAuth::None);
    let dl = download(key, FW, &server.url("/fw.bin"));
    let o = download_outcome(None, "", dl, body, status);
    expect(&o, code, 1);
    o
}

#[test]
fn apply_hook_exit_18_is_9018() {
    apply_hook_case("hook18", "", 18, 9018);
}

#[test]
fn apply_hook_exit_1_is_9010_with_its_stderr() {
    let stderr = "echo 'bad image' >&2\necho 'second line' >&2";
    let o = apply_hook_case("hook1", stderr, 1, 9010);
    assert!(
        o.tc.string.contains("bad image"),
        "FaultString {:?}",
        o.tc.string
    );
}

// ----------------------------------------------------------------------------------------------
// 7. FileType matching and argument checks in the DownloadResponse.

#[test]
fn file_type_case_and_faults_in_the_response() {
    let body = image(3000, 12);
    let server = FileServer::file(None, "/cfg.tgz", body.clone(), HttpAuth::None);
    let hooks = "config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n";
    let (acs, cpe) = setup("tr-filetype", INTERVAL, "", hooks, ("cfg", ""));
    let url = server.url("/cfg.tgz");
    acs.push_script([
        AcsRequest::Download(download("cfg-lower", "3 vendor configuration file", &url)),
        // No web_content hook: 9003 (a FileType without a hook).
        AcsRequest::Download(download("web", WEB, &url)),
        // CommandKey longer than 32 characters, URL longer than 256: 9003.
        AcsRequest::Download(download(
            &"k".repeat(33),
            "3 Vendor Configuration File",
            &url,
        )),
        AcsRequest::Download(download(
            "longurl",
            "3 Vendor Configuration File",
            &format!("{url}?{}", "a".repeat(257)),
        )),
        AcsRequest::Download(download("nourl", "3 Vendor Configuration File", "")),
    ]);
    let daemon = cpe.spawn_run();
    let ex = exchanges_of(&acs, &daemon, "Download");
    assert_eq!(ex.len(), 5, "{ex:#?}");
    assert_status_1(&ex[0], &daemon);
    for e in &ex[1..] {
        assert_eq!(fault_code(e), Some(9003), "{e:?}\ndaemon: {}", daemon.log());
    }
    let (_, tc) = reported(&acs, &daemon, "cfg-lower", "M Download");
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    assert_times(&tc);
    let runs = hook_runs(&cpe, "cfg");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].var("SIZE"), body.len().to_string());
    let keys: Vec<String> = transfer_completes(&acs.sessions())
        .into_iter()
        .map(|t| t.command_key)
        .collect();
    assert_eq!(
        keys,
        vec!["cfg-lower".to_string()],
        "refused Downloads reported"
    );
    assert_eq!(server.count("GET"), 1);
}

#[test]
fn identical_download_is_not_queued_twice() {
    let server = FileServer::file(None, "/fw.bin", image(2000, 13), HttpAuth::None);
    let (acs, cpe) = setup("tr-dup", INTERVAL, "", FW_HOOK, ("fw", ""));
    // An ACS that lost the first response sends the same Download again.
    let dl = Download {
        delay_seconds: 1,
        ..download("dup", FW, &server.url("/fw.bin"))
    };
    acs.push_script([AcsRequest::Download(dl.clone()), AcsRequest::Download(dl)]);
    let daemon = cpe.spawn_run();
    let ex = exchanges_of(&acs, &daemon, "Download");
    assert_eq!(ex.len(), 2);
    assert_status_1(&ex[0], &daemon);
    assert_status_1(&ex[1], &daemon);
    let (_, tc) = reported(&acs, &daemon, "dup", "M Download");
    assert_eq!(tc.code, 0, "{tc:?}");
    assert_eq!(server.count("GET"), 1, "{:#?}", server.requests());
    assert_eq!(hook_runs(&cpe, "fw").len(), 1);
}

// ----------------------------------------------------------------------------------------------
// 8. DelaySeconds.

#[test]
fn delay_seconds_postpones_the_fetch() {
    let server = FileServer::file(None, "/fw.bin", image(2000, 14), HttpAuth::None);
    let (acs, cpe) = setup("tr-delay", INTERVAL, "", FW_HOOK, ("fw", ""));
    let answered: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let a = answered.clone();
    let mut dl = Some(Download {
        delay_seconds: 3,
        ..download("delay", FW, &server.url("/fw.bin"))
    });
    acs.push_script_fn(move |t: &Turn<'_>| {
        if t.last.is_some() {
            // Called right after the DownloadResponse arrived.
            if let Ok(mut g) = a.lock() {
                g.get_or_insert_with(Instant::now);
            }
        }
        dl.take().map(|d| Call::from(AcsRequest::Download(d)))
    });
    let daemon = cpe.spawn_run();
    let (_, tc) = reported(&acs, &daemon, "delay", "M Download");
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    let answered = answered
        .lock()
        .ok()
        .and_then(|g| *g)
        .expect("response time");
    let timed = server.timed();
    let (got, _) = timed
        .iter()
        .find(|(_, r)| r.method == "GET")
        .expect("a GET");
    let waited = got.saturating_duration_since(answered);
    // DelaySeconds counts from the request, a few milliseconds before its response arrived.
    assert!(
        waited >= Duration::from_millis(2800),
        "fetched {waited:?} after the response"
    );
    assert!(
        waited < Duration::from_secs(8),
        "fetched {waited:?} after the response"
    );
}

// ----------------------------------------------------------------------------------------------
// 9. Upload.

/// The FileType of the configuration backups (§A.3.2.9).
const CONFIG: &str = "1 Vendor Configuration File";
const UPLOAD_BYTES: &[u8] = b"CFG\x01\x02\xff config backup\nend";
/// `printf` arguments that write [`UPLOAD_BYTES`] (octal escapes for the binary bytes).
const UPLOAD_PRINTF: &str = "printf 'CFG\\001\\002\\377 config backup\\nend'";
/// The hook line of the configuration backup.
const UPLOAD_CONFIG: &str = "upload_config = \"{dir}/upcfg.sh {file}\"\n";

/// Runs `up` on a fresh CPE `tr-<CommandKey>` (`[transfer]` lines `transfer`, `[hooks]` body
/// `hooks`) whose upload hook `<hook>.sh` writes [`UPLOAD_BYTES`] (see [`transfer_once`]);
/// asserts the TransferComplete has `code`.
fn upload_outcome(transfer: &str, hooks: &str, hook: &str, up: Upload, code: u32) -> (Cpe, Tc) {
    let tag = format!("tr-{}", up.command_key);
    let write = format!("{UPLOAD_PRINTF} > \"$1\"");
    let (acs, cpe) = setup(&tag, INTERVAL, transfer, hooks, (hook, &write));
    let (daemon, tc) = transfer_once(&acs, &cpe, AcsRequest::Upload(up));
    assert_eq!(tc.code, code, "{tc:?}\ndaemon: {}", daemon.log());
    (cpe, tc)
}

#[test]
fn upload_config_puts_the_bytes_the_hook_wrote() {
    let server = FileServer::sink(None, 200, HttpAuth::None);
    let up = upload("up-1", CONFIG, &server.url("/backup/cfg.bin"));
    let (cpe, tc) = upload_outcome("", UPLOAD_CONFIG, "upcfg", up, 0);
    assert_times(&tc);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    let r = &reqs[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/backup/cfg.bin");
    assert!(r.body == UPLOAD_BYTES, "body {:?}", r.body);
    assert_eq!(
        r.header("content-length"),
        Some(UPLOAD_BYTES.len().to_string().as_str())
    );
    let runs = hook_runs(&cpe, "upcfg");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].var("CWMPD_COMMAND_KEY"), "up-1");
    assert_eq!(runs[0].args, vec![runs[0].var("CWMPD_FILE").to_string()]);
}

#[test]
fn upload_log_instance_with_post_and_digest() {
    let server = FileServer::sink(None, 201, HttpAuth::digest("upuser", "uppass"));
    let up = Upload {
        username: "upuser".into(),
        password: "uppass".into(),
        ..upload("up-log", "4 vendor log file 2", &server.url("/logs"))
    };
    let hooks = "upload_log = \"{dir}/uplog.sh {file} {instance}\"\n";
    let (cpe, _) = upload_outcome("upload_method = \"POST\"\n", hooks, "uplog", up, 0);
    let reqs = server.requests();
    let ok: Vec<_> = reqs
        .iter()
        .filter(|r| digest_ok(r, "upuser", "uppass"))
        .collect();
    assert_eq!(ok.len(), 1, "{reqs:#?}");
    assert_eq!(ok[0].method, "POST");
    assert!(ok[0].body == UPLOAD_BYTES, "body {:?}", ok[0].body);
    assert!(reqs.iter().all(|r| r.method == "POST"), "{reqs:#?}");
    let runs = hook_runs(&cpe, "uplog");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].var("CWMPD_INSTANCE"), "2");
    assert_eq!(runs[0].args.get(1).map(String::as_str), Some("2"));
}

#[test]
fn upload_rejected_by_the_server_is_9011() {
    let server = FileServer::sink(None, 500, HttpAuth::None);
    let up = upload("up-500", CONFIG, &server.url("/u"));
    upload_outcome("", UPLOAD_CONFIG, "upcfg", up, 9011);
    assert_eq!(server.count("PUT"), 1, "{:#?}", server.requests());
}

// ----------------------------------------------------------------------------------------------
// 10. Hook arguments are single-quoted shell words.

#[test]
fn hook_arguments_are_shell_quoted() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 15), HttpAuth::None);
    let (acs, cpe) = setup("tr-quote", INTERVAL, "", FW_HOOK, ("fw", ""));
    let p1 = cpe.dir.path().join("pwned-1");
    let p2 = cpe.dir.path().join("pwned-2");
    let p3 = cpe.dir.path().join("pwned-3");
    let target = format!(
        "a'; touch {}; '$(touch {})`touch {}`",
        p1.display(),
        p2.display(),
        p3.display()
    );
    assert!(
        target.len() <= 256,
        "test target too long: {}",
        target.len()
    );
    let dl = Download {
        target_file_name: target.clone(),
        ..download("quote", FW, &server.url("/fw.bin"))
    };
    let (daemon, tc) = transfer_once(&acs, &cpe, AcsRequest::Download(dl));
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    for p in [&p1, &p2, &p3] {
        assert!(
            !p.exists(),
            "{} created: the target reached a shell",
            p.display()
        );
    }
    let runs = hook_runs(&cpe, "fw");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].args.get(1), Some(&target), "{runs:#?}");
    assert_eq!(runs[0].var("CWMPD_TARGET"), target);
}

// ----------------------------------------------------------------------------------------------
// 11. GetRPCMethods lists what the hooks support; the rest is 9000.

/// Runs `calls` in the first session of a CPE with `hooks`; returns that session's exchanges.
fn first_session(tag: &str, hooks: &str, calls: Vec<AcsRequest>) -> Vec<Exchange> {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(tag, &acs.url(), None, 3600, "", hooks);
    acs.push_script(calls);
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    all[0].exchanges.clone()
}

#[test]
fn get_rpc_methods_follows_the_hooks() {
    // Only the firmware hook.
    let ex = first_session(
        "tr-rpc-fw",
        "firmware = \"/bin/true {file}\"\n",
        vec![AcsRequest::GetRpcMethods],
    );
    let want = expected_methods(&[["ScheduleInform"].as_slice(), &TRANSFER_RPCS].concat());
    assert_eq!(rpc_methods(&ex[0]), want);

    // Only an upload hook.
    let ex = first_session(
        "tr-rpc-up",
        "upload_log = \"/bin/true {file}\"\n",
        vec![AcsRequest::GetRpcMethods],
    );
    // CancelTransfer and the queue RPCs serve uploads too (A.4.1.5, A.4.1.6, A.4.1.9).
    let want = expected_methods(&[
        "ScheduleInform",
        "Upload",
        "CancelTransfer",
        "GetQueuedTransfers",
        "GetAllQueuedTransfers",
    ]);
    assert_eq!(rpc_methods(&ex[0]), want);

    // No hook at all: no transfer or device control RPC, and those answer 9000.
    let ex = first_session(
        "tr-rpc-none",
        "",
        vec![
            AcsRequest::GetRpcMethods,
            AcsRequest::Download(download("x", FW, "http://127.0.0.1:1/x")),
            AcsRequest::Upload(upload("y", CONFIG, CLOSED)),
            AcsRequest::GetQueuedTransfers,
        ],
    );
    assert_eq!(rpc_methods(&ex[0]), expected_methods(&["ScheduleInform"]));
    assert_eq!(ex.len(), 4, "{ex:#?}");
    for e in &ex[1..] {
        assert_eq!(fault_code(e), Some(9000), "{e:?}");
    }
}
