//! The transfer job runner: one step of one transfer (fetch a file, produce and upload one, or
//! apply a downloaded one with its hook), over plain data: a [`Job`] in, a result out. It runs
//! in a thread of the caller's (see [`crate::jobs`]) and knows nothing of the agent's loop.
//!
//! It touches the OS: the files of the private transfer directory, the hooks (processes), and,
//! through the caller's [`FileClient`], the file servers.
//!
//! The files of transfer `id` in the directory ([`file_name`]): `id.part` while a download
//! arrives, `id.file` once whole (renamed into place), `id.started` the mark of an apply hook that
//! was started (a hook that reboots may never return), `id.up` an upload being produced.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use super::{hooks, FileType, State, Transfers};
use crate::cwmp::fault::{TransferFailure, TransferFault};
use crate::sys::private::PrivateDir;

/// The file server side of a job: the HTTP(S) file client in the daemon.
pub trait FileClient: Send {
    /// Fetches `url` into `dest` (the open file at `part`), refusing more than `limit` bytes, or
    /// a size other than `expected`. Returns the bytes received.
    #[allow(clippy::too_many_arguments)]
    fn download(
        &self,
        url: &str,
        username: &str,
        password: &str,
        dest: File,
        part: &Path,
        expected: Option<u64>,
        limit: Option<u64>,
    ) -> Result<u64, TransferFailure>;
    /// Sends the file at `src` to `url`.
    fn upload(
        &self,
        url: &str,
        username: &str,
        password: &str,
        src: &Path,
    ) -> Result<(), TransferFailure>;
    /// The free bytes of the file system holding `dir`, when known.
    fn free_space(&self, dir: &Path) -> Option<u64>;
}

/// Which step of a transfer a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch a Download's file into the directory.
    Fetch,
    /// Produce an Upload's file with its hook, and send it.
    Upload,
    /// Apply a downloaded file with its hook.
    Apply,
}

/// One step of one transfer, with everything it needs.
pub struct Job {
    pub id: u64,
    pub step: Step,
    /// The FileType as the ACS wrote it.
    pub file_type: String,
    pub target_file_name: String,
    pub command_key: String,
    pub url: String,
    pub username: String,
    pub password: String,
    /// The announced FileSize (0 = not announced).
    pub file_size: u32,
    /// The transfer directory, opened private by the caller.
    pub dir: PrivateDir,
    /// The hook that applies (Apply) or produces (Upload) the file; "" = none.
    pub hook: String,
    pub hook_timeout: Duration,
}

/// The name of transfer `id`'s file with extension `ext` in the transfer directory.
pub fn file_name(id: u64, ext: &str) -> String {
    format!("{id}.{ext}")
}

/// Removes what a cut left in the transfer directory: every partial download and upload, and
/// whole files no record waits to apply.
pub fn clean_dir(dir: &PrivateDir, transfers: &Transfers) {
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
        let keep = ext == "file" && transfers.get(id).is_some_and(|t| t.state == State::Fetched);
        if matches!(ext, "part" | "file" | "up" | "started") && !keep {
            let _ = dir.remove(&name);
        }
    }
}

impl Job {
    /// Runs the step to its end.
    pub fn run(self, client: &dyn FileClient) -> Result<(), TransferFailure> {
        match self.step {
            Step::Apply => self.apply(),
            Step::Upload => self.upload(client),
            Step::Fetch => self.fetch(client),
        }
    }

    fn apply(&self) -> Result<(), TransferFailure> {
        let fail = |m: String| TransferFailure::new(TransferFault::Download, m);
        let dir = &self.dir;
        let name = file_name(self.id, "file");
        let file = dir.join(&name);
        if self.hook.is_empty() {
            return Err(fail(format!("no hook applies {:?}", self.file_type)));
        }
        // The hook gets a path nobody else can rename or rewrite: the directory is still the
        // private one opened, and the file in it is a regular file.
        if let Err(e) = dir.check().and_then(|()| dir.open_file(&name).map(drop)) {
            return Err(fail(format!(
                "{} is not the file downloaded: {e}",
                file.display()
            )));
        }
        let call = hooks::Call {
            file: Some(&file),
            target: &self.target_file_name,
            file_type: &self.file_type,
            instance: None,
            command_key: &self.command_key,
        };
        // The mark the recovery at start tells a started hook by (a hook that reboots may never
        // return).
        if let Err(e) = dir.create(&file_name(self.id, "started")) {
            return Err(fail(e.to_string()));
        }
        hooks::run(
            &self.hook,
            &call,
            self.hook_timeout,
            TransferFault::Download.code(),
        )
        .map_err(|e| TransferFailure {
            code: e.code,
            message: e.message,
            retryable: false,
        })
    }

    fn upload(&self, client: &dyn FileClient) -> Result<(), TransferFailure> {
        let fail = |m: String| TransferFailure::new(TransferFault::Upload, m);
        let dir = &self.dir;
        let up_name = file_name(self.id, "up");
        let up = dir.join(&up_name);
        // The produce hook writes a new file: nothing left from before is sent.
        if let Err(e) = dir.remove(&up_name) {
            return Err(fail(e.to_string()));
        }
        let instance = FileType::upload(&self.file_type).and_then(|f| f.instance);
        let call = hooks::Call {
            file: Some(&up),
            target: "",
            file_type: &self.file_type,
            instance,
            command_key: &self.command_key,
        };
        let r = hooks::run(
            &self.hook,
            &call,
            self.hook_timeout,
            TransferFault::Upload.code(),
        )
        .map_err(|e| TransferFailure {
            code: e.code,
            message: e.message,
            retryable: false,
        })
        .and_then(|()| {
            dir.check()
                .map_err(|e| fail(e.to_string()))
                .and_then(|()| client.upload(&self.url, &self.username, &self.password, &up))
        });
        let _ = dir.remove(&up_name);
        r
    }

    fn fetch(&self, client: &dyn FileClient) -> Result<(), TransferFailure> {
        let fail = |m: String| TransferFailure::new(TransferFault::Download, m);
        let dir = &self.dir;
        let expected = (self.file_size > 0).then_some(u64::from(self.file_size));
        let free = client.free_space(dir.path());
        // Without a FileSize, a quarter of the free space stays free (the directory is RAM on
        // a router).
        let limit = free.map(|f| f - f / 4);
        if let (Some(size), Some(free)) = (expected, free) {
            if size > free {
                return Err(fail(format!(
                    "the file ({size} bytes) does not fit in {} ({free} bytes free)",
                    dir.path().display()
                )));
            }
        }
        let name = file_name(self.id, "file");
        let part_name = file_name(self.id, "part");
        let part = dir.join(&part_name);
        let r = dir
            .create(&part_name)
            .map_err(|e| fail(e.to_string()))
            .and_then(|dest| {
                client.download(
                    &self.url,
                    &self.username,
                    &self.password,
                    dest,
                    &part,
                    expected,
                    limit,
                )
            })
            .and_then(|_| {
                dir.rename(&part_name, &name)
                    .map_err(|e| fail(e.to_string()))
            });
        if r.is_err() {
            let _ = dir.remove(&part_name);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file server in memory: serves `body`, reports `free` bytes free.
    struct Fake {
        body: Vec<u8>,
        free: Option<u64>,
    }

    impl FileClient for Fake {
        fn download(
            &self,
            _url: &str,
            _username: &str,
            _password: &str,
            mut dest: File,
            _part: &Path,
            expected: Option<u64>,
            limit: Option<u64>,
        ) -> Result<u64, TransferFailure> {
            let n = self.body.len() as u64;
            if limit.is_some_and(|l| n > l) || expected.is_some_and(|e| e != n) {
                return Err(TransferFailure::new(TransferFault::Corrupted, "size"));
            }
            dest.write_all(&self.body).unwrap();
            Ok(n)
        }

        fn upload(&self, _: &str, _: &str, _: &str, _: &Path) -> Result<(), TransferFailure> {
            Err(TransferFailure::new(
                TransferFault::CannotContact,
                "no server",
            ))
        }

        fn free_space(&self, _dir: &Path) -> Option<u64> {
            self.free
        }
    }

    fn dir(tag: &str) -> (std::path::PathBuf, PrivateDir) {
        let path = std::env::temp_dir().join(format!(
            "cwmpd-job-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let d = PrivateDir::open(&path).unwrap();
        (path, d)
    }

    fn job(step: Step, dir: PrivateDir, file_size: u32) -> Job {
        Job {
            id: 7,
            step,
            file_type: "3 Vendor Configuration File".into(),
            target_file_name: String::new(),
            command_key: "k".into(),
            url: "http://files.test/f".into(),
            username: String::new(),
            password: String::new(),
            file_size,
            dir,
            hook: String::new(),
            hook_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_fetch_lands_whole_under_its_name_or_leaves_nothing() {
        let (path, d) = dir("fetch");
        let client = Fake {
            body: b"hello".to_vec(),
            free: Some(1000),
        };
        assert_eq!(job(Step::Fetch, d, 5).run(&client), Ok(()));
        assert_eq!(std::fs::read(path.join("7.file")).unwrap(), b"hello");
        assert!(!path.join("7.part").exists());
        // The announced size does not fit: 9010, nothing left behind.
        let (path2, d) = dir("nofit");
        let small = Fake {
            body: b"hello".to_vec(),
            free: Some(3),
        };
        let e = job(Step::Fetch, d, 5).run(&small).unwrap_err();
        assert_eq!(e.code, TransferFault::Download.code());
        assert!(std::fs::read_dir(&path2).unwrap().next().is_none());
        // The client's fault is reported as is, and the partial file removed.
        let (path3, d) = dir("corrupt");
        let e = job(Step::Fetch, d, 9).run(&client).unwrap_err();
        assert_eq!(e.code, TransferFault::Corrupted.code());
        assert!(std::fs::read_dir(&path3).unwrap().next().is_none());
        for p in [path, path2, path3] {
            let _ = std::fs::remove_dir_all(p);
        }
    }

    #[test]
    fn an_apply_without_a_hook_or_a_file_fails_with_9010() {
        let (path, d) = dir("apply");
        let e = job(Step::Apply, d, 0).run(&Fake {
            body: Vec::new(),
            free: None,
        });
        assert_eq!(e.unwrap_err().code, 9010);
        let (path2, d) = dir("apply2");
        let mut j = job(Step::Apply, d, 0);
        j.hook = "true".into();
        let e = j.run(&Fake {
            body: Vec::new(),
            free: None,
        });
        assert!(e
            .unwrap_err()
            .message
            .contains("is not the file downloaded"));
        for p in [path, path2] {
            let _ = std::fs::remove_dir_all(p);
        }
    }

    #[test]
    fn clean_dir_keeps_only_whole_files_waiting_to_be_applied() {
        let (path, d) = dir("clean");
        for n in ["1.part", "2.file", "3.up", "4.started", "notes.txt"] {
            d.create(n).unwrap();
        }
        clean_dir(&d, &Transfers::default());
        let mut left: Vec<String> = d.names().unwrap();
        left.sort();
        assert_eq!(left, ["notes.txt"]);
        let _ = std::fs::remove_dir_all(path);
    }
}
