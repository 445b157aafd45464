//! ICMP echo ("ping") without an external `ping` (OS: one ICMP socket per run, the monotonic
//! clock; no thread, no process).
//!
//! The socket is an ICMP datagram socket where the kernel allows it (`net.ipv4.ping_group_range`
//! holds the agent's group: the kernel then picks the identifier and hands this socket only its
//! own replies), else a raw socket (root), which sees every ICMP message of the host and keeps
//! those carrying our random identifier. It is connected to the target, so the kernel picks the
//! source address (the route's, or the bound interface's) and a raw socket receives only what
//! the target sends.
//!
//! One request at a time, as `ping` does: each waits for its reply up to [`Ping::timeout`],
//! and a request starts [`Ping::interval`] after the one before it (at once after a timeout
//! longer than that). A reply is matched by sequence number (and identifier on a raw socket);
//! late replies of an earlier request are read and dropped. The run stops between two
//! requests when `cancel` is set.
//!
//! Bounds: a request's payload is at most [`MAX_PAYLOAD`] bytes, the receive buffer is sized
//! for the largest reply, every wait has its deadline, and at most [`MAX_FOREIGN`] messages
//! that are not ours are read per request (a flood of other ICMP traffic ends the wait as a
//! failed repetition, not a hang).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    connect, getsockname, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    SockFlag, SockProtocol, SockType, SockaddrStorage,
};

use super::icmp::{self, Message};

/// The largest payload of a request: what fits an IPv4 datagram (65,535 bytes) with its IP and
/// ICMP headers; TR-181 DataBlockSize allows 1 to 65,535 and an agent refuses what it cannot do.
pub const MAX_PAYLOAD: usize = 65_535 - 20 - icmp::HEADER;
/// Messages that are not the awaited reply read before a request counts as failed.
pub const MAX_FOREIGN: usize = 10_000;

/// What to ping and how.
#[derive(Debug, Clone)]
pub struct Ping {
    pub target: IpAddr,
    /// The netdev the requests leave by (`SO_BINDTODEVICE`); `None`: the route's.
    pub interface: Option<String>,
    /// Requests to send (TR-181 NumberOfRepetitions, at least 1).
    pub count: u32,
    /// How long each request waits for its reply (TR-181 Timeout).
    pub timeout: Duration,
    /// Payload bytes of each request (TR-181 DataBlockSize).
    pub payload: usize,
    /// DiffServ codepoint, 0–63 (the upper six bits of the IPv4 TOS / IPv6 traffic class).
    pub dscp: u8,
    /// Hop limit of the requests; `None`: the system's default.
    pub ttl: Option<u8>,
    /// Time from the start of one request to the start of the next.
    pub interval: Duration,
}

/// How the requests were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An ICMP datagram socket (`SOCK_DGRAM`, `IPPROTO_ICMP`/`IPPROTO_ICMPV6`).
    Datagram,
    /// A raw socket.
    Raw,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The source address the requests left with (TR-181 IPAddressUsed).
    pub source: Option<IpAddr>,
    pub method: Method,
    /// Requests sent.
    pub sent: u32,
    /// The round-trip time of each request answered in time, in order.
    pub rtts: Vec<Duration>,
    /// Errors routers or the target sent about our requests (unreachable, time exceeded):
    /// `(ttl exceeded, code)`, each for a request that then counts as failed.
    pub errors: Vec<(bool, u8)>,
}

impl Outcome {
    pub fn successes(&self) -> u32 {
        u32::try_from(self.rtts.len()).unwrap_or(u32::MAX)
    }

    pub fn failures(&self) -> u32 {
        self.sent.saturating_sub(self.successes())
    }

    /// Minimum, average and maximum round-trip time of the answered requests.
    pub fn stats(&self) -> Option<(Duration, Duration, Duration)> {
        let min = *self.rtts.iter().min()?;
        let max = *self.rtts.iter().max()?;
        let total: Duration = self.rtts.iter().sum();
        Some((min, total / self.successes().max(1), max))
    }
}

/// Why a run could not happen at all (a request that is not answered is a failure in
/// [`Outcome`], not an error).
#[derive(Debug)]
pub enum PingError {
    /// A value no socket can honour (payload too large, DSCP over 63, no requests).
    Invalid(String),
    /// The socket could not be made, bound or connected (no such interface, no route).
    Socket(io::Error),
}

impl std::fmt::Display for PingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingError::Invalid(m) => write!(f, "{m}"),
            PingError::Socket(e) => write!(f, "{e}"),
        }
    }
}

/// Pings `p.target` `p.count` times; stops early (with what it has) when `cancel` is set.
pub fn run(p: &Ping, cancel: &AtomicBool) -> Result<Outcome, PingError> {
    if p.count == 0 {
        return Err(PingError::Invalid("no requests to send".into()));
    }
    if p.payload > MAX_PAYLOAD {
        return Err(PingError::Invalid(format!(
            "a payload of {} bytes does not fit an IP datagram (at most {MAX_PAYLOAD})",
            p.payload
        )));
    }
    if p.dscp > 63 {
        return Err(PingError::Invalid(format!("DSCP {} is over 63", p.dscp)));
    }
    let v6 = p.target.is_ipv6();
    let (fd, method) = open(v6).map_err(PingError::Socket)?;
    configure(&fd, p, v6).map_err(PingError::Socket)?;
    let target = SockaddrStorage::from(SocketAddr::new(p.target, 0));
    connect(fd.as_raw_fd(), &target).map_err(|e| PingError::Socket(e.into()))?;
    let source = getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .ok()
        .and_then(|a| super::ip_of(&a));
    // The datagram socket's identifier is the kernel's; a raw socket's is ours, random.
    let id = match method {
        Method::Datagram => 0,
        Method::Raw => super::random_id(),
    };
    let mut out = Outcome {
        source,
        method,
        sent: 0,
        rtts: Vec::new(),
        errors: Vec::new(),
    };
    let mut buf = vec![0u8; 65_536];
    for i in 0..p.count {
        if cancel.load(Ordering::Acquire) {
            break;
        }
        let start = Instant::now();
        let seq = (i & 0xffff) as u16;
        let request = icmp::echo_request(v6, id, seq, p.payload);
        match send(fd.as_raw_fd(), &request, MsgFlags::empty()) {
            Ok(_) => {}
            // The kernel already knows the target is unreachable (a rejected route, an ICMP
            // error reported on the connected socket): a failed request.
            Err(
                Errno::EHOSTUNREACH
                | Errno::ENETUNREACH
                | Errno::ECONNREFUSED
                | Errno::EACCES
                | Errno::EPERM
                | Errno::EMSGSIZE,
            ) => {
                out.sent += 1;
                super::pause_until(start + p.interval, cancel);
                continue;
            }
            Err(e) => return Err(PingError::Socket(e.into())),
        }
        out.sent += 1;
        let deadline = start + p.timeout;
        let mut foreign = 0usize;
        while let Some(left) = super::slice_until(deadline, cancel) {
            super::set_receive_timeout(&fd, left).map_err(PingError::Socket)?;
            let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                // An ICMP error the kernel reports on the connected datagram socket.
                Err(Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::ECONNREFUSED) => {
                    out.errors.push((false, 0));
                    break;
                }
                Err(e) => return Err(PingError::Socket(e.into())),
            };
            let got = Instant::now();
            let raw_v4 = method == Method::Raw && !v6;
            match buf.get(..n).and_then(|b| icmp::parse(v6, raw_v4, b)) {
                Some(Message::EchoReply {
                    id: rid,
                    seq: rseq,
                    intact: true,
                    ..
                }) if rseq == seq && (method == Method::Datagram || rid == id) => {
                    out.rtts.push(got.duration_since(start));
                    break;
                }
                Some(Message::Error {
                    ttl,
                    code,
                    quoted: Some((qid, qseq)),
                }) if qseq == seq && (method == Method::Datagram || qid == id) => {
                    out.errors.push((ttl, code));
                    break;
                }
                _ => {
                    foreign += 1;
                    if foreign >= MAX_FOREIGN {
                        break;
                    }
                }
            }
        }
        if i + 1 < p.count {
            super::pause_until(start + p.interval, cancel);
        }
    }
    Ok(out)
}

/// An ICMP datagram socket, else a raw one.
fn open(v6: bool) -> io::Result<(OwnedFd, Method)> {
    let (family, proto) = if v6 {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    } else {
        (AddressFamily::Inet, SockProtocol::Icmp)
    };
    match socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, proto) {
        Ok(fd) => Ok((fd, Method::Datagram)),
        Err(Errno::EACCES | Errno::EPERM | Errno::EPROTONOSUPPORT) => {
            socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, proto)
                .map(|fd| (fd, Method::Raw))
                .map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

fn configure(fd: &OwnedFd, p: &Ping, v6: bool) -> io::Result<()> {
    super::device_and_dscp(fd, v6, p.interface.as_deref(), p.dscp)?;
    if let Some(ttl) = p.ttl {
        if v6 {
            setsockopt(fd, sockopt::Ipv6Ttl, &i32::from(ttl))?;
        } else {
            setsockopt(fd, sockopt::Ipv4Ttl, &i32::from(ttl))?;
        }
    }
    Ok(())
}
