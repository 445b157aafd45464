//! Emitting what the CPE sends to the ACS (TR-069 §A.3.3 and §A.4.2 requests, the responses of
//! §A.3.2 and §A.4.1, and §A.5 faults). Element names and order follow `cwmp-1-2.xsd`.
//!
//! Every array carries `SOAP-ENC:arrayType` with its item type and count (§A.2.2), every
//! ParameterValueStruct Value its `xsi:type` (§A.3.2.1), booleans are written `1`/`0`.

use super::msg::*;
use super::xml::{HeaderOut, Writer, BASE_CAPACITY};
use crate::cwmp::fault::{Fault, FaultOrigin};
use crate::cwmp::value::{BaseType, ParameterValue, ParameterValues};
use crate::cwmp::version::CwmpNs;

/// See [`super::emit_request`].
pub(crate) fn emit_request(ns: CwmpNs, header: &Header, req: &CpeRequest) -> Vec<u8> {
    let mut w = Writer::envelope(request_capacity(req), ns, &HeaderOut::cpe(header));
    let name = req.method();
    match req {
        CpeRequest::Inform(inf) => {
            w.start_rpc(name);
            w.start("DeviceId");
            w.elem("Manufacturer", &inf.device_id.manufacturer);
            w.elem("OUI", &inf.device_id.oui);
            w.elem("ProductClass", &inf.device_id.product_class);
            w.elem("SerialNumber", &inf.device_id.serial_number);
            w.end("DeviceId");
            w.start_array("Event", "cwmp:EventStruct", inf.events.len());
            for e in &inf.events {
                w.start("EventStruct");
                w.elem("EventCode", &e.code);
                w.elem("CommandKey", &e.command_key);
                w.end("EventStruct");
            }
            w.end("Event");
            w.elem_num("MaxEnvelopes", inf.max_envelopes);
            w.elem("CurrentTime", &inf.current_time);
            w.elem_num("RetryCount", inf.retry_count);
            parameter_values(&mut w, inf.parameters.len(), owned(&inf.parameters));
            w.end_rpc(name);
        }
        CpeRequest::TransferComplete {
            command_key,
            fault,
            start_time,
            complete_time,
        } => {
            w.start_rpc(name);
            w.elem("CommandKey", command_key);
            fault_struct(&mut w, fault);
            w.elem("StartTime", start_time);
            w.elem("CompleteTime", complete_time);
            w.end_rpc(name);
        }
        CpeRequest::AutonomousTransferComplete {
            announce_url,
            transfer_url,
            is_download,
            file_type,
            file_size,
            target_file_name,
            fault,
            start_time,
            complete_time,
        } => {
            w.start_rpc(name);
            w.elem("AnnounceURL", announce_url);
            w.elem("TransferURL", transfer_url);
            w.elem_bool("IsDownload", *is_download);
            w.elem("FileType", file_type);
            w.elem_num("FileSize", file_size);
            w.elem("TargetFileName", target_file_name);
            fault_struct(&mut w, fault);
            w.elem("StartTime", start_time);
            w.elem("CompleteTime", complete_time);
            w.end_rpc(name);
        }
        CpeRequest::RequestDownload { file_type, args } => {
            w.start_rpc(name);
            w.elem("FileType", file_type);
            w.start_array("FileTypeArg", "cwmp:ArgStruct", args.len());
            for (n, v) in args {
                w.start("ArgStruct");
                w.elem("Name", n);
                w.elem("Value", v);
                w.end("ArgStruct");
            }
            w.end("FileTypeArg");
            w.end_rpc(name);
        }
        CpeRequest::Kicked {
            command,
            referer,
            arg,
            next,
        } => {
            w.start_rpc(name);
            w.elem("Command", command);
            w.elem("Referer", referer);
            w.elem("Arg", arg);
            w.elem("Next", next);
            w.end_rpc(name);
        }
        CpeRequest::GetRpcMethods => w.empty_rpc(name),
    }
    w.finish()
}

/// See [`super::emit_response`].
pub(crate) fn emit_response(ns: CwmpNs, id: Option<&str>, resp: &CpeResponse) -> Vec<u8> {
    let mut w = Writer::envelope(response_capacity(resp), ns, &HeaderOut::id(id));
    let Some(name) = resp.element() else {
        if let CpeResponse::Fault(f) = resp {
            cpe_fault(&mut w, f);
        }
        return w.finish();
    };
    match resp {
        CpeResponse::GetRpcMethods { methods } => {
            w.start_rpc(name);
            w.string_array("MethodList", methods);
            w.end_rpc(name);
        }
        CpeResponse::GetParameterNames { list } => {
            w.start_rpc(name);
            w.start_array("ParameterList", "cwmp:ParameterInfoStruct", list.len());
            for p in list {
                w.start("ParameterInfoStruct");
                w.elem("Name", &p.name);
                w.elem_bool("Writable", p.writable);
                w.end("ParameterInfoStruct");
            }
            w.end("ParameterList");
            w.end_rpc(name);
        }
        CpeResponse::GetParameterValues { list } => {
            w.start_rpc(name);
            parameter_values(
                &mut w,
                list.len(),
                list.iter().map(|p| (p.name, p.value, p.ty)),
            );
            w.end_rpc(name);
        }
        CpeResponse::GetParameterAttributes { list } => {
            w.start_rpc(name);
            w.start_array("ParameterList", "cwmp:ParameterAttributeStruct", list.len());
            for p in list {
                w.start("ParameterAttributeStruct");
                w.elem("Name", &p.name);
                w.elem_num("Notification", p.notification);
                w.string_array("AccessList", &p.access_list);
                w.end("ParameterAttributeStruct");
            }
            w.end("ParameterList");
            w.end_rpc(name);
        }
        CpeResponse::SetParameterValues { status } | CpeResponse::DeleteObject { status } => {
            w.start_rpc(name);
            w.elem_num("Status", status);
            w.end_rpc(name);
        }
        CpeResponse::AddObject {
            instance_number,
            status,
        } => {
            w.start_rpc(name);
            w.elem_num("InstanceNumber", instance_number);
            w.elem_num("Status", status);
            w.end_rpc(name);
        }
        CpeResponse::Download {
            status,
            start_time,
            complete_time,
        }
        | CpeResponse::Upload {
            status,
            start_time,
            complete_time,
        } => {
            w.start_rpc(name);
            w.elem_num("Status", status);
            w.elem("StartTime", start_time);
            w.elem("CompleteTime", complete_time);
            w.end_rpc(name);
        }
        CpeResponse::GetQueuedTransfers { list } => {
            w.start_rpc(name);
            w.start_array("TransferList", "cwmp:QueuedTransferStruct", list.len());
            for t in list {
                w.start("QueuedTransferStruct");
                w.elem("CommandKey", &t.command_key);
                w.elem_num("State", t.state);
                w.end("QueuedTransferStruct");
            }
            w.end("TransferList");
            w.end_rpc(name);
        }
        CpeResponse::GetAllQueuedTransfers { list } => {
            w.start_rpc(name);
            w.start_array("TransferList", "cwmp:AllQueuedTransferStruct", list.len());
            for t in list {
                w.start("AllQueuedTransferStruct");
                w.elem("CommandKey", &t.command_key);
                w.elem_num("State", t.state);
                w.elem_bool("IsDownload", t.is_download);
                w.elem("FileType", &t.file_type);
                w.elem_num("FileSize", t.file_size);
                w.elem("TargetFileName", &t.target_file_name);
                w.end("AllQueuedTransferStruct");
            }
            w.end("TransferList");
            w.end_rpc(name);
        }
        CpeResponse::SetParameterAttributes
        | CpeResponse::Reboot
        | CpeResponse::FactoryReset
        | CpeResponse::ScheduleInform
        | CpeResponse::ScheduleDownload
        | CpeResponse::CancelTransfer
        | CpeResponse::ChangeDuState => w.empty_rpc(name),
        // `element()` is `None` for a fault, handled above.
        CpeResponse::Fault(f) => cpe_fault(&mut w, f),
    }
    w.finish()
}

/// A CWMP fault from the CPE (§A.5.1): faultcode from Table A.5, FaultString from the fault.
fn cpe_fault(w: &mut Writer, f: &Fault) {
    let faultcode = match f.origin() {
        FaultOrigin::Client => "Client",
        FaultOrigin::Server => "Server",
    };
    w.fault(faultcode, f.code(), &f.fault_string(), f.param_faults());
}

/// `ParameterList` of ParameterValueStruct with `xsi:type` on every Value (Inform, GPV response).
/// The `n` entries of `list`: (name, value, type).
fn parameter_values<'a>(
    w: &mut Writer,
    n: usize,
    list: impl Iterator<Item = (&'a str, &'a str, BaseType)>,
) {
    w.start_array("ParameterList", "cwmp:ParameterValueStruct", n);
    for (name, value, ty) in list {
        w.start("ParameterValueStruct");
        w.elem("Name", name);
        w.value(Some(ty.xsi_type()), value);
        w.end("ParameterValueStruct");
    }
    w.end("ParameterList");
}

/// The entries of a list of structs, as [`parameter_values`] takes them.
fn owned(list: &[ParameterValue]) -> impl Iterator<Item = (&str, &str, BaseType)> {
    list.iter()
        .map(|p| (p.name.as_str(), p.value.as_str(), p.ty))
}

/// `FaultStruct` of TransferComplete (§A.3.3.2): code 0 and an empty string on success.
fn fault_struct(w: &mut Writer, f: &FaultStruct) {
    w.start("FaultStruct");
    w.elem_num("FaultCode", f.code);
    w.elem("FaultString", &f.string);
    w.end("FaultStruct");
}

/// Bytes of markup around one ParameterValueStruct, with room for an `xsi:type`.
const PVS_OVERHEAD: usize = 112;

fn parameter_values_capacity(list: &[ParameterValue]) -> usize {
    list.iter()
        .map(|p| p.name.len() + p.value.len() + PVS_OVERHEAD)
        .sum()
}

fn compact_values_capacity(list: &ParameterValues) -> usize {
    list.text_len() + list.len() * PVS_OVERHEAD
}

fn request_capacity(req: &CpeRequest) -> usize {
    BASE_CAPACITY
        + match req {
            CpeRequest::Inform(inf) => {
                512 + parameter_values_capacity(&inf.parameters)
                    + inf
                        .events
                        .iter()
                        .map(|e| e.code.len() + e.command_key.len() + 80)
                        .sum::<usize>()
            }
            CpeRequest::RequestDownload { args, .. } => {
                256 + args
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 64)
                    .sum::<usize>()
            }
            _ => 512,
        }
}

fn response_capacity(resp: &CpeResponse) -> usize {
    BASE_CAPACITY
        + match resp {
            CpeResponse::GetParameterValues { list } => compact_values_capacity(list),
            CpeResponse::GetParameterNames { list } => list.iter().map(|p| p.name.len() + 96).sum(),
            CpeResponse::GetParameterAttributes { list } => list
                .iter()
                .map(|p| {
                    p.name.len() + 160 + p.access_list.iter().map(|a| a.len() + 20).sum::<usize>()
                })
                .sum(),
            CpeResponse::GetRpcMethods { methods } => methods.iter().map(|m| m.len() + 20).sum(),
            CpeResponse::GetQueuedTransfers { list }
            | CpeResponse::GetAllQueuedTransfers { list } => list
                .iter()
                .map(|t| t.command_key.len() + t.file_type.len() + t.target_file_name.len() + 256)
                .sum(),
            CpeResponse::Fault(f) => {
                256 + f
                    .param_faults()
                    .iter()
                    .map(|p| p.name.len() + p.fault.detail().len() + 200)
                    .sum::<usize>()
            }
            _ => 256,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer reserved up front is enough: emitting a large response never reallocates.
    #[test]
    fn large_responses_fit_their_reserved_buffer() {
        let list: Vec<ParameterValue> = (0..2_000)
            .map(|i| ParameterValue {
                name: format!("Device.Hosts.Host.{i}.LeaseTimeRemaining"),
                value: (i * 37).to_string(),
                ty: if i % 2 == 0 {
                    BaseType::UnsignedLong
                } else {
                    BaseType::String
                },
            })
            .collect();
        let resp = CpeResponse::GetParameterValues {
            list: list.iter().cloned().collect(),
        };
        let bytes = emit_response(CwmpNs::V1_2, Some("12345678"), &resp);
        assert_eq!(bytes.capacity(), response_capacity(&resp));
        assert!(bytes.len() > 150_000);
        let inform = CpeRequest::Inform(Inform {
            parameters: list,
            ..Inform::default()
        });
        let bytes = emit_request(CwmpNs::V1_2, &Header::default(), &inform);
        assert_eq!(bytes.capacity(), request_capacity(&inform));
    }
}
