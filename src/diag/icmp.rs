//! ICMP and ICMPv6 echo messages and the errors routers send back (RFC 792, RFC 4443): what the
//! diagnostics send and read. Pure: bytes in, bytes out.
//!
//! An echo request is type 8 (ICMPv6: 128), code 0, a checksum, an identifier, a sequence
//! number and a payload. The checksum of ICMPv4 is computed here (RFC 1071); ICMPv6's covers a
//! pseudo-header only the kernel knows (the source address), so it is left zero and the kernel
//! fills it in, as it does for every ICMPv6 socket (RFC 3542 §3.1).
//!
//! A reply read from a raw IPv4 socket starts with the IP header; from an ICMP datagram socket
//! or any ICMPv6 socket it starts with the ICMP header. [`parse`] is told which.

/// ICMP types (RFC 792) and ICMPv6 types (RFC 4443) read or written here.
pub mod kind {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const V6_DEST_UNREACHABLE: u8 = 1;
    pub const V6_TIME_EXCEEDED: u8 = 3;
    pub const V6_ECHO_REQUEST: u8 = 128;
    pub const V6_ECHO_REPLY: u8 = 129;
}

/// Bytes of the ICMP header (type, code, checksum, identifier, sequence).
pub const HEADER: usize = 8;

/// An echo request: `payload_len` bytes of payload follow the header (a counting pattern, so a
/// corrupted reply is told from a good one).
pub fn echo_request(v6: bool, id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + payload_len);
    m.push(if v6 {
        kind::V6_ECHO_REQUEST
    } else {
        kind::ECHO_REQUEST
    });
    m.push(0);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..payload_len).map(|i| i as u8));
    if !v6 {
        let sum = checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of the
/// 16-bit words (an odd last byte padded with zero).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received ICMP message is, as far as a diagnostic cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An echo reply: identifier, sequence number, payload length, and whether the payload is
    /// the pattern [`echo_request`] sent.
    EchoReply {
        id: u16,
        seq: u16,
        payload: usize,
        intact: bool,
    },
    /// A router's or the host's error about a message we sent: time exceeded (`ttl`) or
    /// destination unreachable, with the code, and the identifier and sequence of our echo
    /// request when the quoted datagram is one.
    Error {
        ttl: bool,
        code: u8,
        quoted: Option<(u16, u16)>,
    },
    /// Anything else (another host's echo request, a redirect, …).
    Other,
}

/// Reads one ICMP message. `ip_header`: the buffer starts with an IPv4 header (a raw IPv4
/// socket). `None` when it is too short or malformed.
pub fn parse(v6: bool, ip_header: bool, buf: &[u8]) -> Option<Message> {
    let icmp = if ip_header { skip_ipv4(buf)? } else { buf };
    let (&ty, rest) = icmp.split_first()?;
    let &code = rest.first()?;
    if icmp.len() < HEADER {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    let (reply, unreachable, exceeded) = if v6 {
        (
            kind::V6_ECHO_REPLY,
            kind::V6_DEST_UNREACHABLE,
            kind::V6_TIME_EXCEEDED,
        )
    } else {
        (
            kind::ECHO_REPLY,
            kind::DEST_UNREACHABLE,
            kind::TIME_EXCEEDED,
        )
    };
    Some(if ty == reply {
        let payload = &icmp[HEADER..];
        Message::EchoReply {
            id,
            seq,
            payload: payload.len(),
            intact: payload.iter().enumerate().all(|(i, b)| *b == i as u8),
        }
    } else if ty == unreachable || ty == exceeded {
        // The error quotes the offending datagram from its IP header on (RFC 792: the header
        // and 64 bits of its data; RFC 4443: as much as fits).
        let inner = &icmp[HEADER..];
        let quoted_icmp = if v6 {
            inner.get(40..)
        } else {
            skip_ipv4(inner)
        };
        let request = if v6 {
            kind::V6_ECHO_REQUEST
        } else {
            kind::ECHO_REQUEST
        };
        let quoted = quoted_icmp
            .filter(|q| q.len() >= HEADER && q[0] == request)
            .map(|q| {
                (
                    u16::from_be_bytes([q[4], q[5]]),
                    u16::from_be_bytes([q[6], q[7]]),
                )
            });
        Message::Error {
            ttl: ty == exceeded,
            code,
            quoted,
        }
    } else {
        Message::Other
    })
}

/// What follows an IPv4 header (its length from IHL); `None` when it is not one.
fn skip_ipv4(buf: &[u8]) -> Option<&[u8]> {
    let first = *buf.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    buf.get(ihl..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example_and_of_a_request() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A message with its checksum in place sums to zero.
        let m = echo_request(false, 0x1234, 7, 33);
        assert_eq!(checksum(&m), 0);
        assert_eq!(m.len(), HEADER + 33);
        assert_eq!(&m[..2], &[8, 0]);
        // ICMPv6: the kernel's to fill in.
        let m6 = echo_request(true, 1, 2, 0);
        assert_eq!(m6, [128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn a_reply_with_and_without_the_ip_header() {
        let mut reply = echo_request(false, 0xbeef, 3, 16);
        reply[0] = kind::ECHO_REPLY;
        let want = Message::EchoReply {
            id: 0xbeef,
            seq: 3,
            payload: 16,
            intact: true,
        };
        assert_eq!(parse(false, false, &reply), Some(want.clone()));
        let mut with_ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        with_ip.extend_from_slice(&reply);
        assert_eq!(parse(false, true, &with_ip), Some(want));
        let last = with_ip.len() - 1;
        with_ip[last] ^= 0xff;
        assert!(matches!(
            parse(false, true, &with_ip),
            Some(Message::EchoReply { intact: false, .. })
        ));
        let mut v6 = echo_request(true, 9, 4, 0);
        v6[0] = kind::V6_ECHO_REPLY;
        assert!(matches!(
            parse(true, false, &v6),
            Some(Message::EchoReply { id: 9, seq: 4, .. })
        ));
    }

    #[test]
    fn errors_quote_our_request() {
        // Time exceeded quoting an IPv4 header and the first 8 bytes of our request.
        let req = echo_request(false, 0x0102, 0x0304, 56);
        let mut m = vec![kind::TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[
            0x45, 0, 0, 84, 0, 0, 0, 0, 1, 1, 0, 0, 10, 0, 0, 1, 10, 9, 9, 9,
        ]);
        m.extend_from_slice(&req[..8]);
        assert_eq!(
            parse(false, false, &m),
            Some(Message::Error {
                ttl: true,
                code: 0,
                quoted: Some((0x0102, 0x0304))
            })
        );
        // Unreachable (host, code 1) quoting something that is no echo request.
        let mut u = vec![kind::DEST_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0];
        u.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 9, 9, 9,
        ]);
        u.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
        assert_eq!(
            parse(false, false, &u),
            Some(Message::Error {
                ttl: false,
                code: 1,
                quoted: None
            })
        );
    }

    #[test]
    fn short_and_foreign_input_is_no_message() {
        for bad in [
            &[][..],
            &[0][..],
            &[0, 0, 0, 0][..],
            &[0x45, 0, 0][..],
            &[0x41; 30][..],
        ] {
            assert_eq!(parse(false, true, bad), None, "{bad:?}");
        }
        assert_eq!(parse(false, false, &[0, 0, 0]), None);
        // Another host's echo request.
        assert_eq!(
            parse(false, false, &echo_request(false, 1, 1, 0)),
            Some(Message::Other)
        );
    }
}
