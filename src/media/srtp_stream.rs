//! One call's SRTP state in the media worker: the contexts for what we send and what we
//! receive, rebuilt only when a re-INVITE brings a new key for that direction (RFC 4568
//! §7.1.4: an unchanged key keeps its rollover counter and replay window).
//!
//! Metric: `srtp_unprotect_failures_total{kind, reason}`: received SRTP or SRTCP dropped
//! because it did not authenticate, was replayed, or could not be read.

use crate::srtp::{SrtpError, SrtpKeys, SrtpReceiver, SrtpSender};

pub(crate) struct SrtpStream {
    keys: SrtpKeys,
    sender: SrtpSender,
    receiver: SrtpReceiver,
}

/// Which socket a packet came in on, for the metric.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Rtp,
    Rtcp,
}

impl SrtpStream {
    pub fn new(keys: SrtpKeys) -> SrtpStream {
        SrtpStream {
            sender: SrtpSender::new(keys.suite, &keys.send),
            receiver: SrtpReceiver::new(keys.suite, &keys.receive),
            keys,
        }
    }

    /// New keys from a re-INVITE or UPDATE; a direction whose key is unchanged keeps its
    /// context.
    pub fn rekey(&mut self, keys: SrtpKeys) {
        if keys.suite != self.keys.suite || keys.send != self.keys.send {
            self.sender = SrtpSender::new(keys.suite, &keys.send);
        }
        if keys.suite != self.keys.suite || keys.receive != self.keys.receive {
            self.receiver = SrtpReceiver::new(keys.suite, &keys.receive);
        }
        self.keys = keys;
    }

    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.sender.protect_rtp(buf, len)
    }

    /// An SRTCP packet made from the RTCP `packet`.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + crate::srtp::RTCP_OVERHEAD, 0);
        let len = self.sender.protect_rtcp(&mut buf, packet.len())?;
        buf.truncate(len);
        Ok(buf)
    }

    /// The plain packet at the start of `packet`, or `None` (counted) when it must be
    /// dropped.
    pub fn unprotect<'a>(&mut self, kind: Kind, packet: &'a mut [u8]) -> Option<&'a [u8]> {
        let result = match kind {
            Kind::Rtp => self.receiver.unprotect_rtp(packet),
            Kind::Rtcp => self.receiver.unprotect_rtcp(packet),
        };
        match result {
            Ok(len) => packet.get(..len),
            Err(err) => {
                let kind = match kind {
                    Kind::Rtp => "rtp",
                    Kind::Rtcp => "rtcp",
                };
                metrics::counter!("srtp_unprotect_failures_total", "kind" => kind, "reason" => err.label())
                    .increment(1);
                None
            }
        }
    }
}
