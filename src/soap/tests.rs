//! The codec's round trips and tolerances, over every message and namespace.

use super::acs::{self, CpeMessage};
use super::*;
use crate::cwmp::fault::{AcsFault, Fault, ParamFault};
use crate::cwmp::value::BaseType;
use crate::cwmp::value::{
    ParameterAttribute, ParameterInfo, ParameterValue, ParameterValues, SetAttributes, SetValue,
    XsiType,
};

const ALL_NS: [CwmpNs; 5] = [
    CwmpNs::V1_0,
    CwmpNs::V1_1,
    CwmpNs::V1_2,
    CwmpNs::V1_3,
    CwmpNs::V1_4,
];

/// A string with every character that needs escaping, non-ASCII and edge whitespace.
const NASTY: &str = " a&b<c>d\"e'f\r\ng\t中€ ";

fn lim() -> Limits {
    Limits::default()
}

fn header(id: &str) -> Header {
    Header {
        id: Some(id.to_string()),
        ..Header::default()
    }
}

fn acs_requests() -> Vec<AcsRequest> {
    vec![
        AcsRequest::GetRpcMethods,
        AcsRequest::GetParameterNames {
            path: "Device.".into(),
            next_level: true,
        },
        AcsRequest::GetParameterNames {
            path: String::new(),
            next_level: false,
        },
        AcsRequest::GetParameterValues {
            names: vec!["Device.DeviceInfo.".into(), "Device.Time.Enable".into()],
        },
        AcsRequest::GetParameterValues { names: vec![] },
        AcsRequest::SetParameterValues {
            list: vec![
                SetValue {
                    name: "Device.X.S".into(),
                    value: NASTY.into(),
                    xsi_type: Some(XsiType::Known(BaseType::String)),
                },
                SetValue {
                    name: "Device.X.U".into(),
                    value: "42".into(),
                    xsi_type: Some(XsiType::Known(BaseType::UnsignedInt)),
                },
                SetValue {
                    name: "Device.X.B".into(),
                    value: "true".into(),
                    xsi_type: None,
                },
                SetValue {
                    name: "Device.X.Q".into(),
                    value: String::new(),
                    xsi_type: Some(XsiType::Unknown("xsd:anyURI".into())),
                },
            ],
            parameter_key: NASTY.into(),
        },
        AcsRequest::GetParameterAttributes {
            names: vec!["Device.ManagementServer.".into()],
        },
        AcsRequest::SetParameterAttributes {
            list: vec![
                SetAttributes {
                    name: "Device.A".into(),
                    notification_change: true,
                    notification: 2,
                    access_list_change: true,
                    access_list: vec!["Subscriber".into()],
                },
                SetAttributes {
                    name: "Device.B".into(),
                    notification_change: false,
                    notification: 0,
                    access_list_change: false,
                    access_list: vec![],
                },
            ],
        },
        AcsRequest::AddObject {
            object_name: "Device.NAT.PortMapping.".into(),
            parameter_key: "k1".into(),
        },
        AcsRequest::DeleteObject {
            object_name: "Device.NAT.PortMapping.3.".into(),
            parameter_key: String::new(),
        },
        AcsRequest::Reboot {
            command_key: NASTY.into(),
        },
        AcsRequest::Download(Download {
            command_key: "dl".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://h/f?a=1&b=2".into(),
            username: "u".into(),
            password: "p&".into(),
            file_size: 3_493_888,
            target_file_name: "fw.bin".into(),
            delay_seconds: 5,
            success_url: "http://ok".into(),
            failure_url: "http://ko".into(),
        }),
        AcsRequest::Upload(Upload {
            command_key: "up".into(),
            file_type: "4 Vendor Log File".into(),
            url: "http://h/up".into(),
            username: String::new(),
            password: String::new(),
            delay_seconds: 0,
        }),
        AcsRequest::FactoryReset,
        AcsRequest::ScheduleInform {
            delay_seconds: 30,
            command_key: "si".into(),
        },
        AcsRequest::GetQueuedTransfers,
        AcsRequest::GetAllQueuedTransfers,
        AcsRequest::ScheduleDownload(ScheduleDownload {
            command_key: "sd".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://h/fw".into(),
            username: String::new(),
            password: String::new(),
            file_size: 10,
            target_file_name: String::new(),
            time_windows: vec![
                TimeWindow {
                    window_start: 0,
                    window_end: 3600,
                    window_mode: "1 At Any Time".into(),
                    user_message: "now".into(),
                    max_retries: -1,
                },
                TimeWindow {
                    window_start: 3600,
                    window_end: 7200,
                    window_mode: "2 Immediately".into(),
                    user_message: String::new(),
                    max_retries: 3,
                },
            ],
        }),
        AcsRequest::CancelTransfer {
            command_key: "dl".into(),
        },
        AcsRequest::ChangeDuState {
            operations: vec![
                DuOperation::Install {
                    url: "http://h/du.ipk".into(),
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    username: "u".into(),
                    password: "p".into(),
                    execution_env_ref: "Device.SoftwareModules.ExecEnv.1".into(),
                },
                DuOperation::Update {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "2.0".into(),
                    url: "http://h/du2.ipk".into(),
                    username: String::new(),
                    password: String::new(),
                },
                DuOperation::Uninstall {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "1.0".into(),
                    execution_env_ref: String::new(),
                },
            ],
            command_key: "du".into(),
        },
    ]
}

fn acs_responses() -> Vec<AcsResponse> {
    vec![
        AcsResponse::Inform { max_envelopes: 1 },
        AcsResponse::TransferComplete,
        AcsResponse::AutonomousTransferComplete,
        AcsResponse::RequestDownload,
        AcsResponse::GetRpcMethods {
            methods: vec!["Inform".into(), "TransferComplete".into()],
        },
        AcsResponse::Kicked {
            next_url: "http://h/next?a&b".into(),
        },
        AcsResponse::DuStateChangeComplete,
        AcsResponse::AutonomousDuStateChangeComplete,
    ]
}

fn cpe_requests() -> Vec<CpeRequest> {
    vec![
        CpeRequest::Inform(Inform {
            device_id: DeviceId {
                manufacturer: "ACME & Sons".into(),
                oui: "00D0F8".into(),
                product_class: "Router<1>".into(),
                serial_number: "SN-1".into(),
            },
            events: vec![
                EventStruct {
                    code: "0 BOOTSTRAP".into(),
                    command_key: String::new(),
                },
                EventStruct {
                    code: "M Reboot".into(),
                    command_key: NASTY.into(),
                },
            ],
            max_envelopes: 1,
            current_time: "2026-11-21T05:50:00+01:00".into(),
            retry_count: 3,
            parameters: vec![
                ParameterValue {
                    name: "Device.DeviceInfo.SoftwareVersion".into(),
                    value: NASTY.into(),
                    ty: BaseType::String,
                },
                ParameterValue {
                    name: "Device.DeviceInfo.UpTime".into(),
                    value: "12".into(),
                    ty: BaseType::UnsignedInt,
                },
            ],
        }),
        CpeRequest::TransferComplete {
            command_key: "dl".into(),
            fault: FaultStruct {
                code: 9010,
                string: "File transfer failure".into(),
            },
            start_time: "2026-11-21T05:50:00Z".into(),
            complete_time: "2026-11-21T05:51:00Z".into(),
        },
        CpeRequest::AutonomousTransferComplete {
            announce_url: String::new(),
            transfer_url: "http://h/f".into(),
            is_download: true,
            file_type: "3 Vendor Configuration File".into(),
            file_size: 7,
            target_file_name: "c.xml".into(),
            fault: FaultStruct::default(),
            start_time: "2026-11-21T05:50:00Z".into(),
            complete_time: "2026-11-21T05:51:00Z".into(),
        },
        CpeRequest::RequestDownload {
            file_type: "2 Web Content".into(),
            args: vec![("Version".into(), "1.0 & up".into())],
        },
        CpeRequest::Kicked {
            command: "cmd".into(),
            referer: "http://r".into(),
            arg: "a<b".into(),
            next: "http://n".into(),
        },
        CpeRequest::GetRpcMethods,
    ]
}

fn cpe_responses() -> Vec<CpeResponse> {
    let transfer = QueuedTransfer {
        command_key: "dl".into(),
        state: 2,
        is_download: true,
        file_type: "1 Firmware Upgrade Image".into(),
        file_size: 1024,
        target_file_name: "fw.bin".into(),
    };
    vec![
        CpeResponse::GetRpcMethods {
            methods: vec!["GetRPCMethods".into(), "Reboot".into()],
        },
        CpeResponse::GetParameterNames {
            list: vec![
                ParameterInfo {
                    name: "Device.".into(),
                    writable: false,
                },
                ParameterInfo {
                    name: "Device.NAT.PortMapping.".into(),
                    writable: true,
                },
            ],
        },
        CpeResponse::GetParameterValues {
            list: [
                BaseType::String,
                BaseType::Int,
                BaseType::UnsignedInt,
                BaseType::Long,
                BaseType::UnsignedLong,
                BaseType::Boolean,
                BaseType::DateTime,
                BaseType::Base64,
                BaseType::HexBinary,
                BaseType::Decimal,
            ]
            .into_iter()
            .enumerate()
            .map(|(i, ty)| ParameterValue {
                name: format!("Device.X.P{i}"),
                value: if i == 0 { NASTY.into() } else { i.to_string() },
                ty,
            })
            .collect(),
        },
        CpeResponse::GetParameterValues {
            list: ParameterValues::new(),
        },
        CpeResponse::SetParameterValues { status: 1 },
        CpeResponse::GetParameterAttributes {
            list: vec![ParameterAttribute {
                name: "Device.A".into(),
                notification: 2,
                access_list: vec!["Subscriber".into()],
            }],
        },
        CpeResponse::SetParameterAttributes,
        CpeResponse::AddObject {
            instance_number: 7,
            status: 0,
        },
        CpeResponse::DeleteObject { status: 0 },
        CpeResponse::Reboot,
        CpeResponse::Download {
            status: 1,
            start_time: "0001-01-01T00:00:00Z".into(),
            complete_time: "0001-01-01T00:00:00Z".into(),
        },
        CpeResponse::Upload {
            status: 0,
            start_time: "2026-11-21T05:50:00Z".into(),
            complete_time: "2026-11-21T05:51:00Z".into(),
        },
        CpeResponse::FactoryReset,
        CpeResponse::ScheduleInform,
        CpeResponse::GetQueuedTransfers {
            list: vec![QueuedTransfer {
                command_key: "dl".into(),
                state: 1,
                ..QueuedTransfer::default()
            }],
        },
        CpeResponse::GetAllQueuedTransfers {
            list: vec![transfer],
        },
        CpeResponse::ScheduleDownload,
        CpeResponse::CancelTransfer,
        CpeResponse::ChangeDuState,
        CpeResponse::Fault(Fault::MethodNotSupported(String::new())),
        CpeResponse::Fault(Fault::InternalError("disk full".into())),
        CpeResponse::Fault(Fault::InvalidArguments(
            String::new(),
            vec![
                ParamFault {
                    name: "Device.X.A".into(),
                    fault: Fault::InvalidParameterValue("not a number".into()),
                },
                ParamFault {
                    name: "Device.X.B".into(),
                    fault: Fault::NonWritableParameter(String::new()),
                },
            ],
        )),
        CpeResponse::Fault(Fault::Transfer(9021, NASTY.into())),
    ]
}

#[test]
fn every_acs_request_round_trips() {
    for ns in ALL_NS {
        for req in acs_requests() {
            let mut h = header("id&1");
            h.hold_requests = Some(true);
            let bytes = acs::emit_acs_request(ns, &h, &req);
            let env = parse_acs(&bytes, &lim()).unwrap_or_else(|e| panic!("{req:?}: {e:?}"));
            assert_eq!(env.ns, ns);
            assert_eq!(env.header, h);
            assert_eq!(env.body, AcsMessage::Request(req));
        }
    }
}

#[test]
fn every_acs_response_and_fault_round_trips() {
    let mut h = header("7");
    h.use_version = Some("1.4".into());
    for resp in acs_responses() {
        let bytes = acs::emit_acs_response(CwmpNs::V1_2, &h, &resp);
        let env = parse_acs(&bytes, &lim()).unwrap();
        assert_eq!(env.header, h);
        assert_eq!(env.body, AcsMessage::Response(resp));
    }
    for code in 8000..=8006 {
        let f = AcsFault {
            code,
            string: format!("fault {code} & more"),
        };
        let bytes = acs::emit_acs_fault(CwmpNs::V1_0, Some("9"), &f);
        let env = parse_acs(&bytes, &lim()).unwrap();
        assert_eq!(env.header.id.as_deref(), Some("9"));
        assert_eq!(env.body, AcsMessage::Fault(f));
    }
}

#[test]
fn every_cpe_message_round_trips() {
    let mut h = header("cpe-1");
    h.session_timeout = Some(60);
    h.supported_versions = Some("1.0,1.1,1.2,1.3,1.4".into());
    for req in cpe_requests() {
        let bytes = emit_request(CwmpNs::V1_2, &h, &req);
        let env = acs::parse_cpe(&bytes, &lim()).unwrap_or_else(|e| panic!("{req:?}: {e:?}"));
        assert_eq!(env.header, h);
        assert_eq!(env.body, CpeMessage::Request(req));
    }
    for resp in cpe_responses() {
        let bytes = emit_response(CwmpNs::V1_1, Some("acs-1"), &resp);
        let env = acs::parse_cpe(&bytes, &lim()).unwrap_or_else(|e| panic!("{resp:?}: {e:?}"));
        assert_eq!(env.ns, CwmpNs::V1_1);
        assert_eq!(env.header, header("acs-1"));
        assert_eq!(env.body, CpeMessage::Response(resp));
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn emitted_arrays_types_and_faults() {
    let out: Vec<String> = cpe_responses()
        .iter()
        .map(|r| text(emit_response(CwmpNs::V1_0, Some("1"), r)))
        .collect();
    let all = out.join("\n");
    for needle in [
        "SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[10]\"",
        "SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[0]\"",
        "SOAP-ENC:arrayType=\"cwmp:ParameterInfoStruct[2]\"",
        "SOAP-ENC:arrayType=\"cwmp:ParameterAttributeStruct[1]\"",
        "<AccessList SOAP-ENC:arrayType=\"xsd:string[1]\"><string>Subscriber</string>",
        "<MethodList SOAP-ENC:arrayType=\"xsd:string[2]\">",
        "SOAP-ENC:arrayType=\"cwmp:QueuedTransferStruct[1]\"",
        "SOAP-ENC:arrayType=\"cwmp:AllQueuedTransferStruct[1]\"",
        "<Value xsi:type=\"xsd:base64Binary\">7</Value>",
        "<Value xsi:type=\"xsd:unsignedLong\">4</Value>",
        "<Writable>1</Writable>",
        "<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">1</cwmp:ID>",
        "<cwmp:RebootResponse/>",
        "<faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString><SetParameterValuesFault><ParameterName>Device.X.A</ParameterName><FaultCode>9007</FaultCode><FaultString>Invalid parameter value: not a number</FaultString></SetParameterValuesFault>",
        "<faultcode>Server</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9002</FaultCode>",
        "a&amp;b&lt;c&gt;d&quot;e&apos;f&#xD;\ng\t中€ ",
    ] {
        assert!(all.contains(needle), "missing {needle}");
    }
    let reqs: Vec<String> = cpe_requests()
        .iter()
        .map(|r| text(emit_request(CwmpNs::V1_0, &header("2"), r)))
        .collect();
    let all = reqs.join("\n");
    for needle in [
        "<Event SOAP-ENC:arrayType=\"cwmp:EventStruct[2]\">",
        "<ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[2]\">",
        "<FileTypeArg SOAP-ENC:arrayType=\"cwmp:ArgStruct[1]\">",
        "<cwmp:GetRPCMethods/>",
    ] {
        assert!(all.contains(needle), "missing {needle}");
    }
    assert!(!all.contains("HoldRequests"));
}

#[test]
fn session_headers_only_where_set() {
    let inform = &cpe_requests()[0];
    let plain = text(emit_request(CwmpNs::V1_0, &header("1"), inform));
    assert!(!plain.contains("SessionTimeout") && !plain.contains("SupportedCWMPVersions"));
    let h = Header {
        id: Some("1".into()),
        session_timeout: Some(30),
        supported_versions: Some("1.0,1.1,1.2,1.3,1.4".into()),
        // Never sent by a CPE.
        hold_requests: Some(true),
        use_version: Some("1.4".into()),
        unknown_must_understand: vec![],
    };
    let t = text(emit_request(CwmpNs::V1_2, &h, inform));
    assert!(t.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\""));
    assert!(
        t.contains("<cwmp:SessionTimeout SOAP-ENV:mustUnderstand=\"0\">30</cwmp:SessionTimeout>")
    );
    assert!(t.contains(
        "<cwmp:SupportedCWMPVersions SOAP-ENV:mustUnderstand=\"0\">1.0,1.1,1.2,1.3,1.4</cwmp:SupportedCWMPVersions>"
    ));
    assert!(!t.contains("HoldRequests") && !t.contains("UseCWMPVersion"));
    let no_id = text(emit_response(CwmpNs::V1_0, None, &CpeResponse::Reboot));
    assert!(!no_id.contains("Header"));
}

fn envelope(header: &str, body: &str) -> Vec<u8> {
    format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:SOAP-ENC=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
    .into_bytes()
}

fn request(body: &str) -> AcsRequest {
    match parse_acs(&envelope("", body), &lim()).map(|e| e.body) {
        Ok(AcsMessage::Request(r)) => r,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn namespaces_and_prefixes_are_free() {
    let default_ns = b"<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">\
        <Header><ID xmlns=\"urn:dslforum-org:cwmp-1-1\" mustUnderstand=\"1\">5</ID></Header>\
        <Body><GetParameterNames xmlns=\"urn:dslforum-org:cwmp-1-1\">\
        <ParameterPath>Device.</ParameterPath><NextLevel>true</NextLevel>\
        </GetParameterNames></Body></Envelope>";
    let env = parse_acs(default_ns, &lim()).unwrap();
    assert_eq!(env.ns, CwmpNs::V1_1);
    assert_eq!(env.header.id.as_deref(), Some("5"));
    assert_eq!(
        env.body,
        AcsMessage::Request(AcsRequest::GetParameterNames {
            path: "Device.".into(),
            next_level: true
        })
    );
    let odd = b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" \
        xmlns:c=\"urn:dslforum-org:cwmp-1-4\"><e:Body><c:Reboot><c:CommandKey>k</c:CommandKey>\
        </c:Reboot></e:Body></e:Envelope>";
    let env = parse_acs(odd, &lim()).unwrap();
    assert_eq!(env.ns, CwmpNs::V1_4);
    assert_eq!(
        env.body,
        AcsMessage::Request(AcsRequest::Reboot {
            command_key: "k".into()
        })
    );
    // An element in a foreign namespace is not a CWMP RPC, whatever its name.
    let foreign = envelope("", "<x:Reboot xmlns:x=\"urn:example\"/>");
    assert!(matches!(
        parse_acs(&foreign, &lim()),
        Err(ParseError::UnknownMethod { method, .. }) if method == "Reboot"
    ));
}

#[test]
fn header_tolerance_and_must_understand() {
    let h = "<cwmp:HoldRequests soap:mustunderstand=\"1\"> true </cwmp:HoldRequests>\
             <!-- any order --><cwmp:ID soap:MUSTUNDERSTAND=\"1\">\n abc \n</cwmp:ID>\
             <cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>\
             <x:Trace xmlns:x=\"urn:x\" soap:mustUnderstand=\"0\">ignored</x:Trace>";
    let env = parse_acs(&envelope(h, ""), &lim()).unwrap();
    assert_eq!(env.header.id.as_deref(), Some("abc"));
    assert_eq!(env.header.hold_requests, Some(true));
    assert_eq!(env.body, AcsMessage::Empty);
    let h = "<cwmp:ID soap:mustUnderstand=\"1\">9</cwmp:ID>\
             <x:Billing xmlns:x=\"urn:x\" soap:mustunderstand=\"1\">1</x:Billing>";
    assert_eq!(
        parse_acs(&envelope(h, "<cwmp:GetRPCMethods/>"), &lim()),
        Err(ParseError::MustUnderstand {
            id: Some("9".into()),
            ns: CwmpNs::V1_0,
            element: "Billing".into()
        })
    );
}

#[test]
fn arrays_without_array_type_and_lying_counts() {
    let r = request(
        "<cwmp:GetParameterValues><ParameterNames SOAP-ENC:arrayType=\"xsd:string[4000000000]\">\
         <string> Device.A </string><!-- c --><xsd:string>Device.B</xsd:string>\
         </ParameterNames></cwmp:GetParameterValues>",
    );
    assert_eq!(
        r,
        AcsRequest::GetParameterValues {
            names: vec!["Device.A".into(), "Device.B".into()]
        }
    );
    let r = request(
        "<cwmp:SetParameterValues><ParameterList>\
         <ParameterValueStruct><Name>Device.A</Name><Value> x </Value></ParameterValueStruct>\
         <ParameterValueStruct><Name>Device.B</Name><Value xsi:type=\"xsd:int\">-1</Value>\
         </ParameterValueStruct><ParameterValueStruct><Name>Device.C</Name>\
         <Value xsi:type=\"xsd:duration\">P1D</Value></ParameterValueStruct>\
         </ParameterList></cwmp:SetParameterValues>",
    );
    let AcsRequest::SetParameterValues {
        list,
        parameter_key,
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(parameter_key, "");
    assert_eq!(list[0].value, " x ");
    assert_eq!(list[0].xsi_type, None);
    assert_eq!(list[1].xsi_type, Some(XsiType::Known(BaseType::Int)));
    assert_eq!(
        list[2].xsi_type,
        Some(XsiType::Unknown("xsd:duration".into()))
    );
}

#[test]
fn unknown_and_malformed_rpcs() {
    let h = "<cwmp:ID soap:mustUnderstand=\"1\">77</cwmp:ID>";
    assert_eq!(
        parse_acs(&envelope(h, "<cwmp:SetVouchers/>"), &lim()),
        Err(ParseError::UnknownMethod {
            id: Some("77".into()),
            ns: CwmpNs::V1_0,
            method: "SetVouchers".into()
        })
    );
    for (body, detail) in [
        (
            "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath>\
             <NextLevel>maybe</NextLevel></cwmp:GetParameterNames>",
            "NextLevel: \"maybe\" is not a boolean",
        ),
        (
            "<cwmp:AddObject><ParameterKey/></cwmp:AddObject>",
            "missing argument ObjectName",
        ),
        (
            "<cwmp:ScheduleInform><DelaySeconds>-5</DelaySeconds></cwmp:ScheduleInform>",
            "DelaySeconds: \"-5\" is not a valid number",
        ),
        (
            "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>A</Name>\
             </ParameterValueStruct></ParameterList></cwmp:SetParameterValues>",
            "ParameterValueStruct without a Value",
        ),
    ] {
        match parse_acs(&envelope(h, body), &lim()) {
            Err(ParseError::BadArguments { id, detail: d, .. }) => {
                assert_eq!(id.as_deref(), Some("77"));
                assert_eq!(d, detail);
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    for bad in [
        &b"not xml"[..],
        b"<a/>",
        b"<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
        b"<Envelope><Body><GetRPCMethods></Body></Envelope>",
    ] {
        assert!(
            matches!(parse_acs(bad, &lim()), Err(ParseError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn lenient_where_harmless() {
    let r = request(
        "<cwmp:Download><FileType>3 Vendor configuration File</FileType>\
         <URL> http://h/c </URL><FileSize> 12 </FileSize><Description/></cwmp:Download>",
    );
    assert_eq!(
        r,
        AcsRequest::Download(Download {
            file_type: "3 Vendor configuration File".into(),
            url: "http://h/c".into(),
            file_size: 12,
            ..Download::default()
        })
    );
    let r = request(
        "<cwmp:SetParameterAttributes><ParameterList><SetParameterAttributesStruct>\
         <Name>Device.A</Name><NotificationChange>false</NotificationChange>\
         <AccessListChange>0</AccessListChange></SetParameterAttributesStruct>\
         </ParameterList></cwmp:SetParameterAttributes>",
    );
    assert_eq!(
        r,
        AcsRequest::SetParameterAttributes {
            list: vec![SetAttributes {
                name: "Device.A".into(),
                notification_change: false,
                notification: 0,
                access_list_change: false,
                access_list: vec![],
            }]
        }
    );
    // The layout of ChangeDUState some implementations write.
    let r = request(
        "<cwmp:ChangeDUState><CommandKey>k</CommandKey><Operations><UninstallOpStruct>\
         <UUID>u</UUID></UninstallOpStruct></Operations></cwmp:ChangeDUState>",
    );
    assert_eq!(
        r,
        AcsRequest::ChangeDuState {
            operations: vec![DuOperation::Uninstall {
                uuid: "u".into(),
                version: String::new(),
                execution_env_ref: String::new()
            }],
            command_key: "k".into()
        }
    );
}

/// Every truncation and many single-byte corruptions of real envelopes parse to a value or an
/// error, never a panic.
#[test]
fn damaged_input_never_panics() {
    let samples: Vec<Vec<u8>> = acs_requests()
        .iter()
        .take(6)
        .map(|r| acs::emit_acs_request(CwmpNs::V1_0, &header("1"), r))
        .collect();
    for s in &samples {
        for cut in 0..s.len() {
            let _ = parse_acs(&s[..cut], &lim());
            let _ = acs::parse_cpe(&s[..cut], &lim());
        }
        for i in (0..s.len()).step_by(3) {
            for b in [b'<', b'>', b'/', b'"', 0xff, b'&', b'x'] {
                let mut m = s.clone();
                m[i] = b;
                let _ = parse_acs(&m, &lim());
            }
        }
    }
}
