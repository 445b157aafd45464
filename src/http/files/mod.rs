//! The HTTP(S) client of file transfers (TR-069 §3.4.3): it fetches the file of a Download
//! (§A.3.2.8) from a file server into a local file and sends the file of an Upload (§A.3.2.9)
//! with PUT or POST, and says why it failed as a TransferComplete fault code (§A.3.2.8 and
//! §A.5.1 fault table, 9010–9019).
//!
//! - http and https only (§3.4.3 makes HTTP/HTTPS the mandatory transport); https uses the same
//!   TLS settings as the ACS connection ([`TlsSettings`]: ring, the configured CA bundle, the
//!   client certificate).
//! - The first request carries no credentials; a 401 is answered once with Digest (RFC 7616:
//!   MD5, SHA-256 and their -sess forms, qop=auth) when offered, else Basic (§3.4.3 requires
//!   both), with the Download's Username/Password or, when Username is empty, the URL's
//!   user information.
//! - Basic sends the password in clear text: over plain http it is answered only when
//!   [`ClientConfig::allow_basic_over_http`] says so (Digest always is).
//! - Redirects (301/302/303/307/308) are followed up to [`MAX_REDIRECTS`] times, never from
//!   https to http, and credentials are only ever sent to the origin of the given URL.
//! - A download streams to disk in chunks of at most [`CHUNK`] bytes and is fsync'd: a firmware
//!   image never sits in RAM. The ACS's FileSize bounds what is read.
//! - An upload streams the file with `Content-Length` and `Expect: 100-continue`, so a server
//!   that wants credentials answers before the body is sent.
//!
//! Every network wait is bounded by [`ClientConfig::timeout`]; messages are one line, name the
//! URL without its user information and never contain a password.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cwmp::fault::{TransferFailure, TransferFault};
use crate::http::acs::{self, Target};
use crate::http::tls::TlsSettings;
use crate::http::url::redact;

mod job;

use crate::sys::process;
use job::{drain, Job, Op};

/// Redirects followed for one transfer (TR-069 §3.4.5 asks for at least 5).
pub const MAX_REDIRECTS: u32 = acs::MAX_REDIRECTS;
/// Largest piece of a download held in memory and written at once.
pub const CHUNK: usize = 64 * 1024;
/// Most of an error response's body read (to keep the connection for the next request).
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// How long a server may take to answer `Expect: 100-continue` before the body is sent anyway
/// (RFC 9110 §10.1.1; curl waits as long).
const AWAIT_100: Duration = Duration::from_secs(1);
/// Limit for `df`.
const DF_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest piece of text from the server or the OS quoted in a message.
const MAX_QUOTED: usize = 160;

/// How to talk to file servers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The ACS connection's CA bundle and client certificate (TR-069 §3.3), used for https
    /// file servers too.
    pub tls: TlsSettings,
    /// Limit for resolving plus connecting plus the TLS handshake, and for each later wait
    /// (one read or one write). Default 30 s; zero means the default.
    pub timeout: Duration,
    /// The `User-Agent` header (printable ASCII; anything else is replaced by the default).
    /// Default `cwmpd/<version>`.
    pub user_agent: String,
    /// Most bytes a download without a FileSize may bring (the room left in the transfer
    /// directory, which is RAM on a router); beyond it, 9010. `None`: no limit.
    pub max_download: Option<u64>,
    /// Answer a Basic challenge over plain http (the password in clear text). Default false:
    /// over http only Digest is answered (`[acs] allow_basic_over_http`).
    pub allow_basic_over_http: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            tls: TlsSettings::default(),
            timeout: acs::DEFAULT_TIMEOUT,
            user_agent: default_user_agent(),
            max_download: None,
            allow_basic_over_http: false,
        }
    }
}

/// A failure of the file client: `retryable` when trying again later may succeed.
pub(super) fn failure(fault: TransferFault, retryable: bool, message: String) -> TransferFailure {
    TransferFailure {
        retryable,
        ..TransferFailure::new(fault, message)
    }
}

/// The HTTP method of an upload (§A.3.2.9 leaves it to the CPE; PUT is what servers expect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMethod {
    Put,
    Post,
}

impl UploadMethod {
    fn as_str(self) -> &'static str {
        match self {
            UploadMethod::Put => "PUT",
            UploadMethod::Post => "POST",
        }
    }
}

/// GETs `url` into `file`, a new empty file the caller created (written in chunks of at most
/// [`CHUNK`] bytes and fsync'd at the end; never the whole body in RAM); `dest` is its path, for
/// messages. `expected_size` is the ACS's FileSize when non-zero: a body announcing or
/// delivering another size is "corrupted" (9018) and no more than `expected_size + 1` bytes are
/// read. Returns the bytes written.
///
/// The file is left as it is on failure (the caller owns it).
pub fn download_to(
    cfg: &ClientConfig,
    url: &str,
    username: &str,
    password: &str,
    file: File,
    dest: &Path,
    expected_size: Option<u64>,
) -> Result<u64, TransferFailure> {
    let job = Job::new(cfg, url, username, password, Direction::Download)?;
    let expected = expected_size.filter(|n| *n > 0);
    let (target, resp) = job.exchange(Op::Download)?;
    let announced = resp.body().content_length();
    if let (Some(want), Some(got)) = (expected, announced) {
        if want != got {
            return Err(failure(
                TransferFault::Corrupted,
                false,
                format!(
                    "{} announces {got} bytes but the FileSize is {want}",
                    shown(&target)
                ),
            ));
        }
    }
    // Without a FileSize the room left is the limit (a body that never ends must not fill the
    // RAM disk).
    let cap = if expected.is_none() {
        cfg.max_download
    } else {
        None
    };
    if let (Some(cap), Some(got)) = (cap, announced) {
        if got > cap {
            return Err(failure(
                TransferFault::Download,
                false,
                format!(
                    "{} announces {got} bytes; only {cap} may be stored",
                    shown(&target)
                ),
            ));
        }
    }
    log::info!(
        "downloading {} ({} bytes) to {}",
        shown(&target),
        announced.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        dest.display()
    );
    let local = |e: io::Error| {
        failure(
            TransferFault::Download,
            false,
            format!(
                "cannot write {}: {}",
                dest.display(),
                quoted(&e.to_string())
            ),
        )
    };
    let mut file = file;
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        // With a FileSize, one byte more than announced is enough to call the file corrupted.
        let room = match expected.or(cap) {
            Some(want) => want
                .saturating_add(1)
                .saturating_sub(total)
                .min(CHUNK as u64),
            None => CHUNK as u64,
        };
        let n = match Read::by_ref(&mut body).take(room).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let e = ureq::Error::from(e);
                let of = announced.map_or_else(String::new, |n| format!(" of {n}"));
                return Err(failure(
                    TransferFault::Incomplete,
                    true,
                    format!(
                        "the download of {} broke off after {total}{of} bytes: {}",
                        shown(&target),
                        quoted(&e.to_string())
                    ),
                ));
            }
        };
        let Some(chunk) = buf.get(..n) else {
            return Err(failure(
                TransferFault::Incomplete,
                true,
                format!(
                    "the download of {} returned an impossible read",
                    shown(&target)
                ),
            ));
        };
        file.write_all(chunk).map_err(local)?;
        total += n as u64;
        if let Some(cap) = cap {
            if total > cap {
                return Err(failure(
                    TransferFault::Download,
                    false,
                    format!(
                        "{} sends more than the {cap} bytes that may be stored",
                        shown(&target)
                    ),
                ));
            }
        }
        if let Some(want) = expected {
            if total > want {
                return Err(failure(
                    TransferFault::Corrupted,
                    false,
                    format!(
                        "{} sends more than the FileSize of {want} bytes",
                        shown(&target)
                    ),
                ));
            }
        }
    }
    if let Some(want) = expected {
        if total != want {
            return Err(failure(
                TransferFault::Corrupted,
                false,
                format!(
                    "{} delivered {total} bytes but the FileSize is {want}",
                    shown(&target)
                ),
            ));
        }
    }
    file.sync_all().map_err(local)?;
    log::info!("downloaded {total} bytes from {}", shown(&target));
    Ok(total)
}

/// Sends the file `src` to `url` with PUT or POST (`Content-Length` = its size, streamed from
/// the file; re-opened when a 401 or a redirect makes it go again). Any 2xx is success, as is a
/// 303 (RFC 9110 §15.4.4: the server processed the request and points elsewhere).
pub fn upload(
    cfg: &ClientConfig,
    url: &str,
    username: &str,
    password: &str,
    method: UploadMethod,
    src: &Path,
) -> Result<(), TransferFailure> {
    let job = Job::new(cfg, url, username, password, Direction::Upload)?;
    let (target, resp) = job.exchange(Op::Upload { method, src })?;
    log::info!(
        "uploaded {} with {} to {} ({})",
        src.display(),
        method.as_str(),
        shown(&target),
        resp.status().as_u16()
    );
    drain(resp);
    Ok(())
}

/// Free bytes for an unprivileged writer in `dir` (checked against FileSize before a download,
/// §A.3.2.8), from `df -Pk DIR` (the POSIX format, which busybox and GNU df both print);
/// `None` when unknown (no `df`, no such directory, output not understood).
pub fn free_space(dir: &Path) -> Option<u64> {
    let out = process::run(
        Command::new("df").arg("-Pk").arg("--").arg(dir),
        b"",
        DF_TIMEOUT,
        64 * 1024,
    );
    match out {
        Ok(o) if o.status.success() => parse_df(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            log::debug!("df {}: {}", dir.display(), o.stderr_line());
            None
        }
        Err(e) => {
            log::debug!("df {}: {e}", dir.display());
            None
        }
    }
}

/// The `Available` column (1024-byte blocks) of `df -P -k` output, in bytes: the field before
/// the first `NN%` (Capacity), which stays right when the file system name has spaces.
fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().skip(1).find(|l| !l.trim().is_empty())?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let capacity = fields
        .iter()
        .enumerate()
        .skip(4)
        .find(|(_, f)| f.ends_with('%'))
        .map(|(i, _)| i)?;
    let avail: u64 = fields.get(capacity.checked_sub(1)?)?.parse().ok()?;
    avail.checked_mul(1024)
}

/// Which transfer a request serves: it decides the fault codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Download,
    Upload,
}

impl Direction {
    /// The fault of a failure without a more specific code.
    fn generic(self) -> TransferFault {
        match self {
            Direction::Download => TransferFault::Download,
            Direction::Upload => TransferFault::Upload,
        }
    }

    /// The fault of an answer refusing the file (9016 exists for downloads only).
    fn refused(self) -> TransferFault {
        match self {
            Direction::Download => TransferFault::CannotAccess,
            Direction::Upload => TransferFault::Upload,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
        }
    }
}

/// `target`'s URL as messages and log lines show it, without its query ([`redact`]: a signed
/// URL's signature is a credential).
fn shown(target: &Target) -> String {
    redact(&target.url)
}

fn default_user_agent() -> String {
    format!("cwmpd/{}", env!("CARGO_PKG_VERSION"))
}

/// Text from the server or the OS made fit for a one-line message: control characters become
/// spaces, and it is cut at [`MAX_QUOTED`] characters.
fn quoted(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_QUOTED)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(MAX_QUOTED).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;

    use md5::{Digest as _, Md5};

    use super::job::split_url;
    use crate::http::auth;
    use crate::http::url::percent_decode;
    use std::path::PathBuf;

    #[test]
    fn a_failure_carries_its_transfer_fault() {
        let f = failure(TransferFault::Corrupted, false, "x".into());
        assert_eq!((f.code, f.fault()), (9018, Some(TransferFault::Corrupted)));
        assert_eq!(f.to_string(), "x (9018)");
        assert_eq!(Direction::Download.refused(), TransferFault::CannotAccess);
        assert_eq!(Direction::Upload.refused(), TransferFault::Upload);
        assert_eq!(Direction::Upload.generic().code(), 9011);
    }

    /// [`download_to`] a file created (or truncated) at `dest` (left as it is on failure).
    fn download(
        cfg: &ClientConfig,
        url: &str,
        username: &str,
        password: &str,
        dest: &Path,
        expected_size: Option<u64>,
    ) -> Result<u64, TransferFailure> {
        let file = File::create(dest).map_err(|e| {
            failure(
                TransferFault::Download,
                false,
                format!("cannot write {}: {e}", dest.display()),
            )
        })?;
        download_to(cfg, url, username, password, file, dest, expected_size)
    }

    /// One request as the test server saw it.
    #[derive(Debug, Clone, Default)]
    struct Req {
        method: String,
        path: String,
        /// Names lower-cased.
        headers: Vec<(String, String)>,
        /// `None` while the client waits for `100 Continue`.
        body: Option<Vec<u8>>,
    }

    impl Req {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    enum Reply {
        /// A complete response with `Content-Length`; the connection stays open.
        Full(u16, Vec<(String, String)>, Vec<u8>),
        /// These bytes, then the connection is closed.
        Raw(Vec<u8>),
        /// These bytes, then silence for that long, then close.
        Stall(Vec<u8>, Duration),
        /// To a request whose body is pending: `100 Continue`, then read the body.
        Continue,
    }

    fn full(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        Reply::Full(
            status,
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body.to_vec(),
        )
    }

    type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

    /// A tiny threaded HTTP/1.1 server (plain or rustls) recording every request.
    struct Server {
        port: u16,
        https: bool,
        log: Arc<Mutex<Vec<Req>>>,
    }

    impl Server {
        fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
            Server::spawn(None, true, Arc::new(handler))
        }

        /// A server that ignores `Expect: 100-continue` (the client must send the body anyway).
        fn start_without_100(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
            Server::spawn(None, false, Arc::new(handler))
        }

        fn start_tls(
            tls: Arc<rustls::ServerConfig>,
            handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
        ) -> Server {
            Server::spawn(Some(tls), true, Arc::new(handler))
        }

        fn spawn(tls: Option<Arc<rustls::ServerConfig>>, honour_100: bool, h: Handler) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let log = Arc::new(Mutex::new(Vec::new()));
            let https = tls.is_some();
            let log2 = log.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let (h, log, tls) = (h.clone(), log2.clone(), tls.clone());
                    thread::spawn(move || match tls {
                        None => serve(stream, &h, &log, honour_100),
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), &h, &log, honour_100)
                        }
                    });
                }
            });
            Server { port, https, log }
        }

        fn url(&self, path: &str) -> String {
            let scheme = if self.https { "https" } else { "http" };
            format!("{scheme}://127.0.0.1:{}{path}", self.port)
        }

        fn requests(&self) -> Vec<Req> {
            self.log.lock().unwrap().clone()
        }
    }

    fn serve<S: Read + Write>(stream: S, h: &Handler, log: &Mutex<Vec<Req>>, honour_100: bool) {
        let mut s = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split_whitespace();
            let mut req = Req {
                method: parts.next().unwrap_or("").to_owned(),
                path: parts.next().unwrap_or("").to_owned(),
                ..Req::default()
            };
            loop {
                let mut l = String::new();
                if s.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                let l = l.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((n, v)) = l.split_once(':') {
                    req.headers
                        .push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if honour_100 && req.header("expect") == Some("100-continue") {
                match h(&req) {
                    Reply::Continue => {
                        let _ = s.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                        let _ = s.get_mut().flush();
                    }
                    other => {
                        log.lock().unwrap().push(req);
                        respond(s.get_mut(), other);
                        return;
                    }
                }
            }
            let mut body = vec![0u8; len];
            if s.read_exact(&mut body).is_err() {
                return;
            }
            req.body = Some(body);
            let reply = h(&req);
            log.lock().unwrap().push(req);
            if !respond(s.get_mut(), reply) {
                return;
            }
        }
    }

    /// Writes a reply; false when the connection must close.
    fn respond<S: Write>(s: &mut S, reply: Reply) -> bool {
        match reply {
            Reply::Full(status, headers, body) => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (n, v) in headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let ok = s.write_all(head.as_bytes()).is_ok() && s.write_all(&body).is_ok();
                ok && s.flush().is_ok()
            }
            Reply::Raw(bytes) => {
                let _ = s.write_all(&bytes);
                let _ = s.flush();
                false
            }
            Reply::Stall(bytes, d) => {
                let _ = s.write_all(&bytes);
                let _ = s.flush();
                thread::sleep(d);
                false
            }
            Reply::Continue => {
                let _ = s.write_all(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n");
                false
            }
        }
    }

    /// A private temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "cwmpd-client-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_download_without_file_size_stops_at_the_room_left() {
        let srv = Server::start(|_req: &Req| full(200, &[], &pattern(300_000)));
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        let small = ClientConfig {
            max_download: Some(100_000),
            ..cfg()
        };
        let f = assert_fails(
            download(&small, &srv.url("/f"), "", "", &dest, None),
            9010,
            false,
        );
        assert!(f.message.contains("100000"), "{f:?}");
        let roomy = ClientConfig {
            max_download: Some(300_000),
            ..cfg()
        };
        assert_eq!(
            download(&roomy, &srv.url("/f"), "", "", &dest, None).unwrap(),
            300_000
        );
    }

    fn cfg() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        }
    }

    /// Not-so-random bytes that are not all alike (catches reordered or repeated chunks).
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
    }

    fn md5_hex(s: &str) -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    const CHALLENGE: &str =
        "Digest realm=\"files\", qop=\"auth\", nonce=\"n0nce42\", opaque=\"op\"";

    /// Whether `authorization` is a right Digest answer (RFC 7616 §3.4.1, MD5, qop=auth),
    /// computed here independently of `crate::http::auth`.
    fn digest_ok(req: &Req, user: &str, pass: &str) -> bool {
        let Some(a) = req.header("authorization") else {
            return false;
        };
        let Ok(c) = auth::parse_credentials(a) else {
            return false;
        };
        let p = |n: &str| c.param(n).unwrap_or("").to_owned();
        if !c.is_scheme("Digest")
            || p("username") != user
            || p("realm") != "files"
            || p("nonce") != "n0nce42"
            || p("uri") != req.path
            || p("qop") != "auth"
            || p("opaque") != "op"
        {
            return false;
        }
        let ha1 = md5_hex(&format!("{user}:files:{pass}"));
        let ha2 = md5_hex(&format!("{}:{}", req.method, req.path));
        let want = md5_hex(&format!(
            "{ha1}:n0nce42:{}:{}:auth:{ha2}",
            p("nc"),
            p("cnonce")
        ));
        p("response") == want
    }

    fn assert_fails(
        r: Result<impl fmt::Debug, TransferFailure>,
        code: u32,
        retryable: bool,
    ) -> TransferFailure {
        match r {
            Err(f) => {
                assert_eq!((f.code, f.retryable), (code, retryable), "{f:?}");
                assert!(!f.message.contains('\n'), "{f:?}");
                assert!(!f.message.contains("hunter2"), "{f:?}");
                f
            }
            Ok(v) => panic!("expected fault {code}, got {v:?}"),
        }
    }

    #[test]
    fn download_200_streams_the_exact_body_to_the_file() {
        let data = pattern(300_000);
        let d2 = data.clone();
        let srv = Server::start(move |_| full(200, &[], &d2));
        let tmp = TempDir::new();
        let dest = tmp.path("fw.part");
        std::fs::write(&dest, b"old content that is longer than nothing").unwrap();
        let n = download(&cfg(), &srv.url("/fw.bin"), "", "", &dest, None).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("GET", "/fw.bin")
        );
        assert!(reqs[0].header("authorization").is_none());
        assert!(reqs[0].header("user-agent").unwrap().starts_with("cwmpd/"));
        // The same with the right FileSize.
        let n = download(&cfg(), &srv.url("/fw.bin"), "", "", &dest, Some(n)).unwrap();
        assert_eq!(n, data.len() as u64);
    }

    #[test]
    fn error_statuses_map_to_9016() {
        let srv = Server::start(|r| {
            let status = r.path.trim_start_matches('/').parse().unwrap_or(500);
            full(status, &[], b"no such file")
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        for (status, retryable) in [(404, false), (403, false), (410, false), (400, false)] {
            let url = srv.url(&format!("/{status}"));
            let f = assert_fails(download(&cfg(), &url, "", "", &dest, None), 9016, retryable);
            assert!(f.message.contains(&url), "{f:?}");
            assert!(f.message.contains(&status.to_string()), "{f:?}");
        }
        for status in [500, 503] {
            let url = srv.url(&format!("/{status}"));
            assert_fails(download(&cfg(), &url, "", "", &dest, None), 9016, true);
        }
        // A status that is no redirect we follow and no success.
        assert_fails(
            download(&cfg(), &srv.url("/300"), "", "", &dest, None),
            9016,
            false,
        );
    }

    #[test]
    fn unauthorized_without_username_is_9012_after_one_request() {
        let srv = Server::start(|_| full(401, &[("WWW-Authenticate", CHALLENGE)], b""));
        let tmp = TempDir::new();
        let f = assert_fails(
            download(&cfg(), &srv.url("/f"), "", "", &tmp.path("f"), None),
            9012,
            false,
        );
        assert!(f.message.contains("no Username"), "{f:?}");
        assert_eq!(srv.requests().len(), 1);
    }

    #[test]
    fn digest_challenge_is_answered_and_a_wrong_password_is_9012() {
        let srv = Server::start(|r| {
            if digest_ok(r, "cpe", "s3cret") {
                full(200, &[], b"firmware")
            } else {
                full(401, &[("WWW-Authenticate", CHALLENGE)], b"denied")
            }
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        let n = download(
            &cfg(),
            &srv.url("/img?v=2"),
            "cpe",
            "s3cret",
            &dest,
            Some(8),
        )
        .unwrap();
        assert_eq!(n, 8);
        assert_eq!(std::fs::read(&dest).unwrap(), b"firmware");
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].header("authorization").is_none());
        let a = auth::parse_credentials(reqs[1].header("authorization").unwrap()).unwrap();
        assert_eq!(a.param("nc"), Some("00000001"));
        assert_eq!(a.param("uri"), Some("/img?v=2"));

        let f = assert_fails(
            download(&cfg(), &srv.url("/img"), "cpe", "hunter2", &dest, None),
            9012,
            false,
        );
        assert!(f.message.contains("rejected"), "{f:?}");
        // One unauthenticated request and one answer, no more.
        assert_eq!(srv.requests().len(), 4);
    }

    #[test]
    fn a_bare_401_to_credentials_says_they_were_refused() {
        // GenieACS's file server and others answer wrong credentials with no new challenge.
        let srv = Server::start(|r| {
            if r.header("authorization").is_some() {
                full(401, &[], b"")
            } else {
                full(401, &[("WWW-Authenticate", CHALLENGE)], b"")
            }
        });
        let tmp = TempDir::new();
        let f = assert_fails(
            download(
                &cfg(),
                &srv.url("/f"),
                "cpe",
                "hunter2",
                &tmp.path("f"),
                None,
            ),
            9012,
            false,
        );
        assert!(f.message.contains("refused the credentials"), "{f:?}");
        assert_eq!(srv.requests().len(), 2);
        // Without credentials sent, a bare 401 is what it is.
        let bare = Server::start(|_| full(401, &[], b""));
        let f = assert_fails(
            download(
                &cfg(),
                &bare.url("/f"),
                "cpe",
                "hunter2",
                &tmp.path("f"),
                None,
            ),
            9012,
            false,
        );
        assert!(f.message.contains("without a usable"), "{f:?}");
    }

    #[test]
    fn basic_with_credentials_from_the_url_and_rejection() {
        let srv = Server::start(|r| {
            let ok = r
                .header("authorization")
                .and_then(|a| auth::basic_credentials(a).ok())
                == Some(("alice".to_owned(), "p@ss:word".to_owned()));
            if ok {
                full(200, &[], b"web")
            } else {
                full(401, &[("WWW-Authenticate", "Basic realm=\"x\"")], b"")
            }
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        let url = format!("http://alice:p%40ss%3Aword@127.0.0.1:{}/w", srv.port);
        // Over plain http the password would travel in clear text: refused by default, and
        // nothing but the unauthenticated request went out.
        let f = assert_fails(download(&cfg(), &url, "", "", &dest, None), 9012, false);
        assert!(f.message.contains("allow_basic_over_http"), "{f:?}");
        assert_eq!(srv.requests().len(), 1);
        assert!(srv.requests()[0].header("authorization").is_none());
        let opted_in = ClientConfig {
            allow_basic_over_http: true,
            ..cfg()
        };
        assert_eq!(download(&opted_in, &url, "", "", &dest, None).unwrap(), 3);
        // Given credentials win over the URL's; they are wrong here.
        let url = format!("http://alice:hunter2@127.0.0.1:{}/w", srv.port);
        let f = assert_fails(
            download(&opted_in, &url, "bob", "hunter2", &dest, None),
            9012,
            false,
        );
        assert!(f.message.contains(&srv.url("/w")), "{f:?}");
        assert!(!f.message.contains("alice"), "{f:?}");
    }

    #[test]
    fn truncated_body_and_read_timeout_are_9017() {
        let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        raw.extend_from_slice(&pattern(500));
        let (r1, r2) = (raw.clone(), raw);
        let srv = Server::start(move |r| {
            if r.path == "/cut" {
                Reply::Raw(r1.clone())
            } else {
                Reply::Stall(r2.clone(), Duration::from_secs(3))
            }
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        let f = assert_fails(
            download(&cfg(), &srv.url("/cut"), "", "", &dest, None),
            9017,
            true,
        );
        assert!(f.message.contains("500 of 1000"), "{f:?}");
        let quick = ClientConfig {
            timeout: Duration::from_millis(700),
            ..cfg()
        };
        let started = std::time::Instant::now();
        assert_fails(
            download(&quick, &srv.url("/stall"), "", "", &dest, None),
            9017,
            true,
        );
        assert!(started.elapsed() < Duration::from_millis(2900));
    }

    #[test]
    fn size_other_than_file_size_is_9018() {
        let srv = Server::start(|r| {
            let n: usize = r.path.trim_start_matches("/close/").parse().unwrap_or(0);
            if r.path.starts_with("/close/") {
                // No Content-Length: the body ends when the connection closes.
                let mut raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
                raw.extend_from_slice(&pattern(n));
                Reply::Raw(raw)
            } else {
                full(200, &[], &pattern(100))
            }
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        for want in [99, 101] {
            let f = assert_fails(
                download(&cfg(), &srv.url("/f"), "", "", &dest, Some(want)),
                9018,
                false,
            );
            assert!(f.message.contains(&want.to_string()), "{f:?}");
        }
        // Zero means "not given".
        assert_eq!(
            download(&cfg(), &srv.url("/f"), "", "", &dest, Some(0)).unwrap(),
            100
        );
        // Longer than announced: reading stops one byte past the FileSize.
        assert_fails(
            download(&cfg(), &srv.url("/close/300000"), "", "", &dest, Some(1000)),
            9018,
            false,
        );
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 1001);
        assert_fails(
            download(&cfg(), &srv.url("/close/500"), "", "", &dest, Some(1000)),
            9018,
            false,
        );
        assert_eq!(
            download(&cfg(), &srv.url("/close/1000"), "", "", &dest, Some(1000)).unwrap(),
            1000
        );
        assert_eq!(std::fs::read(&dest).unwrap(), pattern(1000));
    }

    #[test]
    fn connection_refused_is_9015_retryable() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let tmp = TempDir::new();
        let url = format!("http://127.0.0.1:{port}/f");
        let f = assert_fails(
            download(&cfg(), &url, "", "", &tmp.path("f"), None),
            9015,
            true,
        );
        assert!(f.message.contains(&url), "{f:?}");
        let src = tmp.path("up");
        std::fs::write(&src, b"x").unwrap();
        assert_fails(
            upload(&cfg(), &url, "", "", UploadMethod::Put, &src),
            9015,
            true,
        );
    }

    #[test]
    fn other_schemes_and_garbage_are_9013() {
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        for url in [
            "ftp://user:hunter2@files.example/fw.bin",
            "tftp://10.0.0.1/fw.bin",
            "file:///etc/passwd",
            "garbage",
            "user:hunter2@host/fw",
            "",
            "http://",
            "https://bad host/x",
        ] {
            let f = assert_fails(download(&cfg(), url, "", "", &dest, None), 9013, false);
            assert!(!f.message.contains("user"), "{f:?}");
        }
        let src = tmp.path("up");
        std::fs::write(&src, b"x").unwrap();
        assert_fails(
            upload(&cfg(), "ftp://h/x", "", "", UploadMethod::Put, &src),
            9013,
            false,
        );
        // Nothing was fetched into the file the caller made.
        assert_eq!(std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0), 0);
    }

    #[test]
    fn local_write_errors_are_9010() {
        let srv = Server::start(|_| full(200, &[], &pattern(1000)));
        let tmp = TempDir::new();
        assert_fails(
            download(
                &cfg(),
                &srv.url("/f"),
                "",
                "",
                &tmp.path("no/such/dir"),
                None,
            ),
            9010,
            false,
        );
        // /dev/full fails every write with ENOSPC, as a full flash would.
        let full_dev = Path::new("/dev/full");
        if full_dev.exists() {
            assert_fails(
                download(&cfg(), &srv.url("/f"), "", "", full_dev, None),
                9010,
                false,
            );
        }
    }

    #[test]
    fn put_upload_arrives_intact_after_a_digest_challenge_before_the_body() {
        let data = pattern(200_000);
        let srv = Server::start(|r| {
            if r.body.is_none() {
                // Asked for `100 Continue`: refuse early when the credentials are missing.
                if digest_ok(r, "cpe", "pw") {
                    Reply::Continue
                } else {
                    full(401, &[("WWW-Authenticate", CHALLENGE)], b"")
                }
            } else if digest_ok(r, "cpe", "pw") {
                full(201, &[], b"")
            } else {
                full(401, &[("WWW-Authenticate", CHALLENGE)], b"")
            }
        });
        let tmp = TempDir::new();
        let src = tmp.path("backup.tar.gz");
        std::fs::write(&src, &data).unwrap();
        upload(
            &cfg(),
            &srv.url("/up/cfg"),
            "cpe",
            "pw",
            UploadMethod::Put,
            &src,
        )
        .unwrap();
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert!(reqs[0].header("authorization").is_none());
        assert!(
            reqs[0].body.is_none(),
            "the body was sent before the challenge"
        );
        assert_eq!(reqs[1].method, "PUT");
        assert_eq!(reqs[1].header("content-length"), Some("200000"));
        assert!(reqs[1].header("transfer-encoding").is_none());
        assert_eq!(reqs[1].body.as_deref(), Some(&data[..]));
        // A wrong password: 9012.
        assert_fails(
            upload(
                &cfg(),
                &srv.url("/up/cfg"),
                "cpe",
                "hunter2",
                UploadMethod::Put,
                &src,
            ),
            9012,
            false,
        );
    }

    #[test]
    fn post_upload_to_a_server_ignoring_expect() {
        let srv = Server::start_without_100(|r| match r.path.as_str() {
            "/ok" => full(200, &[], b""),
            "/busy" => full(500, &[], b"try later"),
            _ => full(403, &[], b""),
        });
        let tmp = TempDir::new();
        let src = tmp.path("log");
        let data = b"Jan  1 00:00:00 kernel: hello\n".repeat(100);
        std::fs::write(&src, &data).unwrap();
        upload(&cfg(), &srv.url("/ok"), "", "", UploadMethod::Post, &src).unwrap();
        let reqs = srv.requests();
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(
            reqs[0].header("content-length"),
            Some(&*data.len().to_string())
        );
        assert_eq!(reqs[0].body.as_deref(), Some(&data[..]));
        let f = assert_fails(
            upload(&cfg(), &srv.url("/busy"), "", "", UploadMethod::Post, &src),
            9011,
            true,
        );
        assert!(f.message.contains("500"), "{f:?}");
        assert_fails(
            upload(&cfg(), &srv.url("/no"), "", "", UploadMethod::Put, &src),
            9011,
            false,
        );
        // An empty file goes out with Content-Length: 0.
        let empty = tmp.path("empty");
        std::fs::write(&empty, b"").unwrap();
        upload(&cfg(), &srv.url("/ok"), "", "", UploadMethod::Put, &empty).unwrap();
        let last = srv.requests().pop().unwrap();
        assert_eq!(last.header("content-length"), Some("0"));
        // A missing file is the CPE's failure, not the server's.
        assert_fails(
            upload(
                &cfg(),
                &srv.url("/ok"),
                "",
                "",
                UploadMethod::Put,
                &tmp.path("none"),
            ),
            9011,
            false,
        );
    }

    #[test]
    fn upload_500_is_9011_retryable_and_401_without_username_9012() {
        let srv = Server::start(|r| match r.path.as_str() {
            "/auth" => full(401, &[("WWW-Authenticate", "Basic realm=\"u\"")], b""),
            _ => {
                if r.body.is_none() {
                    Reply::Continue
                } else {
                    full(500, &[], b"")
                }
            }
        });
        let tmp = TempDir::new();
        let src = tmp.path("cfg");
        std::fs::write(&src, b"config").unwrap();
        assert_fails(
            upload(&cfg(), &srv.url("/x"), "", "", UploadMethod::Put, &src),
            9011,
            true,
        );
        assert_fails(
            upload(&cfg(), &srv.url("/auth"), "", "", UploadMethod::Put, &src),
            9012,
            false,
        );
    }

    #[test]
    fn redirects_are_followed_and_credentials_stay_with_the_origin() {
        let other = Server::start(|r| {
            if r.path == "/open" {
                full(200, &[], b"elsewhere")
            } else {
                full(401, &[("WWW-Authenticate", "Basic realm=\"o\"")], b"")
            }
        });
        let other_base = other.url("");
        let srv = Server::start(move |r| match r.path.as_str() {
            "/start" => full(302, &[("Location", "/real")], b""),
            "/real" => {
                if r.header("authorization").is_some() {
                    full(200, &[], b"real")
                } else {
                    full(401, &[("WWW-Authenticate", "Basic realm=\"r\"")], b"")
                }
            }
            "/away" => full(307, &[("Location", &format!("{other_base}/secret"))], b""),
            "/away-open" => full(301, &[("Location", &format!("{other_base}/open"))], b""),
            "/loop" => full(302, &[("Location", "/loop")], b""),
            _ => full(308, &[], b""),
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        // The servers ask for Basic over plain http.
        let cfg = || ClientConfig {
            allow_basic_over_http: true,
            ..cfg()
        };
        assert_eq!(
            download(&cfg(), &srv.url("/start"), "u", "pw", &dest, None).unwrap(),
            4
        );
        assert_eq!(
            download(&cfg(), &srv.url("/away-open"), "u", "pw", &dest, None).unwrap(),
            9
        );
        let f = assert_fails(
            download(&cfg(), &srv.url("/away"), "u", "pw", &dest, None),
            9012,
            false,
        );
        assert!(f.message.contains("only sent to"), "{f:?}");
        assert!(other
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()));
        let before = srv.requests().len();
        assert_fails(
            download(&cfg(), &srv.url("/loop"), "", "", &dest, None),
            9016,
            false,
        );
        assert_eq!(srv.requests().len() - before, MAX_REDIRECTS as usize + 1);
        assert_fails(
            download(&cfg(), &srv.url("/nolocation"), "", "", &dest, None),
            9016,
            false,
        );
    }

    #[test]
    fn https_uses_the_configured_ca() {
        let pki = TestPki::new();
        let srv = Server::start_tls(pki.server_config(), |r| {
            if r.path == "/down" {
                full(302, &[("Location", "http://127.0.0.1:1/x")], b"")
            } else {
                full(200, &[], b"secure")
            }
        });
        let tmp = TempDir::new();
        let dest = tmp.path("f");
        let trusted = ClientConfig {
            tls: TlsSettings {
                ca_file: Some(pki.ca_file.clone()),
                ..TlsSettings::default()
            },
            ..cfg()
        };
        assert_eq!(
            download(&trusted, &srv.url("/f"), "", "", &dest, None).unwrap(),
            6
        );
        // No https → http downgrade.
        assert_fails(
            download(&trusted, &srv.url("/down"), "", "", &dest, None),
            9016,
            false,
        );
        let unknown = ClientConfig {
            tls: TlsSettings {
                ca_file: Some(pki.other_ca_file.clone()),
                ..TlsSettings::default()
            },
            ..cfg()
        };
        let f = assert_fails(
            download(&unknown, &srv.url("/f"), "", "", &dest, None),
            9015,
            true,
        );
        assert!(f.message.contains("TLS"), "{f:?}");
        // A CA bundle that cannot be read.
        let missing = ClientConfig {
            tls: TlsSettings {
                ca_file: Some(tmp.path("none.pem")),
                ..TlsSettings::default()
            },
            ..cfg()
        };
        assert_fails(
            download(&missing, &srv.url("/f"), "", "", &dest, None),
            9015,
            false,
        );
    }

    /// A CA, a leaf for 127.0.0.1 signed by it, and an unrelated CA, as PEM files.
    struct TestPki {
        _dir: TempDir,
        ca_file: PathBuf,
        other_ca_file: PathBuf,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key_der: Vec<u8>,
    }

    impl TestPki {
        fn new() -> TestPki {
            use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
            let ca = |cn: &str| {
                let key = KeyPair::generate().unwrap();
                let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
                p.distinguished_name.push(DnType::CommonName, cn);
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                (p.self_signed(&key).unwrap(), key)
            };
            let (ca_cert, ca_key) = ca("client test CA");
            let (other, _) = ca("unrelated CA");
            let leaf_key = KeyPair::generate().unwrap();
            let mut p =
                CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                    .unwrap();
            p.is_ca = IsCa::ExplicitNoCa;
            let leaf = p.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
            let dir = TempDir::new();
            let ca_file = dir.path("ca.pem");
            let other_ca_file = dir.path("other.pem");
            std::fs::write(&ca_file, ca_cert.pem()).unwrap();
            std::fs::write(&other_ca_file, other.pem()).unwrap();
            TestPki {
                _dir: dir,
                ca_file,
                other_ca_file,
                chain: vec![leaf.der().clone(), ca_cert.der().clone()],
                key_der: leaf_key.serialize_der(),
            }
        }

        fn server_config(&self) -> Arc<rustls::ServerConfig> {
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                rustls::pki_types::PrivatePkcs8KeyDer::from(self.key_der.clone()),
            );
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(self.chain.clone(), key)
                    .unwrap(),
            )
        }
    }

    #[test]
    fn url_userinfo_is_split_and_decoded() {
        let s = split_url("HTTP://a%20b:c%3Ad@Host:81/p?q=1#frag", Direction::Download).unwrap();
        assert_eq!(s.url, "HTTP://Host:81/p?q=1");
        assert_eq!(s.userinfo, Some(("a b".to_owned(), "c:d".to_owned())));
        let s = split_url("https://host/a@b", Direction::Download).unwrap();
        assert_eq!((s.url.as_str(), s.userinfo), ("https://host/a@b", None));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn df_output_is_parsed() {
        let gnu = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                   /dev/nvme0n1p2   490617784 123456789 342132124      27% /\n";
        assert_eq!(parse_df(gnu), Some(342_132_124 * 1024));
        let busybox = "Filesystem           1024-blocks    Used Available Capacity Mounted on\n\
                       /dev/root                 5120      5120         0 100% /rom\n";
        assert_eq!(parse_df(busybox), Some(0));
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      my disk 100 40 60 40% /mnt/a b\n";
        assert_eq!(parse_df(spaced), Some(60 * 1024));
        assert_eq!(parse_df(""), None);
        assert_eq!(parse_df("Filesystem\nnonsense here\n"), None);
        let tmp = TempDir::new();
        assert!(free_space(&tmp.0).is_some_and(|n| n > 0));
        assert_eq!(free_space(&tmp.path("missing")), None);
    }

    #[test]
    fn quoted_text_is_one_bounded_line() {
        let q = quoted(&format!("a\r\nb{}", "x".repeat(1000)));
        assert!(!q.contains('\n') && !q.contains('\r'));
        assert!(q.chars().count() <= MAX_QUOTED + 1);
    }
}
