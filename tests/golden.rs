//! Golden-file tests of the SOAP codec (TR-069 Annex A): envelopes as files, each with its
//! expected parse and the expected emitted answer. The index and the rules are in
//! `tests/golden/README.md`; adding a case is adding its input file and one line to the table
//! there, then running `GOLDEN_BLESS=1 cargo test --test golden` and reviewing the new files under
//! `tests/golden/expected/`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use cwmpd::cwmp::fault::{AcsFault, Fault, ParamFault};
use cwmpd::cwmp::value::{ParameterAttribute, ParameterInfo, ParameterValue, XsiType};
use cwmpd::cwmp::version::{CwmpNs, CwmpVersion};
use cwmpd::soap::acs::{self, CpeMessage};
use cwmpd::soap::*;

/// Which end sent the input, and so which parser reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sender {
    /// ACS → CPE: `parse_acs`, the answer is the CPE's as the agent posts it
    /// (`emit_response_body`: a GetParameterValuesResponse written as it is read).
    Acs,
    /// CPE → ACS: `acs::parse_cpe`, the answer is the ACS's (`acs::emit_acs_*`).
    Cpe,
}

#[derive(Debug)]
struct Case {
    name: String,
    from: Sender,
    input: PathBuf,
    limits: Limits,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Reads the table under "## Cases" in the README: `| case | from | input | limits | checks |`.
fn cases() -> Vec<Case> {
    let readme = fs::read_to_string(dir().join("README.md")).expect("tests/golden/README.md");
    let table = readme
        .split("## Cases")
        .nth(1)
        .expect("a \"## Cases\" section in the README");
    let mut out = Vec::new();
    for line in table.lines().map(str::trim) {
        if !line.starts_with('|') || line.starts_with("|--") || line.starts_with("| case ") {
            continue;
        }
        let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cols.len() >= 4, "index line {line:?} has too few columns");
        let from = match cols[1] {
            "acs" => Sender::Acs,
            "cpe" => Sender::Cpe,
            other => panic!("index line {line:?}: from must be acs or cpe, not {other:?}"),
        };
        out.push(Case {
            name: cols[0].trim_matches('`').to_string(),
            from,
            input: dir().join(cols[2].trim_matches('`')),
            limits: limits(cols[3]),
        });
    }
    out
}

/// `-` for the defaults, else `bytes=N`, `nodes=N`, `depth=N` separated by commas.
fn limits(spec: &str) -> Limits {
    let mut l = Limits::default();
    for item in spec
        .split(',')
        .map(str::trim)
        .filter(|s| *s != "-" && !s.is_empty())
    {
        let (k, v) = item.split_once('=').expect("limits are key=value");
        let v: usize = v.parse().expect("a limit is a number");
        match k {
            "bytes" => l.max_bytes = v,
            "nodes" => l.max_nodes = v,
            "depth" => l.max_depth = v,
            other => panic!("unknown limit {other}"),
        }
    }
    l
}

#[test]
fn golden() {
    let bless = std::env::var_os("GOLDEN_BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 50, "the index lists {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run(case, bless) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    let expected = dir().join("expected");
    // Every expected file belongs to a case of the index.
    for entry in fs::read_dir(&expected).expect("tests/golden/expected") {
        let file = entry.expect("dir entry").file_name();
        let file = file.to_string_lossy();
        let stem = file.split('.').next().unwrap_or_default();
        if !cases.iter().any(|c| c.name == stem) {
            failures.push(format!("{file}: not a case of the index"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn run(case: &Case, bless: bool) -> Result<(), String> {
    let input = fs::read(&case.input).map_err(|e| format!("{}: {e}", case.input.display()))?;
    let (parse, answer) = match case.from {
        Sender::Acs => {
            let r = parse_acs(&input, &case.limits);
            if let Ok(env) = &r {
                round_trip_acs(env)?;
            }
            let answer = cpe_answer(&r);
            if let Some(a) = &answer {
                acs::parse_cpe(a, &Limits::default())
                    .map_err(|e| format!("our answer does not parse: {e:?}"))?;
                schema::check(a, true).map_err(|e| format!("our answer: {e}"))?;
            }
            (format!("{r:#?}\n"), answer)
        }
        Sender::Cpe => {
            let r = acs::parse_cpe(&input, &case.limits);
            if let Ok(env) = &r {
                round_trip_cpe(env)?;
            }
            let answer = acs_answer(&r);
            if let Some(a) = &answer {
                parse_acs(a, &Limits::default())
                    .map_err(|e| format!("the ACS answer does not parse: {e:?}"))?;
                schema::check(a, false).map_err(|e| format!("the ACS answer: {e}"))?;
            }
            (format!("{r:#?}\n"), answer)
        }
    };
    let answer = answer
        .map(|a| String::from_utf8(a).map_err(|e| format!("answer is not UTF-8: {e}")))
        .transpose()?;
    let parse_file = dir().join("expected").join(format!("{}.parse", case.name));
    let answer_file = dir()
        .join("expected")
        .join(format!("{}.response.xml", case.name));
    if bless {
        fs::write(&parse_file, &parse).map_err(|e| e.to_string())?;
        match &answer {
            Some(a) => fs::write(&answer_file, pretty(a)).map_err(|e| e.to_string())?,
            None => {
                let _ = fs::remove_file(&answer_file);
            }
        }
        return Ok(());
    }
    let want = fs::read_to_string(&parse_file)
        .map_err(|e| format!("{}: {e} (run with GOLDEN_BLESS=1)", parse_file.display()))?;
    if want != parse {
        return Err(format!(
            "parse differs from {}:\n{parse}",
            parse_file.display()
        ));
    }
    match (answer, fs::read_to_string(&answer_file).ok()) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(format!(
            "no answer expected, yet {} exists",
            answer_file.display()
        )),
        (Some(got), None) => Err(format!(
            "answer without {}:\n{}",
            answer_file.display(),
            pretty(&got)
        )),
        (Some(got), Some(want)) => {
            if got.contains('\n') {
                return Err(format!("emitted markup is not compact:\n{got}"));
            }
            if compact(&want) != got {
                Err(format!(
                    "answer differs from {}:\n{}",
                    answer_file.display(),
                    pretty(&got)
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The CPE's answer to what the ACS sent, by the rule in the README.
fn cpe_answer(r: &Result<Envelope<AcsMessage>, ParseError>) -> Option<Vec<u8>> {
    let (ns, id, resp) = match r {
        Ok(env) => match &env.body {
            AcsMessage::Request(req) => (env.ns, env.header.id.clone(), answer(req)),
            _ => return None,
        },
        Err(ParseError::UnknownMethod { id, ns, method }) => (
            *ns,
            id.clone(),
            CpeResponse::Fault(Fault::MethodNotSupported(method.clone())),
        ),
        Err(ParseError::BadArguments {
            id,
            ns,
            method,
            detail,
        }) => (
            *ns,
            id.clone(),
            CpeResponse::Fault(Fault::InvalidArguments(
                format!("{method}: {detail}"),
                vec![],
            )),
        ),
        Err(ParseError::MustUnderstand { id, ns, element }) => (
            *ns,
            id.clone(),
            CpeResponse::Fault(Fault::MethodNotSupported(format!(
                "header {element} not understood"
            ))),
        ),
        Err(ParseError::Malformed(_)) => return None,
    };
    Some(emit_response_body(ns, id.as_deref(), resp).to_vec())
}

/// The deterministic stand-in for the agent: a CPE response computed from the request alone.
fn answer(req: &AcsRequest) -> CpeResponse {
    const TIME: &str = "0001-01-01T00:00:00Z";
    match req {
        AcsRequest::GetRpcMethods => CpeResponse::GetRpcMethods {
            methods: [
                "GetRPCMethods",
                "GetParameterNames",
                "GetParameterValues",
                "SetParameterValues",
                "GetParameterAttributes",
                "SetParameterAttributes",
                "AddObject",
                "DeleteObject",
                "Reboot",
                "Download",
            ]
            .map(String::from)
            .to_vec(),
        },
        AcsRequest::GetParameterNames { path, next_level } => CpeResponse::GetParameterNames {
            list: vec![
                ParameterInfo {
                    name: format!("{path}Enable"),
                    writable: true,
                },
                ParameterInfo {
                    name: format!("{path}Stats."),
                    writable: !next_level,
                },
            ],
        },
        AcsRequest::GetParameterValues { names } => CpeResponse::GetParameterValues {
            list: names
                .iter()
                .enumerate()
                .map(|(i, name)| sample_value(i, name))
                .collect(),
        },
        AcsRequest::SetParameterValues { list, .. } => {
            let faults: Vec<ParamFault> = list
                .iter()
                .filter_map(|p| {
                    let fault = match &p.xsi_type {
                        Some(XsiType::Unknown(t)) => {
                            Fault::InvalidParameterType(format!("{t} is not a TR-106 type"))
                        }
                        _ if p.value.contains("invalid") => {
                            Fault::InvalidParameterValue(String::new())
                        }
                        _ => return None,
                    };
                    Some(ParamFault {
                        name: p.name.clone(),
                        fault,
                    })
                })
                .collect();
            if faults.is_empty() {
                CpeResponse::SetParameterValues { status: 0 }
            } else {
                CpeResponse::Fault(Fault::InvalidArguments(String::new(), faults))
            }
        }
        AcsRequest::GetParameterAttributes { names } => CpeResponse::GetParameterAttributes {
            list: names
                .iter()
                .enumerate()
                .map(|(i, name)| ParameterAttribute {
                    name: name.clone(),
                    notification: (i % 3) as u8,
                    access_list: if i % 2 == 1 {
                        vec!["Subscriber".into()]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        },
        AcsRequest::SetParameterAttributes { .. } => CpeResponse::SetParameterAttributes,
        AcsRequest::AddObject { object_name, .. } => CpeResponse::AddObject {
            instance_number: object_name.len() as u32,
            status: 0,
        },
        AcsRequest::DeleteObject { .. } => CpeResponse::DeleteObject { status: 0 },
        AcsRequest::Reboot { .. } => CpeResponse::Reboot,
        AcsRequest::Download(_) => CpeResponse::Download {
            status: 1,
            start_time: TIME.into(),
            complete_time: TIME.into(),
        },
        AcsRequest::Upload(_) => CpeResponse::Upload {
            status: 1,
            start_time: TIME.into(),
            complete_time: TIME.into(),
        },
        AcsRequest::FactoryReset => CpeResponse::FactoryReset,
        AcsRequest::ScheduleInform { .. } => CpeResponse::ScheduleInform,
        AcsRequest::GetQueuedTransfers => CpeResponse::GetQueuedTransfers {
            list: vec![QueuedTransfer {
                command_key: "golden".into(),
                state: 2,
                ..QueuedTransfer::default()
            }],
        },
        AcsRequest::GetAllQueuedTransfers => CpeResponse::GetAllQueuedTransfers {
            list: vec![QueuedTransfer {
                command_key: "golden".into(),
                state: 2,
                is_download: true,
                file_type: "1 Firmware Upgrade Image".into(),
                file_size: 1024,
                target_file_name: "fw.bin".into(),
            }],
        },
        AcsRequest::ScheduleDownload(_) => CpeResponse::ScheduleDownload,
        AcsRequest::CancelTransfer { command_key } => CpeResponse::Fault(Fault::Transfer(
            9021,
            format!("transfer {command_key:?} is in progress"),
        )),
        AcsRequest::ChangeDuState { .. } => CpeResponse::ChangeDuState,
    }
}

/// The i-th value of a GetParameterValuesResponse: types in turn, values that need escaping.
fn sample_value(i: usize, name: &str) -> ParameterValue {
    use cwmpd::cwmp::value::BaseType;
    let (ty, value) = match i % 6 {
        0 => (BaseType::String, format!("<{name}> & \"more\"")),
        1 => (BaseType::UnsignedInt, (i * 7).to_string()),
        2 => (BaseType::Boolean, (i % 4 == 2).to_string()),
        3 => (BaseType::DateTime, "2026-11-21T05:50:00Z".to_string()),
        4 => (BaseType::Int, format!("-{i}")),
        _ => (BaseType::Base64, "Y3dtcGQ=".to_string()),
    };
    ParameterValue {
        name: name.to_string(),
        value,
        ty,
    }
}

/// The ACS's answer to what the CPE sent, by the rule in the README.
fn acs_answer(r: &Result<Envelope<CpeMessage>, ParseError>) -> Option<Vec<u8>> {
    match r {
        Ok(env) => {
            let CpeMessage::Request(req) = &env.body else {
                return None;
            };
            let mut header = Header {
                id: env.header.id.clone(),
                ..Header::default()
            };
            let resp = match req {
                CpeRequest::Inform(_) => {
                    // CWMP 1.4 (cwmp-1-4.xsd header comment): answer the highest version offered.
                    header.use_version = env.header.supported_versions.as_deref().and_then(|v| {
                        v.split(',')
                            .filter_map(CwmpVersion::parse)
                            .max()
                            .map(|v| v.text())
                    });
                    AcsResponse::Inform { max_envelopes: 1 }
                }
                CpeRequest::TransferComplete { .. } => AcsResponse::TransferComplete,
                CpeRequest::AutonomousTransferComplete { .. } => {
                    AcsResponse::AutonomousTransferComplete
                }
                CpeRequest::RequestDownload { .. } => AcsResponse::RequestDownload,
                CpeRequest::Kicked { next, .. } => AcsResponse::Kicked {
                    next_url: next.clone(),
                },
                CpeRequest::GetRpcMethods => AcsResponse::GetRpcMethods {
                    methods: ["Inform", "GetRPCMethods", "TransferComplete"]
                        .map(String::from)
                        .to_vec(),
                },
            };
            Some(acs::emit_acs_response(env.ns, &header, &resp))
        }
        Err(ParseError::UnknownMethod { id, ns, method }) => Some(acs::emit_acs_fault(
            *ns,
            id.as_deref(),
            &AcsFault {
                code: 8000,
                string: format!("Method not supported: {method}"),
            },
        )),
        Err(ParseError::BadArguments { id, ns, detail, .. }) => Some(acs::emit_acs_fault(
            *ns,
            id.as_deref(),
            &AcsFault {
                code: 8003,
                string: format!("Invalid arguments: {detail}"),
            },
        )),
        Err(_) => None,
    }
}

/// What the ACS sent, emitted again by the ACS side, parses to the same message.
fn round_trip_acs(env: &Envelope<AcsMessage>) -> Result<(), String> {
    let bytes = match &env.body {
        AcsMessage::Request(r) => acs::emit_acs_request(env.ns, &env.header, r),
        AcsMessage::Response(r) => acs::emit_acs_response(env.ns, &env.header, r),
        AcsMessage::Fault(f) => acs::emit_acs_fault(env.ns, env.header.id.as_deref(), f),
        AcsMessage::Empty => return Ok(()),
    };
    schema::check(&bytes, false).map_err(|e| format!("re-emitted by the ACS side: {e}"))?;
    let again = parse_acs(&bytes, &Limits::default()).map_err(|e| format!("{e:?}"))?;
    if again.body != env.body || again.ns != env.ns || again.header.id != env.header.id {
        return Err(format!(
            "re-emitted by the ACS side it parses as {again:#?}"
        ));
    }
    Ok(())
}

/// What the CPE sent, emitted again by the CPE side, parses to the same message.
fn round_trip_cpe(env: &Envelope<CpeMessage>) -> Result<(), String> {
    let bytes = match &env.body {
        CpeMessage::Request(r) => emit_request(env.ns, &env.header, r),
        CpeMessage::Response(r) => emit_response(env.ns, env.header.id.as_deref(), r),
        CpeMessage::Empty => return Ok(()),
    };
    schema::check(&bytes, true).map_err(|e| format!("re-emitted by the CPE side: {e}"))?;
    let again = acs::parse_cpe(&bytes, &Limits::default()).map_err(|e| format!("{e:?}"))?;
    if again.body != env.body || again.ns != env.ns || again.header.id != env.header.id {
        return Err(format!(
            "re-emitted by the CPE side it parses as {again:#?}"
        ));
    }
    Ok(())
}

/// Expected answers are stored indented for reading: a line break and two spaces per level
/// before every tag that follows a tag.
fn pretty(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() * 2);
    let mut depth: usize = 0;
    let mut prev_gt = false;
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        let (text, tail) = rest.split_at(lt);
        out.push_str(text);
        let gt = tail.find('>').map_or(tail.len(), |g| g + 1);
        let (tag, after) = tail.split_at(gt);
        let closing = tag.starts_with("</");
        if closing {
            depth = depth.saturating_sub(1);
        }
        if prev_gt && text.is_empty() {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
        out.push_str(tag);
        if !closing && !tag.ends_with("/>") && !tag.starts_with("<?") {
            depth += 1;
        }
        prev_gt = true;
        rest = after;
    }
    out.push_str(rest);
    let _ = writeln!(out);
    out
}

/// The inverse of [`pretty`]: drops every line break (with the indentation after it) that sits
/// between `>` and `<`, and the final line break.
fn compact(pretty: &str) -> String {
    let mut out = String::with_capacity(pretty.len());
    let mut lines = pretty.trim_end_matches('\n').split('\n');
    if let Some(first) = lines.next() {
        out.push_str(first);
    }
    for line in lines {
        let trimmed = line.trim_start_matches(' ');
        if out.ends_with('>') && trimmed.starts_with('<') {
            out.push_str(trimmed);
        } else {
            out.push('\n');
            out.push_str(line);
        }
    }
    out
}

/// Checks emitted envelopes against `schema/cwmp-1-2.xsd` (a copy of the BBF schema): element
/// names, order and counts of every RPC and struct, unqualified arguments, `SOAP-ENC:arrayType`
/// with the right item type and count on every array, `mustUnderstand` on every header element,
/// `xsi:type` on every value the CPE sends, and the SOAP Fault layout of §A.5. A small reading
/// of XML Schema: sequences, `minOccurs`/`maxOccurs`, named and inline types, SOAP arrays and
/// `xsi:type` for the abstract OperationStruct; nothing more is needed for these schemas.
mod schema {
    use roxmltree::{Document, Node};

    const XS: &str = "http://www.w3.org/2001/XMLSchema";
    const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    const SOAP_ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
    const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

    fn xsd_text() -> &'static str {
        static XSD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        XSD.get_or_init(|| {
            std::fs::read_to_string(super::dir().join("schema/cwmp-1-2.xsd"))
                .expect("tests/golden/schema/cwmp-1-2.xsd")
        })
    }

    /// `from_cpe`: the envelope is the CPE's (every Value must then carry `xsi:type`).
    pub fn check(bytes: &[u8], from_cpe: bool) -> Result<(), String> {
        let xsd = Document::parse(xsd_text()).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let doc = Document::parse(text).map_err(|e| e.to_string())?;
        let s = Schema {
            xsd: &xsd,
            from_cpe,
        };
        let env = doc.root_element();
        expect_soap(env, "Envelope")?;
        let parts: Vec<Node> = elements(env).collect();
        let body = match parts.as_slice() {
            [h, b] => {
                expect_soap(*h, "Header")?;
                for el in elements(*h) {
                    s.header(el)?;
                }
                *b
            }
            [b] => *b,
            _ => return Err("Envelope must hold [Header] Body".into()),
        };
        expect_soap(body, "Body")?;
        let rpcs: Vec<Node> = elements(body).collect();
        match rpcs.as_slice() {
            [] => Ok(()),
            [f] if f.tag_name().name() == "Fault" => s.soap_fault(*f),
            [rpc] => {
                if !is_cwmp(*rpc) {
                    return Err(format!(
                        "{} is not in the cwmp namespace",
                        rpc.tag_name().name()
                    ));
                }
                let decl = s
                    .top(rpc.tag_name().name())
                    .ok_or_else(|| format!("{} is not in the schema", rpc.tag_name().name()))?;
                s.element(*rpc, decl)
            }
            _ => Err("Body must hold one element".into()),
        }
    }

    struct Schema<'x, 'i> {
        xsd: &'x Document<'i>,
        from_cpe: bool,
    }

    fn elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
        n.children().filter(Node::is_element)
    }

    fn is_xs(n: Node<'_, '_>, name: &str) -> bool {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(XS)
    }

    fn is_cwmp(n: Node<'_, '_>) -> bool {
        n.tag_name()
            .namespace()
            .is_some_and(|u| u.starts_with("urn:dslforum-org:cwmp-1-"))
    }

    fn expect_soap(n: Node<'_, '_>, name: &str) -> Result<(), String> {
        if n.tag_name().name() == name && n.tag_name().namespace() == Some(SOAP_ENV) {
            Ok(())
        } else {
            Err(format!(
                "expected SOAP-ENV:{name}, found {:?}",
                n.tag_name()
            ))
        }
    }

    fn local(type_ref: &str) -> &str {
        type_ref.rsplit(':').next().unwrap_or(type_ref)
    }

    impl<'x, 'i> Schema<'x, 'i> {
        fn top(&self, name: &str) -> Option<Node<'x, 'i>> {
            elements(self.xsd.root_element())
                .find(|n| is_xs(*n, "element") && n.attribute("name") == Some(name))
        }

        fn complex_type(&self, name: &str) -> Option<Node<'x, 'i>> {
            elements(self.xsd.root_element())
                .find(|n| is_xs(*n, "complexType") && n.attribute("name") == Some(name))
        }

        /// §A.4.1 header elements: cwmp-1-2 defines ID and HoldRequests, cwmp-1-3 SessionTimeout,
        /// cwmp-1-4 SupportedCWMPVersions and UseCWMPVersion, all with `mustUnderstand`.
        fn header(&self, el: Node<'_, '_>) -> Result<(), String> {
            let name = el.tag_name().name();
            let known = [
                "ID",
                "HoldRequests",
                "SessionTimeout",
                "SupportedCWMPVersions",
                "UseCWMPVersion",
            ];
            if !is_cwmp(el) || !known.contains(&name) {
                return Err(format!("unexpected header element {:?}", el.tag_name()));
            }
            let mu = el
                .attribute((SOAP_ENV, "mustUnderstand"))
                .ok_or_else(|| format!("header {name} without SOAP-ENV:mustUnderstand"))?;
            let want = if matches!(name, "SessionTimeout" | "SupportedCWMPVersions") {
                "0"
            } else {
                "1"
            };
            if mu != want {
                return Err(format!("header {name} has mustUnderstand={mu}, not {want}"));
            }
            Ok(())
        }

        /// §A.5: faultcode, faultstring, detail/cwmp:Fault.
        fn soap_fault(&self, f: Node<'_, '_>) -> Result<(), String> {
            expect_soap(f, "Fault")?;
            let kids: Vec<Node> = elements(f).collect();
            let [code, string, detail] = kids.as_slice() else {
                return Err("SOAP Fault must hold faultcode, faultstring, detail".into());
            };
            let names = [code, string, detail].map(|n| n.tag_name().name());
            if names != ["faultcode", "faultstring", "detail"] {
                return Err(format!("SOAP Fault holds {names:?}"));
            }
            if !matches!(code.text(), Some("Client" | "Server"))
                || string.text() != Some("CWMP fault")
            {
                return Err("faultcode must be Client or Server, faultstring CWMP fault".into());
            }
            let inner: Vec<Node> = elements(*detail).collect();
            match inner.as_slice() {
                [cf] if is_cwmp(*cf) && cf.tag_name().name() == "Fault" => {
                    let decl = self.top("Fault").ok_or("no Fault in the schema")?;
                    self.element(*cf, decl)
                }
                _ => Err("detail must hold one cwmp:Fault".into()),
            }
        }

        /// Checks `el` against its declaration `decl` (an `xs:element`).
        fn element(&self, el: Node<'_, '_>, decl: Node<'x, 'i>) -> Result<(), String> {
            let name = el.tag_name().name();
            if let Some(t) = decl.attribute("type") {
                if t.starts_with("tns:") {
                    if let Some(ct) = self.complex_type(local(t)) {
                        return self.complex(el, ct);
                    }
                }
                if t == "xs:anySimpleType" && self.from_cpe && name == "Value" {
                    el.attribute((XSI, "type"))
                        .ok_or("a Value the CPE sends must carry xsi:type")?;
                }
                return simple(el);
            }
            match elements(decl).find(|n| is_xs(*n, "complexType")) {
                Some(ct) => self.complex(el, ct),
                None => simple(el),
            }
        }

        fn complex(&self, el: Node<'_, '_>, ct: Node<'x, 'i>) -> Result<(), String> {
            if elements(ct).any(|n| is_xs(n, "simpleContent")) {
                return simple(el);
            }
            let ct = if ct.attribute("abstract") == Some("true") {
                // OperationStruct: the concrete type comes from xsi:type (§A.4.1.10).
                let t = el
                    .attribute((XSI, "type"))
                    .ok_or_else(|| format!("{} needs an xsi:type", el.tag_name().name()))?;
                self.complex_type(local(t))
                    .ok_or_else(|| format!("xsi:type {t} is not in the schema"))?
            } else {
                ct
            };
            let mut decls = Vec::new();
            self.particles(ct, &mut decls);
            let is_array = ct
                .descendants()
                .any(|n| is_xs(n, "restriction") && n.attribute("base") == Some("soapenc:Array"));
            let kids: Vec<Node> = elements(el).collect();
            if is_array {
                let item = decls
                    .first()
                    .and_then(|d| d.attribute("name"))
                    .ok_or("an array without an item declaration")?;
                let prefix = if item == "string" { "xsd" } else { "cwmp" };
                let want = format!("{prefix}:{item}[{}]", kids.len());
                let got = el.attribute((SOAP_ENC, "arrayType"));
                if got != Some(want.as_str()) {
                    return Err(format!(
                        "{}: SOAP-ENC:arrayType is {got:?}, not {want:?}",
                        el.tag_name().name()
                    ));
                }
            }
            let mut i = 0;
            for d in decls {
                let dname = d.attribute("name").unwrap_or_default();
                let min: usize = d
                    .attribute("minOccurs")
                    .map_or(1, |m| m.parse().unwrap_or(1));
                let max = match d.attribute("maxOccurs") {
                    Some("unbounded") => usize::MAX,
                    Some(m) => m.parse().unwrap_or(1),
                    None => 1,
                };
                let mut n = 0;
                while n < max {
                    let Some(k) = kids.get(i) else { break };
                    if k.tag_name().name() != dname {
                        break;
                    }
                    if k.tag_name().namespace().is_some() {
                        return Err(format!("argument {dname} must be unqualified"));
                    }
                    self.element(*k, d)?;
                    i += 1;
                    n += 1;
                }
                if n < min {
                    return Err(format!(
                        "{}: missing {dname} (found {:?})",
                        el.tag_name().name(),
                        kids.get(i).map(|k| k.tag_name().name())
                    ));
                }
            }
            match kids.get(i) {
                None => Ok(()),
                Some(k) => Err(format!(
                    "{}: unexpected {}",
                    el.tag_name().name(),
                    k.tag_name().name()
                )),
            }
        }

        /// The element declarations of a complex type in order, base type first for extensions.
        fn particles(&self, ct: Node<'x, 'i>, out: &mut Vec<Node<'x, 'i>>) {
            for n in elements(ct) {
                if is_xs(n, "sequence") {
                    out.extend(elements(n).filter(|e| is_xs(*e, "element")));
                } else if is_xs(n, "complexContent") {
                    for r in elements(n) {
                        if is_xs(r, "extension") {
                            if let Some(base) = r
                                .attribute("base")
                                .and_then(|b| self.complex_type(local(b)))
                            {
                                self.particles(base, out);
                            }
                        }
                        self.particles(r, out);
                    }
                }
            }
        }
    }

    fn simple(el: Node<'_, '_>) -> Result<(), String> {
        match elements(el).next() {
            None => Ok(()),
            Some(k) => Err(format!(
                "{} is a simple value but holds {}",
                el.tag_name().name(),
                k.tag_name().name()
            )),
        }
    }
}

#[test]
fn schema_check_catches_mistakes() {
    let good = emit_response(
        CwmpNs::V1_0,
        Some("1"),
        &CpeResponse::Download {
            status: 1,
            start_time: "0001-01-01T00:00:00Z".into(),
            complete_time: "0001-01-01T00:00:00Z".into(),
        },
    );
    assert_eq!(schema::check(&good, true), Ok(()));
    let text = String::from_utf8(good).expect("UTF-8");
    let swapped = text.replace(
        "<Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime>",
        "<StartTime>0001-01-01T00:00:00Z</StartTime><Status>1</Status>",
    );
    assert!(schema::check(swapped.as_bytes(), true).is_err());
    let gpv = String::from_utf8(emit_response(
        CwmpNs::V1_0,
        Some("1"),
        &answer(&AcsRequest::GetParameterValues {
            names: vec!["Device.A".into(), "Device.B".into()],
        }),
    ))
    .expect("UTF-8");
    assert_eq!(schema::check(gpv.as_bytes(), true), Ok(()));
    for broken in [
        gpv.replace("ParameterValueStruct[2]", "ParameterValueStruct[3]"),
        gpv.replace("<Value xsi:type=\"xsd:string\">", "<Value>"),
        gpv.replace("<Name>Device.B</Name>", ""),
        gpv.replace("cwmp:ID SOAP-ENV:mustUnderstand=\"1\"", "cwmp:ID"),
        gpv.replace("<ParameterList ", "<cwmp:ParameterList ")
            .replace("</ParameterList>", "</cwmp:ParameterList>"),
    ] {
        if broken != gpv {
            assert!(schema::check(broken.as_bytes(), true).is_err(), "{broken}");
        }
    }
    let fault = String::from_utf8(emit_response(
        CwmpNs::V1_0,
        None,
        &CpeResponse::Fault(Fault::InvalidArguments(
            String::new(),
            vec![ParamFault {
                name: "Device.A".into(),
                fault: Fault::InvalidParameterValue(String::new()),
            }],
        )),
    ))
    .expect("UTF-8");
    assert_eq!(schema::check(fault.as_bytes(), true), Ok(()));
    for broken in [
        fault.replace("CWMP fault", "oops"),
        fault.replace("<ParameterName>Device.A</ParameterName>", ""),
        fault.replace("<detail>", "<detail><x/>"),
    ] {
        assert!(schema::check(broken.as_bytes(), true).is_err(), "{broken}");
    }
    // An ACS may leave a value untyped.
    let untyped = gpv.replace("<Value xsi:type=\"xsd:string\">", "<Value>");
    assert_eq!(schema::check(untyped.as_bytes(), false), Ok(()));
}

#[test]
fn pretty_and_compact_are_inverse() {
    let x = "<?xml version=\"1.0\"?><a x=\"1\"><b>t</b><c/><d></d><e>x\ny</e></a>";
    let p = pretty(x);
    assert!(p.contains("\n  <b>t</b>\n  <c/>\n  <d>\n  </d>"), "{p}");
    assert_eq!(compact(&p), x);
}
