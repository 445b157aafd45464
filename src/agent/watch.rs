//! The inotify watch thread: wakes the loop when a watched directory changes.

use super::Trigger;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Watches `paths` (directories) with inotify from a thread of its own and sends `trigger`
/// ([`Trigger::ValuesChanged`], [`Trigger::Requests`]) after each burst of changes (a `uci commit` renames a file into
/// place). A path that cannot be watched is logged; polling still covers it.
pub(super) fn watch(
    paths: Vec<std::path::PathBuf>,
    tx: Sender<Trigger>,
    pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    trigger: Trigger,
) {
    use inotify::{Inotify, WatchMask};
    if paths.is_empty() {
        return;
    }
    let mut ino = match Inotify::init() {
        Ok(i) => i,
        Err(e) => {
            log::warn!("inotify: {e}; changes are found by polling only");
            return;
        }
    };
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM;
    let mut any = false;
    for p in &paths {
        match ino.watches().add(p, mask) {
            Ok(_) => any = true,
            Err(e) => log::warn!("inotify: cannot watch {}: {e}", p.display()),
        }
    }
    if !any {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match ino.read_events_blocking(&mut buf) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::warn!("inotify: {e}; changes are found by polling only");
                        return;
                    }
                }
                // A burst (a uci commit of several packages) makes one check.
                std::thread::sleep(Duration::from_millis(200));
                while let Ok(mut ev) = ino.read_events(&mut buf) {
                    if ev.next().is_none() {
                        break;
                    }
                }
                // One check pending at a time: bursts during a long session do not pile up.
                if !pending.swap(true, std::sync::atomic::Ordering::AcqRel)
                    && tx.send(trigger.clone()).is_err()
                {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("inotify thread: {e}");
    }
}
