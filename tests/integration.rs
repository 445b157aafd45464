//! End-to-end tests: the real `cwmpd` binary against the test ACS (`tests/support/acs.rs`) over
//! HTTP and HTTPS (a CA → leaf chain from `tests/support/tls.rs`), with Digest authentication
//! bound to the TCP connection and a mandatory session cookie, as GenieACS does.
//!
//! What is covered, with the TR-069 Amendment 6 section each part checks:
//! - the Inform (§3.7.1.1, §A.3.3.1): events, DeviceId, forced parameters, RetryCount,
//!   SupportedCWMPVersions; `0 BOOTSTRAP` only on first contact (Table 7);
//! - a whole session (§3.7.2) with GPN, GPV, SPV (good and faulty: §A.3.2.1 all-or-nothing with
//!   the per-parameter fault list), GPA/SPA, AddObject/DeleteObject (§A.3.2.6: instance numbers
//!   never reused, also across restarts), an unknown RPC (9000);
//! - TLS with an unknown CA (§3.3) failing with a one-line reason;
//! - events kept across a SIGKILL until an InformResponse arrives (§3.7.1.5, Table 7);
//! - ScheduleInform (§A.4.1.4) before and across a restart;
//! - CWMP version negotiation (`cwmp-1-4.xsd` header comments; fallback for old ACSes);
//! - an ACS moving the CPE to another ACS by SPV of ManagementServer.URL (`0 BOOTSTRAP` again),
//!   with Basic over TLS at the first and Digest SHA-256 at the second;
//! - the CLI: get, set (validated like SPV), status, check (exit codes 0/1/2).
//!
//! The timing decisions (periodic phase, retry backoff, the Retry-After floor, ScheduleInform's
//! delay) are proven in memory by `tests/sessions/`.
//!
//! Every test has its own temporary directory, config file and ACS; every wait has a deadline;
//! child processes are killed on drop.

use support::{acs, cpe, tls};

use cpe::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use acs::{Acs, AcsOptions, Call, Cookie, Reject, SessionRecord, Turn};
use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::version::CwmpNs;
use cwmpd::http::auth::Algorithm;
use cwmpd::soap::{AcsRequest, CpeResponse};

/// An ACS URL nobody answers: port 1 is privileged, so no test can listen there.
const CLOSED_URL: &str = "http://127.0.0.1:1/acs";

const MS: &str = "Device.ManagementServer.";
const PII: &str = "Device.ManagementServer.PeriodicInformInterval";
const PIE: &str = "Device.ManagementServer.PeriodicInformEnable";
const PKEY: &str = "Device.ManagementServer.ParameterKey";
const SWVER: &str = "Device.DeviceInfo.SoftwareVersion";
const UPTIME: &str = "Device.DeviceInfo.UpTime";
const INFORM_PARAM: &str = "Device.ManagementServer.InformParameter.";

// ----------------------------------------------------------------------------------------------
// 1. HTTP: the first Inform.

#[test]
fn http_inform_carries_bootstrap_boot_and_forced_parameters() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::new("http-inform", &acs.url(), None);

    let s = inform_and_wait(&acs, &cpe, "first inform", 1);
    let s = &s[0];
    assert!(s.has_event("0 BOOTSTRAP"), "events {:?}", s.event_codes());
    assert!(s.has_event("1 BOOT"), "events {:?}", s.event_codes());
    let d = &s.inform.device_id;
    assert_eq!(
        (
            d.manufacturer.as_str(),
            d.oui.as_str(),
            d.product_class.as_str(),
            d.serial_number.as_str()
        ),
        ("cwmpd-it", "00D0F8", "ItRouter", SERIAL)
    );
    assert_eq!(s.inform.retry_count, 0);
    assert_eq!(s.inform.max_envelopes, 1);
    assert!(
        s.inform.current_time.len() >= 20 && s.inform.current_time.contains('T'),
        "CurrentTime {:?}",
        s.inform.current_time
    );
    // §A.4.1 / cwmp-1-4.xsd: 1.4 is offered in the cwmp-1-2 namespace with SupportedCWMPVersions.
    assert_eq!(s.ns, CwmpNs::V1_2);
    let offered = s.header.supported_versions.clone().unwrap_or_default();
    assert!(offered.contains("1.4"), "SupportedCWMPVersions {offered:?}");
    // Forced Inform parameters (TR-181 forcedInform).
    assert_eq!(s.param(SWVER), Some("9.8.7"), "{:#?}", s.inform.parameters);
    assert!(s.param(PKEY).is_some(), "{:#?}", s.inform.parameters);
    assert!(
        s.param("Device.ManagementServer.ConnectionRequestURL")
            .is_some(),
        "{:#?}",
        s.inform.parameters
    );
    assert!(s.param("Device.DeviceInfo.HardwareVersion").is_some());
    assert!(s.param("Device.DeviceInfo.ProvisioningCode").is_some());

    let out = cpe.cli(&["inform", "--event", "2 PERIODIC"]);
    out.assert_code(0, "second inform");
    let all = acs
        .wait_sessions(2, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
    let s = &all[1];
    assert!(!s.has_event("0 BOOTSTRAP"), "events {:?}", s.event_codes());
    assert!(s.has_event("2 PERIODIC"), "events {:?}", s.event_codes());
    assert_eq!(s.inform.retry_count, 0);
}

#[test]
fn inform_with_nothing_pending_carries_2_periodic() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::new("inform-nothing", &acs.url(), None);
    let all = inform_and_wait(&acs, &cpe, "first inform", 1);
    assert!(all[0].has_event("1 BOOT"), "{:?}", all[0].event_codes());
    // Nothing is pending now (same boot, BOOTSTRAP acknowledged): an Inform still carries an
    // event (§3.7.1.5), the README's choice for a local check-in.
    let out = cpe.cli(&["status"]);
    assert!(out.stdout.contains("pending events: none"), "{out}");
    let all = inform_and_wait(&acs, &cpe, "inform with nothing pending", 2);
    assert_eq!(all[1].event_codes(), ["2 PERIODIC"]);
    // Given events are sent as they are, without a PERIODIC beside them.
    let all = {
        let out = cpe.cli(&["inform", "--event", "6 CONNECTION REQUEST"]);
        out.assert_code(0, "inform --event");
        acs.wait_sessions(3, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{out}"))
    };
    assert_eq!(all[2].event_codes(), ["6 CONNECTION REQUEST"]);
}

// ----------------------------------------------------------------------------------------------
// 2. HTTPS, Digest bound to the connection, mandatory cookie, a whole session.

#[test]
fn https_digest_cookie_full_session() {
    let pki = tls::Pki::new();
    let acs = Acs::start(
        AcsOptions::default()
            .tls(pki.server_tls())
            .digest(USER, PASS)
            .cookie(Cookie::Session),
    )
    .expect("start ACS");
    let cpe = Cpe::new("https-session", &acs.url(), Some(&pki.ca_file));
    acs.push_script_fn(full_session_script());

    let all = inform_and_wait(&acs, &cpe, "inform", 1);
    let s = &all[0];
    assert!(s.errors.is_empty(), "protocol errors: {:#?}", s.errors);
    assert_eq!(s.user.as_deref(), Some(USER));
    assert_eq!(s.exchanges.len(), 19, "{:#?}", s.exchanges);
    for e in &s.exchanges {
        assert_eq!(
            e.echoed_id.as_deref(),
            Some(e.id.as_str()),
            "cwmp:ID of {e:?}"
        );
        assert_eq!(e.ns, Some(CwmpNs::V1_2), "namespace of {e:?}");
    }
    let ex = |i: usize| &s.exchanges[i];

    // HTTP facts: a Digest challenge was answered, the cookie came back on every later POST,
    // and the whole session used one TCP connection (§3.4.1, GenieACS's nonce binding).
    let http = acs.http_log();
    assert!(http.iter().any(|h| h.status == 401), "{http:#?}");
    assert!(http.iter().all(|h| h.status != 400), "{http:#?}");
    let cookie = s.cookie.clone().expect("cookie set");
    let posts: Vec<_> = http.iter().filter(|h| h.session == Some(s.index)).collect();
    assert_eq!(
        posts.len(),
        1 + 1 + 19,
        "Inform, empty POST, 19 responses: {posts:#?}"
    );
    for h in posts.iter().filter(|h| h.note != "Inform") {
        assert!(
            h.cookie.as_deref().is_some_and(|c| c.contains(&cookie)),
            "POST without the cookie: {h:?}"
        );
        assert_eq!(h.auth_scheme.as_deref(), Some("Digest"), "{h:?}");
    }
    let conns: std::collections::BTreeSet<u64> = posts.iter().map(|h| h.conn).collect();
    assert_eq!(conns.len(), 1, "one TCP connection per session: {posts:#?}");

    // GetRPCMethods lists the required methods (Table 5).
    match &ex(0).response {
        Ok(CpeResponse::GetRpcMethods { methods }) => {
            for m in [
                "GetParameterNames",
                "SetParameterValues",
                "AddObject",
                "DeleteObject",
            ] {
                assert!(
                    methods.iter().any(|x| x == m),
                    "{m} missing from {methods:?}"
                );
            }
        }
        r => panic!("GetRPCMethods: {r:?}"),
    }

    // GPN NextLevel=true: only the direct children of the object (§A.3.2.3).
    let level1 = gpn(ex(1));
    assert!(
        has_name(&level1, PII, Some(true)),
        "PeriodicInformInterval writable: {level1:#?}"
    );
    assert!(has_name(&level1, INFORM_PARAM, None), "{level1:#?}");
    for p in &level1 {
        let rest = p
            .name
            .strip_prefix(MS)
            .unwrap_or_else(|| panic!("{p:?} not under {MS}"));
        let rest = rest.strip_suffix('.').unwrap_or(rest);
        assert!(
            !rest.is_empty() && !rest.contains('.'),
            "not a direct child: {p:?}"
        );
    }
    // GPN NextLevel=false: the whole subtree, a superset of the next level.
    let subtree = gpn(ex(2));
    assert!(subtree.len() > level1.len(), "{subtree:#?}");
    for p in &level1 {
        assert!(
            has_name(&subtree, &p.name, Some(p.writable)),
            "{p:?} missing"
        );
    }
    assert!(
        subtree.iter().all(|p| p.name.starts_with(MS)),
        "{subtree:#?}"
    );
    // GPN on a full parameter path, NextLevel=false: just that parameter.
    let one = gpn(ex(3));
    assert_eq!(one.len(), 1, "{one:#?}");
    assert!(has_name(&one, PII, Some(true)));
    // GPN on an unknown path: 9005.
    assert_eq!(fault_code(ex(4)), Some(9005), "{:?}", ex(4));

    // GPV: a full and a partial path in one request.
    let values = gpv(ex(5));
    assert_eq!(value(&values, PII), Some(("3600", BaseType::UnsignedInt)));
    assert_eq!(value(&values, SWVER).map(|v| v.0), Some("9.8.7"));
    assert!(
        values
            .iter()
            .filter(|p| p.name.starts_with("Device.DeviceInfo."))
            .count()
            >= 3,
        "{values:#?}"
    );
    let has_uptime = values.iter().any(|p| p.name == UPTIME);

    // SPV good: status 0, ParameterKey updated, the value reads back.
    assert_eq!(
        ex(6).response,
        Ok(CpeResponse::SetParameterValues { status: 0 })
    );
    let v = gpv(ex(7));
    assert_eq!(value(&v, PII).map(|v| v.0), Some("1800"));
    assert_eq!(value(&v, PKEY).map(|v| v.0), Some("k1"));
    assert_eq!(value(&v, PIE).map(|v| v.0), Some("true"));

    // SPV faulty: 9003 with one entry per bad parameter, nothing applied, key unchanged.
    let f = ex(8)
        .fault()
        .unwrap_or_else(|| panic!("faulty SPV: {:?}", ex(8)));
    assert_eq!(f.code(), 9003, "{f:?}");
    let mut list: Vec<(String, u32)> = f
        .param_faults()
        .iter()
        .map(|p| (p.name.clone(), p.fault.code()))
        .collect();
    list.sort();
    assert_eq!(
        list,
        vec![
            (SWVER.to_string(), 9008),
            ("Device.ManagementServer.NoSuchParameter".to_string(), 9005),
            (PII.to_string(), 9007),
        ]
    );
    let v = gpv(ex(9));
    assert_eq!(value(&v, PII).map(|v| v.0), Some("1800"));
    assert_eq!(value(&v, PKEY).map(|v| v.0), Some("k1"));
    assert_eq!(
        value(&v, PIE).map(|v| v.0),
        Some("true"),
        "a valid part was applied"
    );

    // SPA / GPA.
    assert_eq!(ex(10).response, Ok(CpeResponse::SetParameterAttributes));
    match &ex(11).response {
        Ok(CpeResponse::GetParameterAttributes { list }) => {
            assert_eq!(list.len(), 1, "{list:?}");
            assert_eq!((list[0].name.as_str(), list[0].notification), (PII, 2));
        }
        r => panic!("GPA: {r:?}"),
    }
    // Active notification on UpTime (activeNotify="canDeny" in TR-181) is refused: 9009.
    if has_uptime {
        assert_eq!(fault_code(ex(12)), Some(9009), "{:?}", ex(12));
    } else {
        assert_eq!(fault_code(ex(12)), Some(9005), "{:?}", ex(12));
    }

    // AddObject twice: increasing instance numbers; DeleteObject removes one.
    let n1 = instance(ex(13));
    let n2 = instance(ex(14));
    assert!(n1 >= 1 && n2 > n1, "instances {n1}, {n2}");
    let table = gpn(ex(15));
    assert!(
        has_name(&table, &format!("{INFORM_PARAM}{n1}."), Some(true)),
        "{table:#?}"
    );
    assert!(
        has_name(&table, &format!("{INFORM_PARAM}{n2}."), Some(true)),
        "{table:#?}"
    );
    assert!(
        matches!(
            ex(16).response,
            Ok(CpeResponse::DeleteObject { status: 0 | 1 })
        ),
        "{:?}",
        ex(16)
    );
    let table = gpn(ex(17));
    assert!(
        has_name(&table, &format!("{INFORM_PARAM}{n1}."), None),
        "{table:#?}"
    );
    assert!(
        !has_name(&table, &format!("{INFORM_PARAM}{n2}."), None),
        "{table:#?}"
    );

    // An RPC the CPE does not know: 9000.
    assert_eq!(fault_code(ex(18)), Some(9000), "{:?}", ex(18));

    // The value set by the ACS reads back through the CLI too.
    let out = cpe.cli(&["get", PII]);
    out.assert_code(0, "get");
    assert!(out.stdout.contains("1800"), "{out}");

    // A restart of the binary: the instance numbers are never reused (§A.3.2.6), and the Inform
    // carries the ParameterKey of the last successful change.
    acs.push_script([
        AcsRequest::AddObject {
            object_name: INFORM_PARAM.into(),
            parameter_key: "k6".into(),
        },
        AcsRequest::GetParameterNames {
            path: INFORM_PARAM.into(),
            next_level: true,
        },
    ]);
    let all = inform_and_wait(&acs, &cpe, "second inform", 2);
    let s = &all[1];
    assert_eq!(s.param(PKEY), Some("k5"), "{:#?}", s.inform.parameters);
    assert!(!s.has_event("0 BOOTSTRAP"), "{:?}", s.event_codes());
    let n3 = instance(&s.exchanges[0]);
    assert!(n3 > n2, "instance {n3} after {n2} was deleted: reused");
    let table = gpn(&s.exchanges[1]);
    assert!(
        has_name(&table, &format!("{INFORM_PARAM}{n1}."), None),
        "{table:#?}"
    );
    assert!(
        has_name(&table, &format!("{INFORM_PARAM}{n3}."), None),
        "{table:#?}"
    );
    assert!(
        !has_name(&table, &format!("{INFORM_PARAM}{n2}."), None),
        "{table:#?}"
    );
}

/// The script of the whole session; the step number is the index in `exchanges`.
fn full_session_script() -> impl FnMut(&Turn<'_>) -> Option<Call> + Send {
    let mut step = 0;
    move |turn: &Turn<'_>| {
        let call: Call = match step {
            0 => AcsRequest::GetRpcMethods.into(),
            1 => gpn_req(MS, true),
            2 => gpn_req(MS, false),
            3 => gpn_req(PII, false),
            4 => gpn_req("Device.NoSuchObject.", true),
            5 => gpv_req(&[PII, "Device.DeviceInfo."]),
            6 => spv_req(&[(PII, "1800", BaseType::UnsignedInt)], "k1"),
            7 | 9 => gpv_req(&[PII, PKEY, PIE]),
            8 => spv_req(
                &[
                    (PII, "soon", BaseType::UnsignedInt),
                    (
                        "Device.ManagementServer.NoSuchParameter",
                        "x",
                        BaseType::String,
                    ),
                    (SWVER, "1.0", BaseType::String),
                    (PIE, "false", BaseType::Boolean),
                ],
                "k2",
            ),
            10 => spa_req(PII, 2),
            11 => AcsRequest::GetParameterAttributes {
                names: vec![PII.into()],
            }
            .into(),
            12 => spa_req(UPTIME, 2),
            13 => add_req("k3"),
            14 => add_req("k4"),
            15 | 17 => gpn_req(INFORM_PARAM, true),
            16 => {
                // Delete the second instance, whatever number it got.
                let n = turn
                    .session
                    .exchanges
                    .get(14)
                    .map(instance)
                    .unwrap_or(u32::MAX);
                AcsRequest::DeleteObject {
                    object_name: format!("{INFORM_PARAM}{n}."),
                    parameter_key: "k5".into(),
                }
                .into()
            }
            18 => Call::Raw {
                method: "FrobnicateWidget".into(),
                body: "<cwmp:FrobnicateWidget><Level>3</Level></cwmp:FrobnicateWidget>".into(),
            },
            _ => return None,
        };
        step += 1;
        Some(call)
    }
}

#[test]
fn https_with_an_unknown_ca_fails_with_one_line() {
    let pki = tls::Pki::new();
    let acs = Acs::start(
        AcsOptions::default()
            .tls(pki.server_tls())
            .digest(USER, PASS),
    )
    .expect("start ACS");
    let cpe = Cpe::new("https-unknown-ca", &acs.url(), Some(&pki.other_ca_file));
    let out = cpe.cli(&["inform"]);
    assert!(
        matches!(out.code, Some(c) if c != 0),
        "inform must fail: {out}"
    );
    let last = out
        .stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        last.contains("certificate") || last.contains("tls") || last.contains("issuer"),
        "the reason should name the certificate problem: {out}"
    );
    assert!(
        acs.sessions().is_empty(),
        "no Inform may pass: {:#?}",
        acs.sessions()
    );
    assert!(
        !acs.tls_failures().is_empty(),
        "the ACS saw no failed handshake"
    );
}

// ----------------------------------------------------------------------------------------------
// 3. Events survive a SIGKILL until an InformResponse arrives.

#[test]
fn pending_events_survive_a_kill_and_are_delivered_after_restart() {
    // The ACS is down: its port accepts TCP connections and closes them at once, so we know when
    // the daemon has tried (its start events are queued before the first attempt).
    let down = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = down.local_addr().expect("addr");
    let url = format!("http://{addr}/acs");
    let cpe = Cpe::new("restart", &url, None);
    let daemon = cpe.spawn_run();
    down.set_nonblocking(true).expect("nonblocking");
    let tried = poll(Duration::from_secs(10), || down.accept().ok());
    assert!(
        tried.is_some(),
        "the daemon never tried the ACS: {}",
        daemon.log()
    );
    drop(tried);
    let daemon_log = daemon.kill();
    drop(down);

    // BOOTSTRAP and BOOT were pending when it died; they still are.
    let out = cpe.cli(&["status"]);
    out.assert_code(0, "status after kill");
    assert!(
        out.stdout.contains("0 BOOTSTRAP") && out.stdout.contains("1 BOOT"),
        "pending events lost by the kill: {out}\ndaemon: {daemon_log}"
    );

    // The ACS comes up on that address; the restarted daemon delivers them.
    let acs = Acs::start(AcsOptions::default().bind(addr)).expect("start ACS on the reserved port");
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let s = &all[0];
    assert!(s.has_event("0 BOOTSTRAP"), "{:?}", s.event_codes());
    assert!(s.has_event("1 BOOT"), "{:?}", s.event_codes());
    let daemon_log = daemon.kill();
    let out = cpe.cli(&["status"]);
    out.assert_code(0, "status after delivery");
    assert!(
        !out.stdout.contains("0 BOOTSTRAP") && !out.stdout.contains("1 BOOT"),
        "status still lists delivered events: {out}\ndaemon: {daemon_log}"
    );
}

/// An operator runs `cwmpd status` and `cwmpd get` on a live router: the daemon must not notice.
#[test]
fn status_and_get_while_the_daemon_runs_leave_it_running() {
    // The ACS is down, so the daemon keeps retrying and persisting its retry count every second;
    // it also writes its state at start, so it is started a few times. Whether a write and a CLI
    // run meet is a matter of timing: this test can only fail, never pass, by luck.
    let cpe = Cpe::new("live-status", CLOSED_URL, None);
    for _ in 0..4 {
        let mut daemon = cpe.spawn_run();
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            cpe.cli(&["status"]).assert_code(0, "status");
            cpe.cli(&["get", PII]).assert_code(0, "get");
            assert!(daemon.alive(), "the daemon died: {}", daemon.log());
        }
        // Neither may have disturbed the daemon's own writes to the store.
        let log = daemon.kill();
        assert!(
            !log.contains("ERROR"),
            "the daemon failed while status/get ran:\n{log}"
        );
    }
}

// ----------------------------------------------------------------------------------------------
// 4. ScheduleInform, also across a restart.

#[test]
fn schedule_inform_fires_also_across_a_restart() {
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    // Periodic sessions every 3 s give the restarted daemon occasions to talk to the ACS.
    let cpe = Cpe::with_interval("schedule", &acs.url(), None, 3);
    acs.push_script([AcsRequest::ScheduleInform {
        delay_seconds: 1,
        command_key: "sched-1".into(),
    }]);
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_for(WAIT, |s| {
            s.iter().any(|s| s.completed && s.has_event("3 SCHEDULED"))
        })
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    assert_eq!(
        all[0].exchanges.first().map(|e| &e.response),
        Some(&Ok(CpeResponse::ScheduleInform))
    );
    let s = all
        .iter()
        .find(|s| s.has_event("3 SCHEDULED"))
        .expect("found");
    assert_eq!(
        s.command_key("M ScheduleInform"),
        Some("sched-1"),
        "{:?}",
        s.inform.events
    );
    let elapsed = s.started.duration_since(all[0].started);
    assert!(
        elapsed >= Duration::from_millis(900),
        "scheduled too early: {elapsed:?}"
    );

    // Now a periodic session schedules one; the daemon is killed before it is due and started
    // again: the ScheduleInform must survive (its CommandKey is persisted).
    acs.push_script([AcsRequest::ScheduleInform {
        delay_seconds: 4,
        command_key: "sched-2".into(),
    }]);
    let scheduled = |s: &SessionRecord| {
        s.completed
            && s.exchanges.iter().any(|e| {
                e.response == Ok(CpeResponse::ScheduleInform)
                    && matches!(&e.call, Call::Rpc(AcsRequest::ScheduleInform { command_key, .. }) if command_key == "sched-2")
            })
    };
    acs.wait_for(WAIT, |s| s.iter().any(scheduled))
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let (_daemon, all) = restart_until_reported(&acs, &cpe, daemon, "M ScheduleInform", "sched-2");
    let s = all
        .iter()
        .find(|s| s.command_key("M ScheduleInform") == Some("sched-2"))
        .expect("found");
    assert!(s.has_event("3 SCHEDULED"), "{:?}", s.event_codes());
}

// ----------------------------------------------------------------------------------------------
// 5. Version negotiation.

#[test]
fn use_cwmp_version_keeps_the_cwmp_1_2_namespace() {
    // Also the field capture's cookie style (`SerialNumber=…; path=/`, mandatory here).
    let acs = Acs::start(
        AcsOptions::default()
            .use_version("1.4")
            .cookie(Cookie::SerialNumber),
    )
    .expect("start ACS");
    let cpe = Cpe::new("use-version", &acs.url(), None);
    acs.push_script([gpv_req(&[PKEY]), gpn_req(PII, false)]);
    let all = inform_and_wait(&acs, &cpe, "inform", 1);
    let s = &all[0];
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.ns, CwmpNs::V1_2);
    assert!(s.header.supported_versions.is_some());
    assert_eq!(
        s.cookie.as_deref(),
        Some(&*format!("SerialNumber={SERIAL}"))
    );
    assert_eq!(s.exchanges.len(), 2);
    for e in &s.exchanges {
        assert_eq!(e.ns, Some(CwmpNs::V1_2), "{e:?}");
        assert!(e.response.is_ok() && e.fault().is_none(), "{e:?}");
    }
}

/// GenieACS and others answer in the non-standard `cwmp-1-4` namespace; the CPE must follow.
#[test]
fn acs_answering_in_the_cwmp_1_4_namespace_is_understood() {
    let acs = Acs::start(AcsOptions::default().reply_ns(CwmpNs::V1_4)).expect("start ACS");
    let cpe = Cpe::new("ns-1-4", &acs.url(), None);
    acs.push_script([gpv_req(&[PKEY, PII])]);
    let all = inform_and_wait(&acs, &cpe, "inform", 1);
    let s = &all[0];
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.exchanges.len(), 1);
    assert_eq!(value(&gpv(&s.exchanges[0]), PII).map(|v| v.0), Some("3600"));
}

#[test]
fn old_acs_rejecting_cwmp_1_2_gets_a_fallback_that_is_remembered() {
    // Two kinds of old ACS: one answering HTTP 500 with no body, one a SOAP fault (ending its
    // sessions with 200 and an empty body rather than 204).
    for (tag, reject, end_200) in [
        ("old-acs-500", Reject::Http(500), false),
        ("old-acs-fault", Reject::Fault(8000), true),
    ] {
        let mut opts = AcsOptions::default().reject(CwmpNs::V1_2, reject);
        if end_200 {
            opts = opts.end_with_200();
        }
        let acs = Acs::start(opts).expect("start ACS");
        let cpe = Cpe::new(tag, &acs.url(), None);
        acs.push_script([gpv_req(&[PKEY])]);
        let all = inform_and_wait(&acs, &cpe, tag, 1);
        let first = &acs.sessions()[0];
        assert!(
            first.rejected && first.ns == CwmpNs::V1_2,
            "{tag}: {first:#?}"
        );
        let worked = &all[0];
        assert!(
            matches!(worked.ns, CwmpNs::V1_1 | CwmpNs::V1_0),
            "{tag}: fell back to {:?}",
            worked.ns
        );
        assert_eq!(worked.exchanges.len(), 1, "{tag}");
        assert_eq!(worked.exchanges[0].ns, Some(worked.ns), "{tag}");
        let e = &worked.exchanges[0];
        assert!(e.response.is_ok() && e.fault().is_none(), "{tag}: {e:?}");

        // The next session starts directly with the namespace that worked.
        let before = acs.sessions().len();
        let out = cpe.cli(&["inform", "--event", "2 PERIODIC"]);
        out.assert_code(0, tag);
        acs.wait_sessions(2, WAIT)
            .unwrap_or_else(|e| panic!("{tag}: {e}\n{out}"));
        let sessions = acs.sessions();
        let next = &sessions[before..];
        assert_eq!(next.len(), 1, "{tag}: a second rejected attempt: {next:#?}");
        assert_eq!(next[0].ns, worked.ns, "{tag}");
    }
}

// ----------------------------------------------------------------------------------------------
// 6. The ACS moves the CPE.

#[test]
fn acs_set_url_moves_the_cpe_with_a_new_bootstrap() {
    // A asks for Basic (over https: Basic over plain http is refused by default), B for
    // Digest with SHA-256 (RFC 7616).
    let pki = tls::Pki::new();
    let a = Acs::start(
        AcsOptions::default()
            .tls(pki.server_tls())
            .basic(USER, PASS),
    )
    .expect("start ACS A");
    let b = Acs::start(AcsOptions::default().digest_with(USER, PASS, Algorithm::Sha256))
        .expect("start ACS B");
    let cpe = Cpe::new("move", &a.url(), Some(&pki.ca_file));
    a.push_script([spv_req(
        &[("Device.ManagementServer.URL", &b.url(), BaseType::String)],
        "move",
    )]);
    let sa = inform_and_wait(&a, &cpe, "inform to A", 1);
    assert!(
        matches!(
            sa[0].exchanges[0].response,
            Ok(CpeResponse::SetParameterValues { .. })
        ),
        "{:?}",
        sa[0].exchanges[0]
    );

    let out = cpe.cli(&["inform", "--event", "2 PERIODIC"]);
    out.assert_code(0, "inform to B");
    let sb = b
        .wait_sessions(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(sb[0].has_event("0 BOOTSTRAP"), "{:?}", sb[0].event_codes());
    assert_eq!(
        sb[0]
            .param("Device.ManagementServer.URL")
            .unwrap_or(&b.url()),
        b.url()
    );
    assert_eq!(a.sessions().len(), 1, "the CPE went back to A");
    let out = cpe.cli(&["get", "Device.ManagementServer.URL"]);
    assert!(out.stdout.contains(&b.url()), "{out}");
}

// ----------------------------------------------------------------------------------------------
// 7. The CLI.

#[test]
fn cli_get_set_status_check() {
    // No ACS is needed for local commands.
    let cpe = Cpe::new("cli", CLOSED_URL, None);

    let out = cpe.cli(&["check"]);
    out.assert_code(0, "check");
    let out = cpe.cli(&["get", PII]);
    out.assert_code(0, "get");
    assert!(out.stdout.contains("3600"), "{out}");
    let out = cpe.cli(&["get", MS]);
    out.assert_code(0, "get partial path");
    assert!(
        out.stdout.contains(PII) && out.stdout.contains(PIE),
        "{out}"
    );

    let out = cpe.cli(&["set", &format!("{PII}=120")]);
    out.assert_code(0, "set good");
    let out = cpe.cli(&["get", PII]);
    assert!(
        out.stdout.contains("120") && !out.stdout.contains("3600"),
        "{out}"
    );

    let out = cpe.cli(&["set", &format!("{PII}=often")]);
    out.assert_code(1, "set of a bad value");
    assert!(
        out.all().contains("9007"),
        "the fault should be shown: {out}"
    );
    let out = cpe.cli(&["set", "Device.ManagementServer.NoSuchParameter=1"]);
    out.assert_code(1, "set of an unknown name");
    assert!(out.all().contains("9005"), "{out}");
    let out = cpe.cli(&["set", &format!("{SWVER}=0.0.1")]);
    out.assert_code(1, "set of a read-only parameter");
    assert!(out.all().contains("9008"), "{out}");
    // All-or-nothing like SPV: a good value next to a bad one is not applied.
    let out = cpe.cli(&["set", &format!("{PII}=240"), &format!("{PIE}=maybe")]);
    out.assert_code(1, "set with one bad value");
    let out = cpe.cli(&["get", PII]);
    assert!(
        out.stdout.contains("120") && !out.stdout.contains("240"),
        "{out}"
    );

    let out = cpe.cli(&["status"]);
    out.assert_code(0, "status");
    assert!(!out.stdout.trim().is_empty(), "{out}");

    // A broken config: exit 2 with file:line.
    let bad = cpe.dir.path().join("broken.toml");
    std::fs::write(
        &bad,
        "[acs]\nurl = \"http://127.0.0.1:1/acs\"\nperiodic_inform_interval = 0\n",
    )
    .expect("write");
    let out = run(&["-c", &bad.display().to_string(), "check"]);
    out.assert_code(2, "check of a broken config");
    assert!(
        out.stderr.contains(&format!("{}:3:", bad.display())),
        "want {}:3: in {out}",
        bad.display()
    );
    let out = run(&["-c", &bad.display().to_string(), "frobnicate"]);
    out.assert_code(2, "unknown subcommand");
}

/// Runs the binary with arguments that need not be UTF-8, killed at [`CLI_TIMEOUT`]: (exit
/// code, stderr).
fn run_os(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(cpe::bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cwmpd");
    let (_out, err) = read_output(&mut child);
    let deadline = Instant::now() + CLI_TIMEOUT;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    (code, err.join().unwrap_or_default())
}

#[test]
fn cli_refuses_non_utf8_arguments_and_endless_config_files() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let cpe = Cpe::new("cli-bytes", CLOSED_URL, None);
    let cfg = cpe.cfg.as_os_str();
    let bad = OsStr::from_bytes(b"Device.\xff\xfe");
    // In every position: the command, its arguments, the config path.
    for args in [
        vec![OsStr::new("-c"), cfg, OsStr::new("get"), bad],
        vec![OsStr::new("-c"), cfg, bad],
        vec![OsStr::new("-c"), bad, OsStr::new("check")],
        vec![bad],
    ] {
        let (code, stderr) = run_os(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is not valid UTF-8") && stderr.contains("usage:"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // An endless config file is refused at its bound, naming the file (not read until the
    // memory runs out).
    let out = run(&["-c", "/dev/zero", "check"]);
    out.assert_code(2, "-c /dev/zero");
    assert!(
        out.stderr.contains("/dev/zero: larger than"),
        "the file and the reason: {out}"
    );
}

// ----------------------------------------------------------------------------------------------
// The test ACS itself behaves like the ACSes it stands for (so the tests above mean something).

#[test]
fn test_acs_binds_the_digest_nonce_to_the_connection_and_requires_the_cookie() {
    use cwmpd::http::auth::{self, DigestSession};
    let acs = Acs::start(
        AcsOptions::default()
            .digest(USER, PASS)
            .cookie(Cookie::Session),
    )
    .expect("start ACS");
    let inform = inform_body();
    let mut c1 = TcpStream::connect(acs.addr()).expect("connect");
    let mut c2 = TcpStream::connect(acs.addr()).expect("connect");

    let r = http_post(&mut c1, &inform, &[]);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").expect("challenge");
    let challenges = auth::parse_challenges(&challenge).expect("parse challenge");
    let mut digest = DigestSession::new(&challenges[0], "0a4f113b").expect("digest");
    let mut authz = || digest.authorization("POST", "/acs", USER, PASS);

    // The nonce of connection 1 is refused on connection 2 (GenieACS behaviour).
    let r = http_post(&mut c2, &inform, &[("Authorization", &authz())]);
    assert_eq!(r.status, 401, "nonce accepted on another connection");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("stale=true")));

    // On its own connection it works, and the ACS sets the session cookie.
    let r = http_post(&mut c1, &inform, &[("Authorization", &authz())]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let set_cookie = r.header("set-cookie").expect("Set-Cookie");
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    assert!(cookie.starts_with("session="), "{set_cookie}");

    // Without the cookie: 400. With it: the session ends with 204.
    let r = http_post(&mut c1, b"", &[("Authorization", &authz())]);
    assert_eq!(r.status, 400);
    let r = http_post(
        &mut c1,
        b"",
        &[("Authorization", &authz()), ("Cookie", &cookie)],
    );
    assert_eq!(r.status, 204);
    let s = acs
        .wait_sessions(1, Duration::from_secs(5))
        .expect("session");
    assert_eq!(s[0].user.as_deref(), Some(USER));
    assert_eq!(
        s[0].errors.len(),
        1,
        "the cookie-less POST is recorded: {:?}",
        s[0].errors
    );
}

#[test]
fn test_acs_runs_a_scripted_session_over_https_with_the_cwmpd_transport() {
    use cwmpd::http::acs::{Transport, TransportConfig};
    let pki = tls::Pki::new();
    let acs = Acs::start(
        AcsOptions::default()
            .tls(pki.server_tls())
            .digest(USER, PASS)
            .cookie(Cookie::SerialNumber)
            .end_with_200(),
    )
    .expect("start ACS");
    acs.push_script([gpv_req(&[PKEY])]);
    let mut t = Transport::new(TransportConfig {
        url: acs.url(),
        username: USER.into(),
        password: PASS.into(),
        ca_file: Some(pki.ca_file.clone()),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    })
    .expect("transport");
    let r = t.post(&inform_body()).expect("Inform");
    assert_eq!(r.status, 200);
    let r = t.post(b"").expect("empty POST");
    let req = cwmpd::soap::parse_acs(&r.body, &Default::default()).expect("ACS request");
    let id = req.header.id.clone();
    assert!(matches!(
        req.body,
        cwmpd::soap::AcsMessage::Request(AcsRequest::GetParameterValues { .. })
    ));
    let resp = CpeResponse::GetParameterValues {
        list: vec![cwmpd::cwmp::value::ParameterValue {
            name: PKEY.into(),
            value: "k<&>".into(),
            ty: BaseType::String,
        }]
        .into(),
    };
    let r = t
        .post(&cwmpd::soap::emit_response(
            CwmpNs::V1_2,
            id.as_deref(),
            &resp,
        ))
        .expect("response");
    assert_eq!(
        (r.status, r.body.len()),
        (200, 0),
        "the session ends with 200 empty"
    );
    t.end_session();
    let s = acs
        .wait_sessions(1, Duration::from_secs(5))
        .expect("session");
    assert!(s[0].errors.is_empty(), "{:?}", s[0].errors);
    assert_eq!(
        s[0].cookie.as_deref(),
        Some(&*format!("SerialNumber={SERIAL}"))
    );
    assert_eq!(s[0].exchanges[0].response, Ok(resp));
    assert!(acs.tls_failures().is_empty());
}

// ----------------------------------------------------------------------------------------------
// Helpers.

fn add_req(key: &str) -> Call {
    add_req_at(INFORM_PARAM, key)
}

/// An Inform as a CPE would send it, for the ACS self-test.
fn inform_body() -> Vec<u8> {
    use cwmpd::soap::{CpeRequest, DeviceId, EventStruct, Header, Inform};
    let inform = Inform {
        device_id: DeviceId {
            manufacturer: "cwmpd-it".into(),
            oui: "00D0F8".into(),
            product_class: "ItRouter".into(),
            serial_number: SERIAL.into(),
        },
        events: vec![EventStruct {
            code: "1 BOOT".into(),
            command_key: String::new(),
        }],
        max_envelopes: 1,
        current_time: "2024-01-01T00:00:00Z".into(),
        retry_count: 0,
        parameters: Vec::new(),
    };
    let header = Header {
        id: Some("1".into()),
        ..Header::default()
    };
    cwmpd::soap::emit_request(CwmpNs::V1_2, &header, &CpeRequest::Inform(inform))
}

struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// One POST to /acs on an open connection, and its reply (Content-Length or 204 only).
fn http_post(conn: &mut TcpStream, body: &[u8], headers: &[(&str, &str)]) -> RawReply {
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut req = format!(
        "POST /acs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).expect("write");
    conn.write_all(body).expect("write body");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).expect("read body");
        assert!(n > 0, "connection closed in body");
        body.extend_from_slice(&chunk[..n]);
    }
    RawReply {
        status,
        headers,
        body,
    }
}

/// While HTTPConnectionRequestEnable is false, ConnectionRequestURL reads
/// empty (TR-181: "ConnectionRequestURL MUST be set to empty"), in GetParameterValues and in
/// the Inform, in the daemon and in a CLI session alike; enabled again, the URL is back.
#[test]
fn connection_request_url_is_empty_while_disabled() {
    const CRURL: &str = "Device.ManagementServer.ConnectionRequestURL";
    const CREN: &str = "Device.ManagementServer.HTTPConnectionRequestEnable";
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    // With credentials: without a password nothing listens and the URL reads empty anyway.
    let cpe = Cpe::with_cr(
        "crurl-off",
        &acs.url(),
        "username = \"cr-user\"\npassword = \"cr-pass\"",
    );
    acs.push_script([spv_req(&[(CREN, "false", BaseType::Boolean)], "cr-off")]);
    acs.push_script([gpv_req(&[CRURL, CREN])]);
    let daemon = cpe.spawn_run();
    // The URL going empty is a change of a forced active notification: a session tells it.
    let all = acs
        .wait_for(WAIT, |s| {
            s.iter()
                .any(|s| s.completed && s.has_event("4 VALUE CHANGE"))
        })
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    let first = &all[0];
    assert!(
        first.param(CRURL).is_some_and(|u| u.starts_with("http://")),
        "{:#?}",
        first.inform.parameters
    );
    assert!(
        first.exchanges[0].fault().is_none(),
        "{:?}",
        first.exchanges
    );
    let vc = all
        .iter()
        .find(|s| s.has_event("4 VALUE CHANGE"))
        .expect("the VALUE CHANGE session");
    assert_eq!(vc.param(CRURL), Some(""), "{:#?}", vc.inform.parameters);
    let got = gpv(&vc.exchanges[0]);
    assert_eq!(value(&got, CRURL).map(|v| v.0), Some(""));
    assert_eq!(value(&got, CREN).map(|v| v.0), Some("false"));
    let _ = daemon.kill();

    // A CLI session (a new process) shows it empty too.
    acs.push_script([gpv_req(&[CRURL])]);
    let n = acs.completed().len();
    let s = inform_and_wait(&acs, &cpe, "inform while disabled", n + 1)
        .pop()
        .unwrap();
    assert_eq!(s.param(CRURL), Some(""), "{:#?}", s.inform.parameters);
    assert_eq!(value(&gpv(&s.exchanges[0]), CRURL).map(|v| v.0), Some(""));

    // Enabled again: the URL is back, in the Inform of the next session.
    acs.push_script([spv_req(&[(CREN, "true", BaseType::Boolean)], "cr-on")]);
    inform_and_wait(&acs, &cpe, "enable", n + 2);
    let s = inform_and_wait(&acs, &cpe, "inform while enabled", n + 3)
        .pop()
        .unwrap();
    assert!(
        s.param(CRURL).is_some_and(|u| u.starts_with("http://")),
        "{:#?}",
        s.inform.parameters
    );
}
