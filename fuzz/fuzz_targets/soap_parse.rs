//! Fuzzes the SOAP codec (TR-069 Annex A) on arbitrary bytes: [`cwmpd::soap::parse_acs`] (what
//! the session feeds every ACS body to, with the default [`Limits`]) and the ACS side's
//! [`cwmpd::soap::acs::parse_cpe`]. Neither may panic, hang or allocate without bound.
//!
//! Whatever parses is emitted again by the other side's emitter and parsed once more: the second
//! parse must succeed and give the same message (§A.2 round trip). Header fields a side does not
//! send (HoldRequests and UseCWMPVersion travel only from the ACS, SessionTimeout and
//! SupportedCWMPVersions only from the CPE) are left out of the comparison.
#![no_main]

use cwmpd::soap::acs::{self, CpeMessage};
use cwmpd::soap::{self, AcsMessage, Header, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    acs_side(data, &limits);
    cpe_side(data, &limits);
});

/// What the agent parses: an ACS body. A message re-emitted by the ACS emitters parses equal.
fn acs_side(data: &[u8], limits: &Limits) {
    let Ok(env) = soap::parse_acs(data, limits) else {
        return;
    };
    let (bytes, expected_header) = match &env.body {
        AcsMessage::Request(req) => (
            acs::emit_acs_request(env.ns, &env.header, req),
            acs_header(&env.header),
        ),
        AcsMessage::Response(resp) => (
            acs::emit_acs_response(env.ns, &env.header, resp),
            acs_header(&env.header),
        ),
        AcsMessage::Fault(fault) => (
            acs::emit_acs_fault(env.ns, env.header.id.as_deref(), fault),
            id_header(&env.header),
        ),
        // An empty Body has nothing to emit.
        AcsMessage::Empty => return,
    };
    let again = match soap::parse_acs(&bytes, limits) {
        Ok(again) => again,
        Err(e) => panic!(
            "re-emitted ACS message does not parse: {e:?}\nfirst: {:?}\nemitted: {}",
            env.body,
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(again.ns, env.ns, "namespace changed in the round trip");
    assert_eq!(
        again.body, env.body,
        "ACS message changed in the round trip"
    );
    assert_eq!(
        again.header, expected_header,
        "header changed in the round trip"
    );
}

/// The ACS side's parser of CPE bodies (demo ACS, tests). A message re-emitted by the agent's
/// emitters parses equal.
fn cpe_side(data: &[u8], limits: &Limits) {
    let Ok(env) = acs::parse_cpe(data, limits) else {
        return;
    };
    let (bytes, expected_header) = match &env.body {
        CpeMessage::Request(req) => (
            soap::emit_request(env.ns, &env.header, req),
            cpe_header(&env.header),
        ),
        CpeMessage::Response(resp) => (
            soap::emit_response(env.ns, env.header.id.as_deref(), resp),
            id_header(&env.header),
        ),
        CpeMessage::Empty => return,
    };
    let again = match acs::parse_cpe(&bytes, limits) {
        Ok(again) => again,
        Err(e) => panic!(
            "re-emitted CPE message does not parse: {e:?}\nfirst: {:?}\nemitted: {}",
            env.body,
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(again.ns, env.ns, "namespace changed in the round trip");
    assert_eq!(
        again.body, env.body,
        "CPE message changed in the round trip"
    );
    assert_eq!(
        again.header, expected_header,
        "header changed in the round trip"
    );
}

/// The header fields an ACS sends.
fn acs_header(h: &Header) -> Header {
    Header {
        id: h.id.clone(),
        hold_requests: h.hold_requests,
        use_version: h.use_version.clone(),
        ..Header::default()
    }
}

/// The header fields a CPE sends with a request.
fn cpe_header(h: &Header) -> Header {
    Header {
        id: h.id.clone(),
        session_timeout: h.session_timeout,
        supported_versions: h.supported_versions.clone(),
        ..Header::default()
    }
}

/// Only the ID (responses and faults).
fn id_header(h: &Header) -> Header {
    Header {
        id: h.id.clone(),
        ..Header::default()
    }
}
