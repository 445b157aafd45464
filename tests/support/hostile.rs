//! Test support: raw HTTP/1.1 servers that misbehave on purpose, for the hostile-ACS suite
//! (`tests/hostile_acs.rs`), and the broken TLS certificates they can present.
//!
//! Unlike `tls.rs`'s well-behaved [`TestServer`](crate::tls::TestServer), a [`Hostile`] server
//! answers each request with whatever [`Reply`] the test's closure picks: a full response, a body
//! streamed far beyond any sane size, raw bytes, silence, headers followed by a stalled or
//! dripping body. It shares `tls.rs`'s accept loop ([`Server`]), plain-or-TLS [`Conn`] and
//! request reader, and serves plain or over rustls with a server config from `tls.rs`'s [`Pki`];
//! it records every request it read (with its arrival time) so tests can assert on what the CPE
//! sent and when (TR-069 §3.2.1.1 retry timing, §3.4.4 cookies, §3.4.5 redirects).
//!
//! [`BadCerts`] generates what TR-069 §3.3 says a CPE must refuse: an expired leaf, a CA
//! certificate served as the leaf (webpki's `CaUsedAsEndEntity`), next to `Pki`'s wrong-name leaf
//! and unknown CA.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use rustls::ServerConfig;

use crate::http::{find_header, reason};
use crate::rng::Rng;
use crate::tls::{leaf_params, make_ca, write_leaf, Conn, Leaf, Pki, Server, LIMITS};

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
        find_header(&self.headers, name)
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
pub type Hostile = Server<Seen>;

impl Hostile {
    /// Starts serving; `tls` = `None` for plain http. `handler` picks the reply to each request.
    pub fn start<H>(tls: Option<Arc<ServerConfig>>, handler: H) -> Hostile
    where
        H: Fn(&Seen) -> Reply + Send + Sync + 'static,
    {
        let handler: Arc<Handler> = Arc::new(handler);
        Server::listen(tls.is_some(), move |stream, conn, seen, stop| {
            let ctx = Ctx {
                seen: seen.clone(),
                stop: stop.clone(),
            };
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
        Server::listen(false, move |stream, _, _, _| held.push(stream))
    }

    /// Every request read so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.recorded()
    }
}

/// What each connection thread shares with the server.
#[derive(Clone)]
struct Ctx {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
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
    let mut conn = Conn::new(tcp, tls)?;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if ctx.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(crate::http::Request {
            method,
            target: path,
            headers,
            body,
        }) = crate::http::read_request(&mut conn, &mut buf, LIMITS)?
        else {
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

impl Default for BadCerts {
    fn default() -> BadCerts {
        BadCerts::new()
    }
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
        let sans = ["localhost", "127.0.0.1"];
        // The CA names the loopback host too, so served as a leaf only its CA-ness is wrong.
        let (ca, ca_key) = make_ca("cwmpd hostile CA", &sans);
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
        // Common name "localhost", the first of `sans`.
        let mut params = leaf_params("expired", &sans, ExtendedKeyUsagePurpose::ServerAuth);
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

/// A rustls server config presenting `leaf` (no client certificate asked).
pub fn server_tls(pki: &Pki, leaf: &Leaf) -> Arc<ServerConfig> {
    pki.server_config(leaf, false)
}

fn printable(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b' ' + rng.index(95) as u8))
        .collect()
}

/// Element and attribute names: real SOAP/CWMP ones and invented ones.
const NAMES: &[&str] = &[
    "soap-env:Envelope",
    "soap-env:Body",
    "soap-env:Header",
    "soap-env:Fault",
    "cwmp:ID",
    "cwmp:HoldRequests",
    "cwmp:InformResponse",
    "cwmp:GetParameterValues",
    "cwmp:SetParameterValues",
    "cwmp:Fault",
    "MaxEnvelopes",
    "ParameterNames",
    "ParameterList",
    "ParameterValueStruct",
    "Name",
    "Value",
    "string",
    "x",
    "a:b:c",
    "1bad",
    "xsi:type",
    "X_Hostile",
];

/// Entity and character references, good and bad.
const ENTITIES: &[&str] = &[
    "&#0;",
    "&bogus;",
    "&amp;",
    "&lt;",
    "&#x110000;",
    "&#xD800;",
    "&#65;",
    "&",
    "&#;",
    "&quot",
    "&#x1F600;",
    "&apos;",
];

/// Valid UTF-8 beyond ASCII.
const UNICODE: &[&str] = &[
    "é", "中", "😀", "\u{FEFF}", "\u{202E}", "\u{7F}", "\u{85}", "ß",
];

/// Attributes to slip into a start tag.
const ATTRIBUTES: &[&str] = &[
    " a=\"b\"",
    " soap-env:mustUnderstand=\"1\"",
    " xmlns:cwmp=\"urn:dslforum-org:cwmp-9-9\"",
    " xmlns=\"urn:x\"",
    " xsi:type=\"xsd:unsignedInt\"",
    " a=\"1\" a=\"2\"",
    " b='<'",
    " c=unquoted",
    " soap-env:arrayType=\"xsd:string[99999999]\"",
];

/// XML-shaped garbage, always valid UTF-8: `base` (a real envelope) with 1–4 random mutations
/// (character ranges deleted, duplicated or swapped; tags, entities, CDATA, comments,
/// processing instructions, attributes, printable ASCII or non-ASCII characters inserted; an
/// element name renamed everywhere; a text content replaced). Reproducible from `seed`.
pub fn xml_garbage(seed: u64, base: &str) -> String {
    let mut rng = Rng::spread(seed);
    let mut text: Vec<char> = base.chars().collect();
    let rounds = 1 + rng.index(4);
    for _ in 0..rounds {
        let len = text.len();
        let at = rng.index(len + 1);
        let span = 1 + rng.index(24);
        let insert = |text: &mut Vec<char>, at: usize, s: &str| {
            let at = at.min(text.len());
            text.splice(at..at, s.chars());
        };
        match rng.index(12) {
            0 => {
                let end = (at + span).min(len);
                text.drain(at.min(end)..end);
            }
            1 => {
                let end = (at + span).min(len);
                let piece: String = text.get(at..end).unwrap_or_default().iter().collect();
                insert(&mut text, end, &piece);
            }
            2 => {
                // Swap two ranges.
                let b = rng.index(len + 1);
                let (a, b) = (at.min(b), at.max(b));
                let a_end = (a + span).min(b);
                let b_end = (b + span).min(len);
                let first: Vec<char> = text.get(a..a_end).unwrap_or_default().to_vec();
                let second: Vec<char> = text.get(b..b_end).unwrap_or_default().to_vec();
                text.splice(b..b_end, first);
                text.splice(a..a_end, second);
            }
            3 => {
                let name = rng.pick(NAMES);
                let tag = match rng.index(3) {
                    0 => format!("<{name}>"),
                    1 => format!("</{name}>"),
                    _ => format!("<{name}/>"),
                };
                insert(&mut text, at, &tag);
            }
            4 => {
                let e = rng.pick(ENTITIES).to_string();
                insert(&mut text, at, &e);
            }
            5 => {
                let filler = printable(&mut rng, span);
                let piece = match rng.index(4) {
                    0 => format!("<![CDATA[{filler}]]>"),
                    1 => format!("<!--{}-->", filler.replace('-', "_")),
                    2 => format!("<?pi {}?>", filler.replace('?', "_")),
                    _ => format!("<![CDATA[{filler}"),
                };
                insert(&mut text, at, &piece);
            }
            6 => {
                // An attribute after an element name: right before a `>` or `/>`.
                let closes: Vec<usize> = text
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '>')
                    .map(|(i, _)| i)
                    .collect();
                if !closes.is_empty() {
                    let mut i = *rng.pick(&closes);
                    if i > 0 && text.get(i - 1) == Some(&'/') {
                        i -= 1;
                    }
                    let a = rng.pick(ATTRIBUTES).to_string();
                    insert(&mut text, i, &a);
                }
            }
            7 => {
                let s = printable(&mut rng, span);
                insert(&mut text, at, &s);
            }
            8 => {
                let u = rng.pick(UNICODE).to_string();
                insert(&mut text, at, &u);
            }
            9 => {
                // Rename one element everywhere (the document stays well-formed).
                let s: String = text.iter().collect();
                let names: Vec<&str> = s
                    .split('<')
                    .skip(1)
                    .filter_map(|t| {
                        let t = t.trim_start_matches('/');
                        let end = t.find(['>', ' ', '/'])?;
                        let name = t.get(..end)?;
                        (!name.is_empty() && !name.starts_with(['?', '!'])).then_some(name)
                    })
                    .collect();
                if !names.is_empty() {
                    let old = *rng.pick(&names);
                    let new = match rng.index(3) {
                        0 => format!("{old}X"),
                        1 => rng.pick(NAMES).to_string(),
                        _ => old.get(..old.len() / 2).unwrap_or("y").to_string(),
                    };
                    let renamed = s
                        .replace(&format!("<{old}>"), &format!("<{new}>"))
                        .replace(&format!("<{old} "), &format!("<{new} "))
                        .replace(&format!("<{old}/"), &format!("<{new}/"))
                        .replace(&format!("</{old}>"), &format!("</{new}>"));
                    text = renamed.chars().collect();
                }
            }
            10 => {
                // Replace one text content (between `>` and `<`).
                let starts: Vec<usize> = text
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| **c == '>' && text.get(i + 1).is_some_and(|n| *n != '<'))
                    .map(|(i, _)| i + 1)
                    .collect();
                if !starts.is_empty() {
                    let from = *rng.pick(&starts);
                    let to = text
                        .get(from..)
                        .and_then(|rest| rest.iter().position(|c| *c == '<'))
                        .map_or(text.len(), |p| from + p);
                    let new = match rng.index(4) {
                        0 => printable(&mut rng, span).replace(['<', '&'], "_"),
                        1 => "-1".to_string(),
                        2 => "99999999999999999999".to_string(),
                        _ => rng.pick(ENTITIES).to_string(),
                    };
                    text.splice(from..to, new.chars());
                }
            }
            _ => {
                // Truncate.
                text.truncate(at.max(1));
            }
        }
    }
    text.into_iter().collect()
}
