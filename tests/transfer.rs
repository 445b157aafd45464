//! End-to-end tests of Download (TR-069 Amendment 6 §A.3.2.8) and Upload (§A.3.2.9) with the
//! real `cwmpd run` daemon, the test ACS (`tests/support/acs.rs`) and a real HTTP(S) file
//! server (`tests/support/files.rs` on `tests/support/tls.rs`), against the contract of
//! `notes/spec-5.md`.
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

#[path = "support/acs.rs"]
mod acs;
#[path = "support/cpe.rs"]
mod cpe;
#[path = "support/files.rs"]
mod files;
#[path = "support/tempdir.rs"]
mod tempdir;
#[path = "support/tls.rs"]
mod tls;

use cpe::*;
use files::*;

use std::collections::BTreeSet;
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

/// A finished Download: what the test needs to look at.
struct Outcome {
    acs: Acs,
    cpe: Cpe,
    daemon: Daemon,
    tc: Tc,
}

/// Runs `dl` on a fresh CPE (CA `ca`, `[transfer]` lines `transfer`) whose firmware hook
/// `fw.sh` runs `body` and exits `status`; checks the DownloadResponse (Status 1), the events
/// and that the TransferComplete is reported once; returns it.
fn download_outcome(
    tag: &str,
    ca: Option<&Path>,
    transfer: &str,
    dl: Download,
    body: &str,
    status: i32,
) -> Outcome {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(tag, &acs.url(), ca, INTERVAL, transfer, FW_HOOK);
    hook_script(&cpe, "fw", body, status);
    let key = dl.command_key.clone();
    acs.push_script([AcsRequest::Download(dl)]);
    let daemon = cpe.spawn_run();
    let ex = exchanges_of(&acs, &daemon, "Download");
    assert_status_1(&ex[0], &daemon);
    let (_, tc) = reported(&acs, &daemon, &key, "M Download");
    Outcome {
        acs,
        cpe,
        daemon,
        tc,
    }
}

/// Asserts the TransferComplete has `code` (with the daemon's log on failure).
fn assert_code(o: &Outcome, code: u32) {
    assert_eq!(o.tc.code, code, "{:?}\ndaemon: {}", o.tc, o.daemon.log());
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
    let o = download_outcome(
        "tr-fw-ok",
        None,
        "",
        dl,
        "cp \"$CWMPD_FILE\" {dir}/fw-seen.bin",
        0,
    );
    assert_code(&o, 0);
    assert_times(&o.tc);
    let start = parse_time(&o.tc.start_time).unwrap_or(0.0);
    assert!(
        start >= before - 2.0,
        "StartTime before the test: {:?}",
        o.tc
    );

    let runs = hook_runs(&o.cpe, "fw");
    assert_eq!(runs.len(), 1, "hook runs {runs:#?}");
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

#[test]
fn rebooting_firmware_hook_holds_then_reports_once_after_restart() {
    let body = image(50_000, 9);
    let server = FileServer::file(None, "/fw.bin", body.clone(), HttpAuth::None);
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-fw-reboot",
        &acs.url(),
        None,
        2,
        "",
        "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = true\n",
    );
    hook_script(&cpe, "fw", "", 0);
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
    let server = FileServer::file(None, "/fw.bin", image(1000, 3), HttpAuth::None);
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-fw-noreboot",
        &acs.url(),
        None,
        INTERVAL,
        "reboot_timeout = 2\n",
        "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = true\n",
    );
    hook_script(&cpe, "fw", "", 0);
    acs.push_script([AcsRequest::Download(download(
        "fw-stuck",
        FW,
        &server.url("/fw.bin"),
    ))]);
    let daemon = cpe.spawn_run();
    let (_, tc) = reported(&acs, &daemon, "fw-stuck", "M Download");
    assert_eq!(tc.code, 9010, "{tc:?}\ndaemon: {}", daemon.log());
}

// ----------------------------------------------------------------------------------------------
// 3. HTTPS file servers: the CPE's CA (the ACS connection's TLS settings) and an unknown CA.

#[test]
fn https_file_server_signed_by_the_cpe_ca() {
    let pki = Pki::new();
    let body = image(20_000, 11);
    let server = FileServer::file(Some(pki.server_tls()), "/fw.bin", body, HttpAuth::None);
    let dl = download("https-ok", FW, &server.url("/fw.bin"));
    let o = download_outcome("tr-https", Some(&pki.ca_file), "", dl, "", 0);
    assert_code(&o, 0);
    assert_times(&o.tc);
    assert_eq!(server.count("GET"), 1);
}

#[test]
fn https_file_server_of_an_unknown_ca_is_9015() {
    let pki = Pki::new();
    let unknown = Pki::new();
    let server = FileServer::file(
        Some(unknown.server_tls()),
        "/fw.bin",
        image(1000, 1),
        HttpAuth::None,
    );
    let dl = download("https-unknown", FW, &server.url("/fw.bin"));
    let o = download_outcome("tr-https-bad", Some(&pki.ca_file), "", dl, "", 0);
    assert_code(&o, 9015);
    assert_eq!(server.count("GET"), 0, "a request passed the handshake");
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

// ----------------------------------------------------------------------------------------------
// 4. HTTP errors and authentication.

#[test]
fn not_found_is_9016() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 2), HttpAuth::None);
    let dl = download("nf", FW, &server.url("/missing.bin"));
    let o = download_outcome("tr-404", None, "", dl, "", 0);
    assert_code(&o, 9016);
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

#[test]
fn unauthorized_without_username_is_9012() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 2), HttpAuth::digest("u", "p"));
    let dl = download("noauth", FW, &server.url("/fw.bin"));
    let o = download_outcome("tr-401", None, "", dl, "", 0);
    assert_code(&o, 9012);
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

#[test]
fn digest_with_the_right_credentials() {
    let body = image(40_000, 5);
    let server = FileServer::file(
        None,
        "/secret/fw.bin",
        body.clone(),
        HttpAuth::digest("fileuser", "filepass"),
    );
    let dl = Download {
        username: "fileuser".into(),
        password: "filepass".into(),
        ..download("digest-ok", FW, &server.url("/secret/fw.bin"))
    };
    let o = download_outcome("tr-digest", None, "", dl, "", 0);
    assert_code(&o, 0);
    assert_times(&o.tc);
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "GET" && digest_ok(r, "fileuser", "filepass")),
        "no correct Digest GET: {reqs:#?}"
    );
    let runs = hook_runs(&o.cpe, "fw");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].var("SIZE"), body.len().to_string());
}

#[test]
fn digest_with_a_wrong_password_is_9012() {
    let server = FileServer::file(
        None,
        "/fw.bin",
        image(1000, 2),
        HttpAuth::digest("fileuser", "filepass"),
    );
    let dl = Download {
        username: "fileuser".into(),
        password: "wrong".into(),
        ..download("digest-bad", FW, &server.url("/fw.bin"))
    };
    let o = download_outcome("tr-digest-bad", None, "", dl, "", 0);
    assert_code(&o, 9012);
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.header("authorization").is_some()),
        "the credentials were never sent: {reqs:#?}"
    );
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

#[test]
fn basic_with_the_right_credentials() {
    let server = FileServer::file(
        None,
        "/fw.bin",
        image(5000, 4),
        HttpAuth::basic("fileuser", "filepass"),
    );
    let dl = Download {
        username: "fileuser".into(),
        password: "filepass".into(),
        ..download("basic-ok", FW, &server.url("/fw.bin"))
    };
    let o = download_outcome("tr-basic", None, "", dl, "", 0);
    assert_code(&o, 0);
    assert_eq!(hook_runs(&o.cpe, "fw").len(), 1);
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
    let o = download_outcome(
        "tr-trunc",
        None,
        "retries = 1\nretry_interval = 1\n",
        dl,
        "",
        0,
    );
    assert_code(&o, 9017);
    assert_eq!(server.count("GET"), 2, "{:#?}", server.requests());
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

#[test]
fn file_size_other_than_the_body_is_9018() {
    let body = image(4000, 8);
    let server = FileServer::file(None, "/fw.bin", body.clone(), HttpAuth::None);
    let dl = Download {
        file_size: body.len() as u32 + 10,
        ..download("size", FW, &server.url("/fw.bin"))
    };
    let o = download_outcome("tr-size", None, "", dl, "", 0);
    assert_code(&o, 9018);
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

#[test]
fn ftp_url_is_9013() {
    let dl = download("ftp", FW, "ftp://127.0.0.1:21/fw.bin");
    let o = download_outcome("tr-ftp", None, "", dl, "", 0);
    assert_code(&o, 9013);
}

#[test]
fn connection_refused_is_9015() {
    let dl = download("refused", FW, CLOSED);
    let o = download_outcome("tr-refused", None, "", dl, "", 0);
    assert_code(&o, 9015);
    assert!(hook_runs(&o.cpe, "fw").is_empty(), "the hook ran");
}

// ----------------------------------------------------------------------------------------------
// 6. The apply hook's exit status.

#[test]
fn apply_hook_exit_18_is_9018() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 2), HttpAuth::None);
    let dl = download("hook18", FW, &server.url("/fw.bin"));
    let o = download_outcome("tr-hook18", None, "", dl, "", 18);
    assert_code(&o, 9018);
    assert_eq!(hook_runs(&o.cpe, "fw").len(), 1);
}

#[test]
fn apply_hook_exit_1_is_9010_with_its_stderr() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 2), HttpAuth::None);
    let dl = download("hook1", FW, &server.url("/fw.bin"));
    let o = download_outcome(
        "tr-hook1",
        None,
        "",
        dl,
        "echo 'bad image' >&2\necho 'second line' >&2",
        1,
    );
    assert_code(&o, 9010);
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
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-filetype",
        &acs.url(),
        None,
        INTERVAL,
        "",
        "config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n",
    );
    hook_script(&cpe, "cfg", "", 0);
    let url = server.url("/cfg.tgz");
    acs.push_script([
        AcsRequest::Download(download("cfg-lower", "3 vendor configuration file", &url)),
        // No web_content hook: 9003 (spec-5: a FileType without a hook).
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
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("tr-dup", &acs.url(), None, INTERVAL, "", FW_HOOK);
    hook_script(&cpe, "fw", "", 0);
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
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("tr-delay", &acs.url(), None, INTERVAL, "", FW_HOOK);
    hook_script(&cpe, "fw", "", 0);
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

const UPLOAD_BYTES: &[u8] = b"CFG\x01\x02\xff config backup\nend";
/// `printf` arguments that write [`UPLOAD_BYTES`] (octal escapes for the binary bytes).
const UPLOAD_PRINTF: &str = "printf 'CFG\\001\\002\\377 config backup\\nend'";

#[test]
fn upload_config_puts_the_bytes_the_hook_wrote() {
    let server = FileServer::sink(None, 200, HttpAuth::None);
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-up-put",
        &acs.url(),
        None,
        INTERVAL,
        "",
        "upload_config = \"{dir}/upcfg.sh {file}\"\n",
    );
    hook_script(&cpe, "upcfg", &format!("{UPLOAD_PRINTF} > \"$1\""), 0);
    let url = server.url("/backup/cfg.bin");
    acs.push_script([AcsRequest::Upload(upload(
        "up-1",
        "1 Vendor Configuration File",
        &url,
    ))]);
    let daemon = cpe.spawn_run();
    assert_status_1(&exchanges_of(&acs, &daemon, "Upload")[0], &daemon);
    let (_, tc) = reported(&acs, &daemon, "up-1", "M Upload");
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
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
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-up-post",
        &acs.url(),
        None,
        INTERVAL,
        "upload_method = \"POST\"\n",
        "upload_log = \"{dir}/uplog.sh {file} {instance}\"\n",
    );
    hook_script(&cpe, "uplog", &format!("{UPLOAD_PRINTF} > \"$1\""), 0);
    acs.push_script([AcsRequest::Upload(Upload {
        username: "upuser".into(),
        password: "uppass".into(),
        ..upload("up-log", "4 vendor log file 2", &server.url("/logs"))
    })]);
    let daemon = cpe.spawn_run();
    assert_status_1(&exchanges_of(&acs, &daemon, "Upload")[0], &daemon);
    let (_, tc) = reported(&acs, &daemon, "up-log", "M Upload");
    assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
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
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "tr-up-500",
        &acs.url(),
        None,
        INTERVAL,
        "",
        "upload_config = \"{dir}/upcfg.sh {file}\"\n",
    );
    hook_script(&cpe, "upcfg", &format!("{UPLOAD_PRINTF} > \"$1\""), 0);
    acs.push_script([AcsRequest::Upload(upload(
        "up-500",
        "1 Vendor Configuration File",
        &server.url("/u"),
    ))]);
    let daemon = cpe.spawn_run();
    let (_, tc) = reported(&acs, &daemon, "up-500", "M Upload");
    assert_eq!(tc.code, 9011, "{tc:?}\ndaemon: {}", daemon.log());
    assert_eq!(server.count("PUT"), 1, "{:#?}", server.requests());
}

// ----------------------------------------------------------------------------------------------
// 10. Hook arguments are single-quoted shell words.

#[test]
fn hook_arguments_are_shell_quoted() {
    let server = FileServer::file(None, "/fw.bin", image(1000, 15), HttpAuth::None);
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("tr-quote", &acs.url(), None, INTERVAL, "", FW_HOOK);
    hook_script(&cpe, "fw", "", 0);
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
    acs.push_script([AcsRequest::Download(Download {
        target_file_name: target.clone(),
        ..download("quote", FW, &server.url("/fw.bin"))
    })]);
    let daemon = cpe.spawn_run();
    let (_, tc) = reported(&acs, &daemon, "quote", "M Download");
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

/// The 8 parameter RPCs (§A.3.1) and ScheduleInform: always listed.
const ALWAYS: [&str; 9] = [
    "GetRPCMethods",
    "GetParameterNames",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "ScheduleInform",
];
const DOWNLOADS: [&str; 5] = [
    "Download",
    "ScheduleDownload",
    "CancelTransfer",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
];

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

fn methods(e: &Exchange) -> BTreeSet<String> {
    match &e.response {
        Ok(CpeResponse::GetRpcMethods { methods }) => methods.iter().cloned().collect(),
        r => panic!("GetRPCMethods answered {r:?}"),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn get_rpc_methods_follows_the_hooks() {
    // Only the firmware hook.
    let ex = first_session(
        "tr-rpc-fw",
        "firmware = \"/bin/true {file}\"\n",
        vec![AcsRequest::GetRpcMethods],
    );
    let want: BTreeSet<String> = set(&ALWAYS).union(&set(&DOWNLOADS)).cloned().collect();
    assert_eq!(methods(&ex[0]), want);

    // Only an upload hook.
    let ex = first_session(
        "tr-rpc-up",
        "upload_log = \"/bin/true {file}\"\n",
        vec![AcsRequest::GetRpcMethods],
    );
    // CancelTransfer and the queue RPCs serve uploads too (A.4.1.5, A.4.1.6, A.4.1.9).
    let mut want = set(&ALWAYS);
    for m in [
        "Upload",
        "CancelTransfer",
        "GetQueuedTransfers",
        "GetAllQueuedTransfers",
    ] {
        want.insert(m.into());
    }
    assert_eq!(methods(&ex[0]), want);

    // No hook at all: no transfer or device control RPC, and those answer 9000.
    let ex = first_session(
        "tr-rpc-none",
        "",
        vec![
            AcsRequest::GetRpcMethods,
            AcsRequest::Download(download("x", FW, "http://127.0.0.1:1/x")),
            AcsRequest::Upload(upload("y", "1 Vendor Configuration File", CLOSED)),
            AcsRequest::GetQueuedTransfers,
        ],
    );
    assert_eq!(methods(&ex[0]), set(&ALWAYS));
    assert_eq!(ex.len(), 4, "{ex:#?}");
    for e in &ex[1..] {
        assert_eq!(fault_code(e), Some(9000), "{e:?}");
    }
}
