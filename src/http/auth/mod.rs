//! HTTP authentication as pure functions: the auth-param parser (RFC 7235 §2.1), HTTP Digest
//! (RFC 7616: MD5, MD5-sess, SHA-256, SHA-256-sess, qop=auth; RFC 2069 compatibility when the
//! challenge has no qop) for both the client and the server side, and Basic (RFC 7617).
//!
//! TR-069 §3.4.4 requires the CPE to support Basic and Digest towards the ACS, and §3.2.2 requires
//! Digest (or Basic over TLS) on the Connection Request listener. Nothing here does I/O, reads a
//! clock or draws random numbers: nonces and cnonces are passed in, nonce validity is decided by
//! the caller through a callback. Every parser is bounded ([`MAX_HEADER_LEN`]) and never panics.

use std::fmt;

use md5::{Digest, Md5};

mod server;

pub use server::{
    basic_challenge, basic_credentials, verify_basic, DigestServer, NonceStatus, Verdict,
};

/// Longest `WWW-Authenticate` / `Authorization` header value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// Why a header could not be parsed or a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The header is longer than [`MAX_HEADER_LEN`] (the length is given).
    TooLong(usize),
    /// The header does not follow the RFC 7235 §2.1 grammar.
    Malformed(&'static str),
    /// A required parameter is missing (its name is given).
    Missing(&'static str),
    /// The challenge asks for something this client does not implement.
    Unsupported(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::TooLong(n) => write!(
                f,
                "authentication header of {n} bytes exceeds the limit of {MAX_HEADER_LEN}"
            ),
            AuthError::Malformed(why) => write!(f, "malformed authentication header: {why}"),
            AuthError::Missing(name) => write!(f, "authentication header lacks \"{name}\""),
            AuthError::Unsupported(what) => write!(f, "unsupported authentication: {what}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// One challenge (from `WWW-Authenticate`) or one set of credentials (from `Authorization`):
/// the scheme and either a token68 or a list of auth-params (RFC 7235 §2.1).
///
/// Parameter names are kept lower-cased; values are unquoted and unescaped. When a name occurs
/// twice the first value is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// The auth-scheme as sent (compare with [`AuthParams::is_scheme`]).
    pub scheme: String,
    /// The token68 form (`Basic dXNlcjpwYXNz`), if the scheme was followed by one.
    pub token68: Option<String>,
    /// The auth-params, names lower-cased, in order.
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    /// Whether the scheme is `scheme` (schemes are case-insensitive, RFC 7235 §2.1).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of parameter `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Credentials must not leak through `{:?}`: token68 (Basic) and `response` are redacted.
impl fmt::Debug for AuthParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(n, v)| {
                if n == "response" {
                    (n.as_str(), "<redacted>")
                } else {
                    (n.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("AuthParams")
            .field("scheme", &self.scheme)
            .field("token68", &self.token68.as_ref().map(|_| "<redacted>"))
            .field("params", &params)
            .finish()
    }
}

/// Parses a `WWW-Authenticate` header value: one or more challenges (RFC 7235 §4.1).
///
/// Tolerates what servers send in the field: unquoted values (`algorithm=MD5`), whitespace
/// around `=`, empty list elements and trailing commas. Returns at least one challenge.
pub fn parse_challenges(header: &str) -> Result<Vec<AuthParams>, AuthError> {
    let list = parse_list(header)?;
    if list.is_empty() {
        return Err(AuthError::Malformed("no challenge"));
    }
    Ok(list)
}

/// Parses an `Authorization` header value: exactly one set of credentials (RFC 7235 §4.2).
pub fn parse_credentials(header: &str) -> Result<AuthParams, AuthError> {
    let mut list = parse_list(header)?;
    match list.len() {
        1 => list.pop().ok_or(AuthError::Malformed("no credentials")),
        0 => Err(AuthError::Malformed("no credentials")),
        _ => Err(AuthError::Malformed("more than one scheme in credentials")),
    }
}

/// The comma-separated list grammar shared by both headers (RFC 7235 §2.1, RFC 7230 §7).
fn parse_list(header: &str) -> Result<Vec<AuthParams>, AuthError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(AuthError::TooLong(header.len()));
    }
    let mut out: Vec<AuthParams> = Vec::new();
    let mut sc = Scanner { s: header, pos: 0 };
    loop {
        sc.skip_ows_and_commas();
        if sc.at_end() {
            break;
        }
        let tok = sc.token();
        if tok.is_empty() {
            return Err(AuthError::Malformed("expected a token"));
        }
        let after_token = sc.pos;
        sc.skip_ows();
        if sc.peek() == Some(b'=') {
            // An auth-param of the current challenge.
            let Some(current) = out.last_mut() else {
                return Err(AuthError::Malformed("parameter before any scheme"));
            };
            sc.bump();
            sc.skip_ows();
            let value = sc.value()?;
            let name = tok.to_ascii_lowercase();
            if current.param(&name).is_none() {
                current.params.push((name, value));
            }
            sc.skip_ows();
            if !matches!(sc.peek(), None | Some(b',')) {
                return Err(AuthError::Malformed("expected a comma after a parameter"));
            }
        } else {
            // A new scheme, possibly followed by a token68.
            let token68 = if sc.pos > after_token {
                sc.token68()
            } else {
                None
            };
            out.push(AuthParams {
                scheme: tok.to_owned(),
                token68,
                params: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// A cursor over the header; it only stops at ASCII bytes, so every slice is on a char boundary.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    fn skip_ows_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.bump();
        }
    }

    fn slice(&self, from: usize) -> &'a str {
        self.s.get(from..self.pos).unwrap_or("")
    }

    /// A token (RFC 7230 §3.2.6); empty if none is here.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.bump();
        }
        self.slice(start)
    }

    /// A token68 (RFC 7235 §2.1) if one, and only one, stands before the next comma.
    fn token68(&mut self) -> Option<String> {
        let bytes = self.s.as_bytes();
        let mut end = self.pos;
        while bytes.get(end).copied().is_some_and(is_token68_char) {
            end += 1;
        }
        if end == self.pos {
            return None;
        }
        while bytes.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(bytes.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if !matches!(bytes.get(after), None | Some(b',')) {
            return None;
        }
        let t = self.s.get(self.pos..end)?.to_owned();
        self.pos = end;
        Some(t)
    }

    /// A parameter value: a quoted-string with backslash escapes, or an unquoted run.
    fn value(&mut self) -> Result<String, AuthError> {
        if self.peek() == Some(b'"') {
            self.bump();
            let mut v: Vec<u8> = Vec::new();
            loop {
                match self.peek() {
                    None => return Err(AuthError::Malformed("unterminated quoted string")),
                    Some(b'"') => {
                        self.bump();
                        break;
                    }
                    Some(b'\\') => {
                        self.bump();
                        match self.peek() {
                            Some(c) if c != b'\t' && c.is_ascii_control() => {
                                return Err(AuthError::Malformed("control character"))
                            }
                            Some(c) => v.push(c),
                            None => return Err(AuthError::Malformed("unterminated quoted string")),
                        }
                        self.bump();
                    }
                    Some(c) if c != b'\t' && c.is_ascii_control() => {
                        return Err(AuthError::Malformed("control character"))
                    }
                    Some(c) => {
                        v.push(c);
                        self.bump();
                    }
                }
            }
            // Only ASCII backslashes were removed from valid UTF-8, so this cannot fail; map
            // the impossible case to an error rather than a panic.
            String::from_utf8(v).map_err(|_| AuthError::Malformed("invalid UTF-8"))
        } else {
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c == b' ' || c == b'\t' || c == b',' || c == b'"' {
                    break;
                }
                if c.is_ascii_control() {
                    return Err(AuthError::Malformed("control character"));
                }
                self.bump();
            }
            Ok(self.slice(start).to_owned())
        }
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

/// Digest hash algorithms of RFC 7616 §3.3 (`SHA-512-256` is not implemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default when the challenge names none).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` value (case-insensitive); `None` if unknown.
    pub fn parse(s: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The name as written in the headers.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Preference when a server offers several Digest challenges (RFC 7616 §3.7): SHA-256 first.
    fn rank(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// H(p1:p2:…) in lower-case hex (RFC 7616 §3.4.1).
    fn hash(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => {
                let mut h = Md5::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        h.update(b":");
                    }
                    h.update(p.as_bytes());
                }
                hex(&h.finalize())
            }
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                let mut h = ring::digest::Context::new(&ring::digest::SHA256);
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        h.update(b":");
                    }
                    h.update(p.as_bytes());
                }
                hex(h.finish().as_ref())
            }
        }
    }
}

/// The `response` value of RFC 7616 §3.4.1 (with `qop=auth`) or RFC 2069 (without qop).
/// `qop` is `Some((nc, cnonce))` for qop=auth; `cnonce` is also needed by the -sess variants.
#[allow(clippy::too_many_arguments)]
fn digest_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    qop_nc: Option<&str>,
    method: &str,
    uri: &str,
) -> String {
    let mut ha1 = alg.hash(&[username, realm, password]);
    if alg.is_sess() {
        ha1 = alg.hash(&[&ha1, nonce, cnonce]);
    }
    let ha2 = alg.hash(&[method, uri]);
    match qop_nc {
        Some(nc) => alg.hash(&[&ha1, nonce, nc, cnonce, "auth", &ha2]),
        None => alg.hash(&[&ha1, nonce, &ha2]),
    }
}

/// Checks that a Digest challenge can be answered and returns its algorithm.
pub fn digest_algorithm(challenge: &AuthParams) -> Result<Algorithm, AuthError> {
    if !challenge.is_scheme("Digest") {
        return Err(AuthError::Unsupported(format!(
            "scheme {}",
            truncated(&challenge.scheme)
        )));
    }
    let alg = match challenge.param("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(a)
            .ok_or_else(|| AuthError::Unsupported(format!("digest algorithm {}", truncated(a))))?,
    };
    challenge
        .param("nonce")
        .ok_or(AuthError::Missing("nonce"))?;
    let qop_auth = qop_offers_auth(challenge)?;
    if alg.is_sess() && !qop_auth {
        return Err(AuthError::Unsupported(format!(
            "{} without qop",
            alg.name()
        )));
    }
    Ok(alg)
}

/// Whether the challenge offers `qop=auth`; `Ok(false)` when it has no qop (RFC 2069),
/// an error when it offers only qop values we do not implement (auth-int).
fn qop_offers_auth(challenge: &AuthParams) -> Result<bool, AuthError> {
    match challenge.param("qop") {
        None => Ok(false),
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                Ok(true)
            } else {
                Err(AuthError::Unsupported(format!("qop {}", truncated(list))))
            }
        }
    }
}

/// Whether a challenge carries `stale=true` (RFC 7616 §3.3): the credentials were right, only
/// the nonce expired.
pub fn is_stale(challenge: &AuthParams) -> bool {
    challenge
        .param("stale")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// What a client should answer among the challenges of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preferred<'a> {
    /// The strongest Digest challenge this client can answer.
    Digest(&'a AuthParams),
    /// Basic, only when no usable Digest challenge was offered.
    Basic(&'a AuthParams),
}

/// Picks the challenge to answer: Digest with the strongest supported algorithm, else Basic.
pub fn preferred_challenge(challenges: &[AuthParams]) -> Option<Preferred<'_>> {
    let digest = challenges
        .iter()
        .filter_map(|c| digest_algorithm(c).ok().map(|a| (a.rank(), c)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, c)| Preferred::Digest(c));
    digest.or_else(|| {
        challenges
            .iter()
            .find(|c| c.is_scheme("Basic"))
            .map(Preferred::Basic)
    })
}

/// Client-side Digest state for one server: the nonce in use and the nonce count, so later
/// requests can be pre-authorized (RFC 7616 §3.4: the client reuses the nonce with nc+1).
#[derive(Debug, Clone)]
pub struct DigestSession {
    algorithm: Algorithm,
    algorithm_explicit: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    qop_auth: bool,
    cnonce: String,
    nc: u32,
}

impl DigestSession {
    /// Starts answering `challenge` (a Digest challenge); `cnonce` is a fresh random string
    /// chosen by the caller (RFC 7616 §3.4: unpredictable, quoted, no `"`).
    pub fn new(challenge: &AuthParams, cnonce: &str) -> Result<DigestSession, AuthError> {
        let algorithm = digest_algorithm(challenge)?;
        let nonce = challenge
            .param("nonce")
            .ok_or(AuthError::Missing("nonce"))?;
        Ok(DigestSession {
            algorithm,
            algorithm_explicit: challenge.param("algorithm").is_some(),
            realm: challenge.param("realm").unwrap_or("").to_owned(),
            nonce: nonce.to_owned(),
            opaque: challenge.param("opaque").map(str::to_owned),
            qop_auth: qop_offers_auth(challenge)?,
            cnonce: cnonce.to_owned(),
            nc: 0,
        })
    }

    /// The `Authorization` header value for the next request (nc is incremented first, so the
    /// first request sends `nc=00000001`).
    pub fn authorization(
        &mut self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
    ) -> String {
        self.nc = self.nc.wrapping_add(1).max(1);
        let nc = format!("{:08x}", self.nc);
        let response = digest_response(
            self.algorithm,
            username,
            &self.realm,
            password,
            &self.nonce,
            &self.cnonce,
            self.qop_auth.then_some(nc.as_str()),
            method,
            uri,
        );
        let mut h = format!(
            "Digest username={}, realm={}, uri={}",
            quote(username),
            quote(&self.realm),
            quote(uri)
        );
        if self.algorithm_explicit {
            h.push_str(", algorithm=");
            h.push_str(self.algorithm.name());
        }
        h.push_str(", nonce=");
        h.push_str(&quote(&self.nonce));
        if self.qop_auth {
            h.push_str(", nc=");
            h.push_str(&nc);
            h.push_str(", cnonce=");
            h.push_str(&quote(&self.cnonce));
            h.push_str(", qop=auth");
        }
        h.push_str(", response=");
        h.push_str(&quote(&response));
        if let Some(o) = &self.opaque {
            h.push_str(", opaque=");
            h.push_str(&quote(o));
        }
        h
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The server nonce in use.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The nonce count sent with the last request (0 before the first).
    pub fn nc(&self) -> u32 {
        self.nc
    }
}

/// The `Authorization` value for Basic (RFC 7617 §2): `Basic base64(user:password)`.
pub fn basic_authorization(username: &str, password: &str) -> String {
    let mut raw = Vec::with_capacity(username.len() + password.len() + 1);
    raw.extend_from_slice(username.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password.as_bytes());
    format!("Basic {}", base64_encode(&raw))
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A quoted-string with `"` and `\` escaped (RFC 7230 §3.2.6).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// At most 32 characters of a server-supplied value, for error messages.
fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(B64[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// Decodes standard base64 (RFC 4648 §4); padding is optional, anything else is refused.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chal(h: &str) -> AuthParams {
        match parse_challenges(h) {
            Ok(mut v) => v.remove(0),
            Err(e) => panic!("{h}: {e}"),
        }
    }

    #[test]
    fn parses_rfc7616_challenge_with_quoted_and_unquoted_values() {
        let list = parse_challenges(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", \
             Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].param("ALGORITHM"), Some("SHA-256"));
        assert_eq!(list[0].param("qop"), Some("auth, auth-int"));
        assert_eq!(list[1].param("algorithm"), Some("MD5"));
        assert!(list[1].is_scheme("digest"));
        // Preference picks SHA-256.
        match preferred_challenge(&list) {
            Some(Preferred::Digest(c)) => assert_eq!(c.param("algorithm"), Some("SHA-256")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_escapes_whitespace_token68_and_several_schemes() {
        let list = parse_challenges(
            "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic realm = simple ,,",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].param("title"), Some("Login to \"apps\""));
        assert_eq!(list[0].param("type"), Some("1"));
        assert_eq!(list[1].param("realm"), Some("simple"));
        let c = parse_credentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(c.token68.as_deref(), Some("QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(c.params.is_empty());
        let bare = parse_challenges("Negotiate, Basic realm=\"x\"").unwrap();
        assert_eq!(bare.len(), 2);
        assert!(bare[0].params.is_empty() && bare[0].token68.is_none());
    }

    #[test]
    fn rejects_malformed_and_oversized_headers() {
        for bad in [
            "",
            " , ",
            "realm=\"x\"",
            "Digest realm=\"x",
            "Digest realm=\"x\" nonce=\"y\"",
            "Digest realm=\"a\u{1}b\"",
            "Digest realm=\"x\\",
            "\"quoted\"",
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("Digest realm=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert!(matches!(
            parse_challenges(&long),
            Err(AuthError::TooLong(_))
        ));
        assert!(parse_credentials("Basic a, Digest b=c").is_err());
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix and many byte substitutions of real headers.
        let seeds = [
            "Digest realm=\"a\\\"b\", qop=\"auth,auth-int\", nonce=abc==, stale=TRUE,",
            "Basic dXNlcjpwYXNz==, Newauth x=\"é\\é\"",
        ];
        let alphabet = [
            "\"", "\\", ",", "=", " ", "\t", "a", "é", "\u{0}", "\r", "Digest ",
        ];
        for seed in seeds {
            for end in 0..=seed.len() {
                if let Some(p) = seed.get(..end) {
                    let _ = parse_challenges(p);
                    let _ = parse_credentials(p);
                }
            }
            for (i, _) in seed.char_indices() {
                for a in alphabet {
                    let mut s = String::from(seed.get(..i).unwrap_or(""));
                    s.push_str(a);
                    s.push_str(seed.get(i..).unwrap_or(""));
                    if let Ok(list) = parse_challenges(&s) {
                        for c in &list {
                            let _ = DigestSession::new(c, "c");
                        }
                    }
                }
            }
        }
    }

    /// RFC 7616 §3.9.1, both algorithms.
    #[test]
    fn rfc7616_example_vectors() {
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = chal(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ));
            let mut s =
                DigestSession::new(&c, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ").unwrap();
            let h = s.authorization("GET", "/dir/index.html", "Mufasa", "Circle of Life");
            let cred = parse_credentials(&h).unwrap();
            assert_eq!(cred.param("response"), Some(expected), "{alg}");
            assert_eq!(cred.param("nc"), Some("00000001"));
            assert_eq!(cred.param("qop"), Some("auth"));
            assert_eq!(cred.param("algorithm"), Some(alg));
            assert_eq!(
                cred.param("opaque"),
                Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
            );
            assert_eq!(cred.param("uri"), Some("/dir/index.html"));
            assert_eq!(cred.param("username"), Some("Mufasa"));
        }
    }

    /// RFC 2617 §3.5 (MD5, qop=auth, no algorithm parameter in the challenge).
    #[test]
    fn rfc2617_example_vector_and_nc_increments() {
        let c = chal(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        let mut s = DigestSession::new(&c, "0a4f113b").unwrap();
        assert_eq!(s.algorithm(), Algorithm::Md5);
        let h = s.authorization("GET", "/dir/index.html", "Mufasa", "Circle Of Life");
        let cred = parse_credentials(&h).unwrap();
        assert_eq!(
            cred.param("response"),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert_eq!(cred.param("algorithm"), None);
        let h2 = s.authorization("GET", "/dir/index.html", "Mufasa", "Circle Of Life");
        let cred2 = parse_credentials(&h2).unwrap();
        assert_eq!(cred2.param("nc"), Some("00000002"));
        assert_eq!(s.nc(), 2);
        assert_ne!(cred.param("response"), cred2.param("response"));
    }

    #[test]
    fn rfc2069_compatibility_without_qop() {
        // RFC 2069 §2.1.1: response = H(H(A1):nonce:H(A2)), no nc/cnonce.
        let c = chal("Digest realm=\"r\", nonce=\"n\"");
        let mut s = DigestSession::new(&c, "ignored").unwrap();
        let cred = parse_credentials(&s.authorization("POST", "/acs", "u", "p")).unwrap();
        assert_eq!(cred.param("qop"), None);
        assert_eq!(cred.param("nc"), None);
        let ha1 = Algorithm::Md5.hash(&["u", "r", "p"]);
        let ha2 = Algorithm::Md5.hash(&["POST", "/acs"]);
        assert_eq!(
            cred.param("response"),
            Some(Algorithm::Md5.hash(&[&ha1, "n", &ha2]).as_str())
        );
        // -sess needs a cnonce, hence qop.
        assert!(
            DigestSession::new(&chal("Digest realm=r, nonce=n, algorithm=MD5-sess"), "c").is_err()
        );
    }

    #[test]
    fn sess_variants_hash_the_session_key() {
        for (name, alg) in [
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256-sess", Algorithm::Sha256Sess),
        ] {
            let c = chal(&format!(
                "Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm={name}"
            ));
            let mut s = DigestSession::new(&c, "cn").unwrap();
            let cred = parse_credentials(&s.authorization("POST", "/", "u", "p")).unwrap();
            let ha1 = alg.hash(&[&alg.hash(&["u", "r", "p"]), "n", "cn"]);
            let ha2 = alg.hash(&["POST", "/"]);
            let want = alg.hash(&[&ha1, "n", "00000001", "cn", "auth", &ha2]);
            assert_eq!(cred.param("response"), Some(want.as_str()), "{name}");
        }
    }

    #[test]
    fn unsupported_challenges_are_refused() {
        assert!(matches!(
            DigestSession::new(&chal("Digest realm=r, nonce=n, qop=auth-int"), "c"),
            Err(AuthError::Unsupported(_))
        ));
        assert!(matches!(
            DigestSession::new(&chal("Digest realm=r, nonce=n, algorithm=SHA-512-256"), "c"),
            Err(AuthError::Unsupported(_))
        ));
        assert!(matches!(
            DigestSession::new(&chal("Digest realm=r"), "c"),
            Err(AuthError::Missing("nonce"))
        ));
        let only_basic =
            parse_challenges("Digest realm=r, algorithm=foo, nonce=n, Basic realm=b").unwrap();
        assert!(matches!(
            preferred_challenge(&only_basic),
            Some(Preferred::Basic(_))
        ));
        assert_eq!(
            preferred_challenge(&parse_challenges("Negotiate").unwrap()),
            None
        );
    }

    #[test]
    fn server_round_trip_ok_stale_bad() {
        for alg in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ] {
            let server = DigestServer {
                realm: "cwmpd".into(),
                algorithm: alg,
                opaque: Some("op".into()),
            };
            let header = server.challenge("nonce1", false);
            let c = chal(&header);
            assert!(!is_stale(&c));
            let mut s = DigestSession::new(&c, "abc").unwrap();
            let auth = s.authorization("GET", "/cr", "acs", "secret");
            let mut seen = None;
            let v = server.verify(&auth, "GET", "/cr", "acs", "secret", |n, nc| {
                seen = Some((n.to_owned(), nc));
                NonceStatus::Valid
            });
            assert_eq!(v, Verdict::Ok, "{alg:?}");
            assert_eq!(seen, Some(("nonce1".to_owned(), 1)));
            let stale = |_: &str, _: u32| NonceStatus::Stale;
            let valid = |_: &str, _: u32| NonceStatus::Valid;
            assert_eq!(
                server.verify(&auth, "GET", "/cr", "acs", "secret", stale),
                Verdict::Stale
            );
            assert_eq!(
                server.verify(&auth, "GET", "/cr", "acs", "wrong", valid),
                Verdict::Bad
            );
            assert_eq!(
                server.verify(&auth, "GET", "/cr", "other", "secret", valid),
                Verdict::Bad
            );
            assert_eq!(
                server.verify(&auth, "POST", "/cr", "acs", "secret", valid),
                Verdict::Bad
            );
            assert_eq!(
                server.verify(&auth, "GET", "/other", "acs", "secret", valid),
                Verdict::Bad
            );
            let no_opaque = auth.replace(", opaque=\"op\"", "");
            assert_eq!(
                server.verify(&no_opaque, "GET", "/cr", "acs", "secret", valid),
                Verdict::Bad
            );
        }
        let server = DigestServer {
            realm: "r".into(),
            algorithm: Algorithm::Md5,
            opaque: None,
        };
        assert!(is_stale(&chal(&server.challenge("n", true))));
        // An RFC 2069 answer (no qop) is refused because the challenge demanded qop=auth.
        let mut old = DigestSession::new(&chal("Digest realm=\"r\", nonce=\"n\""), "c").unwrap();
        let auth = old.authorization("GET", "/", "u", "p");
        assert_eq!(
            server.verify(&auth, "GET", "/", "u", "p", |_, _| NonceStatus::Valid),
            Verdict::Bad
        );
        assert_eq!(
            server.verify("Basic dTpw", "GET", "/", "u", "p", |_, _| {
                NonceStatus::Valid
            }),
            Verdict::Bad
        );
    }

    #[test]
    fn basic_rfc7617_example_and_round_trip() {
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            basic_credentials("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap(),
            ("Aladdin".to_owned(), "open sesame".to_owned())
        );
        assert!(verify_basic(
            &basic_authorization("u", "p:with:colons"),
            "u",
            "p:with:colons"
        ));
        assert!(!verify_basic(&basic_authorization("u", "p"), "u", "q"));
        assert!(basic_credentials("Basic !!!!").is_err());
        assert!(basic_credentials("Basic dXNlcg==").is_err()); // no colon
        assert_eq!(basic_challenge("x"), "Basic realm=\"x\", charset=\"UTF-8\"");
    }

    #[test]
    fn base64_round_trips_all_lengths() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            let enc = base64_encode(&data[..n]);
            assert_eq!(enc.len() % 4, 0);
            assert_eq!(base64_decode(&enc).as_deref(), Some(&data[..n]));
            assert_eq!(
                base64_decode(enc.trim_end_matches('=')).as_deref(),
                Some(&data[..n])
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("A"), None);
        assert_eq!(base64_decode("Zm8==="), None);
    }

    #[test]
    fn debug_redacts_secrets_and_quote_escapes() {
        let c = parse_credentials("Digest username=\"u\", response=\"abcdef\"").unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("abcdef"), "{d}");
        let b = parse_credentials("Basic c2VjcmV0OnNlY3JldA==").unwrap();
        assert!(!format!("{b:?}").contains("c2VjcmV0"));
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let back = chal(&format!("Digest realm={}", quote("a\"b\\c")));
        assert_eq!(back.param("realm"), Some("a\"b\\c"));
    }
}
