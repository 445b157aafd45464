//! Loading the snapshot (each package from its file in the process when [`direct`] can, else
//! `uci -n export`: one of the whole directory, then per package, started side by side) and
//! running the `uci batch` of a change. With the service reloads of `end_session`, the
//! backend's only access to the OS.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use super::direct;
use super::export::{parse_export, split_packages, Package};
use super::UciBackend;
use crate::cwmp::fault::Fault;
use crate::sys::process;

/// Most time one `uci` call may take.
const UCI_TIMEOUT: Duration = Duration::from_secs(10);
/// Most output read from one `uci export` (a whole package).
const MAX_OUTPUT: usize = 8 * 1024 * 1024;

impl UciBackend {
    /// `uci -c CONFIG -t SAVEDIR`: every call names both. The agent's own uncommitted changes
    /// (none outlive a batch) go to SAVEDIR; libuci still reads those other tools keep in its
    /// default save directory (`/tmp/.uci`), as every `uci` call on the router does.
    pub(super) fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-c").arg(&self.config).arg("-t").arg(&self.savedir);
        c
    }

    pub(super) fn ensure_savedir(&self) -> Result<(), Fault> {
        std::fs::create_dir_all(&self.savedir).map_err(|e| {
            Fault::internal(format!(
                "cannot create the uci save directory {}: {e}",
                self.savedir.display()
            ))
        })
    }

    /// Reads the packages not in the snapshot yet: from their files in the process where
    /// [`direct`] can, the others with `uci export` (see below), all started before the first
    /// is waited for.
    pub(super) fn load<'k>(
        &mut self,
        pkgs: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), Fault> {
        let missing: BTreeSet<&str> = pkgs
            .into_iter()
            .filter(|p| !self.snapshot.contains_key(*p))
            .collect();
        // What can be read in the process is (no process started); the rest is uci's.
        let missing: BTreeSet<&str> = missing
            .into_iter()
            .filter(|p| match direct::read(&self.config, &self.savedir, p) {
                Some(pkg) => {
                    self.snapshot.insert(p.to_string(), pkg);
                    false
                }
                None => true,
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.ensure_savedir()?;
        let missing = if !self.read_all {
            // The first read of a snapshot exports the whole directory: one process start
            // instead of one per package as the request walks the tree (a single-core router
            // runs them one after the other anyway). What it did not give (a package that does
            // not exist, or does not load) is asked for on its own below, for the precise
            // answer; packages changed by the agent are read again on their own.
            self.read_all = true;
            self.load_all();
            missing
                .into_iter()
                .filter(|p| !self.snapshot.contains_key(*p))
                .collect()
        } else {
            missing
        };
        let started: Vec<_> = missing
            .iter()
            .map(|p| {
                let run = process::start(
                    self.command().args(["-n", "export", *p]),
                    b"",
                    UCI_TIMEOUT,
                    MAX_OUTPUT,
                );
                (*p, run)
            })
            .collect();
        let mut first_error = None;
        for (p, run) in started {
            let cmd = format!("{} -n export {p}", self.bin.display());
            match run.and_then(process::Running::wait) {
                Err(e) => {
                    first_error.get_or_insert(Fault::internal(format!("`{cmd}`: {e}")));
                }
                Ok(out) if !out.status.success() => {
                    let line = out.stderr_line();
                    if line.ends_with("Entry not found") {
                        // No such package: an empty one.
                        self.snapshot.insert(p.to_string(), Package::default());
                    } else {
                        let why = if line.is_empty() {
                            out.status.to_string()
                        } else {
                            line
                        };
                        first_error.get_or_insert(Fault::internal(format!("`{cmd}`: {why}")));
                    }
                }
                Ok(out) => match parse_export(p, &String::from_utf8_lossy(&out.stdout)) {
                    Ok(pkg) => {
                        self.snapshot.insert(p.to_string(), pkg);
                    }
                    Err(e) => {
                        first_error.get_or_insert(Fault::internal(format!(
                            "`{cmd}`: unreadable output: {e}"
                        )));
                    }
                },
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads every package of the config directory with one `uci -n export` into the snapshot
    /// (those not in it already). uci skips a package it cannot load (and says so on stderr);
    /// output that does not parse is ignored here, so the caller asks per package.
    pub(super) fn load_all(&mut self) {
        let Ok(out) = process::run(
            self.command().args(["-n", "export"]),
            b"",
            UCI_TIMEOUT,
            MAX_OUTPUT,
        ) else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        for (name, chunk) in split_packages(&text) {
            if self.snapshot.contains_key(name) {
                continue;
            }
            if let Ok(pkg) = parse_export(name, chunk) {
                self.snapshot.insert(name.to_string(), pkg);
            }
        }
    }

    /// Drops the whole snapshot; the next read exports the whole directory again.
    pub(super) fn forget_all(&mut self) {
        self.snapshot.clear();
        self.recorded.clear();
        self.read_all = false;
    }

    /// Runs one `uci batch`. uci goes on after a failing command and exits 0, so anything on
    /// stderr is a failure.
    pub(super) fn run_batch(&self, script: &str) -> Result<(), Fault> {
        self.ensure_savedir()?;
        let cmd = format!("{} batch", self.bin.display());
        let out = process::run(
            self.command().arg("batch"),
            script.as_bytes(),
            UCI_TIMEOUT,
            MAX_OUTPUT,
        )
        .map_err(|e| Fault::internal(format!("`{cmd}`: {e}")))?;
        let line = out.stderr_line();
        if !out.status.success() || !line.is_empty() {
            let why = if line.is_empty() {
                out.status.to_string()
            } else {
                line
            };
            return Err(Fault::internal(format!("`{cmd}` failed: {why}")));
        }
        Ok(())
    }
}
