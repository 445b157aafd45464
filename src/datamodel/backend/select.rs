//! The selector grammar of the backends that read structured live state (`netlink`, `ubus`):
//! a path of names and bracketed selections, and the conditions of a filtered listing. Pure.
//!
//! ```text
//! key   = step ( "." step )*          a step is a name, or a name followed by selections
//! step  = NAME ( "[" sel "]" )*  |  ( "[" sel "]" )+
//! sel   = "*"                         every member (a listing: table keys, array elements)
//!       | "*?" cond ( "&" cond )*     the members whose fields meet every condition
//!       | FIELD "=" VALUE             the first array element whose FIELD reads VALUE
//!       | KEY                         the member named KEY (a table's key, an array's index)
//! cond  = FIELD                       the field reads as true (present, not "", "0", "false")
//!       | "!" FIELD                   it does not
//!       | FIELD "=" V ( "|" V )*      it reads one of the values ("" matches an absent field)
//!       | FIELD "!=" V ( "|" V )*     it reads none of them
//! ```
//!
//! A NAME holds no `.`, `[` or `]`; what is between brackets holds no `[` or `]` (an instance
//! key that would is never listed by the backends, so a filled-in key cannot break out of its
//! brackets). The parse is one pass over the key; a key has at most [`MAX_STEPS`] steps.

/// Most steps (names and selections) in one key.
pub const MAX_STEPS: usize = 32;

/// One step of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// A field of a table (`ipv4-address`), a table of a backend (`link`).
    Name(&'a str),
    /// A bracketed selection.
    Sel(Sel<'a>),
}

/// What a bracketed selection picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sel<'a> {
    /// `[*]`, `[*?COND&…]`: every member meeting the conditions (none: all).
    All(Vec<Cond<'a>>),
    /// `[FIELD=VALUE]`: the first element of an array whose field reads the value.
    Match(&'a str, &'a str),
    /// `[KEY]`: a table's member, an array's index, a row's key.
    Key(&'a str),
}

/// One condition of a filtered listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond<'a> {
    pub field: &'a str,
    pub op: Op,
    /// The values of `=` and `!=`.
    pub values: Vec<&'a str>,
}

/// How a condition tests its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    True,
    False,
    Eq,
    Ne,
}

/// Splits a key into its steps.
pub fn parse(key: &str) -> Result<Vec<Step<'_>>, String> {
    let mut steps = Vec::new();
    let mut rest = key;
    let mut after_name_or_sel = false;
    while !rest.is_empty() {
        if steps.len() >= MAX_STEPS {
            return Err(format!("more than {MAX_STEPS} steps"));
        }
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {key:?}"))?;
            let sel = &inner[..close];
            if sel.contains('[') {
                return Err(format!("[ inside a selection in {key:?}"));
            }
            steps.push(Step::Sel(parse_sel(sel)?));
            rest = &inner[close + 1..];
            after_name_or_sel = true;
            continue;
        }
        if after_name_or_sel {
            rest = rest
                .strip_prefix('.')
                .ok_or_else(|| format!("expected . or [ at {rest:?} in {key:?}"))?;
        }
        let end = rest.find(['.', '[', ']']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return Err(format!("empty name in {key:?}"));
        }
        if rest[end..].starts_with(']') {
            return Err(format!("unmatched ] in {key:?}"));
        }
        steps.push(Step::Name(name));
        rest = &rest[end..];
        after_name_or_sel = true;
    }
    if steps.is_empty() {
        return Err("empty key".into());
    }
    Ok(steps)
}

fn parse_sel(sel: &str) -> Result<Sel<'_>, String> {
    if sel == "*" {
        return Ok(Sel::All(Vec::new()));
    }
    if let Some(conds) = sel.strip_prefix("*?") {
        return conds
            .split('&')
            .map(parse_cond)
            .collect::<Result<_, _>>()
            .map(Sel::All);
    }
    if sel.is_empty() {
        return Err("empty selection []".into());
    }
    match sel.split_once('=') {
        Some((field, value)) if !field.is_empty() => Ok(Sel::Match(field, value)),
        Some(_) => Err(format!("selection [{sel}] has no field")),
        None => Ok(Sel::Key(sel)),
    }
}

fn parse_cond(c: &str) -> Result<Cond<'_>, String> {
    let (field, op, values) = if let Some((f, v)) = c.split_once("!=") {
        (f, Op::Ne, v.split('|').collect())
    } else if let Some((f, v)) = c.split_once('=') {
        (f, Op::Eq, v.split('|').collect())
    } else if let Some(f) = c.strip_prefix('!') {
        (f, Op::False, Vec::new())
    } else {
        (c, Op::True, Vec::new())
    };
    if field.is_empty() {
        return Err(format!("condition {c:?} has no field"));
    }
    Ok(Cond { field, op, values })
}

/// Whether a member meets every condition; `get` reads one of its fields.
pub fn matches(conds: &[Cond<'_>], mut get: impl FnMut(&str) -> Option<String>) -> bool {
    conds.iter().all(|c| {
        let v = get(c.field);
        match c.op {
            Op::True => truthy(v.as_deref()),
            Op::False => !truthy(v.as_deref()),
            Op::Eq => c.values.contains(&v.as_deref().unwrap_or("")),
            Op::Ne => !c.values.contains(&v.as_deref().unwrap_or("")),
        }
    })
}

/// A value that reads as true: present and not `""`, `0` or `false`.
pub fn truthy(v: Option<&str>) -> bool {
    !matches!(v, None | Some("" | "0" | "false"))
}

/// Whether a listed key may stand between brackets in a later key.
pub fn listable(key: &str) -> bool {
    !key.is_empty() && !crate::datamodel::scan::has_byte_of(key, b"[]{}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_selections() {
        assert_eq!(
            parse("interface[interface=wan].ipv4-address[0].address").unwrap(),
            vec![
                Step::Name("interface"),
                Step::Sel(Sel::Match("interface", "wan")),
                Step::Name("ipv4-address"),
                Step::Sel(Sel::Key("0")),
                Step::Name("address"),
            ]
        );
        assert_eq!(
            parse("addr4[eth0][192.0.2.1].mask").unwrap(),
            vec![
                Step::Name("addr4"),
                Step::Sel(Sel::Key("eth0")),
                Step::Sel(Sel::Key("192.0.2.1")),
                Step::Name("mask"),
            ]
        );
        let s = parse("link[*?kind!=bridge|veth&up&!loopback&type=1]").unwrap();
        let Step::Sel(Sel::All(c)) = &s[1] else {
            panic!("{s:?}")
        };
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].op, Op::Ne);
        assert_eq!(c[0].values, vec!["bridge", "veth"]);
        assert_eq!((c[1].op, c[2].op, c[3].op), (Op::True, Op::False, Op::Eq));
        assert_eq!(parse("[*]").unwrap(), vec![Step::Sel(Sel::All(vec![]))]);
        assert_eq!(parse("clients[aa:bb:cc:dd:ee:ff].signal").unwrap().len(), 3);
    }

    #[test]
    fn bad_keys() {
        for k in [
            "", "a..b", "a[", "a]", "a[]", "a[b[c]]", "a[=x]", "a[*?]", "a[*?=1]", "a.", ".a",
            "a[0]b",
        ] {
            assert!(parse(k).is_err(), "{k:?} parsed");
        }
        let long = vec!["a"; MAX_STEPS + 1].join(".");
        assert!(parse(&long).is_err());
        assert!(parse(&vec!["a"; MAX_STEPS].join(".")).is_ok());
    }

    #[test]
    fn conditions() {
        let Step::Sel(Sel::All(c)) =
            parse("[*?proto=dhcp|&up&!pending&dev!=lo]").unwrap()[0].clone()
        else {
            unreachable!()
        };
        let row = |proto: Option<&str>, up: &str, pending: Option<&str>, dev: &str| {
            let (proto, pending) = (proto.map(str::to_string), pending.map(str::to_string));
            let (up, dev) = (up.to_string(), dev.to_string());
            matches(&c, move |f| match f {
                "proto" => proto.clone(),
                "up" => Some(up.clone()),
                "pending" => pending.clone(),
                "dev" => Some(dev.clone()),
                _ => None,
            })
        };
        assert!(row(Some("dhcp"), "true", None, "eth0"));
        assert!(
            row(None, "1", Some("false"), "eth0"),
            "an absent field matches \"\""
        );
        assert!(!row(Some("static"), "true", None, "eth0"));
        assert!(!row(Some("dhcp"), "false", None, "eth0"));
        assert!(!row(Some("dhcp"), "true", Some("true"), "eth0"));
        assert!(!row(Some("dhcp"), "true", None, "lo"));
        assert!(listable("wan") && listable("192.0.2.1") && listable("0.0.0.0/0@eth0#0"));
        assert!(!listable("a]b") && !listable("") && !listable("{uci:x}"));
    }
}
