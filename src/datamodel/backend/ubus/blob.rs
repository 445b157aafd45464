//! The blob/blobmsg codec of OpenWrt's libubox (PURE: no file, socket, clock or thread): what
//! ubus carries in `UBUS_ATTR_DATA` (method arguments, replies, event and notification data).
//!
//! The wire format (libubox `blob.h`, `blobmsg.h`, `blobmsg.c`):
//!
//! - A **blob attribute** is a 32-bit big-endian word followed by its payload: bit 31 is the
//!   *extended* bit (`BLOB_ATTR_EXTENDED`), bits 24–30 the id (`BLOB_ATTR_ID_MASK`), bits 0–23 the
//!   length *including* the 4-byte word (`BLOB_ATTR_LEN_MASK`, `blob_raw_len`). Attributes
//!   follow each other at 4-byte boundaries (`BLOB_ATTR_ALIGN`, `blob_pad_len`); the padding is
//!   not counted in the attribute's own length but is in its container's.
//! - A **blobmsg attribute** is a blob attribute with the extended bit set whose id is a
//!   `BLOBMSG_TYPE_*` and whose payload starts with a name header (`struct blobmsg_hdr`): a
//!   16-bit big-endian name length, the name, a NUL, zero padding to 4 bytes
//!   (`blobmsg_hdrlen` = `BLOBMSG_PADDING(2 + namelen + 1)`), then the value.
//! - Values (`blobmsg_add_*`, all big-endian): `INT8`/`BOOL` 1 byte, `INT16` 2, `INT32` 4,
//!   `INT64` 8, `DOUBLE` 8 (the IEEE bits as a u64), `STRING` the bytes and a NUL, `UNSPEC` no
//!   bytes (JSON null), `TABLE` named children, `ARRAY` children with empty names.
//!
//! A table's encoding here is what `UBUS_ATTR_DATA` holds: the children of the table, without a
//! table header of its own (libubus puts `blob_data(msg)` there).
//!
//! Encoding follows `blobmsg_add_json_element` (libubox `blobmsg_json.c`, what the `ubus` CLI
//! sends): an integer that fits `i32` is `INT32`, any other `INT64`; a bool is `INT8`; null is
//! `UNSPEC`; array elements are extended attributes with an empty name.
//!
//! Decoding accepts every blobmsg type and refuses malformed input with a [`BlobError`], with
//! the checks of `blobmsg_check_attr_len` / `blob_check_type` and a few more: every length
//! inside its container, an integer of exactly its size, a double of 8 bytes, a string ending in
//! NUL, a name header inside its attribute and ending in NUL, table children named and array
//! children either named or not (both are valid), names and strings UTF-8, at most
//! [`MAX_DEPTH`] nested tables/arrays and [`MAX_ATTRS`] attributes in all. A string is read up
//! to its first NUL, as every C reader (`blobmsg_get_string`) sees it. `INT8` decodes as
//! [`Value::Bool`] (libubox's `blobmsg_format_json` prints it as `true`/`false`), `INT16`/`32`/`64`
//! as [`Value::Int`]. Decoding visits every byte once: linear in the input.

use std::fmt;

/// `BLOBMSG_TYPE_*` (libubox `blobmsg.h`).
pub const BLOBMSG_TYPE_UNSPEC: u8 = 0;
pub const BLOBMSG_TYPE_ARRAY: u8 = 1;
pub const BLOBMSG_TYPE_TABLE: u8 = 2;
pub const BLOBMSG_TYPE_STRING: u8 = 3;
pub const BLOBMSG_TYPE_INT64: u8 = 4;
pub const BLOBMSG_TYPE_INT32: u8 = 5;
pub const BLOBMSG_TYPE_INT16: u8 = 6;
/// `BLOBMSG_TYPE_INT8`, also `BLOBMSG_TYPE_BOOL`.
pub const BLOBMSG_TYPE_INT8: u8 = 7;
pub const BLOBMSG_TYPE_DOUBLE: u8 = 8;

/// `BLOB_ATTR_EXTENDED`, `BLOB_ATTR_ID_MASK`/`_SHIFT`, `BLOB_ATTR_LEN_MASK` (libubox `blob.h`).
pub const BLOB_ATTR_EXTENDED: u32 = 0x8000_0000;
pub const BLOB_ATTR_ID_MASK: u32 = 0x7f00_0000;
pub const BLOB_ATTR_ID_SHIFT: u32 = 24;
pub const BLOB_ATTR_LEN_MASK: u32 = 0x00ff_ffff;
/// The size of a blob attribute's header word (`sizeof(struct blob_attr)`).
pub const BLOB_HDR: usize = 4;

/// The deepest nesting of tables and arrays accepted by [`decode_table`] (the table itself is
/// depth 0, a table inside it depth 1…).
pub const MAX_DEPTH: usize = 16;
/// The most attributes, at every depth together, accepted by [`decode_table`].
pub const MAX_ATTRS: usize = 65_536;

/// A blobmsg value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Array(Vec<Value>),
    Table(Vec<(String, Value)>),
}

impl Value {
    /// The first field named `key` of a table; `None` for a missing field or a non-table.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Table(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bool of a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements of a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The fields of a [`Value::Table`].
    pub fn as_table(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// Why bytes are not a valid blobmsg table. `offset` is where the offending attribute starts in
/// the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// Fewer than 4 bytes left where an attribute header should be.
    Truncated { offset: usize },
    /// An attribute's length is below its header or beyond its container.
    BadLength { offset: usize, len: usize },
    /// A table child without the extended bit (so without a name), or a name header that does
    /// not fit its attribute or lacks its NUL.
    BadName { offset: usize },
    /// A string value without its terminating NUL.
    MissingNul { offset: usize },
    /// A name or string that is not UTF-8.
    NotUtf8 { offset: usize },
    /// A blobmsg type above `BLOBMSG_TYPE_DOUBLE`.
    BadType { offset: usize, kind: u8 },
    /// A number whose payload has the wrong size for its type.
    BadSize { offset: usize, kind: u8, len: usize },
    /// Tables/arrays nested deeper than [`MAX_DEPTH`].
    TooDeep { offset: usize },
    /// More than [`MAX_ATTRS`] attributes.
    TooMany,
    /// (encoding) a name longer than 65 535 bytes or an attribute longer than 16 MiB, which the
    /// format cannot express.
    TooLong,
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::Truncated { offset } => write!(f, "blob truncated at byte {offset}"),
            BlobError::BadLength { offset, len } => {
                write!(
                    f,
                    "blob attribute at byte {offset}: length {len} out of bounds"
                )
            }
            BlobError::BadName { offset } => {
                write!(
                    f,
                    "blobmsg attribute at byte {offset}: missing or malformed name"
                )
            }
            BlobError::MissingNul { offset } => {
                write!(f, "blobmsg string at byte {offset}: no terminating NUL")
            }
            BlobError::NotUtf8 { offset } => {
                write!(f, "blobmsg attribute at byte {offset}: not UTF-8")
            }
            BlobError::BadType { offset, kind } => {
                write!(f, "blobmsg attribute at byte {offset}: unknown type {kind}")
            }
            BlobError::BadSize { offset, kind, len } => {
                write!(
                    f,
                    "blobmsg attribute at byte {offset}: type {kind} with {len} bytes"
                )
            }
            BlobError::TooDeep { offset } => {
                write!(
                    f,
                    "blobmsg nesting deeper than {MAX_DEPTH} at byte {offset}"
                )
            }
            BlobError::TooMany => write!(f, "more than {MAX_ATTRS} blobmsg attributes"),
            BlobError::TooLong => write!(f, "blobmsg name or attribute too long to encode"),
        }
    }
}

impl std::error::Error for BlobError {}

/// The padded length of `len` bytes (`blob_pad_len`, `BLOBMSG_PADDING`).
pub const fn pad4(len: usize) -> usize {
    (len + 3) & !3
}

/// One blob attribute found by [`Attrs`]: its id, extended bit, offset of its header in the
/// iterated buffer (plus the base given to [`Attrs::new`]) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub id: u8,
    pub extended: bool,
    pub offset: usize,
    pub payload: &'a [u8],
}

/// The blob attributes of a buffer, one after the other (`blob_for_each_attr_len`), every
/// length checked against what is left. The last attribute may lack its padding; anything
/// left that cannot hold an attribute header is an error, never silently skipped.
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

impl<'a> Attrs<'a> {
    /// Iterates `buf`; offsets in errors and [`Attr::offset`] are `base + position in buf`.
    pub fn new(buf: &'a [u8], base: usize) -> Attrs<'a> {
        Attrs {
            buf,
            pos: 0,
            base,
            failed: false,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, BlobError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.base + self.pos;
        let rest = &self.buf[self.pos..];
        let Some(word) = rest.get(..BLOB_HDR) else {
            self.failed = true;
            return Some(Err(BlobError::Truncated { offset }));
        };
        let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        let len = (word & BLOB_ATTR_LEN_MASK) as usize;
        if len < BLOB_HDR || len > rest.len() {
            self.failed = true;
            return Some(Err(BlobError::BadLength { offset, len }));
        }
        // The next attribute starts at the padded length; the last one may end unpadded.
        self.pos += pad4(len).min(rest.len());
        Some(Ok(Attr {
            id: ((word & BLOB_ATTR_ID_MASK) >> BLOB_ATTR_ID_SHIFT) as u8,
            extended: word & BLOB_ATTR_EXTENDED != 0,
            offset,
            payload: &rest[BLOB_HDR..len],
        }))
    }
}

/// Decodes the attributes of a blobmsg table (what `UBUS_ATTR_DATA` holds) into its fields, in
/// wire order (duplicate names are kept).
pub fn decode_table(bytes: &[u8]) -> Result<Vec<(String, Value)>, BlobError> {
    let mut count = 0usize;
    decode_fields(bytes, 0, 0, &mut count)
}

fn decode_fields(
    buf: &[u8],
    base: usize,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<(String, Value)>, BlobError> {
    let mut fields = Vec::new();
    for attr in Attrs::new(buf, base) {
        let attr = attr?;
        let (name, value) = decode_attr(&attr, true, depth, count)?;
        fields.push((name, value));
    }
    Ok(fields)
}

fn decode_elements(
    buf: &[u8],
    base: usize,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Value>, BlobError> {
    let mut elements = Vec::new();
    for attr in Attrs::new(buf, base) {
        let attr = attr?;
        elements.push(decode_attr(&attr, false, depth, count)?.1);
    }
    Ok(elements)
}

/// One blobmsg attribute: its name (empty for an unnamed array element) and value.
/// `need_name`: a table child must be extended and named (`blobmsg_check_name` with name=true).
fn decode_attr(
    attr: &Attr<'_>,
    need_name: bool,
    depth: usize,
    count: &mut usize,
) -> Result<(String, Value), BlobError> {
    let offset = attr.offset;
    *count += 1;
    if *count > MAX_ATTRS {
        return Err(BlobError::TooMany);
    }
    let (name, data, data_base) = if attr.extended {
        let p = attr.payload;
        if p.len() < 2 {
            return Err(BlobError::BadName { offset });
        }
        let namelen = u16::from_be_bytes([p[0], p[1]]) as usize;
        let hdrlen = pad4(2 + namelen + 1);
        if (need_name && namelen == 0) || p.len() < hdrlen || p[2 + namelen] != 0 {
            return Err(BlobError::BadName { offset });
        }
        let name =
            std::str::from_utf8(&p[2..2 + namelen]).map_err(|_| BlobError::NotUtf8 { offset })?;
        (name, &p[hdrlen..], offset + BLOB_HDR + hdrlen)
    } else if need_name {
        return Err(BlobError::BadName { offset });
    } else {
        ("", attr.payload, offset + BLOB_HDR)
    };
    let size = |n: usize| -> Result<&[u8], BlobError> {
        if data.len() == n {
            Ok(data)
        } else {
            Err(BlobError::BadSize {
                offset,
                kind: attr.id,
                len: data.len(),
            })
        }
    };
    let value = match attr.id {
        BLOBMSG_TYPE_UNSPEC => Value::Null,
        BLOBMSG_TYPE_ARRAY | BLOBMSG_TYPE_TABLE => {
            if depth + 1 > MAX_DEPTH {
                return Err(BlobError::TooDeep { offset });
            }
            if attr.id == BLOBMSG_TYPE_TABLE {
                Value::Table(decode_fields(data, data_base, depth + 1, count)?)
            } else {
                Value::Array(decode_elements(data, data_base, depth + 1, count)?)
            }
        }
        BLOBMSG_TYPE_STRING => {
            if data.last() != Some(&0) {
                return Err(BlobError::MissingNul { offset });
            }
            // Up to the first NUL, as blobmsg_get_string's readers see it.
            let end = data.iter().position(|&b| b == 0).unwrap_or(0);
            let s = std::str::from_utf8(&data[..end]).map_err(|_| BlobError::NotUtf8 { offset })?;
            Value::Str(s.to_owned())
        }
        BLOBMSG_TYPE_INT64 => {
            let d = size(8)?;
            Value::Int(i64::from_be_bytes([
                d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
            ]))
        }
        BLOBMSG_TYPE_INT32 => {
            let d = size(4)?;
            Value::Int(i64::from(i32::from_be_bytes([d[0], d[1], d[2], d[3]])))
        }
        BLOBMSG_TYPE_INT16 => {
            let d = size(2)?;
            Value::Int(i64::from(i16::from_be_bytes([d[0], d[1]])))
        }
        BLOBMSG_TYPE_INT8 => Value::Bool(size(1)?[0] != 0),
        BLOBMSG_TYPE_DOUBLE => {
            let d = size(8)?;
            Value::Double(f64::from_bits(u64::from_be_bytes([
                d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
            ])))
        }
        kind => return Err(BlobError::BadType { offset, kind }),
    };
    Ok((name.to_owned(), value))
}

/// Encodes the fields of a table as the attributes `UBUS_ATTR_DATA` holds. A table the format
/// cannot express (a name over 65 535 bytes, an attribute over 16 MiB: far beyond
/// `UBUS_MAX_MSGLEN`) encodes as an empty table; [`try_encode_table`] says so instead.
pub fn encode_table(fields: &[(String, Value)]) -> Vec<u8> {
    try_encode_table(fields).unwrap_or_default()
}

/// [`encode_table`], with [`BlobError::TooLong`] for what the format cannot express.
pub fn try_encode_table(fields: &[(String, Value)]) -> Result<Vec<u8>, BlobError> {
    let mut out = Vec::new();
    for (name, value) in fields {
        encode_attr(&mut out, name, value)?;
    }
    Ok(out)
}

/// Appends a blob attribute header with a placeholder length; returns where it starts.
fn open_attr(out: &mut Vec<u8>, name: &str) -> Result<usize, BlobError> {
    let start = out.len();
    let namelen = u16::try_from(name.len()).map_err(|_| BlobError::TooLong)?;
    out.extend_from_slice(&[0; BLOB_HDR]);
    out.extend_from_slice(&namelen.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    // blobmsg_new: the name header is zero-padded to blobmsg_hdrlen.
    out.resize(start + BLOB_HDR + pad4(2 + name.len() + 1), 0);
    Ok(start)
}

/// Writes the attribute's header word (extended, id, unpadded length) and pads it to 4 bytes.
fn close_attr(out: &mut Vec<u8>, start: usize, kind: u8) -> Result<(), BlobError> {
    let len = out.len() - start;
    if len > BLOB_ATTR_LEN_MASK as usize {
        return Err(BlobError::TooLong);
    }
    let word = BLOB_ATTR_EXTENDED | (u32::from(kind) << BLOB_ATTR_ID_SHIFT) | len as u32;
    out[start..start + BLOB_HDR].copy_from_slice(&word.to_be_bytes());
    out.resize(start + pad4(len), 0);
    Ok(())
}

fn encode_attr(out: &mut Vec<u8>, name: &str, value: &Value) -> Result<(), BlobError> {
    let kind = match value {
        Value::Null => BLOBMSG_TYPE_UNSPEC,
        Value::Bool(_) => BLOBMSG_TYPE_INT8,
        Value::Int(i) if i32::try_from(*i).is_ok() => BLOBMSG_TYPE_INT32,
        Value::Int(_) => BLOBMSG_TYPE_INT64,
        Value::Double(_) => BLOBMSG_TYPE_DOUBLE,
        Value::Str(_) => BLOBMSG_TYPE_STRING,
        Value::Array(_) => BLOBMSG_TYPE_ARRAY,
        Value::Table(_) => BLOBMSG_TYPE_TABLE,
    };
    let start = open_attr(out, name)?;
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int(i) => match i32::try_from(*i) {
            Ok(small) => out.extend_from_slice(&small.to_be_bytes()),
            Err(_) => out.extend_from_slice(&i.to_be_bytes()),
        },
        Value::Double(d) => out.extend_from_slice(&d.to_bits().to_be_bytes()),
        Value::Str(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Array(elements) => {
            for e in elements {
                encode_attr(out, "", e)?;
            }
        }
        Value::Table(fields) => {
            for (k, v) in fields {
                encode_attr(out, k, v)?;
            }
        }
    }
    close_attr(out, start, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    fn f(k: &str, v: Value) -> (String, Value) {
        (k.to_owned(), v)
    }

    /// Bytes written by hand from blobmsg.h (not by our encoder): {"name": "eth0"}.
    const NAME_ETH0: [u8; 20] = [
        0x83, 0x00, 0x00, 0x11, // extended, STRING, raw len 17
        0x00, 0x04, b'n', b'a', b'm', b'e', 0x00, 0x00, // namelen 4, "name", NUL, pad to 8
        b'e', b't', b'h', b'0', 0x00, // "eth0" NUL
        0x00, 0x00, 0x00, // padding to 20
    ];

    #[test]
    fn encodes_like_blobmsg_add_string() {
        assert_eq!(encode_table(&[f("name", s("eth0"))]), NAME_ETH0);
        assert_eq!(
            decode_table(&NAME_ETH0).unwrap(),
            vec![f("name", s("eth0"))]
        );
    }

    #[test]
    fn integers_bools_and_null_like_blobmsg_add_json() {
        let bytes = encode_table(&[
            f("a", Value::Int(7)),
            f("b", Value::Int(1 << 40)),
            f("c", Value::Bool(true)),
            f("d", Value::Null),
            f("e", Value::Int(i64::from(i32::MIN))),
        ]);
        // "a": INT32 (id 5), hdr 4 + name hdr 4 + 4 = 12.
        assert_eq!(&bytes[..4], &[0x85, 0, 0, 12]);
        assert_eq!(&bytes[8..12], &7i32.to_be_bytes());
        // "b": INT64 (id 4), 4 + 4 + 8 = 16.
        assert_eq!(&bytes[12..16], &[0x84, 0, 0, 16]);
        // "c": INT8 (id 7), 4 + 4 + 1 = 9, padded to 12.
        assert_eq!(&bytes[28..32], &[0x87, 0, 0, 9]);
        assert_eq!(bytes[36], 1);
        // "d": UNSPEC, 8 bytes.
        assert_eq!(&bytes[40..44], &[0x80, 0, 0, 8]);
        // "e": i32::MIN still INT32.
        assert_eq!(bytes[48], 0x85);
        let back = decode_table(&bytes).unwrap();
        assert_eq!(back[1], f("b", Value::Int(1 << 40)));
        assert_eq!(back[2], f("c", Value::Bool(true)));
        assert_eq!(back[3], f("d", Value::Null));
    }

    #[test]
    fn nested_round_trip() {
        let v = vec![
            f("up", Value::Bool(false)),
            f("uptime", Value::Int(3600)),
            f("ratio", Value::Double(-0.25)),
            f(
                "ipv4-address",
                Value::Array(vec![Value::Table(vec![
                    f("address", s("192.0.2.7")),
                    f("mask", Value::Int(24)),
                ])]),
            ),
            f("data", Value::Table(vec![])),
            f("list", Value::Array(vec![s(""), s("é"), Value::Null])),
        ];
        let bytes = encode_table(&v);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(decode_table(&bytes).unwrap(), v);
        let t = Value::Table(v);
        assert_eq!(t.get("uptime").and_then(Value::as_i64), Some(3600));
        assert_eq!(
            t.get("ipv4-address")
                .and_then(Value::as_array)
                .map(|a| a.len()),
            Some(1)
        );
        assert!(t.get("nope").is_none());
        assert!(s("x").get("x").is_none());
    }

    #[test]
    fn decodes_every_type_and_unnamed_elements() {
        // INT16 -2 and an array whose element is not extended (valid per blobmsg_check_name).
        let mut b = vec![0x86, 0, 0, 10, 0, 1, b'x', 0, 0xff, 0xfe, 0, 0];
        b.extend_from_slice(&[0x81, 0, 0, 16, 0, 1, b'y', 0]);
        b.extend_from_slice(&[0x05, 0, 0, 8, 0, 0, 0, 5]); // plain INT32 5 in the array
        let got = decode_table(&b).unwrap();
        assert_eq!(got[0], f("x", Value::Int(-2)));
        assert_eq!(got[1], f("y", Value::Array(vec![Value::Int(5)])));
    }

    #[test]
    fn string_stops_at_first_nul() {
        let mut b = NAME_ETH0;
        b[14] = 0; // "et\0" "0" NUL
        assert_eq!(decode_table(&b).unwrap(), vec![f("name", s("et"))]);
    }

    #[test]
    fn refuses_malformed() {
        // Truncated header.
        assert_eq!(
            decode_table(&[0x83, 0]),
            Err(BlobError::Truncated { offset: 0 })
        );
        // Length beyond the buffer.
        let mut b = NAME_ETH0;
        b[3] = 0x40;
        assert!(matches!(decode_table(&b), Err(BlobError::BadLength { .. })));
        // Length below the header.
        b[3] = 2;
        assert!(matches!(decode_table(&b), Err(BlobError::BadLength { .. })));
        // Missing string NUL: raw len 16 cuts the NUL.
        let mut b = NAME_ETH0;
        b[3] = 16;
        assert_eq!(decode_table(&b), Err(BlobError::MissingNul { offset: 0 }));
        // Name without its NUL.
        let mut b = NAME_ETH0;
        b[10] = b'x';
        assert_eq!(decode_table(&b), Err(BlobError::BadName { offset: 0 }));
        // Name length beyond the attribute.
        let mut b = NAME_ETH0;
        b[5] = 200;
        assert_eq!(decode_table(&b), Err(BlobError::BadName { offset: 0 }));
        // Table child without the extended bit.
        let mut b = NAME_ETH0;
        b[0] = 0x03;
        assert_eq!(decode_table(&b), Err(BlobError::BadName { offset: 0 }));
        // Non-UTF-8 string and name.
        let mut b = NAME_ETH0;
        b[12] = 0xff;
        assert_eq!(decode_table(&b), Err(BlobError::NotUtf8 { offset: 0 }));
        let mut b = NAME_ETH0;
        b[6] = 0xc3;
        assert_eq!(decode_table(&b), Err(BlobError::NotUtf8 { offset: 0 }));
        // Unknown type.
        let mut b = NAME_ETH0;
        b[0] = 0x89;
        assert_eq!(
            decode_table(&b),
            Err(BlobError::BadType { offset: 0, kind: 9 })
        );
        // INT32 with 5 bytes.
        let b = [0x85, 0, 0, 13, 0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(decode_table(&b), Err(BlobError::BadSize { .. })));
        // Trailing bytes that cannot hold an attribute.
        let mut b = NAME_ETH0.to_vec();
        b.extend_from_slice(&[0, 0]);
        assert_eq!(decode_table(&b), Err(BlobError::Truncated { offset: 20 }));
    }

    fn nested(depth: usize) -> Value {
        let mut v = Value::Int(1);
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    }

    #[test]
    fn depth_limit() {
        let ok = encode_table(&[f("a", nested(MAX_DEPTH))]);
        assert!(decode_table(&ok).is_ok());
        let deep = encode_table(&[f("a", nested(MAX_DEPTH + 1))]);
        assert!(matches!(
            decode_table(&deep),
            Err(BlobError::TooDeep { .. })
        ));
    }

    #[test]
    fn attribute_count_limit() {
        let ok = encode_table(&[f("a", Value::Array(vec![Value::Null; MAX_ATTRS - 1]))]);
        assert!(decode_table(&ok).is_ok());
        let many = encode_table(&[f("a", Value::Array(vec![Value::Null; MAX_ATTRS]))]);
        assert_eq!(decode_table(&many), Err(BlobError::TooMany));
    }

    #[test]
    fn too_long_name_is_refused_by_try_encode() {
        let name = "n".repeat(70_000);
        assert_eq!(
            try_encode_table(&[(name.clone(), Value::Null)]),
            Err(BlobError::TooLong)
        );
        assert!(encode_table(&[(name, Value::Null)]).is_empty());
    }
}
