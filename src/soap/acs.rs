//! The ACS side of the codec (TR-069 Annex A seen from the other end): parses what a CPE sends
//! and emits what an ACS sends. Used by the demo ACS and the tests, never by the agent itself.
//!
//! It shares the tree helpers (`soap::tree`) and the writer (`soap::xml`) with the CPE side.
//! Parsing is as tolerant as the CPE side, plus: an unknown `mustUnderstand` header is kept in
//! [`Header::unknown_must_understand`] instead of refused (the caller decides), a
//! Download/UploadResponse without StartTime/CompleteTime (seen in the field) reads as the unknown
//! time `0001-01-01T00:00:00Z`, and a Value without `xsi:type` (or with one that is not a TR-106
//! base type) reads as `string`. A CPE fault code outside 9000–9032 becomes 9002
//! ([`Fault::from_code`]).

use roxmltree::Node;

use super::msg::*;
use super::tree::{self, Args, Env, SoapFault};
use super::xml::{HeaderOut, Writer, BASE_CAPACITY};
use super::Limits;
use crate::cwmp::fault::{self, AcsFault, Fault, ParamFault};
use crate::cwmp::value::BaseType;
use crate::cwmp::value::{ParameterAttribute, ParameterInfo, ParameterValue, SetValue, XsiType};
use crate::cwmp::version::CwmpNs;

/// What a CPE sends in an HTTP POST body.
#[derive(Debug, Clone, PartialEq)]
pub enum CpeMessage {
    Request(CpeRequest),
    Response(CpeResponse),
    /// An empty POST.
    Empty,
}

/// Parses a CPE POST body.
pub fn parse_cpe(body: &[u8], limits: &Limits) -> Result<Envelope<CpeMessage>, ParseError> {
    let doc = super::scan::document(body, limits)?;
    let env = tree::envelope(&doc)?;
    let body = match env.rpc {
        None => CpeMessage::Empty,
        Some(node) => cpe_body(&env, node)?,
    };
    Ok(Envelope {
        ns: env.ns,
        header: env.header,
        body,
    })
}

/// A SetParameterValues request as an ACS writes it: each value typed with its `xsi:type`.
pub fn set_parameter_values(list: &[(&str, &str, BaseType)], parameter_key: &str) -> AcsRequest {
    AcsRequest::SetParameterValues {
        list: list
            .iter()
            .map(|(name, value, ty)| SetValue {
                name: name.to_string(),
                value: value.to_string(),
                xsi_type: Some(XsiType::Known(*ty)),
            })
            .collect(),
        parameter_key: parameter_key.into(),
    }
}

/// Emits an ACS request with the given header (`cwmp:ID`, HoldRequests).
pub fn emit_acs_request(ns: CwmpNs, header: &Header, req: &AcsRequest) -> Vec<u8> {
    let capacity = BASE_CAPACITY
        + match req {
            AcsRequest::GetParameterValues { names }
            | AcsRequest::GetParameterAttributes { names } => {
                names.iter().map(|n| n.len() + 20).sum()
            }
            AcsRequest::SetParameterValues { list, .. } => list
                .iter()
                .map(|p| p.name.len() + p.value.len() + 112)
                .sum(),
            AcsRequest::SetParameterAttributes { list } => {
                list.iter().map(|p| p.name.len() + 256).sum()
            }
            _ => 512,
        };
    let mut w = Writer::envelope(capacity, ns, &HeaderOut::acs(header));
    let name = req.method();
    match req {
        AcsRequest::GetRpcMethods
        | AcsRequest::FactoryReset
        | AcsRequest::GetQueuedTransfers
        | AcsRequest::GetAllQueuedTransfers => w.empty_rpc(name),
        AcsRequest::GetParameterNames { path, next_level } => {
            w.start_rpc(name);
            w.elem("ParameterPath", path);
            w.elem_bool("NextLevel", *next_level);
            w.end_rpc(name);
        }
        AcsRequest::GetParameterValues { names } | AcsRequest::GetParameterAttributes { names } => {
            w.start_rpc(name);
            w.string_array("ParameterNames", names);
            w.end_rpc(name);
        }
        AcsRequest::SetParameterValues {
            list,
            parameter_key,
        } => {
            w.start_rpc(name);
            w.start_array("ParameterList", "cwmp:ParameterValueStruct", list.len());
            for p in list {
                w.start("ParameterValueStruct");
                w.elem("Name", &p.name);
                let ty = p.xsi_type.as_ref().map(|t| match t {
                    XsiType::Known(b) => b.xsi_type(),
                    XsiType::Unknown(s) => s.as_str(),
                });
                w.value(ty, &p.value);
                w.end("ParameterValueStruct");
            }
            w.end("ParameterList");
            w.elem("ParameterKey", parameter_key);
            w.end_rpc(name);
        }
        AcsRequest::SetParameterAttributes { list } => {
            w.start_rpc(name);
            w.start_array(
                "ParameterList",
                "cwmp:SetParameterAttributesStruct",
                list.len(),
            );
            for p in list {
                w.start("SetParameterAttributesStruct");
                w.elem("Name", &p.name);
                w.elem_bool("NotificationChange", p.notification_change);
                w.elem_num("Notification", p.notification);
                w.elem_bool("AccessListChange", p.access_list_change);
                w.string_array("AccessList", &p.access_list);
                w.end("SetParameterAttributesStruct");
            }
            w.end("ParameterList");
            w.end_rpc(name);
        }
        AcsRequest::AddObject {
            object_name,
            parameter_key,
        }
        | AcsRequest::DeleteObject {
            object_name,
            parameter_key,
        } => {
            w.start_rpc(name);
            w.elem("ObjectName", object_name);
            w.elem("ParameterKey", parameter_key);
            w.end_rpc(name);
        }
        AcsRequest::Reboot { command_key } | AcsRequest::CancelTransfer { command_key } => {
            w.start_rpc(name);
            w.elem("CommandKey", command_key);
            w.end_rpc(name);
        }
        AcsRequest::Download(d) => {
            w.start_rpc(name);
            w.elem("CommandKey", &d.command_key);
            w.elem("FileType", &d.file_type);
            w.elem("URL", &d.url);
            w.elem("Username", &d.username);
            w.elem("Password", &d.password);
            w.elem_num("FileSize", d.file_size);
            w.elem("TargetFileName", &d.target_file_name);
            w.elem_num("DelaySeconds", d.delay_seconds);
            w.elem("SuccessURL", &d.success_url);
            w.elem("FailureURL", &d.failure_url);
            w.end_rpc(name);
        }
        AcsRequest::Upload(u) => {
            w.start_rpc(name);
            w.elem("CommandKey", &u.command_key);
            w.elem("FileType", &u.file_type);
            w.elem("URL", &u.url);
            w.elem("Username", &u.username);
            w.elem("Password", &u.password);
            w.elem_num("DelaySeconds", u.delay_seconds);
            w.end_rpc(name);
        }
        AcsRequest::ScheduleInform {
            delay_seconds,
            command_key,
        } => {
            w.start_rpc(name);
            w.elem_num("DelaySeconds", delay_seconds);
            w.elem("CommandKey", command_key);
            w.end_rpc(name);
        }
        AcsRequest::ScheduleDownload(d) => {
            w.start_rpc(name);
            w.elem("CommandKey", &d.command_key);
            w.elem("FileType", &d.file_type);
            w.elem("URL", &d.url);
            w.elem("Username", &d.username);
            w.elem("Password", &d.password);
            w.elem_num("FileSize", d.file_size);
            w.elem("TargetFileName", &d.target_file_name);
            w.start_array(
                "TimeWindowList",
                "cwmp:TimeWindowStruct",
                d.time_windows.len(),
            );
            for t in &d.time_windows {
                w.start("TimeWindowStruct");
                w.elem_num("WindowStart", t.window_start);
                w.elem_num("WindowEnd", t.window_end);
                w.elem("WindowMode", &t.window_mode);
                w.elem("UserMessage", &t.user_message);
                w.elem_num("MaxRetries", t.max_retries);
                w.end("TimeWindowStruct");
            }
            w.end("TimeWindowList");
            w.end_rpc(name);
        }
        AcsRequest::ChangeDuState {
            operations,
            command_key,
        } => {
            w.start_rpc(name);
            for op in operations {
                du_operation(&mut w, op);
            }
            w.elem("CommandKey", command_key);
            w.end_rpc(name);
        }
    }
    w.finish()
}

/// Emits an ACS response (InformResponse with UseCWMPVersion when the header has it, …).
pub fn emit_acs_response(ns: CwmpNs, header: &Header, resp: &AcsResponse) -> Vec<u8> {
    let capacity = BASE_CAPACITY
        + match resp {
            AcsResponse::GetRpcMethods { methods } => methods.iter().map(|m| m.len() + 20).sum(),
            _ => 128,
        };
    let mut w = Writer::envelope(capacity, ns, &HeaderOut::acs(header));
    let name = resp.element();
    match resp {
        AcsResponse::Inform { max_envelopes } => {
            w.start_rpc(name);
            w.elem_num("MaxEnvelopes", max_envelopes);
            w.end_rpc(name);
        }
        AcsResponse::GetRpcMethods { methods } => {
            w.start_rpc(name);
            w.string_array("MethodList", methods);
            w.end_rpc(name);
        }
        AcsResponse::Kicked { next_url } => {
            w.start_rpc(name);
            w.elem("NextURL", next_url);
            w.end_rpc(name);
        }
        AcsResponse::TransferComplete
        | AcsResponse::AutonomousTransferComplete
        | AcsResponse::RequestDownload
        | AcsResponse::DuStateChangeComplete
        | AcsResponse::AutonomousDuStateChangeComplete => w.empty_rpc(name),
    }
    w.finish()
}

/// Emits an ACS fault 8000–8006.
pub fn emit_acs_fault(ns: CwmpNs, id: Option<&str>, fault: &AcsFault) -> Vec<u8> {
    let mut w = Writer::envelope(BASE_CAPACITY + 256, ns, &HeaderOut::id(id));
    // §A.5.2, Table A.6: only 8003 (invalid arguments) is the CPE's doing.
    let faultcode = if fault.code == 8003 {
        "Client"
    } else {
        "Server"
    };
    w.fault(faultcode, fault.code, &fault.string, &[]);
    w.finish()
}

/// One ChangeDUState `Operations` element typed by `xsi:type` (§A.4.1.10).
fn du_operation(w: &mut Writer, op: &DuOperation) {
    match op {
        DuOperation::Install {
            url,
            uuid,
            username,
            password,
            execution_env_ref,
        } => {
            w.raw("<Operations xsi:type=\"cwmp:InstallOpStruct\">");
            w.elem("URL", url);
            w.elem("UUID", uuid);
            w.elem("Username", username);
            w.elem("Password", password);
            w.elem("ExecutionEnvRef", execution_env_ref);
        }
        DuOperation::Update {
            uuid,
            version,
            url,
            username,
            password,
        } => {
            w.raw("<Operations xsi:type=\"cwmp:UpdateOpStruct\">");
            w.elem("UUID", uuid);
            w.elem("Version", version);
            w.elem("URL", url);
            w.elem("Username", username);
            w.elem("Password", password);
        }
        DuOperation::Uninstall {
            uuid,
            version,
            execution_env_ref,
        } => {
            w.raw("<Operations xsi:type=\"cwmp:UninstallOpStruct\">");
            w.elem("UUID", uuid);
            w.elem("Version", version);
            w.elem("ExecutionEnvRef", execution_env_ref);
        }
    }
    w.end("Operations");
}

fn cpe_body(env: &Env<'_, '_>, node: Node<'_, '_>) -> Result<CpeMessage, ParseError> {
    env.message(
        node,
        |f| CpeMessage::Response(CpeResponse::Fault(cpe_fault(f))),
        |m, a| cpe_request(m, a).map(|r| r.map(CpeMessage::Request)),
        |m, a| cpe_response(m, a).map(|r| r.map(CpeMessage::Response)),
    )
}

/// A CPE fault back into a [`Fault`]: the detail is the FaultString without the standard text
/// [`Fault::fault_string`] put in front of it.
fn cpe_fault(f: SoapFault) -> Fault {
    let detail = |code: u32, s: String| -> String {
        let std = fault::standard_text(code);
        match s.strip_prefix(std) {
            Some("") => String::new(),
            Some(rest) => match rest.strip_prefix(": ") {
                Some(d) => d.to_string(),
                None => s,
            },
            None => s,
        }
    };
    let mut out = Fault::from_code(f.code, detail(f.code, f.string));
    if let Fault::InvalidArguments(_, list) = &mut out {
        *list = f
            .params
            .into_iter()
            .map(|(name, code, s)| ParamFault {
                name,
                fault: Fault::from_code(code, detail(code, s)),
            })
            .collect();
    }
    out
}

/// A CPE → ACS request by element name; `None` when the name is not one.
fn cpe_request(method: &str, a: Args<'_, '_>) -> Option<Result<CpeRequest, String>> {
    Some(match method {
        "Inform" => inform(a).map(CpeRequest::Inform),
        "TransferComplete" => transfer_complete(a),
        "AutonomousTransferComplete" => autonomous_transfer_complete(a),
        "RequestDownload" => request_download(a),
        "Kicked" => Ok(CpeRequest::Kicked {
            command: a.text_or("Command"),
            referer: a.text_or("Referer"),
            arg: a.text_or("Arg"),
            next: a.text_or("Next"),
        }),
        "GetRPCMethods" => Ok(CpeRequest::GetRpcMethods),
        _ => return None,
    })
}

/// §A.3.3.1.
fn inform(a: Args<'_, '_>) -> Result<Inform, String> {
    let dev = Args(a.child("DeviceId").ok_or("missing argument DeviceId")?);
    Ok(Inform {
        device_id: DeviceId {
            manufacturer: dev.token("Manufacturer")?,
            oui: dev.token("OUI")?,
            product_class: dev.token_or("ProductClass"),
            serial_number: dev.token("SerialNumber")?,
        },
        events: a.list("Event", |e| {
            Ok(EventStruct {
                code: e.token("EventCode")?,
                command_key: e.text_or("CommandKey"),
            })
        })?,
        max_envelopes: a.num_or("MaxEnvelopes", 1)?,
        current_time: a.token("CurrentTime")?,
        retry_count: a.num_or("RetryCount", 0)?,
        parameters: parameter_values(a, "ParameterList")?,
    })
}

/// §A.3.3.2.
fn transfer_complete(a: Args<'_, '_>) -> Result<CpeRequest, String> {
    Ok(CpeRequest::TransferComplete {
        command_key: a.text_or("CommandKey"),
        fault: fault_struct(a)?,
        start_time: a.token("StartTime")?,
        complete_time: a.token("CompleteTime")?,
    })
}

/// §A.3.3.3.
fn autonomous_transfer_complete(a: Args<'_, '_>) -> Result<CpeRequest, String> {
    Ok(CpeRequest::AutonomousTransferComplete {
        announce_url: a.token_or("AnnounceURL"),
        transfer_url: a.token("TransferURL")?,
        is_download: a.bool("IsDownload")?,
        file_type: a.token("FileType")?,
        file_size: a.num_or("FileSize", 0)?,
        target_file_name: a.token_or("TargetFileName"),
        fault: fault_struct(a)?,
        start_time: a.token("StartTime")?,
        complete_time: a.token("CompleteTime")?,
    })
}

/// §A.4.2.2.
fn request_download(a: Args<'_, '_>) -> Result<CpeRequest, String> {
    Ok(CpeRequest::RequestDownload {
        file_type: a.token("FileType")?,
        args: a.list_or("FileTypeArg", |s| Ok((s.token("Name")?, s.text("Value")?)))?,
    })
}

fn fault_struct(a: Args<'_, '_>) -> Result<FaultStruct, String> {
    let f = Args(
        a.child("FaultStruct")
            .ok_or("missing argument FaultStruct")?,
    );
    Ok(FaultStruct {
        code: f.u32("FaultCode")?,
        string: f.text_or("FaultString"),
    })
}

/// A ParameterValueStruct list; the type comes from `xsi:type`, `string` without one.
fn parameter_values(a: Args<'_, '_>, name: &str) -> Result<Vec<ParameterValue>, String> {
    a.list(name, |s| {
        let v = s
            .child("Value")
            .ok_or("ParameterValueStruct without a Value")?;
        Ok(ParameterValue {
            name: s.token("Name")?,
            value: tree::text(v).into_owned(),
            ty: match tree::xsi_type(v) {
                Some(XsiType::Known(t)) => t,
                _ => BaseType::String,
            },
        })
    })
}

/// The unknown time of TR-106 §3.2.2, for missing transfer times.
const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

/// A CPE → ACS response by element name (§A.3.2, §A.4.1); `None` when the name is not one.
fn cpe_response(method: &str, a: Args<'_, '_>) -> Option<Result<CpeResponse, String>> {
    let time = |name: &str| match a.child(name) {
        Some(n) => tree::text(n).trim().to_string(),
        None => UNKNOWN_TIME.to_string(),
    };
    Some(match method {
        "GetRPCMethodsResponse" => a
            .strings("MethodList")
            .map(|methods| CpeResponse::GetRpcMethods { methods }),
        "GetParameterNamesResponse" => a
            .list("ParameterList", |s| {
                Ok(ParameterInfo {
                    name: s.token("Name")?,
                    writable: s.bool("Writable")?,
                })
            })
            .map(|list| CpeResponse::GetParameterNames { list }),
        "GetParameterValuesResponse" => parameter_values(a, "ParameterList")
            .map(|list| CpeResponse::GetParameterValues { list: list.into() }),
        "SetParameterValuesResponse" => a
            .num("Status")
            .map(|status| CpeResponse::SetParameterValues { status }),
        "GetParameterAttributesResponse" => a
            .list("ParameterList", |s| {
                Ok(ParameterAttribute {
                    name: s.token("Name")?,
                    notification: s.num("Notification")?,
                    access_list: s.strings_or("AccessList"),
                })
            })
            .map(|list| CpeResponse::GetParameterAttributes { list }),
        "SetParameterAttributesResponse" => Ok(CpeResponse::SetParameterAttributes),
        "AddObjectResponse" => a.u32("InstanceNumber").and_then(|instance_number| {
            Ok(CpeResponse::AddObject {
                instance_number,
                status: a.num("Status")?,
            })
        }),
        "DeleteObjectResponse" => a
            .num("Status")
            .map(|status| CpeResponse::DeleteObject { status }),
        "RebootResponse" => Ok(CpeResponse::Reboot),
        "DownloadResponse" => a.num("Status").map(|status| CpeResponse::Download {
            status,
            start_time: time("StartTime"),
            complete_time: time("CompleteTime"),
        }),
        "UploadResponse" => a.num("Status").map(|status| CpeResponse::Upload {
            status,
            start_time: time("StartTime"),
            complete_time: time("CompleteTime"),
        }),
        "FactoryResetResponse" => Ok(CpeResponse::FactoryReset),
        "ScheduleInformResponse" => Ok(CpeResponse::ScheduleInform),
        "GetQueuedTransfersResponse" => a
            .list("TransferList", |s| {
                Ok(QueuedTransfer {
                    command_key: s.text_or("CommandKey"),
                    state: s.num("State")?,
                    ..QueuedTransfer::default()
                })
            })
            .map(|list| CpeResponse::GetQueuedTransfers { list }),
        "GetAllQueuedTransfersResponse" => a
            .list("TransferList", |s| {
                Ok(QueuedTransfer {
                    command_key: s.text_or("CommandKey"),
                    state: s.num("State")?,
                    is_download: s.bool("IsDownload")?,
                    file_type: s.token("FileType")?,
                    file_size: s.num_or("FileSize", 0)?,
                    target_file_name: s.token_or("TargetFileName"),
                })
            })
            .map(|list| CpeResponse::GetAllQueuedTransfers { list }),
        "ScheduleDownloadResponse" => Ok(CpeResponse::ScheduleDownload),
        "CancelTransferResponse" => Ok(CpeResponse::CancelTransfer),
        "ChangeDUStateResponse" => Ok(CpeResponse::ChangeDuState),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpe_envelope(header: &str, body: &str) -> Vec<u8> {
        format!(
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\">\
             <SOAP-ENV:Header>{header}</SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body>\
             </SOAP-ENV:Envelope>"
        )
        .into_bytes()
    }

    #[test]
    fn lenient_with_cpes_too() {
        let env = parse_cpe(
            &cpe_envelope(
                "<x:Trace xmlns:x=\"urn:x\" SOAP-ENV:mustUnderstand=\"1\">1</x:Trace>",
                "<cwmp:UploadResponse><Status>0</Status></cwmp:UploadResponse>",
            ),
            &Limits::default(),
        )
        .unwrap();
        // The ACS side keeps an unknown mustUnderstand header for its caller to judge.
        assert_eq!(
            env.header.unknown_must_understand,
            vec!["Trace".to_string()]
        );
        assert_eq!(
            env.body,
            CpeMessage::Response(CpeResponse::Upload {
                status: 0,
                start_time: UNKNOWN_TIME.into(),
                complete_time: UNKNOWN_TIME.into(),
            })
        );
    }

    #[test]
    fn fault_strings_back_into_faults() {
        let f = |code: u32, s: &str| {
            cpe_fault(SoapFault {
                code,
                string: s.into(),
                params: vec![],
            })
        };
        assert_eq!(
            f(9005, "Invalid parameter name"),
            Fault::InvalidParameterName(String::new())
        );
        assert_eq!(
            f(9005, "Invalid parameter name: Device.X"),
            Fault::InvalidParameterName("Device.X".into())
        );
        // A vendor's own wording is kept whole.
        assert_eq!(
            f(9001, "Denied by policy"),
            Fault::RequestDenied("Denied by policy".into())
        );
        assert_eq!(
            f(9002, "Internal errors galore"),
            Fault::InternalError("Internal errors galore".into())
        );
    }

    #[test]
    fn acs_fault_codes() {
        let text = |code| {
            String::from_utf8(emit_acs_fault(
                CwmpNs::V1_0,
                None,
                &AcsFault {
                    code,
                    string: "x".into(),
                },
            ))
            .unwrap()
        };
        assert!(text(8003).contains("<faultcode>Client</faultcode>"));
        assert!(text(8005).contains("<faultcode>Server</faultcode><faultstring>CWMP fault"));
        assert!(text(8005).contains("<cwmp:Fault><FaultCode>8005</FaultCode><FaultString>x<"));
    }

    #[test]
    fn acs_headers() {
        let h = Header {
            id: Some("1".into()),
            hold_requests: Some(false),
            use_version: Some("1.4".into()),
            // Never sent by an ACS.
            session_timeout: Some(30),
            supported_versions: Some("1.4".into()),
            unknown_must_understand: vec![],
        };
        let t = String::from_utf8(emit_acs_response(
            CwmpNs::V1_2,
            &h,
            &AcsResponse::Inform { max_envelopes: 1 },
        ))
        .unwrap();
        assert!(
            t.contains("<cwmp:HoldRequests SOAP-ENV:mustUnderstand=\"1\">0</cwmp:HoldRequests>")
        );
        assert!(t.contains(
            "<cwmp:UseCWMPVersion SOAP-ENV:mustUnderstand=\"1\">1.4</cwmp:UseCWMPVersion>"
        ));
        assert!(!t.contains("SessionTimeout") && !t.contains("SupportedCWMPVersions"));
        assert!(
            t.contains("<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>")
        );
    }
}
