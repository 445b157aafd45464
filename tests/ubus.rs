//! cwmpd's ubus client (`datamodel::backend::ubus`) against real protocol peers: the test
//! broker of `support::ubus` (ubusd's wire protocol, its own codec), hostile raw servers on a
//! unix socket, and the independent `ubus` crate (0.1.7, dev-dependency `ubus-rs` of the root
//! crate) both as a blobmsg codec and as a client of the broker.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cwmpd::datamodel::backend::ubus::blob::{decode_table, encode_table, Value};
use cwmpd::datamodel::backend::ubus::client::{Event, Listener, Object, Ubus, UbusError};
use support::tempdir::TempDir;
use support::ubus::{json, Broker, Reply, NOTIFIER};

const T: Duration = Duration::from_secs(5);

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn f(k: &str, v: Value) -> (String, Value) {
    (k.to_owned(), v)
}

fn router() -> Broker {
    let b = Broker::start();
    b.reply(
        "network.interface.wan",
        "status",
        json!({"up": true, "pending": false, "uptime": 3600, "l3_device": "eth1",
               "ipv4-address": [{"address": "198.51.100.7", "mask": 24}],
               "data": {"leasetime": 86400}}),
    );
    b.reply("network.interface.lan", "status", json!({"up": true}));
    b.reply_with_args(
        "network.device",
        "status",
        json!({"name": "eth0"}),
        json!({"type": "Network device", "up": true, "speed": "1000F",
               "statistics": {"rx_bytes": 5_000_000_000u64, "tx_bytes": 12}}),
    );
    b.reply_with_args(
        "network.device",
        "status",
        json!({"name": "eth1"}),
        json!({"type": "Network device", "up": false}),
    );
    b.reply_with("network.device", "set_alias", json!({}), Reply::Status(0));
    b.reply_with("network.device", "secret", json!({}), Reply::Status(6));
    b.reply(
        "hostapd.wlan0",
        "get_clients",
        json!({"freq": 2412, "clients": {}}),
    );
    b
}

fn paths(objs: &[Object]) -> Vec<&str> {
    objs.iter().map(|o| o.path.as_str()).collect()
}

#[test]
fn lookup_exact_wildcard_and_all() {
    let b = router();
    let mut c = Ubus::connect(b.socket(), T).unwrap();
    let one = c.lookup("network.device").unwrap();
    assert_eq!(paths(&one), ["network.device"]);
    assert_ne!(one[0].id, 0);
    let wild = c.lookup("network.interface.*").unwrap();
    assert_eq!(
        paths(&wild),
        ["network.interface.lan", "network.interface.wan"]
    );
    let all = c.lookup("").unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(c.lookup("nope"), Err(UbusError::NotFound("nope".into())));
    assert_eq!(
        c.lookup("nope.*"),
        Err(UbusError::NotFound("nope.*".into()))
    );
    // The connection is still in step after errors.
    assert_eq!(c.lookup("hostapd.*").unwrap().len(), 1);
}

#[test]
fn call_replies_errors_and_counts() {
    let b = router();
    let mut c = Ubus::connect(b.socket(), T).unwrap();
    let wan = c.call("network.interface.wan", "status", &[]).unwrap();
    assert_eq!(wan.get("up"), Some(&Value::Bool(true)));
    assert_eq!(wan.get("uptime"), Some(&Value::Int(3600)));
    assert_eq!(wan.get("l3_device").and_then(Value::as_str), Some("eth1"));
    let addr = &wan.get("ipv4-address").unwrap().as_array().unwrap()[0];
    assert_eq!(addr.get("address"), Some(&s("198.51.100.7")));
    assert_eq!(addr.get("mask"), Some(&Value::Int(24)));
    assert_eq!(
        wan.get("data").and_then(|d| d.get("leasetime")),
        Some(&Value::Int(86400))
    );
    // The fields keep the reply's order.
    let keys: Vec<&str> = wan
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys[..3], ["up", "pending", "uptime"]);

    // Replies keyed on the arguments; an INT64 counter.
    let eth0 = c
        .call("network.device", "status", &[f("name", s("eth0"))])
        .unwrap();
    assert_eq!(
        eth0.get("statistics").and_then(|x| x.get("rx_bytes")),
        Some(&Value::Int(5_000_000_000))
    );
    let eth1 = c
        .call("network.device", "status", &[f("name", s("eth1"))])
        .unwrap();
    assert_eq!(eth1.get("up"), Some(&Value::Bool(false)));
    // No matching rule: INVALID_ARGUMENT, as netifd for an unknown device.
    assert_eq!(
        c.call("network.device", "status", &[f("name", s("eth9"))]),
        Err(UbusError::Status(2))
    );
    // A method that sends no data.
    assert_eq!(
        c.call("network.device", "set_alias", &[]),
        Ok(Value::Table(vec![]))
    );
    assert_eq!(
        c.call("network.device", "secret", &[]),
        Err(UbusError::Status(6))
    );
    assert_eq!(
        c.call("network.nope", "status", &[]),
        Err(UbusError::NotFound("network.nope".into()))
    );
    assert_eq!(
        c.call("network.device", "nope", &[]),
        Err(UbusError::NotFound("network.device nope".into()))
    );
    // A wildcard is no object name for a call.
    assert!(matches!(
        c.call("network.interface.*", "status", &[]),
        Err(UbusError::NotFound(_))
    ));

    assert_eq!(b.invokes("network.interface.wan", "status"), 1);
    assert_eq!(b.invokes("network.device", "status"), 3);
    assert_eq!(b.invokes("network.device", "nope"), 1);
    assert_eq!(b.invokes("network.interface.lan", "status"), 0);
}

#[test]
fn replies_from_json_files() {
    let dir = TempDir::new("ubus-fixture");
    let file = dir.path().join("status.json");
    std::fs::write(
        &file,
        r#"{"up": true, "proto": "dhcp", "list": [1, 2147483648, -1.5, null]}"#,
    )
    .unwrap();
    let b = Broker::start();
    b.reply_file("network.interface.wan", "status", &file);
    b.reply_file_with_args("network.device", "status", json!({"name": "br-lan"}), &file);
    let mut c = Ubus::connect(b.socket(), T).unwrap();
    let want = Value::Table(vec![
        f("up", Value::Bool(true)),
        f("proto", s("dhcp")),
        f(
            "list",
            Value::Array(vec![
                Value::Int(1),
                Value::Int(2_147_483_648),
                Value::Double(-1.5),
                Value::Null,
            ]),
        ),
    ]);
    assert_eq!(
        c.call("network.interface.wan", "status", &[]).unwrap(),
        want
    );
    assert_eq!(
        c.call("network.device", "status", &[f("name", s("br-lan"))])
            .unwrap(),
        want
    );
}

fn next_event(l: &mut Listener) -> Event {
    l.next(T).unwrap().expect("an event within the timeout")
}

#[test]
fn events_by_pattern() {
    let b = router();
    let mut l = Listener::connect(b.socket(), T).unwrap();
    l.listen("network.interface").unwrap();
    l.listen("ubus.object.*").unwrap();
    b.event(
        "network.interface",
        json!({"action": "ifup", "interface": "wan"}),
    );
    let e = next_event(&mut l);
    assert_eq!(e.name, "network.interface");
    assert_eq!(e.object, None);
    assert_eq!(e.data.get("action"), Some(&s("ifup")));
    // Not matching: nothing.
    b.event("network.interface.extra", json!({}));
    b.event("hotplug.net", json!({}));
    assert_eq!(l.next(Duration::from_millis(200)).unwrap(), None);
    // Objects added and removed at run time.
    let id = b.add_object("hostapd.wlan1");
    let e = next_event(&mut l);
    assert_eq!(e.name, "ubus.object.add");
    assert_eq!(e.data.get("path"), Some(&s("hostapd.wlan1")));
    assert_eq!(e.data.get("id"), Some(&Value::Int(i64::from(id as i32))));
    assert!(b.remove_object("hostapd.wlan1"));
    assert_eq!(next_event(&mut l).name, "ubus.object.remove");
    // ubusd's own events (peer 0) are not answered: the broker saw no answers.
    assert!(b.notify_answers().is_empty());
}

#[test]
fn events_during_a_request_are_kept() {
    let b = router();
    let mut l = Listener::connect(b.socket(), T).unwrap();
    l.listen("a.*").unwrap();
    // Written to the socket before the subscribe below is even sent: read while it waits.
    b.event("a.one", json!({"n": 1}));
    b.event("a.two", json!({"n": 2}));
    l.subscribe("hostapd.wlan0").unwrap();
    assert_eq!(next_event(&mut l).name, "a.one");
    assert_eq!(next_event(&mut l).name, "a.two");
    assert_eq!(l.next(Duration::from_millis(100)).unwrap(), None);
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn subscribe_and_notify() {
    let b = router();
    b.reply("hostapd.wlan1", "get_clients", json!({}));
    let mut l = Listener::connect(b.socket(), T).unwrap();
    l.subscribe("hostapd.*").unwrap();
    assert_eq!(b.subscribers("hostapd.wlan0"), 1);
    assert_eq!(b.subscribers("hostapd.wlan1"), 1);
    assert_eq!(
        b.notify(
            "hostapd.wlan0",
            "assoc",
            json!({"address": "02:00:00:00:00:01"})
        ),
        1
    );
    let e = next_event(&mut l);
    assert_eq!(e.name, "assoc");
    assert_eq!(e.object.as_deref(), Some("hostapd.wlan0"));
    assert_eq!(e.data.get("address"), Some(&s("02:00:00:00:00:01")));
    // hostapd waits for the answer: 0 lets the station in.
    wait_until("the answer", || b.notify_answers() == [0]);
    b.notify(
        "hostapd.wlan1",
        "disassoc",
        json!({"address": "02:00:00:00:00:01"}),
    );
    let e = next_event(&mut l);
    assert_eq!(
        (e.name.as_str(), e.object.as_deref()),
        ("disassoc", Some("hostapd.wlan1"))
    );
    wait_until("the second answer", || b.notify_answers().len() == 2);
    // NO_REPLY: no answer.
    b.notify_with("hostapd.wlan0", "probe", json!({}), true);
    assert_eq!(next_event(&mut l).name, "probe");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.notify_answers().len(), 2);
    assert_eq!(
        l.subscribe("hostapd.wlan9"),
        Err(UbusError::NotFound("hostapd.wlan9".into()))
    );
    // A watched object going away ends its subscription (UNSUBSCRIBE is no event).
    assert!(b.remove_object("hostapd.wlan1"));
    assert_eq!(l.next(Duration::from_millis(100)).unwrap(), None);
    let _ = NOTIFIER;
}

#[test]
fn deadlines() {
    let b = router();
    b.reply_with("slow", "hang", json!({}), Reply::Hang);
    b.reply_with(
        "slow",
        "late",
        json!({}),
        Reply::Delay(Duration::from_millis(300), json!({"late": true})),
    );
    let short = Duration::from_millis(150);
    let mut c = Ubus::connect(b.socket(), short).unwrap();
    let t0 = Instant::now();
    assert_eq!(c.call("slow", "hang", &[]), Err(UbusError::Timeout));
    let took = t0.elapsed();
    assert!(took >= short && took < Duration::from_secs(2), "{took:?}");
    assert_eq!(c.call("slow", "late", &[]), Err(UbusError::Timeout));
    // The late reply arrives after the deadline: the next call skips it (seq matching).
    std::thread::sleep(Duration::from_millis(400));
    let wan = c.call("network.interface.wan", "status", &[]).unwrap();
    assert_eq!(wan.get("up"), Some(&Value::Bool(true)));

    let mut l = Listener::connect(b.socket(), short).unwrap();
    let t0 = Instant::now();
    assert_eq!(l.next(Duration::from_millis(100)).unwrap(), None);
    assert!(t0.elapsed() < Duration::from_secs(1));
    l.listen("x").unwrap();
}

#[test]
fn broker_going_away_mid_call() {
    let mut b = router();
    b.reply_with("slow", "hang", json!({}), Reply::Hang);
    let mut c = Ubus::connect(b.socket(), Duration::from_secs(20)).unwrap();
    let mut l = Listener::connect(b.socket(), Duration::from_secs(20)).unwrap();
    l.listen("x").unwrap();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        b.stop();
    });
    let t0 = Instant::now();
    let err = c.call("slow", "hang", &[]).unwrap_err();
    assert!(matches!(err, UbusError::Io(_, _)), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Later calls fail at once.
    let t1 = Instant::now();
    assert!(c.lookup("x").is_err());
    assert!(t1.elapsed() < Duration::from_millis(100));
    // The listener sees the end too.
    assert!(matches!(
        l.next(Duration::from_secs(10)),
        Err(UbusError::Io(_, _))
    ));
    stopper.join().unwrap();
}

#[test]
fn no_broker() {
    let dir = TempDir::new("ubus-none");
    let err = Ubus::connect(&dir.path().join("ubus.sock"), T)
        .err()
        .unwrap();
    assert!(
        matches!(err, UbusError::Io(std::io::ErrorKind::NotFound, _)),
        "{err:?}"
    );
    assert!(err.to_string().contains("ubus.sock"));
}

// -- Hostile raw servers ----------------------------------------------------------------------

/// A server on a fresh socket that runs `script` on its first connection.
fn raw_server(script: impl FnOnce(UnixStream) + Send + 'static) -> (TempDir, PathBuf) {
    let dir = TempDir::new("ubus-raw");
    let path = dir.path().join("ubus.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            script(s);
        }
    });
    (dir, path)
}

const HELLO: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0x42, 0, 0, 0, 4];

/// Reads one request (prefix + body) of the client.
fn read_request(s: &mut UnixStream) -> Vec<u8> {
    let mut p = [0u8; 12];
    s.read_exact(&mut p).unwrap();
    let len = u32::from_be_bytes(p[8..12].try_into().unwrap()) as usize & 0xff_ffff;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).unwrap();
    [p.to_vec(), body].concat()
}

fn hostile(
    script: impl FnOnce(&mut UnixStream) + Send + 'static,
) -> Result<Vec<Object>, UbusError> {
    let (_dir, path) = raw_server(move |mut s| {
        s.write_all(&HELLO).unwrap();
        let _ = read_request(&mut s);
        script(&mut s);
        std::thread::sleep(Duration::from_secs(3));
    });
    let mut c = Ubus::connect(&path, Duration::from_millis(500)).unwrap();
    let t0 = Instant::now();
    let r = c.lookup("x");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    r
}

fn protocol_err(r: Result<Vec<Object>, UbusError>, what: &str) {
    match r {
        Err(UbusError::Protocol(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a protocol error with {what:?}, got {other:?}"),
    }
}

#[test]
fn garbage_is_refused() {
    protocol_err(
        hostile(|s| s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap()),
        "version",
    );
    // Right version, an attribute whose length runs past the message.
    protocol_err(
        hostile(|s| {
            s.write_all(&[
                0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 0x01, 0, 0, 0x40, 0, 0, 0, 0,
            ])
            .unwrap()
        }),
        "length",
    );
    // A STATUS with a 2-byte status.
    protocol_err(
        hostile(|s| {
            s.write_all(&[
                0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 0x01, 0, 0, 6, 0, 0, 0, 0,
            ])
            .unwrap()
        }),
        "malformed",
    );
    // A DATA reply whose object path is not UTF-8.
    protocol_err(
        hostile(|s| {
            s.write_all(&[
                0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 0x02, 0, 0, 6, 0xff, 0, 0, 0,
            ])
            .unwrap()
        }),
        "malformed",
    );
}

#[test]
fn oversized_is_refused_before_reading_it() {
    // 16 MiB - 1 announced, nothing sent: refused from the prefix, at once.
    protocol_err(
        hostile(|s| {
            s.write_all(&[0, 2, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff])
                .unwrap()
        }),
        "UBUS_MAX_MSGLEN",
    );
    // Just over 1 MiB.
    let len = (1u32 << 20) + 1;
    protocol_err(
        hostile(move |s| {
            let mut p = vec![0, 2, 0, 1, 0, 0, 0, 0];
            p.extend_from_slice(&len.to_be_bytes());
            s.write_all(&p).unwrap()
        }),
        "UBUS_MAX_MSGLEN",
    );
}

#[test]
fn stalled_peer_times_out() {
    // 1 MiB announced, 100 bytes sent, then silence.
    let r = hostile(|s| {
        let mut p = vec![0, 2, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&(1u32 << 20).to_be_bytes());
        p.extend_from_slice(&[0; 100]);
        s.write_all(&p).unwrap()
    });
    assert_eq!(r, Err(UbusError::Timeout));
    // Silence from the start.
    assert_eq!(hostile(|_| {}), Err(UbusError::Timeout));
}

#[test]
fn flood_of_unrelated_messages_is_bounded() {
    let r = hostile(|s| {
        // DATA with another seq, again and again.
        let m = [0u8, 2, 0, 99, 0, 0, 0, 0, 0, 0, 0, 4];
        for _ in 0..2000 {
            if s.write_all(&m).is_err() {
                return;
            }
        }
    });
    protocol_err(r, "unrelated");
}

#[test]
fn peer_closing_mid_reply() {
    let r = hostile(|s| {
        s.write_all(&[0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0])
            .unwrap();
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    assert!(
        matches!(r, Err(UbusError::Io(std::io::ErrorKind::UnexpectedEof, _))),
        "{r:?}"
    );
}

/// A message written by hand: header, blob word, plain attributes (id, payload) padded.
fn raw_msg(kind: u8, seq: [u8; 2], peer: u32, attrs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (id, p) in attrs {
        body.extend_from_slice(&((u32::from(*id) << 24) | (4 + p.len() as u32)).to_be_bytes());
        body.extend_from_slice(p);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut m = vec![0, kind, seq[0], seq[1]];
    m.extend_from_slice(&peer.to_be_bytes());
    m.extend_from_slice(&(4 + body.len() as u32).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

#[test]
fn malformed_reply_data_fails_that_call_only() {
    let (_dir, path) = raw_server(|mut s| {
        s.write_all(&HELLO).unwrap();
        // LOOKUP "x": one object, id 5.
        let req = read_request(&mut s);
        let seq = [req[2], req[3]];
        s.write_all(&raw_msg(
            2,
            seq,
            0,
            &[(2, b"x\0"), (3, &5u32.to_be_bytes())],
        ))
        .unwrap();
        s.write_all(&raw_msg(1, seq, 0, &[(1, &0u32.to_be_bytes())]))
            .unwrap();
        // INVOKE: a DATA whose table is a string without its NUL, then STATUS 0.
        let req = read_request(&mut s);
        let seq = [req[2], req[3]];
        let bad: &[u8] = &[0x83, 0, 0, 12, 0, 1, b'a', 0, b'x', b'y', b'z', b'!'];
        s.write_all(&raw_msg(2, seq, 5, &[(3, &5u32.to_be_bytes()), (7, bad)]))
            .unwrap();
        s.write_all(&raw_msg(1, seq, 5, &[(1, &0u32.to_be_bytes())]))
            .unwrap();
        // LOOKUP "y": not found.
        let req = read_request(&mut s);
        s.write_all(&raw_msg(
            1,
            [req[2], req[3]],
            0,
            &[(1, &4u32.to_be_bytes())],
        ))
        .unwrap();
        std::thread::sleep(Duration::from_secs(2));
    });
    let mut c = Ubus::connect(&path, T).unwrap();
    match c.call("x", "m", &[]) {
        Err(UbusError::Protocol(m)) => assert!(m.contains("reply of x m"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.lookup("y"), Err(UbusError::NotFound("y".into())));
}

#[test]
fn connect_needs_a_hello() {
    // Silent server: connect times out.
    let (_d1, silent) = raw_server(|_s| std::thread::sleep(Duration::from_secs(3)));
    let t0 = Instant::now();
    assert_eq!(
        Ubus::connect(&silent, Duration::from_millis(200)).err(),
        Some(UbusError::Timeout)
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // A first message that is no HELLO.
    let (_d2, wrong) = raw_server(|mut s| {
        s.write_all(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    });
    assert!(matches!(
        Listener::connect(&wrong, T).err(),
        Some(UbusError::Protocol(_))
    ));
}

// -- Cross-check with the `ubus` crate ----------------------------------------------------------

/// The `ubus` crate's decoded value as ours (its INT8 is our Bool, its UNSPEC `Unknown(0, [])`
/// our Null; its tables are hash maps, so fields come sorted here).
fn theirs_to_ours(p: &ubus_rs::BlobMsgPayload<'_>) -> Value {
    use ubus_rs::BlobMsgPayload as P;
    match p {
        P::Array(items) => Value::Array(items.iter().map(|m| theirs_to_ours(&m.data)).collect()),
        P::Table(map) => {
            let mut fields: Vec<(String, Value)> = map
                .iter()
                .map(|(k, v)| ((*k).to_owned(), theirs_to_ours(v)))
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Table(fields)
        }
        P::String(s) => Value::Str((*s).to_owned()),
        P::Int64(i) => Value::Int(*i),
        P::Int32(i) => Value::Int(i64::from(*i)),
        P::Int16(i) => Value::Int(i64::from(*i)),
        P::Int8(i) | P::Bool(i) => Value::Bool(*i != 0),
        P::Double(d) => Value::Double(*d),
        P::Unknown(0, &[]) => Value::Null,
        P::Unknown(t, b) => panic!("the ubus crate saw type {t} with {b:?}"),
    }
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Table(fields) => {
            let mut f: Vec<(String, Value)> =
                fields.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            f.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Table(f)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Their reading of a table's attributes.
fn their_decode(bytes: &[u8]) -> Value {
    let mut fields = Vec::new();
    for blob in ubus_rs::BlobIter::<ubus_rs::Blob>::new(bytes) {
        let m: ubus_rs::BlobMsg = blob.try_into().expect("the ubus crate decodes it");
        fields.push((m.name.to_owned(), theirs_to_ours(&m.data)));
    }
    sorted(&Value::Table(fields))
}

fn sample() -> Vec<(String, Value)> {
    vec![
        f("up", Value::Bool(true)),
        f("down", Value::Bool(false)),
        f("uptime", Value::Int(3600)),
        f("negative", Value::Int(-7)),
        f("big", Value::Int(5_000_000_000)),
        f("min", Value::Int(i64::MIN)),
        f("ratio", Value::Double(0.125)),
        f("proto", s("pppoe")),
        f("empty", s("")),
        f("utf8", s("Café ☕")),
        f("nothing", Value::Null),
        f(
            "ipv4-address",
            Value::Array(vec![
                Value::Table(vec![
                    f("address", s("192.0.2.1")),
                    f("mask", Value::Int(32)),
                ]),
                Value::Table(vec![]),
            ]),
        ),
        f(
            "dns-server",
            Value::Array(vec![s("192.0.2.53"), s("192.0.2.54")]),
        ),
        f(
            "data",
            Value::Table(vec![
                f("leasetime", Value::Int(86400)),
                f("n", Value::Array(vec![])),
            ]),
        ),
        f("a-name-of-odd-len", Value::Int(1)),
    ]
}

#[test]
fn crosscheck_their_decoder_reads_our_encoder() {
    let ours = sample();
    let bytes = encode_table(&ours);
    assert_eq!(their_decode(&bytes), sorted(&Value::Table(ours)));
}

#[test]
fn crosscheck_our_decoder_reads_their_encoder() {
    use std::collections::HashMap;
    use ubus_rs::{BlobMsg, BlobMsgBuilder, BlobMsgPayload as P};
    let inner: HashMap<&str, P> = [
        ("leasetime", P::Int32(86400)),
        ("big", P::Int64(-5_000_000_000)),
    ]
    .into_iter()
    .collect();
    let theirs = vec![
        BlobMsg {
            name: "s",
            data: P::String("eth0"),
        },
        BlobMsg {
            name: "i64",
            data: P::Int64(i64::MAX),
        },
        BlobMsg {
            name: "i32",
            data: P::Int32(-1),
        },
        BlobMsg {
            name: "i16",
            data: P::Int16(-300),
        },
        BlobMsg {
            name: "i8",
            data: P::Int8(1),
        },
        BlobMsg {
            name: "b",
            data: P::Bool(0),
        },
        BlobMsg {
            name: "d",
            data: P::Double(-2.5),
        },
        BlobMsg {
            name: "t",
            data: P::Table(inner),
        },
        BlobMsg {
            name: "a",
            data: P::Array(vec![
                BlobMsg {
                    name: "",
                    data: P::String("x"),
                },
                BlobMsg {
                    name: "",
                    data: P::Int32(2),
                },
            ]),
        },
    ];
    let mut bytes = Vec::new();
    for m in &theirs {
        let b = BlobMsgBuilder::try_from(m.clone()).unwrap();
        bytes.extend_from_slice(b.data());
    }
    let ours = decode_table(&bytes).unwrap();
    let want = vec![
        f("s", s("eth0")),
        f("i64", Value::Int(i64::MAX)),
        f("i32", Value::Int(-1)),
        f("i16", Value::Int(-300)),
        f("i8", Value::Bool(true)),
        f("b", Value::Bool(false)),
        f("d", Value::Double(-2.5)),
        f(
            "t",
            Value::Table(vec![
                f("big", Value::Int(-5_000_000_000)),
                f("leasetime", Value::Int(86400)),
            ]),
        ),
        f("a", Value::Array(vec![s("x"), Value::Int(2)])),
    ];
    assert_eq!(sorted(&Value::Table(ours)), sorted(&Value::Table(want)));
}

#[test]
fn crosscheck_their_client_against_the_broker() {
    let b = router();
    let mut conn = ubus_rs::Connection::connect(b.socket()).expect("their client connects");
    let id = conn.lookup_id("network.interface.wan").unwrap();
    let mut objs = Vec::new();
    conn.lookup("network.device", |o| objs.push((o.id, o.methods.len())))
        .unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].1, 3, "status, set_alias, secret: {objs:?}");
    let mut reply = Value::Null;
    conn.invoke(id, "status", &[], |it| {
        let mut fields = Vec::new();
        for blob in it {
            let m: ubus_rs::BlobMsg = blob.try_into().unwrap();
            fields.push((m.name.to_owned(), theirs_to_ours(&m.data)));
        }
        reply = sorted(&Value::Table(fields));
    })
    .unwrap();
    let mut ours = Ubus::connect(b.socket(), T).unwrap();
    let mine = ours.call("network.interface.wan", "status", &[]).unwrap();
    assert_eq!(reply, sorted(&mine));
    assert_eq!(reply.get("uptime"), Some(&Value::Int(3600)));
    // Their arguments (typed by the signature the broker announced) select the reply.
    let dev = ours.lookup("network.device").unwrap()[0].id;
    let args = encode_table(&[f("name", s("eth0"))]);
    let mut up = None;
    conn.invoke(dev, "status", &args, |it| {
        for blob in it {
            let m: ubus_rs::BlobMsg = blob.try_into().unwrap();
            if m.name == "speed" {
                up = Some(theirs_to_ours(&m.data));
            }
        }
    })
    .unwrap();
    assert_eq!(up, Some(s("1000F")));
    // Their view of an error status.
    assert!(matches!(
        conn.invoke(dev, "secret", &[], |_| {}),
        Err(ubus_rs::UbusError::Status(6))
    ));
    assert_eq!(b.invokes("network.interface.wan", "status"), 2);
    assert_eq!(b.invokes("network.device", "status"), 1);
}

#[test]
fn the_backend_calls_only_methods_that_report_whatever_a_key_became() {
    use cwmpd::datamodel::backend::ubus::UbusBackend;
    use cwmpd::datamodel::backend::{Backend, Cx, Platform};
    let b = router();
    b.reply("hostapd.wlan0", "del_client", json!({"ok": true}));
    b.reply("hostapd.wlan0", "get_clients", json!({"clients": {}}));
    let platform = Platform {
        ubus_socket: b.socket().to_path_buf(),
        ..Platform::default()
    };
    let mut backend = UbusBackend::new(&platform);
    let mut values = std::collections::BTreeMap::new();
    let mut cx = Cx {
        values: &mut values,
        changed: false,
    };
    // What a filled-in key could turn into when a daemon's reply names a netdev
    // `wlan0/del_client?addr=…` (the engine refuses a `/` in a filled-in value; this is the
    // backend's own guard): never called, read as absent.
    let got = backend
        .read(
            &mut cx,
            &[
                "hostapd.wlan0/del_client?addr=f0:18:98:4e:5d:6c#ok",
                "network.interface.wan/status#l3_device",
            ],
        )
        .unwrap();
    assert_eq!(got, vec![None, Some("eth1".to_string())]);
    assert_eq!(b.invokes("hostapd.wlan0", "del_client"), 0);
    assert_eq!(b.invokes("network.interface.wan", "status"), 1);
}

#[test]
fn subscriptions_are_bounded_and_a_listener_says_when_it_is_full() {
    use cwmpd::datamodel::backend::ubus::client::MAX_SUBSCRIPTIONS;
    let b = Broker::start();
    let mut l = Listener::connect(b.socket(), T).unwrap();
    // A publisher that makes ever new objects (hostapd.<random>, each gone after a while).
    for i in 0..MAX_SUBSCRIPTIONS {
        let path = format!("hostapd.x{i}");
        b.add_object(&path);
        l.subscribe(&path).unwrap();
        assert!(b.remove_object(&path));
    }
    assert!(l.subscriptions_full());
    b.add_object("hostapd.real");
    assert!(matches!(
        l.subscribe("hostapd.real"),
        Err(UbusError::Protocol(_))
    ));
    // Subscribing again to a path it knows takes no new slot.
    b.add_object("hostapd.x0");
    l.subscribe("hostapd.x0").unwrap();
    assert_eq!(b.subscribers("hostapd.x0"), 1);
    // A new listener starts afresh with the objects there now.
    let mut fresh = Listener::connect(b.socket(), T).unwrap();
    fresh.subscribe("hostapd.*").unwrap();
    assert!(!fresh.subscriptions_full());
    assert_eq!(b.subscribers("hostapd.real"), 1);
}
