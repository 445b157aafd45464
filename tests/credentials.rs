//! Where the agent's passwords may go, seen from outside with the real `cwmpd` binary, the test
//! ACS (`tests/support/acs.rs`) and real file servers over real sockets (issue 14, findings 5
//! and 12):
//!
//! - an ACS (or anyone on the path to a plain-http ACS) that asks for Basic over http gets no
//!   password, and the log says why; `[acs] allow_basic_over_http = true` is the explicit opt-in;
//! - a wrong password refused as GenieACS refuses it (401 without a new challenge) is logged as
//!   refused credentials, without the password.
//!
//! (The transport's own rules — no credentials to another origin after a redirect, Basic over
//! https — are in `tests/transport.rs`; the file-transfer side in `tests/transfer.rs`.)

#[path = "support/acs.rs"]
mod acs;
#[path = "support/cpe.rs"]
mod cpe;
#[path = "support/tempdir.rs"]
mod tempdir;
#[path = "support/tls.rs"]
mod tls;

use cpe::*;

use acs::{Acs, AcsOptions};

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
