//! A scripted SIP phone over UDP: sends an INVITE written as a template (see
//! `tests/corpus/phones/README.md`), then the call's ACK and BYE, and reads what comes back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsip::headers::UntypedHeader;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use zendesk_ivr::sip::header_text;
use zendesk_ivr::sip::message::{Limits, parse};

use super::free_port_pair;

/// Fills a template: placeholders, LF → CRLF, `{len}` last.
pub fn fill(template: &str, vars: &HashMap<&str, String>) -> String {
    let mut text = template.to_owned();
    for (key, value) in vars {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let body = body.replace('\n', "\r\n");
    let head = head.replace('\n', "\r\n").replace("{len}", &body.len().to_string());
    format!("{head}\r\n\r\n{body}")
}

/// The value of the first header `name` (full or compact form) of a message text.
pub fn header(message: &str, names: &[&str]) -> Option<String> {
    message.split("\r\n\r\n").next()?.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        names.iter().any(|n| n.eq_ignore_ascii_case(name.trim())).then(|| value.trim().to_owned())
    })
}

pub struct Phone {
    pub sip: UdpSocket,
    pub rtp: Arc<UdpSocket>,
    pub vars: HashMap<&'static str, String>,
    pub ivr: SocketAddr,
    /// Every message received, as text, in order.
    pub received: Vec<String>,
}

/// A response as read back: its text, status and the parsed message.
pub struct Reply {
    pub text: String,
    pub status: u16,
    pub response: rsip::Response,
}

impl Reply {
    pub fn cseq_method(&self) -> String {
        header(&self.text, &["CSeq"])
            .and_then(|c| c.split_whitespace().nth(1).map(str::to_owned))
            .unwrap_or_default()
    }
}

impl Phone {
    pub async fn new(ivr: SocketAddr, call_id: &str) -> Phone {
        let sip = UdpSocket::bind("127.0.0.1:0").await.expect("bind SIP socket");
        let rtp_port = free_port_pair();
        let rtp =
            Arc::new(UdpSocket::bind(("127.0.0.1", rtp_port)).await.expect("bind RTP socket"));
        let mut vars = HashMap::new();
        vars.insert("ip", "127.0.0.1".to_owned());
        vars.insert("port", sip.local_addr().expect("addr").port().to_string());
        vars.insert("ivr", ivr.to_string());
        vars.insert("rtp", rtp_port.to_string());
        vars.insert("rtcp", (rtp_port + 1).to_string());
        vars.insert("video", free_port_pair().to_string());
        vars.insert("call_id", call_id.to_owned());
        Phone { sip, rtp, vars, ivr, received: Vec::new() }
    }

    pub async fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.ivr).await.expect("send");
    }

    /// A template filled with this phone's values and a fresh branch.
    pub fn fill(&mut self, template: &str) -> String {
        self.vars.insert("branch", format!("z9hG4bK{:016x}", rand_u64()));
        fill(template, &self.vars)
    }

    /// The next response within `within`, or `None`.
    pub async fn next_reply(&mut self, within: Duration) -> Option<Reply> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sip.recv_from(&mut buf))
                .await
                .ok()?
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.received.push(text.clone());
            let Ok(rsip::SipMessage::Response(response)) = parse(&buf[..n], &Limits::default())
            else {
                continue;
            };
            let status = response.status_code.code();
            return Some(Reply { text, status, response });
        }
    }

    /// Responses until a final one for `method`, within `within` in all.
    pub async fn final_reply(&mut self, method: &str, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.next_reply(left).await.unwrap_or_else(|| {
                panic!("no final response to {method}; received:\n{}", self.received.join("\n"))
            });
            if reply.status >= 200 && reply.cseq_method() == method {
                return reply;
            }
        }
    }

    /// The ACK (or BYE) for a call set up by `invite` and answered by `ok`: the INVITE's
    /// Via host, From, Contact and User-Agent, the 200's To, and its Contact as target.
    pub fn in_dialog(&mut self, invite: &str, ok: &Reply, method: &str, cseq: u32) -> String {
        let target = ok
            .response
            .headers
            .iter()
            .find_map(|h| match h {
                rsip::Header::Contact(c) => Some(header_text::uri_part(c.value()).to_owned()),
                _ => None,
            })
            .expect("200 has a Contact");
        let to = header(&ok.text, &["To", "t"]).expect("200 has To");
        let from = header(invite, &["From", "f"]).expect("INVITE has From");
        let call_id = header(invite, &["Call-ID", "i"]).expect("INVITE has Call-ID");
        let mut text = format!(
            "{method} {target} SIP/2.0\n\
             Via: SIP/2.0/UDP {{ip}}:{{port}};branch={{branch}};rport\n\
             Max-Forwards: 70\n\
             From: {from}\nTo: {to}\nCall-ID: {call_id}\nCSeq: {cseq} {method}\n"
        );
        if let Some(contact) = header(invite, &["Contact", "m"]) {
            text.push_str(&format!("Contact: {contact}\n"));
        }
        if let Some(agent) = header(invite, &["User-Agent"]) {
            text.push_str(&format!("User-Agent: {agent}\n"));
        }
        text.push_str("Content-Length: {len}\n\n");
        self.fill(&text)
    }
}

/// A random number for branches and Call-IDs.
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}
