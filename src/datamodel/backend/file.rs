//! The `file` backend: values read from sysfs, procfs and plain files (issue 3, "Backends:
//! sysfs / procfs / files"; the key grammar is below and in `datamodel/README.md`). It
//! serves the TR-181 parameters that live in the kernel rather than in the configuration:
//! `Device.DeviceInfo` (UpTime, MemoryStatus, ProcessStatus, release info), the `Stats.` of
//! `Ethernet.Interface`, `IP.Interface` and `WiFi.SSID`, link state and MAC addresses, the
//! kernel routing table (`Routing.Router.{i}.IPv4Forwarding`), `Hosts.Host` from the DHCP
//! leases and ARP table, `DNS.Client.Server`, `Users.User`.
//!
//! Keys (every path is absolute and read under [`Platform::root`]):
//!
//! | key | value |
//! |---|---|
//! | `PATH` | the file's content, trailing whitespace trimmed |
//! | `PATH:FIELD` | the value of the first line `FIELD: value` or `FIELD=value`, trimmed, one pair of quotes removed |
//! | `PATH#SPEC[KEY].COL` | column `COL` (1-based) of the row whose key is `KEY` in the table file `PATH#SPEC` |
//! | `PATH/*?CONDS#count` | how many entries of directory `PATH` match the conditions |
//!
//! Table keys (instances):
//!
//! - `PATH/*` or `PATH/*?COND&COND…`: the entries of directory `PATH` (names in natural order:
//!   `lan2` before `lan10`, `9` before `10`; names starting with `.` and names that are not
//!   UTF-8 are never listed). A COND is `SUB` (the entry has `SUB`, a file or directory,
//!   symbolic links followed), `!SUB` (it has not), `SUB=VALUE` (the file `SUB` of the entry
//!   reads as `VALUE`) or `name=GLOB` (the entry's name matches; `*`, `?` and classes such as
//!   `[0-9]`, `[a-z_]`, `[!0-9]`).
//! - `PATH#SPEC`: the rows of a table file. `SPEC` is `KEYCOLS` (`1`, or `1+2+8`: the columns
//!   that make the instance key, joined with `/`) followed by options: `;skip=N` (header
//!   lines), `;sep=C` (one character separating columns, instead of runs of whitespace; e.g.
//!   `:` for `/etc/passwd`), `;where=COL=VALUE` (only rows whose column equals `VALUE`; may be
//!   repeated). Empty lines, rows without every key column and rows repeating a key already
//!   seen are skipped.
//!
//! Consistency (issue 3: "within one session, reads come from one consistent snapshot"):
//! anything made of rows — directory listings (and their `#count`) and table files (their
//! instances and their `[KEY].COL` values) — is read once and kept until [`Backend::invalidate`]
//! or [`Backend::end_session`], so a GetParameterNames and the GetParameterValues that follows
//! see the same instances with the same row values. Single values (`PATH`, `PATH:FIELD`:
//! counters, link state, uptime, memory) are read afresh by each [`Backend::read`] call, each
//! file once per call however many keys use it.
//!
//! Bounds: at most [`MAX_FILE_BYTES`] of a file are read. A longer file is cut after its last
//! complete line within the bound: line-based keys see those lines, and `PATH` of it has no
//! value (a value cut in the middle would be wrong). Tables keep at most [`MAX_ROWS`] rows,
//! directory scans look at most at [`MAX_DIR_SCAN`] entries. Only regular files are opened (a
//! FIFO or a device never blocks the agent). Content that is not UTF-8 is read lossily and
//! control characters other than newline and tab (the NULs of `/proc/PID/cmdline`) become
//! spaces, so a value is always printable in the SOAP envelope.
//!
//! Limits of the grammar: a path cannot contain `#`, and one whose last component contains `:`
//! reads as `PATH:FIELD`; a `where` value cannot contain `[`. A key with a `..` component is
//! refused at load time by [`check_key`], and after the engine has filled in the placeholders
//! it reads as absent (an instance key cannot lead outside the root).
//!
//! The backend is read-only: `writable` and `creatable` are false, nothing is watched (the
//! agent polls these values for notifications).

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Backend, Cx, Platform};
use crate::cwmp::fault::Fault;

/// The most bytes read of one file.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The most rows (table file) or entries (directory listing) one table has.
pub const MAX_ROWS: usize = 4096;

/// The most directory entries looked at for one listing.
pub const MAX_DIR_SCAN: usize = 16384;

/// The longest key accepted.
const MAX_KEY: usize = 4096;

/// The highest column number a key may name.
const MAX_COL: usize = 4096;

/// Reads sysfs, procfs and files under a root.
pub struct FileBackend {
    root: PathBuf,
    /// Directory listings of the current snapshot, by listing key (`PATH/*?CONDS`).
    listings: HashMap<String, Listing>,
    /// Table files of the current snapshot, by table key (`PATH#SPEC`).
    tables: HashMap<String, Rows>,
}

impl FileBackend {
    pub fn new(platform: &Platform) -> FileBackend {
        FileBackend {
            root: platform.root.clone(),
            listings: HashMap::new(),
            tables: HashMap::new(),
        }
    }

    /// The value of one key; `None` when there is none (or the key cannot be read).
    fn value(&mut self, call: &mut CallCache, key: &str) -> Option<String> {
        if escapes(key) {
            log::warn!("file key {key:?}: `..` is not allowed");
            return None;
        }
        let parsed = match parse(key) {
            Ok(k) => k,
            Err(m) => {
                log::warn!("file key {key:?}: {m}");
                return None;
            }
        };
        match parsed {
            Key::Whole(path) => {
                let f = call.file(&self.root, path)?;
                if !f.complete {
                    log::warn!("{path}: longer than {MAX_FILE_BYTES} bytes");
                    return None;
                }
                Some(clean(&f.text))
            }
            Key::Field(path, name) => call.file(&self.root, path)?.field(name).map(clean),
            Key::Cell {
                path,
                spec_text,
                spec,
                row,
                col,
            } => {
                let table = format!("{path}#{spec_text}");
                self.rows(&table, path, &spec, call)
                    .cell(row, col)
                    .map(clean)
            }
            Key::Count {
                listing,
                dir,
                conds,
            } => Some(self.listing(listing, dir, &conds).matched.to_string()),
            Key::Listing { .. } | Key::Rows { .. } => {
                log::warn!("file key {key:?} names a table, not a value");
                None
            }
        }
    }

    /// The snapshot of a directory listing, read now if it is not in the snapshot yet.
    fn listing(&mut self, key: &str, dir: &str, conds: &[Cond<'_>]) -> &Listing {
        let root = &self.root;
        self.listings
            .entry(key.to_string())
            .or_insert_with(|| list_dir(root, dir, conds))
    }

    /// The snapshot of a table file, read now if it is not in the snapshot yet.
    fn rows(&mut self, table: &str, path: &str, spec: &Spec<'_>, call: &mut CallCache) -> &Rows {
        let root = &self.root;
        self.tables.entry(table.to_string()).or_insert_with(|| {
            call.file(root, path)
                .map_or_else(Rows::default, |f| Rows::parse(&f.text, spec))
        })
    }
}

/// Checks a binding key when the definitions are loaded: one of the value or table forms of
/// the module documentation. Placeholders (`{i}`, `{uci:…}`) count as one path component or
/// one name and are not looked into.
pub fn check_key(key: &str) -> Result<(), String> {
    let masked = mask_placeholders(key).map_err(|m| format!("file key {key:?}: {m}"))?;
    parse(&masked)
        .map(|_| ())
        .map_err(|m| format!("file key {key:?}: {m}"))
}

impl Backend for FileBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        let mut call = CallCache::default();
        Ok(keys.iter().map(|k| self.value(&mut call, k)).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        if escapes(table) {
            log::warn!("file key {table:?}: `..` is not allowed");
            return Ok(Some(Vec::new()));
        }
        match parse(table) {
            Ok(Key::Listing { dir, conds }) => {
                Ok(Some(self.listing(table, dir, &conds).names.clone()))
            }
            Ok(Key::Rows { path, spec }) => {
                let mut call = CallCache::default();
                let rows = self.rows(table, path, &spec, &mut call);
                Ok(Some(rows.rows.iter().map(|(k, _)| k.clone()).collect()))
            }
            Ok(_) => Err(Fault::internal(format!(
                "file key {table:?} is not a table (`PATH/*?COND&…` or `PATH#SPEC`)"
            ))),
            Err(m) => Err(Fault::internal(format!("file key {table:?}: {m}"))),
        }
    }

    fn end_session(&mut self, _cx: &mut Cx<'_>) -> Vec<Fault> {
        self.invalidate();
        Vec::new()
    }

    fn invalidate(&mut self) {
        self.listings.clear();
        self.tables.clear();
    }
}

// ---- keys ------------------------------------------------------------------------------------

/// A parsed key, borrowing from its text.
#[derive(Debug)]
enum Key<'a> {
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
struct Spec<'a> {
    key_cols: Vec<usize>,
    skip: usize,
    sep: Option<char>,
    wheres: Vec<(usize, &'a str)>,
}

/// A condition on a directory entry.
#[derive(Debug)]
enum Cond<'a> {
    Has(&'a str),
    Lacks(&'a str),
    Equals(&'a str, &'a str),
    Name(Vec<Tok>),
}

fn parse(key: &str) -> Result<Key<'_>, String> {
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
fn parse_listing(s: &str) -> Result<Option<(&str, Vec<Cond<'_>>)>, String> {
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

fn parse_cond(c: &str) -> Result<Cond<'_>, String> {
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

fn parse_spec(s: &str) -> Result<Spec<'_>, String> {
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
fn parse_col(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_COL).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("column {s:?}: a number from 1 to {MAX_COL}")),
    }
}

fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("{p:?} is not an absolute path"));
    }
    if p.contains(['*', '?']) {
        return Err(format!(
            "{p:?}: wildcards only in a directory listing `PATH/*?name=GLOB`"
        ));
    }
    check_components(p)
}

/// A path relative to a directory entry (a condition's `SUB`).
fn check_sub(s: &str) -> Result<(), String> {
    if s.is_empty() || s.starts_with('/') || s.contains(['*', '?']) {
        return Err(format!(
            "condition {s:?}: a relative path inside the entry (or `name=GLOB`)"
        ));
    }
    check_components(s)
}

fn check_components(p: &str) -> Result<(), String> {
    if p.split('/').any(|c| c == "..") {
        return Err(format!("{p:?}: `..` is not allowed"));
    }
    if p.contains('\0') {
        return Err(format!("{p:?}: NUL in a path"));
    }
    Ok(())
}

/// Whether a key (placeholders filled in) has a `..` path component anywhere.
fn escapes(key: &str) -> bool {
    key.split(['/', '?', '&', '#', '=', '[', ']'])
        .any(|c| c == "..")
}

/// Replaces each `{…}` placeholder (nested ones included) by one inert character, for
/// [`check_key`].
fn mask_placeholders(key: &str) -> Result<String, String> {
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
enum Tok {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    One,
    Lit(char),
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class(bool, Vec<(char, char)>),
}

fn parse_glob(g: &str) -> Result<Vec<Tok>, String> {
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
    fn matches_char(&self, c: char) -> bool {
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
fn glob_matches(toks: &[Tok], name: &str) -> bool {
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

// ---- reading ---------------------------------------------------------------------------------

/// What one [`Backend::read`] call has read so far, by full path.
#[derive(Default)]
struct CallCache {
    files: HashMap<PathBuf, Option<FileText>>,
}

impl CallCache {
    fn file(&mut self, root: &Path, path: &str) -> Option<&FileText> {
        let full = resolve(root, path)?;
        self.files
            .entry(full)
            .or_insert_with_key(|p| read_bounded(p))
            .as_ref()
    }
}

/// The text of a file, cut at [`MAX_FILE_BYTES`].
struct FileText {
    text: String,
    /// False when the file was longer than the bound (the text ends at the last whole line).
    complete: bool,
    /// `FIELD: value` / `FIELD=value` lines, first occurrence of each, parsed on first use.
    fields: OnceCell<HashMap<String, String>>,
}

impl FileText {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get_or_init(|| parse_fields(&self.text))
            .get(name)
            .map(String::as_str)
    }
}

/// The full path of an absolute key path under the root; `None` for a path that is not
/// absolute or would leave the root.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(root.join(rel))
}

/// Reads a regular file, at most [`MAX_FILE_BYTES`]; `None` when it is absent, not a regular
/// file, or unreadable (sysfs answers EINVAL for the `speed` of a link that is down).
fn read_bounded(path: &Path) -> Option<FileText> {
    if !fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let f = fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .ok()?;
    let complete = buf.len() <= MAX_FILE_BYTES;
    if !complete {
        buf.truncate(MAX_FILE_BYTES);
        let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        buf.truncate(end);
    }
    Some(FileText {
        text: String::from_utf8_lossy(&buf).into_owned(),
        complete,
        fields: OnceCell::new(),
    })
}

/// The `FIELD: value` and `FIELD=value` lines of a text (`/proc/meminfo`,
/// `/etc/openwrt_release`, `/proc/PID/status`): the first occurrence of each field.
fn parse_fields(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(pos) = line.find([':', '=']) else {
            continue;
        };
        let (name, rest) = line.split_at(pos);
        let name = name.trim();
        if name.is_empty() || out.contains_key(name) {
            continue;
        }
        let value = rest.get(1..).unwrap_or("").trim();
        out.insert(name.to_string(), unquote(value).to_string());
    }
    out
}

/// Removes one pair of surrounding `"` or `'`.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// A value as sent: control characters (NULs of `/proc/PID/cmdline`, junk) become spaces,
/// trailing whitespace goes.
fn clean(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    s.trim_end().to_string()
}

/// The rows of a table file: `(key, line)` in file order.
#[derive(Default)]
struct Rows {
    sep: Option<char>,
    rows: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Rows {
    fn parse(text: &str, spec: &Spec<'_>) -> Rows {
        let mut out = Rows {
            sep: spec.sep,
            ..Rows::default()
        };
        for line in text.lines().skip(spec.skip) {
            if out.rows.len() >= MAX_ROWS {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let wanted = spec
                .wheres
                .iter()
                .all(|&(c, v)| column(line, spec.sep, c).unwrap_or("") == v);
            if !wanted {
                continue;
            }
            let parts: Option<Vec<&str>> = spec
                .key_cols
                .iter()
                .map(|&c| column(line, spec.sep, c))
                .collect();
            let Some(parts) = parts else {
                continue;
            };
            let key = parts.join("/");
            if key.is_empty() || out.index.contains_key(&key) {
                continue;
            }
            out.index.insert(key.clone(), out.rows.len());
            out.rows.push((key, line.to_string()));
        }
        out
    }

    fn cell(&self, row: &str, col: usize) -> Option<&str> {
        let &i = self.index.get(row)?;
        let (_, line) = self.rows.get(i)?;
        column(line, self.sep, col)
    }
}

/// Column `n` (1-based) of a line.
fn column(line: &str, sep: Option<char>, n: usize) -> Option<&str> {
    let i = n.checked_sub(1)?;
    match sep {
        None => line.split_whitespace().nth(i),
        Some(c) => line.split(c).nth(i),
    }
}

/// A directory listing of the snapshot.
#[derive(Default)]
struct Listing {
    /// The matching entries, in natural order, at most [`MAX_ROWS`].
    names: Vec<String>,
    /// How many entries matched (the `#count`).
    matched: usize,
}

fn list_dir(root: &Path, dir: &str, conds: &[Cond<'_>]) -> Listing {
    let Some(full) = resolve(root, dir) else {
        return Listing::default();
    };
    let Ok(entries) = fs::read_dir(&full) else {
        return Listing::default();
    };
    let mut names = Vec::new();
    for entry in entries.take(MAX_DIR_SCAN) {
        let Ok(entry) = entry else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let at = full.join(&name);
        if conds.iter().all(|c| c.holds(&at, &name)) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    let matched = names.len();
    names.truncate(MAX_ROWS);
    Listing { names, matched }
}

impl Cond<'_> {
    fn holds(&self, at: &Path, name: &str) -> bool {
        match self {
            Cond::Has(sub) => fs::metadata(at.join(sub)).is_ok(),
            Cond::Lacks(sub) => fs::metadata(at.join(sub)).is_err(),
            Cond::Equals(sub, value) => {
                read_bounded(&at.join(sub)).is_some_and(|f| f.complete && clean(&f.text) == *value)
            }
            Cond::Name(glob) => glob_matches(glob, name),
        }
    }
}

/// Natural order: runs of digits compare as numbers (`lan2` < `lan10`, `9` < `10`), the rest
/// byte by byte; equal-looking names (`01`, `1`) fall back to plain order.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (nx, rx) = x.split_at(x.iter().take_while(|b| b.is_ascii_digit()).count());
                let (ny, ry) = y.split_at(y.iter().take_while(|b| b.is_ascii_digit()).count());
                let tx = trim_zeros(nx);
                let ty = trim_zeros(ny);
                let o = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if o != Ordering::Equal {
                    return o;
                }
                (x, y) = (rx, ry);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = x.get(1..).unwrap_or_default();
                y = y.get(1..).unwrap_or_default();
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&b| b == b'0').count();
    d.get(n..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn natural_order() {
        let mut v = vec!["lan10", "lan2", "br-lan", "10", "9", "lan1", "01", "1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["01", "1", "9", "10", "br-lan", "lan1", "lan2", "lan10"]);
    }

    #[test]
    fn fields_and_cleaning() {
        let f = parse_fields("Name:\tprocd\nDISTRIB_ID='OpenWrt'\nA=\"x:y\"\nName: again\n=odd\n");
        assert_eq!(f.get("Name").map(String::as_str), Some("procd"));
        assert_eq!(f.get("DISTRIB_ID").map(String::as_str), Some("OpenWrt"));
        assert_eq!(f.get("A").map(String::as_str), Some("x:y"));
        assert_eq!(f.len(), 3);
        assert_eq!(clean("/sbin/procd\0-s\0\n"), "/sbin/procd -s");
        assert_eq!(column("a  b\tc", None, 3), Some("c"));
        assert_eq!(column("a::c", Some(':'), 2), Some(""));
        assert_eq!(column("a", None, 0), None);
    }
}
