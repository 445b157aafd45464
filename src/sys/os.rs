//! The few OS facts the agent itself needs (not data model values, which go through backends):
//! the kernel's boot id, to tell a device boot (`1 BOOT`) from an agent restart, a default
//! serial number, and the addresses ConnectionRequestURL is built from (an interface's, or the
//! one the kernel picks to reach the ACS). One of the `sys` rooms: data model values never come
//! from here.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::Path;

/// The kernel's random boot id (changes at every boot); `None` where the kernel has none.
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A default serial number: the MAC address of the first non-loopback network interface (by
/// name), upper-case hex without separators; else the host name; else "000000000000".
pub fn default_serial_number() -> String {
    mac_serial(Path::new("/sys/class/net"))
        .or_else(|| {
            fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "000000000000".to_string())
}

/// Every address of every network interface, with the interface's name (getifaddrs: one
/// netlink dump in-process, no command).
pub fn interface_addresses() -> io::Result<Vec<(String, IpAddr)>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| {
            let ip = i.ip();
            (i.name, ip)
        })
        .collect())
}

/// Resolves `host` (blocking, like every DNS look-up of the agent).
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()?
        .collect())
}

/// The local address the kernel would use to reach `to`: a UDP socket is connected (which
/// sends nothing) and asked for its address.
pub fn source_address(to: SocketAddr) -> io::Result<IpAddr> {
    let bind: SocketAddr = match to {
        SocketAddr::V4(_) => (IpAddr::from([0u8; 4]), 0).into(),
        SocketAddr::V6(_) => (IpAddr::from([0u16; 8]), 0).into(),
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(to)?;
    Ok(s.local_addr()?.ip())
}

fn mac_serial(dir: &Path) -> Option<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let mac = fs::read_to_string(dir.join(&n).join("address")).ok()?;
        let hex: String = mac
            .trim()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect::<String>()
            .to_ascii_uppercase();
        (hex.len() == 12 && hex != "000000000000").then_some(hex)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_first_interface_mac() {
        let d = std::env::temp_dir().join(format!("cwmpd-os-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        for (n, mac) in [
            ("lo", "00:00:00:00:00:00"),
            ("wan", "aa:bb:cc:dd:ee:02"),
            ("eth0", "aa:bb:cc:dd:ee:01"),
        ] {
            fs::create_dir_all(d.join(n)).unwrap();
            fs::write(d.join(n).join("address"), format!("{mac}\n")).unwrap();
        }
        assert_eq!(mac_serial(&d).as_deref(), Some("AABBCCDDEE01"));
        let _ = fs::remove_dir_all(&d);
        assert!(!default_serial_number().is_empty());
    }

    #[test]
    fn loopback_is_reached_from_loopback() {
        let to: SocketAddr = "127.0.0.1:7547".parse().unwrap();
        assert_eq!(source_address(to).unwrap(), to.ip());
        let lo = interface_addresses().unwrap();
        assert!(
            lo.iter().any(|(n, a)| n == "lo" && a.is_loopback()),
            "{lo:?}"
        );
        assert!(resolve("127.0.0.1", 1)
            .unwrap()
            .contains(&"127.0.0.1:1".parse().unwrap()));
    }
}
