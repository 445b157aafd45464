//! XMPP Connection Requests (TR-069 Annex K, issue 18, under way): the ACS reaches a CPE
//! behind a NAT through an XMPP server both are connected to, with an IQ stanza the CPE
//! answers and acts on.
//!
//! - [`stream`]: the XMPP stream cut into whole stanzas, incrementally and within bounds (pure).
//! - [`connreq`]: the connection-request IQ read, decided (the allowed Jabber IDs, the
//!   Connection Request credentials) and answered (pure).
//! - [`negotiate`]: the client side of the stream's negotiation: STARTTLS, SASL PLAIN, resource
//!   binding (pure: the caller owns the socket).
//!
//! - [`client`]: the connection's socket and thread (TLS, keep-alive, reconnect with backoff).
//!
//! Still to come: its place in the agent and the data model.

pub mod client;
pub mod connreq;
pub mod negotiate;
pub mod stream;
