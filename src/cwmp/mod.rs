//! The words of CWMP itself, shared by every layer: faults, parameter values and their types,
//! versions and namespaces, and dateTime text. A leaf: imports nothing of the crate, and pure (no
//! file, socket, process or clock access).

pub mod fault;
pub mod time;
pub mod value;
pub mod version;
