//! Diagnostics: the tests an ACS asks the CPE to run (TR-181 `IP.Diagnostics`, TR-098's
//! diagnostics objects, TR-143), run in process, never by an external tool. So far: ICMP echo
//! ([`icmp`] the messages, pure; [`ping`] the socket), TraceRoute ([`trace`]), DNS lookups
//! ([`dns`] the messages, pure; [`lookup`] the socket) TR-143 UDP echo ([`echo`]) and TR-143
//! HTTP download ([`http`]). Not bound to the data model yet.
pub mod dns;
pub mod echo;
pub mod http;
pub mod icmp;
pub mod lookup;
pub mod ping;
pub mod trace;

/// Binds a diagnostic's socket to a netdev (`SO_BINDTODEVICE`, TR-181 Interface) when one is
/// given, and marks its packets with a DiffServ codepoint (the upper six bits of the IPv4 TOS
/// or the IPv6 traffic class).
fn device_and_dscp(
    fd: &impl std::os::fd::AsFd,
    v6: bool,
    interface: Option<&str>,
    dscp: u8,
) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if let Some(dev) = interface {
        setsockopt(fd, sockopt::BindToDevice, &std::ffi::OsString::from(dev))?;
    }
    let tos = i32::from(dscp) << 2;
    if v6 {
        setsockopt(fd, sockopt::Ipv6TClass, &tos)?;
    } else {
        setsockopt(fd, sockopt::Ipv4Tos, &tos)?;
    }
    Ok(())
}

/// A random 16-bit identifier (an ICMP echo identifier on a raw socket, a DNS query id: RFC
/// 5452 wants it unguessable by an off-path attacker).
fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No entropy: the process id still tells this agent's messages from others'.
        return (std::process::id() & 0xffff) as u16;
    }
    u16::from_be_bytes(b)
}
