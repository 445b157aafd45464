//! DNS queries and responses (RFC 1035) for NSLookup and for the XMPP connection's server: one
//! question of type A, AAAA or SRV, class IN, recursion desired; the response's code, whether
//! it is authoritative, and the addresses (or services, RFC 2782) and canonical name it
//! answers. Pure: bytes in, bytes out.
//!
//! Bounds: a response is read in one pass; a name is at most 255 bytes of at most 63-byte
//! labels and follows at most [`MAX_POINTERS`] compression pointers, each pointing before the
//! one before it (RFC 1035 §4.1.4 points back), so a name costs linear time and no loop; at
//! most [`MAX_RECORDS`] records are read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record types asked for.
pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// Compression pointers followed in one name.
pub const MAX_POINTERS: usize = 32;
/// Records (answers, authority, additional) read from one response.
pub const MAX_RECORDS: usize = 256;

/// Why a query could not be made or a response not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name cannot be asked (an empty or over-long label, over 255 bytes).
    BadName(String),
    /// The bytes are not a DNS response to our question.
    Malformed(&'static str),
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::BadName(n) => write!(f, "{n:?} is not a host name that can be asked"),
            DnsError::Malformed(m) => write!(f, "malformed DNS response: {m}"),
        }
    }
}

/// A response to our question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// RCODE: 0 no error, 2 server failure, 3 no such name (NXDOMAIN), 5 refused, …
    pub rcode: u8,
    /// The AA bit: the server is an authority for the name.
    pub authoritative: bool,
    /// The TC bit: the answer did not fit.
    pub truncated: bool,
    /// The name the addresses belong to: the asked one, or the end of its CNAME chain.
    pub canonical: String,
    /// The addresses of the asked type for that name, in the order given.
    pub addresses: Vec<IpAddr>,
    /// The SRV records for that name (a question of type SRV), in the order given.
    pub services: Vec<Service>,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The host (`.` alone, read as empty: the service is not offered at this domain).
    pub target: String,
}

/// The query for `name` (with or without its final dot) of type `qtype`, with `id`.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    // QR=0, OPCODE=0, RD=1; one question.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut q)?;
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let bad = || DnsError::BadName(name.to_string());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad());
    }
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad());
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Reads the response to the query `id` for `name` of type `qtype`.
pub fn parse(buf: &[u8], id: u16, name: &str, qtype: u16) -> Result<Response, DnsError> {
    let header = buf
        .get(..12)
        .ok_or(DnsError::Malformed("shorter than a header"))?;
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Err(DnsError::Malformed("another query's id"));
    }
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & 0x8000 == 0 || (flags >> 11) & 0xf != 0 {
        return Err(DnsError::Malformed("not a response to a standard query"));
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if qd != 1 {
        return Err(DnsError::Malformed("not one question"));
    }
    let mut at = 12;
    let (qname, next) = read_name(buf, at)?;
    at = next;
    let qfields = buf
        .get(at..at + 4)
        .ok_or(DnsError::Malformed("question cut short"))?;
    if !same_name(&qname, name)
        || u16::from_be_bytes([qfields[0], qfields[1]]) != qtype
        || u16::from_be_bytes([qfields[2], qfields[3]]) != CLASS_IN
    {
        return Err(DnsError::Malformed("the question is not ours"));
    }
    at += 4;
    let mut canonical = name.strip_suffix('.').unwrap_or(name).to_string();
    let mut records = Vec::new();
    // Only the answer section is read for data; the others are walked past only when a later
    // section would be needed (it is not), so reading stops after the answers.
    let _ = (ns, ar);
    if an > MAX_RECORDS {
        return Err(DnsError::Malformed("too many records"));
    }
    for _ in 0..an {
        let (owner, next) = read_name(buf, at)?;
        at = next;
        let fixed = buf
            .get(at..at + 10)
            .ok_or(DnsError::Malformed("record cut short"))?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        at += 10;
        let rdata = buf
            .get(at..at + len)
            .ok_or(DnsError::Malformed("record data cut short"))?;
        records.push((owner, rtype, class, at, rdata));
        at += len;
    }
    // Follow the CNAME chain from the asked name (at most as many steps as records: no loop).
    for _ in 0..records.len() {
        let next = records.iter().find_map(|(owner, rtype, class, off, _)| {
            (*rtype == TYPE_CNAME && *class == CLASS_IN && same_name(owner, &canonical))
                .then(|| read_name(buf, *off).map(|(n, _)| n))
        });
        match next {
            Some(n) => canonical = n?,
            None => break,
        }
    }
    let addresses = records
        .iter()
        .filter(|(owner, rtype, class, _, _)| {
            *rtype == qtype && *class == CLASS_IN && same_name(owner, &canonical)
        })
        .filter_map(|(_, rtype, _, _, rdata)| match *rtype {
            TYPE_A => <[u8; 4]>::try_from(*rdata)
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            TYPE_AAAA => <[u8; 16]>::try_from(*rdata)
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        })
        .collect();
    let mut services = Vec::new();
    for (owner, rtype, class, off, rdata) in &records {
        if *rtype != TYPE_SRV || *class != CLASS_IN || !same_name(owner, &canonical) {
            continue;
        }
        let [p0, p1, w0, w1, o0, o1, ..] = **rdata else {
            continue;
        };
        // The target within the record's data (RFC 2782: not compressed; a pointer back is
        // read all the same).
        let Ok((target, end)) = read_name(buf, off + 6) else {
            continue;
        };
        if end > off + rdata.len() {
            continue;
        }
        services.push(Service {
            priority: u16::from_be_bytes([p0, p1]),
            weight: u16::from_be_bytes([w0, w1]),
            port: u16::from_be_bytes([o0, o1]),
            target,
        });
    }
    Ok(Response {
        rcode: (flags & 0xf) as u8,
        authoritative: flags & 0x0400 != 0,
        truncated: flags & 0x0200 != 0,
        canonical,
        addresses,
        services,
    })
}

/// DNS names compare without regard to ASCII case (RFC 4343) or a final dot.
fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// The name at `at` (dotted, without the final dot) and where the data after it starts.
fn read_name(buf: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut pointers = 0;
    let mut floor = at;
    loop {
        let len = *buf.get(at).ok_or(DnsError::Malformed("name cut short"))?;
        match len >> 6 {
            0 if len == 0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0 => {
                let label = buf
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or(DnsError::Malformed("label cut short"))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '?'
                    }
                }));
                if name.len() > 255 {
                    return Err(DnsError::Malformed("name longer than 255 bytes"));
                }
                at += 1 + usize::from(len);
            }
            3 => {
                let low = *buf
                    .get(at + 1)
                    .ok_or(DnsError::Malformed("pointer cut short"))?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                pointers += 1;
                // Each pointer goes back before where this name's reading has been.
                if pointers > MAX_POINTERS || target >= floor {
                    return Err(DnsError::Malformed(
                        "a compression pointer that does not point back",
                    ));
                }
                end.get_or_insert(at + 2);
                floor = target;
                at = target;
            }
            _ => return Err(DnsError::Malformed("a label type that is not defined")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query(id, "www.example.test", qtype)` with the given flags and answers
    /// (each: owner as a pointer to the question's name or a full name, type, rdata).
    fn response(id: u16, flags: u16, qtype: u16, answers: &[(&[u8], u16, &[u8])]) -> Vec<u8> {
        let q = query(id, "www.example.test", qtype).unwrap();
        let mut r = q.clone();
        r[2..4].copy_from_slice(&flags.to_be_bytes());
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (owner, ty, data) in answers {
            r.extend_from_slice(owner);
            r.extend_from_slice(&ty.to_be_bytes());
            r.extend_from_slice(&CLASS_IN.to_be_bytes());
            r.extend_from_slice(&300u32.to_be_bytes());
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        r
    }

    const QNAME: &[u8] = &[0xc0, 12];

    #[test]
    fn a_query_is_rfc1035() {
        let q = query(0xabcd, "www.example.test.", TYPE_AAAA).unwrap();
        let mut want = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x07example\x04test\x00");
        want.extend_from_slice(&[0, 28, 0, 1]);
        assert_eq!(q, want);
        for bad in ["", ".", "a..b", &"x".repeat(64), &["abc"; 70].join(".")] {
            assert!(
                matches!(query(1, bad, TYPE_A), Err(DnsError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn services_of_an_srv_answer() {
        let srv = |prio: u16, weight: u16, port: u16, target: &[u8]| {
            let mut d = Vec::new();
            d.extend_from_slice(&prio.to_be_bytes());
            d.extend_from_slice(&weight.to_be_bytes());
            d.extend_from_slice(&port.to_be_bytes());
            d.extend_from_slice(target);
            d
        };
        let a = srv(10, 5, 5222, b"\x04xmpp\x07example\x04test\x00");
        let b = srv(20, 0, 5223, b"\x00");
        // Cut short: no room for the target.
        let c = srv(1, 1, 1, b"");
        let r = response(
            9,
            0x8180,
            TYPE_SRV,
            &[
                (QNAME, TYPE_SRV, &a),
                (QNAME, TYPE_SRV, &b),
                (QNAME, TYPE_SRV, &c),
            ],
        );
        let got = parse(&r, 9, "www.example.test", TYPE_SRV).unwrap();
        assert_eq!(
            got.services,
            [
                Service {
                    priority: 10,
                    weight: 5,
                    port: 5222,
                    target: "xmpp.example.test".into()
                },
                Service {
                    priority: 20,
                    weight: 0,
                    port: 5223,
                    target: String::new()
                },
            ]
        );
        assert!(got.addresses.is_empty());
    }

    #[test]
    fn addresses_authority_and_the_cname_chain() {
        let r = response(
            7,
            0x8580,
            TYPE_A,
            &[
                (QNAME, TYPE_A, &[192, 0, 2, 1]),
                (QNAME, TYPE_A, &[192, 0, 2, 2]),
            ],
        );
        let got = parse(&r, 7, "WWW.example.test", TYPE_A).unwrap();
        assert_eq!(got.rcode, 0);
        assert!(got.authoritative && !got.truncated);
        assert_eq!(got.canonical, "WWW.example.test");
        assert_eq!(
            got.addresses,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
        // www -> cdn.example.test (a full name), whose AAAA is given under a pointer to it.
        let cname = b"\x03cdn\xc0\x10";
        let mut r = response(8, 0x8180, TYPE_AAAA, &[(QNAME, TYPE_CNAME, cname)]);
        let cdn_at = r.len() - cname.len();
        let owner = [0xc0, cdn_at as u8];
        r[6..8].copy_from_slice(&2u16.to_be_bytes());
        r.extend_from_slice(&owner);
        r.extend_from_slice(&TYPE_AAAA.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&60u32.to_be_bytes());
        r.extend_from_slice(&16u16.to_be_bytes());
        r.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let got = parse(&r, 8, "www.example.test", TYPE_AAAA).unwrap();
        assert!(!got.authoritative);
        assert_eq!(got.canonical, "cdn.example.test");
        assert_eq!(got.addresses, ["2001:db8::1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn no_such_name_and_refusals_are_codes() {
        let r = response(9, 0x8183, TYPE_A, &[]);
        let got = parse(&r, 9, "www.example.test", TYPE_A).unwrap();
        assert_eq!((got.rcode, got.addresses.len()), (3, 0));
        let r = response(9, 0x8385, TYPE_A, &[]);
        let got = parse(&r, 9, "www.example.test", TYPE_A).unwrap();
        assert!(got.truncated);
        assert_eq!(got.rcode, 5);
    }

    #[test]
    fn what_is_not_our_answer_is_refused() {
        let r = response(9, 0x8180, TYPE_A, &[(QNAME, TYPE_A, &[192, 0, 2, 1])]);
        assert!(parse(&r, 10, "www.example.test", TYPE_A).is_err());
        assert!(parse(&r, 9, "other.example.test", TYPE_A).is_err());
        assert!(parse(&r, 9, "www.example.test", TYPE_AAAA).is_err());
        let mut q = r.clone();
        q[2] = 0x01; // a query, not a response
        assert!(parse(&q, 9, "www.example.test", TYPE_A).is_err());
        for cut in 0..r.len() {
            assert!(
                parse(&r[..cut], 9, "www.example.test", TYPE_A).is_err(),
                "{cut}"
            );
        }
        // A pointer to itself, and one forward: no loop, an error.
        let mut looped = response(9, 0x8180, TYPE_A, &[]);
        looped[6..8].copy_from_slice(&1u16.to_be_bytes());
        let here = looped.len() as u8;
        looped.extend_from_slice(&[0xc0, here, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse(&looped, 9, "www.example.test", TYPE_A),
            Err(DnsError::Malformed(
                "a compression pointer that does not point back"
            ))
        );
        // An A record of the wrong length is no address.
        let r = response(9, 0x8180, TYPE_A, &[(QNAME, TYPE_A, &[192, 0, 2])]);
        assert!(parse(&r, 9, "www.example.test", TYPE_A)
            .unwrap()
            .addresses
            .is_empty());
    }
}
