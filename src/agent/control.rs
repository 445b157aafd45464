//! The agent's side of the RPCs that act on the device ([`Control`]): ScheduleInform, Reboot,
//! FactoryReset and the transfers are journalled in the state during the session; Reboot and
//! FactoryReset (§A.3.2.10, §A.4.1.3) are carried out after it.

use std::time::Duration;

use super::state::{AgentState, PendingAction, ScheduledInform, MAX_SCHEDULED};
use super::transfers::{apply_hook, produce_hook};
use super::Agent;
use crate::config::ResolvedHooks;
use crate::cwmp::fault::{Fault, TransferFault};
use crate::cwmp::time;
use crate::http::url;
use crate::rpc::Control;
use crate::soap::msg::{Download, QueuedTransfer, ScheduleDownload, Upload};
use crate::transfer::{self, hooks, FileKind};

/// Runs of a failing Reboot/FactoryReset hook before the request is given up.
pub(super) const MAX_HOOK_TRIES: u32 = 3;

/// Seconds between two runs of a failing Reboot/FactoryReset hook.
pub(super) const HOOK_RETRY_WAIT: i64 = 60;

impl Agent {
    /// Reboot and FactoryReset (§A.3.2.10, §A.4.1.3) once the session that asked has ended, and
    /// the wait for the device to go down after a hook that reboots it. Returns whether the agent
    /// holds (no session, no transfer).
    pub(super) fn device_step(&mut self, now: i64) -> bool {
        let timeout = i64::from(self.cfg.transfer.reboot_timeout);
        let mut changed = false;
        for t in &mut self.state.transfers.list {
            if t.state == transfer::State::AwaitingReboot && now > t.since.saturating_add(timeout) {
                log::error!(
                    "the device did not restart within {timeout} s after the apply hook of {:?}",
                    t.command_key
                );
                t.finish(
                    now,
                    TransferFault::Download.code(),
                    format!("the device did not restart within {timeout} s after the apply hook"),
                );
                changed = true;
                // Whatever the hook did to the firmware, the ACS asked for it: no
                // AutonomousTransferComplete for it at the next start.
                if t.kind() == FileKind::Firmware {
                    self.state.software_version.clear();
                }
            }
        }
        if changed {
            self.ensure_cpe_events();
            self.save();
        }
        if let Some(since) = self.hold_since {
            if now <= since.saturating_add(timeout) {
                return true;
            }
            log::error!("the device did not restart within {timeout} s after the hook");
            self.hold_since = None;
            for a in [&mut self.state.factory_reset, &mut self.state.reboot] {
                if let Some(p) = a.as_mut().filter(|p| p.started) {
                    p.started = false;
                    p.tries += 1;
                    p.next_try = now + HOOK_RETRY_WAIT;
                    if p.tries >= MAX_HOOK_TRIES {
                        log::error!(
                            "the hook did not restart the device {} times; giving up",
                            p.tries
                        );
                        *a = None;
                    }
                }
            }
            self.save();
        }
        if self.state.transfers.awaiting_reboot() {
            return true;
        }
        // Never while a transfer's file is moving or being installed (a reboot in the middle of
        // a sysupgrade would brick the device): after it.
        if self.state.transfers.busy() {
            return false;
        }
        // A FactoryReset first (it reboots too), else a Reboot.
        for reset in [true, false] {
            let (what, line) = if reset {
                ("FactoryReset", self.hooks.factory_reset.clone())
            } else {
                ("Reboot", self.hooks.reboot.clone())
            };
            let slot = if reset {
                &mut self.state.factory_reset
            } else {
                &mut self.state.reboot
            };
            let Some(p) = slot.as_mut() else {
                continue;
            };
            if p.started || now < p.next_try {
                continue;
            }
            // Marked before the hook runs: a cut during it is the reboot it was meant to be.
            p.started = true;
            let key = p.command_keys.first().cloned().unwrap_or_default();
            self.save();
            let call = hooks::Call {
                command_key: &key,
                ..Default::default()
            };
            let hook_timeout = Duration::from_secs(self.cfg.transfer.hook_timeout.into());
            let result = if line.trim().is_empty() {
                Err(hooks::HookError {
                    code: TransferFault::Internal.code(),
                    message: format!("no {what} hook is configured"),
                })
            } else {
                hooks::run(&line, &call, hook_timeout, TransferFault::Internal.code())
            };
            match result {
                Ok(()) => {
                    log::info!("{what} hook done; waiting for the device to restart");
                    self.hold_since = Some(self.now_unix());
                    return true;
                }
                Err(e) => {
                    let slot = if reset {
                        &mut self.state.factory_reset
                    } else {
                        &mut self.state.reboot
                    };
                    if let Some(p) = slot.as_mut() {
                        p.started = false;
                        p.tries += 1;
                        p.next_try = now + HOOK_RETRY_WAIT;
                        if p.tries >= MAX_HOOK_TRIES {
                            log::error!(
                                "{what} failed {} times, giving up: {}",
                                p.tries,
                                e.message
                            );
                            *slot = None;
                        } else {
                            log::error!("{what} failed (try {}): {}", p.tries, e.message);
                        }
                    }
                    self.save();
                }
            }
        }
        false
    }
}

/// The agent's side of the RPCs that act on the device: ScheduleInform, Reboot, FactoryReset and
/// the transfers. Each only journals the request in the state (persisted by the loop before the
/// response is posted); the work happens after the session.
pub(super) struct AgentControl<'a> {
    pub(super) state: &'a mut AgentState,
    pub(super) hooks: &'a ResolvedHooks,
    pub(super) limits: transfer::Limits,
    pub(super) now: i64,
}

impl AgentControl<'_> {
    fn downloads(&self) -> bool {
        !self.hooks.firmware.is_empty()
            || !self.hooks.web_content.is_empty()
            || !self.hooks.config.is_empty()
            || !self.hooks.vendor.is_empty()
    }

    fn uploads(&self) -> bool {
        !self.hooks.upload_config.is_empty() || !self.hooks.upload_log.is_empty()
    }

    fn require(&self, supported: bool, method: &str) -> Result<(), Fault> {
        if supported {
            Ok(())
        } else {
            Err(Fault::MethodNotSupported(format!(
                "{method} is not supported by this CPE (no hook is configured)"
            )))
        }
    }
}

impl Control for AgentControl<'_> {
    fn supported(&self) -> Vec<&'static str> {
        let mut m = vec!["ScheduleInform"];
        if !self.hooks.reboot.is_empty() {
            m.push("Reboot");
        }
        if !self.hooks.factory_reset.is_empty() {
            m.push("FactoryReset");
        }
        if self.downloads() {
            m.extend([
                "Download",
                "ScheduleDownload",
                "CancelTransfer",
                "GetQueuedTransfers",
                "GetAllQueuedTransfers",
            ]);
        }
        if self.uploads() {
            m.push("Upload");
            if !self.downloads() {
                m.extend([
                    "CancelTransfer",
                    "GetQueuedTransfers",
                    "GetAllQueuedTransfers",
                ]);
            }
        }
        m
    }

    fn schedule_inform(&mut self, delay_seconds: u32, command_key: &str) -> Result<(), Fault> {
        // §A.4.1.4: DelaySeconds must be greater than zero.
        if delay_seconds == 0 {
            return Err(Fault::InvalidArguments(
                "DelaySeconds must be greater than 0".into(),
                Vec::new(),
            ));
        }
        transfer::check_command_key(command_key)?;
        if self.state.scheduled.len() >= MAX_SCHEDULED {
            return Err(Fault::ResourcesExceeded(
                "too many scheduled informs".into(),
            ));
        }
        self.state.scheduled.push(ScheduledInform {
            at: self.now + i64::from(delay_seconds),
            command_key: command_key.to_string(),
        });
        Ok(())
    }

    fn reboot(&mut self, command_key: &str) -> Result<(), Fault> {
        self.require(!self.hooks.reboot.is_empty(), "Reboot")?;
        transfer::check_command_key(command_key)?;
        let r = self.state.reboot.get_or_insert_with(PendingAction::default);
        if r.command_keys.len() >= MAX_SCHEDULED {
            return Err(Fault::ResourcesExceeded("too many Reboot requests".into()));
        }
        r.command_keys.push(command_key.to_string());
        Ok(())
    }

    fn factory_reset(&mut self) -> Result<(), Fault> {
        self.require(!self.hooks.factory_reset.is_empty(), "FactoryReset")?;
        self.state
            .factory_reset
            .get_or_insert_with(PendingAction::default);
        Ok(())
    }

    fn download(&mut self, d: &Download) -> Result<(u8, String, String), Fault> {
        self.require(self.downloads(), "Download")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .download(d, self.now, self.limits, |ft, text| {
                !apply_hook(hooks, ft.kind, text).is_empty()
            })?;
        log::info!(
            "Download {:?} ({}) of {} queued for {}",
            t.command_key,
            t.file_type,
            url::redact(&t.url),
            time::format_datetime(t.not_before, 0)
        );
        // Status 1: the result follows in TransferComplete (§A.3.2.8).
        Ok((
            1,
            transfer::time_text(time::UNKNOWN_TIME),
            transfer::time_text(time::UNKNOWN_TIME),
        ))
    }

    fn upload(&mut self, u: &Upload) -> Result<(u8, String, String), Fault> {
        self.require(self.uploads(), "Upload")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .upload(u, self.now, self.limits, |ft| {
                !produce_hook(hooks, ft.kind).is_empty()
            })?;
        log::info!(
            "Upload {:?} ({}) to {} queued",
            t.command_key,
            t.file_type,
            url::redact(&t.url)
        );
        Ok((
            1,
            transfer::time_text(time::UNKNOWN_TIME),
            transfer::time_text(time::UNKNOWN_TIME),
        ))
    }

    fn schedule_download(&mut self, d: &ScheduleDownload) -> Result<(), Fault> {
        self.require(self.downloads(), "ScheduleDownload")?;
        let hooks = self.hooks;
        let t = self
            .state
            .transfers
            .schedule_download(d, self.now, self.limits, |ft, text| {
                !apply_hook(hooks, ft.kind, text).is_empty()
            })?;
        log::info!(
            "ScheduleDownload {:?} ({}) of {} queued",
            t.command_key,
            t.file_type,
            url::redact(&t.url)
        );
        Ok(())
    }

    fn cancel_transfer(&mut self, command_key: &str) -> Result<(), Fault> {
        self.require(self.downloads() || self.uploads(), "CancelTransfer")?;
        self.state.transfers.cancel(command_key)
    }

    fn queued_transfers(&mut self) -> Result<Vec<QueuedTransfer>, Fault> {
        self.require(self.downloads() || self.uploads(), "GetQueuedTransfers")?;
        Ok(self
            .state
            .transfers
            .list
            .iter()
            .map(transfer::Transfer::queued)
            .collect())
    }
}
