//! The test support of cwmpd (the package `cwmpd-test-support`, imported as `support`): what the
//! integration tests (`tests/*.rs`), the benches (`benches/*.rs`) and the demo
//! (`examples/demo.rs`) share, compiled once for them all.
//!
//! - [`acs`]: a small but real ACS (TR-069 §3.4, §3.7 from the ACS side) over TCP or TLS.
//! - [`acs::memory`] and [`clock`]: the same ACS in memory as the agent's transport, and the
//!   start of the library's `ManualClock`: whole sessions without a socket, a thread or a sleep.
//! - [`cpe`]: the real `cwmpd` binary run as a daemon or a CLI command, bounded, and the ACS
//!   request helpers.
//! - [`files`]: file servers with Basic/Digest, a CPE with transfers and hooks, TransferComplete
//!   helpers.
//! - [`tls`]: a throw-away PKI and the well-behaved threaded HTTP/1.1 test server.
//! - [`hostile`]: test servers that misbehave on purpose, and broken certificates.
//! - [`http`]: the one HTTP/1.1 request reader of every test server; [`rng`]: the one seeded
//!   pseudo-random generator.
//! - [`kill`], [`proxy`]: the kill harness of the device-control test and its proxy that holds
//!   messages back.
//! - [`ubus`]: a test ubus broker (ubusd's wire protocol on a unix socket) with JSON replies,
//!   events and notifications.
//! - [`netns`]: network namespaces made by a test (veth pairs, bridges, addresses, routes,
//!   neighbours through the real `ip`, and code run on a thread inside one), for the netlink tests.
//! - [`servers`]: dnsmasq, Python's `http.server` and a PUT server in a namespace, for the
//!   diagnostics' tests.
//! - [`elf`]: an ELF file's sections and its symbols' sizes by crate, for the report.
//! - [`tempdir`], [`uci`], [`scale`], [`xml_shapes`]: temporary directories, the real `uci`
//!   command, the scaled fixture router, the XML shapes roxmltree parses in more than linear time.
#![forbid(unsafe_code)]

pub mod acs;
pub mod clock;
pub mod cpe;
pub mod elf;
pub mod files;
pub mod hostile;
pub mod http;
pub mod kill;
pub mod netns;
pub mod proxy;
pub mod rng;
pub mod scale;
pub mod servers;
pub mod tempdir;
pub mod tls;
pub mod ubus;
pub mod uci;
pub mod xml_shapes;

use std::path::{Path, PathBuf};

/// The root of the cwmpd repository (where its `Cargo.toml`, `tests/fixtures/` and `target/`
/// are): this crate lives in `tests/support/`.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}
