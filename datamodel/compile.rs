//! The crate's build script: compiles the data model files the binary embeds (`tr181.toml`,
//! `tr098.toml` and everything under `bindings/`) into one compact blob, `$OUT_DIR/datamodel.bin`,
//! which `src/datamodel/schema/compiled.rs` reads at start (issue 19).
//!
//! The files were embedded as their text (about 296 KB) and parsed at every start (27 M
//! instructions, a 4 MB heap peak for toml's tree of `tr181.toml`). The blob holds the same
//! TOML values without the syntax, the comments and the repeats: every distinct string once,
//! each value a tag byte and an index. It is read into the tree `src/toml_read.rs` reads TOML
//! text into, with the line of each value, so the readers, the checks and the error messages
//! are those of the text, and a unit test compares both for every embedded file. Vendor files
//! (`[datamodel] dir`) stay TOML read at run time.
//!
//! The format (every number an unsigned LEB128 varint):
//! - `CWDM1` (`MAGIC` in `format.rs`, with the kinds of value); the string count, then each string: its length, its UTF-8 bytes (most used first,
//!   so the common ones have one-byte indexes);
//! - the file count, then each file: the index of its name (`datamodel/bindings/x.toml`), the
//!   length of its encoding, its root table;
//! - a value: a tag byte, then its payload. The tag's low nibble is the kind (`KIND_*` below),
//!   its high nibble the change of line from the value before (zigzag; 15: a varint follows).
//!   Strings, integers (their digits), floats and date-times are a string index (an integer of
//!   another radix than 10 has the radix in a byte before it); arrays a count and the values;
//!   tables a count and, per entry in key order, the key's string index and the value. A key
//!   is placed at its value's line.
//!
//! An error in a file fails the build with the file and the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

// MAGIC and the KIND_* tags.
include!("format.rs");

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dm = root.join("datamodel");
    println!("cargo:rerun-if-changed=datamodel/compile.rs");
    println!("cargo:rerun-if-changed=datamodel/format.rs");
    println!("cargo:rerun-if-changed=datamodel/tr181.toml");
    println!("cargo:rerun-if-changed=datamodel/tr098.toml");
    println!("cargo:rerun-if-changed=datamodel/bindings");
    let mut files = vec![dm.join("tr181.toml"), dm.join("tr098.toml")];
    collect(&dm.join("bindings"), &mut files);
    let mut texts = Vec::new();
    for path in &files {
        // Named with `/` whatever the build host's separator (the agent looks them up so).
        let relative: Vec<String> = path
            .strip_prefix(&dm)
            .expect("under datamodel/")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let name = format!("datamodel/{}", relative.join("/"));
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        texts.push((name, text));
    }
    let mut parsed = Vec::new();
    for (name, text) in &texts {
        let root = DeTable::parse(text).unwrap_or_else(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            fail(&format!("{name}:{line}: {}", e.message().trim()))
        });
        parsed.push((name.as_str(), text.as_str(), root));
    }
    let mut blob = Blob::default();
    for (name, _, root) in &parsed {
        blob.count(name);
        blob.count_table(root.get_ref());
    }
    let order = blob.order();
    let mut out = MAGIC.to_vec();
    varint(&mut out, order.len() as u64);
    for s in &order {
        varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    varint(&mut out, parsed.len() as u64);
    for (name, text, root) in &parsed {
        let mut enc = Encoder {
            index: &blob.index,
            newlines: newlines(text),
            line: 0,
            out: Vec::new(),
        };
        enc.value_of_table(root.span().start, root.get_ref());
        varint(&mut out, blob.index[*name] as u64);
        varint(&mut out, enc.out.len() as u64);
        out.extend_from_slice(&enc.out);
    }
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("datamodel.bin");
    std::fs::write(&dest, &out).unwrap_or_else(|e| fail(&format!("{}: {e}", dest.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// Every `*.toml` under `dir`, in name order.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())))
        .map(|e| {
            e.unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())))
                .path()
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// The offsets of the text's newlines.
fn newlines(text: &str) -> Vec<usize> {
    text.bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect()
}

/// The line (1-based) of a byte offset, as the text's reader counts it.
fn line_of(text: &str, offset: usize) -> usize {
    newlines(text).partition_point(|&nl| nl < offset) + 1
}

/// The strings of every file, counted.
#[derive(Default)]
struct Blob {
    uses: HashMap<String, usize>,
    index: HashMap<String, usize>,
}

impl Blob {
    fn count(&mut self, s: &str) {
        *self.uses.entry(s.to_string()).or_default() += 1;
    }

    fn count_table(&mut self, t: &DeTable<'_>) {
        for (k, v) in t {
            self.count(k.get_ref());
            self.count_value(v.get_ref());
        }
    }

    fn count_value(&mut self, v: &DeValue<'_>) {
        match v {
            DeValue::String(s) => self.count(s),
            DeValue::Integer(i) => self.count(i.as_str()),
            DeValue::Float(f) => self.count(f.as_str()),
            DeValue::Datetime(d) => self.count(&d.to_string()),
            DeValue::Boolean(_) => {}
            DeValue::Array(a) => a.iter().for_each(|v| self.count_value(v.get_ref())),
            DeValue::Table(t) => self.count_table(t),
        }
    }

    /// The strings, most used first (then by text, so the blob is the same at every build),
    /// and their indexes.
    fn order(&mut self) -> Vec<String> {
        let mut all: Vec<(&String, &usize)> = self.uses.iter().collect();
        all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let order: Vec<String> = all.into_iter().map(|(s, _)| s.clone()).collect();
        self.index = order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        order
    }
}

struct Encoder<'a> {
    index: &'a HashMap<String, usize>,
    newlines: Vec<usize>,
    /// The line of the value written last.
    line: usize,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn tag(&mut self, kind: u8, offset: usize) {
        let line = self.newlines.partition_point(|&nl| nl < offset) + 1;
        let delta = line as i64 - self.line as i64;
        self.line = line;
        let zigzag = ((delta << 1) ^ (delta >> 63)) as u64;
        if zigzag < 15 {
            self.out.push(kind | (zigzag as u8) << 4);
        } else {
            self.out.push(kind | 15 << 4);
            varint(&mut self.out, zigzag);
        }
    }

    fn string(&mut self, s: &str) {
        varint(&mut self.out, self.index[s] as u64);
    }

    fn value(&mut self, v: &Spanned<DeValue<'_>>) {
        let at = v.span().start;
        match v.get_ref() {
            DeValue::String(s) => {
                self.tag(KIND_STRING, at);
                self.string(s);
            }
            DeValue::Integer(i) if i.radix() == 10 => {
                self.tag(KIND_INTEGER, at);
                self.string(i.as_str());
            }
            DeValue::Integer(i) => {
                self.tag(KIND_INTEGER_RADIX, at);
                self.out.push(i.radix() as u8);
                self.string(i.as_str());
            }
            DeValue::Float(f) => {
                self.tag(KIND_FLOAT, at);
                self.string(f.as_str());
            }
            DeValue::Boolean(b) => self.tag(if *b { KIND_TRUE } else { KIND_FALSE }, at),
            DeValue::Datetime(d) => {
                self.tag(KIND_DATETIME, at);
                self.string(&d.to_string());
            }
            DeValue::Array(a) => {
                self.tag(KIND_ARRAY, at);
                varint(&mut self.out, a.len() as u64);
                for v in a.iter() {
                    self.value(v);
                }
            }
            DeValue::Table(t) => self.value_of_table(at, t),
        }
    }

    fn value_of_table(&mut self, at: usize, t: &DeTable<'_>) {
        self.tag(KIND_TABLE, at);
        varint(&mut self.out, t.len() as u64);
        for (k, v) in t {
            self.string(k.get_ref());
            self.value(v);
        }
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
