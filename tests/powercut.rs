//! The power-cut suite: the real `cwmpd` daemon against the test ACS
//! (`tests/support/acs.rs`) through a scripted workload repeated across restarts, SIGKILLed at
//! random moments and right after store writes, restarted each time. TR-069 Amendment 6 sections
//! whose durability it checks:
//!
//! - §3.7.1.5 and Table 7: every `M Reboot`, `M Download` and `M ScheduleInform` with its
//!   CommandKey is delivered exactly once in an Inform whose InformResponse the CPE read: it
//!   posted again in that session, or (killed in between) its log shows the answer read (the
//!   transport's `POST … -> 200` debug line, written before the agent acts on it). An Inform the
//!   ACS answered but the CPE never read the answer to does not count: an agent that drops
//!   events when it sends the Inform fails here. A second delivery is allowed only when the
//!   ACS's InformResponse cannot have reached the CPE (the CPE posted nothing more in that
//!   session) and, for `M Download`, also when the TransferComplete of that session was not
//!   acknowledged (Table 7 keeps `M Download` with its TransferComplete, so it must also appear
//!   in a session whose TransferCompleteResponse the CPE read).
//! - §A.3.3.2 TransferComplete: acknowledged exactly once per CommandKey (a resend only when the
//!   ACS's answer cannot have reached the CPE), identical each time it is sent; that of each
//!   acknowledged Download is sent in a session whose TransferCompleteResponse the CPE read (as
//!   above: it posted again, or its log shows the answer read).
//! - `0 BOOTSTRAP` (Table 7): in the first Inform, never again after the first session in which
//!   the CPE read the InformResponse to it.
//! - §A.3.2.10 Reboot: the start after it reports `1 BOOT` with `M Reboot`; and the first Inform
//!   after each run of the Reboot hook (a daemon generation that ran it, then was killed)
//!   carries `1 BOOT` and `M Reboot` with the hook's CommandKey, and the hook runs once per
//!   Reboot (the cut after it is the reboot, not a reason to run it again).
//! - §A.4.1.4 ScheduleInform: `3 SCHEDULED` with `M ScheduleInform`, never before DelaySeconds.
//! - §A.3.2.1 SetParameterValues and §A.3.2.6 AddObject: the ParameterKey is the one of the last
//!   acknowledged request that sets it (or of a later one whose response the cut swallowed); the
//!   values of SPV survive likewise.
//! - §A.3.2.4 SetParameterAttributes: an acknowledged Notification stays set.
//! - §A.3.2.6 AddObject: instance numbers the ACS was given are never handed out twice and stay.
//! - The store (`src/sys/store.rs`): after every cut each state file has a valid header, length, CRC
//!   and TOML body; no `*.corrupt`; temp files only of the dead writer, removed at the next start.
//!
//! Kills: `random` (0–2.5 s after a start), `write` (0–5 ms after the 1st–4th store write seen
//! after a start, found by watching the inode, size and mtime of `state/*.toml`), `after-rpc`
//! (0–40 ms after the ACS sent a workload request), and `reboot` (the Reboot or firmware hook ran
//! and the agent holds for the device to go down: the test is the power switch). The seed is
//! printed; `CWMPD_POWERCUT_SEED` replays the kill choices (timing on a loaded machine still
//! varies). The long variant takes `CWMPD_CUTS` (default 1000).
//!
//! Helpers copied from `tests/device_control.rs` (not shared there): `check_state_files`,
//! `lock`, a shorter `summary`.

use support::{acs, cpe, files, tempdir, tls};

use cpe::*;
use files::{
    check_state_files, download, hook_runs, hook_script, list_dir, log_tails, session_calls,
    transfer_completes, transfer_cpe, FileServer, Tc,
};
use support::rng::{seed_from_env, Rng};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use acs::{Acs, AcsOptions, Call, SessionRecord, Turn};
use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::{AcsRequest, CpeResponse};
use tls::Response;

const PKEY: &str = "Device.ManagementServer.ParameterKey";
const PCODE: &str = "Device.DeviceInfo.ProvisioningCode";
const INFORM_PARAM: &str = "Device.ManagementServer.InformParameter.";
/// The parameters whose Notification attribute the workload sets (none of them changes by
/// itself, so active notification adds no session).
const SPA_PARAMS: [&str; 4] = [
    "Device.ManagementServer.PeriodicInformInterval",
    "Device.ManagementServer.PeriodicInformEnable",
    "Device.ManagementServer.UpgradesManaged",
    "Device.ManagementServer.DefaultActiveNotificationThrottle",
];
const FIRMWARE: &str = "1 Firmware Upgrade Image";
const CONFIG_FILE: &str = "3 Vendor Configuration File";
const M_REBOOT: &str = "M Reboot";
const BOOT: &str = "1 BOOT";
const BOOTSTRAP: &str = "0 BOOTSTRAP";
const M_DOWNLOAD: &str = "M Download";
const M_SCHEDULE_INFORM: &str = "M ScheduleInform";
/// The file every Download fetches.
const FILE_SIZE: usize = 8 * 1024;
/// Longest wait for a planned kill point; then the daemon is killed anyway.
const ARM_LIMIT: Duration = Duration::from_secs(4);
/// No answered request and no session for this long: the agent is stuck.
const STUCK: Duration = Duration::from_secs(40);
/// Slack for comparing the ACS's clock with the CPE's (one machine, scheduling jitter only).
const SLACK: Duration = Duration::from_millis(50);

/// About 40 cuts, well under 90 s.
#[test]
fn power_cuts_lose_no_event_and_corrupt_no_file() {
    power_cut("powercut", 40);
}

/// The long run: `CWMPD_CUTS` cuts (default 1000).
#[test]
#[ignore]
fn power_cuts_long() {
    let cuts = files::number_from_env("CWMPD_CUTS", 1000);
    power_cut("powercut-long", cuts);
}

fn power_cut(tag: &str, target: usize) {
    let mut rig = Rig::new(tag);
    eprintln!(
        "power-cut: seed {} (set CWMPD_POWERCUT_SEED to replay), target {target} cuts",
        rig.seed
    );
    while rig.cuts.len() < target {
        let kind = match rig.rng.below(10) {
            0..=3 => Kind::Write,
            4..=6 => Kind::AfterRpc,
            _ => Kind::Random,
        };
        rig.one_cut(kind);
    }
    let work_done = Instant::now();
    rig.drain();
    rig.verify();
    let settle = work_done.elapsed();
    let report = rig.check(settle);
    eprintln!("{report}");
}

// ----------------------------------------------------------------------------------------------
// The rig: ACS, file server, CPE, daemon, kills.

/// Why the daemon was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Random,
    Write,
    AfterRpc,
    /// The Reboot or firmware hook ran and the agent holds: the device goes down.
    Reboot,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::Write => "write",
            Kind::AfterRpc => "after-rpc",
            Kind::Reboot => "reboot",
        }
    }
}

struct Cut {
    kind: Kind,
    /// The planned point was not reached within [`ARM_LIMIT`]: killed at the limit.
    fallback: bool,
    /// `NAME.PID.tmp` files the killed daemon left (a write it was in the middle of).
    tmp_left: usize,
}

struct Rig {
    acs: Acs,
    _files: FileServer,
    cpe: Cpe,
    daemon: Option<Daemon>,
    /// Per generation: its daemon's log and when it was started (an Inform the ACS recorded
    /// later than a start is of that generation or a later one).
    logs: Vec<PathBuf>,
    starts: Vec<Instant>,
    /// Per killed generation: the answers its log shows read in its last session (a killed
    /// daemon's log no longer changes).
    replies_read: BTreeMap<usize, usize>,
    /// Incremented at each kill; the hooks tag their marks with it.
    generation: u32,
    ctl: Arc<Mutex<Ctl>>,
    scripts: usize,
    rng: Rng,
    seed: u64,
    cuts: Vec<Cut>,
    /// Store writes seen by the write watcher.
    writes_seen: usize,
    started: Instant,
    /// When the ACS's sessions were last looked at for reports.
    last_look: Instant,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let seed = seed_from_env("CWMPD_POWERCUT_SEED");
        let acs = Acs::start(AcsOptions::default()).expect("start ACS");
        let body: Vec<u8> = (0..FILE_SIZE).map(|i| (i % 251) as u8).collect();
        let files = FileServer::start(None, move |req| {
            if req.method == "GET" && req.path.starts_with("/f/") {
                Response::new(200)
                    .header("Content-Type", "application/octet-stream")
                    .body(body.clone())
            } else {
                Response::new(404)
            }
        });
        // Periodic sessions every second give each restarted daemon prompt occasions to talk.
        let cpe = transfer_cpe(
            tag,
            &acs.url(),
            None,
            1,
            "retries = 1\n",
            "config = \"{dir}/cfg.sh {file}\"\nconfig_reboots = false\n\
             firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = true\n\
             reboot = \"{dir}/reboot.sh\"\n",
        );
        // Each hook leaves a mark with the daemon generation that ran it: from the environment
        // the daemon passes on (a hook started just before a cut may run after it, when a file
        // would already name the next generation).
        hook_script(
            &cpe,
            "cfg",
            "echo \"cfg $POWERCUT_GENERATION $CWMPD_COMMAND_KEY\" >> {dir}/marks",
            0,
        );
        hook_script(
            &cpe,
            "fw",
            "echo \"held $POWERCUT_GENERATION fw $CWMPD_COMMAND_KEY\" >> {dir}/marks",
            0,
        );
        hook_script(
            &cpe,
            "reboot",
            "echo \"held $POWERCUT_GENERATION reboot $CWMPD_COMMAND_KEY\" >> {dir}/marks",
            0,
        );
        let ctl = Arc::new(Mutex::new(Ctl {
            mode: Mode::Work,
            url_base: files.url("/f/"),
            rng: Rng(seed ^ 0x9E37_79B9_7F4A_7C15),
            ops: Vec::new(),
            posted: BTreeSet::new(),
            max_index: 0,
            last_progress: Instant::now(),
            budget: BTreeMap::new(),
            confirmed: HashSet::new(),
            tc_confirmed: HashSet::new(),
            verify_attrs: Vec::new(),
            verify_names: Vec::new(),
            verify_values: BTreeMap::new(),
        }));
        let mut rig = Rig {
            acs,
            _files: files,
            cpe,
            daemon: None,
            logs: Vec::new(),
            starts: Vec::new(),
            replies_read: BTreeMap::new(),
            generation: 0,
            ctl,
            scripts: 0,
            rng: Rng(seed),
            seed,
            cuts: Vec::new(),
            writes_seen: 0,
            started: Instant::now(),
            last_look: Instant::now(),
        };
        rig.refill_scripts();
        rig.start_daemon();
        rig
    }

    fn start_daemon(&mut self) {
        self.starts.push(Instant::now());
        let generation = self.generation.to_string();
        let d = self
            .cpe
            .spawn_run_env(&[("POWERCUT_GENERATION", generation.as_str())]);
        self.logs.push(d.log.clone());
        self.daemon = Some(d);
    }

    fn state_dir(&self) -> PathBuf {
        self.cpe.dir.path().join("state")
    }

    /// One planned cut of `kind` (a `reboot` cut may come first: it counts, and ends this one).
    fn one_cut(&mut self, kind: Kind) {
        let t0 = Instant::now();
        let random_at = t0 + self.rng.ms(0, 2500);
        let write_skip = self.rng.below(4) as usize;
        let write_delay = self.rng.ms(0, 5);
        let rpc_delay = self.rng.ms(0, 40);
        let sent_base = lock(&self.ctl).ops.len();
        let mut snap = snapshot(&self.state_dir());
        let mut writes = 0;
        let mut kill_at: Option<Instant> = None;
        loop {
            thread::sleep(match kind {
                Kind::Write => Duration::from_micros(400),
                _ => Duration::from_millis(3),
            });
            let now = Instant::now();
            self.watch();
            if self.held() {
                self.reboot_cut();
                return;
            }
            if now.duration_since(t0) > ARM_LIMIT && kill_at.is_none() {
                self.kill(kind, true);
                return;
            }
            match kind {
                Kind::Random => {
                    if now >= random_at {
                        self.kill(kind, false);
                        return;
                    }
                }
                Kind::Write => {
                    if kill_at.is_none() {
                        let s = snapshot(&self.state_dir());
                        if s != snap {
                            writes += 1;
                            self.writes_seen += 1;
                            snap = s;
                            if writes > write_skip {
                                kill_at = Some(now + write_delay);
                            }
                        }
                    }
                }
                Kind::AfterRpc => {
                    if kill_at.is_none() {
                        let c = lock(&self.ctl);
                        if let Some(op) = c.ops.get(sent_base) {
                            kill_at = Some(op.sent_at + rpc_delay);
                        }
                    }
                }
                Kind::Reboot => {}
            }
            if let Some(at) = kill_at {
                let left = at.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    thread::sleep(left);
                }
                self.kill(kind, false);
                return;
            }
        }
    }

    /// Checks the daemon is alive and the ACS side is making progress; tops up the scripts.
    fn watch(&mut self) {
        if let Some(d) = self.daemon.as_mut() {
            if !d.alive() {
                self.fail(vec!["the daemon exited by itself".into()]);
            }
        }
        let since = lock(&self.ctl).last_progress.elapsed();
        if since > STUCK {
            self.fail(vec![format!(
                "no session reached its empty POST for {since:?}: the agent is stuck"
            )]);
        }
        self.refill_scripts();
        // The workload's view of what is still pending (Downloads, Reboots) is refreshed now
        // and then: a report in a session cut before its empty POST counts too.
        if self.last_look.elapsed() >= Duration::from_secs(2) {
            self.note_reported();
        }
    }

    /// Reported = carried by an Inform whose InformResponse the CPE read (or, for a
    /// TransferComplete, sent in a session where it read the TransferCompleteResponse): it
    /// posted again after it, or it was killed right after its log shows the answer read (it
    /// may have taken it as delivered: it will not come again). An Inform the CPE never read
    /// the answer to does not count: the agent must send its events again.
    fn note_reported(&mut self) {
        let sessions = self.acs.sessions();
        let posted = lock(&self.ctl).posted.clone();
        let heard = self.heard(&sessions, &posted);
        let mut tcs: HashSet<String> = HashSet::new();
        let mut events: HashSet<(String, String)> = HashSet::new();
        for (s, h) in sessions.iter().zip(&heard) {
            if h.inform != Read::No {
                events.extend(
                    s.inform
                        .events
                        .iter()
                        .map(|e| (e.code.clone(), e.command_key.clone())),
                );
            }
            tcs.extend(
                h.tc.iter()
                    .filter(|(_, r)| *r != Read::No)
                    .map(|(k, _)| k.clone()),
            );
        }
        lock(&self.ctl).seen_reported(&tcs, &events);
        self.last_look = Instant::now();
    }

    /// Per session (indexed like `sessions`): which of the ACS's answers the CPE read.
    /// `posted`: the sessions in which the CPE reached its empty POST.
    fn heard(&mut self, sessions: &[SessionRecord], posted: &BTreeSet<usize>) -> Vec<Heard> {
        let gen_of = |s: &SessionRecord| self.starts.iter().rposition(|t| *t <= s.started);
        // The last session of each generation: the one a kill may have cut after an answer.
        let mut last: BTreeMap<usize, usize> = BTreeMap::new();
        for s in sessions {
            if let Some(g) = gen_of(s) {
                last.insert(g, s.index);
            }
        }
        let killed = self.generation as usize;
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            let replies = match gen_of(s) {
                Some(g) if g < killed && last.get(&g) == Some(&s.index) => {
                    match self.replies_read.get(&g) {
                        Some(n) => *n,
                        None => {
                            let n = self.logs.get(g).map_or(0, |p| replies_read(p));
                            self.replies_read.insert(g, n);
                            n
                        }
                    }
                }
                _ => 0,
            };
            // The CPE's POST `k` of the session (0: the Inform, `i + 1`: its request `i`).
            let read = |k: usize| {
                if s.completed
                    || s.cpe_requests.len() > k
                    || !s.exchanges.is_empty()
                    || posted.contains(&s.index)
                {
                    Read::Yes
                } else if replies > k {
                    Read::Maybe
                } else {
                    Read::No
                }
            };
            let tc = s
                .cpe_requests
                .iter()
                .enumerate()
                .filter_map(|(i, (_, r))| match r {
                    cwmpd::soap::CpeRequest::TransferComplete { command_key, .. } => {
                        Some((command_key.clone(), read(i + 1)))
                    }
                    _ => None,
                })
                .collect();
            out.push(Heard {
                inform: read(0),
                tc,
            });
        }
        out
    }

    /// Whether a Reboot or firmware hook of the running daemon ran: it now waits for the device
    /// to go down.
    fn held(&self) -> bool {
        marks(&self.cpe)
            .iter()
            .any(|m| m.what == "held" && m.generation == self.generation)
    }

    /// "The device reboots" 50–400 ms after the hook (the agent holds meanwhile).
    fn reboot_cut(&mut self) {
        let at = Instant::now() + self.rng.ms(50, 400);
        while Instant::now() < at {
            thread::sleep(Duration::from_millis(5));
            self.watch();
        }
        self.kill(Kind::Reboot, false);
    }

    /// SIGKILLs the daemon, checks the store it left, and starts it again.
    fn kill(&mut self, kind: Kind, fallback: bool) {
        if let Some(d) = self.daemon.take() {
            let _ = d.kill();
        }
        self.generation += 1;
        let tmp_left = match check_state_files(&self.state_dir()) {
            Ok(n) => n,
            Err(e) => self.fail(vec![format!(
                "after cut {} ({}): {e}",
                self.cuts.len() + 1,
                kind.name()
            )]),
        };
        if let Some(log) = self.logs.last() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.to_lowercase().contains("corrupt")) {
                let what = format!("{}: {line}", log.display());
                self.fail(vec![what]);
            }
        }
        self.cuts.push(Cut {
            kind,
            fallback,
            tmp_left,
        });
        // What the ACS was handling when the CPE died settles.
        thread::sleep(Duration::from_millis(20));
        self.start_daemon();
    }

    /// One script per session (the ACS takes the next one at each Inform).
    fn refill_scripts(&mut self) {
        let used = lock(&self.ctl).max_index + 1;
        while self.scripts < used + 200 {
            self.acs.push_script_fn(work_script(self.ctl.clone()));
            self.scripts += 1;
        }
    }

    /// No more new work and no more cuts except the reboots owed: wait until every acknowledged
    /// Reboot, Download and ScheduleInform was reported in a session the CPE went on with, then
    /// for two more such sessions.
    fn drain(&mut self) {
        lock(&self.ctl).mode = Mode::Drain;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut quiet_from: Option<usize> = None;
        let mut last_look = Instant::now();
        loop {
            thread::sleep(Duration::from_millis(20));
            self.watch();
            if self.held() {
                self.reboot_cut();
                quiet_from = None;
                continue;
            }
            let mut owed = lock(&self.ctl).owed();
            if !owed.is_empty() && last_look.elapsed() >= Duration::from_millis(250) {
                last_look = Instant::now();
                self.note_reported();
                owed = lock(&self.ctl).owed();
            }
            let posted = lock(&self.ctl).posted.len();
            if owed.is_empty() {
                let from = *quiet_from.get_or_insert(posted);
                if posted >= from + 2 {
                    return;
                }
            } else {
                quiet_from = None;
            }
            if Instant::now() > deadline {
                self.fail(vec![format!(
                    "60 s after the last cut, still not reported in an Inform whose InformResponse (a TransferComplete whose answer) the CPE read: {owed:?}"
                )]);
            }
        }
    }

    /// One session of GetParameterAttributes, GetParameterNames and GetParameterValues.
    fn verify(&mut self) {
        lock(&self.ctl).mode = Mode::Verify;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            thread::sleep(Duration::from_millis(20));
            self.watch();
            if lock(&self.ctl).mode == Mode::Done {
                return;
            }
            if Instant::now() > deadline {
                self.fail(vec!["the verification session never completed".into()]);
            }
        }
    }

    /// The invariants over everything the ACS saw; the report, or a panic with every violation.
    fn check(&mut self, settle: Duration) -> String {
        let sessions = self.acs.sessions();
        let c = lock(&self.ctl).clone_view();
        let mut bad: Vec<String> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        // What the CPE read of each session's answers: `Yes` when it posted again after one,
        // `Maybe` when killed right after its log showed the answer read.
        let heard = self.heard(&sessions, &c.posted);
        let inform_read = |i: usize| heard.get(i).map_or(Read::No, |h| h.inform);
        let tc_read = |i: usize, key: &str| heard.get(i).and_then(|h| h.tc(key));
        // The log lines `replies_read` counts are still written (else every `Maybe` would be a
        // `No`, and the checks below stricter than the agent's guarantee).
        if !self.logs.iter().any(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .any(is_answer_line)
        }) {
            bad.push(
                "no daemon log has a `POST … -> 200 (…)` debug line: the transport's log format changed, update `is_answer_line`".into(),
            );
        }
        let tcs = transfer_completes(&sessions);

        // 1. Events with a CommandKey: exactly once, redelivered only where allowed.
        let mut delivered: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for s in &sessions {
            for e in &s.inform.events {
                if [M_REBOOT, M_DOWNLOAD, M_SCHEDULE_INFORM].contains(&e.code.as_str()) {
                    delivered
                        .entry((e.code.clone(), e.command_key.clone()))
                        .or_default()
                        .push(s.index);
                }
            }
        }
        let mut redelivered = 0;
        let mut events_checked = 0;
        for ((code, key), at) in &delivered {
            events_checked += 1;
            let Some(op) = c
                .ops
                .iter()
                .find(|o| &o.key == key && o.event() == Some(code.as_str()))
            else {
                bad.push(format!(
                    "{code} {key:?} in sessions {at:?}: no such request was sent"
                ));
                continue;
            };
            for (n, &i) in at.iter().enumerate() {
                let Some(s) = sessions.get(i) else { continue };
                let last = n + 1 == at.len();
                if !last {
                    let allowed = inform_read(i) != Read::Yes
                        || (code == M_DOWNLOAD && tc_read(i, key) != Some(Read::Yes));
                    if allowed {
                        redelivered += 1;
                    } else {
                        bad.push(format!(
                            "{code} {key:?} delivered again in session {} after session {i} acknowledged it (events {:?})",
                            at.get(n + 1).copied().unwrap_or(0),
                            s.event_codes()
                        ));
                    }
                }
                let companion = match code.as_str() {
                    M_REBOOT => BOOT,
                    M_DOWNLOAD => "7 TRANSFER COMPLETE",
                    _ => "3 SCHEDULED",
                };
                if !s.has_event(companion) {
                    bad.push(format!(
                        "session {i} carries {code} {key:?} without {companion}: {:?}",
                        s.inform.events
                    ));
                }
                if code == M_SCHEDULE_INFORM {
                    let due = op.sent_at + Duration::from_secs(u64::from(op.delay));
                    if s.started + SLACK < due {
                        bad.push(format!(
                            "{code} {key:?} (DelaySeconds {}) came {:?} early in session {i}",
                            op.delay,
                            due.duration_since(s.started)
                        ));
                    }
                }
            }
        }
        // Each acknowledged request's event reached the ACS in an Inform whose InformResponse
        // the CPE read (it posted again after it, or its log shows it read just before the
        // kill); `M Download` in one whose TransferComplete for the same key was answered and
        // read too (Table 7 keeps it until then). An Inform cut before the CPE read the answer
        // does not count: the agent must send the event again.
        let mut owed_by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut only_by_log = 0;
        for op in c.ops.iter().filter(|o| o.acked()) {
            let Some(code) = op.event() else { continue };
            let e = owed_by_kind.entry(code).or_default();
            e.0 += 1;
            let at = delivered
                .get(&(code.to_string(), op.key.clone()))
                .cloned()
                .unwrap_or_default();
            let read = |i: usize| {
                let r = inform_read(i);
                if code == M_DOWNLOAD && r != Read::No {
                    tc_read(i, &op.key).unwrap_or(Read::No)
                } else {
                    r
                }
            };
            if at.iter().any(|&i| read(i) == Read::Yes) {
                e.1 += 1;
            } else if at.iter().any(|&i| read(i) == Read::Maybe) {
                e.1 += 1;
                only_by_log += 1;
            } else if at.is_empty() {
                bad.push(format!(
                    "{code} {:?}: acknowledged {} never reported",
                    op.key,
                    op.call.method()
                ));
            } else {
                let what = if code == M_DOWNLOAD {
                    "InformResponse and TransferCompleteResponse"
                } else {
                    "InformResponse"
                };
                bad.push(format!(
                    "{code} {:?}: acknowledged {}, reported only in sessions {at:?} whose {what} the CPE never read (dropped when sent, not when acknowledged?)",
                    op.key,
                    op.call.method()
                ));
            }
        }
        lines.push(format!(
            "  events with a CommandKey: {events_checked} (code, key) pairs delivered; acknowledged requests reported in a session whose InformResponse (M Download: and TransferCompleteResponse) the CPE read (acked/reported) {owed_by_kind:?}, {only_by_log} of them read only as the log shows (killed before it posted again); redeliveries allowed (InformResponse or TransferCompleteResponse lost): {redelivered}"
        ));

        // 1b. `0 BOOTSTRAP` in the first Inform, and never again once the CPE read the
        // InformResponse to one (§3.7.1.5, Table 7: the ACS URL is then bootstrapped, written
        // before the CPE posts again).
        let bootstraps: Vec<usize> = sessions
            .iter()
            .filter(|s| s.has_event(BOOTSTRAP))
            .map(|s| s.index)
            .collect();
        if bootstraps.first() != Some(&0) {
            bad.push(format!(
                "the first Inform has no {BOOTSTRAP} (sessions with it: {bootstraps:?})"
            ));
        }
        let bootstrapped = bootstraps
            .iter()
            .copied()
            .find(|&i| inform_read(i) == Read::Yes);
        // Killed right after reading the InformResponse, the CPE may have taken it without a
        // later session to show it.
        let maybe = bootstraps.iter().any(|&i| inform_read(i) == Read::Maybe);
        match bootstrapped {
            None if maybe => {}
            None => bad.push(format!(
                "no Inform with {BOOTSTRAP} was acknowledged (sessions with it: {bootstraps:?})"
            )),
            Some(b) => {
                let again: Vec<usize> = bootstraps.iter().copied().filter(|&i| i > b).collect();
                if !again.is_empty() {
                    bad.push(format!(
                        "{BOOTSTRAP} again in sessions {again:?} after the CPE read the InformResponse of session {b}"
                    ));
                }
            }
        }

        // 1c. The start after each Reboot hook ran (§A.3.2.10): its first Inform carries
        // `1 BOOT` and `M Reboot` with the CommandKey (the agent marks the Reboot started and
        // writes it before the hook runs, so a mark of the hook means the next start owes them).
        let gen_of = |s: &SessionRecord| self.starts.iter().rposition(|t| *t <= s.started);
        let mut reboots_checked = 0;
        // And the hook runs once per Reboot: the agent writes the Reboot as started before
        // running it, so a cut after it is the reboot, never a reason to run it again (the hook
        // here always succeeds, and the test cuts long before the agent's reboot timeout).
        let mut runs: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for m in marks(&self.cpe) {
            if m.what == "held" && m.rest.first().map(String::as_str) == Some("reboot") {
                runs.entry(m.rest.get(1).cloned().unwrap_or_default())
                    .or_default()
                    .push(m.generation);
            }
        }
        for (key, gens) in &runs {
            if gens.len() > 1 {
                bad.push(format!(
                    "the Reboot hook ran {} times for {key:?} (generations {gens:?}): run again after the cut that was its reboot",
                    gens.len()
                ));
            }
        }
        for m in marks(&self.cpe) {
            // A hook of the running daemon: the device has not gone down yet.
            if m.what != "held"
                || m.rest.first().map(String::as_str) != Some("reboot")
                || m.generation >= self.generation
            {
                continue;
            }
            reboots_checked += 1;
            let key = m.rest.get(1).cloned().unwrap_or_default();
            let g = m.generation as usize;
            match sessions.iter().find(|s| gen_of(s).is_some_and(|sg| sg > g)) {
                None => bad.push(format!(
                    "the Reboot hook ran in generation {g} (key {key:?}); no Inform after it"
                )),
                Some(s) => {
                    let has_key = s
                        .inform
                        .events
                        .iter()
                        .any(|e| e.code == M_REBOOT && e.command_key == key);
                    if !s.has_event(BOOT) || !has_key {
                        bad.push(format!(
                            "the Reboot hook ran in generation {g} (key {key:?}); the first Inform after it (session {}) lacks {BOOT} or {M_REBOOT} {key:?}: {:?}",
                            s.index, s.inform.events
                        ));
                    }
                }
            }
        }
        lines.push(format!(
            "  {BOOTSTRAP}: in the first Inform, acknowledged in session {}, never again after; Reboot hook runs: {reboots_checked} (one per CommandKey), each followed by an Inform with {BOOT} and its {M_REBOOT}",
            bootstrapped.map_or("- (read only as the log shows)".to_string(), |b| b.to_string())
        ));

        // 2. TransferComplete: acknowledged exactly once per CommandKey, identical resends.
        let mut by_key: BTreeMap<String, Vec<&Tc>> = BTreeMap::new();
        for t in &tcs {
            by_key.entry(t.command_key.clone()).or_default().push(t);
        }
        let mut tc_resent = 0;
        let mut codes: BTreeMap<u32, usize> = BTreeMap::new();
        for (key, list) in &by_key {
            if !c
                .ops
                .iter()
                .any(|o| &o.key == key && o.event() == Some(M_DOWNLOAD))
            {
                bad.push(format!(
                    "TransferComplete {key:?}: no such Download was sent"
                ));
            }
            let Some(last) = list.last() else { continue };
            *codes.entry(last.code).or_default() += 1;
            for t in &list[..list.len() - 1] {
                let Some(s) = sessions.get(t.session) else {
                    continue;
                };
                if tc_read(s.index, key) == Some(Read::Yes) {
                    bad.push(format!(
                        "TransferComplete {key:?} sent again after the CPE went on in session {} (its answer had arrived)",
                        t.session
                    ));
                } else {
                    tc_resent += 1;
                }
                if (t.code, &t.start_time, &t.complete_time)
                    != (last.code, &last.start_time, &last.complete_time)
                {
                    bad.push(format!(
                        "the resent TransferComplete differs: {t:?} vs {last:?}"
                    ));
                }
            }
        }
        let acked_downloads: Vec<&Op> = c
            .ops
            .iter()
            .filter(|o| o.acked() && o.event() == Some(M_DOWNLOAD))
            .collect();
        // Each acknowledged Download's TransferComplete was sent in a session where the CPE read
        // the TransferCompleteResponse (posted again after it, or its log shows it read just
        // before the kill): one cut before the CPE read it does not count, it must come again.
        let mut tc_only_by_log = 0;
        for op in &acked_downloads {
            let sent_in: Vec<usize> = by_key
                .get(&op.key)
                .map(|l| l.iter().map(|t| t.session).collect())
                .unwrap_or_default();
            let reads: Vec<Option<Read>> = sent_in.iter().map(|&i| tc_read(i, &op.key)).collect();
            if reads.contains(&Some(Read::Yes)) {
            } else if reads.contains(&Some(Read::Maybe)) {
                tc_only_by_log += 1;
            } else if sent_in.is_empty() {
                bad.push(format!(
                    "Download {:?} acknowledged, no TransferComplete",
                    op.key
                ));
            } else {
                bad.push(format!(
                    "Download {:?} acknowledged, its TransferComplete sent only in sessions {sent_in:?} whose TransferCompleteResponse the CPE never read (settled when sent, not when acknowledged?)",
                    op.key
                ));
            }
        }
        lines.push(format!(
            "  TransferComplete: {} CommandKeys ({} acknowledged Downloads), each acknowledged once in a session where the CPE read the answer ({tc_only_by_log} read only as the log shows); FaultCodes {codes:?}; resent because the answer was lost: {tc_resent}",
            by_key.len(),
            acked_downloads.len()
        ));

        // 3. Attributes set by acknowledged SPAs.
        let attrs: BTreeMap<String, u8> = c
            .verify_attrs
            .iter()
            .map(|a| (a.name.clone(), a.notification))
            .collect();
        let mut attrs_checked = 0;
        for name in SPA_PARAMS {
            let spas: Vec<&Op> = c
                .ops
                .iter()
                .filter(|o| o.spa.as_ref().is_some_and(|(n, _)| n == name))
                .collect();
            let Some(want) = allowed_values(&spas, |o| o.spa.as_ref().map_or(0, |(_, v)| *v))
            else {
                continue;
            };
            attrs_checked += 1;
            match attrs.get(name) {
                Some(got) if want.contains(got) => {}
                got => bad.push(format!(
                    "{name}: Notification {got:?}, want one of {want:?} (the last acknowledged SPA, or a later unanswered one)"
                )),
            }
        }
        lines.push(format!(
            "  attributes: {attrs_checked} parameter(s) with acknowledged SPAs hold the last acknowledged Notification"
        ));

        // 4. Instance numbers of acknowledged AddObjects: unique and present.
        let mut numbers: Vec<u32> = Vec::new();
        for op in &c.ops {
            if let Some(Ok(CpeResponse::AddObject {
                instance_number, ..
            })) = &op.answer
            {
                numbers.push(*instance_number);
            }
        }
        let unique: BTreeSet<u32> = numbers.iter().copied().collect();
        if unique.len() != numbers.len() {
            let mut seen = HashSet::new();
            let twice: Vec<u32> = numbers
                .iter()
                .copied()
                .filter(|n| !seen.insert(*n))
                .collect();
            bad.push(format!("instance numbers handed out twice: {twice:?}"));
        }
        let present: BTreeSet<u32> = c
            .verify_names
            .iter()
            .filter_map(|n| n.strip_prefix(INFORM_PARAM))
            .filter_map(|n| n.trim_end_matches('.').parse().ok())
            .collect();
        let missing: Vec<&u32> = unique.difference(&present).collect();
        if !missing.is_empty() {
            bad.push(format!(
                "instances of acknowledged AddObjects gone: {missing:?} (present: {present:?})"
            ));
        }
        lines.push(format!(
            "  instances: {} acknowledged AddObjects, numbers unique, all present ({} instances at the end)",
            numbers.len(),
            present.len()
        ));

        // 5. ParameterKey (SPV and AddObject set it) and the SPV'd value.
        let keyed: Vec<&Op> = c.ops.iter().filter(|o| o.sets_key()).collect();
        let want_key = allowed_values(&keyed, |o| o.key.clone()).unwrap_or_default();
        let got_key = c.verify_values.get(PKEY).cloned();
        let spvs: Vec<&Op> = c.ops.iter().filter(|o| o.kind == OpKind::Spv).collect();
        let want_code = allowed_values(&spvs, |o| format!("pc-{}", o.key)).unwrap_or_default();
        let got_code = c.verify_values.get(PCODE).cloned();
        let key_ok = want_key.is_empty() || got_key.as_ref().is_some_and(|k| want_key.contains(k));
        if !key_ok {
            bad.push(format!(
                "ParameterKey {got_key:?}, want one of {want_key:?} (the last acknowledged SPV/AddObject key, or a later unanswered one)"
            ));
        }
        if !want_code.is_empty() && !got_code.as_ref().is_some_and(|v| want_code.contains(v)) {
            bad.push(format!(
                "ProvisioningCode {got_code:?}, want one of {want_code:?}"
            ));
        }
        lines.push(format!(
            "  ParameterKey {:?} = the last acknowledged of {} SPV/AddObject keys; ProvisioningCode {:?} likewise",
            got_key.unwrap_or_default(),
            keyed.iter().filter(|o| o.acked()).count(),
            got_code.unwrap_or_default()
        ));

        // 6. The store at the end: nothing corrupt, no temp file of a dead writer.
        let state = self.state_dir();
        if let Err(e) = check_state_files(&state) {
            bad.push(e);
        }
        let pid = self.daemon.as_ref().map(|d| d.child.id());
        let stale: Vec<String> = list_dir(&state)
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .filter(|n| {
                n.strip_suffix(".tmp")
                    .and_then(|s| s.rsplit('.').next())
                    .and_then(|p| p.parse::<u32>().ok())
                    != pid
            })
            .collect();
        if !stale.is_empty() {
            bad.push(format!("temp files of dead writers left: {stale:?}"));
        }
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.to_lowercase().contains("corrupt")) {
                bad.push(format!("{}: {line}", log.display()));
            }
        }
        let torn: usize = self.cuts.iter().map(|k| k.tmp_left).sum();
        lines.push(format!(
            "  files: {} state-file checks after cuts + 1 at the end: header/length/CRC/TOML valid, no .corrupt, no \"corrupt\" in {} daemon logs; temp files left by a cut mid-write (removed at the next start): {torn}",
            self.cuts.len(),
            self.logs.len()
        ));

        if !bad.is_empty() {
            self.fail(bad);
        }

        let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &self.cuts {
            *by_kind.entry(k.kind.name()).or_default() += 1;
        }
        let fallbacks = self.cuts.iter().filter(|k| k.fallback).count();
        let mut ops: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for o in &c.ops {
            if o.kind == OpKind::Verify {
                continue;
            }
            let e = ops.entry(format!("{:?}", o.kind)).or_default();
            e.0 += 1;
            match &o.answer {
                Some(Ok(CpeResponse::Fault(_))) => e.2 += 1,
                Some(Ok(_)) => e.1 += 1,
                _ => {}
            }
        }
        let cfg_runs = hook_runs(&self.cpe, "cfg").len();
        format!(
            "power-cut: {} cuts in {:.1} s (seed {}), {} sessions, all invariants held\n\
             \x20 cuts by kind: {by_kind:?} (planned point not reached within {ARM_LIMIT:?}, killed then: {fallbacks}); store writes seen by the watcher: {}\n\
             \x20 requests by kind (sent, acknowledged, faulted): {ops:?}; config hook runs: {cfg_runs}\n\
             \x20 settle after the last cut: {:.1} s\n{}",
            self.cuts.len(),
            self.started.elapsed().as_secs_f64(),
            self.seed,
            sessions.len(),
            self.writes_seen,
            settle.as_secs_f64(),
            lines.join("\n")
        )
    }

    /// Panics with every violation and what is needed to understand it.
    fn fail(&mut self, what: Vec<String>) -> ! {
        let sessions = self.acs.sessions();
        let logs = log_tails(&self.logs, 3, 60);
        let cuts: Vec<String> = self
            .cuts
            .iter()
            .rev()
            .take(10)
            .map(|k| {
                format!(
                    "{}{}",
                    k.kind.name(),
                    if k.fallback { " (limit)" } else { "" }
                )
            })
            .collect();
        let marks = std::fs::read_to_string(self.cpe.dir.path().join("marks")).unwrap_or_default();
        // The CPE's directory (config, store, every daemon log) outlives the test for a reader.
        let kept = std::env::temp_dir().join(format!("cwmpd-powercut-failed-{}", self.seed));
        tempdir::copy_tree(self.cpe.dir.path(), &kept);
        panic!(
            "power-cut: {} violation(s):\n  {}\nseed {} (CWMPD_POWERCUT_SEED), {} cuts, CPE directory kept in {}; last cuts (newest first): {cuts:?}\nhook marks (last 20):\n{}\nsessions (last 30):\n{}\nstate dir: {:?}\ndaemon logs:\n{}",
            what.len(),
            what.join("\n  "),
            self.seed,
            self.cuts.len(),
            kept.display(),
            marks.lines().rev().take(20).collect::<Vec<_>>().join("\n"),
            summary(&sessions[sessions.len().saturating_sub(30)..]),
            list_dir(&self.state_dir()),
            logs.join("\n")
        );
    }
}

/// The values a setting may have at the end: the one of the last acknowledged request, and
/// those of later requests whose answer never reached the ACS (the cut may have come after the
/// commit). `None` when no request was acknowledged (the initial value is possible too: nothing
/// to check).
fn allowed_values<T: Clone + Ord>(ops: &[&Op], value: impl Fn(&Op) -> T) -> Option<Vec<T>> {
    let last_acked = ops.iter().rposition(|o| o.acked())?;
    let mut out: Vec<T> = ops
        .get(last_acked..)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(i, o)| *i == 0 || o.maybe_applied())
        .map(|(_, o)| value(o))
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

// ----------------------------------------------------------------------------------------------
// The ACS side: the workload, one script per session.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    #[default]
    Work,
    Drain,
    Verify,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OpKind {
    Spv,
    Spa,
    AddObject,
    DownloadConfig,
    DownloadFirmware,
    ScheduleInform,
    Reboot,
    Verify,
}

/// One request the ACS sent and what came back.
#[derive(Debug, Clone)]
struct Op {
    kind: OpKind,
    key: String,
    call: Call,
    /// The session and the exchange index the answer will have.
    session: usize,
    pos: usize,
    sent_at: Instant,
    /// `None` until the ACS got an answer.
    answer: Option<Result<CpeResponse, String>>,
    spa: Option<(String, u8)>,
    delay: u32,
}

impl Op {
    /// The ACS got a response that is not a fault.
    fn acked(&self) -> bool {
        matches!(&self.answer, Some(Ok(r)) if !matches!(r, CpeResponse::Fault(_)))
    }

    /// No answer reached the ACS: the CPE may or may not have carried it out.
    fn maybe_applied(&self) -> bool {
        !matches!(&self.answer, Some(Ok(_)))
    }

    /// The request sets the ParameterKey (§A.3.2.1, §A.3.2.6).
    fn sets_key(&self) -> bool {
        matches!(self.kind, OpKind::Spv | OpKind::AddObject)
    }

    /// The event with this request's CommandKey (Table 7).
    fn event(&self) -> Option<&'static str> {
        match self.kind {
            OpKind::Reboot => Some(M_REBOOT),
            OpKind::DownloadConfig | OpKind::DownloadFirmware => Some(M_DOWNLOAD),
            OpKind::ScheduleInform => Some(M_SCHEDULE_INFORM),
            _ => None,
        }
    }
}

/// What the scripts share with the test.
struct Ctl {
    mode: Mode,
    url_base: String,
    rng: Rng,
    ops: Vec<Op>,
    /// Sessions in which the CPE reached its empty POST (it read the InformResponse and every
    /// answer to its own requests).
    posted: BTreeSet<usize>,
    max_index: usize,
    last_progress: Instant,
    /// Per session: requests still to send in it.
    budget: BTreeMap<usize, usize>,
    /// `(code, key)` of events and CommandKeys of TransferCompletes seen in sessions that
    /// reached the empty POST (and, while draining, in any session the ACS recorded).
    confirmed: HashSet<(String, String)>,
    tc_confirmed: HashSet<String>,
    verify_attrs: Vec<cwmpd::cwmp::value::ParameterAttribute>,
    verify_names: Vec<String>,
    verify_values: BTreeMap<String, String>,
}

/// A copy of what the checks need.
struct CtlView {
    ops: Vec<Op>,
    posted: BTreeSet<usize>,
    verify_attrs: Vec<cwmpd::cwmp::value::ParameterAttribute>,
    verify_names: Vec<String>,
    verify_values: BTreeMap<String, String>,
}

impl Ctl {
    fn clone_view(&self) -> CtlView {
        CtlView {
            ops: self.ops.clone(),
            posted: self.posted.clone(),
            verify_attrs: self.verify_attrs.clone(),
            verify_names: self.verify_names.clone(),
            verify_values: self.verify_values.clone(),
        }
    }

    /// Acknowledged requests whose report has not been seen in a session that went on.
    fn owed(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter(|o| o.acked())
            .filter(|o| match o.event() {
                None => false,
                Some(M_DOWNLOAD) => !self.tc_confirmed.contains(&o.key),
                Some(code) => !self.confirmed.contains(&(code.to_string(), o.key.clone())),
            })
            .map(|o| format!("{:?} {}", o.kind, o.key))
            .collect()
    }

    /// Notes the TransferCompletes and events the ACS saw in any session.
    fn seen_reported(&mut self, tcs: &HashSet<String>, events: &HashSet<(String, String)>) {
        self.tc_confirmed.extend(tcs.iter().cloned());
        self.confirmed.extend(events.iter().cloned());
    }

    fn downloads_pending(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.event() == Some(M_DOWNLOAD) && o.answer.is_some())
            .filter(|o| o.acked() && !self.tc_confirmed.contains(&o.key))
            .count()
    }

    fn reboot_pending(&self) -> bool {
        self.ops.iter().any(|o| {
            o.kind == OpKind::Reboot
                && o.acked()
                && !self
                    .confirmed
                    .contains(&(M_REBOOT.to_string(), o.key.clone()))
        })
    }

    /// One turn of session `turn.session`: note what the CPE did, then the next request.
    fn turn(&mut self, turn: &Turn<'_>) -> Option<Call> {
        let s = turn.session;
        let idx = s.index;
        self.max_index = self.max_index.max(idx);
        self.last_progress = Instant::now();
        if turn.last.is_none() {
            self.posted.insert(idx);
            for e in &s.inform.events {
                self.confirmed
                    .insert((e.code.clone(), e.command_key.clone()));
            }
            for t in transfer_completes(std::slice::from_ref(s)) {
                self.tc_confirmed.insert(t.command_key);
            }
        }
        for op in self.ops.iter_mut().filter(|o| o.session == idx) {
            if op.answer.is_none() {
                if let Some(e) = s.exchanges.get(op.pos) {
                    op.answer = Some(e.response.clone());
                }
            }
        }
        match self.mode {
            Mode::Work => self.work(s),
            Mode::Drain | Mode::Done => None,
            Mode::Verify => self.verify(s),
        }
    }

    fn work(&mut self, s: &SessionRecord) -> Option<Call> {
        let idx = s.index;
        if !self.budget.contains_key(&idx) {
            let n = 1 + self.rng.below(3) as usize;
            self.budget.insert(idx, n);
        }
        let left = self.budget.get(&idx).copied().unwrap_or(0);
        if left == 0 {
            return None;
        }
        let n = self.ops.len();
        let mut kind = match self.rng.below(100) {
            0..=21 => OpKind::Spv,
            22..=39 => OpKind::Spa,
            40..=57 => OpKind::AddObject,
            58..=69 => OpKind::DownloadConfig,
            70..=75 => OpKind::DownloadFirmware,
            76..=89 => OpKind::ScheduleInform,
            _ => OpKind::Reboot,
        };
        if matches!(kind, OpKind::DownloadConfig | OpKind::DownloadFirmware)
            && self.downloads_pending() >= 2
        {
            kind = OpKind::Spv;
        }
        if kind == OpKind::Reboot && self.reboot_pending() {
            kind = OpKind::Spa;
        }
        let mut spa = None;
        let mut delay = 0;
        let (key, call) = match kind {
            OpKind::Spv => {
                let key = format!("spv{n}");
                let v = format!("pc-{key}");
                let call = spv_req(&[(PCODE, v.as_str(), BaseType::String)], &key);
                (key, call)
            }
            OpKind::Spa => {
                let name = SPA_PARAMS[self.rng.below(SPA_PARAMS.len() as u64) as usize];
                let notification = self.rng.below(3) as u8;
                spa = Some((name.to_string(), notification));
                (format!("spa{n}"), spa_req(name, notification))
            }
            OpKind::AddObject => {
                let key = format!("add{n}");
                let call = add_req_at(INFORM_PARAM, &key);
                (key, call)
            }
            OpKind::DownloadConfig | OpKind::DownloadFirmware => {
                let (prefix, ft) = if kind == OpKind::DownloadConfig {
                    ("cfg", CONFIG_FILE)
                } else {
                    ("fw", FIRMWARE)
                };
                let key = format!("{prefix}{n}");
                let url = format!("{}{key}", self.url_base);
                let d = cwmpd::soap::Download {
                    file_size: FILE_SIZE as u32,
                    ..download(&key, ft, &url)
                };
                (key, AcsRequest::Download(d).into())
            }
            OpKind::ScheduleInform => {
                let key = format!("si{n}");
                delay = 1 + self.rng.below(3) as u32;
                let call = AcsRequest::ScheduleInform {
                    delay_seconds: delay,
                    command_key: key.clone(),
                }
                .into();
                (key, call)
            }
            OpKind::Reboot | OpKind::Verify => {
                let key = format!("rb{n}");
                let call = AcsRequest::Reboot {
                    command_key: key.clone(),
                }
                .into();
                (key, call)
            }
        };
        // After a Reboot the session ends (the device goes down after it).
        let left = if kind == OpKind::Reboot { 0 } else { left - 1 };
        self.budget.insert(idx, left);
        self.ops.push(Op {
            kind,
            key,
            call: call.clone(),
            session: idx,
            pos: s.exchanges.len(),
            sent_at: Instant::now(),
            answer: None,
            spa,
            delay,
        });
        Some(call)
    }

    /// The verification session: GetParameterAttributes, GetParameterNames, GetParameterValues,
    /// in one session that completes; a cut one starts over.
    fn verify(&mut self, s: &SessionRecord) -> Option<Call> {
        let done: Vec<&Op> = self
            .ops
            .iter()
            .filter(|o| o.kind == OpKind::Verify && o.session == s.index)
            .collect();
        let call: Call = match done.len() {
            0 => AcsRequest::GetParameterAttributes {
                names: SPA_PARAMS.iter().map(|n| n.to_string()).collect(),
            }
            .into(),
            1 => gpn_req(INFORM_PARAM, true),
            2 => gpv_req(&[PKEY, PCODE]),
            _ => {
                let answers: Vec<Option<Result<CpeResponse, String>>> =
                    done.iter().map(|o| o.answer.clone()).collect();
                for a in answers {
                    match a {
                        Some(Ok(CpeResponse::GetParameterAttributes { list })) => {
                            self.verify_attrs = list
                        }
                        Some(Ok(CpeResponse::GetParameterNames { list })) => {
                            self.verify_names = list.into_iter().map(|p| p.name).collect()
                        }
                        Some(Ok(CpeResponse::GetParameterValues { list })) => {
                            self.verify_values = list
                                .iter()
                                .map(|p| (p.name.into(), p.value.into()))
                                .collect()
                        }
                        other => {
                            self.verify_values
                                .insert("error".into(), format!("{other:?}"));
                        }
                    }
                }
                self.mode = Mode::Done;
                return None;
            }
        };
        self.ops.push(Op {
            kind: OpKind::Verify,
            key: String::new(),
            call: call.clone(),
            session: s.index,
            pos: s.exchanges.len(),
            sent_at: Instant::now(),
            answer: None,
            spa: None,
            delay: 0,
        });
        Some(call)
    }
}

fn work_script(ctl: Arc<Mutex<Ctl>>) -> impl FnMut(&Turn<'_>) -> Option<Call> + Send + 'static {
    move |turn: &Turn<'_>| lock(&ctl).turn(turn)
}

// ----------------------------------------------------------------------------------------------
// Helpers.

/// A line a hook wrote: `cfg GEN KEY` or `held GEN fw|reboot KEY`.
struct Mark {
    what: String,
    generation: u32,
    /// What follows: `[KEY]` or `[fw|reboot, KEY]`.
    rest: Vec<String>,
}

fn marks(cpe: &Cpe) -> Vec<Mark> {
    std::fs::read_to_string(cpe.dir.path().join("marks"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Mark {
                what: w.next()?.to_string(),
                generation: w.next()?.parse().ok()?,
                rest: w.map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Inode, size and mtime of each `*.toml` of the store: a rename or rewrite changes one.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u64, i64, i64)> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".toml") {
                continue;
            }
            if let Ok(m) = e.metadata() {
                out.insert(name, (m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
            }
        }
    }
    out
}

/// Whether the CPE read the ACS's answer to one of its POSTs in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Nothing shows it did: what the answer acknowledges must come again.
    No,
    /// Killed right after its log showed the answer read, before anything more reached the
    /// ACS: it may have taken the answer (and written it) or not.
    Maybe,
    /// It posted again in the session.
    Yes,
}

/// What the CPE read of one session's answers.
struct Heard {
    /// The InformResponse.
    inform: Read,
    /// Each TransferComplete of the session (CommandKey) and its TransferCompleteResponse.
    tc: Vec<(String, Read)>,
}

impl Heard {
    /// The TransferComplete for `key` was sent in this session and its answer read (`Yes`), or
    /// maybe read; `None` when it was not sent.
    fn tc(&self, key: &str) -> Option<Read> {
        self.tc
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, r)| *r)
            .max_by_key(|r| match r {
                Read::No => 0,
                Read::Maybe => 1,
                Read::Yes => 2,
            })
    }
}

/// How many answers of the ACS a daemon's log shows read in its last session (after its last
/// `session to … events […]` line): the transport's debug line `POST URL (N bytes) -> 200 (M
/// bytes)` is written once the answer's body is read, before the agent acts on it.
fn replies_read(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines
        .iter()
        .rposition(|l| l.contains("session to "))
        .map_or(lines.len(), |i| i + 1);
    lines[from..].iter().filter(|l| is_answer_line(l)).count()
}

/// The transport's debug line for a POST answered with 200 and read.
fn is_answer_line(l: &str) -> bool {
    l.contains("POST ") && l.contains(" -> 200 (")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One line per session: index, completed, events, CPE requests, ACS requests.
fn summary(sessions: &[SessionRecord]) -> String {
    sessions
        .iter()
        .map(|s| {
            let (events, reqs, calls) = session_calls(s);
            format!(
                "  #{} {} events {:?} cpe {:?} acs {:?}",
                s.index,
                if s.completed { "completed" } else { "cut" },
                events,
                reqs,
                calls,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
