//! Diagnostics: the tests an ACS asks the CPE to run (TR-181 `IP.Diagnostics`, TR-098's
//! diagnostics objects, TR-143), run in process, never by an external tool. So far: ICMP echo
//! ([`icmp`] the messages, pure; [`ping`] the socket), TraceRoute ([`trace`]), DNS lookups
//! ([`dns`] the messages, pure; [`lookup`] the socket) TR-143 UDP echo ([`echo`]) and TR-143
//! HTTP download and upload ([`http`]). Not bound to the data model yet.
pub mod dns;
pub mod echo;
pub mod http;
pub mod icmp;
pub mod lookup;
pub mod ping;
pub mod run;
pub mod spec;
pub mod trace;

/// The longest one wait of a diagnostic lasts before it looks at its cancel flag again: a
/// test the ACS stops (a change, `Canceled`) ends within about this long.
pub const SLICE: std::time::Duration = std::time::Duration::from_millis(250);

/// How long the next wait for `deadline` may last (at most a [`SLICE`]); `None` once the
/// deadline passed or the test was cancelled.
fn slice_until(
    deadline: std::time::Instant,
    cancel: &std::sync::atomic::AtomicBool,
) -> Option<std::time::Duration> {
    if cancel.load(std::sync::atomic::Ordering::Acquire) {
        return None;
    }
    deadline
        .checked_duration_since(std::time::Instant::now())
        .filter(|d| !d.is_zero())
        .map(|d| d.min(SLICE))
}

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
    bind_device(fd, interface)?;
    let tos = i32::from(dscp) << 2;
    if v6 {
        setsockopt(fd, sockopt::Ipv6TClass, &tos)?;
    } else {
        setsockopt(fd, sockopt::Ipv4Tos, &tos)?;
    }
    Ok(())
}

/// Binds a socket to a netdev (`SO_BINDTODEVICE`) when one is given.
fn bind_device(fd: &impl std::os::fd::AsFd, interface: Option<&str>) -> std::io::Result<()> {
    if let Some(dev) = interface {
        nix::sys::socket::setsockopt(
            fd,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(dev),
        )?;
    }
    Ok(())
}

/// A UDP socket on an ephemeral port of the family of `peer`.
fn udp_socket_for(peer: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let any: std::net::IpAddr = if peer.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    std::net::UdpSocket::bind((any, 0))
}

/// Sets a socket's receive timeout to `left`, at least a millisecond (a zero `SO_RCVTIMEO`
/// would wait for ever).
fn set_receive_timeout(
    fd: &impl std::os::fd::AsFd,
    left: std::time::Duration,
) -> std::io::Result<()> {
    use nix::sys::time::{TimeVal, TimeValLike};
    let left = left.max(std::time::Duration::from_millis(1));
    let us = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
    nix::sys::socket::setsockopt(
        fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &TimeVal::microseconds(us),
    )?;
    Ok(())
}

/// The IP address of a socket address (`None` for another family).
fn ip_of(a: &nix::sys::socket::SockaddrStorage) -> Option<std::net::IpAddr> {
    a.as_sockaddr_in()
        .map(|s| std::net::IpAddr::V4(s.ip()))
        .or_else(|| a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip())))
}

/// An `xsd:dateTime` with microseconds (TR-181's result times) from wall-clock microseconds
/// since the Unix epoch.
pub fn datetime_us(t: u64) -> String {
    let secs = i64::try_from(t / 1_000_000).unwrap_or(i64::MAX);
    let mut s = crate::cwmp::time::format_datetime_utc(secs);
    s.pop();
    format!("{s}.{:06}Z", t % 1_000_000)
}

/// Wall-clock microseconds since the Unix epoch of `t` (0 before it).
fn wall_us(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Sleeps until `until`, in slices that notice `cancel`.
fn pause_until(until: std::time::Instant, cancel: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        if left.is_zero() || cancel.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
    }
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
