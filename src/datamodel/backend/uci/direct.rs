//! A package read from its file in the agent's process, without starting `uci`, when the file
//! is in the form `uci` itself writes and libuci's reading of it is certain; anything else is
//! left to `uci -n export` ([`read`] says `None`).
//!
//! Starting `uci` was the costliest step of a GetParameterValues: a process start, libuci
//! loading every package, the export printed and parsed again (about 3–4 ms of a 25 ms GPV on
//! the host, far more on a router's CPU). What is read here is exactly what `uci -n export PKG`
//! gives, which `tests/uci.rs` checks against the real `uci` on generated files:
//!
//! - No changes to apply: neither the agent's save directory nor libuci's default one
//!   ([`DEFAULT_SAVEDIR`], where LuCI keeps what is saved but not applied) holds a change file
//!   for the package that is not empty (`uci commit` empties it and leaves it there).
//! - The file is a regular file (followed through links, as libuci does) of at most
//!   [`MAX_FILE`] bytes, valid UTF-8, with no control character but tab and line break, and no
//!   writer holds libuci's lock on it (`flock`, taken shared here as libuci does, never waited
//!   for).
//! - Every line is blank, a comment (`#` first), or one of `package NAME`, `config TYPE`,
//!   `config TYPE NAME`, `option NAME VALUE`, `list NAME VALUE`, the command word as written.
//!   Words are separated by spaces and tabs and made of unquoted runs, `'…'` (which may span
//!   lines, as uci writes a value holding a line break), `"…"` and `\c`, joined when adjacent
//!   (`'it'\''s'`); a `\` takes the next character as it is (in `"…"` too).
//! - Names as libuci's parser checks them (package: letters, digits, `_`, `-`; section and
//!   option: letters, digits, `_`; type: printable ASCII but `#`, quotes, `\` and `;`), a
//!   section name given once, an option given once (a list's items in order), no option with an
//!   empty value; at most [`MAX_SECTIONS`] sections and [`MAX_OPTIONS`] options in each.
//!
//! Outside that (a `;` joining commands, `#` after a word, a `\` ending a line, an abbreviated
//! command, a name redeclared, an empty value, a parse error…) libuci has rules of its own
//! (merges, moves, silent drops) and `uci` reads the package, as it did for every package
//! before. Anonymous sections get the names libuci gives them ([`anonymous_name`]).
//!
//! Who controls the input: the files under the uci config directory, root's on a router; and
//! the save directories, where an account could plant a change file when `/tmp/.uci` does not
//! exist yet (uci applies such files on every run, as it always did). Change files are only
//! looked at (`lstat`, a link not followed), never opened: one that is not an empty regular
//! file leaves the package to uci. A package file is opened only when it is a regular file, and
//! non-blocking (a FIFO put in its place cannot hold the agent), its lock never waited for. The
//! reading is linear in the file and bounded by [`MAX_FILE`], what it builds by the counts
//! above; nothing here panics or follows a path out of the config directory (package names are
//! checked first).

use std::collections::HashSet;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::export::{anonymous_name, Package, Section, Value};
use crate::datamodel::scan::byte_at;

/// libuci's own save directory (`UCI_SAVEDIR` as OpenWrt builds it): `uci` applies the change
/// files other tools leave there on every read, whatever `-t` says.
const DEFAULT_SAVEDIR: &str = "/tmp/.uci";
/// The largest file read here: a router's largest package (a firewall with hundreds of rules)
/// is tens of KiB. A larger one is uci's, whose run has a deadline.
pub(super) const MAX_FILE: u64 = 1024 * 1024;
/// The most sections of a package, and options of a section, read here (the same: beyond, the
/// package is uci's). What is built from a file stays within a few times its size, and the
/// search for an option's earlier occurrence within a section stays short.
const MAX_SECTIONS: usize = 8192;
const MAX_OPTIONS: usize = 256;

/// The package `pkg` of `config` as `uci -c CONFIG -t SAVEDIR -n export PKG` would give it, or
/// `None` when `uci` must read it (see the module documentation). The change files looked for
/// are those uci reads: in `savedir` and in [`DEFAULT_SAVEDIR`]. A package with no file and no
/// change file is empty, as `uci` says ("Entry not found").
pub(super) fn read(config: &Path, savedir: &Path, pkg: &str) -> Option<Package> {
    if pkg.is_empty()
        || !pkg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    // A change file is libuci's to apply. An empty one changes nothing: `uci commit` leaves
    // the file empty behind it (on a router, after every change LuCI applies). Not followed: a
    // link to a file whose size says 0 but that has content (procfs) is uci's.
    if [savedir, Path::new(DEFAULT_SAVEDIR)].iter().any(|d| {
        match std::fs::symlink_metadata(d.join(pkg)) {
            Ok(m) => !(m.is_file() && m.len() == 0),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }) {
        return None;
    }
    let path = config.join(pkg);
    // Only a regular file is opened (as libuci checks first), non-blocking in case it was
    // replaced since: nothing in the directory can hold the agent or be a device it opens.
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        // Not there, or a dangling link: uci finds no package either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Package::default()),
        _ => return None,
    }
    let file = File::options()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    // A writer holding libuci's lock (uci commit): uci reads it once the writer is done.
    let mut file = Flock::lock(file, FlockArg::LockSharedNonblock).ok()?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    Read::by_ref(&mut *file)
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    drop(file);
    if bytes.len() as u64 > MAX_FILE {
        return None;
    }
    parse(std::str::from_utf8(&bytes).ok()?)
}

/// Parses a file in the subset described in the module documentation; `None` outside it.
pub(super) fn parse(text: &str) -> Option<Package> {
    if text.bytes().any(|b| b < 0x20 && b != b'\t' && b != b'\n') {
        return None;
    }
    let mut p = Package::default();
    // The names given so far, generated ones included, by their hash: a name given again is
    // libuci's merge (two names of one hash, never seen, would only leave the file to uci).
    let keys = std::hash::RandomState::new();
    let mut names: HashSet<u64> = HashSet::new();
    let mut lexer = Words { text, pos: 0 };
    let mut words: Vec<String> = Vec::with_capacity(3);
    loop {
        let command = match lexer.line(&mut words)? {
            Line::End => break,
            Line::Blank => continue,
            Line::Command(c) => c,
        };
        match (command, words.as_mut_slice()) {
            ("package", [name]) if is_name(name, true) => {}
            _ if command == "config" && p.sections.len() >= MAX_SECTIONS => return None,
            ("config", [ty]) if is_type(ty) => {
                let name = anonymous_name(p.sections.len(), ty);
                names.insert(keys.hash_one(&name));
                p.sections.push(Section {
                    name,
                    ty: std::mem::take(ty),
                    options: Vec::new(),
                });
            }
            ("config", [ty, name])
                if is_type(ty) && is_name(name, false) && names.insert(keys.hash_one(&*name)) =>
            {
                p.sections.push(Section {
                    name: std::mem::take(name),
                    ty: std::mem::take(ty),
                    options: Vec::new(),
                });
            }
            // libuci drops an option set empty (or deletes the one before), but keeps an
            // empty list item.
            (kind @ ("option" | "list"), [name, value])
                if is_name(name, false) && !(kind == "option" && value.is_empty()) =>
            {
                let s = p.sections.last_mut()?;
                if s.options.len() >= MAX_OPTIONS {
                    return None;
                }
                let value = std::mem::take(value);
                match (kind, s.options.iter_mut().find(|(n, _)| n == name)) {
                    ("list", Some((_, Value::List(items)))) => items.push(value),
                    ("list", None) => s
                        .options
                        .push((std::mem::take(name), Value::List(vec![value]))),
                    ("option", None) => s.options.push((std::mem::take(name), Value::One(value))),
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    p.shrink_to_fit();
    Some(p)
}

/// libuci's name check: letters, digits and `_` (and `-` in a package name), not empty.
fn is_name(s: &str, package: bool) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (package && b == b'-'))
}

/// libuci's type check (printable ASCII without the blank, not empty), less the characters
/// `uci export` would print unquoted into a line that reads otherwise (`#`, quotes, `\`, `;`):
/// no router has such a type, and the answer must be the one uci's output gives.
fn is_type(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"#'\"\\;".contains(&b))
}

/// The commands of a file, one per line outside quotes.
struct Words<'a> {
    text: &'a str,
    pos: usize,
}

/// What [`Words::line`] found.
enum Line<'a> {
    End,
    /// A blank line or a comment.
    Blank,
    /// The command word as written; the arguments are in the caller's vector.
    Command(&'a str),
}

impl<'a> Words<'a> {
    /// The next line, its arguments in `args`; `None` outside the subset.
    fn line(&mut self, args: &mut Vec<String>) -> Option<Line<'a>> {
        args.clear();
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return Some(Line::End);
        }
        self.blanks();
        // The command word, as libuci splits it (at blanks only, no quoting).
        let start = self.pos;
        while bytes
            .get(self.pos)
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\n'))
        {
            self.pos += 1;
        }
        let first = self.text.get(start..self.pos)?;
        if first.starts_with('#') {
            // A comment: to the end of the line.
            self.pos = self
                .text
                .get(start..)
                .and_then(|r| r.find('\n'))
                .map_or(bytes.len(), |n| start + n + 1);
            return Some(Line::Blank);
        }
        loop {
            self.blanks();
            match bytes.get(self.pos) {
                None => break,
                Some(b'\n') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => {
                    let w = self.word()?;
                    args.push(w);
                }
            }
        }
        Some(if first.is_empty() {
            Line::Blank
        } else {
            Line::Command(first)
        })
    }

    fn blanks(&mut self) {
        while matches!(self.text.as_bytes().get(self.pos), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// One argument, at a character that is not blank: `None` for what is outside the subset.
    fn word(&mut self) -> Option<String> {
        /// What ends an unquoted run, and a run inside `"…"`.
        const UNQUOTED: [bool; 256] = stops(b" \t\n#;'\"\\");
        const DOUBLE: [bool; 256] = stops(b"\"\\\n");
        let bytes = self.text.as_bytes();
        let mut out = String::new();
        loop {
            match *bytes.get(self.pos).unwrap_or(&b'\n') {
                b' ' | b'\t' | b'\n' => return Some(out),
                b'#' | b';' => return None,
                b'\'' => {
                    let rest = self.text.get(self.pos + 1..)?;
                    let close = byte_at(rest, b'\'')?;
                    out.push_str(rest.get(..close)?);
                    self.pos += close + 2;
                }
                b'"' => {
                    self.pos += 1;
                    loop {
                        match *bytes.get(self.pos)? {
                            b'"' => {
                                self.pos += 1;
                                break;
                            }
                            b'\n' => return None,
                            b'\\' => {
                                self.pos += 1;
                                self.escaped(&mut out)?;
                            }
                            _ => self.plain(&mut out, &DOUBLE),
                        }
                    }
                }
                b'\\' => {
                    self.pos += 1;
                    self.escaped(&mut out)?;
                }
                _ => self.plain(&mut out, &UNQUOTED),
            }
        }
    }

    /// The character after a `\`, as it is; `None` at a line's end (libuci joins the lines).
    fn escaped(&mut self, out: &mut String) -> Option<()> {
        let c = self.text.get(self.pos..)?.chars().next()?;
        if c == '\n' {
            return None;
        }
        out.push(c);
        self.pos += c.len_utf8();
        Some(())
    }

    /// A run of characters up to a byte `stop` marks (or the end), appended.
    fn plain(&mut self, out: &mut String, stop: &[bool; 256]) {
        let rest = self.text.get(self.pos..).unwrap_or("");
        let n = rest
            .bytes()
            .position(|b| stop[usize::from(b)])
            .unwrap_or(rest.len());
        out.push_str(rest.get(..n).unwrap_or(""));
        self.pos += n;
    }
}

/// A table of the bytes in `set`, for [`Words::plain`].
const fn stops(set: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Value {
        Value::One(v.into())
    }

    #[test]
    fn what_uci_writes_is_read() {
        // As `uci commit` writes a package, with a quote, a line break and a list.
        let text = "\npackage t\n\nconfig rule\n\toption name 'it'\\''s'\n\toption v 'a\nb'\n\n\
                    config zone 'lan'\n\tlist net 'x'\n\tlist net 'y'\n";
        let p = parse(text).unwrap();
        assert_eq!(p.sections.len(), 2);
        let (a, b) = (&p.sections[0], &p.sections[1]);
        assert_eq!((a.name.as_str(), a.ty.as_str()), ("cfg0192bd", "rule"));
        assert_eq!(
            a.options,
            [("name".into(), one("it's")), ("v".into(), one("a\nb"))]
        );
        assert_eq!((b.name.as_str(), b.ty.as_str()), ("lan", "zone"));
        assert_eq!(
            b.options,
            [("net".into(), Value::List(vec!["x".into(), "y".into()]))]
        );
    }

    #[test]
    fn what_a_person_writes_in_the_plain_forms_is_read() {
        let text = "# a comment\n  \t\nconfig  interface\tlan   # not a comment? no: declined\n";
        assert_eq!(parse(text), None);
        let text = "# a comment\n  \t\nconfig  interface\tlan\n  option proto \"static\"\n\
                    \toption ipaddr 192.168.1.1\n\toption dns \"a\\\"b\"'c'\\ d\n";
        let p = parse(text).unwrap();
        assert_eq!(p.sections[0].name, "lan");
        assert_eq!(
            p.sections[0].options,
            [
                ("proto".into(), one("static")),
                ("ipaddr".into(), one("192.168.1.1")),
                ("dns".into(), one("a\"bc d")),
            ]
        );
        assert_eq!(parse(""), Some(Package::default()));
        assert_eq!(parse("# nothing\n"), Some(Package::default()));
    }

    /// Each of these has a libuci rule of its own (or is an error there): left to uci.
    #[test]
    fn anything_else_is_left_to_uci() {
        for text in [
            "config a\n\toption x 1; option y 2\n",
            "config a\n\toption x 1 # trailing\n",
            "config a\n\toption x '1\n",
            "config a\n\toption x \"1\n2\"\n",
            "config a\n\toption x 1\\\n2\n",
            "c a\n",
            "config a\n\to x 1\n",
            "'config' a\n",
            "config a b c\n",
            "config a 'b-c'\n",
            "config a ''\n",
            "config 'a b'\n",
            "config a n\nconfig a n\n",
            "config a\n\toption x 1\n\toption x 2\n",
            "config a\n\toption x 1\n\tlist x 2\n",
            "config a\n\tlist x 1\n\toption x 2\n",
            "config a\n\toption x ''\n",
            "config a\n\toption x\n",
            "config a\n\toption bad-name 1\n",
            "option x 1\n",
            "package 'a.b'\n",
            "config a\r\n",
            "config a\n\toption x \u{1}\n",
            // Types uci would print unquoted into a line that reads otherwise.
            "config 'a#b'\n",
            "config 'a;b'\n",
            "config \"a'b\"\n",
            "config 'a\\b'\n",
            // A name given to an anonymous section before.
            "config rule\nconfig zone 'cfg0192bd'\n",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_change_to_apply_leaves_the_package_to_uci() {
        let dir = std::env::temp_dir().join(format!("cwmpd-direct-{}", std::process::id()));
        let (config, save) = (dir.join("config"), dir.join("save"));
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&save).unwrap();
        std::fs::write(config.join("p"), "config a 'n'\n\toption x '1'\n").unwrap();
        assert!(read(&config, &save, "p").is_some());
        // What `uci commit` leaves behind: nothing to apply.
        std::fs::write(save.join("p"), "").unwrap();
        assert!(read(&config, &save, "p").is_some());
        std::fs::write(save.join("p"), "p.n.x='2'\n").unwrap();
        assert_eq!(read(&config, &save, "p"), None);
        // No file: the empty package uci reports; a name that is not a package's: uci's.
        assert_eq!(read(&config, &save, "none"), Some(Package::default()));
        assert_eq!(read(&config, &save, "../config/p"), None);
        assert_eq!(read(&config, &save, "a.b"), None);
        // A link in the save directory is not followed: its target may say 0 bytes and hold a
        // change (procfs).
        std::fs::remove_file(save.join("p")).unwrap();
        std::os::unix::fs::symlink("/proc/self/comm", save.join("p")).unwrap();
        assert_eq!(read(&config, &save, "p"), None);
        // Only a regular file is opened.
        std::fs::remove_file(save.join("p")).unwrap();
        std::fs::remove_file(config.join("p")).unwrap();
        std::fs::create_dir(config.join("p")).unwrap();
        assert_eq!(read(&config, &save, "p"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What a file may make the agent build is bounded: a file, sections and options beyond
    /// the bounds are uci's. Section counters past 255 take three digits, as libuci's do.
    #[test]
    fn bounds_and_long_counters() {
        let many = "config rule\n".repeat(MAX_SECTIONS);
        let p = parse(&many).unwrap();
        assert_eq!(p.sections[299].name, "cfg12c92bd");
        assert_eq!(parse(&format!("{many}config rule\n")), None);
        let options: String = (0..=MAX_OPTIONS)
            .map(|i| format!("option o{i} v\n"))
            .collect();
        assert_eq!(parse(&format!("config x\n{options}")), None);
        let dir = std::env::temp_dir().join(format!("cwmpd-direct-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = "# a comment line of a file that is too long\n";
        let big = line.repeat(usize::try_from(MAX_FILE).unwrap() / line.len() + 1);
        std::fs::write(dir.join("big"), big).unwrap();
        assert_eq!(read(&dir, &dir.join("save"), "big"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
