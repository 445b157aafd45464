//! STUN messages as TR-111 Part 2 uses them (RFC 3489 "classic" STUN with TR-111's
//! attributes): the Binding Request a CPE sends from its UDP Connection Request port, and the
//! Binding Response or Binding Error Response it gets back. Pure: the transaction ID is an
//! argument.
//!
//! A message is a 20-byte header (type, length of the attributes, 16-byte transaction ID) and
//! attributes (type, length, value; values of 4-byte multiples). A Binding Request of a CPE
//! carries CONNECTION-REQUEST-BINDING (`0xC001`, the 20 bytes `dslforum.org/TR-111 `), and
//! BINDING-CHANGE (`0xC002`, empty) when the binding changed since the last request; with a
//! STUNUsername, USERNAME and MESSAGE-INTEGRITY (HMAC-SHA1 keyed by STUNPassword over the
//! message before it, zero-padded to a multiple of 64 bytes: RFC 3489 §11.2.8).
//!
//! A response is read within [`MAX_MESSAGE`] bytes, every attribute's length checked against
//! what is left, at most [`MAX_ATTRIBUTES`] of them: MAPPED-ADDRESS, XOR-MAPPED-ADDRESS (both
//! code points servers use), ERROR-CODE; others are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ring::hmac;

/// The largest message read.
pub const MAX_MESSAGE: usize = 2048;
/// The most attributes read from one message.
pub const MAX_ATTRIBUTES: usize = 64;
/// The value of CONNECTION-REQUEST-BINDING (TR-069 Annex G.2.1).
pub const CONNECTION_REQUEST_BINDING: &[u8; 20] = b"dslforum.org/TR-111 ";

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_RESPONSE: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: u16 = 0x0001;
const RESPONSE_ADDRESS: u16 = 0x0002;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const XOR_MAPPED_ADDRESS_OLD: u16 = 0x8020;
const ATTR_CONNECTION_REQUEST_BINDING: u16 = 0xC001;
const ATTR_BINDING_CHANGE: u16 = 0xC002;
/// RFC 5389's magic cookie, the first four bytes of the transaction ID of a server that
/// XORs with it.
const MAGIC_COOKIE: u32 = 0x2112_A442;

/// A Binding Request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub transaction: [u8; 16],
    /// CONNECTION-REQUEST-BINDING: in every request from the UDP Connection Request port, in
    /// none from another port (TR-069 Annex G.2.1: the ACS learns the binding from it).
    pub connection_request_binding: bool,
    /// RESPONSE-ADDRESS (RFC 3489 §11.2.2): where the server is to send the response (the
    /// binding timeout discovery of RFC 3489 §10.2 sends from a second port and asks for the
    /// answer at the first one's public address). IPv4 only, as classic STUN.
    pub response_address: Option<std::net::SocketAddrV4>,
    /// The binding changed since the last request (BINDING-CHANGE).
    pub binding_change: bool,
    /// STUNUsername and STUNPassword: USERNAME and MESSAGE-INTEGRITY.
    pub credentials: Option<(&'a str, &'a str)>,
}

/// What a response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The public address and port the server saw the request come from.
    Binding(SocketAddr),
    /// A Binding Error Response: its class and number (`401`: credentials wanted).
    Error(u16),
}

/// Why bytes are not a response to our request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Not a STUN message within the bounds, or not the answer to our transaction.
    Malformed,
    /// A Binding Response without a mapped address.
    NoAddress,
}

/// The bytes of a Binding Request (a username over 508 bytes is cut: STUN's attributes are
/// at most a few hundred bytes).
pub fn request(r: &Request<'_>) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&r.transaction);
    if let Some(a) = r.response_address {
        let mut v = vec![0, 1];
        v.extend_from_slice(&a.port().to_be_bytes());
        v.extend_from_slice(&a.ip().octets());
        attribute(&mut m, RESPONSE_ADDRESS, &v);
    }
    if r.connection_request_binding {
        attribute(
            &mut m,
            ATTR_CONNECTION_REQUEST_BINDING,
            CONNECTION_REQUEST_BINDING,
        );
    }
    if r.binding_change {
        attribute(&mut m, ATTR_BINDING_CHANGE, &[]);
    }
    if let Some((user, password)) = r.credentials {
        let user = user.as_bytes();
        let user = user.get(..user.len().min(508)).unwrap_or_default();
        // USERNAME's value padded to a multiple of 4 (RFC 3489 §11.2.6).
        let mut padded = user.to_vec();
        padded.resize(user.len().div_ceil(4) * 4, 0);
        attribute(&mut m, USERNAME, &padded);
        // The length counts MESSAGE-INTEGRITY before it is computed.
        let with_integrity = m.len() - 20 + 24;
        set_length(&mut m, with_integrity);
        let mac = integrity(password, &m);
        attribute(&mut m, MESSAGE_INTEGRITY, &mac);
    }
    let len = m.len() - 20;
    set_length(&mut m, len);
    m
}

fn attribute(m: &mut Vec<u8>, ty: u16, value: &[u8]) {
    m.extend_from_slice(&ty.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(value);
}

fn set_length(m: &mut [u8], len: usize) {
    if let Some(l) = m.get_mut(2..4) {
        l.copy_from_slice(&(len as u16).to_be_bytes());
    }
}

/// HMAC-SHA1 keyed by `password` of `text` zero-padded to a multiple of 64 bytes (RFC 3489
/// §11.2.8).
fn integrity(password: &str, text: &[u8]) -> [u8; 20] {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(text);
    let pad = (64 - text.len() % 64) % 64;
    ctx.update(&[0u8; 64][..pad]);
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Reads a response to the request with `transaction`.
pub fn parse(bytes: &[u8], transaction: &[u8; 16]) -> Result<Response, StunError> {
    if bytes.len() < 20 || bytes.len() > MAX_MESSAGE {
        return Err(StunError::Malformed);
    }
    let ty = u16::from_be_bytes([bytes[0], bytes[1]]);
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if bytes.get(4..20) != Some(&transaction[..]) || len != bytes.len() - 20 {
        return Err(StunError::Malformed);
    }
    if ty != BINDING_RESPONSE && ty != BINDING_ERROR {
        return Err(StunError::Malformed);
    }
    let mut rest = &bytes[20..];
    let mut mapped = None;
    let mut xor_mapped = None;
    let mut error = None;
    for _ in 0..MAX_ATTRIBUTES {
        if rest.is_empty() {
            break;
        }
        let head = rest.get(..4).ok_or(StunError::Malformed)?;
        let aty = u16::from_be_bytes([head[0], head[1]]);
        let alen = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = rest.get(4..4 + alen).ok_or(StunError::Malformed)?;
        // RFC 5389 servers pad values to 4 bytes; RFC 3489 values are already multiples.
        let next = (4 + alen.div_ceil(4) * 4).min(rest.len());
        rest = rest.get(next..).unwrap_or_default();
        match aty {
            MAPPED_ADDRESS => mapped = address(value, None),
            XOR_MAPPED_ADDRESS | XOR_MAPPED_ADDRESS_OLD => {
                xor_mapped = address(value, Some(transaction));
            }
            ERROR_CODE if value.len() >= 4 => {
                error = Some(u16::from(value[2] & 0x07) * 100 + u16::from(value[3]));
            }
            _ => {}
        }
    }
    if ty == BINDING_ERROR {
        return Ok(Response::Error(error.unwrap_or(0)));
    }
    xor_mapped
        .or(mapped)
        .map(Response::Binding)
        .ok_or(StunError::NoAddress)
}

/// A (XOR-)MAPPED-ADDRESS value: reserved, family (1 IPv4, 2 IPv6), port, address. XORed with
/// the magic cookie (and for IPv6 the transaction ID) when `xor` is the transaction.
fn address(v: &[u8], xor: Option<&[u8; 16]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    if xor.is_some() {
        port ^= u16::from_be_bytes([cookie[0], cookie[1]]);
    }
    let ip = match family {
        1 => {
            let mut a: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                for (b, c) in a.iter_mut().zip(cookie) {
                    *b ^= c;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        2 => {
            let mut a: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            if let Some(t) = xor {
                // The cookie and the (RFC 5389) 12-byte transaction ID: the cookie is the first
                // four bytes of our 16-byte one only when we made it so; the XOR key is the
                // whole 16 bytes as sent.
                for (b, k) in a.iter_mut().zip(t.iter()) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [u8; 16] = [
        0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];

    fn response(ty: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        m.extend_from_slice(&T);
        for (t, v) in attrs {
            attribute(&mut m, *t, v);
        }
        let len = m.len() - 20;
        set_length(&mut m, len);
        m
    }

    #[test]
    fn a_binding_request_carries_the_cwmp_attributes_and_its_integrity() {
        let plain = request(&Request {
            transaction: T,
            connection_request_binding: true,
            response_address: None,
            binding_change: true,
            credentials: None,
        });
        assert_eq!(&plain[..2], &[0, 1]);
        assert_eq!(
            usize::from(u16::from_be_bytes([plain[2], plain[3]])),
            plain.len() - 20
        );
        assert_eq!(&plain[4..20], &T);
        assert_eq!(&plain[20..24], &[0xC0, 0x01, 0, 20]);
        assert_eq!(&plain[24..44], CONNECTION_REQUEST_BINDING);
        assert_eq!(&plain[44..48], &[0xC0, 0x02, 0, 0]);
        let signed = request(&Request {
            transaction: T,
            connection_request_binding: true,
            response_address: None,
            binding_change: false,
            credentials: Some(("cpe1", "secret")),
        });
        // CRB, USERNAME (4 bytes), MESSAGE-INTEGRITY (20 bytes), the length counting them all.
        assert_eq!(signed.len(), 20 + 24 + 8 + 24);
        assert_eq!(&signed[44..52], b"\x00\x06\x00\x04cpe1");
        let mi = &signed[signed.len() - 20..];
        assert_eq!(mi, integrity("secret", &signed[..signed.len() - 24]));
        assert_ne!(mi, integrity("other", &signed[..signed.len() - 24]));
        // A probe from another port: RESPONSE-ADDRESS, no CONNECTION-REQUEST-BINDING.
        let probe = request(&Request {
            transaction: T,
            connection_request_binding: false,
            response_address: Some("198.51.100.7:40001".parse().unwrap()),
            binding_change: false,
            credentials: None,
        });
        assert_eq!(
            &probe[20..],
            &[0, 2, 0, 8, 0, 1, 0x9c, 0x41, 198, 51, 100, 7]
        );
    }

    #[test]
    fn responses_give_the_mapped_address_or_the_error() {
        // MAPPED-ADDRESS 192.0.2.9:40000.
        let mapped = vec![0, 1, 0x9c, 0x40, 192, 0, 2, 9];
        let r = response(BINDING_RESPONSE, &[(MAPPED_ADDRESS, mapped.clone())]);
        assert_eq!(
            parse(&r, &T),
            Ok(Response::Binding("192.0.2.9:40000".parse().unwrap()))
        );
        // XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS.
        let c = MAGIC_COOKIE.to_be_bytes();
        let xored = vec![
            0,
            1,
            0x9c ^ c[0],
            0x41 ^ c[1],
            198 ^ c[0],
            51 ^ c[1],
            100 ^ c[2],
            7 ^ c[3],
        ];
        let r = response(
            BINDING_RESPONSE,
            &[(MAPPED_ADDRESS, mapped), (XOR_MAPPED_ADDRESS_OLD, xored)],
        );
        assert_eq!(
            parse(&r, &T),
            Ok(Response::Binding("198.51.100.7:40001".parse().unwrap()))
        );
        let e = response(BINDING_ERROR, &[(ERROR_CODE, vec![0, 0, 4, 1])]);
        assert_eq!(parse(&e, &T), Ok(Response::Error(401)));
        // Another transaction, a request, a lying length, an attribute past the end, none.
        let mut other = T;
        other[15] ^= 1;
        assert_eq!(parse(&e, &other), Err(StunError::Malformed));
        let req = request(&Request {
            transaction: T,
            connection_request_binding: true,
            response_address: None,
            binding_change: false,
            credentials: None,
        });
        assert_eq!(parse(&req, &T), Err(StunError::Malformed));
        let mut lying = e.clone();
        lying[3] += 4;
        assert_eq!(parse(&lying, &T), Err(StunError::Malformed));
        let mut cut = response(BINDING_RESPONSE, &[(MAPPED_ADDRESS, vec![0, 1, 0, 1])]);
        cut[23] = 200;
        assert_eq!(parse(&cut, &T), Err(StunError::Malformed));
        assert_eq!(
            parse(&response(BINDING_RESPONSE, &[]), &T),
            Err(StunError::NoAddress)
        );
        assert_eq!(
            parse(&vec![0u8; MAX_MESSAGE + 1], &T),
            Err(StunError::Malformed)
        );
    }
}
