//! HTTP as the agent speaks it: authentication (Basic, Digest), the session client to the ACS,
//! and the file-server client of transfers.

pub mod acs;
pub mod auth;
pub mod files;
