//! One RFC 3261 dialog as seen by the UAS: identifiers, route set, CSeq counters, and
//! the requests we send inside it.
//!
//! Routing is loose routing only (`lr`, RFC 3261 §16.12): the route set goes into Route
//! headers as is and the Request-URI is the remote target. Strict routers are not handled.

use std::net::SocketAddr;

use rsip::Header;

use crate::sip::header_text;
use crate::sip::message::Transport;
use crate::sip::response;
use crate::sip::transaction::Peer;

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our party (the To of the INVITE plus our tag), the From of our requests.
    pub local_party: String,
    /// The caller (the From of the INVITE), the To of our requests.
    pub remote_party: String,
    /// The peer's Contact URI: the Request-URI of our requests.
    pub remote_target: String,
    /// Record-Route entries in the INVITE's order (UAS view).
    pub route_set: Vec<String>,
    /// Next CSeq number we use (the UAS starts its own space).
    pub local_cseq: u32,
    /// Highest CSeq seen from the peer.
    pub remote_cseq: u32,
    /// Where the INVITE came from, and over which transport.
    pub source: Peer,
    /// The peer allows UPDATE (from its Allow header).
    pub peer_allows_update: bool,
}

/// What our requests need to know about us.
pub(crate) struct Local<'a> {
    pub host: &'a str,
    pub port: u16,
    pub contact: &'a str,
    pub user_agent: &'a str,
}

impl Dialog {
    /// The next hop: the first Route's host if it is an IP literal (with no route set,
    /// the remote target's), else where the INVITE came from (no DNS here). Transport from `;transport=`, else the
    /// INVITE's. Over TLS, always where the INVITE came from.
    pub fn next_hop(&self) -> Peer {
        let first = self
            .route_set
            .first()
            .map(|r| header_text::uri_part(r).to_string())
            .unwrap_or_else(|| self.remote_target.clone());
        let transport = match header_text::uri_param(&first, "transport") {
            Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            Some(t) if t.eq_ignore_ascii_case("udp") => Transport::Udp,
            Some(t) if t.eq_ignore_ascii_case("tls") => Transport::Tls,
            _ => self.source.transport,
        };
        // A route named by DNS name: the INVITE's source is that proxy in practice.
        let mut addr: SocketAddr = header_text::ip_host(&first).unwrap_or(self.source.addr);
        if transport == Transport::Tls && self.source.transport == Transport::Tls {
            // A TLS client seldom has a certificate to be called back on: requests in
            // the dialog go over the connection it came on (RFC 5923 §1).
            addr = self.source.addr;
        }
        Peer { addr, transport }
    }

    /// A new request in this dialog, taking the next local CSeq.
    pub fn request(
        &mut self,
        method: rsip::Method,
        local: &Local<'_>,
        branch: &str,
        extra: Vec<Header>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<rsip::Request, rsip::Error> {
        let cseq = self.local_cseq;
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.build(method, cseq, local, branch, extra, body)
    }

    /// An ACK for our INVITE with CSeq `cseq` (same number, new branch).
    pub fn ack(
        &self,
        cseq: u32,
        local: &Local<'_>,
        branch: &str,
    ) -> Result<rsip::Request, rsip::Error> {
        self.build(rsip::Method::Ack, cseq, local, branch, Vec::new(), None)
    }

    fn build(
        &self,
        method: rsip::Method,
        cseq: u32,
        local: &Local<'_>,
        branch: &str,
        extra: Vec<Header>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<rsip::Request, rsip::Error> {
        let uri = match crate::sip::message::uri_from_text(&self.remote_target) {
            Some(uri) => uri,
            None => rsip::Uri::try_from(self.remote_target.as_str())?,
        };
        let transport = self.next_hop().transport;
        let host = if local.host.contains(':') && !local.host.starts_with('[') {
            format!("[{}]", local.host)
        } else {
            local.host.to_string()
        };
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::from(format!(
            "SIP/2.0/{transport} {host}:{};branch={branch};rport",
            local.port
        ))));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::from("70".to_string())));
        for route in &self.route_set {
            headers.push(Header::Route(rsip::headers::Route::from(route.clone())));
        }
        headers.push(Header::From(rsip::headers::From::from(self.local_party.clone())));
        headers.push(Header::To(rsip::headers::To::from(self.remote_party.clone())));
        headers.push(Header::CallId(rsip::headers::CallId::from(self.call_id.clone())));
        headers.push(Header::CSeq(rsip::headers::CSeq::from(format!("{cseq} {method}"))));
        if !matches!(method, rsip::Method::Ack | rsip::Method::Bye) {
            headers.push(Header::Contact(rsip::headers::Contact::from(local.contact.to_string())));
        }
        for h in extra {
            headers.push(h);
        }
        if !local.user_agent.is_empty() {
            let agent = rsip::headers::UserAgent::from(local.user_agent.to_string());
            headers.push(Header::UserAgent(agent));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                headers.push(response::content_type(content_type));
                bytes
            }
            None => Vec::new(),
        };
        headers.push(Header::ContentLength(rsip::headers::ContentLength::from(
            body.len().to_string(),
        )));
        Ok(rsip::Request { method, uri, version: rsip::Version::V2, headers, body })
    }
}
