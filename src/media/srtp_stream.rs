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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::{MASTER_LEN, MasterKey, Suite};

    fn keys(send: u8, receive: u8) -> SrtpKeys {
        SrtpKeys {
            tag: 1,
            suite: Suite::AesCm128HmacSha1_80,
            send: MasterKey::new([send; MASTER_LEN]),
            receive: MasterKey::new([receive; MASTER_LEN]),
        }
    }

    fn packet(stream: &mut SrtpStream, seq: u16) -> Vec<u8> {
        let mut buf = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4];
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&[0xd5; 160]);
        let len = buf.len();
        buf.resize(len + 10, 0);
        let len = stream.protect_rtp(&mut buf, len).unwrap();
        buf.truncate(len);
        buf
    }

    #[test]
    fn both_ends_talk_and_a_rekey_keeps_an_unchanged_direction() {
        let mut us = SrtpStream::new(keys(1, 2));
        let mut them = SrtpStream::new(keys(2, 1));
        let mut p = packet(&mut us, 100);
        let plain = them.unprotect(Kind::Rtp, &mut p).map(<[u8]>::to_vec).unwrap();
        assert_eq!(plain.len(), 172);
        assert_eq!(plain[12..], [0xd5; 160]);
        // RTCP both ways.
        let report = [0x81, 0xc8, 0, 1, 9, 9, 9, 9];
        let mut sealed = them.protect_rtcp(&report).unwrap();
        assert_eq!(us.unprotect(Kind::Rtcp, &mut sealed), Some(&report[..]));
        // A refresh with the same keys keeps the replay window: the old packet stays refused.
        them.rekey(keys(2, 1));
        let mut again = packet(&mut SrtpStream::new(keys(1, 2)), 100);
        assert_eq!(them.unprotect(Kind::Rtp, &mut again), None, "replayed");
        // A new key from the peer: its packets verify, ones under the old key do not.
        them.rekey(keys(2, 7));
        let mut old_key = packet(&mut us, 101);
        assert_eq!(them.unprotect(Kind::Rtp, &mut old_key), None);
        let mut new_key = packet(&mut SrtpStream::new(keys(7, 2)), 101);
        assert!(them.unprotect(Kind::Rtp, &mut new_key).is_some());
    }
}
