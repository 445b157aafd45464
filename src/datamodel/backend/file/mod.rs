//! The `file` backend: values read from sysfs, procfs and plain files (the key grammar is below
//! and in `datamodel/README.md`). It serves the TR-181 parameters that live in the kernel
//! rather than in the configuration: `Device.DeviceInfo` (UpTime, MemoryStatus, ProcessStatus, release info), the `Stats.` of
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
//! Consistency (invariant: within one session, reads come from one consistent snapshot):
//! anything made of rows — directory listings (and their `#count`) and table files (their
//! instances and their `[KEY].COL` values) — is read once and kept until [`Backend::invalidate`]
//! or [`Backend::end_session`], so a GetParameterNames and the GetParameterValues that follows
//! see the same instances with the same row values. Single values (`PATH`, `PATH:FIELD`:
//! counters, link state, uptime, memory) are read afresh by each [`Backend::read`] call, each
//! file once per call however many keys use it (keys that spell its path alike: `/a//b` and
//! `/a/b` are read apart).
//!
//! Bounds: at most [`MAX_FILE_BYTES`] of a file are read. A longer file is cut after its last
//! complete line within the bound: line-based keys see those lines, and `PATH` of it has no
//! value (a value cut in the middle would be wrong). Tables keep at most [`MAX_ROWS`] rows,
//! directory scans look at most at [`MAX_DIR_SCAN`] entries. Only regular files are read, every
//! open is non-blocking (a FIFO never holds the agent), and outside sysfs nothing but a
//! regular file is opened to read: the path is opened with `O_PATH`, looked at, and reopened
//! through `/proc/self/fd` (a device or FIFO left there is never opened; sysfs has neither).
//! Content that is not UTF-8 is read lossily and control characters other than newline and tab (the NULs of `/proc/PID/cmdline`) become
//! spaces, so a value is always printable in the SOAP envelope.
//!
//! Limits of the grammar: a path cannot contain `#`, and one whose last component contains `:`
//! reads as `PATH:FIELD`; a `where` value cannot contain `[`. A key with a `..` component is
//! refused at load time by [`check_key`], and after the engine has filled in the placeholders
//! it reads as absent (an instance key cannot lead outside the root).
//!
//! The backend is read-only: `writable` and `creatable` are false, nothing is watched (the
//! agent polls these values for notifications).

mod key;
mod read;

pub use key::check_key;
pub use read::{MAX_DIR_SCAN, MAX_FILE_BYTES, MAX_ROWS};

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Backend, Cx, Platform};
use crate::cwmp::fault::Fault;
use key::{escapes, parse, Cond, Key, Spec};
use read::{clean, list_dir, CallCache, Listing, Rows};

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
    fn value<'k>(&mut self, call: &mut CallCache<'k>, key: &'k str) -> Option<String> {
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
    fn rows<'k>(
        &mut self,
        table: &str,
        path: &'k str,
        spec: &Spec<'_>,
        call: &mut CallCache<'k>,
    ) -> &Rows {
        let root = &self.root;
        self.tables.entry(table.to_string()).or_insert_with(|| {
            call.file(root, path)
                .map_or_else(Rows::default, |f| Rows::parse(&f.text, spec))
        })
    }
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
