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

// MAGIC and the KIND_* tags, as the build script writes them.
include!(concat!(env!("CARGO_MANIFEST_DIR"), "/datamodel/format.rs"));

/// The deepest nesting read (the files nest four deep).
const MAX_DEPTH: usize = 16;

/// The compiled files with their string table, read once per load.
pub(super) struct Blob<'b> {
    bytes: &'b [u8],
    strings: Vec<&'b str>,
    /// Where the file table starts.
    files: usize,
}

impl Blob<'static> {
    /// The blob of this binary.
    pub(super) fn embedded() -> Result<Blob<'static>, LoadError> {
        Blob::open(BLOB).map_err(|at| damaged("datamodel", at))
    }
}

fn damaged(file: &str, at: usize) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: None,
        message: format!("the compiled data model is damaged (at byte {at})"),
    }
}

impl<'b> Blob<'b> {
    fn open(bytes: &'b [u8]) -> Result<Blob<'b>, usize> {
        let mut r = Reader { blob: bytes, at: 0 };
        let strings = r.header()?;
        Ok(Blob {
            bytes,
            strings,
            files: r.at,
        })
    }

    /// The names of the files, in the order they were compiled.
    #[cfg(test)]
    pub(super) fn names(&self) -> Vec<&'b str> {
        let mut names = Vec::new();
        self.find_file(|name, _| {
            names.push(name);
            None::<()>
        })
        .expect("the blob reads");
        names
    }

    /// Reads the root table of file `name` entry by entry: `each(key, value)` for each entry,
    /// except that an array under the key `stream` is given one element at a time (`each(stream,
    /// element)`). `false`: no such file.
    pub(super) fn entries(
        &self,
        name: &str,
        stream: &str,
        each: &mut dyn FnMut(&'b str, Value<'b>) -> Result<(), LoadError>,
    ) -> Result<bool, LoadError> {
        match self.entries_at(name, stream, each) {
            Ok(found) => Ok(found),
            Err(Failed::Damaged(at)) => Err(damaged(name, at)),
            Err(Failed::Refused(e)) => Err(e),
        }
    }

    fn entries_at(
        &self,
        name: &str,
        stream: &str,
        each: &mut dyn FnMut(&'b str, Value<'b>) -> Result<(), LoadError>,
    ) -> Result<bool, Failed> {
        let Some(mut r) = self.file(name)? else {
            return Ok(false);
        };
        let strings = &self.strings;
        let mut line = 0;
        let (kind, _) = r.tag(&mut line)?;
        if kind != KIND_TABLE {
            return Err(Failed::Damaged(r.at));
        }
        for _ in 0..r.count()? {
            let key = r.string(strings)?;
            let (kind, at) = r.tag(&mut line)?;
            if kind == KIND_ARRAY && key == stream {
                for _ in 0..r.count()? {
                    let element = r.value(strings, &mut line, 1)?;
                    each(key, element).map_err(Failed::Refused)?;
                }
            } else {
                let value = r.item(kind, at, strings, &mut line, 1)?;
                each(key, value).map_err(Failed::Refused)?;
            }
        }
        Ok(true)
    }

    /// A reader of file `name`'s root value (up to the end of the file).
    fn file(&self, name: &str) -> Result<Option<Reader<'b>>, usize> {
        self.find_file(|this, reader| (this == name).then_some(reader))
    }

    /// Walks the file table: `visit` gets each file's name and a reader of its root value,
    /// until it returns something.
    fn find_file<T>(
        &self,
        mut visit: impl FnMut(&'b str, Reader<'b>) -> Option<T>,
    ) -> Result<Option<T>, usize> {
        let mut r = Reader {
            blob: self.bytes,
            at: self.files,
        };
        for _ in 0..r.varint()? {
            let this = r.string(&self.strings)?;
            let len = usize::try_from(r.varint()?).map_err(|_| r.at)?;
            let end = r.at.checked_add(len).filter(|e| *e <= self.bytes.len());
            let end = end.ok_or(r.at)?;
            let file = Reader {
                blob: &self.bytes[..end],
                at: r.at,
            };
            if let Some(found) = visit(this, file) {
                return Ok(Some(found));
            }
            r.at = end;
        }
        Ok(None)
    }
}

/// Why reading stopped: the blob is damaged (at this offset), or the reader refused a value.
enum Failed {
    Damaged(usize),
    Refused(LoadError),
}

impl From<usize> for Failed {
    fn from(at: usize) -> Failed {
        Failed::Damaged(at)
    }
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

    /// A value's tag: its kind, and its line (kept in `line`, which each value's tag moves).
    fn tag(&mut self, line: &mut usize) -> Result<(u8, usize), usize> {
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
        Ok((tag & 0x0f, at))
    }

    fn value(
        &mut self,
        strings: &[&'b str],
        line: &mut usize,
        depth: usize,
    ) -> Result<Value<'b>, usize> {
        let (kind, at) = self.tag(line)?;
        self.item(kind, at, strings, line, depth)
    }

    /// The rest of a value whose tag (at `at`) was read.
    fn item(
        &mut self,
        kind: u8,
        at: usize,
        strings: &[&'b str],
        line: &mut usize,
        depth: usize,
    ) -> Result<Value<'b>, usize> {
        let l = *line;
        if depth > MAX_DEPTH {
            return Err(at);
        }
        let item = match kind {
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
                // (A count is bounded by the bytes left, not by what its items take in memory.)
                let mut items = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    items.push(self.value(strings, line, depth + 1)?);
                }
                Item::Array(items)
            }
            KIND_TABLE => {
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n.min(64));
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
    use super::super::parse::{parse_compiled, parse_file};
    use super::*;

    /// Every embedded file reads from the blob as from its text: the same definitions,
    /// bindings, scripts and devices, at the same lines.
    #[test]
    fn every_file_reads_as_its_text() {
        let blob = Blob::embedded().unwrap();
        let names = blob.names();
        assert!(names.len() >= 14, "{names:?}");
        for name in names {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let from_text = parse_file(name, &text).unwrap();
            let from_blob = parse_compiled(&blob, name, &|_| true).unwrap().unwrap();
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
        let blob = Blob::embedded().unwrap();
        assert!(parse_compiled(&blob, "datamodel/none.toml", &|_| true)
            .unwrap()
            .is_none());
    }

    /// A damaged blob is an error at every cut, never a panic.
    #[test]
    fn a_damaged_blob_is_an_error() {
        let name = "datamodel/tr181.toml";
        let read = |bytes: &[u8]| -> Result<bool, usize> {
            let blob = Blob::open(bytes)?;
            match blob.entries_at(name, "object", &mut |_, _| Ok(())) {
                Ok(found) => Ok(found),
                Err(Failed::Damaged(at)) => Err(at),
                Err(Failed::Refused(e)) => panic!("{e}"),
            }
        };
        assert_eq!(read(BLOB), Ok(true));
        let mut damaged = 0;
        for cut in (0..BLOB.len()).step_by(997) {
            damaged += usize::from(read(&BLOB[..cut]).is_err());
        }
        assert!(damaged > 50, "{damaged}");
        for flip in (MAGIC.len()..BLOB.len()).step_by(4099) {
            let mut copy = BLOB.to_vec();
            copy[flip] ^= 0xff;
            let _ = read(&copy);
        }
    }
}
