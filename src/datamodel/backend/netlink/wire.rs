//! rtnetlink on the wire (PURE: no file, socket, process, clock or thread): the dump requests
//! cwmpd sends and the parse of what the kernel answers or multicasts.
//!
//! Sources: netlink(7) and rtnetlink(7); the uapi headers `linux/netlink.h` (`struct nlmsghdr`,
//! `NLMSG_*`, `NLM_F_*`, `struct nlmsgerr`, `struct nlattr`/`NLA_F_*`), `linux/rtnetlink.h`
//! (`RTM_*`, `struct rtattr`, `RTA_ALIGN`, `struct rtmsg`, `RTA_*`, `struct rtvia`),
//! `linux/if_link.h` (`struct ifinfomsg` is in rtnetlink.h; `IFLA_*`, `IFLA_INFO_KIND`,
//! `struct rtnl_link_stats64`), `linux/if_addr.h` (`struct ifaddrmsg`, `IFA_*`,
//! `struct ifa_cacheinfo`), `linux/neighbour.h` (`struct ndmsg`, `NDA_*`).
//!
//! A datagram holds one or more messages, each a 16-byte `nlmsghdr` (length, type, flags,
//! sequence, port) followed by its payload, padded to 4 bytes (`NLMSG_ALIGN`). The payload of
//! the four tables is a fixed header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`, `ndmsg`) then
//! attributes, each a 4-byte `rtattr` (length, type) and its value, padded to 4 bytes
//! (`RTA_ALIGN`). Everything is in host byte order (the kernel's own), so the parse reads
//! native-endian integers: it is meant for the socket of the machine it runs on.
//!
//! Bounds: [`parse`] is one linear pass over its input. Every length is checked against what
//! is left before it is used (`nlmsg_len` at least the header and at most the datagram,
//! `rta_len` at least the attribute header and at most the message, fixed headers and
//! fixed-size values complete); anything short or inconsistent is a [`WireError`], never a
//! panic. Attributes are read one level deep, plus the one nested attribute read
//! (`IFLA_LINKINFO` → `IFLA_INFO_KIND`): no recursion. Unknown message types are
//! [`Msg::Other`], unknown attributes are skipped, and messages of an address family this
//! module does not represent (e.g. MPLS routes, multicast routes of `RTNL_FAMILY_IPMR`) are
//! [`Msg::Other`] too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// linux/socket.h: address families.
/// `AF_UNSPEC`.
pub const AF_UNSPEC: u8 = 0;
/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_BRIDGE` (`PF_BRIDGE`: the bridge FDB in neighbour messages).
pub const AF_BRIDGE: u8 = 7;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

// linux/netlink.h: message types, flags and sizes.
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`: a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: part of a multipart answer (a dump), ended by `NLMSG_DONE`.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change of the table (its content may be
/// inconsistent: netlink(7)).
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`: the flag bits of an attribute's type
/// (`NLA_TYPE_MASK` is the complement).
const NLA_FLAGS: u16 = 0xc000;

// linux/rtnetlink.h: message types.
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;

// Fixed headers: sizeof(struct ifinfomsg), ifaddrmsg, rtmsg, ndmsg; struct nlmsgerr's error.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const NDMSG_LEN: usize = 12;

// linux/if_link.h: IFLA_*.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_STATS64: u16 = 23;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_INFO_KIND: u16 = 1;

// linux/if_addr.h: IFA_*.
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
const IFA_PROTO: u16 = 11;

// linux/rtnetlink.h: RTA_*.
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

// linux/neighbour.h: NDA_*.
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_MASTER: u16 = 9;

/// The number of `__u64` fields of `struct rtnl_link_stats64` every kernel with
/// `IFLA_STATS64` (2.6.35) sends: `rx_packets` … `tx_compressed`.
const STATS64_BASE_FIELDS: usize = 23;

/// A network interface (`RTM_NEWLINK`/`RTM_DELLINK`: `struct ifinfomsg` and `IFLA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `ifi_index`.
    pub index: u32,
    /// `IFLA_IFNAME` (empty when absent; bytes that are not UTF-8 replaced).
    pub name: String,
    /// `ifi_flags`: `IFF_*` of linux/if.h (`IFF_UP` 0x1, `IFF_RUNNING` 0x40, `IFF_LOWER_UP`
    /// 0x10000, …).
    pub flags: u32,
    /// `IFLA_OPERSTATE`: `IF_OPER_*` of linux/if.h (RFC 2863: 0 unknown, 1 notpresent, 2 down,
    /// 3 lowerlayerdown, 4 testing, 5 dormant, 6 up); 0 when absent.
    pub oper: u8,
    /// `IFLA_CARRIER`.
    pub carrier: Option<bool>,
    /// `IFLA_MTU`.
    pub mtu: Option<u32>,
    /// `IFLA_ADDRESS`: the link-layer address (6 bytes for Ethernet).
    pub mac: Option<Vec<u8>>,
    /// `ifi_type`: `ARPHRD_*` of linux/if_arp.h (1 Ethernet, 772 loopback, 512 PPP, …).
    pub link_type: u16,
    /// `IFLA_MASTER`: the index of the bridge (or bond, VRF) this link is a port of.
    pub master: Option<u32>,
    /// `IFLA_LINKINFO`/`IFLA_INFO_KIND`: `"veth"`, `"bridge"`, `"vlan"`, … (absent for
    /// physical devices).
    pub kind: Option<String>,
    /// `IFLA_STATS64`.
    pub stats: Option<Stats64>,
    /// `IFLA_CARRIER_CHANGES`.
    pub carrier_changes: Option<u32>,
}

/// `struct rtnl_link_stats64` (linux/if_link.h), named like the files of
/// `/sys/class/net/IFACE/statistics/`. The first 23 fields are in every kernel's reply;
/// `rx_nohandler` (Linux 4.6) and `rx_otherhost_dropped` (Linux 6.0) only when the reply is
/// long enough to hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats64 {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub multicast: u64,
    pub collisions: u64,
    pub rx_length_errors: u64,
    pub rx_over_errors: u64,
    pub rx_crc_errors: u64,
    pub rx_frame_errors: u64,
    pub rx_fifo_errors: u64,
    pub rx_missed_errors: u64,
    pub tx_aborted_errors: u64,
    pub tx_carrier_errors: u64,
    pub tx_fifo_errors: u64,
    pub tx_heartbeat_errors: u64,
    pub tx_window_errors: u64,
    pub rx_compressed: u64,
    pub tx_compressed: u64,
    pub rx_nohandler: Option<u64>,
    pub rx_otherhost_dropped: Option<u64>,
}

/// An interface address (`RTM_NEWADDR`/`RTM_DELADDR`: `struct ifaddrmsg` and `IFA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// `ifa_family`: [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// `ifa_index`.
    pub index: u32,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `IFA_FLAGS` when present (it holds every flag), else `ifa_flags` (the low 8):
    /// `IFA_F_*` of linux/if_addr.h (0x01 secondary/temporary, 0x02 nodad, 0x08 dadfailed,
    /// 0x20 deprecated, 0x40 tentative, 0x80 permanent, …).
    pub flags: u32,
    /// `ifa_scope`: `RT_SCOPE_*` (0 universe, 200 site, 253 link, 254 host).
    pub scope: u8,
    /// The interface's own address: `IFA_LOCAL` when present, else `IFA_ADDRESS` (rtnetlink(7):
    /// on a point-to-point link `IFA_ADDRESS` is the peer's; iproute2 reads it the same way).
    pub address: IpAddr,
    /// `IFA_ADDRESS` when it differs from `IFA_LOCAL` (the peer of a point-to-point link).
    pub peer: Option<IpAddr>,
    /// `IFA_BROADCAST` (IPv4).
    pub broadcast: Option<Ipv4Addr>,
    /// `IFA_LABEL` (IPv4: `eth0:1`).
    pub label: Option<String>,
    /// `IFA_CACHEINFO.ifa_valid`: seconds left; `u32::MAX` is infinite (`INFINITY_LIFE_TIME`).
    pub valid: Option<u32>,
    /// `IFA_CACHEINFO.ifa_prefered`: seconds left; `u32::MAX` is infinite.
    pub preferred: Option<u32>,
    /// `IFA_PROTO`: who added the address (`IFAPROT_*`: 0 unspec, 1 kernel loopback, 2 kernel
    /// RA, 3 kernel link-local; user values otherwise).
    pub proto: Option<u8>,
}

/// A route (`RTM_NEWROUTE`/`RTM_DELROUTE`: `struct rtmsg` and `RTA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `rtm_family`: [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// `RTA_TABLE` when present (tables above 255), else `rtm_table` (`RT_TABLE_MAIN` 254,
    /// `RT_TABLE_LOCAL` 255).
    pub table: u32,
    /// `RTA_DST` (absent for the default route).
    pub dst: Option<IpAddr>,
    /// `rtm_dst_len`.
    pub dst_len: u8,
    /// `RTA_GATEWAY`, or `RTA_VIA`'s address (a gateway of another family, e.g. IPv4 via an
    /// IPv6 next hop). Multipath routes (`RTA_MULTIPATH`) have none here.
    pub gateway: Option<IpAddr>,
    /// `RTA_OIF`.
    pub oif: Option<u32>,
    /// `RTA_PRIORITY` (the metric).
    pub priority: Option<u32>,
    /// `rtm_protocol`: `RTPROT_*` (2 kernel, 3 boot, 4 static, 16 dhcp, 9 ra, …).
    pub protocol: u8,
    /// `rtm_scope`: `RT_SCOPE_*`.
    pub scope: u8,
    /// `rtm_type`: `RTN_*` (1 unicast, 2 local, 3 broadcast, 6 blackhole, 7 unreachable, …).
    pub kind: u8,
    /// `RTA_PREFSRC`.
    pub prefsrc: Option<IpAddr>,
}

/// A neighbour or a bridge FDB entry (`RTM_NEWNEIGH`/`RTM_DELNEIGH`: `struct ndmsg`, `NDA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    /// `ndm_family`: [`AF_INET`] (ARP), [`AF_INET6`] (NDP) or [`AF_BRIDGE`] (bridge FDB).
    pub family: u8,
    /// `ndm_ifindex` (for the FDB: the bridge port).
    pub index: u32,
    /// `ndm_state`: `NUD_*` of linux/neighbour.h (0x01 incomplete, 0x02 reachable, 0x04 stale,
    /// 0x08 delay, 0x10 probe, 0x20 failed, 0x40 noarp, 0x80 permanent).
    pub state: u16,
    /// `ndm_flags`: `NTF_*` (0x02 self, 0x04 master, 0x08 proxy, 0x80 router, …).
    pub flags: u8,
    /// `NDA_DST`: the neighbour's IP address (for the FDB: a VXLAN remote, else absent).
    pub dst: Option<IpAddr>,
    /// `NDA_LLADDR`: its link-layer address (for the FDB: the station's MAC).
    pub lladdr: Option<Vec<u8>>,
    /// `NDA_MASTER`: the bridge of an FDB entry.
    pub master: Option<u32>,
}

/// One message of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    NewLink(Link),
    DelLink(Link),
    NewAddr(Addr),
    DelAddr(Addr),
    NewRoute(Route),
    DelRoute(Route),
    NewNeigh(Neigh),
    DelNeigh(Neigh),
    /// `NLMSG_DONE` with a zero status: the end of a dump.
    Done,
    /// `NLMSG_ERROR` (`struct nlmsgerr.error`: 0 is an acknowledgement, else a negative
    /// errno), or `NLMSG_DONE` whose status is a negative errno (a dump the kernel could not
    /// finish: `netlink_dump_done` writes the dump's error there).
    Error(i32),
    /// Any other message type (`NLMSG_NOOP`, `NLMSG_OVERRUN`, a message of another table), or
    /// a table's message of an address family not represented here.
    Other(u16),
}

/// The tables [`dump_request`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// `RTM_GETLINK`.
    Links,
    /// `RTM_GETADDR`.
    Addrs,
    /// `RTM_GETROUTE` (every table: `rtm_table` 0 is `RT_TABLE_UNSPEC`).
    Routes,
    /// `RTM_GETNEIGH` (with [`AF_BRIDGE`]: the bridge FDB).
    Neighs,
}

/// A datagram that is not well-formed rtnetlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// `what` at byte `offset` of the datagram needs `need` bytes, only `have` are left.
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A length field (`nlmsg_len`, `rta_len`) at byte `offset` is below its header's size.
    BadLength {
        what: &'static str,
        offset: usize,
        len: usize,
    },
    /// The value of attribute `what` at byte `offset` has a length its type cannot have
    /// (an IPv4 address of 5 bytes, a `u32` of 2).
    BadValue {
        what: &'static str,
        offset: usize,
        len: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated {
                what,
                offset,
                need,
                have,
            } => write!(
                f,
                "netlink: {what} at byte {offset} truncated ({need} bytes needed, {have} left)"
            ),
            WireError::BadLength { what, offset, len } => {
                write!(f, "netlink: {what} at byte {offset} has a bad length {len}")
            }
            WireError::BadValue { what, offset, len } => {
                write!(
                    f,
                    "netlink: attribute {what} at byte {offset} has a bad value length {len}"
                )
            }
        }
    }
}

impl std::error::Error for WireError {}

/// `NLMSG_ALIGN`/`RTA_ALIGN`: rounded up to 4 bytes (saturating: the callers bound it).
fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// The dump request for `kind` in `family` ([`AF_UNSPEC`] for every family the kernel has;
/// [`AF_INET`], [`AF_INET6`], or [`AF_BRIDGE`] for the FDB): an `nlmsghdr` with
/// `NLM_F_REQUEST | NLM_F_DUMP`, port 0 (the kernel fills in the socket's), and the table's
/// fixed header zeroed but for its family (rtnetlink(7): a dump takes no filter).
pub fn dump_request(kind: Dump, family: u8, seq: u32) -> Vec<u8> {
    let (ty, body_len) = match kind {
        Dump::Links => (RTM_GETLINK, IFINFOMSG_LEN),
        Dump::Addrs => (RTM_GETADDR, IFADDRMSG_LEN),
        Dump::Routes => (RTM_GETROUTE, RTMSG_LEN),
        Dump::Neighs => (RTM_GETNEIGH, NDMSG_LEN),
    };
    let len = NLMSG_HDRLEN + body_len;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // The family is the first byte of each of the four fixed headers.
    out.push(family);
    out.resize(len, 0);
    out
}

/// Parses one datagram: every message in it, in order, as (`nlmsg_seq`, `nlmsg_flags`,
/// message). An empty datagram is an empty list.
pub fn parse(buf: &[u8]) -> Result<Vec<(u32, u16, Msg)>, WireError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let have = buf.len() - off;
        if have < NLMSG_HDRLEN {
            return Err(WireError::Truncated {
                what: "nlmsghdr",
                offset: off,
                need: NLMSG_HDRLEN,
                have,
            });
        }
        let len = u32_at(buf, off) as usize;
        let ty = u16_at(buf, off + 4);
        let flags = u16_at(buf, off + 6);
        let seq = u32_at(buf, off + 8);
        if len < NLMSG_HDRLEN {
            return Err(WireError::BadLength {
                what: "nlmsg_len",
                offset: off,
                len,
            });
        }
        if len > have {
            return Err(WireError::Truncated {
                what: "message",
                offset: off,
                need: len,
                have,
            });
        }
        let body = &buf[off + NLMSG_HDRLEN..off + len];
        let base = off + NLMSG_HDRLEN;
        let msg = match ty {
            NLMSG_NOOP => Msg::Other(ty),
            NLMSG_ERROR => Msg::Error(i32_at_body(body, base, "nlmsgerr")?),
            NLMSG_DONE => {
                // The status is there since Linux 2.6 but an empty NLMSG_DONE is tolerated
                // (netlink(7) shows it without payload).
                if body.len() >= 4 {
                    match i32_at_body(body, base, "NLMSG_DONE")? {
                        0 => Msg::Done,
                        e => Msg::Error(e),
                    }
                } else {
                    Msg::Done
                }
            }
            RTM_NEWLINK | RTM_DELLINK => {
                let link = parse_link(body, base)?;
                if ty == RTM_NEWLINK {
                    Msg::NewLink(link)
                } else {
                    Msg::DelLink(link)
                }
            }
            RTM_NEWADDR | RTM_DELADDR => match parse_addr(body, base)? {
                Some(a) if ty == RTM_NEWADDR => Msg::NewAddr(a),
                Some(a) => Msg::DelAddr(a),
                None => Msg::Other(ty),
            },
            RTM_NEWROUTE | RTM_DELROUTE => match parse_route(body, base)? {
                Some(r) if ty == RTM_NEWROUTE => Msg::NewRoute(r),
                Some(r) => Msg::DelRoute(r),
                None => Msg::Other(ty),
            },
            RTM_NEWNEIGH | RTM_DELNEIGH => match parse_neigh(body, base)? {
                Some(n) if ty == RTM_NEWNEIGH => Msg::NewNeigh(n),
                Some(n) => Msg::DelNeigh(n),
                None => Msg::Other(ty),
            },
            _ => Msg::Other(ty),
        };
        out.push((seq, flags, msg));
        // The next message starts at the aligned end; the padding of the last one may be
        // missing from the datagram.
        off = off.saturating_add(align4(len)).min(buf.len());
    }
    Ok(out)
}

// The fixed-size reads below are only called with `off + N <= buf.len()` checked by the
// caller; `get` keeps them panic-free anyway (a short read yields zeros, never reached).
fn u16_at(buf: &[u8], off: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = buf.get(off..off + 2) {
        b.copy_from_slice(s);
    }
    u16::from_ne_bytes(b)
}

fn u32_at(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(off..off + 4) {
        b.copy_from_slice(s);
    }
    u32::from_ne_bytes(b)
}

fn u64_at(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(off..off + 8) {
        b.copy_from_slice(s);
    }
    u64::from_ne_bytes(b)
}

fn i32_at_body(body: &[u8], base: usize, what: &'static str) -> Result<i32, WireError> {
    need(body, 4, base, what)?;
    Ok(u32_at(body, 0) as i32)
}

/// The fixed header of a message must be complete.
fn need(body: &[u8], n: usize, base: usize, what: &'static str) -> Result<(), WireError> {
    if body.len() < n {
        return Err(WireError::Truncated {
            what,
            offset: base,
            need: n,
            have: body.len(),
        });
    }
    Ok(())
}

/// One attribute: its type (flag bits cleared), its value and the value's offset in the
/// datagram (for errors).
struct Attr<'a> {
    ty: u16,
    val: &'a [u8],
    off: usize,
}

/// The attributes in `buf` (which starts at byte `base` of the datagram): one linear pass;
/// the first malformed one ends the iteration with an error.
struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

fn attrs(buf: &[u8], base: usize) -> Attrs<'_> {
    Attrs { buf, pos: 0, base }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let off = self.base + self.pos;
        let have = self.buf.len() - self.pos;
        if have < 4 {
            self.pos = self.buf.len();
            return Some(Err(WireError::Truncated {
                what: "rtattr",
                offset: off,
                need: 4,
                have,
            }));
        }
        let len = u16_at(self.buf, self.pos) as usize;
        let ty = u16_at(self.buf, self.pos + 2) & !NLA_FLAGS;
        if len < 4 {
            self.pos = self.buf.len();
            return Some(Err(WireError::BadLength {
                what: "rta_len",
                offset: off,
                len,
            }));
        }
        if len > have {
            self.pos = self.buf.len();
            return Some(Err(WireError::Truncated {
                what: "attribute",
                offset: off,
                need: len,
                have,
            }));
        }
        let val = &self.buf[self.pos + 4..self.pos + len];
        self.pos = self.pos.saturating_add(align4(len)).min(self.buf.len());
        Some(Ok(Attr {
            ty,
            val,
            off: off + 4,
        }))
    }
}

impl Attr<'_> {
    fn bad(&self, what: &'static str) -> WireError {
        WireError::BadValue {
            what,
            offset: self.off,
            len: self.val.len(),
        }
    }

    fn u8(&self, what: &'static str) -> Result<u8, WireError> {
        self.val.first().copied().ok_or_else(|| self.bad(what))
    }

    fn u32(&self, what: &'static str) -> Result<u32, WireError> {
        if self.val.len() < 4 {
            return Err(self.bad(what));
        }
        Ok(u32_at(self.val, 0))
    }

    /// A NUL-terminated string (`NLA_STRING`): up to the first NUL; not UTF-8 replaced.
    fn string(&self) -> String {
        let end = self
            .val
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.val.len());
        String::from_utf8_lossy(&self.val[..end]).into_owned()
    }

    /// An address of `family`: 4 bytes for IPv4, 16 for IPv6.
    fn ip(&self, family: u8, what: &'static str) -> Result<IpAddr, WireError> {
        match family {
            AF_INET => self.ipv4(what).map(IpAddr::V4),
            AF_INET6 => ip_of_len(self.val).ok_or_else(|| self.bad(what)),
            _ => Err(self.bad(what)),
        }
        .and_then(|ip| {
            if (family == AF_INET) == ip.is_ipv4() {
                Ok(ip)
            } else {
                Err(self.bad(what))
            }
        })
    }

    fn ipv4(&self, what: &'static str) -> Result<Ipv4Addr, WireError> {
        match ip_of_len(self.val) {
            Some(IpAddr::V4(a)) => Ok(a),
            _ => Err(self.bad(what)),
        }
    }
}

/// An IP address by its length (network byte order: 4 bytes IPv4, 16 IPv6).
fn ip_of_len(v: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(v) {
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    } else if let Ok(a) = <[u8; 16]>::try_from(v) {
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        None
    }
}

fn parse_link(body: &[u8], base: usize) -> Result<Link, WireError> {
    need(body, IFINFOMSG_LEN, base, "ifinfomsg")?;
    let mut link = Link {
        index: u32_at(body, 4),
        name: String::new(),
        flags: u32_at(body, 8),
        oper: 0,
        carrier: None,
        mtu: None,
        mac: None,
        link_type: u16_at(body, 2),
        master: None,
        kind: None,
        stats: None,
        carrier_changes: None,
    };
    for a in attrs(&body[IFINFOMSG_LEN..], base + IFINFOMSG_LEN) {
        let a = a?;
        match a.ty {
            IFLA_ADDRESS => link.mac = Some(a.val.to_vec()),
            IFLA_IFNAME => link.name = a.string(),
            IFLA_MTU => link.mtu = Some(a.u32("IFLA_MTU")?),
            IFLA_MASTER => link.master = Some(a.u32("IFLA_MASTER")?),
            IFLA_OPERSTATE => link.oper = a.u8("IFLA_OPERSTATE")?,
            IFLA_CARRIER => link.carrier = Some(a.u8("IFLA_CARRIER")? != 0),
            IFLA_CARRIER_CHANGES => link.carrier_changes = Some(a.u32("IFLA_CARRIER_CHANGES")?),
            IFLA_STATS64 => link.stats = Some(parse_stats64(&a)?),
            IFLA_LINKINFO => {
                // Nested (NLA_F_NESTED may or may not be set): IFLA_INFO_KIND, IFLA_INFO_DATA, …
                for n in attrs(a.val, a.off) {
                    let n = n?;
                    if n.ty == IFLA_INFO_KIND {
                        link.kind = Some(n.string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

fn parse_stats64(a: &Attr<'_>) -> Result<Stats64, WireError> {
    let v = a.val;
    if v.len() < STATS64_BASE_FIELDS * 8 {
        return Err(a.bad("IFLA_STATS64"));
    }
    let f = |i: usize| u64_at(v, i * 8);
    let opt = |i: usize| (v.len() >= (i + 1) * 8).then(|| u64_at(v, i * 8));
    Ok(Stats64 {
        rx_packets: f(0),
        tx_packets: f(1),
        rx_bytes: f(2),
        tx_bytes: f(3),
        rx_errors: f(4),
        tx_errors: f(5),
        rx_dropped: f(6),
        tx_dropped: f(7),
        multicast: f(8),
        collisions: f(9),
        rx_length_errors: f(10),
        rx_over_errors: f(11),
        rx_crc_errors: f(12),
        rx_frame_errors: f(13),
        rx_fifo_errors: f(14),
        rx_missed_errors: f(15),
        tx_aborted_errors: f(16),
        tx_carrier_errors: f(17),
        tx_fifo_errors: f(18),
        tx_heartbeat_errors: f(19),
        tx_window_errors: f(20),
        rx_compressed: f(21),
        tx_compressed: f(22),
        rx_nohandler: opt(23),
        rx_otherhost_dropped: opt(24),
    })
}

/// `None` for a family other than IPv4/IPv6.
fn parse_addr(body: &[u8], base: usize) -> Result<Option<Addr>, WireError> {
    need(body, IFADDRMSG_LEN, base, "ifaddrmsg")?;
    let family = body[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let mut address = None;
    let mut local = None;
    let mut addr = Addr {
        family,
        index: u32_at(body, 4),
        prefix_len: body[1],
        flags: u32::from(body[2]),
        scope: body[3],
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        peer: None,
        broadcast: None,
        label: None,
        valid: None,
        preferred: None,
        proto: None,
    };
    for a in attrs(&body[IFADDRMSG_LEN..], base + IFADDRMSG_LEN) {
        let a = a?;
        match a.ty {
            IFA_ADDRESS => address = Some(a.ip(family, "IFA_ADDRESS")?),
            IFA_LOCAL => local = Some(a.ip(family, "IFA_LOCAL")?),
            IFA_BROADCAST => addr.broadcast = Some(a.ipv4("IFA_BROADCAST")?),
            IFA_LABEL => addr.label = Some(a.string()),
            IFA_FLAGS => addr.flags = a.u32("IFA_FLAGS")?,
            IFA_PROTO => addr.proto = Some(a.u8("IFA_PROTO")?),
            IFA_CACHEINFO => {
                // struct ifa_cacheinfo { ifa_prefered, ifa_valid, cstamp, tstamp }
                if a.val.len() < 16 {
                    return Err(a.bad("IFA_CACHEINFO"));
                }
                addr.preferred = Some(u32_at(a.val, 0));
                addr.valid = Some(u32_at(a.val, 4));
            }
            _ => {}
        }
    }
    match (local, address) {
        (Some(l), a) => {
            addr.address = l;
            addr.peer = a.filter(|a| *a != l);
        }
        (None, Some(a)) => addr.address = a,
        (None, None) => {
            return Err(WireError::BadValue {
                what: "ifaddrmsg without IFA_LOCAL or IFA_ADDRESS",
                offset: base,
                len: body.len(),
            })
        }
    }
    Ok(Some(addr))
}

/// `None` for a family other than IPv4/IPv6.
fn parse_route(body: &[u8], base: usize) -> Result<Option<Route>, WireError> {
    need(body, RTMSG_LEN, base, "rtmsg")?;
    let family = body[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let mut r = Route {
        family,
        table: u32::from(body[4]),
        dst: None,
        dst_len: body[1],
        gateway: None,
        oif: None,
        priority: None,
        protocol: body[5],
        scope: body[6],
        kind: body[7],
        prefsrc: None,
    };
    for a in attrs(&body[RTMSG_LEN..], base + RTMSG_LEN) {
        let a = a?;
        match a.ty {
            RTA_DST => r.dst = Some(a.ip(family, "RTA_DST")?),
            RTA_GATEWAY => r.gateway = Some(a.ip(family, "RTA_GATEWAY")?),
            RTA_OIF => r.oif = Some(a.u32("RTA_OIF")?),
            RTA_PRIORITY => r.priority = Some(a.u32("RTA_PRIORITY")?),
            RTA_PREFSRC => r.prefsrc = Some(a.ip(family, "RTA_PREFSRC")?),
            RTA_TABLE => r.table = a.u32("RTA_TABLE")?,
            RTA_VIA => {
                // struct rtvia { __kernel_sa_family_t rtvia_family (u16); __u8 rtvia_addr[]; }
                let fam = a.val.get(..2).map(|_| u16_at(a.val, 0));
                let ip = ip_of_len(a.val.get(2..).unwrap_or(&[]));
                match (fam, ip) {
                    (Some(f), Some(ip)) if (f == u16::from(AF_INET)) == ip.is_ipv4() => {
                        r.gateway = Some(ip)
                    }
                    _ => return Err(a.bad("RTA_VIA")),
                }
            }
            _ => {}
        }
    }
    Ok(Some(r))
}

/// `None` for a family other than IPv4, IPv6 and the bridge.
fn parse_neigh(body: &[u8], base: usize) -> Result<Option<Neigh>, WireError> {
    need(body, NDMSG_LEN, base, "ndmsg")?;
    let family = body[0];
    if family != AF_INET && family != AF_INET6 && family != AF_BRIDGE {
        return Ok(None);
    }
    let mut n = Neigh {
        family,
        index: u32_at(body, 4),
        state: u16_at(body, 8),
        flags: body[10],
        dst: None,
        lladdr: None,
        master: None,
    };
    for a in attrs(&body[NDMSG_LEN..], base + NDMSG_LEN) {
        let a = a?;
        match a.ty {
            NDA_DST if family == AF_BRIDGE => {
                // A VXLAN FDB entry's remote: either family, told by its length.
                n.dst = Some(ip_of_len(a.val).ok_or_else(|| a.bad("NDA_DST"))?)
            }
            NDA_DST => n.dst = Some(a.ip(family, "NDA_DST")?),
            NDA_LLADDR => n.lladdr = Some(a.val.to_vec()),
            NDA_MASTER => n.master = Some(a.u32("NDA_MASTER")?),
            _ => {}
        }
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message: header then body (the body's length decides `nlmsg_len`; padded).
    fn msg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(body);
        m.resize(align4(m.len()), 0);
        m
    }

    fn attr(ty: u16, val: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + val.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(val);
        a.resize(align4(a.len()), 0);
        a
    }

    fn ifinfo(ty: u16, index: u32, flags: u32) -> Vec<u8> {
        let mut b = vec![AF_UNSPEC, 0];
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b
    }

    #[test]
    fn dump_request_layout() {
        let r = dump_request(Dump::Routes, AF_INET6, 7);
        assert_eq!(r.len(), 28);
        assert_eq!(u32_at(&r, 0), 28);
        assert_eq!(u16_at(&r, 4), RTM_GETROUTE);
        assert_eq!(u16_at(&r, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_at(&r, 8), 7);
        assert_eq!(r[16], AF_INET6);
        assert!(r[17..].iter().all(|&b| b == 0));
        assert_eq!(dump_request(Dump::Links, 0, 1).len(), 32);
        assert_eq!(dump_request(Dump::Addrs, 0, 1).len(), 24);
        assert_eq!(u16_at(&dump_request(Dump::Neighs, AF_BRIDGE, 1), 4), 30);
    }

    #[test]
    fn link_with_nested_kind_and_stats() {
        let mut body = ifinfo(1, 5, 0x11043);
        body.extend(attr(IFLA_IFNAME, b"br-lan\0"));
        body.extend(attr(IFLA_MTU, &1500u32.to_ne_bytes()));
        body.extend(attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
        body.extend(attr(IFLA_OPERSTATE, &[6]));
        body.extend(attr(IFLA_CARRIER, &[1]));
        body.extend(attr(IFLA_MASTER, &3u32.to_ne_bytes()));
        body.extend(attr(IFLA_CARRIER_CHANGES, &2u32.to_ne_bytes()));
        body.extend(attr(999, b"unknown is skipped"));
        let kind = attr(IFLA_INFO_KIND, b"bridge\0");
        body.extend(attr(IFLA_LINKINFO | 0x8000, &kind));
        let mut stats = Vec::new();
        for i in 0..24u64 {
            stats.extend_from_slice(&(i + 100).to_ne_bytes());
        }
        body.extend(attr(IFLA_STATS64, &stats));
        let got = parse(&msg(RTM_NEWLINK, NLM_F_MULTI, 9, &body)).unwrap();
        assert_eq!(got.len(), 1);
        let (seq, flags, m) = &got[0];
        assert_eq!((*seq, *flags), (9, NLM_F_MULTI));
        let Msg::NewLink(l) = m else { panic!("{m:?}") };
        assert_eq!(l.index, 5);
        assert_eq!(l.name, "br-lan");
        assert_eq!(l.flags, 0x11043);
        assert_eq!(l.link_type, 1);
        assert_eq!((l.oper, l.carrier, l.mtu), (6, Some(true), Some(1500)));
        assert_eq!(l.mac.as_deref(), Some(&[2, 0, 0, 0, 0, 1][..]));
        assert_eq!((l.master, l.carrier_changes), (Some(3), Some(2)));
        assert_eq!(l.kind.as_deref(), Some("bridge"));
        let s = l.stats.as_ref().unwrap();
        assert_eq!((s.rx_packets, s.tx_packets, s.rx_bytes), (100, 101, 102));
        assert_eq!((s.multicast, s.tx_compressed), (108, 122));
        assert_eq!((s.rx_nohandler, s.rx_otherhost_dropped), (Some(123), None));
    }

    #[test]
    fn short_stats_and_values_are_errors() {
        let mut body = ifinfo(1, 5, 0);
        body.extend(attr(IFLA_STATS64, &[0; 8 * 22]));
        assert!(matches!(
            parse(&msg(RTM_NEWLINK, 0, 1, &body)),
            Err(WireError::BadValue {
                what: "IFLA_STATS64",
                ..
            })
        ));
        let mut body = ifinfo(1, 5, 0);
        body.extend(attr(IFLA_MTU, &[1, 2]));
        assert!(matches!(
            parse(&msg(RTM_NEWLINK, 0, 1, &body)),
            Err(WireError::BadValue {
                what: "IFLA_MTU",
                ..
            })
        ));
    }

    fn ifaddr(family: u8, plen: u8, flags: u8, scope: u8, index: u32) -> Vec<u8> {
        let mut b = vec![family, plen, flags, scope];
        b.extend_from_slice(&index.to_ne_bytes());
        b
    }

    fn cacheinfo(pref: u32, valid: u32) -> Vec<u8> {
        [pref, valid, 1, 2]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    #[test]
    fn ipv4_address_local_peer_and_lifetimes() {
        // A point-to-point address (pppd): IFA_LOCAL ours, IFA_ADDRESS the peer.
        let mut body = ifaddr(AF_INET, 32, 0, 0, 7);
        body.extend(attr(IFA_ADDRESS, &[10, 64, 0, 1]));
        body.extend(attr(IFA_LOCAL, &[100, 64, 3, 4]));
        body.extend(attr(IFA_LABEL, b"ppp0\0"));
        body.extend(attr(IFA_FLAGS, &0x280u32.to_ne_bytes()));
        body.extend(attr(IFA_CACHEINFO, &cacheinfo(1800, 3600)));
        body.extend(attr(IFA_PROTO, &[4]));
        let got = parse(&msg(RTM_NEWADDR, 0, 0, &body)).unwrap();
        let Msg::NewAddr(a) = &got[0].2 else { panic!() };
        assert_eq!(a.address, IpAddr::from([100, 64, 3, 4]));
        assert_eq!(a.peer, Some(IpAddr::from([10, 64, 0, 1])));
        assert_eq!((a.index, a.prefix_len, a.flags), (7, 32, 0x280));
        assert_eq!((a.valid, a.preferred), (Some(3600), Some(1800)));
        assert_eq!((a.label.as_deref(), a.proto), (Some("ppp0"), Some(4)));

        // A LAN address: both the same, a broadcast; ifa_flags without IFA_FLAGS.
        let mut body = ifaddr(AF_INET, 24, 0x80, 0, 2);
        body.extend(attr(IFA_ADDRESS, &[192, 168, 1, 1]));
        body.extend(attr(IFA_LOCAL, &[192, 168, 1, 1]));
        body.extend(attr(IFA_BROADCAST, &[192, 168, 1, 255]));
        let got = parse(&msg(RTM_DELADDR, 0, 0, &body)).unwrap();
        let Msg::DelAddr(a) = &got[0].2 else { panic!() };
        assert_eq!((a.peer, a.flags), (None, 0x80));
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(192, 168, 1, 255)));
        assert_eq!(a.valid, None);
    }

    #[test]
    fn ipv6_address_and_family_checks() {
        let ip6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut body = ifaddr(AF_INET6, 64, 0x40, 0, 3);
        body.extend(attr(IFA_ADDRESS, &ip6.octets()));
        let got = parse(&msg(RTM_NEWADDR, 0, 0, &body)).unwrap();
        let Msg::NewAddr(a) = &got[0].2 else { panic!() };
        assert_eq!(a.address, IpAddr::V6(ip6));
        // An IPv4-sized address in an IPv6 message is malformed.
        let mut body = ifaddr(AF_INET6, 64, 0, 0, 3);
        body.extend(attr(IFA_ADDRESS, &[1, 2, 3, 4]));
        assert!(parse(&msg(RTM_NEWADDR, 0, 0, &body)).is_err());
        // No address at all is malformed.
        let body = ifaddr(AF_INET, 24, 0, 0, 3);
        assert!(parse(&msg(RTM_NEWADDR, 0, 0, &body)).is_err());
        // Another family is Other.
        let body = ifaddr(28, 20, 0, 0, 3);
        assert_eq!(
            parse(&msg(RTM_NEWADDR, 0, 0, &body)).unwrap()[0].2,
            Msg::Other(RTM_NEWADDR)
        );
    }

    #[test]
    fn routes() {
        let mut body = vec![AF_INET, 0, 0, 0, 254, 16, 0, 1, 0, 0, 0, 0];
        body.extend(attr(RTA_TABLE, &254u32.to_ne_bytes()));
        body.extend(attr(RTA_GATEWAY, &[192, 0, 2, 1]));
        body.extend(attr(RTA_OIF, &4u32.to_ne_bytes()));
        body.extend(attr(RTA_PRIORITY, &10u32.to_ne_bytes()));
        let mut body2 = vec![AF_INET, 24, 0, 0, 252, 2, 253, 1, 0, 0, 0, 0];
        body2.extend(attr(RTA_TABLE, &1000u32.to_ne_bytes()));
        body2.extend(attr(RTA_DST, &[192, 0, 2, 0]));
        body2.extend(attr(RTA_PREFSRC, &[192, 0, 2, 5]));
        let mut buf = msg(RTM_NEWROUTE, NLM_F_MULTI, 3, &body);
        buf.extend(msg(RTM_DELROUTE, NLM_F_MULTI, 3, &body2));
        buf.extend(msg(NLMSG_DONE, NLM_F_MULTI, 3, &0i32.to_ne_bytes()));
        let got = parse(&buf).unwrap();
        assert_eq!(got.len(), 3);
        let Msg::NewRoute(r) = &got[0].2 else {
            panic!()
        };
        assert_eq!((r.table, r.dst, r.dst_len), (254, None, 0));
        assert_eq!(r.gateway, Some(IpAddr::from([192, 0, 2, 1])));
        assert_eq!(
            (r.oif, r.priority, r.protocol, r.kind),
            (Some(4), Some(10), 16, 1)
        );
        let Msg::DelRoute(r) = &got[1].2 else {
            panic!()
        };
        assert_eq!((r.table, r.scope), (1000, 253));
        assert_eq!(r.dst, Some(IpAddr::from([192, 0, 2, 0])));
        assert_eq!(r.prefsrc, Some(IpAddr::from([192, 0, 2, 5])));
        assert_eq!(got[2].2, Msg::Done);
        // RTA_VIA: an IPv4 route via an IPv6 next hop.
        let mut body = vec![AF_INET, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0];
        let mut via = u16::from(AF_INET6).to_ne_bytes().to_vec();
        via.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        body.extend(attr(RTA_VIA, &via));
        let Msg::NewRoute(r) = &parse(&msg(RTM_NEWROUTE, 0, 0, &body)).unwrap()[0].2 else {
            panic!()
        };
        assert_eq!(r.gateway, Some("fe80::1".parse().unwrap()));
        // A gateway of the wrong size.
        let mut body = vec![AF_INET6, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0];
        body.extend(attr(RTA_GATEWAY, &[192, 0, 2, 1]));
        assert!(parse(&msg(RTM_NEWROUTE, 0, 0, &body)).is_err());
    }

    #[test]
    fn neighbours_and_fdb() {
        let mut nd = vec![AF_INET, 0, 0, 0];
        nd.extend_from_slice(&6u32.to_ne_bytes());
        nd.extend_from_slice(&0x02u16.to_ne_bytes());
        nd.extend_from_slice(&[0x80, 1]);
        let mut body = nd.clone();
        body.extend(attr(NDA_DST, &[192, 0, 2, 9]));
        body.extend(attr(NDA_LLADDR, &[2, 1, 2, 3, 4, 5]));
        let Msg::NewNeigh(n) = &parse(&msg(RTM_NEWNEIGH, 0, 0, &body)).unwrap()[0].2 else {
            panic!()
        };
        assert_eq!((n.index, n.state, n.flags), (6, 2, 0x80));
        assert_eq!(n.dst, Some(IpAddr::from([192, 0, 2, 9])));
        assert_eq!(n.lladdr.as_deref(), Some(&[2, 1, 2, 3, 4, 5][..]));
        let mut body = nd.clone();
        body[0] = AF_BRIDGE;
        body.extend(attr(NDA_LLADDR, &[2, 1, 2, 3, 4, 6]));
        body.extend(attr(NDA_MASTER, &3u32.to_ne_bytes()));
        let Msg::DelNeigh(n) = &parse(&msg(RTM_DELNEIGH, 0, 0, &body)).unwrap()[0].2 else {
            panic!()
        };
        assert_eq!((n.family, n.master, n.dst), (AF_BRIDGE, Some(3), None));
    }

    #[test]
    fn errors_done_and_other() {
        let mut err = (-16i32).to_ne_bytes().to_vec();
        err.extend(msg(RTM_GETLINK, 0, 5, &[]));
        let mut buf = msg(NLMSG_ERROR, 0, 5, &err);
        buf.extend(msg(NLMSG_DONE, NLM_F_MULTI, 5, &(-4i32).to_ne_bytes()));
        buf.extend(msg(NLMSG_DONE, NLM_F_MULTI, 5, &[]));
        buf.extend(msg(NLMSG_NOOP, 0, 5, &[]));
        buf.extend(msg(RTM_GETLINK, 0, 5, &[]));
        let kinds: Vec<Msg> = parse(&buf).unwrap().into_iter().map(|m| m.2).collect();
        assert_eq!(
            kinds,
            vec![
                Msg::Error(-16),
                Msg::Error(-4),
                Msg::Done,
                Msg::Other(NLMSG_NOOP),
                Msg::Other(RTM_GETLINK)
            ]
        );
        assert_eq!(parse(&[]).unwrap(), vec![]);
    }

    #[test]
    fn malformed_lengths_are_typed_errors() {
        let mut body = ifinfo(1, 5, 0);
        body.extend(attr(IFLA_IFNAME, b"eth0\0"));
        let good = msg(RTM_NEWLINK, 0, 1, &body);
        // Every truncation of a good message is an error, never a panic.
        for cut in 1..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // nlmsg_len below the header.
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(parse(&bad), Err(WireError::BadLength { .. })));
        // nlmsg_len past the datagram.
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(matches!(parse(&bad), Err(WireError::Truncated { .. })));
        // rta_len below its header, and past the message.
        let mut bad = good.clone();
        bad[32..34].copy_from_slice(&2u16.to_ne_bytes());
        assert!(matches!(parse(&bad), Err(WireError::BadLength { .. })));
        let mut bad = good.clone();
        bad[32..34].copy_from_slice(&200u16.to_ne_bytes());
        assert!(matches!(parse(&bad), Err(WireError::Truncated { .. })));
        // A nested attribute that overruns its parent.
        let mut body = ifinfo(1, 5, 0);
        let mut inner = attr(IFLA_INFO_KIND, b"veth\0");
        inner[..2].copy_from_slice(&64u16.to_ne_bytes());
        body.extend(attr(IFLA_LINKINFO, &inner));
        assert!(parse(&msg(RTM_NEWLINK, 0, 1, &body)).is_err());
        // A short fixed header.
        assert!(parse(&msg(RTM_NEWROUTE, 0, 1, &[AF_INET; 8])).is_err());
        assert!(parse(&msg(NLMSG_ERROR, 0, 1, &[0; 2])).is_err());
        assert!(WireError::BadLength {
            what: "rta_len",
            offset: 3,
            len: 2
        }
        .to_string()
        .contains("rta_len"));
    }

    #[test]
    fn last_message_without_padding() {
        let mut body = ifinfo(1, 5, 0);
        body.extend(attr(IFLA_IFNAME, b"e\0"));
        let mut m = msg(RTM_NEWLINK, 0, 1, &body);
        // nlmsg_len 39: one byte of padding missing from the datagram's end.
        let mut odd = body.clone();
        odd.truncate(body.len() - 1);
        let len = (NLMSG_HDRLEN + odd.len()) as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m.truncate(len as usize);
        let Msg::NewLink(l) = &parse(&m).unwrap()[0].2 else {
            panic!()
        };
        assert_eq!(l.name, "e");
    }
}
