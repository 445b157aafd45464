//! The OS actions behind Download, Upload, Reboot and FactoryReset: configured shell command
//! lines (`[hooks]`), run through the bounded process runner (deadline, output cap,
//! process-group kill), like every process a backend starts.
//!
//! Values the ACS chose (TargetFileName, FileType, CommandKey) reach a hook only as single-quoted
//! shell words or environment variables, never as shell text: `{target}` of
//! `a'; reboot; '` is one harmless argument.
//!
//! Exit status contract: 0 = done; 10–19 = the fault 9010–9019 the hook chose (18: file
//! corrupted, 19: file authentication failure, …); anything else, a kill at the deadline or a
//! failure to start = the caller's generic fault (9010 Download, 9011 Upload) with the first
//! line of stderr as the FaultString.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::sys::process;

/// Most bytes a hook may write on stdout before it is killed (a chatty sysupgrade included).
const MAX_OUTPUT: usize = 1 << 20;

/// What a hook is told about its transfer.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    /// The file to apply, or to produce for an upload (`{file}`, `CWMPD_FILE`).
    pub file: Option<&'a Path>,
    /// TargetFileName (`{target}`, `CWMPD_TARGET`).
    pub target: &'a str,
    /// The FileType as the ACS wrote it (`{type}`, `CWMPD_FILE_TYPE`).
    pub file_type: &'a str,
    /// The `<i>` of an instance-specific upload type (`{instance}`, `CWMPD_INSTANCE`).
    pub instance: Option<u32>,
    /// The CommandKey (`CWMPD_COMMAND_KEY`).
    pub command_key: &'a str,
}

/// Why a hook failed: the fault code and its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    pub code: u32,
    pub message: String,
}

/// `s` as one single-quoted POSIX shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command line with its placeholders replaced by quoted words.
pub fn expand(line: &str, call: &Call<'_>) -> String {
    let file = call
        .file
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let instance = call.instance.map(|i| i.to_string()).unwrap_or_default();
    // One pass, so a value containing `{target}` is not expanded again.
    let mut out = String::with_capacity(line.len() + 64);
    let mut rest = line;
    while let Some(i) = rest.find('{') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let word = [
            ("{file}", file.as_str()),
            ("{target}", call.target),
            ("{type}", call.file_type),
            ("{instance}", instance.as_str()),
        ]
        .into_iter()
        .find(|(p, _)| tail.starts_with(p));
        match word {
            Some((p, v)) => {
                out.push_str(&quote(v));
                rest = tail.get(p.len()..).unwrap_or("");
            }
            None => {
                out.push('{');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs a hook to its end (at most `timeout`). `generic` is the fault code of a failure the
/// hook did not name (9010 for a Download, 9011 for an Upload, 9002 otherwise).
pub fn run(line: &str, call: &Call<'_>, timeout: Duration, generic: u32) -> Result<(), HookError> {
    let expanded = expand(line, call);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&expanded);
    if let Some(f) = call.file {
        cmd.env("CWMPD_FILE", f);
    }
    cmd.env("CWMPD_TARGET", call.target)
        .env("CWMPD_FILE_TYPE", call.file_type)
        .env(
            "CWMPD_INSTANCE",
            call.instance.map(|i| i.to_string()).unwrap_or_default(),
        )
        .env("CWMPD_COMMAND_KEY", call.command_key);
    log::info!("running hook: {expanded}");
    let out = process::run(&mut cmd, b"", timeout, MAX_OUTPUT).map_err(|e| HookError {
        code: generic,
        message: format!("hook {}: {e}", first_word(line)),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let status = out.status.code();
    let why = out.stderr_line();
    let message = match status {
        Some(c) => format!("hook {} exited {c}: {why}", first_word(line)),
        None => format!("hook {} was killed by a signal: {why}", first_word(line)),
    };
    let code = match status {
        Some(c @ 10..=19) => 9000 + c as u32,
        _ => generic,
    };
    Err(HookError {
        code,
        message: message.trim_end_matches([':', ' ']).to_string(),
    })
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_quoted_words() {
        let file = Path::new("/tmp/cwmpd/7.file");
        let call = Call {
            file: Some(file),
            target: "a'; touch /tmp/x; '{file}",
            file_type: "1 Firmware Upgrade Image",
            instance: Some(3),
            command_key: "k",
        };
        assert_eq!(
            expand(
                "sysupgrade {file} {target} {type} {instance} {other}",
                &call
            ),
            "sysupgrade '/tmp/cwmpd/7.file' 'a'\\''; touch /tmp/x; '\\''{file}' \
             '1 Firmware Upgrade Image' '3' {other}"
        );
    }

    #[test]
    fn exit_status_picks_the_fault() {
        let t = Duration::from_secs(5);
        let call = Call::default();
        assert_eq!(run("exit 0", &call, t, 9010), Ok(()));
        let e = run("exit 18", &call, t, 9010).unwrap_err();
        assert_eq!(e.code, 9018);
        let e = run("echo 'bad image' >&2; exit 1", &call, t, 9010).unwrap_err();
        assert_eq!(e.code, 9010);
        assert!(e.message.contains("bad image"), "{}", e.message);
        let e = run("sleep 5", &call, Duration::from_millis(200), 9011).unwrap_err();
        assert_eq!(e.code, 9011);
    }

    #[test]
    fn values_reach_the_hook_quoted_and_in_the_environment() {
        let dir = std::env::temp_dir().join(format!("cwmpd-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let evil = dir.join("pwned");
        let target = format!("x'; touch {}; '", evil.display());
        let call = Call {
            file: Some(&out),
            target: &target,
            file_type: "2 Vendor Log File",
            instance: Some(2),
            command_key: "ck",
        };
        run(
            "printf '%s|%s|%s' {target} \"$CWMPD_INSTANCE\" \"$CWMPD_COMMAND_KEY\" > {file}",
            &call,
            Duration::from_secs(5),
            9011,
        )
        .unwrap();
        assert!(!evil.exists());
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("{target}|2|ck")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
