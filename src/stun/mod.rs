//! STUN for TR-111 Part 2 (TR-069 Annex G): how a CPE behind a NAT learns the public address
//! and port of its UDP Connection Request binding and keeps that binding open (issue 18, under
//! way). Annex G uses classic STUN (RFC 3489): a 16-byte transaction ID, no magic cookie, the
//! CWMP attributes CONNECTION-REQUEST-BINDING and BINDING-CHANGE.
//!
//! - [`msg`]: Binding Requests and the responses to them, as bytes (pure).
//! - [`binding`]: the client as a state machine (pure): discovery and keep-alives of the
//!   binding, NAT detection, BINDING-CHANGE, message integrity, the binding timeout discovery.
//!
//! The sockets are [`crate::connreq`]'s: the primary port is the UDP Connection Request port.

pub mod binding;
pub mod msg;
