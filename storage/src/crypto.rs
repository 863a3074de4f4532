//! Every cryptographic choice of the core, in one place.
//!
//! Chunk addressing and sealing are on the write and read hot paths, so they use `ring`:
//! measured on this machine's CPU (no SHA extensions) ring's SHA-256 runs at 351 MB/s against
//! 192 MB/s for `sha2`, and its AES-256-GCM at about 3,400 MB/s against 1,000 MB/s for
//! `aes-gcm`. rustls already brings ring into the tree. MD5 (the S3 ETag) has no ring
//! implementation, so `md-5` computes it. On the current machines (with SHA extensions) ring
//! takes the same hardware path as OpenSSL: HMAC-SHA-256 of 1 MiB in cache 1,733 MB/s,
//! `openssl speed -bytes 1048576 sha256` 1,612 MB/s in the same minute (load 6).
//!
//! Keys: the master key only wraps the data key (AES-256-GCM under
//! HMAC-SHA-256(master key, "davit/data-key-wrap/v1"), stored in META), and every subkey is
//! HMAC-SHA-256(data key, label), so changing the master key is a re-wrap. A folder made at
//! format 2 took its subkeys straight from the master key: its data key is that master key.
//! A chunk's id is
//! HMAC-SHA-256(id key, plaintext), so the disk does not reveal which known file is present.
//! Each chunk is sealed with its own AES-256-GCM key, HMAC(seal key, chunk id), under a zero
//! nonce: a key seals exactly one plaintext (the chunk whose id it is derived from), so no
//! nonce is ever reused under one key, and the same chunk always seals to the same bytes.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

pub const KEY_LEN: usize = 32;
pub const TAG_LEN: usize = 16;
pub type ChunkId = [u8; 32];

pub struct Keys {
    chunk_id: hmac::Key,
    chunk_seal: hmac::Key,
    secrets: hmac::Key,
    canonical_user: hmac::Key,
}

impl Keys {
    /// The subkeys of a data key (see the module comment).
    pub fn derive(data_key: &[u8; KEY_LEN]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, data_key);
        let sub = |label: &str| {
            let tag = hmac::sign(&root, label.as_bytes());
            hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
        };
        Keys {
            chunk_id: sub("davit/chunk-id/v1"),
            chunk_seal: sub("davit/chunk-seal/v1"),
            secrets: sub("davit/secrets/v1"),
            canonical_user: sub("davit/canonical-user/v1"),
        }
    }

    /// A user's S3 canonical id (`access::s3_view`): stable, and meaningless without the key.
    pub fn canonical_user(&self, user: u64) -> [u8; 32] {
        let mut id = [0u8; 32];
        id.copy_from_slice(hmac::sign(&self.canonical_user, &user.to_be_bytes()).as_ref());
        id
    }

    pub fn chunk_id(&self, plain: &[u8]) -> ChunkId {
        let tag = hmac::sign(&self.chunk_id, plain);
        let mut id = [0u8; 32];
        id.copy_from_slice(tag.as_ref());
        id
    }

    fn aead_key(root: &hmac::Key, context: &[u8]) -> LessSafeKey {
        let k = hmac::sign(root, context);
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).expect("32-byte key"))
    }

    /// Seals `buf` in place (appending the tag), bound to the chunk id as associated data.
    pub fn seal_chunk(&self, id: &ChunkId, buf: &mut Vec<u8>) {
        self.seal_chunk_at(id, buf, 0);
    }

    /// [`seal_chunk`](Self::seal_chunk) for a chunk that starts at `at` of `buf` (the bytes
    /// before it are left alone): the same sealed bytes.
    pub fn seal_chunk_at(&self, id: &ChunkId, buf: &mut Vec<u8>, at: usize) {
        let key = Self::aead_key(&self.chunk_seal, id);
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(id), &mut buf[at..])
            .expect("chunk within AES-GCM size limits");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens a sealed chunk in place; tampering or a swapped file is an error, never data.
    pub fn open_chunk<'a>(&self, id: &ChunkId, buf: &'a mut [u8]) -> Result<&'a mut [u8]> {
        let key = Self::aead_key(&self.chunk_seal, id);
        key.open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(id), buf)
            .map_err(|_| Error::corrupt(format_args!("chunk {} failed authentication", hex::encode(id))))
    }

    /// Seals a small secret (an S3 secret key) under a key derived from its unique label.
    pub fn seal_secret(&self, label: &str, secret: &[u8]) -> Vec<u8> {
        let key = Self::aead_key(&self.secrets, label.as_bytes());
        let mut buf = secret.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(label.as_bytes()), &mut buf)
            .expect("small secret");
        buf
    }

    pub fn open_secret(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let key = Self::aead_key(&self.secrets, label.as_bytes());
        let mut buf = sealed.to_vec();
        let n = key
            .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| Error::corrupt(format_args!("secret {label} failed authentication")))?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// The first byte of a wrapped data key: how it was wrapped.
const WRAP_VERSION: u8 = 1;
const WRAP_AAD: &[u8] = b"davit/data-key/v1";
const NONCE_LEN: usize = 12;

fn wrapping_key(master: &[u8; KEY_LEN]) -> LessSafeKey {
    Keys::aead_key(&hmac::Key::new(hmac::HMAC_SHA256, master), b"davit/data-key-wrap/v1")
}

/// Seals the data key under the master key: version, random nonce, sealed key and tag. The
/// nonce is random because a master key may wrap a data key more than once (re-wraps).
pub fn wrap_data_key(master: &[u8; KEY_LEN], data_key: &[u8; KEY_LEN]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut buf = data_key.to_vec();
    wrapping_key(master)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut buf)
        .expect("32-byte key");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
    out.push(WRAP_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out
}

/// Opens a wrapped data key; fails when `master` is not the key it was wrapped with.
pub fn unwrap_data_key(master: &[u8; KEY_LEN], wrapped: &[u8]) -> Result<[u8; KEY_LEN]> {
    let Some((&WRAP_VERSION, rest)) = wrapped.split_first() else {
        return Err(Error::Incompatible("the stored data key has an unknown wrapping".into()));
    };
    if rest.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
        return Err(Error::corrupt("the stored data key has the wrong length"));
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::corrupt("bad data key nonce"))?;
    let mut buf = sealed.to_vec();
    let plain = wrapping_key(master)
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut buf)
        .map_err(|_| {
            Error::Incompatible(
                "the master key does not match this data folder's (the one it was created with, or the one \
                 `davit admin rotate-master-key` last set)"
                    .into(),
            )
        })?;
    plain.try_into().map_err(|_| Error::corrupt("the stored data key has the wrong length"))
}

/// The value format 2 stored to recognise its master key (its subkeys came straight from it);
/// the migration to format 3 checks it before wrapping that key.
pub fn format_2_key_check(master: &[u8; KEY_LEN]) -> [u8; 16] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master), b"davit/key-check/v1");
    let mut check = [0u8; 16];
    check.copy_from_slice(&tag.as_ref()[..16]);
    check
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).expect("system random source");
    b
}

/// A random string over `alphabet`, drawn without modulo bias.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        for b in random_bytes::<64>() {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Constant-time comparison for codes and tokens.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn parse_master_key(text: &str) -> Result<[u8; KEY_LEN]> {
    let raw =
        hex::decode(text.trim()).map_err(|_| Error::InvalidInput("master key must be 64 hex characters".into()))?;
    raw.try_into().map_err(|_| Error::InvalidInput("master key must be 64 hex characters (32 bytes)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let keys = Keys::derive(&[7; 32]);
        let id = keys.chunk_id(b"hello");
        let mut buf = b"hello".to_vec();
        keys.seal_chunk(&id, &mut buf);
        assert_eq!(buf.len(), 5 + TAG_LEN);
        let mut copy = buf.clone();
        assert_eq!(keys.open_chunk(&id, &mut copy).unwrap(), b"hello");
        buf[0] ^= 1;
        assert!(matches!(keys.open_chunk(&id, &mut buf), Err(Error::Corrupt(_))));
        let other = Keys::derive(&[8; 32]);
        assert_ne!(other.chunk_id(b"hello"), id);
        // At an offset of its buffer, a chunk seals to the same bytes, and what is before it
        // stays as it was.
        let mut at = b"xyzhello".to_vec();
        keys.seal_chunk_at(&id, &mut at, 3);
        let mut whole = b"hello".to_vec();
        keys.seal_chunk(&id, &mut whole);
        assert_eq!(&at[..3], b"xyz");
        assert_eq!(&at[3..], &whole[..]);
    }

    #[test]
    fn data_key_wraps_and_unwraps_only_under_its_master_key() {
        let data = random_bytes::<KEY_LEN>();
        let wrapped = wrap_data_key(&[1; 32], &data);
        assert_eq!(wrapped.len(), 1 + NONCE_LEN + KEY_LEN + TAG_LEN);
        assert_eq!(unwrap_data_key(&[1; 32], &wrapped).unwrap(), data);
        let wrong = unwrap_data_key(&[2; 32], &wrapped).unwrap_err();
        assert!(matches!(&wrong, Error::Incompatible(m) if m.contains("master key does not match")), "{wrong:?}");
        // Two wraps of one key differ (random nonces) and both open.
        let again = wrap_data_key(&[1; 32], &data);
        assert_ne!(again, wrapped);
        assert_eq!(unwrap_data_key(&[1; 32], &again).unwrap(), data);
    }

    #[test]
    fn secrets_roundtrip() {
        let keys = Keys::derive(&[1; 32]);
        let s = keys.seal_secret("AK1", b"secret");
        assert_eq!(keys.open_secret("AK1", &s).unwrap(), b"secret");
        assert!(keys.open_secret("AK2", &s).is_err());
    }
}
