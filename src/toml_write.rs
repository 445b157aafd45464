//! Writing the agent's records as TOML text without serde (issue 19): the inverse of
//! [`crate::toml_read`], for the store's files and the UCI config reader's intermediate form.
//!
//! A derived `Serialize` is generic over the serializer, and toml's serializer is instantiated
//! for every type it writes. Here each type lists its entries ([`ToToml::entries`], written by
//! `from_toml_struct!` from the same field list it reads with, so the two directions cannot
//! drift apart) and the few functions of this module write them through `&dyn ToToml`: one
//! copy of the code, whatever the types.
//!
//! The shape: the top-level table's plain entries one per line (`key = value`), then each of
//! its tables as a `[section]` with its entries one per line, anything deeper inline
//! (`{ a = 1, b = "x" }`, `[1, 2]`). Keys are bare when TOML allows it, else quoted. Strings
//! are basic strings: `"` and `\` escaped, control characters as `\uXXXX` (`\n`, `\t` and `\r`
//! by name), so any text reads back as it was written.
//!
//! Bounds: one pass over the value; the output is as long as the data plus its markup.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A value the store writes.
pub trait ToToml {
    /// Writes the value inline. A table's default writes its [`ToToml::entries`] as an inline
    /// table; a scalar writes itself.
    fn write(&self, out: &mut String) {
        let mut list = Vec::new();
        self.entries(&mut list);
        inline_table(out, &list);
    }

    /// A table's entries, in order (a scalar has none: see [`ToToml::is_table`]).
    fn entries<'s>(&'s self, _out: &mut Vec<Entry<'s>>) {}

    /// Whether the value is a table (written as a `[section]` at the top level).
    fn is_table(&self) -> bool {
        false
    }

    /// Whether the entry or array element holding it is left out (`None`, at any depth: TOML
    /// has no null, so nothing is written for it, not even its key).
    fn absent(&self) -> bool {
        false
    }
}

/// One entry of a table: its key and its value.
pub type Entry<'s> = (Cow<'s, str>, &'s dyn ToToml);

/// The document of a top-level table: its plain entries, then its tables as sections.
pub fn to_string(v: &dyn ToToml) -> String {
    let mut list = Vec::new();
    v.entries(&mut list);
    let mut out = String::new();
    let (tables, plain): (Vec<&Entry<'_>>, Vec<&Entry<'_>>) = list
        .iter()
        .filter(|(_, v)| !v.absent())
        .partition(|(_, v)| v.is_table());
    for (k, v) in plain {
        line(&mut out, k, *v);
    }
    for (k, v) in tables {
        out.push('[');
        key(&mut out, k);
        out.push_str("]\n");
        let mut inner = Vec::new();
        v.entries(&mut inner);
        for (k, v) in inner.iter().filter(|(_, v)| !v.absent()) {
            line(&mut out, k, *v);
        }
    }
    out
}

/// `key = value` and a newline.
fn line(out: &mut String, k: &str, v: &dyn ToToml) {
    key(out, k);
    out.push_str(" = ");
    v.write(out);
    out.push('\n');
}

/// `{ a = 1, b = "x" }` (`{}` when empty).
fn inline_table(out: &mut String, list: &[Entry<'_>]) {
    let mut first = true;
    for (k, v) in list.iter().filter(|(_, v)| !v.absent()) {
        out.push_str(if first { "{ " } else { ", " });
        first = false;
        key(out, k);
        out.push_str(" = ");
        v.write(out);
    }
    out.push_str(if first { "{}" } else { " }" });
}

/// A key: bare when it is letters, digits, `_` and `-` only, else a quoted string.
fn key(out: &mut String, k: &str) {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        out.push_str(k);
    } else {
        string(out, k);
    }
}

/// A basic string.
fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            c if c.is_control() => "",
            _ => continue,
        };
        out.push_str(s.get(run..i).unwrap_or_default());
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04X}", u32::from(c));
        } else {
            out.push_str(esc);
        }
        run = i + c.len_utf8();
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

impl ToToml for str {
    fn write(&self, out: &mut String) {
        string(out, self);
    }
}

impl ToToml for String {
    fn write(&self, out: &mut String) {
        string(out, self);
    }
}

impl ToToml for bool {
    fn write(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

// A u64 above i64::MAX is written as its digits, beyond TOML 1.0's range: toml_read reads it
// back (the store's only u64 are its own counters of transfers).
macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToToml for $t {
            fn write(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, i32, i64);

impl<T: ToToml> ToToml for Option<T> {
    fn write(&self, out: &mut String) {
        if let Some(v) = self {
            v.write(out);
        }
    }

    fn entries<'s>(&'s self, out: &mut Vec<Entry<'s>>) {
        if let Some(v) = self {
            v.entries(out);
        }
    }

    fn is_table(&self) -> bool {
        self.as_ref().is_some_and(ToToml::is_table)
    }

    fn absent(&self) -> bool {
        self.as_ref().is_none_or(ToToml::absent)
    }
}

impl<T: ToToml> ToToml for Vec<T> {
    /// `[a, b]`; an absent element (`None`) is left out, as an absent entry is.
    fn write(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().filter(|v| !v.absent()).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            v.write(out);
        }
        out.push(']');
    }
}

/// A key of a map written as a table: its text (TOML keys are strings).
pub trait TableKey {
    fn key_text(&self) -> Cow<'_, str>;
}

impl TableKey for String {
    fn key_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

/// Instance numbers.
impl TableKey for u32 {
    fn key_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

impl<K: TableKey, V: ToToml> ToToml for BTreeMap<K, V> {
    fn entries<'s>(&'s self, out: &mut Vec<Entry<'s>>) {
        out.extend(self.iter().map(|(k, v)| (k.key_text(), v as &dyn ToToml)));
    }

    fn is_table(&self) -> bool {
        true
    }
}

/// A TOML value built by hand (the UCI config reader's tree).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    String(String),
    Integer(i64),
    Boolean(bool),
    Array(Vec<Node>),
    Table(BTreeMap<String, Node>),
}

impl ToToml for Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::String(s) => string(out, s),
            Node::Integer(n) => n.write(out),
            Node::Boolean(b) => b.write(out),
            Node::Array(a) => a.write(out),
            Node::Table(t) => {
                let mut list = Vec::new();
                t.entries(&mut list);
                inline_table(out, &list);
            }
        }
    }

    fn entries<'s>(&'s self, out: &mut Vec<Entry<'s>>) {
        if let Node::Table(t) = self {
            t.entries(out);
        }
    }

    fn is_table(&self) -> bool {
        matches!(self, Node::Table(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_keys_read_back_as_written() {
        let nasty = "a\"b\\c\nd\te\r\u{1}\u{7f}é\u{1F600}";
        let mut map: BTreeMap<String, Node> = BTreeMap::new();
        map.insert(nasty.to_string(), Node::String(nasty.to_string()));
        map.insert("plain-key_1".into(), Node::Integer(-7));
        map.insert(String::new(), Node::Boolean(true));
        let mut inner = BTreeMap::new();
        inner.insert("x.y".to_string(), Node::Array(vec![Node::Integer(1)]));
        inner.insert("t".to_string(), Node::Table(BTreeMap::new()));
        map.insert("sec tion".into(), Node::Table(inner));
        let text = to_string(&Node::Table(map));
        let doc = crate::toml_read::parse(&text).unwrap();
        let t = crate::toml_read::table(&doc).unwrap();
        let get = |k: &str| t.get(k).map(|v| v.get_ref().clone());
        assert!(matches!(get(nasty), Some(crate::toml_read::Item::String(s)) if s == nasty));
        assert!(matches!(
            get("plain-key_1"),
            Some(crate::toml_read::Item::Integer(..))
        ));
        assert!(matches!(
            get(""),
            Some(crate::toml_read::Item::Boolean(true))
        ));
        let sec = crate::toml_read::table(t.get("sec tion").unwrap()).unwrap();
        assert!(sec.contains_key("x.y") && sec.contains_key("t"), "{text}");
        // Plain entries come before the section (else they would belong to it).
        let at_section = text.find("[\"sec tion\"]").unwrap();
        assert!(text.find("plain-key_1").unwrap() < at_section, "{text}");
    }

    /// Nothing absent reaches the text, at any depth: the document always parses.
    #[test]
    fn absent_values_leave_no_trace() {
        #[derive(Default)]
        struct R {
            v: Vec<Option<String>>,
            o: Option<Option<String>>,
            n: Option<u32>,
        }
        crate::from_toml_struct!(lenient R { v, o, n });
        let r = R {
            v: vec![None, Some("x".into()), None],
            o: Some(None),
            n: None,
        };
        let text = to_string(&r);
        assert_eq!(text, "v = [\"x\"]\n");
        crate::toml_read::parse(&text).unwrap();
    }

    /// The store's two largest records, with every kind of entry set, read back equal.
    #[test]
    fn store_records_read_back_as_written() {
        use crate::agent::{AgentState, LastSession, ScheduledInform};
        use crate::datamodel::{DmState, TableState};
        use crate::events::{Event, BOOT};
        let mut a = AgentState::default();
        a.events.add(Event::new(BOOT, "")).unwrap();
        a.events.add(Event::method("Reboot", "k\"1\n")).unwrap();
        a.namespaces
            .insert("https://acs/".into(), "urn:dslforum-org:cwmp-1-2".into());
        a.last_session = Some(LastSession {
            time: -5,
            ok: false,
            result: "timed out".into(),
        });
        a.scheduled.push(ScheduledInform {
            at: 9,
            command_key: "x".into(),
        });
        a.retry_count = 3;
        let text = to_string(&a);
        let back: AgentState = crate::toml_read::from_str(&text).unwrap();
        assert_eq!(back, a, "{text}");

        let mut d = DmState::default();
        d.values.insert("Device.X.Y".into(), "v = \"w\"".into());
        let mut t = TableState {
            next: 3,
            ..TableState::default()
        };
        t.instances.insert(1, "cfg01".into());
        t.instances.insert(2, "lan".into());
        d.tables.insert("Device.IP.Interface.".into(), t);
        let text = to_string(&d);
        let back: DmState = crate::toml_read::from_str(&text).unwrap();
        assert_eq!(back, d, "{text}");
    }
}
