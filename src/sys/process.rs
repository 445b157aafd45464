//! Running an OS command (`uci`, a vendor script, a service reload, a transfer hook, `df`):
//! bounded in time and in output, never able to block or crash the agent. Every process the agent
//! starts goes through [`start`] or [`run`], which count them for the benchmark (the invariant: no
//! process per parameter read). Each child gets a reader thread for its stdout and one for its
//! stderr, and a writer thread when it is given input.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How many processes backends started since the agent began (see [`spawns`]).
// usize: 32-bit MIPS has no 64-bit atomics.
static SPAWNS: AtomicUsize = AtomicUsize::new(0);

/// The number of processes backends have started so far.
pub fn spawns() -> u64 {
    SPAWNS.load(Ordering::Relaxed) as u64
}

/// What a finished command left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The first line of stderr, for a log line or a fault message.
    pub fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

/// Why a command gave no [`Output`].
#[derive(Debug)]
pub enum RunError {
    /// It could not be started (not found, not executable).
    Spawn(std::io::Error),
    /// It ran longer than allowed and was killed.
    Timeout(Duration),
    /// It wrote more than allowed on stdout and was killed.
    TooMuchOutput(usize),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start: {e}"),
            RunError::Timeout(d) => write!(f, "killed after {} ms", d.as_millis()),
            RunError::TooMuchOutput(n) => write!(f, "killed: more than {n} bytes of output"),
        }
    }
}

/// A started command, to wait for later (several scripts or `uci` calls run side by side).
pub struct Running {
    child: std::process::Child,
    out: Receiver<(Vec<u8>, bool)>,
    err: Receiver<Vec<u8>>,
    started: Instant,
    timeout: Duration,
    max_output: usize,
}

/// Starts `cmd` with `stdin` as its input, capturing stdout (at most `max_output` bytes) and
/// the start of stderr.
pub fn start(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
    max_output: usize,
) -> Result<Running, RunError> {
    cmd.stdin(if stdin.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Its own process group: at the deadline the command and everything it started are
    // killed together.
    .process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    SPAWNS.fetch_add(1, Ordering::Relaxed);
    if let Some(mut pipe) = child.stdin.take() {
        // A writer thread: a child that does not read its input must not block the agent.
        let data = stdin.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = child.stdout.take();
    let (out_tx, out) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let mut over = false;
        if let Some(s) = stdout {
            // One byte more than allowed tells an overflow from an exact fit.
            let limit = u64::try_from(max_output)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let _ = s.take(limit).read_to_end(&mut buf);
            over = buf.len() > max_output;
            buf.truncate(max_output);
            // Dropping the pipe here makes a child that keeps writing die of SIGPIPE.
        }
        let _ = out_tx.send((buf, over));
    });
    let stderr = child.stderr.take();
    let (err_tx, err) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_end(&mut buf);
        }
        let _ = err_tx.send(buf);
    });
    Ok(Running {
        child,
        out,
        err,
        started: Instant::now(),
        timeout,
        max_output,
    })
}

impl Running {
    /// Waits for the command to end; kills it at its deadline or when its output overflows.
    pub fn wait(mut self) -> Result<Output, RunError> {
        let mut pause = Duration::from_micros(100);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    self.kill();
                    return Err(RunError::Spawn(e));
                }
            }
            if self.started.elapsed() >= self.timeout {
                self.kill();
                return Err(RunError::Timeout(self.timeout));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        // The output ends when every holder of the pipe is gone: a background job the command
        // left behind may hold it, so the wait for it keeps the same deadline.
        let left = self.timeout.saturating_sub(self.started.elapsed());
        let Ok((stdout, over)) = self.out.recv_timeout(left) else {
            self.kill();
            return Err(RunError::Timeout(self.timeout));
        };
        let left = self.timeout.saturating_sub(self.started.elapsed());
        let stderr = self.err.recv_timeout(left).unwrap_or_default();
        if over {
            return Err(RunError::TooMuchOutput(self.max_output));
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Kills the command's process group (what it started too), then the command itself.
    fn kill(&mut self) {
        // Without `unsafe` there is no kill(2) here; kill(1) takes a negative group id.
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if killed.is_ok() {
            SPAWNS.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end: [`start`] then [`Running::wait`].
pub fn run(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
    max_output: usize,
) -> Result<Output, RunError> {
    start(cmd, stdin, timeout, max_output)?.wait()
}

/// Runs a shell command line (`sh -c`) with the agent's umask (077).
pub fn shell(line: &str, timeout: Duration) -> Result<Output, RunError> {
    run(
        Command::new("/bin/sh").arg("-c").arg(line),
        b"",
        timeout,
        64 * 1024,
    )
}

/// Runs a service reload command line of the config file (`/etc/init.d/dnsmasq reload`) with
/// umask 022, as when the init system runs them: what their init scripts write for a service
/// that drops root (`/tmp/hosts/dhcp.*`, read by dnsmasq as `dnsmasq`) must stay readable
/// (0644), not private like what the agent itself writes (077, [`crate::sys::private::set_umask`]).
pub fn service_shell(line: &str, timeout: Duration) -> Result<Output, RunError> {
    shell(&format!("umask 022\n{line}"), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_input_and_status() {
        let before = spawns();
        let o = run(
            &mut Command::new("/bin/cat"),
            b"abc",
            Duration::from_secs(5),
            100,
        )
        .unwrap();
        assert!(o.status.success());
        assert_eq!(o.stdout, b"abc");
        assert!(spawns() > before);
        let o = shell("echo oops >&2; exit 3", Duration::from_secs(5)).unwrap();
        assert_eq!(o.status.code(), Some(3));
        assert_eq!(o.stderr_line(), "oops");
        let o = service_shell("umask; exit 4", Duration::from_secs(5)).unwrap();
        assert_eq!(
            (o.status.code(), o.stdout.as_slice()),
            (Some(4), &b"0022\n"[..])
        );
    }

    #[test]
    fn a_background_job_holding_the_output_does_not_hold_the_agent() {
        let t = Instant::now();
        let e = shell("sleep 5 & echo started", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, RunError::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // The job was killed with its group: nothing of it is left writing.
        let o = shell("(sleep 0.1 &) ; echo ok", Duration::from_secs(5)).unwrap();
        assert_eq!(o.stdout, b"ok\n");
    }

    #[test]
    fn hung_and_chatty_commands_are_killed() {
        let t = Instant::now();
        let e = shell("sleep 30", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, RunError::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let e = run(
            Command::new("/bin/sh").args(["-c", "yes"]),
            b"",
            Duration::from_secs(5),
            1000,
        )
        .unwrap_err();
        assert!(matches!(e, RunError::TooMuchOutput(1000)), "{e}");
        let e = run(
            &mut Command::new("/nonexistent/cmd"),
            b"",
            Duration::from_secs(1),
            10,
        )
        .unwrap_err();
        assert!(matches!(e, RunError::Spawn(_)));
    }
}
