//! The ACS side of the codec: parses what a CPE sends and emits what an ACS sends. Used by the
//! demo ACS and the tests, never by the agent itself.

use super::msg::*;
use super::Limits;
use crate::fault::AcsFault;

/// What a CPE sends in an HTTP POST body.
#[derive(Debug, Clone, PartialEq)]
pub enum CpeMessage {
    Request(CpeRequest),
    Response(CpeResponse),
    /// An empty POST.
    Empty,
}

/// Parses a CPE POST body.
pub fn parse_cpe(body: &[u8], limits: &Limits) -> Result<Envelope<CpeMessage>, ParseError> {
    let _ = (body, limits);
    todo!("soap::acs::parse_cpe")
}

/// Emits an ACS request with the given header (`cwmp:ID`, HoldRequests).
pub fn emit_acs_request(ns: CwmpNs, header: &Header, req: &AcsRequest) -> Vec<u8> {
    let _ = (ns, header, req);
    todo!("soap::acs::emit_acs_request")
}

/// Emits an ACS response (InformResponse with UseCWMPVersion when the header has it, …).
pub fn emit_acs_response(ns: CwmpNs, header: &Header, resp: &AcsResponse) -> Vec<u8> {
    let _ = (ns, header, resp);
    todo!("soap::acs::emit_acs_response")
}

/// Emits an ACS fault 8000–8006.
pub fn emit_acs_fault(ns: CwmpNs, id: Option<&str>, fault: &AcsFault) -> Vec<u8> {
    let _ = (ns, id, fault);
    todo!("soap::acs::emit_acs_fault")
}
