//! Value transforms of a binding (`transform = "…"` in `datamodel/bindings/`): pure functions
//! between how a backend stores a value and its TR-106 lexical form (TR-106 §3.2), so that one
//! backend serves many parameters without code per parameter. A transform without an inverse
//! makes its parameter read-only. Every transform is a function of the value alone except
//! `remaining` and `until`, which read the wall clock (seconds left until a stored time, the
//! time a number of seconds from now).

use std::time::{SystemTime, UNIX_EPOCH};

/// A named transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Little-endian hexadecimal IPv4 address of `/proc/net/route` (`0101A8C0`) → `192.168.1.1`.
    HexIp4,
    /// The first whitespace-separated word (`16384 kB` → `16384`).
    Word,
    /// Boolean inverse (`disabled` ↔ `Enable`); accepts `0/1/true/false/yes/no/on/off`.
    Not,
    /// A prefix length (`24`) ↔ a dotted netmask (`255.255.255.0`).
    PrefixMask,
    /// Upper case (MAC addresses as some models want them).
    Upper,
    /// Lower case.
    Lower,
    /// An absolute time in Unix seconds → seconds from now, at least 0 (lease remaining time);
    /// 0, dnsmasq's infinite lease, is -1 (TR-181 `LeaseTimeRemaining`: -1 is infinite).
    Remaining,
    /// Bytes → KiB.
    Kib,
    /// 32 hexadecimal digits of `/proc/net/if_inet6` → an IPv6 address (`fe80::1`).
    HexIp6,
    /// A dnsmasq/OpenWrt duration (`12h`, `30m`, `45`, `infinite`) ↔ seconds (`infinite` is
    /// -1, TR-181's "infinite" lease).
    Duration,
    /// Hundredths → units (kernel centiseconds → seconds).
    Centi,
    /// A 64-bit counter as a 32-bit one (TR-098 `unsignedInt` statistics wrap).
    Wrap32,
    /// Thousandths → units, toward zero (the kernel's millidegrees Celsius → degrees).
    Milli,
    /// Seconds left (netifd's `preferred`/`valid` of an address) → the `xsd:dateTime` they
    /// end at; `-1` or 4294967295 (the kernel's and netifd's infinite) is TR-181's infinite
    /// time, `9999-12-31T23:59:59Z`.
    Until,
}

impl Transform {
    pub const ALL: [Transform; 14] = [
        Transform::HexIp4,
        Transform::Word,
        Transform::Not,
        Transform::PrefixMask,
        Transform::Upper,
        Transform::Lower,
        Transform::Remaining,
        Transform::Kib,
        Transform::HexIp6,
        Transform::Duration,
        Transform::Centi,
        Transform::Wrap32,
        Transform::Milli,
        Transform::Until,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transform::HexIp4 => "hexip4",
            Transform::Word => "word",
            Transform::Not => "not",
            Transform::PrefixMask => "prefix_mask",
            Transform::Upper => "upper",
            Transform::Lower => "lower",
            Transform::Remaining => "remaining",
            Transform::Kib => "kib",
            Transform::HexIp6 => "hexip6",
            Transform::Duration => "duration",
            Transform::Centi => "centi",
            Transform::Wrap32 => "wrap32",
            Transform::Milli => "milli",
            Transform::Until => "until",
        }
    }

    pub fn from_name(s: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether a model value can be turned back into a backend value.
    pub fn writable(self) -> bool {
        matches!(
            self,
            Transform::Not
                | Transform::PrefixMask
                | Transform::Upper
                | Transform::Lower
                | Transform::Duration
        )
    }

    /// Backend value → model value; `None` when the backend value does not fit (then the
    /// parameter reads as it would without a value).
    pub fn read(self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        match self {
            Transform::HexIp4 => {
                if raw.len() != 8 {
                    return None;
                }
                let n = u32::from_str_radix(raw, 16).ok()?;
                let b = n.to_le_bytes();
                Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
            }
            Transform::Word => raw.split_whitespace().next().map(str::to_string),
            Transform::Not => parse_bool(raw).map(|b| (!b).to_string()),
            Transform::PrefixMask => {
                let p: u32 = raw.parse().ok()?;
                (p <= 32).then(|| mask_of(p))
            }
            Transform::Upper => Some(raw.to_ascii_uppercase()),
            Transform::Lower => Some(raw.to_ascii_lowercase()),
            Transform::Remaining => {
                let at: i64 = raw.parse().ok()?;
                if at == 0 {
                    return Some("-1".to_string());
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                Some(at.saturating_sub(now).max(0).to_string())
            }
            Transform::Kib => raw.parse::<u64>().ok().map(|b| (b / 1024).to_string()),
            Transform::HexIp6 => {
                if raw.len() != 32 {
                    return None;
                }
                let n = u128::from_str_radix(raw, 16).ok()?;
                Some(std::net::Ipv6Addr::from(n).to_string())
            }
            Transform::Duration => duration_seconds(raw).map(|s| s.to_string()),
            Transform::Centi => raw.parse::<u64>().ok().map(|c| (c / 100).to_string()),
            Transform::Wrap32 => raw
                .parse::<u64>()
                .ok()
                .map(|n| (n & u64::from(u32::MAX)).to_string()),
            Transform::Milli => raw.parse::<i64>().ok().map(|m| (m / 1000).to_string()),
            Transform::Until => {
                let left: i64 = raw.parse().ok()?;
                if left == -1 || left == i64::from(u32::MAX) {
                    return Some("9999-12-31T23:59:59Z".to_string());
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                (left >= 0)
                    .then(|| crate::cwmp::time::format_datetime_utc(now.saturating_add(left)))
            }
        }
    }

    /// Model value (already type-checked) → backend value; `None` when there is no inverse or
    /// the value cannot be expressed (the engine answers 9007).
    pub fn write(self, value: &str) -> Option<String> {
        match self {
            // uci booleans are written `0`/`1` (OpenWrt's config_get_bool reads both forms).
            Transform::Not => parse_bool(value).map(|b| if b { "0" } else { "1" }.to_string()),
            Transform::PrefixMask => prefix_of(value).map(|p| p.to_string()),
            Transform::Upper => Some(value.to_ascii_uppercase()),
            Transform::Lower => Some(value.to_ascii_lowercase()),
            Transform::Duration => {
                let secs: i64 = value.trim().parse().ok()?;
                Some(match secs {
                    -1 => "infinite".to_string(),
                    s if s < 0 => return None,
                    s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
                    s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
                    s => s.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// Seconds of a dnsmasq duration: a number with an optional unit `s`, `m`, `h`, `d`, `w`;
/// `infinite` is -1.
fn duration_seconds(s: &str) -> Option<i64> {
    if s.eq_ignore_ascii_case("infinite") {
        return Some(-1);
    }
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 's'),
    };
    let n: i64 = num.parse().ok().filter(|n| *n >= 0)?;
    let mul = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// The boolean forms OpenWrt accepts (`config_get_bool`).
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

fn mask_of(prefix: u32) -> String {
    let m: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    let b = m.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// The prefix length of a contiguous dotted netmask.
fn prefix_of(mask: &str) -> Option<u32> {
    let addr: std::net::Ipv4Addr = mask.trim().parse().ok()?;
    let m = u32::from(addr);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads() {
        assert_eq!(
            Transform::HexIp4.read("0101A8C0").as_deref(),
            Some("192.168.1.1")
        );
        assert_eq!(
            Transform::HexIp4.read("00000000").as_deref(),
            Some("0.0.0.0")
        );
        assert_eq!(Transform::HexIp4.read("zz"), None);
        assert_eq!(Transform::Word.read("16384 kB").as_deref(), Some("16384"));
        assert_eq!(Transform::Word.read("   "), None);
        assert_eq!(Transform::Not.read("1").as_deref(), Some("false"));
        assert_eq!(Transform::Not.read("off").as_deref(), Some("true"));
        assert_eq!(Transform::Not.read("maybe"), None);
        assert_eq!(
            Transform::PrefixMask.read("24").as_deref(),
            Some("255.255.255.0")
        );
        assert_eq!(Transform::PrefixMask.read("0").as_deref(), Some("0.0.0.0"));
        assert_eq!(Transform::PrefixMask.read("33"), None);
        assert_eq!(Transform::Kib.read("2048").as_deref(), Some("2"));
        assert_eq!(
            Transform::HexIp6
                .read("fe800000000000000211223344556677")
                .as_deref(),
            Some("fe80::211:2233:4455:6677")
        );
        assert_eq!(Transform::HexIp6.read("fe80"), None);
        assert_eq!(Transform::Duration.read("12h").as_deref(), Some("43200"));
        assert_eq!(Transform::Duration.read("90").as_deref(), Some("90"));
        assert_eq!(Transform::Duration.read("infinite").as_deref(), Some("-1"));
        assert_eq!(Transform::Duration.read("5x"), None);
        assert_eq!(Transform::Centi.read("30000").as_deref(), Some("300"));
        assert_eq!(Transform::Wrap32.read("4294967301").as_deref(), Some("5"));
        assert_eq!(Transform::Remaining.read("1").as_deref(), Some("0"));
        assert_eq!(Transform::Remaining.read("0").as_deref(), Some("-1"));
        let later = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 100;
        let left: u64 = Transform::Remaining
            .read(&later.to_string())
            .unwrap()
            .parse()
            .unwrap();
        assert!((98..=100).contains(&left), "{left}");
        assert_eq!(Transform::Milli.read("45312").as_deref(), Some("45"));
        assert_eq!(Transform::Milli.read("-2500").as_deref(), Some("-2"));
        assert_eq!(Transform::Milli.read("warm"), None);
        for infinite in ["-1", "4294967295"] {
            assert_eq!(
                Transform::Until.read(infinite).as_deref(),
                Some("9999-12-31T23:59:59Z")
            );
        }
        assert_eq!(Transform::Until.read("-5"), None);
        let at =
            crate::cwmp::time::parse_datetime(&Transform::Until.read("3600").unwrap()).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((3598..=3601).contains(&(at - now)), "{}", at - now);
    }

    #[test]
    fn writes() {
        assert_eq!(Transform::Not.write("true").as_deref(), Some("0"));
        assert_eq!(Transform::Not.write("false").as_deref(), Some("1"));
        assert_eq!(
            Transform::PrefixMask.write("255.255.255.0").as_deref(),
            Some("24")
        );
        assert_eq!(
            Transform::PrefixMask.write("255.255.255.255").as_deref(),
            Some("32")
        );
        assert_eq!(Transform::PrefixMask.write("0.0.0.0").as_deref(), Some("0"));
        assert_eq!(Transform::PrefixMask.write("255.0.255.0"), None);
        assert_eq!(Transform::HexIp4.write("1.2.3.4"), None);
        assert_eq!(Transform::Duration.write("43200").as_deref(), Some("12h"));
        assert_eq!(Transform::Duration.write("120").as_deref(), Some("2m"));
        assert_eq!(Transform::Duration.write("61").as_deref(), Some("61"));
        assert_eq!(Transform::Duration.write("-1").as_deref(), Some("infinite"));
        assert_eq!(Transform::Duration.write("-5"), None);
        for t in Transform::ALL {
            assert_eq!(Transform::from_name(t.name()), Some(t));
            assert_eq!(
                t.writable(),
                t.write("1").is_some() || t == Transform::PrefixMask
            );
        }
    }
}
