//! An XMPP stream (RFC 6120 §4) cut into its stanzas, incrementally and within bounds: the
//! bytes come as the socket gives them, a stanza is handed out whole once its last byte
//! arrived (for `roxmltree`, which reads complete documents). Pure.
//!
//! The stream is one XML document that never ends: `<stream:stream …>` (with an XML
//! declaration before it, perhaps), then top-level elements (the stanzas and the negotiation's
//! elements), whitespace between them (keep-alives), and `</stream:stream>`. The cutter follows
//! the tags with a byte state machine that resumes where it stopped, so a stanza that arrives a
//! byte at a time costs time linear in its size; it keeps quoted attribute values whole (a `>`
//! inside one is not the tag's end), skips CDATA sections inside a stanza, and counts the
//! depth. Handed-out bytes are dropped once per push, not once per stanza (a chunk of many small
//! stanzas costs one move), and whitespace between stanzas is dropped as it is read. RFC 6120
//! §11.1 forbids comments, processing instructions, DTDs and entity declarations in a stream:
//! any other `<!` or `<?` after the stream's start is refused, and so is a stanza over
//! [`MAX_STANZA`] bytes or [`MAX_DEPTH`] levels, and an XML declaration over 256 bytes: the
//! connection is then closed (a stream error).

/// The largest stanza read (an ACS's connection request is a few hundred bytes; servers'
/// feature lists a few KiB).
pub const MAX_STANZA: usize = 64 * 1024;
/// The deepest element nesting inside a stanza.
pub const MAX_DEPTH: usize = 32;

/// What the stream gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The stream's opening tag (`<stream:stream …>`), as text.
    Open(String),
    /// One top-level element, whole.
    Stanza(String),
    /// `</stream:stream>`: the peer ends the stream.
    Close,
}

/// Why the stream cannot be read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// A stanza over [`MAX_STANZA`] bytes.
    TooLarge,
    /// Nesting over [`MAX_DEPTH`].
    TooDeep,
    /// Not what RFC 6120 allows (a comment, a PI, a DTD, text at the top level, bad UTF-8).
    Malformed,
}

/// Where the scan of the current element stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between elements (top level) or in text inside one.
    Text,
    /// Just after `<`.
    Lt,
    /// Inside a tag; `closing` for `</…>`, `quote` the open quote, `slash` the last byte was `/`.
    Tag {
        closing: bool,
        quote: Option<u8>,
        slash: bool,
    },
    /// After `<!` inside a stanza: this many bytes of `[CDATA[` matched.
    Bang(usize),
    /// Inside a CDATA section: this many bytes of `]]>` matched.
    Cdata(usize),
}

/// What follows `<!` in a CDATA section's start, and what ends one.
const CDATA_OPEN: &[u8] = b"[CDATA[";
const CDATA_CLOSE: &[u8] = b"]]>";
/// The longest XML declaration read before the stream's tag.
const MAX_DECLARATION: usize = 256;

/// The cutter.
#[derive(Debug, Clone)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Bytes of `buf` handed out or skipped, dropped at the next push.
    consumed: usize,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    /// Where the element being scanned starts.
    start: usize,
    depth: usize,
    state: State,
    /// The stream's opening tag was read.
    opened: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new()
    }
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            start: 0,
            depth: 0,
            state: State::Text,
            opened: false,
        }
    }

    /// Forgets everything: a new stream starts (after STARTTLS and after SASL, RFC 6120 §5.4.3.3,
    /// §6.4.6).
    pub fn restart(&mut self) {
        *self = Splitter::new();
    }

    /// Bytes from the socket.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if self.consumed > 0 {
            let c = self.consumed.min(self.buf.len());
            self.buf.drain(..c);
            self.scanned = self.scanned.saturating_sub(c);
            self.start = self.start.saturating_sub(c);
            self.consumed = 0;
        }
        if self.buf.len().saturating_sub(self.start) + bytes.len() > MAX_STANZA + 1024 {
            return Err(StreamError::TooLarge);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole event, if its bytes are all in.
    pub fn next_event(&mut self) -> Result<Option<Event>, StreamError> {
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            let at = self.scanned;
            self.scanned += 1;
            match self.state {
                State::Text => {
                    if b == b'<' {
                        if self.depth == 0 {
                            self.start = at;
                        }
                        self.state = State::Lt;
                    } else if self.depth == 0 {
                        if !b.is_ascii_whitespace() {
                            return Err(StreamError::Malformed);
                        }
                        // Whitespace between stanzas (keep-alives): done with.
                        self.consumed = self.scanned;
                        self.start = self.scanned;
                    }
                }
                State::Lt => match b {
                    b'/' => {
                        self.state = State::Tag {
                            closing: true,
                            quote: None,
                            slash: false,
                        }
                    }
                    b'?' if !self.opened && self.depth == 0 => {
                        // The XML declaration before the stream's tag: skipped to its `?>`.
                        let Some(end) = find(&self.buf[self.scanned..], b"?>") else {
                            if self.buf.len() - self.start > MAX_DECLARATION {
                                return Err(StreamError::Malformed);
                            }
                            // Looked at again from its `<` when more bytes came (at most
                            // MAX_DECLARATION bytes each time).
                            self.scanned = self.start;
                            self.state = State::Text;
                            return self.incomplete();
                        };
                        self.scanned += end + 2;
                        self.drain_to(self.scanned);
                        self.state = State::Text;
                    }
                    b'!' if self.depth > 0 => self.state = State::Bang(0),
                    b'!' | b'?' => return Err(StreamError::Malformed),
                    _ => {
                        self.state = State::Tag {
                            closing: false,
                            quote: None,
                            slash: false,
                        }
                    }
                },
                State::Tag {
                    closing,
                    quote,
                    slash,
                } => match (quote, b) {
                    (Some(q), _) if b == q => {
                        self.state = State::Tag {
                            closing,
                            quote: None,
                            slash: false,
                        }
                    }
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => {
                        self.state = State::Tag {
                            closing,
                            quote: Some(b),
                            slash: false,
                        }
                    }
                    (None, b'>') => {
                        self.state = State::Text;
                        if let Some(e) = self.tag_end(closing, slash)? {
                            return Ok(Some(e));
                        }
                    }
                    (None, _) => {
                        self.state = State::Tag {
                            closing,
                            quote: None,
                            slash: b == b'/',
                        }
                    }
                },
                State::Bang(n) => {
                    if CDATA_OPEN.get(n) != Some(&b) {
                        // A comment or a DTD: RFC 6120 §11.1.
                        return Err(StreamError::Malformed);
                    }
                    self.state = if n + 1 == CDATA_OPEN.len() {
                        State::Cdata(0)
                    } else {
                        State::Bang(n + 1)
                    };
                }
                State::Cdata(n) => {
                    self.state = if CDATA_CLOSE.get(n) == Some(&b) {
                        if n + 1 == CDATA_CLOSE.len() {
                            State::Text
                        } else {
                            State::Cdata(n + 1)
                        }
                    } else if b == b']' {
                        // `]]]>` still ends it: the last two `]` count.
                        State::Cdata(if n >= 1 { 2 } else { 1 })
                    } else {
                        State::Cdata(0)
                    };
                }
            }
        }
        self.incomplete()
    }

    /// A tag ended at `self.scanned`.
    fn tag_end(&mut self, closing: bool, self_closing: bool) -> Result<Option<Event>, StreamError> {
        let end = self.scanned;
        if !self.opened {
            // The first tag is the stream's: it stays open.
            if closing || self_closing || self.depth != 0 {
                return Err(StreamError::Malformed);
            }
            let tag = text(&self.buf[self.start..end])?;
            if !tag.starts_with("<stream:stream") {
                return Err(StreamError::Malformed);
            }
            self.opened = true;
            self.drain_to(end);
            return Ok(Some(Event::Open(tag)));
        }
        if closing {
            if self.depth == 0 {
                // The stream's own end.
                self.drain_to(end);
                return Ok(Some(Event::Close));
            }
            self.depth -= 1;
        } else if !self_closing {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(StreamError::TooDeep);
            }
        }
        if self.depth == 0 {
            let stanza = text(&self.buf[self.start..end])?;
            self.drain_to(end);
            return Ok(Some(Event::Stanza(stanza)));
        }
        Ok(None)
    }

    /// Nothing whole yet: within the bound, or the stanza is too large.
    fn incomplete(&self) -> Result<Option<Event>, StreamError> {
        if self.buf.len().saturating_sub(self.start) > MAX_STANZA && self.depth > 0 {
            return Err(StreamError::TooLarge);
        }
        Ok(None)
    }

    /// The bytes before `end` are done with (handed out or skipped): dropped at the next push.
    fn drain_to(&mut self, end: usize) {
        self.consumed = end;
        self.start = end;
    }
}

/// Parses a stanza [`Splitter`] handed out within the bounds of a small document, the stream's
/// namespaces in scope (the default `jabber:client`, the `stream` prefix: RFC 6120 §4.8), and
/// gives its element to `f` (`Ok(None)`: no element).
pub fn with_element<R>(
    stanza: &str,
    f: impl FnOnce(roxmltree::Node<'_, '_>) -> R,
) -> Result<Option<R>, crate::soap::ParseError> {
    let wrapped = format!(
        "<s xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>{stanza}</s>"
    );
    let limits = crate::soap::Limits {
        max_bytes: MAX_STANZA + 128,
        max_nodes: 4096,
        ..crate::soap::Limits::default()
    };
    let doc = crate::soap::bounded_xml(wrapped.as_bytes(), &limits)?;
    Ok(doc.root_element().first_element_child().map(f))
}

fn text(bytes: &[u8]) -> Result<String, StreamError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StreamError::Malformed)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All events from `chunks` fed one after the other.
    fn events(chunks: &[&[u8]]) -> Result<Vec<Event>, StreamError> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c)?;
            while let Some(e) = s.next_event()? {
                out.push(e);
            }
        }
        Ok(out)
    }

    const STREAM: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x' from='example.test' version='1.0'>\
        <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
        </stream:features> \n <iq type='set' id='a>b' from=\"acs@example.test/x\"><connectionRequest \
        xmlns='urn:broadband-forum-org:cwmp:xmppConnReq-1-0'><username>u</username><password>p&amp;&gt;</password>\
        </connectionRequest></iq></stream:stream>";

    #[test]
    fn a_stream_is_cut_into_its_stanzas_whatever_the_chunks() {
        let whole = events(&[STREAM.as_bytes()]).unwrap();
        assert_eq!(whole.len(), 4, "{whole:#?}");
        assert!(matches!(&whole[0], Event::Open(t) if t.contains("id='x'")));
        assert!(
            matches!(&whole[1], Event::Stanza(t) if t.starts_with("<stream:features>") && t.ends_with("</stream:features>"))
        );
        assert!(matches!(&whole[2], Event::Stanza(t) if t.contains("a>b") && t.ends_with("</iq>")));
        assert_eq!(whole[3], Event::Close);
        // A byte at a time: the same events.
        let bytes: Vec<&[u8]> = STREAM.as_bytes().chunks(1).collect();
        assert_eq!(events(&bytes).unwrap(), whole);
        let sevens: Vec<&[u8]> = STREAM.as_bytes().chunks(7).collect();
        assert_eq!(events(&sevens).unwrap(), whole);
    }

    #[test]
    fn what_rfc_6120_forbids_and_the_bounds_are_refused() {
        let open = "<stream:stream xmlns='jabber:client'>";
        for bad in [
            format!("{open}<!-- c --><iq/>"),
            format!("{open}<?pi?>"),
            format!("{open}<!DOCTYPE x>"),
            format!("{open}text"),
            "<iq/>".to_string(),
        ] {
            assert_eq!(
                events(&[bad.as_bytes()]),
                Err(StreamError::Malformed),
                "{bad}"
            );
        }
        let deep = format!("{open}{}", "<a>".repeat(MAX_DEPTH + 1));
        assert_eq!(events(&[deep.as_bytes()]), Err(StreamError::TooDeep));
        let mut s = Splitter::new();
        s.push(open.as_bytes()).unwrap();
        assert!(matches!(s.next_event(), Ok(Some(Event::Open(_)))));
        s.push(b"<message>").unwrap();
        let chunk = vec![b'a'; 4096];
        let mut err = None;
        for _ in 0..40 {
            if let Err(e) = s.push(&chunk).and_then(|()| s.next_event().map(|_| ())) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(StreamError::TooLarge));
        // Whitespace keep-alives between stanzas are fine; a restart forgets the old stream.
        let mut s = Splitter::new();
        s.push(format!("{open}  \n <presence/>").as_bytes())
            .unwrap();
        assert!(matches!(s.next_event(), Ok(Some(Event::Open(_)))));
        assert_eq!(
            s.next_event(),
            Ok(Some(Event::Stanza("<presence/>".into())))
        );
        s.restart();
        s.push(open.as_bytes()).unwrap();
        assert!(matches!(s.next_event(), Ok(Some(Event::Open(_)))));
        // A comment inside a stanza; an XML declaration that never ends.
        let comment = format!("{open}<iq><!-- x --></iq>");
        assert_eq!(events(&[comment.as_bytes()]), Err(StreamError::Malformed));
        let decl = format!("<?xml {}", " ".repeat(300));
        assert_eq!(events(&[decl.as_bytes()]), Err(StreamError::Malformed));
    }

    #[test]
    fn cdata_whitespace_and_many_stanzas() {
        let open = "<stream:stream xmlns='jabber:client'>";
        let cdata =
            format!("{open}<message><body><![CDATA[a <b> ]]] c]]></body></message><presence/>");
        let got = events(&[cdata.as_bytes()]).unwrap();
        assert!(
            matches!(&got[1], Event::Stanza(t) if t.ends_with("</message>")),
            "{got:#?}"
        );
        assert_eq!(got[2], Event::Stanza("<presence/>".into()));
        let bytes: Vec<&[u8]> = cdata.as_bytes().chunks(1).collect();
        assert_eq!(events(&bytes).unwrap(), got);
        // Keep-alive whitespace for ever does not fill the buffer.
        let mut s = Splitter::new();
        s.push(open.as_bytes()).unwrap();
        s.next_event().unwrap();
        for _ in 0..200_000 {
            s.push(b" ").unwrap();
            assert_eq!(s.next_event(), Ok(None));
        }
        // Many small stanzas in reads of 4 KiB: all of them, in order.
        let many = format!("{open}{}", "<presence/>".repeat(10_000));
        let reads: Vec<&[u8]> = many.as_bytes().chunks(4096).collect();
        assert_eq!(events(&reads).unwrap().len(), 10_001);
    }
}
