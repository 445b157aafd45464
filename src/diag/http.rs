//! TR-143 DownloadDiagnostics over HTTP: GET a URL on one or more TCP connections at once and
//! time each step as the data model asks (OS: TCP sockets, the clocks, one thread per extra
//! connection; no file is written, the body is counted and dropped).
//!
//! Per connection (TR-143 §4.1, TR-181 DownloadDiagnostics): TCPOpenRequestTime when the
//! connect starts, TCPOpenResponseTime when it is established, ROMTime when the GET is sent,
//! BOMTime when the first byte of the response arrives, EOMTime when the last byte of the body
//! arrives (or the test's duration ends, for a time-based test); TestBytesReceived counts every
//! byte read from the socket from BOM to EOM, headers included. Times are wall-clock
//! microseconds taken from one reading of the wall clock and the monotonic clock at the start,
//! so they are ordered whatever NTP does meanwhile.
//!
//! The response: a status line and headers within [`MAX_HEAD`] bytes, a `200` status, a body
//! delimited by `Content-Length`, by `chunked` transfer coding, or by the close of the
//! connection. Every read has the test's deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::url::Url;

/// Bytes of status line and headers read before the response is refused.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most connections of one test (TR-181 DownloadDiagnosticMaxConnections).
pub const MAX_CONNECTIONS: u32 = 8;

/// What to download and how.
#[derive(Debug, Clone)]
pub struct Download {
    /// `http://HOST[:PORT]/PATH` (TR-181 DownloadURL).
    pub url: String,
    pub interface: Option<String>,
    pub dscp: u8,
    /// Connections opened at once, each fetching the URL (TR-181 NumberOfConnections).
    pub connections: u32,
    /// A time-based test: stop every connection after this long (TR-181
    /// TimeBasedTestDuration); `None`: each fetches the whole body.
    pub duration: Option<Duration>,
    /// The longest the whole test may take.
    pub limit: Duration,
}

/// One connection's figures; times in microseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub tcp_open_request_us: u64,
    pub tcp_open_response_us: u64,
    pub rom_us: u64,
    pub bom_us: u64,
    pub eom_us: u64,
    /// Bytes read from BOM to EOM, headers included.
    pub test_bytes: u64,
    /// Bytes of the body.
    pub body_bytes: u64,
}

/// Why a test ended without its figures (TR-181 DiagnosticsState `Error_*`).
#[derive(Debug, PartialEq, Eq)]
pub enum DownloadError {
    /// Not an `http://` URL, or a value that cannot be honoured.
    Invalid(String),
    /// The host name does not resolve (`Error_CannotResolveHostName`).
    Resolve(String),
    /// The connection could not be made (`Error_InitConnectionFailed`).
    Connect(String),
    /// No response, or one that is not `200` (`Error_NoResponse`).
    NoResponse(String),
    /// The transfer broke or the limit passed (`Error_TransferFailed`, `Error_Timeout`).
    Transfer(String),
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (DownloadError::Invalid(m)
        | DownloadError::Resolve(m)
        | DownloadError::Connect(m)
        | DownloadError::NoResponse(m)
        | DownloadError::Transfer(m)) = self;
        write!(f, "{m}")
    }
}

/// The clocks read once: wall-clock microseconds of any later instant.
#[derive(Clone, Copy)]
struct Clock {
    wall_us: u64,
    at: Instant,
}

impl Clock {
    fn now() -> Clock {
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Clock {
            wall_us,
            at: Instant::now(),
        }
    }

    fn us(&self, t: Instant) -> u64 {
        let since = u64::try_from(t.saturating_duration_since(self.at).as_micros()).unwrap_or(0);
        self.wall_us.saturating_add(since)
    }
}

/// Runs the test: every connection's figures, in order.
pub fn download(d: &Download, cancel: &AtomicBool) -> Result<Vec<Connection>, DownloadError> {
    let url = Url::parse(&d.url).map_err(|e| DownloadError::Invalid(format!("{e}")))?;
    if !url.is_http() {
        return Err(DownloadError::Invalid(format!(
            "{}: only http:// is offered",
            crate::http::url::redact(&d.url)
        )));
    }
    if d.connections == 0 || d.connections > MAX_CONNECTIONS || d.dscp > 63 {
        return Err(DownloadError::Invalid(format!(
            "{} connections (1 to {MAX_CONNECTIONS}), DSCP {}",
            d.connections, d.dscp
        )));
    }
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| DownloadError::Resolve(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| DownloadError::Resolve(format!("{host}: no address")))?;
    // The Host header names the port when the URL does (RFC 9110 §7.2).
    let authority = match url.port {
        Some(p) => format!("{}:{p}", url.host),
        None => url.host.to_string(),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: cwmpd\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        if url.path_query.is_empty() { "/" } else { url.path_query },
    );
    let clock = Clock::now();
    let deadline = Instant::now() + d.limit;
    let stop_at = d.duration.map(|t| Instant::now() + t);
    let one = |cancel: &AtomicBool| fetch(addr, &request, d, clock, deadline, stop_at, cancel);
    if d.connections == 1 {
        return one(cancel).map(|c| vec![c]);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..d.connections)
            .map(|_| s.spawn(|| one(cancel)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(DownloadError::Transfer(
                        "a connection's thread failed".into(),
                    ))
                })
            })
            .collect()
    })
}

fn fetch(
    addr: SocketAddr,
    request: &str,
    d: &Download,
    clock: Clock,
    deadline: Instant,
    stop_at: Option<Instant>,
    cancel: &AtomicBool,
) -> Result<Connection, DownloadError> {
    let mut c = Connection::default();
    let left = |what: &str| {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| DownloadError::Transfer(format!("the test's time ran out {what}")))
    };
    let t0 = Instant::now();
    c.tcp_open_request_us = clock.us(t0);
    let stream = connect(addr, d, left("before connecting")?)
        .map_err(|e| DownloadError::Connect(format!("{addr}: {e}")))?;
    c.tcp_open_response_us = clock.us(Instant::now());
    let mut stream = stream;
    stream
        .set_write_timeout(Some(left("before the request")?))
        .map_err(|e| DownloadError::Transfer(e.to_string()))?;
    c.rom_us = clock.us(Instant::now());
    stream
        .write_all(request.as_bytes())
        .map_err(|e| DownloadError::Transfer(format!("sending the request: {e}")))?;
    // The head, then the body.
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut body = Body::Unknown;
    let mut first = true;
    let mut in_body: u64 = 0;
    let mut chunk = Chunked::default();
    loop {
        if cancel.load(Ordering::Acquire) {
            return Err(DownloadError::Transfer("cancelled".into()));
        }
        let until = match stop_at {
            Some(s) => s.min(deadline),
            None => deadline,
        };
        let Some(wait) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            if stop_at.is_some_and(|s| Instant::now() >= s) && !first {
                // A time-based test ends here.
                c.eom_us = clock.us(Instant::now());
                c.body_bytes = in_body;
                return Ok(c);
            }
            return Err(DownloadError::Transfer("the test's time ran out".into()));
        };
        stream
            .set_read_timeout(Some(wait))
            .map_err(|e| DownloadError::Transfer(e.to_string()))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(DownloadError::Transfer(e.to_string())),
        };
        let now = Instant::now();
        if n > 0 && first {
            c.bom_us = clock.us(now);
            first = false;
        }
        c.test_bytes += n as u64;
        let data = buf.get(..n).unwrap_or_default();
        let mut rest = data;
        if matches!(body, Body::Unknown) {
            head.extend_from_slice(data);
            let Some(end) = find_head_end(&head) else {
                if n == 0 {
                    return Err(DownloadError::NoResponse(
                        "the connection closed before a response".into(),
                    ));
                }
                if head.len() > MAX_HEAD {
                    return Err(DownloadError::NoResponse(format!(
                        "a response head over {MAX_HEAD} bytes"
                    )));
                }
                continue;
            };
            body = parse_head(head.get(..end).unwrap_or_default())?;
            let consumed = data.len().saturating_sub(head.len() - end);
            rest = data.get(consumed..).unwrap_or_default();
        }
        let done = match body {
            Body::Length(total) => {
                in_body += rest.len() as u64;
                in_body >= total || n == 0
            }
            Body::Chunked => {
                in_body += chunk.feed(rest).map_err(DownloadError::Transfer)? as u64;
                chunk.done || n == 0
            }
            Body::Close => {
                in_body += rest.len() as u64;
                n == 0
            }
            Body::Unknown => n == 0,
        };
        if done {
            if let Body::Length(total) = body {
                if in_body < total {
                    return Err(DownloadError::Transfer(format!(
                        "the connection closed after {in_body} of {total} bytes"
                    )));
                }
            }
            if matches!(body, Body::Chunked) && !chunk.done {
                return Err(DownloadError::Transfer(
                    "the chunked body was cut short".into(),
                ));
            }
            c.eom_us = clock.us(now);
            c.body_bytes = in_body;
            return Ok(c);
        }
    }
}

fn connect(addr: SocketAddr, d: &Download, timeout: Duration) -> io::Result<TcpStream> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    super::device_and_dscp(&sock, addr.is_ipv6(), d.interface.as_deref(), d.dscp)?;
    sock.connect_timeout(&addr.into(), timeout)?;
    Ok(sock.into())
}

/// How the body ends.
#[derive(Debug, Clone, Copy)]
enum Body {
    Unknown,
    Length(u64),
    Chunked,
    Close,
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The status must be 200; the body's framing from the headers (RFC 9112 §6.3).
fn parse_head(head: &[u8]) -> Result<Body, DownloadError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(DownloadError::NoResponse(format!(
            "the server answered {:?}",
            status.chars().take(80).collect::<String>()
        )));
    }
    let mut body = Body::Close;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().ends_with("chunked")
        {
            return Ok(Body::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            body = Body::Length(value.parse().map_err(|_| {
                DownloadError::NoResponse(format!("a Content-Length of {value:?}"))
            })?);
        }
    }
    Ok(body)
}

/// The chunked transfer coding, read as it comes: counts the data bytes, notices the end.
#[derive(Debug, Default)]
struct Chunked {
    /// Data bytes left in the current chunk, then its CRLF.
    left: u64,
    crlf: u8,
    /// The size line being read.
    line: Vec<u8>,
    done: bool,
}

impl Chunked {
    /// Reads `data`; returns how many of its bytes are body data.
    fn feed(&mut self, mut data: &[u8]) -> Result<usize, String> {
        let mut body = 0;
        while !data.is_empty() && !self.done {
            if self.left > 0 {
                let take = (self.left.min(data.len() as u64)) as usize;
                body += take;
                self.left -= take as u64;
                data = data.get(take..).unwrap_or_default();
                if self.left == 0 {
                    self.crlf = 2;
                }
            } else if self.crlf > 0 {
                self.crlf -= 1;
                data = data.get(1..).unwrap_or_default();
            } else {
                let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
                data = rest;
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.line);
                    let size = line.trim().split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| format!("a chunk size of {size:?}"))?;
                    self.line.clear();
                    if size == 0 {
                        // The last chunk; trailers are not read.
                        self.done = true;
                    } else {
                        self.left = size;
                    }
                } else if self.line.len() > 1024 {
                    return Err("a chunk size line over 1 KiB".into());
                } else {
                    self.line.push(b);
                }
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_frame_the_body_or_refuse() {
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            Ok(Body::Length(10))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
            Ok(Body::Chunked)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.0 200 OK\r\n\r\n"),
            Ok(Body::Close)
        ));
        for bad in [
            &b"HTTP/1.1 404 Not Found\r\n\r\n"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err());
        }
    }

    #[test]
    fn chunks_are_counted_however_they_are_cut() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        for cut in 1..body.len() {
            let mut c = Chunked::default();
            let n = c.feed(&body[..cut]).unwrap() + c.feed(&body[cut..]).unwrap();
            assert_eq!(n, 23, "cut at {cut}");
            assert!(c.done);
        }
        assert!(Chunked::default().feed(b"zz\r\n").is_err());
    }
}
