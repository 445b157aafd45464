//! ubus messages (PURE: no file, socket, clock or thread): the header, the message types, the
//! attribute ids and status codes of ubusd's wire protocol, the messages the client sends, and
//! the parser of one received message.
//!
//! A message (ubus `ubusmsg.h`, `libubus-io.c`, `ubusd_main.c`) is an 8-byte header
//! (`struct ubus_msghdr`: `version` u8 = 0, `type` u8, `seq` u16, `peer` u32, network byte
//! order) followed by ONE blob attribute (libubox `blob.h`; id 0, not extended) whose payload is
//! a list of plain (not extended) blob attributes with the ids `UBUS_ATTR_*`. The sender writes
//! exactly `blob_raw_len` bytes after the header (no trailing padding). A receiver first reads
//! 12 bytes (header + the blob's length word: [`parse_prefix`]), refuses a length below 4 or
//! whose padded length is over `UBUS_MAX_MSGLEN` (ubusd `ubusd_main.c`, libubus
//! `ubus_validate_hdr`) BEFORE allocating it, then reads the rest ([`parse_body`]).
//!
//! Attribute payloads are checked like the `blob_attr_info` policies of `ubusd_proto.c` and
//! `libubus-io.c`: `STATUS`, `OBJID`, `OBJTYPE`, `TARGET` are 4-byte big-endian integers,
//! `OBJPATH`, `METHOD`, `USER`, `GROUP` NUL-terminated strings, `ACTIVE`, `NO_REPLY` one byte,
//! `DATA`, `SIGNATURE`, `SUBSCRIBERS` nested attributes (DATA is decoded by
//! [`super::blob::decode_table`]). A payload of the wrong shape makes the message invalid
//! (libubus would ignore the attribute; we refuse it, typed). Unknown attribute ids (ubus adds
//! some over time) are skipped; a repeated id keeps the last, as `blob_parse_untrusted` does.

use std::fmt;

use super::blob::{self, Attrs, BlobError, BLOB_ATTR_ID_SHIFT, BLOB_ATTR_LEN_MASK, BLOB_HDR};

/// The most bytes of a message's blob, padded (ubus `CMakeLists.txt`: `UBUS_MAX_MSGLEN`
/// 1048576; checked on `blob_pad_len` by ubusd and libubus).
pub const UBUS_MAX_MSGLEN: usize = 1_048_576;
/// `sizeof(struct ubus_msghdr)`.
pub const HDR_LEN: usize = 8;
/// The header and the blob's length word: what is read first.
pub const PREFIX_LEN: usize = HDR_LEN + BLOB_HDR;

/// The object of ubusd's event registry (`ubusmsg.h`: `UBUS_SYSTEM_OBJECT_EVENT`); methods
/// `register` and `send` (`ubusd_event.c`).
pub const UBUS_SYSTEM_OBJECT_EVENT: u32 = 1;
/// Ids below this are ubusd's own objects (`UBUS_SYSTEM_OBJECT_MAX`).
pub const UBUS_SYSTEM_OBJECT_MAX: u32 = 1024;

/// `enum ubus_msg_type` (`ubusmsg.h`).
pub mod msg {
    pub const HELLO: u8 = 0;
    pub const STATUS: u8 = 1;
    pub const DATA: u8 = 2;
    pub const PING: u8 = 3;
    pub const LOOKUP: u8 = 4;
    pub const INVOKE: u8 = 5;
    pub const ADD_OBJECT: u8 = 6;
    pub const REMOVE_OBJECT: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const UNSUBSCRIBE: u8 = 9;
    pub const NOTIFY: u8 = 10;
    pub const MONITOR: u8 = 11;
}

/// `enum ubus_msg_attr` (`ubusmsg.h`).
pub mod attr {
    pub const STATUS: u8 = 1;
    pub const OBJPATH: u8 = 2;
    pub const OBJID: u8 = 3;
    pub const METHOD: u8 = 4;
    pub const OBJTYPE: u8 = 5;
    pub const SIGNATURE: u8 = 6;
    pub const DATA: u8 = 7;
    pub const TARGET: u8 = 8;
    pub const ACTIVE: u8 = 9;
    pub const NO_REPLY: u8 = 10;
    pub const SUBSCRIBERS: u8 = 11;
    pub const USER: u8 = 12;
    pub const GROUP: u8 = 13;
    /// `UBUS_ATTR_MAX`: ids from here on are unknown to us and skipped.
    pub const MAX: u8 = 14;
}

/// `enum ubus_msg_status` (`ubusmsg.h`).
pub mod status {
    pub const OK: u32 = 0;
    pub const INVALID_COMMAND: u32 = 1;
    pub const INVALID_ARGUMENT: u32 = 2;
    pub const METHOD_NOT_FOUND: u32 = 3;
    pub const NOT_FOUND: u32 = 4;
    pub const NO_DATA: u32 = 5;
    pub const PERMISSION_DENIED: u32 = 6;
    pub const TIMEOUT: u32 = 7;
    pub const NOT_SUPPORTED: u32 = 8;
    pub const UNKNOWN_ERROR: u32 = 9;
    pub const CONNECTION_FAILED: u32 = 10;
    pub const NO_MEMORY: u32 = 11;
    pub const PARSE_ERROR: u32 = 12;
    pub const SYSTEM_ERROR: u32 = 13;

    /// The name libubus's `ubus_strerror` gives a status.
    pub fn name(code: u32) -> &'static str {
        match code {
            OK => "Success",
            INVALID_COMMAND => "Invalid command",
            INVALID_ARGUMENT => "Invalid argument",
            METHOD_NOT_FOUND => "Method not found",
            NOT_FOUND => "Not found",
            NO_DATA => "No response",
            PERMISSION_DENIED => "Permission denied",
            TIMEOUT => "Request timed out",
            NOT_SUPPORTED => "Operation not supported",
            UNKNOWN_ERROR => "Unknown error",
            CONNECTION_FAILED => "Connection failed",
            NO_MEMORY => "Out of memory",
            PARSE_ERROR => "Parsing message data failed",
            SYSTEM_ERROR => "System error",
            _ => "Unknown status",
        }
    }
}

/// `struct ubus_msghdr`, in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    /// The message type ([`msg`]).
    pub kind: u8,
    pub seq: u16,
    pub peer: u32,
}

impl Header {
    pub fn to_bytes(self) -> [u8; HDR_LEN] {
        let s = self.seq.to_be_bytes();
        let p = self.peer.to_be_bytes();
        [self.version, self.kind, s[0], s[1], p[0], p[1], p[2], p[3]]
    }
}

/// Why bytes are not a valid ubus message (or a message cannot be built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// `version` is not 0 (`ubus_validate_hdr`).
    BadVersion(u8),
    /// The blob's length is below its 4-byte header, or the bytes given do not match it.
    BadLength(usize),
    /// The blob's padded length is over [`UBUS_MAX_MSGLEN`].
    TooLong(usize),
    /// The attribute list is not a valid blob list.
    Blob(BlobError),
    /// A known attribute whose payload has the wrong shape for its id.
    BadAttr { id: u8, len: usize },
    /// (building) a string with a NUL inside, which ubusd would cut.
    Nul,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::BadVersion(v) => write!(f, "ubus message version {v} (expected 0)"),
            ProtoError::BadLength(n) => write!(f, "ubus message blob length {n} out of bounds"),
            ProtoError::TooLong(n) => {
                write!(
                    f,
                    "ubus message of {n} bytes over UBUS_MAX_MSGLEN ({UBUS_MAX_MSGLEN})"
                )
            }
            ProtoError::Blob(e) => write!(f, "ubus message attributes: {e}"),
            ProtoError::BadAttr { id, len } => {
                write!(
                    f,
                    "ubus attribute {id} with a malformed payload of {len} bytes"
                )
            }
            ProtoError::Nul => write!(f, "NUL inside a ubus string"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<BlobError> for ProtoError {
    fn from(e: BlobError) -> Self {
        ProtoError::Blob(e)
    }
}

/// Reads the first [`PREFIX_LEN`] bytes of a message: its header and how many bytes of
/// attributes follow. Refuses a version other than 0, a blob length below 4 and a padded blob
/// length over [`UBUS_MAX_MSGLEN`], so the caller never allocates more than that.
pub fn parse_prefix(prefix: &[u8; PREFIX_LEN]) -> Result<(Header, usize), ProtoError> {
    let header = Header {
        version: prefix[0],
        kind: prefix[1],
        seq: u16::from_be_bytes([prefix[2], prefix[3]]),
        peer: u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
    };
    if header.version != 0 {
        return Err(ProtoError::BadVersion(header.version));
    }
    let word = u32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    let raw = (word & BLOB_ATTR_LEN_MASK) as usize;
    if raw < BLOB_HDR {
        return Err(ProtoError::BadLength(raw));
    }
    if blob::pad4(raw) > UBUS_MAX_MSGLEN {
        return Err(ProtoError::TooLong(raw));
    }
    Ok((header, raw - BLOB_HDR))
}

/// One received message: its header and its attributes (kept as byte ranges of `body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    body: Vec<u8>,
    attrs: [Option<(usize, usize)>; attr::MAX as usize],
}

/// Parses a whole message (prefix and attributes; exactly the bytes of one message).
pub fn parse_message(bytes: &[u8]) -> Result<Message, ProtoError> {
    let Some(prefix) = bytes.get(..PREFIX_LEN) else {
        return Err(ProtoError::BadLength(bytes.len()));
    };
    let mut p = [0u8; PREFIX_LEN];
    p.copy_from_slice(prefix);
    let (header, rest) = parse_prefix(&p)?;
    if bytes.len() - PREFIX_LEN != rest {
        return Err(ProtoError::BadLength(bytes.len() - HDR_LEN));
    }
    parse_body(header, bytes[PREFIX_LEN..].to_vec())
}

/// Parses the attributes that followed a prefix read by [`parse_prefix`].
pub fn parse_body(header: Header, body: Vec<u8>) -> Result<Message, ProtoError> {
    let mut attrs = [None; attr::MAX as usize];
    for a in Attrs::new(&body, PREFIX_LEN) {
        let a = a?;
        if a.id >= attr::MAX || a.id == 0 {
            continue;
        }
        let len = a.payload.len();
        let ok = match a.id {
            attr::STATUS | attr::OBJID | attr::OBJTYPE | attr::TARGET => len == 4,
            attr::OBJPATH | attr::METHOD | attr::USER | attr::GROUP => {
                a.payload.last() == Some(&0) && std::str::from_utf8(until_nul(a.payload)).is_ok()
            }
            attr::ACTIVE | attr::NO_REPLY => len == 1,
            _ => true,
        };
        if !ok {
            return Err(ProtoError::BadAttr { id: a.id, len });
        }
        let start = a.offset - PREFIX_LEN + BLOB_HDR;
        attrs[a.id as usize] = Some((start, start + len));
    }
    Ok(Message {
        header,
        body,
        attrs,
    })
}

fn until_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

impl Message {
    /// The payload of attribute `id`, when present.
    pub fn attr(&self, id: u8) -> Option<&[u8]> {
        let (s, e) = (*self.attrs.get(id as usize)?)?;
        Some(&self.body[s..e])
    }

    fn u32_attr(&self, id: u8) -> Option<u32> {
        self.attr(id)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str_attr(&self, id: u8) -> Option<&str> {
        // Checked UTF-8 by parse_body.
        self.attr(id)
            .and_then(|b| std::str::from_utf8(until_nul(b)).ok())
    }

    pub fn status(&self) -> Option<u32> {
        self.u32_attr(attr::STATUS)
    }
    pub fn objid(&self) -> Option<u32> {
        self.u32_attr(attr::OBJID)
    }
    pub fn objtype(&self) -> Option<u32> {
        self.u32_attr(attr::OBJTYPE)
    }
    pub fn target(&self) -> Option<u32> {
        self.u32_attr(attr::TARGET)
    }
    pub fn objpath(&self) -> Option<&str> {
        self.str_attr(attr::OBJPATH)
    }
    pub fn method(&self) -> Option<&str> {
        self.str_attr(attr::METHOD)
    }
    /// The blobmsg table of `UBUS_ATTR_DATA` (decode with [`super::blob::decode_table`]).
    pub fn data(&self) -> Option<&[u8]> {
        self.attr(attr::DATA)
    }
    /// `UBUS_ATTR_NO_REPLY` set: the sender waits for no status.
    pub fn no_reply(&self) -> bool {
        self.attr(attr::NO_REPLY).is_some_and(|b| b[0] != 0)
    }
    pub fn active(&self) -> Option<bool> {
        self.attr(attr::ACTIVE).map(|b| b[0] != 0)
    }
}

/// One attribute of a message being built.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    U32(u8, u32),
    U8(u8, u8),
    Str(u8, &'a str),
    Raw(u8, &'a [u8]),
}

/// Builds a message: header, the blob word (id 0, not extended), the attributes, each padded
/// but the blob's own length unpadded as `ubus_send_msg` writes `blob_raw_len` bytes.
pub fn build(kind: u8, seq: u16, peer: u32, fields: &[Field<'_>]) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(
        &Header {
            version: 0,
            kind,
            seq,
            peer,
        }
        .to_bytes(),
    );
    out.extend_from_slice(&[0; BLOB_HDR]);
    for f in fields {
        let (id, payload): (u8, std::borrow::Cow<'_, [u8]>) = match *f {
            Field::U32(id, v) => (id, v.to_be_bytes().to_vec().into()),
            Field::U8(id, v) => (id, vec![v].into()),
            Field::Str(id, s) => {
                if s.contains('\0') {
                    return Err(ProtoError::Nul);
                }
                let mut v = s.as_bytes().to_vec();
                v.push(0);
                (id, v.into())
            }
            Field::Raw(id, b) => (id, b.into()),
        };
        // Pad the previous attribute before starting this one.
        out.resize(HDR_LEN + blob::pad4(out.len() - HDR_LEN), 0);
        let len = BLOB_HDR + payload.len();
        if blob::pad4(len) > UBUS_MAX_MSGLEN {
            return Err(ProtoError::TooLong(len));
        }
        let word = (u32::from(id) << BLOB_ATTR_ID_SHIFT) | len as u32;
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&payload);
    }
    let raw = out.len() - HDR_LEN;
    if blob::pad4(raw) > UBUS_MAX_MSGLEN {
        return Err(ProtoError::TooLong(raw));
    }
    out[HDR_LEN..PREFIX_LEN].copy_from_slice(&(raw as u32).to_be_bytes());
    Ok(out)
}

/// LOOKUP (`ubus_lookup`): objects whose path is `pattern` or, with a trailing `*`, starts
/// with what precedes it; every object when `pattern` is empty (no `OBJPATH`).
pub fn lookup(seq: u16, pattern: &str) -> Result<Vec<u8>, ProtoError> {
    if pattern.is_empty() {
        build(msg::LOOKUP, seq, 0, &[])
    } else {
        build(msg::LOOKUP, seq, 0, &[Field::Str(attr::OBJPATH, pattern)])
    }
}

/// INVOKE (`ubus_invoke_async_fd`): header peer and `OBJID` are the object; `data` is an
/// encoded blobmsg table (always present, possibly empty, as libubus sends it).
pub fn invoke(seq: u16, objid: u32, method: &str, data: &[u8]) -> Result<Vec<u8>, ProtoError> {
    build(
        msg::INVOKE,
        seq,
        objid,
        &[
            Field::U32(attr::OBJID, objid),
            Field::Str(attr::METHOD, method),
            Field::Raw(attr::DATA, data),
        ],
    )
}

/// ADD_OBJECT of an anonymous object (no path, no type: `ubus_add_object` of an event handler
/// or a subscriber); ubusd answers a DATA with its `OBJID`, then a STATUS.
pub fn add_object(seq: u16) -> Result<Vec<u8>, ProtoError> {
    build(msg::ADD_OBJECT, seq, 0, &[])
}

/// SUBSCRIBE (`ubus_subscribe`): `subscriber` (our object) watches `target`.
pub fn subscribe(seq: u16, subscriber: u32, target: u32) -> Result<Vec<u8>, ProtoError> {
    build(
        msg::SUBSCRIBE,
        seq,
        0,
        &[
            Field::U32(attr::OBJID, subscriber),
            Field::U32(attr::TARGET, target),
        ],
    )
}

/// The STATUS that answers an INVOKE of our object (`ubus_complete_deferred_request`): the
/// request's seq and peer, our object's id.
pub fn status_reply(seq: u16, peer: u32, objid: u32, code: u32) -> Result<Vec<u8>, ProtoError> {
    build(
        msg::STATUS,
        seq,
        peer,
        &[
            Field::U32(attr::STATUS, code),
            Field::U32(attr::OBJID, objid),
        ],
    )
}

/// The `register` INVOKE of ubusd's event object (`ubus_register_event_handler`):
/// `{"object": objid, "pattern": pattern}`, the object id as `INT32` whatever its value, as
/// `blobmsg_add_u32` writes it and `ubusd_alloc_event_pattern`'s policy wants it.
pub fn event_register(seq: u16, objid: u32, pattern: &str) -> Result<Vec<u8>, ProtoError> {
    use super::blob::Value;
    let data = blob::try_encode_table(&[
        ("object".to_owned(), Value::Int(i64::from(objid as i32))),
        ("pattern".to_owned(), Value::Str(pattern.to_owned())),
    ])?;
    invoke(seq, UBUS_SYSTEM_OBJECT_EVENT, "register", &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::backend::ubus::blob::{decode_table, Value};

    #[test]
    fn invoke_bytes_as_libubus_writes_them() {
        // ubus-0.1.7's tests/invoke.rs captures the same INVOKE of "info" on 0x13333337 with an
        // empty DATA (written by hand here from ubusmsg.h/blob.h).
        let m = invoke(1, 0x1333_3337, "info", &[]).unwrap();
        let want: &[u8] = &[
            0x00, 0x05, 0x00, 0x01, 0x13, 0x33, 0x33, 0x37, // version, INVOKE, seq 1, peer
            0x00, 0x00, 0x00, 0x1c, // blob id 0, raw length 28
            0x03, 0x00, 0x00, 0x08, 0x13, 0x33, 0x33, 0x37, // OBJID
            0x04, 0x00, 0x00, 0x09, b'i', b'n', b'f', b'o', 0x00, 0x00, 0x00, 0x00, // METHOD
            0x07, 0x00, 0x00, 0x04, // DATA, empty
        ];
        assert_eq!(m, want);
        let p = parse_message(&m).unwrap();
        assert_eq!(p.header.kind, msg::INVOKE);
        assert_eq!(p.header.seq, 1);
        assert_eq!(p.header.peer, 0x1333_3337);
        assert_eq!(p.objid(), Some(0x1333_3337));
        assert_eq!(p.method(), Some("info"));
        assert_eq!(p.data(), Some(&[][..]));
        assert!(!p.no_reply());
    }

    #[test]
    fn hello_and_status() {
        // ubusd_send_hello: an empty blob, peer = the client's id.
        let hello = [0, 0, 0, 0, 0x2e, 0xb8, 0x63, 0xdb, 0, 0, 0, 4];
        let p = parse_message(&hello).unwrap();
        assert_eq!(p.header.kind, msg::HELLO);
        assert_eq!(p.header.peer, 0x2eb8_63db);
        let s = status_reply(9, 7, 0x55, status::NOT_FOUND).unwrap();
        let p = parse_message(&s).unwrap();
        assert_eq!((p.status(), p.objid()), (Some(4), Some(0x55)));
        assert_eq!((p.header.seq, p.header.peer), (9, 7));
    }

    #[test]
    fn lookup_and_register() {
        let all = parse_message(&lookup(3, "").unwrap()).unwrap();
        assert_eq!(all.objpath(), None);
        let one = parse_message(&lookup(3, "hostapd.*").unwrap()).unwrap();
        assert_eq!(one.objpath(), Some("hostapd.*"));
        let r = parse_message(&event_register(4, 0xdead_beef, "network.*").unwrap()).unwrap();
        assert_eq!(r.objid(), Some(UBUS_SYSTEM_OBJECT_EVENT));
        assert_eq!(r.method(), Some("register"));
        let t = decode_table(r.data().unwrap()).unwrap();
        assert_eq!(t[0].1, Value::Int(i64::from(0xdead_beefu32 as i32)));
        assert_eq!(t[1].1, Value::Str("network.*".into()));
        assert_eq!(lookup(1, "a\0b"), Err(ProtoError::Nul));
    }

    #[test]
    fn prefix_limits() {
        let mut p = [0u8; PREFIX_LEN];
        p[11] = 3;
        assert_eq!(parse_prefix(&p), Err(ProtoError::BadLength(3)));
        p[0] = 1;
        assert_eq!(parse_prefix(&p), Err(ProtoError::BadVersion(1)));
        p[0] = 0;
        // 1 MiB exactly is allowed, one more byte (padded over) is not.
        p[8..12].copy_from_slice(&(UBUS_MAX_MSGLEN as u32).to_be_bytes());
        assert_eq!(parse_prefix(&p).unwrap().1, UBUS_MAX_MSGLEN - 4);
        p[8..12].copy_from_slice(&(UBUS_MAX_MSGLEN as u32 + 1).to_be_bytes());
        assert!(matches!(parse_prefix(&p), Err(ProtoError::TooLong(_))));
        // The id and extended bits of the length word are not part of the length.
        p[8..12].copy_from_slice(&0xff00_0004u32.to_be_bytes());
        assert_eq!(parse_prefix(&p).unwrap().1, 0);
    }

    #[test]
    fn refuses_malformed_attributes() {
        // STATUS with 2 bytes.
        let m = build(msg::STATUS, 1, 0, &[Field::Raw(attr::STATUS, &[0, 0])]).unwrap();
        assert_eq!(
            parse_message(&m),
            Err(ProtoError::BadAttr { id: 1, len: 2 })
        );
        // METHOD without NUL.
        let m = build(msg::INVOKE, 1, 0, &[Field::Raw(attr::METHOD, b"ab")]).unwrap();
        assert!(matches!(parse_message(&m), Err(ProtoError::BadAttr { .. })));
        // Attribute length beyond the blob.
        let mut m = build(msg::STATUS, 1, 0, &[Field::U32(attr::STATUS, 0)]).unwrap();
        m[15] = 0x20;
        assert!(matches!(parse_message(&m), Err(ProtoError::Blob(_))));
        // Bytes missing or extra.
        let m = build(msg::STATUS, 1, 0, &[Field::U32(attr::STATUS, 0)]).unwrap();
        assert!(parse_message(&m[..m.len() - 1]).is_err());
        let mut longer = m.clone();
        longer.push(0);
        assert!(parse_message(&longer).is_err());
        // Unknown ids are skipped, a repeated id keeps the last.
        let m = build(
            msg::STATUS,
            1,
            0,
            &[
                Field::Raw(40, b"xyz"),
                Field::U32(attr::STATUS, 1),
                Field::U32(attr::STATUS, 2),
            ],
        )
        .unwrap();
        assert_eq!(parse_message(&m).unwrap().status(), Some(2));
    }
}
