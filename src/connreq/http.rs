//! The HTTP/1.x request head of a Connection Request (TR-069 §3.2.2), parsed from bytes.
//!
//! Pure functions over a bounded buffer, so they can be fuzzed and tested without sockets: the
//! listener reads at most `max_header_bytes` and hands them here. Only what a Connection Request
//! needs is kept (RFC 9112 §3 request line, §5 header fields): method, request-target,
//! version, `Host`, `Authorization`, `Connection`, and whether a body follows. Anything
//! ambiguous that request smuggling relies on (line folding, duplicate `Host`,
//! `Authorization` or `Content-Length`, a body length that is not a number) is refused.

use std::fmt;

/// Most header fields in one request; a Connection Request sends a handful.
pub const MAX_FIELDS: usize = 64;

/// The protocol version of a request (RFC 9112 §2.3); HTTP/0.9 and 2 are not spoken here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The text of the status line.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A parsed request head. Borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The request-target exactly as sent (the Digest `uri` must equal it, RFC 7616 §3.4).
    pub target: &'a str,
    pub version: Version,
    pub host: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The connection ends after this request: `Connection: close` on HTTP/1.1, no
    /// `Connection: keep-alive` on HTTP/1.0.
    pub close: bool,
    /// A message body follows (a non-zero `Content-Length` or any `Transfer-Encoding`).
    pub has_body: bool,
}

/// Why a head is refused (answered `400` and closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not UTF-8, or a control character where text belongs.
    Encoding,
    /// The request line is not `METHOD SP TARGET SP HTTP/1.x`.
    RequestLine,
    /// An HTTP version other than 1.0 and 1.1.
    Version,
    /// A header line without a colon, with space before the colon, or folded.
    Field,
    /// More than [`MAX_FIELDS`] header fields.
    TooManyFields,
    /// A field that must appear once appeared twice (Host, Authorization, Content-Length).
    Duplicate,
    /// HTTP/1.1 without `Host` (RFC 9112 §3.2).
    MissingHost,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadError::Encoding => "bad encoding",
            HeadError::RequestLine => "bad request line",
            HeadError::Version => "unsupported HTTP version",
            HeadError::Field => "bad header field",
            HeadError::TooManyFields => "too many header fields",
            HeadError::Duplicate => "duplicate header field",
            HeadError::MissingHost => "no Host header",
        })
    }
}

/// Where the head ends in `buf`: the index just after the empty line (`CRLF CRLF`, or bare
/// `LF LF` as RFC 9112 §2.2 allows a recipient to accept). `None` while incomplete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(pos) = buf
        .get(i..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        let nl = i + pos;
        let next = nl + 1;
        match buf.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if buf.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// Leading empty lines before a request line, which RFC 9112 §2.2 says a server should ignore
/// (some clients send a CRLF after a previous request's body).
pub fn skip_leading_newlines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Parses a complete head (as delimited by [`head_end`]).
pub fn parse_head(head: &[u8]) -> Result<Head<'_>, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Encoding)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(HeadError::RequestLine)?;
    let (method, target, version) = request_line(line)?;
    let mut head = Head {
        method,
        target,
        version,
        host: None,
        authorization: None,
        close: version == Version::Http10,
        has_body: false,
    };
    let mut fields = 0usize;
    let mut content_length_seen = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(HeadError::TooManyFields);
        }
        // Obsolete line folding (RFC 9112 §5.2) is refused rather than unfolded.
        if line.starts_with([' ', '\t']) {
            return Err(HeadError::Field);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Field)?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HeadError::Field);
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(HeadError::Encoding);
        }
        if name.eq_ignore_ascii_case("host") {
            once(&mut head.host, value)?;
        } else if name.eq_ignore_ascii_case("authorization") {
            once(&mut head.authorization, value)?;
        } else if name.eq_ignore_ascii_case("content-length") {
            if content_length_seen {
                return Err(HeadError::Duplicate);
            }
            content_length_seen = true;
            // A length that is not a plain number cannot be trusted to frame anything.
            match value.parse::<u64>() {
                Ok(0) if value.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => head.has_body = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.has_body = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == Version::Http10 {
                    head.close = false;
                }
            }
        }
    }
    if version == Version::Http11 && head.host.is_none() {
        return Err(HeadError::MissingHost);
    }
    Ok(head)
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), single spaces.
fn request_line(line: &str) -> Result<(&str, &str, Version), HeadError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::RequestLine);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HeadError::RequestLine);
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::RequestLine);
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => return Err(HeadError::Version),
        _ => return Err(HeadError::RequestLine),
    };
    Ok((method, target, version))
}

fn once<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Result<(), HeadError> {
    if slot.is_some() {
        return Err(HeadError::Duplicate);
    }
    *slot = Some(value);
    Ok(())
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The path of a request-target: origin-form `/p?q` → `/p`; absolute-form
/// `http://host/p?q` → `/p` with the authority returned too. `None` for asterisk- and
/// authority-form (never a Connection Request).
pub fn target_path(target: &str) -> Option<(Option<&str>, &str)> {
    let (authority, rest) = if target.starts_with('/') {
        (None, target)
    } else {
        let after = target
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .and_then(|_| target.get(7..))?;
        match after.find('/') {
            Some(i) => (after.get(..i), after.get(i..)?),
            None => (Some(after), "/"),
        }
    };
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    Some((authority, path))
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// An answer with an empty body: status line, `WWW-Authenticate` fields, `Content-Length: 0`
/// and `Connection: close` when the connection ends after it.
pub fn response(version: Version, status: u16, challenges: &[String], close: bool) -> Vec<u8> {
    let mut out = format!("{} {status} {}\r\n", version.as_str(), reason(status));
    for c in challenges {
        // A control character would end the header and start another (the realm is checked
        // when the config is read; this holds whatever reaches here).
        if c.chars().any(char::is_control) {
            continue;
        }
        out.push_str("WWW-Authenticate: ");
        out.push_str(c);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n");
    if close {
        out.push_str("Connection: close\r\n");
    } else if version == Version::Http10 {
        out.push_str("Connection: keep-alive\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_header_is_injected() {
        let r = response(
            Version::Http11,
            401,
            &[
                "Digest realm=\"a\r\nSet-Cookie: x=1\"".into(),
                "Basic realm=\"ok\"".into(),
            ],
            false,
        );
        let text = String::from_utf8(r).unwrap();
        assert!(!text.contains("Set-Cookie"), "{text}");
        assert!(
            text.contains("WWW-Authenticate: Basic realm=\"ok\"\r\n"),
            "{text}"
        );
    }

    #[test]
    fn head_end_finds_crlf_and_lf_endings() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\r\n\r"), None);
    }

    #[test]
    fn parses_a_genieacs_request() {
        let raw = b"GET /abc?x=1 HTTP/1.1\r\nHost: 10.0.0.1:7547\r\nAuthorization: Digest username=\"u\"\r\nConnection: keep-alive\r\n\r\n";
        let h = parse_head(raw).unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/abc?x=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.host, Some("10.0.0.1:7547"));
        assert_eq!(h.authorization, Some("Digest username=\"u\""));
        assert!(!h.close);
        assert!(!h.has_body);
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        let h = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(h.close);
        assert_eq!(h.host, None);
        let h = parse_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(!h.close);
        let h = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert!(h.close);
    }

    #[test]
    fn bodies_are_noticed() {
        let h = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!h.has_body);
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(parse_head(raw).unwrap().has_body, "{raw:?}");
        }
    }

    #[test]
    fn refuses_ambiguous_heads() {
        let cases: [(&[u8], HeadError); 11] = [
            (b"GET / HTTP/1.1\r\n\r\n", HeadError::MissingHost),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", HeadError::Version),
            (
                b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
                HeadError::RequestLine,
            ),
            (b"GET /\r\n\r\n", HeadError::RequestLine),
            (b"\x00\x01\x02\r\n\r\n", HeadError::RequestLine),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                HeadError::Duplicate,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nauthorization: y\r\n\r\n",
                HeadError::Duplicate,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
                HeadError::Duplicate,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
                HeadError::Field,
            ),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HeadError::Field),
            (b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n", HeadError::Encoding),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_head(raw),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(parse_head(raw.as_bytes()), Err(HeadError::TooManyFields));
    }

    #[test]
    fn target_paths() {
        assert_eq!(target_path("/a/b?c=d"), Some((None, "/a/b")));
        assert_eq!(target_path("/a#f"), Some((None, "/a")));
        assert_eq!(target_path("http://h:1/a?b"), Some((Some("h:1"), "/a")));
        assert_eq!(target_path("HTTP://h"), Some((Some("h"), "/")));
        assert_eq!(target_path("*"), None);
        assert_eq!(target_path("h:80"), None);
        assert_eq!(target_path("https://h/a"), None);
    }

    #[test]
    fn responses() {
        let r = response(Version::Http11, 401, &["Digest realm=\"r\"".into()], false);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\"\r\nContent-Length: 0\r\n\r\n"
        );
        let r = response(Version::Http10, 200, &[], true);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn never_panics_on_prefixes_of_junk() {
        let junk: Vec<u8> = (0..512u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let req = b"GET /x HTTP/1.1\r\nHost: [::1]:7\r\nAuthorization: Digest a=b\r\n\r\n";
        for buf in [&junk[..], &req[..]] {
            for n in 0..buf.len() {
                let _ = head_end(&buf[..n]);
                let _ = parse_head(&buf[..n]);
            }
        }
        for s in ["[", "[]", "[:", "]:", "[::1]:", "::", "a::b", ""] {
            let _ = crate::http::url::split_authority(s);
            let _ = target_path(s);
        }
    }
}
