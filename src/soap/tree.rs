//! Reading a SOAP envelope (TR-069 Annex A.2–A.4) with roxmltree, shared by both sides of the
//! codec.
//!
//! [`document`] applies the limits before and while parsing (size, UTF-8, no DTD, node count,
//! depth); [`envelope`] finds the header and the RPC element and decides the CWMP namespace;
//! [`Args`] reads RPC arguments by local name, whatever their namespace or prefix (with a default
//! namespace they inherit it), skipping whitespace and comments. Nothing here panics on input and
//! nothing allocates in proportion to a count the sender claims (`SOAP-ENC:arrayType` sizes are
//! never read): every list is as long as the elements actually present, which the node limit caps.

use std::borrow::Cow;
use std::collections::HashSet;

use roxmltree::{Document, Node, ParsingOptions};

use super::msg::{CwmpNs, Header, ParseError, XsiType};
use super::xml::{SOAP_ENV, XSI};
use super::Limits;
use crate::cwmp::value::BaseType;

/// Parses `body` into a tree within `limits`. Every failure is [`ParseError::Malformed`].
pub(crate) fn document<'i>(body: &'i [u8], limits: &Limits) -> Result<Document<'i>, ParseError> {
    if body.len() > limits.max_bytes {
        return Err(malformed(format!(
            "envelope of {} bytes exceeds the limit of {} bytes",
            body.len(),
            limits.max_bytes
        )));
    }
    let text =
        std::str::from_utf8(body).map_err(|e| malformed(format!("envelope is not UTF-8: {e}")))?;
    // Whitespace before the XML declaration is not XML, but it is harmless: drop it (and a BOM).
    let text = text.trim_start_matches('\u{FEFF}').trim();
    if text.is_empty() {
        return Err(malformed("empty body".into()));
    }
    // Also refuses any DOCTYPE, which roxmltree accepts when it has no internal subset.
    prescan(text, limits)?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(limits.max_nodes).unwrap_or(u32::MAX),
    };
    let doc = Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => {
            malformed("DTDs are not allowed in SOAP (SOAP 1.1 §3)".into())
        }
        roxmltree::Error::NodesLimitReached => malformed(format!(
            "envelope has more than {} XML nodes",
            limits.max_nodes
        )),
        e => malformed(format!("not well-formed XML: {e}")),
    })?;
    Ok(doc)
}

/// The one scan of the raw text before roxmltree sees it (a few branches per byte of markup,
/// text skipped with one search for `<`). It refuses:
///
/// - nesting deeper than [`Limits::max_depth`]: roxmltree 0.20 parses nested elements by
///   recursion, so a deeply nested envelope would exhaust the stack (an abort, not a panic)
///   before any check on the tree could run;
/// - any DOCTYPE (roxmltree accepts one without an internal subset);
/// - the shapes roxmltree parses in more than linear time (the other bounds of [`Limits`]; the
///   costs they bound are in ARCHITECTURE.md, "XML parsing in linear time").
///
/// Comments, CDATA sections, processing instructions and quoted attribute values are skipped.
/// Unterminated markup ends the scan and is left to the parser to report. On a well-formed
/// prefix of the text the scan sees what roxmltree sees, so what it counts bounds what
/// roxmltree does before it stops at its first error.
fn prescan(text: &str, limits: &Limits) -> Result<(), ParseError> {
    let b = text.as_bytes();
    let find = |from: usize, pat: &[u8]| -> Option<usize> {
        b.get(from..)?
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p + pat.len())
    };
    let mut scan = Scan::new(limits);
    let mut i = 0;
    while let Some(off) = b
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'<'))
    {
        let lt = i + off;
        let rest = b.get(lt..).unwrap_or_default();
        let next = if rest.starts_with(b"<![CDATA[") {
            scan.cdata_run += 1;
            if scan.cdata_run > limits.max_cdata_run {
                return Err(malformed(format!(
                    "more than {} CDATA sections in one text",
                    limits.max_cdata_run
                )));
            }
            find(lt + 9, b"]]>")
        } else {
            // Anything else ends a run of character data (roxmltree starts a new text node).
            scan.cdata_run = 0;
            if rest.starts_with(b"<!--") {
                find(lt + 4, b"-->")
            } else if rest.starts_with(b"<?") {
                find(lt + 2, b"?>")
            } else if rest.starts_with(b"<!") {
                return Err(malformed(
                    "DTDs are not allowed in SOAP (SOAP 1.1 §3)".into(),
                ));
            } else if rest.starts_with(b"</") {
                scan.end_tag();
                find(lt + 2, b">")
            } else {
                scan.start_tag(b, lt)?
            }
        };
        match next {
            Some(n) => i = n,
            None => break,
        }
    }
    Ok(())
}

/// The state of [`prescan`].
struct Scan<'l, 't> {
    limits: &'l Limits,
    depth: usize,
    /// The distinct namespace prefixes in scope (`""` for the default namespace), outermost
    /// first: exactly the namespaces roxmltree gives the current element.
    scope: Vec<&'t [u8]>,
    /// For each open element that declared a namespace: its depth and the length of `scope`
    /// before it.
    frames: Vec<(usize, usize)>,
    /// The prefixes declared by the start tag being read.
    own: Vec<&'t [u8]>,
    /// Every (prefix, URI) declared so far.
    distinct: HashSet<(&'t [u8], &'t [u8])>,
    /// `scope.len()` summed over the elements that declared a namespace.
    bindings: usize,
    /// Attributes so far, declarations not counted.
    attributes: usize,
    /// CDATA sections since the last other markup.
    cdata_run: usize,
}

impl<'l, 't> Scan<'l, 't> {
    fn new(limits: &'l Limits) -> Self {
        Scan {
            limits,
            depth: 0,
            scope: Vec::new(),
            frames: Vec::new(),
            own: Vec::new(),
            distinct: HashSet::new(),
            bindings: 0,
            attributes: 0,
            cdata_run: 0,
        }
    }

    /// `</…>`: leaves the current element and the namespaces it declared.
    fn end_tag(&mut self) {
        if let Some(&(depth, len)) = self.frames.last() {
            if depth == self.depth {
                self.scope.truncate(len);
                self.frames.pop();
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// A start tag at `lt`: reads its attributes up to the `>` outside quoted values and
    /// returns the index after it (`None` when the tag is not terminated).
    fn start_tag(&mut self, b: &'t [u8], lt: usize) -> Result<Option<usize>, ParseError> {
        self.own.clear();
        let mut element_attributes = 0usize;
        // The name token being read (its start), the last one read, and the name of the
        // attribute whose `=` was seen and whose value comes next.
        let mut token: Option<usize> = None;
        let mut name: &'t [u8] = &[];
        let mut attribute: Option<&'t [u8]> = None;
        let mut j = lt + 1;
        let end = loop {
            let Some(&c) = b.get(j) else {
                return Ok(None);
            };
            match c {
                b'"' | b'\'' => {
                    let Some(len) = b.get(j + 1..).and_then(|r| r.iter().position(|&x| x == c))
                    else {
                        return Ok(None);
                    };
                    if let Some(n) = attribute.take() {
                        let value = b.get(j + 1..j + 1 + len).unwrap_or_default();
                        self.attribute(n, value, &mut element_attributes)?;
                    }
                    token = None;
                    j += len + 2;
                    continue;
                }
                b'>' => break j + 1,
                b'=' => {
                    if let Some(s) = token.take() {
                        name = b.get(s..j).unwrap_or_default();
                    }
                    attribute = Some(name);
                }
                b' ' | b'\t' | b'\n' | b'\r' | b'/' => {
                    if let Some(s) = token.take() {
                        name = b.get(s..j).unwrap_or_default();
                    }
                }
                _ => {
                    if token.is_none() {
                        token = Some(j);
                    }
                }
            }
            j += 1;
        };
        if self.depth + 1 > self.limits.max_depth {
            return Err(malformed(format!(
                "envelope is nested deeper than {} elements",
                self.limits.max_depth
            )));
        }
        // `<x/>` opens nothing.
        let opens = b.get(end.saturating_sub(2)) != Some(&b'/');
        if opens {
            self.depth += 1;
        }
        if !self.own.is_empty() {
            // roxmltree gives this element its own declarations and every prefix in scope that
            // they do not redeclare.
            let before = self.scope.len();
            for k in 0..self.own.len() {
                let p = self.own.get(k).copied().unwrap_or_default();
                if !self.scope.get(..before).unwrap_or_default().contains(&p) {
                    self.scope.push(p);
                }
            }
            self.check_scope()?;
            self.bindings += self.scope.len();
            if self.bindings > self.limits.max_namespace_bindings {
                return Err(malformed(format!(
                    "envelope records more than {} namespace bindings (the prefixes in scope at \
                     each element that declares one)",
                    self.limits.max_namespace_bindings
                )));
            }
            if opens {
                self.frames.push((self.depth, before));
            } else {
                self.scope.truncate(before);
            }
        }
        Ok(Some(end))
    }

    /// One attribute of the start tag being read.
    fn attribute(
        &mut self,
        name: &'t [u8],
        value: &'t [u8],
        element_attributes: &mut usize,
    ) -> Result<(), ParseError> {
        let l = self.limits;
        let prefix = if name == b"xmlns" {
            &[][..]
        } else if let Some(p) = name.strip_prefix(b"xmlns:") {
            p
        } else {
            *element_attributes += 1;
            if *element_attributes > l.max_element_attributes {
                return Err(malformed(format!(
                    "an element has more than {} attributes",
                    l.max_element_attributes
                )));
            }
            self.attributes += 1;
            if self.attributes > l.max_attributes {
                return Err(malformed(format!(
                    "envelope has more than {} attributes",
                    l.max_attributes
                )));
            }
            return Ok(());
        };
        if prefix.len() > l.max_namespace_len || value.len() > l.max_namespace_len {
            return Err(malformed(format!(
                "a namespace prefix or URI is longer than {} bytes",
                l.max_namespace_len
            )));
        }
        // Every prefix an element declares is in scope at it.
        if self.own.len() >= l.max_namespaces_in_scope {
            return Err(self.too_many_in_scope());
        }
        if self.own.contains(&prefix) {
            return Err(malformed(format!(
                "an element declares namespace prefix {:?} twice",
                String::from_utf8_lossy(prefix)
            )));
        }
        self.own.push(prefix);
        if !self.distinct.contains(&(prefix, value)) {
            if self.distinct.len() >= l.max_distinct_namespaces {
                return Err(malformed(format!(
                    "envelope declares more than {} distinct namespaces",
                    l.max_distinct_namespaces
                )));
            }
            self.distinct.insert((prefix, value));
        }
        Ok(())
    }

    fn check_scope(&self) -> Result<(), ParseError> {
        if self.scope.len() > self.limits.max_namespaces_in_scope {
            return Err(self.too_many_in_scope());
        }
        Ok(())
    }

    fn too_many_in_scope(&self) -> ParseError {
        malformed(format!(
            "more than {} namespace prefixes in scope",
            self.limits.max_namespaces_in_scope
        ))
    }
}

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

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn rejects_what_is_not_a_small_envelope() {
        let big = vec![b' '; 100];
        let small = Limits {
            max_bytes: 50,
            ..limits()
        };
        assert!(
            matches!(document(&big, &small), Err(ParseError::Malformed(m)) if m.contains("100 bytes"))
        );
        assert!(
            matches!(document(b"\xff<a/>", &limits()), Err(ParseError::Malformed(m)) if m.contains("UTF-8"))
        );
        assert!(
            matches!(document(b"  \n", &limits()), Err(ParseError::Malformed(m)) if m.contains("empty"))
        );
        let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        assert!(
            matches!(document(dtd, &limits()), Err(ParseError::Malformed(m)) if m.contains("DTD"))
        );
        let empty_dtd = b"<!DOCTYPE x><x/>";
        assert!(
            matches!(document(empty_dtd, &limits()), Err(ParseError::Malformed(m)) if m.contains("DTD"))
        );
        assert!(document(b"\xef\xbb\xbf\n <?xml version=\"1.0\"?><x/>", &limits()).is_ok());
    }

    #[test]
    fn node_and_depth_limits() {
        let few = Limits {
            max_nodes: 10,
            ..limits()
        };
        let many = format!("<x>{}</x>", "<y/>".repeat(20));
        assert!(
            matches!(document(many.as_bytes(), &few), Err(ParseError::Malformed(m)) if m.contains("nodes"))
        );
        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(document(deep(32).as_bytes(), &limits()).is_ok());
        assert!(
            matches!(document(deep(33).as_bytes(), &limits()), Err(ParseError::Malformed(m)) if m.contains("deeper"))
        );
        // Very deep input is refused without exhausting the stack.
        let huge = Limits {
            max_nodes: 1_000_000,
            max_bytes: 8 << 20,
            max_depth: 32,
            ..limits()
        };
        assert!(document(deep(200_000).as_bytes(), &huge).is_err());
        // Markup-like text in comments, CDATA, PIs and attribute values does not count, and
        // `<x/>` opens nothing; a `<x/>` one level too deep is still too deep.
        let decoy = format!(
            "{}<b a='>' c=\"/>\"/><!-- <a><a><a> --><![CDATA[<a><a>]]><?pi <a><a>?>{}",
            "<a>".repeat(31),
            "</a>".repeat(31)
        );
        assert!(document(decoy.as_bytes(), &limits()).is_ok());
        let leaf = format!("{}<b/>{}", "<a>".repeat(32), "</a>".repeat(32));
        assert!(document(leaf.as_bytes(), &limits()).is_err());
        // Siblings after a deep branch are still checked.
        let late = format!("<r><a/>{}</r>", deep(40));
        assert!(document(late.as_bytes(), &limits()).is_err());
    }

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
