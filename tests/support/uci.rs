//! The real OpenWrt `uci` command for tests of the uci backend (tests run against the
//! real `uci` on a temporary config dir, never a fake), and temporary uci config directories.
//!
//! [`uci_bin`] is `$CWMPD_UCI` when set, else `<repo>/target/uci/uci`, built once from the C
//! sources vendored by the `libuci-sys` crate with `tools/build-uci.sh` (which builds in a
//! private directory and renames the binary into place, so parallel test processes are safe).
//! It panics with the reason when uci cannot be had: a test never skips silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `uci` binary to test with.
pub fn uci_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_or_build).clone()
}

fn find_or_build() -> PathBuf {
    if let Some(p) = std::env::var_os("CWMPD_UCI").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CWMPD_UCI={} is not a file", p.display());
        return p;
    }
    let repo = crate::repo();
    let out = repo.join("target").join("uci");
    let bin = out.join("uci");
    if bin.is_file() {
        return bin;
    }
    let script = repo.join("tools").join("build-uci.sh");
    let result = Command::new("sh").arg(&script).arg(&out).output();
    match result {
        Ok(o) if o.status.success() && bin.is_file() => bin,
        Ok(o) => panic!(
            "cannot build uci with {} ({}): {}{}\nset CWMPD_UCI to a uci binary, or install \
             gcc and let cargo fetch libuci-sys 1.0.5",
            script.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {}: {e}", script.display()),
    }
}

pub use crate::tempdir::TempDir;

/// A temporary uci setup: `config/` (uci `-c`) and `save/` (uci `-t`) in a temporary dir.
pub struct UciDir {
    pub dir: TempDir,
    pub config: PathBuf,
    pub savedir: PathBuf,
}

impl UciDir {
    /// An empty config directory.
    pub fn new(tag: &str) -> UciDir {
        let dir = TempDir::new(tag);
        let config = dir.path().join("config");
        let savedir = dir.path().join("save");
        std::fs::create_dir_all(&config)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", config.display()));
        UciDir {
            dir,
            config,
            savedir,
        }
    }

    /// A config directory holding a copy of the files of `fixtures` (e.g. the fixture
    /// router's `tests/fixtures/router/etc/config`).
    pub fn copy_of(tag: &str, fixtures: &Path) -> UciDir {
        let u = UciDir::new(tag);
        let entries = std::fs::read_dir(fixtures)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", fixtures.display()));
        for entry in entries.flatten() {
            let from = entry.path();
            if from.is_file() {
                let to = u.config.join(entry.file_name());
                std::fs::copy(&from, &to)
                    .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
            }
        }
        u
    }

    /// Writes the package `name` (uci file syntax).
    pub fn write(&self, name: &str, text: &str) {
        let p = self.config.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    }

    /// The text of the package file `name`.
    pub fn read(&self, name: &str) -> String {
        let p = self.config.join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
    }

    /// Runs the real uci on this directory (`uci -c CONFIG -t SAVEDIR ARGS…`) with `stdin`;
    /// returns stdout, panicking when it fails.
    pub fn uci(&self, args: &[&str], stdin: &str) -> String {
        run(&self.config, &self.savedir, args, stdin)
    }

    /// `uci get NAME` through the real binary (None when uci says it is absent).
    pub fn get(&self, name: &str) -> Option<String> {
        let o = Command::new(uci_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("-t")
            .arg(&self.savedir)
            .args(["get", name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run uci: {e}"));
        o.status.success().then(|| {
            String::from_utf8_lossy(&o.stdout)
                .strip_suffix('\n')
                .unwrap_or_default()
                .to_string()
        })
    }
}

/// Runs the real uci on the config directory `config` with its own save directory `savedir`
/// (`uci -c CONFIG -t SAVEDIR ARGS…`) and `stdin`; returns stdout, panicking when it fails or
/// writes to stderr. Never without `-t`: libuci's default save directory, `/tmp/.uci`, is read
/// by every uci run on the machine whatever its `-c`, so a test's `set` left there until its
/// `commit` is seen by the other tests' agents (a `proto pppoe` emptied another test's DHCP
/// table that way).
pub fn run(config: &Path, savedir: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(uci_bin())
        .arg("-c")
        .arg(config)
        .arg("-t")
        .arg(savedir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run uci: {e}"));
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write to uci: {e}"));
    }
    let o = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("uci did not end: {e}"));
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "uci {args:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
