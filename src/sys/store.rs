//! The crash-safe store: what must survive a power cut (pending events, RetryCount, bootstrap
//! state, the data model's bookkeeping), kept as whole files in one directory.
//!
//! Each file is written with write-temp, fsync, rename, fsync-dir, so a power cut leaves either the
//! old or the new content, never a mix. A file is not written at all when its content did not
//! change (flash wears, and a periodic session with no changes must write nothing). Each file
//! starts with a header line carrying the length and a CRC-32 of the body: a file that does not
//! match (a torn write on a filesystem that does not honour rename, bit rot, a hand edit gone wrong)
//! is moved aside as `NAME.corrupt`, logged, and replaced by the default state: it is never trusted.
//!
//! The directory is private ([`crate::sys::private::PrivateDir`]: 0700, files 0600, created
//! exclusively without following links); it holds passwords (TOML mode) and the Connection
//! Request path. Two locks keep one writer: the daemon holds [`DaemonLock`] for its life (a
//! second daemon or a `cwmpd inform` beside it is refused), and [`StateLock`] is held by whoever
//! reads, changes and writes the state files (the daemon for a loop turn and its session,
//! `cwmpd set` for its whole run).
//!
//! Only this module writes to the storage directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::sys::private::PrivateDir;

use crate::toml_read::FromToml;

const MAGIC: &str = "# cwmpd-store v1";

/// An error of the store: which file, and what went wrong.
#[derive(Debug)]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for StoreError {}

/// A directory of crash-safe state files.
#[derive(Debug)]
pub struct Store {
    dir: PrivateDir,
    /// The exact bytes last read from or written to each file, to skip writes that change nothing
    /// and to notice changes made by another process (`cwmpd set` while the daemon runs).
    known: HashMap<String, Vec<u8>>,
    /// How many files were actually written (for tests and the benchmark report).
    writes: u64,
}

impl Store {
    /// Opens (creating it if needed) the storage directory and removes the temp files that a
    /// power cut or a killed process left. Temp files are named `NAME.PID.tmp`: those of a process
    /// still running (the daemon, while `cwmpd status` opens the same store) are left alone.
    ///
    /// The directory is made private (see the module doc); files an older version left
    /// readable by others are corrected.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let pdir = PrivateDir::open(dir).map_err(|e| err(dir, "not usable", e))?;
        crate::sys::private::make_private(pdir.path());
        if let Ok(names) = pdir.names() {
            for name in names {
                if let Some(stem) = name.strip_suffix(".tmp") {
                    let writer = stem.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
                    if writer.is_none_or(|pid| !process_alive(pid)) {
                        let _ = pdir.remove(&name);
                    }
                }
            }
        }
        Ok(Store {
            dir: pdir,
            known: HashMap::new(),
            writes: 0,
        })
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Number of files written since the store was opened.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(&file_name(name))
    }

    /// Reads a state file (never through a link); `NotFound` when missing.
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let mut f = self.dir.open_file(&file_name(name))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Loads a state file; a missing file gives the default. A corrupt file is moved aside as
    /// `NAME.corrupt`, logged, and the default is returned.
    pub fn load<T: FromToml + Default>(&mut self, name: &str) -> Result<T, StoreError> {
        Ok(self.load_existing(name)?.unwrap_or_default())
    }

    /// Loads a state file; `None` when it is missing or corrupt (a corrupt one is moved aside as
    /// `NAME.corrupt` and logged). A caller that holds the state in memory keeps it then.
    pub fn load_existing<T: FromToml>(&mut self, name: &str) -> Result<Option<T>, StoreError> {
        let path = self.path(name);
        let bytes = match self.read(name) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.known.remove(name);
                return Ok(None);
            }
            Err(e) => return Err(err(&path, "cannot read", e)),
        };
        match decode::<T>(&bytes) {
            Ok(v) => {
                self.known.insert(name.to_string(), bytes);
                Ok(Some(v))
            }
            Err(why) => {
                let aside = format!("{name}.corrupt");
                log::error!(
                    "{}: corrupt state file ({why}); moved to {} and starting from defaults",
                    path.display(),
                    self.dir.join(&aside).display()
                );
                self.dir
                    .rename(&file_name(name), &aside)
                    .map_err(|e| err(&path, "cannot move aside", e))?;
                self.known.remove(name);
                Ok(None)
            }
        }
    }

    /// Whether the file differs from what this store last read or wrote (another process wrote it).
    pub fn changed_on_disk(&self, name: &str) -> bool {
        let on_disk = self.read(name).ok();
        on_disk.as_deref() != self.known.get(name).map(Vec::as_slice)
    }

    /// Saves a state file crash-safely. Returns whether anything was written (nothing is written
    /// when the content is unchanged).
    pub fn save(
        &mut self,
        name: &str,
        value: &dyn crate::toml_write::ToToml,
    ) -> Result<bool, StoreError> {
        let bytes = encode(&crate::toml_write::to_string(value));
        if self.known.get(name) == Some(&bytes) {
            return Ok(false);
        }
        self.write_atomic(name, &bytes)?;
        self.known.insert(name.to_string(), bytes);
        self.writes += 1;
        Ok(true)
    }

    /// The names of the state files in the directory (not temp or corrupt ones), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .dir
            .names()
            .map(|names| {
                names
                    .into_iter()
                    .filter_map(|name| {
                        name.strip_suffix(".toml")
                            .filter(|stem| !stem.is_empty() && !stem.contains('.'))
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Removes a state file (FactoryReset).
    pub fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        self.dir
            .remove(&file_name(name))
            .map_err(|e| err(&path, "cannot remove", e))?;
        self.known.remove(name);
        self.sync_dir()
    }

    /// Write-temp (created exclusively, 0600, never through a link), fsync, rename, fsync-dir.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = format!("{name}.{}.tmp", std::process::id());
        let tmp_path = self.dir.join(&tmp);
        let written = self.dir.create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = self.dir.remove(&tmp);
            return Err(err(&tmp_path, "cannot write", e));
        }
        if let Err(e) = self.dir.rename(&tmp, &file_name(name)) {
            let _ = self.dir.remove(&tmp);
            return Err(err(&self.path(name), "cannot rename into place", e));
        }
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        nix::unistd::fsync(self.dir.fd())
            .map_err(|e| err(self.dir.path(), "cannot sync the directory", errno(e)))
    }

    /// Claims the storage directory for this daemon for as long as the lock lives: an exclusive
    /// `flock` on `daemon.lock`, which names the daemon's pid. A second daemon (or a `cwmpd
    /// inform`) on the same directory gets an error naming the one running.
    pub fn lock_daemon(&self) -> Result<DaemonLock, StoreError> {
        let path = self.dir.join(DAEMON_LOCK);
        let file = self
            .dir
            .open_lock(DAEMON_LOCK, true)
            .map_err(|e| err(&path, "cannot open", e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut f) => {
                let pid = std::process::id().to_string();
                let _ = f
                    .set_len(0)
                    .and_then(|()| f.rewind())
                    .and_then(|()| f.write_all(pid.as_bytes()));
                Ok(DaemonLock { _file: f })
            }
            Err((mut f, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = Read::by_ref(&mut f).take(32).read_to_string(&mut pid);
                Err(StoreError {
                    path: self.dir.path().to_path_buf(),
                    message: format!(
                        "a cwmpd daemon (pid {}) is running on this storage directory",
                        pid.trim()
                    ),
                })
            }
            Err((_, e)) => Err(err(&path, "cannot lock", errno(e))),
        }
    }

    /// Takes the state lock: waits while another process holds it (the daemon in a loop turn
    /// or a session, `cwmpd set`), at most `wait` (`None`: as long as it takes).
    pub fn lock_state(&self, wait: Option<Duration>) -> Result<StateLock, StoreError> {
        let path = self.dir.join(STATE_LOCK);
        let open = || {
            self.dir
                .open_lock(STATE_LOCK, false)
                .map_err(|e| err(&path, "cannot open", e))
        };
        let Some(wait) = wait else {
            return Flock::lock(open()?, FlockArg::LockExclusive)
                .map(|f| StateLock { _file: f })
                .map_err(|(_, e)| err(&path, "cannot lock", errno(e)));
        };
        let end = Instant::now() + wait;
        let mut file = open()?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(f) => return Ok(StateLock { _file: f }),
                Err((f, Errno::EWOULDBLOCK)) if Instant::now() < end => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(StoreError {
                        path: self.dir.path().to_path_buf(),
                        message: format!(
                            "the state is in use (the daemon is in a session) for more than {} s",
                            wait.as_secs()
                        ),
                    })
                }
                Err((_, e)) => return Err(err(&path, "cannot lock", errno(e))),
            }
        }
    }
}

/// The lock files (not state files: they carry no `.toml`).
const DAEMON_LOCK: &str = "daemon.lock";
const STATE_LOCK: &str = "state.lock";

/// Held by the daemon for its life (see [`Store::lock_daemon`]).
#[derive(Debug)]
pub struct DaemonLock {
    _file: Flock<File>,
}

/// Held while the state files are read, changed and written (see [`Store::lock_state`]).
#[derive(Debug)]
pub struct StateLock {
    _file: Flock<File>,
}

fn file_name(name: &str) -> String {
    format!("{name}.toml")
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Whether a process with this id runs (Linux `/proc`); this process counts as running. Where
/// `/proc` is missing every other writer counts as gone, as after a reboot.
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

fn err(path: &Path, what: &str, e: io::Error) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

/// The header line and the TOML body.
fn encode(body: &str) -> Vec<u8> {
    let mut out = encode_header(body).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The header line of a file holding `body`, with its newline.
fn encode_header(body: &str) -> String {
    format!(
        "{MAGIC} len={} crc={:08x}\n",
        body.len(),
        crc32(body.as_bytes())
    )
}

fn decode<T: FromToml>(bytes: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let (header, body) = text.split_once('\n').ok_or("no header line")?;
    let rest = header.strip_prefix(MAGIC).ok_or("unknown header")?;
    let len = rest
        .strip_prefix(" len=")
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse::<usize>().ok());
    if len != Some(body.len()) {
        return Err("length does not match (truncated?)".into());
    }
    // Only the header `encode` writes for this body is accepted, to the byte: another version
    // (`v10`), a field twice, or a header line run into the body is not this format.
    if header.as_bytes() != encode_header(body).trim_end().as_bytes() {
        return Err("checksum does not match, or the header is malformed".into());
    }
    crate::toml_read::from_str(body).map_err(|e| format!("invalid content: {e}"))
}

/// CRC-32 (IEEE 802.3, reflected, as zlib). Bitwise: state files are small.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[derive(Debug, Default, PartialEq)]
    struct S {
        n: u32,
        v: Vec<String>,
    }
    crate::from_toml_struct!(lenient S { n, v } required "n", "v");

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cwmpd-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn roundtrip_and_no_rewrite() {
        let d = tmpdir("rt");
        let mut st = Store::open(&d).unwrap();
        let s: S = st.load("a").unwrap();
        assert_eq!(s, S::default());
        let s = S {
            n: 3,
            v: vec!["x".into()],
        };
        assert!(st.save("a", &s).unwrap());
        assert!(
            !st.save("a", &s).unwrap(),
            "unchanged content is not rewritten"
        );
        assert_eq!(st.writes(), 1);
        let mut st2 = Store::open(&d).unwrap();
        assert_eq!(st2.load::<S>("a").unwrap(), s);
        assert!(
            !st2.save("a", &s).unwrap(),
            "loaded content counts as known"
        );
        assert!(!st.changed_on_disk("a"));
        st2.save("a", &S { n: 4, v: vec![] }).unwrap();
        assert!(st.changed_on_disk("a"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn load_existing_tells_missing_and_corrupt_from_valid() {
        let d = tmpdir("existing");
        let mut st = Store::open(&d).unwrap();
        assert_eq!(st.load_existing::<S>("a").unwrap(), None);
        st.save("a", &S { n: 9, v: vec![] }).unwrap();
        assert_eq!(st.load_existing::<S>("a").unwrap().map(|s| s.n), Some(9));
        fs::write(
            d.join("a.toml"),
            b"# cwmpd-store v1 len=3 crc=00000000\nn=1",
        )
        .unwrap();
        assert_eq!(st.load_existing::<S>("a").unwrap(), None);
        assert!(d.join("a.corrupt").exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn only_the_exact_header_is_accepted() {
        let body = "n = 1\nv = []\n";
        let good = String::from_utf8(encode(body)).unwrap();
        assert_eq!(decode::<S>(good.as_bytes()).unwrap().n, 1);
        let header = good.lines().next().unwrap().to_string();
        let upper = header.replace("crc=", "CRC=");
        let hex_upper = format!(
            "{MAGIC} len={} crc={:08X}",
            body.len(),
            crc32(body.as_bytes())
        );
        for bad in [
            header.replace("v1 ", "v10 "),
            format!("{header} len={}", body.len()),
            format!("{header} "),
            header.replace(" len=", "  len="),
            header.replace("len=", "len=0"),
            upper,
            hex_upper,
        ] {
            if bad == header {
                continue;
            }
            let file = format!("{bad}\n{body}");
            assert!(decode::<S>(file.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn corrupt_files_are_moved_aside() {
        let d = tmpdir("corrupt");
        let mut st = Store::open(&d).unwrap();
        st.save("a", &S { n: 7, v: vec![] }).unwrap();
        let p = d.join("a.toml");
        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        fs::write(&p, &bytes).unwrap();
        let mut st = Store::open(&d).unwrap();
        assert_eq!(st.load::<S>("a").unwrap(), S::default());
        assert!(d.join("a.corrupt").exists());
        assert!(!p.exists());
        // A truncated file too.
        st.save(
            "b",
            &S {
                n: 1,
                v: vec!["long".into(); 4],
            },
        )
        .unwrap();
        let pb = d.join("b.toml");
        let bytes = fs::read(&pb).unwrap();
        fs::write(&pb, &bytes[..bytes.len() / 2]).unwrap();
        let mut st = Store::open(&d).unwrap();
        assert_eq!(st.load::<S>("b").unwrap(), S::default());
        // A leftover temp file from a power cut is removed on open, one of a running writer is not.
        fs::write(d.join("c.tmp"), b"half").unwrap();
        fs::write(d.join("c.4294967295.tmp"), b"half").unwrap();
        fs::write(d.join(format!("c.{}.tmp", std::process::id())), b"live").unwrap();
        Store::open(&d).unwrap();
        assert!(!d.join("c.tmp").exists());
        assert!(!d.join("c.4294967295.tmp").exists());
        assert!(d.join(format!("c.{}.tmp", std::process::id())).exists());
        let _ = fs::remove_dir_all(&d);
    }
}
