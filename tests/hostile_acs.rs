//! The hostile and broken ACS suite: the real `cwmpd` binary against ACSes that send
//! garbage, truncated or oversized envelopes, unknown namespaces and RPCs, HTTP errors with and
//! without `Retry-After`, redirect loops and downgrades, ever-growing cookies, silence, stalled
//! bodies, and TLS certificates that must be refused.
//!
//! Every case runs with `[acs] timeout = 2` and `retry_minimum_wait_interval = 1` and asserts:
//! - the outcome: a one-line reason on stderr and exit code 1 (`cwmpd inform`), the right CWMP
//!   fault answered (TR-069 §A.5: 9000 for an unknown method, 9003 for a malformed request), or
//!   a retry with the backoff of §3.2.1.1 (`cwmpd run`), not before a `Retry-After`
//!   (RFC 9110 §10.2.3);
//! - the bound: `cwmpd inform` ends within 3 × timeout + 5 s, and with exit code 1 (a signal, a
//!   crash, or the test's kill at its deadline shows as no exit code);
//! - for an ACS request in one of the XML shapes roxmltree parses in quadratic time, the
//!   daemon's 9003 answer within the bound, and its next session;
//! - the memory: for the daemon cases VmRSS grows less than 8 MiB between the first failed
//!   attempt and the last, and the peak (VmHWM) stays far below a 64 MiB body.
//!
//! One test per case (`case::NAME`, a failure names its case); the cases run concurrently as
//! one batch, and the table `case | seconds | outcome` is printed on stderr when it is over. See
//! it with `cargo test --test hostile_acs -- --nocapture`.

use support::{cpe, hostile, tls, xml_shapes};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cpe::{Cpe, Out};
use cwmpd::soap::{Limits, ParseError};
use hostile::{xml_garbage, BadCerts, Hostile, Reply, Seen};
use tls::Pki;

/// `[acs] timeout`, seconds.
const TIMEOUT: u64 = 2;
/// The bound on one `cwmpd inform` against a broken ACS.
const INFORM_BOUND: Duration = Duration::from_secs(3 * TIMEOUT + 5);
/// Allowed VmRSS growth of the daemon across failed attempts.
const RSS_GROWTH: u64 = 8 << 20;
/// How much the rotating case's idle RSS may still grow between its second and last round.
const PLATEAU: u64 = 2 << 20;
/// The size of the streamed "huge envelope".
const HUGE: u64 = 64 << 20;
/// The transport's body cap (`agent.rs` gives the transport 4 MiB).
const BODY_CAP: u64 = 4 << 20;
/// Redirects followed per POST (`transport::MAX_REDIRECTS`).
const MAX_REDIRECTS: usize = 5;
/// The cookie jar's byte cap (`transport.rs` `MAX_JAR_BYTES`).
const JAR_BYTES: usize = 16 * 1024;

const NS12: &str = "urn:dslforum-org:cwmp-1-2";

/// One line of the table.
#[derive(Clone)]
struct Row {
    case: &'static str,
    outcome: String,
    secs: f64,
    fails: Vec<String>,
}

/// Collects what did not hold in one case.
#[derive(Default)]
struct Check {
    fails: Vec<String>,
}

impl Check {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fails.push(what());
        }
    }
}

/// One named test per case (`case::NAME`), generated with the table of every case: its function
/// and its label in the printed table.
macro_rules! hostile_cases {
    ($($name:ident: $label:literal,)*) => {
        /// Every case: (test name, label, function).
        const CASES: &[(&str, &str, fn() -> Row)] = &[$((stringify!($name), $label, $name),)*];

        mod case {
            $(
                #[test]
                fn $name() {
                    super::check(stringify!($name));
                }
            )*
        }
    };
}

hostile_cases! {
    garbage_body: "garbage body (XML-shaped, 200)",
    garbage_mid_session: "garbage mid-session once (XML-shaped)",
    garbage_forever: "garbage mid-session forever (XML-shaped)",
    slow_garbage_forever: "garbage mid-session forever, 1 s per reply (random bytes)",
    valid_requests_forever: "valid requests forever, 1.9 s per reply (session_limit 5 s)",
    not_http: "not HTTP at all (random bytes, close)",
    truncated_xml: "truncated XML",
    unknown_cwmp_namespace: "unknown cwmp namespace (InformResponse)",
    unknown_cwmp_namespace_request: "unknown cwmp namespace (ACS request)",
    wrong_soap_namespace: "SOAP 1.2 envelope namespace (InformResponse)",
    wrong_soap_namespace_request: "SOAP 1.2 envelope namespace (ACS request)",
    unknown_rpc: "unknown RPC",
    huge_content_length: "huge envelope 64 MiB (Content-Length)",
    huge_chunked: "huge envelope 64 MiB (chunked)",
    huge_head: "huge response head (1 MiB header)",
    large_head: "large response head (headers 4 KiB under the cap)",
    deep_nesting: "deep nesting (100k elements)",
    http_500: "HTTP 500",
    http_503: "HTTP 503",
    redirect_loop: "redirect loop (302 to itself)",
    redirect_downgrade: "redirect https -> http",
    cookie_growth: "cookies growing 4 KiB per response",
    never_answers: "accepts, reads, never answers",
    black_hole: "accepts, never reads",
    stalled_body: "headers then stalled body",
    dripping_body: "body dripping 1 byte / 500 ms",
    closed_mid_body: "connection closed mid-body",
    tls_expired: "TLS expired certificate",
    tls_wrong_host: "TLS wrong host name",
    tls_unknown_ca: "TLS unknown CA",
    tls_ca_as_leaf: "TLS CA certificate as leaf",
    daemon_503: "daemon: HTTP 503, backoff",
    daemon_503_retry_after: "daemon: HTTP 503 + Retry-After: 3",
    daemon_500: "daemon: HTTP 500, backoff",
    daemon_500_retry_after: "daemon: HTTP 500 + Retry-After: 3",
    daemon_rotating: "daemon: rotating hostile ACS, RSS",
    daemon_quadratic_xml: "daemon: quadratic XML (4 MiB of xmlns redeclarations)",
}

/// Asserts that the case `name` held. The cases run concurrently, as one batch started by the
/// first test that asks (the harness would otherwise run them two at a time): each test waits for
/// its own case and fails naming it; when the batch is over the table `case | seconds | outcome`
/// is printed on stderr.
fn check(name: &'static str) {
    let row = batch().wait(name);
    assert!(
        row.fails.is_empty(),
        "{}:\n  - {}",
        row.case,
        row.fails.join("\n  - ")
    );
}

fn batch() -> &'static Batch {
    static BATCH: OnceLock<Batch> = OnceLock::new();
    BATCH.get_or_init(Batch::start)
}

/// The cases running or done.
struct Batch {
    start: Instant,
    state: Mutex<BatchState>,
    done: Condvar,
}

#[derive(Default)]
struct BatchState {
    started: HashSet<&'static str>,
    rows: HashMap<&'static str, Row>,
}

impl Batch {
    /// Starts every case the command line selects (all when it names none).
    fn start() -> Batch {
        let batch = Batch {
            start: Instant::now(),
            state: Mutex::new(BatchState::default()),
            done: Condvar::new(),
        };
        let (filters, exact) = test_filters();
        let selected = |name: &str| {
            let full = format!("case::{name}");
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        full == *f
                    } else {
                        full.contains(f.as_str())
                    }
                })
        };
        {
            let mut st = lock(&batch.state);
            for (name, _, _) in CASES.iter().filter(|(n, _, _)| selected(n)) {
                st.started.insert(name);
            }
        }
        for (name, _, _) in CASES.iter().filter(|(n, _, _)| selected(n)) {
            Batch::spawn(name);
        }
        batch
    }

    /// Runs case `name` on a thread of its own; its row goes to the batch.
    fn spawn(name: &'static str) {
        let Some(&(_, label, f)) = CASES.iter().find(|(n, _, _)| *n == name) else {
            return;
        };
        thread::spawn(move || {
            let row = std::panic::catch_unwind(f).unwrap_or_else(|_| Row {
                case: label,
                outcome: "the case itself panicked".into(),
                secs: 0.0,
                fails: vec!["panicked (see above)".into()],
            });
            let b = batch();
            let mut st = lock(&b.state);
            st.rows.insert(name, row);
            if st.rows.len() == st.started.len() {
                b.print_table(&st);
            }
            drop(st);
            b.done.notify_all();
        });
    }

    /// Waits for the row of case `name` (starting it if the command line did not select it).
    fn wait(&self, name: &'static str) -> Row {
        let mut st = lock(&self.state);
        if st.started.insert(name) {
            Batch::spawn(name);
        }
        loop {
            if let Some(row) = st.rows.get(name) {
                return row.clone();
            }
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn print_table(&self, st: &BatchState) {
        let rows: Vec<&Row> = CASES
            .iter()
            .filter_map(|(name, _, _)| st.rows.get(name))
            .collect();
        let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(10);
        let mut table = format!(
            "\nhostile ACS suite ([acs] timeout = {TIMEOUT} s, retry_minimum_wait_interval = 1), \
             wall {:.1} s\n| {:width$} | {:>6} | outcome\n|{}|{}|{}\n",
            self.start.elapsed().as_secs_f64(),
            "case",
            "s",
            "-".repeat(width + 2),
            "-".repeat(8),
            "-".repeat(60),
        );
        for r in &rows {
            let mark = if r.fails.is_empty() { "" } else { "FAILED: " };
            table.push_str(&format!(
                "| {:width$} | {:>6.1} | {mark}{}\n",
                r.case, r.secs, r.outcome
            ));
        }
        eprintln!("{table}");
    }
}

/// The test-name filters on the command line (libtest's positional arguments) and `--exact`.
fn test_filters() -> (Vec<String>, bool) {
    // libtest's options that take a value.
    const VALUED: [&str; 7] = [
        "--skip",
        "--test-threads",
        "--logfile",
        "--format",
        "--color",
        "--shuffle-seed",
        "-Z",
    ];
    let mut filters = Vec::new();
    let mut exact = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--exact" {
            exact = true;
        } else if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    (filters, exact)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Envelopes.

fn envelope(soap_ns: &str, cwmp_ns: &str, id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap-env:Envelope xmlns:soap-env=\"{soap_ns}\" \
         xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"{cwmp_ns}\">\
         <soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">{id}</cwmp:ID></soap-env:Header>\
         <soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
    )
}

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

fn inform_response() -> String {
    envelope(
        SOAP_NS,
        NS12,
        "inform-1",
        "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>",
    )
}

fn get_rpc_methods(id: &str) -> String {
    envelope(
        SOAP_NS,
        NS12,
        id,
        "<cwmp:GetRPCMethods></cwmp:GetRPCMethods>",
    )
}

/// The first element inside a SOAP Body (`"(empty POST)"` for none), for failure reports.
fn body_element(text: &str) -> String {
    if text.trim().is_empty() {
        return "(empty POST)".into();
    }
    text.find(":Body>")
        .and_then(|i| text.get(i + ":Body>".len()..))
        .and_then(|rest| rest.split(['>', ' ']).next())
        .map_or_else(|| short(text), str::to_string)
}

fn is_inform(s: &Seen) -> bool {
    s.text().contains(":Inform>")
}

/// `n` pseudo-random bytes (xorshift64) from `seed`.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
}

/// Real ACS envelopes to mutate into XML-shaped garbage: a field capture's InformResponse,
/// GetParameterValues and Download (CWMP 1.0, `soap:` prefix, HoldRequests, comments in
/// Chinese), golden requests, and this suite's own InformResponse and GetRPCMethods.
fn garbage_bases() -> Vec<String> {
    [
        include_str!("golden/field-capture-1/02-acs-informresponse.xml"),
        include_str!("golden/field-capture-1/03-acs-getparametervalues.xml"),
        include_str!("golden/field-capture-1/05-acs-download-config.xml"),
        include_str!("golden/cases/gpn-next-level.xml"),
        include_str!("golden/cases/schedule-inform.xml"),
        include_str!("golden/cases/spv-xsi-types.xml"),
        include_str!("golden/cases/add-object.xml"),
        include_str!("golden/cases/reboot.xml"),
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([inform_response(), get_rpc_methods("g-1")])
    .collect()
}

/// How the CPE's parser refuses a body: the four [`ParseError`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    /// Not well-formed XML, or not a SOAP envelope (answered 9003 mid-session).
    Malformed,
    /// A known RPC with bad arguments (9003).
    BadArguments,
    /// An RPC nobody defines (9000).
    UnknownMethod,
    /// An unknown header with mustUnderstand="1" (9000).
    MustUnderstand,
}

impl Refusal {
    fn of(e: &ParseError) -> Refusal {
        match e {
            ParseError::Malformed(_) => Refusal::Malformed,
            ParseError::BadArguments { .. } => Refusal::BadArguments,
            ParseError::UnknownMethod { .. } => Refusal::UnknownMethod,
            ParseError::MustUnderstand { .. } => Refusal::MustUnderstand,
        }
    }

    /// The CWMP fault the CPE answers an ACS request refused this way with (TR-069 §A.5).
    fn fault_code(self) -> u32 {
        match self {
            Refusal::Malformed | Refusal::BadArguments => 9003,
            Refusal::UnknownMethod | Refusal::MustUnderstand => 9000,
        }
    }
}

/// The text of a parse error the CPE's reason must carry: the parser's own words (not a
/// generic "malformed"), so the reason proves the body reached the parser or the RPC mapping.
fn refusal_text(e: &ParseError) -> String {
    match e {
        ParseError::Malformed(why) => why.clone(),
        ParseError::UnknownMethod { method, .. } => method.clone(),
        ParseError::BadArguments { detail, .. } => detail.clone(),
        ParseError::MustUnderstand { element, .. } => element.clone(),
    }
}

/// XML-shaped garbage (valid UTF-8) that the CPE's parser (the one its session uses, with the
/// session's limits) refuses as `want`: one of [`garbage_bases`] mutated by
/// [`xml_garbage`], the first of the seeds from `seed` on that gives a refusal of that kind.
/// Reproducible: the test computes again what the ACS served.
fn refused_garbage(seed: u64, want: Refusal) -> (String, ParseError) {
    let bases = garbage_bases();
    for k in 0..200_000u64 {
        let s = seed.wrapping_add(k.wrapping_mul(0x9E37_79B9));
        let base = &bases[(s % bases.len() as u64) as usize];
        let g = xml_garbage(s, base);
        if g.trim_ascii().is_empty() {
            continue;
        }
        if let Err(e) = cwmpd::soap::parse_acs(g.as_bytes(), &Limits::default()) {
            if Refusal::of(&e) == want {
                return (g, e);
            }
        }
    }
    panic!("no {want:?} garbage from seed {seed}");
}

/// The kinds of refusal a round of garbage cases cycles through: the XML parser's and each
/// of the RPC mapping's.
const REFUSALS: [Refusal; 6] = [
    Refusal::Malformed,
    Refusal::BadArguments,
    Refusal::UnknownMethod,
    Refusal::MustUnderstand,
    Refusal::Malformed,
    Refusal::Malformed,
];

// ---------------------------------------------------------------------------------------------
// Running the CPE.

/// A CPE with `[acs] timeout = 2`, `retry_minimum_wait_interval = 1` and the given multiplier.
fn hostile_cpe(tag: &str, url: &str, ca: Option<&Path>, multiplier: u32) -> Cpe {
    let cpe = Cpe::with_config(tag, url, ca, 3600, |_| String::new());
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    for needle in [
        "\ntimeout = 5\n",
        "\nretry_minimum_wait_interval = 1\n",
        "\nretry_interval_multiplier = 1000\n",
    ] {
        assert!(
            text.contains(needle),
            "no {needle:?} in the config:\n{text}"
        );
    }
    let text = text.replacen("\ntimeout = 5\n", &format!("\ntimeout = {TIMEOUT}\n"), 1);
    let text = text.replacen(
        "\nretry_interval_multiplier = 1000\n",
        &format!("\nretry_interval_multiplier = {multiplier}\n"),
        1,
    );
    std::fs::write(&cpe.cfg, text).expect("write config");
    cpe
}

/// One `cwmpd inform` of a fresh [`hostile_cpe`] against `acs` (`ca`: the CA file for an https
/// ACS), timed, with a fresh [`Check`] for what the case asserts about it.
fn inform_once(acs: &Hostile, ca: Option<&Path>) -> (Out, f64, Check) {
    let cpe = hostile_cpe("hostile", &acs.url("/acs"), ca, 1000);
    let (out, secs) = inform(&cpe);
    (out, secs, Check::default())
}

/// Runs `cwmpd inform` and times it.
fn inform(cpe: &Cpe) -> (Out, f64) {
    let t = Instant::now();
    let out = cpe.cli(&["inform"]);
    (out, t.elapsed().as_secs_f64())
}

/// The CLI's one-line reason: the last stderr line (`cwmpd: …`).
fn reason(out: &Out) -> String {
    out.stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

fn short(s: &str) -> String {
    const MAX: usize = 150;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// The last `n` lines of `text`, for failure reports.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n      ")
}

/// Asserts a `cwmpd inform` that must fail: exit code 1 (not a signal, not killed at the
/// deadline), within [`INFORM_BOUND`], with a one-line `cwmpd: …` reason containing every one
/// of `needles` (case-insensitive).
fn expect_failure(c: &mut Check, out: &Out, secs: f64, needles: &[&str]) -> String {
    let why = reason(out);
    c.that(out.code == Some(1), || {
        format!(
            "exit code {:?}, expected Some(1) (None = signal or killed at the deadline); log:\n      {}",
            out.code,
            tail(&out.stderr, 15)
        )
    });
    c.that(secs <= INFORM_BOUND.as_secs_f64(), || {
        format!("took {secs:.1} s, bound {} s", INFORM_BOUND.as_secs())
    });
    c.that(why.starts_with("cwmpd: "), || {
        format!("no `cwmpd: …` reason line; last line {why:?}")
    });
    let lower = why.to_ascii_lowercase();
    for n in needles {
        c.that(lower.contains(&n.to_ascii_lowercase()), || {
            format!("reason {why:?} does not mention {n:?}")
        });
    }
    why.trim_start_matches("cwmpd: ").to_string()
}

/// Asserts a `cwmpd inform` that must complete (exit 0 within the bound).
fn expect_success(c: &mut Check, out: &Out, secs: f64) {
    c.that(out.code == Some(0), || {
        format!(
            "exit code {:?}, expected 0; log:\n      {}",
            out.code,
            tail(&out.stderr, 15)
        )
    });
    c.that(secs <= INFORM_BOUND.as_secs_f64(), || {
        format!("took {secs:.1} s, bound {} s", INFORM_BOUND.as_secs())
    });
}

fn row(case: &'static str, outcome: String, secs: f64, c: Check) -> Row {
    Row {
        case,
        outcome: short(&outcome),
        secs,
        fails: c.fails,
    }
}

/// A plain ACS for one request inside a session: an InformResponse to the Inform, `request` to
/// the CPE's empty POST, and 204 (the end of the session) to anything else.
fn one_request_acs(request: Reply) -> Hostile {
    Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else if r.body.is_empty() {
            request.clone()
        } else {
            Reply::full(204, "")
        }
    })
}

/// A plain hostile ACS and one `cwmpd inform` against it that must fail with `needles`.
fn failing_inform<H>(case: &'static str, needles: &[&str], handler: H) -> (Row, Vec<Seen>)
where
    H: Fn(&Seen) -> Reply + Send + Sync + 'static,
{
    let acs = Hostile::start(None, handler);
    let (out, secs, mut c) = inform_once(&acs, None);
    let why = expect_failure(&mut c, &out, secs, needles);
    (row(case, why, secs, c), acs.seen())
}

// ---------------------------------------------------------------------------------------------
// Bodies.

/// XML-shaped garbage (valid UTF-8, so it gets past the UTF-8 check to the XML parser and
/// the RPC mapping) for the Inform: one `cwmpd inform` per kind of refusal in [`REFUSALS`].
/// Each fails at once with the parser's own reason (not the UTF-8 one), after one POST:
/// unparsable is not a version refusal, so no namespace fallback.
fn garbage_body() -> Row {
    let t = Instant::now();
    let s = seed();
    let garbage: Vec<(String, ParseError)> = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, w)| refused_garbage(s.wrapping_add(i as u64 * 1_000_003), *w))
        .collect();
    let bodies: Vec<String> = garbage.iter().map(|(g, _)| g.clone()).collect();
    let round = Arc::new(AtomicUsize::new(0));
    let r2 = round.clone();
    let acs = Hostile::start(None, move |_| {
        Reply::soap(
            bodies
                .get(r2.load(Ordering::SeqCst))
                .cloned()
                .unwrap_or_default(),
        )
    });
    let mut c = Check::default();
    let mut reasons = Vec::new();
    for (k, (g, e)) in garbage.iter().enumerate() {
        round.store(k, Ordering::SeqCst);
        let before = acs.seen().len();
        let (out, secs, mut ck) = inform_once(&acs, None);
        let why = expect_failure(&mut ck, &out, secs, &[]);
        let want = refusal_text(e);
        ck.that(why.contains(&want), || {
            format!("reason {why:?} does not carry the parser's {want:?}")
        });
        ck.that(!why.contains("not UTF-8"), || {
            format!("reason {why:?} is the UTF-8 one for UTF-8 garbage")
        });
        let posts = acs.seen().len() - before;
        ck.that(posts == 1, || format!("{posts} POSTs, expected 1"));
        c.fails.extend(ck.fails.into_iter().map(|f| {
            format!(
                "round {k} ({:?}, garbage {:?}): {f}",
                Refusal::of(e),
                short(g)
            )
        }));
        reasons.push(why);
    }
    let kinds: Vec<Refusal> = garbage.iter().map(|(_, e)| Refusal::of(e)).collect();
    row(
        "garbage body (XML-shaped, 200)",
        format!(
            "seed {s}: {} refused at once ({}), each with the parser's words, e.g. {}",
            garbage.len(),
            kinds_text(&kinds),
            reasons.get(1).map_or("", String::as_str)
        ),
        t.elapsed().as_secs_f64(),
        c,
    )
}

/// `Malformed×3 BadArguments …`: how many refusals of each kind.
fn kinds_text(kinds: &[Refusal]) -> String {
    let mut counts: Vec<(Refusal, usize)> = Vec::new();
    for k in kinds {
        match counts.iter_mut().find(|(r, _)| r == k) {
            Some((_, n)) => *n += 1,
            None => counts.push((*k, 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{k:?}×{n}")
            } else {
                format!("{k:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The FaultCode of a CPE fault response, if `text` is one.
fn fault_code(text: &str) -> Option<u32> {
    let from = text.find("<FaultCode>")? + "<FaultCode>".len();
    let to = from + text.get(from..)?.find('<')?;
    text.get(from..to)?.trim().parse().ok()
}

/// A valid InformResponse, then XML-shaped garbage for the empty POST, then 204; one
/// `cwmpd inform` per kind of refusal in [`REFUSALS`]: the CPE answers each with the fault
/// TR-069 §A.5 gives for it (9003 malformed or bad arguments, 9000 unknown method or
/// mustUnderstand header, with the request's ID when it could read one) and the session goes
/// on to its end.
fn garbage_mid_session() -> Row {
    let t = Instant::now();
    let s = seed();
    let garbage: Vec<(String, ParseError)> = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, w)| refused_garbage(s.wrapping_add(i as u64 * 7_000_003), *w))
        .collect();
    let bodies: Vec<String> = garbage.iter().map(|(g, _)| g.clone()).collect();
    let round = Arc::new(AtomicUsize::new(0));
    let r2 = round.clone();
    let acs = Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else if r.body.is_empty() {
            Reply::soap(
                bodies
                    .get(r2.load(Ordering::SeqCst))
                    .cloned()
                    .unwrap_or_default(),
            )
        } else {
            Reply::full(204, "")
        }
    });
    let mut c = Check::default();
    let mut answered = Vec::new();
    for (k, (g, e)) in garbage.iter().enumerate() {
        round.store(k, Ordering::SeqCst);
        let before = acs.seen().len();
        let (out, secs, mut ck) = inform_once(&acs, None);
        expect_success(&mut ck, &out, secs);
        let seen = acs.seen();
        let posts: Vec<String> = seen
            .get(before..)
            .unwrap_or_default()
            .iter()
            .map(Seen::text)
            .collect();
        let kind = Refusal::of(e);
        // Inform, empty POST, the fault.
        let answer = posts.get(2);
        let code = answer.and_then(|a| fault_code(a));
        ck.that(code == Some(kind.fault_code()), || {
            format!(
                "answered {:?}, expected fault {}; POSTs: {:?}",
                answer.map(|a| body_element(a)),
                kind.fault_code(),
                posts.iter().map(|p| short(p)).collect::<Vec<_>>()
            )
        });
        ck.that(!answer.is_some_and(|a| a.contains("not UTF-8")), || {
            format!("the fault is the UTF-8 one for UTF-8 garbage: {answer:?}")
        });
        let id = match e {
            ParseError::Malformed(_) => None,
            ParseError::UnknownMethod { id, .. }
            | ParseError::BadArguments { id, .. }
            | ParseError::MustUnderstand { id, .. } => id.clone(),
        };
        // An ID the parser read is echoed (checked when it needs no escaping).
        if let Some(id) = id.filter(|i| i.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
        {
            ck.that(
                answer.is_some_and(|a| a.contains(&format!(">{id}</"))),
                || format!("the fault does not carry the request's cwmp:ID {id:?}: {answer:?}"),
            );
        }
        c.fails.extend(
            ck.fails
                .into_iter()
                .map(|f| format!("round {k} ({kind:?}, garbage {:?}): {f}", short(g))),
        );
        answered.push(code.map_or("none".to_string(), |n| n.to_string()));
    }
    let kinds: Vec<Refusal> = garbage.iter().map(|(_, e)| Refusal::of(e)).collect();
    row(
        "garbage mid-session once (XML-shaped)",
        format!(
            "seed {s}: {}; each session completed",
            kinds
                .iter()
                .zip(&answered)
                .map(|(k, a)| format!("{k:?}→{a}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        t.elapsed().as_secs_f64(),
        c,
    )
}

/// XML-shaped garbage (each refused by the XML parser, not the UTF-8 check) for every POST
/// after the InformResponse: the CPE answers 9003 to each and ends the session after
/// `MAX_MALFORMED_IN_A_ROW` of them, with the parser's reason for the last.
fn garbage_forever() -> Row {
    let s = seed();
    // Enough for every POST the session may make (the cap below, and more).
    let garbage: Vec<(String, ParseError)> = (0..16u64)
        .map(|i| refused_garbage(s.wrapping_add(i * 5_000_011), Refusal::Malformed))
        .collect();
    let bodies: Vec<String> = garbage.iter().map(|(g, _)| g.clone()).collect();
    let acs = Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else {
            Reply::soap(bodies.get(r.n % 16).cloned().unwrap_or_default())
        }
    });
    let (out, secs, mut c) = inform_once(&acs, None);
    let why = expect_failure(&mut c, &out, secs, &["unparsable messages in a row"]);
    let seen = acs.seen();
    let n = seen.len();
    // The Inform, the empty POST, then a 9003 for each unparsable reply but the last.
    let cap = 1 + cwmpd::session::MAX_MALFORMED_IN_A_ROW as usize;
    c.that(n <= cap, || format!("{n} POSTs, more than {cap}"));
    if let Some(last) = seen.last().filter(|r| !is_inform(r)) {
        if let Some((_, e)) = garbage.get(last.n % 16) {
            let want = refusal_text(e);
            c.that(why.contains(&want), || {
                format!("reason {why:?} does not carry the parser's {want:?} for the last garbage")
            });
        }
    }
    c.that(!why.contains("not UTF-8"), || {
        format!("reason {why:?} is the UTF-8 one for UTF-8 garbage")
    });
    let faults: Vec<Option<u32>> = seen.iter().skip(2).map(|r| fault_code(&r.text())).collect();
    c.that(faults.iter().all(|f| *f == Some(9003)), || {
        format!("the garbage was answered with {faults:?}, expected 9003 each")
    });
    row(
        "garbage mid-session forever (XML-shaped)",
        format!("seed {s}: {why} after {n} POSTs"),
        secs,
        c,
    )
}

/// As [`garbage_forever`], but random bytes (not UTF-8: the garbage case that stops at the
/// UTF-8 check), each reply 1 s late (half the timeout): no single wait times out, so only a
/// bound on the session itself can end it within the time limit.
fn slow_garbage_forever() -> Row {
    let s = seed();
    let acs = Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else {
            thread::sleep(Duration::from_secs(1));
            Reply::full(200, random_bytes(s ^ r.n as u64, 256))
        }
    });
    let (out, secs, mut c) = inform_once(&acs, None);
    let why = expect_failure(&mut c, &out, secs, &["not UTF-8"]);
    let n = acs.seen().len();
    let outcome = if out.code.is_none() {
        format!("still in the session when killed at {secs:.0} s, after {n} POSTs")
    } else {
        format!("{why} after {n} POSTs")
    };
    row(
        "garbage mid-session forever, 1 s per reply (random bytes)",
        outcome,
        secs,
        c,
    )
}

/// Valid requests forever (GetRPCMethods), each sent 1.9 s after the CPE's answer, just inside
/// the 2 s timeout: nothing is malformed, no wait times out and the exchange cap is hours
/// away, so only the session's wall-clock limit (`[acs] session_limit`, 5 s here) ends it,
/// as a failure naming the limit.
fn valid_requests_forever() -> Row {
    const LIMIT: u64 = 5;
    let acs = Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else {
            thread::sleep(Duration::from_millis(1900));
            Reply::soap(get_rpc_methods(&format!("hold-{}", r.n)))
        }
    });
    let cpe = hostile_cpe("hostile", &acs.url("/acs"), None, 1000);
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    let line = format!("\ntimeout = {TIMEOUT}\n");
    assert!(text.contains(&line), "no {line:?} in the config:\n{text}");
    let text = text.replacen(
        &line,
        &format!("\ntimeout = {TIMEOUT}\nsession_limit = {LIMIT}\n"),
        1,
    );
    std::fs::write(&cpe.cfg, text).expect("write config");
    let (out, secs) = inform(&cpe);
    let mut c = Check::default();
    let why = expect_failure(&mut c, &out, secs, &["time limit of 5 s"]);
    let seen = acs.seen();
    let answers = seen
        .iter()
        .filter(|r| r.text().contains("GetRPCMethodsResponse"))
        .count();
    c.that(answers >= 1, || {
        format!("the CPE answered no GetRPCMethods: {} POSTs", seen.len())
    });
    c.that(secs >= LIMIT as f64, || {
        format!("ended after {secs:.1} s, before the {LIMIT} s limit")
    });
    row(
        "valid requests forever, 1.9 s per reply (session_limit 5 s)",
        format!("{why} after {} POSTs", seen.len()),
        secs,
        c,
    )
}

fn not_http() -> Row {
    let s = seed();
    failing_inform(
        "not HTTP at all (random bytes, close)",
        &["HTTP exchange with the ACS failed"],
        move |_| Reply::RawClose(random_bytes(s, 8192)),
    )
    .0
}

fn truncated_xml() -> Row {
    failing_inform("truncated XML", &["malformed"], |_| {
        let full = inform_response();
        Reply::soap(full.get(..full.len() / 2).unwrap_or_default().to_string())
    })
    .0
}

/// An InformResponse whose envelope is in `soap_ns` with cwmp namespace `cwmp_ns`: refused
/// at once (one POST), with a one-line reason.
fn bad_namespace_inform(
    case: &'static str,
    soap_ns: &'static str,
    cwmp_ns: &'static str,
    reason: &'static str,
) -> Row {
    let (mut r, seen) = failing_inform(case, &[reason], move |_| {
        Reply::soap(envelope(
            soap_ns,
            cwmp_ns,
            "inform-1",
            "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>",
        ))
    });
    let mut c = Check { fails: r.fails };
    c.that(seen.len() == 1, || {
        format!(
            "{} POSTs, expected the InformResponse to be refused at once; the CPE took it and \
             went on: {:?}",
            seen.len(),
            seen.iter()
                .map(|r| body_element(&r.text()))
                .collect::<Vec<_>>()
        )
    });
    r.fails = c.fails;
    r
}

fn unknown_cwmp_namespace() -> Row {
    bad_namespace_inform(
        "unknown cwmp namespace (InformResponse)",
        SOAP_NS,
        "urn:dslforum-org:cwmp-9-9",
        "InformResponse",
    )
}

/// SOAP 1.1 §4.1.2: an Envelope in another namespace (here SOAP 1.2's) is a version error
/// and must be discarded.
fn wrong_soap_namespace() -> Row {
    bad_namespace_inform(
        "SOAP 1.2 envelope namespace (InformResponse)",
        "http://www.w3.org/2003/05/soap-envelope",
        NS12,
        "not SOAP 1.1",
    )
}

/// A GetRPCMethods in a bad namespace after a good InformResponse: the CPE must not execute
/// it; it answers a CWMP fault (9000 or 9003, TR-069 §A.5) with the request's ID and the
/// session goes on to its end.
fn bad_namespace_request(case: &'static str, soap_ns: &'static str, cwmp_ns: &'static str) -> Row {
    let acs = one_request_acs(Reply::soap(envelope(
        soap_ns,
        cwmp_ns,
        "ns-7",
        "<cwmp:GetRPCMethods></cwmp:GetRPCMethods>",
    )));
    let (out, secs, mut c) = inform_once(&acs, None);
    expect_success(&mut c, &out, secs);
    let seen = acs.seen();
    let answer = seen.iter().find(|r| !is_inform(r) && !r.body.is_empty());
    let code = answer.and_then(|a| {
        let t = a.text();
        let from = t.find("<FaultCode>")? + "<FaultCode>".len();
        t.get(from..from + 4).map(str::to_string)
    });
    c.that(matches!(code.as_deref(), Some("9000" | "9003")), || {
        format!(
            "expected a 9000/9003 fault, the CPE answered {:?}",
            answer.map(|a| body_element(&a.text()))
        )
    });
    row(
        case,
        format!(
            "answered fault {}, session completed",
            code.as_deref().unwrap_or("none")
        ),
        secs,
        c,
    )
}

fn unknown_cwmp_namespace_request() -> Row {
    bad_namespace_request(
        "unknown cwmp namespace (ACS request)",
        SOAP_NS,
        "urn:dslforum-org:cwmp-9-9",
    )
}

fn wrong_soap_namespace_request() -> Row {
    bad_namespace_request(
        "SOAP 1.2 envelope namespace (ACS request)",
        "http://www.w3.org/2003/05/soap-envelope",
        NS12,
    )
}

/// An RPC no CWMP version defines: the CPE answers 9000 "Method not supported" with the
/// request's `cwmp:ID` (TR-069 §A.5, §A.4.1.1) and the session goes on to its end.
fn unknown_rpc() -> Row {
    let acs = one_request_acs(Reply::soap(envelope(
        SOAP_NS,
        NS12,
        "hostile-42",
        "<cwmp:X_Hostile_Frobnicate><Level>11</Level></cwmp:X_Hostile_Frobnicate>",
    )));
    let (out, secs, mut c) = inform_once(&acs, None);
    expect_success(&mut c, &out, secs);
    let seen = acs.seen();
    let answer = seen.iter().find(|r| r.text().contains("Fault"));
    let ok = answer.is_some_and(|a| {
        let t = a.text();
        t.contains("<FaultCode>9000</FaultCode>") && t.contains(">hostile-42</")
    });
    c.that(ok, || {
        format!(
            "no 9000 fault with ID hostile-42; POSTs: {:?}",
            seen.iter().map(|r| short(&r.text())).collect::<Vec<_>>()
        )
    });
    row(
        "unknown RPC",
        "answered 9000 with the request's ID, session completed (exit 0)".into(),
        secs,
        c,
    )
}

fn huge_content_length() -> Row {
    failing_inform(
        "huge envelope 64 MiB (Content-Length)",
        &["exceeds", &BODY_CAP.to_string()],
        |_| Reply::Stream {
            total: HUGE,
            chunked: false,
        },
    )
    .0
}

fn huge_chunked() -> Row {
    failing_inform(
        "huge envelope 64 MiB (chunked)",
        &["exceeds", &BODY_CAP.to_string()],
        |_| Reply::Stream {
            total: HUGE,
            chunked: true,
        },
    )
    .0
}

fn huge_head() -> Row {
    failing_inform("huge response head (1 MiB header)", &["transport"], |_| {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Hostile: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 1 << 20));
        head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        Reply::RawClose(head)
    })
    .0
}

/// A response head just under the agent's cap (`MAX_RESPONSE_HEAD`, which ureq's input buffer
/// must hold whole): 4 KiB under it of headers on every response, and the session completes.
fn large_head() -> Row {
    let filler = "h".repeat(1000);
    let n = cwmpd::http::acs::MAX_RESPONSE_HEAD / 1024 - 4;
    let acs = Hostile::start(None, move |r| {
        let mut reply = if is_inform(r) {
            Reply::soap(inform_response())
        } else {
            Reply::full(204, "")
        };
        for i in 0..n {
            reply = reply.header(&format!("X-Filler-{i}"), &filler);
        }
        reply
    });
    let (out, secs, mut c) = inform_once(&acs, None);
    expect_success(&mut c, &out, secs);
    row(
        "large response head (headers 4 KiB under the cap)",
        "completed".into(),
        secs,
        c,
    )
}

fn deep_nesting() -> Row {
    const DEPTH: usize = 100_000;
    let body = format!("{}{}", "<a>".repeat(DEPTH), "</a>".repeat(DEPTH));
    let env = envelope(SOAP_NS, NS12, "inform-1", &body);
    failing_inform("deep nesting (100k elements)", &["malformed"], move |_| {
        Reply::soap(env.clone())
    })
    .0
}

// ---------------------------------------------------------------------------------------------
// HTTP status, redirects, cookies.

/// HTTP 500 to the Inform: taken as a refusal of the namespace (§A.2 fallback to cwmp-1-1,
/// then cwmp-1-0), then the session fails.
fn http_500() -> Row {
    let (mut r, seen) = failing_inform("HTTP 500", &["HTTP 500"], |_| Reply::full(500, ""));
    let mut c = Check { fails: r.fails };
    c.that(seen.len() == 3, || {
        format!("{} POSTs, expected 3 (cwmp-1-2, 1-1, 1-0)", seen.len())
    });
    r.fails = c.fails;
    r.outcome = format!(
        "{} after {} POSTs (namespace fallback)",
        r.outcome,
        seen.len()
    );
    r
}

fn http_503() -> Row {
    let (mut r, seen) = failing_inform("HTTP 503", &["HTTP 503"], |_| {
        Reply::full(503, "busy").header("Retry-After", "1")
    });
    let mut c = Check { fails: r.fails };
    c.that(seen.len() == 1, || {
        format!("{} POSTs, expected 1", seen.len())
    });
    r.fails = c.fails;
    r
}

fn redirect_loop() -> Row {
    // The Location names the server itself, whose address is known once it listens.
    let addr = Arc::new(std::sync::OnceLock::<String>::new());
    let a2 = addr.clone();
    let acs = Hostile::start(None, move |r| {
        let url = format!("http://{}{}", a2.get().map_or("", String::as_str), r.path);
        Reply::full(302, "").header("Location", &url)
    });
    let _ = addr.set(acs.addr.to_string());
    let (out, secs, mut c) = inform_once(&acs, None);
    let why = expect_failure(&mut c, &out, secs, &["redirects"]);
    let n = acs.seen().len();
    c.that(n == MAX_REDIRECTS + 1, || {
        format!("{n} requests, expected {}", MAX_REDIRECTS + 1)
    });
    row(
        "redirect loop (302 to itself)",
        format!("{why} ({n} requests)"),
        secs,
        c,
    )
}

/// An https ACS redirecting to plain http (TR-069 §3.4.5 keeps the session secure): refused,
/// and the http server never hears from the CPE.
fn redirect_downgrade() -> Row {
    let pki = Pki::new();
    let plain = Hostile::start(None, |_| Reply::soap(inform_response()));
    let target = plain.url("/acs");
    let acs = Hostile::start(Some(pki.server_tls()), move |_| {
        Reply::full(302, "").header("Location", &target)
    });
    let (out, secs, mut c) = inform_once(&acs, Some(&pki.ca_file));
    let why = expect_failure(&mut c, &out, secs, &["redirect"]);
    let leaked = plain.seen().len();
    c.that(leaked == 0, || {
        format!("the http server got {leaked} requests")
    });
    c.that(acs.seen().len() == 1, || {
        format!(
            "the https ACS got {} requests, expected 1",
            acs.seen().len()
        )
    });
    row("redirect https -> http", why, secs, c)
}

/// A new 4,000-byte cookie with every response over 100 exchanges (400 KB set in all): the jar
/// (TR-069 §3.4.4) keeps echoing cookies, and the `Cookie` header stays within the jar's cap.
fn cookie_growth() -> Row {
    const ROUNDS: usize = 100;
    let sent = Arc::new(AtomicUsize::new(0));
    let sent2 = sent.clone();
    let acs = Hostile::start(None, move |r| {
        let k = sent2.fetch_add(1, Ordering::SeqCst);
        let cookie = format!("c{k}={}; Path=/", "v".repeat(4000));
        let reply = if is_inform(r) {
            Reply::soap(inform_response())
        } else if k < ROUNDS {
            Reply::soap(get_rpc_methods(&format!("rpc-{k}")))
        } else {
            Reply::full(204, "")
        };
        reply.header("Set-Cookie", &cookie)
    });
    let (out, secs, mut c) = inform_once(&acs, None);
    expect_success(&mut c, &out, secs);
    let seen = acs.seen();
    let longest = seen
        .iter()
        .map(|r| r.header("cookie").map_or(0, str::len))
        .max()
        .unwrap_or(0);
    let echoed = seen.iter().filter(|r| r.header("cookie").is_some()).count();
    c.that(longest <= JAR_BYTES + 1024, || {
        format!("a Cookie header of {longest} bytes (jar cap {JAR_BYTES})")
    });
    c.that(echoed + 1 >= seen.len() && seen.len() > ROUNDS, || {
        format!(
            "{echoed} of {} POSTs carried cookies (every POST after the first should)",
            seen.len()
        )
    });
    let set = sent.load(Ordering::SeqCst);
    row(
        "cookies growing 4 KiB per response",
        format!(
            "completed; {set} cookies ({} KB) set, longest Cookie header {longest} B",
            set * 4000 / 1000
        ),
        secs,
        c,
    )
}

// ---------------------------------------------------------------------------------------------
// Silence.

fn at_least_timeout(c: &mut Check, secs: f64) {
    c.that(secs >= TIMEOUT as f64 - 0.1, || {
        format!("gave up after {secs:.1} s, before the {TIMEOUT} s timeout")
    });
}

fn never_answers() -> Row {
    let (mut r, _) = failing_inform("accepts, reads, never answers", &["timed out"], |_| {
        Reply::Silent
    });
    let mut c = Check { fails: r.fails };
    at_least_timeout(&mut c, r.secs);
    r.fails = c.fails;
    r
}

fn black_hole() -> Row {
    let acs = Hostile::black_hole();
    let (out, secs, mut c) = inform_once(&acs, None);
    let why = expect_failure(&mut c, &out, secs, &["timed out"]);
    at_least_timeout(&mut c, secs);
    row("accepts, never reads", why, secs, c)
}

fn stalled_body() -> Row {
    let (mut r, _) = failing_inform("headers then stalled body", &["timed out"], |_| {
        Reply::Stall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n\
              <soap-env:Envelope"
                .to_vec(),
        )
    });
    let mut c = Check { fails: r.fails };
    at_least_timeout(&mut c, r.secs);
    r.fails = c.fails;
    r
}

/// A byte every 500 ms never trips a per-read timeout: the call's overall budget must end it.
fn dripping_body() -> Row {
    failing_inform("body dripping 1 byte / 500 ms", &["timed out"], |_| {
        Reply::Drip {
            head: b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 10000000\r\n\r\n"
                .to_vec(),
            every: Duration::from_millis(500),
        }
    })
    .0
}

fn closed_mid_body() -> Row {
    failing_inform("connection closed mid-body", &["transport"], |_| {
        Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n\
              <soap-env:Envelope xmlns:soap-env="
                .to_vec(),
        )
    })
    .0
}

// ---------------------------------------------------------------------------------------------
// TLS (TR-069 §3.3: the CPE authenticates the ACS by its certificate).

fn tls_case(
    case: &'static str,
    config: Arc<rustls::ServerConfig>,
    ca_file: &Path,
    needles: &[&str],
) -> Row {
    let acs = Hostile::start(Some(config), |_| Reply::soap(inform_response()));
    let (out, secs, mut c) = inform_once(&acs, Some(ca_file));
    let why = expect_failure(&mut c, &out, secs, needles);
    let n = acs.seen().len();
    c.that(n == 0, || {
        format!("the ACS read {n} requests over an unverified channel")
    });
    row(case, why, secs, c)
}

fn tls_expired() -> Row {
    let pki = Pki::new();
    let bad = BadCerts::new();
    tls_case(
        "TLS expired certificate",
        hostile::server_tls(&pki, &bad.expired),
        &bad.ca_file,
        &["TLS", "expired"],
    )
}

fn tls_wrong_host() -> Row {
    let pki = Pki::new();
    tls_case(
        "TLS wrong host name",
        pki.server_config(&pki.wrong_name, false),
        &pki.ca_file,
        &["TLS", "not valid for name"],
    )
}

fn tls_unknown_ca() -> Row {
    let pki = Pki::new();
    tls_case(
        "TLS unknown CA",
        pki.server_tls(),
        &pki.other_ca_file,
        &["TLS", "UnknownIssuer"],
    )
}

fn tls_ca_as_leaf() -> Row {
    let pki = Pki::new();
    let bad = BadCerts::new();
    tls_case(
        "TLS CA certificate as leaf",
        hostile::server_tls(&pki, &bad.ca_as_leaf),
        &bad.ca_file,
        &["TLS", "CaUsedAsEndEntity"],
    )
}

// ---------------------------------------------------------------------------------------------
// The daemon: retries with backoff (TR-069 §3.2.1.1), Retry-After, bounded memory.

/// VmRSS and VmHWM of `pid`, in bytes.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The start times of the session attempts: each begins with an Inform in the highest
/// namespace (a fallback Inform in cwmp-1-1/1-0 belongs to the same attempt).
fn attempts(seen: &[Seen]) -> Vec<Instant> {
    seen.iter()
        .filter(|r| is_inform(r) && r.text().contains(NS12))
        .map(|r| r.at)
        .collect()
}

/// The `RetryCount` of each attempt's first Inform.
fn retry_counts(seen: &[Seen]) -> Vec<u32> {
    seen.iter()
        .filter(|r| is_inform(r) && r.text().contains(NS12))
        .filter_map(|r| {
            let t = r.text();
            let from = t.find("<RetryCount>")? + "<RetryCount>".len();
            let to = from + t.get(from..)?.find('<')?;
            t.get(from..to)?.parse().ok()
        })
        .collect()
}

/// What [`run_daemon`] saw.
struct DaemonRun {
    gaps: Vec<f64>,
    counts: Vec<u32>,
    first: Option<(u64, u64)>,
    last: Option<(u64, u64)>,
    /// (VmRSS, VmHWM) read as each attempt's failure was logged, the daemon then idle in its
    /// backoff: `rss[k - 1]` after the k-th.
    rss: Vec<Option<(u64, u64)>>,
    failures: usize,
    alive: bool,
    log: String,
    secs: f64,
}

/// Runs the daemon against `acs` until `want` attempts failed (or `limit` passed): the gaps
/// between attempts, the memory after each failed attempt and at the end, and the log.
fn run_daemon(acs: &Hostile, multiplier: u32, want: usize, limit: Duration) -> DaemonRun {
    run_daemon_from(acs, multiplier, 1, want, limit)
}

/// [`run_daemon`] with the first memory reading after `baseline` failed attempts.
fn run_daemon_from(
    acs: &Hostile,
    multiplier: u32,
    baseline: usize,
    want: usize,
    limit: Duration,
) -> DaemonRun {
    let cpe = hostile_cpe("hostile-d", &acs.url("/acs"), None, multiplier);
    let t = Instant::now();
    // glibc's dynamic mmap threshold would keep freed multi-MiB body buffers on the heap after
    // the first ones, so idle RSS would step up by 4 MiB once or twice (seen: 17.8, 21.0, 24.9,
    // 24.9 MiB per round) and then stay: what is measured here is the agent's own retention, so
    // the threshold is fixed (musl, OpenWrt's libc, has no such heuristic).
    let mut d = cpe.spawn_run_env(&[("MALLOC_MMAP_THRESHOLD_", "1048576")]);
    let pid = d.child.id();
    // The first attempt has failed once the log says so.
    let failures = |d: &cpe::Daemon| d.log().matches("session failed").count();
    let mut rss = Vec::new();
    for k in 1..=want {
        let failed = cpe::poll(limit.saturating_sub(t.elapsed()), || {
            (failures(&d) >= k).then_some(())
        });
        if failed.is_none() {
            break;
        }
        rss.push(memory(pid));
    }
    let first = rss.get(baseline.saturating_sub(1)).copied().flatten();
    let last = memory(pid);
    let alive = d.alive();
    let secs = t.elapsed().as_secs_f64();
    let log = d.kill();
    let failures = log.matches("session failed").count();
    let seen = acs.seen();
    let starts = attempts(&seen);
    let gaps = starts
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(b.duration_since(*a).as_secs_f64()),
            _ => None,
        })
        .collect();
    DaemonRun {
        gaps,
        counts: retry_counts(&seen),
        first,
        last,
        rss,
        failures,
        alive,
        log,
        secs,
    }
}

/// The common daemon assertions: alive, RSS growth, RetryCount counting up (§3.2.1.1).
fn check_daemon(c: &mut Check, r: &DaemonRun, want: usize) {
    c.that(r.alive, || {
        format!("the daemon died; log:\n      {}", tail(&r.log, 15))
    });
    c.that(r.failures >= want && r.gaps.len() + 1 >= want, || {
        format!(
            "{} failed attempts ({} seen by the ACS), expected {want}; log:\n      {}",
            r.failures,
            r.gaps.len() + 1,
            tail(&r.log, 15)
        )
    });
    match (r.first, r.last) {
        (Some((a, _)), Some((b, _))) => c.that(b.saturating_sub(a) < RSS_GROWTH, || {
            format!("VmRSS grew from {:.1} to {:.1} MiB", mib(a), mib(b))
        }),
        _ => c.that(false, || "VmRSS could not be read".into()),
    }
    let expected: Vec<u32> = (0..r.counts.len() as u32).collect();
    c.that(r.counts == expected, || {
        format!("Inform RetryCounts {:?}, expected {expected:?}", r.counts)
    });
}

fn rss_text(r: &DaemonRun) -> String {
    match (r.first, r.last) {
        (Some((a, _)), Some((b, h))) => format!(
            "VmRSS {:.1} -> {:.1} MiB, VmHWM {:.1} MiB",
            mib(a),
            mib(b),
            mib(h)
        ),
        _ => "VmRSS unreadable".into(),
    }
}

/// The §3.2.1.1 backoff with multiplier 2000 and minimum 1 s: the k-th wait (k = 1, 2, …) lies in
/// [2^(k-1), 2^k] s. The agent schedules in whole seconds, so a wait is checked as ≥ its lower
/// end minus the rounding (the lower end is whole) and ≤ its upper end plus 1.5 s of slack for
/// the attempt itself and a loaded machine.
fn check_backoff(c: &mut Check, gaps: &[f64]) {
    for (k, g) in gaps.iter().enumerate() {
        let lo = f64::from(1u32 << k);
        let hi = 2.0 * lo;
        c.that(*g >= lo - 0.05 && *g <= hi + 1.5, || {
            format!(
                "wait {} was {g:.2} s, expected within [{lo}, {hi}] s (+1.5 s slack); waits {gaps:.2?}",
                k + 1
            )
        });
    }
    if let (Some(first), Some(last)) = (gaps.first(), gaps.last()) {
        if gaps.len() >= 3 {
            c.that(last > first, || {
                format!("no backoff growth: waits {gaps:.2?}")
            });
        }
    }
}

fn daemon_backoff(case: &'static str, status: u16) -> Row {
    const WANT: usize = 4;
    let acs = Hostile::start(None, move |_| Reply::full(status, ""));
    let r = run_daemon(&acs, 2000, WANT, Duration::from_secs(30));
    let mut c = Check::default();
    check_daemon(&mut c, &r, WANT);
    check_backoff(&mut c, &r.gaps);
    row(
        case,
        format!(
            "retried, waits {:.1?} s, RetryCount {:?}; {}",
            r.gaps,
            r.counts,
            rss_text(&r)
        ),
        r.secs,
        c,
    )
}

fn daemon_503() -> Row {
    daemon_backoff("daemon: HTTP 503, backoff", 503)
}

fn daemon_500() -> Row {
    daemon_backoff("daemon: HTTP 500, backoff", 500)
}

/// `Retry-After: 3` with a 1 s backoff (multiplier 1000): every next attempt waits ≥ 3 s
/// (RFC 9110 §10.2.3). `honoured` says whether the status must honour it: RFC 9110 defines
/// Retry-After for 503 (and 3xx); with a 500 the wait is only reported.
fn daemon_retry_after(case: &'static str, status: u16, honoured: bool) -> Row {
    const WANT: usize = 3;
    let acs = Hostile::start(None, move |_| {
        Reply::full(status, "").header("Retry-After", "3")
    });
    let r = run_daemon(&acs, 1000, WANT, Duration::from_secs(30));
    let mut c = Check::default();
    check_daemon(&mut c, &r, WANT);
    for g in &r.gaps {
        if honoured {
            c.that(*g >= 3.0 - 0.05, || {
                format!(
                    "an attempt came {g:.2} s after the previous one despite Retry-After: 3; \
                     waits {:.2?}; log:\n      {}",
                    r.gaps,
                    tail(
                        &r.log
                            .lines()
                            .filter(|l| l.contains("session failed") || l.contains("next attempt"))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        6
                    )
                )
            });
        } else {
            // Not bound to wait for Retry-After, but never earlier than the backoff's minimum
            // (retry_minimum_wait_interval = 1 s, multiplier 1000: every wait is 1 s).
            c.that(*g >= 1.0 - 0.05, || {
                format!(
                    "an attempt came {g:.2} s after the previous one, before the 1 s minimum \
                     wait; waits {:.2?}",
                    r.gaps
                )
            });
        }
        c.that(*g <= 3.0 + 2.0, || {
            format!("a wait of {g:.2} s, expected about 3 s")
        });
    }
    row(
        case,
        format!(
            "retried, waits {:.2?} s{}; {}",
            r.gaps,
            if honoured {
                ""
            } else {
                " (Retry-After not required with 500)"
            },
            rss_text(&r)
        ),
        r.secs,
        c,
    )
}

fn daemon_503_retry_after() -> Row {
    daemon_retry_after("daemon: HTTP 503 + Retry-After: 3", 503, true)
}

fn daemon_500_retry_after() -> Row {
    daemon_retry_after("daemon: HTTP 500 + Retry-After: 3", 500, false)
}

/// The daemon against an ACS whose every TCP connection misbehaves in another way (garbage,
/// truncation, 64 MiB bodies, deep nesting, not HTTP, unknown namespace, 503, a redirect loop,
/// a stalled body): it keeps retrying, its peak stays far below the 64 MiB it was sent, and its
/// idle RSS (read after each failed attempt) stops growing after the first rounds: the highest
/// reading of the last round is within [`PLATEAU`] of the second round's.
fn daemon_rotating() -> Row {
    // Nine behaviours, one per connection, so a round of nine attempts meets every one.
    const ROUND: usize = 9;
    const ROUNDS: usize = 4;
    const WANT: usize = ROUND * ROUNDS;
    let s = seed();
    let deep = {
        let body = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        envelope(SOAP_NS, NS12, "inform-1", &body)
    };
    let addr = Arc::new(std::sync::OnceLock::<String>::new());
    let a2 = addr.clone();
    // The requests answered with a redirect: the Inform after one is the same attempt.
    let redirected = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeSet::<usize>::new(),
    ));
    let red2 = redirected.clone();
    let acs = Hostile::start(None, move |r| match r.conn % 9 {
        1 => Reply::full(200, random_bytes(s ^ r.n as u64, 64 * 1024)),
        2 => Reply::Stream {
            total: HUGE,
            chunked: r.n % 2 == 0,
        },
        3 => Reply::soap(deep.clone()),
        4 => {
            let full = inform_response();
            Reply::soap(full.get(..full.len() / 2).unwrap_or_default().to_string())
        }
        5 => Reply::RawClose(random_bytes(s ^ r.n as u64, 4096)),
        6 => Reply::soap(envelope(
            SOAP_NS,
            "urn:dslforum-org:cwmp-9-9",
            "x",
            "<cwmp:InformResponse/>",
        )),
        7 => Reply::full(503, "").header("Retry-After", "1"),
        8 => {
            if let Ok(mut set) = red2.lock() {
                set.insert(r.n);
            }
            let url = format!("http://{}{}", a2.get().map_or("", String::as_str), r.path);
            Reply::full(302, "").header("Location", &url)
        }
        _ => Reply::Stall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n<soap-env:Envelope".to_vec(),
        ),
    });
    let _ = addr.set(acs.addr.to_string());
    let r = run_daemon_from(&acs, 1000, 2 * ROUND, WANT, Duration::from_secs(150));
    let mut c = Check::default();
    c.that(r.alive, || {
        format!("the daemon died; log:\n      {}", tail(&r.log, 15))
    });
    c.that(r.failures >= WANT, || {
        format!("{} failed attempts, expected {WANT}", r.failures)
    });
    // The attempts: each starts with an Inform that is not a redirect hop of the one before
    // (the transport follows MAX_REDIRECTS 302s per POST, the next one ends the attempt).
    let seen = acs.seen();
    let redirected = redirected.lock().map(|s| s.clone()).unwrap_or_default();
    let mut starts: Vec<&Seen> = Vec::new();
    let mut hops = 0;
    for q in seen
        .iter()
        .filter(|q| is_inform(q) && q.text().contains(NS12))
    {
        if redirected.contains(&(q.n - 1)) && hops < MAX_REDIRECTS && !starts.is_empty() {
            hops += 1;
        } else {
            hops = 0;
            starts.push(q);
        }
    }
    let gaps: Vec<f64> = starts
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(b.at.duration_since(a.at).as_secs_f64()),
            _ => None,
        })
        .collect();
    let counts = retry_counts(&starts.iter().map(|q| (*q).clone()).collect::<Vec<_>>());
    // Every behaviour fails the attempt; the next waits at least the backoff's 1 s
    // (retry_minimum_wait_interval = 1, multiplier 1000; the 503's Retry-After is 1 s too).
    let early: Vec<String> = gaps
        .iter()
        .enumerate()
        .filter(|(_, g)| **g < 1.0 - 0.05)
        .map(|(k, g)| format!("attempt {} came {g:.2} s after the one before", k + 2))
        .collect();
    c.that(early.is_empty(), || {
        format!("retried before the 1 s minimum wait: {early:?}; waits {gaps:.2?}")
    });
    let expected: Vec<u32> = (0..counts.len() as u32).collect();
    c.that(counts == expected && counts.len() == starts.len(), || {
        format!(
            "Inform RetryCounts {counts:?} over {} attempts, expected {expected:?}",
            starts.len()
        )
    });
    c.that(starts.len() + 1 >= r.failures, || {
        format!(
            "{} attempts seen by the ACS, {} failures logged",
            starts.len(),
            r.failures
        )
    });
    // The highest idle VmRSS of each round.
    let rounds: Vec<Option<u64>> = r
        .rss
        .chunks(ROUND)
        .map(|round| round.iter().map(|m| m.map(|(rss, _)| rss)).max().flatten())
        .collect();
    let hwm = r.last.map(|(_, hwm)| hwm);
    match (
        rounds.get(1).copied().flatten(),
        rounds.last().copied().flatten(),
        hwm,
    ) {
        (Some(second), Some(last), Some(hwm)) if rounds.len() == ROUNDS => {
            c.that(last.saturating_sub(second) < PLATEAU, || {
                format!(
                    "idle VmRSS still growing: {:.1} MiB in round 2, {:.1} MiB in round {ROUNDS}",
                    mib(second),
                    mib(last)
                )
            });
            c.that(hwm < HUGE / 2, || {
                format!(
                    "VmHWM {:.1} MiB: the 64 MiB body was not cut early",
                    mib(hwm)
                )
            });
        }
        _ => c.that(false, || {
            format!("VmRSS could not be read after every attempt: {rounds:?}")
        }),
    }
    let per_round: Vec<String> = rounds
        .iter()
        .map(|m| m.map_or("?".into(), |b| format!("{:.1}", mib(b))))
        .collect();
    row(
        "daemon: rotating hostile ACS, RSS",
        format!(
            "{} attempts over {} connections, all failed and retried, waits {:.1}–{:.1} s, \
             RetryCount 0–{}; idle VmRSS per round of {ROUND}: [{}] MiB, VmHWM {:.1} MiB",
            r.failures,
            acs.connections(),
            gaps.iter().copied().fold(f64::INFINITY, f64::min),
            gaps.iter().copied().fold(0.0, f64::max),
            counts.last().copied().unwrap_or(0),
            per_round.join(", "),
            hwm.map_or(0.0, mib)
        ),
        r.secs,
        c,
    )
}

/// The daemon against an ACS whose first request is 4 MiB of namespace redeclarations
/// (`xml_shapes::Shape::XmlnsSiblingsSamePrefix`: an element declaring ~87,000 prefixes and
/// siblings each declaring one of them again; roxmltree 0.20 copies and compares every binding
/// in scope for every sibling, days of work). The pre-scan refuses it: the daemon answers 9003
/// within [`INFORM_BOUND`] of receiving it, ends the session, and the next periodic session
/// (`periodic_inform_interval = 2`) comes; the ACS then ends each session at once.
fn daemon_quadratic_xml() -> Row {
    const INTERVAL: u32 = 2;
    let hostile = xml_shapes::Shape::XmlnsSiblingsSamePrefix.hostile(BODY_CAP as usize - 4096);
    let size = hostile.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let s2 = sent.clone();
    let acs = Hostile::start(None, move |r| {
        if is_inform(r) {
            Reply::soap(inform_response())
        } else if r.body.is_empty() && s2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::soap(hostile.clone())
        } else {
            Reply::full(204, "")
        }
    });
    let cpe = hostile_cpe("hostile-xml", &acs.url("/acs"), None, 1000);
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    let text = text.replacen(
        "\nperiodic_inform_interval = 3600\n",
        &format!("\nperiodic_inform_interval = {INTERVAL}\n"),
        1,
    );
    std::fs::write(&cpe.cfg, text).expect("write config");
    let t = Instant::now();
    let mut d = cpe.spawn_run();
    let informs = |acs: &Hostile| acs.seen().iter().filter(|q| is_inform(q)).count();
    let second = cpe::poll(Duration::from_secs(40), || {
        (informs(&acs) >= 2).then_some(())
    });
    let secs = t.elapsed().as_secs_f64();
    let alive = d.alive();
    let log = d.kill();
    let seen = acs.seen();
    let mut c = Check::default();
    c.that(alive, || {
        format!("the daemon died; log:\n      {}", tail(&log, 15))
    });
    // The POST after the empty one (which got the envelope) is the answer.
    let empty = seen.iter().position(|q| q.body.is_empty());
    let answer = empty.and_then(|k| seen.get(k + 1));
    let code = answer.and_then(|a| fault_code(&a.text()));
    c.that(code == Some(9003), || {
        format!(
            "answered {:?}, expected fault 9003; POSTs: {:?}; log:\n      {}",
            answer.map(|a| body_element(&a.text())),
            seen.iter().map(|q| short(&q.text())).collect::<Vec<_>>(),
            tail(&log, 15)
        )
    });
    let answered_in = match (empty.and_then(|k| seen.get(k)), answer) {
        (Some(q), Some(a)) => a.at.duration_since(q.at).as_secs_f64(),
        _ => f64::INFINITY,
    };
    c.that(answered_in <= INFORM_BOUND.as_secs_f64(), || {
        format!(
            "the answer came {answered_in:.1} s after the envelope was sent, bound {} s",
            INFORM_BOUND.as_secs()
        )
    });
    let why = answer.map(Seen::text).unwrap_or_default();
    c.that(why.contains("namespace prefixes in scope"), || {
        format!(
            "the fault does not give the pre-scan's reason: {}",
            short(&why)
        )
    });
    let next = seen.iter().filter(|q| is_inform(q)).nth(1);
    c.that(
        second.is_some() && next.is_some_and(|q| q.text().contains("2 PERIODIC")),
        || {
            format!(
                "no periodic session after the refused envelope within 40 s; Informs: {}; \
                 log:\n      {}",
                informs(&acs),
                tail(&log, 15)
            )
        },
    );
    row(
        "daemon: quadratic XML (4 MiB of xmlns redeclarations)",
        format!(
            "{size} bytes sent: answered {} in {answered_in:.2} s; next Inform {}",
            code.map_or("nothing".into(), |c| format!("fault {c}")),
            next.map_or("not seen".into(), |q| format!(
                "{:.1} s after the start",
                q.at.duration_since(t).as_secs_f64()
            ))
        ),
        secs,
        c,
    )
}
