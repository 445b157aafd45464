//! Device control and durability, end to end: the real `cwmpd` binary against the test ACS
//! (`tests/support/acs.rs`), with hook scripts in the CPE's directory (`tests/support/files.rs`)
//! standing in for the OS actions, and "reboot" being the test killing and restarting the daemon.
//! The contract is `notes/spec-5.md` (issue 5); the TR-069 Amendment 6 sections:
//!
//! - Reboot (§A.3.2.10): the session ends first, then the hook runs, the agent holds, and the next
//!   start reports `1 BOOT` + `M Reboot` with the CommandKey exactly once (§3.7.1.5, Table 7).
//! - Without a reboot hook, Reboot answers 9000 and GetRPCMethods (§A.3.1.1) does not list it.
//! - FactoryReset (§A.4.1.1): the hook runs, and the next start is a new device: `0 BOOTSTRAP` +
//!   `1 BOOT`, ACS-set values, attributes and queued transfers gone.
//! - ScheduleInform (§A.4.1.4) across a kill: `3 SCHEDULED` + `M ScheduleInform`, not early, once.
//! - ScheduleDownload (§A.4.1.8): TimeWindows honoured, 9020 when the windows pass, 9003 for
//!   `4 Confirmation Needed` and for overlapping or misordered windows.
//! - GetQueuedTransfers / GetAllQueuedTransfers (§A.4.1.5, §A.4.1.6) and CancelTransfer
//!   (§A.4.1.9): State 1/2, cancelled transfers never fetched nor reported, 9003 for an unknown
//!   CommandKey, 9021 for one in progress.
//! - AutonomousTransferComplete (§A.4.2.1): a firmware change the ACS did not ask for (the
//!   config's software version changed between two starts) is reported once.
//! - RequestDownload (§A.4.2.2): `cwmpd request-download` reaches the ACS with
//!   `9 REQUEST DOWNLOAD`; a bad FileType is refused with exit code 2.
//! - The kill test (the acceptance test): a firmware Download is SIGKILLed at many points
//!   (before the DownloadResponse, mid-transfer, in the apply hook, while held for the reboot,
//!   with the TransferComplete unsent or unanswered, at random) and restarted, and every run ends
//!   with exactly one acknowledged TransferComplete for its CommandKey (a resend only where
//!   §3.7.1.5 requires it: the ACS's response never reached the CPE), identical each time it is
//!   sent, and no corrupt state file.
//!
//! Every test has its own directory, ACS and file server on free ports; every wait has a deadline.

use support::{acs, cpe, files, tls};

use cpe::*;
use files::{
    assert_times, assert_transfer_events, check_state_files, download, expected_methods, hook_runs,
    hook_script, list_dir, log_tails, rpc_methods, seed_from_env, session_calls,
    transfer_completes, transfer_cpe, wait_transfer_complete, FileServer, Rng, Tc, TRANSFER_RPCS,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acs::{Acs, AcsOptions, Call, Exchange, SessionRecord, Turn};
use cwmpd::datamodel::types::BaseType;
use cwmpd::soap::{
    AcsRequest, CpeRequest, CpeResponse, QueuedTransfer, ScheduleDownload, TimeWindow,
};
use tls::Response;

const PII: &str = "Device.ManagementServer.PeriodicInformInterval";
const PKEY: &str = "Device.ManagementServer.ParameterKey";
const SWVER: &str = "Device.DeviceInfo.SoftwareVersion";
const FIRMWARE: &str = "1 Firmware Upgrade Image";
const WEB_CONTENT: &str = "2 Web Content";
const CONFIG_FILE: &str = "3 Vendor Configuration File";

/// Slack for comparing the ACS's clock readings with the CPE's: both are this machine's
/// monotonic clock, so only scheduling jitter is allowed.
const SLACK: Duration = Duration::from_millis(50);

// ----------------------------------------------------------------------------------------------
// 1. Reboot.

#[test]
fn reboot_ends_the_session_runs_the_hook_holds_and_reports_m_reboot_once() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe(
        "reboot",
        &acs.url(),
        None,
        2,
        "",
        "reboot = \"{dir}/reboot.sh\"\n",
    );
    hook_script(&cpe, "reboot", "", 0);
    let hook_log = cpe.dir.path().join("reboot.log");
    // After the RebootResponse the ACS keeps the session open 1.5 s and looks whether the hook
    // ran meanwhile: it must not (the session ends cleanly first).
    let ran_in_session = Arc::new(Mutex::new(None::<bool>));
    let seen = ran_in_session.clone();
    acs.push_script_fn(move |turn: &Turn<'_>| match turn.session.exchanges.len() {
        0 => Some(AcsRequest::GetRpcMethods.into()),
        1 => Some(
            AcsRequest::Reboot {
                command_key: "rb-1".into(),
            }
            .into(),
        ),
        2 => {
            thread::sleep(Duration::from_millis(1500));
            *lock(&seen) = Some(hook_log.exists());
            Some(gpv_req(&[PII]))
        }
        _ => None,
    });
    let (daemon, all) = run_until_sessions(&acs, &cpe, 1);
    let s0 = &all[0];
    assert_eq!(s0.exchanges.len(), 3, "{:#?}", s0.exchanges);
    assert_eq!(
        rpc_methods(&s0.exchanges[0]),
        expected_methods(&["ScheduleInform", "Reboot"])
    );
    assert_eq!(s0.exchanges[1].response, Ok(CpeResponse::Reboot));
    assert_eq!(
        *lock(&ran_in_session),
        Some(false),
        "the reboot hook ran before the session ended\ndaemon: {}",
        daemon.log()
    );
    assert!(!gpv(&s0.exchanges[2]).is_empty());

    // Then the hook runs, and the agent holds: no session while the device goes down (the
    // periodic interval is 2 s).
    assert_hook_then_held(&acs, &cpe, &daemon, "reboot", Duration::from_secs(5));
    let _ = daemon.kill();

    // "The device reboots": the next start reports the Reboot, once.
    let (daemon, all, n) = run_next_session(&acs, &cpe);
    let boot = &all[n];
    assert!(boot.has_event("1 BOOT"), "{:?}", boot.inform.events);
    assert_eq!(
        boot.command_key("M Reboot"),
        Some("rb-1"),
        "{:?}",
        boot.inform.events
    );
    let _ = daemon.kill();

    // A plain restart: nothing pending, so the next session (periodic) has neither.
    let (daemon, all, m) = run_next_session(&acs, &cpe);
    let next = &all[m];
    assert!(
        !next.has_event("1 BOOT") && next.command_key("M Reboot").is_none(),
        "a plain restart reported {:?}",
        next.inform.events
    );
    let reboots: Vec<usize> = all
        .iter()
        .filter(|s| s.command_key("M Reboot").is_some())
        .map(|s| s.index)
        .collect();
    assert_eq!(reboots, vec![n], "M Reboot in sessions {reboots:?}");
    assert_eq!(
        hook_runs(&cpe, "reboot").len(),
        1,
        "the reboot hook ran again\ndaemon: {}",
        daemon.log()
    );
}

// ----------------------------------------------------------------------------------------------
// 2. No hooks: the device-control RPCs are not offered.

#[test]
fn without_hooks_reboot_and_transfers_answer_9000_and_are_not_listed() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("no-hooks", &acs.url(), None, 3600, "", "");
    let url = "http://127.0.0.1:1/f";
    let not_listed: Vec<Call> = vec![
        AcsRequest::Reboot {
            command_key: "rb-x".into(),
        }
        .into(),
        AcsRequest::FactoryReset.into(),
        AcsRequest::Download(download("d-x", FIRMWARE, url)).into(),
        AcsRequest::Upload(files::upload("u-x", "1 Vendor Configuration File", url)).into(),
        AcsRequest::ScheduleDownload(schedule_download(
            "sd-x",
            CONFIG_FILE,
            url,
            &[(1, 60, "1 At Any Time", -1)],
        ))
        .into(),
        AcsRequest::CancelTransfer {
            command_key: "d-x".into(),
        }
        .into(),
        AcsRequest::GetQueuedTransfers.into(),
        AcsRequest::GetAllQueuedTransfers.into(),
    ];
    let mut script = vec![Call::from(AcsRequest::GetRpcMethods)];
    script.extend(not_listed);
    acs.push_script(script);
    let all = inform_and_wait(&acs, &cpe, "inform", 1);
    let s = &all[0];
    assert_eq!(s.exchanges.len(), 9, "{:#?}", s.exchanges);
    assert_eq!(
        rpc_methods(&s.exchanges[0]),
        expected_methods(&["ScheduleInform"])
    );
    for e in &s.exchanges[1..] {
        assert_eq!(
            fault_code(e),
            Some(9000),
            "{} answered {:?}",
            e.call.method(),
            e.response
        );
    }
}

// ----------------------------------------------------------------------------------------------
// 3. FactoryReset.

#[test]
fn factory_reset_runs_the_hook_and_the_next_start_is_a_new_device() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let files = FileServer::file(None, "/cfg", b"cfg".to_vec(), files::HttpAuth::None);
    let cpe = transfer_cpe(
        "factory",
        &acs.url(),
        None,
        3600,
        "",
        "factory_reset = \"{dir}/reset.sh\"\n\
         config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n",
    );
    hook_script(&cpe, "reset", "", 0);
    hook_script(&cpe, "cfg", "", 0);
    // Session 0 (BOOTSTRAP) makes state: an ACS-set value and ParameterKey, an attribute, a queued
    // transfer; it schedules session 1, which resets.
    acs.push_script([
        spv_req(&[(PII, "1234", BaseType::UnsignedInt)], "fr-key"),
        spa_req(PII, 1),
        AcsRequest::Download(cwmpd::soap::Download {
            delay_seconds: 3600,
            ..download("pre-reset", CONFIG_FILE, &files.url("/cfg"))
        })
        .into(),
        AcsRequest::ScheduleInform {
            delay_seconds: 1,
            command_key: "go".into(),
        }
        .into(),
    ]);
    acs.push_script([
        AcsRequest::GetRpcMethods.into(),
        gpv_req(&[PII]),
        AcsRequest::GetAllQueuedTransfers.into(),
        AcsRequest::FactoryReset.into(),
    ]);
    let (daemon, all) = run_until_sessions(&acs, &cpe, 2);
    let (s0, s1) = (&all[0], &all[1]);
    assert_eq!(s0.exchanges.len(), 4, "{:#?}", s0.exchanges);
    assert!(
        matches!(
            s0.exchanges[0].response,
            Ok(CpeResponse::SetParameterValues { .. })
        ),
        "{:#?}",
        s0.exchanges[0]
    );
    assert_eq!(
        s0.exchanges[1].response,
        Ok(CpeResponse::SetParameterAttributes)
    );
    assert!(
        matches!(
            s0.exchanges[2].response,
            Ok(CpeResponse::Download { status: 1, .. })
        ),
        "{:#?}",
        s0.exchanges[2]
    );
    assert_eq!(s1.param(PKEY), Some("fr-key"));
    let mut want = vec!["ScheduleInform", "FactoryReset"];
    want.extend(TRANSFER_RPCS);
    assert_eq!(rpc_methods(&s1.exchanges[0]), expected_methods(&want));
    assert_eq!(
        value(&gpv(&s1.exchanges[1]), PII).map(|v| v.0),
        Some("1234")
    );
    assert!(
        queued(&s1.exchanges[2])
            .iter()
            .any(|q| q.command_key == "pre-reset"),
        "{:#?}",
        s1.exchanges[2]
    );
    assert_eq!(s1.exchanges[3].response, Ok(CpeResponse::FactoryReset));

    assert_hook_then_held(&acs, &cpe, &daemon, "reset", Duration::from_secs(3));
    let _ = daemon.kill();

    acs.push_script([
        gpv_req(&[PII]),
        AcsRequest::GetParameterAttributes {
            names: vec![PII.into()],
        }
        .into(),
        AcsRequest::GetAllQueuedTransfers.into(),
    ]);
    let (_daemon, all, n) = run_next_session(&acs, &cpe);
    let s = &all[n];
    assert!(
        s.has_event("0 BOOTSTRAP") && s.has_event("1 BOOT"),
        "after FactoryReset: {:?}",
        s.inform.events
    );
    assert_eq!(
        s.param(PKEY),
        Some(""),
        "ParameterKey kept across FactoryReset"
    );
    assert_eq!(
        value(&gpv(&s.exchanges[0]), PII).map(|v| v.0),
        Some("3600"),
        "the ACS-set PeriodicInformInterval survived FactoryReset"
    );
    match &s.exchanges[1].response {
        Ok(CpeResponse::GetParameterAttributes { list }) => {
            assert_eq!(list.len(), 1, "{list:#?}");
            assert_eq!(
                list[0].notification, 0,
                "the ACS-set attribute survived FactoryReset"
            );
        }
        r => panic!("GetParameterAttributes answered {r:?}"),
    }
    assert_eq!(
        queued(&s.exchanges[2]),
        Vec::<QueuedTransfer>::new(),
        "a queued transfer survived FactoryReset"
    );
    assert_eq!(
        hook_runs(&cpe, "reset").len(),
        1,
        "the reset hook ran again"
    );
    assert!(
        files.requests().is_empty(),
        "the cancelled-by-reset transfer was fetched"
    );
}

// ----------------------------------------------------------------------------------------------
// 4. ScheduleInform across a kill.

#[test]
fn schedule_inform_survives_a_kill_and_fires_once_not_early() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("sched-kill", &acs.url(), None, 3600, "", "");
    let sent = Arc::new(Mutex::new(None::<Instant>));
    let s2 = sent.clone();
    acs.push_script_fn(move |turn: &Turn<'_>| {
        if !turn.session.exchanges.is_empty() {
            return None;
        }
        *lock(&s2) = Some(Instant::now());
        Some(
            AcsRequest::ScheduleInform {
                delay_seconds: 3,
                command_key: "si-1".into(),
            }
            .into(),
        )
    });
    let (daemon, all) = run_until_sessions(&acs, &cpe, 1);
    assert_eq!(
        all[0].exchanges.first().map(|e| &e.response),
        Some(&Ok(CpeResponse::ScheduleInform))
    );
    let t0 = lock(&sent).expect("ScheduleInform sent");
    // The session of si-1 schedules si-2, to see that si-1 is not reported twice. (The restart
    // has its own session first: the ConnectionRequestURL's port changed, `4 VALUE CHANGE`.)
    for _ in 0..4 {
        acs.push_script_fn(|turn: &Turn<'_>| {
            (turn.last.is_none() && turn.session.command_key("M ScheduleInform") == Some("si-1"))
                .then(|| {
                    AcsRequest::ScheduleInform {
                        delay_seconds: 1,
                        command_key: "si-2".into(),
                    }
                    .into()
                })
        });
    }
    thread::sleep((t0 + Duration::from_secs(1)).saturating_duration_since(Instant::now()));
    let (daemon, all) = restart_until_reported(&acs, &cpe, daemon, "M ScheduleInform", "si-2");
    let si1: Vec<&SessionRecord> = all
        .iter()
        .filter(|s| s.command_key("M ScheduleInform") == Some("si-1"))
        .collect();
    assert_eq!(
        si1.len(),
        1,
        "si-1 reported {} times: {}\ndaemon: {}",
        si1.len(),
        summary(&all),
        daemon.log()
    );
    let s = si1[0];
    assert!(s.has_event("3 SCHEDULED"), "{:?}", s.inform.events);
    let after = s.started.duration_since(t0);
    eprintln!("ScheduleInform DelaySeconds 3: the session came {after:?} after the request");
    assert!(
        after + SLACK >= Duration::from_secs(3),
        "ScheduleInform DelaySeconds 3 fired {after:?} after the request"
    );
}

// ----------------------------------------------------------------------------------------------
// 5. ScheduleDownload.

#[test]
fn schedule_download_honours_its_windows_and_refuses_what_it_cannot_do() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let body: Vec<u8> = (0..10_240u32).map(|i| (i % 251) as u8).collect();
    let b = body.clone();
    let files = FileServer::start(None, move |req| match req.path.as_str() {
        "/ok" => Response::new(200).body(b.clone()),
        "/busy" => Response::new(503),
        _ => Response::new(404),
    });
    let cpe = transfer_cpe(
        "sched-dl",
        &acs.url(),
        None,
        2,
        "retries = 2\n",
        "config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n",
    );
    hook_script(&cpe, "cfg", "", 0);
    let sd = |key: &str, path: &str, w: &[(u32, u32, &str, i32)]| -> Call {
        AcsRequest::ScheduleDownload(ScheduleDownload {
            file_size: if path == "/ok" { 10_240 } else { 0 },
            ..schedule_download(key, CONFIG_FILE, &files.url(path), w)
        })
        .into()
    };
    let mut calls: VecDeque<Call> = VecDeque::from(vec![
        sd("sd-ok", "/ok", &[(2, 60, "1 At Any Time", -1)]),
        sd("sd-busy", "/busy", &[(1, 4, "2 Immediately", 100)]),
        sd("sd-confirm", "/ok", &[(1, 60, "4 Confirmation Needed", -1)]),
        sd(
            "sd-overlap",
            "/ok",
            &[(1, 30, "1 At Any Time", -1), (20, 60, "1 At Any Time", -1)],
        ),
        sd(
            "sd-order",
            "/ok",
            &[(30, 60, "1 At Any Time", -1), (1, 10, "1 At Any Time", -1)],
        ),
        sd("sd-end", "/ok", &[(10, 5, "1 At Any Time", -1)]),
        AcsRequest::GetAllQueuedTransfers.into(),
    ]);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let s2 = sent.clone();
    acs.push_script_fn(move |_: &Turn<'_>| {
        let c = calls.pop_front()?;
        if let Call::Rpc(AcsRequest::ScheduleDownload(d)) = &c {
            lock(&s2).insert(d.command_key.clone(), Instant::now());
        }
        Some(c)
    });
    let (daemon, all) = run_until_sessions(&acs, &cpe, 1);
    let s0 = &all[0];
    assert_eq!(s0.exchanges.len(), 7, "{:#?}", s0.exchanges);
    for e in &s0.exchanges[..2] {
        assert_eq!(e.response, Ok(CpeResponse::ScheduleDownload), "{e:#?}");
    }
    for e in &s0.exchanges[2..6] {
        assert_eq!(fault_code(e), Some(9003), "{e:#?}");
    }
    let q = queued(&s0.exchanges[6]);
    let keys: BTreeSet<&str> = q.iter().map(|q| q.command_key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["sd-busy", "sd-ok"]), "{q:#?}");
    assert!(q.iter().all(|q| q.state == 1 && q.is_download), "{q:#?}");

    let long = Duration::from_secs(25);
    let (s_ok, tc_ok) = wait_transfer_complete(&acs, "sd-ok", long)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let (s_busy, tc_busy) = wait_transfer_complete(&acs, "sd-busy", long)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let sent = lock(&sent).clone();
    let timed = files.timed();

    // The window opens 2 s after the request: no fetch before.
    assert_eq!(tc_ok.code, 0, "{tc_ok:#?}\ndaemon: {}", daemon.log());
    assert_times(&tc_ok);
    assert_transfer_events(&s_ok, "M ScheduleDownload", "sd-ok");
    let first_ok = timed
        .iter()
        .find(|(_, r)| r.path == "/ok")
        .map(|(t, _)| *t)
        .expect("/ok fetched");
    let waited = first_ok.duration_since(sent["sd-ok"]);
    eprintln!("ScheduleDownload WindowStart 2: fetched {waited:?} after the request");
    assert!(
        waited + SLACK >= Duration::from_secs(2),
        "fetched {waited:?} after the request, before WindowStart 2"
    );
    let runs = hook_runs(&cpe, "cfg");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].var("CWMPD_COMMAND_KEY"), "sd-ok");
    assert_eq!(runs[0].var("SIZE"), "10240");

    // The busy server: tried inside its window [1 s, 4 s], then 9020 (§A.4.1.8: not completed
    // within the windows), not the last HTTP failure.
    assert_eq!(tc_busy.code, 9020, "{tc_busy:#?}\ndaemon: {}", daemon.log());
    assert_transfer_events(&s_busy, "M ScheduleDownload", "sd-busy");
    let busy: Vec<Duration> = timed
        .iter()
        .filter(|(_, r)| r.path == "/busy")
        .map(|(t, _)| t.duration_since(sent["sd-busy"]))
        .collect();
    assert!(
        busy.len() >= 2,
        "MaxRetries 100 within a 3 s window with retry_interval 1: only {busy:?}"
    );
    assert!(
        busy.iter()
            .all(|d| *d + SLACK >= Duration::from_secs(1) && *d <= Duration::from_millis(4500)),
        "fetches outside the window [1 s, 4 s]: {busy:?}"
    );
    // 9020 comes once no attempt fits in the window any more (the next retry would start after
    // WindowEnd), so after the last attempt, not necessarily after WindowEnd itself.
    let reported = s_busy.started.duration_since(sent["sd-busy"]);
    let last_try = busy.iter().max().copied().unwrap_or_default();
    assert!(
        reported >= last_try && last_try + Duration::from_secs(2) >= Duration::from_secs(4),
        "9020 reported {reported:?} after the request; last attempt {last_try:?}, WindowEnd 4"
    );

    // Exactly once each, and nothing for the refused ones.
    let last = acs.sessions().len();
    files::assert_reported_once(&acs, "sd-ok", last, WAIT).unwrap_or_else(|e| panic!("{e}"));
    files::assert_reported_once(&acs, "sd-busy", last, WAIT).unwrap_or_else(|e| panic!("{e}"));
    let tcs = transfer_completes(&acs.sessions());
    assert!(
        tcs.iter()
            .all(|t| t.command_key == "sd-ok" || t.command_key == "sd-busy"),
        "{tcs:#?}"
    );
}

// ----------------------------------------------------------------------------------------------
// 6. GetQueuedTransfers, GetAllQueuedTransfers, CancelTransfer.

#[test]
fn queued_transfers_are_listed_and_cancelled_only_before_they_start() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let files = FileServer::start(None, |req| match req.path.as_str() {
        // Holds the response 5 s: the transfer is in progress meanwhile.
        "/slow" => {
            thread::sleep(Duration::from_secs(5));
            Response::new(200).body(vec![7u8; 4096])
        }
        _ => Response::new(200).body(vec![1u8; 2048]),
    });
    let cpe = transfer_cpe(
        "queued",
        &acs.url(),
        None,
        2,
        "timeout = 10\n",
        "config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n",
    );
    hook_script(&cpe, "cfg", "", 0);
    let dl = |key: &str, path: &str, size: u32, delay: u32| -> Call {
        AcsRequest::Download(cwmpd::soap::Download {
            file_size: size,
            delay_seconds: delay,
            target_file_name: format!("{key}.tar.gz"),
            ..download(key, CONFIG_FILE, &files.url(path))
        })
        .into()
    };
    let cancel = |key: &str| -> Call {
        AcsRequest::CancelTransfer {
            command_key: key.into(),
        }
        .into()
    };
    acs.push_script([
        dl("q-1", "/cfg1", 2048, 60),
        dl("q-3", "/cfg3", 2048, 2),
        dl("q-2", "/slow", 4096, 1),
        AcsRequest::GetAllQueuedTransfers.into(),
        AcsRequest::GetQueuedTransfers.into(),
        cancel("q-1"),
        cancel("q-3"),
        AcsRequest::GetAllQueuedTransfers.into(),
        cancel("nope"),
    ]);
    let (daemon, all) = run_until_sessions(&acs, &cpe, 1);
    let s0 = &all[0];
    assert_eq!(s0.exchanges.len(), 9, "{:#?}", s0.exchanges);
    for e in &s0.exchanges[..3] {
        assert!(
            matches!(e.response, Ok(CpeResponse::Download { status: 1, .. })),
            "{e:#?}"
        );
    }
    // Nothing starts during a session: all three are State 1, with what the ACS sent.
    for (i, what) in [(3, "GetAllQueuedTransfers"), (4, "GetQueuedTransfers")] {
        let q = queued(&s0.exchanges[i]);
        let by_key: BTreeMap<&str, &QueuedTransfer> =
            q.iter().map(|q| (q.command_key.as_str(), q)).collect();
        assert_eq!(
            by_key.keys().copied().collect::<Vec<_>>(),
            vec!["q-1", "q-2", "q-3"],
            "{what}: {q:#?}"
        );
        assert!(q.iter().all(|q| q.state == 1), "{what}: {q:#?}");
    }
    // Only AllQueuedTransferStruct (§A.4.1.6) has the transfer's details; QueuedTransferStruct
    // (§A.4.1.5) is CommandKey and State.
    let all_queued = queued(&s0.exchanges[3]);
    let q1 = all_queued
        .iter()
        .find(|q| q.command_key == "q-1")
        .expect("q-1 listed");
    assert_eq!(
        (
            q1.state,
            q1.is_download,
            q1.file_type.as_str(),
            q1.file_size,
            q1.target_file_name.as_str()
        ),
        (1, true, CONFIG_FILE, 2048, "q-1.tar.gz"),
        "{q1:#?}"
    );
    assert_eq!(s0.exchanges[5].response, Ok(CpeResponse::CancelTransfer));
    assert_eq!(s0.exchanges[6].response, Ok(CpeResponse::CancelTransfer));
    let left: Vec<String> = queued(&s0.exchanges[7])
        .into_iter()
        .map(|q| q.command_key)
        .collect();
    assert_eq!(left, vec!["q-2".to_string()], "after CancelTransfer");
    assert_eq!(
        fault_code(&s0.exchanges[8]),
        Some(9003),
        "unknown CommandKey"
    );

    // q-2 is being fetched (the server holds it 5 s): a session now sees it in progress and cannot
    // cancel it.
    let started = poll(Duration::from_secs(10), || {
        files
            .timed()
            .iter()
            .find(|(_, r)| r.path == "/slow")
            .map(|(t, _)| *t)
    })
    .unwrap_or_else(|| panic!("q-2 never fetched\ndaemon: {}", daemon.log()));
    acs.push_script([
        AcsRequest::GetAllQueuedTransfers.into(),
        AcsRequest::GetQueuedTransfers.into(),
        cancel("q-2"),
    ]);
    let is_cancel_q2 = |s: &SessionRecord| {
        s.exchanges.iter().any(|e| {
            matches!(&e.call, Call::Rpc(AcsRequest::CancelTransfer { command_key }) if command_key == "q-2")
        })
    };
    let all = acs
        .wait_for(WAIT, |s| s.iter().any(|s| s.completed && is_cancel_q2(s)))
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let s = all.iter().find(|s| is_cancel_q2(s)).expect("found");
    assert!(
        s.started < started + Duration::from_secs(5)
            && !transfer_completes(std::slice::from_ref(s))
                .iter()
                .any(|t| t.command_key == "q-2"),
        "no session while q-2 was being fetched (session {} started {:?} after the fetch): {}\ndaemon: {}",
        s.index,
        s.started.saturating_duration_since(started),
        summary(&all),
        daemon.log()
    );
    for e in &s.exchanges[..2] {
        let q = queued(e);
        assert_eq!(q.len(), 1, "{e:#?}");
        assert_eq!(
            (q[0].command_key.as_str(), q[0].state),
            ("q-2", 2),
            "{e:#?}"
        );
    }
    assert_eq!(
        fault_code(&s.exchanges[2]),
        Some(9021),
        "{:#?}",
        s.exchanges[2]
    );

    let (s2, tc) = wait_transfer_complete(&acs, "q-2", WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(tc.code, 0, "{tc:#?}\ndaemon: {}", daemon.log());
    assert_transfer_events(&s2, "M Download", "q-2");
    // q-3 was due 2 s after session 0: long past. Cancelled transfers are never fetched nor
    // reported.
    let paths: Vec<String> = files.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/slow".to_string()], "fetched: {paths:?}");
    let keys: Vec<String> = transfer_completes(&acs.sessions())
        .into_iter()
        .map(|t| t.command_key)
        .collect();
    assert_eq!(keys, vec!["q-2".to_string()], "TransferCompletes: {keys:?}");
}

// ----------------------------------------------------------------------------------------------
// 7. AutonomousTransferComplete.

#[test]
fn a_firmware_change_nobody_asked_for_is_reported_once() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("autonomous", &acs.url(), None, 2, "", "");
    set_software_version(&cpe, "1.0");
    let (daemon, all) = run_until_sessions(&acs, &cpe, 1);
    assert_eq!(all[0].param(SWVER), Some("1.0"));
    assert!(!all[0].has_event("10 AUTONOMOUS TRANSFER COMPLETE"));
    let _ = daemon.kill();

    // "A local upgrade": the next start finds another version.
    set_software_version(&cpe, "2.0");
    let n = acs.sessions().len();
    let daemon = cpe.spawn_run();
    let atc_event = |s: &SessionRecord| s.has_event("10 AUTONOMOUS TRANSFER COMPLETE");
    let all = acs
        .wait_for(WAIT, |s| s.iter().any(|s| s.completed && atc_event(s)))
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let s = all
        .iter()
        .find(|s| s.completed && atc_event(s))
        .expect("found");
    assert!(s.index >= n);
    assert_eq!(s.param(SWVER), Some("2.0"));
    let atcs = autonomous(s);
    assert_eq!(atcs.len(), 1, "{:#?}", s.cpe_requests);
    match &atcs[0] {
        CpeRequest::AutonomousTransferComplete {
            is_download,
            file_type,
            fault,
            ..
        } => {
            assert!(*is_download);
            assert_eq!(file_type, FIRMWARE);
            assert_eq!(fault.code, 0);
        }
        r => panic!("{r:?}"),
    }
    let after = s.index;
    acs.wait_for(WAIT, |x| x.iter().any(|x| x.completed && x.index > after))
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let _ = daemon.kill();
    let (_daemon, all, _) = run_next_session(&acs, &cpe);
    let reported: Vec<usize> = all
        .iter()
        .filter(|s| atc_event(s) || !autonomous(s).is_empty())
        .map(|s| s.index)
        .collect();
    assert_eq!(
        reported,
        vec![after],
        "AutonomousTransferComplete in sessions {reported:?}: {}",
        summary(&all)
    );
}

// ----------------------------------------------------------------------------------------------
// 8. RequestDownload.

#[test]
fn request_download_from_the_command_line_reaches_the_acs_once() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = transfer_cpe("request-dl", &acs.url(), None, 3600, "", "");
    let (daemon, _) = run_until_sessions(&acs, &cpe, 1);

    let bad = cpe.cli(&["request-download", "7 Bogus File"]);
    bad.assert_code(2, "a FileType TR-069 does not define");
    let t = Instant::now();
    let out = cpe.cli(&["request-download", CONFIG_FILE, "Version=2"]);
    out.assert_code(0, "request-download");
    assert!(out.stdout.contains("queued"), "{out}");
    let rd_event = |s: &SessionRecord| s.has_event("9 REQUEST DOWNLOAD");
    let all = acs
        .wait_for(Duration::from_secs(10), |s| {
            s.iter().any(|s| s.completed && rd_event(s))
        })
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let s = all.iter().find(|s| rd_event(s)).expect("found");
    let took = s.started.duration_since(t);
    assert!(took < Duration::from_secs(5), "picked up after {took:?}");
    assert_eq!(
        request_downloads(s),
        vec![(
            CONFIG_FILE.to_string(),
            vec![("Version".into(), "2".into())]
        )],
        "{:#?}",
        s.cpe_requests
    );

    // A second request: its own session, and the first is not asked again.
    let first = s.index;
    cpe.cli(&["request-download", WEB_CONTENT])
        .assert_code(0, "second request-download");
    let all = acs
        .wait_for(Duration::from_secs(10), |x| {
            x.iter()
                .any(|x| x.completed && x.index > first && rd_event(x))
        })
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let s = all
        .iter()
        .find(|x| x.index > first && rd_event(x))
        .expect("found");
    assert_eq!(
        request_downloads(s),
        vec![(WEB_CONTENT.to_string(), Vec::new())],
        "{:#?}",
        s.cpe_requests
    );
    let total: usize = acs
        .sessions()
        .iter()
        .map(|s| request_downloads(s).len())
        .sum();
    assert_eq!(total, 2, "{}", summary(&acs.sessions()));
}

// ----------------------------------------------------------------------------------------------
// 9. The kill test.

/// At least 30 kills (about a minute): every kill point at least once, then random ones.
#[test]
fn kill_test_exactly_one_transfer_complete_per_download() {
    kill_test("kill", 30);
}

/// The long variant: `CWMPD_KILLS` kills (default 300).
#[test]
#[ignore]
fn kill_test_long() {
    let kills = files::number_from_env("CWMPD_KILLS", 300);
    kill_test("kill-long", kills);
}

/// The firmware image: 2 MiB, served in 64 KiB chunks 20 ms apart (about 0.7 s).
const FW_SIZE: usize = 2 * 1024 * 1024;
const FW_CHUNK: usize = 64 * 1024;
const FW_PAUSE: Duration = Duration::from_millis(20);
/// `[transfer] retries` of the kill test.
const KILL_RETRIES: usize = 2;
/// Longest a run may take.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// Where a run kills the daemon on purpose (every run also kills it while it is held after the
/// hook: that is the reboot the firmware asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Plan {
    /// Only the reboot after the hook.
    Reboot,
    /// (a) 0–50 ms after the ACS sent the Download.
    BeforeResponse,
    /// (a) the CPE posted its DownloadResponse (so it journalled the Download) and the proxy
    /// keeps it from the ACS, which sends the Download again in a later session: it must not be
    /// queued twice.
    ResponseLost,
    /// (a) as `ResponseLost`, but the ACS does not ask again: the journalled Download must still
    /// be carried out and reported.
    ResponseLostNoRetry,
    /// (b) after the file server sent at least 512 KiB of the image.
    MidTransfer,
    /// (b) every fetch killed mid-transfer until no retry remains: 9017 (spec-5 durability).
    FetchExhausted,
    /// (c) 0–800 ms into the (1 s) hook.
    InHook,
    /// (e) the TransferComplete held by the proxy before the ACS saw it.
    TcUnsent,
    /// (e) the ACS answered the TransferComplete; the proxy keeps the answer from the CPE.
    TcUnanswered,
    /// (f) 1–4 kills at random times, 0–2.5 s after each start.
    Random,
}

const PLANS: [Plan; 10] = [
    Plan::Reboot,
    Plan::BeforeResponse,
    Plan::ResponseLost,
    Plan::ResponseLostNoRetry,
    Plan::MidTransfer,
    Plan::FetchExhausted,
    Plan::InHook,
    Plan::TcUnsent,
    Plan::TcUnanswered,
    Plan::Random,
];

fn kill_test(tag: &str, target: usize) {
    let mut bench = Bench::new(tag);
    eprintln!(
        "kill test: seed {} (set CWMPD_KILL_SEED to replay), target {target} kills",
        bench.seed
    );
    let mut run = 0;
    while bench.kills.len() < target || run < PLANS.len() {
        let plan = if run < PLANS.len() {
            PLANS[run]
        } else {
            // After one of each, mostly random kills, with the fixed points mixed in.
            let i = bench.rng.below(PLANS.len() as u64 * 2) as usize;
            PLANS.get(i).copied().unwrap_or(Plan::Random)
        };
        bench.drive(run, plan);
        run += 1;
    }
    bench.final_checks();
    eprintln!("{}", bench.report());
}

/// Everything one kill test uses.
struct Bench {
    acs: Acs,
    proxy: Proxy,
    fw: SlowServer,
    fw_md5: String,
    cpe: Cpe,
    daemon: Option<Daemon>,
    /// When the running daemon was started.
    life_started: Instant,
    /// The log of every daemon run so far.
    logs: Vec<PathBuf>,
    /// Incremented at each kill; the hook tags its marks with it.
    generation: u32,
    ctl: Arc<Mutex<Ctl>>,
    scripts: usize,
    rng: Rng,
    seed: u64,
    kills: Vec<KillRecord>,
    runs: Vec<RunRecord>,
    started: Instant,
}

struct KillRecord {
    run: usize,
    plan: Plan,
    why: &'static str,
    phase: &'static str,
    /// `NAME.PID.tmp` files the killed daemon left (a write it was in the middle of).
    tmp_left: usize,
}

struct RunRecord {
    key: String,
    plan: Plan,
    /// Index of the session whose TransferComplete the CPE took as acknowledged.
    acked_in: usize,
    code: u32,
    /// TransferCompletes the ACS received for the key (more than one only when the answer to the
    /// earlier ones cannot have reached the CPE).
    sent: usize,
    /// The Download was sent again by the ACS (it never got the DownloadResponse).
    downloads: usize,
    hook_runs: usize,
    fetches: usize,
    missed_plan: bool,
}

/// What the ACS scripts share with the test: which Download to send, and what came back.
#[derive(Default)]
struct Ctl {
    current: Option<String>,
    url_base: String,
    /// When each Download request was sent.
    sent: HashMap<String, Vec<Instant>>,
    /// What the CPE answered to each.
    answers: HashMap<String, Vec<Result<CpeResponse, String>>>,
    /// CommandKeys whose TransferComplete the ACS received.
    tc_seen: HashSet<String>,
    /// CommandKeys whose Download is sent once only, answered or not.
    no_retry: HashSet<String>,
}

impl Bench {
    fn new(tag: &str) -> Bench {
        let seed = seed_from_env("CWMPD_KILL_SEED");
        let acs = Acs::start(AcsOptions::default()).expect("start ACS");
        let proxy = Proxy::start(acs.addr()).expect("start proxy");
        let image: Vec<u8> = (0..FW_SIZE)
            .map(|i| (i.wrapping_mul(31) % 251) as u8)
            .collect();
        let fw_md5 = md5_hex(&image);
        let fw = SlowServer::start(image).expect("start file server");
        // Periodic sessions every second give a restarted daemon prompt occasions to talk to
        // the ACS (and the ACS to send a Download whose response it never got).
        let cpe = transfer_cpe(
            tag,
            &proxy.url("/acs"),
            None,
            1,
            &format!("retries = {KILL_RETRIES}\n"),
            "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = true\n",
        );
        // The firmware "upgrade": marks its start (with the image's MD5: what it applies must be
        // the whole image) and its end, tagged with the daemon generation that started it (from
        // the environment the daemon passes on: a hook started just before a kill may run after
        // it, when a file would already name the next generation).
        hook_script(
            &cpe,
            "fw",
            "g=$KILLTEST_GENERATION\n\
             m=$(md5sum < \"$1\" | cut -d' ' -f1)\n\
             echo \"start $CWMPD_COMMAND_KEY $g $m\" >> {dir}/marks\n\
             sleep 1\n\
             echo \"done $CWMPD_COMMAND_KEY $g\" >> {dir}/marks",
            0,
        );
        let ctl = Arc::new(Mutex::new(Ctl {
            url_base: fw.url(),
            ..Ctl::default()
        }));
        let daemon = cpe.spawn_run_env(&[("KILLTEST_GENERATION", "0")]);
        let mut bench = Bench {
            acs,
            proxy,
            fw,
            fw_md5,
            logs: vec![daemon.log.clone()],
            daemon: Some(daemon),
            life_started: Instant::now(),
            cpe,
            generation: 0,
            ctl,
            scripts: 0,
            rng: Rng(seed),
            seed,
            kills: Vec::new(),
            runs: Vec::new(),
            started: Instant::now(),
        };
        bench.refill_scripts();
        bench
    }

    /// One Download, killed as `plan` says, restarted until it is reported and one more session
    /// went by; then the checks of the run.
    fn drive(&mut self, run: usize, plan: Plan) {
        let key = format!("k{run}");
        let path = format!("/fw/{key}");
        lock(&self.ctl).current = Some(key.clone());
        match plan {
            Plan::TcUnsent => self.proxy.arm(Hold::TcRequest),
            Plan::TcUnanswered => self.proxy.arm(Hold::TcResponse),
            Plan::ResponseLost | Plan::ResponseLostNoRetry => {
                self.proxy.arm(Hold::DownloadResponse)
            }
            _ => self.proxy.arm(Hold::Nothing),
        }
        if plan == Plan::ResponseLostNoRetry {
            lock(&self.ctl).no_retry.insert(key.clone());
        }
        let t0 = Instant::now();
        // Reboot and Random runs have no fixed kill point.
        let mut planned_done = matches!(plan, Plan::Reboot | Plan::Random);
        let a_delay = self.rng.ms(0, 50);
        let mut hook_kill_at: Option<Instant> = None;
        let mut fetch_kills = 0;
        let mut random_left = if plan == Plan::Random {
            1 + self.rng.below(4)
        } else {
            0
        };
        let mut random_at = Instant::now() + self.rng.ms(0, 2500);
        // When the hook's end was seen, when to kill, and how many sessions there were then.
        let mut held: Option<(Instant, Instant, usize)> = None;
        loop {
            thread::sleep(Duration::from_millis(15));
            let now = Instant::now();
            if now.duration_since(t0) > RUN_DEADLINE {
                self.fail(&key, &format!("run {run} ({plan:?}) did not finish"));
            }
            if let Some(d) = self.daemon.as_mut() {
                if !d.alive() {
                    self.fail(&key, "the daemon exited by itself");
                }
            }
            self.refill_scripts();
            let sessions = self.acs.sessions();
            self.note_transfer_completes(&sessions);
            if run_done(&sessions, &key) {
                break;
            }
            let marks = self.marks();
            let g = self.generation;
            let hook_started = marks.iter().any(|m| m.is("start", &key, g));
            let hook_done = marks.iter().any(|m| m.is("done", &key, g));

            // (d) The hook returned 0: the agent holds until "the device reboots".
            if hook_done {
                let (seen, at, n) =
                    *held.get_or_insert_with(|| (now, now + self.rng.ms(300, 800), sessions.len()));
                if now >= at {
                    let during: Vec<&SessionRecord> = sessions
                        .iter()
                        .skip(n)
                        .filter(|s| s.started > seen + Duration::from_millis(200))
                        .collect();
                    if !during.is_empty() {
                        self.fail(
                            &key,
                            &format!(
                                "session(s) {:?} started while the agent was held for the reboot",
                                during.iter().map(|s| s.index).collect::<Vec<_>>()
                            ),
                        );
                    }
                    self.kill(run, plan, "hold", &key);
                    held = None;
                    random_at = Instant::now() + self.rng.ms(0, 2500);
                    continue;
                }
            }
            if !planned_done {
                let fire = match plan {
                    Plan::Reboot | Plan::Random => false,
                    Plan::BeforeResponse => lock(&self.ctl)
                        .sent
                        .get(&key)
                        .and_then(|v| v.first())
                        .is_some_and(|t| now >= *t + a_delay),
                    Plan::MidTransfer | Plan::FetchExhausted => self.fw.fetches().iter().any(|f| {
                        f.path == path
                            && f.state.load(Ordering::SeqCst) == RUNNING
                            && f.sent.load(Ordering::SeqCst) >= 512 * 1024
                    }),
                    Plan::InHook => {
                        if hook_started && !hook_done {
                            let at = *hook_kill_at.get_or_insert_with(|| now + self.rng.ms(0, 800));
                            now >= at
                        } else {
                            false
                        }
                    }
                    Plan::ResponseLost | Plan::ResponseLostNoRetry => {
                        self.proxy.fired() == Some(Hold::DownloadResponse)
                    }
                    Plan::TcUnsent => self.proxy.fired() == Some(Hold::TcRequest),
                    Plan::TcUnanswered => {
                        // Kill only once the ACS has recorded it (its answer is what is lost).
                        self.proxy.fired() == Some(Hold::TcResponse)
                            && sessions.iter().any(|s| has_tc(s, &key))
                    }
                };
                if fire {
                    let why = match plan {
                        Plan::BeforeResponse => "a",
                        Plan::ResponseLost | Plan::ResponseLostNoRetry => "a-lost",
                        Plan::MidTransfer | Plan::FetchExhausted => "b",
                        Plan::InHook => "c",
                        _ => "e",
                    };
                    self.kill(run, plan, why, &key);
                    fetch_kills += 1;
                    planned_done = plan != Plan::FetchExhausted || fetch_kills > KILL_RETRIES;
                    held = None;
                    continue;
                }
            }
            if random_left > 0 && now >= random_at {
                self.kill(run, plan, "f", &key);
                random_left -= 1;
                held = None;
                random_at = Instant::now() + self.rng.ms(0, 2500);
            }
        }
        self.proxy.arm(Hold::Nothing);
        self.check_run(run, plan, &key, planned_done);
    }

    /// SIGKILLs the daemon, checks the store it left, and starts it again.
    fn kill(&mut self, run: usize, plan: Plan, why: &'static str, key: &str) {
        let phase = self.phase(key);
        if let Some(d) = self.daemon.take() {
            let _ = d.kill();
        }
        self.generation += 1;
        // What the ACS and the proxy were handling when it died settles.
        thread::sleep(Duration::from_millis(30));
        let state = self.cpe.dir.path().join("state");
        let tmp_left = match check_state_files(&state) {
            Ok(n) => n,
            Err(e) => self.fail(
                key,
                &format!("after kill {} ({why}): {e}", self.kills.len()),
            ),
        };
        self.kills.push(KillRecord {
            run,
            plan,
            why,
            phase,
            tmp_left,
        });
        let generation = self.generation.to_string();
        let d = self
            .cpe
            .spawn_run_env(&[("KILLTEST_GENERATION", generation.as_str())]);
        self.logs.push(d.log.clone());
        self.daemon = Some(d);
        self.life_started = Instant::now();
    }

    /// What the agent was doing for `key`, as far as the test can see.
    fn phase(&self, key: &str) -> &'static str {
        let marks = self.marks();
        let g = self.generation;
        if marks.iter().any(|m| m.is("done", key, g)) {
            return "held after the hook";
        }
        if marks.iter().any(|m| m.is("start", key, g)) {
            return "in the hook";
        }
        let path = format!("/fw/{key}");
        if self
            .fw
            .fetches()
            .iter()
            .any(|f| f.path == path && f.state.load(Ordering::SeqCst) == RUNNING)
        {
            return "fetching";
        }
        let sessions = self.acs.sessions();
        let live = sessions
            .iter()
            .rev()
            .find(|s| !s.completed && s.started >= self.life_started);
        match live {
            Some(s) if has_tc(s, key) => "in the TransferComplete's session",
            Some(s)
                if s.exchanges.is_empty()
                    && lock(&self.ctl)
                        .sent
                        .get(key)
                        .and_then(|v| v.last())
                        .is_some_and(|t| *t >= s.started) =>
            {
                "Download sent, no DownloadResponse yet"
            }
            Some(_) => "in another session",
            None => "between sessions",
        }
    }

    fn marks(&self) -> Vec<Mark> {
        std::fs::read_to_string(self.cpe.dir.path().join("marks"))
            .unwrap_or_default()
            .lines()
            .filter_map(Mark::parse)
            .collect()
    }

    /// One script per session (the ACS takes the next one at each Inform).
    fn refill_scripts(&mut self) {
        let used = self.acs.sessions().len();
        while self.scripts < used + 64 {
            self.acs.push_script_fn(kill_script(self.ctl.clone()));
            self.scripts += 1;
        }
    }

    fn note_transfer_completes(&self, sessions: &[SessionRecord]) {
        let mut c = lock(&self.ctl);
        for t in transfer_completes(sessions) {
            c.tc_seen.insert(t.command_key);
        }
    }

    /// The invariants of one run.
    fn check_run(&mut self, run: usize, plan: Plan, key: &str, planned_done: bool) {
        let sessions = self.acs.sessions();
        let http = self.acs.http_log();
        // The test ACS keeps 10,000 HTTP entries: past that the resend check below would see
        // nothing.
        assert!(
            http.len() < 10_000,
            "the test ACS's HTTP log is full: run fewer kills per test"
        );
        let tcs: Vec<Tc> = transfer_completes(&sessions)
            .into_iter()
            .filter(|t| t.command_key == key)
            .collect();
        let Some(acked) = tcs
            .iter()
            .find(|t| sessions.get(t.session).is_some_and(|s| s.completed))
            .cloned()
        else {
            self.fail(
                key,
                &format!("run {run} ({plan:?}): no acknowledged TransferComplete"),
            );
        };
        for t in &tcs {
            if t.session > acked.session {
                self.fail(
                    key,
                    &format!(
                        "TransferComplete sent again in session {} after the ACS acknowledged it in session {} (which completed)",
                        t.session, acked.session
                    ),
                );
            }
            if t.session < acked.session {
                // §3.7.1.5: resent only when the answer may not have reached the CPE: it said
                // nothing more in that session (it would have, had it read the answer).
                let after_tc = http
                    .iter()
                    .filter(|h| h.session == Some(t.session))
                    .skip_while(|h| h.note != "TransferComplete")
                    .skip(1)
                    .count();
                if after_tc > 0 {
                    self.fail(
                        key,
                        &format!(
                            "TransferComplete resent after the CPE went on in session {} ({after_tc} more POSTs): the answer was recorded too late or not at all",
                            t.session
                        ),
                    );
                }
            }
            if (t.code, &t.start_time, &t.complete_time)
                != (acked.code, &acked.start_time, &acked.complete_time)
            {
                self.fail(
                    key,
                    &format!("the resent TransferComplete differs: {t:#?} vs {acked:#?}"),
                );
            }
            let s = &sessions[t.session];
            if !s.has_event("7 TRANSFER COMPLETE") || s.command_key("M Download") != Some(key) {
                self.fail(
                    key,
                    &format!(
                        "session {} carries the TransferComplete with events {:?}",
                        s.index, s.inform.events
                    ),
                );
            }
        }
        let path = format!("/fw/{key}");
        let fetches: Vec<Arc<Fetch>> = self
            .fw
            .fetches()
            .into_iter()
            .filter(|f| f.path == path)
            .collect();
        let downloads = lock(&self.ctl).sent.get(key).map_or(0, Vec::len);
        match plan {
            Plan::TcUnanswered if tcs.len() != 2 => self.fail(
                key,
                &format!(
                    "the ACS's answer never reached the CPE, yet the TransferComplete was sent {} time(s) (§3.7.1.5 wants it again)",
                    tcs.len()
                ),
            ),
            Plan::ResponseLost if downloads < 2 => self.fail(
                key,
                "the ACS never sent the Download again after its DownloadResponse was lost",
            ),
            Plan::ResponseLostNoRetry if downloads != 1 => {
                self.fail(key, &format!("the Download was sent {downloads} times"))
            }
            Plan::FetchExhausted if (acked.code, fetches.len()) != (9017, KILL_RETRIES + 1) => {
                self.fail(
                    key,
                    &format!(
                        "every one of the {} fetches was cut, with retries = {KILL_RETRIES}: want 9017 after {} fetches, got {} after {}",
                        KILL_RETRIES + 1,
                        KILL_RETRIES + 1,
                        acked.code,
                        fetches.len()
                    ),
                )
            }
            Plan::TcUnsent if tcs.len() != 1 => self.fail(
                key,
                &format!("{} TransferCompletes after one that never reached the ACS", tcs.len()),
            ),
            _ => {}
        }
        // What the CPE answered to the Download, each time it was asked.
        let answers = lock(&self.ctl)
            .answers
            .get(key)
            .cloned()
            .unwrap_or_default();
        for a in &answers {
            if !matches!(a, Ok(CpeResponse::Download { status: 1, .. })) {
                self.fail(key, &format!("Download answered {a:?}"));
            }
        }
        // The hook: a rebooting apply runs at most once, on the whole image.
        let marks = self.marks();
        let starts: Vec<&Mark> = marks
            .iter()
            .filter(|m| m.what == "start" && m.key == key)
            .collect();
        if starts.len() > 1 {
            self.fail(
                key,
                &format!(
                    "the rebooting firmware hook ran {} times (generations {:?})",
                    starts.len(),
                    starts.iter().map(|m| m.generation).collect::<Vec<_>>()
                ),
            );
        }
        if let Some(m) = starts.iter().find(|m| m.md5 != self.fw_md5) {
            self.fail(
                key,
                &format!(
                    "the hook applied a file with MD5 {} (the image's is {})",
                    m.md5, self.fw_md5
                ),
            );
        }
        // §A.3.3.2: StartTime and CompleteTime known, in order, not in the future.
        let start = files::parse_time(&acked.start_time).unwrap_or(0.0);
        let end = files::parse_time(&acked.complete_time).unwrap_or(0.0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if acked.code == 0 && !(start > 946_684_800.0 && start <= end && end <= now + 2.0) {
            self.fail(key, &format!("times of a successful transfer: {acked:#?}"));
        }
        match acked.code {
            0 => {
                if !fetches
                    .iter()
                    .any(|f| f.state.load(Ordering::SeqCst) == DONE)
                {
                    self.fail(key, "success reported without the image ever fetched whole");
                }
            }
            9017 => {
                if fetches.len() < KILL_RETRIES + 1 {
                    self.fail(
                        key,
                        &format!(
                            "9017 after {} fetch attempt(s), with retries = {KILL_RETRIES}",
                            fetches.len()
                        ),
                    );
                }
            }
            c => self.fail(key, &format!("TransferComplete FaultCode {c}: {acked:#?}")),
        }
        if matches!(
            plan,
            Plan::BeforeResponse
                | Plan::ResponseLost
                | Plan::ResponseLostNoRetry
                | Plan::MidTransfer
                | Plan::FetchExhausted
                | Plan::TcUnsent
                | Plan::TcUnanswered
        ) && !planned_done
        {
            self.fail(key, &format!("the {plan:?} kill point was never reached"));
        }
        // The store: `cwmpd status` reads it while the daemon runs; nothing corrupt anywhere;
        // no temp file of a dead writer (the running daemon cleaned them at its start).
        let out = self.cpe.cli(&["status"]);
        if out.code != Some(0) || out.all().to_lowercase().contains("corrupt") {
            self.fail(key, &format!("cwmpd status: {out}"));
        }
        let state = self.cpe.dir.path().join("state");
        if let Err(e) = check_state_files(&state) {
            self.fail(key, &e);
        }
        let pid = self.daemon.as_ref().map(|d| d.child.id());
        let stale: Vec<String> = list_dir(&state)
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .filter(|n| {
                let writer = n
                    .strip_suffix(".tmp")
                    .and_then(|s| s.rsplit('.').next())
                    .and_then(|p| p.parse::<u32>().ok());
                writer != pid
            })
            .collect();
        if !stale.is_empty() {
            self.fail(key, &format!("temp files of dead writers left: {stale:?}"));
        }
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.to_lowercase().contains("corrupt")) {
                self.fail(key, &format!("{}: {line}", log.display()));
            }
        }
        self.runs.push(RunRecord {
            key: key.to_string(),
            plan,
            acked_in: acked.session,
            code: acked.code,
            sent: tcs.len(),
            downloads,
            hook_runs: starts.len(),
            fetches: fetches.len(),
            missed_plan: !planned_done,
        });
    }

    /// After the last run: no TransferComplete of any run came back later.
    fn final_checks(&mut self) {
        let sessions = self.acs.sessions();
        let tcs = transfer_completes(&sessions);
        let late: Vec<&Tc> = tcs
            .iter()
            .filter(|t| {
                self.runs
                    .iter()
                    .any(|r| r.key == t.command_key && t.session > r.acked_in)
            })
            .collect();
        if !late.is_empty() {
            self.fail(
                "all",
                &format!("TransferCompletes after their acknowledgement: {late:#?}"),
            );
        }
        let unknown: Vec<&Tc> = tcs
            .iter()
            .filter(|t| !self.runs.iter().any(|r| r.key == t.command_key))
            .collect();
        if !unknown.is_empty() {
            self.fail(
                "all",
                &format!("TransferCompletes nobody asked for: {unknown:#?}"),
            );
        }
    }

    fn report(&self) -> String {
        let mut why: BTreeMap<&str, usize> = BTreeMap::new();
        let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &self.kills {
            *why.entry(k.why).or_default() += 1;
            *phases.entry(k.phase).or_default() += 1;
        }
        let mut codes: BTreeMap<u32, usize> = BTreeMap::new();
        for r in &self.runs {
            *codes.entry(r.code).or_default() += 1;
        }
        let resent = self.runs.iter().filter(|r| r.sent > 1).count();
        let redownloads = self.runs.iter().filter(|r| r.downloads > 1).count();
        let no_hook = self
            .runs
            .iter()
            .filter(|r| r.code == 0 && r.hook_runs == 0)
            .count();
        let missed = self.runs.iter().filter(|r| r.missed_plan).count();
        let torn: usize = self.kills.iter().map(|k| k.tmp_left).sum();
        let transfer_dir = list_dir(&self.cpe.dir.path().join("transfer"));
        let mut per_plan: BTreeMap<String, usize> = BTreeMap::new();
        for r in &self.runs {
            *per_plan.entry(format!("{:?}", r.plan)).or_default() += 1;
        }
        let fetches: usize = self.runs.iter().map(|r| r.fetches).sum();
        format!(
            "kill test: {} kills over {} runs in {:.1} s (seed {}), all invariants held\n\
             \x20 kills by point: {why:?} (a 0-50 ms after the Download was sent, a-lost DownloadResponse posted but kept from the ACS, b mid-transfer, c in the hook, hold = the reboot after the hook, e TransferComplete unsent/unanswered, f random)\n\
             \x20 kills by observed phase: {phases:?}\n\
             \x20 runs by plan: {per_plan:?}\n\
             \x20 TransferComplete acknowledged exactly once per CommandKey in all {} runs; FaultCodes {codes:?}\n\
             \x20 resent because the ACS's answer was lost (at-least-once, §3.7.1.5): {resent} run(s)\n\
             \x20 Download resent by the ACS (no DownloadResponse) and not queued twice: {redownloads} run(s)\n\
             \x20 image fetches: {fetches}; success with the hook never started (killed between the apply mark and the hook): {no_hook}; runs whose plan point was not reached: {missed}\n\
             \x20 temp files left by a kill mid-write (cleaned at the next start): {torn}; corrupt state files: 0\n\
             \x20 transfer dir at the end: {} file(s) {:?}",
            self.kills.len(),
            self.runs.len(),
            self.started.elapsed().as_secs_f64(),
            self.seed,
            self.runs.len(),
            transfer_dir.len(),
            transfer_dir.iter().take(6).collect::<Vec<_>>(),
        )
    }

    /// Panics with everything needed to understand the failure.
    fn fail(&mut self, key: &str, what: &str) -> ! {
        let sessions = self.acs.sessions();
        let logs = log_tails(&self.logs, 3, 60);
        let kills: Vec<String> = self
            .kills
            .iter()
            .rev()
            .take(10)
            .map(|k| format!("run {} {:?} {} ({})", k.run, k.plan, k.why, k.phase))
            .collect();
        let marks = std::fs::read_to_string(self.cpe.dir.path().join("marks")).unwrap_or_default();
        panic!(
            "kill test, key {key}: {what}\nseed {} (CWMPD_KILL_SEED), {} kills so far; last kills (newest first): {kills:#?}\nhook marks:\n{marks}\nsessions:\n{}\nstate dir: {:?}\ndaemon logs:\n{}",
            self.seed,
            self.kills.len(),
            summary(&sessions[sessions.len().saturating_sub(25)..]),
            list_dir(&self.cpe.dir.path().join("state")),
            logs.join("\n")
        );
    }
}

/// Whether the ACS acknowledged a TransferComplete for `key` in a session that completed, and a
/// later session without it completed too.
fn run_done(sessions: &[SessionRecord], key: &str) -> bool {
    let Some(acked) = sessions.iter().find(|s| s.completed && has_tc(s, key)) else {
        return false;
    };
    sessions
        .iter()
        .any(|s| s.index > acked.index && s.completed && !has_tc(s, key))
}

fn has_tc(s: &SessionRecord, key: &str) -> bool {
    s.cpe_requests.iter().any(
        |(_, r)| matches!(r, CpeRequest::TransferComplete { command_key, .. } if command_key == key),
    )
}

/// The ACS side of the kill test, one per session: send the current Download unless the CPE
/// answered it or reported it already (an ACS retries a request whose response it never got).
fn kill_script(ctl: Arc<Mutex<Ctl>>) -> impl FnMut(&Turn<'_>) -> Option<Call> + Send + 'static {
    move |turn: &Turn<'_>| {
        let mut c = lock(&ctl);
        for (_, r) in &turn.session.cpe_requests {
            if let CpeRequest::TransferComplete { command_key, .. } = r {
                c.tc_seen.insert(command_key.clone());
            }
        }
        if let Some(last) = turn.last {
            if let Call::Rpc(AcsRequest::Download(d)) = &last.call {
                c.answers
                    .entry(d.command_key.clone())
                    .or_default()
                    .push(last.response.clone());
            }
            return None;
        }
        let key = c.current.clone()?;
        if c.answers.contains_key(&key)
            || c.tc_seen.contains(&key)
            || (c.no_retry.contains(&key) && c.sent.contains_key(&key))
        {
            return None;
        }
        c.sent.entry(key.clone()).or_default().push(Instant::now());
        let url = format!("{}/fw/{key}", c.url_base);
        Some(
            AcsRequest::Download(cwmpd::soap::Download {
                file_size: FW_SIZE as u32,
                target_file_name: "firmware.bin".into(),
                ..download(&key, FIRMWARE, &url)
            })
            .into(),
        )
    }
}

/// A line the firmware hook wrote: `start KEY GEN MD5` or `done KEY GEN`.
#[derive(Debug)]
struct Mark {
    what: String,
    key: String,
    generation: u32,
    md5: String,
}

impl Mark {
    fn parse(line: &str) -> Option<Mark> {
        let mut w = line.split_whitespace();
        Some(Mark {
            what: w.next()?.to_string(),
            key: w.next()?.to_string(),
            generation: w.next()?.parse().ok()?,
            md5: w.next().unwrap_or_default().to_string(),
        })
    }

    fn is(&self, what: &str, key: &str, generation: u32) -> bool {
        self.what == what && self.key == key && self.generation == generation
    }
}

// ----------------------------------------------------------------------------------------------
// The slow file server of the kill test: streams the image in chunks and shows its progress.

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const CUT: u8 = 2;

/// One GET and how far it got.
struct Fetch {
    path: String,
    sent: AtomicUsize,
    state: AtomicU8,
}

struct SlowServer {
    addr: SocketAddr,
    fetches: Arc<Mutex<Vec<Arc<Fetch>>>>,
    stop: Arc<AtomicBool>,
}

impl SlowServer {
    /// Serves `image` at every path under `/fw/`, 404 elsewhere.
    fn start(image: Vec<u8>) -> io::Result<SlowServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let fetches: Arc<Mutex<Vec<Arc<Fetch>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let image = Arc::new(image);
        let (f, s) = (fetches.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (f, image) = (f.clone(), image.clone());
                thread::spawn(move || {
                    let _ = serve_slow(conn, &image, &f);
                });
            }
        });
        Ok(SlowServer {
            addr,
            fetches,
            stop,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn fetches(&self) -> Vec<Arc<Fetch>> {
        lock(&self.fetches).clone()
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve_slow(
    mut conn: TcpStream,
    image: &[u8],
    fetches: &Mutex<Vec<Arc<Fetch>>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 16 * 1024 {
            return Ok(());
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    if method != "GET" || !path.starts_with("/fw/") {
        conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let fetch = Arc::new(Fetch {
        path,
        sent: AtomicUsize::new(0),
        state: AtomicU8::new(RUNNING),
    });
    lock(fetches).push(fetch.clone());
    let result = (|| -> io::Result<()> {
        conn.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                image.len()
            )
            .as_bytes(),
        )?;
        for chunk in image.chunks(FW_CHUNK) {
            conn.write_all(chunk)?;
            conn.flush()?;
            fetch.sent.fetch_add(chunk.len(), Ordering::SeqCst);
            thread::sleep(FW_PAUSE);
        }
        Ok(())
    })();
    fetch
        .state
        .store(if result.is_ok() { DONE } else { CUT }, Ordering::SeqCst);
    let _ = conn.shutdown(Shutdown::Write);
    result
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ----------------------------------------------------------------------------------------------
// The proxy between the CPE and the ACS: it can hold back a TransferComplete before the ACS sees
// it, or the ACS's answer to it, so that the kill lands exactly there.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Nothing,
    /// The next TransferComplete is not forwarded.
    TcRequest,
    /// The next TransferComplete is forwarded; what the ACS answers on that connection is not.
    TcResponse,
    /// The next DownloadResponse is not forwarded.
    DownloadResponse,
}

struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: SocketAddr,
    armed: Mutex<Hold>,
    fired: Mutex<Option<Hold>>,
    stop: AtomicBool,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            upstream,
            armed: Mutex::new(Hold::Nothing),
            fired: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let sh = sh.clone();
                thread::spawn(move || {
                    let _ = proxy_connection(conn, &sh);
                });
            }
        });
        Ok(Proxy { addr, shared })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Holds back the next TransferComplete (or its answer); `Hold::Nothing` disarms.
    fn arm(&self, hold: Hold) {
        *lock(&self.shared.armed) = hold;
        *lock(&self.shared.fired) = None;
    }

    /// What was held back since the last `arm`.
    fn fired(&self) -> Option<Hold> {
        *lock(&self.shared.fired)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn proxy_connection(client: TcpStream, sh: &ProxyShared) -> io::Result<()> {
    let upstream = TcpStream::connect(sh.upstream)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let block = Arc::new(AtomicBool::new(false));
    // ACS → CPE: copied as it comes, unless blocked.
    {
        let mut from = upstream.try_clone()?;
        let mut to = client.try_clone()?;
        let block = block.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !block.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    // CPE → ACS: one whole request at a time, so a TransferComplete is recognised before any of
    // it is forwarded.
    let mut from = client;
    let mut to = upstream;
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut from, &mut buf)? {
        let mut armed = lock(&sh.armed);
        let hit = match *armed {
            Hold::Nothing => false,
            Hold::TcRequest | Hold::TcResponse => {
                has_element(&req, "TransferComplete")
                    && !has_element(&req, "AutonomousTransferComplete")
            }
            Hold::DownloadResponse => has_element(&req, "DownloadResponse"),
        };
        if hit {
            let hold = std::mem::replace(&mut *armed, Hold::Nothing);
            *lock(&sh.fired) = Some(hold);
            drop(armed);
            if hold == Hold::TcResponse {
                block.store(true, Ordering::SeqCst);
            } else {
                // Swallowed: wait for the CPE to die.
                let mut sink = [0u8; 4096];
                while matches!(from.read(&mut sink), Ok(n) if n > 0) {}
                let _ = to.shutdown(Shutdown::Both);
                return Ok(());
            }
        } else {
            drop(armed);
        }
        to.write_all(&req)?;
    }
    let _ = to.shutdown(Shutdown::Write);
    Ok(())
}

/// One whole request (head and Content-Length body) as bytes; `None` at the end of the stream.
/// A chunked request is refused (the CPE sends Content-Length).
fn read_request(from: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = from.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return Err(io::Error::other(
            "chunked request: the proxy cannot frame it",
        ));
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if len > 8 * 1024 * 1024 {
        return Err(io::Error::other("request body too large"));
    }
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 16 * 1024];
        let n = from.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf.drain(..head_end + len).collect()))
}

/// Whether a SOAP message has the element `name` (with a namespace prefix or without, with
/// attributes or without): `:TransferComplete>` does not match `AutonomousTransferComplete`.
fn has_element(req: &[u8], name: &str) -> bool {
    [":", "<"].iter().any(|before| {
        [">", " ", "/"].iter().any(|after| {
            let needle = format!("{before}{name}{after}");
            find(req, needle.as_bytes()).is_some()
        })
    })
}

// ----------------------------------------------------------------------------------------------
// Helpers.

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest as _, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts the daemon of `cpe` and waits for `n` completed sessions; returns the daemon and the
/// sessions.
fn run_until_sessions(acs: &Acs, cpe: &Cpe, n: usize) -> (Daemon, Vec<SessionRecord>) {
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_sessions(n, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    (daemon, all)
}

/// Starts the daemon of `cpe` (again: the last one was killed) and waits for the next session
/// to complete; returns the daemon, every session and the index of the new one.
fn run_next_session(acs: &Acs, cpe: &Cpe) -> (Daemon, Vec<SessionRecord>, usize) {
    let n = acs.sessions().len();
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_for(WAIT, |s| s.len() > n && s[n].completed)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    (daemon, all, n)
}

/// Waits for the hook `name` to run, then asserts the agent holds (§A.3.2.10, spec-5: the device
/// is going down): no session for `hold`, although the periodic interval is shorter.
fn assert_hook_then_held(acs: &Acs, cpe: &Cpe, daemon: &Daemon, name: &str, hold: Duration) {
    poll(WAIT, || (!hook_runs(cpe, name).is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("the {name} hook never ran\ndaemon: {}", daemon.log()));
    let n = acs.sessions().len();
    thread::sleep(hold);
    assert_eq!(
        acs.sessions().len(),
        n,
        "a session while held after the {name} hook: {}\ndaemon: {}",
        summary(&acs.sessions()),
        daemon.log()
    );
}

fn queued(e: &Exchange) -> Vec<QueuedTransfer> {
    match &e.response {
        Ok(CpeResponse::GetQueuedTransfers { list })
        | Ok(CpeResponse::GetAllQueuedTransfers { list }) => list.clone(),
        r => panic!("{} answered {r:?}", e.call.method()),
    }
}

fn schedule_download(
    key: &str,
    file_type: &str,
    url: &str,
    windows: &[(u32, u32, &str, i32)],
) -> ScheduleDownload {
    ScheduleDownload {
        command_key: key.into(),
        file_type: file_type.into(),
        url: url.into(),
        time_windows: windows
            .iter()
            .map(|&(start, end, mode, max_retries)| TimeWindow {
                window_start: start,
                window_end: end,
                window_mode: mode.into(),
                user_message: String::new(),
                max_retries,
            })
            .collect(),
        ..ScheduleDownload::default()
    }
}

fn autonomous(s: &SessionRecord) -> Vec<CpeRequest> {
    s.cpe_requests
        .iter()
        .filter(|(_, r)| matches!(r, CpeRequest::AutonomousTransferComplete { .. }))
        .map(|(_, r)| r.clone())
        .collect()
}

fn request_downloads(s: &SessionRecord) -> Vec<(String, Vec<(String, String)>)> {
    s.cpe_requests
        .iter()
        .filter_map(|(_, r)| match r {
            CpeRequest::RequestDownload { file_type, args } => {
                Some((file_type.clone(), args.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Rewrites `[device] software_version` in the CPE's config.
fn set_software_version(cpe: &Cpe, version: &str) {
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("software_version") {
                format!("software_version = {version:?}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(
        out.iter().any(|l| l.contains(&format!("{version:?}"))),
        "no software_version in the config"
    );
    std::fs::write(&cpe.cfg, out.join("\n") + "\n").expect("write config");
}

/// One line per session: index, completed, events, CPE requests, ACS requests.
fn summary(sessions: &[SessionRecord]) -> String {
    let base = sessions.first().map(|s| s.started);
    sessions
        .iter()
        .map(|s| {
            let (events, reqs, calls) = session_calls(s);
            format!(
                "  #{} +{:.2}s {} events {:?} cpe {:?} acs {:?}{}",
                s.index,
                base.map_or(0.0, |b| s.started.duration_since(b).as_secs_f64()),
                if s.completed { "completed" } else { "cut" },
                events,
                reqs,
                calls,
                if s.errors.is_empty() {
                    String::new()
                } else {
                    format!(" errors {:?}", s.errors)
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
