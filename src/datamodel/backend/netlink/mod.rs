//! The `netlink` backend's room: the kernel's live state read over rtnetlink (rtnetlink(7)),
//! with no `ip` process. [`wire`] is the pure encoding and parse of the messages; [`socket`]
//! the `NETLINK_ROUTE` socket (bounded dumps of links, addresses, routes and neighbours, and a
//! monitor of the link/address/route multicast groups).

pub mod socket;
pub mod wire;
