//! Resilience bench of the Connection Request listener (TR-069 §3.2.2): the port that
//! faces the internet, attacked while a valid ACS keeps asking for sessions.
//!
//! The real release `cwmpd` runs as a daemon on 127.0.0.1 with no ACS (no session happens) and
//! `max_connections = 8`. A sampler thread reads its `/proc/PID/status` (VmRSS, VmHWM, Threads)
//! every 20 ms. Each attack phase runs while a prober makes valid Connection Requests (plain
//! GET, 401, then the digest retry per RFC 7616 with MD5 and `qop=auth`, as GenieACS does) and
//! times each from connect to the 200:
//!
//! - a: 10,000 unauthenticated GETs (half the clients keep-alive, half a new connection each);
//! - b: 500 slowloris connections (a partial request line, then one byte a second, for ~8 s;
//!   the ones the server closes are reopened, as an attacker would, within a bounded budget);
//! - c: 1 MiB of header bytes on one connection, then on several in parallel (repeated for a
//!   few seconds);
//! - d: garbage: random binary, NULs, a 1 MiB request line without newline, thousands of tiny
//!   headers, on many connections;
//! - e: all of them at once;
//! - f: the UDP Connection Request port (TR-069 Annex G; `udp = "always"`) flooded for 4 s from
//!   4 threads with random datagrams, requests with forged signatures, 1,500-byte requests and
//!   replays of a request accepted before, 20,000 datagrams a second in all (about a 100 Mbit/s
//!   WAN link full of them), while valid signed requests (a new `id` each, three copies as
//!   GenieACS sends) go out every 100 ms: each must be served (the agent's own count, its
//!   summary every second, is read from its log), with the agent's CPU time per datagram;
//! - g: the same unpaced, as fast as the bench's threads send (beyond what one thread can read
//!   on this machine while the senders share its cores): the share of valid requests served is
//!   printed, and at least one must be.
//!
//! The same phases a–c then run against a minimal `tiny_http` 0.12 server (the alternative the
//! issue names) in a child process: this bench's own executable re-run with `CR_ATTACK_TINY_HTTP`
//! set. It answers 401 with a Digest challenge to everything except a valid digest, which gets
//! 200 (so the valid-request latency means the same thing on both). tiny_http 0.12 has no knob
//! for read deadlines, a header cap or a thread cap, so it runs as shipped.
//!
//! Figures per phase: the peak RSS growth over the baseline (taken after three valid requests,
//! before the first attack), the RSS one second after the phase, the peak thread count, and the
//! valid requests' latency and outcomes. The issue's targets (RSS growth ≤ 1 MiB, threads ≤ the
//! connection cap + the threads the process had at rest, a valid request served in < 1 s) get a
//! PASS/FAIL per row; a miss is printed, not turned into an exit code.
//!
//! `cargo bench --bench cr_attack` (harness = false; about one minute). Every loop is bounded
//! in count and time, every socket has deadlines, traffic goes only to 127.0.0.1, and the
//! children are killed on every exit path (a drop guard; the tiny_http child also exits by
//! itself once its parent is gone). `CR_ATTACK_ONLY=agent` or `=tiny_http` runs one side.
#![forbid(unsafe_code)]

use support::rng::Rng;
use support::tempdir;
use tempdir::TempDir;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

/// The Connection Request credentials both servers check.
const USER: &str = "acs-cr";
const PASS: &str = "cr-s3cret";
/// The realm the tiny_http server announces (the agent's default is the same).
const REALM: &str = "cwmpd";
/// The ConnectionRequestURL's path.
const CR_PATH: &str = "/cr";
/// The agent's `max_connections` (and the thread allowance given to tiny_http).
const MAX_CONNECTIONS: u64 = 8;
/// The agent's `request_timeout`, seconds.
const REQUEST_TIMEOUT_S: u64 = 5;
/// The variable that switches `main` into the tiny_http server (value: the address).
const TINY_ENV: &str = "CR_ATTACK_TINY_HTTP";
/// The whole run stops attacking after this long, whatever happens.
const RUN_BUDGET: Duration = Duration::from_secs(170);

/// Phase a.
const UNAUTH_REQUESTS: usize = 10_000;
const FLOOD_THREADS: usize = 4;
/// Phase b.
const SLOW_CONNS: usize = 500;
const SLOW_THREADS: usize = 5;
const SLOW_HOLD_S: u32 = 8;
/// Reopened slowloris connections allowed per initial connection (over the whole hold).
const SLOW_REOPEN_FACTOR: usize = 8;
/// Phase c.
const BIG_HEADER_BYTES: usize = 1 << 20;
const BIG_PARALLEL: usize = 4;
const BIG_MAX_ROUNDS: usize = 1_000;
/// Phase d.
const GARBAGE_MIN_CONNS: usize = 200;
const GARBAGE_MAX_CONNS: usize = 8_000;
const GARBAGE_THREADS: usize = 8;
/// Phases c and d repeat until they have lasted this long (so valid requests meet them).
const MIN_ATTACK: Duration = Duration::from_millis(2_500);

/// Valid requests per phase.
const PROBES_MIN: usize = 3;
const PROBES_MAX: usize = 40;
/// Deadline of every read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on a response head the bench reads.
const MAX_RESPONSE: usize = 16 * 1024;

/// The issue's targets.
const RSS_TARGET_KIB: i64 = 1024;
const CR_TARGET: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    if let Ok(addr) = std::env::var(TINY_ENV) {
        return tiny_server(&addr);
    }
    let _ = START.set(Instant::now());
    let only = std::env::var("CR_ATTACK_ONLY").unwrap_or_default();
    println!("Connection Request listener under attack; traffic to 127.0.0.1 only.");
    println!(
        "Targets: RSS growth <= {RSS_TARGET_KIB} KiB, threads bounded by the cap \
         ({MAX_CONNECTIONS}), valid request < {} ms.\n",
        CR_TARGET.as_millis()
    );
    let mut misses = Vec::new();
    if only.is_empty() || only == "agent" {
        let phases = [
            Phase::Unauth,
            Phase::Slowloris,
            Phase::BigHeaders,
            Phase::Garbage,
            Phase::All,
            Phase::Udp,
            Phase::UdpMax,
        ];
        match measure("cwmpd", Target::agent, &phases) {
            Ok(m) => misses.extend(m),
            Err(e) => println!("cwmpd: NOT MEASURED: {e}\n"),
        }
    }
    if only.is_empty() || only == "tiny_http" {
        let phases = [Phase::Unauth, Phase::Slowloris, Phase::BigHeaders];
        match measure("tiny_http 0.12", Target::tiny_http, &phases) {
            Ok(m) => misses.extend(m),
            Err(e) => println!("tiny_http: NOT MEASURED: {e}\n"),
        }
    }
    if misses.is_empty() {
        println!("All measured rows meet the targets.");
    } else {
        println!("Targets MISSED ({}):", misses.len());
        for m in &misses {
            println!("  {m}");
        }
    }
    println!(
        "Total time: {:.1} s",
        START.get().map_or(0.0, |s| s.elapsed().as_secs_f64())
    );
    ExitCode::SUCCESS
}

static START: OnceLock<Instant> = OnceLock::new();

/// Whether the run's budget is spent (every loop checks it).
fn out_of_time() -> bool {
    START.get().is_some_and(|s| s.elapsed() > RUN_BUDGET)
}

/// Starts one server, runs the phases against it, prints its table; returns the missed targets.
fn measure(
    name: &str,
    start: fn(&TempDir) -> Result<Target, String>,
    phases: &[Phase],
) -> Result<Vec<String>, String> {
    let dir = TempDir::new("cr-attack");
    let target = start(&dir)?;
    println!(
        "{name}: pid {}, listening on {}; at rest: RSS {} KiB, {} threads",
        target.pid, target.ep.addr, target.base.rss, target.base.threads
    );
    if !target.warmup.is_empty() {
        println!("  warm-up valid requests: {}", target.warmup);
    }
    let mut rows = Vec::new();
    for &phase in phases {
        if out_of_time() {
            println!("  run budget spent: phase {} skipped", phase.name());
            break;
        }
        if !target.alive() {
            println!(
                "  {name} is no longer running: phase {} skipped",
                phase.name()
            );
            break;
        }
        let row = run_phase(&target, phase);
        println!(
            "  phase {} done in {:.1} s: {}",
            phase.name(),
            row.took.as_secs_f64(),
            row.detail
        );
        rows.push(row);
    }
    let alive = target.alive();
    let hwm = target.sampler.snapshot().cur.hwm;
    println!();
    print_table(name, &target, &rows);
    println!(
        "  {name} still running after the attacks: {}; VmHWM {} KiB ({:+} KiB over rest)",
        if alive { "yes" } else { "NO" },
        hwm,
        hwm as i64 - target.base.hwm as i64
    );
    if let Some(log) = target.log_summary() {
        println!("  {log}");
    }
    println!();
    let mut misses = Vec::new();
    if !alive {
        misses.push(format!("{name}: the process died during the attacks"));
    }
    for r in &rows {
        for m in r.misses(&target) {
            misses.push(format!("{name}, phase {}: {m}", r.phase.name()));
        }
    }
    Ok(misses)
}

/// The attack phases.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Unauth,
    Slowloris,
    BigHeaders,
    Garbage,
    All,
    Udp,
    UdpMax,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Unauth => "a unauth",
            Phase::Slowloris => "b slowloris",
            Phase::BigHeaders => "c 1MiB headers",
            Phase::Garbage => "d garbage",
            Phase::All => "e all at once",
            Phase::Udp => "f udp 20k/s",
            Phase::UdpMax => "g udp max",
        }
    }
}

/// Where the server listens.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    /// The server's process and its log (the UDP phase reads the agent's counts there).
    pid: u32,
    log: std::path::PathBuf,
    /// The Host header value (`127.0.0.1:PORT`, the URL's host).
    host: String,
}

/// One server under test: the child, its sampler, and its figures at rest.
struct Target {
    ep: Endpoint,
    pid: u32,
    child: Mutex<ChildGuard>,
    sampler: Sampler,
    base: Mem,
    warmup: String,
    log: std::path::PathBuf,
    /// The server starts its `max_connections` workers with the listener (cwmpd): the thread
    /// count at rest already includes the cap, and nothing may come on top of it.
    pool_at_rest: bool,
}

impl Target {
    /// Most threads allowed: at rest, plus the cap when threads are made per connection.
    fn thread_limit(&self) -> u64 {
        self.base.threads
            + if self.pool_at_rest {
                0
            } else {
                MAX_CONNECTIONS
            }
    }

    /// The real agent with a temp config (storage in `dir`, no ACS).
    fn agent(dir: &TempDir) -> Result<Target, String> {
        let port = free_port()?;
        let cfg = dir.path().join("cwmpd.toml");
        let text = format!(
            "[acs]\n\
             url = \"\"\n\
             \n\
             [connection_request]\n\
             listen = \"127.0.0.1:{port}\"\n\
             url = \"http://127.0.0.1:{port}{CR_PATH}\"\n\
             username = {USER:?}\n\
             password = {PASS:?}\n\
                          rate_burst = 1000000\n\
             max_connections = {MAX_CONNECTIONS}\n\
             udp = \"always\"\n\
             summary_interval = 1\n\
             request_timeout = {REQUEST_TIMEOUT_S}\n\
             \n\
             [storage]\n\
             dir = {:?}\n\
             \n\
             [datamodel]\n\
             platform = \"generic\"\n\
             \n\
                          [log]\n\
             level = \"info\"\n",
            dir.path().join("state").display().to_string()
        );
        std::fs::write(&cfg, text).map_err(|e| format!("cannot write the config: {e}"))?;
        let cfg = cfg.display().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwmpd"));
        cmd.args(["-c", cfg.as_str(), "run"]);
        println!(
            "cwmpd: max_connections = {MAX_CONNECTIONS}, request_timeout = {REQUEST_TIMEOUT_S} s, \
             rate_burst = 1000000, UDP requests on the same port, summaries every second, log level info"
        );
        let mut t = Target::start(dir, cmd, port, "agent.log")?;
        t.pool_at_rest = true;
        Ok(t)
    }

    /// The tiny_http comparison server: this executable in server mode.
    fn tiny_http(dir: &TempDir) -> Result<Target, String> {
        let port = free_port()?;
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.env(TINY_ENV, format!("127.0.0.1:{port}"));
        Target::start(dir, cmd, port, "tiny_http.log")
    }

    /// Spawns `cmd` (output to a log file in `dir`), waits for the port, warms it up with valid
    /// requests and takes the figures at rest.
    fn start(dir: &TempDir, mut cmd: Command, port: u16, log: &str) -> Result<Target, String> {
        let log = dir.path().join(log);
        let out = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start: {e}"))?;
        let pid = child.id();
        let mut guard = ChildGuard(child);
        let ep = Endpoint {
            pid,
            log: log.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: format!("127.0.0.1:{port}"),
        };
        wait_listening(&mut guard, &ep, &log)?;
        let sampler = Sampler::start(pid);
        let mut warm = Counts::new();
        for _ in 0..3 {
            *warm.entry(outcome_label(&valid_cr(&ep))).or_default() += 1;
        }
        thread::sleep(Duration::from_millis(500));
        let base = sampler.rest();
        Ok(Target {
            ep,
            pid,
            child: Mutex::new(guard),
            sampler,
            base,
            warmup: fmt_counts(&warm),
            log,
            pool_at_rest: false,
        })
    }

    fn alive(&self) -> bool {
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(c.0.try_wait(), Ok(None))
    }

    /// What the log says that matters: its size, panics, errors, the rejected-request summary.
    fn log_summary(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let panics = lines.iter().filter(|l| l.contains("panic")).count();
        let summaries = lines
            .iter()
            .filter(|l| l.contains("connection requests rejected"))
            .count();
        let mut s = format!(
            "log: {} lines, {} KiB, {panics} with \"panic\", {summaries} rejected-request summaries",
            lines.len(),
            text.len() / 1024
        );
        let shown: Vec<&&str> = if lines.len() <= 5 {
            lines.iter().collect()
        } else {
            lines
                .iter()
                .filter(|l| l.contains("panic") || l.contains("ERROR"))
                .take(5)
                .collect()
        };
        for l in shown {
            let _ = write!(s, "\n    | {}", l.chars().take(200).collect::<String>());
        }
        Some(s)
    }
}

/// A child process killed and reaped on drop (every exit path, panics included).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Waits (10 s at most) until the port accepts, or fails if the child exits first.
fn wait_listening(child: &mut ChildGuard, ep: &Endpoint, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "exited ({status}) before listening: {}",
                tail.join(" | ")
            ));
        }
        if TcpStream::connect_timeout(&ep.addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} does not accept connections after 10 s",
                ep.addr
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling /proc/PID/status.

/// One sample.
#[derive(Clone, Copy, Default)]
struct Mem {
    /// VmRSS, KiB.
    rss: u64,
    /// VmHWM, KiB.
    hwm: u64,
    threads: u64,
}

#[derive(Default)]
struct Samples {
    cur: Mem,
    peak_rss: u64,
    peak_threads: u64,
    count: u64,
    gone: bool,
}

/// A thread that reads `/proc/PID/status` every 20 ms and keeps the peaks.
struct Sampler {
    shared: Arc<Mutex<Samples>>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let shared = Arc::new(Mutex::new(Samples::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&shared), Arc::clone(&stop));
        let handle = thread::spawn(move || {
            // Bounded by the stop flag and, whatever happens, by the run budget plus a minute.
            let end = Instant::now() + RUN_BUDGET + Duration::from_secs(60);
            while !st.load(Ordering::Relaxed) && Instant::now() < end {
                let m = read_status(pid);
                {
                    let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
                    match m {
                        Some(m) => {
                            g.cur = m;
                            g.peak_rss = g.peak_rss.max(m.rss);
                            g.peak_threads = g.peak_threads.max(m.threads);
                            g.count += 1;
                        }
                        None => g.gone = true,
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler {
            shared,
            stop,
            handle: Some(handle),
        }
    }

    fn snapshot(&self) -> Samples {
        let g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        Samples {
            cur: g.cur,
            peak_rss: g.peak_rss,
            peak_threads: g.peak_threads,
            count: g.count,
            gone: g.gone,
        }
    }

    /// Starts a new peak window at the current values.
    fn reset_peaks(&self) {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        g.peak_rss = g.cur.rss;
        g.peak_threads = g.cur.threads;
    }

    /// The figures at rest: the median RSS of five samples 100 ms apart.
    fn rest(&self) -> Mem {
        let mut v = Vec::new();
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(100));
            v.push(self.snapshot().cur);
        }
        v.sort_by_key(|m| m.rss);
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read_status(pid: u32) -> Option<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.get(name.len()..)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    // A zombie has no VmRSS line: it counts as gone.
    Some(Mem {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:").unwrap_or(0),
        threads: field("Threads:").unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------------
// One phase.

/// The figures of one phase.
struct Row {
    phase: Phase,
    miss: Option<String>,
    load: String,
    detail: String,
    took: Duration,
    peak_rss: u64,
    after_rss: u64,
    peak_threads: u64,
    samples: u64,
    probes: Vec<Probe>,
}

/// One valid Connection Request made during a phase.
struct Probe {
    /// Whether the attack was still running when it started.
    during: bool,
    result: Result<(Duration, bool), String>,
}

/// What an attack did: its size for the table and its counts for the detail line.
struct Report {
    load: String,
    detail: String,
    /// A target the attack itself checks (the UDP phase: every valid request served).
    miss: Option<String>,
}

fn run_phase(t: &Target, phase: Phase) -> Row {
    // The previous phase's threads may linger (tiny_http keeps an idle thread 5 s): wait until
    // the thread count is back near rest, so each phase's peak is its own.
    let settle = Instant::now() + Duration::from_secs(8);
    while t.sampler.snapshot().cur.threads > t.base.threads + 1 && Instant::now() < settle {
        thread::sleep(Duration::from_millis(100));
    }
    t.sampler.reset_peaks();
    let before = t.sampler.snapshot().count;
    let running = Arc::new(AtomicBool::new(true));
    let prober = {
        let (ep, running) = (t.ep.clone(), Arc::clone(&running));
        thread::spawn(move || probe_loop(&ep, &running))
    };
    let t0 = Instant::now();
    let report = attack(&t.ep, phase);
    let took = t0.elapsed();
    running.store(false, Ordering::Relaxed);
    let probes = prober.join().unwrap_or_default();
    let peak = t.sampler.snapshot();
    // Let the server drop what the attack left (closed sockets, idle threads) before the
    // after-figure.
    thread::sleep(Duration::from_secs(1));
    let after = t.sampler.snapshot();
    Row {
        phase,
        miss: report.miss,
        load: report.load,
        detail: report.detail,
        took,
        peak_rss: peak.peak_rss,
        after_rss: after.cur.rss,
        peak_threads: peak.peak_threads,
        samples: peak.count.saturating_sub(before),
        probes,
    }
}

fn attack(ep: &Endpoint, phase: Phase) -> Report {
    match phase {
        Phase::Unauth => flood_unauth(ep),
        Phase::Slowloris => slowloris(ep),
        Phase::BigHeaders => big_headers(ep),
        Phase::Garbage => garbage(ep),
        Phase::Udp => udp_flood(ep, Some(UDP_PACED_RATE)),
        Phase::UdpMax => udp_flood(ep, None),
        Phase::All => {
            let attacks: [fn(&Endpoint) -> Report; 4] =
                [flood_unauth, slowloris, big_headers, garbage];
            let handles: Vec<_> = attacks
                .into_iter()
                .map(|f| {
                    let ep = ep.clone();
                    thread::spawn(move || f(&ep))
                })
                .collect();
            let reports: Vec<Report> = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Report {
                        miss: None,
                        load: "?".into(),
                        detail: "attack thread panicked".into(),
                    })
                })
                .collect();
            Report {
                miss: None,
                load: "a + b + c + d at once".into(),
                detail: reports
                    .iter()
                    .map(|r| r.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("\n      "),
            }
        }
    }
}

/// Valid requests while `running`: the first after 50 ms, then every 200 ms; at least
/// [`PROBES_MIN`] (the last ones may come after the attack ended; they are marked), at most
/// [`PROBES_MAX`].
fn probe_loop(ep: &Endpoint, running: &AtomicBool) -> Vec<Probe> {
    thread::sleep(Duration::from_millis(50));
    let end = Instant::now() + Duration::from_secs(60);
    let mut v = Vec::new();
    while v.len() < PROBES_MAX && !out_of_time() && Instant::now() < end {
        let during = running.load(Ordering::Relaxed);
        if !during && v.len() >= PROBES_MIN {
            break;
        }
        v.push(Probe {
            during,
            result: valid_cr(ep),
        });
        thread::sleep(Duration::from_millis(200));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The attacks.

type Counts = BTreeMap<String, usize>;

fn merge(into: &mut Counts, from: Counts) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

fn fmt_counts(c: &Counts) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Phase a: [`UNAUTH_REQUESTS`] GETs of the right path and host without credentials.
fn flood_unauth(ep: &Endpoint) -> Report {
    let handles: Vec<_> = (0..FLOOD_THREADS)
        .map(|i| {
            let ep = ep.clone();
            // This client's share of the requests (the shares add up to the total).
            let n = UNAUTH_REQUESTS * (i + 1) / FLOOD_THREADS - UNAUTH_REQUESTS * i / FLOOD_THREADS;
            thread::spawn(move || flood_thread(&ep, n, i % 2 == 0))
        })
        .collect();
    let (mut counts, mut conns) = (Counts::new(), 0);
    for h in handles {
        if let Ok((c, n)) = h.join() {
            merge(&mut counts, c);
            conns += n;
        }
    }
    Report {
        miss: None,
        load: format!("{UNAUTH_REQUESTS} req"),
        detail: format!(
            "a: {UNAUTH_REQUESTS} unauthenticated GETs from {FLOOD_THREADS} clients (half \
             keep-alive) on {conns} connections: {}",
            fmt_counts(&counts)
        ),
    }
}

fn flood_thread(ep: &Endpoint, n: usize, keep_alive: bool) -> (Counts, usize) {
    let req = format!(
        "GET {CR_PATH} HTTP/1.1\r\nHost: {}\r\n{}\r\n",
        ep.host,
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    let end = Instant::now() + Duration::from_secs(40);
    let (mut counts, mut conns) = (Counts::new(), 0);
    let mut kept: Option<TcpStream> = None;
    for i in 0..n {
        if out_of_time() || Instant::now() >= end {
            *counts.entry("not sent (time)".into()).or_default() += n - i;
            break;
        }
        let reused = kept.is_some();
        let mut s = match kept.take() {
            Some(s) => s,
            None => match connect(ep) {
                Ok(s) => {
                    conns += 1;
                    s
                }
                Err(e) => {
                    *counts
                        .entry(format!("connect {}", Fail::from_io(&e).label()))
                        .or_default() += 1;
                    continue;
                }
            },
        };
        let r = s
            .write_all(req.as_bytes())
            .map_err(|e| Fail::from_io(&e))
            .and_then(|()| read_response(&mut s));
        match r {
            Ok(h) => {
                *counts.entry(h.status.to_string()).or_default() += 1;
                if keep_alive && !h.close {
                    kept = Some(s);
                }
            }
            // A kept connection the server closed: the client reconnects for the next request.
            Err(f) if reused => *counts.entry(format!("{} on reuse", f.label())).or_default() += 1,
            Err(f) => *counts.entry(f.label()).or_default() += 1,
        }
    }
    (counts, conns)
}

/// Phase b: [`SLOW_CONNS`] connections that never finish their request line.
fn slowloris(ep: &Endpoint) -> Report {
    let handles: Vec<_> = (0..SLOW_THREADS)
        .map(|_| {
            let ep = ep.clone();
            thread::spawn(move || slow_thread(&ep, SLOW_CONNS / SLOW_THREADS))
        })
        .collect();
    let mut total = SlowStats::default();
    for h in handles {
        if let Ok(s) = h.join() {
            total.opened += s.opened;
            total.failed += s.failed;
            total.closed += s.closed;
            total.open_at_end += s.open_at_end;
            merge(&mut total.how, s.how);
        }
    }
    Report {
        miss: None,
        load: format!("{} conns", total.opened),
        detail: format!(
            "b: {SLOW_CONNS} slowloris connections held {SLOW_HOLD_S} s, a byte a second \
             ({} opened in all, closed ones reopened; {} connects failed or took > 500 ms); \
             closed by the server: {} ({}); still open at the end: {}",
            total.opened,
            total.failed,
            total.closed,
            fmt_counts(&total.how),
            total.open_at_end
        ),
    }
}

#[derive(Default)]
struct SlowStats {
    opened: usize,
    failed: usize,
    closed: usize,
    open_at_end: usize,
    how: Counts,
}

fn slow_thread(ep: &Endpoint, n: usize) -> SlowStats {
    let mut st = SlowStats::default();
    let mut conns: Vec<Option<TcpStream>> = Vec::with_capacity(n);
    for _ in 0..n {
        let c = if out_of_time() { None } else { slow_open(ep) };
        match c {
            Some(_) => st.opened += 1,
            None => st.failed += 1,
        }
        conns.push(c);
    }
    let mut budget = n * SLOW_REOPEN_FACTOR;
    let start = Instant::now();
    let hold_end = start + Duration::from_secs(u64::from(SLOW_HOLD_S));
    for tick in 1..=SLOW_HOLD_S {
        if out_of_time() || Instant::now() >= hold_end {
            break;
        }
        let next = start + Duration::from_secs(u64::from(tick));
        thread::sleep(next.saturating_duration_since(Instant::now()));
        for slot in conns.iter_mut() {
            if Instant::now() >= hold_end {
                break;
            }
            if let Some(s) = slot {
                if let Some(how) = slow_tick(s) {
                    st.closed += 1;
                    *st.how.entry(how).or_default() += 1;
                    *slot = None;
                }
            }
            if slot.is_none() && budget > 0 && !out_of_time() {
                budget -= 1;
                *slot = slow_open(ep);
                match slot {
                    Some(_) => st.opened += 1,
                    None => st.failed += 1,
                }
            }
        }
    }
    st.open_at_end = conns.iter().filter(|c| c.is_some()).count();
    st
}

/// A new slowloris connection: a partial request line, then non-blocking. A connect that
/// takes over 500 ms (the server's accept queue full: the SYN is retried after 1 s) fails.
fn slow_open(ep: &Endpoint) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&ep.addr, Duration::from_millis(500)).ok()?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    s.write_all(b"GET /c").ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// One second of a slowloris connection: has the server closed or answered it? If not, one
/// more byte. `Some(how)` when it is over.
fn slow_tick(s: &mut TcpStream) -> Option<String> {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => Some("closed".into()),
        Ok(n) => Some(format!(
            "answered {}",
            status_of(buf.get(..n).unwrap_or_default()).map_or("?".into(), |c| c.to_string())
        )),
        Err(e) if e.kind() == ErrorKind::WouldBlock => match s.write(b"a") {
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => Some(Fail::from_io(&e).label()),
        },
        Err(e) => Some(Fail::from_io(&e).label()),
    }
}

/// Phase c: 1 MiB of header lines on one connection, then on [`BIG_PARALLEL`] at once;
/// repeated until [`MIN_ATTACK`] has passed.
fn big_headers(ep: &Endpoint) -> Report {
    let start = Instant::now();
    let (mut counts, mut conns, mut sent_all) = (Counts::new(), 0, Vec::new());
    let mut note = |(label, sent): (String, usize)| {
        *counts.entry(label).or_default() += 1;
        sent_all.push(sent / 1024);
    };
    for _ in 0..BIG_MAX_ROUNDS {
        if start.elapsed() >= MIN_ATTACK || out_of_time() {
            break;
        }
        note(big_header_conn(ep));
        let handles: Vec<_> = (0..BIG_PARALLEL)
            .map(|_| {
                let ep = ep.clone();
                thread::spawn(move || big_header_conn(&ep))
            })
            .collect();
        for h in handles {
            note(h.join().unwrap_or_else(|_| ("panicked".into(), 0)));
        }
        conns += 1 + BIG_PARALLEL;
    }
    sent_all.sort_unstable();
    let at = |q: usize| sent_all.get(sent_all.len() * q / 100).copied().unwrap_or(0);
    Report {
        miss: None,
        load: format!("{conns} conns x 1 MiB"),
        detail: format!(
            "c: {conns} connections sending 1 MiB of header lines (1 + {BIG_PARALLEL} in \
             parallel per round): {}; KiB written before the answer or close (kernel buffers \
             included) min/median/max {}/{}/{}",
            fmt_counts(&counts),
            at(0),
            at(50),
            sent_all.last().copied().unwrap_or(0)
        ),
    }
}

/// One connection of phase c: the answer (or how it ended) and the bytes sent before it.
fn big_header_conn(ep: &Endpoint) -> (String, usize) {
    let mut s = match connect(ep) {
        Ok(s) => s,
        Err(e) => return (format!("connect {}", Fail::from_io(&e).label()), 0),
    };
    let mut sent = 0;
    let head = format!("GET {CR_PATH} HTTP/1.1\r\nHost: {}\r\n", ep.host);
    let mut early = send_chunk(&mut s, head.as_bytes(), &mut sent);
    let mut chunk = Vec::with_capacity(4096);
    let mut i = 0usize;
    while !early && sent < BIG_HEADER_BYTES {
        chunk.clear();
        while chunk.len() < 4096 {
            // A 1 KiB header line.
            let _ = write!(chunk, "X-Pad-{i:06}: ");
            let fill = 1024 - 2 - (chunk.len() % 1024);
            chunk.extend(std::iter::repeat_n(b'a', fill));
            chunk.extend_from_slice(b"\r\n");
            i += 1;
        }
        early = send_chunk(&mut s, &chunk, &mut sent);
    }
    if !early {
        let _ = s.write_all(b"\r\n");
    }
    let label = match read_response(&mut s) {
        Ok(h) => h.status.to_string(),
        Err(f) => f.label(),
    };
    (label, sent)
}

/// Sends `buf`; true when the sender should stop (write failed, or the server answered or
/// closed).
fn send_chunk(s: &mut TcpStream, buf: &[u8], sent: &mut usize) -> bool {
    if s.write_all(buf).is_err() {
        return true;
    }
    *sent += buf.len();
    answer_waiting(s)
}

/// Whether the server has answered or closed (without consuming what it sent).
fn answer_waiting(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let r = match s.peek(&mut b) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    r
}

/// The kinds of garbage of phase d.
#[derive(Clone, Copy)]
enum Junk {
    Random,
    Nuls,
    HugeLine,
    TinyHeaders,
}

impl Junk {
    const ALL: [Junk; 4] = [Junk::Random, Junk::Nuls, Junk::HugeLine, Junk::TinyHeaders];

    fn name(self) -> &'static str {
        match self {
            Junk::Random => "random 4 KiB",
            Junk::Nuls => "NUL 16 KiB",
            Junk::HugeLine => "1 MiB line",
            Junk::TinyHeaders => "4000 tiny headers",
        }
    }
}

/// Phase d: garbage on [`GARBAGE_MIN_CONNS`] connections or more (until [`MIN_ATTACK`]).
fn garbage(ep: &Endpoint) -> Report {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..GARBAGE_THREADS)
        .map(|_| {
            let (ep, next) = (ep.clone(), Arc::clone(&next));
            thread::spawn(move || {
                let mut counts: BTreeMap<&'static str, Counts> = BTreeMap::new();
                let mut rng = Rng::from_clock();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let enough = i >= GARBAGE_MIN_CONNS && start.elapsed() >= MIN_ATTACK;
                    if enough || i >= GARBAGE_MAX_CONNS || out_of_time() {
                        break;
                    }
                    let kind = Junk::ALL.get(i % Junk::ALL.len()).copied();
                    let kind = kind.unwrap_or(Junk::Random);
                    let label = junk_conn(&ep, kind, &mut rng);
                    *counts
                        .entry(kind.name())
                        .or_default()
                        .entry(label)
                        .or_default() += 1;
                }
                counts
            })
        })
        .collect();
    let mut all: BTreeMap<&'static str, Counts> = BTreeMap::new();
    for h in handles {
        if let Ok(c) = h.join() {
            for (k, v) in c {
                merge(all.entry(k).or_default(), v);
            }
        }
    }
    let conns: usize = all.values().flat_map(|c| c.values()).sum();
    let per_kind: Vec<String> = all
        .iter()
        .map(|(k, c)| format!("{k}: {}", fmt_counts(c)))
        .collect();
    Report {
        miss: None,
        load: format!("{conns} conns"),
        detail: format!(
            "d: garbage on {conns} connections, then half-close: {}",
            per_kind.join("; ")
        ),
    }
}

/// One connection of phase d: sends the garbage (stopping early if the server answers), closes
/// its sending side, and reads the answer.
fn junk_conn(ep: &Endpoint, kind: Junk, rng: &mut Rng) -> String {
    let mut s = match connect(ep) {
        Ok(s) => s,
        Err(e) => return format!("connect {}", Fail::from_io(&e).label()),
    };
    let chunks: Vec<Vec<u8>> = match kind {
        Junk::Random => vec![(0..4096).map(|_| rng.byte()).collect()],
        Junk::Nuls => vec![vec![0u8; 16 * 1024]],
        Junk::HugeLine => {
            let mut v = vec![b"GET /".to_vec()];
            v.extend(std::iter::repeat_n(
                vec![b'a'; 4096],
                BIG_HEADER_BYTES / 4096,
            ));
            v
        }
        Junk::TinyHeaders => {
            let mut head = format!("GET {CR_PATH} HTTP/1.1\r\nHost: {}\r\n", ep.host).into_bytes();
            for _ in 0..4000 {
                head.extend_from_slice(b"a:b\r\n");
            }
            head.extend_from_slice(b"\r\n");
            head.chunks(4096).map(<[u8]>::to_vec).collect()
        }
    };
    for c in &chunks {
        if s.write_all(c).is_err() || answer_waiting(&s) {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    match read_response(&mut s) {
        Ok(h) => h.status.to_string(),
        Err(f) => f.label(),
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client side.

fn connect(ep: &Endpoint) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&ep.addr, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// How an exchange failed.
enum Fail {
    /// The server closed without answering.
    Closed,
    Reset,
    Timeout,
    /// Not an HTTP response.
    Bad,
    Other(ErrorKind),
}

impl Fail {
    fn from_io(e: &io::Error) -> Fail {
        match e.kind() {
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
                Fail::Reset
            }
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Fail::Timeout,
            ErrorKind::UnexpectedEof => Fail::Closed,
            k => Fail::Other(k),
        }
    }

    fn label(&self) -> String {
        match self {
            Fail::Closed => "closed".into(),
            Fail::Reset => "reset".into(),
            Fail::Timeout => "timeout".into(),
            Fail::Bad => "not HTTP".into(),
            Fail::Other(k) => format!("{k:?}"),
        }
    }
}

/// A response head.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    /// The server will close the connection.
    close: bool,
}

impl Head {
    fn header(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_string();
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head, then a Content-Length body, both bounded) within 5 s.
fn read_response(s: &mut TcpStream) -> Result<Head, Fail> {
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_RESPONSE || Instant::now() >= end {
            return Err(Fail::Bad);
        }
        match s.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(Fail::Closed),
            Ok(0) => return Err(Fail::Bad),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::from_io(&e)),
        }
    };
    let text = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| status_of(l.as_bytes()))
        .ok_or(Fail::Bad)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut head = Head {
        status,
        headers,
        close: false,
    };
    head.close = text.starts_with("HTTP/1.0")
        || head
            .header("Connection")
            .any(|v| v.eq_ignore_ascii_case("close"));
    let length: usize = head
        .header("Content-Length")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len().saturating_sub(head_end + 4);
    while have < length.min(MAX_RESPONSE) && Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Ok(head)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of `HTTP/1.x NNN …`.
fn status_of(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line.get(..line.len().min(64))?).ok()?;
    let mut it = line.split_whitespace();
    if !it.next()?.starts_with("HTTP/") {
        return None;
    }
    it.next()?.parse().ok()
}

/// One valid Connection Request: plain GET, 401 with a Digest challenge, then the digest retry
/// on the same connection (a new one if the server closed it). The latency from connect to the
/// 200, and whether the retry needed a new connection; else what happened.
fn valid_cr(ep: &Endpoint) -> Result<(Duration, bool), String> {
    let t0 = Instant::now();
    let mut s = connect(ep).map_err(|e| format!("connect {}", Fail::from_io(&e).label()))?;
    let plain = format!("GET {CR_PATH} HTTP/1.1\r\nHost: {}\r\n\r\n", ep.host);
    s.write_all(plain.as_bytes())
        .map_err(|e| format!("GET {}", Fail::from_io(&e).label()))?;
    let h = read_response(&mut s).map_err(|f| format!("GET {}", f.label()))?;
    if h.status != 401 {
        return Err(format!("GET {}", h.status));
    }
    let challenge = h
        .header("WWW-Authenticate")
        .find_map(|v| strip_scheme(v, "Digest"))
        .map(auth_params)
        .ok_or("no Digest challenge")?;
    let cnonce = format!("{:016x}", Rng::from_clock().0);
    let auth = authorization(&challenge, CR_PATH, &cnonce)?;
    let retry = format!(
        "GET {CR_PATH} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\n\r\n",
        ep.host
    );
    let same = if h.close {
        Err(Fail::Closed)
    } else {
        s.write_all(retry.as_bytes())
            .map_err(|e| Fail::from_io(&e))
            .and_then(|()| read_response(&mut s))
    };
    let (h2, reconnected) = match same {
        Ok(h2) => (h2, false),
        Err(Fail::Closed | Fail::Reset) => {
            let mut s2 =
                connect(ep).map_err(|e| format!("reconnect {}", Fail::from_io(&e).label()))?;
            s2.write_all(retry.as_bytes())
                .map_err(|e| format!("retry {}", Fail::from_io(&e).label()))?;
            let h2 = read_response(&mut s2).map_err(|f| format!("retry {}", f.label()))?;
            (h2, true)
        }
        Err(f) => return Err(format!("retry {}", f.label())),
    };
    match h2.status {
        200 => Ok((t0.elapsed(), reconnected)),
        c => Err(format!("retry {c}")),
    }
}

fn outcome_label(r: &Result<(Duration, bool), String>) -> String {
    match r {
        Ok((_, false)) => "200".into(),
        Ok((_, true)) => "200 (new conn)".into(),
        Err(e) => e.clone(),
    }
}

/// `value` without its auth scheme, if it is `scheme`.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.trim_start().split_once(char::is_whitespace)?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// RFC 7235 auth-params: `k=token` or `k="quoted"`, comma-separated; keys in lower case.
fn auth_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    // Each turn consumes at least one character, so the loop ends.
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest
            .get(..eq)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        rest = rest.get(eq + 1..).unwrap_or_default().trim_start();
        let mut value = String::new();
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = q.get(end..).unwrap_or_default();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest.get(..end).unwrap_or_default().trim().to_string();
            rest = rest.get(end..).unwrap_or_default();
        }
        out.insert(key, value);
    }
    out
}

fn md5_hex(parts: &[&str]) -> String {
    let d = Md5::digest(parts.join(":").as_bytes());
    d.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The digest `response` (RFC 7616 §3.4.1) for GET `uri`, qop=auth, MD5 or MD5-sess.
fn digest_response(
    alg: &str,
    realm: &str,
    nonce: &str,
    uri: &str,
    nc: &str,
    cnonce: &str,
) -> Option<String> {
    let mut ha1 = md5_hex(&[USER, realm, PASS]);
    if alg.eq_ignore_ascii_case("MD5-sess") {
        ha1 = md5_hex(&[&ha1, nonce, cnonce]);
    } else if !alg.eq_ignore_ascii_case("MD5") {
        return None;
    }
    let ha2 = md5_hex(&["GET", uri]);
    Some(md5_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2]))
}

/// The `Authorization` value answering `challenge`.
fn authorization(
    challenge: &BTreeMap<String, String>,
    uri: &str,
    cnonce: &str,
) -> Result<String, String> {
    let param = |k: &str| challenge.get(k).map(String::as_str);
    let realm = param("realm").ok_or("challenge without realm")?;
    let nonce = param("nonce").ok_or("challenge without nonce")?;
    let alg = param("algorithm").unwrap_or("MD5");
    if !param("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")) {
        return Err("challenge without qop=auth".into());
    }
    let nc = "00000001";
    let response = digest_response(alg, realm, nonce, uri, nc, cnonce)
        .ok_or_else(|| format!("unsupported algorithm {alg}"))?;
    let mut v = format!(
        "Digest username=\"{USER}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm={alg}, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    );
    if let Some(o) = param("opaque") {
        let _ = write!(v, ", opaque=\"{o}\"");
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// The table.

fn print_table(name: &str, t: &Target, rows: &[Row]) {
    let limit = t.thread_limit();
    if t.pool_at_rest {
        println!(
            "{name}: at rest RSS {} KiB, {} threads (thread limit {limit}: its {MAX_CONNECTIONS} \
             workers run from the start, so no thread may be added)",
            t.base.rss, t.base.threads
        );
    } else {
        println!(
            "{name}: at rest RSS {} KiB, {} threads (thread limit {limit} = {} + cap \
             {MAX_CONNECTIONS})",
            t.base.rss, t.base.threads, t.base.threads
        );
    }
    println!(
        "  {:<15}| {:<28}| {:>9} | {:>9} | {:>7} | {:>13} | {:<40}| {:<4} {:<4} {:<4}",
        "phase",
        "requests/conns",
        "RSS+ KiB",
        "after KiB",
        "threads",
        "CR med/max ms",
        "valid CR outcomes",
        "RSS",
        "thr",
        "CR"
    );
    println!("  {}", "-".repeat(153));
    for r in rows {
        let (growth, after) = (r.growth(t), r.after_rss as i64 - t.base.rss as i64);
        let lat = r.latency();
        let lat = match lat {
            Some((med, max)) => format!("{med:.1}/{max:.1}"),
            None => "-".into(),
        };
        let [rss, thr, cr] = r.verdicts(t).map(|ok| if ok { "PASS" } else { "FAIL" });
        println!(
            "  {:<15}| {:<28}| {:>9} | {:>9} | {:>7} | {:>13} | {:<40}| {rss} {thr} {cr}",
            r.phase.name(),
            r.load,
            format!("{growth:+}"),
            format!("{after:+}"),
            r.peak_threads,
            lat,
            r.outcomes()
        );
    }
    println!(
        "  (RSS+ = peak VmRSS during the phase minus at rest; after = 1 s after the phase; \
         threads = peak; valid CRs: connect to 200, those started after the attack ended are \
         counted in \"late\")"
    );
    for r in rows {
        println!("  {}: {} samples; {}", r.phase.name(), r.samples, r.detail);
    }
}

impl Row {
    fn growth(&self, t: &Target) -> i64 {
        self.peak_rss as i64 - t.base.rss as i64
    }

    /// Median and maximum latency of the served valid requests, ms.
    fn latency(&self) -> Option<(f64, f64)> {
        let mut v: Vec<f64> = self
            .probes
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .map(|(d, _)| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        let med = *v.get(v.len() / 2)?;
        Some((med, *v.last()?))
    }

    fn outcomes(&self) -> String {
        let mut c = Counts::new();
        for p in &self.probes {
            *c.entry(outcome_label(&p.result)).or_default() += 1;
        }
        let late = self.probes.iter().filter(|p| !p.during).count();
        let mut s = fmt_counts(&c);
        if late > 0 {
            let _ = write!(s, " ({late} late)");
        }
        s
    }

    /// RSS, threads, valid requests.
    fn verdicts(&self, t: &Target) -> [bool; 3] {
        let cr_ok = !self.probes.is_empty()
            && self
                .probes
                .iter()
                .all(|p| p.result.as_ref().is_ok_and(|(d, _)| *d < CR_TARGET));
        [
            self.growth(t) <= RSS_TARGET_KIB,
            self.peak_threads <= t.thread_limit(),
            cr_ok,
        ]
    }

    fn misses(&self, t: &Target) -> Vec<String> {
        let [rss, thr, cr] = self.verdicts(t);
        let mut v: Vec<String> = self.miss.iter().cloned().collect();
        if !rss {
            v.push(format!(
                "RSS grew {} KiB (target <= {RSS_TARGET_KIB})",
                self.growth(t)
            ));
        }
        if !thr {
            v.push(format!(
                "{} threads (target <= {})",
                self.peak_threads,
                t.thread_limit()
            ));
        }
        if !cr {
            let max = self
                .latency()
                .map_or("-".into(), |(_, m)| format!("{m:.1} ms"));
            v.push(format!(
                "valid requests: {} (max {max}, target all 200 in < {} ms)",
                self.outcomes(),
                CR_TARGET.as_millis()
            ));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// The tiny_http comparison server (child process mode).

/// Serves `addr` with tiny_http until the parent goes away or the run budget is spent: 200 to a
/// valid digest, 401 with a Digest challenge to everything else.
fn tiny_server(addr: &str) -> ExitCode {
    let server = match tiny_http::Server::http(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tiny_http: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nonce = format!("{:016x}{:08x}", Rng::from_clock().0, std::process::id());
    let challenge =
        format!("Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\"");
    let Ok(www) = tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], challenge.as_bytes())
    else {
        eprintln!("tiny_http: bad header");
        return ExitCode::FAILURE;
    };
    let parent = std::os::unix::process::parent_id();
    let end = Instant::now() + RUN_BUDGET + Duration::from_secs(60);
    while Instant::now() < end && std::os::unix::process::parent_id() == parent {
        let rq = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(rq)) => rq,
            Ok(None) => continue,
            Err(_) => break,
        };
        let ok = *rq.method() == tiny_http::Method::Get
            && rq
                .headers()
                .iter()
                .filter(|h| h.field.equiv("Authorization"))
                .any(|h| digest_ok(h.value.as_str(), rq.url(), &nonce));
        let _ = if ok {
            rq.respond(tiny_http::Response::empty(200))
        } else {
            rq.respond(tiny_http::Response::empty(401).with_header(www.clone()))
        };
    }
    ExitCode::SUCCESS
}

/// Whether `value` is a correct digest Authorization for GET `uri` with our nonce.
fn digest_ok(value: &str, uri: &str, nonce: &str) -> bool {
    let Some(p) = strip_scheme(value, "Digest").map(auth_params) else {
        return false;
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("username") != USER
        || get("realm") != REALM
        || get("nonce") != nonce
        || get("uri") != uri
        || get("qop") != "auth"
    {
        return false;
    }
    let alg = p.get("algorithm").map_or("MD5", String::as_str);
    digest_response(alg, REALM, nonce, uri, get("nc"), get("cnonce"))
        .is_some_and(|r| r == get("response"))
}

// ---------------------------------------------------------------------------------------------
// Phase f: the UDP Connection Request port.

/// How long the UDP flood lasts, and its threads.
const UDP_FLOOD: Duration = Duration::from_secs(4);
const UDP_THREADS: usize = 4;
/// One valid request per this long during the flood.
const UDP_VALID_EVERY: Duration = Duration::from_millis(100);
/// Datagrams a second of the paced flood, all threads together.
const UDP_PACED_RATE: u64 = 20_000;

/// A UDP Connection Request of TR-069 Annex G signed with `password`.
fn udp_request(ts: u64, id: &str, password: &str, host: &str) -> Vec<u8> {
    let cn = "XTGRWIPC6D3IPXS3";
    let sig: String = cwmpd::connreq::udp::signature(password, ts, id, USER, cn)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "GET http://{host}?ts={ts}&id={id}&un={USER}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .into_bytes()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The process's CPU time (user + system), milliseconds, from `/proc/PID/stat`.
fn cpu_ms(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10)
}

/// The agent's counts from its UDP summaries after byte `from` of its log: kind → number.
fn udp_counts(log: &Path, from: usize) -> Counts {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut c = Counts::new();
    for line in text.get(from..).unwrap_or_default().lines() {
        let Some(i) = line.find("UDP connection requests in the last ") else {
            continue;
        };

        let Some((_, list)) = line[i..].split_once(": ") else {
            continue;
        };
        for part in list.split(", ") {
            if let Some((n, what)) = part.split_once(' ') {
                *c.entry(what.to_string()).or_default() += n.parse::<usize>().unwrap_or(0);
            }
        }
    }
    c
}

/// The flood at `rate` datagrams a second (all threads), or as fast as they go.
fn udp_flood(ep: &Endpoint, rate: Option<u64>) -> Report {
    let target = ep.addr;
    let host = ep.host.clone();
    let log_from = std::fs::metadata(&ep.log).map_or(0, |m| m.len() as usize);
    let cpu0 = cpu_ms(ep.pid);
    let sock = |()| std::net::UdpSocket::bind("127.0.0.1:0");
    // A request the agent accepts first: its copies are the replays.
    let seen = udp_request(unix_now(), "replayed", PASS, &host);
    if let Ok(s) = sock(()) {
        let _ = s.send_to(&seen, target);
    }
    thread::sleep(Duration::from_millis(200));
    let until = Instant::now() + UDP_FLOOD;
    let handles: Vec<_> = (0..UDP_THREADS)
        .map(|i| {
            let (host, seen) = (host.clone(), seen.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(0x5eed_u64 + i as u64);
                let mut sent = [0usize; 4];
                let Ok(s) = sock(()) else {
                    return sent;
                };
                let mut n = 0u64;
                let start = Instant::now();
                let per_thread = rate.map(|r| r / UDP_THREADS as u64);
                while Instant::now() < until && !out_of_time() {
                    if let Some(r) = per_thread {
                        // Paced: no more than the rate allows by now.
                        let due = (start.elapsed().as_secs_f64() * r as f64) as u64;
                        if n >= due {
                            thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                    }
                    n += 1;
                    let kind = (n % 4) as usize;
                    let d = match kind {
                        // Random bytes of random length.
                        0 => {
                            let len = 1 + rng.below(1400) as usize;
                            (0..len).map(|_| rng.below(256) as u8).collect()
                        }
                        // A forged signature.
                        1 => udp_request(unix_now(), &n.to_string(), "not-the-password", &host),
                        // A replay of the accepted one.
                        2 => seen.clone(),
                        // A 1,500-byte request (over the 1 KiB bound).
                        _ => {
                            let mut d = udp_request(unix_now(), &n.to_string(), PASS, &host);
                            d.resize(1500, b'a');
                            d
                        }
                    };
                    if s.send_to(&d, target).is_ok() {
                        sent[kind] += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let mut valid = 0usize;
    if let Ok(s) = sock(()) {
        while Instant::now() < until && !out_of_time() {
            valid += 1;
            let d = udp_request(unix_now(), &format!("valid-{valid}"), PASS, &host);
            // Three copies, as GenieACS sends (the agent acts on the first that arrives).
            for _ in 0..3 {
                let _ = s.send_to(&d, target);
            }
            thread::sleep(UDP_VALID_EVERY);
        }
    }
    let mut sent = [0usize; 4];
    for h in handles {
        if let Ok(s) = h.join() {
            for (a, b) in sent.iter_mut().zip(s) {
                *a += b;
            }
        }
    }
    let cpu = cpu0.zip(cpu_ms(ep.pid)).map(|(a, b)| b.saturating_sub(a));
    // The agent summarises once a second: wait for the last one.
    thread::sleep(Duration::from_millis(2_500));
    let counts = udp_counts(&ep.log, log_from);
    let total: usize = sent.iter().sum::<usize>() + 3 * valid;
    let counted: usize = counts.values().sum();
    // Less the request whose copies are the replays.
    let accepted = counts
        .get("accepted")
        .copied()
        .unwrap_or(0)
        .saturating_sub(1);
    let secs = UDP_FLOOD.as_secs_f64();
    let per = cpu.map_or("-".into(), |ms| {
        format!(
            "{ms} ms, {:.1} µs per datagram read",
            ms as f64 * 1000.0 / counted.max(1) as f64
        )
    });
    Report {
        load: format!(
            "{total} datagrams in {secs:.0} s ({:.0}/s)",
            total as f64 / secs
        ),
        detail: format!(
            "             sent: {} random, {} forged signatures, {} replays, {} of 1,500 bytes, {valid} valid \
             (3 copies each); \
             the agent read {counted} (the kernel dropped {}): {}; valid served {accepted}/{valid}; \
             agent CPU {per}",
            sent[0],
            sent[1],
            sent[2],
            sent[3],
            total.saturating_sub(counted),
            fmt_counts(&counts),
        ),
                miss: match rate {
            Some(_) => (accepted < valid).then(|| {
                format!("valid UDP requests served {accepted} of {valid} (target: all)")
            }),
            None => (accepted == 0)
                .then(|| format!("no valid UDP request of {valid} served (target: one)")),
        },
    }
}
