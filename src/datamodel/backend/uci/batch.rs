//! The `uci batch` writer: the commands that turn sections as uci holds them into the wanted
//! ones (option edits, deletions, creations in place with `reorder`), used both for a change
//! and for its inverse.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::export::{is_anonymous, Section, Value};

/// A value quoted for `uci batch` (single quotes; a quote inside as `'\''`).
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes the commands that turn the sections `from` (as uci will load them when the batch
/// starts) into `to`. `pair[i]` is the index in `from` of `to[i]`, or `None` for a section
/// to create; unpaired sections of `from` are deleted. Order: option edits (while every name
/// is valid), deletions, then creations at their position with `reorder`.
pub(super) fn emit(
    out: &mut String,
    pkg: &str,
    from: &[&Section],
    to: &[&Section],
    pair: &[Option<usize>],
) {
    for (t, p) in to.iter().zip(pair) {
        if let Some(f) = p.and_then(|j| from.get(j)) {
            let r = format!("{pkg}.{}", f.name);
            emit_options(out, &r, &f.options, &t.options);
        }
    }
    let used: BTreeSet<usize> = pair.iter().flatten().copied().collect();
    for (j, f) in from.iter().enumerate().rev() {
        if !used.contains(&j) {
            let _ = writeln!(out, "delete {pkg}.{}", f.name);
        }
    }
    let mut len = used.len();
    for (i, (t, p)) in to.iter().zip(pair).enumerate() {
        if p.is_some() {
            continue;
        }
        let r = if is_anonymous(&t.name) {
            let _ = writeln!(out, "add {pkg} {}", quote(&t.ty));
            format!("{pkg}.@{}[-1]", t.ty)
        } else {
            let _ = writeln!(out, "set {pkg}.{}={}", t.name, quote(&t.ty));
            format!("{pkg}.{}", t.name)
        };
        emit_options(out, &r, &[], &t.options);
        if i != len {
            let _ = writeln!(out, "reorder {r}={i}");
        }
        len += 1;
    }
}

/// Writes the commands that turn the options `from` of the section `r` into `to`, keeping
/// their order. libuci appends an option it sets, also one that exists (`uci_set` frees the old
/// option and allocates a new one at the end), so after the batch the section holds the
/// options it did not touch, in their order, then the written ones in write order. The
/// options of `to` after its longest prefix of untouched ones are therefore all written again.
pub(super) fn emit_options(
    out: &mut String,
    r: &str,
    from: &[(String, Value)],
    to: &[(String, Value)],
) {
    let old = |n: &str| from.iter().find(|(o, _)| o == n).map(|(_, v)| v);
    let new = |n: &str| to.iter().find(|(o, _)| o == n).map(|(_, v)| v);
    // Options kept as they are, in their present order.
    let untouched: Vec<&str> = from
        .iter()
        .filter(|(n, v)| new(n) == Some(v))
        .map(|(n, _)| n.as_str())
        .collect();
    let keep = untouched
        .iter()
        .zip(to)
        .take_while(|(u, (n, _))| **u == n.as_str())
        .count();
    for (n, _) in from {
        let rewritten = to[keep..].iter().any(|(t, _)| t == n);
        if new(n).is_none() || (rewritten && untouched.contains(&n.as_str())) {
            let _ = writeln!(out, "delete {r}.{n}");
        }
    }
    for (n, v) in &to[keep..] {
        // Deleted above when it was untouched; a changed one is replaced (and so appended).
        let exists = old(n).is_some() && !untouched.contains(&n.as_str());
        write_option(out, r, n, v, exists);
    }
}

pub(super) fn write_option(out: &mut String, r: &str, n: &str, v: &Value, exists: bool) {
    match v {
        // uci deletes an option set to the empty string.
        Value::One(s) if s.is_empty() => {
            if exists {
                let _ = writeln!(out, "delete {r}.{n}");
            }
        }
        Value::One(s) => {
            let _ = writeln!(out, "set {r}.{n}={}", quote(s));
        }
        Value::List(items) => {
            if exists {
                let _ = writeln!(out, "delete {r}.{n}");
            }
            for it in items {
                let _ = writeln!(out, "add_list {r}.{n}={}", quote(it));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::export::{one, sec};
    use super::*;

    #[test]
    fn batches_keep_order_and_lists() {
        let before = [
            sec(
                "a",
                "t",
                &[("x", one("1")), ("y", one("2")), ("z", one("3"))],
            ),
            sec(
                "cfg0292bd",
                "rule",
                &[("l", Value::List(vec!["p".into(), "q".into()]))],
            ),
            sec("b", "t", &[]),
        ];
        let after = [
            sec("a", "t", &[("x", one("1")), ("z", one("it's"))]),
            sec("b", "t", &[("n", Value::List(vec!["only".into()]))]),
            sec("cwmp00000001", "t", &[("k", one("v"))]),
        ];
        let b: Vec<&Section> = before.iter().collect();
        let a: Vec<&Section> = after.iter().collect();
        let mut fwd = String::new();
        emit(&mut fwd, "p", &b, &a, &[Some(0), Some(2), None]);
        assert_eq!(
            fwd,
            "delete p.a.y\nset p.a.z='it'\\''s'\nadd_list p.b.n='only'\ndelete p.cfg0292bd\n\
             set p.cwmp00000001='t'\nset p.cwmp00000001.k='v'\n"
        );
        // Back: `y` returns before `z` (libuci appends what it sets, so `z`, changed, follows
        // `y`), the anonymous section at its place, `n` goes.
        let mut inv = String::new();
        emit(&mut inv, "p", &a, &b, &[Some(0), None, Some(1)]);
        assert_eq!(
            inv,
            "set p.a.y='2'\nset p.a.z='3'\ndelete p.b.n\ndelete p.cwmp00000001\n\
             add p 'rule'\nadd_list p.@rule[-1].l='p'\nadd_list p.@rule[-1].l='q'\n\
             reorder p.@rule[-1]=1\n"
        );
        // A one-item list stays a list.
        let one_item = [sec("s", "t", &[("l", Value::List(vec!["a".into()]))])];
        let plain = [sec("s", "t", &[("l", one("a"))])];
        let mut out = String::new();
        emit(&mut out, "p", &[&plain[0]], &[&one_item[0]], &[Some(0)]);
        assert_eq!(out, "delete p.s.l\nadd_list p.s.l='a'\n");
    }
}
