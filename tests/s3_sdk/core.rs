//! ceph/s3-tests' "core subset" ported to the AWS SDK for Rust (issue 16).
//!
//! LIST_PLACEHOLDER

mod atomic;
mod conditional;
mod listing;
mod multipart;
mod objects;
mod presign_headers;

use aws_sdk_s3::primitives::ByteStream;
use reqwest::Method;

use super::*;
use crate::s3_sign::{Signer, sha256_hex};
use crate::support::{Options, TestServer};

const MIB: usize = 1024 * 1024;

async fn new_bucket(c: &Client, name: &str) {
    c.create_bucket().bucket(name).send().await.unwrap_or_else(|e| panic!("create {name}: {e:?}"));
}

/// s3-tests' _create_objects: each key holding its own name.
async fn put_keys(c: &Client, bucket: &str, keys: &[&str]) {
    for k in keys {
        c.put_object()
            .bucket(bucket)
            .key(*k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {k:?}: {e:?}"));
    }
}

async fn get_text(c: &Client, bucket: &str, key: &str) -> String {
    String::from_utf8(body(c.get_object().bucket(bucket).key(key).send().await.unwrap()).await).unwrap()
}

fn keys(objects: &[aws_sdk_s3::types::Object]) -> Vec<String> {
    objects.iter().map(|o| o.key().unwrap().to_owned()).collect()
}

fn prefixes(p: &[aws_sdk_s3::types::CommonPrefix]) -> Vec<String> {
    p.iter().map(|p| p.prefix().unwrap().to_owned()).collect()
}

/// A key percent-encoded for `x-amz-copy-source` (all but unreserved characters and `/`).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}
