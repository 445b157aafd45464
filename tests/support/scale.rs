//! The fixture router (`tests/fixtures/router/`) scaled up for the benchmarks that run the
//! OpenWrt bindings on it (`benches/gpv.rs`, `benches/report.rs`): port forwards, static leases
//! and their DHCP leases added until the tree has more than 2,000 parameters.

use std::fmt::Write as _;
use std::path::Path;

use crate::tempdir::copy_tree;

/// Extra port forwards and static leases added to the fixture.
pub const REDIRECTS: usize = 100;
pub const HOSTS: usize = 30;

/// Copies the fixture router to `root` and scales the copy up.
pub fn scaled_router(root: &Path) -> Result<(), String> {
    copy_tree(&crate::repo().join("tests/fixtures/router"), root);
    scale(root)
}

/// Adds port forwards, static leases and their DHCP leases to the fixture copy at `root`.
fn scale(root: &Path) -> Result<(), String> {
    let mut fw = String::new();
    for i in 0..REDIRECTS {
        let _ = write!(
            fw,
            "\nconfig redirect\n\toption name 'bench-{i}'\n\toption src 'wan'\n\toption src_dport '{}'\n\toption dest 'lan'\n\toption dest_ip '192.168.1.{}'\n\toption dest_port '{}'\n\tlist proto 'tcp'\n\toption target 'DNAT'\n",
            20000 + i,
            100 + i % 100,
            8000 + i
        );
    }
    append(&root.join("etc/config/firewall"), &fw)?;
    let mut dhcp = String::new();
    let mut leases = String::new();
    for i in 0..HOSTS {
        let _ = write!(
            dhcp,
            "\nconfig host\n\toption name 'bench-host-{i}'\n\toption mac '02:42:00:00:{:02x}:{:02x}'\n\toption ip '192.168.1.{}'\n",
            i / 256,
            i % 256,
            20 + i
        );
        let _ = writeln!(
            leases,
            "2051218800 02:42:00:00:{:02x}:{:02x} 192.168.1.{} bench-host-{i} *",
            i / 256,
            i % 256,
            20 + i
        );
    }
    append(&root.join("etc/config/dhcp"), &dhcp)?;
    append(&root.join("tmp/dhcp.leases"), &leases)
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    let mut s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    s.push_str(text);
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}
