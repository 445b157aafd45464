//! Fuzzes the store's reading of its own state files (src/sys/store.rs: a `# cwmpd-store v1
//! len=… crc=…` header line, then TOML) on arbitrary bytes, through the public API the agent
//! uses: the bytes are written as `agent.toml` (the agent's [`AgentState`]) or
//! `datamodel.toml` (the engine's [`DmState`]) in a scratch directory and read with
//! [`Store::load_existing`]. The decoder is private, so this is the nearest public entry.
//!
//! The first byte picks the input's use: bit 1 the file (`agent` or `datamodel`); then
//! - bit 2 clear, bit 0 clear: the rest is the whole file;
//! - bit 2 clear, bit 0 set: the rest is the body, behind a valid header (length and CRC-32
//!   computed here, with a CRC of the harness's own), so that the TOML decoding behind the
//!   checksum is reached too;
//! - bit 2 set: the next two bytes are an offset (little-endian), the third a mask, the rest a
//!   TOML body: the state it decodes to (the default state when it does not) is saved by the
//!   store, then the file is damaged at the offset (modulo its length): truncated there when the
//!   mask is 0, that byte XORed with the mask otherwise.
//!
//! Properties: nothing panics. The store trusts a file exactly when the harness's own reading of
//! the header (exactly `# cwmpd-store v1 len=<body bytes> crc=<CRC-32 of the body, 8 lower-case
//! hex digits>`, the one header src/sys/store.rs writes) says it is intact and
//! the body decodes as TOML, and then it returns what the body decodes to; otherwise the file is
//! moved aside as `NAME.corrupt` and not trusted (`None`). A state that loads is saved, read
//! back, and saving that again writes nothing (the stored form is a fixpoint). A file the store
//! wrote loads back equal; truncated or with any one byte changed, it is never trusted.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cwmpd::agent::AgentState;
use cwmpd::datamodel::DmState;
use cwmpd::sys::store::Store;
use libfuzzer_sys::fuzz_target;
use cwmpd::toml_read::FromToml;
use cwmpd::toml_write::ToToml;

/// The header's start (src/sys/store.rs `MAGIC`).
const MAGIC: &str = "# cwmpd-store v1";
/// One scratch directory per process (tmpfs when there is one: every run writes and fsyncs).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Directories of earlier runs that ended (a finding aborts the process) are removed.
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("cwmpd-fuzz-store-") {
                    if !std::path::Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let d = base.join(format!("cwmpd-fuzz-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        // safety: a fuzzing harness without its scratch directory cannot run at all.
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let agent = mode & 2 == 0;
    if mode & 4 != 0 {
        let [o0, o1, mask, body @ ..] = rest else {
            return;
        };
        let offset = usize::from(u16::from_le_bytes([*o0, *o1]));
        if agent {
            damaged::<AgentState>("agent", body, offset, *mask);
        } else {
            damaged::<DmState>("datamodel", body, offset, *mask);
        }
        return;
    }
    let bytes = if mode & 1 == 1 {
        let mut b = format!("{MAGIC} len={} crc={:08x}\n", rest.len(), crc32(rest)).into_bytes();
        b.extend_from_slice(rest);
        b
    } else {
        rest.to_vec()
    };
    if agent {
        check::<AgentState>("agent", &bytes);
    } else {
        check::<DmState>("datamodel", &bytes);
    }
});

/// CRC-32 as src/sys/store.rs documents it (IEEE 802.3, reflected, as zlib), table-driven here so
/// that it does not share code with `store::crc32`.
fn crc32(data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, e) in (0u32..).zip(t.iter_mut()) {
            *e = (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            });
        }
        t
    });
    let crc = data
        .iter()
        .fold(!0u32, |c, &b| table[usize::from((c as u8) ^ b)] ^ (c >> 8));
    !crc
}

/// The body of a state file whose header is intact: the file is UTF-8 and its first line is,
/// to the byte, [`MAGIC`] then ` len=` the body's length in bytes (decimal) and ` crc=` its
/// CRC-32 (eight lower-case hex digits): the one header the store writes.
fn intact_body(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (header, body) = text.split_once('\n')?;
    let want = format!(
        "{MAGIC} len={} crc={:08x}",
        body.len(),
        crc32(body.as_bytes())
    );
    (header == want).then_some(body)
}

/// Writes `bytes` as `NAME.toml`, loads it, and checks the store's verdict against the harness's
/// own. Returns what the store loaded.
fn check<T>(name: &str, bytes: &[u8]) -> Option<T>
where
    T: FromToml + ToToml + PartialEq + std::fmt::Debug,
{
    let dir = dir();
    let file = dir.join(format!("{name}.toml"));
    let aside = dir.join(format!("{name}.corrupt"));
    let _ = std::fs::remove_file(&aside);
    // safety: the scratch directory is ours; failing to write it is not a finding.
    std::fs::write(&file, bytes).expect("write the state file");
    let mut store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => panic!("cannot open the store: {e}"),
    };
    let loaded = match store.load_existing::<T>(name) {
        Ok(l) => l,
        Err(e) => panic!("load_existing failed on a readable file: {e}"),
    };
    let expected = intact_body(bytes).map(|body| (body, cwmpd::toml_read::from_str::<T>(body)));
    match (&loaded, expected) {
        (Some(state), Some((_, Ok(want)))) => {
            assert_eq!(
                state, &want,
                "the store loaded something else than the body"
            );
        }
        (Some(state), Some((body, Err(e)))) => {
            panic!("trusted a body that does not decode ({e}): {body:?} -> {state:?}")
        }
        (Some(state), None) => panic!("trusted a file with a wrong header: {state:?}"),
        (None, Some((body, Ok(_)))) => panic!("an intact, valid file was not trusted: {body:?}"),
        (None, _) => {}
    }
    match &loaded {
        None => {
            assert!(!file.exists(), "a corrupt state file was left in place");
            assert!(aside.exists(), "a corrupt state file was not moved aside");
        }
        Some(state) => {
            assert!(file.exists());
            match store.save(name, state) {
                Ok(_) => {}
                Err(e) => panic!("a loaded state cannot be saved: {e}"),
            }
            let mut again = match Store::open(dir) {
                Ok(s) => s,
                Err(e) => panic!("cannot reopen the store: {e}"),
            };
            // The stored form is the contract (in-memory bookkeeping such as the event
            // queue's sequence numbers is not stored): saving what was read back writes nothing.
            let back = match again.load_existing::<T>(name) {
                Ok(Some(back)) => back,
                other => panic!("a saved state does not load again: {other:?}"),
            };
            match again.save(name, &back) {
                Ok(false) => {}
                Ok(true) => {
                    panic!("state changed in a save/load round trip: {state:?} -> {back:?}")
                }
                Err(e) => panic!("a reloaded state cannot be saved: {e}"),
            }
        }
    }
    loaded
}

/// Bit 2: a file the store wrote, then damaged at `offset` (truncated there when `mask` is 0,
/// that byte XORed with `mask` otherwise).
fn damaged<T>(name: &str, body: &[u8], offset: usize, mask: u8)
where
    T: FromToml + ToToml + PartialEq + Default + std::fmt::Debug,
{
    let state: T = std::str::from_utf8(body)
        .ok()
        .and_then(|b| cwmpd::toml_read::from_str(b).ok())
        .unwrap_or_default();
    let dir = dir();
    let file = dir.join(format!("{name}.toml"));
    let _ = std::fs::remove_file(&file);
    let mut store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => panic!("cannot open the store: {e}"),
    };
    if let Err(e) = store.save(name, &state) {
        panic!("a decoded state cannot be saved: {e}: {state:?}");
    }
    // safety: the store has just written the file; failing to read it is not a finding.
    let written = std::fs::read(&file).expect("read the saved state file");
    let Some(original) = check::<T>(name, &written) else {
        panic!(
            "a file the store wrote is not trusted: {:?}",
            String::from_utf8_lossy(&written)
        );
    };
    let Some(line_end) = written.iter().position(|&b| b == b'\n') else {
        panic!("a file the store wrote has no header line");
    };
    let at = offset % written.len();
    let mut bytes = written;
    if mask == 0 {
        bytes.truncate(at);
    } else {
        bytes[at] ^= mask;
    }
    // Any change is caught: a truncation or a byte of the body by the length or the CRC-32
    // (which detects every error within 32 bits), a byte of the header line by its exact form.
    let loaded = check::<T>(name, &bytes);
    assert!(
        loaded.is_none(),
        "trusted a file damaged at byte {at} (header line ends at {line_end}, mask {mask:#04x}): \
         {:?} (the original state {original:?})",
        String::from_utf8_lossy(&bytes)
    );
}
