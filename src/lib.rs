//! cwmpd: a TR-069 (CWMP 1.0–1.4) CPE agent. See ARCHITECTURE.md for the codemap and invariants.
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod connreq;
pub mod cwmp;
pub mod datamodel;
pub mod events;
pub mod http;
pub mod jobs;
pub mod rpc;
pub mod schedule;
pub mod session;
pub mod soap;
pub mod sys;
pub mod transfer;
