//! The key grammar of the `file` backend (see the module documentation of `file`) and the
//! globs of `name=GLOB` conditions: parsing and checking only.

use crate::datamodel::scan::{byte_at, has_byte_of};

/// Checks a binding key when the definitions are loaded: one of the value or table forms of
/// the module documentation. Placeholders (`{i}`, `{uci:…}`) count as one path component or
/// one name and are not looked into.
pub fn check_key(key: &str) -> Result<(), String> {
    let masked = mask_placeholders(key).map_err(|m| format!("file key {key:?}: {m}"))?;
    parse(&masked)
        .map(|_| ())
        .map_err(|m| format!("file key {key:?}: {m}"))
}

/// The longest key accepted.
const MAX_KEY: usize = 4096;

/// The highest column number a key may name.
const MAX_COL: usize = 4096;

/// A parsed key, borrowing from its text.
#[derive(Debug)]
pub(super) enum Key<'a> {
    Whole(&'a str),
    Field(&'a str, &'a str),
    Cell {
        path: &'a str,
        spec_text: &'a str,
        spec: Spec<'a>,
        row: &'a str,
        col: usize,
    },
    Count {
        listing: &'a str,
        dir: &'a str,
        conds: Vec<Cond<'a>>,
    },
    Listing {
        dir: &'a str,
        conds: Vec<Cond<'a>>,
    },
    Rows {
        path: &'a str,
        spec: Spec<'a>,
    },
}

/// How a table file is read (`KEYCOLS;skip=N;sep=C;where=COL=VALUE`).
#[derive(Debug, Default)]
pub(super) struct Spec<'a> {
    pub(super) key_cols: Vec<usize>,
    pub(super) skip: usize,
    pub(super) sep: Option<char>,
    pub(super) wheres: Vec<(usize, &'a str)>,
}

/// A condition on a directory entry.
#[derive(Debug)]
pub(super) enum Cond<'a> {
    Has(&'a str),
    Lacks(&'a str),
    Equals(&'a str, &'a str),
    Name(Vec<Tok>),
}

pub(super) fn parse(key: &str) -> Result<Key<'_>, String> {
    if key.len() > MAX_KEY {
        return Err(format!("longer than {MAX_KEY} bytes"));
    }
    if let Some((head, tail)) = key.split_once('#') {
        if tail == "count" {
            let (dir, conds) = parse_listing(head)?
                .ok_or("`#count` follows a directory listing `PATH/*?COND&…`")?;
            return Ok(Key::Count {
                listing: head,
                dir,
                conds,
            });
        }
        check_path(head)?;
        if let Some((spec_row, col)) = tail.rsplit_once("].") {
            let (spec_text, row) = spec_row
                .split_once('[')
                .ok_or("a row value is written `PATH#SPEC[KEY].COL`")?;
            return Ok(Key::Cell {
                path: head,
                spec_text,
                spec: parse_spec(spec_text)?,
                row,
                col: parse_col(col)?,
            });
        }
        if tail.contains('[') {
            return Err("a row value is written `PATH#SPEC[KEY].COL`".into());
        }
        return Ok(Key::Rows {
            path: head,
            spec: parse_spec(tail)?,
        });
    }
    if let Some((dir, conds)) = parse_listing(key)? {
        return Ok(Key::Listing { dir, conds });
    }
    match key.rsplit_once(':') {
        Some((path, field)) if !field.contains('/') => {
            if field.trim().is_empty() {
                return Err("empty field name after `:`".into());
            }
            check_path(path)?;
            Ok(Key::Field(path, field.trim()))
        }
        _ => {
            check_path(key)?;
            Ok(Key::Whole(key))
        }
    }
}

/// `DIR/*` or `DIR/*?COND&…` → the directory and the conditions; `None` for another form.
pub(super) fn parse_listing(s: &str) -> Result<Option<(&str, Vec<Cond<'_>>)>, String> {
    let (p, conds) = match s.split_once('?') {
        Some((p, c)) => (p, Some(c)),
        None => (s, None),
    };
    let Some(dir) = p.strip_suffix("/*") else {
        if conds.is_some() || p.contains('*') {
            return Err("a directory listing is written `PATH/*` or `PATH/*?COND&…`".into());
        }
        return Ok(None);
    };
    let dir = if dir.is_empty() { "/" } else { dir };
    check_path(dir)?;
    let mut out = Vec::new();
    if let Some(c) = conds {
        for cond in c.split('&') {
            out.push(parse_cond(cond)?);
        }
    }
    Ok(Some((dir, out)))
}

pub(super) fn parse_cond(c: &str) -> Result<Cond<'_>, String> {
    if c.is_empty() {
        return Err("empty condition".into());
    }
    if let Some(sub) = c.strip_prefix('!') {
        if sub.contains('=') {
            return Err(format!(
                "condition {c:?}: `!` only negates `SUB` (existence)"
            ));
        }
        check_sub(sub)?;
        return Ok(Cond::Lacks(sub));
    }
    match c.split_once('=') {
        Some(("name", glob)) => Ok(Cond::Name(parse_glob(glob)?)),
        Some((sub, value)) => {
            check_sub(sub)?;
            Ok(Cond::Equals(sub, value))
        }
        None => {
            check_sub(c)?;
            Ok(Cond::Has(c))
        }
    }
}

pub(super) fn parse_spec(s: &str) -> Result<Spec<'_>, String> {
    let mut parts = s.split(';');
    let cols = parts.next().unwrap_or("");
    if cols.is_empty() {
        return Err("the table spec starts with its key columns (`1` or `1+2+8`)".into());
    }
    let mut spec = Spec {
        key_cols: cols.split('+').map(parse_col).collect::<Result<_, _>>()?,
        ..Spec::default()
    };
    let (mut seen_skip, mut seen_sep) = (false, false);
    for part in parts {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name {
            "skip" if !seen_skip => {
                seen_skip = true;
                spec.skip = value
                    .parse::<u16>()
                    .map_err(|_| format!("`skip={value}`: a number of lines up to 65535"))?
                    .into();
            }
            "sep" if !seen_sep => {
                seen_sep = true;
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !matches!(c, ';' | '[' | ']') => spec.sep = Some(c),
                    _ => return Err(format!("`sep={value}`: one character other than ; [ ]")),
                }
            }
            "where" => {
                let (col, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("`where={value}`: written `where=COL=VALUE`"))?;
                spec.wheres.push((parse_col(col)?, v));
            }
            "skip" | "sep" => return Err(format!("`{name}` given twice")),
            _ => {
                return Err(format!(
                    "unknown table option {part:?} (known: skip=N, sep=C, where=COL=VALUE)"
                ))
            }
        }
    }
    Ok(spec)
}

/// A column number, 1-based.
pub(super) fn parse_col(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_COL).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("column {s:?}: a number from 1 to {MAX_COL}")),
    }
}

pub(super) fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("{p:?} is not an absolute path"));
    }
    if has_byte_of(p, b"*?") {
        return Err(format!(
            "{p:?}: wildcards only in a directory listing `PATH/*?name=GLOB`"
        ));
    }
    check_components(p)
}

/// A path relative to a directory entry (a condition's `SUB`).
pub(super) fn check_sub(s: &str) -> Result<(), String> {
    if s.is_empty() || s.starts_with('/') || has_byte_of(s, b"*?") {
        return Err(format!(
            "condition {s:?}: a relative path inside the entry (or `name=GLOB`)"
        ));
    }
    check_components(s)
}

pub(super) fn check_components(p: &str) -> Result<(), String> {
    if dot_dot(p, b"/") {
        return Err(format!("{p:?}: `..` is not allowed"));
    }
    if byte_at(p, b'\0').is_some() {
        return Err(format!("{p:?}: NUL in a path"));
    }
    Ok(())
}

/// Whether a key (placeholders filled in) has a `..` path component anywhere.
pub(super) fn escapes(key: &str) -> bool {
    dot_dot(key, b"/?&#=[]")
}

/// Whether `s`, split at each of the bytes `seps`, has a part `..`: one pass over its bytes
/// (every key of a read is checked twice; splitting it was most of what reading a file cost).
fn dot_dot(s: &str, seps: &[u8]) -> bool {
    let b = s.as_bytes();
    let edge = |i: Option<usize>| i.and_then(|i| b.get(i)).is_none_or(|c| seps.contains(c));
    (1..b.len())
        .any(|i| b[i - 1] == b'.' && b[i] == b'.' && edge(i.checked_sub(2)) && edge(Some(i + 1)))
}

/// Replaces each `{…}` placeholder (nested ones included) by one inert character, for
/// [`check_key`].
pub(super) fn mask_placeholders(key: &str) -> Result<String, String> {
    let mut out = String::with_capacity(key.len());
    let mut depth = 0usize;
    for c in key.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push('\u{1}');
                }
                depth += 1;
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or("`}` without its `{`")?;
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("`{` without its `}`".into());
    }
    Ok(out)
}

// ---- globs -----------------------------------------------------------------------------------

/// One element of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    One,
    Lit(char),
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class(bool, Vec<(char, char)>),
}

pub(super) fn parse_glob(g: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = g.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            '[' => {
                let mut negated = false;
                let mut items: Vec<(char, char)> = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some(d) = chars.next() {
                    match d {
                        '!' | '^' if first => negated = true,
                        ']' if !items.is_empty() => {
                            closed = true;
                            break;
                        }
                        '-' if !items.is_empty() => {
                            // A range `a-z`; a `-` before `]` is itself.
                            match chars.clone().next() {
                                Some(']') | None => items.push(('-', '-')),
                                Some(hi) => {
                                    chars.next();
                                    if let Some(last) = items.last_mut() {
                                        if hi < last.0 {
                                            return Err(format!(
                                                "glob {g:?}: range {}-{hi} is backwards",
                                                last.0
                                            ));
                                        }
                                        last.1 = hi;
                                    }
                                }
                            }
                        }
                        _ => items.push((d, d)),
                    }
                    first = false;
                }
                if !closed {
                    return Err(format!("glob {g:?}: `[` without its `]`"));
                }
                Tok::Class(negated, items)
            }
            _ => Tok::Lit(c),
        });
    }
    Ok(out)
}

impl Tok {
    pub(super) fn matches_char(&self, c: char) -> bool {
        match self {
            Tok::Star | Tok::One => true,
            Tok::Lit(l) => *l == c,
            Tok::Class(negated, items) => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// Whether `name` matches the glob (`*` backtracks to the last star only: linear enough for
/// file names).
pub(super) fn glob_matches(toks: &[Tok], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = s.get(i) {
        match toks.get(p) {
            Some(Tok::Star) => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(t) if t.matches_char(c) => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    toks.get(p..)
        .is_some_and(|rest| rest.iter().all(|t| *t == Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_dot_part_is_found_between_separators_only() {
        for key in [
            "..",
            "/..",
            "../x",
            "/a/../b",
            "/a/..",
            "/sys/x#1[..].2",
            "/d/*?name=..",
            "/d/*?a=b&..",
        ] {
            assert!(escapes(key), "{key}");
        }
        for key in [
            "", ".", "...", "/a/..b", "/a/b..", "/.../x", "/a./.b", "/a.b/c.d",
        ] {
            assert!(!escapes(key), "{key}");
        }
        assert!(check_components("/a/../b").is_err());
        assert!(check_components("/a/b?..").is_ok());
        assert!(check_components("/a/..\0").is_err());
        assert!(check_components("/a/.../b").is_ok());
    }

    #[test]
    fn key_forms_parse() {
        assert!(matches!(
            parse("/proc/uptime"),
            Ok(Key::Whole("/proc/uptime"))
        ));
        assert!(matches!(
            parse("/proc/meminfo:MemTotal"),
            Ok(Key::Field("/proc/meminfo", "MemTotal"))
        ));
        match parse("/proc/net/route#1+2+8;skip=1;where=4=0003[wan/00000000/00000000].3") {
            Ok(Key::Cell {
                path,
                spec_text,
                spec,
                row,
                col,
            }) => {
                assert_eq!(path, "/proc/net/route");
                assert_eq!(spec_text, "1+2+8;skip=1;where=4=0003");
                assert_eq!(spec.key_cols, [1, 2, 8]);
                assert_eq!(spec.skip, 1);
                assert_eq!(spec.wheres, [(4, "0003")]);
                assert_eq!(row, "wan/00000000/00000000");
                assert_eq!(col, 3);
            }
            other => panic!("{other:?}"),
        }
        // A row key may hold `:` and `]` (MAC addresses, IPv6): the column is after the last `].`.
        match parse("/etc/passwd#1;sep=:[a]b:c].7") {
            Ok(Key::Cell { spec, row, col, .. }) => {
                assert_eq!(spec.sep, Some(':'));
                assert_eq!((row, col), ("a]b:c", 7));
            }
            other => panic!("{other:?}"),
        }
        match parse("/proc/*?name=[0-9]*&status#count") {
            Ok(Key::Count {
                listing,
                dir,
                conds,
            }) => {
                assert_eq!((listing, dir), ("/proc/*?name=[0-9]*&status", "/proc"));
                assert_eq!(conds.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("/sys/class/net/*?device&!wireless&type=1"),
            Ok(Key::Listing { dir: "/sys/class/net", ref conds }) if conds.len() == 3
        ));
        assert!(matches!(
            parse("/tmp/dhcp.leases#2"),
            Ok(Key::Rows {
                path: "/tmp/dhcp.leases",
                ..
            })
        ));
        // A colon in a directory name is part of the path when a `/` follows it.
        assert!(matches!(
            parse("/sys/bus/pci/0000:01:00.0/vendor"),
            Ok(Key::Whole(_))
        ));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let cases = [
            ("proc/uptime", "absolute"),
            ("/proc/../etc/shadow", ".."),
            ("/sys/class/net/*?../x", ".."),
            ("/proc/*/status", "directory listing"),
            ("/proc/meminfo:", "empty field"),
            ("/proc/net/route#", "key columns"),
            ("/proc/net/route#0", "column"),
            ("/proc/net/route#1;skip=x", "skip"),
            ("/proc/net/route#1;sep=ab", "sep"),
            ("/proc/net/route#1;frob=1", "unknown table option"),
            ("/proc/net/route#1;skip=1;skip=2", "twice"),
            ("/proc/net/route#1[x]", "PATH#SPEC[KEY].COL"),
            ("/proc/net/route#1[x].y", "column"),
            ("/proc/uptime#count", "directory listing"),
            ("/proc/*?name=[0-9", "`]`"),
            ("/proc/*?a&&b", "empty condition"),
            ("/proc/*?!a=b", "negates"),
            ("/sys/class/net/{i/address", "`}`"),
            ("/sys/class/net/i}/address", "`{`"),
        ];
        for (key, why) in cases {
            match check_key(key) {
                Err(m) => assert!(m.contains(why) && m.contains(key), "{key}: {m}"),
                Ok(()) => panic!("{key} accepted"),
            }
        }
    }

    #[test]
    fn placeholders_are_opaque_to_check_key() {
        for key in [
            "/sys/class/net/{i}/statistics/rx_bytes",
            "/sys/class/net/{uci:network.{i}.device}/address",
            "/proc/{i}/status:VmRSS",
            "/tmp/dhcp.leases#2[{i}].3",
            "/sys/class/net/{i}/brif/*",
            "/proc/net/route#1+2+8;skip=1[{i}].2",
        ] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
        // A placeholder is not a number.
        assert!(check_key("/tmp/dhcp.leases#2[x].{i}").is_err());
    }

    #[test]
    fn globs() {
        let g = |p: &str, n: &str| glob_matches(&parse_glob(p).unwrap(), n);
        assert!(g("[0-9]*", "1234"));
        assert!(!g("[0-9]*", "self"));
        assert!(g("*", ""));
        assert!(g("lan?", "lan1"));
        assert!(!g("lan?", "lan"));
        assert!(g("phy*-ap*", "phy1-ap0"));
        assert!(!g("phy*-ap*", "phy1-sta0"));
        assert!(g("[!0-9]*", "br-lan"));
        assert!(!g("[!0-9]*", "9x"));
        assert!(g("a[-x]", "a-"));
        assert!(g("*a*a*a*b", "aaaaaaaaaaaaaaaaaaab"));
        assert!(!g("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa"));
        assert!(parse_glob("[z-a]").is_err());
    }
}
