//! Where the agent's passwords may go, seen from outside with the real `cwmpd` binary, the test
//! ACS (`tests/support/acs.rs`) and real file servers over real sockets:
//!
//! - an ACS (or anyone on the path to a plain-http ACS) that asks for Basic over http gets no
//!   password, and the log says why; `[acs] allow_basic_over_http = true` is the explicit opt-in;
//! - a wrong password refused as GenieACS refuses it (401 without a new challenge) is logged as
//!   refused credentials, without the password;
//! - at log level `trace`, nothing secret reaches the log: not the ACS password, not the
//!   passwords a SetParameterValues sets, not a Download's or an Upload's file-server password,
//!   not an `Authorization` header — neither as text nor inside a hex dump of the wire; nor the
//!   query of a file's URL (a signed URL's signature), which log lines and messages replace by
//!   `?…`.
//!
//! (The transport's own rules — no credentials to another origin after a redirect, Basic over
//! https — are in `tests/transport.rs`; the file-transfer side in `tests/transfer.rs`.)

use support::{acs, cpe, files, tls};

use cpe::*;
use files::*;

use acs::{Acs, AcsOptions};
use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::{AcsRequest, Download, Upload};

/// Rewrites the CPE's config: `from` (which must be there) becomes `to`, once.
fn edit_config(cpe: &Cpe, from: &str, to: &str) {
    let text = std::fs::read_to_string(&cpe.cfg).expect("read config");
    assert!(text.contains(from), "no {from:?} in the config:\n{text}");
    std::fs::write(&cpe.cfg, text.replacen(from, to, 1)).expect("write config");
}

/// Sets `[acs] allow_basic_over_http = true`.
fn allow_basic_over_http(cpe: &Cpe) {
    edit_config(cpe, "[acs]\n", "[acs]\nallow_basic_over_http = true\n");
}

#[test]
fn basic_over_plain_http_gets_no_password_without_the_opt_in() {
    // What an on-path attacker of a plain-http ACS sees after replacing its Digest challenge.
    let acs = Acs::start(AcsOptions::default().basic(USER, PASS)).expect("start ACS");
    let cpe = Cpe::new("basic-http", &acs.url(), None);
    let out = cpe.cli(&["inform"]);
    out.assert_code(1, "inform to a Basic ACS over http");
    let log = out.all();
    assert!(
        log.contains("Basic authentication over plain http")
            && log.contains("allow_basic_over_http"),
        "no clear reason: {out}"
    );
    assert!(!log.contains(PASS), "{out}");
    let http = acs.http_log();
    assert!(!http.is_empty());
    assert!(
        http.iter().all(|e| e.auth_scheme.is_none()),
        "credentials were sent: {http:#?}"
    );
    assert!(acs.completed().is_empty());

    // The explicit opt-in: answered, with a warning.
    allow_basic_over_http(&cpe);
    let out = cpe.cli(&["inform"]);
    out.assert_code(0, "inform with allow_basic_over_http");
    assert!(out.all().contains("clear text"), "no warning: {out}");
    assert!(acs
        .http_log()
        .iter()
        .any(|e| e.auth_scheme.as_deref() == Some("Basic")));
    assert_eq!(acs.completed().len(), 1);
}

#[test]
fn a_wrong_password_is_logged_as_refused_credentials() {
    // GenieACS answers wrong credentials with a 401 that carries no new challenge.
    let acs = Acs::start(
        AcsOptions::default()
            .digest(USER, "not-the-cpe-password")
            .bare_refusal(),
    )
    .expect("start ACS");
    let cpe = Cpe::new("refused", &acs.url(), None);
    let out = cpe.cli(&["inform"]);
    out.assert_code(1, "inform with a wrong password");
    let log = out.all();
    assert!(
        log.contains("the ACS refused the credentials"),
        "not named as refused credentials: {out}"
    );
    assert!(!log.contains("without a usable WWW-Authenticate"), "{out}");
    assert!(!log.contains(PASS), "{out}");
    let http = acs.http_log();
    assert_eq!(http.len(), 2, "{http:#?}");
    assert_eq!(http[1].auth_scheme.as_deref(), Some("Digest"));
}

// ----------------------------------------------------------------------------------------------
// Nothing secret in the log at `trace`.

const CR_SECRET: &str = "cr-Secr3t-7547";
const FILE_USER: &str = "dl-user";
const FILE_SECRET: &str = "dl-Secr3t-file";
const UP_USER: &str = "up-user";
const UP_SECRET: &str = "up-Secr3t-backup";
const FW: &str = "1 Firmware Upgrade Image";
const CONFIG: &str = "1 Vendor Configuration File";

/// The bytes of every hex-dump row in `log` (`3c3f 786d … <ascii>`, 16 bytes a row, `--` for
/// none), in order: the wire as a library's trace output shows it, so that a secret cut across
/// two rows is still found.
fn hex_dumped(log: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in log.lines() {
        let groups: Vec<&str> = line
            .split_whitespace()
            .skip_while(|w| !is_group(w))
            .take_while(|w| is_group(w))
            .collect();
        if groups.len() != 8 {
            continue;
        }
        for g in groups {
            for pair in [&g[..2], &g[2..]] {
                if let Ok(b) = u8::from_str_radix(pair, 16) {
                    out.push(b);
                }
            }
        }
    }
    out
}

fn is_group(w: &str) -> bool {
    w.len() == 4 && w.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[test]
fn nothing_secret_is_logged_at_trace() {
    let acs = Acs::start(AcsOptions::default().digest(USER, PASS)).expect("start ACS");
    let fw = FileServer::file(
        None,
        "/fw.bin",
        b"firmware image".to_vec(),
        HttpAuth::digest(FILE_USER, FILE_SECRET),
    );
    let sink = FileServer::sink(None, 200, HttpAuth::digest(UP_USER, UP_SECRET));
    let hooks = "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = false\n\
                 upload_config = \"{dir}/upcfg.sh {file}\"\n";
    let cpe = transfer_cpe("trace", &acs.url(), None, 3600, "", hooks);
    hook_script(&cpe, "fw", "", 0);
    hook_script(&cpe, "upcfg", "printf 'config backup' > \"$1\"", 0);
    edit_config(&cpe, "level = \"debug\"", "level = \"trace\"");

    let ms = "Device.ManagementServer.";
    // (STUNPassword is not served by this data model: the generic platform binds no STUN.)
    let (pw, crpw) = (
        format!("{ms}Password"),
        format!("{ms}ConnectionRequestPassword"),
    );
    acs.push_script([
        // The ACS password is set again to its value: later sessions still authenticate.
        spv_req(
            &[
                (&pw, PASS, BaseType::String),
                (&crpw, CR_SECRET, BaseType::String),
            ],
            "secrets",
        ),
        AcsRequest::Download(Download {
            username: FILE_USER.into(),
            password: FILE_SECRET.into(),
            ..download("dl-secret", FW, &fw.url("/fw.bin"))
        })
        .into(),
        AcsRequest::Upload(Upload {
            username: UP_USER.into(),
            password: UP_SECRET.into(),
            ..upload("up-secret", CONFIG, &sink.url("/backup"))
        })
        .into(),
    ]);
    let daemon = cpe.spawn_run();
    for key in ["dl-secret", "up-secret"] {
        let (_, tc) = wait_transfer_complete(&acs, key, WAIT)
            .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
        assert_eq!(tc.code, 0, "{tc:?}\ndaemon: {}", daemon.log());
    }
    // The secrets really went where they belong.
    let s = &acs.completed()[0];
    assert_eq!(s.exchanges.len(), 3, "{:#?}", s.exchanges);
    assert_eq!(
        s.exchanges[0].response,
        Ok(cwmpd::soap::CpeResponse::SetParameterValues { status: 0 }),
        "{:#?}",
        s.exchanges[0]
    );
    assert!(fw
        .requests()
        .iter()
        .any(|r| digest_ok(r, FILE_USER, FILE_SECRET)));
    assert!(sink
        .requests()
        .iter()
        .any(|r| digest_ok(r, UP_USER, UP_SECRET)));
    let log = daemon.kill();

    // The libraries still log at debug (the level is in force), their trace output not.
    assert!(log.contains("[DEBUG]"), "no debug output at all:\n{log}");
    let wire = String::from_utf8_lossy(&hex_dumped(&log)).into_owned();
    let secrets = [PASS, CR_SECRET, FILE_SECRET, UP_SECRET];
    for (what, text) in [("the log", &log), ("a hex dump in the log", &wire)] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret:?} in {what}:\n{}",
                if what == "the log" { &log } else { &wire }
            );
        }
        let lower = text.to_ascii_lowercase();
        for header in ["authorization:", "cookie:"] {
            assert!(!lower.contains(header), "{header} in {what}");
        }
    }
}

/// URLs are redacted in every log line. Without that, "downloading <url>", "downloaded … from
/// <url>", "uploaded … to <url>", the redirect line and the failure messages carried the whole URL,
/// so a signed URL's signature (`X-Amz-Signature=…`, as good as a password until it expires) landed
/// in logread.
#[test]
fn the_query_of_a_signed_url_is_not_logged() {
    const DL_SIG: &str = "dl-Sig-s3cr3t";
    const REDIRECT_SIG: &str = "redirect-Sig-s3cr3t";
    const MISS_SIG: &str = "miss-Sig-s3cr3t";
    const UP_SIG: &str = "up-Sig-s3cr3t";
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let server = FileServer::start(None, |req| {
        let (path, query) = req.path.split_once('?').unwrap_or((req.path.as_str(), ""));
        match (req.method.as_str(), path) {
            ("GET", "/r") if query.contains(REDIRECT_SIG) => tls::Response::new(302).header(
                "Location",
                &format!("/fw.bin?X-Amz-Signature={DL_SIG}&X-Amz-Expires=300"),
            ),
            ("GET", "/fw.bin") if query.contains(DL_SIG) => {
                tls::Response::new(200).body(b"firmware image".to_vec())
            }
            ("PUT" | "POST", "/backup") if query.contains(UP_SIG) => tls::Response::new(200),
            _ => tls::Response::new(404).body("not found"),
        }
    });
    let hooks = "firmware = \"{dir}/fw.sh {file}\"\nfirmware_reboots = false\n\
                 upload_config = \"{dir}/upcfg.sh {file}\"\n";
    let cpe = transfer_cpe("signed-url", &acs.url(), None, 3600, "", hooks);
    hook_script(&cpe, "fw", "", 0);
    hook_script(&cpe, "upcfg", "printf 'config backup' > \"$1\"", 0);
    edit_config(&cpe, "level = \"debug\"", "level = \"trace\"");
    let signed = |path: &str, sig: &str| {
        server.url(&format!(
            "{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={sig}"
        ))
    };
    acs.push_script([
        AcsRequest::Download(download("dl-signed", FW, &signed("/r", REDIRECT_SIG))),
        AcsRequest::Download(download("dl-missing", FW, &signed("/missing", MISS_SIG))),
        AcsRequest::Upload(upload("up-signed", CONFIG, &signed("/backup", UP_SIG))),
    ]);
    let daemon = cpe.spawn_run();
    let mut codes = Vec::new();
    for key in ["dl-signed", "dl-missing", "up-signed"] {
        let (_, tc) = wait_transfer_complete(&acs, key, WAIT)
            .unwrap_or_else(|e| panic!("{e}\ndaemon: {}", daemon.log()));
        codes.push(tc.code);
    }
    let log = daemon.kill();
    // The signed URLs worked (their queries went to the server), the one that failed failed.
    assert_eq!(codes[0], 0, "{log}");
    assert_ne!(codes[1], 0, "{log}");
    assert_eq!(codes[2], 0, "{log}");
    assert_eq!(server.count("GET"), 3, "{:?}", server.requests());
    for secret in [DL_SIG, REDIRECT_SIG, MISS_SIG, UP_SIG, "X-Amz-"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    // The URLs are still named in the log, without their query.
    for shown in ["/r?…", "/fw.bin?…", "/missing?…", "/backup?…"] {
        assert!(log.contains(shown), "no {shown} in the log:\n{log}");
    }
}

#[test]
fn a_password_in_the_acs_url_is_not_logged() {
    // The transport refuses user information in the ACS URL; the log line naming the URL
    // before it does must not show the password either.
    let acs = Acs::start(AcsOptions::default()).expect("start ACS");
    let cpe = Cpe::new("url-userinfo", &acs.url(), None);
    let with_userinfo = acs
        .url()
        .replacen("http://", "http://someone:url-Secr3t@", 1);
    edit_config(
        &cpe,
        &format!("url = {:?}", acs.url()),
        &format!("url = {with_userinfo:?}"),
    );
    edit_config(&cpe, "level = \"debug\"", "level = \"trace\"");
    let out = cpe.cli(&["inform"]);
    out.assert_code(1, "inform to a URL with user information");
    assert!(out.all().contains("user information"), "{out}");
    assert!(!out.all().contains("url-Secr3t"), "{out}");
    assert!(acs.http_log().is_empty());
}

#[test]
fn the_opt_in_is_off_by_default_and_read_from_toml_and_uci() {
    use cwmpd::config::Config;
    assert!(!Config::embedded().acs.allow_basic_over_http);
    assert!(
        !Config::parse("[acs]\n", "t.toml")
            .unwrap()
            .acs
            .allow_basic_over_http
    );
    let toml = Config::parse("[acs]\nallow_basic_over_http = true\n", "t.toml").unwrap();
    assert!(toml.acs.allow_basic_over_http);
    let uci = "config acs 'acs'\n\toption allow_basic_over_http '1'\n";
    assert!(
        Config::parse_uci(uci, "cwmpd")
            .unwrap()
            .acs
            .allow_basic_over_http
    );
    let uci = "config acs 'acs'\n\toption allow_basic_over_http '0'\n";
    assert!(
        !Config::parse_uci(uci, "cwmpd")
            .unwrap()
            .acs
            .allow_basic_over_http
    );
}
