//! The XML shapes roxmltree 0.20 parses in quadratic time are refused by
//! the codec's pre-scan, at a small size (where the unfixed codec parsed them, slowly) and at the
//! 4 MiB size cap (where it took minutes to days); the same shapes as wide and as often as the
//! limits allow are parsed; and envelopes that declare namespaces on every
//! element, as some ACSes do, still parse. Speed is the bench report's ("XML worst cases"); here
//! only the outcome is asserted.

use support::xml_shapes;

use cwmpd::soap::{parse_acs, AcsMessage, AcsRequest, Limits, ParseError};
use xml_shapes::{envelope, Shape};

const CAP: usize = 4 << 20;

fn malformed(text: &str) -> Option<String> {
    match parse_acs(text.as_bytes(), &Limits::default()) {
        Err(ParseError::Malformed(m)) => Some(m),
        _ => None,
    }
}

/// What the pre-scan must say about the hostile form of each shape.
fn hostile_reason(shape: Shape) -> &'static str {
    match shape {
        Shape::XmlnsOneElement
        | Shape::XmlnsSiblingsSamePrefix
        | Shape::XmlnsSiblingsNewPrefix
        | Shape::XmlnsSiblingsDefault
        | Shape::XmlnsNested => "more than 32 namespace prefixes in scope",
        Shape::XmlnsDistinctUris => "more than 1024 distinct namespaces",
        Shape::Attributes => "an element has more than 16 attributes",
        Shape::LongUri => "longer than 256 bytes",
        Shape::CdataRun => "more than 16 CDATA sections in one text",
    }
}

#[test]
fn every_hostile_shape_is_refused_small_and_at_the_size_cap() {
    for shape in Shape::ALL {
        for bytes in [64 << 10, CAP] {
            let text = shape.hostile(bytes);
            assert!(
                text.len() <= CAP && text.len() + 200 >= bytes,
                "{shape:?}: {} bytes for {bytes}",
                text.len()
            );
            let why = malformed(&text);
            assert!(
                why.as_deref()
                    .is_some_and(|m| m.contains(hostile_reason(shape))),
                "{shape:?} at {bytes} bytes: {why:?}, expected a refusal saying {:?}",
                hostile_reason(shape)
            );
        }
    }
}

/// The shapes as wide and as often as the limits allow are parsed (a GetParameterNames without
/// its arguments); one more sibling, attribute or CDATA section is refused.
#[test]
fn the_shapes_at_the_limits_parse() {
    for shape in Shape::ALL {
        let text = shape.at_limits(CAP);
        let r = parse_acs(text.as_bytes(), &Limits::default());
        assert!(
            matches!(&r, Err(ParseError::BadArguments { method, .. }) if method == "GetParameterNames"),
            "{shape:?} ({} bytes): {r:?}",
            text.len()
        );
    }
}

/// One below each limit parses, the limit itself is refused (with `Limits::default()`).
#[test]
fn each_limit_is_exact() {
    let l = Limits::default();
    let parses = |body: &str| {
        let text = envelope(body);
        let r = parse_acs(text.as_bytes(), &l);
        assert!(
            matches!(r, Err(ParseError::BadArguments { .. })),
            "{:.200}: {r:?}",
            body
        );
    };
    let refused = |body: &str, why: &str| {
        let m = malformed(&envelope(body));
        assert!(
            m.as_deref().is_some_and(|m| m.contains(why)),
            "{:.200}: {m:?}, expected {why:?}",
            body
        );
    };
    let attrs = |n: usize| (0..n).map(|i| format!(" a{i}='1'")).collect::<String>();
    parses(&format!("<x{}/>", attrs(l.max_element_attributes)));
    refused(
        &format!("<x{}/>", attrs(l.max_element_attributes + 1)),
        "more than 16 attributes",
    );
    // Declarations are not attributes: 16 attributes and 27 declarations on one element.
    let decls = |n: usize, p: &str| {
        (0..n)
            .map(|i| format!(" xmlns:{p}{i}=\"urn:x\""))
            .collect::<String>()
    };
    parses(&format!(
        "<x{}{}/>",
        attrs(l.max_element_attributes),
        decls(27, "p")
    ));
    // The envelope's five prefixes and 27 more are in scope; a 28th is one too many, on the
    // element, below it, or as the default namespace.
    refused(
        &format!("<x{}/>", decls(28, "p")),
        "more than 32 namespace prefixes",
    );
    refused(
        &format!("<x{}><y xmlns:q='urn:y'/></x>", decls(27, "p")),
        "more than 32 namespace prefixes",
    );
    refused(
        &format!("<x{}><y xmlns='urn:y'/></x>", decls(27, "p")),
        "more than 32 namespace prefixes",
    );
    // Declaring a prefix in scope again adds none; leaving an element takes its prefixes out
    // of scope.
    parses(&format!(
        "<x{}><y xmlns:p0='urn:y' xmlns:cwmp='urn:y'/></x>",
        decls(27, "p")
    ));
    parses(&format!(
        "<x{}/><x{}/><x{}><y/></x>",
        decls(27, "p"),
        decls(27, "q"),
        decls(27, "r")
    ));
    // A prefix or the default namespace declared twice on one element is not XML.
    refused(
        "<x xmlns='urn:a' xmlns='urn:b'/>",
        "declares namespace prefix \"\" twice",
    );
    refused(
        "<x xmlns:a='urn:a' xmlns:a='urn:a'/>",
        "declares namespace prefix \"a\" twice",
    );
    let long = |n: usize| "u".repeat(n);
    parses(&format!(
        "<x xmlns:{}='{}'/>",
        long(l.max_namespace_len),
        long(l.max_namespace_len)
    ));
    refused(
        &format!("<x xmlns:p='{}'/>", long(l.max_namespace_len + 1)),
        "longer than 256 bytes",
    );
    refused(
        &format!("<x xmlns:{}='u'/>", long(l.max_namespace_len + 1)),
        "longer than 256 bytes",
    );
    let cdata = |n: usize| format!("<v>a{}</v>", "<![CDATA[b]]>c".repeat(n));
    parses(&cdata(l.max_cdata_run));
    refused(&cdata(l.max_cdata_run + 1), "more than 16 CDATA sections");
    // A comment, an element or a processing instruction ends the run.
    parses(&format!(
        "<v>{}<!-- c -->{}<e/>{}<?pi x?>{}</v>",
        "<![CDATA[b]]>".repeat(16),
        "<![CDATA[b]]>".repeat(16),
        "<![CDATA[b]]>".repeat(16),
        "<![CDATA[b]]>".repeat(16)
    ));
    // Distinct (prefix, URI) pairs: the envelope's five and 1019 more.
    let distinct = |n: usize| {
        (0..n)
            .map(|i| format!("<x xmlns:p='urn:{i}'/>"))
            .collect::<String>()
    };
    parses(&distinct(l.max_distinct_namespaces - 5));
    refused(
        &distinct(l.max_distinct_namespaces - 4),
        "more than 1024 distinct namespaces",
    );
    // Bindings: 8,192 siblings with 32 prefixes in scope each.
    let bindings = |n: usize| {
        format!(
            "<x{}>{}</x>",
            decls(26, "p"),
            "<y xmlns:q='urn:y'/>".repeat(n)
        )
    };
    // The envelope's own (5) and <x>'s (31) count too.
    let first = 5 + 31;
    let per = 32;
    let n = (l.max_namespace_bindings - first) / per;
    parses(&bindings(n));
    refused(&bindings(n + 1), "more than 262144 namespace bindings");
}

#[test]
fn what_the_pre_scan_reads_is_what_xml_says() {
    let l = Limits {
        max_element_attributes: 2,
        max_namespaces_in_scope: 6,
        ..Limits::default()
    };
    let ok = |body: &str| {
        let r = parse_acs(envelope(body).as_bytes(), &l);
        assert!(
            matches!(r, Err(ParseError::BadArguments { .. })),
            "{body}: {r:?}"
        );
    };
    let bad = |body: &str| {
        let r = parse_acs(envelope(body).as_bytes(), &l);
        assert!(matches!(r, Err(ParseError::Malformed(_))), "{body}: {r:?}");
    };
    // Spaces around `=`, either quote, `>` and `=` and `xmlns` inside values, line breaks.
    ok("<x a = '1' b\n=\n\"x>y=z xmlns:q='u'\"/>");
    bad("<x a = '1' b\n=\n\"x>y\" c='2'/>");
    // Markup-like text in comments, CDATA and processing instructions counts for nothing.
    ok("<!-- <x xmlns:a='1' xmlns:b='2'> --><![CDATA[<x a='1' b='2' c='3'>]]><?pi a='1' b='2' c='3'?><x/>");
    // `xmlns:a` is a declaration, `xmlnsx` and `a:xmlns` are attributes.
    ok("<x xmlns:a='urn:a' a:xmlns='1' xmlnsx='2'/>");
    bad("<x xmlns:a='urn:a' a:xmlns='1' xmlnsx='2' c='3'/>");
    // The envelope declares 5: one more fits, two do not.
    ok("<x xmlns='urn:a'><y xmlns='urn:b'/></x>");
    bad("<x xmlns='urn:a'><y xmlns:b='urn:b'/></x>");
}

/// Some ACSes declare every namespace again on every element, and some (.NET) write
/// `xmlns=""` on every argument: such a SetParameterValues of 2,000 parameters parses, to the
/// same message as without the declarations.
#[test]
fn declarations_on_every_element_still_parse() {
    let five = "xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
                xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
                xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
                xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"";
    let spv = |decl: &str| {
        let mut params = String::new();
        for i in 0..2000 {
            params.push_str(&format!(
                "<ParameterValueStruct {decl}><Name {decl}>Device.X_Test.{i}.Name</Name>\
                 <Value {decl} xsi:type=\"xsd:string\">v{i}</Value></ParameterValueStruct>"
            ));
        }
        envelope("")
            .replace(
                "<cwmp:GetParameterNames></cwmp:GetParameterNames>",
                &format!(
                    "<cwmp:SetParameterValues {decl}><ParameterList {decl} \
                     soap-enc:arrayType=\"cwmp:ParameterValueStruct[2000]\">{params}\
                     </ParameterList><ParameterKey {decl}>k</ParameterKey>\
                     </cwmp:SetParameterValues>"
                ),
            )
            .replace("<soap-env:Body>", &format!("<soap-env:Body {five}>"))
    };
    let plain = parse_acs(spv("").as_bytes(), &Limits::default()).expect("plain");
    for decl in [five.to_string(), format!("{five} xmlns=\"\"")] {
        let text = spv(&decl);
        let env =
            parse_acs(text.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(env.body, plain.body);
        assert!(matches!(
            env.body,
            AcsMessage::Request(AcsRequest::SetParameterValues { ref list, .. }) if list.len() == 2000
        ));
    }
}
