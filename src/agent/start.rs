//! What the agent does at start: `1 BOOT`, `0 BOOTSTRAP` (§3.2.1), a FactoryReset carried out,
//! and what the records of the previous run mean now (a reboot, a kill, a power cut happened).

use super::state::{AgentState, AutonomousTransfer, MAX_SCHEDULED};
use super::transfers::apply_reboots;
use super::Agent;
use super::AgentError;
use crate::connreq;
use crate::datamodel::management;
use crate::events;
use crate::transfer::job;

impl Agent {
    /// Queues `1 BOOT` when the device booted since the last start (a new kernel boot id), and
    /// `0 BOOTSTRAP` when this ACS URL never acknowledged one. Called once at start.
    pub fn note_start(&mut self) -> Result<(), AgentError> {
        let boot = crate::sys::os::boot_id().unwrap_or_default();
        let booted = boot.is_empty() || boot != self.state.boot_id;
        if booted {
            self.state.events.rebooted();
            self.add_event(events::BOOT, "")?;
            self.state.boot_id = boot;
        }
        self.booted = booted;
        self.note_url()?;
        self.persist()
    }

    /// The daemon's start: a FactoryReset carried out, `1 BOOT`/`0 BOOTSTRAP`, then what the
    /// records of the previous run mean now ([`Agent::recover`]). Only the daemon does this: a
    /// `cwmpd inform` beside a running daemon must not touch its transfers.
    pub(super) fn start_daemon(&mut self) -> Result<(), AgentError> {
        if self.state.factory_reset.as_ref().is_some_and(|f| f.started) {
            // §A.4.1.3: the reset hook ran (OpenWrt's firstboot wipes the storage directory
            // itself). What the agent kept goes too, so it starts as new: `0 BOOTSTRAP` (no URL
            // acknowledged one) and `1 BOOT` (no boot id known). Idempotent if cut midway: the
            // mark goes with the agent file, written last.
            log::warn!("factory reset: forgetting everything the ACS set");
            self.state = AgentState {
                connection_request_path: connreq::url::random_path(&self.random()?),
                ..AgentState::default()
            };
            self.engine.factory_reset();
            match self.transfer_dir() {
                Ok(dir) => job::clean_dir(&dir, &self.state.transfers),
                Err(e) => log::error!("{e}"),
            }
            let url = self.provisional_url();
            self.engine
                .backends_mut()
                .set_runtime("connection_request.url", &url);
        }
        self.note_start()?;
        self.recover(self.booted)?;
        self.persist()
    }

    /// Queues BOOTSTRAP when the ACS URL differs from the one that acknowledged it.
    pub(super) fn note_url(&mut self) -> Result<(), AgentError> {
        let url = self.settings().url;
        if !url.is_empty()
            && url != self.state.bootstrapped_url
            && !self.state.events.contains(events::BOOTSTRAP)
        {
            if self.state.bootstrapped_url.is_empty() {
                self.add_event(events::BOOTSTRAP, "")?;
            } else {
                self.state.events.url_changed();
            }
        }
        Ok(())
    }

    /// What the records of the previous run mean now (a reboot, a kill, a power cut happened).
    /// `booted`: the kernel boot id changed (then `1 BOOT` is queued already).
    pub(super) fn recover(&mut self, booted: bool) -> Result<(), AgentError> {
        let now = self.now_unix();
        // The start after a Reboot's hook ran (§A.3.2.10): `1 BOOT` and `M Reboot` with each
        // CommandKey, written together with the record's removal: exactly once. A restart of
        // the agent alone counts too (the hook was started: the device is, or was, going down).
        if let Some(r) = self.state.reboot.take() {
            if r.started {
                if !booted {
                    self.state.events.rebooted();
                    self.add_event(events::BOOT, "")?;
                }
                for k in &r.command_keys {
                    self.add_event(events::M_REBOOT, k)?;
                }
                log::info!("started after the Reboot hook ran");
            } else {
                // Asked for but never carried out: still owed.
                self.state.reboot = Some(r);
            }
        }
        let hooks = self.hooks.clone();
        // A directory that cannot be made private counts as empty: its files are not trusted.
        let dir = self.transfer_dir().map_err(|e| log::error!("{e}")).ok();
        let present = |id: u64, ext: &str| {
            dir.as_ref()
                .is_some_and(|d| d.open_file(&job::file_name(id, ext)).is_ok())
        };
        let firmware = self.state.transfers.recover(
            now,
            |k| apply_reboots(&hooks, k),
            |id| present(id, "file"),
            |id| present(id, "started"),
        );
        if let Some(dir) = &dir {
            job::clean_dir(dir, &self.state.transfers);
            // A whole file kept for its apply, written by an older version: 0600 now.
            crate::sys::private::make_private(dir.path());
        }
        // A firmware the ACS did not install (§A.4.2.2 AutonomousTransferComplete): the version
        // changed and no Download of ours explains it.
        let sw = management::software_version(&mut self.engine);
        let known = std::mem::replace(&mut self.state.software_version, sw.clone());
        if !known.is_empty() && known != sw && firmware == 0 {
            log::info!("software version changed from {known} to {sw} without a Download");
            if self.state.autonomous.len() < MAX_SCHEDULED {
                self.state.autonomous.push(AutonomousTransfer {
                    is_download: true,
                    file_type: "1 Firmware Upgrade Image".into(),
                    transfer_url: String::new(),
                    file_size: 0,
                    fault_code: 0,
                    fault_string: String::new(),
                });
            }
        }
        self.ensure_cpe_events();
        Ok(())
    }
}
