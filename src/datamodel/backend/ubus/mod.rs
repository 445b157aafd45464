//! The `ubus` backend's client side: a blocking client of OpenWrt's ubusd (no libubus, no
//! process) in three layers: [`blob`] (the blob/blobmsg codec, pure), [`proto`] (ubus messages,
//! pure) and [`client`] (the unix socket: calls, events, notifications).

pub mod blob;
pub mod client;
pub mod proto;
