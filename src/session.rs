//! The CWMP session as a sans-IO state machine (TR-069 §3.7, §A.2, §A.3.3.1).
//!
//! It takes HTTP responses and RPC results as inputs and returns what to do next; it owns no
//! socket, clock or file.
