//! The README's first command: `cargo run --example demo`.
//!
//! Starts a small ACS on 127.0.0.1 (plain HTTP, Digest authentication, a mandatory session
//! cookie, like GenieACS), runs the cwmpd agent in this process on its embedded default config
//! pointed at that ACS, and lets the ACS provision the device in one CWMP session (TR-069 §3.7):
//! GetRPCMethods, GetParameterNames, GetParameterValues, SetParameterValues (a good one and a
//! faulty one), Set/GetParameterAttributes, AddObject/DeleteObject and ScheduleInform. Every
//! message is printed as it happens, then a summary.
//!
//! `cargo run --example demo -- URL [--username U] [--password P] [--storage DIR]` instead runs
//! the agent daemon against your own ACS, logging to stderr, until Ctrl-C.

use support::acs;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use acs::{Acs, AcsOptions, Call, Cookie, Turn};
use cwmpd::agent::Agent;
use cwmpd::config::Config;
use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::value::SetAttributes;
use cwmpd::soap::acs::set_parameter_values;
use cwmpd::soap::{AcsRequest, CpeResponse};

const USER: &str = "demo-cpe";
const PASS: &str = "demo-password";
const MS: &str = "Device.ManagementServer.";
const PII: &str = "Device.ManagementServer.PeriodicInformInterval";
const TABLE: &str = "Device.ManagementServer.InformParameter.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first() {
        Some(a) if a == "-h" || a == "--help" => {
            println!(
                "cargo run --example demo\n    one session against a local demo ACS, shown as it happens\n\
                 cargo run --example demo -- URL [--username U] [--password P] [--storage DIR]\n    \
                 the agent daemon against your ACS, until Ctrl-C"
            );
            Ok(())
        }
        Some(url) => daemon(url, &args[1..]),
        None => demo(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One provisioning session against the local demo ACS.
fn demo() -> Result<(), String> {
    let acs = Acs::start(
        AcsOptions::default()
            .digest(USER, PASS)
            .cookie(Cookie::Session)
            .verbose(),
    )
    .map_err(|e| format!("cannot start the demo ACS: {e}"))?;
    acs.push_script_fn(provisioning());
    let storage = TempDir::new()?;

    println!("cwmpd demo: an ACS listens on {}", acs.url());
    println!("  (HTTP Digest as {USER}, a session cookie it insists on, like GenieACS)");
    println!(
        "cwmpd runs on its embedded default config; its state goes to {}",
        storage.0.display()
    );

    let mut cfg = Config::embedded();
    cfg.acs.url = acs.url();
    cfg.acs.username = USER.into();
    cfg.acs.password = PASS.into();
    cfg.acs.timeout = 10;
    cfg.device.serial_number = "DEMO000001".into();
    cfg.connection_request.listen = "127.0.0.1:0".into();
    cfg.storage.dir = storage.0.clone();
    run_one_session(cfg)?;

    let sessions = acs
        .wait_sessions(1, Duration::from_secs(5))
        .map_err(|e| format!("the ACS saw no complete session: {e}"))?;
    summary(&sessions[0]);
    Ok(())
}

/// The ACS's side of the session: a typical first provisioning, each step chosen after the
/// previous answer (TR-069 §3.7.2: one request at a time).
fn provisioning() -> impl FnMut(&Turn<'_>) -> Option<Call> + Send {
    let mut step = 0;
    move |turn: &Turn<'_>| {
        step += 1;
        let req = match step {
            1 => AcsRequest::GetRpcMethods,
            2 => AcsRequest::GetParameterNames {
                path: MS.into(),
                next_level: true,
            },
            3 => AcsRequest::GetParameterValues {
                names: [
                    "Device.ManagementServer.URL",
                    PII,
                    "Device.ManagementServer.ParameterKey",
                    "Device.DeviceInfo.SoftwareVersion",
                ]
                .map(String::from)
                .to_vec(),
            },
            4 => set_parameter_values(&[(PII, "300", BaseType::UnsignedInt)], "demo-1"),
            // A faulty one: a bad value, a read-only parameter and an unknown name. Nothing is
            // applied and the CPE lists each bad parameter (§A.3.2.1).
            5 => set_parameter_values(
                &[
                    (PII, "often", BaseType::UnsignedInt),
                    ("Device.DeviceInfo.SoftwareVersion", "2.0", BaseType::String),
                    ("Device.ManagementServer.NoSuchThing", "1", BaseType::String),
                ],
                "demo-2",
            ),
            6 => AcsRequest::SetParameterAttributes {
                list: vec![SetAttributes {
                    name: PII.into(),
                    notification_change: true,
                    notification: 1,
                    access_list_change: false,
                    access_list: Vec::new(),
                }],
            },
            7 => AcsRequest::GetParameterAttributes {
                names: vec![PII.into()],
            },
            8 => AcsRequest::AddObject {
                object_name: TABLE.into(),
                parameter_key: "demo-3".into(),
            },
            9 => {
                let n = match turn.last.map(|e| &e.response) {
                    Some(Ok(CpeResponse::AddObject {
                        instance_number, ..
                    })) => *instance_number,
                    _ => return None,
                };
                AcsRequest::DeleteObject {
                    object_name: format!("{TABLE}{n}."),
                    parameter_key: "demo-4".into(),
                }
            }
            10 => AcsRequest::ScheduleInform {
                delay_seconds: 60,
                command_key: "demo-schedule".into(),
            },
            _ => return None,
        };
        Some(Call::Rpc(req))
    }
}

fn summary(s: &acs::SessionRecord) {
    println!("\n━━ summary ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━");
    println!("Inform events:     {}", s.event_codes().join(", "));
    println!(
        "authenticated as:  {}   session cookie: {}",
        s.user.as_deref().unwrap_or("-"),
        s.cookie.as_deref().unwrap_or("-")
    );
    println!("ACS requests:");
    for e in &s.exchanges {
        let outcome = match &e.response {
            Ok(CpeResponse::Fault(f)) if f.param_faults().is_empty() => {
                format!("fault {}", f.code())
            }
            Ok(CpeResponse::Fault(f)) => format!(
                "fault {} ({} parameters refused, nothing applied)",
                f.code(),
                f.param_faults().len()
            ),
            Ok(CpeResponse::AddObject {
                instance_number, ..
            }) => format!("ok, instance {instance_number}"),
            Ok(_) => "ok".to_string(),
            Err(e) => format!("no answer: {e}"),
        };
        println!("   {:<24} {outcome}", e.call.method());
    }
    if !s.errors.is_empty() {
        println!("protocol errors:   {:?}", s.errors);
    }
    println!("Next: `cargo test` runs the tests; `cargo run --example demo -- https://your-acs/`");
    println!("runs the agent against your own ACS.");
}

/// The agent daemon against the given ACS, until Ctrl-C.
fn daemon(url: &str, rest: &[String]) -> Result<(), String> {
    let mut cfg = Config::embedded();
    cfg.acs.url = url.to_string();
    let mut storage = None;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        match flag.as_str() {
            "--username" => cfg.acs.username = value,
            "--password" => cfg.acs.password = value,
            "--storage" => storage = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    let _tmp = match storage {
        Some(dir) => {
            cfg.storage.dir = dir;
            None
        }
        None => {
            let t = TempDir::new()?;
            cfg.storage.dir = t.0.clone();
            Some(t)
        }
    };
    cwmpd::sys::syslog::Logger::stderr(cfg.log_level()).install();
    eprintln!(
        "demo: running the cwmpd agent against {url}, state in {} (Ctrl-C to stop)",
        cfg.storage.dir.display()
    );
    run_daemon(cfg)
}

/// What `cwmpd inform` does: queue the start events (BOOT, BOOTSTRAP), then one session.
fn run_one_session(cfg: Config) -> Result<(), String> {
    let mut agent = Agent::new(cfg)?;
    agent.note_start()?;
    agent.run_session().map_err(String::from)
}

/// What `cwmpd run` does.
fn run_daemon(cfg: Config) -> Result<(), String> {
    Agent::new(cfg)?.run().map(drop).map_err(String::from)
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("cwmpd-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
