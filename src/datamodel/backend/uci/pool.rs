//! The DHCP pool pseudo options: the first and last address of an OpenWrt dnsmasq pool, from
//! its `start`/`limit` and the subnet of its interface, and which pool a static lease belongs
//! to (pure arithmetic on parsed sections).

use std::net::Ipv4Addr;

use super::export::Section;

/// The defaults of OpenWrt's dnsmasq init script for a pool's `start` and `limit`.
pub(super) const DEFAULT_START: u64 = 100;

pub(super) const DEFAULT_LIMIT: u64 = 150;

/// The filter pseudo option naming the dnsmasq pool (`config dhcp` section) a section with an
/// `ip` option (a static lease, `config host`) belongs to: see [`Pools::owner`].
pub(super) const POOL: &str = "@pool";

/// The `config dhcp` sections of a package, in order: name, subnet (network and broadcast
/// address, when its interface has one) and whether it serves (`ignore` is not set).
pub(super) struct Pools(pub(super) Vec<PoolEntry>);

/// One pool of [`Pools`]: section name, subnet (network, broadcast), whether it serves.
pub(super) type PoolEntry = (String, Option<(u32, u32)>, bool);

impl Pools {
    pub(super) fn of<'s>(
        sections: impl Iterator<Item = &'s Section>,
        network: &[&Section],
    ) -> Pools {
        Pools(
            sections
                .filter(|s| s.ty == "dhcp")
                .map(|s| {
                    let subnet =
                        pool_of(s, network.iter().copied()).map(|p| (p.network, p.broadcast));
                    let ignored = s.opt("ignore").and_then(|v| v.items().first().copied());
                    let serves = !matches!(ignored, Some("1" | "yes" | "on" | "true" | "enabled"));
                    (s.name.clone(), subnet, serves)
                })
                .collect(),
        )
    }

    /// The pool of a section: the first whose subnet holds its `ip` (dnsmasq picks the pool of a
    /// static lease by subnet); one with no address there (or none of any pool) belongs to the
    /// first pool that serves, else to the first pool. So each section belongs to exactly one.
    pub(super) fn owner(&self, s: &Section) -> Option<&str> {
        let ip = s
            .opt("ip")
            .and_then(|v| {
                v.items()
                    .first()
                    .and_then(|i| i.trim().parse::<Ipv4Addr>().ok())
            })
            .map(u32::from);
        let by_subnet = ip.and_then(|ip| {
            self.0
                .iter()
                .find(|(_, subnet, _)| subnet.is_some_and(|(net, bcast)| ip > net && ip < bcast))
        });
        by_subnet
            .or_else(|| self.0.iter().find(|(_, _, serves)| *serves))
            .or_else(|| self.0.first())
            .map(|(name, _, _)| name.as_str())
    }
}

/// A dnsmasq pool and its subnet, as host-order IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pool {
    pub(super) network: u32,
    pub(super) broadcast: u32,
    pub(super) prefix: u32,
    pub(super) min: u32,
    pub(super) max: u32,
}

/// The pool of a DHCP section, from its `start` and `limit` (OpenWrt defaults 100 and 150)
/// and the `ipaddr` (maybe `a.b.c.d/nn`) and `netmask` of its interface (option
/// `interface`, else the section's own name) among `network`, as OpenWrt's dnsmasq init
/// script computes it (`ipcalc.sh`: the last address is kept below the broadcast address).
pub(super) fn pool_of<'s>(
    dhcp: &Section,
    mut network: impl Iterator<Item = &'s Section>,
) -> Option<Pool> {
    let iface_name = match dhcp.opt("interface") {
        Some(v) => v.items().first().map(|s| s.to_string())?,
        None => dhcp.name.clone(),
    };
    let iface = network.find(|s| s.name == iface_name)?;
    let ipaddr = iface.opt("ipaddr")?.items().first()?.trim().to_string();
    let (addr, prefix) = match ipaddr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (ipaddr.as_str(), None),
    };
    let ip = u32::from(addr.parse::<Ipv4Addr>().ok()?);
    let prefix = match prefix {
        Some(p) => p.parse::<u32>().ok().filter(|p| *p <= 32)?,
        None => {
            let m = u32::from(
                iface
                    .opt("netmask")?
                    .items()
                    .first()?
                    .trim()
                    .parse::<Ipv4Addr>()
                    .ok()?,
            );
            // Only contiguous masks are netmasks.
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return None;
            }
            m.leading_ones()
        }
    };
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let net = ip & mask;
    let broadcast = net | !mask;
    let number = |name: &str, default: u64| match dhcp.opt(name) {
        None => Some(default),
        Some(v) => v.items().first()?.trim().parse::<u64>().ok(),
    };
    let start = number("start", DEFAULT_START)?;
    let limit = number("limit", DEFAULT_LIMIT)?.max(1);
    let min = u64::from(net).checked_add(start)?;
    let max = min
        .saturating_add(limit - 1)
        .min(u64::from(broadcast).saturating_sub(1));
    Some(Pool {
        network: net,
        broadcast,
        prefix,
        min: u32::try_from(min).ok()?,
        max: u32::try_from(max).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::export::{one, sec};
    use super::*;

    #[test]
    fn pools() {
        let lan = sec(
            "lan",
            "interface",
            &[
                ("ipaddr", one("192.168.1.1")),
                ("netmask", one("255.255.255.0")),
            ],
        );
        let pool = pool_of(&sec("lan", "dhcp", &[]), [&lan].into_iter()).unwrap();
        assert_eq!(Ipv4Addr::from(pool.min), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(Ipv4Addr::from(pool.max), Ipv4Addr::new(192, 168, 1, 249));
        let cidr = sec("guest", "interface", &[("ipaddr", one("10.0.0.1/29"))]);
        let d = sec(
            "g",
            "dhcp",
            &[
                ("interface", one("guest")),
                ("start", one("2")),
                ("limit", one("100")),
            ],
        );
        let pool = pool_of(&d, [&lan, &cidr].into_iter()).unwrap();
        assert_eq!(Ipv4Addr::from(pool.min), Ipv4Addr::new(10, 0, 0, 2));
        // Kept below the broadcast address.
        assert_eq!(Ipv4Addr::from(pool.max), Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(pool.prefix, 29);
        let bad = sec("lan", "dhcp", &[("start", one("x"))]);
        assert_eq!(pool_of(&bad, [&lan].into_iter()), None);
        let holes = sec(
            "lan",
            "interface",
            &[
                ("ipaddr", one("192.168.1.1")),
                ("netmask", one("255.0.255.0")),
            ],
        );
        assert_eq!(
            pool_of(&sec("lan", "dhcp", &[]), [&holes].into_iter()),
            None
        );
    }
}
