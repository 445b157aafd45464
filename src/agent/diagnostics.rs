//! The diagnostics between sessions (TR-069 §A.4.1 "8 DIAGNOSTICS COMPLETE", TR-181
//! DiagnosticsState): the test the ACS requested starts after the session that asked, in the
//! `diag` job's thread, one at a time; its result fills the data model and queues `8
//! DIAGNOSTICS COMPLETE`, which makes a session. A test that outlives its worst case is stopped
//! and ends in `Error_Internal`. The UDP echo server (UDPEchoConfig) is started, moved or
//! stopped when its settings change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::{Agent, Trigger};
use crate::diag::echo;
use crate::diag::run::{self, Run};
use crate::diag::spec::{Kind, Outcome};
use crate::events;

/// What the diagnostics job reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagDone {
    pub kind: Kind,
    pub generation: u64,
    pub outcome: Outcome,
}

/// The running test, as the loop watches it.
pub(super) struct Running {
    kind: Kind,
    generation: u64,
    /// When it is stopped (monotonic: an NTP step at boot moves no deadline); once stopped,
    /// when its thread is given up on.
    deadline: Instant,
    /// Stopped (past its worst case, then shown as `Error_Internal`; or by the ACS); its thread
    /// has not reported yet (no other test starts beside it until it does, or [`LEFTOVER`]
    /// passed).
    overdue: bool,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The UDP echo server the ACS enabled, as the agent runs it.
pub(super) struct EchoRun {
    cfg: crate::datamodel::backend::diag::EchoConfig,
    /// The device it is bound to, and that device's ifindex when it was bound.
    device: Option<(String, u32)>,
    server: Option<echo::Server>,
    /// Not running: waiting for its interface's device (logged once) or for a port that was
    /// taken; tried again after the system announces a change, and at `retry_at`.
    waiting: bool,
    retry_at: Option<Instant>,
}

/// Time granted beyond a test's worst case before it is stopped.
const GRACE: Duration = Duration::from_secs(30);
/// Time a stopped test's thread is given to end before the next test starts beside it.
const LEFTOVER: Duration = Duration::from_secs(60);
/// How often an echo server that could not start is tried again.
const ECHO_RETRY: Duration = Duration::from_secs(60);

impl Agent {
    /// Starts the requested test when none runs, stops one past its time, follows the echo
    /// server's settings. Returns when to look again (the running test's deadline).
    pub(super) fn diagnostics_step(&mut self, now: i64) -> Option<i64> {
        self.follow_echo_server();
        let at = self.clock.instant();
        let wake = |deadline: Instant| {
            let left = deadline.saturating_duration_since(at).as_secs();
            Some(
                now.saturating_add(i64::try_from(left).unwrap_or(i64::MAX))
                    .saturating_add(1),
            )
        };
        if let Some(r) = &mut self.diag_running {
            // Stopped by the ACS (a change, Canceled, Requested again): its thread ends within a
            // slice, a name resolution's time at most; waited for a minute, not its worst case.
            if !r.overdue && r.cancel.load(std::sync::atomic::Ordering::Acquire) {
                r.overdue = true;
                r.deadline = r.deadline.min(at + LEFTOVER);
            }
            if at < r.deadline {
                return wake(r.deadline);
            }
            if r.overdue {
                log::warn!(
                    "diagnostics: the stopped {} did not end; the next test may start",
                    r.kind.name()
                );
                self.diag_running = None;
            } else {
                log::warn!(
                    "diagnostics: {} ran past its time and is stopped",
                    r.kind.name()
                );
                r.cancel.store(true, std::sync::atomic::Ordering::Release);
                r.overdue = true;
                r.deadline = at + LEFTOVER;
                let (kind, generation, deadline) = (r.kind, r.generation, r.deadline);
                self.show_result(DiagDone {
                    kind,
                    generation,
                    outcome: Outcome::state("Error_Internal"),
                });
                return wake(deadline);
            }
        }
        let req = self.engine.backends_mut().diag().next_request()?;
        let kind = req.kind;
        let interface = req.inputs.get("Interface").cloned().unwrap_or_default();
        let device = match self.engine.device_of(&interface) {
            Ok(Some(d)) => Some(d),
            Ok(None) if interface.is_empty() => None,
            // The interface is gone or has no device now (down).
            other => {
                log::info!(
                    "diagnostics: {} on {interface}: {}",
                    kind.name(),
                    other.err().map_or("no device".into(), |e| e.to_string())
                );
                let state = match kind {
                    Kind::IpPing | Kind::TraceRoute | Kind::Download | Kind::Upload => {
                        "Error_NoRouteToHost"
                    }
                    _ => "Error_Other",
                };
                self.diagnostic_done(DiagDone {
                    kind,
                    generation: req.generation,
                    outcome: Outcome::state(state),
                });
                return Some(now);
            }
        };
        let run = Run {
            kind,
            device,
            default_dns: self.default_dns(),
            inputs: req.inputs.clone(),
        };
        let get = |f: &str| req.inputs.get(f).cloned().unwrap_or_default();
        let deadline = at + kind.worst_case(&get) + GRACE;
        let generation = req.generation;
        let cancel = req.cancel.clone();
        log::info!("diagnostics: {} started", kind.name());
        let started = self.jobs.start(
            "diag",
            move || {
                let outcome = run::run(&run, &req.cancel);
                Trigger::Diagnostic(DiagDone {
                    kind,
                    generation,
                    outcome,
                })
            },
            move || {
                Trigger::Diagnostic(DiagDone {
                    kind,
                    generation,
                    outcome: Outcome::state("Error_Internal"),
                })
            },
        );
        match started {
            Ok(()) => {
                self.diag_running = Some(Running {
                    kind,
                    generation,
                    deadline,
                    overdue: false,
                    cancel,
                });
                wake(deadline)
            }
            Err(e) => {
                log::error!("diagnostics: cannot start a thread: {e}");
                self.diagnostic_done(DiagDone {
                    kind,
                    generation,
                    outcome: Outcome::state("Error_Internal"),
                });
                Some(now)
            }
        }
    }

    /// A test's thread reported: its results are shown and `8 DIAGNOSTICS COMPLETE` queued,
    /// unless a change stopped or restarted it meanwhile, or it was stopped past its time.
    pub(super) fn diagnostic_done(&mut self, done: DiagDone) {
        if self
            .diag_running
            .as_ref()
            .is_some_and(|r| r.kind == done.kind && r.generation == done.generation)
        {
            self.diag_running = None;
        }
        self.show_result(done);
    }

    /// Shows a test's outcome and queues `8 DIAGNOSTICS COMPLETE`, when it is still the run
    /// wanted.
    fn show_result(&mut self, done: DiagDone) {
        let state = done.outcome.state.clone();
        if self
            .engine
            .backends_mut()
            .diag()
            .finish(done.kind, done.generation, done.outcome)
        {
            log::info!("diagnostics: {} ended: {state}", done.kind.name());
            if self.queue(events::DIAGNOSTICS_COMPLETE, "") {
                self.save();
            }
        } else {
            log::info!(
                "diagnostics: the result of a stopped {} is dropped",
                done.kind.name()
            );
        }
    }

    /// The name servers the device uses (`nameserver` lines of `/etc/resolv.conf`).
    fn default_dns(&self) -> Vec<IpAddr> {
        let path = self.cfg.datamodel.platform().root.join("etc/resolv.conf");
        crate::diag::lookup::name_servers(&path).unwrap_or_else(|e| {
            log::info!("diagnostics: {}: {e}", path.display());
            Vec::new()
        })
    }

    /// Starts, moves or stops the UDP echo server when UDPEchoConfig changed; with an
    /// Interface, starts it once the interface has a device and starts it again when the
    /// device is made anew (a PPPoE session that came back has a new ifindex, and a socket
    /// bound to the old one hears nothing), looked at after the system announced a change.
    fn follow_echo_server(&mut self) {
        if let Some(cfg) = self.engine.echo_config_changed() {
            // The old one stops (its thread joined) before a new one binds the port.
            self.echo = None;
            self.engine.backends_mut().diag().set_echo_counters(None);
            if cfg.enable && cfg.port != 0 {
                self.echo = Some(EchoRun {
                    cfg,
                    device: None,
                    server: None,
                    waiting: false,
                    retry_at: None,
                });
            }
        }
        let at = self.clock.instant();
        let Some(run) = &self.echo else {
            return;
        };
        // Looked at again after a change the system announced, and every minute while it does
        // not run (a device still missing, a port still taken: nothing announces their end).
        let recheck = std::mem::take(&mut self.echo_recheck)
            || (run.waiting && run.retry_at.is_none_or(|t| at >= t));
        let bound = !run.cfg.interface.is_empty();
        if (run.server.is_some() && !bound) || ((run.server.is_some() || run.waiting) && !recheck) {
            return;
        }
        let interface = run.cfg.interface.clone();
        let device = if bound {
            // The snapshot may predate the change the system just announced.
            self.engine.invalidate();
            match self.engine.device_of(&interface) {
                Ok(Some(d)) => {
                    let index = nix::net::if_::if_nametoindex(d.as_str()).unwrap_or(0);
                    Some((d, index))
                }
                // No device now (down), or no answer: a running server whose netdev is still
                // there (same index) goes on; else none runs (not on every interface
                // instead) until there is one.
                other => {
                    let still = run.device.as_ref().is_some_and(|(d, i)| {
                        nix::net::if_::if_nametoindex(d.as_str()).is_ok_and(|now| now == *i)
                    });
                    if run.server.is_some() && still {
                        return;
                    }
                    let why = match other {
                        Err(e) => e.to_string(),
                        _ => format!("{interface} has no device now"),
                    };
                    self.echo_waits(&why, at);
                    return;
                }
            }
        } else {
            None
        };
        let Some(run) = &mut self.echo else {
            return;
        };
        if run.server.is_some() && device == run.device {
            return;
        }
        run.server = None;
        run.waiting = false;
        let source: Option<IpAddr> = run.cfg.source.parse().ok();
        // The family of the source address when one is given; else both (a v6 socket
        // without IPV6_V6ONLY also answers IPv4).
        let any: IpAddr = match source {
            Some(IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
            _ => Ipv6Addr::UNSPECIFIED.into(),
        };
        let port = run.cfg.port;
        let server_cfg = echo::ServerConfig {
            listen: SocketAddr::new(any, port),
            interface: device.as_ref().map(|(d, _)| d.clone()),
            source,
            plus: run.cfg.plus,
        };
        let started = echo::Server::start(server_cfg.clone()).or_else(|e| {
            // No IPv6 on this device: IPv4 only.
            if matches!(any, IpAddr::V6(_)) {
                echo::Server::start(echo::ServerConfig {
                    listen: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
                    ..server_cfg
                })
            } else {
                Err(e)
            }
        });
        match started {
            Ok(server) => {
                log::info!(
                    "UDP echo server on port {port}{}",
                    device
                        .as_ref()
                        .map(|(d, _)| format!(" of {d}"))
                        .unwrap_or_default()
                );
                let stats = server.stats_reader();
                run.server = Some(server);
                run.device = device;
                self.engine
                    .backends_mut()
                    .diag()
                    .set_echo_counters(Some(Box::new(move |f| stats().field(f))));
            }
            Err(e) => {
                if !std::mem::replace(&mut run.waiting, true) {
                    log::warn!("UDP echo server on port {port}: {e}; tried again every minute");
                }
                run.retry_at = Some(at + ECHO_RETRY);
            }
        }
    }

    /// The echo server's interface has no device: the server stops until it has one (logged
    /// once per wait).
    fn echo_waits(&mut self, why: &str, at: Instant) {
        if let Some(run) = &mut self.echo {
            run.server = None;
            run.device = None;
            run.retry_at = Some(at + ECHO_RETRY);
            if !std::mem::replace(&mut run.waiting, true) {
                log::info!("UDP echo server: {why}; waiting for it");
            }
        }
        self.engine.backends_mut().diag().set_echo_counters(None);
    }
}
