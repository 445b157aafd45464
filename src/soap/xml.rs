//! The XML writer shared by both sides of the codec (TR-069 Annex A.2: SOAP 1.1 envelopes with
//! the `SOAP-ENV`, `SOAP-ENC`, `xsd`, `xsi` and `cwmp` prefixes declared on the Envelope).
//!
//! One `String` with its capacity reserved up front; every text and attribute value goes through
//! [`escape_into`], which copies unescaped runs in one go and allocates nothing of its own. The
//! output is compact (no whitespace between elements): smaller on the wire, and it leaves no
//! whitespace text for a sloppy receiver to mistake for a value.
//!
//! Escaping rules: `& < > " '` become entity references; a carriage return becomes `&#xD;` so
//! that it survives XML end-of-line normalisation; characters that XML 1.0 does not allow (the
//! C0 controls other than tab, line feed and carriage return, and U+FFFE/U+FFFF) are **replaced by
//! U+FFFD** so the envelope stays well-formed and the value keeps its length in characters.

use std::fmt::Write;

use super::msg::Header;
use crate::cwmp::fault::ParamFault;
use crate::cwmp::version::CwmpNs;

/// The SOAP 1.1 envelope namespace (TR-069 §A.2.1).
pub(crate) const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.1 encoding namespace (arrays, §A.2.2).
pub(crate) const SOAP_ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
/// XML Schema (the `xsd:` types).
pub(crate) const XSD: &str = "http://www.w3.org/2001/XMLSchema";
/// XML Schema instance (the `xsi:type` attribute).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Which SOAP header elements (§A.4.1) one envelope carries. Each side picks the ones it may send
/// from a [`Header`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HeaderOut<'a> {
    /// `cwmp:ID`, `mustUnderstand="1"`.
    pub id: Option<&'a str>,
    /// `cwmp:HoldRequests`, `mustUnderstand="1"` (ACS → CPE).
    pub hold_requests: Option<bool>,
    /// `cwmp:SessionTimeout`, `mustUnderstand="0"` (CPE → ACS, CWMP 1.3+).
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions`, `mustUnderstand="0"` (CPE → ACS, CWMP 1.4).
    pub supported_versions: Option<&'a str>,
    /// `cwmp:UseCWMPVersion`, `mustUnderstand="1"` (ACS → CPE, CWMP 1.4).
    pub use_version: Option<&'a str>,
}

impl<'a> HeaderOut<'a> {
    /// What a CPE sends: ID, SessionTimeout and SupportedCWMPVersions (HoldRequests and
    /// UseCWMPVersion only travel from the ACS).
    pub fn cpe(h: &'a Header) -> HeaderOut<'a> {
        HeaderOut {
            id: h.id.as_deref(),
            session_timeout: h.session_timeout,
            supported_versions: h.supported_versions.as_deref(),
            ..HeaderOut::default()
        }
    }

    /// What an ACS sends: ID, HoldRequests and UseCWMPVersion.
    pub fn acs(h: &'a Header) -> HeaderOut<'a> {
        HeaderOut {
            id: h.id.as_deref(),
            hold_requests: h.hold_requests,
            use_version: h.use_version.as_deref(),
            ..HeaderOut::default()
        }
    }

    /// Only the ID (responses and faults).
    pub fn id(id: Option<&'a str>) -> HeaderOut<'a> {
        HeaderOut {
            id,
            ..HeaderOut::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.hold_requests.is_none()
            && self.session_timeout.is_none()
            && self.supported_versions.is_none()
            && self.use_version.is_none()
    }
}

/// Room for the envelope, the header and a small body.
pub(crate) const BASE_CAPACITY: usize = 640;

/// A SOAP envelope being written. [`Writer::envelope`] writes everything up to `<SOAP-ENV:Body>`,
/// [`Writer::finish`] closes it. Into a `String`, or into a `cwmp::value::Count` of the bytes
/// the same markup takes (the length of a message sent as it is written).
pub(crate) struct Writer<S: Write = String> {
    buf: S,
}

impl Writer {
    /// Starts an envelope in namespace `ns` with the given header elements.
    pub fn envelope(capacity: usize, ns: CwmpNs, header: &HeaderOut<'_>) -> Writer {
        let mut w = Writer {
            buf: String::with_capacity(capacity.max(BASE_CAPACITY)),
        };
        w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        w.raw("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"");
        w.raw(SOAP_ENV);
        w.raw("\" xmlns:SOAP-ENC=\"");
        w.raw(SOAP_ENC);
        w.raw("\" xmlns:xsd=\"");
        w.raw(XSD);
        w.raw("\" xmlns:xsi=\"");
        w.raw(XSI);
        w.raw("\" xmlns:cwmp=\"");
        w.raw(ns.urn());
        w.raw("\">");
        if !header.is_empty() {
            w.raw("<SOAP-ENV:Header>");
            if let Some(id) = header.id {
                w.header_elem("ID", "1", id);
            }
            if let Some(hold) = header.hold_requests {
                w.header_elem("HoldRequests", "1", bool_text(hold));
            }
            if let Some(t) = header.session_timeout {
                w.raw("<cwmp:SessionTimeout SOAP-ENV:mustUnderstand=\"0\">");
                w.num(t);
                w.raw("</cwmp:SessionTimeout>");
            }
            if let Some(v) = header.supported_versions {
                w.header_elem("SupportedCWMPVersions", "0", v);
            }
            if let Some(v) = header.use_version {
                w.header_elem("UseCWMPVersion", "1", v);
            }
            w.raw("</SOAP-ENV:Header>");
        }
        w.raw("<SOAP-ENV:Body>");
        w
    }

    /// Closes the body and the envelope and hands the bytes over.
    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        self.buf.into_bytes()
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
}

impl<S: Write> Writer<S> {
    /// A writer of a part of an envelope (no envelope of its own) into `buf`.
    pub fn part(buf: S) -> Writer<S> {
        Writer { buf }
    }

    /// Where the markup went.
    pub fn into_inner(self) -> S {
        self.buf
    }

    /// `</SOAP-ENV:Body></SOAP-ENV:Envelope>`: the end of every envelope.
    pub fn close(&mut self) {
        self.raw("</SOAP-ENV:Body></SOAP-ENV:Envelope>");
    }

    fn header_elem(&mut self, name: &str, must_understand: &str, text: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.raw(" SOAP-ENV:mustUnderstand=\"");
        self.raw(must_understand);
        self.raw("\">");
        self.text(text);
        self.raw("</cwmp:");
        self.raw(name);
        self.raw(">");
    }

    /// Appends markup as is. Only for names and constants of this module and its callers.
    pub fn raw(&mut self, s: &str) {
        // Writing into a String or a Count cannot fail.
        let _ = self.buf.write_str(s);
    }

    /// Appends escaped character data.
    pub fn text(&mut self, s: &str) {
        escape_into(&mut self.buf, s);
    }

    /// Appends a number.
    pub fn num(&mut self, n: impl std::fmt::Display) {
        // Writing into a String or a Count cannot fail.
        let _ = write!(self.buf, "{n}");
    }

    /// `<cwmp:Name>`: the RPC element, qualified by the cwmp namespace (§A.3).
    pub fn start_rpc(&mut self, name: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.raw(">");
    }

    /// `</cwmp:Name>`.
    pub fn end_rpc(&mut self, name: &str) {
        self.raw("</cwmp:");
        self.raw(name);
        self.raw(">");
    }

    /// `<cwmp:Name/>`: an RPC without arguments.
    pub fn empty_rpc(&mut self, name: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        self.raw("/>");
    }

    /// `<Name>`: arguments are unqualified (`elementFormDefault="unqualified"` in the schemas).
    pub fn start(&mut self, name: &str) {
        self.raw("<");
        self.raw(name);
        self.raw(">");
    }

    /// `</Name>`.
    pub fn end(&mut self, name: &str) {
        self.raw("</");
        self.raw(name);
        self.raw(">");
    }

    /// `<Name SOAP-ENC:arrayType="type[n]">` (§A.2.2: every array states its type and size).
    pub fn start_array(&mut self, name: &str, item_type: &str, n: usize) {
        self.raw("<");
        self.raw(name);
        self.raw(" SOAP-ENC:arrayType=\"");
        self.text(item_type);
        self.raw("[");
        self.num(n);
        self.raw("]\">");
    }

    /// `<Name>text</Name>`.
    pub fn elem(&mut self, name: &str, text: &str) {
        self.start(name);
        self.text(text);
        self.end(name);
    }

    /// `<Name>n</Name>`.
    pub fn elem_num(&mut self, name: &str, n: impl std::fmt::Display) {
        self.start(name);
        self.num(n);
        self.end(name);
    }

    /// `<Name>1</Name>` or `<Name>0</Name>`: `xsd:boolean` in the form every ACS reads.
    pub fn elem_bool(&mut self, name: &str, b: bool) {
        self.elem(name, bool_text(b));
    }

    /// `<Value xsi:type="…">text</Value>`, without the attribute when `xsi_type` is `None`.
    pub fn value(&mut self, xsi_type: Option<&str>, text: &str) {
        match xsi_type {
            Some(t) => {
                self.raw("<Value xsi:type=\"");
                self.text(t);
                self.raw("\">");
            }
            None => self.raw("<Value>"),
        }
        self.text(text);
        self.raw("</Value>");
    }

    /// An array of `xsd:string` (ParameterNames, MethodList, AccessList).
    pub fn string_array(&mut self, name: &str, items: &[String]) {
        self.start_array(name, "xsd:string", items.len());
        for s in items {
            self.elem("string", s);
        }
        self.end(name);
    }

    /// A SOAP fault carrying a CWMP fault (§A.5): `faultcode` Client or Server, `faultstring`
    /// "CWMP fault", and `detail/cwmp:Fault` with FaultCode, FaultString and, for
    /// SetParameterValues, one SetParameterValuesFault per parameter (§A.3.2.1).
    pub fn fault(&mut self, faultcode: &str, code: u32, string: &str, params: &[ParamFault]) {
        self.raw("<SOAP-ENV:Fault><faultcode>");
        self.text(faultcode);
        self.raw("</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault>");
        self.elem_num("FaultCode", code);
        self.elem("FaultString", string);
        for p in params {
            self.start("SetParameterValuesFault");
            self.elem("ParameterName", &p.name);
            self.elem_num("FaultCode", p.fault.code());
            self.elem("FaultString", &p.fault.fault_string());
            self.end("SetParameterValuesFault");
        }
        self.raw("</cwmp:Fault></detail></SOAP-ENV:Fault>");
    }
}

/// `xsd:boolean` as `1`/`0`.
pub(crate) fn bool_text(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// The bytes [`escape_into`] looks at: the five special characters, CR and the other control
/// characters (tab and line feed are let through below), and the lead byte of U+FFFE/U+FFFF.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[0xEF] = true;
    t
};

/// Escapes `s` into `out` (rules in the module doc). Runs without special characters are copied
/// with one `write_str`; a byte of such a run costs one look into [`SPECIAL`] (every name and
/// value of a response passes here).
pub(crate) fn escape_into(out: &mut impl Write, s: &str) {
    // Writing into a String or a Count cannot fail.
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if !SPECIAL[usize::from(b)] {
            i += 1;
            continue;
        }
        let (replacement, len): (&str, usize) = match b {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            b'\r' => ("&#xD;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            0x00..=0x1F => ("\u{FFFD}", 1),
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF in UTF-8.
            0xEF if matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(0xBF), Some(0xBE | 0xBF))
            ) =>
            {
                ("\u{FFFD}", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // Both ends are at an ASCII byte or at the lead byte of a character: char boundaries.
        if let Some(run) = s.get(run_start..i) {
            let _ = out.write_str(run);
        }
        let _ = out.write_str(replacement);
        i += len;
        run_start = i;
    }
    if let Some(run) = s.get(run_start..) {
        let _ = out.write_str(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escapes_the_five_and_carriage_return() {
        assert_eq!(esc("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(esc("line1\r\nline2\tx"), "line1&#xD;\nline2\tx");
        assert_eq!(esc("plain é € 中"), "plain é € 中");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn replaces_characters_xml_forbids() {
        assert_eq!(esc("a\u{0}b\u{1b}c"), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(
            esc("x\u{FFFE}y\u{FFFF}z\u{FFFD}"),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
        );
        // U+FFEF and U+EFBF share lead bytes with the forbidden ones and must pass untouched.
        assert_eq!(esc("\u{FFEF}\u{EFBF}"), "\u{FFEF}\u{EFBF}");
        assert_eq!(esc("end\u{7}"), "end\u{FFFD}");
    }

    #[test]
    fn escaped_output_is_well_formed() {
        let nasty: String = (0u32..0x300)
            .chain([0xFFFE, 0xFFFF, 0xD7FF, 0xE000, 0x10FFFF])
            .filter_map(char::from_u32)
            .collect();
        let mut w = Writer::envelope(0, CwmpNs::V1_0, &HeaderOut::id(Some(&nasty)));
        w.elem("Value", &nasty);
        let bytes = w.finish();
        let text = String::from_utf8(bytes).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let value = doc
            .descendants()
            .find(|n| n.has_tag_name("Value"))
            .and_then(|n| n.text())
            .unwrap();
        assert_eq!(value.chars().count(), nasty.chars().count());
        for c in ['&', '<', '>', '"', '\'', '\r', '\n', '\t', '\u{10FFFF}'] {
            assert!(value.contains(c), "{c:?} lost");
        }
    }

    #[test]
    fn header_elements_and_prefixes() {
        let h = HeaderOut {
            id: Some("42"),
            hold_requests: Some(true),
            session_timeout: Some(60),
            supported_versions: Some("1.0,1.4"),
            use_version: Some("1.4"),
        };
        let text = String::from_utf8(Writer::envelope(0, CwmpNs::V1_2, &h).finish()).unwrap();
        assert!(text.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\""));
        assert!(text.contains("<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">42</cwmp:ID>"));
        assert!(text.contains("<cwmp:HoldRequests SOAP-ENV:mustUnderstand=\"1\">1<"));
        assert!(text.contains("<cwmp:SessionTimeout SOAP-ENV:mustUnderstand=\"0\">60<"));
        assert!(text.contains("<cwmp:SupportedCWMPVersions SOAP-ENV:mustUnderstand=\"0\">1.0,1.4<"));
        assert!(text.contains("<cwmp:UseCWMPVersion SOAP-ENV:mustUnderstand=\"1\">1.4<"));
        let empty =
            String::from_utf8(Writer::envelope(0, CwmpNs::V1_0, &HeaderOut::default()).finish())
                .unwrap();
        assert!(!empty.contains("Header"));
        assert!(roxmltree::Document::parse(&empty).is_ok());
    }
}
