//! Private files and directories: everything the agent writes is readable and writable by its
//! own user only, and no other local account can make it write, truncate or hand to a hook a
//! file it did not create (SECURITY.md, "an unprivileged local account").
//!
//! - [`set_umask`]: the daemon, the CLI and every process they start (hooks, uci, vendor scripts)
//!   create files 0600 and directories 0700 unless they say otherwise; only the service reload
//!   commands of `[datamodel.reload]` run with umask 022 (`sys::process::service_shell`:
//!   what init scripts write for services that drop root must stay readable to them).
//! - [`PrivateDir`]: a directory owned by the effective uid with no group or other bits, held
//!   open as a directory fd. It is checked with `lstat`/`fstat` when opened (a symlink or a
//!   directory of another owner is moved aside and replaced; extra mode bits are removed), its
//!   ancestors, walked from `/` without following a link another account could have planted,
//!   must be owned by root or us and not writable by another account (except sticky ones such
//!   as `/tmp`), and
//!   [`PrivateDir::check`] proves before each use that the path still names the same private
//!   directory. Files in it are created relative to the fd with `O_CREAT|O_EXCL|O_NOFOLLOW`,
//!   mode 0600: a name planted by someone else is never opened, only removed.
//! - [`make_private`]: corrects the modes of what an older version left (0755/0644).
//!
//! Part of the room that touches the OS (with `store` and `os`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Mode of the directories the agent creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files the agent creates.
pub const FILE_MODE: u32 = 0o600;

/// Sets the process's umask to 077: files 0600, directories 0700, for the agent and every
/// process it starts (they inherit it; service reload commands set 022 for themselves).
pub fn set_umask() {
    nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// A private directory held open (see the module doc).
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
    dev: u64,
    ino: u64,
}

impl PrivateDir {
    /// Opens `path` as a private directory, creating it (and missing parents, 0700) when it does
    /// not exist. An existing entry that is a symlink, not a directory, or owned by another user
    /// is renamed aside (`NAME.untrusted-<nanos>`, logged) and replaced by a new directory;
    /// group/other bits of our own directory are removed (logged). The parents are walked from
    /// `/` one by one (`open_ancestors`): one owned by another account, or writable by one
    /// (and not sticky), is refused, and so is a symlink that another account could have
    /// planted; whoever controls a parent could swap or redirect the directory.
    pub fn open(path: &Path) -> io::Result<PrivateDir> {
        let path = absolute(path)?;
        let name = match path.file_name() {
            Some(n) => n.to_owned(),
            None => return Err(other(format!("{}: not a directory name", path.display()))),
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        let (pfd, parent) = open_ancestors(parent)?;
        let path = parent.join(&name);
        for attempt in 0..2 {
            match mkdirat(&pfd, name.as_os_str(), Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(other(format!(
                        "cannot create {}: {}",
                        path.display(),
                        io_err(e)
                    )))
                }
            }
            let opened = openat(
                &pfd,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
            let why = match opened {
                Ok(fd) => {
                    let st = fstat(&fd).map_err(io_err)?;
                    if st.st_uid == euid() {
                        if st.st_mode & 0o077 != 0 {
                            log::warn!(
                                "{}: mode {:o} lets other users in; corrected to 0700",
                                path.display(),
                                st.st_mode & 0o7777
                            );
                            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| {
                                other(format!("cannot chmod {}: {}", path.display(), io_err(e)))
                            })?;
                        }
                        return Ok(PrivateDir {
                            path,
                            fd,
                            dev: st.st_dev as u64,
                            ino: st.st_ino as u64,
                        });
                    }
                    format!("owned by uid {}", st.st_uid)
                }
                // O_NOFOLLOW on a symlink, O_DIRECTORY on something else.
                Err(Errno::ELOOP) => "a symbolic link".to_string(),
                Err(Errno::ENOTDIR) => "not a directory".to_string(),
                Err(e) => {
                    return Err(other(format!(
                        "cannot open {}: {}",
                        path.display(),
                        io_err(e)
                    )))
                }
            };
            if attempt == 1 {
                break;
            }
            let aside = format!(
                "{}.untrusted-{}",
                name.to_string_lossy(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            log::warn!(
                "{}: {why}, not a private directory of this agent: moved aside as {aside} and \
                 created anew",
                path.display()
            );
            renameat(&pfd, name.as_os_str(), &pfd, aside.as_str()).map_err(|e| {
                other(format!(
                    "{} is {why} and cannot be moved aside: {}",
                    path.display(),
                    io_err(e)
                ))
            })?;
        }
        Err(other(format!(
            "{}: cannot be made a private directory (something keeps replacing it)",
            path.display()
        )))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in the directory (for a hook's `{file}` and for messages).
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Proves the path still names this directory, still private: `lstat` of the path has the
    /// device and inode of the open fd, and the fd is still ours with no group/other bits.
    /// Called before a path in it is handed to a hook.
    pub fn check(&self) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(&self.path)
            .map_err(|e| other(format!("{}: {e}", self.path.display())))?;
        let st = fstat(&self.fd).map_err(io_err)?;
        if !meta.file_type().is_dir() || meta.dev() != self.dev || meta.ino() != self.ino {
            return Err(other(format!(
                "{} was replaced since it was opened",
                self.path.display()
            )));
        }
        if st.st_uid != euid() || st.st_mode & 0o077 != 0 {
            return Err(other(format!(
                "{} is no longer private (uid {}, mode {:o})",
                self.path.display(),
                st.st_uid,
                st.st_mode & 0o7777
            )));
        }
        Ok(())
    }

    /// Creates `name` for writing: any entry of that name is removed first, then the file is
    /// created exclusively (`O_EXCL|O_NOFOLLOW`), mode 0600, so the file is always one this
    /// call made.
    pub fn create(&self, name: &str) -> io::Result<File> {
        self.remove(name)?;
        let fd = openat(
            &self.fd,
            plain(name)?,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(FILE_MODE),
        )
        .map_err(|e| {
            other(format!(
                "cannot create {}: {}",
                self.join(name).display(),
                io_err(e)
            ))
        })?;
        Ok(File::from(fd))
    }

    /// Opens `name` for reading without following a symlink; it must be a regular file.
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        self.open_regular(name, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
    }

    /// Opens `name`, creating it (0600) when missing, never through a link; it must be a
    /// regular file (lock files). `write`: for writing too (else read-only, so that taking a
    /// lock writes nothing, not even an inotify close-after-write).
    pub fn open_lock(&self, name: &str, write: bool) -> io::Result<File> {
        let access = if write {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        self.open_regular(name, access | OFlag::O_CREAT)
    }

    /// `openat` of `name` with `flags` plus `O_NOFOLLOW|O_CLOEXEC` (mode 0600 if it creates);
    /// anything but a regular file is refused.
    fn open_regular(&self, name: &str, flags: OFlag) -> io::Result<File> {
        let fd = openat(
            &self.fd,
            plain(name)?,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(FILE_MODE),
        )
        .map_err(io_err)?;
        let st = fstat(&fd).map_err(io_err)?;
        if !is_regular(&st) {
            return Err(other(format!(
                "{} is not a regular file",
                self.join(name).display()
            )));
        }
        Ok(File::from(fd))
    }

    /// Removes `name` (a file, never followed); a missing one is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match unlinkat(&self.fd, plain(name)?, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(other(format!(
                "cannot remove {}: {}",
                self.join(name).display(),
                io_err(e)
            ))),
        }
    }

    /// Renames `from` to `to` inside the directory.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        renameat(&self.fd, plain(from)?, &self.fd, plain(to)?).map_err(|e| {
            other(format!(
                "cannot rename {}: {}",
                self.join(from).display(),
                io_err(e)
            ))
        })
    }

    /// Names of the entries in the directory (read through the open fd's path after
    /// [`check`](Self::check)).
    pub fn names(&self) -> io::Result<Vec<String>> {
        self.check()?;
        Ok(std::fs::read_dir(&self.path)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }

    /// The directory fd (to `fsync` it, for example).
    pub fn fd(&self) -> impl AsFd + '_ {
        self.fd.as_fd()
    }
}

fn is_regular(st: &FileStat) -> bool {
    is_type(st, SFlag::S_IFREG)
}

/// A file name without a directory part (the agent names its own files; this keeps it so).
fn plain(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(other(format!("{name:?} is not a plain file name")));
    }
    Ok(name)
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    let p = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    // Lexical clean-up only: `..` is refused rather than resolved.
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                return Err(other(format!("{}: '..' is not allowed", path.display())))
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Most symbolic links followed on the way to a private directory (as the kernel's `ELOOP`).
const MAX_LINKS: u32 = 40;

/// Most attempts to create a missing ancestor that someone else keeps creating or removing.
const MAX_CREATE: u32 = 3;

fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == t
}

/// Whether a directory may hold (or lead to) a private directory: owned by root or by us, and
/// not writable by group or others unless sticky (`/tmp`), so that no other account can rename
/// what is in it.
fn trusted_dir(st: &FileStat, me: u32) -> bool {
    let sticky = st.st_mode & 0o1000 != 0;
    (st.st_uid == 0 || st.st_uid == me) && (st.st_mode & 0o022 == 0 || sticky)
}

/// Opens the directory `dir` (absolute, without `..`) for a private directory to be made in it,
/// walking its components from `/` without ever following a link blindly: each directory is
/// opened relative to its parent's fd with `O_NOFOLLOW` and must be [`trusted_dir`]; a missing
/// one is created by us (0700, `mkdirat`; one that appears meanwhile is opened and checked like
/// any other); a symbolic link is followed only when it is owned by root or by us and sits in a
/// directory nobody else may write (OpenWrt's `/var -> /tmp`), never one in a sticky directory
/// like `/tmp`, where any account may plant one. Returns the fd and the resolved path.
fn open_ancestors(dir: &Path) -> io::Result<(OwnedFd, PathBuf)> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;

    let me = euid();
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let untrusted = |shown: &Path, st: &FileStat| {
        other(format!(
            "{} (uid {}, mode {:o}) can be changed by another account: refusing to keep private \
             files below it",
            shown.display(),
            st.st_uid,
            st.st_mode & 0o7777
        ))
    };
    let root = openat(AT_FDCWD, "/", dir_flags, Mode::empty())
        .map_err(|e| other(format!("cannot open /: {}", io_err(e))))?;
    let st = fstat(&root).map_err(io_err)?;
    if !trusted_dir(&st, me) {
        return Err(untrusted(Path::new("/"), &st));
    }
    // The directories resolved so far, from `/`: (name, fd, stat), each one checked.
    let mut walked: Vec<(OsString, OwnedFd, FileStat)> = vec![(OsString::new(), root, st)];
    let path_of = |walked: &[(OsString, OwnedFd, FileStat)]| {
        let mut p = PathBuf::from("/");
        p.extend(walked.iter().skip(1).map(|(n, _, _)| n));
        p
    };
    let mut todo: VecDeque<OsString> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    let mut links = 0u32;
    while let Some(name) = todo.pop_front() {
        match name.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if walked.len() > 1 {
                    walked.pop();
                }
                continue;
            }
            _ => {}
        }
        let Some((_, pfd, pst)) = walked.last() else {
            return Err(other("the walk lost its root".to_owned()));
        };
        let shown = path_of(&walked).join(&name);
        let mut created = 0u32;
        let opened = loop {
            match openat(pfd, name.as_os_str(), dir_flags, Mode::empty()) {
                Ok(fd) => break Some(fd),
                Err(Errno::ENOENT) if created < MAX_CREATE => {
                    created += 1;
                    match mkdirat(pfd, name.as_os_str(), Mode::from_bits_truncate(DIR_MODE)) {
                        // EEXIST: someone else made it meanwhile; it is opened and checked.
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(other(format!(
                                "cannot create {}: {}",
                                shown.display(),
                                io_err(e)
                            )))
                        }
                    }
                }
                // O_NOFOLLOW on a symlink, O_DIRECTORY on something else.
                Err(Errno::ELOOP | Errno::ENOTDIR) => break None,
                Err(e) => {
                    return Err(other(format!(
                        "cannot open {}: {}",
                        shown.display(),
                        io_err(e)
                    )))
                }
            }
        };
        if let Some(fd) = opened {
            let st = fstat(&fd).map_err(io_err)?;
            if !trusted_dir(&st, me) {
                return Err(untrusted(&shown, &st));
            }
            walked.push((name, fd, st));
            continue;
        }
        let st = fstatat(pfd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| other(format!("{}: {}", shown.display(), io_err(e))))?;
        if !is_type(&st, SFlag::S_IFLNK) {
            return Err(other(format!("{}: not a directory", shown.display())));
        }
        if st.st_uid != 0 && st.st_uid != me {
            return Err(other(format!(
                "{} is a symbolic link of uid {}: refusing to follow it to a private directory",
                shown.display(),
                st.st_uid
            )));
        }
        if pst.st_mode & 0o022 != 0 {
            return Err(other(format!(
                "{} is a symbolic link in a directory other accounts may write (mode {:o}): \
                 refusing to follow it to a private directory",
                shown.display(),
                pst.st_mode & 0o7777
            )));
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(other(format!(
                "{}: too many levels of symbolic links",
                dir.display()
            )));
        }
        let target = readlinkat(pfd, name.as_os_str())
            .map_err(|e| other(format!("{}: {}", shown.display(), io_err(e))))?;
        if target.is_empty() {
            return Err(other(format!(
                "{}: an empty symbolic link",
                shown.display()
            )));
        }
        let target = Path::new(&target);
        if target.is_absolute() {
            walked.truncate(1);
        }
        for c in target.components().rev() {
            match c {
                Component::Normal(n) => todo.push_front(n.to_owned()),
                Component::ParentDir => todo.push_front(OsString::from("..")),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    }
    let path = path_of(&walked);
    match walked.pop() {
        Some((_, fd, _)) => Ok((fd, path)),
        None => Err(other("the walk lost its root".to_owned())),
    }
}

/// Makes an existing tree of the agent's private: directories 0700, files 0600 (what an older
/// version left 0755/0644). Symlinks are neither followed nor changed; entries of other owners
/// are left alone and reported.
pub fn make_private(dir: &Path) {
    fn walk(dir: &Path, depth: u32) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let want = if m.is_dir() {
                DIR_MODE
            } else if m.is_file() {
                FILE_MODE
            } else {
                continue;
            };
            fix(&e.path(), &m, want);
            if m.is_dir() && depth < 4 {
                walk(&e.path(), depth + 1);
            }
        }
    }
    if let Ok(m) = dir.symlink_metadata() {
        if m.is_dir() {
            fix(dir, &m, DIR_MODE);
            walk(dir, 0);
        }
    }
}

fn fix(path: &Path, m: &std::fs::Metadata, want: u32) {
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    if m.uid() != euid() {
        log::warn!(
            "{}: owned by uid {}, mode {mode:o}",
            path.display(),
            m.uid()
        );
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
        Ok(()) => log::info!("{}: mode {mode:o} corrected to {want:o}", path.display()),
        Err(e) => log::warn!("{}: cannot correct mode {mode:o}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cwmpd-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn creates_0700_and_files_0600_exclusively() {
        let base = tmp("create");
        let d = PrivateDir::open(&base.join("t")).unwrap();
        let m = std::fs::metadata(d.path()).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        let mut f = d.create("1.part").unwrap();
        f.write_all(b"x").unwrap();
        let m = std::fs::metadata(d.join("1.part")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // A planted symlink is removed, never followed.
        let victim = base.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        symlink(&victim, d.join("2.part")).unwrap();
        d.create("2.part").unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        symlink(&victim, d.join("3.file")).unwrap();
        assert!(d.open_file("3.file").is_err());
        d.check().unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_symlink_or_loose_directory_is_replaced_or_corrected() {
        let base = tmp("replace");
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, base.join("t")).unwrap();
        let d = PrivateDir::open(&base.join("t")).unwrap();
        assert!(!std::fs::symlink_metadata(d.path())
            .unwrap()
            .file_type()
            .is_symlink());
        d.create("a").unwrap();
        assert!(!elsewhere.join("a").exists());
        drop(d);
        std::fs::set_permissions(base.join("t"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let d = PrivateDir::open(&base.join("t")).unwrap();
        let m = std::fs::metadata(d.path()).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
        // Swapped after opening: check() notices.
        std::fs::rename(base.join("t"), base.join("t2")).unwrap();
        std::fs::create_dir(base.join("t")).unwrap();
        assert!(d.check().is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_ancestor_writable_by_others_is_refused() {
        let base = tmp("ancestor");
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(PrivateDir::open(&open.join("t")).is_err());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(PrivateDir::open(&open.join("t")).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Guards against a past defect: the missing parents were made with
    /// `create_dir_all`, which followed a link planted in a sticky directory, and the resolved
    /// path was checked instead of the one walked.
    #[test]
    fn a_link_in_a_shared_directory_on_the_way_is_never_followed() {
        let base = tmp("midlink");
        let shared = base.join("tmp");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let flash = base.join("flash");
        std::fs::create_dir(&flash).unwrap();
        // Even a link of our own there: anyone could have put it in a sticky directory.
        symlink(&flash, shared.join("x")).unwrap();
        let e = PrivateDir::open(&shared.join("x/cwmpd/dl")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&flash).unwrap().count(), 0);
        // A link whose target leads through one.
        symlink(shared.join("x/in"), base.join("via")).unwrap();
        assert!(PrivateDir::open(&base.join("via/cwmpd")).is_err());
        assert_eq!(std::fs::read_dir(&flash).unwrap().count(), 0);
        // A loop of links ends, and so does a file on the way.
        symlink("l2", base.join("l1")).unwrap();
        symlink("l1", base.join("l2")).unwrap();
        let e = PrivateDir::open(&base.join("l1/t")).unwrap_err();
        assert!(e.to_string().contains("too many levels"), "{e}");
        std::fs::write(base.join("file"), b"").unwrap();
        let e = PrivateDir::open(&base.join("file/t")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        // A directory others may write on the way (not sticky) is refused, even a missing
        // parent below it is not made.
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(PrivateDir::open(&open.join("a/t")).is_err());
        assert!(!open.join("a").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn links_in_private_places_are_followed_and_missing_parents_made_0700() {
        // OpenWrt's /var -> /tmp: a link of root (or ours) in a directory only it may write.
        let base = tmp("trustedlink");
        let shared = base.join("tmp");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        symlink("tmp", base.join("var")).unwrap();
        symlink(base.join("var"), base.join("abs")).unwrap();
        symlink("./sub/../tmp", base.join("rel")).unwrap();
        std::fs::create_dir(base.join("sub")).unwrap();
        let d = PrivateDir::open(&base.join("var/cwmpd")).unwrap();
        assert_eq!(d.path(), shared.join("cwmpd"));
        d.create("f").unwrap();
        d.check().unwrap();
        drop(d);
        for via in ["abs", "rel"] {
            let d = PrivateDir::open(&base.join(via).join("cwmpd")).unwrap();
            assert_eq!(d.path(), shared.join("cwmpd"), "{via}");
            assert!(shared.join("cwmpd/f").exists(), "{via}");
        }
        // Missing parents are made 0700, by us.
        let d = PrivateDir::open(&base.join("var/a/b/t")).unwrap();
        assert_eq!(d.path(), shared.join("a/b/t"));
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&shared.join("a")), 0o700);
        assert_eq!(mode(&shared.join("a/b")), 0o700);
        assert_eq!(mode(&shared.join("a/b/t")), 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn make_private_corrects_old_modes() {
        let base = tmp("modes");
        std::fs::write(base.join("agent.toml"), b"x").unwrap();
        std::fs::set_permissions(
            base.join("agent.toml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        make_private(&base);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&base), 0o700);
        assert_eq!(mode(&base.join("agent.toml")), 0o600);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
