//! The kill harness of `tests/device_control.rs` (the acceptance test of device control's
//! durability, TR-069 §3.7.1.5 and Amendment 6 §A.3.2.8): a firmware Download is SIGKILLed at
//! many points (before the DownloadResponse, mid-transfer, in the apply hook, while held for the
//! reboot, with the TransferComplete unsent or unanswered, at random) and restarted, and every
//! run must end with exactly one acknowledged TransferComplete for its CommandKey (a resend only
//! where §3.7.1.5 requires it), identical each time it is sent, and no corrupt state file.
//!
//! [`kill_test`] runs it; the test ACS ([`crate::acs`]), the [`crate::proxy::Proxy`] that holds
//! messages back, and the slow file server here (its accept thread and one thread per fetch)
//! are its rig. Seeded by `CWMPD_KILL_SEED` (printed) through [`crate::rng`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cwmpd::soap::{AcsRequest, CpeRequest, CpeResponse};

use crate::acs::{Acs, AcsOptions, Call, SessionRecord, Turn};
use crate::cpe::*;
use crate::files::{
    check_state_files, download, hook_script, list_dir, log_tails, summary, transfer_completes,
    transfer_cpe, Tc,
};
use crate::http::{self, Limits};
use crate::proxy::{Hold, Proxy};
use crate::rng::{seed_from_env, Rng};

const FIRMWARE: &str = "1 Firmware Upgrade Image";

/// What the slow file server reads of a request (a GET).
const LIMITS: Limits = Limits {
    max_head: 16 * 1024,
    max_body: 64 * 1024,
};

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
    /// (b) every fetch killed mid-transfer until no retry remains: 9017 (a journalled Download survives every kill).
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

/// The kill test: at least `target` kills (and every plan once), then the final checks.
pub fn kill_test(tag: &str, target: usize) {
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
        let start = crate::files::parse_time(&acked.start_time).unwrap_or(0.0);
        let end = crate::files::parse_time(&acked.complete_time).unwrap_or(0.0);
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
    let Some(req) = http::read_request(&mut conn, &mut buf, LIMITS)? else {
        return Ok(());
    };
    let (method, path) = (req.method, req.target);
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
