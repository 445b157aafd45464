//! Parsing what an ACS sends to the CPE (TR-069 §A.3.2 and §A.4.1 requests, §A.3.3 and §A.4.2
//! responses, §A.5 faults) into an [`AcsMessage`].
//!
//! Strict where the schema matters (a required argument missing or of the wrong type is
//! [`ParseError::BadArguments`], answered with 9003) and lenient where real ACSes are sloppy and it
//! is harmless:
//! - ParameterKey and CommandKey may be absent (read as `""`), and so may Download/Upload
//!   Username, Password, FileSize, TargetFileName, DelaySeconds, SuccessURL and FailureURL
//!   (`""`/0); unknown extra arguments (Download `Description`, seen in the field) are ignored.
//! - Booleans are `1`/`0`/`true`/`false` in any case; numbers may have surrounding whitespace.
//! - SetParameterAttributes may omit `Notification` when NotificationChange is false and
//!   `AccessList` when AccessListChange is false.
//! - InformResponse may omit MaxEnvelopes (read as 1); KickedResponse may omit NextURL.
//! - ChangeDUState operations are read both as the schema has them
//!   (`<Operations xsi:type="cwmp:InstallOpStruct">…`) and as some implementations write them
//!   (`<Operations><InstallOpStruct>…</InstallOpStruct></Operations>`).

use roxmltree::Node;

use super::msg::*;
use super::tree::{self, Args, Env};
use super::Limits;
use crate::cwmp::fault::AcsFault;
use crate::cwmp::value::{SetAttributes, SetValue, XsiType};

/// See [`super::parse_acs`].
pub(crate) fn parse_acs(body: &[u8], limits: &Limits) -> Result<Envelope<AcsMessage>, ParseError> {
    let doc = super::scan::document(body, limits)?;
    let env = tree::envelope(&doc)?;
    // SOAP 1.1 §4.2.3: a header we must understand but do not is refused before the body is
    // looked at.
    if let Some(element) = env.header.unknown_must_understand.first() {
        return Err(ParseError::MustUnderstand {
            id: env.header.id.clone(),
            ns: env.ns,
            element: element.clone(),
        });
    }
    let body = match env.rpc {
        None => AcsMessage::Empty,
        Some(node) => acs_body(&env, node)?,
    };
    Ok(Envelope {
        ns: env.ns,
        header: env.header,
        body,
    })
}

fn acs_body(env: &Env<'_, '_>, node: Node<'_, '_>) -> Result<AcsMessage, ParseError> {
    env.message(
        node,
        |f| {
            AcsMessage::Fault(AcsFault {
                code: f.code,
                string: f.string,
            })
        },
        |m, a| acs_request(m, a).map(|r| r.map(AcsMessage::Request)),
        |m, a| acs_response(m, a).map(|r| r.map(AcsMessage::Response)),
    )
}

/// An ACS → CPE request by element name; `None` when the name is not one.
pub(crate) fn acs_request(method: &str, a: Args<'_, '_>) -> Option<Result<AcsRequest, String>> {
    Some(match method {
        "GetRPCMethods" => Ok(AcsRequest::GetRpcMethods),
        "GetParameterNames" => get_parameter_names(a),
        "GetParameterValues" => a
            .strings("ParameterNames")
            .map(|names| AcsRequest::GetParameterValues { names }),
        "SetParameterValues" => set_parameter_values(a),
        "GetParameterAttributes" => a
            .strings("ParameterNames")
            .map(|names| AcsRequest::GetParameterAttributes { names }),
        "SetParameterAttributes" => set_parameter_attributes(a),
        "AddObject" => a
            .token("ObjectName")
            .map(|object_name| AcsRequest::AddObject {
                object_name,
                parameter_key: a.text_or("ParameterKey"),
            }),
        "DeleteObject" => a
            .token("ObjectName")
            .map(|object_name| AcsRequest::DeleteObject {
                object_name,
                parameter_key: a.text_or("ParameterKey"),
            }),
        "Reboot" => Ok(AcsRequest::Reboot {
            command_key: a.text_or("CommandKey"),
        }),
        "Download" => download(a).map(AcsRequest::Download),
        "Upload" => upload(a).map(AcsRequest::Upload),
        "FactoryReset" => Ok(AcsRequest::FactoryReset),
        "ScheduleInform" => a
            .u32("DelaySeconds")
            .map(|delay_seconds| AcsRequest::ScheduleInform {
                delay_seconds,
                command_key: a.text_or("CommandKey"),
            }),
        "GetQueuedTransfers" => Ok(AcsRequest::GetQueuedTransfers),
        "GetAllQueuedTransfers" => Ok(AcsRequest::GetAllQueuedTransfers),
        "ScheduleDownload" => schedule_download(a).map(AcsRequest::ScheduleDownload),
        "CancelTransfer" => Ok(AcsRequest::CancelTransfer {
            command_key: a.text_or("CommandKey"),
        }),
        "ChangeDUState" => change_du_state(a),
        _ => return None,
    })
}

/// An ACS → CPE response by element name; `None` when the name is not one.
pub(crate) fn acs_response(method: &str, a: Args<'_, '_>) -> Option<Result<AcsResponse, String>> {
    Some(match method {
        "InformResponse" => a
            .num_or("MaxEnvelopes", 1)
            .map(|max_envelopes| AcsResponse::Inform { max_envelopes }),
        "TransferCompleteResponse" => Ok(AcsResponse::TransferComplete),
        "AutonomousTransferCompleteResponse" => Ok(AcsResponse::AutonomousTransferComplete),
        "RequestDownloadResponse" => Ok(AcsResponse::RequestDownload),
        "GetRPCMethodsResponse" => a
            .strings("MethodList")
            .map(|methods| AcsResponse::GetRpcMethods { methods }),
        "KickedResponse" => Ok(AcsResponse::Kicked {
            next_url: a.token_or("NextURL"),
        }),
        "DUStateChangeCompleteResponse" => Ok(AcsResponse::DuStateChangeComplete),
        "AutonomousDUStateChangeCompleteResponse" => {
            Ok(AcsResponse::AutonomousDuStateChangeComplete)
        }
        _ => return None,
    })
}

fn get_parameter_names(a: Args<'_, '_>) -> Result<AcsRequest, String> {
    Ok(AcsRequest::GetParameterNames {
        path: a.token("ParameterPath")?,
        next_level: a.bool("NextLevel")?,
    })
}

/// §A.3.2.1. Values are kept exactly as sent; `xsi:type` is kept when given.
fn set_parameter_values(a: Args<'_, '_>) -> Result<AcsRequest, String> {
    Ok(AcsRequest::SetParameterValues {
        list: a.list("ParameterList", |s| {
            let value = s
                .child("Value")
                .ok_or("ParameterValueStruct without a Value")?;
            Ok(SetValue {
                name: s.token("Name")?,
                value: tree::text(value).into_owned(),
                xsi_type: tree::xsi_type(value),
            })
        })?,
        parameter_key: a.text_or("ParameterKey"),
    })
}

/// §A.3.2.4.
fn set_parameter_attributes(a: Args<'_, '_>) -> Result<AcsRequest, String> {
    let list = a.list("ParameterList", |s| {
        let notification_change = s.bool("NotificationChange")?;
        let access_list_change = s.bool("AccessListChange")?;
        Ok(SetAttributes {
            name: s.token("Name")?,
            notification_change,
            notification: if notification_change {
                s.num("Notification")?
            } else {
                s.num_or("Notification", 0)?
            },
            access_list_change,
            access_list: if access_list_change {
                s.strings("AccessList")?
            } else {
                s.strings_or("AccessList")
            },
        })
    })?;
    Ok(AcsRequest::SetParameterAttributes { list })
}

/// §A.3.2.8.
fn download(a: Args<'_, '_>) -> Result<Download, String> {
    Ok(Download {
        command_key: a.text_or("CommandKey"),
        file_type: a.token("FileType")?,
        url: a.token("URL")?,
        username: a.text_or("Username"),
        password: a.text_or("Password"),
        file_size: a.num_or("FileSize", 0)?,
        target_file_name: a.token_or("TargetFileName"),
        delay_seconds: a.num_or("DelaySeconds", 0)?,
        success_url: a.token_or("SuccessURL"),
        failure_url: a.token_or("FailureURL"),
    })
}

/// §A.3.2.9.
fn upload(a: Args<'_, '_>) -> Result<Upload, String> {
    Ok(Upload {
        command_key: a.text_or("CommandKey"),
        file_type: a.token("FileType")?,
        url: a.token("URL")?,
        username: a.text_or("Username"),
        password: a.text_or("Password"),
        delay_seconds: a.num_or("DelaySeconds", 0)?,
    })
}

/// §A.4.1.8: one or two time windows.
fn schedule_download(a: Args<'_, '_>) -> Result<ScheduleDownload, String> {
    let time_windows = a.list("TimeWindowList", |w| {
        Ok(TimeWindow {
            window_start: w.u32("WindowStart")?,
            window_end: w.u32("WindowEnd")?,
            window_mode: w.token("WindowMode")?,
            user_message: w.text_or("UserMessage"),
            max_retries: w.num("MaxRetries")?,
        })
    })?;
    if !(1..=2).contains(&time_windows.len()) {
        return Err(format!(
            "TimeWindowList has {} windows, not 1 or 2",
            time_windows.len()
        ));
    }
    Ok(ScheduleDownload {
        command_key: a.text_or("CommandKey"),
        file_type: a.token("FileType")?,
        url: a.token("URL")?,
        username: a.text_or("Username"),
        password: a.text_or("Password"),
        file_size: a.num_or("FileSize", 0)?,
        target_file_name: a.token_or("TargetFileName"),
        time_windows,
    })
}

/// §A.4.1.10: each `Operations` element is one operation typed by `xsi:type`, or (a layout seen
/// in other implementations) a wrapper of `InstallOpStruct`/`UpdateOpStruct`/`UninstallOpStruct`.
fn change_du_state(a: Args<'_, '_>) -> Result<AcsRequest, String> {
    let mut operations = Vec::new();
    for op in a.all("Operations") {
        match tree::xsi_type(op) {
            Some(t) => operations.push(du_operation(xsi_local(&t), Args(op))?),
            None => {
                for inner in op.children().filter(Node::is_element) {
                    operations.push(du_operation(inner.tag_name().name(), Args(inner))?);
                }
            }
        }
    }
    if operations.is_empty() {
        return Err("missing argument Operations".into());
    }
    Ok(AcsRequest::ChangeDuState {
        operations,
        command_key: a.text_or("CommandKey"),
    })
}

fn xsi_local(t: &XsiType) -> &str {
    match t {
        // No BaseType is an operation struct.
        XsiType::Known(_) => "",
        XsiType::Unknown(s) => s.rsplit(':').next().unwrap_or(s),
    }
}

fn du_operation(kind: &str, o: Args<'_, '_>) -> Result<DuOperation, String> {
    Ok(match kind {
        "InstallOpStruct" => DuOperation::Install {
            url: o.token("URL")?,
            uuid: o.token_or("UUID"),
            username: o.text_or("Username"),
            password: o.text_or("Password"),
            execution_env_ref: o.token_or("ExecutionEnvRef"),
        },
        "UpdateOpStruct" => DuOperation::Update {
            uuid: o.token_or("UUID"),
            version: o.token_or("Version"),
            url: o.token_or("URL"),
            username: o.text_or("Username"),
            password: o.text_or("Password"),
        },
        "UninstallOpStruct" => DuOperation::Uninstall {
            uuid: o.token("UUID")?,
            version: o.token_or("Version"),
            execution_env_ref: o.token_or("ExecutionEnvRef"),
        },
        other => return Err(format!("unknown ChangeDUState operation {other:?}")),
    })
}
