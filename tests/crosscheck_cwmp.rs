//! Cross-check of our SOAP codec (TR-069 Annex A) against an independent implementation, the
//! `cwmp` crate (0.2, a dev-dependency): everything we emit must parse with it to the same
//! content, and the ACS messages it generates must parse with ours to the same content.
//!
//! Where `cwmp` is wrong or limited we say so here rather than bend our output:
//! - Its Fault has no SetParameterValuesFault list: only FaultCode/FaultString are compared.
//! - It keeps `Writable`, `IsDownload` and the SetParameterAttributes booleans as integers
//!   (`"true"` would read as 0): we write booleans as `1`/`0`, which every reader accepts.
//! - It writes ChangeDUState as one `<Operations>` wrapping `<InstallOpStruct>`… elements,
//!   with CommandKey first, instead of one `<Operations xsi:type="cwmp:InstallOpStruct">` per
//!   operation (§A.4.1.10); we read both. Its UninstallOpStruct has a URL that the schema lacks (we ignore it).
//! - It writes SetParameterValues' ParameterKey before the ParameterList, against the schema's
//!   order; we match arguments by name, so the order does not matter to us.
//! - Its `mustUnderstand` attribute is unqualified; ours reads any spelling.
//! - It keeps dateTimes as `chrono::DateTime<Utc>` (offsets folded into UTC), so times are
//!   compared as instants; its AddObjectResponse parser `unwrap`s the InstanceNumber.

use cwmp::protocol as cw;
use cwmpd::cwmp::fault::{AcsFault, Fault, ParamFault};
use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::value::{
    ParameterAttribute, ParameterInfo, ParameterValue, SetAttributes, SetValue, XsiType,
};
use cwmpd::cwmp::version::CwmpNs;
use cwmpd::soap::acs::{self, CpeMessage};
use cwmpd::soap::*;

/// The cwmp version `cwmp` derives from our namespace URN.
fn cw_version(ns: CwmpNs) -> cw::CwmpVersion {
    let urn = ns.urn();
    let minor = urn
        .rsplit('-')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    cw::CwmpVersion::new(1, minor)
}

fn s(x: &str) -> String {
    x.to_string()
}

/// Parses what we emitted with `cwmp` and compares it with what we meant.
fn check(bytes: Vec<u8>, ns: CwmpNs, header: Vec<cw::HeaderElement>, body: cw::BodyElement) {
    let text = String::from_utf8(bytes).expect("UTF-8");
    let parsed = cwmp::parse_bytes(text.as_bytes())
        .unwrap_or_else(|e| panic!("cwmp cannot parse our envelope: {e}\n{text}"));
    let want = cw::Envelope::new(Some(cw_version(ns)), header, vec![body]);
    assert_eq!(parsed, want, "\n{text}");
}

fn id(id: &str) -> Vec<cw::HeaderElement> {
    vec![cw::HeaderElement::ID(cw::ID::new(true, s(id)))]
}

const NASTY: &str = "a&b<c>d\"e'f 中€";
const T1: &str = "2026-11-21T05:50:00+01:00";
const T2: &str = "2026-11-21T05:51:30Z";

fn values() -> Vec<ParameterValue> {
    [
        (BaseType::String, NASTY),
        (BaseType::UnsignedInt, "42"),
        (BaseType::Boolean, "true"),
        (BaseType::DateTime, "2026-11-21T05:50:00Z"),
        (BaseType::Int, "-7"),
        (BaseType::Base64, "Y3dtcGQ="),
        (BaseType::HexBinary, "0aff"),
        (BaseType::UnsignedLong, "18446744073709551615"),
        (BaseType::Long, "-9"),
        (BaseType::Decimal, "1.5"),
        (BaseType::String, ""),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (ty, v))| ParameterValue {
        name: format!("Device.X.{i}.{}", ty.name()),
        value: s(v),
        ty,
    })
    .collect()
}

fn cw_values(list: &[ParameterValue]) -> Vec<cw::ParameterValue> {
    list.iter()
        .map(|p| cw::ParameterValue::new(p.name.clone(), s(p.ty.xsi_type()), p.value.clone()))
        .collect()
}

#[test]
fn our_requests_parse_with_cwmp() {
    for ns in [CwmpNs::V1_0, CwmpNs::V1_2] {
        let inform = Inform {
            device_id: DeviceId {
                manufacturer: s("ACME & Sons"),
                oui: s("001122"),
                product_class: s("Router<1>"),
                serial_number: s("SN-1"),
            },
            events: vec![
                EventStruct {
                    code: s("1 BOOT"),
                    command_key: String::new(),
                },
                EventStruct {
                    code: s("M Download"),
                    command_key: s(NASTY),
                },
            ],
            max_envelopes: 1,
            current_time: s(T1),
            retry_count: 3,
            parameters: values(),
        };
        let header = Header {
            id: Some(s("1")),
            session_timeout: Some(60),
            supported_versions: Some(s("1.0,1.1,1.2,1.3,1.4")),
            ..Header::default()
        };
        let bytes = emit_request(ns, &header, &CpeRequest::Inform(inform.clone()));
        let mut cw_header = id("1");
        cw_header.push(cw::HeaderElement::SessionTimeout(cw::SessionTimeout::new(
            false, 60,
        )));
        cw_header.push(cw::HeaderElement::SupportedCWMPVersions(
            cw::SupportedCWMPVersions::new(false, s("1.0,1.1,1.2,1.3,1.4")),
        ));
        let d = &inform.device_id;
        check(
            bytes,
            ns,
            cw_header,
            cw::BodyElement::Inform(cw::Inform::new(
                cw::DeviceId::new(
                    d.manufacturer.clone(),
                    d.oui.clone(),
                    d.product_class.clone(),
                    d.serial_number.clone(),
                ),
                inform
                    .events
                    .iter()
                    .map(|e| cw::EventStruct::new(e.code.clone(), e.command_key.clone()))
                    .collect(),
                1,
                T1.parse().expect("a dateTime"),
                3,
                cw_values(&inform.parameters),
            )),
        );

        let tc = CpeRequest::TransferComplete {
            command_key: s("fw&1"),
            fault: FaultStruct {
                code: 9010,
                string: s("File transfer failure"),
            },
            start_time: s(T1),
            complete_time: s(T2),
        };
        check(
            emit_request(ns, &header_id("2"), &tc),
            ns,
            id("2"),
            cw::BodyElement::TransferComplete(cw::TransferComplete::new(
                s("fw&1"),
                cw::FaultStruct::new(9010, s("File transfer failure")),
                T1.parse().ok(),
                T2.parse().ok(),
            )),
        );

        let atc = CpeRequest::AutonomousTransferComplete {
            announce_url: s("http://a"),
            transfer_url: s("http://t?x=1&y=2"),
            is_download: true,
            file_type: s("1 Firmware Upgrade Image"),
            file_size: 4096,
            target_file_name: s("fw.bin"),
            fault: FaultStruct::default(),
            start_time: s(T1),
            complete_time: s(T2),
        };
        check(
            emit_request(ns, &header_id("3"), &atc),
            ns,
            id("3"),
            cw::BodyElement::AutonomousTransferComplete(cw::AutonomousTransferComplete::new(
                s("http://a"),
                s("http://t?x=1&y=2"),
                1,
                s("1 Firmware Upgrade Image"),
                4096,
                s("fw.bin"),
                cw::FaultStruct::new(0, String::new()),
                T1.parse().expect("a dateTime"),
                T2.parse().expect("a dateTime"),
            )),
        );

        let rd = CpeRequest::RequestDownload {
            file_type: s("1 Firmware Upgrade Image"),
            args: vec![(s("Version"), s("2.0 & up"))],
        };
        check(
            emit_request(ns, &header_id("4"), &rd),
            ns,
            id("4"),
            cw::BodyElement::RequestDownload(cw::RequestDownload::new(
                s("1 Firmware Upgrade Image"),
                vec![cw::ArgStruct::new(s("Version"), s("2.0 & up"))],
            )),
        );

        let kicked = CpeRequest::Kicked {
            command: s("c"),
            referer: s("http://r"),
            arg: s("a<b"),
            next: s("http://n"),
        };
        check(
            emit_request(ns, &header_id("5"), &kicked),
            ns,
            id("5"),
            cw::BodyElement::Kicked(cw::Kicked::new(
                s("c"),
                s("http://r"),
                s("a<b"),
                s("http://n"),
            )),
        );

        check(
            emit_request(ns, &header_id("6"), &CpeRequest::GetRpcMethods),
            ns,
            id("6"),
            cw::BodyElement::GetRPCMethods(cw::GetRPCMethods {}),
        );
    }
}

fn header_id(i: &str) -> Header {
    Header {
        id: Some(s(i)),
        ..Header::default()
    }
}

#[test]
fn our_responses_parse_with_cwmp() {
    let ns = CwmpNs::V1_0;
    let cases: Vec<(CpeResponse, cw::BodyElement)> = vec![
        (
            CpeResponse::GetRpcMethods {
                methods: vec![s("GetRPCMethods"), s("Reboot")],
            },
            cw::BodyElement::GetRPCMethodsResponse(cw::GetRPCMethodsResponse::new(vec![
                s("GetRPCMethods"),
                s("Reboot"),
            ])),
        ),
        (
            CpeResponse::GetParameterNames {
                list: vec![
                    ParameterInfo {
                        name: s("Device."),
                        writable: false,
                    },
                    ParameterInfo {
                        name: s("Device.NAT.PortMapping."),
                        writable: true,
                    },
                ],
            },
            cw::BodyElement::GetParameterNamesResponse(cw::GetParameterNamesResponse::new(vec![
                cw::ParameterInfoStruct::new(s("Device."), 0),
                cw::ParameterInfoStruct::new(s("Device.NAT.PortMapping."), 1),
            ])),
        ),
        (
            CpeResponse::GetParameterValues {
                list: values().into(),
            },
            cw::BodyElement::GetParameterValuesResponse(cw::GetParameterValuesResponse::new(
                cw_values(&values()),
            )),
        ),
        (
            CpeResponse::SetParameterValues { status: 1 },
            cw::BodyElement::SetParameterValuesResponse(cw::SetParameterValuesResponse::new(1)),
        ),
        (
            CpeResponse::GetParameterAttributes {
                list: vec![
                    ParameterAttribute {
                        name: s("Device.A"),
                        notification: 2,
                        access_list: vec![s("Subscriber")],
                    },
                    ParameterAttribute {
                        name: s("Device.B"),
                        notification: 0,
                        access_list: vec![],
                    },
                ],
            },
            cw::BodyElement::GetParameterAttributesResponse(
                cw::GetParameterAttributesResponse::new(vec![
                    cw::ParameterAttribute::new(s("Device.A"), s("2"), vec![s("Subscriber")]),
                    cw::ParameterAttribute::new(s("Device.B"), s("0"), vec![]),
                ]),
            ),
        ),
        (
            CpeResponse::SetParameterAttributes,
            cw::BodyElement::SetParameterAttributesResponse(cw::SetParameterAttributesResponse {}),
        ),
        (
            CpeResponse::AddObject {
                instance_number: 7,
                status: 0,
            },
            cw::BodyElement::AddObjectResponse(cw::AddObjectResponse::new(7, s("0"))),
        ),
        (
            CpeResponse::DeleteObject { status: 1 },
            cw::BodyElement::DeleteObjectResponse(cw::DeleteObjectResponse::new(s("1"))),
        ),
        (
            CpeResponse::Reboot,
            cw::BodyElement::RebootResponse(cw::RebootResponse {}),
        ),
        (
            CpeResponse::Download {
                status: 1,
                start_time: s("0001-01-01T00:00:00Z"),
                complete_time: s("0001-01-01T00:00:00Z"),
            },
            cw::BodyElement::DownloadResponse(cw::DownloadResponse::new(
                s("1"),
                "0001-01-01T00:00:00Z".parse().expect("a dateTime"),
                "0001-01-01T00:00:00Z".parse().expect("a dateTime"),
            )),
        ),
        (
            CpeResponse::Upload {
                status: 0,
                start_time: s(T1),
                complete_time: s(T2),
            },
            cw::BodyElement::UploadResponse(cw::UploadResponse::new(
                0,
                T1.parse().ok(),
                T2.parse().ok(),
            )),
        ),
        (
            CpeResponse::FactoryReset,
            cw::BodyElement::FactoryResetResponse(cw::FactoryResetResponse),
        ),
        (
            CpeResponse::ScheduleInform,
            cw::BodyElement::ScheduleInformResponse(cw::ScheduleInformResponse {}),
        ),
        (
            CpeResponse::GetQueuedTransfers {
                list: vec![QueuedTransfer {
                    command_key: s("dl"),
                    state: 2,
                    ..QueuedTransfer::default()
                }],
            },
            cw::BodyElement::GetQueuedTransfersResponse(cw::GetQueuedTransfersResponse::new(vec![
                cw::QueuedTransferStruct::new(Some(s("dl")), Some(s("2"))),
            ])),
        ),
        (
            CpeResponse::GetAllQueuedTransfers {
                list: vec![QueuedTransfer {
                    command_key: s("dl"),
                    state: 3,
                    is_download: true,
                    file_type: s("1 Firmware Upgrade Image"),
                    file_size: 1024,
                    target_file_name: s("fw.bin"),
                }],
            },
            cw::BodyElement::GetAllQueuedTransfersResponse(cw::GetAllQueuedTransfersResponse::new(
                vec![cw::AllQueuedTransfers::new(
                    s("dl"),
                    s("3"),
                    1,
                    s("1 Firmware Upgrade Image"),
                    1024,
                    s("fw.bin"),
                )],
            )),
        ),
        (
            CpeResponse::ScheduleDownload,
            cw::BodyElement::ScheduleDownloadResponse(cw::ScheduleDownloadResponse {}),
        ),
        (
            CpeResponse::CancelTransfer,
            cw::BodyElement::CancelTransferResponse(cw::CancelTransferResponse),
        ),
        (
            CpeResponse::ChangeDuState,
            cw::BodyElement::ChangeDUStateResponse(cw::ChangeDUStateResponse),
        ),
    ];
    for (ours, theirs) in cases {
        check(emit_response(ns, Some("r-1"), &ours), ns, id("r-1"), theirs);
    }
}

#[test]
fn our_faults_parse_with_cwmp() {
    let faults = [
        Fault::MethodNotSupported(s("SetVouchers")),
        Fault::InternalError(String::new()),
        Fault::InvalidArguments(
            String::new(),
            vec![ParamFault {
                name: s("Device.A"),
                fault: Fault::InvalidParameterValue(s("x")),
            }],
        ),
        Fault::Transfer(9021, s(NASTY)),
    ];
    for f in faults {
        let faultcode = match f.origin() {
            cwmpd::cwmp::fault::FaultOrigin::Client => "Client",
            cwmpd::cwmp::fault::FaultOrigin::Server => "Server",
        };
        // `cwmp` has no SetParameterValuesFault list (see the module doc).
        check(
            emit_response(CwmpNs::V1_2, Some("f"), &CpeResponse::Fault(f.clone())),
            CwmpNs::V1_2,
            id("f"),
            cw::BodyElement::Fault(cw::Fault::new(
                s(faultcode),
                s("CWMP fault"),
                f.code(),
                f.fault_string(),
            )),
        );
    }
}

/// Generates an ACS envelope with `cwmp` and parses it with ours.
fn from_cwmp(
    version: Option<cw::CwmpVersion>,
    header: Vec<cw::HeaderElement>,
    body: cw::BodyElement,
) -> Envelope<AcsMessage> {
    let env = cw::Envelope::new(version, header, vec![body]);
    let text = cwmp::generate(&env).expect("cwmp generates");
    parse_acs(text.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("we cannot parse cwmp's envelope: {e:?}\n{text}"))
}

fn acs_cases() -> Vec<(cw::BodyElement, AcsMessage)> {
    use AcsMessage::{Request as Q, Response as R};
    vec![
        (
            cw::BodyElement::GetRPCMethods(cw::GetRPCMethods {}),
            Q(AcsRequest::GetRpcMethods),
        ),
        (
            cw::BodyElement::GetParameterNames(cw::GetParameterNames::new(s("Device."), 1)),
            Q(AcsRequest::GetParameterNames {
                path: s("Device."),
                next_level: true,
            }),
        ),
        (
            cw::BodyElement::GetParameterValues(cw::GetParameterValues::new(vec![
                s("Device.DeviceInfo."),
                s("Device.Time.Enable"),
            ])),
            Q(AcsRequest::GetParameterValues {
                names: vec![s("Device.DeviceInfo."), s("Device.Time.Enable")],
            }),
        ),
        (
            cw::BodyElement::SetParameterValues(cw::SetParameterValues::new(
                Some(s("key&1")),
                vec![
                    cw::ParameterValue::new(s("Device.A"), s("xsd:string"), s(NASTY)),
                    cw::ParameterValue::new(s("Device.B"), s("xsd:unsignedInt"), s("5")),
                    cw::ParameterValue::new(s("Device.C"), String::new(), s("untyped")),
                ],
            )),
            Q(AcsRequest::SetParameterValues {
                list: vec![
                    SetValue {
                        name: s("Device.A"),
                        value: s(NASTY),
                        xsi_type: Some(XsiType::Known(BaseType::String)),
                    },
                    SetValue {
                        name: s("Device.B"),
                        value: s("5"),
                        xsi_type: Some(XsiType::Known(BaseType::UnsignedInt)),
                    },
                    // `cwmp` writes `xsi:type=""` for an untyped value: read as no type.
                    SetValue {
                        name: s("Device.C"),
                        value: s("untyped"),
                        xsi_type: None,
                    },
                ],
                parameter_key: s("key&1"),
            }),
        ),
        (
            cw::BodyElement::SetParameterValues(cw::SetParameterValues::new(None, vec![])),
            Q(AcsRequest::SetParameterValues {
                list: vec![],
                parameter_key: String::new(),
            }),
        ),
        (
            cw::BodyElement::GetParameterAttributes(cw::GetParameterAttributes::new(vec![s(
                "Device.ManagementServer.",
            )])),
            Q(AcsRequest::GetParameterAttributes {
                names: vec![s("Device.ManagementServer.")],
            }),
        ),
        (
            cw::BodyElement::SetParameterAttributes(cw::SetParameterAttributes::new(vec![
                cw::SetParameterAttributesStruct::new(
                    s("Device.A"),
                    1,
                    2,
                    1,
                    vec![s("Subscriber")],
                ),
                cw::SetParameterAttributesStruct::new(s("Device.B"), 0, 0, 0, vec![]),
            ])),
            Q(AcsRequest::SetParameterAttributes {
                list: vec![
                    SetAttributes {
                        name: s("Device.A"),
                        notification_change: true,
                        notification: 2,
                        access_list_change: true,
                        access_list: vec![s("Subscriber")],
                    },
                    SetAttributes {
                        name: s("Device.B"),
                        notification_change: false,
                        notification: 0,
                        access_list_change: false,
                        access_list: vec![],
                    },
                ],
            }),
        ),
        (
            cw::BodyElement::AddObject(cw::AddObject::new(s("Device.NAT.PortMapping."), s("k"))),
            Q(AcsRequest::AddObject {
                object_name: s("Device.NAT.PortMapping."),
                parameter_key: s("k"),
            }),
        ),
        (
            cw::BodyElement::DeleteObject(cw::DeleteObject::new(
                s("Device.NAT.PortMapping.2."),
                String::new(),
            )),
            Q(AcsRequest::DeleteObject {
                object_name: s("Device.NAT.PortMapping.2."),
                parameter_key: String::new(),
            }),
        ),
        (
            cw::BodyElement::Reboot(cw::Reboot::new(s("r<1>"))),
            Q(AcsRequest::Reboot {
                command_key: s("r<1>"),
            }),
        ),
        (
            cw::BodyElement::Download(cw::Download::new(
                s("dl"),
                s("1 Firmware Upgrade Image"),
                s("http://h/fw?a=1&b=2"),
                s("u"),
                s("p"),
                3_493_888,
                s("fw.bin"),
                5,
                s("http://ok"),
                s("http://ko"),
            )),
            Q(AcsRequest::Download(Download {
                command_key: s("dl"),
                file_type: s("1 Firmware Upgrade Image"),
                url: s("http://h/fw?a=1&b=2"),
                username: s("u"),
                password: s("p"),
                file_size: 3_493_888,
                target_file_name: s("fw.bin"),
                delay_seconds: 5,
                success_url: s("http://ok"),
                failure_url: s("http://ko"),
            })),
        ),
        (
            cw::BodyElement::Upload(cw::Upload::new(
                s("up"),
                s("2 Vendor Log File"),
                s("http://h/up"),
                String::new(),
                String::new(),
                0,
            )),
            Q(AcsRequest::Upload(Upload {
                command_key: s("up"),
                file_type: s("2 Vendor Log File"),
                url: s("http://h/up"),
                ..Upload::default()
            })),
        ),
        (
            cw::BodyElement::FactoryReset(cw::FactoryReset),
            Q(AcsRequest::FactoryReset),
        ),
        (
            cw::BodyElement::ScheduleInform(cw::ScheduleInform::new(30, s("si"))),
            Q(AcsRequest::ScheduleInform {
                delay_seconds: 30,
                command_key: s("si"),
            }),
        ),
        (
            cw::BodyElement::GetQueuedTransfers(cw::GetQueuedTransfers {}),
            Q(AcsRequest::GetQueuedTransfers),
        ),
        (
            cw::BodyElement::GetAllQueuedTransfers(cw::GetAllQueuedTransfers),
            Q(AcsRequest::GetAllQueuedTransfers),
        ),
        (
            cw::BodyElement::ScheduleDownload(cw::ScheduleDownload::new(
                s("sd"),
                s("1 Firmware Upgrade Image"),
                s("http://h/fw"),
                String::new(),
                String::new(),
                10,
                s("fw.bin"),
                vec![cw::TimeWindow::new(
                    0,
                    3600,
                    s("1 At Any Time"),
                    s("now"),
                    -1,
                )],
            )),
            Q(AcsRequest::ScheduleDownload(ScheduleDownload {
                command_key: s("sd"),
                file_type: s("1 Firmware Upgrade Image"),
                url: s("http://h/fw"),
                file_size: 10,
                target_file_name: s("fw.bin"),
                time_windows: vec![TimeWindow {
                    window_start: 0,
                    window_end: 3600,
                    window_mode: s("1 At Any Time"),
                    user_message: s("now"),
                    max_retries: -1,
                }],
                ..ScheduleDownload::default()
            })),
        ),
        (
            cw::BodyElement::CancelTransfer(cw::CancelTransfer::new(s("sd"))),
            Q(AcsRequest::CancelTransfer {
                command_key: s("sd"),
            }),
        ),
        (
            cw::BodyElement::ChangeDUState(cw::ChangeDUState::new(
                s("du"),
                vec![cw::InstallOp::new(
                    s("http://h/a.ipk"),
                    s("uuid-1"),
                    s("u"),
                    s("p"),
                    s("EE1"),
                )],
                vec![cw::UninstallOp::new(
                    s("http://h/b.ipk"),
                    s("uuid-2"),
                    s("EE1"),
                )],
                vec![cw::UpdateOp::new(
                    s("http://h/c.ipk"),
                    s("uuid-3"),
                    s("u"),
                    s("p"),
                    s("2.0"),
                )],
            )),
            Q(AcsRequest::ChangeDuState {
                operations: vec![
                    DuOperation::Install {
                        url: s("http://h/a.ipk"),
                        uuid: s("uuid-1"),
                        username: s("u"),
                        password: s("p"),
                        execution_env_ref: s("EE1"),
                    },
                    // The crate's URL in UninstallOpStruct is not in the schema: ignored.
                    DuOperation::Uninstall {
                        uuid: s("uuid-2"),
                        version: String::new(),
                        execution_env_ref: s("EE1"),
                    },
                    DuOperation::Update {
                        uuid: s("uuid-3"),
                        version: s("2.0"),
                        url: s("http://h/c.ipk"),
                        username: s("u"),
                        password: s("p"),
                    },
                ],
                command_key: s("du"),
            }),
        ),
        (
            cw::BodyElement::InformResponse(cw::InformResponse::new(1)),
            R(AcsResponse::Inform { max_envelopes: 1 }),
        ),
        (
            cw::BodyElement::TransferCompleteResponse(cw::TransferCompleteResponse {}),
            R(AcsResponse::TransferComplete),
        ),
        (
            cw::BodyElement::AutonomousTransferCompleteResponse(
                cw::AutonomousTransferCompleteResponse,
            ),
            R(AcsResponse::AutonomousTransferComplete),
        ),
        (
            cw::BodyElement::RequestDownloadResponse(cw::RequestDownloadResponse {}),
            R(AcsResponse::RequestDownload),
        ),
        (
            cw::BodyElement::GetRPCMethodsResponse(cw::GetRPCMethodsResponse::new(vec![s(
                "Inform",
            )])),
            R(AcsResponse::GetRpcMethods {
                methods: vec![s("Inform")],
            }),
        ),
        (
            cw::BodyElement::KickedResponse(cw::KickedResponse::new(s("http://n?a&b"))),
            R(AcsResponse::Kicked {
                next_url: s("http://n?a&b"),
            }),
        ),
        (
            cw::BodyElement::DUStateChangeCompleteResponse(cw::DUStateChangeCompleteResponse),
            R(AcsResponse::DuStateChangeComplete),
        ),
        (
            cw::BodyElement::AutonomousDUStateChangeCompleteResponse(
                cw::AutonomousDUStateChangeCompleteResponse,
            ),
            R(AcsResponse::AutonomousDuStateChangeComplete),
        ),
        (
            cw::BodyElement::Fault(cw::Fault::new(
                s("Server"),
                s("CWMP fault"),
                8005,
                s("Retry request"),
            )),
            AcsMessage::Fault(AcsFault {
                code: 8005,
                string: s("Retry request"),
            }),
        ),
    ]
}

#[test]
fn cwmp_acs_messages_parse_with_ours() {
    for (theirs, ours) in acs_cases() {
        for (version, ns) in [
            (cw::CwmpVersion::new(1, 0), CwmpNs::V1_0),
            (cw::CwmpVersion::new(1, 2), CwmpNs::V1_2),
            (cw::CwmpVersion::new(1, 4), CwmpNs::V1_4),
        ] {
            let header = vec![
                cw::HeaderElement::ID(cw::ID::new(true, s("acs-7"))),
                cw::HeaderElement::HoldRequests(cw::HoldRequests::new(true, true)),
                cw::HeaderElement::UseCWMPVersion(cw::UseCWMPVersion::new(true, s("1.4"))),
            ];
            let env = from_cwmp(Some(version), header, theirs.clone());
            assert_eq!(env.ns, ns);
            assert_eq!(env.header.id.as_deref(), Some("acs-7"));
            assert_eq!(env.header.hold_requests, Some(true));
            assert_eq!(env.header.use_version.as_deref(), Some("1.4"));
            assert_eq!(env.body, ours);
        }
        // Without a cwmp namespace `cwmp` writes unqualified elements; we still read them.
        let env = from_cwmp(None, vec![], theirs);
        assert_eq!(env.ns, CwmpNs::V1_0);
        assert_eq!(env.body, ours);
    }
}

/// The other direction for the CPE side: what `cwmp` generates as a CPE reads with our ACS side.
#[test]
fn cwmp_cpe_messages_parse_with_our_acs_side() {
    let env = cw::Envelope::new(
        Some(cw::CwmpVersion::new(1, 0)),
        id("9"),
        vec![cw::BodyElement::GetParameterValuesResponse(
            cw::GetParameterValuesResponse::new(cw_values(&values())),
        )],
    );
    let text = cwmp::generate(&env).expect("cwmp generates");
    let ours = acs::parse_cpe(text.as_bytes(), &Limits::default()).expect("parses");
    assert_eq!(ours.header.id.as_deref(), Some("9"));
    assert_eq!(
        ours.body,
        CpeMessage::Response(CpeResponse::GetParameterValues {
            list: values().into(),
        })
    );
}
