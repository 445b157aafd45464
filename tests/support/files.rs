//! Test support for file transfers and device control (TR-069
//! Amendment 6 §A.3.2.8 Download, §A.3.2.9 Upload, §A.3.3.2 TransferComplete): a file server
//! with Basic or Digest authentication checked here independently of `cwmpd::http::auth`, a CPE with
//! `[transfer]` and `[hooks]` sections, hook scripts that log what they saw, and the
//! TransferComplete requests the test ACS recorded.
//!
//! The API (everything else is private):
//!
//! - File servers ([`FileServer`], a `tls::TestServer` that also timestamps each request):
//!   - `FileServer::start(tls: Option<Arc<ServerConfig>>, handler) -> FileServer` (any handler);
//!   - `FileServer::file(tls, path: &str, body: Vec<u8>, auth: HttpAuth) -> FileServer`: GET of
//!     `path` → 200 with `body` once `auth` is satisfied, another path → 404;
//!   - `FileServer::sink(tls, status: u16, auth: HttpAuth) -> FileServer`: PUT/POST → `status`;
//!   - `.url(path) -> String`, `.requests() -> Vec<Request>`, `.timed() -> Vec<(Instant,
//!     Request)>`, `.count(method) -> usize`.
//!   - `HttpAuth::{None, Basic{user, pass}, Digest{user, pass}}`; `challenge(req, &auth) ->
//!     Option<Response>` (`None` = authorised, else the 401 to send); `digest_ok(req, user,
//!     pass) -> bool` (RFC 7616 MD5 `qop=auth`, computed with `md-5` by `digest_response`).
//! - The CPE: `transfer_cpe(tag, acs_url, ca_file: Option<&Path>, interval: u32, transfer:
//!   &str, hooks: &str) -> Cpe`. `transfer` is extra `[transfer]` lines (`key = value`); the
//!   keys it does not set get `dir = "<cpe dir>/transfer"`, `timeout = 3`, `retries = 0`,
//!   `retry_interval = 1`. `hooks` is the body of `[hooks]` (it may go on with `[hooks.vendor]`
//!   or any later table); `{dir}` in it is replaced by the CPE's directory. `[datamodel]
//!   platform = "generic"` makes every hook not given empty.
//! - Hook scripts: `hook_script(cpe: &Cpe, name: &str, body: &str, status: i32) -> PathBuf`
//!   writes `<dir>/<name>.sh` (the hook line is then e.g. `firmware = "{dir}/fw.sh {file}
//!   {target}"`); each run appends its arguments and `CWMPD_*` environment to `<dir>/<name>.log`,
//!   runs `body` (shell; `{dir}` replaced) and exits `status`. `hook_runs(cpe, name) ->
//!   Vec<HookRun>` reads that log (`HookRun { args: Vec<String>, env: BTreeMap<String, String> }`
//!   with keys `CWMPD_FILE`, `CWMPD_TARGET`, `CWMPD_FILE_TYPE`, `CWMPD_INSTANCE`,
//!   `CWMPD_COMMAND_KEY`, and `SIZE`, the byte count of `$CWMPD_FILE` when it exists).
//! - Requests: `download(key, file_type, url) -> Download`, `upload(key, file_type, url) ->
//!   Upload` (the other fields empty/zero; change them with struct update syntax).
//! - TransferComplete: `transfer_completes(&[SessionRecord]) -> Vec<Tc>` (every one, in order),
//!   `wait_transfer_complete(acs, key, timeout) -> Result<(SessionRecord, Tc), String>`,
//!   `assert_transfer_events(session, "M Download", key)`, `assert_times(tc)` (both known,
//!   StartTime <= CompleteTime, not in the future), `assert_reported_once(acs, key, after,
//!   timeout) -> Result<(), String>` (waits for a completed session later than index `after`, then
//!   checks exactly one TransferComplete for `key` in all sessions), `parse_time(s) -> Option<f64>`
//!   (xsd:dateTime → Unix seconds), `TIME_UNKNOWN`.
//! - GetRPCMethods (§A.3.1.1): `rpc_methods(exchange) -> BTreeSet<String>` (the response's list,
//!   no name twice), `expected_methods(extra) -> BTreeSet<String>` (`cwmpd::rpc::REQUIRED_METHODS`
//!   and `extra`), `TRANSFER_RPCS` (listed when a download hook is set).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use rustls::ServerConfig;

use crate::acs::{Acs, Exchange, SessionRecord};
use crate::cpe::Cpe;
use crate::tls::{Request, Response, TestServer};
use cwmpd::soap::{CpeRequest, CpeResponse, Download, Upload};

/// The unknown time of §A.3.3.2 (StartTime/CompleteTime of a DownloadResponse with Status 1).
pub const TIME_UNKNOWN: &str = "0001-01-01T00:00:00Z";

/// The realm of the file server's challenges.
pub const REALM: &str = "cwmpd test files";

// ----------------------------------------------------------------------------------------------
// The file server.

/// How the file server protects its files (RFC 7617 Basic, RFC 7616 Digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuth {
    None,
    Basic { user: String, pass: String },
    Digest { user: String, pass: String },
}

impl HttpAuth {
    pub fn basic(user: &str, pass: &str) -> HttpAuth {
        HttpAuth::Basic {
            user: user.into(),
            pass: pass.into(),
        }
    }

    pub fn digest(user: &str, pass: &str) -> HttpAuth {
        HttpAuth::Digest {
            user: user.into(),
            pass: pass.into(),
        }
    }
}

type Timed = Arc<Mutex<Vec<(Instant, Request)>>>;

/// A [`TestServer`] that also records when each request arrived.
pub struct FileServer {
    pub server: TestServer,
    timed: Timed,
}

impl FileServer {
    /// Serves with `handler` (plain http when `tls` is `None`).
    pub fn start<H>(tls: Option<Arc<ServerConfig>>, handler: H) -> FileServer
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let timed: Timed = Arc::new(Mutex::new(Vec::new()));
        let t = timed.clone();
        let server = TestServer::start(tls, move |req| {
            if let Ok(mut v) = t.lock() {
                v.push((Instant::now(), req.clone()));
            }
            handler(req)
        });
        FileServer { server, timed }
    }

    /// GET `path` → 200 with `body` (after `auth`); any other path or method → 404.
    pub fn file(
        tls: Option<Arc<ServerConfig>>,
        path: &str,
        body: Vec<u8>,
        auth: HttpAuth,
    ) -> FileServer {
        let path = path.to_string();
        FileServer::start(tls, move |req| {
            if let Some(r) = challenge(req, &auth) {
                return r;
            }
            if req.method == "GET" && req.path == path {
                Response::new(200)
                    .header("Content-Type", "application/octet-stream")
                    .body(body.clone())
            } else {
                Response::new(404).body("not found")
            }
        })
    }

    /// PUT or POST to any path → `status` (after `auth`); anything else → 405.
    pub fn sink(tls: Option<Arc<ServerConfig>>, status: u16, auth: HttpAuth) -> FileServer {
        FileServer::start(tls, move |req| {
            if let Some(r) = challenge(req, &auth) {
                return r;
            }
            if req.method == "PUT" || req.method == "POST" {
                Response::new(status)
            } else {
                Response::new(405)
            }
        })
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.timed().into_iter().map(|(_, r)| r).collect()
    }

    /// Every request so far with the moment it arrived.
    pub fn timed(&self) -> Vec<(Instant, Request)> {
        self.timed.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// How many requests with `method` arrived.
    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

/// `None` when `req` satisfies `auth`; else the 401 with the challenge to send.
pub fn challenge(req: &Request, auth: &HttpAuth) -> Option<Response> {
    match auth {
        HttpAuth::None => None,
        HttpAuth::Basic { user, pass } => {
            let want = format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()));
            if req.header("authorization") == Some(want.as_str()) {
                None
            } else {
                Some(
                    Response::new(401)
                        .header("WWW-Authenticate", &format!("Basic realm=\"{REALM}\"")),
                )
            }
        }
        HttpAuth::Digest { user, pass } => {
            if digest_ok(req, user, pass) {
                None
            } else {
                Some(Response::new(401).header(
                    "WWW-Authenticate",
                    &format!(
                        "Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{}\", \
                         opaque=\"0p4qu3\", algorithm=MD5",
                        nonce()
                    ),
                ))
            }
        }
    }
}

/// A fresh nonce per challenge (unique within the process).
fn nonce() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:08x}{nanos:08x}", N.fetch_add(1, Ordering::SeqCst))
}

/// Whether `req` carries a correct RFC 7616 Digest (MD5, `qop=auth`) for `user`/`pass` in
/// [`REALM`] and the request's own method and path: computed here, not by `cwmpd::http::auth`.
pub fn digest_ok(req: &Request, user: &str, pass: &str) -> bool {
    let Some(h) = req.header("authorization") else {
        return false;
    };
    let Some(rest) = h
        .strip_prefix("Digest ")
        .or_else(|| h.strip_prefix("digest "))
    else {
        return false;
    };
    let p = auth_params(rest);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let alg_ok = matches!(get("algorithm"), "" | "MD5" | "md5");
    if !alg_ok
        || get("username") != user
        || get("realm") != REALM
        || get("uri") != req.path
        || get("qop") != "auth"
        || get("nc").is_empty()
        || get("cnonce").is_empty()
        || get("nonce").is_empty()
    {
        return false;
    }
    let want = digest_response(
        [user, REALM, pass],
        &req.method,
        &req.path,
        [get("nonce"), get("nc"), get("cnonce")],
    );
    get("response").eq_ignore_ascii_case(&want)
}

/// The RFC 7616 MD5 `qop=auth` response for `[user, realm, password]`, the request's method
/// and uri, and `[nonce, nc, cnonce]`, as lower-case hex.
pub fn digest_response(who: [&str; 3], method: &str, uri: &str, nonce: [&str; 3]) -> String {
    let [user, realm, pass] = who;
    let [nonce, nc, cnonce] = nonce;
    let ha1 = md5_hex(&format!("{user}:{realm}:{pass}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

/// The `name=value` / `name="value"` pairs of an auth header (names lower-cased).
fn auth_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().trim_start_matches(',').trim();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(name.to_ascii_lowercase(), value);
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Standard base64 with padding (RFC 4648 §4), for the Basic credentials.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------
// The CPE, its hooks.

/// A CPE (see [`Cpe::with_config`]) with `[datamodel] platform = "generic"`, a `[transfer]`
/// section (`transfer` lines plus the defaults of the keys they do not set) and `[hooks]` with
/// `hooks` (`{dir}` replaced by the CPE's directory).
pub fn transfer_cpe(
    tag: &str,
    acs_url: &str,
    ca_file: Option<&Path>,
    interval: u32,
    transfer: &str,
    hooks: &str,
) -> Cpe {
    let transfer = transfer.to_string();
    let hooks = hooks.to_string();
    Cpe::with_config(tag, acs_url, ca_file, interval, move |dir| {
        let d = dir.display().to_string();
        let mut t = String::new();
        let has = |key: &str| {
            transfer
                .lines()
                .any(|l| l.trim_start().split('=').next().map(str::trim) == Some(key))
        };
        let defaults = [
            ("dir", format!("{:?}", format!("{d}/transfer"))),
            ("timeout", "3".into()),
            ("retries", "0".into()),
            ("retry_interval", "1".into()),
        ];
        for (k, v) in defaults {
            if !has(k) {
                t.push_str(&format!("{k} = {v}\n"));
            }
        }
        t.push_str(&transfer);
        if !t.ends_with('\n') {
            t.push('\n');
        }
        let mut h = hooks.replace("{dir}", &d);
        if !h.is_empty() && !h.ends_with('\n') {
            h.push('\n');
        }
        format!(
            "\n[datamodel]\nplatform = \"generic\"\ndir = {:?}\n\n[transfer]\n{t}\n[hooks]\n{h}",
            format!("{d}/datamodel.d")
        )
    })
}

/// One run of a hook script, as it logged itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRun {
    pub args: Vec<String>,
    /// `CWMPD_FILE`, `CWMPD_TARGET`, `CWMPD_FILE_TYPE`, `CWMPD_INSTANCE`, `CWMPD_COMMAND_KEY`
    /// (each present, maybe empty), and `SIZE` when `$CWMPD_FILE` existed.
    pub env: BTreeMap<String, String>,
}

impl HookRun {
    /// An environment value, `""` when absent.
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Writes the executable `<dir>/<name>.sh`: it logs its run to `<dir>/<name>.log` (see
/// [`hook_runs`]), runs `body` (`{dir}` replaced) and exits `status`.
pub fn hook_script(cpe: &Cpe, name: &str, body: &str, status: i32) -> PathBuf {
    let dir = cpe.dir.path();
    let d = dir.display().to_string();
    let script = dir.join(format!("{name}.sh"));
    let log = dir.join(format!("{name}.log"));
    // One `key=value` line per argument and variable; `end` closes the record only after
    // everything was logged (values with a newline are not supported).
    let text = format!(
        "#!/bin/sh\n\
         {{\n\
         echo run\n\
         for a in \"$@\"; do printf 'arg=%s\\n' \"$a\"; done\n\
         printf 'env=CWMPD_FILE=%s\\n' \"${{CWMPD_FILE-}}\"\n\
         printf 'env=CWMPD_TARGET=%s\\n' \"${{CWMPD_TARGET-}}\"\n\
         printf 'env=CWMPD_FILE_TYPE=%s\\n' \"${{CWMPD_FILE_TYPE-}}\"\n\
         printf 'env=CWMPD_INSTANCE=%s\\n' \"${{CWMPD_INSTANCE-}}\"\n\
         printf 'env=CWMPD_COMMAND_KEY=%s\\n' \"${{CWMPD_COMMAND_KEY-}}\"\n\
         if [ -n \"${{CWMPD_FILE-}}\" ] && [ -f \"$CWMPD_FILE\" ]; then\n\
           printf 'env=SIZE=%s\\n' \"$(wc -c < \"$CWMPD_FILE\" | tr -d ' ')\"\n\
         fi\n\
         echo end\n\
         }} >> {log}\n\
         {body}\n\
         exit {status}\n",
        log = shell_quote(&log.display().to_string()),
        body = body.replace("{dir}", &d),
    );
    std::fs::write(&script, text).expect("write hook script");
    crate::tempdir::make_executable(&script);
    script
}

/// The runs `<dir>/<name>.sh` logged, in order (complete records only).
pub fn hook_runs(cpe: &Cpe, name: &str) -> Vec<HookRun> {
    let text =
        std::fs::read_to_string(cpe.dir.path().join(format!("{name}.log"))).unwrap_or_default();
    let mut runs = Vec::new();
    let mut cur: Option<HookRun> = None;
    for line in text.lines() {
        if line == "run" {
            cur = Some(HookRun::default());
        } else if line == "end" {
            if let Some(r) = cur.take() {
                runs.push(r);
            }
        } else if let Some(r) = cur.as_mut() {
            if let Some(a) = line.strip_prefix("arg=") {
                r.args.push(a.to_string());
            } else if let Some(kv) = line.strip_prefix("env=") {
                if let Some((k, v)) = kv.split_once('=') {
                    r.env.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    runs
}

/// `s` as one single-quoted shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

// ----------------------------------------------------------------------------------------------
// Requests and TransferComplete.

/// A Download with `key`, `file_type`, `url`, the rest empty or zero.
pub fn download(key: &str, file_type: &str, url: &str) -> Download {
    Download {
        command_key: key.into(),
        file_type: file_type.into(),
        url: url.into(),
        ..Download::default()
    }
}

/// An Upload with `key`, `file_type`, `url`, the rest empty or zero.
pub fn upload(key: &str, file_type: &str, url: &str) -> Upload {
    Upload {
        command_key: key.into(),
        file_type: file_type.into(),
        url: url.into(),
        ..Upload::default()
    }
}

/// One TransferComplete the ACS received (§A.3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc {
    /// The index of the session that carried it.
    pub session: usize,
    pub command_key: String,
    pub code: u32,
    pub string: String,
    pub start_time: String,
    pub complete_time: String,
}

/// Every TransferComplete in `sessions`, in order.
pub fn transfer_completes(sessions: &[SessionRecord]) -> Vec<Tc> {
    let mut out = Vec::new();
    for s in sessions {
        for (_, r) in &s.cpe_requests {
            if let CpeRequest::TransferComplete {
                command_key,
                fault,
                start_time,
                complete_time,
            } = r
            {
                out.push(Tc {
                    session: s.index,
                    command_key: command_key.clone(),
                    code: fault.code,
                    string: fault.string.clone(),
                    start_time: start_time.clone(),
                    complete_time: complete_time.clone(),
                });
            }
        }
    }
    out
}

/// Waits for a completed session carrying a TransferComplete for `key`; returns it and the
/// first such TransferComplete. `Err` with what was seen at the deadline.
pub fn wait_transfer_complete(
    acs: &Acs,
    key: &str,
    timeout: Duration,
) -> Result<(SessionRecord, Tc), String> {
    let has = |s: &[SessionRecord]| {
        s.iter().filter(|s| s.completed).any(|s| {
            transfer_completes(std::slice::from_ref(s))
                .iter()
                .any(|t| t.command_key == key)
        })
    };
    let all = acs
        .wait_for(timeout, has)
        .map_err(|e| format!("no TransferComplete for {key:?}: {e}"))?;
    for s in all.iter().filter(|s| s.completed) {
        if let Some(t) = transfer_completes(std::slice::from_ref(s))
            .into_iter()
            .find(|t| t.command_key == key)
        {
            return Ok((s.clone(), t));
        }
    }
    Err(format!("no TransferComplete for {key:?}"))
}

/// Asserts the Inform of `s` carries `7 TRANSFER COMPLETE` and `method` (`M Download`, `M
/// Upload`, `M ScheduleDownload`) with `key` (§3.7.1.5 Table 7).
pub fn assert_transfer_events(s: &SessionRecord, method: &str, key: &str) {
    assert!(
        s.has_event("7 TRANSFER COMPLETE"),
        "session {} events {:?}",
        s.index,
        s.inform.events
    );
    assert!(
        s.inform
            .events
            .iter()
            .any(|e| e.code == method && e.command_key == key),
        "session {}: no {method} with key {key:?} in {:?}",
        s.index,
        s.inform.events
    );
}

/// Asserts StartTime and CompleteTime are known times, StartTime <= CompleteTime and neither is
/// in the future (§A.3.3.2).
pub fn assert_times(tc: &Tc) {
    let start = parse_time(&tc.start_time);
    let end = parse_time(&tc.complete_time);
    let (Some(start), Some(end)) = (start, end) else {
        panic!("unparsable times in {tc:?}");
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // Year 2000 and later: the unknown time 0001-01-01 is refused.
    assert!(start > 946_684_800.0, "StartTime unknown: {tc:?}");
    assert!(end > 946_684_800.0, "CompleteTime unknown: {tc:?}");
    assert!(start <= end, "StartTime after CompleteTime: {tc:?}");
    assert!(end <= now + 2.0, "CompleteTime in the future: {tc:?}");
}

/// Waits until a session with index > `after` has completed, then asserts that every session
/// together carried exactly one TransferComplete for `key`.
pub fn assert_reported_once(
    acs: &Acs,
    key: &str,
    after: usize,
    timeout: Duration,
) -> Result<(), String> {
    let all = acs
        .wait_for(timeout, |s| {
            s.iter().any(|s| s.completed && s.index > after)
        })
        .map_err(|e| format!("no session after {after}: {e}"))?;
    let tcs: Vec<Tc> = transfer_completes(&all)
        .into_iter()
        .filter(|t| t.command_key == key)
        .collect();
    if tcs.len() == 1 {
        Ok(())
    } else {
        Err(format!(
            "{} TransferComplete for {key:?} (want exactly one): {tcs:#?}",
            tcs.len()
        ))
    }
}

/// An xsd:dateTime (`YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]`, no offset = UTC) as Unix seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o.get(1..)?.split_once(':')?;
        let oh: i64 = oh.parse().ok()?;
        let om: i64 = om.parse().ok()?;
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let mut c = clock.splitn(3, ':');
    let hh: i64 = c.next()?.parse().ok()?;
    let mm: i64 = c.next()?.parse().ok()?;
    let ss: f64 = c.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), H. Hinnant's algorithm.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 - offset) as f64 + ss)
}

// ----------------------------------------------------------------------------------------------
// GetRPCMethods (§A.3.1.1).

/// Listed by GetRPCMethods when any download hook is set (the agent offers a transfer RPC only
/// when it can carry it out).
pub const TRANSFER_RPCS: [&str; 5] = [
    "Download",
    "ScheduleDownload",
    "CancelTransfer",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
];

/// The method list of a GetRPCMethodsResponse as a set; asserts no name is listed twice.
pub fn rpc_methods(e: &Exchange) -> BTreeSet<String> {
    match &e.response {
        Ok(CpeResponse::GetRpcMethods { methods }) => {
            let set: BTreeSet<String> = methods.iter().cloned().collect();
            assert_eq!(set.len(), methods.len(), "duplicates in {methods:?}");
            set
        }
        r => panic!("GetRPCMethods answered {r:?}"),
    }
}

/// What GetRPCMethods must list: the methods the engine always serves
/// (`cwmpd::rpc::REQUIRED_METHODS`, the parameter RPCs every CPE offers) and `extra`.
pub fn expected_methods(extra: &[&str]) -> BTreeSet<String> {
    cwmpd::rpc::REQUIRED_METHODS
        .iter()
        .chain(extra)
        .map(|m| m.to_string())
        .collect()
}

/// Every `*.toml` of the store has a valid header, length, CRC and TOML body; no `*.corrupt`
/// exists. Returns the number of `*.tmp` files (the kill and power-cut tests check it after
/// every cut).
pub fn check_state_files(dir: &Path) -> Result<usize, String> {
    let mut tmp = 0;
    for name in list_dir(dir) {
        let path = dir.join(&name);
        if name.ends_with(".corrupt") {
            return Err(format!("{} exists", path.display()));
        }
        if name.ends_with(".tmp") {
            tmp += 1;
            continue;
        }
        if !name.ends_with(".toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: unreadable: {e}", path.display()))?;
        let (header, body) = text
            .split_once('\n')
            .ok_or_else(|| format!("{}: no header line", path.display()))?;
        let mut len = None;
        let mut crc = None;
        for f in header.split_whitespace() {
            if let Some(v) = f.strip_prefix("len=") {
                len = v.parse::<usize>().ok();
            } else if let Some(v) = f.strip_prefix("crc=") {
                crc = u32::from_str_radix(v, 16).ok();
            }
        }
        if !header.starts_with("# cwmpd-store v1")
            || len != Some(body.len())
            || crc != Some(cwmpd::sys::store::crc32(body.as_bytes()))
        {
            return Err(format!(
                "{}: torn or corrupt (header {header:?}, body {} bytes)",
                path.display(),
                body.len()
            ));
        }
        toml::from_str::<toml::Table>(body)
            .map_err(|e| format!("{}: not TOML: {e}", path.display()))?;
    }
    Ok(tmp)
}

pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A session's Inform events, CPE requests (a TransferComplete with its key and fault code) and
/// ACS requests (with the fault code or error that answered each), for failure reports.
pub fn session_calls(s: &SessionRecord) -> (Vec<String>, Vec<String>, Vec<String>) {
    let events: Vec<String> = s.inform.events.iter().map(|e| e.to_string()).collect();
    let reqs: Vec<String> = s
        .cpe_requests
        .iter()
        .map(|(_, r)| match r {
            CpeRequest::TransferComplete {
                command_key, fault, ..
            } => format!("TransferComplete({command_key}, {})", fault.code),
            r => r.method().to_string(),
        })
        .collect();
    let calls: Vec<String> = s
        .exchanges
        .iter()
        .map(|e| match (&e.call, &e.response) {
            (c, Ok(CpeResponse::Fault(f))) => format!("{} -> {}", c.method(), f.code()),
            (c, Ok(_)) => c.method().to_string(),
            (c, Err(e)) => format!("{} -> {e}", c.method()),
        })
        .collect();
    (events, reqs, calls)
}

/// The last `lines` lines of each of the last `files` logs in `paths`, oldest first, each under
/// a `--- <path>` line: the daemon logs a failing kill or power-cut test prints.
pub fn log_tails(paths: &[PathBuf], files: usize, lines: usize) -> Vec<String> {
    paths
        .iter()
        .rev()
        .take(files)
        .rev()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            format!("--- {}\n{}", p.display(), all[from..].join("\n"))
        })
        .collect()
}

/// The number in the environment variable `var` (a long run's size), else `default`.
pub fn number_from_env<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One line per session: index, completed, events, CPE requests, ACS requests.
pub fn summary(sessions: &[SessionRecord]) -> String {
    let base = sessions.first().map(|s| s.started);
    sessions
        .iter()
        .map(|s| {
            let (events, reqs, calls) = session_calls(s);
            format!(
                "  #{} +{:.2}s {} events {:?} cpe {:?} acs {:?}{}",
                s.index,
                base.map_or(0.0, |b| s.started.duration_since(b).as_secs_f64()),
                if s.completed { "completed" } else { "cut" },
                events,
                reqs,
                calls,
                if s.errors.is_empty() {
                    String::new()
                } else {
                    format!(" errors {:?}", s.errors)
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_times() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), Some(10.0));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_time("2000-01-01T00:00:00Z"), Some(946_684_800.0));
        assert_eq!(
            parse_time("0001-01-01T00:00:00Z").map(|t| t < 0.0),
            Some(true)
        );
        assert_eq!(parse_time("2024-02-30"), None);
    }

    #[test]
    fn digest_matches_rfc_2617_example() {
        // RFC 2617 §3.5.
        let r = digest_response(
            ["Mufasa", "testrealm@host.com", "Circle Of Life"],
            "GET",
            "/dir/index.html",
            ["dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b"],
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let p = auth_params(
            "username=\"Mufasa\", realm=\"a, b\", nc=00000001, qop=auth, uri=\"/x?y=1\"",
        );
        assert_eq!(p.get("realm").map(String::as_str), Some("a, b"));
        assert_eq!(p.get("nc").map(String::as_str), Some("00000001"));
        assert_eq!(p.get("uri").map(String::as_str), Some("/x?y=1"));
        assert_eq!(p.get("qop").map(String::as_str), Some("auth"));
    }
}
