//! The `diag` backend: the diagnostics' inputs, states and results (TR-181
//! `IP.Diagnostics.*`, `DNS.Diagnostics.NSLookupDiagnostics`, TR-098's diagnostics objects) and
//! the UDP echo server's configuration and counters (`UDPEchoConfig`). Everything is kept in
//! RAM: a diagnostic is not configuration, and TR-069 lets a reboot forget its results
//! (DiagnosticsState then reads `None`).
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

pub struct DiagBackend {
    tr098: bool,
    /// Tests can run: the daemon's loop is there to run them (not in `cwmpd set`, whose
    /// values would die with the process).
    runs: bool,
    tests: BTreeMap<Kind, Test>,
    echo: BTreeMap<String, String>,
    echo_counters: Option<EchoCounters>,
    staged: Vec<(String, String)>,
    /// What `apply` replaced, for `rollback`.
    undo: Option<(BTreeMap<Kind, Test>, BTreeMap<String, String>)>,
    /// Stop flags to raise once the change is committed.
    to_cancel: Vec<Arc<AtomicBool>>,
    set_faults: Vec<(String, Fault)>,
    next_generation: u64,
    /// The echo configuration changed since the agent last looked.
    echo_changed: bool,
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
            echo: BTreeMap::new(),
            echo_counters: None,
            staged: Vec::new(),
            undo: None,
            to_cancel: Vec::new(),
            set_faults: Vec::new(),
            next_generation: 1,
            echo_changed: true,
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

    /// The echo server's configuration, when it changed since the last call.
    pub fn take_echo_config(&mut self) -> Option<EchoConfig> {
        if !std::mem::take(&mut self.echo_changed) {
            return None;
        }
        let get = |n: &str| {
            self.echo.get(n).cloned().unwrap_or_else(|| {
                let d = ECHO_INPUTS.iter().find(|(k, _)| *k == n);
                d.map(|(_, d)| d.to_string()).unwrap_or_default()
            })
        };
        Some(EchoConfig {
            enable: get("Enable") == "true",
            interface: get("Interface"),
            source: get("SourceIPAddress"),
            port: get("UDPPort").parse().unwrap_or(0),
            plus: get("EchoPlusEnabled") == "true",
        })
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

    fn read_one(&self, key: &str) -> Option<String> {
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
                if let Some(v) = self.echo.get(f) {
                    return Some(v.clone());
                }
                if let Some((_, d)) = ECHO_INPUTS.iter().find(|(n, _)| *n == f) {
                    return Some(d.to_string());
                }
                self.echo_counters.as_ref().and_then(|c| c(f))
            }
        }
    }

    /// Applies one staged write to `tests`/`echo`; the stop flags of the runs it ends go to
    /// `to_cancel`.
    fn apply_one(&mut self, key: &str, value: &str, requested: &mut Vec<(Kind, String)>) {
        let Some(k) = parse(key) else { return };
        match k {
            Key::State(kind) => {
                let t = self.tests.entry(kind).or_default();
                let value = spec::state_from_tr098(value);
                if let Some(c) = t.cancel.take() {
                    self.to_cancel.push(c);
                }
                t.queued = false;
                if value == "Requested" {
                    requested.push((kind, key.to_string()));
                } else {
                    // Canceled: stopped, and the state reads None.
                    t.state = None;
                    t.outcome = Outcome::default();
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
                self.echo.insert(f.to_string(), value.to_string());
                self.echo_changed = true;
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

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys.iter().map(|k| self.read_one(k)).collect())
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

    fn apply(&mut self, _cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        self.set_faults.clear();
        self.undo = Some((self.tests.clone(), self.echo.clone()));
        let echo_changed = self.echo_changed;
        let mut requested = Vec::new();
        for (k, v) in std::mem::take(&mut self.staged) {
            self.apply_one(&k, &v, &mut requested);
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
        // An enabled echo server needs a port.
        if self.echo.get("Enable").is_some_and(|v| v == "true")
            && self.echo.get("UDPPort").is_none_or(|p| p == "0")
        {
            // Reported on whichever of the two this change wrote.
            for f in ["UDPPort", "Enable"] {
                self.set_faults.push((
                    format!("{ECHO_CONFIG}.{f}"),
                    Fault::InvalidParameterValue(
                        "an enabled UDP echo server needs a UDPPort".into(),
                    ),
                ));
            }
        }
        if !self.set_faults.is_empty() {
            let first = self.set_faults[0].1.clone();
            self.rollback_inner();
            self.echo_changed = echo_changed;
            return Err(first);
        }
        Ok(Applied::Now)
    }

    fn commit(&mut self, _cx: &mut Cx<'_>) {
        self.undo = None;
        for c in self.to_cancel.drain(..) {
            c.store(true, Ordering::Release);
        }
    }

    fn rollback(&mut self, _cx: &mut Cx<'_>) {
        self.rollback_inner();
    }

    fn take_set_faults(&mut self) -> Vec<(String, Fault)> {
        std::mem::take(&mut self.set_faults)
    }
}

impl DiagBackend {
    fn rollback_inner(&mut self) {
        self.staged.clear();
        self.to_cancel.clear();
        if let Some((tests, echo)) = self.undo.take() {
            self.tests = tests;
            self.echo = echo;
        }
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

    fn set(b: &mut DiagBackend, pairs: &[(&str, &str)]) -> Result<(), Fault> {
        b.set_runs(true);
        let mut v = BTreeMap::new();
        let mut cx = cx(&mut v);
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

    fn get(b: &mut DiagBackend, key: &str) -> Option<String> {
        let mut v = BTreeMap::new();
        b.read(&mut cx(&mut v), &[key]).unwrap().pop().flatten()
    }

    #[test]
    fn a_request_runs_once_and_its_result_is_shown() {
        let mut b = DiagBackend::new();
        assert_eq!(
            get(&mut b, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert_eq!(get(&mut b, "ipping.Timeout").as_deref(), Some("1000"));
        assert!(b.next_request().is_none());
        // Requested without a Host: refused, nothing changes.
        assert_eq!(
            set(&mut b, &[("ipping.DiagnosticsState", "Requested")])
                .unwrap_err()
                .code(),
            9007
        );
        assert_eq!(b.take_set_faults().len(), 1);
        assert_eq!(
            get(&mut b, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        set(
            &mut b,
            &[
                ("ipping.Host", "10.0.0.1"),
                ("ipping.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        assert_eq!(
            get(&mut b, "ipping.DiagnosticsState").as_deref(),
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
        assert_eq!(get(&mut b, "ipping.SuccessCount").as_deref(), Some("3"));
        assert_eq!(
            get(&mut b, "ipping.DiagnosticsState").as_deref(),
            Some("Complete")
        );
        // Writing an input: state None, results gone.
        set(&mut b, &[("ipping.Timeout", "2000")]).unwrap();
        assert_eq!(
            get(&mut b, "ipping.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert_eq!(get(&mut b, "ipping.SuccessCount"), None);
    }

    #[test]
    fn a_change_cancels_a_running_test_only_once_committed() {
        let mut b = DiagBackend::new();
        set(
            &mut b,
            &[
                ("traceroute.Host", "h"),
                ("traceroute.DiagnosticsState", "Requested"),
            ],
        )
        .unwrap();
        let r = b.next_request().unwrap();
        // Staged and rolled back: the run goes on.
        let mut v = BTreeMap::new();
        let mut c = cx(&mut v);
        b.stage_set(&mut c, "traceroute.MaxHopCount", "5").unwrap();
        b.apply(&mut c).unwrap();
        b.rollback(&mut c);
        assert!(!r.cancel.load(Ordering::Acquire));
        assert_eq!(
            get(&mut b, "traceroute.DiagnosticsState").as_deref(),
            Some("Requested")
        );
        // Committed: stopped, None, and its late result is dropped.
        set(&mut b, &[("traceroute.MaxHopCount", "5")]).unwrap();
        assert!(r.cancel.load(Ordering::Acquire));
        assert!(!b.finish(Kind::TraceRoute, r.generation, Outcome::default()));
        assert_eq!(
            get(&mut b, "traceroute.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert!(!b.busy());
        // Requested while running restarts; Canceled stops.
        set(&mut b, &[("traceroute.DiagnosticsState", "Requested")]).unwrap();
        let r1 = b.next_request().unwrap();
        set(&mut b, &[("traceroute.DiagnosticsState", "Requested")]).unwrap();
        assert!(r1.cancel.load(Ordering::Acquire));
        let r2 = b.next_request().unwrap();
        assert!(r2.generation > r1.generation);
        set(&mut b, &[("traceroute.DiagnosticsState", "Canceled")]).unwrap();
        assert!(r2.cancel.load(Ordering::Acquire));
        assert_eq!(
            get(&mut b, "traceroute.DiagnosticsState").as_deref(),
            Some("None")
        );
        assert!(b.next_request().is_none());
    }

    #[test]
    fn tables_values_and_tr098_states() {
        let mut b = DiagBackend::new();
        b.set_model_name("InternetGatewayDevice:1.14");
        set(
            &mut b,
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
            get(&mut b, "download.DiagnosticsState").as_deref(),
            Some("Completed")
        );
        let mut v = BTreeMap::new();
        assert_eq!(
            b.instances(&mut cx(&mut v), "download.PerConnectionResult")
                .unwrap(),
            Some(vec!["1".to_string(), "2".to_string()])
        );
        assert_eq!(
            get(&mut b, "download.PerConnectionResult.2.TestBytesReceived").as_deref(),
            Some("10")
        );
        assert_eq!(
            get(&mut b, "download.PerConnectionResult.3.TestBytesReceived"),
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
            set(&mut b, &[("ipping.DiagnosticsState", "Complete")])
                .unwrap_err()
                .code(),
            9007
        );
    }

    #[test]
    fn the_echo_servers_settings() {
        let mut b = DiagBackend::new();
        assert_eq!(b.take_echo_config().map(|c| c.enable), Some(false));
        assert!(b.take_echo_config().is_none());
        assert_eq!(
            set(&mut b, &[("udpechoconfig.Enable", "true")])
                .unwrap_err()
                .code(),
            9007
        );
        assert!(b.take_echo_config().is_none());
        set(
            &mut b,
            &[
                ("udpechoconfig.Enable", "true"),
                ("udpechoconfig.UDPPort", "7"),
            ],
        )
        .unwrap();
        let c = b.take_echo_config().unwrap();
        assert!(c.enable && c.port == 7);
        assert_eq!(get(&mut b, "udpechoconfig.PacketsReceived"), None);
        b.set_echo_counters(Some(Box::new(|f| {
            (f == "PacketsReceived").then(|| "4".into())
        })));
        assert_eq!(
            get(&mut b, "udpechoconfig.PacketsReceived").as_deref(),
            Some("4")
        );
    }
}
