//! Keys as bytes whose plain byte order is the key order.
//!
//! redb orders a table by `Key::compare` over its own byte form (integers little-endian,
//! tuples with length prefixes), so those bytes cannot be compared as they are. An engine
//! that orders rows by their key bytes (PostgreSQL compares `bytea` with memcmp, shorter
//! first on a common prefix) stores this encoding instead: integers big-endian, a string or a
//! hash as its raw bytes, a tuple as its parts one after the other. That is order-preserving
//! because every part but the last has a fixed width; a string is only ever the last part.

use redb::{Key, Value};

use crate::error::{Error, Result};

/// A key type the tables use, with its order-preserving byte form.
pub trait OrderedKey: Key + 'static {
    /// The typed key as ordered bytes.
    fn encode(key: &Self::SelfType<'_>) -> Vec<u8>;
    /// Ordered bytes back to redb's byte form, so `Key::from_bytes` reads them.
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>>;
}

fn bad_key() -> Error {
    Error::corrupt("a stored key does not decode")
}

fn be_u64(b: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(b.try_into().map_err(|_| bad_key())?))
}

impl OrderedKey for u64 {
    #[inline]
    fn encode(key: &u64) -> Vec<u8> {
        key.to_be_bytes().to_vec()
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        Ok(be_u64(&ordered)?.to_le_bytes().to_vec())
    }
}

impl OrderedKey for &'static str {
    #[inline]
    fn encode(key: &&str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        std::str::from_utf8(&ordered).map_err(|_| bad_key())?;
        Ok(ordered)
    }
}

impl OrderedKey for &'static [u8; 32] {
    #[inline]
    fn encode(key: &&[u8; 32]) -> Vec<u8> {
        key.to_vec()
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        if ordered.len() != 32 {
            return Err(bad_key());
        }
        Ok(ordered)
    }
}

impl OrderedKey for (u64, &'static str) {
    #[inline]
    fn encode(key: &(u64, &str)) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + key.1.len());
        out.extend_from_slice(&key.0.to_be_bytes());
        out.extend_from_slice(key.1.as_bytes());
        out
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        if ordered.len() < 8 {
            return Err(bad_key());
        }
        let (a, b) = ordered.split_at(8);
        let s = std::str::from_utf8(b).map_err(|_| bad_key())?;
        Ok(<(u64, &str)>::as_bytes(&(be_u64(a)?, s)))
    }
}

impl OrderedKey for (u64, u64) {
    #[inline]
    fn encode(key: &(u64, u64)) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&key.0.to_be_bytes());
        out.extend_from_slice(&key.1.to_be_bytes());
        out
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        if ordered.len() != 16 {
            return Err(bad_key());
        }
        let v = (be_u64(&ordered[..8])?, be_u64(&ordered[8..])?);
        Ok(<(u64, u64)>::as_bytes(&v))
    }
}

impl OrderedKey for (u64, u32) {
    #[inline]
    fn encode(key: &(u64, u32)) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&key.0.to_be_bytes());
        out.extend_from_slice(&key.1.to_be_bytes());
        out
    }
    fn redb_form(ordered: Vec<u8>) -> Result<Vec<u8>> {
        if ordered.len() != 12 {
            return Err(bad_key());
        }
        let b = u32::from_be_bytes(ordered[8..].try_into().map_err(|_| bad_key())?);
        Ok(<(u64, u32)>::as_bytes(&(be_u64(&ordered[..8])?, b)))
    }
}
