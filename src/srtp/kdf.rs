//! Session keys from a master key (RFC 3711 §4.3.1, AES-CM PRF §4.3.3, key derivation
//! rate 0: one set of session keys for the life of the master key).

use aes::Aes128;
use aes::cipher::{KeyInit, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{MASTER_SALT_LEN, MasterKey};

type Ctr = ctr::Ctr128BE<Aes128>;

/// Labels of RFC 3711 §4.3.1 (SRTP) and §4.3.2 (SRTCP).
#[derive(Clone, Copy)]
pub(super) enum Labels {
    Rtp,
    Rtcp,
}

impl Labels {
    fn encryption(self) -> u8 {
        match self {
            Labels::Rtp => 0x00,
            Labels::Rtcp => 0x03,
        }
    }
}

/// Bytes of the session authentication key (RFC 3711 §4.2: n_a = 160 for HMAC-SHA1).
const AUTH_KEY_LEN: usize = 20;

/// One direction's session keys for RTP or RTCP, ready to use: the expanded AES key, the
/// session salt and the session authentication key. All three are zeroed on drop (the AES
/// key schedule by the `aes` crate's `zeroize` feature). The HMAC is keyed per packet
/// ([`SessionKeys::mac`]) rather than kept keyed here, because `hmac` cannot zero its
/// state; that costs two SHA-1 blocks per packet.
#[derive(Clone)]
pub(super) struct SessionKeys {
    pub cipher: Aes128,
    pub salt: [u8; MASTER_SALT_LEN],
    auth_key: [u8; AUTH_KEY_LEN],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.salt.zeroize();
        self.auth_key.zeroize();
    }
}

/// `cipher` zeroes itself; `salt` and `auth_key` are zeroed by `Drop` above.
impl ZeroizeOnDrop for SessionKeys {}

impl SessionKeys {
    pub fn derive(master: &MasterKey, labels: Labels) -> SessionKeys {
        let label = labels.encryption();
        let mut key = [0u8; 16];
        prf(master, label, &mut key);
        let mut salt = [0u8; MASTER_SALT_LEN];
        prf(master, label + 2, &mut salt);
        let mut auth_key = [0u8; AUTH_KEY_LEN];
        prf(master, label + 1, &mut auth_key);
        let cipher = Aes128::new(&key.into());
        key.zeroize();
        SessionKeys { cipher, salt, auth_key }
    }

    /// HMAC-SHA1 keyed with the session authentication key, for one packet.
    pub fn mac(&self) -> Hmac<Sha1> {
        // HMAC takes a key of any length; 20 bytes is always accepted.
        <Hmac<Sha1> as Mac>::new_from_slice(&self.auth_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

/// `out` = AES-CM keystream under the master key with IV = (master salt XOR label·2^48)·2^16.
pub(super) fn prf(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master.salt());
    // key_id = label || index DIV kdr (48 zero bits); it lines up with the salt's last 7 bytes.
    iv[7] ^= label;
    let mut keystream = Ctr::new(master.key().into(), &iv.into());
    out.fill(0);
    keystream.apply_keystream(out);
}
