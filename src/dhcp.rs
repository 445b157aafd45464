//! ACS discovery by DHCP (TR-069 §3.1): what the DHCP client received, read into the ACS
//! settings it carries. Pure: the DHCP clients (udhcpc, odhcp6c) hand the option's bytes to
//! the hook scripts in `openwrt/` as hex, and `cwmpd dhcp-acs` brings them here.
//!
//! - DHCPv4 option 43 (Vendor Specific Information), sent by a server to a client whose option
//!   60 (Vendor Class Identifier) is `dslforum.org`: encapsulated sub-options of one-byte code
//!   and length (RFC 2132 §8.4), code 0 a pad and 255 the end.
//! - DHCPv6 option 17 (Vendor-specific Information, RFC 8415 §21.17) of enterprise 3561 (the
//!   Broadband Forum): the enterprise number, then sub-options of two-byte code and length.
//!
//! The sub-options of both: 1 the ACS URL, 2 the ProvisioningCode, 3
//! CWMPRetryMinimumWaitInterval, 4 CWMPRetryIntervalMultiplier (unsigned integers, big-endian,
//! one to four bytes, as dnsmasq and ISC dhcpd encode them). Everything is bounded: the option
//! at most [`MAX_OPTION`] bytes, each value checked against the data model's type; a value out
//! of range is left out (the others still count), an unparsable option is refused whole.
//!
//! The other way, [`option125`]: the V-I Vendor-Specific Information (RFC 3925) a CPE sends
//! with its identity (TR-111 Part 1: the DeviceManufacturerOUI, DeviceSerialNumber and
//! DeviceProductClass sub-options of enterprise 3561), for the DHCP server that asks for it.

/// The IANA enterprise number of the Broadband Forum (DSL Forum).
pub const ENTERPRISE: u32 = 3561;
/// The Vendor Class Identifier (DHCPv4 option 60; DHCPv6 option 16's data) of a CWMP CPE.
pub const VENDOR_CLASS: &str = "dslforum.org";
/// The largest option read (DHCPv4's is at most 255 bytes; a DHCPv6 one may be longer).
pub const MAX_OPTION: usize = 2048;
/// The longest ACS URL (ManagementServer.URL is string(256)).
const MAX_URL: usize = 256;
/// The longest ProvisioningCode (DeviceInfo.ProvisioningCode is string(64)).
const MAX_PROVISIONING_CODE: usize = 64;

/// What a DHCP server told about the ACS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Sub-option 1 (empty when the option carried none).
    pub url: String,
    pub provisioning_code: Option<String>,
    /// CWMPRetryMinimumWaitInterval, 1–65535.
    pub min_wait: Option<u32>,
    /// CWMPRetryIntervalMultiplier, 1000–65535.
    pub multiplier: Option<u32>,
}

/// Which DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// DHCPv4 option 43.
    V4,
    /// DHCPv6 option 17.
    V6,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "v4" | "4" => Some(Family::V4),
            "v6" | "6" => Some(Family::V6),
            _ => None,
        }
    }
}

/// Hex as the DHCP clients print it (either case, no separators) to bytes, within
/// [`MAX_OPTION`].
pub fn unhex(hex: &str) -> Result<Vec<u8>, String> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 || hex.len() > 2 * MAX_OPTION {
        return Err(format!(
            "the option is not hex of at most {MAX_OPTION} bytes"
        ));
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            match (d(p[0]), d(p[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err("the option is not hex".to_string()),
            }
        })
        .collect()
}

/// The ACS settings of a DHCPv4 option 43 or a DHCPv6 option 17.
pub fn parse(family: Family, option: &[u8]) -> Result<Discovered, String> {
    if option.len() > MAX_OPTION {
        return Err(format!("the option is over {MAX_OPTION} bytes"));
    }
    let mut d = Discovered::default();
    match family {
        Family::V4 => {
            let mut rest = option;
            while let Some((&code, tail)) = rest.split_first() {
                match code {
                    0 => rest = tail,
                    255 => break,
                    _ => {
                        let (&len, tail) = tail
                            .split_first()
                            .ok_or("option 43: a sub-option without its length")?;
                        let len = usize::from(len);
                        let value = tail
                            .get(..len)
                            .ok_or("option 43: a sub-option longer than the option")?;
                        sub_option(&mut d, u16::from(code), value)?;
                        rest = tail.get(len..).unwrap_or_default();
                    }
                }
            }
        }
        Family::V6 => {
            let (enterprise, mut rest) = option
                .split_first_chunk::<4>()
                .ok_or("option 17: shorter than its enterprise number")?;
            let enterprise = u32::from_be_bytes(*enterprise);
            if enterprise != ENTERPRISE {
                return Err(format!(
                    "option 17 is of enterprise {enterprise}, not {ENTERPRISE}"
                ));
            }
            while !rest.is_empty() {
                let (head, tail) = rest
                    .split_first_chunk::<4>()
                    .ok_or("option 17: a sub-option cut short")?;
                let code = u16::from_be_bytes([head[0], head[1]]);
                let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                let value = tail
                    .get(..len)
                    .ok_or("option 17: a sub-option longer than the option")?;
                sub_option(&mut d, code, value)?;
                rest = tail.get(len..).unwrap_or_default();
            }
        }
    }
    Ok(d)
}

/// One sub-option into `d`; unknown codes are skipped (vendors add their own).
fn sub_option(d: &mut Discovered, code: u16, value: &[u8]) -> Result<(), String> {
    match code {
        1 => d.url = text(value, MAX_URL, "the ACS URL")?,
        2 => {
            d.provisioning_code = Some(text(value, MAX_PROVISIONING_CODE, "the ProvisioningCode")?)
        }
        3 => d.min_wait = number(value).filter(|v| (1..=65535).contains(v)),
        4 => d.multiplier = number(value).filter(|v| (1000..=65535).contains(v)),
        _ => {}
    }
    Ok(())
}

/// A string sub-option: UTF-8 without control characters (a trailing NUL, as some servers
/// send, dropped), at most `max` bytes.
fn text(value: &[u8], max: usize, what: &str) -> Result<String, String> {
    let value = value.strip_suffix(&[0]).unwrap_or(value);
    let s = std::str::from_utf8(value).map_err(|_| format!("{what} is not UTF-8"))?;
    if s.len() > max || s.chars().any(char::is_control) {
        return Err(format!(
            "{what} is over {max} bytes or holds control characters"
        ));
    }
    Ok(s.trim().to_string())
}

/// An unsigned integer of one to four bytes, big-endian.
fn number(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 4 {
        return None;
    }
    Some(value.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)))
}

/// The value of DHCPv4 option 125 (V-I Vendor-Specific Information, RFC 3925 §4) with the CPE's
/// identity for enterprise 3561 (TR-111 Part 1): sub-options 1 DeviceManufacturerOUI, 2
/// DeviceSerialNumber, 3 DeviceProductClass, each cut to 64 bytes.
pub fn option125(oui: &str, serial: &str, product_class: &str) -> Vec<u8> {
    let mut data = Vec::new();
    for (code, v) in [(1u8, oui), (2, serial), (3, product_class)] {
        let v = v.as_bytes();
        let v = v.get(..v.len().min(64)).unwrap_or_default();
        data.push(code);
        data.push(v.len() as u8);
        data.extend_from_slice(v);
    }
    let mut out = ENTERPRISE.to_be_bytes().to_vec();
    out.push(data.len() as u8);
    out.extend_from_slice(&data);
    out
}

/// Bytes as lowercase hex (what udhcpc's `-x 0x7d:HEX` takes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What busybox udhcpc printed as `opt43` for a lease from dnsmasq 2.89 configured with
    /// `--dhcp-option=vendor:dslforum.org,1,http://10.99.0.1:7547/acs` and sub-options 2
    /// (PROV-1), 3 (10) and 4 (3000).
    const DNSMASQ: &str =
        "04020bb803010a020650524f562d310119687474703a2f2f31302e39392e302e313a373534372f616373ff";

    #[test]
    fn option_43_as_dnsmasq_sends_it_through_udhcpc() {
        let d = parse(Family::V4, &unhex(DNSMASQ).unwrap()).unwrap();
        assert_eq!(
            d,
            Discovered {
                url: "http://10.99.0.1:7547/acs".into(),
                provisioning_code: Some("PROV-1".into()),
                min_wait: Some(10),
                multiplier: Some(3000),
            }
        );
        // Pads, an unknown sub-option, no end.
        let d = parse(Family::V4, &[0, 0, 9, 1, 7, 1, 3, b'h', b't', b'p']).unwrap();
        assert_eq!(d.url, "htp");
        // Out of range numbers are left out.
        let d = parse(Family::V4, &[3, 4, 0, 1, 0, 0, 4, 1, 5]).unwrap();
        assert_eq!((d.min_wait, d.multiplier), (None, None));
    }

    #[test]
    fn option_17_of_enterprise_3561() {
        let mut o = ENTERPRISE.to_be_bytes().to_vec();
        o.extend_from_slice(&[0, 1, 0, 20]);
        o.extend_from_slice(b"https://acs.example/");
        o.extend_from_slice(&[0, 3, 0, 2, 0, 30]);
        let d = parse(Family::V6, &o).unwrap();
        assert_eq!(d.url, "https://acs.example/");
        assert_eq!(d.min_wait, Some(30));
        let mut other = 9u32.to_be_bytes().to_vec();
        other.extend_from_slice(&o[4..]);
        assert!(parse(Family::V6, &other).is_err());
    }

    #[test]
    fn malformed_options_are_refused() {
        for (f, bad) in [
            (Family::V4, vec![1, 5, b'a']),
            (Family::V4, vec![1]),
            (Family::V4, vec![1, 2, b'a', 10]),
            (Family::V4, vec![1, 2, 0xff, 0xfe]),
            (Family::V6, vec![0, 0, 13]),
            (Family::V6, vec![0, 0, 13, 233, 0, 1, 0, 9, b'x']),
        ] {
            assert!(parse(f, &bad).is_err(), "{bad:?}");
        }
        let mut long = ENTERPRISE.to_be_bytes().to_vec();
        long.extend_from_slice(&[0, 1, 1, 44]);
        long.extend(std::iter::repeat_n(b'a', 300));
        assert!(parse(Family::V6, &long).is_err(), "a URL over 256 bytes");
        assert!(unhex("abc").is_err() && unhex("zz").is_err());
        assert!(unhex(&"00".repeat(MAX_OPTION + 1)).is_err());
    }

    #[test]
    fn option_125_carries_the_identity() {
        let o = option125("00D0F8", "SN1", "Router");
        assert_eq!(&o[..4], &[0, 0, 0x0d, 0xe9]);
        assert_eq!(usize::from(o[4]), o.len() - 5);
        assert_eq!(&o[5..13], b"\x01\x0600D0F8");
        assert_eq!(hex(&o[..5]), "00000de915");
    }
}
