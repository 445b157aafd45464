//! The diagnostics between sessions (TR-069 §A.4.1 "8 DIAGNOSTICS COMPLETE", TR-181
//! DiagnosticsState): the test the ACS requested starts after the session that asked, in the
//! `diag` job's thread, one at a time; its result fills the data model and queues `8
//! DIAGNOSTICS COMPLETE`, which makes a session. A test that outlives its worst case is stopped
//! and ends in `Error_Internal`. The UDP echo server (UDPEchoConfig) is started, moved or
//! stopped when its settings change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

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
    /// Unix seconds after which it is stopped.
    deadline: i64,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Time granted beyond a test's worst case before it is stopped.
const GRACE: Duration = Duration::from_secs(30);
/// Bytes of `/etc/resolv.conf` read.
const MAX_RESOLV_CONF: u64 = 64 * 1024;

impl Agent {
    /// Starts the requested test when none runs, stops one past its time, follows the echo
    /// server's settings. Returns when to look again (the running test's deadline).
    pub(super) fn diagnostics_step(&mut self, now: i64) -> Option<i64> {
        self.follow_echo_server();
        if let Some(r) = &self.diag_running {
            if now < r.deadline {
                return Some(r.deadline);
            }
            log::warn!(
                "diagnostics: {} ran past its time and is stopped",
                r.kind.name()
            );
            r.cancel.store(true, std::sync::atomic::Ordering::Release);
            let (kind, generation) = (r.kind, r.generation);
            self.diag_running = None;
            self.diagnostic_done(DiagDone {
                kind,
                generation,
                outcome: Outcome::state("Error_Internal"),
            });
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
        let worst = kind.worst_case(&get) + GRACE;
        let deadline = now.saturating_add(i64::try_from(worst.as_secs()).unwrap_or(i64::MAX));
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
                    cancel,
                });
                Some(deadline)
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

    /// A test ended: its results are shown and `8 DIAGNOSTICS COMPLETE` queued, unless a
    /// change stopped or restarted it meanwhile.
    pub(super) fn diagnostic_done(&mut self, done: DiagDone) {
        if self
            .diag_running
            .as_ref()
            .is_some_and(|r| r.kind == done.kind && r.generation == done.generation)
        {
            self.diag_running = None;
        }
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
            log::info!("diagnostics: {} was stopped by a change", done.kind.name());
        }
    }

    /// The name servers the device uses (`nameserver` lines of `/etc/resolv.conf`).
    fn default_dns(&self) -> Vec<IpAddr> {
        use std::io::Read;
        let path = self.cfg.datamodel.platform().root.join("etc/resolv.conf");
        let mut text = String::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_RESOLV_CONF).read_to_string(&mut text));
        if let Err(e) = read {
            log::info!("diagnostics: {}: {e}", path.display());
        }
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
            .collect()
    }

    /// Starts, moves or stops the UDP echo server when UDPEchoConfig changed.
    fn follow_echo_server(&mut self) {
        let Some(cfg) = self.engine.backends_mut().diag().take_echo_config() else {
            return;
        };
        // The old one stops (its thread joined) before a new one binds the port.
        self.echo_server = None;
        self.engine.backends_mut().diag().set_echo_counters(None);
        if !cfg.enable || cfg.port == 0 {
            return;
        }
        let interface = match self.engine.device_of(&cfg.interface) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("UDP echo server: {e}");
                return;
            }
        };
        let source: Option<IpAddr> = cfg.source.parse().ok();
        // The family of the source address when one is given; else both (a v6 socket
        // without IPV6_V6ONLY also answers IPv4).
        let any: IpAddr = match source {
            Some(IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
            _ => Ipv6Addr::UNSPECIFIED.into(),
        };
        let server_cfg = echo::ServerConfig {
            listen: SocketAddr::new(any, cfg.port),
            interface: interface.clone(),
            source,
            plus: cfg.plus,
        };
        let started = echo::Server::start(server_cfg.clone()).or_else(|e| {
            // No IPv6 on this device: IPv4 only.
            if matches!(any, IpAddr::V6(_)) {
                echo::Server::start(echo::ServerConfig {
                    listen: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), cfg.port),
                    ..server_cfg
                })
            } else {
                Err(e)
            }
        });
        match started {
            Ok(server) => {
                log::info!(
                    "UDP echo server on port {}{}",
                    cfg.port,
                    interface.map(|d| format!(" of {d}")).unwrap_or_default()
                );
                let stats = server.stats_reader();
                self.engine
                    .backends_mut()
                    .diag()
                    .set_echo_counters(Some(Box::new(move |f| stats().field(f))));
                self.echo_server = Some(server);
            }
            Err(e) => log::warn!("UDP echo server on port {}: {e}", cfg.port),
        }
    }
}
