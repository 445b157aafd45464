//! The key grammar of the `uci` backend (value keys `PKG.SEC.OPT`, `PKG.SEC.OPT[]`,
//! `PKG.SEC.OPT[N]`, `PKG.SEC.@min`/`@max`; table keys `PKG.@TYPE[?FILTER]`, `PKG.SEC`,
//! `PKG.SEC.OPT[]`; see the module documentation of `uci`), and the filters of table keys.

use std::fmt;

use super::export::{Section, Value};
use super::pool::POOL;
use crate::datamodel::scan::byte_at;
use crate::uci::is_name;

/// Largest list index accepted in a key (`OPT[N]`).
pub(super) const MAX_INDEX: usize = 4096;

/// Largest section index accepted in a key (`@TYPE[N]`).
pub(super) const MAX_SECTION_INDEX: i64 = 1_000_000;

/// Checks a binding key when the definitions are loaded: a value key or a table key of the
/// grammar in the module documentation.
pub fn check_key(key: &str) -> Result<(), String> {
    let value = parse_value_key(key);
    if value.is_ok() {
        return Ok(());
    }
    let table = parse_table_key(key);
    if table.is_ok() {
        return Ok(());
    }
    let head = key.split('?').next().unwrap_or(key);
    let looks_like_table = key.contains('?') || head.split('.').count() == 2;
    let why = if looks_like_table {
        table.err()
    } else {
        value.err()
    };
    Err(format!(
        "bad uci key {key:?}: {}",
        why.unwrap_or_else(|| "unknown form".into())
    ))
}

/// The index of the section a key names among `items` (each holding a section).
pub(super) fn locate<T>(
    items: &[T],
    sec: impl Fn(&T) -> &Section,
    r: &SecRef<'_>,
) -> Option<usize> {
    match r {
        SecRef::Name(n) => items.iter().position(|i| sec(i).name == *n),
        SecRef::Nth(ty, n) => {
            let of_type: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, i)| sec(i).ty == *ty)
                .map(|(k, _)| k)
                .collect();
            let at = if *n < 0 {
                of_type
                    .len()
                    .checked_sub(usize::try_from(n.unsigned_abs()).ok()?)?
            } else {
                usize::try_from(*n).ok()?
            };
            of_type.get(at).copied()
        }
    }
}

/// A section in a key: by name, or the N-th of a type (`@TYPE[N]`, negative from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecRef<'a> {
    Name(&'a str),
    Nth(&'a str, i64),
}

impl fmt::Display for SecRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecRef::Name(n) => f.write_str(n),
            SecRef::Nth(t, n) => write!(f, "@{t}[{n}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field<'a> {
    Opt(&'a str),
    List(&'a str),
    Item(&'a str, usize),
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ValueKey<'a> {
    pub(super) pkg: &'a str,
    pub(super) sec: SecRef<'a>,
    pub(super) field: Field<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TableKey<'a> {
    Type {
        pkg: &'a str,
        ty: &'a str,
        conds: Vec<Cond<'a>>,
    },
    Single {
        pkg: &'a str,
        sec: SecRef<'a>,
    },
    Items {
        pkg: &'a str,
        sec: SecRef<'a>,
        opt: &'a str,
    },
}

impl<'a> TableKey<'a> {
    pub(super) fn pkg(&self) -> &'a str {
        match self {
            TableKey::Type { pkg, .. }
            | TableKey::Single { pkg, .. }
            | TableKey::Items { pkg, .. } => pkg,
        }
    }
}

/// `OPT=a|b` or `OPT!=a|b` (`.name` is the section name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cond<'a> {
    pub(super) opt: &'a str,
    pub(super) negate: bool,
    pub(super) alts: Vec<&'a str>,
}

/// A package or section type name as keys may use them.
pub(super) fn is_type(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-'))
}

/// `s` split at the first `b` (an ASCII byte), which neither part holds. Every key of a read
/// is split so: a byte search costs a fraction of `split_once`'s searcher on a few bytes.
fn cut(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = byte_at(s, b)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

pub(super) fn parse_sec(s: &str) -> Result<SecRef<'_>, String> {
    if let Some(rest) = s.get(1..).filter(|_| s.as_bytes()[0] == b'@') {
        let (ty, n) = rest
            .strip_suffix(']')
            .and_then(|r| r.split_once('['))
            .ok_or_else(|| format!("section {s:?} is not `@TYPE[N]`"))?;
        if !is_type(ty) {
            return Err(format!("bad section type {ty:?}"));
        }
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n: &i64| n.unsigned_abs() <= MAX_SECTION_INDEX.unsigned_abs())
            .ok_or_else(|| format!("bad section index {n:?} in {s:?}"))?;
        Ok(SecRef::Nth(ty, n))
    } else if is_name(s) {
        Ok(SecRef::Name(s))
    } else {
        Err(format!(
            "bad section name {s:?} (letters, digits, `_`; or `@TYPE[N]`)"
        ))
    }
}

pub(super) fn parse_value_key(key: &str) -> Result<ValueKey<'_>, String> {
    let Some((pkg, (sec, field))) = cut(key, b'.').and_then(|(p, r)| Some((p, cut(r, b'.')?)))
    else {
        return Err("a value key is `PKG.SEC.OPT`".into());
    };
    if !is_type(pkg) {
        return Err(format!("bad package name {pkg:?}"));
    }
    let sec = parse_sec(sec)?;
    let field = match field {
        "@min" => Field::Min,
        "@max" => Field::Max,
        f => match cut(f, b'[') {
            Some((opt, idx)) => {
                let idx = idx
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{f:?}: `[` without `]`"))?;
                if !is_name(opt) {
                    return Err(format!("bad option name {opt:?}"));
                }
                if idx.is_empty() {
                    Field::List(opt)
                } else {
                    let n = idx
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_INDEX && idx.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| format!("bad list index {idx:?} (0…{MAX_INDEX})"))?;
                    Field::Item(opt, n)
                }
            }
            None if is_name(f) => Field::Opt(f),
            None => {
                return Err(format!(
                    "bad option {f:?} (a name, `NAME[]`, `NAME[N]`, `@min` or `@max`)"
                ))
            }
        },
    };
    Ok(ValueKey { pkg, sec, field })
}

pub(super) fn parse_table_key(key: &str) -> Result<TableKey<'_>, String> {
    let (head, filter) = match key.split_once('?') {
        Some((h, f)) => (h, Some(f)),
        None => (key, None),
    };
    let parts: Vec<&str> = head.split('.').collect();
    match parts.as_slice() {
        [pkg, sec] => {
            if !is_type(pkg) {
                return Err(format!("bad package name {pkg:?}"));
            }
            match sec.strip_prefix('@').filter(|t| !t.contains('[')) {
                Some(ty) => {
                    if !is_type(ty) {
                        return Err(format!("bad section type {ty:?}"));
                    }
                    let conds = match filter {
                        Some(f) => parse_conds(f)?,
                        None => Vec::new(),
                    };
                    Ok(TableKey::Type { pkg, ty, conds })
                }
                None if filter.is_some() => {
                    Err("a filter (`?…`) needs a table of a type: `PKG.@TYPE?…`".into())
                }
                None => Ok(TableKey::Single {
                    pkg,
                    sec: parse_sec(sec)?,
                }),
            }
        }
        [pkg, sec, opt] if filter.is_none() => {
            if !is_type(pkg) {
                return Err(format!("bad package name {pkg:?}"));
            }
            let opt = opt
                .strip_suffix("[]")
                .filter(|o| is_name(o))
                .ok_or_else(|| format!("a list table ends with `OPT[]`, not {opt:?}"))?;
            Ok(TableKey::Items {
                pkg,
                sec: parse_sec(sec)?,
                opt,
            })
        }
        _ => Err("a table key is `PKG.@TYPE[?FILTER]`, `PKG.SEC` or `PKG.SEC.OPT[]`".into()),
    }
}

pub(super) fn parse_conds(f: &str) -> Result<Vec<Cond<'_>>, String> {
    let mut conds = Vec::new();
    for c in f.split('&') {
        let (lhs, alts) = c
            .split_once('=')
            .ok_or_else(|| format!("condition {c:?} is not `OPT=V|…` or `OPT!=V|…`"))?;
        let (opt, negate) = match lhs.strip_suffix('!') {
            Some(o) => (o, true),
            None => (lhs, false),
        };
        if opt != ".name" && opt != POOL && !is_name(opt) {
            return Err(format!("bad option {opt:?} in condition {c:?}"));
        }
        conds.push(Cond {
            opt,
            negate,
            alts: alts.split('|').collect(),
        });
    }
    Ok(conds)
}

/// Whether a section passes every condition of a filter (an absent option equals ``). `pool`
/// is what the section's [`POOL`] pseudo option reads (computed by the caller when a condition
/// names it).
pub(super) fn matches_filter(s: &Section, conds: &[Cond<'_>], pool: Option<&str>) -> bool {
    conds.iter().all(|c| {
        let hit = c.alts.iter().any(|a| {
            if c.opt == ".name" {
                return s.name == *a;
            }
            if c.opt == POOL {
                return pool.unwrap_or("") == *a;
            }
            match s.opt(c.opt) {
                None => a.is_empty(),
                Some(Value::One(v)) => v == a,
                Some(Value::List(items)) => {
                    items.iter().any(|i| i == a) || (a.is_empty() && items.is_empty())
                }
            }
        });
        hit != c.negate
    })
}

#[cfg(test)]
mod tests {
    use super::super::export::{one, sec};
    use super::*;

    #[test]
    fn keys() {
        let k = parse_value_key("dhcp.@dhcp[-1].dhcp_option[2]").unwrap();
        assert_eq!(k.pkg, "dhcp");
        assert_eq!(k.sec, SecRef::Nth("dhcp", -1));
        assert_eq!(k.field, Field::Item("dhcp_option", 2));
        assert_eq!(
            parse_value_key("system.ntp.server[]").unwrap().field,
            Field::List("server")
        );
        assert_eq!(parse_value_key("dhcp.lan.@max").unwrap().field, Field::Max);
        for good in [
            "network.lan.ipaddr",
            "network.@interface",
            "firewall.@redirect?target=DNAT&proto=tcp|udp|&.name!=x0",
            "network.lan",
            "system.@system[0]",
            "system.ntp.server[]",
            "wireless.@wifi-iface?device=x0",
        ] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        for bad in [
            "network",
            "network.lan.",
            "network.lan.ip-addr",
            "network.@interface.proto",
            "network.lan.dns[x]",
            "network.lan.dns[1",
            "network.la n.proto",
            "net work.lan.proto",
            "network.lan?proto=static",
            "network.@interface?proto",
            "network.@interface?pro-to=x",
            "network.lan.dns",
            "-x.lan.proto",
        ] {
            // `network.lan.dns` is a value key: valid; the others are not keys at all.
            if bad == "network.lan.dns" {
                assert_eq!(check_key(bad), Ok(()));
                continue;
            }
            let e = check_key(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        let TableKey::Type { conds, .. } = parse_table_key("f.@r?a=x|&b!=y&.name!=lo").unwrap()
        else {
            panic!("not a type table");
        };
        assert_eq!(conds.len(), 3);
        assert!(conds[1].negate && conds[2].negate && !conds[0].negate);
        let s = sec("cwmp1", "r", &[("a", one("x"))]);
        assert!(matches_filter(&s, &conds, None));
        // `a` absent matches the empty alternative; `b` must not be `y`.
        let s = sec("cwmp1", "r", &[("c", one("z"))]);
        assert!(matches_filter(&s, &conds, None));
        let s = sec("cwmp1", "r", &[("b", one("y"))]);
        assert!(!matches_filter(&s, &conds, None));
        let s = sec("lo", "r", &[]);
        assert!(!matches_filter(&s, &conds, None));
    }
}
