//! The embedded data model files, compiled at build time by `datamodel/compile.rs` (the format
//! is described there): each file is read back into the tree [`toml_read`] reads TOML text
//! into, its strings borrowed from the binary, its values placed at their lines.
//!
//! The blob is the build's own output, not input from outside; still, every read is checked, so
//! a damaged one is a [`LoadError`], never a panic, and the nesting is bounded.

use std::borrow::Cow;

use super::defs::LoadError;
use crate::toml_read::{At, Item, Table, Value};

static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/datamodel.bin"));

const MAGIC: &[u8] = b"CWDM1";

const KIND_STRING: u8 = 0;
const KIND_INTEGER: u8 = 1;
const KIND_INTEGER_RADIX: u8 = 2;
const KIND_FLOAT: u8 = 3;
const KIND_FALSE: u8 = 4;
const KIND_TRUE: u8 = 5;
const KIND_DATETIME: u8 = 6;
const KIND_ARRAY: u8 = 7;
const KIND_TABLE: u8 = 8;

/// The deepest nesting read (the files nest four deep).
const MAX_DEPTH: usize = 16;

/// The root table of the embedded file `name` (`datamodel/tr181.toml`): `None` when the binary
/// has no such file.
pub(super) fn file(name: &str) -> Result<Option<Value<'static>>, LoadError> {
    file_in(BLOB, name).map_err(|at| LoadError {
        file: name.to_string(),
        line: None,
        message: format!("the compiled data model is damaged (at byte {at})"),
    })
}

/// The names of the files the binary embeds, in the order they were compiled.
#[cfg(test)]
pub(super) fn names() -> Vec<&'static str> {
    let mut r = Reader { blob: BLOB, at: 0 };
    let strings = r.header().expect("the blob reads");
    let files = r.varint().expect("the blob reads");
    (0..files)
        .map(|_| {
            let name = strings[r.varint().unwrap() as usize];
            let len = r.varint().unwrap() as usize;
            r.at += len;
            name
        })
        .collect()
}

/// [`file`] in `blob`; the error is the offset where it is damaged.
fn file_in<'b>(blob: &'b [u8], name: &str) -> Result<Option<Value<'b>>, usize> {
    let mut r = Reader { blob, at: 0 };
    let strings = r.header()?;
    for _ in 0..r.varint()? {
        let this = r.string(&strings)?;
        let len = usize::try_from(r.varint()?).map_err(|_| r.at)?;
        let end = r.at.checked_add(len).filter(|e| *e <= blob.len());
        let end = end.ok_or(r.at)?;
        if this == name {
            let mut file = Reader {
                blob: &blob[..end],
                at: r.at,
            };
            let mut line = 0;
            let root = file.value(&strings, &mut line, 0)?;
            return Ok(Some(root));
        }
        r.at = end;
    }
    Ok(None)
}

struct Reader<'b> {
    blob: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn byte(&mut self) -> Result<u8, usize> {
        let b = *self.blob.get(self.at).ok_or(self.at)?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, usize> {
        let start = self.at;
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(start)
    }

    fn count(&mut self) -> Result<usize, usize> {
        let at = self.at;
        // Each counted item takes a byte at least: a count beyond the bytes left is damage.
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.blob.len() - self.at)
            .ok_or(at)
    }

    /// The magic and the string table.
    fn header(&mut self) -> Result<Vec<&'b str>, usize> {
        if !self.blob.starts_with(MAGIC) {
            return Err(0);
        }
        self.at = MAGIC.len();
        let n = self.count()?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count()?;
            let at = self.at;
            let bytes = &self.blob[at..at + len];
            strings.push(std::str::from_utf8(bytes).map_err(|_| at)?);
            self.at += len;
        }
        Ok(strings)
    }

    fn string(&mut self, strings: &[&'b str]) -> Result<&'b str, usize> {
        let at = self.at;
        let i = self.varint()?;
        usize::try_from(i)
            .ok()
            .and_then(|i| strings.get(i))
            .copied()
            .ok_or(at)
    }

    fn value(
        &mut self,
        strings: &[&'b str],
        line: &mut usize,
        depth: usize,
    ) -> Result<Value<'b>, usize> {
        let at = self.at;
        let tag = self.byte()?;
        let zigzag = match tag >> 4 {
            15 => self.varint()?,
            z => u64::from(z),
        };
        let delta = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        *line = i64::try_from(*line)
            .ok()
            .and_then(|l| l.checked_add(delta))
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(at)?;
        let l = *line;
        if depth > MAX_DEPTH {
            return Err(at);
        }
        let item = match tag & 0x0f {
            KIND_STRING => Item::String(Cow::Borrowed(self.string(strings)?)),
            KIND_INTEGER => Item::Integer(Cow::Borrowed(self.string(strings)?), 10),
            KIND_INTEGER_RADIX => {
                let radix = self.byte()?;
                if !(2..=36).contains(&radix) {
                    return Err(at);
                }
                Item::Integer(Cow::Borrowed(self.string(strings)?), u32::from(radix))
            }
            KIND_FLOAT => Item::Float(Cow::Borrowed(self.string(strings)?)),
            KIND_FALSE => Item::Boolean(false),
            KIND_TRUE => Item::Boolean(true),
            KIND_DATETIME => Item::Datetime(self.string(strings)?.to_string()),
            KIND_ARRAY => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(strings, line, depth + 1)?);
                }
                Item::Array(items)
            }
            KIND_TABLE => {
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.string(strings)?;
                    let value = self.value(strings, line, depth + 1)?;
                    let key = At::new(value.span(), Cow::Borrowed(key));
                    entries.push((key, value));
                }
                Item::Table(Table::new(entries))
            }
            _ => return Err(at),
        };
        Ok(Value::new(l..l, item))
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_file, parse_value};
    use super::*;

    /// Every embedded file reads from the blob as from its text: the same definitions,
    /// bindings, scripts and devices, at the same lines.
    #[test]
    fn every_file_reads_as_its_text() {
        let names = names();
        assert!(names.len() >= 14, "{names:?}");
        for name in names {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let from_text = parse_file(name, &text).unwrap();
            let root = file(name).unwrap().unwrap();
            let from_blob = parse_value(name, &root, &|l| l).unwrap();
            assert_eq!(from_blob, from_text, "{name}");
            let mut lines: Vec<usize> = from_text
                .definitions
                .objects
                .iter()
                .flat_map(|o| std::iter::once(o.line).chain(o.params.iter().map(|p| p.line)))
                .chain(from_text.binds.iter().map(|b| b.line))
                .collect();
            lines.dedup();
            // The lines are those of the text, not all the same.
            assert!(lines.len() > 1 || text.len() < 2000, "{name}: {lines:?}");
        }
    }

    #[test]
    fn a_file_not_embedded_is_none() {
        assert_eq!(file("datamodel/none.toml").unwrap(), None);
    }

    /// A damaged blob is an error at every cut, never a panic.
    #[test]
    fn a_damaged_blob_is_an_error() {
        let name = "datamodel/bindings/tr181-builtin.toml";
        assert!(file_in(BLOB, name).unwrap().is_some());
        let mut damaged = 0;
        for cut in (0..BLOB.len()).step_by(997) {
            damaged += usize::from(file_in(&BLOB[..cut], name).is_err());
        }
        assert!(damaged > 0);
        for flip in (MAGIC.len()..BLOB.len()).step_by(4099) {
            let mut copy = BLOB.to_vec();
            copy[flip] ^= 0xff;
            let _ = file_in(&copy, name);
        }
    }
}
