//! The rooms that touch the operating system: the persistent store, the OS queries (addresses,
//! boot id, serial number), child processes, syslog, and private directories.

pub mod os;
pub mod private;
pub mod process;
pub mod store;
pub mod syslog;
