//! The configuration as `uci -n export` prints it: packages of sections of options and
//! lists, parsed; and the identity of anonymous sections (libuci names them by position).

use std::collections::{BTreeMap, BTreeSet};

use crate::uci::{is_name, Lexer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Package {
    pub(super) sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Section {
    pub(super) name: String,
    pub(super) ty: String,
    pub(super) options: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Value {
    One(String),
    List(Vec<String>),
}

impl Package {
    /// Drops the room the lists grew into (a third of them, on average): a package read into
    /// the snapshot is kept for the session, beside the largest reads.
    pub(super) fn shrink_to_fit(&mut self) {
        self.sections.shrink_to_fit();
        for s in &mut self.sections {
            s.options.shrink_to_fit();
            for (_, v) in &mut s.options {
                if let Value::List(items) = v {
                    items.shrink_to_fit();
                }
            }
        }
    }
}

impl Section {
    pub(super) fn opt(&self, name: &str) -> Option<&Value> {
        self.options.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets (in place, or appended as uci does) or removes an option.
    pub(super) fn set(&mut self, name: &str, value: Option<Value>) {
        let at = self.options.iter().position(|(n, _)| n == name);
        match (at, value) {
            (Some(i), Some(v)) => {
                if let Some(slot) = self.options.get_mut(i) {
                    slot.1 = v;
                }
            }
            (None, Some(v)) => self.options.push((name.to_string(), v)),
            (Some(i), None) => {
                self.options.remove(i);
            }
            (None, None) => {}
        }
    }
}

impl Value {
    /// The value as a parameter reads it: list items joined with `,`.
    pub(super) fn joined(&self) -> String {
        match self {
            Value::One(s) => s.clone(),
            Value::List(items) => items.join(","),
        }
    }

    pub(super) fn items(&self) -> Vec<&str> {
        match self {
            Value::One(s) => vec![s.as_str()],
            Value::List(items) => items.iter().map(String::as_str).collect(),
        }
    }
}

/// Whether a section name is one uci made up for an anonymous section (`cfg` + a position
/// in hex + 4 hex digits of a hash).
pub(super) fn is_anonymous(name: &str) -> bool {
    name.strip_prefix("cfg").is_some_and(|rest| {
        rest.len() >= 6
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The name libuci gives the anonymous section at position `index` (0-based) of a package it
/// loads from a file: `cfg%02x%04x` of the 1-based position and a djb hash of the type
/// (libuci `uci_fixup_section`; the options are not hashed, as the section has none yet when
/// the parser creates it).
pub(super) fn anonymous_name(index: usize, ty: &str) -> String {
    let mut h: u32 = 5381;
    for b in ty.bytes() {
        // C `char` is signed on the hosts that matter here (types are printable ASCII anyway).
        let c = i32::from(b as i8) as u32;
        h = (h << 5).wrapping_add(h).wrapping_add(c);
    }
    format!("cfg{:02x}{:04x}", index.saturating_add(1), h & 0xffff)
}

/// Splits the export of several packages at its `package NAME` lines: `(name, text)` with
/// the text starting at that line. A value spanning lines that holds such a line would split
/// wrongly; the parts then fail to parse and are read on their own.
pub(super) fn split_packages(text: &str) -> Vec<(&str, &str)> {
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end_matches('\n').strip_prefix("package ") {
            starts.push((pos, name));
        }
        pos += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, (at, name))| {
            let end = starts.get(i + 1).map_or(text.len(), |(e, _)| *e);
            (*name, text.get(*at..end).unwrap_or(""))
        })
        .collect()
}

/// Parses `uci -n export PKG`: `package PKG`, then per section `config TYPE 'NAME'` (`-n`
/// names anonymous sections as `uci -X show` does) and its `\toption NAME 'VALUE'` and
/// `\tlist NAME 'ITEM'` lines; quotes inside values as `'\''`, values may span lines. Unlike
/// `uci show`, this tells a one-item list from a plain option, which an exact rollback needs.
///
/// The words come from the one UCI lexer ([`Lexer::multiline`]); a line must then be exactly
/// as `uci export` prints those words (tab, single spaces, values quoted as [`is_quoted`]
/// says), so anything else uci did not write is refused.
pub(super) fn parse_export(pkg: &str, text: &str) -> Result<Package, String> {
    let mut p = Package::default();
    let mut lexer = Lexer::multiline(text);
    let mut buf = Vec::new();
    while let Some(l) = lexer.next_line(&mut buf) {
        let l = l.map_err(|(n, e)| format!("line {n}: {e}"))?;
        let line = l.number;
        let at = move |what: &str| format!("line {line}: {what}");
        let whole = text.get(l.start..l.end).unwrap_or("");
        let mut words = buf.drain(..).map(|w| w.text);
        let (first, second, third) = (words.next(), words.next(), words.next());
        let unexpected = || Err(at(&format!("unexpected {whole:?}")));
        if words.next().is_some() {
            return unexpected();
        }
        match (first.as_deref(), second, third) {
            // A blank line, or uci's comment on an option of unknown type.
            (None, ..) if whole.is_empty() || whole.starts_with("\t#") => {}
            (Some("package"), Some(name), None)
                if whole.strip_prefix("package ") == Some(&name) =>
            {
                if name != pkg {
                    return Err(at(&format!("package {name:?}, not {pkg:?}")));
                }
            }
            (Some("config"), Some(ty), None) if whole.strip_prefix("config ") == Some(&ty) => {
                // Not named by uci (no `-n`): the name uci gives it.
                let name = anonymous_name(p.sections.len(), &ty);
                p.sections.push(Section {
                    name,
                    ty: ty.into_owned(),
                    options: Vec::new(),
                });
            }
            (Some("config"), Some(ty), Some(name))
                if !name.is_empty()
                    && whole
                        .strip_prefix("config ")
                        .and_then(|r| r.strip_prefix(&*ty))
                        .and_then(|r| r.strip_prefix(' '))
                        .is_some_and(|r| is_quoted(r, &name)) =>
            {
                p.sections.push(Section {
                    name: name.into_owned(),
                    ty: ty.into_owned(),
                    options: Vec::new(),
                });
            }
            (Some(kind @ ("option" | "list")), Some(name), Some(value))
                if is_name(&name)
                    && whole
                        .strip_prefix('\t')
                        .and_then(|r| r.strip_prefix(kind))
                        .and_then(|r| r.strip_prefix(' '))
                        .and_then(|r| r.strip_prefix(&*name))
                        .and_then(|r| r.strip_prefix(' '))
                        .is_some_and(|r| is_quoted(r, &value)) =>
            {
                let s = p
                    .sections
                    .last_mut()
                    .ok_or_else(|| at("an option before any section"))?;
                let value = value.into_owned();
                match (
                    kind == "list",
                    s.options.iter_mut().find(|(n, _)| *n == name),
                ) {
                    (true, Some((_, Value::List(items)))) => items.push(value),
                    (true, None) => s
                        .options
                        .push((name.into_owned(), Value::List(vec![value]))),
                    (false, None) => s.options.push((name.into_owned(), Value::One(value))),
                    (_, Some(_)) => return Err(at(&format!("option {name:?} given twice"))),
                }
            }
            _ => return unexpected(),
        }
    }
    p.shrink_to_fit();
    Ok(p)
}

/// Whether `raw` is `value` as uci quotes it: in single quotes, a quote inside as `'\''`.
fn is_quoted(raw: &str, value: &str) -> bool {
    let Some(mut rest) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) else {
        return false;
    };
    for (i, piece) in value.split('\'').enumerate() {
        if i > 0 {
            match rest.strip_prefix("'\\''") {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(piece) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// What a section holds (its type and options, in order; not its name), as a 64-bit hash with
/// keys drawn when the backend starts (`state`, std's keyed hasher): two sections with the same
/// fingerprint are taken as the same content. An accidental match has a chance of 2^-64 per
/// pair, and without the keys no content can be chosen to match another.
pub(super) fn fingerprint(state: &std::hash::RandomState, s: &Section) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = state.build_hasher();
    s.ty.hash(&mut h);
    s.options.hash(&mut h);
    h.finish()
}

/// Which sections the engine knows by name (`known`) now go by another name. libuci names an
/// anonymous section `cfg` + its position + a hash of its TYPE only: deleting a section
/// renames every anonymous one after it, and a name may then belong to another section. The
/// content tells them apart: a known name whose section (as `before` had it) is not what it
/// holds now follows the listed section that holds exactly that content and whose own name
/// changed hands too. A section edited in place keeps its name; anything ambiguous stays as it
/// is. Returns `(old name, new name)` pairs, to apply all at once (they may form a cycle).
/// Sections are compared by their [`fingerprint`]s.
pub(super) fn pair_renamed(
    before: &BTreeMap<String, u64>,
    now: &BTreeMap<String, u64>,
    known: &[&str],
    listed: &[String],
) -> Vec<(String, String)> {
    let same = |a: &u64, b: &u64| a == b;
    // A name is free to receive a section when it is new, or its section is not the one the
    // engine knew by it.
    let free = |name: &str| match (before.get(name), now.get(name)) {
        (Some(b), Some(n)) => !same(b, n),
        _ => true,
    };
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut pairs = Vec::new();
    for &k in known {
        let Some(was) = before.get(k) else { continue };
        if now.get(k).is_some_and(|n| same(was, n)) {
            continue;
        }
        let target = listed.iter().find(|m| {
            *m != k
                && !taken.contains(m.as_str())
                && free(m)
                && now.get(*m).is_some_and(|n| same(was, n))
        });
        if let Some(m) = target {
            taken.insert(m);
            pairs.push((k.to_string(), m.clone()));
        }
    }
    pairs
}

/// A section, for the tests of the modules that work on sections.
#[cfg(test)]
pub(super) fn sec(name: &str, ty: &str, opts: &[(&str, Value)]) -> Section {
    Section {
        name: name.into(),
        ty: ty.into(),
        options: opts
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    }
}

/// A plain option value, for the tests.
#[cfg(test)]
pub(super) fn one(s: &str) -> Value {
    Value::One(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_output_with_quotes_lists_and_lines() {
        let text = "package t\n\
                    \n\
                    config interface 'lan'\n\
                    \toption proto 'static'\n\
                    \tlist dns '1.1.1.1'\n\
                    \tlist dns '8.8.8.8'\n\
                    \tlist one 'only'\n\
                    \n\
                    config rule 'cfg0292bd'\n\
                    \toption name 'it'\\''s'\n\
                    \toption desc 'multi\n\tlist x = '\\'''\n\
                    \tlist odd ''\\''a'\\'' '\\'''\n\
                    \tlist odd 'b c'\n\
                    \n\
                    config empty\n\
                    \n";
        let p = parse_export("t", text).unwrap();
        assert_eq!(p.sections.len(), 3);
        let lan = &p.sections[0];
        assert_eq!((lan.name.as_str(), lan.ty.as_str()), ("lan", "interface"));
        assert_eq!(lan.opt("proto"), Some(&one("static")));
        assert_eq!(
            lan.opt("dns"),
            Some(&Value::List(vec!["1.1.1.1".into(), "8.8.8.8".into()]))
        );
        assert_eq!(lan.opt("one"), Some(&Value::List(vec!["only".into()])));
        let r = &p.sections[1];
        assert_eq!(r.name, "cfg0292bd");
        assert_eq!(r.opt("name"), Some(&one("it's")));
        assert_eq!(r.opt("desc"), Some(&one("multi\n\tlist x = '")));
        assert_eq!(
            r.opt("odd"),
            Some(&Value::List(vec!["'a' '".into(), "b c".into()]))
        );
        assert_eq!(r.opt("x"), None);
        // Without `-n`, an anonymous section gets the name uci would give it.
        assert_eq!(p.sections[2].name, "cfg035c34");
        assert!(p.sections[2].options.is_empty());
        // Garbage is an error, never a panic.
        for bad in [
            "package u\n",
            "\toption o 'a'\n",
            "config x 's'\n\toption o 'a\n",
            "config x 's'\n\toption o a\n",
            "config x 's'\n\toption o 'a'b\n",
            "config x 's'\n\toption o 'a'\n\tlist o 'b'\n",
            "config x 's'\n\toption b-d 'a'\n",
            "config x s\n",
            "config  's'\n",
            "config x 's\n",
            "t.x=y\n",
            "config x 's'\n\toption\n",
        ] {
            assert!(parse_export("t", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_export("t", "").unwrap(), Package::default());
        assert_eq!(
            parse_export("t", "package t\n\n").unwrap(),
            Package::default()
        );
    }

    #[test]
    fn anonymous_names_follow_libuci() {
        // Names printed by the real uci for these types (see tests/uci.rs).
        assert_eq!(anonymous_name(1, "rule"), "cfg0292bd");
        assert_eq!(anonymous_name(3, "empty"), "cfg045c34");
        assert_eq!(anonymous_name(299, "rule"), "cfg12c92bd");
        assert!(is_anonymous("cfg0292bd") && is_anonymous("cfg12c92bd"));
        assert!(!is_anonymous("cfg0292") && !is_anonymous("lan") && !is_anonymous("cfgXX92bd"));
    }

    /// The fingerprint is the content: type and options (their order too), not the name.
    #[test]
    fn fingerprints_tell_contents_apart() {
        let keys = std::hash::RandomState::new();
        let f = |s: &Section| fingerprint(&keys, s);
        let base = sec("cfg01aaaa", "redirect", &[("name", Value::One("a".into()))]);
        let renamed = Section {
            name: "cfg02aaaa".into(),
            ..base.clone()
        };
        assert_eq!(f(&base), f(&renamed));
        let other_ty = Section {
            ty: "rule".into(),
            ..base.clone()
        };
        let other_value = sec("cfg01aaaa", "redirect", &[("name", Value::One("b".into()))]);
        let as_list = sec(
            "cfg01aaaa",
            "redirect",
            &[("name", Value::List(vec!["a".into()]))],
        );
        let two = sec(
            "x",
            "redirect",
            &[("a", Value::One("1".into())), ("b", Value::One("2".into()))],
        );
        let swapped = sec(
            "x",
            "redirect",
            &[("b", Value::One("2".into())), ("a", Value::One("1".into()))],
        );
        for o in [&other_ty, &other_value, &as_list] {
            assert_ne!(f(&base), f(o), "{o:?}");
        }
        assert_ne!(f(&two), f(&swapped));
    }

    #[test]
    fn renamed_pairs() {
        let sec = |name: &str, v: &str| Section {
            name: name.into(),
            ty: "redirect".into(),
            options: vec![("name".into(), Value::One(v.into()))],
        };
        let keys = std::hash::RandomState::new();
        let map = |v: Vec<Section>| -> BTreeMap<String, u64> {
            v.into_iter()
                .map(|s| (s.name.clone(), fingerprint(&keys, &s)))
                .collect()
        };
        let names = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let before = map(vec![
            sec("cfg01aaaa", "a"),
            sec("cfg02aaaa", "b"),
            sec("cfg03aaaa", "c"),
        ]);
        // `a` deleted (the engine forgot cfg01): b and c moved up a place.
        let now = map(vec![sec("cfg01aaaa", "b"), sec("cfg02aaaa", "c")]);
        assert_eq!(
            pair_renamed(
                &before,
                &now,
                &["cfg02aaaa", "cfg03aaaa"],
                &names(&["cfg01aaaa", "cfg02aaaa"])
            ),
            vec![
                pair("cfg02aaaa", "cfg01aaaa"),
                pair("cfg03aaaa", "cfg02aaaa")
            ]
        );
        // Two swapped places.
        let swapped = map(vec![
            sec("cfg01aaaa", "b"),
            sec("cfg02aaaa", "a"),
            sec("cfg03aaaa", "c"),
        ]);
        let all = ["cfg01aaaa", "cfg02aaaa", "cfg03aaaa"];
        assert_eq!(
            pair_renamed(&before, &swapped, &all, &names(&all)),
            vec![
                pair("cfg01aaaa", "cfg02aaaa"),
                pair("cfg02aaaa", "cfg01aaaa")
            ]
        );
        // Edited in place: the name holds.
        let edited = map(vec![
            sec("cfg01aaaa", "a2"),
            sec("cfg02aaaa", "b"),
            sec("cfg03aaaa", "c"),
        ]);
        assert!(pair_renamed(&before, &edited, &all, &names(&all)).is_empty());
    }

    #[test]
    fn values_quoted_as_uci_quotes_them() {
        for (raw, value) in [
            ("'a'", "a"),
            ("''", ""),
            ("'it'\\''s'", "it's"),
            ("''\\'''", "'"),
            ("'a\nb'", "a\nb"),
        ] {
            assert!(is_quoted(raw, value), "{raw:?}");
        }
        for (raw, value) in [
            ("a", "a"),
            ("'a'b", "ab"),
            ("'a''b'", "ab"),
            ("\"a\"", "a"),
            ("'it\\'s'", "it's"),
            ("'", ""),
        ] {
            assert!(!is_quoted(raw, value), "{raw:?}");
        }
    }
}
