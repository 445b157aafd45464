//! The server side of HTTP authentication, for the Connection Request listener (TR-069
//! §3.2.2): Digest challenges and the check of an answer (RFC 7616 §3.3, §3.5), and Basic
//! (RFC 7617). Pure: nonces and their validity come from the caller.

use super::{
    base64_decode, constant_time_eq, digest_response, parse_credentials, quote, truncated,
    Algorithm, AuthError,
};

/// What the server-side caller says about a nonce presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Issued by us, not expired, nonce count acceptable.
    Valid,
    /// Expired or replayed: the client may retry with a fresh nonce (`stale=true`).
    Stale,
    /// Not one of ours (forged, or from before a restart): a plain failure.
    Unknown,
}

/// The outcome of checking an `Authorization` header on the server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right credentials and a valid nonce.
    Ok,
    /// Right credentials but the nonce is stale: challenge again with `stale=true`.
    Stale,
    /// Wrong or malformed credentials.
    Bad,
}

/// Server-side Digest (RFC 7616 §3.3 and §3.5): builds challenges and verifies answers.
/// Nonce generation and expiry are the caller's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestServer {
    /// The protection space shown to the client.
    pub realm: String,
    /// The algorithm challenged with (GenieACS ignores `algorithm=`, so MD5 is the safe default).
    pub algorithm: Algorithm,
    /// An opaque value the client must echo, if any.
    pub opaque: Option<String>,
}

impl DigestServer {
    /// The `WWW-Authenticate` header value: `qop="auth"`, the algorithm, opaque and stale.
    pub fn challenge(&self, nonce: &str, stale: bool) -> String {
        let mut h = format!(
            "Digest realm={}, qop=\"auth\", algorithm={}, nonce={}",
            quote(&self.realm),
            self.algorithm.name(),
            quote(nonce)
        );
        if let Some(o) = &self.opaque {
            h.push_str(", opaque=");
            h.push_str(&quote(o));
        }
        if stale {
            h.push_str(", stale=true");
        }
        h
    }

    /// Verifies an `Authorization` header for a request with `method` and request-target `uri`
    /// against the expected `username`/`password`. `nonce_status` is called with the nonce and
    /// nonce count only once the response digest is correct. The response is compared in
    /// constant time. Answers without qop=auth are refused, since our challenge demands it.
    pub fn verify(
        &self,
        authorization: &str,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nonce_status: impl FnOnce(&str, u32) -> NonceStatus,
    ) -> Verdict {
        let Ok(cred) = parse_credentials(authorization) else {
            return Verdict::Bad;
        };
        if !cred.is_scheme("Digest") {
            return Verdict::Bad;
        }
        let (Some(user), Some(realm), Some(nonce), Some(cred_uri), Some(response)) = (
            cred.param("username"),
            cred.param("realm"),
            cred.param("nonce"),
            cred.param("uri"),
            cred.param("response"),
        ) else {
            return Verdict::Bad;
        };
        let alg = match cred.param("algorithm") {
            None => Algorithm::Md5,
            Some(a) => match Algorithm::parse(a) {
                Some(a) => a,
                None => return Verdict::Bad,
            },
        };
        if alg != self.algorithm || realm != self.realm || cred_uri != uri {
            return Verdict::Bad;
        }
        if let Some(expected) = &self.opaque {
            if cred.param("opaque") != Some(expected.as_str()) {
                return Verdict::Bad;
            }
        }
        if !cred
            .param("qop")
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
        {
            return Verdict::Bad;
        }
        let (Some(nc_text), Some(cnonce)) = (cred.param("nc"), cred.param("cnonce")) else {
            return Verdict::Bad;
        };
        let nc = match parse_nc(nc_text) {
            Some(nc) => nc,
            None => return Verdict::Bad,
        };
        let expected = digest_response(
            alg,
            username,
            realm,
            password,
            nonce,
            cnonce,
            Some(nc_text),
            method,
            uri,
        );
        // The username is compared in constant time too, so a wrong user costs the same.
        let user_ok = constant_time_eq(user.as_bytes(), username.as_bytes());
        let response_ok = constant_time_eq(
            response.to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        );
        if !(user_ok & response_ok) {
            return Verdict::Bad;
        }
        match nonce_status(nonce, nc) {
            NonceStatus::Valid => Verdict::Ok,
            NonceStatus::Stale => Verdict::Stale,
            NonceStatus::Unknown => Verdict::Bad,
        }
    }
}

/// Parses the 8-hex-digit nonce count (RFC 7616 §3.4); 1 to 8 digits are tolerated.
fn parse_nc(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A Basic challenge (RFC 7617 §2) with the UTF-8 charset hint.
pub fn basic_challenge(realm: &str) -> String {
    format!("Basic realm={}, charset=\"UTF-8\"", quote(realm))
}

/// Decodes a Basic `Authorization` value into (user, password) (RFC 7617 §2).
pub fn basic_credentials(authorization: &str) -> Result<(String, String), AuthError> {
    let cred = parse_credentials(authorization)?;
    if !cred.is_scheme("Basic") {
        return Err(AuthError::Unsupported(format!(
            "scheme {}",
            truncated(&cred.scheme)
        )));
    }
    let t = cred.token68.ok_or(AuthError::Missing("token68"))?;
    let raw = base64_decode(&t).ok_or(AuthError::Malformed("bad base64"))?;
    let text = String::from_utf8(raw).map_err(|_| AuthError::Malformed("credentials not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or(AuthError::Malformed("no colon in credentials"))?;
    Ok((user.to_owned(), pass.to_owned()))
}

/// Verifies a Basic `Authorization` value in constant time (for the given lengths).
pub fn verify_basic(authorization: &str, username: &str, password: &str) -> bool {
    match basic_credentials(authorization) {
        Ok((u, p)) => {
            constant_time_eq(u.as_bytes(), username.as_bytes())
                & constant_time_eq(p.as_bytes(), password.as_bytes())
        }
        Err(_) => false,
    }
}
