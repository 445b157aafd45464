//! One DNS lookup over UDP against a given server, timed (OS: a UDP socket, the monotonic
//! clock): what NSLookupDiagnostics repeats.
//!
//! The query goes from a socket connected to the server (so the kernel drops datagrams from
//! anyone else), optionally bound to a device; replies with another id or question are read
//! and dropped until the timeout (at most [`MAX_STRAY`] of them). A truncated answer is
//! reported as it is: its addresses are what fitted (TR-181 asks for the response, not for a
//! retry over TCP).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::dns::{self, DnsError, Response};

/// Datagrams that are not the answer read before the lookup counts as timed out.
pub const MAX_STRAY: usize = 1000;

/// How a lookup ended.
#[derive(Debug)]
pub enum Lookup {
    /// The server answered (any RCODE) after this long.
    Answered(Response, Duration),
    /// No answer within the timeout.
    Timeout,
    /// The server's host or port refused the datagram (ICMP unreachable on the connected
    /// socket): no DNS server there.
    Refused,
}

/// Asks `server` for the `qtype` records of `name`, waiting at most `timeout` (a cancel ends the
/// wait as a timeout).
pub fn lookup(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
    interface: Option<&str>,
    cancel: &AtomicBool,
) -> Result<Lookup, LookupError> {
    let id = super::random_id();
    let query = dns::query(id, name, qtype).map_err(LookupError::Name)?;
    let sock = super::udp_socket_for(server).map_err(LookupError::Socket)?;
    super::bind_device(&sock, interface).map_err(LookupError::Socket)?;
    sock.connect(server).map_err(LookupError::Socket)?;
    let start = Instant::now();
    match sock.send(&query) {
        Ok(_) => {}
        Err(e) if refused(&e) => return Ok(Lookup::Refused),
        Err(e) => return Err(LookupError::Socket(e)),
    }
    let deadline = start + timeout;
    let mut buf = [0u8; 4096];
    // Stray datagrams are bounded; the waits are slices of the timeout.
    let mut stray = 0usize;
    while stray < MAX_STRAY {
        let Some(left) = super::slice_until(deadline, cancel) else {
            return Ok(Lookup::Timeout);
        };
        sock.set_read_timeout(Some(left))
            .map_err(LookupError::Socket)?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) if refused(&e) => return Ok(Lookup::Refused),
            Err(e) => return Err(LookupError::Socket(e)),
        };
        stray += 1;
        let took = start.elapsed();
        match dns::parse(buf.get(..n).unwrap_or_default(), id, name, qtype) {
            Ok(r) => return Ok(Lookup::Answered(r, took)),
            // Not the answer to this query (a late one, a forgery with the wrong id).
            Err(DnsError::Malformed(_) | DnsError::BadName(_)) => continue,
        }
    }
    Ok(Lookup::Timeout)
}

/// Bytes of a resolv.conf read.
const MAX_RESOLV_CONF: u64 = 64 * 1024;

/// The name servers a resolv.conf names (its `nameserver` lines; a zone index dropped), read
/// within 64 KiB.
pub fn name_servers(path: &std::path::Path) -> io::Result<Vec<std::net::IpAddr>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_RESOLV_CONF)
        .read_to_string(&mut text)?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect())
}

fn refused(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Why a lookup could not be made.
#[derive(Debug)]
pub enum LookupError {
    /// The name cannot be asked.
    Name(DnsError),
    /// The socket could not be made, bound or connected.
    Socket(io::Error),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Name(e) => write!(f, "{e}"),
            LookupError::Socket(e) => write!(f, "{e}"),
        }
    }
}
