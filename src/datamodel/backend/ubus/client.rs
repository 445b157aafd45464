//! A blocking client of ubusd over its unix socket (OS: one unix stream socket per [`Ubus`] or
//! [`Listener`]; no thread, no process, no libubus).
//!
//! - [`Ubus`]: `lookup` (LOOKUP: DATA per object, then STATUS) and `call` (LOOKUP of the exact
//!   path, then INVOKE: DATA with the reply's table, then STATUS), like `ubus list` / `ubus
//!   call` (libubus `ubus_lookup`, `ubus_invoke`).
//! - [`Listener`]: its own connection for events and notifications. `listen` adds an anonymous
//!   object (ADD_OBJECT) and registers it for an event pattern with ubusd's event object
//!   (INVOKE of `UBUS_SYSTEM_OBJECT_EVENT` `register` `{"object", "pattern"}`,
//!   `ubus_register_event_handler`); `subscribe` adds one anonymous object per watched object
//!   and SUBSCRIBEs it (`ubus_subscribe`). ubusd delivers both as INVOKEs of our objects
//!   (`ubusd_send_event_msg`, `ubusd_handle_notify`); `next` answers each with a STATUS 0
//!   unless it carries `UBUS_ATTR_NO_REPLY` or comes from ubusd itself (peer 0), as
//!   `ubus_process_invoke` does: hostapd waits for that answer before it lets a station
//!   associate, and a non-zero one would refuse it. A subscription ends when its object goes
//!   away (ubusd sends UNSUBSCRIBE); listen to `ubus.object.add` to subscribe again.
//!
//! Defences against a broken or hostile peer on the socket: every read and write happens
//! within the call's deadline (`timeout` given at connect, counted from the start of each
//! call; [`Listener::next`] takes its own); a message whose length is over `UBUS_MAX_MSGLEN` is
//! refused from its 12-byte prefix, before anything is allocated for it, and the buffer grows
//! only with bytes actually received; replies are matched by seq AND peer (`ubus_find_request`);
//! at most [`MAX_UNRELATED`] unrelated messages are skipped while a reply is awaited, at most
//! [`MAX_OBJECTS`] objects are taken from one lookup, at most [`MAX_QUEUED`] events are held
//! while a `listen`/`subscribe` waits (older ones are dropped, with a log line). After a framing
//! error, an I/O error or a timeout in the middle of a write, the connection is broken and
//! every later call fails at once (make a new client). A timeout while reading keeps what was
//! received, so the next call continues the same message.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::blob::{self, Value};
use super::proto::{self, msg, status, Message, PREFIX_LEN};

/// ubusd's socket (ubus `CMakeLists.txt`: `UBUS_UNIX_SOCKET`).
pub const SOCKET: &str = "/var/run/ubus/ubus.sock";
/// The socket of older OpenWrt releases (before 18.06).
pub const SOCKET_LEGACY: &str = "/var/run/ubus.sock";

/// The most messages that are not the awaited reply skipped by one call.
pub const MAX_UNRELATED: usize = 1024;
/// The most objects taken from one lookup.
pub const MAX_OBJECTS: usize = 4096;
/// The most events held by a [`Listener`] between two [`Listener::next`] (they arrive while a
/// `listen` or `subscribe` waits for its answer; the agent reads them as they come).
pub const MAX_QUEUED: usize = 64;
/// The most bytes of an event's data that are decoded and kept; a larger event arrives with
/// none (what the agent needs of one is a path or a MAC address).
pub const MAX_EVENT_DATA: usize = 16 * 1024;
/// The most objects one [`Listener`] subscribes to (one subscriber object per path).
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// ubusd's socket under `root` (`/` on the router): [`SOCKET`] when it exists, else
/// [`SOCKET_LEGACY`] when that exists, else [`SOCKET`].
pub fn default_socket(root: &Path) -> PathBuf {
    let rel = |p: &str| root.join(p.trim_start_matches('/'));
    if !rel(SOCKET).exists() && rel(SOCKET_LEGACY).exists() {
        rel(SOCKET_LEGACY)
    } else {
        rel(SOCKET)
    }
}

/// A failed ubus call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UbusError {
    /// The socket failed (connect refused, peer closed, …): the kind and what we were doing.
    Io(ErrorKind, String),
    /// The deadline passed.
    Timeout,
    /// The peer broke the protocol (malformed message, too long, too many unrelated ones).
    Protocol(String),
    /// ubusd or the object answered a non-zero `UBUS_STATUS_*` other than not-found.
    Status(u32),
    /// No such object (`UBUS_STATUS_NOT_FOUND`) or method (`UBUS_STATUS_METHOD_NOT_FOUND`): the
    /// object path, or `"object method"`.
    NotFound(String),
}

impl fmt::Display for UbusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UbusError::Io(kind, what) => write!(f, "ubus: {what}: {kind}"),
            UbusError::Timeout => write!(f, "ubus: timed out"),
            UbusError::Protocol(what) => write!(f, "ubus: protocol error: {what}"),
            UbusError::Status(code) => {
                write!(f, "ubus: status {code} ({})", status::name(*code))
            }
            UbusError::NotFound(what) => write!(f, "ubus: not found: {what}"),
        }
    }
}

impl std::error::Error for UbusError {}

impl From<proto::ProtoError> for UbusError {
    fn from(e: proto::ProtoError) -> Self {
        UbusError::Protocol(e.to_string())
    }
}

/// An object found by a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: u32,
    pub path: String,
}

/// An event (`ubus listen`) or a notification (`ubus subscribe`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event type (`network.interface`) or the notification's method (`assoc`).
    pub name: String,
    /// The event's data: a [`Value::Table`] (empty when none was sent).
    pub data: Value,
    /// For a notification, the path of the object that sent it (`hostapd.wlan0`); `None` for an
    /// event.
    pub object: Option<String>,
}

/// One connection to ubusd: the socket, our client id from HELLO, the request sequence and the
/// bytes of a message not yet complete.
struct Conn {
    stream: UnixStream,
    seq: u16,
    timeout: Duration,
    buf: Vec<u8>,
    broken: Option<UbusError>,
}

fn io_err(e: std::io::Error, what: &str) -> UbusError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => UbusError::Timeout,
        kind => UbusError::Io(kind, format!("{what}: {e}")),
    }
}

impl Conn {
    fn connect(socket: &Path, timeout: Duration) -> Result<Conn, UbusError> {
        let deadline = Instant::now() + timeout;
        let stream = connect_unix(socket, deadline)?;
        let mut conn = Conn {
            stream,
            seq: 0,
            timeout,
            buf: Vec::new(),
            broken: None,
        };
        // ubusd_send_hello: the first message is HELLO, peer = our client id.
        let hello = conn.recv(deadline)?;
        if hello.header.kind != msg::HELLO {
            return Err(UbusError::Protocol(format!(
                "expected HELLO, got message type {}",
                hello.header.kind
            )));
        }
        Ok(conn)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn check(&self) -> Result<(), UbusError> {
        match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Marks the connection unusable (its stream may be out of step) and returns `e`.
    fn fail(&mut self, e: UbusError) -> UbusError {
        self.broken = Some(match &e {
            UbusError::Io(kind, what) => UbusError::Io(*kind, format!("{what} (earlier)")),
            other => UbusError::Protocol(format!("connection broken earlier: {other}")),
        });
        e
    }

    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), UbusError> {
        self.check()?;
        let mut done = 0;
        while done < bytes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // A message half written desynchronises the stream.
                return Err(if done > 0 {
                    self.fail(UbusError::Timeout)
                } else {
                    UbusError::Timeout
                });
            }
            if let Err(e) = self.stream.set_write_timeout(Some(left)) {
                return Err(self.fail(io_err(e, "set_write_timeout")));
            }
            match self.stream.write(&bytes[done..]) {
                Ok(0) => {
                    return Err(self.fail(UbusError::Io(
                        ErrorKind::WriteZero,
                        "ubusd closed the connection".into(),
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(self.fail(io_err(e, "write to ubusd"))),
            }
        }
        Ok(())
    }

    /// The next whole message, or [`UbusError::Timeout`] at the deadline (what was received
    /// of a message is kept for the next call).
    fn recv(&mut self, deadline: Instant) -> Result<Message, UbusError> {
        self.check()?;
        loop {
            let need = if self.buf.len() < PREFIX_LEN {
                PREFIX_LEN
            } else {
                let mut p = [0u8; PREFIX_LEN];
                p.copy_from_slice(&self.buf[..PREFIX_LEN]);
                let (header, rest) = match proto::parse_prefix(&p) {
                    Ok(x) => x,
                    Err(e) => return Err(self.fail(e.into())),
                };
                if self.buf.len() == PREFIX_LEN + rest {
                    let body = self.buf.split_off(PREFIX_LEN);
                    self.buf.clear();
                    return proto::parse_body(header, body).map_err(|e| self.fail(e.into()));
                }
                PREFIX_LEN + rest
            };
            // Read at most what this message still needs, at most 64 KiB at a time.
            let want = (need - self.buf.len()).min(65_536);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UbusError::Timeout);
            }
            if let Err(e) = self.stream.set_read_timeout(Some(left)) {
                return Err(self.fail(io_err(e, "set_read_timeout")));
            }
            let start = self.buf.len();
            self.buf.resize(start + want, 0);
            let got = self.stream.read(&mut self.buf[start..]);
            match got {
                Ok(0) => {
                    self.buf.truncate(start);
                    return Err(self.fail(UbusError::Io(
                        ErrorKind::UnexpectedEof,
                        "ubusd closed the connection".into(),
                    )));
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) => {
                    self.buf.truncate(start);
                    match e.kind() {
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut => {}
                        _ => return Err(self.fail(io_err(e, "read from ubusd"))),
                    }
                }
            }
        }
    }

    /// Sends a request and collects its reply: the DATA messages and the STATUS with the same
    /// seq and peer. Every other message goes to `other` (at most [`MAX_UNRELATED`]).
    fn request(
        &mut self,
        bytes: &[u8],
        seq: u16,
        peer: u32,
        deadline: Instant,
        on_data: &mut dyn FnMut(&Message) -> Result<(), UbusError>,
        other: &mut dyn FnMut(&mut Conn, Message) -> Result<(), UbusError>,
    ) -> Result<u32, UbusError> {
        self.send(bytes, deadline)?;
        let mut unrelated = 0usize;
        // A DATA that `on_data` refuses fails the request once its STATUS is in, so that the
        // connection stays in step.
        let mut refused = None;
        loop {
            let m = self.recv(deadline)?;
            if m.header.seq == seq && m.header.peer == peer {
                match m.header.kind {
                    msg::DATA => {
                        if refused.is_none() {
                            refused = on_data(&m).err();
                        }
                        continue;
                    }
                    msg::STATUS => {
                        if let Some(e) = refused {
                            return Err(e);
                        }
                        return m.status().ok_or_else(|| {
                            UbusError::Protocol("STATUS without UBUS_ATTR_STATUS".into())
                        });
                    }
                    _ => {}
                }
            }
            unrelated += 1;
            if unrelated > MAX_UNRELATED {
                return Err(self.fail(UbusError::Protocol(format!(
                    "more than {MAX_UNRELATED} unrelated messages while awaiting a reply"
                ))));
            }
            other(self, m)?;
        }
    }

    fn lookup(
        &mut self,
        pattern: &str,
        deadline: Instant,
        other: &mut dyn FnMut(&mut Conn, Message) -> Result<(), UbusError>,
    ) -> Result<Vec<Object>, UbusError> {
        let seq = self.next_seq();
        let req = proto::lookup(seq, pattern)?;
        let mut objects = Vec::new();
        let code = self.request(
            &req,
            seq,
            0,
            deadline,
            &mut |m| {
                // ubusd_send_obj: OBJPATH, OBJID, OBJTYPE, SIGNATURE.
                if let (Some(id), Some(path)) = (m.objid(), m.objpath()) {
                    if objects.len() >= MAX_OBJECTS {
                        return Err(UbusError::Protocol(format!(
                            "more than {MAX_OBJECTS} objects in one lookup"
                        )));
                    }
                    objects.push(Object {
                        id,
                        path: path.to_owned(),
                    });
                }
                Ok(())
            },
            other,
        )?;
        match code {
            status::OK => Ok(objects),
            status::NOT_FOUND => Err(UbusError::NotFound(pattern.to_owned())),
            code => Err(UbusError::Status(code)),
        }
    }

    /// ADD_OBJECT of an anonymous object: its id.
    fn add_object(
        &mut self,
        deadline: Instant,
        other: &mut dyn FnMut(&mut Conn, Message) -> Result<(), UbusError>,
    ) -> Result<u32, UbusError> {
        let seq = self.next_seq();
        let req = proto::add_object(seq)?;
        let mut id = None;
        let code = self.request(
            &req,
            seq,
            0,
            deadline,
            &mut |m| {
                id = m.objid().or(id);
                Ok(())
            },
            other,
        )?;
        if code != status::OK {
            return Err(UbusError::Status(code));
        }
        id.ok_or_else(|| UbusError::Protocol("ADD_OBJECT answered without an id".into()))
    }
}

/// Connects a unix stream socket without blocking past `deadline` (a listener whose backlog is
/// full makes a blocking connect wait: retry the non-blocking one instead).
fn connect_unix(socket: &Path, deadline: Instant) -> Result<UnixStream, UbusError> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let what = format!("connect to {}", socket.display());
    let addr = SockAddr::unix(socket).map_err(|e| io_err(e, &what))?;
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| io_err(e, &what))?;
    sock.set_nonblocking(true).map_err(|e| io_err(e, &what))?;
    loop {
        match sock.connect(&addr) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(UbusError::Timeout);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(UbusError::Io(e.kind(), format!("{what}: {e}"))),
        }
    }
    sock.set_nonblocking(false).map_err(|e| io_err(e, &what))?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(sock)))
}

fn ignore(_: &mut Conn, _: Message) -> Result<(), UbusError> {
    Ok(())
}

/// A client for calls: `ubus list PATTERN`, `ubus call OBJECT METHOD ARGS`.
pub struct Ubus {
    conn: Conn,
}

impl Ubus {
    /// Connects and reads ubusd's HELLO; `timeout` bounds this and every later call.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Ubus, UbusError> {
        Ok(Ubus {
            conn: Conn::connect(socket, timeout)?,
        })
    }

    /// The objects whose path is `pattern`, or starts with what precedes a trailing `*`
    /// (`ubusd_handle_lookup`); every object for an empty pattern. Not found is
    /// [`UbusError::NotFound`].
    pub fn lookup(&mut self, pattern: &str) -> Result<Vec<Object>, UbusError> {
        let deadline = self.conn.deadline();
        self.conn.lookup(pattern, deadline, &mut ignore)
    }

    /// Looks `object` up and invokes `method` with `args`: the reply's data as a
    /// [`Value::Table`] (empty when the method sends none; the first when it sends several).
    /// An unknown object or method is [`UbusError::NotFound`], another non-zero status
    /// [`UbusError::Status`]. The whole call is bounded by the timeout.
    pub fn call(
        &mut self,
        object: &str,
        method: &str,
        args: &[(String, Value)],
    ) -> Result<Value, UbusError> {
        let deadline = self.conn.deadline();
        let data = blob::try_encode_table(args)
            .map_err(|e| UbusError::Protocol(format!("arguments: {e}")))?;
        let found = self.conn.lookup(object, deadline, &mut ignore)?;
        let Some(obj) = found.iter().find(|o| o.path == object) else {
            return Err(UbusError::NotFound(object.to_owned()));
        };
        let seq = self.conn.next_seq();
        let req = proto::invoke(seq, obj.id, method, &data)?;
        let mut reply: Option<Vec<(String, Value)>> = None;
        let code = self.conn.request(
            &req,
            seq,
            obj.id,
            deadline,
            &mut |m| {
                if reply.is_none() {
                    if let Some(d) = m.data() {
                        reply = Some(blob::decode_table(d).map_err(|e| {
                            UbusError::Protocol(format!("reply of {object} {method}: {e}"))
                        })?);
                    }
                }
                Ok(())
            },
            &mut ignore,
        )?;
        match code {
            status::OK => Ok(Value::Table(reply.unwrap_or_default())),
            status::NOT_FOUND => Err(UbusError::NotFound(object.to_owned())),
            status::METHOD_NOT_FOUND => Err(UbusError::NotFound(format!("{object} {method}"))),
            code => Err(UbusError::Status(code)),
        }
    }
}

/// A connection for events (`ubus listen`) and notifications (`ubus subscribe`).
pub struct Listener {
    conn: Conn,
    /// Our anonymous object registered for events, once `listen` was called.
    event_obj: Option<u32>,
    /// Our subscriber objects and the path of the object each watches.
    subscriptions: Vec<(u32, String)>,
    /// Subscriber objects made for an object that was gone before it was subscribed to: used
    /// for the next new path.
    spare: Vec<u32>,
    queue: std::collections::VecDeque<Event>,
}

impl Listener {
    /// Connects and reads ubusd's HELLO; `timeout` bounds this and every later `listen` and
    /// `subscribe`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Listener, UbusError> {
        Ok(Listener {
            conn: Conn::connect(socket, timeout)?,
            event_obj: None,
            subscriptions: Vec::new(),
            spare: Vec::new(),
            queue: Default::default(),
        })
    }

    /// Receives the events whose type is `pattern` or starts with what precedes a trailing
    /// `*` (`network.interface`, `ubus.object.add`, `network.*`).
    pub fn listen(&mut self, pattern: &str) -> Result<(), UbusError> {
        let deadline = self.conn.deadline();
        let obj = match self.event_obj {
            Some(id) => id,
            None => {
                let id = self.with_events(|conn, other| conn.add_object(deadline, other))?;
                self.event_obj = Some(id);
                id
            }
        };
        let seq = self.conn.next_seq();
        let req = proto::event_register(seq, obj, pattern)?;
        let code = self.with_events(|conn, other| {
            conn.request(
                &req,
                seq,
                proto::UBUS_SYSTEM_OBJECT_EVENT,
                deadline,
                &mut |_| Ok(()),
                other,
            )
        })?;
        match code {
            status::OK => Ok(()),
            code => Err(UbusError::Status(code)),
        }
    }

    /// Receives the notifications of `object` (every object matching it when it ends in
    /// `*`). Not found (no object, or every one gone before it was subscribed to) is
    /// [`UbusError::NotFound`].
    pub fn subscribe(&mut self, object: &str) -> Result<(), UbusError> {
        let deadline = self.conn.deadline();
        let targets = self.with_events(|conn, other| conn.lookup(object, deadline, other))?;
        let (mut subscribed, mut missing) = (0usize, None);
        for target in targets {
            // One subscriber object per path, kept for the connection's life: subscribing
            // again after the object came back (hostapd restarted) reuses it, so a publisher
            // that comes and goes cannot make the agent or ubusd hold ever more objects.
            let known = self
                .subscriptions
                .iter()
                .find(|(_, p)| *p == target.path)
                .map(|(id, _)| *id);
            let sub = match known {
                Some(id) => id,
                None => match self.spare.pop() {
                    Some(id) => id,
                    None if self.subscriptions_full() => {
                        return Err(UbusError::Protocol(format!(
                            "more than {MAX_SUBSCRIPTIONS} subscriptions"
                        )))
                    }
                    None => self.with_events(|conn, other| conn.add_object(deadline, other))?,
                },
            };
            let seq = self.conn.next_seq();
            let req = proto::subscribe(seq, sub, target.id)?;
            let code = self.with_events(|conn, other| {
                conn.request(&req, seq, 0, deadline, &mut |_| Ok(()), other)
            })?;
            // An object that went away between the lookup and now does not stop the others;
            // a subscriber object made for it waits for the next new path.
            match code {
                status::OK => {
                    subscribed += 1;
                    if known.is_none() {
                        self.subscriptions.push((sub, target.path));
                    }
                }
                status::NOT_FOUND => {
                    if known.is_none() {
                        self.spare.push(sub);
                    }
                    missing = Some(target.path);
                }
                code => {
                    if known.is_none() {
                        self.spare.push(sub);
                    }
                    return Err(UbusError::Status(code));
                }
            }
        }
        match missing {
            Some(path) if subscribed == 0 => Err(UbusError::NotFound(path)),
            _ => Ok(()),
        }
    }

    /// Whether every subscriber object this listener may hold watches a path (objects that
    /// came and went keep theirs: make a new listener to start afresh).
    pub fn subscriptions_full(&self) -> bool {
        self.subscriptions.len() + self.spare.len() >= MAX_SUBSCRIPTIONS
    }

    /// The next event or notification, `None` when `timeout` passes first. Answers the
    /// INVOKEs that carry them (see the module doc).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Event>, UbusError> {
        if let Some(e) = self.queue.pop_front() {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + timeout;
        let mut unrelated = 0usize;
        loop {
            let m = match self.conn.recv(deadline) {
                Ok(m) => m,
                Err(UbusError::Timeout) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(e) = handle(&mut self.conn, self.event_obj, &self.subscriptions, m)? {
                return Ok(Some(e));
            }
            unrelated += 1;
            if unrelated > MAX_UNRELATED {
                return Err(self.conn.fail(UbusError::Protocol(format!(
                    "more than {MAX_UNRELATED} messages that are no event"
                ))));
            }
        }
    }

    /// Runs a request on the connection, queueing the events that arrive meanwhile.
    fn with_events<T>(
        &mut self,
        f: impl FnOnce(
            &mut Conn,
            &mut dyn FnMut(&mut Conn, Message) -> Result<(), UbusError>,
        ) -> Result<T, UbusError>,
    ) -> Result<T, UbusError> {
        let event_obj = self.event_obj;
        let subs = &self.subscriptions;
        let queue = &mut self.queue;
        let mut other = |conn: &mut Conn, m: Message| -> Result<(), UbusError> {
            if let Some(e) = handle(conn, event_obj, subs, m)? {
                if queue.len() >= MAX_QUEUED {
                    log::debug!("ubus: more than {MAX_QUEUED} events held, dropping the oldest");
                    queue.pop_front();
                }
                queue.push_back(e);
            }
            Ok(())
        };
        f(&mut self.conn, &mut other)
    }
}

/// An INVOKE of one of our objects: the event or notification it carries, after answering it.
fn handle(
    conn: &mut Conn,
    event_obj: Option<u32>,
    subs: &[(u32, String)],
    m: Message,
) -> Result<Option<Event>, UbusError> {
    if m.header.kind != msg::INVOKE {
        return Ok(None);
    }
    let Some(objid) = m.objid() else {
        return Ok(None);
    };
    let object = if event_obj == Some(objid) {
        None
    } else if let Some((_, path)) = subs.iter().find(|(id, _)| *id == objid) {
        Some(path.clone())
    } else {
        return Ok(None);
    };
    // ubus_process_invoke: a STATUS (OK) unless NO_REPLY; ubusd's own events (peer 0) go
    // nowhere, so they are not answered.
    if !m.no_reply() && m.header.peer != 0 {
        let reply = proto::status_reply(m.header.seq, m.header.peer, objid, status::OK)?;
        let deadline = conn.deadline();
        conn.send(&reply, deadline)?;
    }
    let Some(name) = m.method() else {
        return Ok(None);
    };
    // What an event carries is kept only up to a bound: events wait in a queue while a request
    // runs, and a publisher may send many large ones.
    let data = match m.data() {
        None => Vec::new(),
        Some(d) if d.len() > MAX_EVENT_DATA => {
            log::debug!("ubus: event {name}: {} bytes of data not kept", d.len());
            Vec::new()
        }
        Some(d) => match blob::decode_table(d) {
            Ok(t) => t,
            Err(e) => {
                log::debug!("ubus: event {name}: malformed data skipped: {e}");
                return Ok(None);
            }
        },
    };
    Ok(Some(Event {
        name: name.to_owned(),
        data: Value::Table(data),
        object,
    }))
}
