//! Fuzzes what ubusd and the objects on the bus send cwmpd (`datamodel::backend::ubus`): the
//! blobmsg decoder [`blob::decode_table`] and the message parser [`proto::parse_message`].
//! The first byte picks the mode: even → the rest is a blobmsg table (`UBUS_ATTR_DATA`), odd →
//! the rest is a whole message (header, blob, attributes).
//!
//! Properties besides "no panic, no hang, no unbounded memory": a table that decodes re-encodes
//! (`encode_table`, 4-byte aligned) to bytes that decode to the same values (doubles compared
//! by their bits, so NaN too), within `MAX_DEPTH` and `MAX_ATTRS`; a message that parses has
//! version 0, came from exactly the bytes its prefix announced (never over `UBUS_MAX_MSGLEN`),
//! and its typed attributes answer (its `DATA` table follows the table properties when it
//! decodes).
#![no_main]

use cwmpd::datamodel::backend::ubus::blob::{self, Value};
use cwmpd::datamodel::backend::ubus::proto;
use libfuzzer_sys::fuzz_target;

/// Equality with doubles compared by their bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Table(x), Value::Table(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && same(&p.1, &q.1))
        }
        _ => a == b,
    }
}

/// (depth of nested containers, attributes in all).
fn shape(v: &Value) -> (usize, usize) {
    match v {
        Value::Array(x) => x
            .iter()
            .map(shape)
            .fold((1, 1), |(d, n), (cd, cn)| (d.max(cd + 1), n + cn)),
        Value::Table(x) => x
            .iter()
            .map(|(_, v)| shape(v))
            .fold((1, 1), |(d, n), (cd, cn)| (d.max(cd + 1), n + cn)),
        _ => (0, 1),
    }
}

fn check_table(bytes: &[u8]) {
    let Ok(fields) = blob::decode_table(bytes) else {
        return;
    };
    let (mut depth, mut count) = (0, 0);
    for (_, v) in &fields {
        let (d, n) = shape(v);
        depth = depth.max(d);
        count += n;
    }
    assert!(depth <= blob::MAX_DEPTH, "depth {depth}");
    assert!(count <= blob::MAX_ATTRS, "count {count}");
    let again = blob::try_encode_table(&fields).expect("a decoded table encodes");
    assert_eq!(again.len() % 4, 0);
    let back = blob::decode_table(&again).expect("our own encoding decodes");
    assert!(
        same(&Value::Table(fields), &Value::Table(back)),
        "round trip differs"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_table(rest);
        return;
    }
    if let Ok(m) = proto::parse_message(rest) {
        assert_eq!(m.header.version, 0);
        let announced = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) & 0x00ff_ffff;
        assert_eq!(announced as usize + proto::HDR_LEN, rest.len());
        assert!(blob::pad4(announced as usize) <= proto::UBUS_MAX_MSGLEN);
        let _ = (
            m.status(),
            m.objid(),
            m.objtype(),
            m.target(),
            m.objpath(),
            m.method(),
        );
        let _ = (m.no_reply(), m.active());
        if let Some(d) = m.data() {
            check_table(d);
        }
    }
});
