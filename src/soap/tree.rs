//! Reading a SOAP envelope (TR-069 Annex A.2–A.4) with roxmltree, shared by both sides of the
//! codec.
//!
//! The tree comes from [`super::scan::document`], within the limits; [`envelope`] finds the header and the RPC element and decides the CWMP namespace;
//! [`Args`] reads RPC arguments by local name, whatever their namespace or prefix (with a default
//! namespace they inherit it), skipping whitespace and comments. Nothing here panics on input and
//! nothing allocates in proportion to a count the sender claims (`SOAP-ENC:arrayType` sizes are
//! never read): every list is as long as the elements actually present, which the node limit caps.

use std::borrow::Cow;

use roxmltree::{Document, Node};

use super::msg::{Header, ParseError};
use super::xml::{SOAP_ENV, XSI};
use crate::cwmp::value::BaseType;
use crate::cwmp::value::XsiType;
use crate::cwmp::version::CwmpNs;

pub(crate) fn malformed(msg: String) -> ParseError {
    ParseError::Malformed(msg)
}

/// The parts of an envelope both sides need.
pub(crate) struct Env<'a, 'i> {
    pub ns: CwmpNs,
    pub header: Header,
    /// The first element of the Body; `None` for an empty `<Body/>`.
    pub rpc: Option<Node<'a, 'i>>,
}

impl Env<'_, '_> {
    /// The RPC element's local name ("" for an empty body).
    pub fn method(&self) -> &str {
        self.rpc.map_or("", |n| n.tag_name().name())
    }

    /// Whether the RPC element is in a namespace that is neither a cwmp one, nor SOAP-ENV, nor
    /// none: then it is not a CWMP RPC, whatever its local name.
    pub fn foreign(&self) -> bool {
        self.rpc
            .and_then(|n| n.tag_name().namespace())
            .is_some_and(|u| CwmpNs::from_urn(u).is_none() && u != SOAP_ENV)
    }

    /// The typed message of the RPC element `node`, for either side: a SOAP Fault through
    /// `fault`, a request or response by element name through `request`/`response` (each
    /// `None` when the name is not one of its kind). Bad arguments and unknown methods become
    /// the [`ParseError`] that names the method and the `cwmp:ID`.
    pub fn message<M>(
        &self,
        node: Node<'_, '_>,
        fault: impl FnOnce(SoapFault) -> M,
        request: impl FnOnce(&str, Args<'_, '_>) -> Option<Result<M, String>>,
        response: impl FnOnce(&str, Args<'_, '_>) -> Option<Result<M, String>>,
    ) -> Result<M, ParseError> {
        let method = self.method();
        let bad = |detail: String| ParseError::BadArguments {
            id: self.header.id.clone(),
            ns: self.ns,
            method: method.to_string(),
            detail,
        };
        if method == "Fault" {
            return soap_fault(node).map(fault).map_err(bad);
        }
        if !self.foreign() {
            if let Some(m) = request(method, Args(node)) {
                return m.map_err(bad);
            }
            if let Some(m) = response(method, Args(node)) {
                return m.map_err(bad);
            }
        }
        Err(ParseError::UnknownMethod {
            id: self.header.id.clone(),
            ns: self.ns,
            method: method.to_string(),
        })
    }
}

/// Finds Header and Body in the Envelope (§A.2.1), reads the header (§A.4.1) and decides the cwmp
/// namespace: that of the RPC element, else that of `cwmp:ID`, else the first cwmp namespace
/// declared on the Envelope, else `cwmp-1-0`. SOAP elements are matched by local name, so any
/// prefix and a default namespace both work.
pub(crate) fn envelope<'a, 'i>(doc: &'a Document<'i>) -> Result<Env<'a, 'i>, ParseError> {
    let root = doc.root_element();
    if root.tag_name().name() != "Envelope" {
        return Err(malformed(format!(
            "root element is <{}>, not a SOAP Envelope",
            root.tag_name().name()
        )));
    }
    // SOAP 1.1 §4.1.2: an Envelope in another namespace (SOAP 1.2's) is a version mismatch,
    // not a message. One without a namespace is read (broken ACSes send them).
    if let Some(ns) = root.tag_name().namespace().filter(|n| *n != SOAP_ENV) {
        return Err(malformed(format!(
            "the Envelope is in namespace {:?}, not SOAP 1.1's",
            ns.chars().take(80).collect::<String>()
        )));
    }
    let mut header_node = None;
    let mut body_node = None;
    for child in root.children().filter(Node::is_element) {
        match child.tag_name().name() {
            "Header" if header_node.is_none() => header_node = Some(child),
            "Body" if body_node.is_none() => body_node = Some(child),
            _ => {}
        }
    }
    let body = body_node.ok_or_else(|| malformed("SOAP Envelope without a Body".into()))?;
    let rpc = body.first_element_child();

    let mut header = Header::default();
    let mut id_ns = None;
    if let Some(h) = header_node {
        for el in h.children().filter(Node::is_element) {
            read_header_element(el, &mut header, &mut id_ns);
        }
    }

    let ns = rpc
        .and_then(|n| n.tag_name().namespace())
        .and_then(CwmpNs::from_urn)
        .or(id_ns)
        .or_else(|| root.namespaces().find_map(|n| CwmpNs::from_urn(n.uri())))
        .unwrap_or(CwmpNs::V1_0);
    Ok(Env { ns, header, rpc })
}

/// One SOAP header element (§A.4.1). Unparseable values of known elements are ignored: a header
/// is advice about the session, not an argument, and dropping it is harmless.
fn read_header_element(el: Node<'_, '_>, header: &mut Header, id_ns: &mut Option<CwmpNs>) {
    let value = text(el);
    match el.tag_name().name() {
        // The ID is echoed as sent, without the whitespace of a pretty-printing ACS.
        "ID" => {
            header.id = Some(value.trim().to_string());
            *id_ns = el.tag_name().namespace().and_then(CwmpNs::from_urn);
        }
        "HoldRequests" => header.hold_requests = parse_bool(&value),
        "SessionTimeout" => header.session_timeout = value.trim().parse().ok(),
        "SupportedCWMPVersions" => header.supported_versions = Some(value.trim().to_string()),
        "UseCWMPVersion" => header.use_version = Some(value.trim().to_string()),
        // CWMP 1.0's NoMoreRequests is deprecated and means nothing to a CPE (§A.4.1).
        "NoMoreRequests" => {}
        other => {
            if must_understand(el) {
                header.unknown_must_understand.push(other.to_string());
            }
        }
    }
}

/// `mustUnderstand="1"` (or `true`), the attribute name in any case and any namespace: some ACSes
/// write `mustunderstand`.
fn must_understand(el: Node<'_, '_>) -> bool {
    el.attributes().any(|a| {
        a.name().eq_ignore_ascii_case("mustUnderstand") && parse_bool(a.value()) == Some(true)
    })
}

/// The character data of an element: its text children joined, comments skipped. Borrowed when
/// there is a single text child, the usual case.
pub(crate) fn text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    let mut texts = node
        .children()
        .filter_map(|c| if c.is_text() { c.text() } else { None });
    let Some(first) = texts.next() else {
        return Cow::Borrowed("");
    };
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut s = String::with_capacity(first.len() + second.len());
            s.push_str(first);
            s.push_str(second);
            texts.for_each(|t| s.push_str(t));
            Cow::Owned(s)
        }
    }
}

/// `xsd:boolean`: `1`, `0`, `true`, `false` (any case, surrounding whitespace ignored).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s == "1" || s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s == "0" || s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The `xsi:type` of an element, `None` when absent or empty. The attribute is looked up in the
/// XML Schema instance namespace first, then by local name alone.
pub(crate) fn xsi_type(node: Node<'_, '_>) -> Option<XsiType> {
    let attr = node
        .attributes()
        .find(|a| a.namespace() == Some(XSI) && a.name() == "type")
        .or_else(|| node.attributes().find(|a| a.name() == "type"))?;
    let v = attr.value().trim();
    if v.is_empty() {
        return None;
    }
    Some(match BaseType::from_xsi(v) {
        Some(t) => XsiType::Known(t),
        None => XsiType::Unknown(v.to_string()),
    })
}

/// A SOAP Fault (§A.5) as read from either side.
pub(crate) struct SoapFault {
    pub code: u32,
    pub string: String,
    /// `(ParameterName, FaultCode, FaultString)` of each SetParameterValuesFault.
    pub params: Vec<(String, u32, String)>,
}

/// Reads `Fault/detail/Fault`: FaultCode (required), FaultString, SetParameterValuesFault list.
pub(crate) fn soap_fault(node: Node<'_, '_>) -> Result<SoapFault, String> {
    let cwmp_fault = Args(node)
        .child("detail")
        .and_then(|d| Args(d).child("Fault"))
        .ok_or("SOAP Fault without detail/Fault")?;
    let f = Args(cwmp_fault);
    let mut params = Vec::new();
    for p in f.all("SetParameterValuesFault") {
        let p = Args(p);
        params.push((
            p.token("ParameterName")?,
            p.u32("FaultCode")?,
            p.text_or("FaultString"),
        ));
    }
    Ok(SoapFault {
        code: f.u32("FaultCode")?,
        string: f.text_or("FaultString"),
        params,
    })
}

/// The arguments of an RPC or the fields of a struct: child elements read by local name. Every
/// error is a sentence for `ParseError::BadArguments`.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a, 'i>(pub Node<'a, 'i>);

impl<'a, 'i> Args<'a, 'i> {
    /// The first child element with this local name.
    pub fn child(&self, name: &str) -> Option<Node<'a, 'i>> {
        self.0
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }

    /// Every child element with this local name.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Node<'a, 'i>> + 's {
        self.0
            .children()
            .filter(move |c| c.is_element() && c.tag_name().name() == name)
    }

    fn required(&self, name: &str) -> Result<Node<'a, 'i>, String> {
        self.child(name)
            .ok_or_else(|| format!("missing argument {name}"))
    }

    /// A required string, exactly as sent (values may start or end with spaces).
    pub fn text(&self, name: &str) -> Result<String, String> {
        Ok(text(self.required(name)?).into_owned())
    }

    /// An optional string, exactly as sent; `""` when absent.
    pub fn text_or(&self, name: &str) -> String {
        self.child(name)
            .map(|n| text(n).into_owned())
            .unwrap_or_default()
    }

    /// A required token (names, paths, URLs, file types): surrounding whitespace dropped.
    pub fn token(&self, name: &str) -> Result<String, String> {
        Ok(text(self.required(name)?).trim().to_string())
    }

    /// An optional token; `""` when absent.
    pub fn token_or(&self, name: &str) -> String {
        self.child(name)
            .map(|n| text(n).trim().to_string())
            .unwrap_or_default()
    }

    /// A required number (surrounding whitespace allowed).
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let n = self.required(name)?;
        parse_num(name, &text(n))
    }

    /// A required `xsd:unsignedInt`.
    pub fn u32(&self, name: &str) -> Result<u32, String> {
        self.num(name)
    }

    /// An optional number: `default` when absent or empty, an error when present but not a
    /// number.
    pub fn num_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.child(name) {
            None => Ok(default),
            Some(n) => {
                let t = text(n);
                if t.trim().is_empty() {
                    Ok(default)
                } else {
                    parse_num(name, &t)
                }
            }
        }
    }

    /// A required `xsd:boolean`.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        let t = text(self.required(name)?);
        parse_bool(&t).ok_or_else(|| format!("{name}: {:?} is not a boolean", t.trim()))
    }

    /// The items of a required SOAP array: its child elements, whatever their name, however many
    /// `SOAP-ENC:arrayType` announces.
    pub fn items(&self, name: &str) -> Result<impl Iterator<Item = Node<'a, 'i>>, String> {
        Ok(self.required(name)?.children().filter(Node::is_element))
    }

    /// The items of an optional array; none when absent.
    pub fn items_or(&self, name: &str) -> impl Iterator<Item = Node<'a, 'i>> {
        self.child(name)
            .into_iter()
            .flat_map(|n| n.children().filter(Node::is_element))
    }

    /// A required array of structs, each read by `f`.
    pub fn list<T>(
        &self,
        name: &str,
        f: impl Fn(Args<'a, 'i>) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.items(name)?.map(|n| f(Args(n))).collect()
    }

    /// An optional array of structs; empty when absent.
    pub fn list_or<T>(
        &self,
        name: &str,
        f: impl Fn(Args<'a, 'i>) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.items_or(name).map(|n| f(Args(n))).collect()
    }

    /// A required array of `xsd:string` tokens (ParameterNames, MethodList).
    pub fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self
            .items(name)?
            .map(|n| text(n).trim().to_string())
            .collect())
    }

    /// An optional array of `xsd:string` tokens (AccessList).
    pub fn strings_or(&self, name: &str) -> Vec<String> {
        self.items_or(name)
            .map(|n| text(n).trim().to_string())
            .collect()
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, t: &str) -> Result<T, String> {
    t.trim()
        .parse()
        .map_err(|_| format!("{name}: {:?} is not a valid number", t.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_joins_around_comments() {
        let doc = Document::parse("<v>ab<!-- c -->cd<![CDATA[<e>]]></v>").unwrap();
        assert_eq!(text(doc.root_element()), "abcd<e>");
        let doc = Document::parse("<v/>").unwrap();
        assert_eq!(text(doc.root_element()), "");
    }

    #[test]
    fn booleans() {
        for (s, b) in [
            ("1", true),
            (" true ", true),
            ("TRUE", true),
            ("0", false),
            ("false\n", false),
        ] {
            assert_eq!(parse_bool(s), Some(b), "{s:?}");
        }
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }
}
