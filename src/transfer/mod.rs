//! File transfers (TR-069 §3.4.3).

pub mod client;
