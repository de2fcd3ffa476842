//! Known-answer tests: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key derivation),
//! and libSRTP's `srtp_validate` packets (RTP with both tags, SRTCP), plus the receiver's
//! rollover, replay and forgery rules.

use hmac::Mac;

use super::context::{SrtpReceiver, SrtpSender};
use super::kdf::{Labels, SessionKeys, prf};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// RFC 3711 B.3 master key and salt (also libSRTP's test key).
fn master() -> MasterKey {
    let mut bytes = [0u8; MASTER_LEN];
    bytes.copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6"));
    MasterKey::new(bytes)
}

#[test]
fn rfc3711_b3_key_derivation() {
    let key = master();
    let mut cipher_key = [0u8; 16];
    prf(&key, 0x00, &mut cipher_key);
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    prf(&key, 0x02, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 94];
    prf(&key, 0x01, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
             E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25\
             6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2")
    );
    // The session keys used per packet are these (checked through the cipher and MAC).
    let session = SessionKeys::derive(&key, Labels::Rtp);
    assert_eq!(session.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut expected = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&auth[..20]).unwrap();
    let mut got = session.mac();
    expected.update(b"x");
    got.update(b"x");
    assert_eq!(expected.finalize().into_bytes(), got.finalize().into_bytes());
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    // Session key and salt of B.2; SSRC, ROC and SEQ zero: the IV is the salt·2^16, the
    // same as the PRF's with label 0, so the PRF produces this keystream.
    let mut bytes = [0u8; MASTER_LEN];
    bytes[..16].copy_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
    bytes[16..].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    let key = MasterKey::new(bytes);
    let mut stream = [0u8; 48];
    prf(&key, 0, &mut stream);
    assert_eq!(
        stream.to_vec(),
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
             41E95B3BB0A2E8DD477901E4FCA894C0")
    );
}

const RTP_PLAIN: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const SRTP_80: &str =
    "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";
const RTCP_PLAIN: &str = "81c8000bcafebabe abababababababababababababababab";
const SRTCP_80: &str =
    "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798";

fn protect(sender: &mut SrtpSender, plain: &str) -> Vec<u8> {
    let plain = hex(plain);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 32, 0);
    let len = sender.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn libsrtp_known_packet_with_80_bit_tag() {
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &master());
    let protected = protect(&mut sender, RTP_PLAIN);
    assert_eq!(protected, hex(SRTP_80));
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &master());
    let mut packet = hex(SRTP_80);
    let len = receiver.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len].to_vec(), hex(RTP_PLAIN));
}

#[test]
fn libsrtp_known_packet_with_32_bit_tag() {
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_32, &master());
    let protected = protect(&mut sender, RTP_PLAIN);
    let expected = hex(SRTP_80);
    assert_eq!(protected, expected[..expected.len() - 6].to_vec());
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_32, &master());
    let mut packet = protected.clone();
    let len = receiver.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len].to_vec(), hex(RTP_PLAIN));
}

#[test]
fn libsrtp_known_srtcp_packet() {
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &master());
    // libSRTP's vector is the second packet it protects (index 1).
    let plain = hex(RTCP_PLAIN);
    let mut buf = vec![0u8; 64];
    buf[..plain.len()].copy_from_slice(&plain);
    sender.protect_rtcp(&mut buf, plain.len()).unwrap();
    buf[..plain.len()].copy_from_slice(&plain);
    let len = sender.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..len].to_vec(), hex(SRTCP_80));
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &master());
    let mut packet = hex(SRTCP_80);
    let len = receiver.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet[..len].to_vec(), plain);
    // The same SRTCP index again is a replay.
    let mut again = hex(SRTCP_80);
    assert_eq!(receiver.unprotect_rtcp(&mut again), Err(SrtpError::Replayed));
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 160, 0x11, 0x22, 0x33, 0x44]);
    p.extend_from_slice(payload);
    p
}

fn seal(sender: &mut SrtpSender, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + MAX_RTP_OVERHEAD, 0);
    let len = sender.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn the_rollover_counter_follows_sequence_wrap_on_both_sides() {
    let key = MasterKey::new([7; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let mut last_cipher = Vec::new();
    for seq in [65533u16, 65534, 65535, 0, 1, 2] {
        let plain = rtp(seq, &[0xd5; 160]);
        let mut packet = seal(&mut sender, &plain);
        last_cipher = packet.clone();
        let len = receiver.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet[..len], plain[..], "seq {seq}");
    }
    // After the wrap, the packet with seq 2 is under ROC 1: a receiver that assumes ROC 0
    // (a fresh one starting there) cannot authenticate it.
    let mut fresh = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    assert_eq!(fresh.unprotect_rtp(&mut last_cipher), Err(SrtpError::AuthFailed));
}

#[test]
fn replays_and_packets_older_than_the_window_are_refused() {
    let key = MasterKey::new([9; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let packets: Vec<Vec<u8>> =
        (100u16..200).map(|s| seal(&mut sender, &rtp(s, &[1; 20]))).collect();
    let mut first = packets[0].clone();
    receiver.unprotect_rtp(&mut first).unwrap();
    let mut again = packets[0].clone();
    assert_eq!(receiver.unprotect_rtp(&mut again), Err(SrtpError::Replayed));
    // Out of order inside the window is fine; then older than 64 behind is refused.
    let mut late = packets[99].clone();
    receiver.unprotect_rtp(&mut late).unwrap();
    let mut within = packets[50].clone();
    assert!(receiver.unprotect_rtp(&mut within).is_ok());
    let mut too_old = packets[10].clone();
    assert_eq!(receiver.unprotect_rtp(&mut too_old), Err(SrtpError::Replayed));
}

#[test]
fn a_forged_or_altered_packet_is_refused_and_changes_nothing() {
    let key = MasterKey::new([3; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let good = seal(&mut sender, &rtp(10, &[5; 160]));
    // A flipped payload bit.
    let mut altered = good.clone();
    altered[20] ^= 1;
    assert_eq!(receiver.unprotect_rtp(&mut altered), Err(SrtpError::AuthFailed));
    // A packet made with another key, far ahead in sequence: refused, and it does not
    // move the window (the genuine packet still passes).
    let mut forger = SrtpSender::new(Suite::AesCm128HmacSha1_80, &MasterKey::new([4; MASTER_LEN]));
    let mut forged = seal(&mut forger, &rtp(40000, &[5; 160]));
    assert_eq!(receiver.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
    let mut genuine = good.clone();
    assert!(receiver.unprotect_rtp(&mut genuine).is_ok());
    // Too short, or not RTP at all.
    assert_eq!(receiver.unprotect_rtp(&mut [0x80; 12]), Err(SrtpError::Malformed));
    assert_eq!(receiver.unprotect_rtp(&mut [0u8; 40]), Err(SrtpError::Malformed));
}

#[test]
fn no_room_for_the_tag_is_an_error() {
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &master());
    let mut buf = hex(RTP_PLAIN);
    let len = buf.len();
    assert_eq!(sender.protect_rtp(&mut buf, len), Err(SrtpError::NoRoom));
}

#[test]
fn keys_never_print() {
    let keys = SrtpKeys {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        send: MasterKey::new([0xAB; MASTER_LEN]),
        receive: master(),
    };
    let text = format!("{keys:?}");
    assert!(text.contains("AesCm128HmacSha1_80"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("ab, ") && !text.contains("171"), "{text}");
    assert_eq!(text.matches("[redacted]").count(), 2, "{text}");
}

fn rtp_from(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = rtp(seq, &[2; 20]);
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// A sender report of SSRC 0x11223344 (the SSRC of [`rtp`]), sealed as SRTCP.
fn seal_rtcp(sender: &mut SrtpSender) -> Vec<u8> {
    let mut plain = vec![0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44];
    plain.extend_from_slice(&[0u8; 20]);
    let len = plain.len();
    plain.resize(len + RTCP_OVERHEAD, 0);
    let sealed = sender.protect_rtcp(&mut plain, len).unwrap();
    plain.truncate(sealed);
    plain
}

#[test]
fn srtcp_before_any_srtp_does_not_fix_the_rtp_sequence_start() {
    let key = MasterKey::new([5; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let mut report = seal_rtcp(&mut sender);
    receiver.unprotect_rtcp(&mut report).unwrap();
    for seq in [40000u16, 40001, 40002] {
        let plain = rtp(seq, &[0xd5; 160]);
        let mut packet = seal(&mut sender, &plain);
        let len = receiver.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet[..len], plain[..], "seq {seq}");
    }
}

#[test]
fn a_sequence_number_before_rollover_zero_is_too_old_not_a_wrap() {
    let key = MasterKey::new([6; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let mut first = seal(&mut sender, &rtp(100, &[1; 20]));
    receiver.unprotect_rtp(&mut first).unwrap();
    // 40000 is more than half the sequence space behind 100 at ROC 0: it would belong to
    // ROC -1, which does not exist. (Sealed by a second sender that starts there.)
    let mut other = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut behind = seal(&mut other, &rtp(40000, &[1; 20]));
    assert_eq!(receiver.unprotect_rtp(&mut behind), Err(SrtpError::Replayed));
    let mut next = seal(&mut sender, &rtp(101, &[1; 20]));
    assert!(receiver.unprotect_rtp(&mut next).is_ok());
}

#[test]
fn a_new_ssrc_evicts_the_least_recently_authenticated_one() {
    let key = MasterKey::new([8; MASTER_LEN]);
    let mut sender = SrtpSender::new(Suite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(Suite::AesCm128HmacSha1_80, &key);
    let current = 0xA;
    let mut opened = seal(&mut sender, &rtp_from(current, 1));
    receiver.unprotect_rtp(&mut opened).unwrap();
    let stale: Vec<Vec<u8>> =
        (0xB..0xE).map(|ssrc| seal(&mut sender, &rtp_from(ssrc, 1))).collect();
    for packet in &stale {
        receiver.unprotect_rtp(&mut packet.clone()).unwrap();
    }
    // The first SSRC goes on talking; then a fifth SSRC arrives.
    let talking = seal(&mut sender, &rtp_from(current, 2));
    receiver.unprotect_rtp(&mut talking.clone()).unwrap();
    let mut newcomer = seal(&mut sender, &rtp_from(0xF, 1));
    receiver.unprotect_rtp(&mut newcomer).unwrap();
    // The talking SSRC kept its replay window; the least recent one (0xB) lost its own.
    assert_eq!(receiver.unprotect_rtp(&mut talking.clone()), Err(SrtpError::Replayed));
    assert!(receiver.unprotect_rtp(&mut stale[0].clone()).is_ok());
}

#[test]
fn session_keys_are_zeroed_on_drop() {
    fn zeroed_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    // The AES key schedule (the `aes` crate's `zeroize` feature) and ours.
    zeroed_on_drop::<aes::Aes128>();
    zeroed_on_drop::<SessionKeys>();
}
