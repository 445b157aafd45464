//! Fuzzes the store's reading of its own state files (src/store.rs: a `# cwmpd-store v1
//! len=… crc=…` header line, then TOML) on arbitrary bytes, through the public API the agent
//! uses: the bytes are written as `agent.toml` (the agent's [`AgentState`]) or
//! `datamodel.toml` (the engine's [`DmState`]) in a scratch directory and read with
//! [`Store::load_existing`]. The decoder is private, so this is the nearest public entry.
//!
//! The first byte picks the file and whether the rest gets a valid header (length and CRC-32
//! computed here with [`store::crc32`]), so that the TOML decoding behind the checksum is
//! reached too. Properties: nothing panics; a file that does not decode is moved aside as
//! `NAME.corrupt` and never trusted (`None`); a state that decodes is saved,
//! read back, and saving that again writes nothing (the stored form is a fixpoint).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cwmpd::agent::AgentState;
use cwmpd::datamodel::DmState;
use cwmpd::store::{self, Store};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

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
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        let mut b = format!(
            "# cwmpd-store v1 len={} crc={:08x}\n",
            body.len(),
            store::crc32(body)
        )
        .into_bytes();
        b.extend_from_slice(body);
        b
    } else {
        body.to_vec()
    };
    if mode & 2 == 0 {
        check::<AgentState>("agent", &bytes);
    } else {
        check::<DmState>("datamodel", &bytes);
    }
});

fn check<T>(name: &str, bytes: &[u8])
where
    T: DeserializeOwned + Serialize + std::fmt::Debug,
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
    match loaded {
        None => {
            assert!(!file.exists(), "a corrupt state file was left in place");
            assert!(aside.exists(), "a corrupt state file was not moved aside");
        }
        Some(state) => {
            assert!(file.exists());
            match store.save(name, &state) {
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
}
