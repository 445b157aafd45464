//! STUN for TR-111 Part 2 (TR-069 Annex G): how a CPE behind a NAT learns the public address
//! and port of its UDP Connection Request binding and keeps that binding open (issue 18, under
//! way). Annex G uses classic STUN (RFC 3489): a 16-byte transaction ID, no magic cookie, the
//! CWMP attributes CONNECTION-REQUEST-BINDING and BINDING-CHANGE.
//!
//! - [`msg`]: Binding Requests and the responses to them, as bytes (pure).
//!
//! Still to come: the client (the binding's discovery, keep-alives, NAT detection) and its
//! place in the agent.

pub mod msg;
