//! The typed CWMP messages (TR-069 Amendment 6, Annex A; element names and arguments as in
//! `cwmp-1-0.xsd` … `cwmp-1-4.xsd`).
//!
//! The soap layer turns bytes into these types and these types into bytes; nothing above it sees
//! XML. Field names follow the schema's element names in snake case.

use crate::cwmp::fault::{AcsFault, Fault};
use crate::cwmp::value::{
    ParameterAttribute, ParameterInfo, ParameterValue, ParameterValues, SetAttributes, SetValue,
};
use crate::cwmp::version::CwmpNs;

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
        list: ParameterValues,
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
