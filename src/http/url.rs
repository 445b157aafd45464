//! URLs as the agent's HTTP clients and its Connection Request listener see them (RFC 3986):
//! one [`Url`] split (scheme, user information, host with IPv6 literals, port, path and query),
//! the `Host` authority grammar ([`split_authority`]), origins, and the redaction of a URL for
//! log lines. Pure: no I/O; every function is one linear pass over its input and borrows from
//! it (nothing grows beyond the input's size).

use std::fmt;
use std::net::IpAddr;

/// Why a text is not a URL [`Url::parse`] can split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// No `scheme://` (RFC 3986 §3.1 scheme characters) at the start.
    NoScheme,
    /// The authority is not `[userinfo@]host[:port]` (empty host, bad port, broken IPv6
    /// literal).
    BadAuthority,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NoScheme => write!(f, "no scheme:// at the start"),
            UrlError::BadAuthority => write!(f, "no valid host[:port]"),
        }
    }
}

/// A URL with an authority (`scheme://[userinfo@]host[:port][/path][?query][#fragment]`, RFC
/// 3986 §3), split, not validated beyond that: each user checks what it needs (http or https,
/// no user information, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url<'a> {
    /// As written (compare with [`Url::is_http`], [`Url::is_https`]).
    pub scheme: &'a str,
    /// What stands before the last `@` of the authority, still percent-encoded.
    pub userinfo: Option<&'a str>,
    /// As written: not lower-cased; an IPv6 literal keeps its brackets.
    pub host: &'a str,
    /// The port, when the authority gives one.
    pub port: Option<u16>,
    /// From the first `/` or `?` after the authority to the fragment: empty, `/p`, `/p?q` or
    /// `?q`.
    pub path_query: &'a str,
    /// After the first `#` that ends the authority or the path and query (never sent, RFC
    /// 9110 §4.2.4).
    pub fragment: Option<&'a str>,
    /// `host[:port]` as written (the authority without its user information).
    host_port: &'a str,
}

impl<'a> Url<'a> {
    /// Splits `text` (not trimmed: callers trim where they accept padding). The authority ends
    /// at the first `/`, `?` or `#` (RFC 3986 §3.2); user information ends at its last `@`.
    pub fn parse(text: &'a str) -> Result<Url<'a>, UrlError> {
        let (scheme, rest) = text.split_once("://").ok_or(UrlError::NoScheme)?;
        if !is_scheme(scheme) {
            return Err(UrlError::NoScheme);
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (path_query, fragment) = match tail.split_once('#') {
            Some((pq, f)) => (pq, Some(f)),
            None => (tail, None),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_authority(host_port).ok_or(UrlError::BadAuthority)?;
        Ok(Url {
            scheme,
            userinfo,
            host,
            port,
            path_query,
            fragment,
            host_port,
        })
    }

    pub fn is_http(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("http")
    }

    pub fn is_https(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("https")
    }

    /// The port, or the scheme's default for http and https.
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or_else(|| {
            (self.is_http() || self.is_https()).then(|| Origin::default_port(self.is_https()))
        })
    }

    /// The origin of an http or https URL (host lower-cased).
    pub fn origin(&self) -> Option<Origin> {
        if !(self.is_http() || self.is_https()) {
            return None;
        }
        Some(Origin {
            https: self.is_https(),
            host: self.host.to_ascii_lowercase(),
            port: self.port_or_default()?,
        })
    }

    /// The path alone (RFC 3986 §3.3): `/` when the URL has none.
    pub fn path(&self) -> &'a str {
        match self.path_query.split('?').next() {
            Some(p) if !p.is_empty() => p,
            _ => "/",
        }
    }

    /// `scheme://host[:port]` + path and query: the URL without user information and
    /// fragment, as written otherwise.
    pub fn without_userinfo(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host_port, self.path_query)
    }
}

/// Resolves a URI reference (a redirect's `Location`) against a base URL given as its origin
/// and path (RFC 3986 §5.2, without a fragment): an absolute reference as it is, a
/// network-path one (`//host/p`) with the base's scheme, a relative one merged with the base
/// path and its dot segments removed.
pub fn resolve(base: &Origin, base_path: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or("");
    if has_scheme(reference) {
        return reference.to_owned();
    }
    if let Some(rest) = reference.strip_prefix("//") {
        let scheme = if base.https { "https" } else { "http" };
        return format!("{scheme}://{rest}");
    }
    let (path, query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let merged = if path.is_empty() {
        base_path.to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        let dir = base_path
            .rfind('/')
            .and_then(|i| base_path.get(..=i))
            .unwrap_or("/");
        format!("{dir}{path}")
    };
    let mut out = base.to_string();
    out.push_str(&remove_dot_segments(&merged));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Whether a URI reference starts with `scheme:` (RFC 3986 §3.1).
fn has_scheme(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(scheme, _)| is_scheme(scheme))
}

/// RFC 3986 §5.2.4 for an absolute path.
pub fn remove_dot_segments(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let last = segs.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        match *s {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
}

/// Splits `host[:port]` (IPv6 literals in brackets, RFC 3986 §3.2.2; the `Host` header of RFC
/// 9110 §7.2) into the host as written, brackets kept, and the port if given. `None` when
/// malformed: an empty host, a bare IPv6 address, a port that is empty, not digits or above
/// 65535, anything after a literal's `]` but `:port`.
pub fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = authority.get(..end + 2)?;
        let after = rest.get(end + 1..)?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// The IP address a URL host names, if it is a literal (an IPv6 one with or without brackets).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Decodes `%XX` escapes (RFC 3986 §2.1); a malformed escape is kept as it is, invalid UTF-8
/// becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL for a log line, a message or `cwmpd status`: user information
/// (`http://user:pass@host/`) is replaced by `***` and the query and fragment by `…`
/// (`https://host/fw.bin?…`), so neither a password given in the URL nor a signed URL's
/// signature (`X-Amz-Signature=…`) ever reaches syslog. Any text is accepted (a malformed URL
/// is redacted as far as it can be read).
pub fn redact(url: &str) -> String {
    let (url, hidden) = match url.find(['?', '#']) {
        Some(i) => (url.get(..i).unwrap_or(""), url.get(i..i + 1).unwrap_or("")),
        None => (url, ""),
    };
    let hidden = if hidden.is_empty() {
        String::new()
    } else {
        format!("{hidden}…")
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url}{hidden}");
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}{hidden}"),
        None => format!("{url}{hidden}"),
    }
}

/// The origin of an http(s) URL (RFC 6454 §4: scheme, host, port): where credentials may go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `https` (else `http`).
    pub https: bool,
    /// The host, lower-case; an IPv6 literal in brackets.
    pub host: String,
    /// The port, the scheme's default when the URL gives none.
    pub port: u16,
}

impl Origin {
    /// The scheme's default port (RFC 9110 §4.2).
    pub fn default_port(https: bool) -> u16 {
        if https {
            443
        } else {
            80
        }
    }
}

/// `scheme://host` with `:port` unless it is the scheme's default (RFC 6454 §6.2).
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.port == Origin::default_port(self.https) {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_their_parts() {
        let u = Url::parse("HTTPS://u%3A:p@w@ACS.example:8443/cwmp/acs?id=1#frag").unwrap();
        assert!(u.is_https() && !u.is_http());
        assert_eq!(u.userinfo, Some("u%3A:p@w"));
        assert_eq!((u.host, u.port), ("ACS.example", Some(8443)));
        assert_eq!(u.path_query, "/cwmp/acs?id=1");
        assert_eq!(u.path(), "/cwmp/acs");
        assert_eq!(u.fragment, Some("frag"));
        assert_eq!(
            u.without_userinfo(),
            "HTTPS://ACS.example:8443/cwmp/acs?id=1"
        );
        assert_eq!(
            u.origin(),
            Some(Origin {
                https: true,
                host: "acs.example".into(),
                port: 8443
            })
        );
        let u = Url::parse("http://[2001:db8::1]?q").unwrap();
        assert_eq!(
            (u.host, u.port, u.path_query),
            ("[2001:db8::1]", None, "?q")
        );
        assert_eq!((u.path(), u.port_or_default()), ("/", Some(80)));
        let u = Url::parse("http://h#a/b?c").unwrap();
        assert_eq!((u.host, u.path_query, u.fragment), ("h", "", Some("a/b?c")));
        let u = Url::parse("ftp://h:21/x").unwrap();
        assert_eq!((u.port_or_default(), u.origin()), (Some(21), None));
        assert_eq!(Url::parse("ftp://h/x").unwrap().port_or_default(), None);
        assert_eq!(Url::parse("h/p://x").err(), Some(UrlError::NoScheme));
        for bad in ["", "acs.example/cwmp", "://h/", "1http://h/", "ht tp://h/"] {
            assert_eq!(Url::parse(bad).err(), Some(UrlError::NoScheme), "{bad:?}");
        }
        for bad in [
            "http://",
            "http:///p",
            "http://u@/",
            "http://:80/",
            "http://h:/",
            "http://h:99999/",
            "http://h:8x/",
            "http://::1/",
            "http://[::1/",
            "http://[::1]x/",
        ] {
            assert_eq!(
                Url::parse(bad).err(),
                Some(UrlError::BadAuthority),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn authorities() {
        assert_eq!(split_authority("a.b:7547"), Some(("a.b", Some(7547))));
        assert_eq!(split_authority("a.b"), Some(("a.b", None)));
        assert_eq!(split_authority("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split_authority("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_authority("::1"), None);
        assert_eq!(split_authority("a:"), None);
        assert_eq!(split_authority("a:99999"), None);
        assert_eq!(split_authority(":80"), None);
        assert_eq!(split_authority("[::1]x"), None);
        for s in ["[", "[]", "[:", "]:", "[::1]:", "::", "a::b", ""] {
            let _ = split_authority(s);
            let _ = Url::parse(s);
        }
        assert_eq!(host_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(host_ip("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(host_ip("cpe.example"), None);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("http://u:secret@files.example:8080/a@b?x=1"),
            "http://***@files.example:8080/a@b?…"
        );
        assert_eq!(
            redact("https://files.example/fw"),
            "https://files.example/fw"
        );
        assert_eq!(redact("not a url"), "not a url");
        // A signed URL's query, a fragment, a query right after the host (even one with an @).
        assert_eq!(
            redact("https://s3.example/b/fw.bin?X-Amz-Signature=abc&X-Amz-Credential=k"),
            "https://s3.example/b/fw.bin?…"
        );
        assert_eq!(redact("https://h/p#frag?x"), "https://h/p#…");
        assert_eq!(redact("https://h?sig=a@b"), "https://h?…");
        assert_eq!(redact("https://u:p@h?sig=1"), "https://***@h?…");
        assert_eq!(redact("junk?sig=1"), "junk?…");
        assert_eq!(redact(""), "");
    }

    #[test]
    fn long_inputs_are_one_pass() {
        // A megabyte of colons, brackets or `@` in the authority: a quadratic split would not
        // finish in the test's time.
        for text in [
            format!("http://{}", ":".repeat(1 << 20)),
            format!("http://[{}", ":".repeat(1 << 20)),
            format!("http://{}h/", "@".repeat(1 << 20)),
        ] {
            let _ = Url::parse(&text);
            assert!(redact(&text).len() <= text.len() + 4);
        }
    }

    #[test]
    fn references_resolve_against_the_base() {
        let base = Origin {
            https: true,
            host: "acs.example".into(),
            port: 443,
        };
        let r = |l: &str| resolve(&base, "/a/b/c", l);
        assert_eq!(r("/new"), "https://acs.example/new");
        assert_eq!(r("d"), "https://acs.example/a/b/d");
        assert_eq!(r("../d?y=2#frag"), "https://acs.example/a/d?y=2");
        assert_eq!(r("?z"), "https://acs.example/a/b/c?z");
        assert_eq!(r("//other:444/p"), "https://other:444/p");
        assert_eq!(r("HTTP://x/y#f"), "HTTP://x/y");
        assert_eq!(r("/../../x"), "https://acs.example/x");
        assert_eq!(r(""), "https://acs.example/a/b/c");
        assert_eq!(remove_dot_segments("/a/./b/../c/."), "/a/c/");
        assert!(has_scheme("a+b-c.d:x") && !has_scheme("1a:x") && !has_scheme("/a:b"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3a%3Ac"), "a@b::c");
        // Malformed escapes are kept; invalid UTF-8 is replaced, never a panic.
        assert_eq!(percent_decode("%zz%4%"), "%zz%4%");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }

    #[test]
    fn origins_print_the_port_only_when_not_the_default() {
        let o = |https, host: &str, port| Origin {
            https,
            host: host.into(),
            port,
        };
        assert_eq!(
            o(true, "acs.example", 443).to_string(),
            "https://acs.example"
        );
        assert_eq!(o(false, "acs", 443).to_string(), "http://acs:443");
        assert_eq!(o(false, "[::1]", 80).to_string(), "http://[::1]");
        assert_eq!(o(true, "[::1]", 8443).to_string(), "https://[::1]:8443");
        assert_ne!(o(true, "a", 443), o(false, "a", 443));
    }
}
