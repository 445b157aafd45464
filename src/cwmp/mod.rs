//! The words of CWMP itself, shared by every layer: faults. A leaf: imports nothing of the crate.

pub mod fault;
