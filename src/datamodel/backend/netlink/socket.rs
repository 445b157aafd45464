//! The `NETLINK_ROUTE` socket (OS: a socket, the monotonic clock; no thread, no process): dumps
//! of the kernel's links, addresses, routes and neighbours ([`Rtnl`]) and a monitor of the
//! link, address and route multicast groups ([`Monitor`]), through `nix`'s safe wrappers.
//!
//! Sources: netlink(7) (sockets, `sockaddr_nl`, multicast groups, `NLM_F_DUMP_INTR`, `ENOBUFS`
//! on overrun, `MSG_TRUNC`), rtnetlink(7) (the `RTM_GET*` dumps, the `RTMGRP_*` groups of
//! linux/rtnetlink.h), and the kernel's `net/netlink/af_netlink.c` (a dump fills one
//! datagram of at most 32 KiB at a time, refilled when it is read; a second dump on a socket
//! whose dump is still running is refused with `EBUSY`).
//!
//! A dump ([`Rtnl::links`] …) sends one `NLM_F_DUMP` request with a new sequence number and
//! reads datagrams until `NLMSG_DONE` of that sequence. It keeps only the messages of that
//! sequence coming from the kernel (sender port 0), turns `NLMSG_ERROR` into an
//! [`io::Error`] of its errno, and when the kernel flags the dump `NLM_F_DUMP_INTR` (a table
//! changed while it was read), reads it to its end and dumps once more; a second interrupted
//! dump is an error. Messages of another address family than asked for are dropped (a kernel
//! without IPv6 answers an `AF_INET6` dump with every family's entries).
//!
//! Bounds: every receive waits at most until the dump's deadline (the `timeout` of
//! [`Rtnl::open`], set as `SO_RCVTIMEO` before each receive), then the dump fails with
//! [`io::ErrorKind::TimedOut`]; a dump holds at most [`MAX_ENTRIES`] messages and
//! [`MAX_DUMP_BYTES`] bytes, else it fails; one datagram is at most [`MAX_DATAGRAM`] bytes
//! (its size is read first with `MSG_PEEK | MSG_TRUNC`, so nothing is cut silently; the
//! kernel's are at most 32 KiB). A dump that failed half way leaves the kernel's dump running
//! on the socket, so the socket is then replaced by a new one before the next dump (made in
//! the network namespace of the thread that calls that dump, like the first one by
//! [`Rtnl::open`]: a socket belongs to the namespace it was made in).
//!
//! The monitor's [`Monitor::wait`] blocks until at least one message arrives (or its timeout),
//! then takes every datagram already queued without blocking (at most [`MAX_DRAIN`]) and says
//! how many messages there were. An overrun of the socket's buffer (`ENOBUFS`: messages were
//! lost) counts as a change: the caller reads the tables again in any case.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, recvfrom, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::{TimeVal, TimeValLike};

use super::wire::{self, Addr, Dump, Link, Msg, Neigh, Route, AF_BRIDGE, AF_INET, AF_INET6};

/// The most messages one dump may hold (a router's tables are far smaller; a full BGP table
/// is not what this agent reads).
pub const MAX_ENTRIES: usize = 65_536;
/// The most bytes one dump may hold.
pub const MAX_DUMP_BYTES: usize = 16 << 20;
/// The largest datagram read (the kernel's dump datagrams are at most 32 KiB; a multicast
/// message for a link with many VFs can be larger).
pub const MAX_DATAGRAM: usize = 1 << 20;
/// The most datagrams [`Monitor::wait`] drains after the first.
pub const MAX_DRAIN: usize = 1024;
/// The receive buffer asked for the monitor (`SO_RCVBUF`, capped by the kernel at
/// `net.core.rmem_max`): room for bursts, fewer overruns.
const MONITOR_RCVBUF: usize = 1 << 20;

// linux/rtnetlink.h: the legacy group bits of `sockaddr_nl.nl_groups` (netlink(7)).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// The first buffer of a dump; grown (up to [`MAX_DATAGRAM`]) when a datagram is larger.
const INITIAL_BUF: usize = 64 << 10;

/// The first buffer of the monitor. The kernel sizes a notification's datagram to its message
/// (an RTM_NEWLINK is 1-2 KB), not to the reader's buffer as it does a dump's, and the monitor
/// keeps its buffer for the agent's life: 64 KiB there would be 60 of them idle.
const MONITOR_BUF: usize = 4 << 10;

fn nix_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A `NETLINK_ROUTE` socket bound to a port the kernel picks, in the groups `groups`.
fn open_socket(groups: u32) -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(nix_err)?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(nix_err)?;
    Ok(fd)
}

/// `SO_RCVTIMEO` for `left` (at least 1 µs: zero would mean "block for ever").
fn set_rcv_timeout(fd: &OwnedFd, left: Option<Duration>) -> io::Result<()> {
    let tv = match left {
        None => TimeVal::microseconds(0),
        Some(d) => TimeVal::microseconds(i64::try_from(d.as_micros()).unwrap_or(i64::MAX).max(1)),
    };
    setsockopt(fd, sockopt::ReceiveTimeout, &tv).map_err(nix_err)
}

/// One datagram into the front of `buf`, its length returned: its size is peeked first so
/// that a datagram larger than `buf` grows it instead of being cut (up to [`MAX_DATAGRAM`]; a
/// larger one is consumed and an error). `buf` only grows, so it is zeroed once, not at every
/// datagram, and it stays at least `min` long (a dump's [`INITIAL_BUF`]: the kernel sizes a
/// dump's datagrams by the largest buffer a reader offered, up to 32 KiB, so fewer of them
/// come; the monitor's [`MONITOR_BUF`]). `Ok(None)`
/// when the datagram is not from the kernel (port 0). Blocks as `SO_RCVTIMEO` says, or not at
/// all with `nonblock`.
fn recv_datagram(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    min: usize,
    nonblock: bool,
) -> Result<Option<usize>, Errno> {
    let raw = fd.as_raw_fd();
    let mut flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
    if nonblock {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    // netlink(7): with MSG_TRUNC, recv returns the datagram's real length.
    let size = {
        let mut probe = [0u8; 16];
        recv(raw, &mut probe, flags)?
    };
    if size > MAX_DATAGRAM {
        let mut probe = [0u8; 16];
        recv(raw, &mut probe, MsgFlags::MSG_DONTWAIT)?;
        return Err(Errno::EMSGSIZE);
    }
    let want = size.max(min);
    if buf.is_empty() {
        // Zeroed by the allocator (fresh pages need no writing), not a byte at a time: a
        // dump's buffer is made anew for each dump (see `Rtnl::dump`).
        *buf = vec![0; want];
    } else if buf.len() < want {
        buf.resize(want, 0);
    }
    let (n, from) = recvfrom::<NetlinkAddr>(raw, buf)?;
    match from {
        Some(a) if a.pid() == 0 => Ok(Some(n.min(buf.len()))),
        _ => Ok(None),
    }
}

/// The rtnetlink dump client: one socket, one outstanding dump at a time.
pub struct Rtnl {
    fd: OwnedFd,
    timeout: Duration,
    seq: u32,
    buf: Vec<u8>,
    /// The last dump stopped before its end: the kernel's dump may still be running on `fd`.
    stale: bool,
}

impl Rtnl {
    /// Opens the socket; `timeout` is every later dump's deadline (from its request to its
    /// `NLMSG_DONE`).
    pub fn open(timeout: Duration) -> io::Result<Rtnl> {
        Ok(Rtnl {
            fd: open_socket(0)?,
            timeout,
            seq: 0,
            buf: Vec::new(),
            stale: false,
        })
    }

    /// Every link (`RTM_GETLINK`, `AF_UNSPEC`).
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        self.dump(Dump::Links, wire::AF_UNSPEC, |m| match m {
            Msg::NewLink(l) => Some(l),
            _ => None,
        })
    }

    /// Every IPv4 and IPv6 address (two dumps).
    pub fn addrs(&mut self) -> io::Result<Vec<Addr>> {
        let mut out = Vec::new();
        for fam in [AF_INET, AF_INET6] {
            out.extend(self.dump(Dump::Addrs, fam, |m| match m {
                Msg::NewAddr(a) if a.family == fam => Some(a),
                _ => None,
            })?);
        }
        Ok(out)
    }

    /// Every IPv4 and IPv6 route of every table (two dumps; the callers filter).
    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let mut out = Vec::new();
        for fam in [AF_INET, AF_INET6] {
            out.extend(self.dump(Dump::Routes, fam, |m| match m {
                Msg::NewRoute(r) if r.family == fam => Some(r),
                _ => None,
            })?);
        }
        Ok(out)
    }

    /// Every IPv4 (ARP) and IPv6 (NDP) neighbour: two dumps.
    pub fn neighs(&mut self) -> io::Result<Vec<Neigh>> {
        self.neighs_of(&[AF_INET, AF_INET6])
    }

    /// The bridges' forwarding databases (`AF_BRIDGE` neighbours): one dump, apart from the
    /// neighbours so that a MAC flood past its bound costs only these.
    pub fn fdb(&mut self) -> io::Result<Vec<Neigh>> {
        self.neighs_of(&[AF_BRIDGE])
    }

    fn neighs_of(&mut self, families: &[u8]) -> io::Result<Vec<Neigh>> {
        let mut out = Vec::new();
        for &fam in families {
            out.extend(self.dump(Dump::Neighs, fam, |m| match m {
                Msg::NewNeigh(n) if n.family == fam => Some(n),
                _ => None,
            })?);
        }
        Ok(out)
    }

    /// One dump, repeated once when the kernel flags it interrupted. The receive buffer (64 KiB
    /// at least) is freed at its end: the client lives as long as its backend, between
    /// sessions too, and a GPV's response is built after its dumps, when the buffer is worth
    /// more to the rest of the agent. The price is one zeroed buffer per dump (8 for a whole
    /// snapshot).
    fn dump<T>(
        &mut self,
        kind: Dump,
        family: u8,
        pick: impl Fn(Msg) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        let out = self.dump_retried(kind, family, &pick);
        self.buf = Vec::new();
        out
    }

    fn dump_retried<T>(
        &mut self,
        kind: Dump,
        family: u8,
        pick: &impl Fn(Msg) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        for _ in 0..2 {
            match self.dump_once(kind, family, pick)? {
                (items, false) => return Ok(items),
                (_, true) => continue,
            }
        }
        Err(io::Error::other(format!(
            "netlink: the {kind:?} dump was interrupted twice by changes (NLM_F_DUMP_INTR)"
        )))
    }

    /// One dump: the items and whether it was interrupted.
    fn dump_once<T>(
        &mut self,
        kind: Dump,
        family: u8,
        pick: &impl Fn(Msg) -> Option<T>,
    ) -> io::Result<(Vec<T>, bool)> {
        if self.stale {
            self.fd = open_socket(0)?;
            self.stale = false;
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let deadline = Instant::now() + self.timeout;
        let req = wire::dump_request(kind, family, seq);
        // Until NLMSG_DONE is read, a failure leaves the kernel's dump running on the socket.
        self.stale = true;
        sendto(
            self.fd.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(nix_err)?;
        let mut items = Vec::new();
        let mut entries = 0usize;
        let mut bytes = 0usize;
        let mut interrupted = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out(kind, self.timeout));
            }
            set_rcv_timeout(&self.fd, Some(left))?;
            let n = match recv_datagram(&self.fd, &mut self.buf, INITIAL_BUF, false) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(timed_out(kind, self.timeout)),
                Err(e) => return Err(nix_err(e)),
            };
            let datagram = self.buf.get(..n).unwrap_or_default();
            bytes = bytes.saturating_add(n);
            if bytes > MAX_DUMP_BYTES {
                return Err(io::Error::other(format!(
                    "netlink: the {kind:?} dump is larger than {MAX_DUMP_BYTES} bytes"
                )));
            }
            let msgs =
                wire::parse(datagram).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            for (mseq, flags, msg) in msgs {
                if mseq != seq {
                    continue;
                }
                if flags & wire::NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg {
                    Msg::Done => {
                        self.stale = false;
                        return Ok((items, interrupted));
                    }
                    // An acknowledgement (error 0) is not the end of a dump.
                    Msg::Error(0) => {}
                    Msg::Error(e) => {
                        // NLMSG_ERROR ends the request (netlink(7)): nothing more follows.
                        self.stale = false;
                        return Err(io::Error::from_raw_os_error(e.saturating_neg()));
                    }
                    msg => {
                        entries += 1;
                        if entries > MAX_ENTRIES {
                            return Err(io::Error::other(format!(
                                "netlink: the {kind:?} dump has more than {MAX_ENTRIES} entries"
                            )));
                        }
                        items.extend(pick(msg));
                    }
                }
            }
        }
    }
}

fn timed_out(kind: Dump, timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("netlink: the {kind:?} dump took longer than {timeout:?}"),
    )
}

/// A socket in the rtnetlink multicast groups of links, IPv4/IPv6 addresses and IPv4/IPv6
/// routes (`RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV6_IFADDR`, `RTMGRP_IPV4_ROUTE`,
/// `RTMGRP_IPV6_ROUTE`; not the neighbours, which change all the time).
pub struct Monitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Monitor {
    /// Opens the socket in the groups. From then on, every change is queued for [`wait`]
    /// (up to the socket's buffer: beyond it, an overrun).
    ///
    /// [`wait`]: Monitor::wait
    pub fn open() -> io::Result<Monitor> {
        let fd = open_socket(
            RTMGRP_LINK
                | RTMGRP_IPV4_IFADDR
                | RTMGRP_IPV6_IFADDR
                | RTMGRP_IPV4_ROUTE
                | RTMGRP_IPV6_ROUTE,
        )?;
        // Best effort: the kernel caps it at net.core.rmem_max (an unprivileged process).
        let _ = setsockopt(&fd, sockopt::RcvBuf, &MONITOR_RCVBUF);
        Ok(Monitor {
            fd,
            buf: Vec::new(),
        })
    }

    /// Blocks until messages arrive (for ever with `None`), then takes every datagram already
    /// queued; returns how many messages (at least 1), or 0 when `timeout` passed first. An
    /// overrun (`ENOBUFS`) counts as one message; a datagram that does not parse counts as
    /// one too (something changed), as does a datagram of zero messages.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // The first message: wait for it.
        let mut count = loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                // A zero timeout still takes what is already queued.
                match self.take(true)? {
                    Some(n) => break n,
                    None => return Ok(0),
                }
            }
            set_rcv_timeout(&self.fd, left)?;
            // None: the timeout (then the zero-left branch above ends it) or a signal.
            if let Some(n) = self.take(false)? {
                break n;
            }
        };
        // What is already queued behind it.
        for _ in 0..MAX_DRAIN {
            match self.take(true)? {
                Some(n) => count = count.saturating_add(n),
                None => break,
            }
        }
        Ok(count)
    }

    /// One datagram: `Some(messages)` (at least 1), or `None` when there was none (timeout,
    /// interrupted, nothing queued, or a datagram not from the kernel).
    fn take(&mut self, nonblock: bool) -> io::Result<Option<usize>> {
        match recv_datagram(&self.fd, &mut self.buf, MONITOR_BUF, nonblock) {
            Ok(Some(n)) => {
                let datagram = self.buf.get(..n).unwrap_or_default();
                Ok(Some(wire::parse(datagram).map_or(1, |m| m.len().max(1))))
            }
            Ok(None) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(None),
            // netlink(7): the socket's buffer overran and messages were dropped.
            Err(Errno::ENOBUFS) => Ok(Some(1)),
            // A datagram larger than MAX_DATAGRAM, consumed: still a change.
            Err(Errno::EMSGSIZE) => Ok(Some(1)),
            Err(e) => Err(nix_err(e)),
        }
    }
}
