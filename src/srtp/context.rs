//! One direction of one call: protect what we send, unprotect what we receive.

use aes::Aes128;
use aes::cipher::{InnerIvInit, StreamCipher, StreamCipherCoreWrapper};
use hmac::Mac;
use subtle::ConstantTimeEq;

use super::kdf::{Labels, SessionKeys};
use super::replay::ReplayWindow;
use super::{MASTER_SALT_LEN, MasterKey, SrtpError, Suite};

type CtrCore = ctr::CtrCore<Aes128, ctr::flavors::Ctr128BE>;

/// Most SSRCs whose rollover counter and replay windows are kept per direction. A peer
/// sends one or two (some send telephone events from a second SSRC). When a new SSRC
/// authenticates and all slots are taken, the least recently authenticated SSRC makes
/// room: the SSRC in use right now always keeps its state, while a peer that moves to a
/// new SSRC (a re-INVITE, a PBX switching legs) is still heard. Only authenticated
/// packets take or refresh a slot, so a forger cannot evict anyone.
const MAX_SSRCS: usize = 4;

/// Length of the SRTCP E flag and index word.
const SRTCP_INDEX_LEN: usize = 4;
const E_FLAG: u32 = 0x8000_0000;

/// Protects the RTP and RTCP we send with our master key.
pub struct SrtpSender {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Streams,
    /// The next SRTCP index (31 bits).
    rtcp_index: u32,
}

/// Unprotects the RTP and RTCP we receive with the peer's master key.
pub struct SrtpReceiver {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Streams,
}

/// Per SSRC: the RTP index state (once an RTP packet of it was protected or
/// authenticated) and the SRTCP replay window, kept apart so that SRTCP never makes up
/// an RTP sequence number.
#[derive(Clone, Copy)]
struct SsrcState {
    ssrc: u32,
    rtp: Option<RtpIndex>,
    rtcp_window: ReplayWindow,
    /// When this SSRC last authenticated a packet, in [`Streams::clock`] ticks.
    last_used: u64,
}

impl SsrcState {
    fn new(ssrc: u32) -> SsrcState {
        SsrcState { ssrc, rtp: None, rtcp_window: ReplayWindow::default(), last_used: 0 }
    }
}

/// Rollover counter, highest sequence number and replay window of one SSRC's RTP.
#[derive(Clone, Copy)]
struct RtpIndex {
    roc: u32,
    highest_seq: u16,
    window: ReplayWindow,
}

impl RtpIndex {
    /// The state before the first packet, whose sequence number is `seq` (ROC 0).
    fn starting_at(seq: u16) -> RtpIndex {
        RtpIndex { roc: 0, highest_seq: seq, window: ReplayWindow::default() }
    }

    /// The rollover counter that `seq` most likely belongs to (RFC 3711 Appendix A), or
    /// `None` when that would be the one before ROC 0: such a packet is older than the
    /// stream, never a packet of ROC 2^32-1.
    fn estimate_roc(&self, seq: u16) -> Option<u32> {
        let s_l = self.highest_seq;
        if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 { self.roc.checked_sub(1) } else { Some(self.roc) }
        } else if seq < s_l - 0x8000 {
            Some(self.roc.wrapping_add(1))
        } else {
            Some(self.roc)
        }
    }

    /// Moves the highest index on once a packet with `(roc, seq)` was accepted.
    fn advance(&mut self, roc: u32, seq: u16) {
        if roc == self.roc.wrapping_add(1) {
            self.roc = roc;
            self.highest_seq = seq;
        } else if roc == self.roc && seq > self.highest_seq {
            self.highest_seq = seq;
        }
    }
}

#[derive(Default)]
struct Streams {
    states: Vec<SsrcState>,
    /// Counts stored packets; orders SSRCs by when they last authenticated one.
    clock: u64,
}

impl Streams {
    fn find(&self, ssrc: u32) -> SsrcState {
        self.states.iter().find(|s| s.ssrc == ssrc).copied().unwrap_or(SsrcState::new(ssrc))
    }

    /// Keeps `state` after one of its packets was protected or authenticated.
    fn store(&mut self, mut state: SsrcState) {
        self.clock += 1;
        state.last_used = self.clock;
        if let Some(slot) = self.states.iter_mut().find(|s| s.ssrc == state.ssrc) {
            *slot = state;
            return;
        }
        if self.states.len() >= MAX_SSRCS {
            let least_recent =
                self.states.iter().enumerate().min_by_key(|(_, s)| s.last_used).map(|(i, _)| i);
            if let Some(i) = least_recent {
                self.states.swap_remove(i);
            }
        }
        self.states.push(state);
    }
}

impl SrtpSender {
    pub fn new(suite: Suite, key: &MasterKey) -> SrtpSender {
        SrtpSender {
            suite,
            rtp: SessionKeys::derive(key, Labels::Rtp),
            rtcp: SessionKeys::derive(key, Labels::Rtcp),
            streams: Streams::default(),
            rtcp_index: 0,
        }
    }

    /// Encrypts the RTP packet in `buf[..len]` and appends its tag; returns the SRTP
    /// packet's length. `buf` needs room for the tag after `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let packet = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let (header_len, seq, ssrc) = rtp_header(packet)?;
        if buf.len() < len + tag_len {
            return Err(SrtpError::NoRoom);
        }
        let mut state = self.streams.find(ssrc);
        let mut rtp = state.rtp.unwrap_or(RtpIndex::starting_at(seq));
        // Our own sequence numbers only go forward; one from before the stream's start
        // still belongs to ROC 0.
        let roc = rtp.estimate_roc(seq).unwrap_or(rtp.roc);
        let index = (u64::from(roc) << 16) | u64::from(seq);
        keystream(&self.rtp, ssrc, index).apply_keystream(&mut buf[header_len..len]);
        let tag = rtp_tag(&self.rtp, &buf[..len], roc);
        buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
        rtp.advance(roc, seq);
        state.rtp = Some(rtp);
        self.streams.store(state);
        Ok(len + tag_len)
    }

    /// Encrypts the RTCP compound packet in `buf[..len]`, appends E flag, index and tag;
    /// returns the SRTCP packet's length ([`super::RTCP_OVERHEAD`] more).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        let packet = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let ssrc = rtcp_ssrc(packet)?;
        let total = len + SRTCP_INDEX_LEN + tag_len;
        if buf.len() < total {
            return Err(SrtpError::NoRoom);
        }
        let index = self.rtcp_index;
        self.rtcp_index = (index + 1) & !E_FLAG;
        keystream(&self.rtcp, ssrc, u64::from(index)).apply_keystream(&mut buf[8..len]);
        buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&(E_FLAG | index).to_be_bytes());
        let tag = hmac(&self.rtcp, &buf[..len + SRTCP_INDEX_LEN], None);
        buf[len + SRTCP_INDEX_LEN..total].copy_from_slice(&tag[..tag_len]);
        Ok(total)
    }
}

impl SrtpReceiver {
    pub fn new(suite: Suite, key: &MasterKey) -> SrtpReceiver {
        SrtpReceiver {
            suite,
            rtp: SessionKeys::derive(key, Labels::Rtp),
            rtcp: SessionKeys::derive(key, Labels::Rtcp),
            streams: Streams::default(),
        }
    }

    /// Checks and decrypts the SRTP packet that fills `packet`; returns the length of the
    /// RTP packet now at its start. On error nothing changes (not the packet's state, not
    /// ours).
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let len = packet.len().checked_sub(tag_len).ok_or(SrtpError::Malformed)?;
        let (header_len, seq, ssrc) = rtp_header(&packet[..len])?;
        let mut state = self.streams.find(ssrc);
        let mut rtp = state.rtp.unwrap_or(RtpIndex::starting_at(seq));
        let roc = rtp.estimate_roc(seq).ok_or(SrtpError::Replayed)?;
        let index = (u64::from(roc) << 16) | u64::from(seq);
        if !rtp.window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let tag = rtp_tag(&self.rtp, &packet[..len], roc);
        if !bool::from(tag[..tag_len].ct_eq(&packet[len..])) {
            return Err(SrtpError::AuthFailed);
        }
        keystream(&self.rtp, ssrc, index).apply_keystream(&mut packet[header_len..len]);
        rtp.window.accept(index);
        rtp.advance(roc, seq);
        state.rtp = Some(rtp);
        self.streams.store(state);
        Ok(len)
    }

    /// Checks and (when its E flag says so) decrypts the SRTCP packet that fills
    /// `packet`; returns the length of the RTCP compound packet now at its start.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        let authenticated = packet.len().checked_sub(tag_len).ok_or(SrtpError::Malformed)?;
        let len = authenticated.checked_sub(SRTCP_INDEX_LEN).ok_or(SrtpError::Malformed)?;
        let ssrc = rtcp_ssrc(&packet[..len])?;
        let mut word = [0u8; SRTCP_INDEX_LEN];
        word.copy_from_slice(&packet[len..authenticated]);
        let word = u32::from_be_bytes(word);
        let index = u64::from(word & !E_FLAG);
        let mut state = self.streams.find(ssrc);
        if !state.rtcp_window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let tag = hmac(&self.rtcp, &packet[..authenticated], None);
        if !bool::from(tag[..tag_len].ct_eq(&packet[authenticated..])) {
            return Err(SrtpError::AuthFailed);
        }
        if word & E_FLAG != 0 {
            keystream(&self.rtcp, ssrc, index).apply_keystream(&mut packet[8..len]);
        }
        state.rtcp_window.accept(index);
        self.streams.store(state);
        Ok(len)
    }
}

/// Header length, sequence number and SSRC of an RTP packet (RFC 3550 §5.1).
fn rtp_header(packet: &[u8]) -> Result<(usize, u16, u32), SrtpError> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let csrcs = usize::from(packet[0] & 0x0f);
    let mut header_len = 12 + 4 * csrcs;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(header_len + 2..header_len + 4).ok_or(SrtpError::Malformed)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if header_len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Ok((header_len, seq, ssrc))
}

/// The sender SSRC of an RTCP compound packet (its first packet's, RFC 3550 §6.4).
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    if packet.len() < 8 || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]))
}

/// AES-CM keystream for one packet: IV = salt·2^16 XOR SSRC·2^64 XOR index·2^16
/// (RFC 3711 §4.1.1).
fn keystream(keys: &SessionKeys, ssrc: u32, index: u64) -> ctr::Ctr128BE<Aes128> {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&keys.salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= i;
    }
    StreamCipherCoreWrapper::from_core(CtrCore::inner_iv_init(keys.cipher.clone(), &iv.into()))
}

/// HMAC-SHA1 over the packet and the rollover counter (RFC 3711 §4.2).
fn rtp_tag(keys: &SessionKeys, packet: &[u8], roc: u32) -> [u8; 20] {
    hmac(keys, packet, Some(roc))
}

fn hmac(keys: &SessionKeys, data: &[u8], roc: Option<u32>) -> [u8; 20] {
    let mut mac = keys.mac();
    mac.update(data);
    if let Some(roc) = roc {
        mac.update(&roc.to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}
