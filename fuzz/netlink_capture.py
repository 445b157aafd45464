#!/usr/bin/env python3
"""Captures real rtnetlink datagrams as the seed corpus of the netlink_parse fuzz target.

Run as root (it makes and deletes its own network namespace, nothing else is touched):

    fuzz/netlink_capture.py fuzz/corpus/netlink_parse

It builds a small network in a fresh namespace with the real `ip`/`bridge` of iproute2 (a veth
pair, a bridge and its port, static and dynamic IPv4 addresses, IPv6 addresses, a point-to-point
address, routes in two tables, static neighbours, an FDB entry), then, from inside it, sends the
same dump requests as cwmpd (netlink(7), rtnetlink(7): RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE,
RTM_GETNEIGH with NLM_F_REQUEST|NLM_F_DUMP) and writes every datagram the kernel answers to a
file of its own, plus the multicast datagrams of an address added and deleted and a link taken
down (RTMGRP_LINK|IPV4_IFADDR|IPV6_IFADDR|IPV4_ROUTE|IPV6_ROUTE). The bytes are the kernel's,
in the host's byte order (the fuzz target parses them on the same kind of host).
"""
import os
import socket
import struct
import subprocess
import sys
import time

NS = "cwmpd-capture-%d" % os.getpid()
DUMP = 0x300 | 0x1  # NLM_F_DUMP | NLM_F_REQUEST
# (name, type, fixed header length, family)
DUMPS = [
    ("links", 18, 16, 0),
    ("addrs4", 22, 8, socket.AF_INET),
    ("addrs6", 22, 8, socket.AF_INET6),
    ("routes4", 26, 12, socket.AF_INET),
    ("routes6", 26, 12, socket.AF_INET6),
    ("neigh4", 30, 12, socket.AF_INET),
    ("neigh6", 30, 12, socket.AF_INET6),
    ("fdb", 30, 12, 7),  # AF_BRIDGE
]


def ip(*args):
    subprocess.run(["ip", "-n", NS] + list(args), check=True)


def setup():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    ip("link", "set", "lo", "up")
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    ip("link", "add", "br0", "type", "bridge")
    ip("link", "set", "v1", "master", "br0")
    for dev in ("v0", "v1", "br0"):
        ip("link", "set", dev, "up")
    ip("link", "set", "v0", "mtu", "1492")
    ip("addr", "add", "192.0.2.1/24", "brd", "+", "dev", "v0", "label", "v0:lan")
    ip("addr", "add", "198.51.100.7/24", "dev", "v0", "valid_lft", "3600", "preferred_lft", "1800")
    ip("addr", "add", "100.64.0.2", "peer", "100.64.0.1", "dev", "br0")
    ip("addr", "add", "2001:db8:1::1/64", "dev", "v0")
    ip("addr", "add", "2001:db8:2::1/64", "dev", "v0", "nodad", "valid_lft", "7200", "preferred_lft", "3600")
    ip("route", "add", "default", "via", "192.0.2.254", "metric", "10")
    ip("route", "add", "203.0.113.0/24", "via", "192.0.2.2", "table", "100")
    ip("route", "add", "2001:db8:99::/48", "via", "2001:db8:2::fe", "metric", "42")
    ip("neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:09", "dev", "v0")
    ip("neigh", "add", "2001:db8:2::9", "lladdr", "02:00:00:00:00:0a", "dev", "v0", "nud", "stale")
    subprocess.run(["bridge", "-n", NS, "fdb", "add", "02:00:00:00:00:0b", "dev", "v1", "master", "static"], check=True)


def capture(out):
    # Runs inside the namespace (`ip netns exec`).
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
    s.bind((0, 0))
    s.settimeout(5)
    seq = 100
    for name, ty, hlen, fam in DUMPS:
        seq += 1
        body = bytes([fam]) + bytes(hlen - 1)
        s.send(struct.pack("=IHHII", 16 + hlen, ty, DUMP, seq, 0) + body)
        n = 0
        done = False
        while not done:
            data = s.recv(1 << 16)
            with open(os.path.join(out, "%s-%d" % (name, n)), "wb") as f:
                f.write(data)
            n += 1
            off = 0
            while off + 16 <= len(data):
                ln, t = struct.unpack_from("=IH", data, off)
                if t in (2, 3) or ln < 16:  # NLMSG_ERROR, NLMSG_DONE
                    done = True
                    break
                off += (ln + 3) & ~3
    m = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    m.bind((0, 0x1 | 0x10 | 0x40 | 0x100 | 0x400))
    m.settimeout(1)
    ip("addr", "add", "192.0.2.77/24", "dev", "v0")
    ip("addr", "del", "192.0.2.77/24", "dev", "v0")
    ip("link", "set", "v1", "down")
    n = 0
    try:
        while n < 32:
            data = m.recv(1 << 16)
            with open(os.path.join(out, "monitor-%d" % n), "wb") as f:
                f.write(data)
            n += 1
    except socket.timeout:
        pass


def main():
    global NS
    if sys.argv[1:2] == ["--capture"]:
        NS = sys.argv[3]
        capture(sys.argv[2])
        return
    out = sys.argv[1] if len(sys.argv) > 1 else "corpus/netlink_parse"
    os.makedirs(out, exist_ok=True)
    try:
        setup()
        time.sleep(0.5)
        subprocess.run(["ip", "netns", "exec", NS, sys.executable, os.path.abspath(__file__),
                        "--capture", out, NS], check=True)
    finally:
        subprocess.run(["ip", "netns", "del", NS])


if __name__ == "__main__":
    main()
