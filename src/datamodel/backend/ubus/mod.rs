//! The `ubus` backend: the live state OpenWrt's daemons hold (netifd's interfaces with their
//! addresses, leases and PPP sessions, the wireless status, hostapd's stations, iwinfo's radio
//! facts, odhcpd's leases), read over ubusd's unix socket with a client of our own (no libubus,
//! no process per call); and the daemons' events (an interface up or down, a station
//! associating) as the agent's event source. `blob` is the blob/blobmsg codec and `proto` the
//! message format (both pure), `client` the socket.
//!
//! A key is a call and a path into its reply, in the selector grammar of [`super::select`]:
//!
//! ```text
//! OBJECT/METHOD[?ARG=VALUE&ARG=VALUE]#PATH
//! network.interface/dump#interface[interface={i}].ipv4-address[0].address
//! network.device/status?name=wan#macaddr
//! hostapd.wlan0/get_clients#clients[*]                    (instances: the table's keys)
//! network.interface/dump#interface[*?proto=dhcp].interface (instances: a field of each element)
//! network.wireless/status#*.interfaces[section={i}].ifname (`*`: any member, the first that has it)
//! network.interface/dump#interface[interface=wan].ipv6-prefix[0].address/mask (two fields: `2001:db8::/56`)
//! ```
//!
//! Arguments are strings (what `ubus call OBJECT METHOD '{"ARG":"VALUE"}'` sends). In the path,
//! `[KEY]` is a table's member or an array's index, `[FIELD=VALUE]` the first element (of an
//! array, or member of a table) whose field reads `VALUE`, `*` as a name any member of a table
//! (a value: the first that yields one; a listing: all of them). A listing ends in `[*]` or
//! `[*?COND&…]` (a table: its keys; an array of values: the values) or in `[*…].FIELD` (an
//! array of tables: that field of each).
//!
//! Values read as `ubus call` prints them, without quotes: strings as they are, integers in
//! decimal, booleans `true`/`false`, an array of plain values as a comma list; a table or an
//! array of tables has no value.
//!
//! Consistency: each call (object, method, arguments) is made once per snapshot, on first use
//! after [`Backend::invalidate`]: a session sees one reply per call, however many parameters
//! read it. Missing sources are not errors: no ubusd (not OpenWrt, or ubusd restarting) makes
//! every key absent and every listing empty with one log line per failure run; a missing object
//! or method (no `hostapd.wlan1` on a router whose radio is off) is absent silently.
//!
//! Bounds: each call has a deadline of [`TIMEOUT`]; an object that did not answer in time is
//! not called again in the snapshot, and when ubusd itself cannot be reached or does not answer
//! no other call is tried until the next snapshot (a hung daemon costs a session one deadline,
//! not one per object); the client refuses messages over ubusd's own limit; a listing keeps only keys
//! [`super::select::listable`].

pub mod blob;
pub mod client;
pub mod proto;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::select::{self, Sel, Step};
use super::{Backend, Cx, EventSource, Platform};
use crate::cwmp::fault::Fault;
use blob::Value;
use client::{Listener, Ubus, UbusError};

/// The deadline of one call.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// ubusd's socket before OpenWrt 19.07, tried when the configured one is missing.
const OLD_SOCKET: &str = "/var/run/ubus.sock";

/// What the event source listens to: netifd's interface events (`ifup`, `ifdown`), and ubusd's
/// own when an object appears (hostapd's, after a `wifi` reload: subscribed to again).
const EVENTS: &[&str] = &["network.interface", "ubus.object.add"];
/// Whose notifications it subscribes to: netifd's `interface.update` (an address, route or
/// prefix changed without a down and up) and `wireless.update` (24.10), dnsmasq's `dhcp.ack` and
/// `dhcp.release`, hostapd's `assoc`, `disassoc`, `deauth` (tests/fixtures/ubus/FIELDS.md).
const SUBSCRIBE: &[&str] = &[
    "network.interface",
    "network.wireless",
    "dnsmasq",
    "hostapd.*",
];
/// The notifications that may change a value. hostapd also notifies every probe request,
/// authentication attempt and action frame to its subscribers (anyone in radio range can send
/// those), dnsmasq every DHCP ACK: only these make a check.
const NOTIFICATIONS: &[&str] = &[
    "interface.update",
    "interface.down",
    "interface.up",
    "wireless.update",
    "wireless.down",
    "assoc",
    "disassoc",
    "deauth",
    "sta-authorized",
    "local-deauth",
    "inactive-deauth",
    "dhcp.ack",
    "dhcp.release",
];

/// A parsed key.
struct Parsed<'a> {
    object: &'a str,
    method: &'a str,
    args: Vec<(&'a str, &'a str)>,
    path: Vec<Step<'a>>,
}

fn parse(key: &str) -> Result<Parsed<'_>, String> {
    let (call, path) = key
        .split_once('#')
        .ok_or_else(|| format!("{key:?}: expected OBJECT/METHOD#PATH"))?;
    let (object, method) = call
        .split_once('/')
        .ok_or_else(|| format!("{key:?}: expected OBJECT/METHOD before #"))?;
    let (method, args) = match method.split_once('?') {
        Some((m, a)) => (m, Some(a)),
        None => (method, None),
    };
    if object.is_empty() || method.is_empty() || object.contains(['?', '[', ']']) {
        return Err(format!("{key:?}: empty or malformed object or method"));
    }
    let args = match args {
        None => Vec::new(),
        Some(a) => a
            .split('&')
            .map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("{key:?}: argument {kv:?} is not NAME=VALUE"))
            })
            .collect::<Result<_, _>>()?,
    };
    let path = select::parse(path).map_err(|e| format!("{key:?}: {e}"))?;
    Ok(Parsed {
        object,
        method,
        args,
        path,
    })
}

/// The methods a key may call: those that only report. A binding reads; a key naming
/// `system/reboot` or `file/exec` would act at every read, so it is refused when the file loads.
fn reports(method: &str) -> bool {
    const METHODS: &[&str] = &[
        "status",
        "dump",
        "info",
        "board",
        "assoclist",
        "freqlist",
        "txpowerlist",
        "countrylist",
        "ipv4leases",
        "ipv6leases",
        "leases",
    ];
    METHODS.contains(&method) || method.starts_with("get_") || method.starts_with("list")
}

/// Checks a binding key when the definitions are loaded.
pub fn check_key(key: &str) -> Result<(), String> {
    let p = parse(key)?;
    if !reports(p.method) {
        return Err(format!(
            "{key:?}: {} is not a method that only reports (status, dump, info, get_*, …)",
            p.method
        ));
    }
    let alls = p
        .path
        .iter()
        .filter(|s| matches!(s, Step::Sel(Sel::All(_))))
        .count();
    let last_all = p
        .path
        .iter()
        .rposition(|s| matches!(s, Step::Sel(Sel::All(_))));
    match last_all {
        Some(i) if alls > 1 || i + 2 < p.path.len() => Err(format!(
            "{key:?}: a listing has one [*], last or followed by one field"
        )),
        Some(i) if i + 2 == p.path.len() && !matches!(p.path[i + 1], Step::Name(n) if n != "*") => {
            Err(format!("{key:?}: [*] may be followed only by a field name"))
        }
        _ => Ok(()),
    }
}

/// Reads OpenWrt's daemons over ubus.
pub struct UbusBackend {
    socket: PathBuf,
    conn: Option<Ubus>,
    /// The replies of the current snapshot, by call; `None` for a call that failed.
    replies: HashMap<String, Option<Value>>,
    /// Whether ubusd could not be reached (logged once per failure run).
    failing: bool,
    /// ubusd could not be reached or did not answer in this snapshot: no more calls until the
    /// next one.
    down: bool,
    /// The objects that did not answer in time in this snapshot.
    stalled: HashSet<String>,
}

impl UbusBackend {
    pub fn new(platform: &Platform) -> UbusBackend {
        UbusBackend {
            socket: platform.ubus_socket.clone(),
            conn: None,
            replies: HashMap::new(),
            failing: false,
            down: false,
            stalled: HashSet::new(),
        }
    }

    fn connect(socket: &Path) -> Result<Ubus, UbusError> {
        match Ubus::connect(socket, TIMEOUT) {
            Err(e) if !socket.exists() && Path::new(OLD_SOCKET).exists() => {
                Ubus::connect(Path::new(OLD_SOCKET), TIMEOUT).map_err(|_| e)
            }
            r => r,
        }
    }

    /// The reply of a call, made once per snapshot.
    fn reply(&mut self, p: &Parsed<'_>) -> Option<&Value> {
        let mut id = format!("{}/{}", p.object, p.method);
        for (k, v) in &p.args {
            id.push_str(&format!("?{k}={v}"));
        }
        if !self.replies.contains_key(&id) {
            let got = self.call(p);
            self.replies.insert(id.clone(), got);
        }
        self.replies.get(&id).and_then(Option::as_ref)
    }

    fn call(&mut self, p: &Parsed<'_>) -> Option<Value> {
        // The keys were checked when they loaded; a filled-in nested value could still have
        // changed the method, so it is checked again before every call.
        if self.down || self.stalled.contains(p.object) || !reports(p.method) {
            return None;
        }
        let args: Vec<(String, Value)> = p
            .args
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
            .collect();
        // A connection left from an earlier snapshot may have lost ubusd: one new try.
        for attempt in 0..2 {
            let conn = match self.conn.take() {
                Some(c) => c,
                None => match UbusBackend::connect(&self.socket) {
                    Ok(c) => c,
                    Err(e) => {
                        self.down = true;
                        if !std::mem::replace(&mut self.failing, true) {
                            log::warn!(
                                "ubus: {}: {e}; the daemons' values read as absent",
                                self.socket.display()
                            );
                        }
                        return None;
                    }
                },
            };
            let mut conn = conn;
            match conn.call(p.object, p.method, &args) {
                Ok(v) => {
                    self.conn = Some(conn);
                    if std::mem::take(&mut self.failing) {
                        log::info!("ubus: {} reachable again", self.socket.display());
                    }
                    return Some(v);
                }
                Err(UbusError::NotFound(_)) | Err(UbusError::Status(_)) => {
                    self.conn = Some(conn);
                    log::debug!("ubus: no {} {}", p.object, p.method);
                    return None;
                }
                Err(UbusError::Io(..)) if attempt == 0 => continue,
                // The object (or ubusd, which forwards the call) did not answer: the connection
                // is dropped (a late reply must not be taken for another call's) and the object
                // is not called again in this snapshot.
                Err(UbusError::Timeout) => {
                    log::warn!("ubus: {} {}: no answer in time", p.object, p.method);
                    self.stalled.insert(p.object.to_string());
                    return None;
                }
                Err(e) => {
                    log::warn!("ubus: {} {}: {e}", p.object, p.method);
                    return None;
                }
            }
        }
        None
    }

    /// Ends a snapshot: the next read calls again.
    fn forget(&mut self) {
        self.replies.clear();
        self.stalled.clear();
        self.down = false;
    }

    fn value(&mut self, key: &str) -> Option<String> {
        let p = parse(key).ok()?;
        let reply = self.reply(&p)?;
        // `A/B` last: the two fields of one table joined by `/` (netifd's `address` and
        // `mask` as one prefix).
        if let Some((Step::Name(last), head)) = p.path.split_last() {
            if let Some((a, b)) = last.split_once('/') {
                let t = walk(reply, head)?;
                return Some(format!("{}/{}", render(t.get(a)?)?, render(t.get(b)?)?));
            }
        }
        render(walk(reply, &p.path)?)
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        let Ok(p) = parse(key) else {
            return Vec::new();
        };
        let Some(reply) = self.reply(&p) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        list(reply, &p.path, &mut out);
        let mut seen = std::collections::HashSet::new();
        out.retain(|k| select::listable(k) && seen.insert(k.clone()));
        out
    }
}

/// Follows a path to one value.
fn walk<'v>(v: &'v Value, path: &[Step<'_>]) -> Option<&'v Value> {
    let Some((step, rest)) = path.split_first() else {
        return Some(v);
    };
    match step {
        Step::Name("*") => members(v).find_map(|m| walk(m, rest)),
        Step::Name(n) => walk(v.get(n)?, rest),
        Step::Sel(Sel::Key(k)) => walk(member(v, k)?, rest),
        Step::Sel(Sel::Match(f, want)) => {
            let hit = members(v).find(|m| m.get(f).and_then(render).as_deref() == Some(*want))?;
            walk(hit, rest)
        }
        Step::Sel(Sel::All(_)) => None,
    }
}

/// Follows a path to a listing, appending its keys.
fn list(v: &Value, path: &[Step<'_>], out: &mut Vec<String>) {
    let Some((step, rest)) = path.split_first() else {
        return;
    };
    match step {
        Step::Name("*") => {
            for m in members(v) {
                list(m, rest, out);
            }
        }
        Step::Sel(Sel::All(conds)) => {
            let ok = |m: &Value| select::matches(conds, |f| m.get(f).and_then(render));
            match (v, rest) {
                (Value::Table(t), []) => {
                    out.extend(t.iter().filter(|(_, m)| ok(m)).map(|(k, _)| k.clone()))
                }
                (Value::Array(a), []) => out.extend(a.iter().filter(|m| ok(m)).filter_map(render)),
                (_, [Step::Name(f)]) => out.extend(
                    members(v)
                        .filter(|m| ok(m))
                        .filter_map(|m| m.get(f).and_then(render)),
                ),
                _ => {}
            }
        }
        _ => {
            if let Some(next) = walk(v, std::slice::from_ref(step)) {
                list(next, rest, out);
            }
        }
    }
}

/// The members of a table or the elements of an array.
fn members(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Table(t) => Box::new(t.iter().map(|(_, m)| m)),
        Value::Array(a) => Box::new(a.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

fn member<'v>(v: &'v Value, k: &str) -> Option<&'v Value> {
    match v {
        Value::Table(_) => v.get(k),
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => None,
    }
}

/// A value as `ubus call` prints it, without quotes; a list of plain values joined by commas.
fn render(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Double(d) if d.is_finite() => d.to_string(),
        Value::Array(a) => {
            let items: Option<Vec<String>> = a
                .iter()
                .map(|x| match x {
                    Value::Array(_) | Value::Table(_) => None,
                    x => render(x),
                })
                .collect();
            items?.join(",")
        }
        _ => return None,
    })
}

impl Backend for UbusBackend {
    fn writable(&self, _key: &str) -> bool {
        false
    }

    fn creatable(&self, _table: &str) -> bool {
        false
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        Ok(keys.iter().map(|k| self.value(k)).collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        Ok(Some(self.list(table)))
    }

    fn invalidate(&mut self) {
        self.forget();
    }

    fn end_session(&mut self, _cx: &mut Cx<'_>) -> Vec<Fault> {
        self.forget();
        Vec::new()
    }

    fn event_source(&self) -> Option<Box<dyn EventSource>> {
        Some(Box::new(Events {
            socket: self.socket.clone(),
            listener: None,
        }))
    }
}

/// netifd's events and hostapd's notifications as an event source.
struct Events {
    socket: PathBuf,
    listener: Option<Listener>,
}

impl Events {
    fn open(&self) -> Result<Listener, UbusError> {
        let socket = if !self.socket.exists() && Path::new(OLD_SOCKET).exists() {
            Path::new(OLD_SOCKET)
        } else {
            &self.socket
        };
        let mut l = Listener::connect(socket, TIMEOUT)?;
        for e in EVENTS {
            l.listen(e)?;
        }
        for o in SUBSCRIBE {
            // An object that is not there (no Wi-Fi, odhcpd instead of dnsmasq) is no error.
            if let Err(e) = l.subscribe(o) {
                log::debug!("ubus: cannot subscribe to {o}: {e}");
            }
        }
        Ok(l)
    }
}

impl EventSource for Events {
    fn name(&self) -> &'static str {
        "ubus"
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, String> {
        let l = match &mut self.listener {
            Some(l) => l,
            None => {
                let l = self
                    .open()
                    .map_err(|e| format!("{}: {e}", self.socket.display()))?;
                self.listener.insert(l)
            }
        };
        // `next` waits in slices so that a burst's short waits and the endless one share it.
        let slice = timeout.unwrap_or(Duration::from_secs(3600));
        match l.next(slice) {
            Ok(None) => Ok(false),
            // A notification (it names the object it came from) counts when it may change a
            // value; an event is one of those listened to.
            Ok(Some(ev)) if ev.object.is_some() && !NOTIFICATIONS.contains(&ev.name.as_str()) => {
                Ok(false)
            }
            Ok(Some(ev)) => {
                if ev.name == "ubus.object.add" {
                    let path = ev.data.get("path").and_then(Value::as_str).unwrap_or("");
                    if path.starts_with("hostapd.") || SUBSCRIBE.contains(&path) {
                        if let Err(e) = l.subscribe(path) {
                            log::debug!("ubus: cannot subscribe to {path}: {e}");
                            if l.subscriptions_full() {
                                // Objects that came and went hold every slot: a new listener
                                // subscribes to the ones there now.
                                log::debug!("ubus: subscriptions renewed");
                                self.listener = None;
                            }
                        }
                    } else {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Err(e) => {
                self.listener = None;
                Err(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(fields: Vec<(&str, Value)>) -> Value {
        Value::Table(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
    fn s(x: &str) -> Value {
        Value::Str(x.to_string())
    }

    fn dump() -> Value {
        let addr = |a: &str, m: i64| t(vec![("address", s(a)), ("mask", Value::Int(m))]);
        t(vec![(
            "interface",
            Value::Array(vec![
                t(vec![
                    ("interface", s("lan")),
                    ("up", Value::Bool(true)),
                    ("proto", s("static")),
                    ("ipv4-address", Value::Array(vec![addr("192.168.1.1", 24)])),
                ]),
                t(vec![
                    ("interface", s("wan")),
                    ("up", Value::Bool(true)),
                    ("proto", s("dhcp")),
                    ("ipv4-address", Value::Array(vec![addr("198.51.100.7", 22)])),
                    (
                        "dns-server",
                        Value::Array(vec![s("198.51.100.1"), s("198.51.100.2")]),
                    ),
                    ("data", t(vec![("leasetime", Value::Int(86400))])),
                ]),
            ]),
        )])
    }

    fn read(v: &Value, path: &str) -> Option<String> {
        walk(v, &select::parse(path).unwrap()).and_then(render)
    }

    fn listing(v: &Value, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        list(v, &select::parse(path).unwrap(), &mut out);
        out
    }

    #[test]
    fn paths() {
        let d = dump();
        assert_eq!(
            read(&d, "interface[interface=wan].ipv4-address[0].address").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            read(&d, "interface[1].ipv4-address[0].mask").as_deref(),
            Some("22")
        );
        assert_eq!(
            read(&d, "interface[interface=wan].up").as_deref(),
            Some("true")
        );
        assert_eq!(
            read(&d, "interface[interface=wan].dns-server").as_deref(),
            Some("198.51.100.1,198.51.100.2")
        );
        assert_eq!(
            read(&d, "interface[interface=wan].data.leasetime").as_deref(),
            Some("86400")
        );
        assert_eq!(read(&d, "interface[interface=lan].dns-server"), None);
        let mut b = UbusBackend::new(&Platform::default());
        b.replies.insert("x/y".into(), Some(d.clone()));
        assert_eq!(
            b.value("x/y#interface[interface=wan].ipv4-address[0].address/mask")
                .as_deref(),
            Some("198.51.100.7/22")
        );
        assert_eq!(
            b.value("x/y#interface[interface=wan].ipv4-address[0].address/nope"),
            None
        );
        assert_eq!(
            read(&d, "interface[interface=wan].ipv4-address"),
            None,
            "a table has no value"
        );
        assert_eq!(read(&d, "interface[7].up"), None);
        assert_eq!(
            read(&d, "*[interface=lan].proto").as_deref(),
            Some("static")
        );
        assert_eq!(listing(&d, "interface[*].interface"), vec!["lan", "wan"]);
        assert_eq!(
            listing(&d, "interface[*?proto=dhcp].interface"),
            vec!["wan"]
        );
        assert_eq!(
            listing(&d, "interface[interface=wan].dns-server[*]"),
            vec!["198.51.100.1", "198.51.100.2"]
        );
        assert_eq!(
            listing(&d, "interface[interface=wan].data[*]"),
            vec!["leasetime"]
        );
        assert!(listing(&d, "interface[interface=nope].dns-server[*]").is_empty());
        let radios = t(vec![
            (
                "radio0",
                t(vec![(
                    "interfaces",
                    Value::Array(vec![t(vec![
                        ("section", s("default_radio0")),
                        ("ifname", s("wlan0")),
                    ])]),
                )]),
            ),
            (
                "radio1",
                t(vec![(
                    "interfaces",
                    Value::Array(vec![t(vec![
                        ("section", s("default_radio1")),
                        ("ifname", s("wlan1")),
                    ])]),
                )]),
            ),
        ]);
        assert_eq!(
            read(&radios, "*.interfaces[section=default_radio1].ifname").as_deref(),
            Some("wlan1")
        );
        assert_eq!(
            listing(&radios, "*.interfaces[*].ifname"),
            vec!["wlan0", "wlan1"]
        );
    }

    #[test]
    fn keys() {
        for ok in [
            "network.interface/dump#interface[*].interface",
            "network.interface/dump#interface[interface=wan].ipv4-address[0].address",
            "network.device/status?name=wan#macaddr",
            "iwinfo/info?device=wlan0#channel",
            "hostapd.wlan0/get_clients#clients[*]",
            "hostapd.wlan0/get_clients#clients[aa:bb:cc:dd:ee:ff].signal",
        ] {
            check_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for acts in [
            "system/reboot#x",
            "file/exec?command=sh#x",
            "uci/set#x",
            "iwinfo/scan#x",
        ] {
            assert!(check_key(acts).is_err(), "{acts} accepted");
        }
        for bad in [
            "network.interface",
            "network.interface#up",
            "/dump#x",
            "a/b?x#y",
            "a/b#x[*].y.z",
            "a/b#x[*].y[*]",
            "a/b#",
        ] {
            assert!(check_key(bad).is_err(), "{bad} accepted");
        }
    }
}
