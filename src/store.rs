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
//! Only this module writes to the storage directory.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

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
    dir: PathBuf,
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
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| err(dir, "cannot create the directory", e))?;
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".tmp") {
                    let writer = stem.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
                    if writer.is_none_or(|pid| !process_alive(pid)) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            known: HashMap::new(),
            writes: 0,
        })
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of files written since the store was opened.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    /// Loads a state file; a missing file gives the default. A corrupt file is moved aside as
    /// `NAME.corrupt`, logged, and the default is returned.
    pub fn load<T: DeserializeOwned + Default>(&mut self, name: &str) -> Result<T, StoreError> {
        Ok(self.load_existing(name)?.unwrap_or_default())
    }

    /// Loads a state file; `None` when it is missing or corrupt (a corrupt one is moved aside as
    /// `NAME.corrupt` and logged). A caller that holds the state in memory keeps it then.
    pub fn load_existing<T: DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let path = self.path(name);
        let bytes = match fs::read(&path) {
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
                let aside = self.dir.join(format!("{name}.corrupt"));
                log::error!(
                    "{}: corrupt state file ({why}); moved to {} and starting from defaults",
                    path.display(),
                    aside.display()
                );
                fs::rename(&path, &aside).map_err(|e| err(&path, "cannot move aside", e))?;
                self.known.remove(name);
                Ok(None)
            }
        }
    }

    /// Whether the file differs from what this store last read or wrote (another process wrote it).
    pub fn changed_on_disk(&self, name: &str) -> bool {
        let on_disk = fs::read(self.path(name)).ok();
        on_disk.as_deref() != self.known.get(name).map(Vec::as_slice)
    }

    /// Saves a state file crash-safely. Returns whether anything was written (nothing is written
    /// when the content is unchanged).
    pub fn save<T: Serialize>(&mut self, name: &str, value: &T) -> Result<bool, StoreError> {
        let path = self.path(name);
        let body = toml::to_string(value).map_err(|e| StoreError {
            path: path.clone(),
            message: format!("cannot serialize: {e}"),
        })?;
        let bytes = encode(&body);
        if self.known.get(name) == Some(&bytes) {
            return Ok(false);
        }
        self.write_atomic(&path, &bytes)?;
        self.known.insert(name.to_string(), bytes);
        self.writes += 1;
        Ok(true)
    }

    /// The names of the state files in the directory (not temp or corrupt ones), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
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
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&path, "cannot remove", e)),
        }
        self.known.remove(name);
        sync_dir(&self.dir).map_err(|e| err(&self.dir, "cannot sync the directory", e))
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| err(&tmp, "cannot create", e))?;
        f.write_all(bytes)
            .map_err(|e| err(&tmp, "cannot write", e))?;
        f.sync_all().map_err(|e| err(&tmp, "cannot fsync", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| err(path, "cannot rename into place", e))?;
        sync_dir(&self.dir).map_err(|e| err(&self.dir, "cannot sync the directory", e))
    }
}

/// Whether a process with this id runs (Linux `/proc`); this process counts as running. Where
/// `/proc` is missing every other writer counts as gone, as after a reboot.
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
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
    toml::from_str(body).map_err(|e| format!("invalid content: {e}"))
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
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct S {
        n: u32,
        v: Vec<String>,
    }

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
