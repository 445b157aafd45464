//! TR-106 data types (TR-106 Amendment 8 §3.2; the `<dataType>` facets of the DM schema).
//!
//! Values travel as strings in CWMP; the engine keeps every value in its canonical lexical form and
//! checks it against the parameter's [`TypeSpec`] before any backend sees it.

use std::borrow::Cow;

use crate::cwmp::fault::Fault;
use crate::cwmp::time::is_datetime;
use crate::cwmp::value::BaseType;

/// An inclusive range facet; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub min: Option<i128>,
    pub max: Option<i128>,
    /// Only values `min + k * step` are allowed (DM Schema `range@step`; `min` 0 when open).
    pub step: Option<i128>,
}

impl Range {
    /// Whether `n` lies in this range (and on its step).
    pub fn contains(&self, n: i128) -> bool {
        self.min.is_none_or(|m| n >= m)
            && self.max.is_none_or(|m| n <= m)
            && self
                .step
                .filter(|s| *s > 1)
                .is_none_or(|s| (n - self.min.unwrap_or(0)).rem_euclid(s) == 0)
    }
}

/// A parameter's full type: the base type and its facets (TR-106 §3.2.1–3.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeSpec {
    pub base: BaseType,
    /// Maximum length: characters of a string, bytes of the binary data of base64 and hexBinary
    /// (DM Schema size facet, TR-106 A.2.3.3). For a list, characters of the whole list.
    pub max_length: Option<u32>,
    /// Minimum length, when the model states one.
    pub min_length: Option<u32>,
    /// For a list: the maximum length of each item (counted as [`TypeSpec::max_length`]).
    pub item_max_length: Option<u32>,
    /// Allowed ranges of numeric values; empty means the base type's own range.
    pub ranges: Vec<Range>,
    /// Allowed values of a string; empty means any.
    pub enumeration: Vec<String>,
    /// A comma-separated list of items of this type (TR-106 §3.2.3).
    pub list: bool,
    /// The named TR-106 type it was resolved from (IPAddress, MACAddress, …), for documentation.
    pub named: Option<String>,
}

impl TypeSpec {
    /// A plain type with no facets.
    pub fn of(base: BaseType) -> TypeSpec {
        TypeSpec {
            base,
            ..TypeSpec::default()
        }
    }

    /// A string with a maximum length.
    pub fn string(max_length: u32) -> TypeSpec {
        TypeSpec {
            max_length: Some(max_length),
            ..TypeSpec::of(BaseType::String)
        }
    }

    /// Checks a value given by the ACS or a user and returns its canonical lexical form
    /// (`true`/`false` for booleans, no leading `+` or zeros for numbers). 9007 when the value is
    /// not of the type or outside its facets.
    pub fn check(&self, value: &str) -> Result<String, Fault> {
        self.canonical(value).map(Cow::into_owned)
    }

    /// [`TypeSpec::check`] without a copy: borrowed exactly when the value is already in
    /// canonical form (what a backend gives almost always is), the value itself; owned when it
    /// had to be rewritten.
    pub fn canonical<'v>(&self, value: &'v str) -> Result<Cow<'v, str>, Fault> {
        let len = if self.list {
            value.chars().count()
        } else {
            self.length(value)
        };
        if let Some(max) = self.max_length {
            if len > max as usize {
                return Err(Fault::InvalidParameterValue(format!("longer than {max}")));
            }
        }
        if let Some(min) = self.min_length {
            if !self.list && len < min as usize {
                return Err(Fault::InvalidParameterValue(format!("shorter than {min}")));
            }
        }
        if self.list {
            if value.is_empty() {
                return Ok(Cow::Borrowed(value));
            }
            let mut out = String::with_capacity(value.len());
            for (i, item) in value.split(',').enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let item = item.trim();
                if let Some(max) = self.item_max_length {
                    if self.length(item) > max as usize {
                        return Err(Fault::InvalidParameterValue(format!(
                            "list item longer than {max} characters"
                        )));
                    }
                }
                out.push_str(&self.check_item(item)?);
            }
            return Ok(if out == value {
                Cow::Borrowed(value)
            } else {
                Cow::Owned(out)
            });
        }
        self.check_item(value)
    }

    /// The length the size facet counts: characters of a string, bytes of binary data.
    fn length(&self, v: &str) -> usize {
        match self.base {
            BaseType::HexBinary => v.len() / 2,
            BaseType::Base64 => {
                let chars = v.bytes().filter(|b| !b.is_ascii_whitespace()).count();
                let pad = v.bytes().rev().take_while(|b| *b == b'=').count();
                (chars / 4 * 3).saturating_sub(pad)
            }
            _ => v.chars().count(),
        }
    }

    fn check_item<'v>(&self, v: &'v str) -> Result<Cow<'v, str>, Fault> {
        let bad = |what: &str| Fault::InvalidParameterValue(format!("{v:?} is not a valid {what}"));
        let canon = match self.base {
            BaseType::String => Cow::Borrowed(v),
            BaseType::Boolean => match v {
                "true" | "false" => Cow::Borrowed(v),
                "1" => Cow::Owned("true".into()),
                "0" => Cow::Owned("false".into()),
                _ => return Err(bad("boolean")),
            },
            BaseType::Int | BaseType::UnsignedInt | BaseType::Long | BaseType::UnsignedLong => {
                let n = parse_integer(v).ok_or_else(|| bad(self.base.name()))?;
                let (lo, hi): (i128, i128) = match self.base {
                    BaseType::Int => (i32::MIN as i128, i32::MAX as i128),
                    BaseType::UnsignedInt => (0, u32::MAX as i128),
                    BaseType::Long => (i64::MIN as i128, i64::MAX as i128),
                    _ => (0, u64::MAX as i128),
                };
                if n < lo || n > hi {
                    return Err(bad(self.base.name()));
                }
                if !self.ranges.is_empty() && !self.ranges.iter().any(|r| r.contains(n)) {
                    return Err(Fault::InvalidParameterValue(format!(
                        "{n} is outside the allowed range"
                    )));
                }
                // Already canonical: no sign but `-` on a nonzero number, no leading zero.
                let digits = v.strip_prefix('-').unwrap_or(v);
                if v.starts_with('+') || v == "-0" || (digits.len() > 1 && digits.starts_with('0'))
                {
                    Cow::Owned(n.to_string())
                } else {
                    Cow::Borrowed(v)
                }
            }
            BaseType::DateTime => {
                if !is_datetime(v) {
                    return Err(bad("dateTime"));
                }
                Cow::Borrowed(v)
            }
            BaseType::Base64 => {
                if !is_base64(v) {
                    return Err(bad("base64"));
                }
                Cow::Borrowed(v)
            }
            BaseType::HexBinary => {
                if v.len() % 2 != 0 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("hexBinary"));
                }
                Cow::Borrowed(v)
            }
            BaseType::Decimal => {
                if !is_decimal(v) {
                    return Err(bad("decimal"));
                }
                Cow::Borrowed(v)
            }
        };
        if !self.enumeration.is_empty() && !self.enumeration.iter().any(|e| *e == *canon) {
            return Err(Fault::InvalidParameterValue(format!(
                "{v:?} is not one of the allowed values"
            )));
        }
        Ok(canon)
    }
}

/// An xsd integer: optional sign, digits only.
fn parse_integer(v: &str) -> Option<i128> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<i128>().ok()
}

fn is_decimal(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !(int.is_empty() && frac.is_none_or(str::is_empty))
        && all_digits(int)
        && frac.is_none_or(all_digits)
}

fn is_base64(v: &str) -> bool {
    let s: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if s.len() % 4 != 0 {
        return false;
    }
    let body_end = s.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1);
    if s.len() - body_end > 2 {
        return false;
    }
    s[..body_end]
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value already canonical comes back borrowed (a read copies nothing); one that is not
    /// comes back rewritten, owned; what is not of the type is refused, as `check` does.
    #[test]
    fn canonical_values_are_not_copied() {
        let int = TypeSpec::of(BaseType::Int);
        let uint = TypeSpec::of(BaseType::UnsignedInt);
        let boolean = TypeSpec::of(BaseType::Boolean);
        let list = TypeSpec {
            list: true,
            ..TypeSpec::of(BaseType::UnsignedInt)
        };
        for (t, v) in [
            (&int, "42"),
            (&int, "-42"),
            (&int, "0"),
            (&uint, "4294967295"),
            (&boolean, "true"),
            (&boolean, "false"),
            (&TypeSpec::of(BaseType::String), " a b "),
            (&TypeSpec::of(BaseType::DateTime), "2026-12-07T10:00:00Z"),
            (&list, "1,2,3"),
            (&list, ""),
        ] {
            let c = t.canonical(v).unwrap();
            assert!(matches!(c, Cow::Borrowed(b) if b == v), "{v:?}: {c:?}");
            assert_eq!(t.check(v).unwrap(), v);
        }
        for (t, v, canon) in [
            (&int, "+42", "42"),
            (&int, "007", "7"),
            (&int, "-0", "0"),
            (&int, "-007", "-7"),
            (&uint, "00", "0"),
            (&boolean, "1", "true"),
            (&boolean, "0", "false"),
            (&list, "1, 02 ,3", "1,2,3"),
            (&int, "+0", "0"),
            (&int, "-00", "0"),
            (
                &TypeSpec {
                    list: true,
                    ..TypeSpec::of(BaseType::Boolean)
                },
                "1,false,0",
                "true,false,false",
            ),
        ] {
            let c = t.canonical(v).unwrap();
            assert!(matches!(&c, Cow::Owned(o) if o == canon), "{v:?}: {c:?}");
            assert_eq!(t.check(v).unwrap(), canon);
        }
        for bad in ["4x", "-", "+", "", "+-5", &"9".repeat(31)] {
            assert!(int.canonical(bad).is_err(), "{bad:?}");
        }
        assert!(boolean.canonical("yes").is_err());
        // Against the formatting it replaces, over signs, zeros and digits.
        for v in [
            "0", "00", "-0", "+0", "7", "07", "-7", "-07", "+7", "70", "-70", "007000",
        ] {
            let want = parse_integer(v).map(|n| n.to_string());
            assert_eq!(int.canonical(v).ok().map(Cow::into_owned), want, "{v:?}");
        }
        // An enumeration is checked on the canonical form.
        let e = TypeSpec {
            enumeration: vec!["1".into(), "2".into()],
            ..TypeSpec::of(BaseType::UnsignedInt)
        };
        assert!(matches!(e.canonical("1"), Ok(Cow::Borrowed("1"))));
        assert_eq!(e.canonical("02").unwrap(), "2");
        assert!(e.canonical("3").is_err());
    }

    #[test]
    fn integers_and_ranges() {
        let t = TypeSpec {
            ranges: vec![Range {
                min: Some(1),
                max: None,
                step: None,
            }],
            ..TypeSpec::of(BaseType::UnsignedInt)
        };
        assert_eq!(t.check("+0030").unwrap(), "30");
        assert_eq!(t.check("0").unwrap_err().code(), 9007);
        assert_eq!(t.check("-1").unwrap_err().code(), 9007);
        assert_eq!(t.check("4294967296").unwrap_err().code(), 9007);
        assert_eq!(t.check("12a").unwrap_err().code(), 9007);
        assert_eq!(
            TypeSpec::of(BaseType::Int).check("-2147483648").unwrap(),
            "-2147483648"
        );
        let stepped = TypeSpec {
            ranges: vec![Range {
                min: Some(-10),
                max: Some(10),
                step: Some(5),
            }],
            ..TypeSpec::of(BaseType::Int)
        };
        assert_eq!(stepped.check("-5").unwrap(), "-5");
        assert_eq!(stepped.check("3").unwrap_err().code(), 9007);
        let items = TypeSpec {
            list: true,
            max_length: Some(10),
            item_max_length: Some(2),
            ..TypeSpec::of(BaseType::String)
        };
        assert_eq!(items.check("ab,cd").unwrap(), "ab,cd");
        assert_eq!(items.check("abc").unwrap_err().code(), 9007);
    }

    #[test]
    fn booleans_strings_lists() {
        let b = TypeSpec::of(BaseType::Boolean);
        assert_eq!(b.check("1").unwrap(), "true");
        assert_eq!(b.check("false").unwrap(), "false");
        assert!(b.check("yes").is_err());
        let s = TypeSpec::string(3);
        assert!(s.check("abc").is_ok());
        assert!(s.check("abcd").is_err());
        assert_eq!(s.check("é€ü").unwrap(), "é€ü");
        let l = TypeSpec {
            list: true,
            enumeration: vec!["A".into(), "B".into()],
            ..TypeSpec::of(BaseType::String)
        };
        assert_eq!(l.check("A, B").unwrap(), "A,B");
        assert!(l.check("A,C").is_err());
    }

    #[test]
    fn other_lexical_forms() {
        assert!(is_datetime("2000-01-01T08:00:23"));
        assert!(is_datetime("2026-11-21T05:50:00.123+01:00"));
        assert!(is_datetime("0001-01-01T00:00:00Z"));
        assert!(!is_datetime("2026-13-01T00:00:00Z"));
        assert!(!is_datetime("2026-01-01 00:00:00"));
        assert!(TypeSpec::of(BaseType::Base64).check("aGVsbG8=").is_ok());
        assert!(TypeSpec::of(BaseType::Base64).check("aGVsbG8").is_err());
        assert!(TypeSpec::of(BaseType::HexBinary).check("0aFF").is_ok());
        assert!(TypeSpec::of(BaseType::HexBinary).check("0aF").is_err());
        // Sizes of binary types count bytes (DM Schema, TR-106 A.2.3.3).
        let two = |base| TypeSpec {
            max_length: Some(2),
            min_length: Some(2),
            ..TypeSpec::of(base)
        };
        assert_eq!(two(BaseType::HexBinary).check("888E").unwrap(), "888E");
        assert!(two(BaseType::HexBinary).check("888E00").is_err());
        assert!(two(BaseType::HexBinary).check("88").is_err());
        assert!(two(BaseType::Base64).check("aGk=").is_ok());
        assert!(two(BaseType::Base64).check("aGVsbG8=").is_err());
        assert!(TypeSpec::of(BaseType::Decimal).check("-1.50").is_ok());
        assert!(TypeSpec::of(BaseType::Decimal).check(".").is_err());
        assert_eq!(
            BaseType::from_xsi("xsd:unsignedInt"),
            Some(BaseType::UnsignedInt)
        );
        assert_eq!(
            BaseType::from_xsi("soap-enc:base64"),
            Some(BaseType::Base64)
        );
    }
}
