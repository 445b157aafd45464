//! The one CWMP fault type (TR-069 Amendment 6, §A.5 and Table A.5; `FaultCodeType` of
//! `cwmp-1-2.xsd`).
//!
//! Every error that reaches the ACS is a [`Fault`]. Internal errors become [`Fault::InternalError`]
//! (9002) at one boundary: [`Fault::internal`]. SetParameterValues faults carry the per-parameter
//! list ([`ParamFault`]) as required by §A.3.2.1.

use std::fmt;

/// A CPE fault code 9000–9032, with the text it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 9000 Method not supported.
    MethodNotSupported(String),
    /// 9001 Request denied (no reason specified).
    RequestDenied(String),
    /// 9002 Internal error.
    InternalError(String),
    /// 9003 Invalid arguments. For SetParameterValues this carries the per-parameter faults.
    InvalidArguments(String, Vec<ParamFault>),
    /// 9004 Resources exceeded.
    ResourcesExceeded(String),
    /// 9005 Invalid parameter name.
    InvalidParameterName(String),
    /// 9006 Invalid parameter type.
    InvalidParameterType(String),
    /// 9007 Invalid parameter value.
    InvalidParameterValue(String),
    /// 9008 Attempt to set a non-writable parameter.
    NonWritableParameter(String),
    /// 9009 Notification request rejected.
    NotificationRejected(String),
    /// 9010–9032: transfer and deployment-unit faults, by code.
    Transfer(u32, String),
}

/// One entry of the `SetParameterValuesFault` list (§A.3.2.1, Table A.9 note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamFault {
    pub name: String,
    pub fault: Fault,
}

/// The SOAP `faultcode` a CWMP fault is sent with (§A.5: Client for faults caused by the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOrigin {
    Client,
    Server,
}

impl Fault {
    /// The CWMP fault code.
    pub fn code(&self) -> u32 {
        match self {
            Fault::MethodNotSupported(_) => 9000,
            Fault::RequestDenied(_) => 9001,
            Fault::InternalError(_) => 9002,
            Fault::InvalidArguments(..) => 9003,
            Fault::ResourcesExceeded(_) => 9004,
            Fault::InvalidParameterName(_) => 9005,
            Fault::InvalidParameterType(_) => 9006,
            Fault::InvalidParameterValue(_) => 9007,
            Fault::NonWritableParameter(_) => 9008,
            Fault::NotificationRejected(_) => 9009,
            Fault::Transfer(code, _) => *code,
        }
    }

    /// Builds a fault from a code and a detail text, as read back from the store or a backend.
    /// Codes outside 9000–9032 become 9002.
    pub fn from_code(code: u32, detail: impl Into<String>) -> Fault {
        let d = detail.into();
        match code {
            9000 => Fault::MethodNotSupported(d),
            9001 => Fault::RequestDenied(d),
            9003 => Fault::InvalidArguments(d, Vec::new()),
            9004 => Fault::ResourcesExceeded(d),
            9005 => Fault::InvalidParameterName(d),
            9006 => Fault::InvalidParameterType(d),
            9007 => Fault::InvalidParameterValue(d),
            9008 => Fault::NonWritableParameter(d),
            9009 => Fault::NotificationRejected(d),
            9010..=9032 => Fault::Transfer(code, d),
            _ => Fault::InternalError(d),
        }
    }

    /// The one boundary where internal errors become 9002.
    pub fn internal(e: impl fmt::Display) -> Fault {
        Fault::InternalError(e.to_string())
    }

    /// Whether the SOAP faultcode is `Client` or `Server` (Table A.5).
    pub fn origin(&self) -> FaultOrigin {
        match self.code() {
            9003 | 9005 | 9006 | 9007 | 9008 | 9021..=9032 => FaultOrigin::Client,
            _ => FaultOrigin::Server,
        }
    }

    /// The standard text of the code (Table A.5).
    pub fn standard_text(&self) -> &'static str {
        standard_text(self.code())
    }

    /// The detail given when the fault was made (may be empty).
    pub fn detail(&self) -> &str {
        match self {
            Fault::MethodNotSupported(d)
            | Fault::RequestDenied(d)
            | Fault::InternalError(d)
            | Fault::InvalidArguments(d, _)
            | Fault::ResourcesExceeded(d)
            | Fault::InvalidParameterName(d)
            | Fault::InvalidParameterType(d)
            | Fault::InvalidParameterValue(d)
            | Fault::NonWritableParameter(d)
            | Fault::NotificationRejected(d)
            | Fault::Transfer(_, d) => d,
        }
    }

    /// The FaultString sent to the ACS: the standard text, then the detail when there is one.
    pub fn fault_string(&self) -> String {
        let d = self.detail();
        if d.is_empty() {
            self.standard_text().to_string()
        } else {
            format!("{}: {}", self.standard_text(), d)
        }
    }

    /// The SetParameterValuesFault list (empty for every other fault).
    pub fn param_faults(&self) -> &[ParamFault] {
        match self {
            Fault::InvalidArguments(_, list) => list,
            _ => &[],
        }
    }
}

/// The standard text of a CPE fault code (Table A.5 of TR-069 Amendment 6).
pub fn standard_text(code: u32) -> &'static str {
    match code {
        9000 => "Method not supported",
        9001 => "Request denied",
        9002 => "Internal error",
        9003 => "Invalid arguments",
        9004 => "Resources exceeded",
        9005 => "Invalid parameter name",
        9006 => "Invalid parameter type",
        9007 => "Invalid parameter value",
        9008 => "Attempt to set a non-writable parameter",
        9009 => "Notification request rejected",
        9010 => "File transfer failure",
        9011 => "Upload failure",
        9012 => "File transfer server authentication failure",
        9013 => "Unsupported protocol for file transfer",
        9014 => "File transfer failure: unable to join multicast group",
        9015 => "File transfer failure: unable to contact file server",
        9016 => "File transfer failure: unable to access file",
        9017 => "File transfer failure: unable to complete download",
        9018 => "File transfer failure: file corrupted",
        9019 => "File transfer failure: file authentication failure",
        9020 => "File transfer failure: unable to complete download within specified time windows",
        9021 => "Cancelation of file transfer not permitted in current transfer state",
        9022 => "Invalid UUID format",
        9023 => "Unknown execution environment",
        9024 => "Disabled execution environment",
        9025 => "Deployment unit to execution environment mismatch",
        9026 => "Duplicate deployment unit",
        9027 => "System resources exceeded",
        9028 => "Unknown deployment unit",
        9029 => "Invalid deployment unit state",
        9030 => "Invalid deployment unit update: downgrade not permitted",
        9031 => "Invalid deployment unit update: version not specified",
        9032 => "Invalid deployment unit update: version already exists",
        _ => "Internal error",
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.fault_string())
    }
}

impl std::error::Error for Fault {}

/// The fault of a file transfer, as TransferComplete and AutonomousTransferComplete report it
/// (§A.3.3.2, Table A.5: 9010–9020; 9002 when the CPE itself failed). Stored as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFault {
    /// 9002: the CPE could not keep or finish the transfer (its store, its directory, a hook's
    /// refusal to start).
    Internal,
    /// 9010: a download failed (or its apply hook did).
    Download,
    /// 9011: an upload failed.
    Upload,
    /// 9012: the file server refused the credentials.
    ServerAuthentication,
    /// 9013: the URL's scheme is not one the CPE speaks.
    UnsupportedProtocol,
    /// 9014: the CPE could not join the multicast group of a download (a hook may report it).
    MulticastJoin,
    /// 9015: the file server could not be reached.
    CannotContact,
    /// 9016: the file server refused the file.
    CannotAccess,
    /// 9017: the download stopped before its end.
    Incomplete,
    /// 9018: the file is not what was announced (its size).
    Corrupted,
    /// 9019: the file failed its authentication (a hook checking a signature may report it).
    FileAuthentication,
    /// 9020: a ScheduleDownload was not completed within its time windows, or an autonomous
    /// one did not start in time.
    TimeWindows,
}

impl TransferFault {
    /// Every transfer fault, for tables and tests.
    pub const ALL: [TransferFault; 12] = [
        TransferFault::Internal,
        TransferFault::Download,
        TransferFault::Upload,
        TransferFault::ServerAuthentication,
        TransferFault::UnsupportedProtocol,
        TransferFault::MulticastJoin,
        TransferFault::CannotContact,
        TransferFault::CannotAccess,
        TransferFault::Incomplete,
        TransferFault::Corrupted,
        TransferFault::FileAuthentication,
        TransferFault::TimeWindows,
    ];

    /// The CWMP fault code.
    pub const fn code(self) -> u32 {
        match self {
            TransferFault::Internal => 9002,
            TransferFault::Download => 9010,
            TransferFault::Upload => 9011,
            TransferFault::ServerAuthentication => 9012,
            TransferFault::UnsupportedProtocol => 9013,
            TransferFault::MulticastJoin => 9014,
            TransferFault::CannotContact => 9015,
            TransferFault::CannotAccess => 9016,
            TransferFault::Incomplete => 9017,
            TransferFault::Corrupted => 9018,
            TransferFault::FileAuthentication => 9019,
            TransferFault::TimeWindows => 9020,
        }
    }

    /// The fault of a code read back from the store; `None` for a code no transfer reports.
    pub fn from_code(code: u32) -> Option<TransferFault> {
        TransferFault::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The standard text of the code (Table A.5).
    pub fn standard_text(self) -> &'static str {
        standard_text(self.code())
    }
}

impl fmt::Display for TransferFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.standard_text())
    }
}

/// Why a transfer step failed: the fault its TransferComplete reports, one line of why, and
/// whether another attempt may succeed (cannot connect, cut off, a server error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFailure {
    /// 9002 or 9010..=9020 (§A.5.1): the code of a [`TransferFault`], as the transfer record
    /// stores it (a hook names one by its exit status).
    pub code: u32,
    /// One line, naming a URL without its user information; never a password.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

impl TransferFailure {
    /// A failure no retry mends.
    pub fn new(fault: TransferFault, message: impl Into<String>) -> TransferFailure {
        TransferFailure {
            code: fault.code(),
            message: message.into(),
            retryable: false,
        }
    }

    /// An internal error another attempt may not meet (a panic, no thread to run in).
    pub fn internal(message: impl Into<String>) -> TransferFailure {
        TransferFailure {
            retryable: true,
            ..TransferFailure::new(TransferFault::Internal, message)
        }
    }

    /// The fault; `None` only for a code no transfer reports.
    pub fn fault(&self) -> Option<TransferFault> {
        TransferFault::from_code(self.code)
    }
}

impl fmt::Display for TransferFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for TransferFailure {}

/// An ACS fault 8000–8006 received in answer to a CPE request (§A.5, `ACSFaultCodeType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsFault {
    pub code: u32,
    pub string: String,
}

impl AcsFault {
    /// 8005 "Retry request": the CPE sends the same request again (§A.5).
    pub fn is_retry(&self) -> bool {
        self.code == 8005
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transfer_fault_reads_back_from_its_code() {
        for f in TransferFault::ALL {
            assert_eq!(TransferFault::from_code(f.code()), Some(f));
            assert!(matches!(f.code(), 9002 | 9010..=9020), "{f}");
        }
        // Every code a TransferComplete may carry has its name.
        for code in 9010..=9020 {
            assert_eq!(
                TransferFault::from_code(code).map(TransferFault::code),
                Some(code)
            );
        }
        assert_eq!(TransferFault::from_code(9021), None);
        assert_eq!(TransferFault::from_code(0), None);
    }

    #[test]
    fn codes_and_origins() {
        assert_eq!(Fault::MethodNotSupported(String::new()).code(), 9000);
        assert_eq!(Fault::from_code(9017, "x").code(), 9017);
        assert_eq!(Fault::from_code(1234, "x").code(), 9002);
        assert_eq!(
            Fault::InvalidParameterName(String::new()).origin(),
            FaultOrigin::Client
        );
        assert_eq!(Fault::internal("boom").origin(), FaultOrigin::Server);
        assert_eq!(
            Fault::InvalidParameterValue("bad".into()).fault_string(),
            "Invalid parameter value: bad"
        );
    }
}
