//! Reading files and directories under the platform root, bounded (regular files only, at
//! most [`MAX_FILE_BYTES`], [`MAX_ROWS`] rows, [`MAX_DIR_SCAN`] entries), and the pure parsing
//! of what was read (fields, table rows, natural order). This is where the backend touches the
//! file system.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::key::{glob_matches, Cond, Spec};

/// The most bytes read of one file.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The most rows (table file) or entries (directory listing) one table has.
pub const MAX_ROWS: usize = 4096;

/// The most directory entries looked at for one listing.
pub const MAX_DIR_SCAN: usize = 16384;

/// What one [`Backend::read`] call has read so far, by the path its keys name. A whole tree's
/// read holds hundreds of files here at once: an entry is the key's own text and the file's,
/// nothing more (the field index, on the few files that have one, is boxed).
#[derive(Default)]
pub(super) struct CallCache<'k> {
    files: HashMap<&'k str, Option<FileText>>,
}

impl<'k> CallCache<'k> {
    pub(super) fn file(&mut self, root: &Path, path: &'k str) -> Option<&FileText> {
        self.files
            .entry(path)
            .or_insert_with(|| read_bounded(&resolve(root, path)?, in_sysfs(path)))
            .as_ref()
    }
}

/// The text of a file, cut at [`MAX_FILE_BYTES`].
pub(super) struct FileText {
    pub(super) text: String,
    /// False when the file was longer than the bound (the text ends at the last whole line).
    pub(super) complete: bool,
    /// `FIELD: value` / `FIELD=value` lines, first occurrence of each, parsed on first use.
    /// Boxed: only a few files have one, and an empty map inline would cost every cached file
    /// 48 bytes (a whole tree's read holds hundreds).
    #[allow(clippy::box_collection)]
    pub(super) fields: OnceCell<Box<HashMap<String, String>>>,
}

impl FileText {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get_or_init(|| Box::new(parse_fields(&self.text)))
            .get(name)
            .map(String::as_str)
    }
}

/// Whether an absolute key path is in sysfs (under the root's `/sys/`).
pub(super) fn in_sysfs(path: &str) -> bool {
    path.starts_with("/sys/")
}

/// The full path of an absolute key path under the root; `None` for a path that is not
/// absolute or would leave the root.
pub(super) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(root.join(rel))
}

/// Reads a regular file, at most [`MAX_FILE_BYTES`]; `None` when it is absent, not a regular
/// file, or unreadable (sysfs answers EINVAL for the `speed` of a link that is down).
pub(super) fn read_bounded(path: &Path, sysfs: bool) -> Option<FileText> {
    let f = open_regular(path, sysfs)?;
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
        // Valid UTF-8 (nearly every file) is kept as read, without a copy.
        text: String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        complete,
        fields: OnceCell::new(),
    })
}

/// Opens a regular file to read; `None` for anything else, or when it cannot be opened.
///
/// Nothing but a regular file is opened where another account could have put something: the
/// path is first opened with `O_PATH` (which opens nothing for reading: no device's open runs,
/// no FIFO waits for a writer), what it names is looked at (`fstat`), and only a regular file
/// is then opened for reading, through `/proc/self/fd/N`: the file just looked at, not whatever
/// the path names by then (a link to a device swapped into `/tmp` between the look and the
/// open is never opened). In sysfs (`sysfs`: the key's path is under `/sys/`), which holds only
/// the kernel's regular files, directories and links within it, the file is opened at once and
/// looked at after: one path walk, where a GPV reads a few hundred such files (issue 19). Every
/// open is non-blocking and takes no controlling terminal.
fn open_regular(path: &Path, sysfs: bool) -> Option<fs::File> {
    use nix::fcntl::OFlag;
    let read = |p: &Path| {
        fs::File::options()
            .read(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
            .open(p)
            .ok()
    };
    let regular = |f: &fs::File| f.metadata().is_ok_and(|m| m.is_file());
    if sysfs {
        return read(path).filter(regular);
    }
    let at = fs::File::options()
        .read(true)
        .custom_flags(OFlag::O_PATH.bits())
        .open(path)
        .ok()
        .filter(regular)?;
    read(Path::new(&format!("/proc/self/fd/{}", at.as_raw_fd()))).filter(regular)
}

/// The `FIELD: value` and `FIELD=value` lines of a text (`/proc/meminfo`,
/// `/etc/openwrt_release`, `/proc/PID/status`): the first occurrence of each field.
pub(super) fn parse_fields(text: &str) -> HashMap<String, String> {
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
pub(super) fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// A value as sent: control characters (NULs of `/proc/PID/cmdline`, junk) become spaces,
/// trailing whitespace goes.
pub(super) fn clean(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    s.extend(v.chars().map(|c| {
        if c.is_control() && !matches!(c, '\n' | '\t') {
            ' '
        } else {
            c
        }
    }));
    s.truncate(s.trim_end().len());
    s
}

/// The rows of a table file: `(key, line)` in file order.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) sep: Option<char>,
    pub(super) rows: Vec<(String, String)>,
    pub(super) index: HashMap<String, usize>,
}

impl Rows {
    pub(super) fn parse(text: &str, spec: &Spec<'_>) -> Rows {
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

    pub(super) fn cell(&self, row: &str, col: usize) -> Option<&str> {
        let &i = self.index.get(row)?;
        let (_, line) = self.rows.get(i)?;
        column(line, self.sep, col)
    }
}

/// Column `n` (1-based) of a line.
pub(super) fn column(line: &str, sep: Option<char>, n: usize) -> Option<&str> {
    let i = n.checked_sub(1)?;
    match sep {
        None => line.split_whitespace().nth(i),
        Some(c) => line.split(c).nth(i),
    }
}

/// A directory listing of the snapshot.
#[derive(Default)]
pub(super) struct Listing {
    /// The matching entries, in natural order, at most [`MAX_ROWS`].
    pub(super) names: Vec<String>,
    /// How many entries matched (the `#count`).
    pub(super) matched: usize,
}

pub(super) fn list_dir(root: &Path, dir: &str, conds: &[Cond<'_>]) -> Listing {
    let Some(full) = resolve(root, dir) else {
        return Listing::default();
    };
    let Ok(entries) = fs::read_dir(&full) else {
        return Listing::default();
    };
    let sysfs = in_sysfs(dir);
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
        if conds.iter().all(|c| c.holds(&at, &name, sysfs)) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    let matched = names.len();
    names.truncate(MAX_ROWS);
    Listing { names, matched }
}

impl Cond<'_> {
    /// Whether the entry `name` at `at` meets the condition; `sysfs` as [`read_bounded`] has it.
    pub(super) fn holds(&self, at: &Path, name: &str, sysfs: bool) -> bool {
        match self {
            Cond::Has(sub) => fs::metadata(at.join(sub)).is_ok(),
            Cond::Lacks(sub) => fs::metadata(at.join(sub)).is_err(),
            Cond::Equals(sub, value) => read_bounded(&at.join(sub), sysfs)
                .is_some_and(|f| f.complete && clean(&f.text) == *value),
            Cond::Name(glob) => glob_matches(glob, name),
        }
    }
}

/// Natural order: runs of digits compare as numbers (`lan2` < `lan10`, `9` < `10`), the rest
/// byte by byte; equal-looking names (`01`, `1`) fall back to plain order.
pub(super) fn natural_cmp(a: &str, b: &str) -> Ordering {
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

pub(super) fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&b| b == b'0').count();
    d.get(n..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
