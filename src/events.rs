//! Inform events (TR-069 Amendment 6 §3.7.1.5 and Table 7; the EventStruct of §A.3.3.1): the
//! codes, single versus multiple cumulative behaviour, and what happens to an undelivered event
//! after a failed session, a reboot or an ACS URL change.
//!
//! The agent owns one [`EventQueue`] and persists it (it is `serde`-serializable). The life of an
//! event:
//!
//! ```text
//!  add() ──> pending ──for_inform()──> in flight ──InformResponse──> delivered(): removed
//!                ^                          │
//!                └──── failed(): kept ──────┘   (except the codes discarded on failure)
//! ```
//!
//! Rules implemented here, each with its source:
//! - Single events (every numbered code) appear at most once in the queue; the `M <method>`
//!   codes are multiple and repeat with their CommandKeys (Table 7, "Cumulative behavior").
//! - The Inform carries at most 64 EventStructs (`Event` array of §A.3.3.1: `EventStruct[64]`),
//!   in the order the events were added.
//! - Events are removed only once an InformResponse arrived (§3.7.1.5: an event is delivered when
//!   the Inform that carries it is answered). Events added while the session ran stay queued.
//! - After a session that failed before its InformResponse, `6 CONNECTION REQUEST` is dropped
//!   and every other event is kept for the retry of §3.2.1.1. See [`Rules::on_failure`] for why.
//! - After a reboot (not an agent restart), the events that only describe the previous boot are
//!   dropped ([`Rules::on_reboot`]).
//! - A change of the ACS URL discards what was meant for the old ACS and queues `0 BOOTSTRAP`
//!   (§3.7.1.5 / Table 7: BOOTSTRAP on "first time connection of the CPE to the ACS after the ACS
//!   URL has been modified in any way").
//!
//! Note: the text of TR-069's retention table was not available to the author while writing this
//! module; the failure and reboot columns follow the interpretation of the widely deployed
//! open-source CPE agents (icwmp's `EVENT_RETRY_AFTER_TRANSMIT_FAIL` / `_AFTER_REBOOT` flags) and
//! are kept in one table ([`rules`]) so that a correction is a one-line change.

use crate::soap::msg::EventStruct;

/// `0 BOOTSTRAP`: first contact with this ACS (from the factory, after a factory reset, or after
/// the ACS URL changed).
pub const BOOTSTRAP: &str = "0 BOOTSTRAP";
/// `1 BOOT`: the CPE (re)started.
pub const BOOT: &str = "1 BOOT";
/// `2 PERIODIC`: the periodic inform interval elapsed.
pub const PERIODIC: &str = "2 PERIODIC";
/// `3 SCHEDULED`: a ScheduleInform came due (always with `M ScheduleInform`).
pub const SCHEDULED: &str = "3 SCHEDULED";
/// `4 VALUE CHANGE`: a parameter with passive or active notification changed.
pub const VALUE_CHANGE: &str = "4 VALUE CHANGE";
/// `5 KICKED`: the session is for the Kicked RPC.
pub const KICKED: &str = "5 KICKED";
/// `6 CONNECTION REQUEST`: the ACS asked for this session.
pub const CONNECTION_REQUEST: &str = "6 CONNECTION REQUEST";
/// `7 TRANSFER COMPLETE`: a Download/Upload finished (with `M Download` etc.).
pub const TRANSFER_COMPLETE: &str = "7 TRANSFER COMPLETE";
/// `8 DIAGNOSTICS COMPLETE`: a diagnostic the ACS started has finished.
pub const DIAGNOSTICS_COMPLETE: &str = "8 DIAGNOSTICS COMPLETE";
/// `9 REQUEST DOWNLOAD`: the session carries a RequestDownload.
pub const REQUEST_DOWNLOAD: &str = "9 REQUEST DOWNLOAD";
/// `10 AUTONOMOUS TRANSFER COMPLETE`: a transfer the ACS did not request finished.
pub const AUTONOMOUS_TRANSFER_COMPLETE: &str = "10 AUTONOMOUS TRANSFER COMPLETE";
/// `11 DU STATE CHANGE COMPLETE`: a ChangeDUState finished (with `M ChangeDUState`).
pub const DU_STATE_CHANGE_COMPLETE: &str = "11 DU STATE CHANGE COMPLETE";
/// `12 AUTONOMOUS DU STATE CHANGE COMPLETE`.
pub const AUTONOMOUS_DU_STATE_CHANGE_COMPLETE: &str = "12 AUTONOMOUS DU STATE CHANGE COMPLETE";
/// `13 WAKEUP`: the CPE left a standby state.
pub const WAKEUP: &str = "13 WAKEUP";
/// `14 HEARTBEAT`: a Heartbeat Inform (CWMP 1.4, ManagementServer.HeartbeatPolicy); alone in
/// its Inform, never queued, never retried.
pub const HEARTBEAT: &str = "14 HEARTBEAT";
/// `M Reboot` (with the Reboot's CommandKey).
pub const M_REBOOT: &str = "M Reboot";
/// `M ScheduleInform` (with the ScheduleInform's CommandKey).
pub const M_SCHEDULE_INFORM: &str = "M ScheduleInform";
/// `M Download` (with the Download's CommandKey).
pub const M_DOWNLOAD: &str = "M Download";
/// `M ScheduleDownload` (with the ScheduleDownload's CommandKey).
pub const M_SCHEDULE_DOWNLOAD: &str = "M ScheduleDownload";
/// `M Upload` (with the Upload's CommandKey).
pub const M_UPLOAD: &str = "M Upload";
/// `M ChangeDUState` (with the ChangeDUState's CommandKey).
pub const M_CHANGE_DU_STATE: &str = "M ChangeDUState";

/// An event code (Table 7): the numbered codes, `M <method>` and `X <OUI> <event>`. The wire
/// and stored form is the code's text ([`EventCode::as_str`]); any text parses, so that a code
/// this version does not know reads back as it was written ([`EventCode::Other`]; the queue
/// refuses it, [`is_valid_code`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventCode {
    Bootstrap,
    Boot,
    Periodic,
    Scheduled,
    ValueChange,
    Kicked,
    ConnectionRequest,
    TransferComplete,
    DiagnosticsComplete,
    RequestDownload,
    AutonomousTransferComplete,
    DuStateChangeComplete,
    AutonomousDuStateChangeComplete,
    Wakeup,
    Heartbeat,
    /// `M <method>`, the whole code (`M Reboot`).
    Method(String),
    /// `X <OUI> <event>`, the whole code.
    Vendor(String),
    /// Any other text, as it was read.
    Other(String),
}

/// The numbered codes and their text.
const NUMBERED: [(EventCode, &str); 15] = [
    (EventCode::Bootstrap, BOOTSTRAP),
    (EventCode::Boot, BOOT),
    (EventCode::Periodic, PERIODIC),
    (EventCode::Scheduled, SCHEDULED),
    (EventCode::ValueChange, VALUE_CHANGE),
    (EventCode::Kicked, KICKED),
    (EventCode::ConnectionRequest, CONNECTION_REQUEST),
    (EventCode::TransferComplete, TRANSFER_COMPLETE),
    (EventCode::DiagnosticsComplete, DIAGNOSTICS_COMPLETE),
    (EventCode::RequestDownload, REQUEST_DOWNLOAD),
    (
        EventCode::AutonomousTransferComplete,
        AUTONOMOUS_TRANSFER_COMPLETE,
    ),
    (EventCode::DuStateChangeComplete, DU_STATE_CHANGE_COMPLETE),
    (
        EventCode::AutonomousDuStateChangeComplete,
        AUTONOMOUS_DU_STATE_CHANGE_COMPLETE,
    ),
    (EventCode::Wakeup, WAKEUP),
    (EventCode::Heartbeat, HEARTBEAT),
];

impl EventCode {
    /// The code of a text (never fails: an unknown text is [`EventCode::Other`]).
    pub fn parse(text: &str) -> EventCode {
        if let Some((c, _)) = NUMBERED.iter().find(|(_, t)| *t == text) {
            return c.clone();
        }
        if text.starts_with("M ") {
            EventCode::Method(text.to_string())
        } else if text.starts_with("X ") {
            EventCode::Vendor(text.to_string())
        } else {
            EventCode::Other(text.to_string())
        }
    }

    /// `M <method>` for an RPC that completes later (Reboot, ScheduleInform, Download, …).
    pub fn method(method: &str) -> EventCode {
        EventCode::Method(format!("M {method}"))
    }

    /// The code's text, as on the wire (`1 BOOT`, `M Reboot`).
    pub fn as_str(&self) -> &str {
        match self {
            EventCode::Method(t) | EventCode::Vendor(t) | EventCode::Other(t) => t,
            c => NUMBERED.iter().find(|(n, _)| n == c).map_or("", |(_, t)| t),
        }
    }

    /// The retention rules of this code (Table 7 and §3.7.1.5). Unknown and vendor (`X`) codes
    /// are single and kept on failure and reboot.
    pub fn rules(&self) -> Rules {
        let keep = |on_failure, on_reboot| Rules {
            cumulative: Cumulative::Single,
            on_failure,
            on_reboot,
            on_url_change: false,
        };
        match self {
            EventCode::Boot => Rules {
                on_url_change: true,
                ..keep(true, false)
            },
            EventCode::ValueChange | EventCode::DiagnosticsComplete | EventCode::Wakeup => {
                keep(true, false)
            }
            EventCode::ConnectionRequest | EventCode::Heartbeat => keep(false, false),
            EventCode::Method(_) => Rules {
                cumulative: Cumulative::Multiple,
                ..keep(true, true)
            },
            _ => keep(true, true),
        }
    }

    /// A code is well formed when it is a known numbered code, `M <method>` or
    /// `X <OUI> <event>` (Table 7), within the schema's length.
    pub fn is_valid(&self) -> bool {
        let code = self.as_str();
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return false;
        }
        match self {
            EventCode::Other(_) => false,
            EventCode::Method(t) => {
                let method = &t[2..];
                !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            EventCode::Vendor(t) => {
                // `X <OUI> <event>`: six hex digits, a space, a non-empty event name.
                let mut parts = t[2..].splitn(2, ' ');
                let oui = parts.next().unwrap_or("");
                let event = parts.next().unwrap_or("");
                oui.len() == 6 && oui.bytes().all(|b| b.is_ascii_hexdigit()) && !event.is_empty()
            }
            _ => true,
        }
    }
}

impl From<&str> for EventCode {
    fn from(t: &str) -> EventCode {
        EventCode::parse(t)
    }
}

impl From<String> for EventCode {
    fn from(t: String) -> EventCode {
        EventCode::parse(&t)
    }
}

impl From<EventCode> for String {
    fn from(c: EventCode) -> String {
        match c {
            EventCode::Method(t) | EventCode::Vendor(t) | EventCode::Other(t) => t,
            c => c.as_str().to_string(),
        }
    }
}

impl PartialEq<str> for EventCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for EventCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most EventStructs in one Inform (`EventStruct[64]` in §A.3.3.1).
pub const MAX_INFORM_EVENTS: usize = 64;

/// Most events the queue holds. Single events are bounded by the code list; this bounds the
/// multiple (`M …`) and vendor (`X …`) ones so that a misbehaving ACS cannot grow the persisted
/// queue without limit. An `add` beyond it is refused.
pub const MAX_QUEUED: usize = 1024;

/// Longest event code accepted (the schema's `EventCodeType` is `string(64)`).
pub const MAX_CODE_LEN: usize = 64;

/// Longest CommandKey accepted (`CommandKeyType` is `string(32)`).
pub const MAX_COMMAND_KEY_LEN: usize = 32;

/// One pending event: a code (`"1 BOOT"`, `"M Reboot"`) and its CommandKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub code: EventCode,
    pub command_key: String,
}

/// Stored as its text (`"1 BOOT"`, `"M Reboot"`).
impl crate::toml_write::ToToml for EventCode {
    fn write(&self, out: &mut String) {
        self.as_str().write(out);
    }
}

// Written by the macro's writer; read by the hand-written reader below.
crate::from_toml_struct!(@write Event { code, command_key });

impl crate::toml_read::FromToml for EventCode {
    fn from_toml(v: &crate::toml_read::Value<'_>) -> Result<Self, crate::toml_read::Error> {
        crate::toml_read::str(v).map(EventCode::parse)
    }
}

/// Read as stored: `code` required, `command_key` empty when missing, other keys ignored.
impl crate::toml_read::FromToml for Event {
    fn from_toml(v: &crate::toml_read::Value<'_>) -> Result<Self, crate::toml_read::Error> {
        use crate::toml_read;
        let mut event = Event::new(EventCode::Other(String::new()), "");
        for (k, v) in toml_read::table(v)? {
            match toml_read::key(k) {
                "code" => event.code = EventCode::from_toml(v)?,
                "command_key" => event.command_key = String::from_toml(v)?,
                _ => {}
            }
        }
        toml_read::require(v, &["code"])?;
        Ok(event)
    }
}

impl Event {
    /// An event with a CommandKey (empty for most single events).
    pub fn new(code: impl Into<EventCode>, command_key: impl Into<String>) -> Event {
        Event {
            code: code.into(),
            command_key: command_key.into(),
        }
    }

    /// `M <method>` for an RPC that completes later (Reboot, ScheduleInform, Download, …).
    pub fn method(method: &str, command_key: impl Into<String>) -> Event {
        Event::new(EventCode::method(method), command_key)
    }

    /// The retention rules of this event's code.
    pub fn rules(&self) -> Rules {
        self.code.rules()
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::soap::msg::event_label(
            self.code.as_str(),
            &self.command_key,
        ))
    }
}

/// How often an event code may appear in one Inform (Table 7, "Cumulative behavior").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cumulative {
    /// At most once; adding it again while it is pending changes nothing.
    Single,
    /// Once per occurrence, each with its own CommandKey.
    Multiple,
}

/// What happens to an undelivered event in each situation (§3.7.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub cumulative: Cumulative,
    /// Kept for the retry after a session that failed before the InformResponse. `false` only for
    /// `6 CONNECTION REQUEST`: the request it answers is the ACS's, and the ACS repeats it if it
    /// still wants the session; retrying it minutes later with backoff would report a connection
    /// request the ACS no longer waits for. Every other event stays until an InformResponse.
    pub on_failure: bool,
    /// Kept across a reboot of the device. The codes that describe the previous run only (`1 BOOT`
    /// is queued again by the new boot, `4 VALUE CHANGE` refers to values that may not survive,
    /// `6 CONNECTION REQUEST`, `8 DIAGNOSTICS COMPLETE` whose results are volatile, `13 WAKEUP`)
    /// are dropped; an agent restart without a reboot keeps everything.
    pub on_reboot: bool,
    /// Kept when the ACS URL changes. Only `1 BOOT` is kept (it is a fact about the device, not
    /// about the old ACS); `0 BOOTSTRAP` is queued afresh.
    pub on_url_change: bool,
}

/// The retention rules of an event code (Table 7 and §3.7.1.5); see [`EventCode::rules`].
pub fn rules(code: &str) -> Rules {
    EventCode::parse(code).rules()
}

/// A code is well formed when it is a known numbered code, `M <method>` or `X <OUI> <event>`
/// (Table 7), within the schema's length; see [`EventCode::is_valid`].
pub fn is_valid_code(code: &str) -> bool {
    EventCode::parse(code).is_valid()
}

/// Why [`EventQueue::add`] refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    /// Not a Table 7 code, or too long.
    InvalidCode(String),
    /// The CommandKey is longer than 32 characters.
    CommandKeyTooLong,
    /// The queue holds [`MAX_QUEUED`] events already.
    Full,
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::InvalidCode(c) => write!(f, "invalid event code {c:?}"),
            AddError::CommandKeyTooLong => write!(f, "CommandKey longer than 32 characters"),
            AddError::Full => write!(f, "event queue full ({MAX_QUEUED} events)"),
        }
    }
}

impl std::error::Error for AddError {}

/// The pending events, in the order they were added. Persisted by the agent: it serializes as
/// the plain list of events (`events = [{ code, command_key }, …]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQueue {
    events: Vec<Queued>,
    /// The sequence number the next added event gets.
    next_seq: u64,
}

/// A queued event and the sequence number that identifies this occurrence of it. Sequence
/// numbers only tie an [`InFlight`] token to the occurrences it carried; they are not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Queued {
    event: Event,
    seq: u64,
}

/// The stored form of an [`EventQueue`] (what it is read as).
#[derive(Default)]
struct Stored {
    events: Vec<Event>,
}

crate::from_toml_struct!(lenient Stored { events });

/// Written as its [`Stored`] form: the events, without their sequence numbers.
impl crate::toml_write::ToToml for EventQueue {
    fn entries<'s>(&'s self, out: &mut Vec<crate::toml_write::Entry<'s>>) {
        out.push(("events".into(), &self.events));
    }

    fn is_table(&self) -> bool {
        true
    }
}

impl crate::toml_write::ToToml for Queued {
    fn write(&self, out: &mut String) {
        self.event.write(out);
    }
}

impl crate::toml_read::FromToml for EventQueue {
    fn from_toml(v: &crate::toml_read::Value<'_>) -> Result<Self, crate::toml_read::Error> {
        Stored::from_toml(v).map(EventQueue::from)
    }
}

impl From<Stored> for EventQueue {
    fn from(s: Stored) -> EventQueue {
        let mut q = EventQueue::new();
        for event in s.events {
            // A stored queue is trusted no more than any file: what add() refuses is dropped.
            let _ = q.add(event);
        }
        q
    }
}

impl From<EventQueue> for Stored {
    fn from(q: EventQueue) -> Stored {
        Stored {
            events: q.events.into_iter().map(|q| q.event).collect(),
        }
    }
}

/// The events one Inform carried, handed back to [`EventQueue::delivered`] or
/// [`EventQueue::failed`] when the session ends. Not persisted: a session cut by a restart simply
/// failed, and its events are still queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlight {
    seqs: Vec<u64>,
}

impl InFlight {
    /// How many events the Inform carried.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

impl EventQueue {
    pub fn new() -> EventQueue {
        EventQueue::default()
    }

    /// Queues an event. A single event already pending is not added again (Table 7); when that
    /// pending one is in flight, it is marked as new again so that this occurrence survives the
    /// delivery of the earlier one (a connection request or periodic inform that arrives while
    /// a session runs is reported by the next session). Multiple (`M …`) events are appended.
    /// Returns `Ok(true)` when a new entry was appended.
    pub fn add(&mut self, event: Event) -> Result<bool, AddError> {
        if !event.code.is_valid() {
            return Err(AddError::InvalidCode(event.code.into()));
        }
        if event.command_key.chars().count() > MAX_COMMAND_KEY_LEN {
            return Err(AddError::CommandKeyTooLong);
        }
        let seq = self.bump();
        if event.rules().cumulative == Cumulative::Single {
            if let Some(q) = self.events.iter_mut().find(|q| q.event.code == event.code) {
                q.seq = seq;
                return Ok(false);
            }
        }
        if self.events.len() >= MAX_QUEUED {
            return Err(AddError::Full);
        }
        self.events.push(Queued { event, seq });
        Ok(true)
    }

    /// The pending events, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|q| &q.event)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether an event with this code is pending.
    pub fn contains(&self, code: &str) -> bool {
        self.events.iter().any(|q| q.event.code == code)
    }

    /// The Event list of the next Inform: the oldest [`MAX_INFORM_EVENTS`] events, in insertion
    /// order, and the token that says which occurrences were sent.
    pub fn for_inform(&self) -> (Vec<EventStruct>, InFlight) {
        let sent = self.events.iter().take(MAX_INFORM_EVENTS);
        let list = sent
            .clone()
            .map(|q| EventStruct {
                code: q.event.code.as_str().to_string(),
                command_key: q.event.command_key.clone(),
            })
            .collect();
        let seqs = sent.map(|q| q.seq).collect();
        (list, InFlight { seqs })
    }

    /// The InformResponse arrived: every event the Inform carried is delivered and removed.
    /// Events added (or re-added) since [`for_inform`](Self::for_inform) stay.
    pub fn delivered(&mut self, sent: &InFlight) {
        self.events.retain(|q| !sent.seqs.contains(&q.seq));
    }

    /// The session failed before the InformResponse: the sent events that are not retried are
    /// dropped ([`Rules::on_failure`]), the rest stay for the retry. Returns whether any event is
    /// left to deliver.
    pub fn failed(&mut self, sent: &InFlight) -> bool {
        self.events
            .retain(|q| !sent.seqs.contains(&q.seq) || q.event.rules().on_failure);
        !self.events.is_empty()
    }

    /// The device rebooted with events undelivered: drops those that do not survive a reboot
    /// ([`Rules::on_reboot`]). The agent calls this once at start when it knows the device booted
    /// (then queues `1 BOOT`), not when only the agent restarted.
    pub fn rebooted(&mut self) {
        self.events.retain(|q| q.event.rules().on_reboot);
    }

    /// The ACS URL changed: drops what was meant for the old ACS and queues `0 BOOTSTRAP` for the
    /// first session with the new one (Table 7). `1 BOOT` is kept.
    pub fn url_changed(&mut self) {
        self.events.retain(|q| q.event.rules().on_url_change);
        // This add cannot fail: BOOTSTRAP is valid and at most `1 BOOT` is left in the queue.
        let _ = self.add(Event::new(BOOTSTRAP, ""));
    }

    fn bump(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_its_text() {
        for (code, text) in NUMBERED {
            assert_eq!(EventCode::parse(text), code);
            assert_eq!(code.as_str(), text);
            assert!(code.is_valid());
        }
        let m = EventCode::parse("M Download");
        assert_eq!(m, EventCode::method("Download"));
        assert_eq!(m.rules().cumulative, Cumulative::Multiple);
        assert_eq!(
            EventCode::parse("X 00D0F8 Kick"),
            EventCode::Vendor("X 00D0F8 Kick".into())
        );
        assert!(EventCode::parse("X 00D0F8 Kick").is_valid());
        // A code this version does not know keeps its text.
        let other = EventCode::parse("14 FUTURE");
        assert_eq!(other, EventCode::Other("14 FUTURE".into()));
        assert_eq!(String::from(other.clone()), "14 FUTURE");
        assert!(!other.is_valid());
        assert_eq!(EventCode::Boot, "1 BOOT");
        assert_eq!(EventCode::Boot.to_string(), BOOT);
    }

    #[test]
    fn an_event_is_stored_with_the_text_of_its_code() {
        #[derive(Default)]
        struct File {
            event: Vec<Event>,
        }
        crate::from_toml_struct!(lenient File { event });
        let f = File {
            event: vec![
                Event::new(BOOT, ""),
                Event::method("Reboot", "k"),
                Event::new("X 00D0F8 Kick", ""),
                Event::new("14 FUTURE", ""),
            ],
        };
        let text = crate::toml_write::to_string(&f);
        assert!(text.contains("code = \"1 BOOT\""), "{text}");
        assert!(text.contains("code = \"M Reboot\""), "{text}");
        let back: File = crate::toml_read::from_str(&text).unwrap();
        assert_eq!(back.event, f.event);
    }

    fn codes(q: &EventQueue) -> Vec<String> {
        q.pending().map(|e| e.code.to_string()).collect()
    }

    #[test]
    fn single_events_appear_once() {
        let mut q = EventQueue::new();
        assert_eq!(q.add(Event::new(BOOT, "")), Ok(true));
        assert_eq!(q.add(Event::new(PERIODIC, "")), Ok(true));
        assert_eq!(q.add(Event::new(BOOT, "")), Ok(false));
        assert_eq!(q.add(Event::new(PERIODIC, "")), Ok(false));
        assert_eq!(codes(&q), [BOOT, PERIODIC]);
    }

    #[test]
    fn multiple_events_repeat_with_their_command_keys() {
        let mut q = EventQueue::new();
        q.add(Event::new(TRANSFER_COMPLETE, "")).unwrap();
        q.add(Event::method("Download", "fw-1")).unwrap();
        q.add(Event::new(TRANSFER_COMPLETE, "")).unwrap();
        q.add(Event::method("Download", "cfg-2")).unwrap();
        q.add(Event::method("Download", "cfg-2")).unwrap();
        let (list, _) = q.for_inform();
        let got: Vec<(&str, &str)> = list
            .iter()
            .map(|e| (e.code.as_str(), e.command_key.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (TRANSFER_COMPLETE, ""),
                (M_DOWNLOAD, "fw-1"),
                (M_DOWNLOAD, "cfg-2"),
                (M_DOWNLOAD, "cfg-2"),
            ]
        );
    }

    #[test]
    fn invalid_codes_and_keys_are_refused() {
        let mut q = EventQueue::new();
        for bad in [
            "",
            "14 FOO",
            "BOOT",
            "M ",
            "M Re boot",
            "X 00D0F8",
            "X 0D0F8 E",
            "Y 1",
        ] {
            assert!(
                matches!(q.add(Event::new(bad, "")), Err(AddError::InvalidCode(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            q.add(Event::method("Reboot", "k".repeat(33))),
            Err(AddError::CommandKeyTooLong)
        );
        assert_eq!(q.add(Event::new("X 00D0F8 FanFailure", "")), Ok(true));
        assert_eq!(q.add(Event::method("Reboot", "k".repeat(32))), Ok(true));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn queue_is_bounded() {
        let mut q = EventQueue::new();
        for i in 0..MAX_QUEUED {
            q.add(Event::method("Download", format!("{i}"))).unwrap();
        }
        assert_eq!(q.add(Event::method("Download", "x")), Err(AddError::Full));
        // A pending single event can still be re-added: it takes no room.
        let mut q2 = EventQueue::new();
        q2.add(Event::new(BOOT, "")).unwrap();
        for i in 1..MAX_QUEUED {
            q2.add(Event::method("Upload", format!("{i}"))).unwrap();
        }
        assert_eq!(q2.add(Event::new(BOOT, "")), Ok(false));
        assert_eq!(q2.add(Event::new(PERIODIC, "")), Err(AddError::Full));
    }

    #[test]
    fn inform_carries_at_most_64_in_insertion_order() {
        let mut q = EventQueue::new();
        q.add(Event::new(VALUE_CHANGE, "")).unwrap();
        q.add(Event::new(BOOT, "")).unwrap();
        for i in 0..70 {
            q.add(Event::method("Download", format!("k{i}"))).unwrap();
        }
        let (list, sent) = q.for_inform();
        assert_eq!(list.len(), MAX_INFORM_EVENTS);
        assert_eq!(sent.len(), MAX_INFORM_EVENTS);
        assert_eq!(list[0].code, VALUE_CHANGE);
        assert_eq!(list[1].code, BOOT);
        assert_eq!(list[2].command_key, "k0");
        assert_eq!(list[63].command_key, "k61");
        // Delivering removes exactly those 64; the remaining 8 go in the next Inform.
        q.delivered(&sent);
        let (next, _) = q.for_inform();
        assert_eq!(next.len(), 8);
        assert_eq!(next[0].command_key, "k62");
    }

    #[test]
    fn delivery_removes_sent_events_only() {
        let mut q = EventQueue::new();
        q.add(Event::new(BOOT, "")).unwrap();
        q.add(Event::method("Reboot", "r1")).unwrap();
        let (_, sent) = q.for_inform();
        // Added while the session runs: a value change, and a new periodic inform.
        q.add(Event::new(VALUE_CHANGE, "")).unwrap();
        q.delivered(&sent);
        assert_eq!(codes(&q), [VALUE_CHANGE]);
    }

    #[test]
    fn single_event_re_added_in_flight_survives_delivery() {
        let mut q = EventQueue::new();
        q.add(Event::new(CONNECTION_REQUEST, "")).unwrap();
        let (_, sent) = q.for_inform();
        // Another connection request arrives during the session: no duplicate in the list…
        assert_eq!(q.add(Event::new(CONNECTION_REQUEST, "")), Ok(false));
        assert_eq!(q.len(), 1);
        // …but it is not lost with the delivery of the first one.
        q.delivered(&sent);
        assert_eq!(codes(&q), [CONNECTION_REQUEST]);
    }

    #[test]
    fn failure_drops_connection_request_and_keeps_the_rest() {
        let mut q = EventQueue::new();
        for c in [BOOTSTRAP, BOOT, PERIODIC, CONNECTION_REQUEST, VALUE_CHANGE] {
            q.add(Event::new(c, "")).unwrap();
        }
        q.add(Event::method("ScheduleInform", "s")).unwrap();
        let (_, sent) = q.for_inform();
        assert!(q.failed(&sent));
        assert_eq!(
            codes(&q),
            [BOOTSTRAP, BOOT, PERIODIC, VALUE_CHANGE, M_SCHEDULE_INFORM]
        );
        // The retry's Inform carries the same events again.
        let (list, sent2) = q.for_inform();
        assert_eq!(list.len(), 5);
        q.delivered(&sent2);
        assert!(q.is_empty());
    }

    #[test]
    fn failure_with_only_a_connection_request_leaves_nothing() {
        let mut q = EventQueue::new();
        q.add(Event::new(CONNECTION_REQUEST, "")).unwrap();
        let (_, sent) = q.for_inform();
        assert!(!q.failed(&sent));
        assert!(q.is_empty());
    }

    #[test]
    fn connection_request_arriving_during_failed_session_is_kept() {
        let mut q = EventQueue::new();
        q.add(Event::new(PERIODIC, "")).unwrap();
        let (_, sent) = q.for_inform();
        q.add(Event::new(CONNECTION_REQUEST, "")).unwrap();
        assert!(q.failed(&sent));
        assert_eq!(codes(&q), [PERIODIC, CONNECTION_REQUEST]);
    }

    #[test]
    fn reboot_drops_events_of_the_previous_run() {
        let mut q = EventQueue::new();
        for c in [
            BOOTSTRAP,
            BOOT,
            PERIODIC,
            SCHEDULED,
            VALUE_CHANGE,
            CONNECTION_REQUEST,
            TRANSFER_COMPLETE,
            DIAGNOSTICS_COMPLETE,
            WAKEUP,
        ] {
            q.add(Event::new(c, "")).unwrap();
        }
        q.add(Event::method("Reboot", "r")).unwrap();
        q.add(Event::method("Download", "d")).unwrap();
        q.rebooted();
        assert_eq!(
            codes(&q),
            [
                BOOTSTRAP,
                PERIODIC,
                SCHEDULED,
                TRANSFER_COMPLETE,
                M_REBOOT,
                M_DOWNLOAD
            ]
        );
    }

    #[test]
    fn url_change_queues_bootstrap_and_drops_old_acs_events() {
        let mut q = EventQueue::new();
        q.add(Event::new(BOOT, "")).unwrap();
        q.add(Event::new(PERIODIC, "")).unwrap();
        q.add(Event::new(TRANSFER_COMPLETE, "")).unwrap();
        q.add(Event::method("Download", "d")).unwrap();
        q.url_changed();
        assert_eq!(codes(&q), [BOOT, BOOTSTRAP]);
        // Twice in a row still gives one BOOTSTRAP.
        q.url_changed();
        assert_eq!(codes(&q), [BOOT, BOOTSTRAP]);
    }

    #[test]
    fn queue_round_trips_through_toml() {
        let mut q = EventQueue::new();
        q.add(Event::new(BOOT, "")).unwrap();
        q.add(Event::method("Reboot", "key & <x>")).unwrap();
        let text = crate::toml_write::to_string(&q);
        let back: EventQueue = crate::toml_read::from_str(&text).unwrap();
        assert_eq!(back, q);
        // A hand-written file loads; duplicates and bad codes in it are dropped as add() would.
        let stored = "[[events]]\ncode = \"1 BOOT\"\n[[events]]\ncode = \"1 BOOT\"\n\
                      [[events]]\ncode = \"bogus\"\n[[events]]\ncode = \"M Reboot\"\n\
                      command_key = \"k\"\n";
        let old: EventQueue = crate::toml_read::from_str(stored).unwrap();
        assert_eq!(codes(&old), [BOOT, M_REBOOT]);
        // Occurrences loaded from the store are distinct: delivering one keeps the others.
        let mut old = old;
        let (_, sent) = old.for_inform();
        old.add(Event::method("Upload", "u")).unwrap();
        old.delivered(&sent);
        assert_eq!(codes(&old), [M_UPLOAD]);
    }
}
