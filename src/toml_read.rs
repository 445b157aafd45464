//! Reading TOML documents into the agent's types without serde's derive (issue 19).
//!
//! A derived `Deserialize` is generic over the deserializer: every struct, enum and field type
//! instantiates toml's value deserializer again (6–20 KB of code each on x86_64; about 0.2 MB in
//! all for the config, the data model files and the store). Here a document becomes one tree of
//! this module's [`Value`]s (toml's parser builds its spanned tree, which is moved into ours),
//! and each type reads its own table: a [`FromToml`] impl per type, most of them written by
//! [`from_toml_struct!`], with the work in the few non-generic functions of this module.
//!
//! The tree is this module's own, not toml's, so that it can also be built from elsewhere than
//! TOML text and read by the same readers.
//!
//! Errors carry the place of the value or key at fault (a byte offset into the text; a line,
//! for a compiled file), so the callers name the file and the line as before, and their
//! messages keep serde's wording where users and tests see it (`unknown field `x`, expected one
//! of ...`, `missing field `x``, `unknown variant ...`).
//!
//! Bounds: the parse is toml's (linear in the text); moving its tree and reading walk each value
//! once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A value of a document, with its place: the byte range in the text it was parsed from (a
/// compiled file's values are placed at their line: `line..line`).
#[derive(Debug, Clone, PartialEq)]
pub struct Value<'i> {
    span: Range<usize>,
    item: Item<'i>,
}

impl<'i> Value<'i> {
    pub fn new(span: Range<usize>, item: Item<'i>) -> Value<'i> {
        Value { span, item }
    }

    /// Where the value is (see [`Value`]).
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    pub fn get_ref(&self) -> &Item<'i> {
        &self.item
    }

    pub fn get_mut(&mut self) -> &mut Item<'i> {
        &mut self.item
    }
}

/// The kinds of TOML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'i> {
    String(Cow<'i, str>),
    /// An integer as written: its digits (with any sign, without a `0x` prefix) and radix, read
    /// at the width its field wants.
    Integer(Cow<'i, str>, u32),
    /// A float as written (no field of the agent is one).
    Float(Cow<'i, str>),
    Boolean(bool),
    /// A date-time as TOML writes it (no field of the agent is one).
    Datetime(String),
    Array(Vec<Value<'i>>),
    Table(Table<'i>),
}

impl<'i> Item<'i> {
    /// The name of the kind, as toml names it in errors.
    pub fn type_str(&self) -> &'static str {
        match self {
            Item::String(_) => "string",
            Item::Integer(..) => "integer",
            Item::Float(_) => "float",
            Item::Boolean(_) => "boolean",
            Item::Datetime(_) => "datetime",
            Item::Array(_) => "array",
            Item::Table(_) => "table",
        }
    }

    pub fn as_table(&self) -> Option<&Table<'i>> {
        match self {
            Item::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// A key with its place.
pub type Key<'i> = At<Cow<'i, str>>;

/// The entries of a table, in key order (as toml's map gives them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table<'i>(Vec<(Key<'i>, Value<'i>)>);

impl<'i> Table<'i> {
    /// A table of these entries (each key once, in order).
    pub fn new(entries: Vec<(Key<'i>, Value<'i>)>) -> Table<'i> {
        Table(entries)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value<'i>> {
        self.0
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Takes the entry of `key` out.
    pub fn remove(&mut self, key: &str) -> Option<Value<'i>> {
        let at = self.0.iter().position(|(k, _)| k.get_ref() == key)?;
        Some(self.0.remove(at).1)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (Key<'i>, Value<'i>)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a, 'i> IntoIterator for &'a Table<'i> {
    type Item = &'a (Key<'i>, Value<'i>);
    type IntoIter = std::slice::Iter<'a, (Key<'i>, Value<'i>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// toml's tree moved into ours (its strings stay borrowed from the text).
fn from_toml_tree(v: Spanned<DeValue<'_>>) -> Value<'_> {
    let span = v.span();
    let item = match v.into_inner() {
        DeValue::String(s) => Item::String(s),
        DeValue::Integer(i) => Item::Integer(Cow::Owned(i.as_str().to_string()), i.radix()),
        DeValue::Float(f) => Item::Float(Cow::Owned(f.as_str().to_string())),
        DeValue::Boolean(b) => Item::Boolean(b),
        DeValue::Datetime(d) => Item::Datetime(d.to_string()),
        DeValue::Array(a) => Item::Array(a.into_iter().map(from_toml_tree).collect()),
        DeValue::Table(t) => Item::Table(from_toml_table(t)),
    };
    Value { span, item }
}

fn from_toml_table(t: DeTable<'_>) -> Table<'_> {
    Table(
        t.into_iter()
            .map(|(k, v)| {
                let key = At {
                    span: k.span(),
                    value: k.into_inner(),
                };
                (key, from_toml_tree(v))
            })
            .collect(),
    )
}

/// A reading error: what is wrong, and where (the place of a [`Value`]: a byte offset into the
/// text, or a compiled file's line; when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: Option<usize>,
    pub message: String,
}

impl Error {
    pub fn at(offset: usize, message: String) -> Error {
        Error {
            offset: Some(offset),
            message,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses a whole document: its root table as a [`Value`].
pub fn parse(text: &str) -> Result<Value<'_>, Error> {
    let root = DeTable::parse(text).map_err(|e| Error {
        offset: e.span().map(|s| s.start),
        message: e.message().trim().to_string(),
    })?;
    let span = root.span();
    Ok(Value {
        span,
        item: Item::Table(from_toml_table(root.into_inner())),
    })
}

/// Parses `text` and reads its root table as a `T`.
pub fn from_str<T: FromToml>(text: &str) -> Result<T, Error> {
    T::from_toml(&parse(text)?)
}

/// A type read from a TOML value.
pub trait FromToml: Sized {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error>;
}

/// The error of a value of the wrong type.
pub fn invalid_type(v: &Value<'_>, expected: &str) -> Error {
    Error::at(
        v.span().start,
        format!(
            "invalid type: {}, expected {expected}",
            v.get_ref().type_str()
        ),
    )
}

/// The entries of a table value (for a struct's reader).
pub fn table<'a, 'i>(v: &'a Value<'i>) -> Result<&'a Table<'i>, Error> {
    match v.get_ref() {
        Item::Table(t) => Ok(t),
        _ => Err(invalid_type(v, "a table")),
    }
}

/// The key of an entry as text.
pub fn key<'a>(k: &'a Key<'_>) -> &'a str {
    k.get_ref()
}

/// `names` as serde lists what it expected: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str], none: &str) -> String {
    match names {
        [] => none.to_string(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", list.join(", "))
        }
    }
}

/// The error of a key a struct does not have.
pub fn unknown_field(k: &Key<'_>, known: &[&str]) -> Error {
    Error::at(
        k.span().start,
        format!(
            "unknown field `{}`, expected {}",
            key(k),
            one_of(known, "there are no fields")
        ),
    )
}

/// Checks that the table `v` has each of `required`: the error of the first missing names it
/// (at the table).
pub fn require(v: &Value<'_>, required: &[&str]) -> Result<(), Error> {
    let t = table(v)?;
    for r in required {
        if !t.iter().any(|(k, _)| key(k) == *r) {
            return Err(Error::at(v.span().start, format!("missing field `{r}`")));
        }
    }
    Ok(())
}

/// A string value.
pub fn str<'a>(v: &'a Value<'_>) -> Result<&'a str, Error> {
    match v.get_ref() {
        Item::String(s) => Ok(s),
        _ => Err(invalid_type(v, "a string")),
    }
}

/// An integer value, within `min..=max` (`what` names the type in errors).
pub fn integer(v: &Value<'_>, min: i128, max: i128, what: &str) -> Result<i128, Error> {
    let Item::Integer(text, radix) = v.get_ref() else {
        return Err(invalid_type(v, what));
    };
    let n = i128::from_str_radix(text, *radix).map_err(|_| {
        // A number too large for any field: named by its first digits only.
        let shown = match text.char_indices().nth(24) {
            Some((at, _)) => format!("{}...", &text[..at]),
            None => text.to_string(),
        };
        Error::at(
            v.span().start,
            format!("invalid value: integer `{shown}`, expected {what}"),
        )
    })?;
    if n < min || n > max {
        return Err(Error::at(
            v.span().start,
            format!("invalid value: integer `{n}`, expected {what}"),
        ));
    }
    Ok(n)
}

/// One of `names` (a unit variant written as a string); the error lists them.
pub fn variant(v: &Value<'_>, names: &[&str]) -> Result<usize, Error> {
    let s = str(v)?;
    names.iter().position(|n| *n == s).ok_or_else(|| {
        Error::at(
            v.span().start,
            format!(
                "unknown variant `{s}`, expected {}",
                one_of(names, "there are no variants")
            ),
        )
    })
}

impl FromToml for String {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        str(v).map(str::to_string)
    }
}

impl FromToml for PathBuf {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        str(v).map(PathBuf::from)
    }
}

impl FromToml for bool {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        match v.get_ref() {
            Item::Boolean(b) => Ok(*b),
            _ => Err(invalid_type(v, "a boolean")),
        }
    }
}

macro_rules! from_toml_int {
    ($($t:ty),*) => {$(
        impl FromToml for $t {
            fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
                integer(v, <$t>::MIN as i128, <$t>::MAX as i128, stringify!($t)).map(|n| n as $t)
            }
        }
    )*};
}
from_toml_int!(u8, u16, u32, u64, i32, i64, usize);

impl<T: FromToml> FromToml for Option<T> {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        T::from_toml(v).map(Some)
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        match v.get_ref() {
            Item::Array(a) => a.iter().map(T::from_toml).collect(),
            _ => Err(invalid_type(v, "an array")),
        }
    }
}

impl<T: FromToml> FromToml for BTreeMap<String, T> {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        table(v)?
            .iter()
            .map(|(k, v)| Ok((key(k).to_string(), T::from_toml(v)?)))
            .collect()
    }
}

/// A value read with its place (as toml's `Spanned`, which has no `Default` for the fields of a
/// struct read by [`from_toml_struct!`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct At<T> {
    span: std::ops::Range<usize>,
    value: T,
}

impl<T> At<T> {
    pub fn new(span: std::ops::Range<usize>, value: T) -> At<T> {
        At { span, value }
    }

    /// Where the value is (see [`Value`]).
    pub fn span(&self) -> std::ops::Range<usize> {
        self.span.clone()
    }

    pub fn get_ref(&self) -> &T {
        &self.value
    }

    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: FromToml> FromToml for At<T> {
    fn from_toml(v: &Value<'_>) -> Result<Self, Error> {
        Ok(At {
            span: v.span(),
            value: T::from_toml(v)?,
        })
    }
}

/// `impl FromToml` for a struct with `Default`: each key of its table sets one field (a key
/// missing keeps the default, as `#[serde(default)]`; an unknown key is an error, as
/// `deny_unknown_fields`). Fields are named as their keys, or `field = "key"` for a key that is
/// not a Rust name; `required` keys must be present (checked after the unknown ones, as serde
/// does). A `lenient` struct ignores keys it does not know (the store's records: a file a later
/// version wrote still loads).
///
/// ```ignore
/// from_toml_struct!(Acs { url, username });
/// from_toml_struct!(RawParam { name, base = "type", list } required "name", "type");
/// from_toml_struct!(lenient LastSession { time, ok, result } required "time", "ok", "result");
/// ```
#[macro_export]
macro_rules! from_toml_struct {
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
    (lenient $ty:ty { $($body:tt)* } $($rest:tt)*) => {
        $crate::from_toml_struct!(@impl true, $ty { $($body)* } $($rest)*);
        $crate::from_toml_struct!(@write $ty { $($body)* });
    };
    // A store record is written back with the same keys (`toml_write`).
    (@write $ty:ty { $($field:ident $(= $key:literal)?),* $(,)? }) => {
        impl $crate::toml_write::ToToml for $ty {
            fn entries<'s>(&'s self, out: &mut Vec<$crate::toml_write::Entry<'s>>) {
                $(out.push((
                    ::std::borrow::Cow::Borrowed($crate::from_toml_struct!(@key $field $($key)?)),
                    &self.$field,
                ));)*
            }

            fn is_table(&self) -> bool {
                true
            }
        }
    };
    (@impl $lenient:expr, $ty:ty { $($field:ident $(= $key:literal)?),* $(,)? }
     $(required $($req:literal),+)?) => {
        impl $crate::toml_read::FromToml for $ty {
            fn from_toml(
                v: &$crate::toml_read::Value<'_>,
            ) -> Result<Self, $crate::toml_read::Error> {
                const KNOWN: &[&str] = &[$($crate::from_toml_struct!(@key $field $($key)?)),*];
                let mut out = <$ty>::default();
                for (k, value) in $crate::toml_read::table(v)? {
                    match $crate::toml_read::key(k) {
                        $($crate::from_toml_struct!(@key $field $($key)?) => {
                            out.$field = $crate::toml_read::FromToml::from_toml(value)?
                        })*
                        _ if $lenient => {}
                        _ => return Err($crate::toml_read::unknown_field(k, KNOWN)),
                    }
                }
                $($crate::toml_read::require(v, &[$($req),+])?;)?
                Ok(out)
            }
        }
    };
    ($ty:ty { $($body:tt)* } $($rest:tt)*) => {
        $crate::from_toml_struct!(@impl false, $ty { $($body)* } $($rest)*);
    };
}

/// `impl FromToml` for an enum of unit variants written as strings.
///
/// ```ignore
/// from_toml_enum!(Access { "readOnly" => ReadOnly, "readWrite" => ReadWrite });
/// ```
#[macro_export]
macro_rules! from_toml_enum {
    ($ty:ty { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl $crate::toml_read::FromToml for $ty {
            fn from_toml(
                v: &$crate::toml_read::Value<'_>,
            ) -> Result<Self, $crate::toml_read::Error> {
                const ALL: &[$ty] = &[$(<$ty>::$variant),+];
                $crate::toml_read::variant(v, &[$($name),+]).map(|i| ALL[i])
            }
        }

        impl $crate::toml_write::ToToml for $ty {
            fn write(&self, out: &mut String) {
                $crate::toml_write::ToToml::write(match self { $(<$ty>::$variant => $name),+ }, out)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Inner {
        n: u32,
        s: Option<String>,
    }
    from_toml_struct!(Inner { n, s });

    #[derive(Debug, Default, PartialEq)]
    struct Outer {
        name: String,
        flag: bool,
        list: Vec<i64>,
        map: BTreeMap<String, String>,
        inner: Inner,
        kind: Kind,
    }
    from_toml_struct!(Outer { name, flag, list, map, inner, kind = "type" } required "name");

    #[derive(Debug, Default, PartialEq, Clone, Copy)]
    enum Kind {
        #[default]
        A,
        B,
    }
    from_toml_enum!(Kind { "a" => A, "b" => B });

    #[test]
    fn reads_every_kind_of_field() {
        let o: Outer = from_str(
            "name = \"x\"\nflag = true\nlist = [1, -2, 0x10]\ntype = \"b\"\n[map]\nk = \"v\"\n\
             [inner]\nn = 7\n",
        )
        .unwrap();
        assert_eq!(
            o,
            Outer {
                name: "x".into(),
                flag: true,
                list: vec![1, -2, 16],
                map: [("k".to_string(), "v".to_string())].into(),
                inner: Inner { n: 7, s: None },
                kind: Kind::B,
            }
        );
    }

    #[derive(Debug, Default, PartialEq)]
    struct Record {
        a: u32,
    }
    from_toml_struct!(lenient Record { a } required "a");

    #[test]
    fn a_lenient_struct_ignores_unknown_keys_but_not_missing_ones() {
        assert_eq!(
            from_str::<Record>(
                "a = 1
later = \"x\"\n"
            )
            .unwrap(),
            Record { a: 1 }
        );
        assert_eq!(
            from_str::<Record>("b = 1\n").unwrap_err().message,
            "missing field `a`"
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let text = "name = \"x\"\n[inner]\nn = 1\nm = 2\n";
        let e = from_str::<Outer>(text).unwrap_err();
        assert_eq!(e.message, "unknown field `m`, expected `n` or `s`");
        assert_eq!(e.offset, text.find("m ="));
        let e = from_str::<Outer>("flag = true\n").unwrap_err();
        assert_eq!(e.message, "missing field `name`");
        // A misspelt required key is named where it is, as serde did, not reported missing.
        let e = from_str::<Outer>("flag = true\nnmae = \"x\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("unknown field `nmae`, expected one of `name`, `flag`"),
            "{e}"
        );
        assert_eq!(e.offset, Some(12));
        let e = from_str::<Outer>("name = 1\n").unwrap_err();
        assert_eq!(e.message, "invalid type: integer, expected a string");
        let e = from_str::<Outer>("name = \"x\"\n[inner]\nn = -1\n").unwrap_err();
        assert_eq!(e.message, "invalid value: integer `-1`, expected u32");
        let e = from_str::<Outer>("name = \"x\"\ntype = \"c\"\n").unwrap_err();
        assert_eq!(e.message, "unknown variant `c`, expected `a` or `b`");
        let e = from_str::<Outer>("name = \"x\"\nlist = [1, 99999999999999999999]\n").unwrap_err();
        assert!(e.message.contains("99999999999999999999"), "{e}");
        // A number too long for any type is named by its first digits only.
        let text = format!("name = \"x\"\nlist = [{}]\n", "9".repeat(10_000));
        let e = from_str::<Outer>(&text).unwrap_err();
        assert!(e.message.len() < 100, "{e}");
        let e = from_str::<Outer>("name = [\n").unwrap_err();
        assert!(e.offset.is_some(), "{e:?}");
    }
}
