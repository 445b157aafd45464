//! TraceRoute with ICMP echo probes (OS: a raw ICMP socket, the monotonic clock): the hops to
//! a target, each with the address that answered, the time of each try and the ICMP error code.
//!
//! Probes are echo requests with a hop limit of 1, 2, …: the router where the limit runs out
//! sends time exceeded quoting the probe, the target answers the echo, and a router or host
//! that cannot deliver sends destination unreachable (the trace ends there, with its code). The
//! socket is raw and not connected, since the answers come from every hop; probes carry a
//! random identifier and a sequence number per probe, and only messages quoting them (or
//! replying to them) count. A raw socket needs root, as the agent runs; an unprivileged ICMP
//! datagram socket is told of router errors only through its error queue, which is not read
//! here.
//!
//! Bounds: at most [`MAX_HOPS`] hops of at most [`MAX_TRIES`] tries, each waiting
//! [`Trace::timeout`]; at most [`super::ping::MAX_FOREIGN`] messages not ours read per try; the
//! run stops between two tries when `cancel` is set.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    recvfrom, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol,
    SockType, SockaddrStorage,
};

use super::icmp::{self, Message};
use super::ping::{PingError, MAX_FOREIGN, MAX_PAYLOAD};

/// The most hops (TR-181 MaxHopCount: 1 to 64).
pub const MAX_HOPS: u8 = 64;
/// The most tries per hop (TR-181 NumberOfTries: 1 to 3).
pub const MAX_TRIES: u32 = 3;

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct Trace {
    pub target: IpAddr,
    pub interface: Option<String>,
    /// Probes per hop.
    pub tries: u32,
    /// How long each probe waits for its answer.
    pub timeout: Duration,
    /// Payload bytes of each probe.
    pub payload: usize,
    pub dscp: u8,
    /// The highest hop limit tried.
    pub max_hops: u8,
}

/// One hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Who answered at this hop (the last of its tries that got an answer); `None`: nobody.
    pub host: Option<IpAddr>,
    /// Each try's round-trip time, `None` for one unanswered.
    pub rtts: Vec<Option<Duration>>,
    /// The ICMP code of a destination unreachable received at this hop (TR-181 ErrorCode);
    /// 0 when none (or when the unreachable's code was 0).
    pub error: u8,
    /// The route ended here: a destination unreachable (whatever its code) came back, or the
    /// kernel had no route for the probe.
    pub unreachable: bool,
}

/// What a trace found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub hops: Vec<Hop>,
    /// The target answered.
    pub reached: bool,
}

/// Traces the route to `t.target`.
pub fn run(t: &Trace, cancel: &AtomicBool) -> Result<Route, PingError> {
    if t.tries == 0 || t.tries > MAX_TRIES {
        return Err(PingError::Invalid(format!(
            "{} tries per hop (1 to {MAX_TRIES})",
            t.tries
        )));
    }
    if t.max_hops == 0 || t.max_hops > MAX_HOPS {
        return Err(PingError::Invalid(format!(
            "{} hops (1 to {MAX_HOPS})",
            t.max_hops
        )));
    }
    if t.payload > MAX_PAYLOAD || t.dscp > 63 {
        return Err(PingError::Invalid(format!(
            "payload {} (at most {MAX_PAYLOAD}) or DSCP {} (at most 63)",
            t.payload, t.dscp
        )));
    }
    let v6 = t.target.is_ipv6();
    let (family, proto) = if v6 {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    } else {
        (AddressFamily::Inet, SockProtocol::Icmp)
    };
    let fd = socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, proto)
        .map_err(|e| PingError::Socket(e.into()))?;
    super::device_and_dscp(&fd, v6, t.interface.as_deref(), t.dscp).map_err(PingError::Socket)?;
    let id = super::random_id();
    let target = SockaddrStorage::from(SocketAddr::new(t.target, 0));
    let mut route = Route {
        hops: Vec::new(),
        reached: false,
    };
    let mut buf = vec![0u8; 65_536];
    let mut seq: u16 = 0;
    'hops: for ttl in 1..=t.max_hops {
        let r = if v6 {
            setsockopt(&fd, sockopt::Ipv6Ttl, &i32::from(ttl))
        } else {
            setsockopt(&fd, sockopt::Ipv4Ttl, &i32::from(ttl))
        };
        r.map_err(|e| PingError::Socket(e.into()))?;
        let mut hop = Hop {
            host: None,
            rtts: Vec::new(),
            error: 0,
            unreachable: false,
        };
        let mut end = false;
        for _ in 0..t.tries {
            if cancel.load(Ordering::Acquire) {
                break 'hops;
            }
            seq = seq.wrapping_add(1);
            let probe = icmp::echo_request(v6, id, seq, t.payload);
            let start = Instant::now();
            match sendto(fd.as_raw_fd(), &probe, &target, MsgFlags::empty()) {
                Ok(_) => {}
                Err(Errno::EHOSTUNREACH | Errno::ENETUNREACH) => {
                    hop.rtts.push(None);
                    hop.unreachable = true;
                    end = true;
                    continue;
                }
                Err(e) => return Err(PingError::Socket(e.into())),
            }
            let deadline = start + t.timeout;
            let answer = await_answer(&fd, v6, (id, seq), start, deadline, &mut buf, cancel)?;
            match answer {
                Some((from, rtt, kind)) => {
                    hop.host = Some(from);
                    hop.rtts.push(Some(rtt));
                    match kind {
                        Answer::Reply => {
                            route.reached = true;
                            end = true;
                        }
                        Answer::Unreachable(code) => {
                            hop.error = code;
                            hop.unreachable = true;
                            end = true;
                        }
                        Answer::Expired => {}
                    }
                }
                None => hop.rtts.push(None),
            }
        }
        route.hops.push(hop);
        if end {
            break;
        }
    }
    Ok(route)
}

/// What answered a probe.
enum Answer {
    /// The target's echo reply.
    Reply,
    /// A router's time exceeded.
    Expired,
    /// Destination unreachable, with its code.
    Unreachable(u8),
}

/// Reads until the answer to probe `seq` (sent at `sent`) or `deadline`: who answered, after
/// how long, and what.
fn await_answer(
    fd: &OwnedFd,
    v6: bool,
    (id, seq): (u16, u16),
    sent: Instant,
    deadline: Instant,
    buf: &mut [u8],
    cancel: &AtomicBool,
) -> Result<Option<(IpAddr, Duration, Answer)>, PingError> {
    // Foreign messages are bounded; the waits are slices of the deadline.
    let mut foreign = 0usize;
    while foreign < MAX_FOREIGN {
        let Some(left) = super::slice_until(deadline, cancel) else {
            return Ok(None);
        };
        super::set_receive_timeout(fd, left).map_err(PingError::Socket)?;
        let (n, from) = match recvfrom::<SockaddrStorage>(fd.as_raw_fd(), buf) {
            Ok(r) => r,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(PingError::Socket(e.into())),
        };
        foreign += 1;
        let rtt = sent.elapsed();
        let Some(from) = from.as_ref().and_then(super::ip_of) else {
            continue;
        };
        // A raw IPv4 socket hands over the IP header too; ICMPv6 sockets never do.
        let kind = match buf.get(..n).and_then(|b| icmp::parse(v6, !v6, b)) {
            Some(Message::EchoReply {
                id: rid, seq: rseq, ..
            }) if rid == id && rseq == seq => Answer::Reply,
            Some(Message::Error {
                ttl,
                code,
                quoted: Some((qid, qseq)),
            }) if qid == id && qseq == seq => {
                if ttl {
                    Answer::Expired
                } else {
                    Answer::Unreachable(code)
                }
            }
            _ => continue,
        };
        return Ok(Some((from, rtt, kind)));
    }
    Ok(None)
}
