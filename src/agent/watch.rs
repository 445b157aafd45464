//! The inotify watch thread: wakes the loop when a watched directory changes.

use super::Trigger;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

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
/// A source's checks: up to [`CHECKS_BURST`] at once, then one per [`CHECK_EVERY`]. A change
/// now and then reaches the loop at once; a stream of events (a flapping link, a LAN host
/// renewing its lease in a loop) costs at most one check per [`CHECK_EVERY`].
const CHECK_EVERY: Duration = Duration::from_secs(2);
const CHECKS_BURST: u32 = 5;

/// The budget of checks of one source, as a generic cell rate algorithm: `due` is when the
/// next check would be due at the steady rate; up to [`CHECKS_BURST`] − 1 periods ahead of it
/// cost no wait.
struct Checks {
    due: Instant,
}

impl Checks {
    fn new(now: Instant) -> Checks {
        Checks { due: now }
    }

    /// How long to wait before the check the caller is about to make.
    fn take(&mut self, now: Instant) -> Duration {
        let due = self.due.max(now);
        let wait = due
            .saturating_duration_since(now)
            .saturating_sub(CHECK_EVERY * (CHECKS_BURST - 1));
        self.due = due + CHECK_EVERY;
        wait
    }
}

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
                let mut failing = false;
                let mut checks = Checks::new(Instant::now());
                loop {
                    let got = source.wait(None);
                    if got.is_ok() && std::mem::take(&mut failing) {
                        log::info!("{name} events: watching again");
                    }
                    match got {
                        Ok(false) => continue,
                        Ok(true) => pause = Duration::from_secs(1),
                        Err(e) => {
                            // At warning once per failure run (ubusd may stay away for long).
                            if std::mem::replace(&mut failing, true) {
                                log::debug!("{name} events: {e}; retrying in {}s", pause.as_secs());
                            } else {
                                log::warn!("{name} events: {e}; retrying, polling meanwhile");
                            }
                            std::thread::sleep(pause);
                            pause = (pause * 2).min(Duration::from_secs(60));
                            continue;
                        }
                    }
                    let start = Instant::now();
                    while start.elapsed() < BURST_MAX {
                        match source.wait(Some(BURST)) {
                            Ok(true) => {}
                            Ok(false) | Err(_) => break,
                        }
                    }
                    std::thread::sleep(checks.take(Instant::now()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_at_once_in_a_burst_then_one_per_period() {
        let t0 = Instant::now();
        let mut c = Checks::new(t0);
        for _ in 0..CHECKS_BURST {
            assert_eq!(c.take(t0), Duration::ZERO);
        }
        // A stream: the sixth waits a period, each one after it another.
        assert_eq!(c.take(t0), CHECK_EVERY);
        assert_eq!(c.take(t0 + CHECK_EVERY), CHECK_EVERY);
        // Quiet for a while: the burst is back.
        let later = t0 + CHECK_EVERY * 20;
        for _ in 0..CHECKS_BURST {
            assert_eq!(c.take(later), Duration::ZERO);
        }
        assert_eq!(c.take(later), CHECK_EVERY);
    }
}
