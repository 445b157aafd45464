//! The transcript printer of the test ACS: what its verbose mode prints, as a pure function
//! from the exchange records ([`Event`]) to text, for a human reader. One block per message, an
//! arrow for the direction, the method and its key arguments; a session starts with a
//! `━━ session N ━━` rule. [`render`] gives one record's text, [`transcript`] the text of all.

use cwmpd::cwmp::version::CwmpNs;
use cwmpd::soap::{AcsRequest, AcsResponse, CpeRequest, CpeResponse, Header, Inform};

use super::session::Event;
use super::Call;

/// The text of every record, in order.
pub fn transcript(events: &[Event]) -> String {
    events.iter().map(render).collect()
}

/// The text of one record (it ends with a newline).
pub fn render(event: &Event) -> String {
    match event {
        Event::TlsFailed(msg) => format!("\n!! {msg}\n"),
        Event::AuthRefused { note, digest: None } => format!("   ACS: {note}\n"),
        Event::AuthRefused {
            note,
            digest: Some((algorithm, realm, conn)),
        } => format!("   ACS: {note} ({algorithm} {realm}, conn {conn})\n"),
        Event::Unparsable(msg) => format!("\n!! CPE sent {msg}\n"),
        Event::OutsideSession => "\n!! CPE POST outside a session: 400\n".into(),
        Event::CookieMissing(msg) => format!("\n!! {msg}: 400\n"),
        Event::Inform {
            index,
            ns,
            header,
            inform,
            conn,
        } => describe_inform(*index, *ns, header, inform, *conn),
        Event::Busy(secs) => format!("── ACS → CPE ── HTTP 503, Retry-After: {secs}\n"),
        Event::RefusedHttp { status, ns } => format!(
            "── ACS → CPE ── HTTP {status}: this ACS does not speak {}\n",
            ns.urn()
        ),
        Event::RefusedFault(fault) => {
            format!("── ACS → CPE ── Fault {} {}\n", fault.code, fault.string)
        }
        Event::InformResponse {
            response,
            use_version,
            other_ns,
            set_cookie,
        } => {
            let mut text = describe_acs_response(response);
            if let Some(v) = use_version {
                text.push_str(&format!("   UseCWMPVersion {v}\n"));
            }
            if let Some(ns) = other_ns {
                text.push_str(&format!("   (in namespace {})\n", ns.urn()));
            }
            if let Some(c) = set_cookie {
                text.push_str(&format!("   Set-Cookie: {c}\n"));
            }
            text
        }
        Event::CpeRequest { request, ns, conn } => describe_cpe_request(request, *ns, *conn),
        Event::AcsResponse(r) => describe_acs_response(r),
        Event::EmptyPost => "\n── CPE → ACS ── empty POST (no more CPE requests)\n".into(),
        Event::CpeResponse { response, ns } => match response {
            Ok(r) => describe_cpe_response(r, *ns),
            Err(e) => format!("\n!! {e}\n"),
        },
        Event::Call { call, id } => describe_call(call, id),
        Event::End(status) => {
            format!("── ACS → CPE ── HTTP {status}, empty body: the session is over\n")
        }
    }
}

const MAX_LINES: usize = 24;

fn ns_short(ns: CwmpNs) -> &'static str {
    ns.urn().trim_start_matches("urn:dslforum-org:")
}

fn lines(out: &mut String, items: impl IntoIterator<Item = String>) {
    let mut n = 0;
    let mut rest = 0;
    for item in items {
        if n < MAX_LINES {
            out.push_str("   ");
            out.push_str(&item);
            out.push('\n');
            n += 1;
        } else {
            rest += 1;
        }
    }
    if rest > 0 {
        out.push_str(&format!("   … and {rest} more\n"));
    }
}

fn describe_inform(
    index: usize,
    ns: CwmpNs,
    header: &Header,
    inform: &Inform,
    conn: u64,
) -> String {
    let d = &inform.device_id;
    let mut out = format!(
        "\n━━ session {} ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n\
         ── CPE → ACS ── Inform ({}, TCP connection {})\n",
        index + 1,
        ns_short(ns),
        conn
    );
    out.push_str(&format!(
        "   DeviceId   {} / OUI {} / {} / serial {}\n",
        d.manufacturer, d.oui, d.product_class, d.serial_number
    ));
    let events: Vec<String> = inform.events.iter().map(|e| e.to_string()).collect();
    out.push_str(&format!("   Events     {}\n", events.join(", ")));
    out.push_str(&format!(
        "   RetryCount {}   CurrentTime {}\n",
        inform.retry_count, inform.current_time
    ));
    if let Some(v) = &header.supported_versions {
        out.push_str(&format!("   SupportedCWMPVersions {v}\n"));
    }
    lines(
        &mut out,
        inform
            .parameters
            .iter()
            .map(|p| format!("{} = {}", p.name, p.value)),
    );
    out
}

fn describe_acs_response(r: &AcsResponse) -> String {
    match r {
        AcsResponse::Inform { max_envelopes } => {
            format!("── ACS → CPE ── InformResponse (MaxEnvelopes {max_envelopes})\n")
        }
        AcsResponse::GetRpcMethods { methods } => format!(
            "── ACS → CPE ── GetRPCMethodsResponse: {}\n",
            methods.join(", ")
        ),
        other => format!("── ACS → CPE ── {other:?}\n"),
    }
}

fn describe_cpe_request(r: &CpeRequest, ns: CwmpNs, conn: u64) -> String {
    let mut out = format!(
        "\n── CPE → ACS ── {} ({}, TCP connection {})\n",
        r.method(),
        ns_short(ns),
        conn
    );
    match r {
        CpeRequest::TransferComplete {
            command_key, fault, ..
        } => out.push_str(&format!(
            "   CommandKey {command_key:?}  FaultCode {}\n",
            fault.code
        )),
        CpeRequest::GetRpcMethods => {}
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}

fn describe_call(call: &Call, id: &str) -> String {
    let mut out = format!("\n── ACS → CPE ── {} (cwmp:ID {id})\n", call.method());
    let r = match call {
        Call::Raw { body, .. } => {
            out.push_str(&format!("   {body}\n"));
            return out;
        }
        Call::Rpc(r) => r,
    };
    match r {
        AcsRequest::GetRpcMethods => {}
        AcsRequest::GetParameterNames { path, next_level } => {
            out.push_str(&format!(
                "   ParameterPath {path:?}  NextLevel {next_level}\n"
            ));
        }
        AcsRequest::GetParameterValues { names } | AcsRequest::GetParameterAttributes { names } => {
            lines(&mut out, names.iter().cloned());
        }
        AcsRequest::SetParameterValues {
            list,
            parameter_key,
        } => {
            lines(
                &mut out,
                list.iter().map(|p| {
                    let ty = match &p.xsi_type {
                        Some(cwmpd::cwmp::value::XsiType::Known(t)) => t.xsi_type().to_string(),
                        Some(cwmpd::cwmp::value::XsiType::Unknown(t)) => t.clone(),
                        None => "no type".into(),
                    };
                    format!("{} = {:?}  ({ty})", p.name, p.value)
                }),
            );
            out.push_str(&format!("   ParameterKey {parameter_key:?}\n"));
        }
        AcsRequest::SetParameterAttributes { list } => lines(
            &mut out,
            list.iter().map(|a| {
                let mut s = a.name.clone();
                if a.notification_change {
                    s.push_str(&format!("  Notification → {}", a.notification));
                }
                if a.access_list_change {
                    s.push_str(&format!("  AccessList → {:?}", a.access_list));
                }
                s
            }),
        ),
        AcsRequest::AddObject {
            object_name,
            parameter_key,
        }
        | AcsRequest::DeleteObject {
            object_name,
            parameter_key,
        } => out.push_str(&format!(
            "   {object_name}  ParameterKey {parameter_key:?}\n"
        )),
        AcsRequest::ScheduleInform {
            delay_seconds,
            command_key,
        } => out.push_str(&format!(
            "   DelaySeconds {delay_seconds}  CommandKey {command_key:?}\n"
        )),
        AcsRequest::Reboot { command_key } | AcsRequest::CancelTransfer { command_key } => {
            out.push_str(&format!("   CommandKey {command_key:?}\n"));
        }
        AcsRequest::Download(d) => out.push_str(&format!(
            "   FileType {:?}  URL {}  CommandKey {:?}\n",
            d.file_type, d.url, d.command_key
        )),
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}

fn describe_cpe_response(r: &CpeResponse, ns: Option<CwmpNs>) -> String {
    let name = r.element().unwrap_or("Fault");
    let mut out = format!(
        "── CPE → ACS ── {name}{}\n",
        ns.map(|n| format!(" ({})", ns_short(n)))
            .unwrap_or_default()
    );
    match r {
        CpeResponse::GetRpcMethods { methods } => {
            out.push_str(&format!("   {}\n", methods.join(", ")));
        }
        CpeResponse::GetParameterNames { list } => lines(
            &mut out,
            list.iter()
                .map(|p| format!("{}{}", p.name, if p.writable { "  (writable)" } else { "" })),
        ),
        CpeResponse::GetParameterValues { list } => lines(
            &mut out,
            list.iter()
                .map(|p| format!("{} = {:?}  ({})", p.name, p.value, p.ty.xsi_type())),
        ),
        CpeResponse::GetParameterAttributes { list } => lines(
            &mut out,
            list.iter().map(|a| {
                format!(
                    "{}  Notification {}  AccessList {:?}",
                    a.name, a.notification, a.access_list
                )
            }),
        ),
        CpeResponse::SetParameterValues { status } | CpeResponse::DeleteObject { status } => {
            out.push_str(&format!("   Status {status}\n"));
        }
        CpeResponse::AddObject {
            instance_number,
            status,
        } => out.push_str(&format!(
            "   InstanceNumber {instance_number}  Status {status}\n"
        )),
        CpeResponse::Fault(f) => {
            out.push_str(&format!("   {} {}\n", f.code(), f.fault_string()));
            lines(
                &mut out,
                f.param_faults()
                    .iter()
                    .map(|p| format!("{}: {} {}", p.name, p.fault.code(), p.fault.fault_string())),
            );
        }
        CpeResponse::SetParameterAttributes
        | CpeResponse::ScheduleInform
        | CpeResponse::Reboot
        | CpeResponse::FactoryReset => {}
        other => out.push_str(&format!("   {other:?}\n")),
    }
    out
}
