//! How the loop starts background work and gets its result back: each job runs in a thread of
//! its own, and its result (whatever the job kind: a transfer step now, a diagnostic next) is
//! handed to the report function the loop gave, typically a send on its wake-up channel.
//!
//! A job that panics still reports (its `panicked` result), so that no record stays marked as
//! running with no thread behind it. The threads: one per running job, named after its kind.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// Starts jobs whose results are of type `R`.
pub struct Jobs<R> {
    report: Arc<dyn Fn(R) + Send + Sync>,
}

impl<R> Clone for Jobs<R> {
    fn clone(&self) -> Self {
        Jobs {
            report: self.report.clone(),
        }
    }
}

impl<R: Send + 'static> Jobs<R> {
    /// Jobs whose results go to `report` (called in the job's thread).
    pub fn new(report: impl Fn(R) + Send + Sync + 'static) -> Jobs<R> {
        Jobs {
            report: Arc::new(report),
        }
    }

    /// Runs `work` in a thread named `name` and reports its result, or `panicked()` when it
    /// panics. When no thread can be started, the error is returned and nothing is reported:
    /// the caller settles the job itself.
    pub fn start(
        &self,
        name: &str,
        work: impl FnOnce() -> R + Send + 'static,
        panicked: impl FnOnce() -> R + Send + 'static,
    ) -> std::io::Result<()> {
        let report = self.report.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let result =
                    panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| panicked());
                report(result);
            })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_job_reports_its_result_and_a_panic_reports_the_fallback() {
        let (tx, rx) = mpsc::channel();
        let jobs = Jobs::new(move |r: (u32, &'static str)| {
            let _ = tx.send(r);
        });
        jobs.start("t1", || (1, "done"), || (1, "panicked"))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok((1, "done")));
        jobs.start("t2", || panic!("boom"), || (2, "panicked"))
            .unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok((2, "panicked"))
        );
    }
}
