//! The XML shapes roxmltree 0.20 parses in more than linear time, as SOAP
//! envelopes from an ACS. `tests/xml_limits.rs` asserts that the codec refuses each, the hostile-ACS
//! suite sends one to the real daemon, and the bench report's "XML worst cases" times them.
//!
//! Each shape has a width (how many declarations, attributes or CDATA sections one element or
//! text holds, or how long the namespace URI is): [`Shape::hostile`] makes it grow with the
//! size (what makes roxmltree's work quadratic), [`Shape::at_limits`] holds it at what
//! `Limits::default()` allows and repeats it up to the size or the per-envelope limits (the
//! worst an ACS may send that the pre-scan lets through).

use cwmpd::soap::Limits;

/// Namespace prefixes the envelope itself declares ([`envelope`]).
const ENVELOPE_PREFIXES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One element declaring `width` distinct prefixes (roxmltree checks each new declaration
    /// against the element's earlier ones).
    XmlnsOneElement,
    /// An element declaring `width` prefixes, then siblings each declaring one of them again
    /// (roxmltree copies the `width` bindings in scope to every sibling, checking each copy
    /// against the ones before it).
    XmlnsSiblingsSamePrefix,
    /// The same with a new prefix on every sibling.
    XmlnsSiblingsNewPrefix,
    /// The same with the default namespace declared on every sibling.
    XmlnsSiblingsDefault,
    /// 25 nested elements declaring `width` prefixes between them, then declaring siblings at
    /// the innermost level.
    XmlnsNested,
    /// Siblings declaring one prefix each with a URI never seen before, in descending order
    /// (roxmltree keeps the distinct declarations in a sorted array: each one moves it all).
    XmlnsDistinctUris,
    /// One element with `width` attributes (roxmltree checks each against the ones before it).
    Attributes,
    /// A namespace URI `width` bytes long, then elements with prefixed attributes in it (each
    /// pair of attributes of an element compares the URIs byte by byte).
    LongUri,
    /// Character data of `width` CDATA sections with text between them (roxmltree makes one
    /// text node of it, copying what it has so far at each one).
    CdataRun,
}

impl Shape {
    pub const ALL: [Shape; 9] = [
        Shape::XmlnsOneElement,
        Shape::XmlnsSiblingsSamePrefix,
        Shape::XmlnsSiblingsNewPrefix,
        Shape::XmlnsSiblingsDefault,
        Shape::XmlnsNested,
        Shape::XmlnsDistinctUris,
        Shape::Attributes,
        Shape::LongUri,
        Shape::CdataRun,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::XmlnsOneElement => "xmlns: declarations on one element",
            Shape::XmlnsSiblingsSamePrefix => "xmlns: siblings redeclare a prefix in scope",
            Shape::XmlnsSiblingsNewPrefix => "xmlns: siblings declare new prefixes",
            Shape::XmlnsSiblingsDefault => "xmlns: siblings declare the default namespace",
            Shape::XmlnsNested => "xmlns: nested declarations, declaring leaves",
            Shape::XmlnsDistinctUris => "xmlns: a new URI on every sibling",
            Shape::Attributes => "attributes on one element",
            Shape::LongUri => "long namespace URI, prefixed attributes",
            Shape::CdataRun => "CDATA sections in one text",
        }
    }

    /// About `bytes` bytes of this shape with its width growing with the size.
    pub fn hostile(self, bytes: usize) -> String {
        let width = match self {
            // About half the bytes in the wide element, half in what it makes expensive.
            Shape::XmlnsSiblingsSamePrefix
            | Shape::XmlnsSiblingsNewPrefix
            | Shape::XmlnsSiblingsDefault
            | Shape::XmlnsNested => bytes / 2 / 24,
            Shape::LongUri => bytes / 2,
            // One element, one text: all of it.
            _ => usize::MAX,
        };
        self.build(bytes, width, false)
    }

    /// This shape as wide as `Limits::default()` allows, repeated up to `bytes` or as often as
    /// the per-envelope limits allow: the most work an ACS can make the parser do per byte
    /// without being refused (in the shapes that stay within a per-envelope limit the envelope
    /// is smaller than `bytes`).
    pub fn at_limits(self, bytes: usize) -> String {
        let l = Limits::default();
        let scope = l.max_namespaces_in_scope - ENVELOPE_PREFIXES;
        let width = match self {
            // The wide element's prefixes, the Envelope's, and (new prefix, default) the
            // sibling's own.
            Shape::XmlnsOneElement | Shape::XmlnsSiblingsSamePrefix => scope,
            Shape::XmlnsSiblingsNewPrefix | Shape::XmlnsSiblingsDefault | Shape::XmlnsNested => {
                scope - 1
            }
            Shape::XmlnsDistinctUris => 0,
            Shape::Attributes => l.max_element_attributes,
            // `urn:` and the URI's characters.
            Shape::LongUri => l.max_namespace_len,
            Shape::CdataRun => l.max_cdata_run,
        };
        self.build(bytes, width, true)
    }

    /// The body of the shape, `width` wide, in an envelope of about `bytes` bytes; `repeat`:
    /// the wide element (or text) again and again within the per-envelope limits, else once.
    fn build(self, bytes: usize, width: usize, repeat: bool) -> String {
        let l = Limits::default();
        let budget = bytes.saturating_sub(envelope("").len());
        let mut body = String::with_capacity(budget + 256);
        // Namespace bindings recorded so far (the Envelope's five), for the per-envelope limit.
        let mut bound = ENVELOPE_PREFIXES;
        // How many units of `per` bindings fit in what is left (unbounded for the hostile form).
        let fit = |bound: usize, per: usize| {
            if repeat {
                (l.max_namespace_bindings - bound) / per
            } else {
                usize::MAX
            }
        };
        // Attributes: the Header's `mustUnderstand`.
        let attributes_left = l.max_attributes - 1;
        let decls = |out: &mut String, n: usize, from: usize| {
            for i in from..from + n {
                out.push_str(&format!(" xmlns:p{i}=\"urn:p\""));
            }
        };
        // Up to `max` siblings within the budget, then `close`.
        let siblings =
            |body: &mut String, max: usize, unit: &dyn Fn(usize) -> String, close: &str| {
                let mut i = 0;
                while i < max {
                    let u = unit(i);
                    if body.len() + u.len() + close.len() > budget {
                        break;
                    }
                    body.push_str(&u);
                    i += 1;
                }
                body.push_str(close);
            };
        match self {
            Shape::XmlnsOneElement | Shape::Attributes => {
                let one = |body: &mut String, n: usize, room: usize| {
                    body.push_str("<W");
                    let mut i = 0;
                    while i < n && body.len() + 24 < room {
                        if self == Shape::Attributes {
                            body.push_str(&format!(" a{i}=\"\""));
                        } else {
                            body.push_str(&format!(" xmlns:p{i}=\"urn:p\""));
                        }
                        i += 1;
                    }
                    body.push_str("/>");
                };
                if repeat {
                    let mut el = String::new();
                    one(&mut el, width, usize::MAX);
                    let max = if self == Shape::Attributes {
                        attributes_left / width
                    } else {
                        fit(bound, ENVELOPE_PREFIXES + width)
                    };
                    siblings(&mut body, max, &|_| el.clone(), "");
                } else {
                    one(&mut body, width, budget);
                }
            }
            Shape::XmlnsSiblingsSamePrefix
            | Shape::XmlnsSiblingsNewPrefix
            | Shape::XmlnsSiblingsDefault => {
                body.push_str("<W");
                decls(&mut body, width, 0);
                body.push('>');
                bound += ENVELOPE_PREFIXES + width;
                // The distinct declarations left for the siblings' new prefixes.
                let fresh = (l.max_distinct_namespaces - ENVELOPE_PREFIXES)
                    .saturating_sub(width)
                    .max(1);
                let (unit, per): (Box<dyn Fn(usize) -> String>, usize) = match self {
                    Shape::XmlnsSiblingsSamePrefix => (
                        Box::new(|_| "<a xmlns:p0=\"urn:q\"/>".into()),
                        ENVELOPE_PREFIXES + width,
                    ),
                    Shape::XmlnsSiblingsNewPrefix => (
                        Box::new(move |i| {
                            let i = if repeat { i % fresh } else { i };
                            format!("<a xmlns:q{i}=\"urn:q\"/>")
                        }),
                        ENVELOPE_PREFIXES + width + 1,
                    ),
                    _ => (
                        Box::new(|_| "<a xmlns=\"urn:q\"/>".into()),
                        ENVELOPE_PREFIXES + width + 1,
                    ),
                };
                siblings(&mut body, fit(bound, per), &*unit, "</W>");
            }
            Shape::XmlnsNested => {
                const LEVELS: usize = 25;
                let per = width.div_ceil(LEVELS).max(1);
                let mut declared = 0;
                for _ in 0..LEVELS {
                    body.push_str("<W");
                    let n = per.min(width - declared);
                    decls(&mut body, n, declared);
                    declared += n;
                    if n > 0 {
                        bound += ENVELOPE_PREFIXES + declared;
                    }
                    body.push('>');
                }
                siblings(
                    &mut body,
                    fit(bound, ENVELOPE_PREFIXES + declared + 1),
                    &|_| "<a xmlns:q=\"urn:q\"/>".into(),
                    &"</W>".repeat(LEVELS),
                );
            }
            Shape::XmlnsDistinctUris => {
                body.push_str("<W>");
                let fresh = l.max_distinct_namespaces - ENVELOPE_PREFIXES;
                // Descending URIs: each new one sorts first.
                siblings(
                    &mut body,
                    fit(bound, ENVELOPE_PREFIXES + 1),
                    &|i| {
                        let i = if repeat { i % fresh } else { i };
                        format!("<a xmlns:p=\"urn:{:08}\"/>", 99_999_999 - i)
                    },
                    "</W>",
                );
            }
            Shape::LongUri => {
                let uri_len = width.min(budget / 2);
                body.push_str("<W xmlns:p=\"urn:");
                body.push_str(&"u".repeat(uri_len.saturating_sub(4)));
                body.push_str("\">");
                let (attrs, max) = if repeat {
                    (
                        l.max_element_attributes,
                        attributes_left / l.max_element_attributes,
                    )
                } else {
                    (2, usize::MAX)
                };
                let el = format!(
                    "<a{}/>",
                    (0..attrs)
                        .map(|i| format!(" p:a{i}=\"\""))
                        .collect::<String>()
                );
                siblings(&mut body, max, &|_| el.clone(), "</W>");
            }
            Shape::CdataRun => {
                let text = |n: usize, room: usize| {
                    let mut s = String::from("<V>");
                    let mut i = 0;
                    while i < n && s.len() + 24 < room {
                        s.push_str("x<![CDATA[y]]>");
                        i += 1;
                    }
                    s.push_str("</V>");
                    s
                };
                if repeat {
                    let v = text(width, usize::MAX);
                    siblings(&mut body, usize::MAX, &|_| v.clone(), "");
                } else {
                    body.push_str(&text(width, budget));
                }
            }
        }
        envelope(&body)
    }
}

/// `body` as the argument of a GetParameterNames from the ACS.
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\">\
         <soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">xml-1</cwmp:ID></soap-env:Header>\
         <soap-env:Body><cwmp:GetParameterNames>{body}</cwmp:GetParameterNames></soap-env:Body>\
         </soap-env:Envelope>"
    )
}
