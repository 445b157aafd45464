//! The sans-IO core driven in memory: one POST at a time, no socket.

use std::time::Instant;

use cwmpd::cwmp::version::CwmpNs;
use cwmpd::soap::{
    emit_request, emit_response, parse_acs, AcsMessage, AcsRequest, CpeRequest, CpeResponse,
    DeviceId, EventStruct, Header, Inform, Limits,
};

use super::{AcsCore, Connection, Event, HttpRequest};
use crate::acs::{AcsOptions, Cookie};

fn inform() -> Vec<u8> {
    let inform = Inform {
        device_id: DeviceId {
            manufacturer: "cwmpd".into(),
            oui: "000000".into(),
            product_class: "test".into(),
            serial_number: "SN1".into(),
        },
        events: vec![EventStruct {
            code: "1 BOOT".into(),
            command_key: String::new(),
        }],
        max_envelopes: 1,
        current_time: "2025-01-01T00:00:00Z".into(),
        retry_count: 0,
        parameters: Vec::new(),
    };
    let header = Header {
        id: Some("1".into()),
        ..Header::default()
    };
    emit_request(CwmpNs::V1_2, &header, &CpeRequest::Inform(inform))
}

/// POSTs `body` with the session cookie, if one was set.
fn post(acs: &mut AcsCore, conn: &mut Connection, body: Vec<u8>) -> super::HttpResponse {
    let mut req = HttpRequest::post("/acs", body);
    if let Some(c) = acs.sessions().last().and_then(|s| s.cookie.clone()) {
        req = req.with_header("Cookie", &c);
    }
    acs.handle(conn, &req, Instant::now())
}

#[test]
fn a_whole_session_in_memory() {
    let mut acs = AcsCore::with_seed(AcsOptions::default().cookie(Cookie::Session), 7);
    acs.push_script([AcsRequest::GetRpcMethods]);
    let mut conn = Connection::new(1);
    let r = post(&mut acs, &mut conn, inform());
    assert_eq!(r.status, 200);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("session=")));
    // The empty POST gets the script's request…
    let r = post(&mut acs, &mut conn, Vec::new());
    assert_eq!(r.status, 200);
    let env = parse_acs(&r.body, &Limits::default()).expect("an ACS request");
    assert!(matches!(
        env.body,
        AcsMessage::Request(AcsRequest::GetRpcMethods)
    ));
    // …and the answer ends the session.
    let answer = CpeResponse::GetRpcMethods {
        methods: vec!["Inform".into()],
    };
    let id = env.header.id.clone();
    let r = post(
        &mut acs,
        &mut conn,
        emit_response(CwmpNs::V1_2, id.as_deref(), &answer),
    );
    assert_eq!(r.status, 204);
    let s = &acs.sessions()[0];
    assert!(s.completed && s.errors.is_empty(), "{s:#?}");
    assert_eq!(s.event_codes(), ["1 BOOT"]);
    assert_eq!(s.exchanges.len(), 1);
    assert_eq!(s.exchanges[0].response, Ok(answer));
    assert_eq!(acs.http_log().len(), 3);
    let text = acs.transcript();
    assert!(
        text.contains("── CPE → ACS ── Inform (cwmp-1-2, TCP connection 1)"),
        "{text}"
    );
    assert!(text.contains("Events     1 BOOT"), "{text}");
    assert!(
        text.contains("── ACS → CPE ── GetRPCMethods (cwmp:ID acs-0-1)"),
        "{text}"
    );
    assert!(
        text.ends_with("HTTP 204, empty body: the session is over\n"),
        "{text}"
    );
    // The same seed gives the same cookie: a transcript can be compared with a file.
    let mut again = AcsCore::with_seed(AcsOptions::default().cookie(Cookie::Session), 7);
    post(&mut again, &mut Connection::new(1), inform());
    assert_eq!(again.sessions()[0].cookie, acs.sessions()[0].cookie);
}

#[test]
fn digest_nonce_is_bound_to_its_connection_and_busy_sets_retry_after() {
    let mut acs = AcsCore::with_seed(AcsOptions::default().digest("u", "p").busy(1, 9), 1);
    let mut conn = Connection::new(1);
    let r = post(&mut acs, &mut conn, inform());
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Digest ")));
    assert!(matches!(
        acs.events().last(),
        Some(Event::AuthRefused {
            digest: Some(_),
            ..
        })
    ));
    // A request with no credentials on a new connection is challenged again.
    let r = post(&mut acs, &mut Connection::new(2), inform());
    assert_eq!(r.status, 401);
    assert_eq!(acs.http_log().len(), 2);
    let mut plain = AcsCore::with_seed(AcsOptions::default().busy(1, 9), 1);
    let r = post(&mut plain, &mut conn, inform());
    assert_eq!((r.status, r.header("retry-after")), (503, Some("9")));
    assert!(plain.sessions()[0].rejected);
    assert!(plain.transcript().contains("HTTP 503, Retry-After: 9"));
}

#[test]
fn a_post_outside_a_session_and_a_get_are_refused() {
    let mut acs = AcsCore::with_seed(AcsOptions::default(), 1);
    let mut conn = Connection::new(1);
    assert_eq!(post(&mut acs, &mut conn, Vec::new()).status, 400);
    let get = HttpRequest {
        method: "GET".into(),
        ..HttpRequest::post("/acs", Vec::new())
    };
    assert_eq!(acs.handle(&mut conn, &get, Instant::now()).status, 405);
    assert_eq!(acs.http_log()[1].note, "not a POST");
    assert_eq!(acs.events(), [Event::OutsideSession]);
}
