//! The UDP Connection Request (TR-069 Annex G, TR-111 Part 2): the ACS reaches a CPE behind a NAT
//! by sending one UDP datagram to the binding STUN discovered. The datagram is an HTTP GET in
//! one packet, its Request-URI carrying the signed query:
//!
//! ```text
//! GET http://192.0.2.1:7547?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3&sig=3545F7B5820D76A3DF45A3A509DA8D8C38F2F2E8 HTTP/1.1
//! Host: 192.0.2.1:7547
//! ```
//!
//! `ts` is the ACS's time (Unix seconds), `id` a message identifier, `un` the
//! ConnectionRequestUsername, `cn` a random cnonce, and `sig` the HMAC-SHA1 of `ts`, `id`, `un`
//! and `cn` concatenated, keyed by the ConnectionRequestPassword, in hex. This module parses such
//! a datagram and decides whether it is one to act on (pure: the time is an argument). It is
//! what the internet sends to the CPE's UDP port: every field has a bound, the parse is linear,
//! the signature is compared in constant time and checked before anything else is believed,
//! and a valid message is acted on once (a replayed `id` is refused, and so is one older than
//! the window or than the last accepted).

use ring::hmac;

/// The largest datagram read as a request (a request is a line and a Host header).
pub const MAX_DATAGRAM: usize = 1024;
/// The longest `id`, `un` and `cn` accepted.
pub const MAX_FIELD: usize = 256;
/// How many accepted `id`s are remembered against replays.
pub const REPLAY_IDS: usize = 32;

/// A parsed UDP Connection Request (not yet validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRequest {
    pub ts: u64,
    pub id: String,
    pub un: String,
    pub cn: String,
    pub sig: [u8; 20],
}

/// Why a datagram is not a request to act on. None of them is answered (the port stays
/// silent to whoever probes it); the listener counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an HTTP GET with the five fields, or over a bound.
    Malformed,
    /// Another username than the CPE's.
    Username,
    /// The signature does not match (a wrong password, a forgery).
    Signature,
    /// `ts` is outside the window around the CPE's time, or older than the last accepted.
    Stale,
    /// An `id` already accepted.
    Replay,
    /// No ConnectionRequestPassword is set: nothing can be validated.
    NoPassword,
}

/// Parses a datagram (RFC 9112 request line, Annex G's query). Only the request line is read;
/// header lines are not needed (the Host the ACS names is not trusted for anything).
pub fn parse(datagram: &[u8]) -> Result<UdpRequest, Refusal> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(Refusal::Malformed);
    }
    let end = datagram
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(datagram.len());
    let line = std::str::from_utf8(datagram.get(..end).ok_or(Refusal::Malformed)?)
        .map_err(|_| Refusal::Malformed)?;
    let mut words = line.split(' ');
    let (Some("GET"), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Refusal::Malformed);
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Refusal::Malformed);
    }
    let (_, query) = target.split_once('?').ok_or(Refusal::Malformed)?;
    let (mut ts, mut id, mut un, mut cn, mut sig) = (None, None, None, None, None);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').ok_or(Refusal::Malformed)?;
        let slot = match k {
            "ts" => &mut ts,
            "id" => &mut id,
            "un" => &mut un,
            "cn" => &mut cn,
            "sig" => &mut sig,
            // Other parameters are not Annex G's: refused rather than guessed at.
            _ => return Err(Refusal::Malformed),
        };
        if slot.is_some() || v.len() > MAX_FIELD {
            return Err(Refusal::Malformed);
        }
        *slot = Some(v);
    }
    let (Some(ts), Some(id), Some(un), Some(cn), Some(sig)) = (ts, id, un, cn, sig) else {
        return Err(Refusal::Malformed);
    };
    if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Malformed);
    }
    let ts: u64 = ts.parse().map_err(|_| Refusal::Malformed)?;
    Ok(UdpRequest {
        ts,
        id: unescape(id)?,
        un: unescape(un)?,
        cn: unescape(cn)?,
        sig: super::gate::unhex::<20>(sig).ok_or(Refusal::Malformed)?,
    })
}

/// A query value with its `%XX` escapes decoded (RFC 3986; `+` is left as it is); the result
/// must be UTF-8 without control characters.
fn unescape(v: &str) -> Result<String, Refusal> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|h| (*h as char).to_digit(16));
            let lo = b.get(i + 2).and_then(|h| (*h as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(Refusal::Malformed);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| Refusal::Malformed)?;
    if s.chars().any(char::is_control) {
        return Err(Refusal::Malformed);
    }
    Ok(s)
}

/// The signature of a request: HMAC-SHA1 of `ts`, `id`, `un`, `cn` concatenated, keyed by the
/// ConnectionRequestPassword (Annex G.2.1.1). What an ACS sends (the tests' ACS uses it).
pub fn signature(password: &str, ts: u64, id: &str, un: &str, cn: &str) -> [u8; 20] {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    for part in [ts.to_string().as_str(), id, un, cn] {
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// What the CPE remembers of accepted requests: the newest `ts` and the last [`REPLAY_IDS`]
/// `id`s (a fixed table: no sender can make it grow).
#[derive(Debug, Default, Clone)]
pub struct Replay {
    newest_ts: u64,
    ids: std::collections::VecDeque<String>,
}

impl Replay {
    /// Decides on a parsed request: the signature first (nothing unauthenticated changes the
    /// state), then the username, the time (`ts` within `window` seconds of `now`, when the
    /// CPE's clock is set; never older than the newest accepted), and the `id` (never one
    /// accepted before). An accepted request is remembered.
    pub fn check(
        &mut self,
        req: &UdpRequest,
        username: &str,
        password: &str,
        now: Option<u64>,
        window: u64,
    ) -> Result<(), Refusal> {
        if password.is_empty() {
            return Err(Refusal::NoPassword);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
        let mut msg = Vec::with_capacity(20 + req.id.len() + req.un.len() + req.cn.len());
        msg.extend_from_slice(req.ts.to_string().as_bytes());
        msg.extend_from_slice(req.id.as_bytes());
        msg.extend_from_slice(req.un.as_bytes());
        msg.extend_from_slice(req.cn.as_bytes());
        hmac::verify(&key, &msg, &req.sig).map_err(|_| Refusal::Signature)?;
        if req.un != username {
            return Err(Refusal::Username);
        }
        if let Some(now) = now {
            if req.ts.abs_diff(now) > window {
                return Err(Refusal::Stale);
            }
        }
        if req.ts < self.newest_ts {
            return Err(Refusal::Stale);
        }
        if self.ids.iter().any(|i| *i == req.id) {
            return Err(Refusal::Replay);
        }
        self.newest_ts = req.ts;
        if self.ids.len() >= REPLAY_IDS {
            self.ids.pop_front();
        }
        self.ids.push_back(req.id.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(ts: u64, id: &str, un: &str, cn: &str, password: &str) -> Vec<u8> {
        let sig = crate::http::auth::hex(&signature(password, ts, id, un, cn));
        format!(
            "GET http://192.0.2.1:7547?ts={ts}&id={id}&un={un}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: 192.0.2.1:7547\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_annex_g_example_parses_and_a_signed_request_is_accepted_once() {
        let d = b"GET http://10.1.1.1:8080?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3&sig=3545F7B5820D76A3DF45A3A509DA8D8C38F2F2E8 HTTP/1.1\r\nHost: 10.1.1.1:8080\r\n\r\n";
        let r = parse(d).unwrap();
        assert_eq!(
            (r.ts, r.id.as_str(), r.un.as_str(), r.cn.as_str()),
            (1120673700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3")
        );
        assert_eq!(r.sig[0], 0x35);
        let mut replay = Replay::default();
        let now = Some(1_800_000_000);
        let ok = parse(&datagram(1_800_000_000, "1", "cpe", "abc", "pw")).unwrap();
        assert_eq!(replay.check(&ok, "cpe", "pw", now, 60), Ok(()));
        // The same message again: a replay.
        assert_eq!(
            replay.check(&ok, "cpe", "pw", now, 60),
            Err(Refusal::Replay)
        );
        // Signed with another password; another user; too old; older than the last one.
        let bad = parse(&datagram(1_800_000_000, "2", "cpe", "abc", "nope")).unwrap();
        assert_eq!(
            replay.check(&bad, "cpe", "pw", now, 60),
            Err(Refusal::Signature)
        );
        let other = parse(&datagram(1_800_000_000, "3", "eve", "abc", "pw")).unwrap();
        assert_eq!(
            replay.check(&other, "cpe", "pw", now, 60),
            Err(Refusal::Username)
        );
        let old = parse(&datagram(1_799_999_000, "4", "cpe", "abc", "pw")).unwrap();
        assert_eq!(
            replay.check(&old, "cpe", "pw", now, 60),
            Err(Refusal::Stale)
        );
        assert_eq!(
            replay.check(&old, "cpe", "pw", None, 60),
            Err(Refusal::Stale),
            "without a clock, older than the newest accepted"
        );
        let next = parse(&datagram(1_800_000_001, "5", "cpe", "abc", "pw")).unwrap();
        assert_eq!(replay.check(&next, "cpe", "pw", None, 60), Ok(()));
        assert_eq!(
            replay.check(&next, "cpe", "", None, 60),
            Err(Refusal::NoPassword)
        );
    }

    #[test]
    fn what_is_not_a_request_is_refused_and_the_ids_are_bounded() {
        for bad in [
            &b""[..],
            b"POST /?ts=1&id=1&un=a&cn=b&sig=00 HTTP/1.1\r\n",
            b"GET /?ts=1&id=1&un=a&cn=b HTTP/1.1\r\n",
            b"GET /?ts=x&id=1&un=a&cn=b&sig=0000000000000000000000000000000000000000 HTTP/1.1\r\n",
            b"GET /?ts=1&ts=1&id=1&un=a&cn=b&sig=0000000000000000000000000000000000000000 HTTP/1.1\r\n",
            b"GET /?ts=1&id=1&un=a%0a&cn=b&sig=0000000000000000000000000000000000000000 HTTP/1.1\r\n",
            b"GET /?ts=1&id=1&un=a&cn=b&sig=0000000000000000000000000000000000000000&x=1 HTTP/1.1\r\n",
            b"GET /?ts=1&id=1&un=a&cn=b&sig=00000000000000000000000000000000000000zz HTTP/1.1\r\n",
            b"GET /?ts=1&id=1&un=a&cn=b&sig=0000000000000000000000000000000000000000 SIP/2.0\r\n",
        ] {
            assert_eq!(parse(bad), Err(Refusal::Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse(&vec![b'G'; MAX_DATAGRAM + 1]),
            Err(Refusal::Malformed)
        );
        let mut replay = Replay::default();
        for i in 0..(3 * REPLAY_IDS) {
            let r = parse(&datagram(100, &i.to_string(), "u", "c", "p")).unwrap();
            assert_eq!(replay.check(&r, "u", "p", None, 0), Ok(()));
        }
        assert_eq!(replay.ids.len(), REPLAY_IDS);
        // Escapes decode: a username with a space.
        let r = parse(&datagram(100, "x", "a%20b", "c", "p")).unwrap();
        assert_eq!(r.un, "a%20b".replace("%20", " "));
    }
}
