//! The rooms that touch the operating system: the persistent store, the OS queries (addresses,
//! boot id, serial number), child processes, syslog, and private directories; and their
//! sections of the config file (`[storage]`, `[log]`).

pub mod config;
pub mod os;
pub mod private;
pub mod process;
pub mod store;
pub mod syslog;
