//! The `netlink` backend: the kernel's live network state read over rtnetlink (links, IPv4 and
//! IPv6 addresses with their lifetimes, routes, neighbours, the bridges' forwarding databases),
//! with no process and no file; and the kernel's change messages (links, addresses, routes) as
//! the agent's event source, so that a new WAN address or a link going down reaches the ACS as
//! it happens. `wire` is the message codec (pure), `socket` the NETLINK_ROUTE sockets.
//!
//! Keys use the selector grammar of [`super::select`]:
//!
//! | key | value |
//! |---|---|
//! | `link[*]`, `link[*?COND&…]` | instances: the links' names (filtered on their fields) |
//! | `link[NAME].FIELD` | a link's field |
//! | `addr4[DEV][*]`, `addr6[DEV][*?…]` | instances: the addresses of link `DEV` (canonical text) |
//! | `addr4[DEV][ADDR].FIELD`, `addr6[…][…].FIELD` | an address's field |
//! | `prefix6[DEV][*]`, `prefix6[DEV][P].FIELD` | the on-link prefixes of `DEV`'s global IPv6 addresses (`2001:db8::/64`) |
//! | `route4[*]`, `route6[*]`, `route4[KEY].FIELD` | the main table's unicast routes, keyed `DEST/LEN@DEV#METRIC` |
//! | `neigh[*]`, `neigh[MAC].FIELD` | hosts: the MAC addresses of the IPv4/IPv6 neighbours, and what the kernel knows of each |
//! | `neigh[MAC].ip4[*]`, `neigh[MAC].ip6[*]` | instances: a host's addresses |
//! | `fdb[MAC].FIELD` | where a bridge learnt a MAC address |
//!
//! Fields (a field the kernel did not report has no value):
//!
//! - link: `name`, `index`, `operstate` (RFC 2863 in sysfs's words: `up`, `down`, `dormant`,
//!   `lowerlayerdown`, `notpresent`, `testing`, `unknown`), `state` (the operstate, with
//!   `unknown` read as `up` or `down` by IFF_RUNNING, as iproute2 does for drivers that keep
//!   none: loopback, PPP, tunnels), `up` (administratively, IFF_UP),
//!   `running`, `carrier` (`true`/`false`), `mtu`, `address` (the MAC, `aa:bb:…`), `type`
//!   (ARPHRD number: 1 Ethernet, 772 loopback, 512 PPP), `loopback`, `kind` (`bridge`, `veth`,
//!   `vlan`, …), `master` (the bridge or bond it is a port of), `carrier_changes`,
//!   `last_change` (seconds in the current operstate; see below), and the counters under
//!   their sysfs names (`rx_bytes`, `tx_packets`, `rx_dropped`, `multicast`, `rx_nohandler`…).
//! - address: `address`, `prefixlen`, `mask` (IPv4), `peer` (point-to-point), `broadcast`,
//!   `label`, `scope` (`global`, `site`, `link`, `host`), `dynamic` (not IFA_F_PERMANENT),
//!   `valid`, `preferred` (seconds left, `-1` for infinite), `valid_until`, `preferred_until`
//!   (xsd:dateTime; `9999-12-31T23:59:59Z` for infinite, as TR-181 writes it), `status`
//!   (TR-181 IPAddressStatus: `Preferred`, `Deprecated`, `Tentative`, `Optimistic`,
//!   `Duplicate`), `origin` (IPv6, TR-181 Origin: `WellKnown` for link-local, `Static` for a
//!   permanent address, `AutoConfigured` from a router advertisement, else `DHCPv6`),
//!   `addressing` (IPv4, TR-181 AddressingType: `Static`, `IPCP` with a peer, `AutoIP` in
//!   169.254/16, else `DHCP`).
//! - prefix: `prefix` (`2001:db8::/64`), `prefixlen`, `origin` (TR-181 IPv6Prefix Origin:
//!   `Static`, `RouterAdvertisement`, `PrefixDelegation`), and the `status` and lifetimes of the
//!   address it came from.
//! - route: `dest`, `dest_len`, `prefix` (`dest/len`), `mask` (IPv4), `gateway` (empty when on-link), `dev`,
//!   `metric`, `protocol` (`kernel`, `boot`, `static`, `dhcp`, `ra`, or the number), `scope`,
//!   `src`.
//! - host: `mac`, `dev`, `bridged` (`dev` is a bridge), `state` (the best NUD state: `permanent`, `reachable`, `delay`,
//!   `probe`, `stale`, else `none`: failed, incomplete, noarp), `active` (a state other than
//!   `none`), `ip` (the first
//!   IPv4 address, else the first IPv6), `ip4`, `ip6` (comma lists).
//! - fdb: `port` (the bridge port's name), `bridge`.
//!
//! Consistency: each table (links, addresses, routes, neighbours) is dumped once per snapshot,
//! on its first use after [`Backend::invalidate`], so a session sees one state of the kernel
//! (one dump per table per session, however many parameters). A link's counters are the
//! exception: like the sysfs files they once came from, they are never older than
//! [`COUNTER_AGE`] when a [`Backend::read`] call asks for one, so an ACS that reads them twice
//! in one session sees them move; the links themselves (their instances and other fields) stay
//! the snapshot's. A kernel that refuses a dump
//! (no rtnetlink in a sandbox) makes the table empty, with one log line per failure run.
//!
//! `last_change`: the kernel keeps no time of an operstate change. The backend notes when it
//! sees a link's operstate differ from the last dump (every notification check after a link
//! event dumps the links), and counts from the first dump for a link that has not changed
//! since the agent started: a lower bound, as TR-181 LastChange allows no better here.
//!
//! Bounds: the dumps are bounded in the socket (entries and bytes); a listing keeps only keys
//! [`super::select::listable`] (none can break out of a later key's brackets).

pub mod socket;
pub mod wire;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::select::{self, Sel, Step};
use super::{Backend, Cx, EventSource};
use crate::cwmp::fault::Fault;
use wire::{Addr, Link, Neigh, Route};

/// The deadline of one dump.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How old a link's counters may be when a read asks for them: older, the links are dumped
/// again for their counters (at most once per [`Backend::read`] call). A GPV's walk and its
/// read take one dump; a later request in the session sees counters of its own time.
pub const COUNTER_AGE: Duration = Duration::from_secs(1);

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const AF_BRIDGE: u8 = 7;
/// linux/if.h
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
/// linux/if_addr.h
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_OPTIMISTIC: u32 = 0x04;
const IFA_F_PERMANENT: u32 = 0x80;
/// linux/if_addr.h: IFAPROT_KERNEL_RA
const IFAPROT_KERNEL_RA: u8 = 2;
/// linux/rtnetlink.h
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
/// linux/neighbour.h
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;
const NUD_DELAY: u16 = 0x08;
const NUD_PROBE: u16 = 0x10;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;
/// The TR-181 text of an infinite lifetime.
const INFINITE: &str = "9999-12-31T23:59:59Z";

/// What a key names, after the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Table {
    Link,
    Addr4,
    Addr6,
    Prefix6,
    Route4,
    Route6,
    Neigh,
    Fdb,
}

impl Table {
    fn from_name(s: &str) -> Option<Table> {
        Some(match s {
            "link" => Table::Link,
            "addr4" => Table::Addr4,
            "addr6" => Table::Addr6,
            "prefix6" => Table::Prefix6,
            "route4" => Table::Route4,
            "route6" => Table::Route6,
            "neigh" => Table::Neigh,
            "fdb" => Table::Fdb,
            _ => return None,
        })
    }

    /// How many selections come before the row's: the link of an address table.
    fn scopes(self) -> usize {
        match self {
            Table::Addr4 | Table::Addr6 | Table::Prefix6 => 1,
            _ => 0,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Table::Link => LINK_FIELDS,
            Table::Addr4 | Table::Addr6 => ADDR_FIELDS,
            Table::Prefix6 => PREFIX_FIELDS,
            Table::Route4 | Table::Route6 => ROUTE_FIELDS,
            Table::Neigh => HOST_FIELDS,
            Table::Fdb => &["port", "bridge"],
        }
    }
}

const STATS: &[&str] = &[
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
];
const LINK_FIELDS: &[&str] = &[
    "name",
    "index",
    "operstate",
    "state",
    "up",
    "running",
    "carrier",
    "mtu",
    "address",
    "type",
    "loopback",
    "kind",
    "master",
    "carrier_changes",
    "last_change",
];
const ADDR_FIELDS: &[&str] = &[
    "address",
    "prefixlen",
    "mask",
    "peer",
    "broadcast",
    "label",
    "scope",
    "dynamic",
    "valid",
    "preferred",
    "valid_until",
    "preferred_until",
    "status",
    "origin",
    "addressing",
];
const PREFIX_FIELDS: &[&str] = &[
    "prefix",
    "status",
    "prefixlen",
    "valid",
    "preferred",
    "valid_until",
    "preferred_until",
    "origin",
];
const ROUTE_FIELDS: &[&str] = &[
    "dest", "dest_len", "prefix", "mask", "gateway", "dev", "metric", "protocol", "scope", "src",
];
const HOST_FIELDS: &[&str] = &[
    "mac", "dev", "bridged", "state", "active", "ip", "ip4", "ip6",
];

/// A parsed key.
#[derive(Debug)]
struct Parsed<'a> {
    table: Table,
    /// The link of an address table.
    scope: Option<&'a str>,
    what: What<'a>,
}

#[derive(Debug)]
enum What<'a> {
    /// `[*]`, `[*?…]`: the rows' keys.
    Rows(Vec<select::Cond<'a>>),
    /// `[ROW].FIELD`
    Field(&'a str, &'a str),
    /// `[ROW].FIELD[*]`: the items of a list field.
    Items(&'a str, &'a str),
}

fn parse(key: &str) -> Result<Parsed<'_>, String> {
    let steps = select::parse(key)?;
    let mut it = steps.into_iter();
    let Some(Step::Name(name)) = it.next() else {
        return Err(format!("{key:?}: expected a table name first"));
    };
    let table = Table::from_name(name).ok_or_else(|| {
        format!("{key:?}: unknown table {name:?} (link, addr4, addr6, prefix6, route4, route6, neigh, fdb)")
    })?;
    let mut scope = None;
    for _ in 0..table.scopes() {
        match it.next() {
            Some(Step::Sel(Sel::Key(k))) => scope = Some(k),
            _ => return Err(format!("{key:?}: {name} needs the link first: {name}[DEV]")),
        }
    }
    let row = match it.next() {
        Some(Step::Sel(Sel::All(conds))) => {
            for c in &conds {
                known_field(table, c.field, key)?;
            }
            return match it.next() {
                None => Ok(Parsed {
                    table,
                    scope,
                    what: What::Rows(conds),
                }),
                Some(_) => Err(format!("{key:?}: nothing may follow a listing [*]")),
            };
        }
        Some(Step::Sel(Sel::Key(row))) => row,
        _ => return Err(format!("{key:?}: expected [*] or [KEY] after {name}")),
    };
    let Some(Step::Name(field)) = it.next() else {
        return Err(format!("{key:?}: expected .FIELD after the row"));
    };
    known_field(table, field, key)?;
    match (it.next(), it.next()) {
        (None, _) => Ok(Parsed {
            table,
            scope,
            what: What::Field(row, field),
        }),
        (Some(Step::Sel(Sel::All(c))), None) if c.is_empty() && matches!(field, "ip4" | "ip6") => {
            Ok(Parsed {
                table,
                scope,
                what: What::Items(row, field),
            })
        }
        _ => Err(format!(
            "{key:?}: only a host's ip4[*] and ip6[*] list items"
        )),
    }
}

fn known_field(table: Table, field: &str, key: &str) -> Result<(), String> {
    if table.fields().contains(&field) || (table == Table::Link && STATS.contains(&field)) {
        Ok(())
    } else {
        Err(format!(
            "{key:?}: unknown field {field:?} (known: {})",
            table.fields().join(", ")
        ))
    }
}

/// Checks a binding key when the definitions are loaded.
pub fn check_key(key: &str) -> Result<(), String> {
    parse(key).map(|_| ())
}

/// One dump of each table, taken on first use, and the keyed rows read from them (built once
/// per table and link: a field of a row is then found by its key in constant time, however
/// many hosts a LAN has; reading the rows anew for each parameter was quadratic).
#[derive(Default)]
struct Snapshot {
    links: Option<Vec<Link>>,
    addrs: Option<Vec<Addr>>,
    routes: Option<Vec<Route>>,
    neighs: Option<Vec<Neigh>>,
    /// The bridges' forwarding databases: a dump of its own (a MAC flood fills it, and must not
    /// take the neighbours down with it).
    fdb: Option<Vec<Neigh>>,
    /// Links by kernel index and by name.
    link_at: HashMap<u32, usize>,
    link_named: HashMap<String, usize>,
    index: HashMap<(Table, Option<String>), Index>,
    /// When the snapshot was taken (lifetimes count from it).
    at: i64,
}

/// The rows of one table (within one link for the address tables): their keys in order, what
/// each is in the snapshot, and each key's position.
#[derive(Default)]
struct Index {
    rows: Vec<(String, RowRef)>,
    at: HashMap<String, usize>,
}

/// A row as positions in the snapshot's dumps.
#[derive(Clone)]
enum RowRef {
    Link(usize),
    Addr(usize),
    Prefix(usize),
    Route(usize),
    Host(Vec<usize>),
    Fdb(usize),
}

/// Reads the kernel's network state over rtnetlink.
/// An address as the kernel keys it: link index, address, prefix length.
type AddrKey = (u32, IpAddr, u8);

/// How far apart two dumps' ends of one lifetime may be and still be the same end (s).
const LIFETIME_SLACK: i64 = 2;

pub struct NetlinkBackend {
    rtnl: Option<socket::Rtnl>,
    snap: Snapshot,
    /// Per link: the operstate last seen and since when.
    seen: HashMap<String, (u8, Instant)>,
    /// Per address (link, address, prefix length): when its valid and preferred lifetimes end,
    /// as the last dump put it (see [`NetlinkBackend::steady_lifetimes`]).
    ends: HashMap<AddrKey, (Option<i64>, Option<i64>)>,
    /// Whether the last dump failed (logged once per failure run).
    failing: bool,
    /// [`Backend::read`] calls so far, and the one that last looked at the counters' age.
    reads: u64,
    counters_checked: u64,
    /// When the snapshot's link counters were dumped.
    counters_at: Option<Instant>,
}

impl Default for NetlinkBackend {
    fn default() -> Self {
        NetlinkBackend::new()
    }
}

impl NetlinkBackend {
    pub fn new() -> NetlinkBackend {
        NetlinkBackend {
            rtnl: None,
            snap: Snapshot::default(),
            seen: HashMap::new(),
            ends: HashMap::new(),
            failing: false,
            reads: 0,
            counters_checked: 0,
            counters_at: None,
        }
    }

    /// Before a link's counter is read: the links are dumped again when the snapshot's counters
    /// are older than [`COUNTER_AGE`] (once per read call), and each link of the snapshot takes
    /// the counters of the link of the same index and name. Nothing else of the snapshot
    /// changes; a link gone since keeps its old counters. A failed dump leaves them as they were.
    fn fresh_counters(&mut self) {
        if self.counters_checked == self.reads {
            return;
        }
        self.counters_checked = self.reads;
        let stale = self.snap.links.is_some()
            && self
                .counters_at
                .is_none_or(|at| at.elapsed() >= COUNTER_AGE);
        if !stale {
            return;
        }
        let fresh = self.dump("links", socket::Rtnl::links);
        if fresh.is_empty() {
            return;
        }
        self.counters_at = Some(Instant::now());
        let Some(links) = self.snap.links.as_mut() else {
            return;
        };
        for l in fresh {
            if let Some(old) = self
                .snap
                .link_named
                .get(&l.name)
                .and_then(|&i| links.get_mut(i))
                .filter(|old| old.index == l.index)
            {
                old.stats = l.stats;
            }
        }
    }

    /// Runs one dump on the socket (opened on first use, again after a failure).
    fn dump<T>(
        &mut self,
        what: &str,
        f: fn(&mut socket::Rtnl) -> std::io::Result<Vec<T>>,
    ) -> Vec<T> {
        let got = match self.rtnl.take() {
            Some(r) => Ok(r),
            None => socket::Rtnl::open(TIMEOUT),
        }
        .and_then(|mut r| {
            let v = f(&mut r)?;
            self.rtnl = Some(r);
            Ok(v)
        });
        match got {
            Ok(v) => {
                if std::mem::take(&mut self.failing) {
                    log::info!("netlink: {what} readable again");
                }
                v
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!("netlink: cannot dump {what}: {e}; its parameters read as absent");
                }
                Vec::new()
            }
        }
    }

    fn load(&mut self, table: Table) {
        if self.snap.at == 0 {
            self.snap.at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
        }
        match table {
            Table::Link
            | Table::Addr4
            | Table::Addr6
            | Table::Prefix6
            | Table::Route4
            | Table::Route6
            | Table::Neigh
            | Table::Fdb
                if self.snap.links.is_none() =>
            {
                // Every table names links by index: the links come first.
                let links = self.dump("links", socket::Rtnl::links);
                let now = Instant::now();
                self.counters_at = Some(now);
                for l in &links {
                    let e = self.seen.entry(l.name.clone()).or_insert((l.oper, now));
                    if e.0 != l.oper {
                        *e = (l.oper, now);
                    }
                }
                self.snap.link_at = links
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.index, i))
                    .collect();
                self.snap.link_named = links
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.name.clone(), i))
                    .collect();
                if self.seen.len() > 4 * links.len() + 64 {
                    let named = &self.snap.link_named;
                    self.seen.retain(|n, _| named.contains_key(n));
                }
                self.snap.links = Some(links);
            }
            _ => {}
        }
        match table {
            Table::Addr4 | Table::Addr6 | Table::Prefix6 if self.snap.addrs.is_none() => {
                let mut addrs = self.dump("addresses", socket::Rtnl::addrs);
                self.steady_lifetimes(&mut addrs);
                self.snap.addrs = Some(addrs);
            }
            Table::Route4 | Table::Route6 if self.snap.routes.is_none() => {
                self.snap.routes = Some(self.dump("routes", socket::Rtnl::routes));
            }
            Table::Neigh if self.snap.neighs.is_none() => {
                self.snap.neighs = Some(self.dump("neighbours", socket::Rtnl::neighs));
            }
            Table::Fdb if self.snap.fdb.is_none() => {
                self.snap.fdb =
                    Some(self.dump("the bridges' forwarding tables", socket::Rtnl::fdb));
            }
            _ => {}
        }
    }

    fn links(&self) -> &[Link] {
        self.snap.links.as_deref().unwrap_or_default()
    }

    fn link_name(&self, index: u32) -> Option<&str> {
        let i = *self.snap.link_at.get(&index)?;
        Some(self.links()[i].name.as_str())
    }

    fn link_index(&self, name: &str) -> Option<u32> {
        let i = *self.snap.link_named.get(name)?;
        Some(self.links()[i].index)
    }

    /// Builds the index of a table's rows in the snapshot once (the table is loaded).
    fn ensure_index(&mut self, table: Table, scope: Option<&str>) {
        let k = (table, scope.map(str::to_string));
        if self.snap.index.contains_key(&k) {
            return;
        }
        let mut idx = Index::default();
        for (key, row) in self.rows(table, scope) {
            if select::listable(&key) && !idx.at.contains_key(&key) {
                // Repeated keys (one MAC learnt on two ports): the first one stands.
                idx.at.insert(key.clone(), idx.rows.len());
                idx.rows.push((key, row));
            }
        }
        self.snap.index.insert(k, idx);
    }

    fn index(&self, table: Table, scope: Option<&str>) -> Option<&Index> {
        self.snap.index.get(&(table, scope.map(str::to_string)))
    }

    /// A row of the snapshot by its positions.
    fn row(&self, r: &RowRef) -> Option<Row<'_>> {
        fn get<T>(v: &Option<Vec<T>>, i: usize) -> Option<&T> {
            v.as_deref().and_then(|v| v.get(i))
        }
        Some(match r {
            RowRef::Link(i) => Row::Link(self.links().get(*i)?),
            RowRef::Addr(i) => Row::Addr(get(&self.snap.addrs, *i)?),
            RowRef::Prefix(i) => Row::Prefix(get(&self.snap.addrs, *i)?),
            RowRef::Route(i) => Row::Route(get(&self.snap.routes, *i)?),
            RowRef::Host(v) => Row::Host(
                v.iter()
                    .filter_map(|i| get(&self.snap.neighs, *i))
                    .collect(),
            ),
            RowRef::Fdb(i) => Row::Fdb(get(&self.snap.fdb, *i)?),
        })
    }

    /// The rows of a table (within `scope` for the address tables), keyed, in dump order.
    fn rows(&self, table: Table, scope: Option<&str>) -> Vec<(String, RowRef)> {
        let dev = scope.and_then(|s| self.link_index(s));
        let addrs = || {
            let family = if table == Table::Addr4 {
                AF_INET
            } else {
                AF_INET6
            };
            self.snap
                .addrs
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter(move |(_, a)| Some(a.index) == dev && a.family == family)
        };
        match table {
            Table::Link => self
                .links()
                .iter()
                .enumerate()
                .map(|(i, l)| (l.name.clone(), RowRef::Link(i)))
                .collect(),
            Table::Addr4 | Table::Addr6 => addrs()
                .map(|(i, a)| (a.address.to_string(), RowRef::Addr(i)))
                .collect(),
            Table::Prefix6 => addrs()
                .filter(|(_, a)| a.scope == 0 && a.prefix_len < 128)
                .filter_map(|(i, a)| Some((prefix_text(a)?, RowRef::Prefix(i))))
                .collect(),
            Table::Route4 | Table::Route6 => {
                let family = if table == Table::Route4 {
                    AF_INET
                } else {
                    AF_INET6
                };
                self.snap
                    .routes
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r.family == family && r.table == RT_TABLE_MAIN && r.kind == RTN_UNICAST
                    })
                    .map(|(i, r)| (self.route_key(r), RowRef::Route(i)))
                    .collect()
            }
            Table::Neigh => {
                let mut hosts: Vec<(String, RowRef)> = Vec::new();
                let mut at: HashMap<String, usize> = HashMap::new();
                for (i, n) in self
                    .snap
                    .neighs
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    if !(n.family == AF_INET || n.family == AF_INET6)
                        || n.state & (NUD_NOARP | NUD_FAILED | NUD_INCOMPLETE) != 0
                    {
                        continue;
                    }
                    let Some(mac) = n.lladdr.as_deref().filter(|m| unicast_mac(m)).map(mac_text)
                    else {
                        continue;
                    };
                    match at.get(&mac) {
                        Some(&h) => {
                            if let RowRef::Host(v) = &mut hosts[h].1 {
                                v.push(i);
                            }
                        }
                        None => {
                            at.insert(mac.clone(), hosts.len());
                            hosts.push((mac, RowRef::Host(vec![i])));
                        }
                    }
                }
                hosts
            }
            Table::Fdb => self
                .snap
                .fdb
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter(|(_, n)| n.family == AF_BRIDGE && n.master.is_some())
                .filter_map(|(i, n)| Some((mac_text(n.lladdr.as_deref()?), RowRef::Fdb(i))))
                .collect(),
        }
    }

    fn route_key(&self, r: &Route) -> String {
        let dst = r.dst.map_or_else(
            || {
                if r.family == AF_INET {
                    "0.0.0.0".to_string()
                } else {
                    "::".to_string()
                }
            },
            |d| d.to_string(),
        );
        let dev = r.oif.and_then(|i| self.link_name(i)).unwrap_or("");
        format!("{dst}/{}@{dev}#{}", r.dst_len, r.priority.unwrap_or(0))
    }

    fn field(&self, row: &Row<'_>, field: &str) -> Option<String> {
        match row {
            Row::Link(l) => self.link_field(l, field),
            Row::Addr(a) => self.addr_field(a, field),
            Row::Prefix(a) => match field {
                "prefix" => prefix_text(a),
                "prefixlen" => Some(a.prefix_len.to_string()),
                "origin" => Some(
                    if a.flags & IFA_F_PERMANENT != 0 {
                        "Static"
                    } else if a.proto == Some(IFAPROT_KERNEL_RA) {
                        "RouterAdvertisement"
                    } else {
                        "PrefixDelegation"
                    }
                    .to_string(),
                ),
                _ => self.addr_field(a, field),
            },
            Row::Route(r) => self.route_field(r, field),
            Row::Host(ns) => self.host_field(ns, field),
            Row::Fdb(n) => match field {
                "port" => self.link_name(n.index).map(str::to_string),
                "bridge" => n.master.and_then(|m| self.link_name(m)).map(str::to_string),
                _ => None,
            },
        }
    }

    fn link_field(&self, l: &Link, field: &str) -> Option<String> {
        let flag = |f: u32| Some((l.flags & f != 0).to_string());
        match field {
            "name" => Some(l.name.clone()),
            "index" => Some(l.index.to_string()),
            "operstate" => Some(oper_name(l.oper).to_string()),
            // iproute2's reading: a driver that keeps no operstate (`unknown`: loopback, PPP,
            // tunnels) is up when its lower layer is (IFF_RUNNING, `LOWER_UP`).
            "state" => Some(
                match (l.oper, l.flags & IFF_RUNNING != 0) {
                    (0, true) => "up",
                    (0, false) => "down",
                    (o, _) => oper_name(o),
                }
                .to_string(),
            ),
            "up" => flag(IFF_UP),
            "running" => flag(IFF_RUNNING),
            "loopback" => flag(IFF_LOOPBACK),
            "carrier" => l.carrier.map(|c| c.to_string()),
            "mtu" => l.mtu.map(|m| m.to_string()),
            "address" => l.mac.as_deref().filter(|m| m.len() == 6).map(mac_text),
            "type" => Some(l.link_type.to_string()),
            "kind" => l.kind.clone(),
            "master" => l.master.and_then(|m| self.link_name(m)).map(str::to_string),
            "carrier_changes" => l.carrier_changes.map(|c| c.to_string()),
            "last_change" => self.seen.get(&l.name).map(|(_, since)| {
                since
                    .elapsed()
                    .as_secs()
                    .min(u64::from(u32::MAX))
                    .to_string()
            }),
            s => l
                .stats
                .as_ref()
                .and_then(|st| stat(st, s))
                .map(|v| v.to_string()),
        }
    }

    /// The kernel counts lifetimes down in its own ticks and reports whole seconds left, so
    /// the end a dump's wall-clock time gives (`*_until`) can move by a second from one dump to
    /// the next while nothing changed, which would be a value change to notify. An end within
    /// [`LIFETIME_SLACK`] s of the one the last dump gave keeps that one; a renewed lease (the
    /// end moved further) shows at once.
    fn steady_lifetimes(&mut self, addrs: &mut [Addr]) {
        let at = self.snap.at;
        let steady = |left: &mut Option<u32>, before: Option<i64>| -> Option<i64> {
            let l = (*left).filter(|l| *l != u32::MAX)?;
            let end = at + i64::from(l);
            match before {
                Some(b) if (b - end).abs() <= LIFETIME_SLACK && b >= at => {
                    *left = u32::try_from(b - at).ok();
                    Some(b)
                }
                _ => Some(end),
            }
        };
        let mut ends = HashMap::with_capacity(addrs.len());
        for a in addrs.iter_mut() {
            let key = (a.index, a.address, a.prefix_len);
            let (v, p) = self.ends.get(&key).copied().unwrap_or((None, None));
            let v = steady(&mut a.valid, v);
            let p = steady(&mut a.preferred, p);
            ends.insert(key, (v, p));
        }
        self.ends = ends;
    }

    fn addr_field(&self, a: &Addr, field: &str) -> Option<String> {
        let v4 = a.family == AF_INET;
        let life = |secs: Option<u32>, until: bool| -> Option<String> {
            let s = secs?;
            Some(match (s, until) {
                (u32::MAX, false) => "-1".to_string(),
                (u32::MAX, true) => INFINITE.to_string(),
                (s, false) => s.to_string(),
                (s, true) => crate::cwmp::time::format_datetime_utc(self.snap.at + i64::from(s)),
            })
        };
        match field {
            "address" => Some(a.address.to_string()),
            "prefixlen" => Some(a.prefix_len.to_string()),
            "mask" if v4 => Some(prefix_mask(a.prefix_len)),
            "peer" => a.peer.map(|p| p.to_string()),
            "broadcast" => a.broadcast.map(|b| b.to_string()),
            "label" => a.label.clone(),
            "scope" => Some(scope_name(a.scope)),
            "dynamic" => Some((a.flags & IFA_F_PERMANENT == 0).to_string()),
            "valid" => life(a.valid, false),
            "preferred" => life(a.preferred, false),
            "valid_until" => life(a.valid, true),
            "preferred_until" => life(a.preferred, true),
            "status" => Some(
                if a.flags & IFA_F_DADFAILED != 0 {
                    "Duplicate"
                } else if a.flags & IFA_F_OPTIMISTIC != 0 {
                    "Optimistic"
                } else if a.flags & IFA_F_TENTATIVE != 0 {
                    "Tentative"
                } else if a.flags & IFA_F_DEPRECATED != 0 {
                    "Deprecated"
                } else {
                    "Preferred"
                }
                .to_string(),
            ),
            "origin" if !v4 => Some(
                match a.address {
                    IpAddr::V6(x) if x.segments()[0] & 0xffc0 == 0xfe80 => "WellKnown",
                    _ if a.flags & IFA_F_PERMANENT != 0 => "Static",
                    _ if a.proto == Some(IFAPROT_KERNEL_RA) => "AutoConfigured",
                    _ => "DHCPv6",
                }
                .to_string(),
            ),
            "addressing" if v4 => Some(
                if a.flags & IFA_F_PERMANENT != 0 && a.peer.is_none() {
                    "Static"
                } else if a.peer.is_some() {
                    "IPCP"
                } else if matches!(a.address, IpAddr::V4(x) if x.is_link_local()) {
                    "AutoIP"
                } else {
                    "DHCP"
                }
                .to_string(),
            ),
            _ => None,
        }
    }

    fn route_field(&self, r: &Route, field: &str) -> Option<String> {
        let v4 = r.family == AF_INET;
        match field {
            "dest" => Some(r.dst.map_or_else(
                || if v4 { "0.0.0.0".into() } else { "::".into() },
                |d| d.to_string(),
            )),
            "dest_len" => Some(r.dst_len.to_string()),
            "prefix" => Some(format!("{}/{}", self.route_field(r, "dest")?, r.dst_len)),
            "mask" if v4 => Some(prefix_mask(r.dst_len)),
            "gateway" => Some(r.gateway.map(|g| g.to_string()).unwrap_or_default()),
            "dev" => r.oif.and_then(|i| self.link_name(i)).map(str::to_string),
            "metric" => Some(r.priority.unwrap_or(0).to_string()),
            "protocol" => Some(match r.protocol {
                2 => "kernel".to_string(),
                3 => "boot".to_string(),
                4 => "static".to_string(),
                9 => "ra".to_string(),
                16 => "dhcp".to_string(),
                n => n.to_string(),
            }),
            "scope" => Some(scope_name(r.scope)),
            "src" => r.prefsrc.map(|s| s.to_string()),
            _ => None,
        }
    }

    fn host_field(&self, ns: &[&Neigh], field: &str) -> Option<String> {
        let addrs = |family: u8| {
            let v: Vec<String> = ns
                .iter()
                .filter(|n| n.family == family)
                .filter_map(|n| n.dst.map(|d| d.to_string()))
                .collect();
            v.join(",")
        };
        // The most telling state of the host's entries.
        let rank = |s: u16| match s {
            _ if s & NUD_PERMANENT != 0 => 5,
            _ if s & NUD_REACHABLE != 0 => 4,
            _ if s & NUD_DELAY != 0 => 3,
            _ if s & NUD_PROBE != 0 => 2,
            _ if s & NUD_STALE != 0 => 1,
            _ => 0,
        };
        let best = ns.iter().max_by_key(|n| rank(n.state))?;
        match field {
            "mac" => best.lladdr.as_deref().map(mac_text),
            "dev" => self.link_name(best.index).map(str::to_string),
            // Its link is a bridge: OpenWrt's LANs (br-lan, a guest network's bridge), never
            // its WAN as shipped.
            "bridged" => {
                let i = *self.snap.link_at.get(&best.index)?;
                Some((self.links().get(i)?.kind.as_deref() == Some("bridge")).to_string())
            }
            "state" => Some(
                ["none", "stale", "probe", "delay", "reachable", "permanent"][rank(best.state)]
                    .to_string(),
            ),
            "active" => Some((rank(best.state) > 0).to_string()),
            "ip" => [addrs(AF_INET), addrs(AF_INET6)]
                .into_iter()
                .find(|a| !a.is_empty())
                .map(|a| a.split(',').next().unwrap_or_default().to_string()),
            "ip4" => Some(addrs(AF_INET)),
            "ip6" => Some(addrs(AF_INET6)),
            _ => None,
        }
    }

    fn value(&mut self, key: &str) -> Option<String> {
        let p = parse(key).ok()?;
        let What::Field(row, field) = p.what else {
            return None;
        };
        if p.table == Table::Link && STATS.contains(&field) {
            self.fresh_counters();
        }
        self.load(p.table);
        self.ensure_index(p.table, p.scope);
        let idx = self.index(p.table, p.scope)?;
        let (_, r) = &idx.rows[*idx.at.get(row)?];
        self.field(&self.row(r)?, field)
    }

    fn list(&mut self, key: &str) -> Option<Vec<String>> {
        let p = parse(key).ok()?;
        self.load(p.table);
        self.ensure_index(p.table, p.scope);
        let idx = self.index(p.table, p.scope)?;
        match p.what {
            What::Rows(conds) => Some(
                idx.rows
                    .iter()
                    .filter(|(_, r)| {
                        conds.is_empty()
                            || self
                                .row(r)
                                .is_some_and(|r| select::matches(&conds, |f| self.field(&r, f)))
                    })
                    .map(|(k, _)| k.clone())
                    .collect(),
            ),
            What::Items(row, field) => {
                let Some(&at) = idx.at.get(row) else {
                    return Some(Vec::new());
                };
                let v = self
                    .row(&idx.rows[at].1)
                    .and_then(|r| self.field(&r, field))
                    .unwrap_or_default();
                Some(
                    v.split(',')
                        .filter(|s| select::listable(s))
                        .map(str::to_string)
                        .collect(),
                )
            }
            What::Field(..) => None,
        }
    }
}

/// One row of a table, borrowed from the snapshot.
enum Row<'a> {
    Link(&'a Link),
    Addr(&'a Addr),
    Prefix(&'a Addr),
    Route(&'a Route),
    /// A host: its neighbour entries (one per address).
    Host(Vec<&'a Neigh>),
    Fdb(&'a Neigh),
}

impl Backend for NetlinkBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        self.reads = self.reads.wrapping_add(1);
        Ok(keys.iter().map(|k| self.value(k)).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(self.list(table).unwrap_or_default()))
    }

    fn invalidate(&mut self) {
        self.snap = Snapshot::default();
    }

    fn end_session(&mut self, _cx: &mut Cx<'_>) -> Vec<Fault> {
        self.snap = Snapshot::default();
        Vec::new()
    }

    fn event_source(&self) -> Option<Box<dyn EventSource>> {
        Some(Box::new(Events { monitor: None }))
    }
}

/// The kernel's link, address and route change messages as an event source.
struct Events {
    monitor: Option<socket::Monitor>,
}

impl EventSource for Events {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, String> {
        let m = match &mut self.monitor {
            Some(m) => m,
            None => self
                .monitor
                .insert(socket::Monitor::open().map_err(|e| e.to_string())?),
        };
        match m.wait(timeout) {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                self.monitor = None;
                Err(e.to_string())
            }
        }
    }
}

fn stat(s: &wire::Stats64, name: &str) -> Option<u64> {
    Some(match name {
        "rx_packets" => s.rx_packets,
        "tx_packets" => s.tx_packets,
        "rx_bytes" => s.rx_bytes,
        "tx_bytes" => s.tx_bytes,
        "rx_errors" => s.rx_errors,
        "tx_errors" => s.tx_errors,
        "rx_dropped" => s.rx_dropped,
        "tx_dropped" => s.tx_dropped,
        "multicast" => s.multicast,
        "collisions" => s.collisions,
        "rx_length_errors" => s.rx_length_errors,
        "rx_over_errors" => s.rx_over_errors,
        "rx_crc_errors" => s.rx_crc_errors,
        "rx_frame_errors" => s.rx_frame_errors,
        "rx_fifo_errors" => s.rx_fifo_errors,
        "rx_missed_errors" => s.rx_missed_errors,
        "tx_aborted_errors" => s.tx_aborted_errors,
        "tx_carrier_errors" => s.tx_carrier_errors,
        "tx_fifo_errors" => s.tx_fifo_errors,
        "tx_heartbeat_errors" => s.tx_heartbeat_errors,
        "tx_window_errors" => s.tx_window_errors,
        "rx_compressed" => s.rx_compressed,
        "tx_compressed" => s.tx_compressed,
        "rx_nohandler" => s.rx_nohandler?,
        _ => return None,
    })
}

/// RFC 2863 operational states in the words of /sys/class/net/*/operstate (linux/if.h IF_OPER_*).
fn oper_name(o: u8) -> &'static str {
    match o {
        1 => "notpresent",
        2 => "down",
        3 => "lowerlayerdown",
        4 => "testing",
        5 => "dormant",
        6 => "up",
        _ => "unknown",
    }
}

/// linux/rtnetlink.h rt_scope_t.
fn scope_name(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

fn prefix_mask(len: u8) -> String {
    let bits = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    std::net::Ipv4Addr::from(bits).to_string()
}

/// The on-link prefix of an IPv6 address (`2001:db8::/64`).
fn prefix_text(a: &Addr) -> Option<String> {
    let IpAddr::V6(x) = a.address else {
        return None;
    };
    let len = u32::from(a.prefix_len.min(128));
    let bits = u128::from(x);
    let masked = if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - len))
    };
    Some(format!("{}/{len}", std::net::Ipv6Addr::from(masked)))
}

fn mac_text(m: &[u8]) -> String {
    let mut s = String::with_capacity(m.len() * 3);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A unicast Ethernet address (not multicast or broadcast, not all zeros).
fn unicast_mac(m: &[u8]) -> bool {
    m.len() == 6 && m[0] & 1 == 0 && m.iter().any(|b| *b != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "link[*]",
            "link[*?type=1&!loopback&kind!=bridge|veth]",
            "link[eth0].operstate",
            "link[eth0].rx_bytes",
            "addr4[eth0][*]",
            "addr6[br-lan][*?scope=global]",
            "addr4[wan][192.0.2.10].mask",
            "prefix6[wan][2001:db8::/64].valid_until",
            "route4[*]",
            "route6[::/0@wan#1024].gateway",
            "neigh[*?dev=br-lan]",
            "neigh[aa:bb:cc:dd:ee:ff].ip4[*]",
            "fdb[aa:bb:cc:dd:ee:ff].port",
        ] {
            check_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "links[*]",
            "link",
            "link[eth0]",
            "link[eth0].nothing",
            "addr4[*]",
            "addr4[eth0].mask",
            "link[*].name",
            "link[eth0].mtu[*]",
            "route4[*?bogus=1]",
        ] {
            assert!(check_key(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(prefix_mask(24), "255.255.255.0");
        assert_eq!(prefix_mask(0), "0.0.0.0");
        assert_eq!(prefix_mask(32), "255.255.255.255");
        assert_eq!(mac_text(&[0, 0x1a, 0x2b, 3, 4, 0xff]), "00:1a:2b:03:04:ff");
        assert!(unicast_mac(&[2, 0, 0, 0, 0, 1]));
        assert!(!unicast_mac(&[1, 0, 0x5e, 0, 0, 1]));
        assert!(!unicast_mac(&[0; 6]));
        let a = Addr {
            family: AF_INET6,
            index: 1,
            prefix_len: 56,
            flags: 0,
            scope: 0,
            address: "2001:db8:1:2ff::1".parse().unwrap(),
            peer: None,
            broadcast: None,
            label: None,
            valid: None,
            preferred: None,
            proto: None,
        };
        assert_eq!(prefix_text(&a).unwrap(), "2001:db8:1:200::/56");
    }

    #[test]
    fn lifetimes_keep_their_end_across_dumps_until_it_really_moves() {
        let addr = |valid: u32, preferred: u32| Addr {
            family: AF_INET6,
            index: 3,
            prefix_len: 64,
            flags: 0,
            scope: 0,
            address: "2001:db8::5".parse().unwrap(),
            peer: None,
            broadcast: None,
            label: None,
            valid: Some(valid),
            preferred: Some(preferred),
            proto: None,
        };
        let mut b = NetlinkBackend::new();
        let dump = |b: &mut NetlinkBackend, at: i64, a: Addr| -> Addr {
            b.snap.at = at;
            let mut v = vec![a];
            b.steady_lifetimes(&mut v);
            v.remove(0)
        };
        let first = dump(&mut b, 1000, addr(7200, u32::MAX));
        assert_eq!(first.valid, Some(7200));
        // 10 s later the kernel says 7189 (its tick ran ahead): the same end, 8200.
        let next = dump(&mut b, 1010, addr(7189, u32::MAX));
        assert_eq!(next.valid, Some(7190));
        assert_eq!(next.preferred, Some(u32::MAX));
        // A renewal moves the end: shown as it is.
        let renewed = dump(&mut b, 1020, addr(7200, 3600));
        assert_eq!(renewed.valid, Some(7200));
        assert_eq!(renewed.preferred, Some(3600));
        let again = dump(&mut b, 1021, addr(7200, 3598));
        assert_eq!((again.valid, again.preferred), (Some(7199), Some(3599)));
    }
}
