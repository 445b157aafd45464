//! Network namespaces made by a test, for tests against the real kernel (the netlink backend):
//! the test builds a small network in them (veth pairs, bridges, addresses, routes,
//! neighbours) with the real `ip` of iproute2, and runs code inside one on a thread of its own.
//!
//! [`Netns::new`] makes a fresh namespace named `cwmpd-<pid>-<n>-<time>` (`ip netns add`);
//! dropping the [`Netns`] deletes it (`ip netns del`), and with it every interface in it (the
//! kernel deletes a veth pair when either end goes). Only namespaces made here are touched:
//! nothing runs in the machine's own namespace but `ip netns add/del` and the `ip link add` of
//! a veth pair whose ends are created directly inside the namespaces (`netns NAME` on both ends).
//!
//! Skipping: it needs root (`CAP_SYS_ADMIN` for `setns`, `CAP_NET_ADMIN` for the links) and
//! `ip netns`. Without them [`Netns::new`] prints one line saying why and returns `None`, and
//! the test returns early; but when `CI` is set (`.ci/run` exports `CI=1` and runs as root) it
//! panics instead, so that CI never passes by skipping.
//!
//! [`Netns::run`] runs a closure on a new thread that first enters the namespace with
//! `setns(2)` (nix's `sched` feature); only that thread is in it, and it ends with the
//! closure, so the test's own threads never leave the machine's namespace.

use std::fs::File;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sched::{setns, CloneFlags};

/// A network namespace this test made; deleted on drop.
pub struct Netns {
    name: String,
}

/// Why namespaces cannot be made here, or `None` when they can: not root, or no `ip netns`.
fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // proc(5): "Uid: real effective saved filesystem".
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("not root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no `ip` command: {e}")),
    }
}

/// Runs `cmd` and returns its output, panicking with its stderr when it fails.
fn must(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Netns {
    /// A fresh namespace with its loopback up, or `None` (after a line on stderr) when this
    /// machine cannot make one and `CI` is not set. Panics under `CI` instead of skipping.
    pub fn new() -> Option<Netns> {
        if let Some(why) = unavailable() {
            assert!(
                std::env::var_os("CI").is_none(),
                "network namespace tests need root and `ip netns` under CI: {why}"
            );
            eprintln!("skipped: cannot make a network namespace here ({why})");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "cwmpd-{}-{}-{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS…` in the namespace; its stdout. Panics when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = must(Command::new("ip").arg("-n").arg(&self.name).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip -n NAME -j ARGS…`: iproute2's JSON, for comparing with an independent reading.
    pub fn ip_json(&self, args: &[&str]) -> String {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        self.ip(&all)
    }

    /// Runs a command inside the namespace (`ip netns exec NAME CMD…`); its output, whatever
    /// its exit status.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?} in {}: {e}", self.name))
    }

    /// A veth pair with both ends in this namespace, both up.
    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        self.up(a);
        self.up(b);
    }

    /// A veth pair from `a` in this namespace to `b` in `other`, both up. Both ends are made
    /// directly in their namespaces: nothing appears in the machine's own.
    pub fn veth_to(&self, a: &str, other: &Netns, b: &str) {
        must(Command::new("ip").args([
            "link",
            "add",
            a,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            &other.name,
        ]));
        self.up(a);
        other.up(b);
    }

    /// A bridge, up.
    pub fn bridge(&self, name: &str) {
        self.ip(&["link", "add", name, "type", "bridge"]);
        self.up(name);
    }

    /// Makes `port` a port of `bridge`.
    pub fn enslave(&self, port: &str, bridge: &str) {
        self.ip(&["link", "set", port, "master", bridge]);
    }

    /// `ip link set DEV up`.
    pub fn up(&self, dev: &str) {
        self.ip(&["link", "set", dev, "up"]);
    }

    /// `ip link set DEV down`.
    pub fn down(&self, dev: &str) {
        self.ip(&["link", "set", dev, "down"]);
    }

    /// A static address (`ip addr add CIDR dev DEV`: permanent).
    pub fn addr(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// An address with lifetimes, as udhcpc's default script (`ip addr add … valid_lft LEASE`)
    /// or a DHCPv6 client (odhcp6c: valid and preferred) sets them; `extra` adds options such
    /// as `nodad` or `noprefixroute`.
    pub fn addr_lft(&self, dev: &str, cidr: &str, valid: u32, preferred: u32, extra: &[&str]) {
        let (v, p) = (valid.to_string(), preferred.to_string());
        let mut args = vec![
            "addr",
            "add",
            cidr,
            "dev",
            dev,
            "valid_lft",
            &v,
            "preferred_lft",
            &p,
        ];
        args.extend_from_slice(extra);
        self.ip(&args);
    }

    /// `ip addr del CIDR dev DEV`.
    pub fn addr_del(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "del", cidr, "dev", dev]);
    }

    /// `ip route ARGS…` (e.g. `["add", "default", "via", "10.0.0.1", "metric", "5"]`).
    pub fn route(&self, args: &[&str]) {
        let mut all = vec!["route"];
        all.extend_from_slice(args);
        self.ip(&all);
    }

    /// `ip neigh ARGS…` (e.g. `["add", "10.0.0.9", "lladdr", "02:…", "dev", "v0"]`).
    pub fn neigh(&self, args: &[&str]) {
        let mut all = vec!["neigh"];
        all.extend_from_slice(args);
        self.ip(&all);
    }

    /// Sets a sysctl of the namespace (`KEY` under `/proc/sys/`, e.g.
    /// `net/ipv6/conf/default/disable_ipv6`): written by a thread inside it, since
    /// `/proc/sys/net` shows the namespace of the thread that opens it (proc(5)).
    pub fn sysctl(&self, key: &str, value: &str) {
        let (path, value) = (format!("/proc/sys/{key}"), value.to_owned());
        self.run(move || {
            std::fs::write(&path, value).unwrap_or_else(|e| panic!("cannot write {path}: {e}"))
        });
    }

    /// The MAC address of `dev` as `ip` prints it (`02:ab:…`).
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-o", "link", "show", dev]);
        out.split_whitespace()
            .skip_while(|w| !w.starts_with("link/"))
            .nth(1)
            .unwrap_or_else(|| panic!("no link address for {dev} in {out:?}"))
            .to_owned()
    }

    /// The index of `dev`.
    pub fn index(&self, dev: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", dev]);
        out.split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .unwrap_or_else(|| panic!("no index for {dev} in {out:?}"))
    }

    /// Runs `f` on a new thread that entered this namespace (`setns(2)`, `CLONE_NEWNET`) and
    /// returns its result; the thread ends with `f`. Panics (in the caller) when `f` panics or
    /// the namespace cannot be entered.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        // ip-netns(8): the namespace is held by a bind mount at /run/netns/NAME.
        let path = format!("/run/netns/{}", self.name);
        let handle = std::thread::spawn(move || {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            setns(&fd, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns({path}) failed: {e}"));
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// The CPUs this process may run on (`sched_getaffinity(2)`), in order; empty when the call
/// fails.
pub fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Binds the calling thread (and the threads it starts from now on, which inherit its mask) to
/// CPU `cpu` (`sched_setaffinity(2)`); false when that CPU is not there or the call failed.
pub fn pin_thread(cpu: usize) -> bool {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Best effort: a failure here must not hide the test's own panic.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A JSON value, as iproute2's `-j` prints it (RFC 8259), read by [`Json::parse`]: enough to
/// compare the kernel's tables as `ip` sees them with what cwmpd reads. Numbers are kept as
/// their text (64-bit counters exceed f64's exact range; [`Json::u64`] reads it). Nesting is
/// bounded (64 levels).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document; panics with the position on malformed input (a test helper).
    pub fn parse(text: &str) -> Json {
        let b = text.as_bytes();
        let mut pos = 0;
        let v = json_value(b, &mut pos, 0);
        json_ws(b, &mut pos);
        assert_eq!(pos, b.len(), "trailing bytes after JSON at {pos}: {text}");
        v
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The elements of an array (empty for anything else).
    pub fn items(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => &[],
        }
    }

    /// A string's value.
    pub fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer's value.
    pub fn u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// Whether the member `key` is `true`.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some(&Json::Bool(true))
    }
}

fn json_ws(b: &[u8], pos: &mut usize) {
    while *pos < b.len() && b[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

fn json_value(b: &[u8], pos: &mut usize, depth: usize) -> Json {
    assert!(depth < 64, "JSON nested too deep");
    json_ws(b, pos);
    let lit = |pos: &mut usize, word: &str, v: Json| {
        assert!(b[*pos..].starts_with(word.as_bytes()), "bad JSON at {pos}");
        *pos += word.len();
        v
    };
    match b.get(*pos) {
        Some(b'n') => lit(pos, "null", Json::Null),
        Some(b't') => lit(pos, "true", Json::Bool(true)),
        Some(b'f') => lit(pos, "false", Json::Bool(false)),
        Some(b'"') => Json::Str(json_string(b, pos)),
        Some(b'[') => {
            *pos += 1;
            let mut out = Vec::new();
            json_ws(b, pos);
            if b.get(*pos) == Some(&b']') {
                *pos += 1;
                return Json::Arr(out);
            }
            loop {
                out.push(json_value(b, pos, depth + 1));
                json_ws(b, pos);
                match b.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b']') => {
                        *pos += 1;
                        return Json::Arr(out);
                    }
                    _ => panic!("bad JSON array at {pos}"),
                }
            }
        }
        Some(b'{') => {
            *pos += 1;
            let mut out = Vec::new();
            json_ws(b, pos);
            if b.get(*pos) == Some(&b'}') {
                *pos += 1;
                return Json::Obj(out);
            }
            loop {
                json_ws(b, pos);
                let k = json_string(b, pos);
                json_ws(b, pos);
                assert_eq!(b.get(*pos), Some(&b':'), "bad JSON object at {pos}");
                *pos += 1;
                out.push((k, json_value(b, pos, depth + 1)));
                json_ws(b, pos);
                match b.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b'}') => {
                        *pos += 1;
                        return Json::Obj(out);
                    }
                    _ => panic!("bad JSON object at {pos}"),
                }
            }
        }
        Some(c) if *c == b'-' || c.is_ascii_digit() => {
            let start = *pos;
            while *pos < b.len()
                && matches!(b[*pos], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                *pos += 1;
            }
            Json::Num(String::from_utf8_lossy(&b[start..*pos]).into_owned())
        }
        _ => panic!("bad JSON value at {pos}"),
    }
}

fn json_string(b: &[u8], pos: &mut usize) -> String {
    assert_eq!(b.get(*pos), Some(&b'"'), "expected a JSON string at {pos}");
    *pos += 1;
    let mut out = Vec::new();
    loop {
        match b.get(*pos) {
            Some(b'"') => {
                *pos += 1;
                return String::from_utf8_lossy(&out).into_owned();
            }
            Some(b'\\') => {
                let c = *b.get(*pos + 1).expect("JSON escape at the end");
                *pos += 2;
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = std::str::from_utf8(&b[*pos..*pos + 4]).expect("\\u escape");
                        let cp = u32::from_str_radix(hex, 16).expect("\\u escape");
                        *pos += 4;
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        out.extend_from_slice(ch.to_string().as_bytes());
                    }
                    c => out.push(c),
                }
            }
            Some(&c) => {
                out.push(c);
                *pos += 1;
            }
            None => panic!("unterminated JSON string"),
        }
    }
}

/// `a` (a0: 10.77.1.1/24, fd77:1::1/64) linked to `b` (b0: 10.77.1.2/24, fd77:1::2/64).
pub fn pair() -> Option<(Netns, Netns)> {
    let a = Netns::new()?;
    let b = Netns::new()?;
    a.veth_to("a0", &b, "b0");
    a.addr("a0", "10.77.1.1/24");
    b.addr("b0", "10.77.1.2/24");
    a.ip(&["addr", "add", "fd77:1::1/64", "dev", "a0", "nodad"]);
    b.ip(&["addr", "add", "fd77:1::2/64", "dev", "b0", "nodad"]);
    Some((a, b))
}

/// a (10.77.2.1) - r1 (10.77.2.2 | 10.77.3.1) - r2 (10.77.3.2 | 10.77.4.1) - b (10.77.4.2),
/// the routers forwarding; r1 refuses 10.77.9.0/24 (`prohibit`: ICMP code 13).
pub fn three_hops() -> Option<[Netns; 4]> {
    let (a, r1, r2, b) = (Netns::new()?, Netns::new()?, Netns::new()?, Netns::new()?);
    a.veth_to("a0", &r1, "r0");
    r1.veth_to("r1", &r2, "s0");
    r2.veth_to("s1", &b, "b0");
    a.addr("a0", "10.77.2.1/24");
    r1.addr("r0", "10.77.2.2/24");
    r1.addr("r1", "10.77.3.1/24");
    r2.addr("s0", "10.77.3.2/24");
    r2.addr("s1", "10.77.4.1/24");
    b.addr("b0", "10.77.4.2/24");
    a.route(&["add", "default", "via", "10.77.2.2"]);
    r1.route(&["add", "10.77.4.0/24", "via", "10.77.3.2"]);
    r1.route(&["add", "prohibit", "10.77.9.0/24"]);
    r2.route(&["add", "default", "via", "10.77.3.1"]);
    b.route(&["add", "default", "via", "10.77.4.1"]);
    r1.sysctl("net/ipv4/ip_forward", "1");
    r2.sysctl("net/ipv4/ip_forward", "1");
    // The same in IPv6: fd77:2::/64, fd77:3::/64, fd77:4::/64.
    for (ns, dev, addr) in [
        (&a, "a0", "fd77:2::1/64"),
        (&r1, "r0", "fd77:2::2/64"),
        (&r1, "r1", "fd77:3::1/64"),
        (&r2, "s0", "fd77:3::2/64"),
        (&r2, "s1", "fd77:4::1/64"),
        (&b, "b0", "fd77:4::2/64"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
    }
    a.ip(&["-6", "route", "add", "default", "via", "fd77:2::2"]);
    r1.ip(&["-6", "route", "add", "fd77:4::/64", "via", "fd77:3::2"]);
    r2.ip(&["-6", "route", "add", "default", "via", "fd77:3::1"]);
    b.ip(&["-6", "route", "add", "default", "via", "fd77:4::1"]);
    r1.sysctl("net/ipv6/conf/all/forwarding", "1");
    r2.sysctl("net/ipv6/conf/all/forwarding", "1");
    Some([a, r1, r2, b])
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn json_of_iproute2() {
        let j = Json::parse(
            r#"[{"ifindex":3,"ifname":"a0","flags":["UP"],"x":null,"t":true,"n":-1.5e3,
               "s":"a\"b\u00e9","big":18446744073709551615,"o":{}, "e":[]}]"#,
        );
        let l = &j.items()[0];
        assert_eq!(l.get("ifindex").and_then(Json::u64), Some(3));
        assert_eq!(l.get("ifname").and_then(Json::str), Some("a0"));
        assert_eq!(l.get("flags").unwrap().items()[0].str(), Some("UP"));
        assert!(l.flag("t") && !l.flag("x"));
        assert_eq!(l.get("s").and_then(Json::str), Some("a\"bé"));
        assert_eq!(l.get("big").and_then(Json::u64), Some(u64::MAX));
        assert_eq!(l.get("n"), Some(&Json::Num("-1.5e3".into())));
    }
}
