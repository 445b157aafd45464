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

/// Most time a burst of change events is gathered before the one check it makes: the kernel
/// reports an address, its routes and the link in a few messages; netifd's ifup follows them.
const BURST: Duration = Duration::from_millis(150);
/// The longest a burst may hold the check back: a flapping link still gets checked.
const BURST_MAX: Duration = Duration::from_millis(600);
/// The least time between two checks a source makes: a stream of events (a flapping link, a
/// LAN host renewing its lease in a loop) costs at most one check per this.
const MIN_GAP: Duration = Duration::from_secs(2);

/// Runs each backend's change-event source (rtnetlink, ubus) in a thread of its own and sends
/// `trigger` after each burst, like [`watch`]. A source that fails is logged and waited on
/// again after a pause that grows to a minute (ubusd restarting); polling covers the gap.
pub(super) fn watch_events(
    sources: Vec<Box<dyn crate::datamodel::backend::EventSource>>,
    tx: Sender<Trigger>,
    pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    trigger: Trigger,
) {
    for mut source in sources {
        let (tx, pending, trigger) = (tx.clone(), pending.clone(), trigger.clone());
        let name = source.name();
        let spawned = std::thread::Builder::new()
            .name(format!("events-{name}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut pause = Duration::from_secs(1);
                let mut last: Option<std::time::Instant> = None;
                loop {
                    match source.wait(None) {
                        Ok(false) => continue,
                        Ok(true) => pause = Duration::from_secs(1),
                        Err(e) => {
                            log::warn!("{name} events: {e}; retrying in {}s", pause.as_secs());
                            std::thread::sleep(pause);
                            pause = (pause * 2).min(Duration::from_secs(60));
                            continue;
                        }
                    }
                    let start = std::time::Instant::now();
                    while start.elapsed() < BURST_MAX {
                        match source.wait(Some(BURST)) {
                            Ok(true) => {}
                            Ok(false) | Err(_) => break,
                        }
                    }
                    if let Some(gap) = last.map(|l| MIN_GAP.saturating_sub(l.elapsed())) {
                        std::thread::sleep(gap);
                    }
                    last = Some(std::time::Instant::now());
                    if !pending.swap(true, std::sync::atomic::Ordering::AcqRel)
                        && tx.send(trigger.clone()).is_err()
                    {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("{name} events thread: {e}; changes are found by polling only");
        }
    }
}
