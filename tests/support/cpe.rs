//! The CPE side of the end-to-end tests: a temporary directory with a config file, the real
//! `cwmpd` binary run as a daemon or as a CLI command (bounded), and the ACS request helpers the
//! test files share.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::acs::{Acs, Call, Exchange, SessionRecord};
use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::value::{ParameterInfo, SetAttributes};
use cwmpd::soap::{AcsRequest, CpeResponse};

/// The `cwmpd` binary under test: `$CARGO_BIN_EXE_cwmpd` (set by Cargo when it runs an
/// integration test or a bench of cwmpd, since Cargo 1.8x also at run time), else `cwmpd` in the
/// profile directory above the running test binary (`target/<profile>/deps/<test>` →
/// `target/<profile>/cwmpd`), where Cargo builds it before any integration test or bench.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CARGO_BIN_EXE_cwmpd").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("the path of the running test binary");
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary runs from target/<profile>/deps/");
        let bin = profile.join("cwmpd");
        assert!(
            bin.is_file(),
            "no cwmpd binary at {} (run the tests with cargo)",
            bin.display()
        );
        bin
    })
}
pub const USER: &str = "cpe-it";
pub const PASS: &str = "it-s3cret";
pub const SERIAL: &str = "IT0000000001";
/// Bound on one CLI run; generous because two cores are shared with the build.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on waiting for sessions.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn gpn_req(path: &str, next_level: bool) -> Call {
    AcsRequest::GetParameterNames {
        path: path.into(),
        next_level,
    }
    .into()
}

pub fn gpv_req(names: &[&str]) -> Call {
    AcsRequest::GetParameterValues {
        names: names.iter().map(|n| n.to_string()).collect(),
    }
    .into()
}

pub fn spv_req(list: &[(&str, &str, BaseType)], key: &str) -> Call {
    cwmpd::soap::acs::set_parameter_values(list, key).into()
}

pub fn spa_req(name: &str, notification: u8) -> Call {
    AcsRequest::SetParameterAttributes {
        list: vec![SetAttributes {
            name: name.into(),
            notification_change: true,
            notification,
            access_list_change: false,
            access_list: Vec::new(),
        }],
    }
    .into()
}

pub fn add_req_at(object: &str, key: &str) -> Call {
    AcsRequest::AddObject {
        object_name: object.into(),
        parameter_key: key.into(),
    }
    .into()
}

pub fn delete_req(object: &str, key: &str) -> Call {
    AcsRequest::DeleteObject {
        object_name: object.into(),
        parameter_key: key.into(),
    }
    .into()
}

pub fn gpn(e: &Exchange) -> Vec<ParameterInfo> {
    match &e.response {
        Ok(CpeResponse::GetParameterNames { list }) => list.clone(),
        r => panic!("{} answered {r:?}", e.call.method()),
    }
}

pub fn gpv(e: &Exchange) -> Vec<cwmpd::cwmp::value::ParameterValue> {
    match &e.response {
        Ok(CpeResponse::GetParameterValues { list }) => list.to_vec(),
        r => panic!("{} answered {r:?}", e.call.method()),
    }
}

/// A TCP port on 127.0.0.1 free a moment ago (nothing listens on it, for the moment).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The values of a session's GetParameterValues, by name.
pub fn gpv_values(s: &SessionRecord) -> BTreeMap<String, String> {
    s.calls("GetParameterValues")
        .iter()
        .flat_map(|e| gpv(e))
        .map(|p| (p.name, p.value))
        .collect()
}

pub fn instance(e: &Exchange) -> u32 {
    match &e.response {
        Ok(CpeResponse::AddObject {
            instance_number, ..
        }) => *instance_number,
        r => panic!("{} answered {r:?}", e.call.method()),
    }
}

pub fn fault_code(e: &Exchange) -> Option<u32> {
    e.fault().map(|f| f.code())
}

pub fn has_name(list: &[ParameterInfo], name: &str, writable: Option<bool>) -> bool {
    list.iter()
        .any(|p| p.name == name && writable.is_none_or(|w| p.writable == w))
}

pub fn value<'a>(
    list: &'a [cwmpd::cwmp::value::ParameterValue],
    name: &str,
) -> Option<(&'a str, BaseType)> {
    list.iter()
        .find(|p| p.name == name)
        .map(|p| (p.value.as_str(), p.ty))
}

/// Polls `f` every 100 ms until it gives a value or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub use crate::tempdir::TempDir;

/// One CPE: a temp dir with its config file and storage.
pub struct Cpe {
    pub dir: TempDir,
    pub cfg: PathBuf,
}

impl Cpe {
    pub fn new(tag: &str, url: &str, ca_file: Option<&Path>) -> Cpe {
        Cpe::with_interval(tag, url, ca_file, 3600)
    }

    pub fn with_interval(tag: &str, url: &str, ca_file: Option<&Path>, interval: u32) -> Cpe {
        Cpe::with_config(tag, url, ca_file, interval, |_| String::new())
    }

    /// A CPE whose config ends with `extra(dir)` (e.g. a `[datamodel]` section with paths in
    /// the CPE's own directory).
    pub fn with_config(
        tag: &str,
        url: &str,
        ca_file: Option<&Path>,
        interval: u32,
        extra: impl FnOnce(&Path) -> String,
    ) -> Cpe {
        let dir = TempDir::new(tag);
        let cfg = dir.path().join("cwmpd.toml");
        let ca = ca_file
            .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
            .unwrap_or_default();
        let text = format!(
            "[acs]\n\
             url = {url:?}\n\
             username = {USER:?}\n\
             password = {PASS:?}\n\
             {ca}\
             periodic_inform_interval = {interval}\n\
             retry_minimum_wait_interval = 1\n\
             retry_interval_multiplier = 1000\n\
             timeout = 5\n\
             \n\
             [device]\n\
             manufacturer = \"cwmpd-it\"\n\
             oui = \"00D0F8\"\n\
             product_class = \"ItRouter\"\n\
             serial_number = {SERIAL:?}\n\
             software_version = \"9.8.7\"\n\
             \n\
             [connection_request]\n\
             listen = \"127.0.0.1:0\"\n\
             \n\
             [storage]\n\
             dir = {:?}\n\
             \n\
             [log]\n\
             level = \"debug\"\n\
             target = \"stderr\"\n",
            dir.path().join("state").display().to_string()
        );
        let text = text + &extra(dir.path());
        std::fs::write(&cfg, text).expect("write config");
        Cpe { dir, cfg }
    }

    /// A CPE whose `[connection_request]` section gets `cr_lines` (TOML `key = value` lines)
    /// after its `listen = "127.0.0.1:0"`: TOML forbids a second `[connection_request]` table,
    /// so the lines go into the one the config writer made (`listen`: [`Cpe::with_cr_listen`]).
    pub fn with_cr(tag: &str, url: &str, cr_lines: &str) -> Cpe {
        Cpe::with_cr_listen(tag, url, "127.0.0.1:0", cr_lines)
    }

    /// [`Cpe::with_cr`] with another `listen` address (e.g. a fixed port that must stay the
    /// same across a restart of the daemon).
    pub fn with_cr_listen(tag: &str, url: &str, listen: &str, cr_lines: &str) -> Cpe {
        let cpe = Cpe::new(tag, url, None);
        let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
        let anchor = "[connection_request]\nlisten = \"127.0.0.1:0\"\n";
        assert!(
            text.contains(anchor),
            "no {anchor:?} in the config:\n{text}"
        );
        let mut lines = cr_lines.to_string();
        if !lines.is_empty() && !lines.ends_with('\n') {
            lines.push('\n');
        }
        let section = format!("[connection_request]\nlisten = {listen:?}\n{lines}");
        let text = text.replacen(anchor, &section, 1);
        std::fs::write(&cpe.cfg, text).expect("write config");
        cpe
    }

    pub fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<String> {
        let mut v = vec!["-c".to_string(), self.cfg.display().to_string()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }

    /// Runs one CLI command to completion (bounded).
    pub fn cli(&self, rest: &[&str]) -> Out {
        let args = self.args(rest);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs)
    }

    /// Runs one CLI command to completion (bounded) inside the network namespace `netns`
    /// (`ip netns exec`): the agent then reads that namespace's kernel.
    pub fn cli_in(&self, netns: &str, rest: &[&str]) -> Out {
        let args = self.args(rest);
        let mut all = vec!["netns", "exec", netns, bin().to_str().expect("UTF-8 path")];
        all.extend(args.iter().map(String::as_str));
        run_program(Path::new("ip"), &all)
    }

    /// Starts `cwmpd -c cfg run` inside the network namespace `netns`.
    pub fn spawn_run_in(&self, netns: &str) -> Daemon {
        let log = self.dir.path().join(format!("daemon-{}.log", rand_tag()));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("clone log file");
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(bin())
            .args(self.args(&["run"]))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("spawn ip netns exec cwmpd run");
        Daemon { child, log }
    }

    /// Starts `cwmpd -c cfg run`.
    pub fn spawn_run(&self) -> Daemon {
        self.spawn_run_env(&[])
    }

    /// [`Cpe::spawn_run`] with `env` added to the daemon's environment (its hooks inherit it).
    pub fn spawn_run_env(&self, env: &[(&str, &str)]) -> Daemon {
        let log = self.dir.path().join(format!("daemon-{}.log", rand_tag()));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("clone log file");
        let child = Command::new(bin())
            .args(self.args(&["run"]))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("spawn cwmpd run");
        Daemon { child, log }
    }
}

/// A number unique within this test process.
pub fn rand_tag() -> usize {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// A running `cwmpd run`, SIGKILLed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, reap, and return the log.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cwmpd inform` at `cpe` (it must exit 0; `what` names it in a failure) and waits for `n`
/// completed sessions at `acs`; returns them.
pub fn inform_and_wait(acs: &Acs, cpe: &Cpe, what: &str, n: usize) -> Vec<SessionRecord> {
    let out = cpe.cli(&["inform"]);
    out.assert_code(0, what);
    acs.wait_sessions(n, WAIT)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{out}"))
}

/// Kills `daemon` (a power cut) and starts `cpe` again, then waits for a completed session whose
/// Inform carries the event `method` (e.g. `M ScheduleInform`, TR-069 §3.7.1.5 Table 7) with
/// the CommandKey `key`; returns the new daemon and every session so far.
pub fn restart_until_reported(
    acs: &Acs,
    cpe: &Cpe,
    daemon: Daemon,
    method: &str,
    key: &str,
) -> (Daemon, Vec<SessionRecord>) {
    let _ = daemon.kill();
    let daemon = cpe.spawn_run();
    let all = acs
        .wait_for(WAIT, |s| {
            s.iter()
                .any(|s| s.completed && s.command_key(method) == Some(key))
        })
        .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
    (daemon, all)
}

/// The outcome of a CLI run.
pub struct Out {
    pub args: Vec<String>,
    /// `None` when killed at the deadline.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(self.code, Some(code), "{what}: {self}");
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The `NAME [TYPE] = VALUE` lines of `cwmpd get`, as name → (type, value); panics on a
    /// line of another shape.
    pub fn typed_values(&self) -> BTreeMap<String, (String, String)> {
        self.stdout
            .lines()
            .map(|l| {
                let (name, rest) = l
                    .split_once(" [")
                    .unwrap_or_else(|| panic!("not NAME [TYPE] = VALUE: {l:?}"));
                let (ty, value) = rest
                    .split_once("] = ")
                    .or_else(|| rest.strip_suffix("] =").map(|t| (t, "")))
                    .unwrap_or_else(|| panic!("not NAME [TYPE] = VALUE: {l:?}"));
                (name.to_string(), (ty.to_string(), value.to_string()))
            })
            .collect()
    }

    /// The lines of `cwmpd get` as name → value.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.typed_values()
            .into_iter()
            .map(|(name, (_, value))| (name, value))
            .collect()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`cwmpd {}` exited {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs the binary with `args`, killing it at [`CLI_TIMEOUT`].
pub fn run(args: &[&str]) -> Out {
    run_program(bin(), args)
}

/// Runs `program` with `args`, killing it at [`CLI_TIMEOUT`].
pub fn run_program(program: &Path, args: &[&str]) -> Out {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cwmpd");
    let (out, err) = read_output(&mut child);
    let deadline = Instant::now() + CLI_TIMEOUT;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Out {
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Reads a spawned child's piped stdout and stderr to their ends in two threads (so neither
/// pipe fills and blocks it); join them once it exited.
pub fn read_output(child: &mut Child) -> (thread::JoinHandle<String>, thread::JoinHandle<String>) {
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    (out, err)
}
