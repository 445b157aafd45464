//! A test ubus broker: a small ubusd speaking its wire protocol on a unix socket, for cwmpd's
//! ubus client and for real clients (the `ubus` crate). Written independently of cwmpd's codec
//! (`cwmpd::datamodel::backend::ubus::{blob, proto}`): its own blob/blobmsg encoder and decoder
//! below, JSON on the outside, so that one encoding bug cannot hide in both.
//!
//! What it speaks (ubus `ubusmsg.h`, `ubusd_proto.c`, `ubusd_event.c`, `ubusd_obj.c`; libubox
//! `blob.h`, `blobmsg.h`, `blobmsg_json.c`):
//!
//! - HELLO on connect (peer = the client's id); PING → DATA.
//! - LOOKUP: exact path, `prefix*` wildcard, or every object (no `OBJPATH`): one DATA per object
//!   (`OBJPATH`, `OBJID`, `OBJTYPE`, `SIGNATURE`: per method a table of argument name → blobmsg
//!   type, taken from the arguments its replies are keyed on), then STATUS (`NOT_FOUND` when
//!   nothing matches).
//! - INVOKE of a static object: the reply its rules give (below), as a DATA (JSON → blobmsg as
//!   `blobmsg_add_json_element`: ints fitting i32 `INT32` else `INT64`, bools `INT8`, null
//!   `UNSPEC`) then a STATUS; an unknown object `NOT_FOUND`, an unknown method
//!   `METHOD_NOT_FOUND`. INVOKE of an object a client added is forwarded to that client and
//!   its DATA/STATUS routed back, as ubusd does.
//! - ADD_OBJECT (anonymous or with a path; a path sends `ubus.object.add`), REMOVE_OBJECT.
//! - Events: `register` and `send` on object 1 (`UBUS_SYSTEM_OBJECT_EVENT`), patterns exact or
//!   with a trailing `*`, one delivery per object, as INVOKE with peer 0.
//! - SUBSCRIBE / UNSUBSCRIBE; [`Broker::notify`] sends the notification to every subscriber as
//!   an INVOKE from a notifier peer ([`NOTIFIER`]) and counts the STATUS answers
//!   ([`Broker::notify_answers`]); removing a watched object sends UNSUBSCRIBE.
//!
//! API:
//!
//! - [`Broker::start`] (socket in its own temporary directory) / [`Broker::start_at`] (a given
//!   socket path, e.g. `ROOT/var/run/ubus/ubus.sock`); [`Broker::socket`].
//! - Static objects and their replies: [`Broker::reply`] (object, method → JSON),
//!   [`Broker::reply_with_args`] (… when the call's arguments contain these JSON fields, e.g.
//!   `network.device status {"name":"eth0"}`: the most specific matching rule wins, then the
//!   argument-less one, else `INVALID_ARGUMENT`, as netifd answers an unknown device),
//!   [`Broker::reply_file`] / [`Broker::reply_file_with_args`] (the JSON from a file, e.g. the
//!   fixtures under `tests/fixtures/ubus/<release>/`), [`Broker::reply_with`] (any
//!   [`Reply`]: a status, a delay, no answer at all). Adding a method to a new object adds the
//!   object (and sends `ubus.object.add`); [`Broker::add_object`] adds one without methods,
//!   [`Broker::remove_object`] removes one (`ubus.object.remove`, UNSUBSCRIBE to watchers).
//! - [`Broker::event`] (name, JSON), [`Broker::notify`] (object, method, JSON).
//! - Counters: [`Broker::invokes`] per (object, method), [`Broker::total_invokes`],
//!   [`Broker::subscribers`], [`Broker::connections`], [`Broker::notify_answers`].
//! - [`Broker::stop`] (also on drop): closes the socket and every connection, joins the
//!   threads.
//!
//! Threads: one accepting (polls a non-blocking listener every 10 ms) and one per connection.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Map;
/// The JSON of the broker's API, re-exported for the tests.
pub use serde_json::{json, Value as Json};

use crate::tempdir::TempDir;

/// The peer id that [`Broker::notify`]'s notifications come from (a notifier client that is not
/// connected: its answers are counted, not forwarded).
pub const NOTIFIER: u32 = 0x7e57_0001;

// ubusmsg.h: message types, attributes, status codes.
const HELLO: u8 = 0;
const STATUS: u8 = 1;
const DATA: u8 = 2;
const PING: u8 = 3;
const LOOKUP: u8 = 4;
const INVOKE: u8 = 5;
const ADD_OBJECT: u8 = 6;
const REMOVE_OBJECT: u8 = 7;
const SUBSCRIBE: u8 = 8;
const UNSUBSCRIBE: u8 = 9;
const NOTIFY: u8 = 10;

const A_STATUS: u8 = 1;
const A_OBJPATH: u8 = 2;
const A_OBJID: u8 = 3;
const A_METHOD: u8 = 4;
const A_OBJTYPE: u8 = 5;
const A_SIGNATURE: u8 = 6;
const A_DATA: u8 = 7;
const A_TARGET: u8 = 8;
const A_NO_REPLY: u8 = 10;

pub const ST_OK: u32 = 0;
pub const ST_INVALID_COMMAND: u32 = 1;
pub const ST_INVALID_ARGUMENT: u32 = 2;
pub const ST_METHOD_NOT_FOUND: u32 = 3;
pub const ST_NOT_FOUND: u32 = 4;
pub const ST_PERMISSION_DENIED: u32 = 6;
pub const ST_NOT_SUPPORTED: u32 = 8;

const EVENT_OBJECT: u32 = 1;
const MAX_MSG: usize = 1_048_576;

/// What a static method answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A DATA with this JSON object, then STATUS 0.
    Json(Json),
    /// Only a STATUS with this code (0: a method that sends no data).
    Status(u32),
    /// The JSON after a delay (the connection's thread sleeps).
    Delay(Duration, Json),
    /// Nothing at all: the caller waits.
    Hang,
}

struct Rule {
    args: Map<String, Json>,
    reply: Reply,
}

enum Owner {
    /// Served by the broker: method → rules.
    Static(BTreeMap<String, Vec<Rule>>),
    /// Added by a client (ADD_OBJECT): its id and the signature it sent.
    Client(u32, Vec<u8>),
}

struct Obj {
    path: Option<String>,
    owner: Owner,
    /// The subscriber objects watching this one.
    subscribers: Vec<u32>,
}

struct Pattern {
    prefix: String,
    partial: bool,
    obj: u32,
}

#[derive(Default)]
struct State {
    next_id: u32,
    seq: u16,
    objects: BTreeMap<u32, Obj>,
    paths: BTreeMap<String, u32>,
    clients: HashMap<u32, UnixStream>,
    patterns: Vec<Pattern>,
    invokes: HashMap<(String, String), usize>,
    notify_answers: Vec<u32>,
    connections: usize,
}

/// Messages to write once the state's lock is released: (client id, bytes).
type Out = Vec<(u32, Vec<u8>)>;

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// The test broker (see the module doc).
pub struct Broker {
    shared: Arc<Shared>,
    socket: PathBuf,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    _dir: Option<TempDir>,
}

impl Broker {
    /// A broker on `ubus.sock` in a temporary directory of its own.
    pub fn start() -> Broker {
        let dir = TempDir::new("ubus");
        let socket = dir.path().join("ubus.sock");
        let mut b = Broker::start_at(&socket);
        b._dir = Some(dir);
        b
    }

    /// A broker listening on `socket` (its directory is created; a stale socket is removed).
    pub fn start_at(socket: &Path) -> Broker {
        if let Some(parent) = socket.parent() {
            std::fs::create_dir_all(parent).expect("socket directory");
        }
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the broker's socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 0x2a00_0400,
                ..State::default()
            }),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            let mut threads = Vec::new();
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let s2 = s.clone();
                        threads.push(std::thread::spawn(move || serve(s2, stream)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            threads
        });
        Broker {
            shared,
            socket: socket.to_owned(),
            accept: Some(accept),
            _dir: None,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves one moment of an OpenWrt router's daemons from `tests/fixtures/ubus/<release>/`
    /// (`openwrt-21.02`, `openwrt-23.05`, `openwrt-24.10`) with its WAN over `scenario`
    /// (`dhcp`, `pppoe`, `pppoe-autherror`): every `OBJECT.METHOD[.ARG=VALUE][.SCENARIO].json`
    /// of the directory whose scenario is this one or none (the file names are in the
    /// directory's README). How many replies it serves.
    pub fn serve_fixtures(&self, release: &str, scenario: &str) -> usize {
        const METHODS: &[&str] = &[
            "dump",
            "status",
            "get_clients",
            "get_status",
            "info",
            "assoclist",
            "ipv4leases",
            "ipv6leases",
        ];
        let dir = fixture_dir(release);
        let mut served = 0;
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        // A scenario's own file after the one for every scenario: the later rule wins.
        names.sort_by_key(|n| n.contains(&format!(".{scenario}.")));
        for name in names {
            let stem = name.trim_end_matches(".json");
            let Some((object, method, rest)) = METHODS.iter().find_map(|m| {
                let at = stem.find(&format!(".{m}"))?;
                let rest = &stem[at + 1 + m.len()..];
                (rest.is_empty() || rest.starts_with('.'))
                    .then(|| (&stem[..at], *m, rest.trim_start_matches('.')))
            }) else {
                continue;
            };
            // `ARG=VALUE` (a value may hold dots: `eth0.2`), then the scenario.
            let (args, scen) = match rest.split_once('=') {
                Some((arg, tail)) => {
                    let (value, scen) = match tail.rsplit_once('.') {
                        Some((v, sc)) if ["dhcp", "pppoe", "pppoe-autherror"].contains(&sc) => {
                            (v, sc)
                        }
                        _ => (tail, ""),
                    };
                    (Some((arg, value)), scen)
                }
                None => (None, rest),
            };
            if !scen.is_empty() && scen != scenario {
                continue;
            }
            let file = dir.join(&name);
            match args {
                Some((arg, value)) => {
                    self.reply_file_with_args(object, method, json!({ arg: value }), &file)
                }
                None => self.reply_file(object, method, &file),
            }
            served += 1;
        }
        served
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, &mut Out) -> T) -> T {
        let mut out = Vec::new();
        let r = {
            let mut st = self.shared.state.lock().unwrap();
            let r = f(&mut st, &mut out);
            flush(&mut st, out);
            r
        };
        r
    }

    /// Adds a static object without methods (sends `ubus.object.add`); its id.
    pub fn add_object(&self, path: &str) -> u32 {
        self.with(|st, out| static_object(st, out, path))
    }

    /// Removes an object (sends UNSUBSCRIBE to its watchers and `ubus.object.remove`).
    pub fn remove_object(&self, path: &str) -> bool {
        self.with(|st, out| match st.paths.get(path).copied() {
            Some(id) => {
                remove_object(st, out, id);
                true
            }
            None => false,
        })
    }

    /// `object method` answers `reply` when the call's arguments contain `args` (a JSON
    /// object; `{}` for any call).
    pub fn reply_with(&self, object: &str, method: &str, args: Json, reply: Reply) {
        let args = match args {
            Json::Object(m) => m,
            Json::Null => Map::new(),
            other => panic!("arguments must be a JSON object, not {other}"),
        };
        self.with(|st, out| {
            let id = static_object(st, out, object);
            let Some(Obj {
                owner: Owner::Static(methods),
                ..
            }) = st.objects.get_mut(&id)
            else {
                panic!("{object} is a client's object");
            };
            let rules = methods.entry(method.to_owned()).or_default();
            rules.retain(|r| r.args != args);
            rules.push(Rule { args, reply });
        });
    }

    /// `object method` (any arguments) answers `json`.
    pub fn reply(&self, object: &str, method: &str, json: Json) {
        self.reply_with(object, method, Json::Null, Reply::Json(json));
    }

    /// `object method` with arguments containing `args` answers `json`.
    pub fn reply_with_args(&self, object: &str, method: &str, args: Json, json: Json) {
        self.reply_with(object, method, args, Reply::Json(json));
    }

    /// `object method` answers the JSON in `file`.
    pub fn reply_file(&self, object: &str, method: &str, file: &Path) {
        self.reply(object, method, read_json(file));
    }

    /// `object method` with arguments containing `args` answers the JSON in `file`.
    pub fn reply_file_with_args(&self, object: &str, method: &str, args: Json, file: &Path) {
        self.reply_with_args(object, method, args, read_json(file));
    }

    /// Sends the event `name` with `data` (a JSON object) to the registered listeners.
    pub fn event(&self, name: &str, data: Json) {
        let data = table_bytes(&data);
        self.with(|st, out| send_event(st, out, None, name, &data));
    }

    /// Sends the notification `method` with `data` to the subscribers of `object`, as
    /// `ubus_notify` with a reply wanted; how many subscribers it went to.
    pub fn notify(&self, object: &str, method: &str, data: Json) -> usize {
        self.notify_with(object, method, data, false)
    }

    /// [`Broker::notify`] with `UBUS_ATTR_NO_REPLY` when `no_reply` (`ubus_notify` with a
    /// negative timeout): subscribers must not answer.
    pub fn notify_with(&self, object: &str, method: &str, data: Json, no_reply: bool) -> usize {
        let data = table_bytes(&data);
        self.with(|st, out| {
            let Some(&id) = st.paths.get(object) else {
                return 0;
            };
            let subs = st.objects[&id].subscribers.clone();
            for sub in &subs {
                if let Some(owner) = client_of(st, *sub) {
                    st.seq = st.seq.wrapping_add(1);
                    let mut attrs = vec![
                        attr_u32(A_OBJID, *sub),
                        attr_str(A_METHOD, method),
                        attr(A_DATA, &data),
                    ];
                    if no_reply {
                        attrs.push(attr(A_NO_REPLY, &[1]));
                    }
                    let m = message(INVOKE, st.seq, NOTIFIER, &attrs);
                    out.push((owner, m));
                }
            }
            subs.len()
        })
    }

    /// The STATUS codes the subscribers answered to [`Broker::notify`], in order.
    pub fn notify_answers(&self) -> Vec<u32> {
        self.shared.state.lock().unwrap().notify_answers.clone()
    }

    /// How many INVOKEs `object method` received.
    pub fn invokes(&self, object: &str, method: &str) -> usize {
        let st = self.shared.state.lock().unwrap();
        st.invokes
            .get(&(object.to_owned(), method.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// How many INVOKEs the static objects received in all.
    pub fn total_invokes(&self) -> usize {
        self.shared.state.lock().unwrap().invokes.values().sum()
    }

    /// How many subscribers `object` has.
    pub fn subscribers(&self, object: &str) -> usize {
        let st = self.shared.state.lock().unwrap();
        st.paths
            .get(object)
            .map_or(0, |id| st.objects[id].subscribers.len())
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.state.lock().unwrap().connections
    }

    /// Closes the socket and every connection and joins the threads.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in self.shared.state.lock().unwrap().clients.values() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(accept) = self.accept.take() {
            if let Ok(threads) = accept.join() {
                for t in threads {
                    let _ = t.join();
                }
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_json(file: &Path) -> Json {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

// ---------------------------------------------------------------------------------------------
// The broker's own codec (independent of cwmpd's).

/// A plain blob attribute: header word (id << 24 | length with header), payload, zero padding.
fn attr(id: u8, payload: &[u8]) -> Vec<u8> {
    let total = 4 + payload.len();
    let mut v = Vec::with_capacity(total + 3);
    v.extend_from_slice(&((u32::from(id) << 24) | total as u32).to_be_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn attr_u32(id: u8, x: u32) -> Vec<u8> {
    attr(id, &x.to_be_bytes())
}

fn attr_str(id: u8, s: &str) -> Vec<u8> {
    let mut p = s.as_bytes().to_vec();
    p.push(0);
    attr(id, &p)
}

/// A whole message: header then one blob (id 0) holding `attrs`; the blob's length counts the
/// last attribute's padding, as libubox's blob_buf does.
fn message(kind: u8, seq: u16, peer: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = attrs.concat();
    let mut m = vec![0, kind];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&peer.to_be_bytes());
    m.extend_from_slice(&((4 + body.len()) as u32).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// One blobmsg attribute: extended bit, type, name header (u16 length, name, NUL, padded).
fn blobmsg(kind: u8, name: &str, value: &[u8]) -> Vec<u8> {
    let mut inner = (name.len() as u16).to_be_bytes().to_vec();
    inner.extend_from_slice(name.as_bytes());
    inner.push(0);
    while inner.len() % 4 != 0 {
        inner.push(0);
    }
    inner.extend_from_slice(value);
    let mut v = attr(kind, &inner);
    v[0] |= 0x80;
    v
}

/// JSON → blobmsg, as `blobmsg_add_json_element`.
fn json_attr(name: &str, j: &Json) -> Vec<u8> {
    match j {
        Json::Null => blobmsg(0, name, &[]),
        Json::Bool(b) => blobmsg(7, name, &[u8::from(*b)]),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(small) => blobmsg(5, name, &small.to_be_bytes()),
                    Err(_) => blobmsg(4, name, &i.to_be_bytes()),
                }
            } else if n.is_u64() {
                // json-c's json_object_get_int64 saturates.
                blobmsg(4, name, &i64::MAX.to_be_bytes())
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                blobmsg(8, name, &f.to_bits().to_be_bytes())
            }
        }
        Json::String(s) => {
            let mut p = s.as_bytes().to_vec();
            p.push(0);
            blobmsg(3, name, &p)
        }
        Json::Array(a) => {
            let inner: Vec<u8> = a.iter().flat_map(|e| json_attr("", e)).collect();
            blobmsg(1, name, &inner)
        }
        Json::Object(o) => blobmsg(2, name, &object_bytes(o)),
    }
}

fn object_bytes(o: &Map<String, Json>) -> Vec<u8> {
    o.iter().flat_map(|(k, v)| json_attr(k, v)).collect()
}

/// The attributes of a table (what `UBUS_ATTR_DATA` holds) from a JSON object.
/// `tests/fixtures/ubus/<release>/`.
pub fn fixture_dir(release: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/ubus")
        .join(release)
}

pub fn table_bytes(j: &Json) -> Vec<u8> {
    match j {
        Json::Object(o) => object_bytes(o),
        Json::Null => Vec::new(),
        other => panic!("a ubus table must be a JSON object, not {other}"),
    }
}

/// Splits plain blob attributes: (id, extended, payload).
/// A plain blob attribute: id, extended bit, payload.
type RawAttr<'a> = (u8, bool, &'a [u8]);

fn split(mut b: &[u8]) -> Result<Vec<RawAttr<'_>>, String> {
    let mut v = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 {
            return Err("truncated attribute header".into());
        }
        let w = u32::from_be_bytes(b[..4].try_into().unwrap());
        let len = (w & 0xff_ffff) as usize;
        if len < 4 || len > b.len() {
            return Err(format!("attribute length {len} out of bounds"));
        }
        v.push((((w >> 24) & 0x7f) as u8, w >> 31 == 1, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(v)
}

/// blobmsg → JSON (INT8 as a bool, as `blobmsg_format_json`): (name, value).
fn blobmsg_json(kind: u8, ext: bool, p: &[u8], depth: usize) -> Result<(String, Json), String> {
    if depth > 32 {
        return Err("too deep".into());
    }
    let (name, data) = if ext {
        if p.len() < 2 {
            return Err("short name header".into());
        }
        let n = u16::from_be_bytes([p[0], p[1]]) as usize;
        let hl = (2 + n + 1 + 3) & !3;
        if hl > p.len() || p[2 + n] != 0 {
            return Err("bad name".into());
        }
        let name = String::from_utf8(p[2..2 + n].to_vec()).map_err(|e| e.to_string())?;
        (name, &p[hl..])
    } else {
        (String::new(), p)
    };
    let num = |n: usize| -> Result<&[u8], String> {
        if data.len() == n {
            Ok(data)
        } else {
            Err(format!("type {kind} with {} bytes", data.len()))
        }
    };
    let v = match kind {
        0 => Json::Null,
        1 => Json::Array(
            split(data)?
                .into_iter()
                .map(|(k, e, p)| blobmsg_json(k, e, p, depth + 1).map(|x| x.1))
                .collect::<Result<_, _>>()?,
        ),
        2 => Json::Object(json_object(data, depth + 1)?),
        3 => {
            let s = data.strip_suffix(&[0]).ok_or("string without NUL")?;
            Json::String(String::from_utf8(s.to_vec()).map_err(|e| e.to_string())?)
        }
        4 => Json::from(i64::from_be_bytes(num(8)?.try_into().unwrap())),
        5 => Json::from(i32::from_be_bytes(num(4)?.try_into().unwrap())),
        6 => Json::from(i16::from_be_bytes(num(2)?.try_into().unwrap())),
        7 => Json::Bool(num(1)?[0] != 0),
        8 => Json::from(f64::from_bits(u64::from_be_bytes(
            num(8)?.try_into().unwrap(),
        ))),
        k => return Err(format!("unknown blobmsg type {k}")),
    };
    Ok((name, v))
}

fn json_object(data: &[u8], depth: usize) -> Result<Map<String, Json>, String> {
    let mut m = Map::new();
    for (k, e, p) in split(data)? {
        let (name, v) = blobmsg_json(k, e, p, depth)?;
        m.insert(name, v);
    }
    Ok(m)
}

/// A blobmsg table (what `UBUS_ATTR_DATA` holds) as a JSON object.
pub fn table_json(data: &[u8]) -> Result<Json, String> {
    json_object(data, 0).map(Json::Object)
}

/// A received message: header fields and its attributes by id (the last of each id).
struct Msg {
    kind: u8,
    seq: u16,
    peer: u32,
    attrs: HashMap<u8, Vec<u8>>,
}

impl Msg {
    fn u32(&self, id: u8) -> Option<u32> {
        let p = self.attrs.get(&id)?;
        Some(u32::from_be_bytes(p.get(..4)?.try_into().ok()?))
    }
    fn str(&self, id: u8) -> Option<String> {
        let p = self.attrs.get(&id)?;
        let s = p.strip_suffix(&[0])?;
        String::from_utf8(s.to_vec()).ok()
    }
}

fn read_msg(s: &mut UnixStream) -> Option<Msg> {
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let len = (u32::from_be_bytes(head[8..12].try_into().unwrap()) & 0xff_ffff) as usize;
    if head[0] != 0 || !(4..=MAX_MSG).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).ok()?;
    let attrs = split(&body)
        .ok()?
        .into_iter()
        .map(|(id, _, p)| (id, p.to_vec()))
        .collect();
    Some(Msg {
        kind: head[1],
        seq: u16::from_be_bytes([head[2], head[3]]),
        peer: u32::from_be_bytes(head[4..8].try_into().unwrap()),
        attrs,
    })
}

// ---------------------------------------------------------------------------------------------
// The bus.

fn flush(st: &mut State, out: Out) {
    for (client, bytes) in out {
        if let Some(s) = st.clients.get_mut(&client) {
            let _ = s.write_all(&bytes);
        }
    }
}

fn new_id(st: &mut State) -> u32 {
    st.next_id = st.next_id.wrapping_add(0x101);
    st.next_id
}

fn client_of(st: &State, obj: u32) -> Option<u32> {
    match st.objects.get(&obj)?.owner {
        Owner::Client(c, _) => Some(c),
        Owner::Static(_) => None,
    }
}

fn static_object(st: &mut State, out: &mut Out, path: &str) -> u32 {
    if let Some(&id) = st.paths.get(path) {
        return id;
    }
    let id = new_id(st);
    st.objects.insert(
        id,
        Obj {
            path: Some(path.to_owned()),
            owner: Owner::Static(BTreeMap::new()),
            subscribers: Vec::new(),
        },
    );
    st.paths.insert(path.to_owned(), id);
    object_event(st, out, "ubus.object.add", id, path);
    id
}

fn object_event(st: &mut State, out: &mut Out, name: &str, id: u32, path: &str) {
    let data = table_bytes(&serde_json::json!({ "id": id, "path": path }));
    send_event(st, out, None, name, &data);
}

fn remove_object(st: &mut State, out: &mut Out, id: u32) {
    let Some(obj) = st.objects.remove(&id) else {
        return;
    };
    for sub in &obj.subscribers {
        if let Some(owner) = client_of(st, *sub) {
            st.seq = st.seq.wrapping_add(1);
            let m = message(
                UNSUBSCRIBE,
                st.seq,
                0,
                &[attr_u32(A_OBJID, *sub), attr_u32(A_TARGET, id)],
            );
            out.push((owner, m));
        }
    }
    for o in st.objects.values_mut() {
        o.subscribers.retain(|s| *s != id);
    }
    st.patterns.retain(|p| p.obj != id);
    if let Some(path) = obj.path {
        st.paths.remove(&path);
        object_event(st, out, "ubus.object.remove", id, &path);
    }
}

/// ubusd_send_event: every object whose pattern matches, once, not the sender's own.
fn send_event(st: &mut State, out: &mut Out, from: Option<u32>, name: &str, data: &[u8]) {
    let mut seen = Vec::new();
    let targets: Vec<u32> = st
        .patterns
        .iter()
        .filter(|p| {
            if p.partial {
                name.starts_with(&p.prefix)
            } else {
                name == p.prefix
            }
        })
        .map(|p| p.obj)
        .collect();
    for obj in targets {
        if seen.contains(&obj) {
            continue;
        }
        seen.push(obj);
        let Some(owner) = client_of(st, obj) else {
            continue;
        };
        if Some(owner) == from {
            continue;
        }
        st.seq = st.seq.wrapping_add(1);
        let m = message(
            INVOKE,
            st.seq,
            0,
            &[
                attr_u32(A_OBJID, obj),
                attr_str(A_METHOD, name),
                attr(A_DATA, data),
            ],
        );
        out.push((owner, m));
    }
}

fn signature(owner: &Owner) -> Vec<u8> {
    match owner {
        Owner::Client(_, sig) => sig.clone(),
        Owner::Static(methods) => {
            let mut sig = Vec::new();
            for (name, rules) in methods {
                let mut policy = Map::new();
                for r in rules {
                    for (k, v) in &r.args {
                        // blobmsg types of the arguments (blobmsg.h).
                        let t = match v {
                            Json::Bool(_) => 7,
                            Json::Number(n) if n.is_f64() => 8,
                            Json::Number(_) => 5,
                            Json::Array(_) => 1,
                            Json::Object(_) => 2,
                            _ => 3,
                        };
                        policy.insert(k.clone(), Json::from(t));
                    }
                }
                sig.extend(json_attr(name, &Json::Object(policy)));
            }
            sig
        }
    }
}

/// One connection: HELLO, then every message until EOF.
fn serve(shared: Arc<Shared>, mut stream: UnixStream) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    // A client that does not read must not hold the broker's lock for ever.
    let _ = writer.set_write_timeout(Some(Duration::from_secs(2)));
    let me = {
        let mut st = shared.state.lock().unwrap();
        let id = new_id(&mut st);
        st.connections += 1;
        st.clients.insert(id, writer);
        flush(&mut st, vec![(id, message(HELLO, 0, id, &[]))]);
        id
    };
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(m) = read_msg(&mut stream) else {
            break;
        };
        let delay = {
            let mut st = shared.state.lock().unwrap();
            let mut out = Vec::new();
            let delayed = handle(&mut st, &mut out, me, &m);
            flush(&mut st, out);
            delayed
        };
        if let Some((d, bytes)) = delay {
            std::thread::sleep(d);
            let mut st = shared.state.lock().unwrap();
            flush(&mut st, vec![(me, bytes)]);
        }
    }
    let mut st = shared.state.lock().unwrap();
    let mut out = Vec::new();
    let mine: Vec<u32> = st
        .objects
        .iter()
        .filter(|(_, o)| matches!(o.owner, Owner::Client(c, _) if c == me))
        .map(|(id, _)| *id)
        .collect();
    for id in mine {
        remove_object(&mut st, &mut out, id);
    }
    st.clients.remove(&me);
    flush(&mut st, out);
}

fn status(seq: u16, peer: u32, code: u32) -> Vec<u8> {
    message(STATUS, seq, peer, &[attr_u32(A_STATUS, code)])
}

/// Handles one message of client `me`; a reply to send after a delay, if any.
fn handle(st: &mut State, out: &mut Out, me: u32, m: &Msg) -> Option<(Duration, Vec<u8>)> {
    let code = match m.kind {
        PING => {
            out.push((me, message(DATA, m.seq, m.peer, &[])));
            return None;
        }
        LOOKUP => lookup(st, out, me, m),
        INVOKE => return invoke(st, out, me, m),
        ADD_OBJECT => {
            let id = new_id(st);
            let path = m.str(A_OBJPATH);
            if let Some(p) = &path {
                if st.paths.contains_key(p) {
                    out.push((me, status(m.seq, m.peer, ST_INVALID_ARGUMENT)));
                    return None;
                }
                st.paths.insert(p.clone(), id);
            }
            let sig = m.attrs.get(&A_SIGNATURE).cloned().unwrap_or_default();
            st.objects.insert(
                id,
                Obj {
                    path: path.clone(),
                    owner: Owner::Client(me, sig),
                    subscribers: Vec::new(),
                },
            );
            out.push((me, message(DATA, m.seq, m.peer, &[attr_u32(A_OBJID, id)])));
            if let Some(p) = path {
                object_event(st, out, "ubus.object.add", id, &p);
            }
            ST_OK
        }
        REMOVE_OBJECT => match m.u32(A_OBJID) {
            Some(id) if client_of(st, id) == Some(me) => {
                out.push((me, message(DATA, m.seq, m.peer, &[attr_u32(A_OBJID, id)])));
                remove_object(st, out, id);
                ST_OK
            }
            Some(_) => ST_NOT_FOUND,
            None => ST_INVALID_ARGUMENT,
        },
        SUBSCRIBE => match (m.u32(A_OBJID), m.u32(A_TARGET)) {
            (Some(sub), Some(target)) if client_of(st, sub) == Some(me) => {
                match st.objects.get_mut(&target) {
                    Some(t) if t.path.is_some() => {
                        t.subscribers.push(sub);
                        ST_OK
                    }
                    _ => ST_NOT_FOUND,
                }
            }
            _ => ST_INVALID_ARGUMENT,
        },
        UNSUBSCRIBE => match (m.u32(A_OBJID), m.u32(A_TARGET)) {
            (Some(sub), Some(target)) => match st.objects.get_mut(&target) {
                Some(t) if t.subscribers.contains(&sub) => {
                    t.subscribers.retain(|s| *s != sub);
                    ST_OK
                }
                _ => ST_NOT_FOUND,
            },
            _ => ST_INVALID_ARGUMENT,
        },
        STATUS | DATA => {
            // An answer: to a notification of ours, or to an INVOKE forwarded to this client.
            if m.peer == NOTIFIER {
                if m.kind == STATUS {
                    st.notify_answers.push(m.u32(A_STATUS).unwrap_or(u32::MAX));
                }
            } else if let Some(obj) = m.u32(A_OBJID) {
                if client_of(st, obj) == Some(me) && st.clients.contains_key(&m.peer) {
                    let mut fwd = m_bytes(m);
                    fwd[4..8].copy_from_slice(&obj.to_be_bytes());
                    out.push((m.peer, fwd));
                }
            }
            return None;
        }
        NOTIFY => ST_NOT_SUPPORTED,
        _ => ST_INVALID_COMMAND,
    };
    out.push((me, status(m.seq, m.peer, code)));
    None
}

/// A received message re-encoded (for forwarding).
fn m_bytes(m: &Msg) -> Vec<u8> {
    let mut ids: Vec<&u8> = m.attrs.keys().collect();
    ids.sort();
    let attrs: Vec<Vec<u8>> = ids.into_iter().map(|id| attr(*id, &m.attrs[id])).collect();
    message(m.kind, m.seq, m.peer, &attrs)
}

fn lookup(st: &State, out: &mut Out, me: u32, m: &Msg) -> u32 {
    let pattern = m.str(A_OBJPATH);
    let matches: Vec<(&String, u32)> = st
        .paths
        .iter()
        .filter(|(p, _)| match &pattern {
            None => true,
            Some(pat) => match pat.strip_suffix('*') {
                Some(prefix) => p.starts_with(prefix),
                None => *p == pat,
            },
        })
        .map(|(p, id)| (p, *id))
        .collect();
    if pattern.as_deref() == Some("") {
        return ST_INVALID_ARGUMENT;
    }
    if matches.is_empty() && pattern.is_some() {
        return ST_NOT_FOUND;
    }
    for (path, id) in matches {
        let obj = &st.objects[&id];
        out.push((
            me,
            message(
                DATA,
                m.seq,
                m.peer,
                &[
                    attr_str(A_OBJPATH, path),
                    attr_u32(A_OBJID, id),
                    attr_u32(A_OBJTYPE, id ^ 0x5555),
                    attr(A_SIGNATURE, &signature(&obj.owner)),
                ],
            ),
        ));
    }
    ST_OK
}

fn invoke(st: &mut State, out: &mut Out, me: u32, m: &Msg) -> Option<(Duration, Vec<u8>)> {
    let reply = |code: u32| status(m.seq, m.peer, code);
    let (Some(id), Some(method)) = (m.u32(A_OBJID), m.str(A_METHOD)) else {
        out.push((me, reply(ST_INVALID_ARGUMENT)));
        return None;
    };
    let args = m.attrs.get(&A_DATA).map(|d| table_json(d));
    if id == EVENT_OBJECT {
        let code = match (method.as_str(), args) {
            (_, Some(Err(_)) | None) => ST_INVALID_ARGUMENT,
            ("register", Some(Ok(a))) => {
                let obj = a.get("object").and_then(Json::as_i64).map(|x| x as u32);
                let pattern = a.get("pattern").and_then(Json::as_str);
                match (obj, pattern) {
                    (Some(obj), Some(p)) if !p.is_empty() => {
                        if obj < 1024 || client_of(st, obj) != Some(me) {
                            ST_PERMISSION_DENIED
                        } else {
                            let (prefix, partial) = match p.strip_suffix('*') {
                                Some(pre) => (pre.to_owned(), true),
                                None => (p.to_owned(), false),
                            };
                            st.patterns.push(Pattern {
                                prefix,
                                partial,
                                obj,
                            });
                            ST_OK
                        }
                    }
                    _ => ST_INVALID_ARGUMENT,
                }
            }
            ("send", Some(Ok(a))) => match (a.get("id").and_then(Json::as_str), a.get("data")) {
                (Some(name), Some(data @ Json::Object(_))) if !name.starts_with("ubus.") => {
                    let name = name.to_owned();
                    let bytes = table_bytes(data);
                    send_event(st, out, Some(me), &name, &bytes);
                    ST_OK
                }
                (Some(_), Some(Json::Object(_))) => ST_PERMISSION_DENIED,
                _ => ST_INVALID_ARGUMENT,
            },
            _ => ST_INVALID_COMMAND,
        };
        out.push((me, reply(code)));
        return None;
    }
    let Some(obj) = st.objects.get(&id) else {
        out.push((me, reply(ST_NOT_FOUND)));
        return None;
    };
    let path = obj.path.clone().unwrap_or_default();
    let rules: Option<Vec<(Map<String, Json>, Reply)>> = match &obj.owner {
        Owner::Client(owner, _) => {
            // ubusd_forward_invoke: to the owner, peer = the caller.
            let mut attrs = vec![attr_u32(A_OBJID, id), attr_str(A_METHOD, &method)];
            if let Some(d) = m.attrs.get(&A_DATA) {
                attrs.push(attr(A_DATA, d));
            }
            out.push((*owner, message(INVOKE, m.seq, me, &attrs)));
            return None;
        }
        Owner::Static(methods) => methods.get(&method).map(|rs| {
            rs.iter()
                .map(|r| (r.args.clone(), r.reply.clone()))
                .collect()
        }),
    };
    *st.invokes.entry((path, method.clone())).or_default() += 1;
    let Some(rules) = rules else {
        out.push((me, reply(ST_METHOD_NOT_FOUND)));
        return None;
    };
    let args = match args {
        None => Map::new(),
        Some(Ok(Json::Object(a))) => a,
        Some(_) => {
            out.push((me, reply(ST_INVALID_ARGUMENT)));
            return None;
        }
    };
    // The most specific rule whose arguments all appear in the call's.
    let rule = rules
        .iter()
        .filter(|(want, _)| want.iter().all(|(k, v)| args.get(k) == Some(v)))
        .max_by_key(|(want, _)| want.len());
    let data = |j: &Json| {
        message(
            DATA,
            m.seq,
            m.peer,
            &[attr_u32(A_OBJID, id), attr(A_DATA, &table_bytes(j))],
        )
    };
    match rule.map(|(_, r)| r) {
        None => out.push((me, reply(ST_INVALID_ARGUMENT))),
        Some(Reply::Json(j)) => {
            out.push((me, data(j)));
            out.push((me, reply(ST_OK)));
        }
        Some(Reply::Status(code)) => out.push((me, reply(*code))),
        Some(Reply::Hang) => {}
        Some(Reply::Delay(d, j)) => {
            let mut bytes = data(j);
            bytes.extend(reply(ST_OK));
            return Some((*d, bytes));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_through_the_brokers_codec() {
        let j = json!({"a": 1, "b": 1u64 << 40, "c": true, "d": null, "e": "x",
                       "f": [1, "y", {"g": -0.5}], "h": {}});
        let bytes = table_bytes(&j);
        assert_eq!(table_json(&bytes).unwrap(), j);
        // "a": INT32, extended: 0x85, length 12.
        assert_eq!(&bytes[..4], &[0x85, 0, 0, 12]);
    }

    #[test]
    fn message_framing() {
        let m = message(STATUS, 3, 9, &[attr_u32(A_STATUS, 4)]);
        assert_eq!(m.len(), 20);
        assert_eq!(&m[8..12], &[0, 0, 0, 12]);
    }
}
