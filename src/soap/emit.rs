//! Emitting what the CPE sends to the ACS (TR-069 §A.3.3 and §A.4.2 requests, the responses of
//! §A.3.2 and §A.4.1, and §A.5 faults). Element names and order follow `cwmp-1-2.xsd`.
//!
//! Every array carries `SOAP-ENC:arrayType` with its item type and count (§A.2.2), every
//! ParameterValueStruct Value its `xsi:type` (§A.3.2.1), booleans are written `1`/`0`.

use std::fmt::Write;
use std::io::Read;

use super::msg::*;
use super::xml::{HeaderOut, Writer, BASE_CAPACITY};
use crate::cwmp::fault::{Fault, FaultOrigin};
use crate::cwmp::value::{BaseType, Count, ParameterValue, ParameterValues};
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
            parameter_values(&mut w, &inf.parameters);
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
    if let CpeResponse::GetParameterValues { list } = resp {
        let (head, tail, len) = values_parts(ns, id, list);
        return ValuesReader::new(&head, list, &tail).read_whole(len);
    }
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
        // Emitted above, in one piece with its body.
        CpeResponse::GetParameterValues { .. } => {}
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

/// `ParameterList` of ParameterValueStruct with `xsi:type` on every Value (the Inform's).
fn parameter_values(w: &mut Writer, list: &[ParameterValue]) {
    w.start_array("ParameterList", "cwmp:ParameterValueStruct", list.len());
    for p in list {
        parameter_value(w, &p.name, &p.value, p.ty);
    }
    w.end("ParameterList");
}

/// One ParameterValueStruct.
fn parameter_value<S: Write>(w: &mut Writer<S>, name: &str, value: &str, ty: BaseType) {
    // What `start`, `elem`, `value` and `end` would write, the markup between the two texts
    // in as few pieces as it has (a whole tree's GPV writes thousands, twice: counted, then
    // written); the type names need no escaping.
    w.raw("<ParameterValueStruct><Name>");
    w.text(name);
    w.raw("</Name><Value xsi:type=\"");
    w.raw(ty.xsi_type());
    w.raw("\">");
    w.text(value);
    w.raw("</Value></ParameterValueStruct>");
}

/// A GetParameterValuesResponse of `list` without its values: the envelope up to the first
/// ParameterValueStruct, from the end of the last, and the whole message's length (the
/// ParameterValueStructs counted by the code that writes them).
fn values_parts(ns: CwmpNs, id: Option<&str>, list: &ParameterValues) -> (String, String, usize) {
    let name = "GetParameterValuesResponse";
    let mut w = Writer::envelope(BASE_CAPACITY, ns, &HeaderOut::id(id));
    w.start_rpc(name);
    w.start_array("ParameterList", "cwmp:ParameterValueStruct", list.len());
    let mut t = Writer::part(String::with_capacity(128));
    t.end("ParameterList");
    t.end_rpc(name);
    t.close();
    let mut n = Writer::part(Count(0));
    for p in list {
        parameter_value(&mut n, p.name, p.value, p.ty);
    }
    let (head, tail) = (w.into_inner(), t.into_inner());
    let len = head.len() + n.into_inner().0 + tail.len();
    (head, tail, len)
}

/// See [`super::emit_response_body`].
pub(crate) fn emit_response_body(ns: CwmpNs, id: Option<&str>, resp: CpeResponse) -> Body {
    match resp {
        CpeResponse::GetParameterValues { list } => {
            let (head, tail, len) = values_parts(ns, id, &list);
            Body::Values(ValuesBody {
                head,
                list,
                tail,
                len,
            })
        }
        other => Body::Bytes(emit_response(ns, id, &other)),
    }
}

/// A message as it is posted to the ACS: its bytes, or a GetParameterValuesResponse whose
/// ParameterValueStructs are written as the message goes out.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The whole message (empty: the empty POST).
    Bytes(Vec<u8>),
    Values(ValuesBody),
}

impl Body {
    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Body::Bytes(b) => b.len(),
            Body::Values(v) => v.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message's bytes, in one piece.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Values(v) => v.to_vec(),
        }
    }
}

/// A GetParameterValuesResponse kept as its envelope's start and end and its list: a response
/// of thousands of values is not held twice (as a list and as markup) while it is sent (issue
/// 19). [`ValuesBody::reader`] writes its markup a chunk at a time; [`ValuesBody::len`] is
/// counted by the same code, so a `Content-Length` sent first is exact.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesBody {
    head: String,
    list: ParameterValues,
    tail: String,
    len: usize,
}

/// How much markup [`ValuesReader`] writes ahead (one ParameterValueStruct more at most).
const CHUNK: usize = 8 * 1024;

impl ValuesBody {
    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message from its start, as many times as it is sent (again after a 401).
    pub fn reader(&self) -> ValuesReader<'_> {
        ValuesReader::new(&self.head, &self.list, &self.tail)
    }

    /// The message's bytes, in one piece.
    pub fn to_vec(&self) -> Vec<u8> {
        self.reader().read_whole(self.len)
    }
}

/// The bytes of a GetParameterValuesResponse (a [`ValuesBody`], or one emitted whole), written
/// as they are read.
pub struct ValuesReader<'a> {
    head: &'a str,
    tail: &'a str,
    items: crate::cwmp::value::Iter<'a>,
    /// Markup written and not yet read from `at` on.
    chunk: String,
    at: usize,
    stage: Stage,
}

#[derive(Clone, Copy)]
enum Stage {
    Head,
    Items,
    Tail,
    Done,
}

impl Read for ValuesReader<'_> {
    /// Fills `out` as far as the message goes: a chunk at a time, so that ureq's 16 KiB output
    /// buffer leaves full.
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
            let n = self.read_chunk(rest);
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

impl<'a> ValuesReader<'a> {
    fn new(head: &'a str, list: &'a ParameterValues, tail: &'a str) -> ValuesReader<'a> {
        ValuesReader {
            head,
            tail,
            items: list.iter(),
            chunk: String::new(),
            at: 0,
            stage: Stage::Head,
        }
    }

    /// All of the message, `len` bytes long, in one piece.
    fn read_whole(mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        // Reading from memory cannot fail.
        let _ = self.read_to_end(&mut out);
        out
    }

    /// Copies from the current chunk into `out`, writing the next chunk first when this one is
    /// read; 0 at the end of the message (or for an empty `out`).
    fn read_chunk(&mut self, out: &mut [u8]) -> usize {
        while self.at >= self.chunk.len() {
            self.chunk.clear();
            self.at = 0;
            match self.stage {
                Stage::Head => {
                    self.chunk.push_str(self.head);
                    self.stage = Stage::Items;
                }
                Stage::Items => {
                    let mut w = Writer::part(std::mem::take(&mut self.chunk));
                    loop {
                        let Some(p) = self.items.next() else {
                            self.stage = Stage::Tail;
                            break;
                        };
                        parameter_value(&mut w, p.name, p.value, p.ty);
                        if w.len() >= CHUNK {
                            break;
                        }
                    }
                    self.chunk = w.into_inner();
                }
                Stage::Tail => {
                    self.chunk.push_str(self.tail);
                    self.stage = Stage::Done;
                }
                Stage::Done => return 0,
            }
        }
        let left = self.chunk.as_bytes().get(self.at..).unwrap_or_default();
        let n = left.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), left.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        n
    }
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
        // A GetParameterValuesResponse is counted first: exactly its size.
        assert_eq!(bytes.capacity(), bytes.len());
        assert!(bytes.len() > 150_000);
        let inform = CpeRequest::Inform(Inform {
            parameters: list,
            ..Inform::default()
        });
        let bytes = emit_request(CwmpNs::V1_2, &Header::default(), &inform);
        assert_eq!(bytes.capacity(), request_capacity(&inform));
    }

    /// A GetParameterValuesResponse posted as it is written is byte for byte the response
    /// emitted whole, whatever the reader's buffer, as often as it is read; its length is
    /// counted exactly. Values that are escaped, replaced, multi-byte, longer than a chunk, and
    /// the empty list.
    #[test]
    fn a_streamed_response_is_the_response_emitted_whole() {
        let long = "x&<".repeat(CHUNK);
        let values = ["", "plain", "a&b<c>d\"e'f\rg\u{1}h\u{FFFE}", "café 𝄞"];
        for n in [0, 1, 2, 7, 300, 3_000] {
            let list: ParameterValues = (0..n)
                .map(|i| ParameterValue {
                    name: format!("Device.X.{i}.Name"),
                    value: if i == 4 {
                        long.clone()
                    } else {
                        values[i % values.len()].to_string()
                    },
                    ty: if i % 3 == 0 {
                        BaseType::Boolean
                    } else {
                        BaseType::String
                    },
                })
                .collect();
            for (ns, id) in [(CwmpNs::V1_0, None), (CwmpNs::V1_4, Some("id & <7>"))] {
                let resp = CpeResponse::GetParameterValues { list: list.clone() };
                let whole = emit_response(ns, id, &resp);
                let body = emit_response_body(ns, id, resp);
                let Body::Values(v) = &body else {
                    panic!("not streamed")
                };
                assert_eq!(body.len(), whole.len(), "{n}");
                assert!(body.to_vec() == whole, "{n}");
                assert!(v.to_vec() == whole, "{n}: read again");
                for size in [1, 7, 4096, 1 << 20] {
                    if size < 4096 && n > 300 {
                        continue;
                    }
                    let mut r = v.reader();
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; size];
                    loop {
                        let k = r.read(&mut buf).unwrap();
                        if k == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..k]);
                    }
                    assert!(got == whole, "{n} values, reads of {size}");
                    assert_eq!(r.read(&mut buf).unwrap(), 0, "the end stays the end");
                }
            }
        }
        // Every other response is emitted whole.
        let other = emit_response_body(CwmpNs::V1_2, None, CpeResponse::Reboot);
        assert_eq!(
            other,
            Body::Bytes(emit_response(CwmpNs::V1_2, None, &CpeResponse::Reboot))
        );
        assert!(!other.is_empty());
    }
}
