//! Test support: raw HTTP/1.1 servers that misbehave on purpose, for the hostile-ACS suite
//! (`tests/hostile_acs.rs`), and the broken TLS certificates they can present.
//!
//! Unlike `tls.rs`'s well-behaved [`TestServer`](super::tls::TestServer), a [`Hostile`] server
//! answers each request with whatever [`Reply`] the test's closure picks: a full response, a body
//! streamed far beyond any sane size, raw bytes, silence, headers followed by a stalled or
//! dripping body. It runs on std's `TcpListener` (plain) or on rustls with a server config from
//! `tls.rs`'s [`Pki`]; it records every request it read (with its arrival time) so tests can
//! assert on what the CPE sent and when (TR-069 §3.2.1.1 retry timing, §3.4.4 cookies, §3.4.5
//! redirects).
//!
//! [`BadCerts`] generates what TR-069 §3.3 says a CPE must refuse: an expired leaf, a CA
//! certificate served as the leaf (webpki's `CaUsedAsEndEntity`), next to `Pki`'s wrong-name leaf
//! and unknown CA. Use it with `#[path = "support/hostile.rs"] mod hostile;` next to `tls.rs`.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::tls::{Leaf, Pki};

/// Largest request head the server reads.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body the server reads (a CPE's Inform is a few KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a silent or stalling connection is held at most, whatever the client does.
const HOLD_LIMIT: Duration = Duration::from_secs(60);
/// The size of each write of a streamed body.
const STREAM_CHUNK: usize = 64 * 1024;

/// One request as the hostile server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 1 for the first request the server read, 2 for the next… (over all connections).
    pub n: usize,
    /// 1 for the first TCP connection accepted, 2 for the next…
    pub conn: usize,
    /// When the request head was complete.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Names lower-cased, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with a `Content-Length`; the connection stays open (keep-alive).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A 200 whose body of `total` filler bytes (`<a>` repeated) is streamed until the client
    /// stops reading; `chunked` picks `Transfer-Encoding: chunked` over a `Content-Length`.
    Stream { total: u64, chunked: bool },
    /// Raw bytes (head and body as given), then the connection is closed.
    RawClose(Vec<u8>),
    /// Read the request and never answer; hold the connection until the client closes it.
    Silent,
    /// Send these raw bytes (typically a head promising more body), then go silent.
    Stall(Vec<u8>),
    /// Send these raw bytes, then one more byte every `every`, forever.
    Drip { head: Vec<u8>, every: Duration },
}

impl Reply {
    /// A complete response.
    pub fn full(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A 200 with a SOAP body.
    pub fn soap(body: impl Into<Vec<u8>>) -> Reply {
        Reply::full(200, body).header("Content-Type", "text/xml; charset=\"utf-8\"")
    }

    /// Adds a header to a [`Reply::Full`]; other replies are returned unchanged.
    pub fn header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Full {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                Reply::Full {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync + 'static;

/// A misbehaving HTTP/1.1 server on 127.0.0.1:0, plain or TLS.
pub struct Hostile {
    pub addr: SocketAddr,
    pub https: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Starts serving; `tls` = `None` for plain http. `handler` picks the reply to each request.
    pub fn start<H>(tls: Option<Arc<ServerConfig>>, handler: H) -> Hostile
    where
        H: Fn(&Seen) -> Reply + Send + Sync + 'static,
    {
        let handler: Arc<Handler> = Arc::new(handler);
        Hostile::listen(tls.is_some(), move |ctx, stream, conn| {
            let tls = tls.clone();
            let handler = handler.clone();
            thread::spawn(move || {
                let _ = serve(stream, conn, tls, &*handler, &ctx);
            });
        })
    }

    /// A server that accepts every connection and never reads from or writes to it: the
    /// request sits in the socket buffers until the client gives up.
    pub fn black_hole() -> Hostile {
        // The accepted sockets live as long as the accept loop (until the server is dropped).
        let mut held: Vec<TcpStream> = Vec::new();
        Hostile::listen(false, move |_, stream, _| held.push(stream))
    }

    fn listen<F>(https: bool, mut on_accept: F) -> Hostile
    where
        F: FnMut(Ctx, TcpStream, usize) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Ctx {
            seen: seen.clone(),
            stop: stop.clone(),
        };
        let accept_stop = stop.clone();
        let accept_conns = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = accept_conns.fetch_add(1, Ordering::SeqCst) + 1;
                on_accept(ctx.clone(), stream, conn);
            }
        });
        Hostile {
            addr,
            https,
            seen,
            connections,
            stop,
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Every request read so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// What each connection thread shares with the server.
#[derive(Clone)]
struct Ctx {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn serve(
    tcp: TcpStream,
    conn_no: usize,
    tls: Option<Arc<ServerConfig>>,
    handler: &Handler,
    ctx: &Ctx,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let raw = tcp.try_clone()?;
    let mut conn = match tls {
        Some(cfg) => {
            let sc = ServerConnection::new(cfg).map_err(io::Error::other)?;
            Conn::Tls(Box::new(StreamOwned::new(sc, tcp)))
        }
        None => Conn::Plain(tcp),
    };
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if ctx.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some((method, path, headers, body)) = read_request(&mut conn, &mut buf)? else {
            return Ok(());
        };
        let seen = {
            let mut all = ctx.seen.lock().map_err(|_| io::Error::other("poisoned"))?;
            let s = Seen {
                n: all.len() + 1,
                conn: conn_no,
                at: Instant::now(),
                method,
                path,
                headers,
                body,
            };
            all.push(s.clone());
            s
        };
        match handler(&seen) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                for (n, v) in &headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                let mut bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                conn.write_all(&bytes)?;
                conn.flush()?;
            }
            Reply::Stream { total, chunked } => {
                stream_body(&mut conn, total, chunked)?;
                let _ = raw.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::RawClose(bytes) => {
                conn.write_all(&bytes)?;
                conn.flush()?;
                let _ = raw.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::Silent => {
                hold(&mut conn);
                return Ok(());
            }
            Reply::Stall(bytes) => {
                conn.write_all(&bytes)?;
                conn.flush()?;
                hold(&mut conn);
                return Ok(());
            }
            Reply::Drip { head, every } => {
                conn.write_all(&head)?;
                conn.flush()?;
                let start = Instant::now();
                while start.elapsed() < HOLD_LIMIT && !ctx.stop.load(Ordering::SeqCst) {
                    thread::sleep(every);
                    conn.write_all(b" ")?;
                    conn.flush()?;
                }
                return Ok(());
            }
        }
    }
}

/// Streams a 200 with `total` filler bytes until done or the client stops reading.
fn stream_body(conn: &mut Conn, total: u64, chunked: bool) -> io::Result<()> {
    let head = if chunked {
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_string()
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {total}\r\n\r\n")
    };
    conn.write_all(head.as_bytes())?;
    let filler: Vec<u8> = b"<a>".iter().copied().cycle().take(STREAM_CHUNK).collect();
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left.min(STREAM_CHUNK as u64)).unwrap_or(STREAM_CHUNK);
        let part = filler.get(..n).unwrap_or(&filler);
        if chunked {
            conn.write_all(format!("{n:x}\r\n").as_bytes())?;
            conn.write_all(part)?;
            conn.write_all(b"\r\n")?;
        } else {
            conn.write_all(part)?;
        }
        left -= n as u64;
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")?;
    }
    conn.flush()
}

/// Keeps a connection open and silent until the client closes it (or [`HOLD_LIMIT`]).
fn hold(conn: &mut Conn) {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    while start.elapsed() < HOLD_LIMIT {
        match conn.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

/// Reads one request (Content-Length bodies only); `None` on a clean end of the connection.
fn read_request(conn: &mut Conn, buf: &mut Vec<u8>) -> io::Result<Option<Parsed>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 8192];
        let n = match conn.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(io::Error::other("request body too large"));
    }
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let body = buf
        .get(body_start..body_start + len)
        .unwrap_or_default()
        .to_vec();
    buf.drain(..body_start + len);
    Ok(Some((method, path, headers, body)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Certificates a CPE must refuse (TR-069 §3.3), each as a [`Leaf`] to serve with
/// [`Pki::server_config`], and the CA file that makes everything else about them valid.
pub struct BadCerts {
    pub dir: PathBuf,
    /// The CA that signed `expired` and that `ca_as_leaf` is: trusting it leaves only the
    /// defect under test.
    pub ca_file: PathBuf,
    /// A leaf for `localhost`/127.0.0.1 whose validity ended in 2001.
    pub expired: Leaf,
    /// The CA certificate itself (with its key) served as the server's certificate; its
    /// subject alternative names cover `localhost`/127.0.0.1.
    pub ca_as_leaf: Leaf,
}

impl BadCerts {
    /// Generates everything into a private temporary directory removed on drop.
    pub fn new() -> BadCerts {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cwmpd-badcerts-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create cert dir");
        let sans = ["localhost".to_string(), "127.0.0.1".to_string()];
        // The CA names the loopback host too, so served as a leaf only its CA-ness is wrong.
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(sans.to_vec()).expect("params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cwmpd hostile CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        let ca_as_leaf = write_leaf(
            &dir,
            "ca-as-leaf",
            &ca.pem(),
            &ca_key,
            vec![ca.der().clone()],
        );

        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans.to_vec()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign leaf");
        let expired = write_leaf(
            &dir,
            "expired",
            &format!("{}{}", cert.pem(), ca.pem()),
            &key,
            vec![cert.der().clone(), ca.der().clone()],
        );
        BadCerts {
            dir,
            ca_file,
            expired,
            ca_as_leaf,
        }
    }
}

impl Drop for BadCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_leaf(
    dir: &Path,
    name: &str,
    pem: &str,
    key: &KeyPair,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Leaf {
    let cert_file = dir.join(format!("{name}.pem"));
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&cert_file, pem).expect("write cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");
    Leaf {
        chain,
        key_der: key.serialize_der(),
        cert_file,
        key_file,
    }
}

/// A rustls server config presenting `leaf` (no client certificate asked).
pub fn server_tls(pki: &Pki, leaf: &Leaf) -> Arc<ServerConfig> {
    pki.server_config(leaf, false)
}
