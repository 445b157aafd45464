//! Test support: a throw-away PKI (CA → leaf chains generated with rcgen) and a tiny threaded
//! HTTP/1.1 server, plain or over rustls, whose replies come from a closure given by the test.
//!
//! The server records every request (method, path, headers, body, TCP connection number, whether
//! a client certificate was presented) so tests can assert on what the client really sent,
//! including keep-alive reuse (TR-069 §3.4.1: one session on one connection where possible).
//!
//! webpki refuses a CA certificate served as the leaf, so every server certificate here is a leaf
//! signed by a separate CA.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use crate::http::{self, find_header, reason, Limits};

/// A leaf certificate with its key, in DER and as PEM files.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A CA, a server leaf for `localhost`/127.0.0.1, a server leaf for the wrong name, a client
/// leaf, and an unrelated CA; all written as PEM files into a private temporary directory that
/// is removed on drop.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA that signed every leaf below.
    pub ca_file: PathBuf,
    /// A CA that signed nothing here (for "unknown issuer").
    pub other_ca_file: PathBuf,
    /// Server leaf for `localhost` and `127.0.0.1`.
    pub server: Leaf,
    /// Server leaf for `wrong.example` only.
    pub wrong_name: Leaf,
    /// Client leaf (clientAuth) for certificate-based CPE authentication.
    pub client: Leaf,
    ca_der: CertificateDer<'static>,
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Pki {
    /// Generates everything (ECDSA P-256, a few milliseconds).
    pub fn new() -> Pki {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cwmpd-pki-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let (ca, ca_key) = make_ca("cwmpd test CA", &[]);
        let (other_ca, _) = make_ca("unrelated CA", &[]);
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write ca");
        let other_ca_file = dir.join("other-ca.pem");
        std::fs::write(&other_ca_file, other_ca.pem()).expect("write other ca");
        let server = make_leaf(
            &dir,
            "server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
            &ca_key,
        );
        let wrong_name = make_leaf(
            &dir,
            "wrong",
            &["wrong.example"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
            &ca_key,
        );
        let client = make_leaf(
            &dir,
            "client",
            &["cpe.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
            &ca_key,
        );
        Pki {
            dir,
            ca_file,
            other_ca_file,
            server,
            wrong_name,
            client,
            ca_der: ca.der().clone(),
        }
    }

    /// A rustls server config presenting `leaf`, optionally requiring a client certificate
    /// signed by our CA.
    pub fn server_config(&self, leaf: &Leaf, require_client_cert: bool) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("add CA");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(
            builder
                .with_single_cert(leaf.chain.clone(), leaf.key())
                .expect("server cert"),
        )
    }

    /// The usual HTTPS server config: the `localhost` leaf, no client certificate.
    pub fn server_tls(&self) -> Arc<ServerConfig> {
        self.server_config(&self.server, false)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed CA certificate named `cn` (subject alternative names `sans`) and its key.
pub fn make_ca(cn: &str, sans: &[&str]) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert, key)
}

fn make_leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    eku: ExtendedKeyUsagePurpose,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let cert = leaf_params(name, sans, eku)
        .signed_by(&key, ca, ca_key)
        .expect("sign leaf");
    // The chain file holds the leaf then the CA, as servers usually present it.
    write_leaf(
        dir,
        name,
        &format!("{}{}", cert.pem(), ca.pem()),
        &key,
        vec![cert.der().clone(), ca.der().clone()],
    )
}

/// The parameters of a leaf certificate for `sans` (its common name the first of them, else
/// `name`) with the extended key usage `eku`.
pub fn leaf_params(name: &str, sans: &[&str], eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, sans.first().copied().unwrap_or(name));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params
}

/// Writes `pem` (the certificate chain) to `<dir>/<name>.pem` and `key` to `<dir>/<name>.key`.
pub fn write_leaf(
    dir: &Path,
    name: &str,
    pem: &str,
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
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

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// 1 for the first TCP connection accepted, 2 for the next…
    pub conn: usize,
    pub method: String,
    pub path: String,
    /// Names lower-cased, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the TLS client presented a certificate.
    pub client_cert: bool,
}

impl Request {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every header `name`.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A reply produced by the test's handler.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this reply.
    pub close: bool,
    /// Never answer: keep the connection open and silent until the client gives up.
    pub hang: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
            hang: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    pub fn close(mut self) -> Response {
        self.close = true;
        self
    }

    /// A reply that never comes.
    pub fn hang() -> Response {
        Response {
            hang: true,
            ..Response::new(0)
        }
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync + 'static;

/// A threaded HTTP/1.1 server on 127.0.0.1:0 (keep-alive, Content-Length bodies).
pub type TestServer = Server<Request>;

impl TestServer {
    /// Starts serving; `tls` = `None` for plain http.
    pub fn start<H>(tls: Option<Arc<ServerConfig>>, handler: H) -> TestServer
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let handler: Arc<Handler> = Arc::new(handler);
        Server::listen(tls.is_some(), move |stream, conn, requests, stop| {
            let tls = tls.clone();
            let handler = handler.clone();
            let requests = requests.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let raw = stream.try_clone();
                if serve_connection(stream, conn, tls, &*handler, &requests, &stop).is_err() {
                    // A lingering close, as real servers do: a TLS alert just sent (say, for
                    // a refused client certificate) reaches the client instead of being
                    // lost to a reset caused by its unread request.
                    if let Ok(mut raw) = raw {
                        let _ = raw.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut sink = [0u8; 4096];
                        while matches!(raw.read(&mut sink), Ok(n) if n > 0) {}
                    }
                }
            });
        })
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.recorded()
    }
}

/// A test server's TCP listener on 127.0.0.1:0 and the requests its connections recorded (`R`,
/// one request as the server read it): [`TestServer`] (`R` = [`Request`]) and `hostile.rs`'s
/// `Hostile` (`R` = its `Seen`). The accept loop (its own thread) numbers each connection (1 for
/// the first, 2 for the next…) and hands it to a closure, with the record and the stop flag that
/// is set when the server is dropped.
pub struct Server<R> {
    pub addr: SocketAddr,
    /// Whether the connections are served over TLS (for [`Server::url`]'s scheme).
    pub https: bool,
    log: Arc<Mutex<Vec<R>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl<R: Clone + Send + 'static> Server<R> {
    /// Binds and starts accepting; `on_accept(stream, connection number, record, stop flag)`
    /// runs on the accept thread for every accepted connection until the server is dropped.
    pub fn listen<F>(https: bool, mut on_accept: F) -> Server<R>
    where
        F: FnMut(TcpStream, usize, &Arc<Mutex<Vec<R>>>, &Arc<AtomicBool>) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept_log = log.clone();
        let accept_stop = stop.clone();
        let accept_conns = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = accept_conns.fetch_add(1, Ordering::SeqCst) + 1;
                on_accept(stream, conn, &accept_log, &accept_stop);
            }
        });
        Server {
            addr,
            https,
            log,
            connections,
            stop,
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Every request recorded so far, in arrival order.
    pub fn recorded(&self) -> Vec<R> {
        self.log.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl<R> Drop for Server<R> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A plain or TLS server-side connection.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    /// Wraps an accepted socket: plain with `tls` = `None`, else the server side of a TLS
    /// session whose handshake runs on the first read or write.
    pub fn new(tcp: TcpStream, tls: Option<Arc<ServerConfig>>) -> io::Result<Conn> {
        Ok(match tls {
            Some(cfg) => {
                let sc = ServerConnection::new(cfg).map_err(io::Error::other)?;
                Conn::Tls(Box::new(StreamOwned::new(sc, tcp)))
            }
            None => Conn::Plain(tcp),
        })
    }

    /// Whether the TLS client presented a certificate.
    pub fn client_cert(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        }
    }
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

/// What the test servers read of one request (a CPE's Inform is a few KiB; an upload a few MiB).
pub const LIMITS: Limits = Limits {
    max_head: 64 * 1024,
    max_body: 16 * 1024 * 1024,
};

fn serve_connection(
    tcp: TcpStream,
    conn_no: usize,
    tls: Option<Arc<ServerConfig>>,
    handler: &Handler,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
    let raw = tcp.try_clone()?;
    let mut conn = Conn::new(tcp, tls)?;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(http::Request {
            method,
            target: path,
            headers,
            body,
        }) = http::read_request(&mut conn, &mut buf, LIMITS)?
        else {
            return Ok(());
        };
        let req = Request {
            conn: conn_no,
            method,
            path,
            headers,
            body,
            client_cert: conn.client_cert(),
        };
        if let Ok(mut r) = requests.lock() {
            r.push(req.clone());
        }
        let resp = handler(&req);
        if resp.hang {
            // Stay silent until the client closes or the read timeout fires.
            let mut sink = [0u8; 1024];
            while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            return Ok(());
        }
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        let mut has_length = false;
        for (n, v) in &resp.headers {
            has_length |= n.eq_ignore_ascii_case("content-length");
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if !has_length {
            out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        if resp.close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&resp.body);
        conn.write_all(&bytes)?;
        conn.flush()?;
        if resp.close {
            if let Conn::Tls(s) = &mut conn {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            let _ = raw.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}
