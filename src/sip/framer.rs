//! Framing SIP messages out of a TCP byte stream by Content-Length (RFC 3261 §18.3),
//! with RFC 5626 CRLF keep-alives. Sans-IO: bytes in, whole messages out.
//!
//! Cost is linear in the bytes received, however they are split: the search for the end
//! of the header section resumes where the previous read left it, the header section is
//! read once, and consumed bytes are released in bulk rather than shifted per message.

use super::message::{Limits, MessageError};
use super::normalise::canonical_name;

/// One unit taken off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// One whole message (header section and exactly Content-Length body bytes).
    Message(Vec<u8>),
    /// A "\r\n\r\n" keep-alive ping; answer with "\r\n" (pong).
    Ping,
}

/// Consumed bytes are released once they pass this many and half the buffer, so that
/// many small messages in one read are not each followed by a shift of the rest.
const COMPACT_AFTER: usize = 4096;

/// Frames messages out of a byte stream. After an error the stream is out of step and
/// unusable: further calls return `None` and pushed bytes are dropped.
#[derive(Debug)]
pub struct StreamFramer {
    limits: Limits,
    buf: Vec<u8>,
    /// Start of the current (unfinished) message in `buf`; bytes before it are consumed.
    start: usize,
    /// How far past `start` the header-end search has looked without finding it.
    scanned: usize,
    /// Once the header section is complete: the message's length from `start`.
    message_len: Option<usize>,
    failed: bool,
    /// Bytes the header-end search has examined, over the framer's life.
    scan_work: u64,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            limits,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            message_len: None,
            failed: false,
            scan_work: 0,
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True while a message has begun (a byte other than a keep-alive line end is held)
    /// but is not complete: the state a slow sender keeps a connection in.
    pub fn in_message(&self) -> bool {
        // `next_message` leaves at most three line-end bytes before a message's first byte.
        !self.failed && self.pending().iter().take(4).any(|&b| b != b'\r' && b != b'\n')
    }

    /// Next whole message; Err means the stream is unusable (close the connection).
    pub fn next_message(&mut self) -> Option<Result<Framed, MessageError>> {
        if self.failed {
            return None;
        }
        match self.try_next() {
            Ok(next) => next.map(Ok),
            Err(e) => {
                self.failed = true;
                self.buf = Vec::new();
                self.start = 0;
                Some(Err(e))
            }
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Marks `n` bytes from `start` as taken (a message, a ping or a stray line end).
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        self.scanned = 0;
        self.message_len = None;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > COMPACT_AFTER && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    fn try_next(&mut self) -> Result<Option<Framed>, MessageError> {
        let total = match self.message_len {
            Some(total) => total,
            None => {
                // Keep-alives and stray line ends between messages.
                loop {
                    let rest = self.pending();
                    if rest.starts_with(b"\r\n\r\n") {
                        self.consume(4);
                        return Ok(Some(Framed::Ping));
                    }
                    match rest {
                        [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                        [b'\r', b'\n', ..] => self.consume(2),
                        [b'\n', ..] => self.consume(1),
                        _ => break,
                    }
                }
                let Some(total) = self.find_message_len()? else {
                    return Ok(None);
                };
                self.message_len = Some(total);
                total
            }
        };
        if self.buffered() < total {
            return Ok(None);
        }
        let message = self.buf[self.start..self.start + total].to_vec();
        self.consume(total);
        Ok(Some(Framed::Message(message)))
    }

    /// The whole message's length once its header section is complete, reading on from
    /// where the last search stopped.
    fn find_message_len(&mut self) -> Result<Option<usize>, MessageError> {
        let from = self.scanned;
        let found = header_end(self.pending(), from);
        let held = self.buffered();
        self.scan_work += found.unwrap_or(held).saturating_sub(from) as u64;
        let Some(body_start) = found else {
            // An LF in the last two bytes may yet start the empty line: look again there.
            self.scanned = held.saturating_sub(2);
            if held > self.limits.max_message_bytes {
                return Err(MessageError::TooLarge);
            }
            return Ok(None);
        };
        // A header section past the size bound is too large however the stream was split
        // (read in pieces, it fails the bound before its end arrives).
        if body_start > self.limits.max_message_bytes {
            return Err(MessageError::TooLarge);
        }
        let length = content_length(&self.pending()[..body_start], &self.limits)?;
        let total = body_start
            .checked_add(length)
            .filter(|t| *t <= self.limits.max_message_bytes)
            .ok_or(MessageError::TooLarge)?;
        if length > self.limits.max_body_bytes {
            return Err(MessageError::BodyTooLarge);
        }
        Ok(Some(total))
    }
}

/// Index just past the empty line that ends the header section (CRLF CRLF, or LF LF),
/// searching from `from`.
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let lf = i + off;
        let next = lf + 1;
        match buf.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// The single Content-Length of a header section; mandatory on streams (RFC 3261 §18.3).
fn content_length(head: &[u8], limits: &Limits) -> Result<usize, MessageError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > limits.max_line_len {
            return Err(MessageError::LineTooLong);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        if canonical_name(name.trim_end_matches([' ', '\t'])) != "Content-Length" {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..])
            .map_err(|_| MessageError::BadContentLength)?
            .trim_matches([' ', '\t']);
        if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessageError::BadContentLength);
        }
        let n: usize = value.parse().map_err(|_| MessageError::BadContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(MessageError::BadContentLength);
        }
        found = Some(n);
    }
    found.ok_or(MessageError::MissingHeader("Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(&MSG[..10]);
        assert_eq!(f.next_message(), None);
        f.push(&MSG[10..]);
        f.push(MSG);
        f.push(b"OPT");
        assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
        assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
        assert_eq!(f.next_message(), None);
        assert_eq!(f.buffered(), 3);
    }

    #[test]
    fn keepalive_ping_and_stray_crlf() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_message(), Some(Ok(Framed::Ping)));
        f.push(b"\r\n");
        assert_eq!(f.next_message(), None);
        f.push(MSG);
        assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
    }

    #[test]
    fn errors_poison_the_stream() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx");
        assert_eq!(f.next_message(), Some(Err(MessageError::BadContentLength)));
        f.push(MSG);
        assert_eq!(f.next_message(), None);

        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_message(), Some(Err(MessageError::MissingHeader("Content-Length"))));
    }

    #[test]
    fn size_is_bounded_without_a_header_end() {
        let limits = Limits { max_message_bytes: 100, ..Limits::default() };
        let mut f = StreamFramer::new(limits);
        f.push(&[b'a'; 101]);
        assert_eq!(f.next_message(), Some(Err(MessageError::TooLarge)));

        let mut f = StreamFramer::new(limits);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4000000000\r\n\r\n");
        assert_eq!(f.next_message(), Some(Err(MessageError::TooLarge)));
    }

    /// A message of `len` bytes: a small header section, then padding in the body.
    fn message_of(len: usize) -> Vec<u8> {
        let head_without_length = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: ";
        let head_len = head_without_length.len() + 5 + 4;
        let body = len - head_len;
        let mut m = format!("{head_without_length}{body:05}\r\n\r\n").into_bytes();
        m.resize(len, b'x');
        m
    }

    /// A header section of `len` bytes made of short header lines.
    fn header_heavy(len: usize) -> Vec<u8> {
        let mut m = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n".to_vec();
        while m.len() + 30 < len {
            m.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        m.extend_from_slice(b"\r\n");
        m
    }

    #[test]
    fn a_message_sent_byte_by_byte_costs_linear_scanning() {
        let limits = Limits { max_headers: 4096, max_body_bytes: 65_535, ..Limits::default() };
        for message in [header_heavy(60_000), message_of(65_000)] {
            let mut f = StreamFramer::new(limits);
            let mut got = None;
            for (i, byte) in message.iter().enumerate() {
                f.push(std::slice::from_ref(byte));
                if let Some(framed) = f.next_message() {
                    assert_eq!(i, message.len() - 1, "framed early");
                    got = Some(framed);
                }
            }
            assert_eq!(got, Some(Ok(Framed::Message(message.clone()))));
            // Each byte is looked at a bounded number of times (the last two again on
            // the next read), never the whole buffer per read.
            assert!(
                f.scan_work <= 3 * message.len() as u64,
                "{} bytes scanned for a {}-byte message",
                f.scan_work,
                message.len()
            );
        }
    }

    #[test]
    fn many_small_messages_and_pings_in_one_read_are_taken_in_order() {
        let mut stream = Vec::new();
        for _ in 0..2000 {
            stream.extend_from_slice(MSG);
            stream.extend_from_slice(b"\r\n\r\n");
        }
        let mut f = StreamFramer::new(Limits::default());
        f.push(&stream);
        for _ in 0..2000 {
            assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
            assert_eq!(f.next_message(), Some(Ok(Framed::Ping)));
        }
        assert_eq!(f.next_message(), None);
        assert_eq!(f.buffered(), 0);
        assert!(f.scan_work <= 2 * stream.len() as u64, "{}", f.scan_work);
    }

    #[test]
    fn the_header_end_is_found_across_reads_in_every_split() {
        for split in 1..MSG.len() {
            for second in split..MSG.len() {
                let mut f = StreamFramer::new(Limits::default());
                for part in [&MSG[..split], &MSG[split..second], &MSG[second..]] {
                    f.push(part);
                    if f.buffered() < MSG.len() {
                        assert_eq!(f.next_message(), None, "split {split}/{second}");
                    }
                }
                assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
            }
        }
    }

    #[test]
    fn in_message_tells_a_started_message_from_keepalives() {
        let mut f = StreamFramer::new(Limits::default());
        assert!(!f.in_message());
        f.push(b"\r\n\r");
        assert_eq!(f.next_message(), None);
        assert!(!f.in_message());
        f.push(b"\nOPT");
        assert_eq!(f.next_message(), Some(Ok(Framed::Ping)));
        assert_eq!(f.next_message(), None);
        assert!(f.in_message());
        f.push(&MSG[3..]);
        assert_eq!(f.next_message(), Some(Ok(Framed::Message(MSG.to_vec()))));
        assert!(!f.in_message());
    }

    #[test]
    fn a_body_over_its_own_bound_is_refused_before_it_arrives() {
        let limits = Limits { max_body_bytes: 1000, ..Limits::default() };
        let mut f = StreamFramer::new(limits);
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 1001\r\n\r\n");
        assert_eq!(f.next_message(), Some(Err(MessageError::BodyTooLarge)));
    }

    #[test]
    fn any_split_of_a_mixed_stream_frames_the_same_units() {
        use rand::{Rng, SeedableRng};
        let big = message_of(9_000);
        let units: Vec<Framed> = (0..60)
            .map(|i| match i % 4 {
                0 => Framed::Message(MSG.to_vec()),
                1 => Framed::Ping,
                2 => Framed::Message(big.clone()),
                _ => Framed::Message(b"BYE sip:a@b SIP/2.0\nContent-Length: 0\n\n".to_vec()),
            })
            .collect();
        let mut stream = Vec::new();
        for unit in &units {
            match unit {
                Framed::Message(m) => stream.extend_from_slice(m),
                Framed::Ping => stream.extend_from_slice(b"\r\n\r\n"),
            }
        }
        let limits = Limits { max_body_bytes: 65_535, ..Limits::default() };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let mut f = StreamFramer::new(limits);
            let mut got = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let n = rng.random_range(1..=(stream.len() - at).min(12_000));
                f.push(&stream[at..at + n]);
                at += n;
                while let Some(unit) = f.next_message() {
                    got.push(unit.expect("well-formed stream"));
                }
            }
            assert_eq!(got, units);
            assert_eq!(f.buffered(), 0);
        }
    }

    /// Found by the `stream_framer` fuzz target (RFC 4475 `longreq` under small limits):
    /// a header section longer than the size bound, with a line longer than the line
    /// bound, gave `LineTooLong` when it arrived whole but `TooLarge` in pieces.
    #[test]
    fn an_oversized_header_section_fails_the_same_whole_or_in_pieces() {
        let limits = Limits { max_message_bytes: 100, max_line_len: 40, ..Limits::default() };
        let message = format!("OPTIONS sip:a@b SIP/2.0\r\nX: {}\r\nl: 0\r\n\r\n", "y".repeat(90));
        let mut whole = StreamFramer::new(limits);
        whole.push(message.as_bytes());
        assert_eq!(whole.next_message(), Some(Err(MessageError::TooLarge)));
        let mut pieces = StreamFramer::new(limits);
        let mut got = None;
        for chunk in message.as_bytes().chunks(7) {
            pieces.push(chunk);
            if let Some(next) = pieces.next_message() {
                got = Some(next);
                break;
            }
        }
        assert_eq!(got, Some(Err(MessageError::TooLarge)));
    }
}
