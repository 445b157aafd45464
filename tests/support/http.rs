//! The one HTTP/1.1 request reader of the test servers (the test ACS, [`crate::tls::TestServer`],
//! [`crate::hostile::Hostile`], the kill test's proxy and slow file server) and the reason
//! phrases they answer with (RFC 9112 §2–§7: a head ended by an empty line, then a body framed
//! by `Content-Length` or `Transfer-Encoding: chunked`).
//!
//! Pure over [`std::io::Read`]: it reads from whatever stream it is given (a socket, a TLS
//! stream, a byte slice), bounded by [`Limits`].

use std::io::{self, Read};

/// How much one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers), bytes.
    pub max_head: usize,
    /// Largest body, bytes (decoded, for a chunked one).
    pub max_body: usize,
}

/// Longest chunk-size line or trailer line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// One request as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target (the path and query of an origin-form target).
    pub target: String,
    /// Names lower-cased, values trimmed, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The body, decoded when it was chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every header `name` (case-insensitive), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the client asked to close the connection after this request.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// The first of `headers` named `name` (case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one request from `stream` into `buf`, which keeps what was read beyond it for the next
/// call. `Ok(None)` when the client closed before a request began; an error for a head or body
/// over `limits`, a bad `Content-Length` or chunk size, or a body cut short.
pub fn read_request<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limits: Limits,
) -> io::Result<Option<Request>> {
    Ok(read_request_raw(stream, buf, limits)?.map(|(r, _)| r))
}

/// As [`read_request`], and the request's bytes exactly as they came (head and framed body), for
/// a proxy that forwards them unchanged.
pub fn read_request_raw<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limits: Limits,
) -> io::Result<Option<(Request, Vec<u8>)>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > limits.max_head {
            return Err(io::Error::other("request head too large"));
        }
        if !fill(stream, buf)? {
            return Ok(None);
        }
    };
    if head_end > limits.max_head {
        return Err(io::Error::other("request head too large"));
    }
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    // `at` walks the buffer; nothing is drained until the whole request is there.
    let mut at = head_end + 4;
    let chunked = find_header(&headers, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(stream, buf, &mut at, limits.max_body)?
    } else {
        let len = match find_header(&headers, "content-length") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| io::Error::other("bad Content-Length"))?,
        };
        if len > limits.max_body {
            return Err(io::Error::other("request body too large"));
        }
        need(stream, buf, at + len, "body cut short")?;
        let body = buf.get(at..at + len).unwrap_or_default().to_vec();
        at += len;
        body
    };
    let raw: Vec<u8> = buf.drain(..at).collect();
    Ok(Some((
        Request {
            method,
            target,
            headers,
            body,
        },
        raw,
    )))
}

/// Decodes a chunked body starting at `*at` (RFC 9112 §7.1), leaving `*at` after its trailers.
fn read_chunked<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    at: &mut usize,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf, *at, "bad chunk header")?;
        let text = String::from_utf8_lossy(buf.get(*at..line).unwrap_or_default()).into_owned();
        *at = line + 2;
        let size_text = text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| io::Error::other("bad chunk size"))?;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            loop {
                let end = read_line(stream, buf, *at, "bad chunk trailer")?;
                let empty = end == *at;
                *at = end + 2;
                if empty {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > max {
            return Err(io::Error::other("request body too large"));
        }
        need(stream, buf, *at + size + 2, "chunk cut short")?;
        body.extend_from_slice(buf.get(*at..*at + size).unwrap_or_default());
        *at += size + 2;
    }
}

/// The index of the CRLF ending the line that starts at `from`, reading more as needed.
fn read_line<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    from: usize,
    what: &str,
) -> io::Result<usize> {
    loop {
        if let Some(i) = find(buf.get(from..).unwrap_or_default(), b"\r\n") {
            return Ok(from + i);
        }
        if buf.len() - from > MAX_CHUNK_LINE || !fill(stream, buf)? {
            return Err(io::Error::other(what.to_string()));
        }
    }
}

/// Reads until `buf` holds `len` bytes; an error `what` when the stream ends first.
fn need<S: Read>(stream: &mut S, buf: &mut Vec<u8>, len: usize, what: &str) -> io::Result<()> {
    while buf.len() < len {
        if !fill(stream, buf)? {
            return Err(io::Error::other(what.to_string()));
        }
    }
    Ok(())
}

/// Reads more bytes into `buf`; false at the end of the stream (a TLS peer that closed without
/// close_notify included).
fn fill<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The reason phrase for `status` ("Status" for one not listed).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_body: 1024,
    };

    fn read_all(input: &[u8]) -> Vec<io::Result<Option<Request>>> {
        let mut stream = input;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let r = read_request(&mut stream, &mut buf, LIMITS);
            let more = matches!(r, Ok(Some(_)));
            out.push(r);
            if !more {
                return out;
            }
        }
    }

    #[test]
    fn content_length_and_chunked_requests_back_to_back() {
        let input = b"POST /acs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let all = read_all(input);
        assert_eq!(all.len(), 3);
        let a = all[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!((a.method.as_str(), a.target.as_str()), ("POST", "/acs"));
        assert_eq!(a.header("HOST"), Some("x"));
        assert_eq!(a.body, b"hello");
        let b = all[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(b.body, b"abcde");
        assert!(b.wants_close());
        assert!(matches!(all[2], Ok(None)));
    }

    #[test]
    fn raw_bytes_are_the_request_as_sent() {
        let input = b"GET /x HTTP/1.1\r\nA: 1\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
        let mut stream = &input[..];
        let mut buf = Vec::new();
        let (r, raw) = read_request_raw(&mut stream, &mut buf, LIMITS)
            .unwrap()
            .unwrap();
        assert_eq!(r.target, "/x");
        assert_eq!(raw, b"GET /x HTTP/1.1\r\nA: 1\r\n\r\n");
        assert_eq!(buf, b"GET /y HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn bounds_and_broken_framing_are_errors() {
        let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert!(read_all(big_head.as_bytes())[0].is_err());
        assert!(read_all(b"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n")[0].is_err());
        assert!(read_all(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")[0].is_err());
        assert!(read_all(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort")[0].is_err());
        assert!(
            read_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")[0].is_err()
        );
        assert!(matches!(read_all(b"GET / HTT")[0], Ok(None)));
    }
}
