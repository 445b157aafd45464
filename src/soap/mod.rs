//! The SOAP codec (TR-069 Annex A; schemas `cwmp-1-0.xsd` … `cwmp-1-4.xsd`).
//!
//! Pure functions over bytes: [`parse_acs`] turns an ACS body into a typed [`AcsMessage`],
//! [`emit_request`] and [`emit_response`] turn typed CPE messages into bytes. The ACS side
//! ([`acs`]) is the mirror image, used by the demo ACS and the tests; the release binary never
//! calls it, so LTO drops it. This layer knows nothing of the parameter tree.
//!
//! Layout: `scan` parses a body into a tree within the [`Limits`], `tree` reads envelopes from it
//! (namespaces, header, arguments by local name) and `xml` writes them (escaping, header, arrays,
//! faults); the three are shared by the CPE side (`parse`, `emit`) and the ACS side ([`acs`]).
//! The message types are [`msg`]'s; the values and versions they carry are [`crate::cwmp`]'s.
//!
//! Parsing (safe defaults: input from the network is bounded before it is parsed): the body is refused before parsing when it is
//! larger than [`Limits::max_bytes`] or not UTF-8, roxmltree refuses DTDs and stops at
//! [`Limits::max_nodes`], and one scan of the raw text before roxmltree sees it refuses nesting
//! deeper than [`Limits::max_depth`] (roxmltree recurses once per level) and every shape that
//! roxmltree would parse in more than linear time (too many attributes on an element or
//! namespace prefixes in scope, and the other bounds of [`Limits`]).
//! Every such refusal is [`ParseError::Malformed`]; nothing panics, and no list is sized from a
//! count the sender claims. Tolerance (§A.2 as practised): any prefix or a default namespace,
//! `cwmp-1-0` … `cwmp-1-4`, arguments by local name, `SOAP-ENC:arrayType` and `xsi:type` optional,
//! comments and whitespace anywhere, header elements in any order, `mustUnderstand` in any case.
//!
//! Emitting: one buffer sized up front, compact markup, `cwmp:ID` with `mustUnderstand="1"`,
//! `SOAP-ENC:arrayType` on every array and `xsi:type` on every value. Escaping: `& < > " '` as
//! entities, carriage return as `&#xD;`, and characters XML 1.0 forbids (C0 controls other than
//! tab, line feed, carriage return; U+FFFE, U+FFFF) replaced by U+FFFD (see the `xml` module).

pub mod acs;
mod emit;
pub mod msg;
mod parse;
mod scan;
mod tree;
mod xml;

use crate::cwmp::version::CwmpNs;
pub use emit::{Body, ValuesBody, ValuesReader};
pub use msg::*;

/// Size limits applied while parsing (safe defaults: every bound holds without configuration).
///
/// Besides size, nodes and depth, they bound what roxmltree 0.20 does in more than linear time
/// (ARCHITECTURE.md, "XML parsing in linear time"): attributes per element (checked pairwise for
/// duplicates), namespace prefixes in scope (copied to every element that declares one, looked
/// up for every name), distinct declarations (kept in a sorted array), prefix and URI lengths
/// (compared byte by byte in those loops) and CDATA sections in a row (each one re-copies the
/// text before it). The pre-scan that measures depth checks them all in the same pass, so every
/// envelope up to [`Limits::max_bytes`] is parsed or refused in time linear in its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes. Default 4 MiB.
    pub max_bytes: usize,
    /// Most XML nodes (elements, text, comments) in one envelope. Default 200,000.
    pub max_nodes: usize,
    /// Deepest element nesting. Default 32. Keep it in the hundreds at most: the XML parser
    /// recurses once per level.
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations not counted. Default 16 (CWMP
    /// elements carry at most three: `xsi:type`, `SOAP-ENC:arrayType`, `mustUnderstand`).
    pub max_element_attributes: usize,
    /// Most attributes in one envelope, namespace declarations not counted. Default 200,000.
    pub max_attributes: usize,
    /// Most namespace prefixes in scope at any element, the default namespace counted as one
    /// (a prefix declared again inside its scope is still one). Default 32.
    pub max_namespaces_in_scope: usize,
    /// Most namespace bindings recorded: at each element that declares a namespace, the prefixes
    /// in scope there, summed over the envelope. Default 262,144 (an envelope that declares its
    /// five prefixes again on every element stays far below it).
    pub max_namespace_bindings: usize,
    /// Most distinct (prefix, URI) declarations in one envelope. Default 1,024.
    pub max_distinct_namespaces: usize,
    /// Longest namespace prefix and namespace URI in a declaration, in bytes. Default 256.
    pub max_namespace_len: usize,
    /// Most CDATA sections in one run of character data (not separated by an element, a
    /// comment or a processing instruction). Default 16.
    pub max_cdata_run: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_nodes: 200_000,
            max_depth: 32,
            max_element_attributes: 16,
            max_attributes: 200_000,
            max_namespaces_in_scope: 32,
            max_namespace_bindings: 1 << 18,
            max_distinct_namespaces: 1024,
            max_namespace_len: 256,
            max_cdata_run: 16,
        }
    }
}

/// Parses what an ACS sent in an HTTP response body (a request, a response or a fault).
///
/// An empty HTTP body (the ACS ending the session, §3.7.2.4) is the caller's to recognise before
/// calling this: here it is [`ParseError::Malformed`]. An envelope with an empty Body is
/// [`AcsMessage::Empty`].
///
/// Errors: [`ParseError::Malformed`] (the session is broken), [`ParseError::MustUnderstand`] for an
/// unknown header with `mustUnderstand="1"` (checked first, SOAP 1.1 §4.2.3),
/// [`ParseError::UnknownMethod`] (answer 9000) and [`ParseError::BadArguments`] (answer 9003).
pub fn parse_acs(body: &[u8], limits: &Limits) -> Result<Envelope<AcsMessage>, ParseError> {
    parse::parse_acs(body, limits)
}

/// Parses XML text within `limits` (the bounded parse of the envelopes, for other XML the agent
/// reads: XMPP stanzas): the size, UTF-8, no DTD, and the linear pre-scan that refuses what the
/// parser would take more than linear time or too deep a recursion on.
pub fn bounded_xml<'i>(
    text: &'i [u8],
    limits: &Limits,
) -> Result<roxmltree::Document<'i>, ParseError> {
    scan::document(text, limits)
}

/// `s` with XML's five special characters (and CR) escaped, for text and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    xml::escape_into(&mut out, s);
    out
}

/// Emits a CPE request (Inform, TransferComplete, …) with the given header.
///
/// Of the header it writes `cwmp:ID`, `SessionTimeout` and `SupportedCWMPVersions` (the last two
/// with `mustUnderstand="0"`, in the session's namespace `ns`, as the headers of `cwmp-1-3.xsd`
/// and `cwmp-1-4.xsd` say) when set; `hold_requests` and `use_version` travel only from the ACS
/// and are not written.
pub fn emit_request(ns: CwmpNs, header: &Header, req: &CpeRequest) -> Vec<u8> {
    emit::emit_request(ns, header, req)
}

/// Emits the CPE's response (or fault) to an ACS request; `id` is the request's `cwmp:ID`.
/// A [`CpeResponse::Fault`] becomes a SOAP Fault (§A.5.1) with the SetParameterValuesFault list.
pub fn emit_response(ns: CwmpNs, id: Option<&str>, resp: &CpeResponse) -> Vec<u8> {
    emit::emit_response(ns, id, resp)
}

/// [`emit_response`] as the agent posts it: a GetParameterValuesResponse stays its list and is
/// written as it is sent ([`Body::Values`]), with the same bytes; every other response is
/// emitted whole ([`Body::Bytes`]).
pub fn emit_response_body(ns: CwmpNs, id: Option<&str>, resp: CpeResponse) -> Body {
    emit::emit_response_body(ns, id, resp)
}

#[cfg(test)]
mod tests;
