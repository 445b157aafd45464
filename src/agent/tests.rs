//! The agent driven in memory: a clock of the test's ([`ManualClock`]: no real time passes) and an
//! ACS built from the library's ACS-side codec ([`crate::soap::acs`]) plugged in as the
//! transport. No thread, socket or sleep: each [`Agent::turn`] runs what is due, and a wait
//! without a trigger moves the clock to the end of the wait.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{AcsTransport, Agent, Clock, Connect, Exit, Loop, ManualClock, Trigger};
use crate::config::Config;
use crate::cwmp::version::CwmpNs;
use crate::http::acs::{HttpReply, TransportConfig, TransportError};
use crate::schedule;
use crate::soap::acs::{emit_acs_request, emit_acs_response, parse_cpe, CpeMessage};
use crate::soap::msg::{AcsRequest, AcsResponse, CpeRequest, Header};
use crate::soap::Body;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

/// One Inform the ACS received.
#[derive(Debug, Clone)]
struct Seen {
    /// The fake wall clock when it arrived, seconds.
    at: f64,
    events: Vec<String>,
    retry_count: u32,
}

/// How the in-memory ACS answers the next Informs.
#[derive(Debug, Clone)]
enum Answer {
    /// InformResponse, then the queued requests, then 204.
    Accept,
    /// This HTTP status (no body), with a Retry-After.
    Status(u16, Option<u32>),
    /// The connection breaks.
    Broken,
}

#[derive(Default)]
struct AcsState {
    informs: Vec<Seen>,
    /// Answers to the next Informs, in order; accepted once empty.
    answers: VecDeque<Answer>,
    /// Requests sent to the CPE in the next accepted session, after its empty POST.
    requests: VecDeque<AcsRequest>,
    /// The URLs the CPE opened a session to.
    urls: Vec<String>,
}

/// An ACS in memory: each POST body is parsed and answered with the ACS-side codec.
#[derive(Clone)]
struct TestAcs {
    state: Arc<Mutex<AcsState>>,
    clock: ManualClock,
    /// The namespace of the CPE's last message.
    ns: CwmpNs,
}

impl TestAcs {
    fn new(clock: &ManualClock) -> TestAcs {
        TestAcs {
            state: Arc::default(),
            clock: clock.clone(),
            ns: CwmpNs::V1_0,
        }
    }

    /// The transport factory the agent opens each session with.
    fn connect(&self) -> Connect {
        let acs = self.clone();
        Box::new(move |cfg: &TransportConfig, _deadline: Instant| {
            acs.state.lock().unwrap().urls.push(cfg.url.clone());
            Ok(Box::new(acs.clone()) as Box<dyn AcsTransport>)
        })
    }

    fn answer(&self, a: Answer) {
        self.state.lock().unwrap().answers.push_back(a);
    }

    fn request(&self, r: AcsRequest) {
        self.state.lock().unwrap().requests.push_back(r);
    }

    fn informs(&self) -> Vec<Seen> {
        self.state.lock().unwrap().informs.clone()
    }
}

fn reply(status: u16, body: Vec<u8>, retry_after: Option<u32>) -> HttpReply {
    HttpReply {
        status,
        body,
        retry_after,
    }
}

impl AcsTransport for TestAcs {
    fn post(&mut self, body: &Body) -> Result<HttpReply, TransportError> {
        let bytes = body.to_vec();
        let body = bytes.as_slice();
        let mut st = self.state.lock().unwrap();
        if body.is_empty() {
            // The empty POST (§3.7.2.2): the ACS's turn.
            return Ok(match st.requests.pop_front() {
                Some(req) => {
                    let id = Header {
                        id: Some("acs-1".into()),
                        ..Header::default()
                    };
                    reply(200, emit_acs_request(self.ns, &id, &req), None)
                }
                None => reply(204, Vec::new(), None),
            });
        }
        let env = parse_cpe(body, &Default::default())
            .map_err(|e| TransportError::Io(format!("the test ACS cannot parse: {e:?}")))?;
        self.ns = env.ns;
        let header = Header {
            id: env.header.id.clone(),
            ..Header::default()
        };
        match env.body {
            CpeMessage::Request(CpeRequest::Inform(inform)) => {
                st.informs.push(Seen {
                    at: self.clock.wall().as_secs_f64(),
                    events: inform.events.iter().map(|e| e.code.clone()).collect(),
                    retry_count: inform.retry_count,
                });
                match st.answers.pop_front().unwrap_or(Answer::Accept) {
                    Answer::Accept => Ok(reply(
                        200,
                        emit_acs_response(
                            env.ns,
                            &header,
                            &AcsResponse::Inform { max_envelopes: 1 },
                        ),
                        None,
                    )),
                    Answer::Status(status, retry_after) => {
                        Ok(reply(status, Vec::new(), retry_after))
                    }
                    Answer::Broken => Err(TransportError::Io("connection reset".into())),
                }
            }
            CpeMessage::Request(other) => Err(TransportError::Io(format!(
                "the test ACS does not answer {other:?}"
            ))),
            // Responses to the ACS's requests: the session ends.
            CpeMessage::Empty | CpeMessage::Response(_) => Ok(reply(204, Vec::new(), None)),
        }
    }
}

/// A private directory for the agent's store, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("cwmpd-agent-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An agent on a generic platform, its ACS in memory; `acs` is the extra `[acs]` lines.
fn agent(dir: &TempDir, acs_lines: &str, clock: &ManualClock, acs: &TestAcs) -> Agent {
    let text = format!(
        "[acs]\nurl = \"http://acs.test/cwmp\"\n{acs_lines}\n\
         [device]\nmanufacturer = \"cwmpd-test\"\noui = \"00D0F8\"\n\
         product_class = \"Mem\"\nserial_number = \"MEM1\"\nsoftware_version = \"1.0\"\n\
         [datamodel]\nplatform = \"generic\"\n\
         [transfer]\ndir = {:?}\n\
         [storage]\ndir = {:?}\n",
        dir.0.join("transfer").display().to_string(),
        dir.0.join("state").display().to_string(),
    );
    let cfg = Config::parse(&text, "test").expect("config");
    Agent::new(cfg)
        .expect("agent")
        .with_clock(Box::new(clock.clone()))
        .with_transport(acs.connect())
}

/// Runs loop turns until the ACS has seen `n` Informs (at most `max_turns` turns).
fn run_until(agent: &mut Agent, lp: &mut Loop, acs: &TestAcs, n: usize, max_turns: usize) {
    for _ in 0..max_turns {
        if acs.informs().len() >= n {
            return;
        }
        assert_eq!(agent.turn(lp), None);
    }
    panic!(
        "{} Informs after {max_turns} turns: {:?}",
        acs.informs().len(),
        acs.informs()
    );
}

fn has(seen: &Seen, code: &str) -> bool {
    seen.events.iter().any(|e| e == code)
}

#[test]
fn the_first_session_bootstraps_and_periodic_informs_keep_the_phase() {
    let dir = TempDir::new("periodic");
    let clock = ManualClock::new(T0);
    let acs = TestAcs::new(&clock);
    // The phase: T0 + 10.5 s plus whole minutes.
    let mut agent = agent(
        &dir,
        "periodic_inform_interval = 60\nperiodic_inform_time = \"2026-01-01T00:00:10.5Z\"",
        &clock,
        &acs,
    );
    let mut lp = agent.start_loop().expect("start");
    run_until(&mut agent, &mut lp, &acs, 4, 100);
    let seen = acs.informs();
    assert!(has(&seen[0], "0 BOOTSTRAP"), "{seen:?}");
    assert_eq!(seen[0].at, T0 as f64);
    for (k, s) in seen[1..].iter().enumerate() {
        assert_eq!(s.events, ["2 PERIODIC"], "{seen:?}");
        assert_eq!(s.at, T0 as f64 + 10.5 + 60.0 * k as f64, "{seen:?}");
    }
    assert_eq!(acs.state.lock().unwrap().urls[0], "http://acs.test/cwmp");
    // Delivered events are gone from the store's copy too.
    assert!(agent.state().events.is_empty());
    assert_eq!(agent.state().retry_count, 0);
}

#[test]
fn failed_sessions_are_retried_with_the_backoff_of_the_retry_count() {
    let dir = TempDir::new("retry");
    let clock = ManualClock::new(T0);
    let acs = TestAcs::new(&clock);
    for _ in 0..3 {
        acs.answer(Answer::Broken);
    }
    let mut agent = agent(
        &dir,
        "retry_minimum_wait_interval = 5\nretry_interval_multiplier = 2000",
        &clock,
        &acs,
    );
    let mut lp = agent.start_loop().expect("start");
    run_until(&mut agent, &mut lp, &acs, 4, 100);
    let seen = acs.informs();
    // RetryCount counts the failed attempts (§3.2.1.1); the events stay until delivered.
    let counts: Vec<u32> = seen.iter().map(|s| s.retry_count).collect();
    assert_eq!(counts, [0, 1, 2, 3]);
    assert!(seen.iter().all(|s| has(s, "0 BOOTSTRAP")), "{seen:?}");
    for k in 1..4 {
        let (lo, hi) = schedule::retry_range_ms(k as u32, 5, 2000);
        let waited = seen[k].at - seen[k - 1].at;
        // Never early, at most a second late (the attempt starts on a whole second).
        assert!(
            waited >= lo as f64 / 1000.0 && waited <= hi as f64 / 1000.0 + 1.0,
            "attempt {k} after {waited} s, not in [{lo}, {hi}] ms"
        );
    }
    assert_eq!(agent.state().retry_count, 0);
    assert!(agent.state().last_session.as_ref().is_some_and(|l| l.ok));
}

#[test]
fn retry_after_of_a_503_is_the_least_wait() {
    let dir = TempDir::new("retry-after");
    let clock = ManualClock::new(T0);
    let acs = TestAcs::new(&clock);
    acs.answer(Answer::Status(503, Some(300)));
    let mut agent = agent(&dir, "retry_minimum_wait_interval = 5", &clock, &acs);
    let mut lp = agent.start_loop().expect("start");
    run_until(&mut agent, &mut lp, &acs, 2, 100);
    let seen = acs.informs();
    let waited = seen[1].at - seen[0].at;
    assert!((300.0..=301.0).contains(&waited), "{waited}");
    assert_eq!(seen[1].retry_count, 1);
}

#[test]
fn a_schedule_inform_comes_back_after_its_delay() {
    let dir = TempDir::new("schedule");
    let clock = ManualClock::new(T0);
    let acs = TestAcs::new(&clock);
    acs.request(AcsRequest::ScheduleInform {
        delay_seconds: 30,
        command_key: "k1".into(),
    });
    let mut agent = agent(&dir, "", &clock, &acs);
    let mut lp = agent.start_loop().expect("start");
    run_until(&mut agent, &mut lp, &acs, 2, 100);
    let seen = acs.informs();
    assert_eq!(seen[1].events, ["3 SCHEDULED", "M ScheduleInform"]);
    assert_eq!(seen[1].at - seen[0].at, 30.0);
}

#[test]
fn a_connection_request_starts_a_session_at_once_and_stop_ends_the_loop() {
    let dir = TempDir::new("connreq");
    let clock = ManualClock::new(T0);
    let acs = TestAcs::new(&clock);
    let mut agent = agent(&dir, "", &clock, &acs);
    let mut lp = agent.start_loop().expect("start");
    run_until(&mut agent, &mut lp, &acs, 1, 10);
    // Idle for a while: nothing is sent.
    for _ in 0..5 {
        assert_eq!(agent.turn(&mut lp), None);
    }
    assert_eq!(acs.informs().len(), 1);
    let idle = clock.wall().as_secs_f64();
    let tx = agent.trigger_sender();
    tx.send(Trigger::ConnectionRequest).unwrap();
    run_until(&mut agent, &mut lp, &acs, 2, 3);
    let seen = acs.informs();
    assert_eq!(seen[1].events, ["6 CONNECTION REQUEST"]);
    assert_eq!(seen[1].at, idle);
    tx.send(Trigger::Stop).unwrap();
    let mut exit = None;
    for _ in 0..3 {
        exit = exit.or(agent.turn(&mut lp));
    }
    assert_eq!(exit, Some(Exit::Stop));
}
