//! The ACS connection as one session needs it: [`AcsTransport`], one POST at a time, and
//! [`Connect`], how the agent opens one for each session.
//!
//! The real one is [`crate::http::acs::Transport`] (authentication, redirects, cookies and TLS
//! happen inside it); a test plugs in its own, an in-memory ACS that answers each body.

use std::time::Instant;

use crate::http::acs::{HttpReply, Streamed, Transport, TransportConfig, TransportError};
use crate::soap::{Body, ValuesBody};

/// The ACS end of one session (§3.7): each CWMP message the CPE posts, and the ACS's reply.
pub trait AcsTransport {
    /// POSTs one CWMP message (empty body = the empty POST, §3.7.2.2) and returns the ACS's
    /// reply: its status, its body and its `Retry-After`.
    fn post(&mut self, body: &Body) -> Result<HttpReply, TransportError>;

    /// The session ended: the next POST starts a new one (the CWMP version fallback of §A.2
    /// retries on the same transport). Nothing to do by default.
    fn end_session(&mut self) {}
}

impl AcsTransport for Transport {
    fn post(&mut self, body: &Body) -> Result<HttpReply, TransportError> {
        match body {
            Body::Bytes(b) => Transport::post(self, b),
            Body::Values(v) => self.post_streamed(v),
        }
    }

    fn end_session(&mut self) {
        Transport::end_session(self);
    }
}

/// A GetParameterValuesResponse goes out as it is written.
impl Streamed for ValuesBody {
    fn len(&self) -> usize {
        ValuesBody::len(self)
    }

    fn reader(&self) -> Box<dyn std::io::Read + '_> {
        Box::new(ValuesBody::reader(self))
    }
}

/// Opens the transport of one session attempt: the ACS settings of the moment (URL and
/// credentials as the data model has them now) and the instant no exchange may run past
/// (`[acs] session_limit` from the start of the attempt).
pub type Connect = Box<
    dyn FnMut(&TransportConfig, Instant) -> Result<Box<dyn AcsTransport>, TransportError> + Send,
>;

/// The real transport: [`Transport`], with its deadline set.
pub fn http() -> Connect {
    Box::new(|cfg: &TransportConfig, deadline: Instant| {
        let mut t = Transport::new(cfg.clone())?;
        t.set_deadline(Some(deadline));
        Ok(Box::new(t) as Box<dyn AcsTransport>)
    })
}
