//! The transfers between sessions: which step is due, the job that fetches, uploads or applies a
//! file in a thread of its own, and the transfer directory.

use std::time::Duration;

use super::{Agent, JobDone, Trigger};
use crate::config::ResolvedHooks;
use crate::http::files as client;
use crate::sys::private::PrivateDir;
use crate::transfer::{self, hooks, FileKind, FileType, Next, Transfers};

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
        let hooks = self.hooks.clone();
        let Some(t) = self.state.transfers.get_mut(id) else {
            return;
        };
        let dir = match dir {
            Ok(d) => d,
            Err(e) => {
                let code = if t.origin.is_download() { 9010 } else { 9011 };
                t.finish(now, code, e);
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
        let hook_timeout = Duration::from_secs(self.cfg.transfer.hook_timeout.into());
        let cfg = self.client_config();
        let method = if self.cfg.transfer.upload_method == "POST" {
            client::UploadMethod::Post
        } else {
            client::UploadMethod::Put
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
        let job = move || -> Result<(), client::Failure> {
            let fail = |code: u32, message: String| client::Failure {
                code,
                message,
                retryable: false,
            };
            let file_name = transfer_file(t.id, "file");
            let file = dir.join(&file_name);
            if apply {
                let line = apply_hook(&hooks, kind, &t.file_type);
                if line.is_empty() {
                    return Err(fail(9010, format!("no hook applies {:?}", t.file_type)));
                }
                // The hook gets a path nobody else can rename or rewrite: the directory is
                // still the private one opened, and the file in it is a regular file.
                if let Err(e) = dir
                    .check()
                    .and_then(|()| dir.open_file(&file_name).map(drop))
                {
                    return Err(fail(
                        9010,
                        format!("{} is not the file downloaded: {e}", file.display()),
                    ));
                }
                let call = hooks::Call {
                    file: Some(&file),
                    target: &t.target_file_name,
                    file_type: &t.file_type,
                    instance: None,
                    command_key: &t.command_key,
                };
                // The mark `recover` tells a started hook by (a hook that reboots may never
                // return).
                if let Err(e) = dir.create(&transfer_file(t.id, "started")) {
                    return Err(fail(9010, e.to_string()));
                }
                return hooks::run(line, &call, hook_timeout, 9010)
                    .map_err(|e| fail(e.code, e.message));
            }
            if !t.origin.is_download() {
                let up_name = transfer_file(t.id, "up");
                let up = dir.join(&up_name);
                // The produce hook writes a new file: nothing left from before is sent.
                if let Err(e) = dir.remove(&up_name) {
                    return Err(fail(9011, e.to_string()));
                }
                let line = produce_hook(&hooks, kind);
                let instance = FileType::upload(&t.file_type).and_then(|f| f.instance);
                let call = hooks::Call {
                    file: Some(&up),
                    target: "",
                    file_type: &t.file_type,
                    instance,
                    command_key: &t.command_key,
                };
                let r = hooks::run(line, &call, hook_timeout, 9011)
                    .map_err(|e| fail(e.code, e.message))
                    .and_then(|()| {
                        dir.check()
                            .map_err(|e| fail(9011, e.to_string()))
                            .and_then(|()| {
                                client::upload(&cfg, &t.url, &t.username, &t.password, method, &up)
                            })
                    });
                let _ = dir.remove(&up_name);
                return r;
            }
            let expected = (t.file_size > 0).then_some(u64::from(t.file_size));
            let free = client::free_space(dir.path());
            // Without a FileSize, a quarter of the free space stays free (the directory is
            // RAM on a router).
            let mut cfg = cfg;
            cfg.max_download = free.map(|f| f - f / 4);
            if let (Some(size), Some(free)) = (expected, free) {
                if size > free {
                    return Err(fail(
                        9010,
                        format!(
                            "the file ({size} bytes) does not fit in {} ({free} bytes free)",
                            dir.path().display()
                        ),
                    ));
                }
            }
            let part_name = transfer_file(t.id, "part");
            let part = dir.join(&part_name);
            let r = dir
                .create(&part_name)
                .map_err(|e| fail(9010, e.to_string()))
                .and_then(|dest| {
                    client::download_to(
                        &cfg,
                        &t.url,
                        &t.username,
                        &t.password,
                        dest,
                        &part,
                        expected,
                    )
                })
                .and_then(|_| {
                    dir.rename(&part_name, &file_name)
                        .map_err(|e| fail(9010, e.to_string()))
                });
            if r.is_err() {
                let _ = dir.remove(&part_name);
            }
            r
        };
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("transfer".into())
            .spawn(move || {
                // A panic in the transfer code must not leave the record marked as running
                // with no thread behind it: it becomes a retryable internal error.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                    .unwrap_or_else(|_| {
                        Err(client::Failure {
                            code: 9002,
                            message: "internal error in the transfer thread".into(),
                            retryable: true,
                        })
                    });
                let _ = tx.send(Trigger::Transfer(JobDone { id, apply, result }));
            });
        if let Err(e) = spawned {
            self.job_done(JobDone {
                id,
                apply,
                result: Err(client::Failure {
                    code: 9002,
                    message: format!("cannot start the transfer thread: {e}"),
                    retryable: true,
                }),
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
                    let _ = dir.remove(&transfer_file(done.id, "file"));
                    let _ = dir.remove(&transfer_file(done.id, "started"));
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
            ca_file: a.ca_file.clone(),
            client_cert: a.client_cert.clone(),
            client_key: a.client_key.clone(),
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

/// The file of transfer `id` in the transfer directory: `part` while it arrives, `file` when
/// whole, `up` for an upload being produced.
pub(super) fn transfer_file(id: u64, ext: &str) -> String {
    format!("{id}.{ext}")
}

/// Removes what a cut left in the transfer directory: every partial download and upload, and
/// whole files no record waits to apply.
pub(super) fn clean_transfer_dir(dir: &PrivateDir, transfers: &Transfers) {
    let Ok(names) = dir.names() else {
        return;
    };
    for name in names {
        let Some((id, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else {
            continue;
        };
        let keep = ext == "file"
            && transfers
                .get(id)
                .is_some_and(|t| t.state == transfer::State::Fetched);
        if matches!(ext, "part" | "file" | "up" | "started") && !keep {
            let _ = dir.remove(&name);
        }
    }
}
