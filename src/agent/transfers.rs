//! The transfers between sessions: which step is due, the job that fetches, uploads or applies a
//! file in a thread of its own, and the transfer directory.

use std::time::Duration;

use super::{Agent, JobDone, Trigger};
use crate::config::ResolvedHooks;
use crate::cwmp::fault::TransferFailure;
use crate::cwmp::fault::TransferFault;
use crate::http::files as client;
use crate::sys::private::PrivateDir;
use crate::transfer::job::{self as job, FileClient, Job, Step};
use crate::transfer::{self, FileKind, Next};

impl Agent {
    /// Starts what is due among the transfers (never during a session: the loop calls this
    /// between sessions). Returns when to look again.
    pub(super) fn transfer_step(&mut self, now: i64) -> Option<i64> {
        let before = self.state.transfers.completed().count();
        let next = self.state.transfers.next(now);
        let mut changed = self.state.transfers.completed().count() != before;
        let wake = match next {
            Next::Wait(t) => t,
            Next::Start(id) => {
                self.start_job(id, false, now);
                changed = true;
                None
            }
            Next::Apply(id) => {
                self.start_job(id, true, now);
                changed = true;
                None
            }
        };
        if changed {
            self.ensure_cpe_events();
            self.save();
        }
        wake
    }

    /// Marks and persists the transfer's next step, then runs it in a thread of its own, which
    /// reports with [`Trigger::Transfer`].
    pub(super) fn start_job(&mut self, id: u64, apply: bool, now: i64) {
        // Opened and checked before every job: private to the agent, whatever was there.
        let dir = self.transfer_dir();
        let Some(t) = self.state.transfers.get_mut(id) else {
            return;
        };
        let dir = match dir {
            Ok(d) => d,
            Err(e) => {
                let fault = if t.origin.is_download() {
                    TransferFault::Download
                } else {
                    TransferFault::Upload
                };
                t.finish(now, fault.code(), e);
                return;
            }
        };
        let prev = t.clone();
        if apply {
            t.state = transfer::State::Applying;
        } else {
            t.state = transfer::State::Fetching;
            t.attempts += 1;
            t.start_time = now;
        }
        let t = t.clone();
        // Written before the step begins; a step that cannot be recorded does not begin (it is
        // tried again after retry_interval).
        if let Err(e) = self.persist() {
            log::error!("{e}; transfer {:?} postponed", t.command_key);
            if let Some(r) = self.state.transfers.get_mut(id) {
                *r = transfer::Transfer {
                    not_before: now.saturating_add(self.cfg.transfer.retry_interval.into()),
                    ..prev
                };
            }
            return;
        }
        let client = HttpFiles {
            cfg: self.client_config(),
            method: if self.cfg.transfer.upload_method == "POST" {
                client::UploadMethod::Post
            } else {
                client::UploadMethod::Put
            },
        };
        let kind = t.kind();
        log::info!(
            "{} {} {:?} ({}) attempt {}",
            if apply { "applying" } else { "starting" },
            match t.origin {
                transfer::Origin::Download => "Download",
                transfer::Origin::ScheduleDownload => "ScheduleDownload",
                transfer::Origin::Upload => "Upload",
            },
            t.command_key,
            t.file_type,
            t.attempts
        );
        let (step, hook) = if apply {
            (Step::Apply, apply_hook(&self.hooks, kind, &t.file_type))
        } else if t.origin.is_download() {
            (Step::Fetch, "")
        } else {
            (Step::Upload, produce_hook(&self.hooks, kind))
        };
        let job = Job {
            id: t.id,
            step,
            file_type: t.file_type,
            target_file_name: t.target_file_name,
            command_key: t.command_key,
            url: t.url,
            username: t.username,
            password: t.password,
            file_size: t.file_size,
            dir,
            hook: hook.to_string(),
            hook_timeout: Duration::from_secs(self.cfg.transfer.hook_timeout.into()),
        };
        let done = move |result| Trigger::Transfer(JobDone { id, apply, result });
        let started = self.jobs.start(
            "transfer",
            move || done(job.run(&client)),
            // A panic in the transfer code must not leave the record marked as running with no
            // thread behind it: it becomes a retryable internal error.
            move || {
                done(Err(TransferFailure::internal(
                    "internal error in the transfer thread",
                )))
            },
        );
        if let Err(e) = started {
            self.job_done(JobDone {
                id,
                apply,
                result: Err(TransferFailure::internal(format!(
                    "cannot start the transfer thread: {e}"
                ))),
            });
        }
    }

    /// A transfer thread finished a step: the record moves on and is persisted.
    pub(super) fn job_done(&mut self, done: JobDone) {
        let now = self.now_unix();
        let retry_interval = self.cfg.transfer.retry_interval;
        let (reboots, kind) = {
            let Some(t) = self.state.transfers.get(done.id) else {
                return;
            };
            (apply_reboots(&self.hooks, t.kind()), t.kind())
        };
        let Some(t) = self.state.transfers.get_mut(done.id) else {
            return;
        };
        let key = t.command_key.clone();
        match (done.apply, done.result) {
            (false, Ok(())) if t.origin.is_download() => {
                log::info!("{key:?}: file downloaded; applying it next");
                t.state = transfer::State::Fetched;
            }
            (false, Ok(())) => {
                log::info!("{key:?}: upload done");
                t.finish(now, 0, "");
            }
            (false, Err(f)) => {
                log::warn!("{key:?}: transfer failed with {}: {}", f.code, f.message);
                self.state.transfers.failed(
                    done.id,
                    now,
                    f.code,
                    &f.message,
                    f.retryable,
                    retry_interval,
                );
            }
            (true, Ok(())) if reboots => {
                log::info!("{key:?}: applied; waiting for the device to restart");
                t.state = transfer::State::AwaitingReboot;
                t.since = now;
            }
            (true, Ok(())) => {
                log::info!("{key:?}: applied");
                t.finish(now, 0, "");
            }
            (true, Err(f)) => {
                log::warn!("{key:?}: apply failed with {}: {}", f.code, f.message);
                t.finish(now, f.code, f.message);
            }
        }
        let finished = self
            .state
            .transfers
            .get(done.id)
            .is_none_or(|t| t.state == transfer::State::Done);
        if done.apply && finished && kind == FileKind::Firmware {
            // The ACS asked for this firmware: no AutonomousTransferComplete for the version it
            // brought.
            self.state.software_version.clear();
        }
        self.ensure_cpe_events();
        // Written before the files go: a cut in between finds the record done, not an apply
        // whose file vanished.
        self.save();
        if done.apply && finished {
            match self.transfer_dir() {
                Ok(dir) => {
                    let _ = dir.remove(&job::file_name(done.id, "file"));
                    let _ = dir.remove(&job::file_name(done.id, "started"));
                }
                Err(e) => log::error!("{e}"),
            }
        }
    }

    /// The transfer directory, opened as a private directory (created 0700; a symlink or a
    /// directory of another owner moved aside and replaced).
    pub(super) fn transfer_dir(&self) -> Result<PrivateDir, String> {
        PrivateDir::open(&self.cfg.transfer.dir).map_err(|e| {
            format!(
                "transfer directory {}: {e}",
                self.cfg.transfer.dir.display()
            )
        })
    }

    /// The file server client's settings: the ACS connection's TLS settings (§3.4.3).
    pub(super) fn client_config(&self) -> client::ClientConfig {
        let a = &self.cfg.acs;
        client::ClientConfig {
            tls: a.tls(),
            timeout: Duration::from_secs(self.cfg.transfer.timeout.into()),
            user_agent: concat!("cwmpd/", env!("CARGO_PKG_VERSION")).to_string(),
            max_download: None,
            allow_basic_over_http: a.allow_basic_over_http,
        }
    }
}

/// The hook applying a downloaded file of this kind ("" = none).
pub(super) fn apply_hook<'a>(hooks: &'a ResolvedHooks, kind: FileKind, file_type: &str) -> &'a str {
    match kind {
        FileKind::Firmware => &hooks.firmware,
        FileKind::WebContent => &hooks.web_content,
        FileKind::Config => &hooks.config,
        FileKind::Log => "",
        FileKind::Vendor => {
            let want = transfer::normalize(file_type);
            hooks
                .vendor
                .iter()
                .find(|(k, _)| transfer::normalize(k) == want)
                .map_or("", |(_, v)| v.as_str())
        }
    }
}

/// Whether the apply hook of this kind reboots the device.
pub(super) fn apply_reboots(hooks: &ResolvedHooks, kind: FileKind) -> bool {
    match kind {
        FileKind::Firmware => hooks.firmware_reboots,
        FileKind::WebContent => hooks.web_content_reboots,
        FileKind::Config => hooks.config_reboots,
        FileKind::Log | FileKind::Vendor => false,
    }
}

/// The hook producing an upload's file of this kind ("" = none).
pub(super) fn produce_hook(hooks: &ResolvedHooks, kind: FileKind) -> &str {
    match kind {
        FileKind::Config => &hooks.upload_config,
        FileKind::Log => &hooks.upload_log,
        _ => "",
    }
}

/// The daemon's file client ([`client`]) as a transfer job's [`FileClient`].
struct HttpFiles {
    cfg: client::ClientConfig,
    method: client::UploadMethod,
}

impl FileClient for HttpFiles {
    fn download(
        &self,
        url: &str,
        username: &str,
        password: &str,
        dest: std::fs::File,
        part: &std::path::Path,
        expected: Option<u64>,
        limit: Option<u64>,
    ) -> Result<u64, TransferFailure> {
        let cfg = client::ClientConfig {
            max_download: limit,
            ..self.cfg.clone()
        };
        client::download_to(&cfg, url, username, password, dest, part, expected)
    }

    fn upload(
        &self,
        url: &str,
        username: &str,
        password: &str,
        src: &std::path::Path,
    ) -> Result<(), TransferFailure> {
        client::upload(&self.cfg, url, username, password, self.method, src)
    }

    fn free_space(&self, dir: &std::path::Path) -> Option<u64> {
        client::free_space(dir)
    }
}
