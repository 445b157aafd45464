//! File transfers (TR-069 §3.4.3; Download §A.3.2.8, Upload §A.3.2.9, ScheduleDownload §A.4.1.8,
//! CancelTransfer §A.4.1.9, GetQueuedTransfers §A.4.1.5, GetAllQueuedTransfers §A.4.1.6) as
//! durable records, and the pure rules that move them along.
//!
//! A [`Transfer`] is journalled in the agent's store file before the ACS gets its response, and
//! every state change is written before the step it announces is taken:
//!
//! ```text
//!  Queued ──due──> Fetching ──ok──> Fetched ──> Applying ──ok──> Done(0)
//!    ^  (not_before,   │ (bytes      (file    (hook    │ hook reboots
//!    │   windows)      │  arriving)   whole)   runs)   └─> AwaitingReboot ──next start──> Done(0)
//!    └─ retryable ─────┤
//!                      └─ failed ──> Done(fault)        Done ──TransferCompleteResponse──> removed
//! ```
//!
//! An Upload goes Queued → Fetching (the hook produces the file, then it is sent) → Done.
//! [`Transfers::recover`] says what a record found at start means: a fetch cut by a power cut is
//! retried from zero (or reported 9017 when no retry is left), an apply that reboots the device
//! counts as done (the device went down, or was going down, running it), a non-rebooting apply
//! runs again while its file is there.
//!
//! Nothing here does I/O: the agent gives the time and carries out what these functions decide;
//! `job` runs one step of a transfer (the bytes move through the agent's [`job::FileClient`],
//! `http::files` in the daemon) and `hooks` runs the OS commands.

pub mod config;
pub mod hooks;
pub mod job;

use crate::cwmp::fault::{Fault, TransferFault};
use crate::events::{self, MAX_COMMAND_KEY_LEN};
use crate::soap::msg::{Download, FaultStruct, QueuedTransfer, ScheduleDownload, Upload};

/// Longest URL, Username, Password and TargetFileName accepted (`string(256)` in the schema).
pub const MAX_ARG_LEN: usize = 256;

/// The unknown time of the schema (`0001-01-01T00:00:00Z`): a time not (yet) known.
use crate::cwmp::time::{self, UNKNOWN_TIME};

/// What a FileType names (§A.3.2.8 and §A.3.2.9 tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `1 Firmware Upgrade Image` (Download).
    Firmware,
    /// `2 Web Content` (Download).
    WebContent,
    /// `3 Vendor Configuration File` (Download); `1`/`3 Vendor Configuration File` (Upload).
    Config,
    /// `2`/`4 Vendor Log File` (Upload).
    Log,
    /// `X <OUI> <name>` (Download).
    Vendor,
}

/// A FileType the agent understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileType {
    pub kind: FileKind,
    /// The `<i>` of the instance-specific upload types (`3 Vendor Configuration File 2`).
    pub instance: Option<u32>,
}

impl FileType {
    /// A Download FileType; case and surrounding space are not significant (ACSes write
    /// "3 Vendor configuration File").
    pub fn download(s: &str) -> Option<FileType> {
        let t = normalize(s);
        let kind = match t.as_str() {
            "1 firmware upgrade image" => FileKind::Firmware,
            "2 web content" => FileKind::WebContent,
            "3 vendor configuration file" => FileKind::Config,
            _ if FileType::is_vendor(s) => FileKind::Vendor,
            _ => return None,
        };
        Some(FileType {
            kind,
            instance: None,
        })
    }

    /// An Upload FileType: `1 Vendor Configuration File`, `2 Vendor Log File`, and the
    /// instance-specific `3 Vendor Configuration File <i>`, `4 Vendor Log File <i>`.
    pub fn upload(s: &str) -> Option<FileType> {
        let t = normalize(s);
        let plain = |kind| {
            Some(FileType {
                kind,
                instance: None,
            })
        };
        match t.as_str() {
            "1 vendor configuration file" => return plain(FileKind::Config),
            "2 vendor log file" => return plain(FileKind::Log),
            _ => {}
        }
        let (head, i) = t.rsplit_once(' ')?;
        let instance: u32 = i.parse().ok().filter(|&i| i > 0)?;
        let kind = match head {
            "3 vendor configuration file" => FileKind::Config,
            "4 vendor log file" => FileKind::Log,
            _ => return None,
        };
        Some(FileType {
            kind,
            instance: Some(instance),
        })
    }

    /// `X <OUI> <name>`: six hex digits and a name (Table of §A.3.2.8).
    pub fn is_vendor(s: &str) -> bool {
        let s = s.trim();
        let Some(rest) = s.strip_prefix("X ") else {
            return false;
        };
        let (oui, name) = rest.split_once(' ').unwrap_or((rest, ""));
        oui.len() == 6 && oui.bytes().all(|b| b.is_ascii_hexdigit()) && !name.trim().is_empty()
    }
}

/// A transfer's StartTime or CompleteTime as `xsd:dateTime` (TransferComplete, §A.3.3.2;
/// Download and Upload responses, §A.3.2.8): [`UNKNOWN_TIME`] as the unknown time
/// `0001-01-01T00:00:00Z` (TR-106 §3.2.1), any other time with a `+00:00` offset.
pub fn time_text(t: i64) -> String {
    if t == UNKNOWN_TIME {
        time::format_datetime_utc(t)
    } else {
        time::format_datetime(t, 0)
    }
}

/// Lower case, single spaces, trimmed.
pub fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// Which RPC made the transfer: it names the `M <method>` event of its TransferComplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Download,
    ScheduleDownload,
    Upload,
}

impl Origin {
    /// The `M <method>` event code.
    pub fn event(self) -> &'static str {
        match self {
            Origin::Download => events::M_DOWNLOAD,
            Origin::ScheduleDownload => events::M_SCHEDULE_DOWNLOAD,
            Origin::Upload => events::M_UPLOAD,
        }
    }

    pub fn is_download(self) -> bool {
        self != Origin::Upload
    }
}

/// Where a transfer is. Each is written to the store before the step it names begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Waiting for its time (DelaySeconds, a time window, a retry).
    #[default]
    Queued,
    /// Bytes are moving (a download arriving in `<id>.part`, or an upload being produced and
    /// sent).
    Fetching,
    /// The downloaded file is whole (`<id>.file`); the apply hook has not started.
    Fetched,
    /// The apply hook runs.
    Applying,
    /// The apply hook reboots the device and returned; the agent waits to be stopped.
    AwaitingReboot,
    /// Finished; waiting for the ACS to acknowledge its TransferComplete.
    Done,
}

/// One time window, in Unix seconds (ScheduleDownload's are relative to the request; a
/// Download has one window from its DelaySeconds on, without end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// One transfer the ACS asked for, from its request until its TransferComplete is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transfer {
    /// Unique for the life of the store: names the files in the transfer directory.
    pub id: u64,
    pub origin: Origin,
    pub command_key: String,
    /// As the ACS wrote it (GetAllQueuedTransfers echoes it).
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub windows: Vec<Window>,
    /// Attempts allowed after the first for a retryable failure.
    pub max_retries: u32,
    /// Attempts started so far.
    pub attempts: u32,
    /// Not started before this time (a retry's wait).
    pub not_before: i64,
    pub state: State,
    /// When the current or last attempt began; [`UNKNOWN_TIME`] before.
    pub start_time: i64,
    pub complete_time: i64,
    pub fault_code: u32,
    pub fault_string: String,
    /// When the state last changed to [`State::AwaitingReboot`].
    pub since: i64,
}

impl Transfer {
    /// The FileType as understood (a record from an older store may not parse: Vendor then).
    pub fn kind(&self) -> FileKind {
        let ft = if self.origin.is_download() {
            FileType::download(&self.file_type)
        } else {
            FileType::upload(&self.file_type)
        };
        ft.map_or(FileKind::Vendor, |f| f.kind)
    }

    /// The `State` of a QueuedTransferStruct: 1 not yet started, 2 in progress, 3 completed.
    pub fn queued_state(&self) -> u8 {
        match self.state {
            State::Queued => 1,
            State::Fetching | State::Fetched | State::Applying | State::AwaitingReboot => 2,
            State::Done => 3,
        }
    }

    /// The AllQueuedTransferStruct of this record.
    pub fn queued(&self) -> QueuedTransfer {
        QueuedTransfer {
            command_key: self.command_key.clone(),
            state: self.queued_state(),
            is_download: self.origin.is_download(),
            file_type: self.file_type.clone(),
            file_size: self.file_size,
            target_file_name: self.target_file_name.clone(),
        }
    }

    /// Ends the transfer with `fault` (0 = success) at `now`.
    pub fn finish(&mut self, now: i64, code: u32, string: impl Into<String>) {
        self.state = State::Done;
        self.complete_time = if code == 0 || self.start_time != UNKNOWN_TIME {
            now
        } else {
            UNKNOWN_TIME
        };
        self.fault_code = code;
        // FaultString is `string(256)` in the schema.
        self.fault_string = string.into().chars().take(256).collect();
    }

    /// The FaultStruct of its TransferComplete.
    pub fn fault(&self) -> FaultStruct {
        FaultStruct {
            code: self.fault_code,
            string: self.fault_string.clone(),
        }
    }

    /// Whether another attempt is allowed after a retryable failure.
    pub fn can_retry(&self) -> bool {
        self.attempts <= self.max_retries
    }
}

/// The limits and defaults the RPC checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_queued: usize,
    /// Retries when the ACS leaves the choice to the CPE (MaxRetries -1, and every Download).
    pub retries: u32,
}

/// What a due-check decided for the transfer to start next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing is due; the earliest time something may become due, if any.
    Wait(Option<i64>),
    /// Start this transfer's fetch (or upload) now.
    Start(u64),
    /// Run this transfer's apply hook now.
    Apply(u64),
}

/// The agent's transfers, as persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfers {
    pub list: Vec<Transfer>,
    pub next_id: u64,
}

// The store's records (lenient: keys a later version added are ignored). `Default` on a
// record and its enums only serves the reader: every field but `since` is required.
crate::from_toml_struct!(lenient Transfers { list, next_id });
crate::from_toml_struct!(lenient Window { start, end } required "start", "end");
crate::from_toml_struct!(lenient Transfer {
    id, origin, command_key, file_type, url, username, password, file_size, target_file_name,
    windows, max_retries, attempts, not_before, state, start_time, complete_time, fault_code,
    fault_string, since,
} required "id", "origin", "command_key", "file_type", "url", "username", "password",
    "file_size", "target_file_name", "windows", "max_retries", "attempts", "not_before", "state",
    "start_time", "complete_time", "fault_code", "fault_string");
crate::from_toml_enum!(Origin {
    "Download" => Download,
    "ScheduleDownload" => ScheduleDownload,
    "Upload" => Upload,
});
crate::from_toml_enum!(State {
    "Queued" => Queued,
    "Fetching" => Fetching,
    "Fetched" => Fetched,
    "Applying" => Applying,
    "AwaitingReboot" => AwaitingReboot,
    "Done" => Done,
});

impl Transfers {
    /// Validates and queues a Download (§A.3.2.8). `supported` says whether a FileType has an
    /// apply hook. Returns the record, or the fault of the DownloadResponse. An identical
    /// Download still pending (an ACS resending after a lost response) is not queued twice.
    pub fn download(
        &mut self,
        d: &Download,
        now: i64,
        limits: Limits,
        supported: impl Fn(&FileType, &str) -> bool,
    ) -> Result<&Transfer, Fault> {
        let start = now.saturating_add(i64::from(d.delay_seconds));
        let window = Window {
            start,
            end: i64::MAX,
        };
        let t = download_record(d, Origin::Download, vec![window], limits.retries, supported)?;
        self.push(t, limits)
    }

    /// Validates and queues a ScheduleDownload (§A.4.1.8): one or two windows, relative to
    /// `now`, in order and not overlapping; WindowMode 1–3 (4, "Confirmation Needed", needs a
    /// user interface this CPE does not have).
    pub fn schedule_download(
        &mut self,
        d: &ScheduleDownload,
        now: i64,
        limits: Limits,
        supported: impl Fn(&FileType, &str) -> bool,
    ) -> Result<&Transfer, Fault> {
        if d.time_windows.is_empty() || d.time_windows.len() > 2 {
            return Err(invalid(
                "TimeWindowList must have one or two windows".into(),
            ));
        }
        let mut windows = Vec::new();
        let mut retries = None;
        let mut prev_end: Option<u32> = None;
        for w in &d.time_windows {
            match normalize(&w.window_mode).as_str() {
                "1 at any time" | "2 immediately" | "3 when idle" => {}
                "4 confirmation needed" => {
                    return Err(invalid(
                        "WindowMode 4 Confirmation Needed: this CPE has no user interface".into(),
                    ))
                }
                _ => return Err(invalid(format!("unknown WindowMode {:?}", w.window_mode))),
            }
            if w.window_end < w.window_start {
                return Err(invalid("WindowEnd is before WindowStart".into()));
            }
            if prev_end.is_some_and(|e| w.window_start <= e) {
                return Err(invalid("time windows overlap or are out of order".into()));
            }
            prev_end = Some(w.window_end);
            if w.max_retries < -1 {
                return Err(invalid("MaxRetries must be -1 or more".into()));
            }
            // One record carries one retry budget: the first window's (TR-069 gives one per
            // window; a second window gets the attempts the first left).
            retries.get_or_insert(if w.max_retries == -1 {
                limits.retries
            } else {
                u32::try_from(w.max_retries).unwrap_or(0)
            });
            // `now` is the request's time rounded up (nothing starts early); the end is counted
            // from the second before, and a window holds while `end > now`, so nothing starts
            // after it either.
            let start = now.saturating_add(i64::from(w.window_start));
            windows.push(Window {
                start,
                // A window of zero length still holds one attempt.
                end: now
                    .saturating_add(i64::from(w.window_end))
                    .saturating_sub(1)
                    .max(start.saturating_add(1)),
            });
        }
        let as_download = Download {
            command_key: d.command_key.clone(),
            file_type: d.file_type.clone(),
            url: d.url.clone(),
            username: d.username.clone(),
            password: d.password.clone(),
            file_size: d.file_size,
            target_file_name: d.target_file_name.clone(),
            ..Default::default()
        };
        let t = download_record(
            &as_download,
            Origin::ScheduleDownload,
            windows,
            retries.unwrap_or(limits.retries),
            supported,
        )?;
        self.push(t, limits)
    }

    /// Validates and queues an Upload (§A.3.2.9). `supported` says whether the FileType's kind
    /// has a producing hook.
    pub fn upload(
        &mut self,
        u: &Upload,
        now: i64,
        limits: Limits,
        supported: impl Fn(&FileType) -> bool,
    ) -> Result<&Transfer, Fault> {
        let ft = FileType::upload(&u.file_type)
            .ok_or_else(|| invalid(format!("FileType {:?} is not an upload type", u.file_type)))?;
        if !supported(&ft) {
            return Err(invalid(format!(
                "FileType {:?} is not supported by this CPE",
                u.file_type
            )));
        }
        let start = now.saturating_add(i64::from(u.delay_seconds));
        let as_download = Download {
            command_key: u.command_key.clone(),
            file_type: u.file_type.clone(),
            url: u.url.clone(),
            username: u.username.clone(),
            password: u.password.clone(),
            ..Default::default()
        };
        let window = Window {
            start,
            end: i64::MAX,
        };
        let t = queued_record(&as_download, Origin::Upload, vec![window], limits.retries)?;
        self.push(t, limits)
    }

    fn push(&mut self, mut t: Transfer, limits: Limits) -> Result<&Transfer, Fault> {
        if let Some(i) = self.list.iter().position(|x| {
            x.state != State::Done
                && x.origin == t.origin
                && x.command_key == t.command_key
                && x.url == t.url
                && normalize(&x.file_type) == normalize(&t.file_type)
        }) {
            return self
                .list
                .get(i)
                .ok_or_else(|| Fault::internal("transfer vanished"));
        }
        if self.list.len() >= limits.max_queued {
            return Err(Fault::ResourcesExceeded(format!(
                "{} transfers are queued already",
                self.list.len()
            )));
        }
        self.next_id = self.next_id.wrapping_add(1);
        t.id = self.next_id;
        self.list.push(t);
        self.list
            .last()
            .ok_or_else(|| Fault::internal("transfer vanished"))
    }

    /// CancelTransfer (§A.4.1.9): removes the not-yet-started transfers with this CommandKey.
    pub fn cancel(&mut self, command_key: &str) -> Result<(), Fault> {
        let matching: Vec<&Transfer> = self
            .list
            .iter()
            .filter(|t| t.command_key == command_key)
            .collect();
        if matching.is_empty() {
            return Err(invalid(format!(
                "no transfer with CommandKey {command_key:?}"
            )));
        }
        if matching.iter().any(|t| t.state != State::Queued) {
            return Err(Fault::Transfer(
                9021,
                format!("the transfer with CommandKey {command_key:?} has started or completed"),
            ));
        }
        self.list.retain(|t| t.command_key != command_key);
        Ok(())
    }

    pub fn get(&self, id: u64) -> Option<&Transfer> {
        self.list.iter().find(|t| t.id == id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Transfer> {
        self.list.iter_mut().find(|t| t.id == id)
    }

    /// Removes a transfer whose TransferComplete the ACS acknowledged.
    pub fn remove(&mut self, id: u64) {
        self.list.retain(|t| t.id != id);
    }

    /// Whether a hook that reboots the device has returned and the agent waits to be stopped.
    pub fn awaiting_reboot(&self) -> bool {
        self.list.iter().any(|t| t.state == State::AwaitingReboot)
    }

    /// Whether a fetch or an apply is under way (then nothing else starts).
    pub fn busy(&self) -> bool {
        self.list
            .iter()
            .any(|t| matches!(t.state, State::Fetching | State::Applying))
    }

    /// Decides what to do at `now` (nothing runs): the next apply of a whole file first, then
    /// the oldest due transfer. Transfers whose windows all passed end with 9020 here.
    pub fn next(&mut self, now: i64) -> Next {
        if self.busy() || self.awaiting_reboot() {
            return Next::Wait(None);
        }
        if let Some(t) = self.list.iter().find(|t| t.state == State::Fetched) {
            return Next::Apply(t.id);
        }
        let mut earliest: Option<i64> = None;
        let mut start = None;
        for t in self.list.iter_mut().filter(|t| t.state == State::Queued) {
            let from = t.not_before;
            match t.windows.iter().find(|w| w.end > now.max(from)) {
                None => {
                    let why = if t.origin == Origin::ScheduleDownload {
                        "not completed within the time windows"
                    } else {
                        "not started in time"
                    };
                    let string = if t.fault_code != 0 {
                        format!("{why}: {}", t.fault_string)
                    } else {
                        why.to_string()
                    };
                    t.finish(now, TransferFault::TimeWindows.code(), string);
                }
                Some(w) => {
                    let at = from.max(w.start);
                    if at <= now {
                        if start.is_none() {
                            start = Some(t.id);
                        }
                    } else {
                        earliest = Some(earliest.map_or(at, |e: i64| e.min(at)));
                    }
                }
            }
        }
        match start {
            Some(id) => Next::Start(id),
            None => Next::Wait(earliest),
        }
    }

    /// A fetch (or upload) failed at `now`: another attempt after `retry_interval` when the
    /// failure is retryable and attempts are left, else the transfer ends with the fault.
    pub fn failed(
        &mut self,
        id: u64,
        now: i64,
        code: u32,
        message: &str,
        retryable: bool,
        retry_interval: u32,
    ) {
        let Some(t) = self.get_mut(id) else {
            return;
        };
        if retryable && t.can_retry() {
            t.state = State::Queued;
            t.not_before = now.saturating_add(i64::from(retry_interval));
            // Kept for a 9020 that follows, so its FaultString says what went wrong.
            t.fault_code = code;
            t.fault_string = message.to_string();
        } else {
            t.finish(now, code, message);
        }
    }

    /// What records found at start mean (a power cut, a kill, a reboot happened):
    /// - `Fetching`: the attempt was cut; queued again at once when attempts are left, else
    ///   9017 (an upload: 9011);
    /// - `Applying` of a hook that reboots, `AwaitingReboot`: done (the device went down
    ///   running it);
    /// - `Applying` of one that does not: `Fetched` again when the file is still there (the
    ///   hook runs again), else 9010;
    /// - `Fetched` whose file is gone (a reboot emptied the RAM directory): queued again when
    ///   attempts are left, else 9010.
    ///
    /// `reboots(kind)` tells whether a kind's hook reboots; `file_present(id)` whether the
    /// whole downloaded file is there; `hook_started(id)` whether the apply hook was started
    /// (a mark written just before it; a cut between the `Applying` mark and the hook's start
    /// applies again). Returns the firmware downloads completed this way.
    pub fn recover(
        &mut self,
        now: i64,
        reboots: impl Fn(FileKind) -> bool,
        file_present: impl Fn(u64) -> bool,
        hook_started: impl Fn(u64) -> bool,
    ) -> usize {
        let mut firmware = 0;
        for t in &mut self.list {
            if t.state == State::Applying && file_present(t.id) && !hook_started(t.id) {
                t.state = State::Fetched;
                continue;
            }
            match t.state {
                State::Queued | State::Done => {}
                State::Fetching => {
                    if t.can_retry() {
                        t.state = State::Queued;
                        t.not_before = now;
                    } else {
                        let fault = if t.origin == Origin::Upload {
                            TransferFault::Upload
                        } else {
                            TransferFault::Incomplete
                        };
                        t.finish(
                            now,
                            fault.code(),
                            "the transfer was interrupted (agent restart)",
                        );
                    }
                }
                State::Applying | State::AwaitingReboot
                    if t.state == State::AwaitingReboot || reboots(t.kind()) =>
                {
                    if t.kind() == FileKind::Firmware {
                        firmware += 1;
                    }
                    t.finish(now, 0, "");
                }
                State::Applying | State::Fetched => {
                    if file_present(t.id) {
                        t.state = State::Fetched;
                    } else if t.state == State::Fetched && t.can_retry() {
                        t.state = State::Queued;
                        t.not_before = now;
                    } else {
                        t.finish(
                            now,
                            TransferFault::Download.code(),
                            "the downloaded file was lost before it was applied",
                        );
                    }
                }
                State::AwaitingReboot => {}
            }
        }
        firmware
    }

    /// The transfers waiting for their TransferComplete to be acknowledged, oldest first.
    pub fn completed(&self) -> impl Iterator<Item = &Transfer> {
        self.list.iter().filter(|t| t.state == State::Done)
    }
}

/// A Download's or ScheduleDownload's record, validated (§A.3.2.8): a download FileType with
/// an apply hook (`supported`), and the argument checks.
fn download_record(
    d: &Download,
    origin: Origin,
    windows: Vec<Window>,
    max_retries: u32,
    supported: impl Fn(&FileType, &str) -> bool,
) -> Result<Transfer, Fault> {
    let ft = FileType::download(&d.file_type)
        .ok_or_else(|| invalid(format!("FileType {:?} is not a download type", d.file_type)))?;
    if !supported(&ft, &d.file_type) {
        return Err(invalid(format!(
            "FileType {:?} is not supported by this CPE",
            d.file_type
        )));
    }
    queued_record(d, origin, windows, max_retries)
}

/// A queued record of any transfer RPC (an Upload's arguments in a `Download`, FileSize and
/// TargetFileName empty), after the string checks every one of them makes.
fn queued_record(
    d: &Download,
    origin: Origin,
    windows: Vec<Window>,
    max_retries: u32,
) -> Result<Transfer, Fault> {
    check_args(
        &d.command_key,
        &d.url,
        &d.username,
        &d.password,
        &d.target_file_name,
    )?;
    let not_before = windows.first().map_or(0, |w| w.start);
    Ok(Transfer {
        id: 0,
        origin,
        command_key: d.command_key.clone(),
        file_type: d.file_type.trim().to_string(),
        url: d.url.trim().to_string(),
        username: d.username.clone(),
        password: d.password.clone(),
        file_size: d.file_size,
        target_file_name: d.target_file_name.clone(),
        windows,
        max_retries,
        attempts: 0,
        not_before,
        state: State::Queued,
        start_time: UNKNOWN_TIME,
        complete_time: UNKNOWN_TIME,
        fault_code: 0,
        fault_string: String::new(),
        since: 0,
    })
}

/// A CommandKey fits `CommandKeyType` (`string(32)`): every RPC that takes one checks it so.
pub fn check_command_key(command_key: &str) -> Result<(), Fault> {
    if command_key.chars().count() > MAX_COMMAND_KEY_LEN {
        return Err(invalid("CommandKey longer than 32 characters".into()));
    }
    Ok(())
}

/// The checks every transfer RPC makes on its strings (`string(32)`/`string(256)`).
fn check_args(
    command_key: &str,
    url: &str,
    username: &str,
    password: &str,
    target: &str,
) -> Result<(), Fault> {
    check_command_key(command_key)?;
    if url.trim().is_empty() {
        return Err(invalid("URL is empty".into()));
    }
    for (name, v) in [
        ("URL", url),
        ("Username", username),
        ("Password", password),
        ("TargetFileName", target),
    ] {
        if v.chars().count() > MAX_ARG_LEN {
            return Err(invalid(format!(
                "{name} longer than {MAX_ARG_LEN} characters"
            )));
        }
    }
    if url.chars().any(char::is_control) {
        return Err(invalid("URL contains control characters".into()));
    }
    Ok(())
}

fn invalid(message: String) -> Fault {
    Fault::InvalidArguments(message, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::msg::TimeWindow;

    const LIMITS: Limits = Limits {
        max_queued: 4,
        retries: 2,
    };

    fn dl(key: &str, ft: &str) -> Download {
        Download {
            command_key: key.into(),
            file_type: ft.into(),
            url: "http://files.example/fw.bin".into(),
            ..Default::default()
        }
    }

    fn all(_: &FileType, _: &str) -> bool {
        true
    }

    #[test]
    fn file_types_are_matched_case_insensitively() {
        let k = |s: &str| FileType::download(s).map(|f| f.kind);
        assert_eq!(k("1 Firmware Upgrade Image"), Some(FileKind::Firmware));
        assert_eq!(k(" 3 Vendor configuration File "), Some(FileKind::Config));
        assert_eq!(k("2 WEB  content"), Some(FileKind::WebContent));
        assert_eq!(k("X 00D0F8 Voice Profile"), Some(FileKind::Vendor));
        assert_eq!(k("X 00D0F Voice"), None);
        assert_eq!(k("4 Tone File"), None);
        assert_eq!(k("1 Vendor Configuration File"), None);
        let u = |s: &str| FileType::upload(s).map(|f| (f.kind, f.instance));
        assert_eq!(
            u("1 Vendor Configuration File"),
            Some((FileKind::Config, None))
        );
        assert_eq!(u("2 vendor log file"), Some((FileKind::Log, None)));
        assert_eq!(u("4 Vendor Log File 2"), Some((FileKind::Log, Some(2))));
        assert_eq!(
            u("3 Vendor Configuration File 17"),
            Some((FileKind::Config, Some(17)))
        );
        assert_eq!(u("3 Vendor Configuration File"), None);
        assert_eq!(u("4 Vendor Log File 0"), None);
        assert_eq!(u("1 Firmware Upgrade Image"), None);
    }

    #[test]
    fn download_is_validated_and_deduplicated() {
        let mut q = Transfers::default();
        let t = q.download(&dl("k1", "1 Firmware Upgrade Image"), 100, LIMITS, all);
        assert_eq!(t.map(|t| (t.id, t.state)), Ok((1, State::Queued)));
        // The same request again (a lost response) is the same transfer.
        let again = q.download(&dl("k1", "1 firmware upgrade image"), 105, LIMITS, all);
        assert_eq!(again.map(|t| t.id), Ok(1));
        assert_eq!(q.list.len(), 1);
        let long = dl(&"k".repeat(33), "1 Firmware Upgrade Image");
        assert!(matches!(
            q.download(&long, 0, LIMITS, all),
            Err(Fault::InvalidArguments(..))
        ));
        let none = |_: &FileType, _: &str| false;
        assert!(matches!(
            q.download(&dl("k2", "2 Web Content"), 0, LIMITS, none),
            Err(Fault::InvalidArguments(..))
        ));
        let mut url = dl("k3", "1 Firmware Upgrade Image");
        url.url = "x".repeat(257);
        assert!(matches!(
            q.download(&url, 0, LIMITS, all),
            Err(Fault::InvalidArguments(..))
        ));
        for i in 0..3 {
            q.download(&dl(&format!("f{i}"), "2 Web Content"), 0, LIMITS, all)
                .unwrap();
        }
        assert!(matches!(
            q.download(&dl("full", "2 Web Content"), 0, LIMITS, all),
            Err(Fault::ResourcesExceeded(_))
        ));
    }

    #[test]
    fn next_respects_delay_retries_and_order() {
        let mut q = Transfers::default();
        let mut d = dl("a", "1 Firmware Upgrade Image");
        d.delay_seconds = 10;
        q.download(&d, 100, LIMITS, all).unwrap();
        assert_eq!(q.next(105), Next::Wait(Some(110)));
        assert_eq!(q.next(110), Next::Start(1));
        let t = q.get_mut(1).unwrap();
        t.state = State::Fetching;
        t.attempts = 1;
        assert_eq!(q.next(111), Next::Wait(None));
        q.failed(1, 120, 9015, "refused", true, 10);
        assert_eq!(q.get(1).unwrap().state, State::Queued);
        assert_eq!(q.next(125), Next::Wait(Some(130)));
        for attempt in 2..=3 {
            assert_eq!(q.next(200 * attempt), Next::Start(1));
            let t = q.get_mut(1).unwrap();
            t.state = State::Fetching;
            t.attempts = attempt as u32;
            q.failed(1, 200 * attempt, 9015, "refused", true, 10);
        }
        let t = q.get(1).unwrap();
        assert_eq!((t.state, t.fault_code), (State::Done, 9015));
        assert_eq!(q.completed().count(), 1);
    }

    #[test]
    fn schedule_download_windows() {
        let mut q = Transfers::default();
        let w = |s, e, mode: &str| TimeWindow {
            window_start: s,
            window_end: e,
            window_mode: mode.into(),
            user_message: String::new(),
            max_retries: -1,
        };
        let sd = |windows| ScheduleDownload {
            command_key: "s".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://f/x".into(),
            time_windows: windows,
            ..Default::default()
        };
        for bad in [
            vec![],
            vec![w(0, 10, "4 Confirmation Needed")],
            vec![w(10, 5, "1 At Any Time")],
            vec![w(0, 10, "1 At Any Time"), w(5, 20, "2 Immediately")],
            vec![w(0, 10, "9 Whenever")],
        ] {
            assert!(
                matches!(
                    q.schedule_download(&sd(bad.clone()), 0, LIMITS, all),
                    Err(Fault::InvalidArguments(..))
                ),
                "{bad:?}"
            );
        }
        let ok = sd(vec![w(5, 10, "1 At Any Time"), w(20, 30, "3 When Idle")]);
        let t = q.schedule_download(&ok, 1000, LIMITS, all).unwrap();
        assert_eq!(t.origin, Origin::ScheduleDownload);
        assert_eq!(t.windows.len(), 2);
        assert_eq!(q.next(1001), Next::Wait(Some(1005)));
        // Between the windows it waits for the second.
        assert_eq!(q.next(1011), Next::Wait(Some(1020)));
        assert_eq!(q.next(1020), Next::Start(1));
        // After the last window, 9020.
        assert_eq!(q.next(1031), Next::Wait(None));
        let t = q.get(1).unwrap();
        assert_eq!((t.state, t.fault_code), (State::Done, 9020));
    }

    #[test]
    fn cancel_only_before_start() {
        let mut q = Transfers::default();
        q.download(&dl("a", "2 Web Content"), 0, LIMITS, all)
            .unwrap();
        q.download(&dl("b", "2 Web Content"), 0, LIMITS, all)
            .unwrap();
        assert!(matches!(q.cancel("zzz"), Err(Fault::InvalidArguments(..))));
        q.get_mut(2).unwrap().state = State::Fetching;
        assert!(matches!(q.cancel("b"), Err(Fault::Transfer(9021, _))));
        assert_eq!(q.cancel("a"), Ok(()));
        assert_eq!(q.list.len(), 1);
    }

    #[test]
    fn recover_after_a_cut() {
        let mut q = Transfers::default();
        for k in [
            "fetching",
            "fetching-last",
            "apply-fw",
            "apply-cfg",
            "apply-cfg-gone",
            "apply-fw-not-started",
        ] {
            let ft = if k.starts_with("apply-fw") {
                "1 Firmware Upgrade Image"
            } else {
                "3 Vendor Configuration File"
            };
            let limits = Limits {
                max_queued: 8,
                ..LIMITS
            };
            q.download(&dl(k, ft), 0, limits, all).unwrap();
        }
        let set = |q: &mut Transfers, id, state, attempts| {
            let t = q.get_mut(id).unwrap();
            t.state = state;
            t.attempts = attempts;
            t.start_time = 5;
        };
        set(&mut q, 1, State::Fetching, 1);
        set(&mut q, 2, State::Fetching, 3);
        set(&mut q, 3, State::Applying, 1);
        set(&mut q, 4, State::Applying, 1);
        set(&mut q, 5, State::Applying, 1);
        set(&mut q, 6, State::Applying, 1);
        let fw = q.recover(
            50,
            |k| k == FileKind::Firmware,
            |id| id == 4 || id == 6,
            |id| id != 6,
        );
        assert_eq!(fw, 1);
        let st = |id| {
            let t = q.get(id).unwrap();
            (t.state, t.fault_code)
        };
        assert_eq!(st(1), (State::Queued, 0));
        assert_eq!(st(2), (State::Done, 9017));
        assert_eq!(st(3), (State::Done, 0));
        assert_eq!(st(4), (State::Fetched, 0));
        assert_eq!(st(5), (State::Done, 9010));
        // Cut before its hook started: applied again, not reported done.
        assert_eq!(st(6), (State::Fetched, 0));
        assert_eq!(q.next(50), Next::Apply(4));
    }
}
