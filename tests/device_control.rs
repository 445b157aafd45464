//! Device control and durability, end to end: the real `cwmpd` binary against the test ACS
//! (`tests/support/acs.rs`), with hook scripts in the CPE's directory (`tests/support/files.rs`)
//! standing in for the OS actions, and "reboot" being the test killing and restarting the daemon.
//! The TR-069 Amendment 6 sections it holds the agent to:
//!
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

use support::{acs, cpe, files, kill, tls};

use cpe::*;
use files::{
    assert_times, assert_transfer_events, download, expected_methods, hook_runs, hook_script,
    rpc_methods, summary, transfer_completes, transfer_cpe, wait_transfer_complete, FileServer,
    TRANSFER_RPCS,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use acs::{Acs, AcsOptions, Call, Exchange, SessionRecord, Turn};
use cwmpd::cwmp::value::BaseType;
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
// 1. Reboot: in memory, `tests/sessions` case `reboot_hold` (the session ends first, the hook runs
// once, the agent holds, the next start reports `1 BOOT` + `M Reboot` once).

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
// 9. The kill test (the harness: support::kill).

/// At least 30 kills (about a minute): every kill point at least once, then random ones.
#[test]
fn kill_test_exactly_one_transfer_complete_per_download() {
    kill::kill_test("kill", 30);
}

/// The long variant: `CWMPD_KILLS` kills (default 300).
#[test]
#[ignore]
fn kill_test_long() {
    let kills = files::number_from_env("CWMPD_KILLS", 300);
    kill::kill_test("kill-long", kills);
}

// ----------------------------------------------------------------------------------------------
// Helpers.

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// Waits for the hook `name` to run, then asserts the agent holds (§A.3.2.10: the device
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
