//! The `diag` backend: the diagnostics' inputs, states and results (TR-181
//! `IP.Diagnostics.*`, `DNS.Diagnostics.NSLookupDiagnostics`, TR-098's diagnostics objects) and
//! the UDP echo server's configuration and counters (`UDPEchoConfig`). The tests are kept in
//! RAM: a diagnostic is not configuration, and TR-069 lets a reboot forget its results
//! (DiagnosticsState then reads `None`). The echo server's settings are configuration: they
//! are kept in the engine's store (`DmState.values`, keys `diag.udpechoconfig.FIELD`), so the
//! server comes back after a restart.
//!
//! Keys (names as [`crate::diag::spec`] gives them, TR-181's):
//!
//! | key | what |
//! |---|---|
//! | `TEST.DiagnosticsState` | the state; writing `Requested` queues the test, `Canceled` stops it |
//! | `TEST.INPUT` | a writable input (`ipping.Host`); writing one sets the state back to `None` |
//! | `TEST.RESULT` | a result of the last run (`ipping.SuccessCount`) |
//! | `TEST.TABLE` | the rows of a result table (`traceroute.RouteHops`), keyed `1`, `2`, … |
//! | `TEST.TABLE.N.FIELD` | a field of one row |
//! | `udpechoconfig.FIELD` | the UDP echo server's settings (`Enable`, `Interface`, `SourceIPAddress`, `UDPPort`, `EchoPlusEnabled`) and counters |
//!
//! TEST is `ipping`, `traceroute`, `download`, `upload`, `udpecho`, `serverselection` or
//! `nslookup`. The TR-181 rules of DiagnosticsState are kept here: a write to any input sets it
//! to `None` and cancels a running test; `Requested` (again) restarts it with the inputs in
//! force after the same SetParameterValues, which are checked together then (9007); a TR-098
//! engine reads TR-098's names of the states. Tests run in the agent ([`DiagBackend::next_request`],
//! [`DiagBackend::finish`]); a change cancels a running one only once committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Applied, Backend, Cx};
use crate::cwmp::fault::Fault;
pub use crate::diag::spec::Outcome;
use crate::diag::spec::{self, Kind, STATE};

/// The settings of TR-143's UDP echo server (UDPEchoConfig).
pub const ECHO_CONFIG: &str = "udpechoconfig";
/// The writable fields of UDPEchoConfig and their defaults.
pub const ECHO_INPUTS: &[(&str, &str)] = &[
    ("Enable", "false"),
    ("Interface", ""),
    ("SourceIPAddress", ""),
    ("UDPPort", "0"),
    ("EchoPlusEnabled", "false"),
];
/// The counters of UDPEchoConfig (read from the running server).
pub const ECHO_COUNTERS: &[&str] = &[
    "PacketsReceived",
    "PacketsResponded",
    "BytesReceived",
    "BytesResponded",
    "TimeFirstPacketReceived",
    "TimeLastPacketReceived",
];
/// The most bytes of one stored value (the longest input is a 2048-byte URL).
const MAX_VALUE: usize = 4096;

/// A test to run: its inputs as stored (defaults filled in).
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub generation: u64,
    pub inputs: BTreeMap<String, String>,
    /// Set when a change stops the test (the runner checks it between steps).
    pub cancel: Arc<AtomicBool>,
}

/// The echo server's configuration as the ACS left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoConfig {
    pub enable: bool,
    /// The interface's path (`Device.IP.Interface.2`), empty for any.
    pub interface: String,
    pub source: String,
    pub port: u16,
    pub plus: bool,
}

/// Reads the running echo server's counters by their TR-181 names (set by the agent).
pub type EchoCounters = Box<dyn Fn(&str) -> Option<String> + Send>;

#[derive(Debug, Clone, Default)]
struct Test {
    inputs: BTreeMap<String, String>,
    /// `None` until a state other than None; `Requested` while queued or running.
    state: Option<String>,
    outcome: Outcome,
    /// Bumped at each request: a result of an older run is dropped.
    generation: u64,
    /// Requested and not started yet.
    queued: bool,
    /// The running run's stop flag.
    cancel: Option<Arc<AtomicBool>>,
}

/// What `apply` replaced: the tests, and the echo settings in the store (key, old value).
struct Undo(BTreeMap<Kind, Test>, Vec<(String, Option<String>)>);

pub struct DiagBackend {
    tr098: bool,
    /// Tests can run: the daemon's loop is there to run them (not in `cwmpd set`, whose
    /// values would die with the process).
    runs: bool,
    tests: BTreeMap<Kind, Test>,
    echo_counters: Option<EchoCounters>,
    staged: Vec<(String, String)>,
    /// What `apply` replaced, for `rollback`.
    undo: Option<Undo>,
    /// Stop flags to raise once the change is committed.
    to_cancel: Vec<Arc<AtomicBool>>,
    set_faults: Vec<(String, Fault)>,
    next_generation: u64,
    /// The echo configuration the agent last took.
    echo_taken: Option<EchoConfig>,
}

impl Default for DiagBackend {
    fn default() -> Self {
        DiagBackend::new()
    }
}

/// What a key names.
enum Key<'a> {
    State(Kind),
    Input(Kind, &'a str),
    Result(Kind, &'a str),
    Table(Kind, &'a str),
    Cell(Kind, &'a str, usize, &'a str),
    Echo(&'a str),
}

fn parse(key: &str) -> Option<Key<'_>> {
    let (head, rest) = key.split_once('.')?;
    if head == ECHO_CONFIG {
        let known = ECHO_INPUTS.iter().any(|(n, _)| *n == rest) || ECHO_COUNTERS.contains(&rest);
        return known.then_some(Key::Echo(rest));
    }
    let kind = Kind::from_name(head)?;
    if rest == STATE {
        return Some(Key::State(kind));
    }
    if kind.default_of(rest).is_some() {
        return Some(Key::Input(kind, rest));
    }
    if kind.results().contains(&rest) {
        return Some(Key::Result(kind, rest));
    }
    let mut parts = rest.splitn(3, '.');
    let table = parts.next()?;
    let (_, fields) = kind.tables().iter().find(|(t, _)| *t == table)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(Key::Table(kind, table)),
        (Some(n), Some(field)) if fields.contains(&field) => {
            let n: usize = n.parse().ok().filter(|n| *n >= 1)?;
            Some(Key::Cell(kind, table, n, field))
        }
        _ => None,
    }
}

/// Checks a binding key when the definitions are loaded.
pub fn check_key(key: &str) -> Result<(), String> {
    // `{i}` stands for a row's key (the loader checks keys with `i0` in its place).
    match parse(&key.replace("{i}", "1").replace(".i0.", ".1.")) {
        Some(_) => Ok(()),
        None => Err(format!(
            "unknown diag key {key:?} (TEST.FIELD, TEST.TABLE, TEST.TABLE.{{i}}.FIELD or {ECHO_CONFIG}.FIELD)"
        )),
    }
}

impl DiagBackend {
    pub fn new() -> DiagBackend {
        DiagBackend {
            tr098: false,
            runs: false,
            tests: BTreeMap::new(),
            echo_counters: None,
            staged: Vec::new(),
            undo: None,
            to_cancel: Vec::new(),
            set_faults: Vec::new(),
            next_generation: 1,
            echo_taken: None,
        }
    }

    /// The engine's model: a TR-098 engine reads and writes TR-098's names of the states.
    pub fn set_model_name(&mut self, name: &str) {
        self.tr098 = name.starts_with("InternetGatewayDevice");
    }

    /// Says that the agent's loop runs the tests (else every write is refused with 9001).
    pub fn set_runs(&mut self, runs: bool) {
        self.runs = runs;
    }

    /// Whether a test is queued or running.
    pub fn busy(&self) -> bool {
        self.tests.values().any(|t| t.queued || t.cancel.is_some())
    }

    /// Whether a test is running.
    pub fn running(&self) -> bool {
        self.tests.values().any(|t| t.cancel.is_some())
    }

    /// The next queued test, marked running (one at a time: `None` while one runs).
    pub fn next_request(&mut self) -> Option<Request> {
        if self.running() {
            return None;
        }
        let (kind, t) = self.tests.iter_mut().find(|(_, t)| t.queued)?;
        t.queued = false;
        let cancel = Arc::new(AtomicBool::new(false));
        t.cancel = Some(cancel.clone());
        let inputs = kind
            .inputs()
            .iter()
            .map(|(n, d)| {
                let v = t.inputs.get(*n).cloned().unwrap_or_else(|| d.to_string());
                (n.to_string(), v)
            })
            .collect();
        Some(Request {
            kind: *kind,
            generation: t.generation,
            inputs,
            cancel,
        })
    }

    /// Takes the result of a run. `true` when it is the run still wanted (its results are
    /// now shown and `8 DIAGNOSTICS COMPLETE` is due); `false` when a change stopped or
    /// restarted it meanwhile (the result is dropped).
    pub fn finish(&mut self, kind: Kind, generation: u64, outcome: Outcome) -> bool {
        let Some(t) = self.tests.get_mut(&kind) else {
            return false;
        };
        if t.generation != generation || t.queued || t.cancel.is_none() {
            if t.generation == generation {
                t.cancel = None;
            }
            return false;
        }
        t.cancel = None;
        t.state = Some(outcome.state.clone());
        t.outcome = outcome;
        true
    }

    /// The echo server's configuration (from the engine's store `values`), when it differs
    /// from what the last call returned (a change by the ACS, a FactoryReset, the first call).
    pub fn take_echo_config(&mut self, values: &BTreeMap<String, String>) -> Option<EchoConfig> {
        let cfg = echo_config(values);
        if self.echo_taken.as_ref() == Some(&cfg) {
            return None;
        }
        self.echo_taken = Some(cfg.clone());
        Some(cfg)
    }

    /// Where the echo server's counters are read (`None`: no server runs, they read 0).
    pub fn set_echo_counters(&mut self, counters: Option<EchoCounters>) {
        self.echo_counters = counters;
    }

    fn state_shown(&self, kind: Kind, state: &str) -> String {
        if self.tr098 {
            spec::state_for_tr098(kind, state).to_string()
        } else {
            state.to_string()
        }
    }

    fn read_one(&self, values: &BTreeMap<String, String>, key: &str) -> Option<String> {
        match parse(key)? {
            Key::State(kind) => {
                let s = self.tests.get(&kind).and_then(|t| t.state.as_deref());
                Some(self.state_shown(kind, s.unwrap_or("None")))
            }
            Key::Input(kind, f) => {
                let t = self.tests.get(&kind);
                t.and_then(|t| t.inputs.get(f).cloned())
                    .or_else(|| kind.default_of(f).map(str::to_string))
            }
            Key::Result(kind, f) => self.tests.get(&kind)?.outcome.values.get(f).cloned(),
            Key::Table(..) => None,
            Key::Cell(kind, table, n, f) => {
                let rows = self.tests.get(&kind)?.outcome.tables.get(table)?;
                rows.get(n - 1)?.get(f).cloned()
            }
            Key::Echo(f) => {
                if ECHO_INPUTS.iter().any(|(n, _)| *n == f) {
                    return Some(echo_value(values, f));
                }
                self.echo_counters.as_ref().and_then(|c| c(f))
            }
        }
    }

    /// Applies one staged write to `tests`/`echo`; the stop flags of the runs it ends go to
    /// `to_cancel`.
    fn apply_one(
        &mut self,
        values: &mut BTreeMap<String, String>,
        key: &str,
        value: &str,
        requested: &mut Vec<(Kind, String)>,
    ) {
        let Some(k) = parse(key) else { return };
        match k {
            Key::State(kind) => {
                let t = self.tests.entry(kind).or_default();
                let value = spec::state_from_tr098(value);
                let busy = t.queued || t.cancel.is_some();
                if let Some(c) = t.cancel.take() {
                    self.to_cancel.push(c);
                }
                t.queued = false;
                if value == "Requested" {
                    requested.push((kind, key.to_string()));
                } else {
                    // Canceled: stopped, and the state reads None; the results of the last
                    // run stay until a test runs again (TR-181).
                    t.state = None;
                    if busy {
                        t.outcome = Outcome::default();
                    }
                }
            }
            Key::Input(kind, f) => {
                let t = self.tests.entry(kind).or_default();
                t.inputs.insert(f.to_string(), value.to_string());
                if let Some(c) = t.cancel.take() {
                    self.to_cancel.push(c);
                }
                t.queued = false;
                t.state = None;
                t.outcome = Outcome::default();
            }
            Key::Echo(f) => {
                values.insert(echo_key(f), value.to_string());
            }
            Key::Result(..) | Key::Table(..) | Key::Cell(..) => {}
        }
    }
}

impl Backend for DiagBackend {
    fn writable(&self, key: &str) -> bool {
        match parse(key) {
            Some(Key::State(_) | Key::Input(..)) => true,
            Some(Key::Echo(f)) => ECHO_INPUTS.iter().any(|(n, _)| *n == f),
            _ => false,
        }
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys.iter().map(|k| self.read_one(cx.values, k)).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        let Some(Key::Table(kind, name)) = parse(table) else {
            return Err(Fault::internal(format!("{table:?} is not a diag table")));
        };
        let n = self
            .tests
            .get(&kind)
            .and_then(|t| t.outcome.tables.get(name))
            .map_or(0, Vec::len);
        Ok(Some((1..=n).map(|i| i.to_string()).collect()))
    }

    fn always_write(&self, key: &str) -> bool {
        // Requested again restarts a running test (TR-181 DiagnosticsState), though the
        // parameter already reads Requested.
        matches!(parse(key), Some(Key::State(_)))
    }

    fn stage_set(&mut self, _cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        if !self.runs {
            return Err(Fault::RequestDenied(
                "diagnostics run in the daemon: the ACS requests them".into(),
            ));
        }
        if value.len() > MAX_VALUE {
            return Err(Fault::InvalidParameterValue(format!(
                "a value over {MAX_VALUE} bytes"
            )));
        }
        match parse(key) {
            Some(Key::State(_)) => {
                let v = spec::state_from_tr098(value);
                if v != "Requested" && v != "Canceled" {
                    return Err(Fault::InvalidParameterValue(format!(
                        "DiagnosticsState can be set to Requested or Canceled, not {value:?}"
                    )));
                }
            }
            Some(Key::Input(kind, f)) => {
                kind.check(f, value).map_err(Fault::InvalidParameterValue)?;
            }
            Some(Key::Echo(f)) if ECHO_INPUTS.iter().any(|(n, _)| *n == f) => {
                if f == "UDPPort" && value.parse::<u16>().is_err() {
                    return Err(Fault::InvalidParameterValue(format!(
                        "UDPPort {value}: at most 65535"
                    )));
                }
                if f == "SourceIPAddress"
                    && !value.is_empty()
                    && value.parse::<std::net::IpAddr>().is_err()
                {
                    return Err(Fault::InvalidParameterValue(format!(
                        "SourceIPAddress {value:?} is not an IP address"
                    )));
                }
            }
            _ => return Err(Fault::NonWritableParameter(key.to_string())),
        }
        self.staged.push((key.to_string(), value.to_string()));
        Ok(())
    }

    fn apply(&mut self, cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        self.set_faults.clear();
        let echo_before: Vec<(String, Option<String>)> = ECHO_INPUTS
            .iter()
            .map(|(f, _)| (echo_key(f), cx.values.get(&echo_key(f)).cloned()))
            .collect();
        self.undo = Some(Undo(self.tests.clone(), echo_before));
        let mut requested = Vec::new();
        for (k, v) in std::mem::take(&mut self.staged) {
            self.apply_one(cx.values, &k, &v, &mut requested);
        }
        // Inputs are checked together when the test is requested, after every input of the
        // same request is in (TR-181 DiagnosticsState).
        for (kind, key) in requested {
            let t = self.tests.entry(kind).or_default();
            let get = |f: &str| {
                t.inputs
                    .get(f)
                    .cloned()
                    .or_else(|| kind.default_of(f).map(str::to_string))
                    .unwrap_or_default()
            };
            if let Err(e) = kind.check_request(&get) {
                self.set_faults
                    .push((key, Fault::InvalidParameterValue(e.clone())));
                continue;
            }
            t.state = Some("Requested".into());
            t.outcome = Outcome::default();
            t.queued = true;
            t.generation = self.next_generation;
            self.next_generation += 1;
        }
        if let Err(e) = self.check_echo(cx.values) {
            // Reported on whichever of the fields this change wrote.
            for f in ["UDPPort", "Enable", "SourceIPAddress"] {
                self.set_faults.push((
                    format!("{ECHO_CONFIG}.{f}"),
                    Fault::InvalidParameterValue(e.clone()),
                ));
            }
        }
        if !self.set_faults.is_empty() {
            let first = self.set_faults[0].1.clone();
            self.rollback_inner(cx.values);
            return Err(first);
        }
        Ok(Applied::Now)
    }

    fn commit(&mut self, cx: &mut Cx<'_>) {
        if let Some(Undo(_, echo_before)) = self.undo.take() {
            if echo_before
                .iter()
                .any(|(k, old)| cx.values.get(k) != old.as_ref())
            {
                cx.changed = true;
            }
        }
        for c in self.to_cancel.drain(..) {
            c.store(true, Ordering::Release);
        }
    }

    fn rollback(&mut self, cx: &mut Cx<'_>) {
        self.rollback_inner(cx.values);
    }

    fn take_set_faults(&mut self) -> Vec<(String, Fault)> {
        std::mem::take(&mut self.set_faults)
    }
}

impl DiagBackend {
    fn rollback_inner(&mut self, values: &mut BTreeMap<String, String>) {
        self.staged.clear();
        self.to_cancel.clear();
        if let Some(Undo(tests, echo)) = self.undo.take() {
            self.tests = tests;
            for (k, old) in echo {
                match old {
                    Some(v) => values.insert(k, v),
                    None => values.remove(&k),
                };
            }
        }
    }

    /// An enabled echo server needs a port no other socket holds (tried now: a port taken by
    /// dnsmasq or ntpd would otherwise be accepted and never served).
    fn check_echo(&self, values: &BTreeMap<String, String>) -> Result<(), String> {
        let cfg = echo_config(values);
        if !cfg.enable {
            return Ok(());
        }
        if cfg.port == 0 {
            return Err("an enabled UDP echo server needs a UDPPort".into());
        }
        // The port our own running server holds (its counters are set while it runs) is not
        // taken.
        let ours = self.echo_counters.is_some()
            && self
                .echo_taken
                .as_ref()
                .is_some_and(|t| t.enable && t.port == cfg.port);
        if !ours && !crate::diag::echo::port_free(cfg.port) {
            return Err(format!("UDP port {} is in use on this device", cfg.port));
        }
        Ok(())
    }
}

/// Where an echo setting lives in the engine's store.
fn echo_key(field: &str) -> String {
    format!("diag.{ECHO_CONFIG}.{field}")
}

/// An echo setting as stored, else its default.
fn echo_value(values: &BTreeMap<String, String>, field: &str) -> String {
    values.get(&echo_key(field)).cloned().unwrap_or_else(|| {
        ECHO_INPUTS
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    })
}

fn echo_config(values: &BTreeMap<String, String>) -> EchoConfig {
    let get = |f: &str| echo_value(values, f);
    EchoConfig {
        enable: get("Enable") == "true",
        interface: get("Interface"),
        source: get("SourceIPAddress"),
        port: get("UDPPort").parse().unwrap_or(0),
        plus: get("EchoPlusEnabled") == "true",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(values: &mut BTreeMap<String, String>) -> Cx<'_> {
        Cx {
            values,
            changed: false,
        }
    }

    fn set(
        b: &mut DiagBackend,
        v: &mut BTreeMap<String, String>,
        pairs: &[(&str, &str)],
    ) -> Result<(), Fault> {
        b.set_runs(true);
        let mut cx = cx(v);
        for (k, val) in pairs {
            if let Err(e) = b.stage_set(&mut cx, k, val) {
                b.rollback(&mut cx);
                return Err(e);
            }
        }
        b.apply(&mut cx)?;
        b.commit(&mut cx);
        Ok(())
    }

    fn get(b: &mut DiagBackend, v: &mut BTreeMap<String, String>, key: &str) -> Option<String> {
        b.read(&mut cx(v), &[key]).unwrap().pop().flatten()
    }

    #[test]
    fn a_request_runs_once_and_its_result_is_shown() {
        let mut b = DiagBackend::new();
        let mut st = BTreeMap::new();
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert_eq!(
            get(&mut b, &mut st, "ipping.Timeout").as_deref(),
            Some("1000")
        );
        assert!(b.next_request().is_none());
        // Requested without a Host: refused, nothing changes.
        assert_eq!(
            set(&mut b, &mut st, &[("ipping.DiagnosticsState", "Requested")])
                .unwrap_err()
                .code(),
            9007
        );
        assert_eq!(b.take_set_faults().len(), 1);
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        set(
            &mut b,
            &mut st,
            &[
                ("ipping.Host", "10.0.0.1"),
                ("ipping.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("Requested")
        );
        let r = b.next_request().unwrap();
        assert_eq!(r.kind, Kind::IpPing);
        assert_eq!(r.inputs["Host"], "10.0.0.1");
        assert_eq!(r.inputs["NumberOfRepetitions"], "3");
        assert!(b.next_request().is_none(), "one at a time");
        let mut out = Outcome {
            state: "Complete".into(),
            ..Outcome::default()
        };
        out.values.insert("SuccessCount".into(), "3".into());
        assert!(b.finish(Kind::IpPing, r.generation, out));
        assert_eq!(
            get(&mut b, &mut st, "ipping.SuccessCount").as_deref(),
            Some("3")
        );
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("Complete")
        );
        // Writing an input: state None, results gone.
        set(&mut b, &mut st, &[("ipping.Timeout", "2000")]).unwrap();
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert_eq!(get(&mut b, &mut st, "ipping.SuccessCount"), None);
    }

    #[test]
    fn a_change_cancels_a_running_test_only_once_committed() {
        let mut b = DiagBackend::new();
        let mut st = BTreeMap::new();
        set(
            &mut b,
            &mut st,
            &[
                ("traceroute.Host", "h"),
                ("traceroute.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        let r = b.next_request().unwrap();
        // Staged and rolled back: the run goes on.
        let mut c = cx(&mut st);
        b.stage_set(&mut c, "traceroute.MaxHopCount", "5").unwrap();
        b.apply(&mut c).unwrap();
        b.rollback(&mut c);
        assert!(!r.cancel.load(Ordering::Acquire));
        assert_eq!(
            get(&mut b, &mut st, "traceroute.DiagnosticsState").as_deref(),
            Some("Requested")
        );
        // Committed: stopped, None, and its late result is dropped.
        set(&mut b, &mut st, &[("traceroute.MaxHopCount", "5")]).unwrap();
        assert!(r.cancel.load(Ordering::Acquire));
        assert!(!b.finish(Kind::TraceRoute, r.generation, Outcome::default()));
        assert_eq!(
            get(&mut b, &mut st, "traceroute.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert!(!b.busy());
        // Requested while running restarts; Canceled stops.
        set(
            &mut b,
            &mut st,
            &[("traceroute.DiagnosticsState", "Requested")],
        )
        .unwrap();
        let r1 = b.next_request().unwrap();
        set(
            &mut b,
            &mut st,
            &[("traceroute.DiagnosticsState", "Requested")],
        )
        .unwrap();
        assert!(r1.cancel.load(Ordering::Acquire));
        let r2 = b.next_request().unwrap();
        assert!(r2.generation > r1.generation);
        set(
            &mut b,
            &mut st,
            &[("traceroute.DiagnosticsState", "Canceled")],
        )
        .unwrap();
        assert!(r2.cancel.load(Ordering::Acquire));
        assert_eq!(
            get(&mut b, &mut st, "traceroute.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert!(b.next_request().is_none());
    }

    #[test]
    fn tables_values_and_tr098_states() {
        let mut b = DiagBackend::new();
        let mut st = BTreeMap::new();
        b.set_model_name("InternetGatewayDevice:1.14");
        set(
            &mut b,
            &mut st,
            &[
                ("download.DownloadURL", "http://h/x"),
                ("download.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        let r = b.next_request().unwrap();
        let mut out = Outcome {
            state: "Complete".into(),
            ..Outcome::default()
        };
        let row = BTreeMap::from([("TestBytesReceived".to_string(), "10".to_string())]);
        out.tables
            .insert("PerConnectionResult".into(), vec![row.clone(), row]);
        assert!(b.finish(Kind::Download, r.generation, out));
        assert_eq!(
            get(&mut b, &mut st, "download.DiagnosticsState").as_deref(),
            Some("Completed")
        );
        assert_eq!(
            b.instances(&mut cx(&mut st), "download.PerConnectionResult")
                .unwrap(),
            Some(vec!["1".to_string(), "2".to_string()])
        );
        assert_eq!(
            get(
                &mut b,
                &mut st,
                "download.PerConnectionResult.2.TestBytesReceived"
            )
            .as_deref(),
            Some("10")
        );
        assert_eq!(
            get(
                &mut b,
                &mut st,
                "download.PerConnectionResult.3.TestBytesReceived"
            ),
            None
        );
        for bad in [
            "x.Host",
            "ipping.Nope",
            "ipping.RouteHops",
            "traceroute.RouteHops.0.Host",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        for good in [
            "traceroute.RouteHops.{i}.Host",
            "traceroute.RouteHops",
            "udpechoconfig.UDPPort",
            "nslookup.Result.{i}.IPAddresses",
        ] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        assert!(!b.writable("ipping.SuccessCount"));
        assert!(!b.writable("udpechoconfig.PacketsReceived"));
        assert_eq!(
            set(&mut b, &mut st, &[("ipping.DiagnosticsState", "Complete")])
                .unwrap_err()
                .code(),
            9007
        );
    }

    #[test]
    fn the_echo_servers_settings() {
        let mut b = DiagBackend::new();
        let mut st = BTreeMap::new();
        assert_eq!(b.take_echo_config(&st).map(|c| c.enable), Some(false));
        assert!(b.take_echo_config(&st).is_none());
        assert_eq!(
            set(&mut b, &mut st, &[("udpechoconfig.Enable", "true")])
                .unwrap_err()
                .code(),
            9007
        );
        assert!(b.take_echo_config(&st).is_none());
        set(
            &mut b,
            &mut st,
            &[
                ("udpechoconfig.Enable", "true"),
                ("udpechoconfig.UDPPort", "7"),
            ],
        )
        .unwrap();
        let c = b.take_echo_config(&st).unwrap();
        assert!(c.enable && c.port == 7);
        assert_eq!(get(&mut b, &mut st, "udpechoconfig.PacketsReceived"), None);
        b.set_echo_counters(Some(Box::new(|f| {
            (f == "PacketsReceived").then(|| "4".into())
        })));
        assert_eq!(
            get(&mut b, &mut st, "udpechoconfig.PacketsReceived").as_deref(),
            Some("4")
        );
    }

    #[test]
    fn canceled_keeps_the_last_results_of_an_idle_test_and_echo_settings_are_stored() {
        let mut b = DiagBackend::new();
        let mut st = BTreeMap::new();
        set(
            &mut b,
            &mut st,
            &[
                ("ipping.Host", "h"),
                ("ipping.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        let r = b.next_request().unwrap();
        let mut out = Outcome::state("Complete");
        out.values.insert("SuccessCount".into(), "3".into());
        assert!(b.finish(Kind::IpPing, r.generation, out));
        set(&mut b, &mut st, &[("ipping.DiagnosticsState", "Canceled")]).unwrap();
        assert_eq!(
            get(&mut b, &mut st, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert_eq!(
            get(&mut b, &mut st, "ipping.SuccessCount").as_deref(),
            Some("3")
        );
        // The echo settings live in the store and are marked for writing; a rollback puts
        // them back.
        let mut c = cx(&mut st);
        b.stage_set(&mut c, "udpechoconfig.SourceIPAddress", "192.0.2.1")
            .unwrap();
        b.apply(&mut c).unwrap();
        assert_eq!(
            c.values
                .get("diag.udpechoconfig.SourceIPAddress")
                .map(String::as_str),
            Some("192.0.2.1")
        );
        b.rollback(&mut c);
        assert!(!c.values.contains_key("diag.udpechoconfig.SourceIPAddress"));
        b.stage_set(&mut c, "udpechoconfig.SourceIPAddress", "192.0.2.1")
            .unwrap();
        b.apply(&mut c).unwrap();
        b.commit(&mut c);
        assert!(c.changed);
        // A port another socket holds is refused.
        let taken = std::net::UdpSocket::bind("[::]:0")
            .or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0"))
            .unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        assert_eq!(
            set(
                &mut b,
                &mut st,
                &[
                    ("udpechoconfig.Enable", "true"),
                    ("udpechoconfig.UDPPort", &port)
                ]
            )
            .unwrap_err()
            .code(),
            9007
        );
    }
}
