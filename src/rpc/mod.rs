//! Executes typed ACS requests (TR-069 §A.3.2, §A.4.1) against the data model engine and the
//! agent's device controls. Handlers never see XML; every error is a [`Fault`].
//!
//! Parameter RPCs go straight to the engine ([`crate::datamodel`]); device control and transfers
//! go through the [`Control`] trait that the agent implements.

use crate::cwmp::fault::Fault;
use crate::datamodel::Engine;
use crate::soap::msg::{
    AcsRequest, CpeResponse, Download, QueuedTransfer, ScheduleDownload, Upload,
};

/// Device actions the agent carries out (reboot, schedule, transfers). A method left at its
/// default answers 9000 and is not listed by GetRPCMethods.
pub trait Control {
    /// The optional methods this agent supports, as listed by GetRPCMethods.
    fn supported(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Reboot (§A.3.2.10): reboot after the session ends; `M Reboot` with the CommandKey next.
    fn reboot(&mut self, command_key: &str) -> Result<(), Fault> {
        let _ = command_key;
        Err(not_supported("Reboot"))
    }
    /// FactoryReset (§A.4.1.3): reset after the session ends; `0 BOOTSTRAP` next.
    fn factory_reset(&mut self) -> Result<(), Fault> {
        Err(not_supported("FactoryReset"))
    }
    /// ScheduleInform (§A.4.1.4).
    fn schedule_inform(&mut self, delay_seconds: u32, command_key: &str) -> Result<(), Fault> {
        let _ = (delay_seconds, command_key);
        Err(not_supported("ScheduleInform"))
    }
    /// Download (§A.3.2.8): `(status, start_time, complete_time)`.
    fn download(&mut self, d: &Download) -> Result<(u8, String, String), Fault> {
        let _ = d;
        Err(not_supported("Download"))
    }
    /// Upload (§A.3.2.9).
    fn upload(&mut self, u: &Upload) -> Result<(u8, String, String), Fault> {
        let _ = u;
        Err(not_supported("Upload"))
    }
    /// ScheduleDownload (§A.4.1.8).
    fn schedule_download(&mut self, d: &ScheduleDownload) -> Result<(), Fault> {
        let _ = d;
        Err(not_supported("ScheduleDownload"))
    }
    /// CancelTransfer (§A.4.1.9).
    fn cancel_transfer(&mut self, command_key: &str) -> Result<(), Fault> {
        let _ = command_key;
        Err(not_supported("CancelTransfer"))
    }
    /// GetQueuedTransfers / GetAllQueuedTransfers (§A.4.1.5, §A.4.1.6).
    fn queued_transfers(&mut self) -> Result<Vec<QueuedTransfer>, Fault> {
        Err(not_supported("GetQueuedTransfers"))
    }
}

fn not_supported(method: &str) -> Fault {
    Fault::MethodNotSupported(format!("{method} is not supported by this CPE"))
}

/// The methods the engine serves, always listed by GetRPCMethods. (TR-069 also requires Reboot
/// and Download of a CPE; those, like every device action, are listed when the [`Control`]
/// implementation supports them, so the list never names a method that would answer 9000.)
pub const REQUIRED_METHODS: &[&str] = &[
    "GetRPCMethods",
    "GetParameterNames",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
];

/// The method list of a GetRPCMethodsResponse: the required ones, then what `ctl` supports.
pub fn method_list(ctl: &dyn Control) -> Vec<String> {
    REQUIRED_METHODS
        .iter()
        .chain(ctl.supported().iter())
        .map(|m| m.to_string())
        .collect()
}

/// Executes one ACS request. Never panics; every failure is a fault response.
pub fn execute(engine: &mut Engine, ctl: &mut dyn Control, req: &AcsRequest) -> CpeResponse {
    match run(engine, ctl, req) {
        Ok(r) => r,
        Err(f) => CpeResponse::Fault(f),
    }
}

fn run(engine: &mut Engine, ctl: &mut dyn Control, req: &AcsRequest) -> Result<CpeResponse, Fault> {
    Ok(match req {
        AcsRequest::GetRpcMethods => CpeResponse::GetRpcMethods {
            methods: method_list(ctl),
        },
        AcsRequest::GetParameterNames { path, next_level } => CpeResponse::GetParameterNames {
            list: engine.names(path, *next_level)?,
        },
        AcsRequest::GetParameterValues { names } => CpeResponse::GetParameterValues {
            list: engine.values(names)?,
        },
        AcsRequest::SetParameterValues {
            list,
            parameter_key,
        } => CpeResponse::SetParameterValues {
            status: engine.set_values(list, parameter_key)?.status(),
        },
        AcsRequest::GetParameterAttributes { names } => CpeResponse::GetParameterAttributes {
            list: engine.attributes(names)?,
        },
        AcsRequest::SetParameterAttributes { list } => {
            engine.set_attributes(list)?;
            CpeResponse::SetParameterAttributes
        }
        AcsRequest::AddObject {
            object_name,
            parameter_key,
        } => {
            let (instance_number, applied) = engine.add_object(object_name, parameter_key)?;
            CpeResponse::AddObject {
                instance_number,
                status: applied.status(),
            }
        }
        AcsRequest::DeleteObject {
            object_name,
            parameter_key,
        } => CpeResponse::DeleteObject {
            status: engine.delete_object(object_name, parameter_key)?.status(),
        },
        AcsRequest::Reboot { command_key } => {
            ctl.reboot(command_key)?;
            CpeResponse::Reboot
        }
        AcsRequest::FactoryReset => {
            ctl.factory_reset()?;
            CpeResponse::FactoryReset
        }
        AcsRequest::ScheduleInform {
            delay_seconds,
            command_key,
        } => {
            ctl.schedule_inform(*delay_seconds, command_key)?;
            CpeResponse::ScheduleInform
        }
        AcsRequest::Download(d) => {
            let (status, start_time, complete_time) = ctl.download(d)?;
            CpeResponse::Download {
                status,
                start_time,
                complete_time,
            }
        }
        AcsRequest::Upload(u) => {
            let (status, start_time, complete_time) = ctl.upload(u)?;
            CpeResponse::Upload {
                status,
                start_time,
                complete_time,
            }
        }
        AcsRequest::ScheduleDownload(d) => {
            ctl.schedule_download(d)?;
            CpeResponse::ScheduleDownload
        }
        AcsRequest::CancelTransfer { command_key } => {
            ctl.cancel_transfer(command_key)?;
            CpeResponse::CancelTransfer
        }
        AcsRequest::GetQueuedTransfers => CpeResponse::GetQueuedTransfers {
            list: ctl
                .queued_transfers()?
                .into_iter()
                .filter(|t| t.state != 3)
                .collect(),
        },
        AcsRequest::GetAllQueuedTransfers => CpeResponse::GetAllQueuedTransfers {
            list: ctl.queued_transfers()?,
        },
        AcsRequest::ChangeDuState { .. } => return Err(not_supported("ChangeDUState")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The methods §A.3.1 requires of every CPE that the engine serves itself (Reboot and
    /// Download follow the hooks, see the agent's `Control`): pinned here by name, since the
    /// integration tests build their expected lists from this constant.
    #[test]
    fn required_methods_are_the_parameter_rpcs() {
        assert_eq!(
            REQUIRED_METHODS,
            [
                "GetRPCMethods",
                "GetParameterNames",
                "GetParameterValues",
                "SetParameterValues",
                "GetParameterAttributes",
                "SetParameterAttributes",
                "AddObject",
                "DeleteObject",
            ]
        );
    }
}
