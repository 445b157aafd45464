//! The logger: one [`Logger`], writing either to syslog or to stderr, through one filter
//! ([`loggable`]).
//!
//! Syslog (`/dev/log`, RFC 3164 framing) carries real severities: on OpenWrt procd logs a
//! service's stderr at one level (err), so the agent speaks to logd itself and `logread` shows
//! warnings as warnings. Elsewhere, and whenever `/dev/log` cannot take a message, lines go to
//! stderr as `[LEVEL] message` (a trace record also names its source: `[TRACE] [file:line]
//! message`). No crate: a Unix datagram socket is all it takes.
//!
//! Every record passes [`loggable`] first: the `trace` output of the libraries is the wire
//! itself, secrets included.
//!
//! Touches the OS: the syslog socket and stderr.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

/// The syslog socket of every Linux libc (and of OpenWrt's logd).
pub const SOCKET: &str = "/dev/log";
/// `daemon` facility (RFC 5424 §6.2.1: 3).
const FACILITY_DAEMON: u8 = 3;
/// Longest message sent in one datagram (logd and busybox syslogd take at least this).
const MAX_MESSAGE: usize = 1024;

/// The logger of the process: records at `level` or above that [`loggable`] accepts, to syslog
/// or to stderr.
pub struct Logger {
    level: log::LevelFilter,
    sink: Sink,
}

enum Sink {
    /// `/dev/log` (`None` in tests: every line takes the stderr fallback), and the
    /// `cwmpd[PID]` tag of each message.
    Syslog {
        socket: Mutex<Option<UnixDatagram>>,
        ident: String,
    },
    Stderr,
}

impl Logger {
    /// A logger to [`SOCKET`]; `None` when there is no syslog daemon.
    pub fn syslog(level: log::LevelFilter) -> Option<Logger> {
        let s = UnixDatagram::unbound().ok()?;
        s.connect(SOCKET).ok()?;
        Some(Logger {
            level,
            sink: Sink::Syslog {
                socket: Mutex::new(Some(s)),
                ident: format!("cwmpd[{}]", std::process::id()),
            },
        })
    }

    /// A logger to stderr.
    pub fn stderr(level: log::LevelFilter) -> Logger {
        Logger {
            level,
            sink: Sink::Stderr,
        }
    }

    /// Makes this the logger of the process (once: a second call changes nothing).
    pub fn install(self) {
        let level = self.level;
        // Leaked on purpose: the logger of a process lives as long as the process.
        if log::set_logger(Box::leak(Box::new(self))).is_ok() {
            log::set_max_level(level);
        }
    }
}

/// Installs the logger of the process: syslog when `syslog` is asked and `/dev/log` takes a
/// connection, stderr otherwise.
pub fn init(level: log::LevelFilter, syslog: bool) {
    let logger = syslog
        .then(|| Logger::syslog(level))
        .flatten()
        .unwrap_or_else(|| Logger::stderr(level));
    logger.install();
}

/// Whether a record may be logged at all: the agent's own records (target `cwmpd…`) at every
/// level, those of the libraries (ureq, ureq-proto, rustls) up to `debug` only.
///
/// At `trace`, ureq-proto dumps every byte sent and received in hex: the `Authorization`
/// header, the `Cookie`, and the SOAP bodies with the passwords a SetParameterValues, a
/// Download or an Upload carries. A hex dump cut into 16-byte rows cannot be redacted reliably,
/// so it is dropped whole. At `debug` ureq logs the request and response heads through its own
/// allow-list (no `Authorization`, no `Cookie`, the path and query hidden), rustls only
/// handshake facts. The agent's own records never carry a password, an `Authorization` header
/// or a message body at any level.
pub fn loggable(metadata: &log::Metadata<'_>) -> bool {
    let target = metadata.target();
    let own = target == "cwmpd" || target.starts_with("cwmpd::");
    own || metadata.level() <= log::Level::Debug
}

/// The RFC 3164 priority of a log level: error 3, warning 4, info 6, debug and trace 7.
pub fn priority(level: log::Level) -> u8 {
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    FACILITY_DAEMON * 8 + severity
}

/// One datagram: `<PRI>ident: message`, the message cut at `MAX_MESSAGE` bytes (on a char
/// boundary) and with its line ends replaced (one record per message).
pub fn frame(level: log::Level, ident: &str, message: &str) -> String {
    let mut m: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    format!("<{}>{ident}: {m}", priority(level))
}

/// One stderr line: `[LEVEL] message`, a trace record with its source (`[TRACE] [file:line]
/// message`), and the line end.
pub fn stderr_line(record: &log::Record<'_>) -> String {
    let mut line = format!("[{}] ", record.level());
    if record.level() == log::Level::Trace {
        let file = record.file().unwrap_or("<unknown>");
        match record.line() {
            Some(n) => line.push_str(&format!("[{file}:{n}] ")),
            None => line.push_str(&format!("[{file}:<unknown>] ")),
        }
    }
    line.push_str(&record.args().to_string());
    line.push('\n');
    line
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level && loggable(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Sink::Syslog { socket, ident } = &self.sink {
            let line = frame(record.level(), ident, &record.args().to_string());
            let sent = socket
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.send(line.as_bytes()).is_ok()))
                .unwrap_or(false);
            if sent {
                return;
            }
            // logd restarting, or its buffer full: the message still goes somewhere.
        }
        // One write per line, so that lines of two threads do not interleave.
        let _ = std::io::stderr().write_all(stderr_line(record).as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_severity() {
        assert_eq!(
            frame(log::Level::Warn, "cwmpd[7]", "a\nb"),
            "<28>cwmpd[7]: a b"
        );
        assert_eq!(priority(log::Level::Error), 27);
        assert_eq!(priority(log::Level::Info), 30);
        assert_eq!(priority(log::Level::Trace), 31);
        let long = "é".repeat(1000);
        let f = frame(log::Level::Info, "x", &long);
        assert!(f.len() <= MAX_MESSAGE + 10, "{}", f.len());
    }

    #[test]
    fn library_trace_records_are_never_logged() {
        let meta = |level, target| log::Metadata::builder().level(level).target(target).build();
        assert!(loggable(&meta(log::Level::Trace, "cwmpd::http::acs")));
        assert!(loggable(&meta(log::Level::Trace, "cwmpd")));
        assert!(loggable(&meta(
            log::Level::Debug,
            "ureq::unversioned::transport"
        )));
        assert!(!loggable(&meta(log::Level::Trace, "ureq_proto::util")));
        assert!(!loggable(&meta(log::Level::Trace, "rustls::client::hs")));
        assert!(!loggable(&meta(log::Level::Trace, "cwmpdx")));
        let logger = Logger {
            level: log::LevelFilter::Trace,
            sink: Sink::Syslog {
                socket: Mutex::new(None),
                ident: "cwmpd[1]".into(),
            },
        };
        use log::Log;
        assert!(!logger.enabled(&meta(log::Level::Trace, "ureq_proto::util")));
        assert!(logger.enabled(&meta(log::Level::Trace, "cwmpd::agent")));
        let stderr = Logger::stderr(log::LevelFilter::Debug);
        assert!(!stderr.enabled(&meta(log::Level::Trace, "cwmpd::agent")));
        assert!(!stderr.enabled(&meta(log::Level::Trace, "rustls::client::hs")));
        assert!(stderr.enabled(&meta(log::Level::Debug, "rustls::client::hs")));
    }

    #[test]
    fn messages_reach_a_syslog_socket() {
        let dir = std::env::temp_dir().join(format!("cwmpd-syslog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let logger = Logger {
            level: log::LevelFilter::Info,
            sink: Sink::Syslog {
                socket: Mutex::new(Some(client)),
                ident: "cwmpd[1]".into(),
            },
        };
        use log::Log;
        logger.log(
            &log::Record::builder()
                .level(log::Level::Error)
                .args(format_args!("session failed"))
                .build(),
        );
        logger.log(
            &log::Record::builder()
                .level(log::Level::Debug)
                .args(format_args!("not sent"))
                .build(),
        );
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<27>cwmpd[1]: session failed");
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err(), "debug is below the level");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stderr_lines_name_the_level() {
        let line = |level| {
            stderr_line(
                &log::Record::builder()
                    .level(level)
                    .file(Some("src/agent/mod.rs"))
                    .line(Some(42))
                    .args(format_args!("session to x"))
                    .build(),
            )
        };
        assert_eq!(line(log::Level::Info), "[INFO] session to x\n");
        assert_eq!(line(log::Level::Warn), "[WARN] session to x\n");
        assert_eq!(line(log::Level::Debug), "[DEBUG] session to x\n");
        assert_eq!(
            line(log::Level::Trace),
            "[TRACE] [src/agent/mod.rs:42] session to x\n"
        );
        let bare = stderr_line(
            &log::Record::builder()
                .level(log::Level::Trace)
                .args(format_args!("m"))
                .build(),
        );
        assert_eq!(bare, "[TRACE] [<unknown>:<unknown>] m\n");
    }
}
