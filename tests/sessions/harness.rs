//! The harness of the session cases: an agent on a generic platform in a temporary directory,
//! its clock and its ACS in memory, and the comparison with the expected transcript.

use std::path::PathBuf;

use cwmpd::agent::ManualClock;
use cwmpd::agent::{Agent, Loop, Trigger};
use cwmpd::config::Config;
use support::acs::memory::MemoryAcs;
use support::acs::AcsOptions;
use support::clock::T0;
use support::rng::Rng;
use support::tempdir::TempDir;

/// The ACS URL of every case.
pub const ACS: &str = "http://acs.test/acs";

/// Most loop turns a case may take to reach what it waits for.
const MAX_TURNS: usize = 200;

/// What a case changes in the standard setup.
#[derive(Default)]
pub struct Setup {
    /// Extra `[acs]` lines.
    pub acs: &'static str,
    /// Extra `[datamodel]` lines; `{dir}` is the case's directory.
    pub datamodel: &'static str,
    /// More sections after the standard ones; `{dir}` is the case's directory.
    pub more: &'static str,
    /// The options of the ACS at [`ACS`] (default: `AcsOptions::default()`).
    pub options: Option<AcsOptions>,
    /// Files written before the agent starts: (path in the case's directory, content).
    pub files: &'static [(&'static str, &'static str)],
}

/// One case: the agent, its loop, its clock and its ACS.
pub struct Case {
    pub name: &'static str,
    pub dir: TempDir,
    pub clock: ManualClock,
    pub acs: MemoryAcs,
    config: String,
    agent: Option<(Agent, Loop)>,
}

impl Case {
    /// A case with the standard setup: a generic platform, its state in a temporary directory,
    /// the clock at [`T0`], the ACS at [`ACS`] with seed 1, the retry waits from seed 1.
    pub fn new(name: &'static str) -> Case {
        Case::with(name, Setup::default())
    }

    /// A case with the standard setup changed by `setup`.
    pub fn with(name: &'static str, setup: Setup) -> Case {
        let dir = TempDir::new(&format!("sessions-{name}"));
        let clock = ManualClock::new(T0);
        let acs = MemoryAcs::new(&clock);
        acs.serve(ACS, setup.options.unwrap_or_default(), 1);
        for (path, content) in setup.files {
            let path = dir.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, content).expect("write a file of the setup");
        }
        let d = dir.path().display().to_string();
        let config = format!(
            "[acs]\nurl = \"{ACS}\"\n{}\n\
             [device]\nmanufacturer = \"cwmpd-test\"\noui = \"00D0F8\"\n\
             product_class = \"Mem\"\nserial_number = \"MEM1\"\nsoftware_version = \"1.0\"\n\
             [datamodel]\nplatform = \"generic\"\n{}\n\
             [transfer]\ndir = \"{d}/transfer\"\nreboot_timeout = 120\n\
             [storage]\ndir = \"{d}/state\"\n{}",
            setup.acs,
            setup.datamodel.replace("{dir}", &d),
            setup.more.replace("{dir}", &d),
        );
        let mut case = Case {
            name,
            dir,
            clock,
            acs,
            config,
            agent: None,
        };
        case.start();
        case
    }

    /// Starts the agent (again, after [`Case::stop`]: a restart on the same storage).
    pub fn start(&mut self) {
        let cfg = Config::parse(&self.config, "test").expect("config");
        let mut rng = Rng::spread(1);
        let mut agent = Agent::new(cfg)
            .expect("agent")
            .with_clock(Box::new(self.clock.clone()))
            .with_transport(self.acs.connect())
            .with_retry_random(Box::new(move || rng.next_u64()));
        let lp = agent.start_loop().expect("start");
        self.agent = Some((agent, lp));
    }

    /// Stops the agent (the process ends: a reboot, a kill).
    pub fn stop(&mut self) {
        self.agent = None;
    }

    /// Wakes the running agent's loop with `trigger`, as its threads do (the Connection Request
    /// listener, the watches).
    pub fn trigger(&mut self, trigger: Trigger) {
        let (agent, _) = self.agent.as_ref().expect("the agent runs");
        agent
            .trigger_sender()
            .send(trigger)
            .expect("the loop listens");
    }

    /// One loop turn.
    pub fn turn(&mut self) {
        let (agent, lp) = self.agent.as_mut().expect("the agent runs");
        assert_eq!(agent.turn(lp), None, "the loop ended");
    }

    /// Turns the loop until `done` holds.
    pub fn run_until(&mut self, what: &str, done: impl Fn(&Case) -> bool) {
        for _ in 0..MAX_TURNS {
            if done(self) {
                return;
            }
            self.turn();
        }
        panic!(
            "{}: not {what} after {MAX_TURNS} turns\n{}",
            self.name,
            self.acs.transcript()
        );
    }

    /// Turns the loop until `n` sessions have completed, at every ACS.
    pub fn run_sessions(&mut self, n: usize) {
        self.run_until(&format!("{n} completed sessions"), |c| {
            c.acs.completed() >= n
        });
    }

    /// Turns the loop until `n` session attempts were made (refused ones included).
    pub fn run_connections(&mut self, n: usize) {
        self.run_until(&format!("{n} session attempts"), |c| {
            c.acs.attempts().len() >= n
        });
    }

    /// Turns the loop until the clock reads `secs` after its start, or later.
    pub fn run_for(&mut self, secs: u64) {
        let until = std::time::Duration::from_secs(secs);
        self.run_until(&format!("{secs} s"), |c| c.clock.elapsed() >= until);
    }

    /// Compares the transcript with `expected/<name>.txt`, or writes it there with
    /// `SESSIONS_BLESS=1`.
    pub fn finish(self) {
        check(self.name, &self.acs.transcript());
    }
}

fn expected_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sessions/expected")
}

/// Compares `text` with the expected file of `name`, or blesses it.
pub fn check(name: &str, text: &str) {
    let path = expected_dir().join(format!("{name}.txt"));
    if std::env::var_os("SESSIONS_BLESS").is_some() {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `SESSIONS_BLESS=1 cargo test --test sessions` and review)\n{text}",
            path.display()
        )
    });
    if want != text {
        panic!(
            "{name}: the transcript differs from {} (first difference at line {}); if the \
             change is intended, run `SESSIONS_BLESS=1 cargo test --test sessions` and review \
             the diff\n--- got ---\n{text}",
            path.display(),
            want.lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .map_or(want.lines().count().min(text.lines().count()) + 1, |i| i
                    + 1)
        );
    }
}
