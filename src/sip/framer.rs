//! Framing SIP messages out of a TCP byte stream by Content-Length (RFC 3261 §18.3),
//! with RFC 5626 CRLF keep-alives. Sans-IO: bytes in, whole messages out.

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

/// Frames messages out of a byte stream. After an error the stream is out of step and
/// unusable: further calls return `None` and pushed bytes are dropped.
#[derive(Debug)]
pub struct StreamFramer {
    limits: Limits,
    buf: Vec<u8>,
    failed: bool,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        StreamFramer { limits, buf: Vec::new(), failed: false }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
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
                Some(Err(e))
            }
        }
    }

    fn try_next(&mut self) -> Result<Option<Framed>, MessageError> {
        // Keep-alives and stray line ends between messages.
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.drain(..4);
                return Ok(Some(Framed::Ping));
            }
            match self.buf.as_slice() {
                [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    self.buf.drain(..2);
                }
                [b'\n', ..] => {
                    self.buf.drain(..1);
                }
                _ => break,
            }
        }
        let Some(body_start) = header_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message_bytes {
                return Err(MessageError::TooLarge);
            }
            return Ok(None);
        };
        // A header section past the size bound is too large however the stream was split
        // (read in pieces, it fails the bound above before its end arrives).
        if body_start > self.limits.max_message_bytes {
            return Err(MessageError::TooLarge);
        }
        let head = &self.buf[..body_start];
        let length = content_length(head, &self.limits)?;
        let total = body_start
            .checked_add(length)
            .filter(|t| *t <= self.limits.max_message_bytes)
            .ok_or(MessageError::TooLarge)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let message = std::mem::replace(&mut self.buf, rest);
        Ok(Some(Framed::Message(message)))
    }
}

/// Index just past the empty line that ends the header section (CRLF CRLF, or LF LF).
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
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
