//! The typed CWMP messages (TR-069 Amendment 6, Annex A; element names and arguments as in
//! `cwmp-1-0.xsd` … `cwmp-1-4.xsd`).
//!
//! The soap layer turns bytes into these types and these types into bytes; nothing above it sees
//! XML. Field names follow the schema's element names in snake case.

use crate::cwmp::fault::{AcsFault, Fault};
use crate::datamodel::types::BaseType;

/// The CWMP namespace an envelope uses (`urn:dslforum-org:cwmp-1-N`). CWMP 1.2, 1.3 and 1.4 all use
/// `cwmp-1-2` (see the header comments of `cwmp-1-3.xsd` and `cwmp-1-4.xsd`); the non-standard
/// `cwmp-1-3`/`cwmp-1-4` namespaces seen in the field are accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CwmpNs {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
}

impl CwmpNs {
    pub fn urn(self) -> &'static str {
        match self {
            CwmpNs::V1_0 => "urn:dslforum-org:cwmp-1-0",
            CwmpNs::V1_1 => "urn:dslforum-org:cwmp-1-1",
            CwmpNs::V1_2 => "urn:dslforum-org:cwmp-1-2",
            CwmpNs::V1_3 => "urn:dslforum-org:cwmp-1-3",
            CwmpNs::V1_4 => "urn:dslforum-org:cwmp-1-4",
        }
    }

    pub fn from_urn(s: &str) -> Option<CwmpNs> {
        Some(match s.trim() {
            "urn:dslforum-org:cwmp-1-0" => CwmpNs::V1_0,
            "urn:dslforum-org:cwmp-1-1" => CwmpNs::V1_1,
            "urn:dslforum-org:cwmp-1-2" => CwmpNs::V1_2,
            "urn:dslforum-org:cwmp-1-3" => CwmpNs::V1_3,
            "urn:dslforum-org:cwmp-1-4" => CwmpNs::V1_4,
            _ => return None,
        })
    }
}

/// A CWMP protocol version (`1.0` … `1.4`), as named in `SupportedCWMPVersions` and
/// `UseCWMPVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CwmpVersion(pub u8);

impl CwmpVersion {
    pub const V1_0: CwmpVersion = CwmpVersion(0);
    pub const V1_1: CwmpVersion = CwmpVersion(1);
    pub const V1_2: CwmpVersion = CwmpVersion(2);
    pub const V1_3: CwmpVersion = CwmpVersion(3);
    pub const V1_4: CwmpVersion = CwmpVersion(4);

    /// The namespace a session of this version uses (§A.2.1: 1.2–1.4 share `cwmp-1-2`).
    pub fn namespace(self) -> CwmpNs {
        match self.0 {
            0 => CwmpNs::V1_0,
            1 => CwmpNs::V1_1,
            _ => CwmpNs::V1_2,
        }
    }

    /// `"1.4"`.
    pub fn text(self) -> String {
        format!("1.{}", self.0)
    }

    /// Reads `"1.3"`; `None` for anything that is not `1.0`–`1.4`.
    pub fn parse(s: &str) -> Option<CwmpVersion> {
        match s.trim() {
            "1.0" => Some(CwmpVersion(0)),
            "1.1" => Some(CwmpVersion(1)),
            "1.2" => Some(CwmpVersion(2)),
            "1.3" => Some(CwmpVersion(3)),
            "1.4" => Some(CwmpVersion(4)),
            _ => None,
        }
    }
}

/// The SOAP header elements CWMP defines (§A.4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `cwmp:ID`, echoed in the response with `mustUnderstand="1"`.
    pub id: Option<String>,
    /// `cwmp:HoldRequests` (ACS → CPE only).
    pub hold_requests: Option<bool>,
    /// `cwmp:SessionTimeout` in seconds (CWMP 1.3+, CPE → ACS in the Inform).
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions` (CWMP 1.4, CPE → ACS in the Inform), e.g. `"1.0,1.1,1.2,1.3,1.4"`.
    pub supported_versions: Option<String>,
    /// `cwmp:UseCWMPVersion` (CWMP 1.4, ACS → CPE in the InformResponse).
    pub use_version: Option<String>,
    /// Header elements marked `mustUnderstand="1"` that we do not know (the CPE must fault 9000 or
    /// refuse; §A.4.1 / SOAP 1.1 §4.2.3). Local names.
    pub unknown_must_understand: Vec<String>,
}

/// A whole envelope, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<B> {
    pub ns: CwmpNs,
    pub header: Header,
    pub body: B,
}

/// What an ACS sends in an HTTP response body.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsMessage {
    /// An RPC request for the CPE to execute.
    Request(AcsRequest),
    /// A response to a request the CPE made.
    Response(AcsResponse),
    /// A SOAP fault (8000–8006) in answer to a CPE request.
    Fault(AcsFault),
    /// An envelope whose body is empty (`<Body/>`): treated like an empty HTTP body.
    Empty,
}

/// Why a body could not become an [`AcsMessage`]. Each maps to the fault the CPE answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Not XML, not a SOAP envelope, over a size limit, or has a DTD: the session is broken.
    Malformed(String),
    /// A well-formed envelope with an RPC we do not know: answer 9000 with this `cwmp:ID`.
    UnknownMethod {
        id: Option<String>,
        ns: CwmpNs,
        method: String,
    },
    /// A known RPC with bad arguments: answer 9003 with this `cwmp:ID`.
    BadArguments {
        id: Option<String>,
        ns: CwmpNs,
        method: String,
        detail: String,
    },
    /// A header element with `mustUnderstand="1"` we do not know: answer 9000 (SOAP 1.1 §4.2.3).
    MustUnderstand {
        id: Option<String>,
        ns: CwmpNs,
        element: String,
    },
}

/// An RPC the ACS asks the CPE to execute (§A.3.2, §A.4.1).
#[derive(Debug, Clone, PartialEq)]
pub enum AcsRequest {
    GetRpcMethods,
    GetParameterNames {
        path: String,
        next_level: bool,
    },
    GetParameterValues {
        names: Vec<String>,
    },
    SetParameterValues {
        list: Vec<SetValue>,
        parameter_key: String,
    },
    GetParameterAttributes {
        names: Vec<String>,
    },
    SetParameterAttributes {
        list: Vec<SetAttributes>,
    },
    AddObject {
        object_name: String,
        parameter_key: String,
    },
    DeleteObject {
        object_name: String,
        parameter_key: String,
    },
    Reboot {
        command_key: String,
    },
    Download(Download),
    Upload(Upload),
    FactoryReset,
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
    GetQueuedTransfers,
    GetAllQueuedTransfers,
    ScheduleDownload(ScheduleDownload),
    CancelTransfer {
        command_key: String,
    },
    ChangeDuState {
        operations: Vec<DuOperation>,
        command_key: String,
    },
}

impl AcsRequest {
    /// The RPC's element name.
    pub fn method(&self) -> &'static str {
        match self {
            AcsRequest::GetRpcMethods => "GetRPCMethods",
            AcsRequest::GetParameterNames { .. } => "GetParameterNames",
            AcsRequest::GetParameterValues { .. } => "GetParameterValues",
            AcsRequest::SetParameterValues { .. } => "SetParameterValues",
            AcsRequest::GetParameterAttributes { .. } => "GetParameterAttributes",
            AcsRequest::SetParameterAttributes { .. } => "SetParameterAttributes",
            AcsRequest::AddObject { .. } => "AddObject",
            AcsRequest::DeleteObject { .. } => "DeleteObject",
            AcsRequest::Reboot { .. } => "Reboot",
            AcsRequest::Download(_) => "Download",
            AcsRequest::Upload(_) => "Upload",
            AcsRequest::FactoryReset => "FactoryReset",
            AcsRequest::ScheduleInform { .. } => "ScheduleInform",
            AcsRequest::GetQueuedTransfers => "GetQueuedTransfers",
            AcsRequest::GetAllQueuedTransfers => "GetAllQueuedTransfers",
            AcsRequest::ScheduleDownload(_) => "ScheduleDownload",
            AcsRequest::CancelTransfer { .. } => "CancelTransfer",
            AcsRequest::ChangeDuState { .. } => "ChangeDUState",
        }
    }
}

/// One ParameterValueStruct of a SetParameterValues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValue {
    pub name: String,
    pub value: String,
    /// The `xsi:type` the ACS gave, when it gave one. `Some(None)`-like cases (a type we do not
    /// know) are kept as the raw text so the engine can answer 9006.
    pub xsi_type: Option<XsiType>,
}

/// An `xsi:type` attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsiType {
    Known(BaseType),
    Unknown(String),
}

/// One SetParameterAttributesStruct (§A.3.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAttributes {
    pub name: String,
    pub notification_change: bool,
    pub notification: u8,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

/// Download arguments (§A.3.2.8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Download {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub delay_seconds: u32,
    pub success_url: String,
    pub failure_url: String,
}

/// Upload arguments (§A.3.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub delay_seconds: u32,
}

/// ScheduleDownload arguments (§A.4.1.8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduleDownload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub time_windows: Vec<TimeWindow>,
}

/// One TimeWindowStruct (§A.4.1.8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub window_start: u32,
    pub window_end: u32,
    pub window_mode: String,
    pub user_message: String,
    pub max_retries: i32,
}

/// One ChangeDUState operation (§A.4.1.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuOperation {
    Install {
        url: String,
        uuid: String,
        username: String,
        password: String,
        execution_env_ref: String,
    },
    Update {
        uuid: String,
        version: String,
        url: String,
        username: String,
        password: String,
    },
    Uninstall {
        uuid: String,
        version: String,
        execution_env_ref: String,
    },
}

/// A response from the ACS to a CPE request (§A.3.3, §A.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsResponse {
    Inform { max_envelopes: u32 },
    TransferComplete,
    AutonomousTransferComplete,
    RequestDownload,
    GetRpcMethods { methods: Vec<String> },
    Kicked { next_url: String },
    DuStateChangeComplete,
    AutonomousDuStateChangeComplete,
}

impl AcsResponse {
    /// The response's element name (`InformResponse`, …; §A.3.3, §A.4.2).
    pub fn element(&self) -> &'static str {
        match self {
            AcsResponse::Inform { .. } => "InformResponse",
            AcsResponse::TransferComplete => "TransferCompleteResponse",
            AcsResponse::AutonomousTransferComplete => "AutonomousTransferCompleteResponse",
            AcsResponse::RequestDownload => "RequestDownloadResponse",
            AcsResponse::GetRpcMethods { .. } => "GetRPCMethodsResponse",
            AcsResponse::Kicked { .. } => "KickedResponse",
            AcsResponse::DuStateChangeComplete => "DUStateChangeCompleteResponse",
            AcsResponse::AutonomousDuStateChangeComplete => {
                "AutonomousDUStateChangeCompleteResponse"
            }
        }
    }
}

/// One EventStruct of an Inform (§A.3.3.1, Table 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStruct {
    pub code: String,
    pub command_key: String,
}

/// `1 BOOT`, or `M Reboot (key)` with its CommandKey: how logs and `cwmpd status` name an event.
pub fn event_label(code: &str, command_key: &str) -> String {
    if command_key.is_empty() {
        code.to_string()
    } else {
        format!("{code} ({command_key})")
    }
}

impl std::fmt::Display for EventStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&event_label(&self.code, &self.command_key))
    }
}

/// DeviceIdStruct (§A.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceId {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

/// A ParameterValueStruct as sent by the CPE: the value in canonical form and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub ty: BaseType,
}

/// A ParameterInfoStruct (GetParameterNamesResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

/// A ParameterAttributeStruct (GetParameterAttributesResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// FaultStruct of TransferComplete and friends; code 0 means success.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultStruct {
    pub code: u32,
    pub string: String,
}

/// One QueuedTransferStruct / AllQueuedTransferStruct (§A.4.1.5/§A.4.1.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuedTransfer {
    pub command_key: String,
    /// 1 not yet started, 2 in progress, 3 completed.
    pub state: u8,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u32,
    pub target_file_name: String,
}

/// A request the CPE makes of the ACS (§A.3.3, §A.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpeRequest {
    Inform(Inform),
    TransferComplete {
        command_key: String,
        fault: FaultStruct,
        start_time: String,
        complete_time: String,
    },
    AutonomousTransferComplete {
        announce_url: String,
        transfer_url: String,
        is_download: bool,
        file_type: String,
        file_size: u32,
        target_file_name: String,
        fault: FaultStruct,
        start_time: String,
        complete_time: String,
    },
    RequestDownload {
        file_type: String,
        args: Vec<(String, String)>,
    },
    Kicked {
        command: String,
        referer: String,
        arg: String,
        next: String,
    },
    GetRpcMethods,
}

impl CpeRequest {
    pub fn method(&self) -> &'static str {
        match self {
            CpeRequest::Inform(_) => "Inform",
            CpeRequest::TransferComplete { .. } => "TransferComplete",
            CpeRequest::AutonomousTransferComplete { .. } => "AutonomousTransferComplete",
            CpeRequest::RequestDownload { .. } => "RequestDownload",
            CpeRequest::Kicked { .. } => "Kicked",
            CpeRequest::GetRpcMethods => "GetRPCMethods",
        }
    }
}

/// Inform arguments (§A.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inform {
    pub device_id: DeviceId,
    pub events: Vec<EventStruct>,
    pub max_envelopes: u32,
    /// xsd:dateTime with offset.
    pub current_time: String,
    pub retry_count: u32,
    pub parameters: Vec<ParameterValue>,
}

/// What the CPE answers to an ACS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpeResponse {
    GetRpcMethods {
        methods: Vec<String>,
    },
    GetParameterNames {
        list: Vec<ParameterInfo>,
    },
    GetParameterValues {
        list: Vec<ParameterValue>,
    },
    SetParameterValues {
        status: u8,
    },
    GetParameterAttributes {
        list: Vec<ParameterAttribute>,
    },
    SetParameterAttributes,
    AddObject {
        instance_number: u32,
        status: u8,
    },
    DeleteObject {
        status: u8,
    },
    Reboot,
    Download {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    Upload {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    FactoryReset,
    ScheduleInform,
    GetQueuedTransfers {
        list: Vec<QueuedTransfer>,
    },
    GetAllQueuedTransfers {
        list: Vec<QueuedTransfer>,
    },
    ScheduleDownload,
    CancelTransfer,
    ChangeDuState,
    /// A CWMP fault in answer to the request.
    Fault(Fault),
}

impl CpeResponse {
    /// The response element name (`GetParameterValuesResponse`, …); `None` for a fault.
    pub fn element(&self) -> Option<&'static str> {
        Some(match self {
            CpeResponse::GetRpcMethods { .. } => "GetRPCMethodsResponse",
            CpeResponse::GetParameterNames { .. } => "GetParameterNamesResponse",
            CpeResponse::GetParameterValues { .. } => "GetParameterValuesResponse",
            CpeResponse::SetParameterValues { .. } => "SetParameterValuesResponse",
            CpeResponse::GetParameterAttributes { .. } => "GetParameterAttributesResponse",
            CpeResponse::SetParameterAttributes => "SetParameterAttributesResponse",
            CpeResponse::AddObject { .. } => "AddObjectResponse",
            CpeResponse::DeleteObject { .. } => "DeleteObjectResponse",
            CpeResponse::Reboot => "RebootResponse",
            CpeResponse::Download { .. } => "DownloadResponse",
            CpeResponse::Upload { .. } => "UploadResponse",
            CpeResponse::FactoryReset => "FactoryResetResponse",
            CpeResponse::ScheduleInform => "ScheduleInformResponse",
            CpeResponse::GetQueuedTransfers { .. } => "GetQueuedTransfersResponse",
            CpeResponse::GetAllQueuedTransfers { .. } => "GetAllQueuedTransfersResponse",
            CpeResponse::ScheduleDownload => "ScheduleDownloadResponse",
            CpeResponse::CancelTransfer => "CancelTransferResponse",
            CpeResponse::ChangeDuState => "ChangeDUStateResponse",
            CpeResponse::Fault(_) => return None,
        })
    }
}
