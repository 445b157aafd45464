//! The `cwmpd` command line: the daemon and its local tools.
//!
//! ```text
//! cwmpd [-c FILE] [run]                 the daemon
//! cwmpd [-c FILE] inform [--event CODE]… one session now (`2 PERIODIC` when no event is
//!                                       pending or given); exit 0 if it completed
//! cwmpd [-c FILE] get PATH…             read parameters (partial paths end with '.')
//! cwmpd [-c FILE] set PATH=VALUE…       write parameters, validated like SetParameterValues
//! cwmpd [-c FILE] status                last session, retry count, pending events
//! cwmpd [-c FILE] check                 validate the config and data model files
//! cwmpd [-c FILE] request-download FILETYPE [NAME=VALUE]…
//!                                       ask the ACS for a file in the daemon's next session
//! ```
//!
//! One function per sub-command (`cmd_*`), each given the loaded config and its arguments.
//!
//! Exit codes: 0 success, 1 the operation failed (a session, a set), 2 bad usage or config.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use cwmpd::agent::Agent;
use cwmpd::config::{self, Config};
use cwmpd::cwmp::value::SetValue;

const USAGE: &str = "usage: cwmpd [-c FILE] [run | inform [--event CODE]... | get PATH... | set PATH=VALUE... | status | check
                          | request-download FILETYPE [NAME=VALUE]... | dhcp-acs v4|v6 HEX | dhcp-option125]
  -c FILE   config file, TOML or UCI (default /etc/cwmpd/cwmpd.toml, else /etc/config/cwmpd, else
            the embedded default)";

fn main() -> ExitCode {
    // Everything the agent and its hooks create is private (SECURITY.md): 0600 files, 0700
    // directories, unless a mode is given.
    cwmpd::sys::private::set_umask();
    match utf8_args(std::env::args_os().skip(1)).and_then(run) {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("cwmpd: {msg}");
            ExitCode::from(code)
        }
    }
}

type CliResult = Result<ExitCode, (u8, String)>;

/// The arguments as text: one that is not UTF-8 is a usage error (exit 2), never a panic
/// (`std::env::args` panics on it).
fn utf8_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Vec<String>, (u8, String)> {
    args.enumerate()
        .map(|(i, a)| {
            a.into_string().map_err(|a| {
                usage(format!(
                    "argument {} ({:?}) is not valid UTF-8",
                    i + 1,
                    a.to_string_lossy()
                ))
            })
        })
        .collect()
}

fn usage(msg: impl std::fmt::Display) -> (u8, String) {
    (2, format!("{msg}\n{USAGE}"))
}

fn failed(msg: impl std::fmt::Display) -> (u8, String) {
    (1, msg.to_string())
}

/// The commands are not inlined here (`#[inline(never)]` on each `cmd_*`): inlined, their locals
/// made one stack frame of 19.6 KB on x86_64, below every call of the daemon's life, and stack
/// pages once touched stay in its RSS. Nor is this one inlined into `main` (9.6 KB).
#[inline(never)]
fn run(args: Vec<String>) -> CliResult {
    let mut config_path: Option<PathBuf> = None;
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--config" => {
                config_path = Some(it.next().ok_or_else(|| usage("-c needs a file"))?.into())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                println!("cwmpd {}", env!("CARGO_PKG_VERSION"));
                return Ok(ExitCode::SUCCESS);
            }
            _ => {
                rest.push(a);
                rest.extend(it.by_ref());
            }
        }
    }
    let (cfg, cfg_file) = load_config(config_path.as_ref())?;
    init_log(&cfg);
    if let Some(file) = &cfg_file {
        warn_if_readable(file, &cfg);
    }
    let cmd = rest.first().map(String::as_str).unwrap_or("run");
    let args = rest.get(1..).unwrap_or(&[]);
    match cmd {
        "run" => cmd_run(cfg, args),
        "inform" => cmd_inform(cfg, args),
        "get" => cmd_get(cfg, args),
        "set" => cmd_set(cfg, args),
        "status" => cmd_status(cfg, args),
        "request-download" => cmd_request_download(cfg, args),
        "dhcp-acs" => cmd_dhcp_acs(cfg, args),
        "dhcp-option125" => cmd_dhcp_option125(cfg, args),
        "check" => cmd_check(cfg, args),
        other => Err(usage(format!("unknown command {other:?}"))),
    }
}

/// `cwmpd run`: the daemon, until SIGTERM or SIGINT (exit 0) or SIGHUP (the program starts
/// again with the same arguments).
#[inline(never)]
fn cmd_run(cfg: Config, args: &[String]) -> CliResult {
    no_args("run", args)?;
    // Before any thread starts, so that every thread inherits the mask and only the
    // signal thread sees them.
    let signals = block_signals().map_err(failed)?;
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    wait_for_signals(signals, agent.trigger_sender());
    match agent.run().map_err(failed)? {
        cwmpd::agent::Exit::Stop => Ok(ExitCode::SUCCESS),
        cwmpd::agent::Exit::Reload => {
            drop(agent);
            Err(failed(reexec()))
        }
    }
}

/// `cwmpd inform [--event CODE]…`: one session now.
#[inline(never)]
fn cmd_inform(cfg: Config, args: &[String]) -> CliResult {
    let mut events = Vec::new();
    let mut a = args.iter();
    while let Some(x) = a.next() {
        match x.as_str() {
            "--event" | "-e" => events.push(
                a.next()
                    .ok_or_else(|| usage("--event needs a code"))?
                    .clone(),
            ),
            other => return Err(usage(format!("inform: unexpected {other:?}"))),
        }
    }
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    // One session driver per storage directory.
    let _lock = agent.lock_daemon().map_err(|e| {
        failed(format!(
            "{e}: the daemon runs the sessions itself (stop it to run `cwmpd inform`)"
        ))
    })?;
    agent.note_start().map_err(failed)?;
    for e in &events {
        agent.add_event(e, "").map_err(usage)?;
    }
    // An Inform carries at least one event (TR-069 §3.7.1.5). With nothing pending and
    // none given, this is the device checking in of its own accord, which is what a
    // periodic Inform is: `2 PERIODIC` (the ACS's usual check-in handling runs; the
    // daemon's periodic schedule is not moved).
    if agent.state().events.is_empty() {
        agent
            .add_event(cwmpd::events::PERIODIC, "")
            .map_err(failed)?;
    }
    agent.run_session().map_err(failed)?;
    println!("session completed");
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd get PATH…`: prints the values with their types.
#[inline(never)]
fn cmd_get(cfg: Config, args: &[String]) -> CliResult {
    if args.is_empty() {
        return Err(usage("get needs at least one PATH"));
    }
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    let values = agent
        .engine()
        .values(args)
        .map_err(|f| failed(format!("fault {f}")))?;
    let mut out = String::new();
    for v in &values {
        let ty = v.ty.xsi_type();
        let ty = ty.strip_prefix("xsd:").unwrap_or(ty);
        out.push_str(&format!("{} [{ty}] = {}\n", v.name, v.value));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd set PATH=VALUE…`: writes values, validated like SetParameterValues, while a
/// running daemon waits.
#[inline(never)]
fn cmd_set(cfg: Config, args: &[String]) -> CliResult {
    if args.is_empty() {
        return Err(usage("set needs at least one PATH=VALUE"));
    }
    let list = args
        .iter()
        .map(|a| {
            let (name, value) = a
                .split_once('=')
                .ok_or_else(|| usage(format!("{a:?} is not PATH=VALUE")))?;
            Ok(SetValue {
                name: name.to_string(),
                value: value.to_string(),
                xsi_type: None,
            })
        })
        .collect::<Result<Vec<_>, (u8, String)>>()?;
    // Read, changed and written while a running daemon waits between its loop turns;
    // its next turn reads what was written.
    let _lock = cwmpd::sys::store::Store::open(&cfg.storage.dir)
        .and_then(|s| s.lock_state(Some(std::time::Duration::from_secs(120))))
        .map_err(failed)?;
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    // Committed only once persisted: a change that cannot be recorded is undone.
    agent.engine().hold();
    match agent.engine().set_local(&list) {
        Ok(_) => {}
        Err(f) => {
            agent.engine().settle(false);
            let mut msg = format!("fault {f}");
            for p in f.param_faults() {
                msg.push_str(&format!("\n  {}: {}", p.name, p.fault));
            }
            return Err(failed(msg));
        }
    }
    let saved = agent.persist();
    agent.engine().settle(saved.is_ok());
    saved.map_err(|e| failed(format!("{e}; nothing was changed")))?;
    for f in agent.engine().end_session() {
        eprintln!("cwmpd: deferred change failed: {f}");
    }
    agent.persist().map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd status`: the last session, the retry count, what is pending.
#[inline(never)]
fn cmd_status(cfg: Config, args: &[String]) -> CliResult {
    no_args("status", args)?;
    let agent = Agent::new(cfg).map_err(|e| (2, e.to_string()))?;
    let st = agent.state();
    match &st.last_session {
        Some(l) => println!(
            "last session: {} (every session since {})",
            l.result,
            cwmpd::cwmp::time::format_datetime_utc(l.time)
        ),
        None => println!("last session: never"),
    }
    println!("retry count: {}", st.retry_count);
    let pending: Vec<String> = st.events.pending().map(|e| e.to_string()).collect();
    println!(
        "pending events: {}",
        if pending.is_empty() {
            "none".to_string()
        } else {
            pending.join(", ")
        }
    );
    for s in &st.scheduled {
        println!(
            "scheduled inform: {} ({})",
            cwmpd::cwmp::time::format_datetime_utc(s.at),
            s.command_key
        );
    }
    for t in &st.transfers.list {
        println!(
            "transfer: {:?} {} {} {:?}{}",
            t.command_key,
            t.file_type,
            cwmpd::http::url::redact(&t.url),
            t.state,
            if t.state == cwmpd::transfer::State::Done {
                format!(" (fault {})", t.fault_code)
            } else {
                String::new()
            }
        );
    }
    if let Some(r) = &st.reboot {
        println!("reboot pending: {:?}", r.command_keys);
    }
    if st.factory_reset.is_some() {
        println!("factory reset pending");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd request-download FILETYPE [NAME=VALUE]…`: queues a RequestDownload for the
/// daemon's next session.
#[inline(never)]
fn cmd_request_download(cfg: Config, args: &[String]) -> CliResult {
    // §A.4.2.1: the daemon's next session asks the ACS for a file of this type.
    let file_type = args
        .first()
        .ok_or_else(|| usage("request-download needs a FILETYPE"))?;
    let list = args
        .get(1..)
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            let (name, value) = a
                .split_once('=')
                .ok_or_else(|| usage(format!("{a:?} is not NAME=VALUE")))?;
            Ok(cwmpd::agent::FileTypeArg {
                name: name.to_string(),
                value: value.to_string(),
            })
        })
        .collect::<Result<Vec<_>, (u8, String)>>()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("rd-{nanos}-{}", std::process::id());
    let req = cwmpd::agent::DownloadRequest {
        name: name.clone(),
        file_type: file_type.trim().to_string(),
        args: list,
    };
    cwmpd::agent::validate_request(&req).map_err(usage)?;
    let dir = cfg.storage.dir.join(cwmpd::agent::REQUESTS_DIR);
    let mut store = cwmpd::sys::store::Store::open(&dir).map_err(failed)?;
    store.save(&name, &req).map_err(failed)?;
    println!("queued");
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd dhcp-acs v4|v6 HEX`: the DHCP clients' hooks hand over DHCPv4 option 43 or DHCPv6
/// option 17 (TR-069 §3.1) as the clients print it; the daemon takes the ACS settings it
/// carries (`[acs] dhcp_discovery`). An empty option (a lease without it) does nothing. Exit 0
/// when queued or nothing to do, 1 when the option is malformed, 2 on a usage error.
#[inline(never)]
fn cmd_dhcp_acs(cfg: Config, args: &[String]) -> CliResult {
    let (Some(family), hex, None) = (args.first(), args.get(1), args.get(2)) else {
        return Err(usage("dhcp-acs needs v4|v6 and the option's HEX"));
    };
    let f = cwmpd::dhcp::Family::parse(family)
        .ok_or_else(|| usage(format!("{family:?} is not v4 or v6")))?;
    let hex = hex.map(String::as_str).unwrap_or_default();
    if hex.trim().is_empty() {
        println!("no option");
        return Ok(ExitCode::SUCCESS);
    }
    let d = cwmpd::dhcp::unhex(hex)
        .and_then(|b| cwmpd::dhcp::parse(f, &b))
        .map_err(failed)?;
    if d.url.is_empty() && d.provisioning_code.is_none() {
        println!("no ACS settings in the option");
        return Ok(ExitCode::SUCCESS);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        "{}{nanos:024}-{}",
        cwmpd::agent::DHCP_REQUEST_PREFIX,
        std::process::id()
    );
    let family = if f == cwmpd::dhcp::Family::V4 {
        "v4"
    } else {
        "v6"
    };
    let req = cwmpd::agent::DhcpRequest::new(family, d);
    let dir = cfg.storage.dir.join(cwmpd::agent::REQUESTS_DIR);
    // A renewal that brings nothing new (or what the config does not use) writes nothing.
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    let changes = match agent.dhcp_changes(&req) {
        Ok(list) if list.is_empty() => {
            println!("nothing new");
            return Ok(ExitCode::SUCCESS);
        }
        Ok(list) => list,
        Err(why) => {
            println!("not used: {why}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut store = cwmpd::sys::store::Store::open(&dir).map_err(failed)?;
    store.save(&name, &req).map_err(failed)?;
    let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    println!("queued: {}", names.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd dhcp-option125`: prints DHCPv4 option 125's value with the device's identity (TR-111
/// Part 1: OUI, serial number, product class of enterprise 3561) as hex, for udhcpc's
/// `-x 0x7d:HEX` (the OpenWrt package sets it as the WAN's `sendopts`).
#[inline(never)]
fn cmd_dhcp_option125(cfg: Config, args: &[String]) -> CliResult {
    no_args("dhcp-option125", args)?;
    let mut agent = Agent::new_boxed(cfg).map_err(|e| (2, e.to_string()))?;
    let id = cwmpd::datamodel::management::Identity::read(agent.engine());
    let o = cwmpd::dhcp::option125(&id.manufacturer_oui, &id.serial_number, &id.product_class);
    println!("{}", cwmpd::dhcp::hex(&o));
    Ok(ExitCode::SUCCESS)
}

/// `cwmpd check`: validates the config and the data model files.
#[inline(never)]
fn cmd_check(cfg: Config, args: &[String]) -> CliResult {
    no_args("check", args)?;
    let model = cfg
        .model()
        .ok_or_else(|| (2, "invalid data_model".to_string()))?;
    let schema = cfg
        .datamodel
        .schema(model)
        .map_err(|e| (2, e.to_string()))?;
    println!(
        "ok: config valid; data model {} ({}) with {} parameter definitions in {} objects, {} vendor script(s)",
        schema.root(),
        cfg.datamodel.kind().name(),
        schema
            .objects()
            .iter()
            .map(|o| o.params.len())
            .sum::<usize>(),
        schema.objects().len(),
        schema.scripts().len()
    );
    Ok(ExitCode::SUCCESS)
}

fn no_args(cmd: &str, args: &[String]) -> Result<(), (u8, String)> {
    match args.first() {
        None => Ok(()),
        Some(a) => Err(usage(format!("{cmd}: unexpected {a:?}"))),
    }
}

/// The config and the file it was read from (`None`: the embedded default).
#[inline(never)]
fn load_config(path: Option<&PathBuf>) -> Result<(Config, Option<PathBuf>), (u8, String)> {
    let file = match path {
        Some(p) => Some(p.clone()),
        None => [config::DEFAULT_PATH, config::UCI_PATH]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists()),
    };
    match file {
        Some(f) => Config::load(&f)
            .map(|c| (c, Some(f)))
            .map_err(|e| (2, e.to_string())),
        None => Ok((Config::embedded(), None)),
    }
}

/// The signals the daemon handles: blocked here (in the main thread, before any other thread
/// exists) and received by one thread with `sigwait`.
fn block_signals() -> Result<nix::sys::signal::SigSet, String> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    Ok(set)
}

/// SIGTERM and SIGINT stop the loop between two writes; SIGHUP makes it re-read the config.
/// Processes the agent starts get an empty signal mask (std resets it when it spawns).
fn wait_for_signals(
    set: nix::sys::signal::SigSet,
    tx: std::sync::mpsc::Sender<cwmpd::agent::Trigger>,
) {
    use cwmpd::agent::Trigger;
    use nix::sys::signal::Signal;
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let trigger = match set.wait() {
                Ok(Signal::SIGHUP) => Trigger::Reload,
                Ok(_) => Trigger::Stop,
                Err(_) => continue,
            };
            if tx.send(trigger).is_err() {
                return;
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the signal thread: {e}; SIGTERM and SIGHUP are not handled");
    }
}

/// Starts this program again with the same arguments (SIGHUP): the configuration is read anew
/// and every part starts from it, with the state the store kept. Returns only on failure.
fn reexec() -> String {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return format!("cannot find the program to restart: {e}"),
    };
    let e = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    format!("cannot restart {}: {e}", exe.display())
}

/// A config file that holds a password should be readable by root only.
#[inline(never)]
fn warn_if_readable(path: &std::path::Path, cfg: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let secrets = !cfg.acs.password.is_empty() || !cfg.connection_request.password.is_empty();
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if secrets && mode & 0o077 != 0 {
        log::warn!(
            "{}: holds passwords but has mode {mode:o}: other local users can read them (chmod 600)",
            path.display()
        );
    }
}

/// Logging goes to syslog with real severities on OpenWrt (`[log] target`), else to stderr.
#[inline(never)]
fn init_log(cfg: &Config) {
    let syslog = match cfg.log.target.as_str() {
        "syslog" => true,
        "auto" => cfg.datamodel.openwrt(),
        _ => false,
    };
    cwmpd::sys::syslog::init(cfg.log_level(), syslog);
}
