//! In-memory session transcripts: the real agent ([`cwmpd::agent::Agent`]) driven one loop turn
//! at a time over a fake clock and the test ACS in memory ([`support::acs::memory`]). Each case
//! is an ACS script and a clock; its expected file (`expected/<case>.txt`) is the transcript the
//! test ACS prints, with the clock's time before each connection. The index of the cases, the
//! spec section each proves, and how to bless are in `tests/sessions/README.md`.

mod harness;

use std::time::Duration;

use cwmpd::agent::Trigger;
use cwmpd::cwmp::value::BaseType;
use cwmpd::schedule::retry_range_ms;
use cwmpd::soap::{AcsRequest, CpeResponse};
use harness::{Case, Setup, ACS};
use support::acs::memory::Failure;
use support::acs::AcsOptions;
use support::cpe::{gpn_req, gpv_req, spa_req, spv_req};
use support::files::{expected_methods, rpc_methods};

const MS: &str = "Device.ManagementServer.";
const PII: &str = "Device.ManagementServer.PeriodicInformInterval";
const PIT: &str = "Device.ManagementServer.PeriodicInformTime";
const PKEY: &str = "Device.ManagementServer.ParameterKey";
const SWVER: &str = "Device.DeviceInfo.SoftwareVersion";

/// §3.2.1, §3.7.1.5: the first session of a new device carries `1 BOOT` and `0 BOOTSTRAP`;
/// once delivered, a restart on the same boot queues neither.
#[test]
fn boot_bootstrap() {
    let mut c = Case::new("boot_bootstrap");
    c.acs.push_script(ACS, [AcsRequest::GetRpcMethods]);
    c.run_sessions(1);
    c.stop();
    c.acs.note("the agent restarts (same boot)");
    c.start();
    c.run_for(3600);
    assert_eq!(c.acs.connections(), 1, "a session after a plain restart");
    c.finish();
}

/// §A.3.2.1–§A.3.2.4: GetParameterNames, GetParameterValues, SetParameterValues (all or nothing,
/// ParameterKey), a refused set (9008 for a read-only parameter), and the next Inform carrying
/// the new ParameterKey.
#[test]
fn get_set_parameters() {
    let mut c = Case::with(
        "get_set_parameters",
        Setup {
            acs: "periodic_inform_interval = 600",
            ..Setup::default()
        },
    );
    c.acs.push_script(
        ACS,
        [
            gpn_req(MS, true),
            gpv_req(&[PII, PKEY, SWVER]),
            spv_req(&[(PII, "900", BaseType::UnsignedInt)], "key-1"),
            spv_req(
                &[
                    (PII, "60", BaseType::UnsignedInt),
                    (SWVER, "2.0", BaseType::String),
                ],
                "key-2",
            ),
            gpv_req(&[PII, PKEY]),
        ],
    );
    c.run_sessions(2);
    c.finish();
}

/// §3.2.1 and TR-181 `PeriodicInformTime`: periodic sessions at the phase the ACS sets, its
/// fraction of a second kept, every `PeriodicInformInterval`.
#[test]
fn periodic_phase() {
    let mut c = Case::new("periodic_phase");
    c.acs.push_script(
        ACS,
        [spv_req(
            &[
                (PIT, "2026-01-01T00:00:10.500Z", BaseType::DateTime),
                (PII, "60", BaseType::UnsignedInt),
            ],
            "phase",
        )],
    );
    c.run_sessions(4);
    let at: Vec<Duration> = c.acs.attempts();
    assert_eq!(
        at,
        [0, 10_500, 70_500, 130_500].map(Duration::from_millis),
        "{}",
        c.acs.transcript()
    );
    c.finish();
}

/// §3.2.1.1: failed sessions are retried after a wait drawn from
/// `[m·(k/1000)^(n-1), m·(k/1000)^n]` s (m = CWMPRetryMinimumWaitInterval 5, k =
/// CWMPRetryIntervalMultiplier 2000), RetryCount counting the failures, the events kept until
/// delivered; RetryCount is 0 again after a success.
#[test]
fn retry_backoff() {
    let mut c = Case::with(
        "retry_backoff",
        Setup {
            acs: "retry_minimum_wait_interval = 5\nretry_interval_multiplier = 2000\n\
                  periodic_inform_interval = 3600",
            ..Setup::default()
        },
    );
    c.acs
        .fail_next([Failure::Refused, Failure::Reset, Failure::Reset]);
    c.run_sessions(1);
    let at = c.acs.attempts();
    let mut ranges = String::new();
    for (n, w) in at.windows(2).enumerate() {
        let (lo, hi) = retry_range_ms(n as u32 + 1, 5, 2000);
        let waited = (w[1] - w[0]).as_millis() as u64;
        assert!(
            (lo..=hi + 1000).contains(&waited),
            "retry {}: waited {waited} ms, not in [{lo}, {hi}] ms\n{}",
            n + 1,
            c.acs.transcript()
        );
        ranges.push_str(&format!(
            "retry {}: waited {:.3} s, range [{}, {}] s\n",
            n + 1,
            waited as f64 / 1000.0,
            lo / 1000,
            hi / 1000
        ));
    }
    c.acs.note(&format!("the waits (§3.2.1.1):\n{ranges}"));
    c.run_sessions(2);
    c.finish();
}

/// RFC 9110 §10.2.3 with §3.2.1.1: a 503 with `Retry-After: 30` is the least wait before the
/// next attempt, above the backoff's own range (5–10 s, then 10–20 s).
#[test]
fn retry_after_floor() {
    let mut c = Case::with(
        "retry_after_floor",
        Setup {
            acs: "retry_minimum_wait_interval = 5\nretry_interval_multiplier = 2000",
            options: Some(AcsOptions::default().busy(2, 30)),
            ..Setup::default()
        },
    );
    c.run_sessions(1);
    let at = c.acs.attempts();
    assert_eq!(at.len(), 3, "{}", c.acs.transcript());
    for w in at.windows(2) {
        let waited = w[1] - w[0];
        assert!(
            waited >= Duration::from_secs(30) && waited <= Duration::from_secs(31),
            "waited {waited:?}\n{}",
            c.acs.transcript()
        );
    }
    c.finish();
}

/// TR-069 §3.2.1 and TR-181 `DefaultActiveNotificationThrottle`: a value change of a parameter
/// with active notification (SetParameterAttributes Notification 2) starts a `4 VALUE CHANGE`
/// session carrying the new value, but no sooner than the throttle after the end of the last
/// successful session of any kind.
#[test]
fn notification_throttle() {
    let mut c = Case::with(
        "notification_throttle",
        Setup {
            acs: "periodic_inform_interval = 3600",
            datamodel: "root = \"{dir}/root\"\ndir = \"{dir}/datamodel.d\"\npoll_interval = 5",
            files: &[
                ("datamodel.d/sensor.toml", SENSOR_TOML),
                ("root/level", "20"),
            ],
            ..Setup::default()
        },
    );
    c.acs.push_script(
        ACS,
        [
            spa_req(SENSOR, 2),
            spv_req(
                &[(
                    "Device.ManagementServer.DefaultActiveNotificationThrottle",
                    "60",
                    BaseType::UnsignedInt,
                )],
                "throttle",
            ),
        ],
    );
    c.run_sessions(1);
    c.run_for(10);
    c.acs.note("the sensor reads 21");
    sensor(&c, "21");
    c.run_sessions(2);
    c.run_for(c.clock.elapsed().as_secs() + 7);
    c.acs.note("the sensor reads 22");
    sensor(&c, "22");
    c.run_sessions(3);
    let at = c.acs.attempts();
    assert_eq!(at[1], Duration::from_secs(60), "{}", c.acs.transcript());
    assert_eq!(at[2], Duration::from_secs(120), "{}", c.acs.transcript());
    c.finish();
}

const SENSOR: &str = "Device.X_TEST_Sensor.Level";

/// A vendor file that defines the sensor, read from a file (a `file` binding).
const SENSOR_TOML: &str = "[[object]]\nname = \"Device.X_TEST_Sensor.\"\n\
    params = [{ name = \"Level\", type = \"string\" }]\n\
    [bind.\"Device.X_TEST_Sensor.\"]\nLevel = \"file:/level\"\n";

/// Writes the sensor's value.
fn sensor(c: &Case, value: &str) {
    std::fs::write(c.dir.path().join("root/level"), value).expect("write the sensor");
}

/// §3.2.2: an authenticated Connection Request (the listener's trigger) starts a session at
/// once with `6 CONNECTION REQUEST`, also in the middle of a retry wait (here 300–600 s), the
/// undelivered events and RetryCount with it.
#[test]
fn connection_request_in_backoff() {
    let mut c = Case::with(
        "connection_request_in_backoff",
        Setup {
            acs: "retry_minimum_wait_interval = 300\nperiodic_inform_interval = 3600",
            ..Setup::default()
        },
    );
    c.acs.fail_next([Failure::Refused]);
    c.run_connections(1);
    c.run_for(20);
    c.acs.note("a Connection Request is accepted");
    let at = c.clock.elapsed();
    c.trigger(Trigger::ConnectionRequest);
    c.run_sessions(1);
    assert_eq!(
        c.acs.attempts(),
        [Duration::ZERO, at],
        "{}",
        c.acs.transcript()
    );
    c.finish();
}

/// §A.4.1.4: ScheduleInform with DelaySeconds 30 brings a session 30 s later with
/// `3 SCHEDULED` and `M ScheduleInform` with its CommandKey.
#[test]
fn schedule_inform() {
    let mut c = Case::with(
        "schedule_inform",
        Setup {
            acs: "periodic_inform_interval = 3600",
            ..Setup::default()
        },
    );
    c.acs.push_script(
        ACS,
        [AcsRequest::ScheduleInform {
            delay_seconds: 30,
            command_key: "sched-1".into(),
        }],
    );
    c.run_sessions(2);
    assert_eq!(c.acs.attempts()[1], Duration::from_secs(30));
    c.finish();
}

/// A SetParameterValues enabling the Heartbeat every 30 s at the phase of 00:00:05, with `more`.
fn heartbeat_spv(more: &[(&str, &str, BaseType)], key: &str) -> support::acs::Call {
    let hb = "Device.ManagementServer.HeartbeatPolicy.";
    let names = [
        format!("{hb}Enable"),
        format!("{hb}ReportingInterval"),
        format!("{hb}InitiationTime"),
    ];
    let mut list = vec![
        (names[0].as_str(), "true", BaseType::Boolean),
        (names[1].as_str(), "30", BaseType::UnsignedInt),
        (
            names[2].as_str(),
            "2026-01-01T00:00:05Z",
            BaseType::DateTime,
        ),
    ];
    list.extend_from_slice(more);
    spv_req(&list, key)
}

/// CWMP 1.4 Heartbeat (TR-181 ManagementServer.HeartbeatPolicy): set by the ACS, Heartbeat
/// Informs at the phase of InitiationTime every ReportingInterval, each with `14 HEARTBEAT` alone
/// and no value change; a ScheduleInform due at the same time gets a session of its own right
/// after; a heartbeat that fails is not retried (the next one comes at its time).
#[test]
fn heartbeat() {
    let mut c = Case::with(
        "heartbeat",
        Setup {
            acs: "periodic_inform_interval = 3600",
            ..Setup::default()
        },
    );
    c.acs.push_script(
        ACS,
        [
            heartbeat_spv(&[], "hb"),
            support::acs::Call::Rpc(AcsRequest::ScheduleInform {
                delay_seconds: 35,
                command_key: "with-hb".into(),
            }),
        ],
    );
    // BOOT; heartbeats at +5 s and +35 s; the SCHEDULED session right after the second.
    c.run_sessions(4);
    // Nothing of a heartbeat goes to flash: the state files are as they were after it.
    let files = |c: &Case| -> Vec<(std::path::PathBuf, std::time::SystemTime, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(c.dir.path().join("state"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                let m = e.metadata().unwrap().modified().unwrap();
                (e.path(), m, std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&c);
    // The next heartbeat (+65 s) is refused: no retry, the one after at +95 s.
    c.acs.fail_next([Failure::Refused]);
    c.run_sessions(5);
    assert!(
        files(&c) == before,
        "a heartbeat wrote to the state directory"
    );
    let at: Vec<u64> = c.acs.attempts().iter().map(|d| d.as_secs()).collect();
    assert_eq!(at, [0, 5, 35, 35, 65, 95], "{}", c.acs.transcript());
    let t = c.acs.transcript();
    assert_eq!(t.matches("Events     14 HEARTBEAT\n").count(), 3, "{t}");
    assert!(
        t.contains("Events     3 SCHEDULED, M ScheduleInform"),
        "{t}"
    );
    c.finish();
}

/// A Heartbeat and a periodic Inform due at the same moment (the same reference, the periodic
/// interval a multiple of the heartbeat's): the heartbeat goes alone, the `2 PERIODIC` session
/// right after it; neither is lost.
#[test]
fn heartbeat_with_periodic() {
    let mut c = Case::new("heartbeat_with_periodic");
    c.acs.push_script(
        ACS,
        [heartbeat_spv(
            &[
                (PIT, "2026-01-01T00:00:05Z", BaseType::DateTime),
                (PII, "60", BaseType::UnsignedInt),
            ],
            "aligned",
        )],
    );
    c.run_sessions(6);
    let at: Vec<u64> = c.acs.attempts().iter().map(|d| d.as_secs()).collect();
    assert_eq!(at, [0, 5, 5, 35, 65, 65], "{}", c.acs.transcript());
    let t = c.acs.transcript();
    assert_eq!(t.matches("Events     14 HEARTBEAT\n").count(), 3, "{t}");
    assert_eq!(t.matches("Events     2 PERIODIC\n").count(), 2, "{t}");
    c.finish();
}

/// §A.3.1.1, §A.3.2.10: with a reboot hook GetRPCMethods lists Reboot; Reboot ends the session first, then the hook runs, and the agent holds (no
/// session, although periodic informs are due every 10 s) while the device goes down; the next
/// start reports `1 BOOT` and `M Reboot` with the CommandKey, once.
#[test]
fn reboot_hold() {
    let mut c = Case::with(
        "reboot_hold",
        Setup {
            acs: "periodic_inform_interval = 10",
            more: "[hooks]\nreboot = \"echo $CWMPD_COMMAND_KEY >> {dir}/reboot.log\"\n",
            ..Setup::default()
        },
    );
    let log = c.dir.path().join("reboot.log");
    let in_session = log.clone();
    c.acs.with_core(ACS, |core| {
        core.push_script_fn(Box::new(move |turn| match turn.session.exchanges.len() {
            0 => Some(AcsRequest::GetRpcMethods.into()),
            1 => Some(
                AcsRequest::Reboot {
                    command_key: "rb-1".into(),
                }
                .into(),
            ),
            2 => {
                assert!(
                    !in_session.exists(),
                    "the hook ran before the session ended"
                );
                Some(gpv_req(&[PII]))
            }
            _ => None,
        }))
    });
    c.run_sessions(1);
    let first = c.acs.sessions(ACS).remove(0);
    assert_eq!(
        rpc_methods(&first.exchanges[0]),
        expected_methods(&["ScheduleInform", "Reboot"]),
        "a reboot hook offers Reboot"
    );
    assert_eq!(first.exchanges[1].response, Ok(CpeResponse::Reboot));
    c.run_for(100);
    assert_eq!(c.acs.connections(), 1, "a session while held");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "rb-1\n");
    c.acs
        .note("the hook ran after the session (reboot.log: rb-1); no session since: held");
    c.stop();
    c.acs.note("the device restarts");
    c.start();
    c.run_sessions(3);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "rb-1\n",
        "the hook ran again"
    );
    c.finish();
}

/// §3.2.1 and Table 7: SetParameterValues of `ManagementServer.URL` moves the CPE to the new ACS,
/// whose first session carries `0 BOOTSTRAP`; the old ACS hears no more.
#[test]
fn bootstrap_url_change() {
    const B: &str = "http://acs-b.test/cwmp";
    let mut c = Case::with(
        "bootstrap_url_change",
        Setup {
            acs: "periodic_inform_interval = 60",
            ..Setup::default()
        },
    );
    c.acs.serve(B, AcsOptions::default(), 2);
    c.acs.push_script(
        ACS,
        [spv_req(
            &[("Device.ManagementServer.URL", B, BaseType::String)],
            "move",
        )],
    );
    c.run_sessions(3);
    assert_eq!(c.acs.sessions(ACS).len(), 1, "the CPE went back to A");
    c.finish();
}

/// Every expected file has a line in the README's index, and every line its expected file.
#[test]
fn the_readme_indexes_every_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sessions");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    let mut listed: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("expected"))
        .expect("expected/")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".txt"))
                .map(str::to_string)
        })
        .collect();
    listed.sort();
    files.sort();
    assert_eq!(listed, files, "README index vs expected/*.txt");
}
