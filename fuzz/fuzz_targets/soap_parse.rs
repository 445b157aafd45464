//! Fuzzes the SOAP codec (TR-069 Annex A) on arbitrary bytes: [`cwmpd::soap::parse_acs`] (what
//! the session feeds every ACS body to, with the default [`Limits`]) and the ACS side's
//! [`cwmpd::soap::acs::parse_cpe`]. Neither may panic, hang or allocate without bound.
//!
//! Whatever parses is emitted again by the other side's emitter and parsed once more: the second
//! parse must succeed and give the same message (§A.2 round trip). Header fields a side does not
//! send (HoldRequests and UseCWMPVersion travel only from the ACS, SessionTimeout and
//! SupportedCWMPVersions only from the CPE) are left out of the comparison.
//!
//! Slow inputs are findings: `run.sh` lets this target's inputs grow to
//! the 4 MiB size cap under the 5 s timeout per input. And what makes roxmltree's work more than
//! linear is counted deterministically ([`bounds`]): for every input the codec lets through with
//! [`TIGHT`] limits (small enough for the fuzzer to reach each one), roxmltree's own tree must
//! show no more attributes per element or per envelope, namespaces in scope, distinct
//! namespaces, namespace bindings or prefix and URI bytes than the limits allow; a pre-scan
//! that counted less than roxmltree sees fails here at any size.
#![no_main]

use std::collections::HashSet;

use cwmpd::soap::acs::{self, CpeMessage};
use cwmpd::soap::{self, AcsMessage, Header, Limits, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    acs_side(data, &limits);
    cpe_side(data, &limits);
    bounds(data);
});

/// Limits just above what the seeds need (their envelopes declare five or six namespaces, their
/// elements carry at most one attribute), so one inserted attribute, declaration or CDATA
/// section reaches each.
const TIGHT: Limits = Limits {
    max_bytes: 4 << 20,
    max_nodes: 2_000,
    max_depth: 8,
    max_element_attributes: 1,
    max_attributes: 24,
    max_namespaces_in_scope: 6,
    max_namespace_bindings: 16,
    max_distinct_namespaces: 7,
    max_namespace_len: 48,
    max_cdata_run: 1,
};

/// What roxmltree's superlinear loops depend on, read back from its tree, for an input the
/// codec parsed within [`TIGHT`].
fn bounds(data: &[u8]) {
    if matches!(soap::parse_acs(data, &TIGHT), Err(ParseError::Malformed(_))) {
        return;
    }
    // The codec's own reading: UTF-8, a BOM and surrounding whitespace dropped.
    let Ok(text) = std::str::from_utf8(data) else {
        panic!("the codec parsed an envelope that is not UTF-8");
    };
    let text = text.trim_start_matches('\u{FEFF}').trim();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: TIGHT.max_nodes as u32,
    };
    let doc = match roxmltree::Document::parse_with_options(text, opts) {
        Ok(doc) => doc,
        Err(e) => panic!("the codec parsed what roxmltree refuses: {e}"),
    };
    let l = TIGHT;
    let mut attributes = 0;
    let mut distinct = HashSet::new();
    // A lower bound of roxmltree's bindings: an element whose namespaces differ from its
    // parent's declared one (one that only redeclares its parent's is not counted).
    let mut bindings = 0;
    let scope = |n: roxmltree::Node<'_, '_>| -> Vec<(Option<String>, String)> {
        n.namespaces()
            .map(|ns| (ns.name().map(str::to_string), ns.uri().to_string()))
            .collect()
    };
    for n in doc.descendants().filter(roxmltree::Node::is_element) {
        let a = n.attributes().len();
        assert!(
            a <= l.max_element_attributes,
            "{a} attributes on an element"
        );
        attributes += a;
        let ns = scope(n);
        assert!(
            ns.len() <= l.max_namespaces_in_scope,
            "{} namespaces in scope",
            ns.len()
        );
        for (prefix, uri) in &ns {
            let p = prefix.as_deref().map_or(0, str::len);
            assert!(
                p <= l.max_namespace_len && uri.len() <= l.max_namespace_len,
                "namespace {prefix:?}={uri:?} longer than {}",
                l.max_namespace_len
            );
            distinct.insert((prefix.clone(), uri.clone()));
        }
        if n.parent_element().map(scope).unwrap_or_default() != ns {
            bindings += ns.len();
        }
    }
    assert!(attributes <= l.max_attributes, "{attributes} attributes");
    assert!(
        distinct.len() <= l.max_distinct_namespaces,
        "{} distinct namespaces",
        distinct.len()
    );
    assert!(
        bindings <= l.max_namespace_bindings,
        "{bindings} namespace bindings"
    );
}

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
