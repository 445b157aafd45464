//! Benchmark of GetParameterValues of `Device.` on a router: from the SOAP request in
//! to the SOAP response out, through the real engine and the OpenWrt bindings (uci's files read
//! in the process as the real `uci` command reads them; the command where that cannot be
//! certain), on the fixture router (`tests/fixtures/router/`) scaled up with port forwards and
//! static leases until the tree has more than 2,000 parameters.
//!
//! Side by side, the per-parameter approach of agents that run `uci get` once per parameter
//! (easycwmp's shell functions, one process per value): one `uci get` per uci-backed parameter
//! of the same tree, in sequence. Both are measured in this run; the table gives wall time,
//! processes started and the ratio. Peak RSS is this process's (VmHWM), measured after the
//! engine runs and before the per-parameter runs.
//!
//! `cargo bench --bench gpv` (release profile; harness = false). `GPV_ENGINE_ONLY=1` skips the
//! per-parameter runs (for profiling); `GPV_CACHED=1` also prints GPVs served from a kept
//! snapshot (the engine's own cost, without reading uci's files).

use scale::{HOSTS, REDIRECTS};
use support::{scale, uci as uci_support};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cwmpd::cwmp::version::CwmpNs;
use cwmpd::datamodel::backend::registry::{BackendKind, Backends};
use cwmpd::datamodel::backend::Platform;
use cwmpd::datamodel::schema::{Model, PlatformKind, Schema};
use cwmpd::datamodel::{DmState, Engine};
use cwmpd::rpc::{self, Control};
use cwmpd::soap::acs;
use cwmpd::soap::*;
use cwmpd::sys::process;

/// Timed runs of the engine path.
const RUNS: usize = 30;
/// Timed runs of the per-parameter path (each starts hundreds of processes).
const SLOW_RUNS: usize = 3;

/// The device actions are not part of this benchmark.
struct NoDevice;
impl Control for NoDevice {}

fn main() {
    let uci = uci_support::uci_bin();
    let work = std::env::temp_dir().join(format!("cwmpd-bench-gpv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let root = work.join("root");
    scale::scaled_router(&root).unwrap_or_else(|e| panic!("scaling the fixture router: {e}"));
    let platform = Platform {
        root: root.clone(),
        uci_bin: uci.clone(),
        uci_config: root.join("etc/config"),
        uci_savedir: work.join("uci-save"),
        reload: BTreeMap::new(),
        ..Platform::default()
    };
    let schema =
        Schema::load_for(Model::Tr181, PlatformKind::OpenWrt, None).expect("data model loads");
    let mut engine = Engine::new(
        schema,
        Backends::with_platform(BTreeMap::new(), &platform),
        DmState::default(),
    );

    let request = AcsRequest::GetParameterValues {
        names: vec!["Device.".into()],
    };
    let header = Header {
        id: Some("bench".into()),
        ..Header::default()
    };
    let envelope = acs::emit_acs_request(CwmpNs::V1_2, &header, &request);
    let limits = Limits::default();

    // One GetParameterValues as a session serves it: a fresh snapshot, parse, execute, emit.
    let gpv_in = |engine: &mut Engine, fresh: bool| -> (Vec<u8>, usize) {
        if fresh {
            engine.invalidate();
        }
        let req = match parse_acs(&envelope, &limits).map(|e| e.body) {
            Ok(AcsMessage::Request(r)) => r,
            other => panic!("the request does not parse: {other:?}"),
        };
        let resp = rpc::execute(engine, &mut NoDevice, &req);
        let n = match &resp {
            CpeResponse::GetParameterValues { list } => list.len(),
            other => panic!("GetParameterValues failed: {other:?}"),
        };
        (emit_response(CwmpNs::V1_2, Some("bench"), &resp), n)
    };
    let gpv = |engine: &mut Engine| gpv_in(engine, true);
    if std::env::var_os("GPV_CACHED").is_some() {
        for _ in 0..5 {
            let t = Instant::now();
            gpv_in(&mut engine, false);
            eprintln!("cached snapshot: {:?}", t.elapsed());
        }
    }

    // Warm-up (page cache, allocator), and the figures that do not change between runs.
    let (body, params) = gpv(&mut engine);
    for _ in 0..3 {
        gpv(&mut engine);
    }
    let spawns_before = process::spawns();
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(gpv(&mut engine));
        times.push(t.elapsed());
    }
    let spawns_per_gpv = (process::spawns() - spawns_before) as f64 / RUNS as f64;
    let peak_rss = vm_hwm_kib();

    // The per-parameter approach on the same tree: one `uci get` per uci-backed parameter.
    let bound = engine.bound_keys("Device.").expect("bindings");
    let by_kind = |k: BackendKind| bound.iter().filter(|(_, b, _)| *b == k).count();
    let uci_args: Vec<String> = bound
        .iter()
        .filter(|(_, b, _)| *b == BackendKind::Uci)
        .map(|(_, _, key)| uci_get_arg(key))
        .collect();
    let mut slow = Vec::with_capacity(SLOW_RUNS);
    let slow_runs = if std::env::var_os("GPV_ENGINE_ONLY").is_some() {
        0
    } else {
        SLOW_RUNS
    };
    for _ in 0..slow_runs {
        let t = Instant::now();
        for arg in &uci_args {
            let _ = Command::new(&uci)
                .arg("-c")
                .arg(&platform.uci_config)
                .arg("get")
                .arg(arg)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output();
        }
        slow.push(t.elapsed());
    }

    let fast = median(&mut times);
    let slow_median = median(&mut slow);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GetParameterValues of Device. on the fixture router (+{REDIRECTS} port forwards, +{HOSTS} static leases), {} build",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let _ = writeln!(
        out,
        "parameters: {params} ({} uci, {} file, {} agent/builtin/const/script); response {} bytes",
        by_kind(BackendKind::Uci),
        by_kind(BackendKind::File),
        params - by_kind(BackendKind::Uci) - by_kind(BackendKind::File),
        body.len()
    );
    let _ = writeln!(
        out,
        "{:<52} {:>10} {:>10} {:>10} {:>9}",
        "approach", "median", "min", "max", "processes"
    );
    let _ = writeln!(
        out,
        "{:<52} {:>10} {:>10} {:>10} {:>9.1}",
        "cwmpd: SOAP in -> engine (uci files read in the process) -> SOAP out",
        ms(fast),
        ms(*times.iter().min().unwrap_or(&fast)),
        ms(*times.iter().max().unwrap_or(&fast)),
        spawns_per_gpv
    );
    let _ = writeln!(
        out,
        "{:<52} {:>10} {:>10} {:>10} {:>9}",
        "per parameter: `uci get` per uci-backed parameter",
        ms(slow_median),
        ms(*slow.iter().min().unwrap_or(&slow_median)),
        ms(*slow.iter().max().unwrap_or(&slow_median)),
        uci_args.len()
    );
    let _ = writeln!(
        out,
        "ratio (per parameter / cwmpd): {:.0}x   peak RSS of this process: {} KiB",
        slow_median.as_secs_f64() / fast.as_secs_f64().max(1e-9),
        peak_rss.map_or("?".to_string(), |k| k.to_string())
    );
    print!("{out}");
    let _ = std::fs::remove_dir_all(&work);
}

/// The `uci get` argument that reads what a uci key names (a list item, a list, the dnsmasq
/// range's `start`).
fn uci_get_arg(key: &str) -> String {
    let key = key.split('?').next().unwrap_or(key);
    if let Some(sec) = key
        .strip_suffix(".@min")
        .or_else(|| key.strip_suffix(".@max"))
    {
        return format!("{sec}.start");
    }
    match key.find('[') {
        Some(i) if key.ends_with(']') => key[..i].to_string(),
        _ => key.to_string(),
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Peak resident set size of this process (`VmHWM` of /proc/self/status), KiB.
fn vm_hwm_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
