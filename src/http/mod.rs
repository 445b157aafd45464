//! HTTP as the agent speaks it: authentication (Basic, Digest), the one answer to a 401 both
//! clients follow, their TLS settings, URLs, cookies, the name resolver both use, the session
//! client to the ACS, and the file-server client of transfers.

pub mod acs;
pub mod auth;
pub mod cookie;
pub mod files;
pub mod policy;
pub mod resolve;
pub mod tls;
pub mod url;
