//! S3 additional checksums (`x-amz-checksum-crc32`, `-crc32c`, `-crc64nvme`, `-sha1`,
//! `-sha256`): computed while the body streams past, compared at its end with the value the
//! client sent as a header or as an aws-chunked trailer, and kept with the object.
//!
//! A mismatch must stop the write before the core commits it. The core stores nothing when
//! the body stream yields an error, so the verifying stream ends in one instead of ending
//! cleanly, and records the S3 refusal for the front end to answer with: the core only sees
//! a body that broke off.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use davit_storage::{Item, LateHeaders};
use futures::Stream;
use s3s::dto::{Checksum, ChecksumMode, ChecksumType};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders, s3_error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    /// In the order of [`Values`].
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme, Algorithm::Sha1, Algorithm::Sha256];

    /// The header or trailer that carries it; also its name among an object's kept headers.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// As S3 names it in its messages.
    fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    fn hasher(self) -> Hasher {
        use crc_fast::CrcAlgorithm as C;
        match self {
            Algorithm::Crc32 => Hasher::Crc32(crc_fast::Digest::new(C::Crc32IsoHdlc)),
            Algorithm::Crc32c => Hasher::Crc32(crc_fast::Digest::new(C::Crc32Iscsi)),
            Algorithm::Crc64Nvme => Hasher::Crc64(crc_fast::Digest::new(C::Crc64Nvme)),
            Algorithm::Sha1 => Hasher::Sha(ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY)),
            Algorithm::Sha256 => Hasher::Sha(ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    fn from_header(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.header().eq_ignore_ascii_case(name))
    }

    /// Base64 of the big-endian digest, as S3 writes every checksum.
    fn encode(self, digest: &[u8]) -> String {
        B64.encode(digest)
    }

    fn decode(self, value: &str) -> Option<Vec<u8>> {
        B64.decode(value.trim()).ok().filter(|d| d.len() == self.digest_len())
    }

    fn of_empty(self) -> Vec<u8> {
        self.hasher().finish()
    }
}

enum Hasher {
    /// crc-fast gives every width in a u64: a 32-bit CRC is its low half.
    Crc32(crc_fast::Digest),
    Crc64(crc_fast::Digest),
    Sha(ring::digest::Context),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(d) | Hasher::Crc64(d) => d.update(data),
            Hasher::Sha(c) => c.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(d) => (d.finalize() as u32).to_be_bytes().to_vec(),
            Hasher::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Hasher::Sha(c) => c.finish().as_ref().to_vec(),
        }
    }
}

/// The five `x-amz-checksum-*` header values of an S3 input, in [`Algorithm::ALL`] order.
type Values<'a> = [&'a Option<String>; 5];

/// A checksum S3 computed and verified.
#[derive(Clone, Debug)]
pub struct Sum {
    pub algorithm: Algorithm,
    /// Base64, as sent and returned.
    pub value: String,
}

impl Sum {
    /// How it is kept among the object's headers.
    pub fn header(&self) -> (String, String) {
        (self.algorithm.header().to_owned(), self.value.clone())
    }

    /// The five response fields, with the type S3 gives a single-part object's checksum.
    pub fn fields(&self) -> Checksum {
        // A composite checksum (the parts' digests, digested) ends in `-N`.
        let kind = if self.value.contains('-') { ChecksumType::COMPOSITE } else { ChecksumType::FULL_OBJECT };
        let mut c = Checksum { checksum_type: Some(ChecksumType::from_static(kind)), ..Default::default() };
        let v = Some(self.value.clone());
        match self.algorithm {
            Algorithm::Crc32 => c.checksum_crc32 = v,
            Algorithm::Crc32c => c.checksum_crc32c = v,
            Algorithm::Crc64Nvme => c.checksum_crc64nvme = v,
            Algorithm::Sha1 => c.checksum_sha1 = v,
            Algorithm::Sha256 => c.checksum_sha256 = v,
        }
        c
    }
}

/// Sets the five checksum fields of an S3 output or result type (they all name them alike)
/// from an `Option<Sum>`, and gives back the `checksum_type` for the types that have one.
macro_rules! set_fields {
    ($out:expr, $sum:expr) => {{
        let c: s3s::dto::Checksum = $sum.map(|s: $crate::checksum::Sum| s.fields()).unwrap_or_default();
        $out.checksum_crc32 = c.checksum_crc32;
        $out.checksum_crc32c = c.checksum_crc32c;
        $out.checksum_crc64nvme = c.checksum_crc64nvme;
        $out.checksum_sha1 = c.checksum_sha1;
        $out.checksum_sha256 = c.checksum_sha256;
        c.checksum_type
    }};
}

/// The five `x-amz-checksum-*` header values of an S3 input, as [`Wanted::of_request`] takes them.
macro_rules! values {
    ($input:expr) => {
        [
            &$input.checksum_crc32,
            &$input.checksum_crc32c,
            &$input.checksum_crc64nvme,
            &$input.checksum_sha1,
            &$input.checksum_sha256,
        ]
    };
}
pub(crate) use {set_fields, values};

/// The checksum of an object completed from parts that all carry one of the same kind, of
/// the type S3 gives it: `full_object` is what the upload's creation asked for
/// (`x-amz-checksum-type`), if it did.
/// - FULL_OBJECT: the whole object's own CRC, combined from the parts' CRCs and sizes without
///   reading a byte, so a client can check a download against it. CRC64NVME is always this;
///   CRC32 and CRC32C only when asked for.
/// - COMPOSITE (S3's default for CRC32 and CRC32C, the only form for SHA digests, which cannot
///   be combined): the digest of the parts' digests, then `-N`.
pub fn combine_parts(parts: &[davit_storage::multipart::Part], full_object: Option<bool>) -> Vec<(String, String)> {
    let sums: Vec<(u64, Sum)> = parts
        .iter()
        .map_while(|pt| pt.checksum.as_ref().and_then(|(k, v)| of_header(k, v)).map(|s| (pt.size, s)))
        .collect();
    let Some((_, first)) = sums.first() else { return Vec::new() };
    let a = first.algorithm;
    if sums.len() != parts.len() || sums.iter().any(|(_, s)| s.algorithm != a) {
        return Vec::new();
    }
    let Some(digests) = sums.iter().map(|(_, s)| a.decode(&s.value)).collect::<Option<Vec<_>>>() else {
        return Vec::new();
    };
    let full = full_object == Some(true);
    let crc = match a {
        Algorithm::Crc32 if full => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
        Algorithm::Crc32c if full => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
        Algorithm::Crc64Nvme => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
        Algorithm::Crc32 | Algorithm::Crc32c | Algorithm::Sha1 | Algorithm::Sha256 => None,
    };
    let value = match crc {
        Some((alg, width)) => {
            let as_u64 = |d: &[u8]| d.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let mut acc = as_u64(&digests[0]);
            for ((size, _), d) in sums.iter().zip(&digests).skip(1) {
                acc = crc_fast::checksum_combine(alg, acc, as_u64(d), *size);
            }
            a.encode(&acc.to_be_bytes()[8 - width..])
        }
        None => {
            let mut h = a.hasher();
            for d in &digests {
                h.update(d);
            }
            format!("{}-{}", a.encode(&h.finish()), parts.len())
        }
    };
    vec![(a.header().to_owned(), value)]
}

/// The checksum kept with an object, if it has one.
pub fn of_item(item: &Item) -> Option<Sum> {
    item.headers.iter().find_map(|(k, v)| of_header(k, v))
}

/// A kept `(header, value)` pair as a checksum (a part keeps one).
pub fn of_header(name: &str, value: &str) -> Option<Sum> {
    Algorithm::from_header(name).map(|a| Sum { algorithm: a, value: value.to_owned() })
}

/// The entries of kept headers that are checksums: what a metadata replacement keeps, since
/// the content they describe stays.
pub fn kept(headers: &[(String, String)]) -> impl Iterator<Item = (String, String)> + '_ {
    headers.iter().filter(|(k, _)| Algorithm::from_header(k).is_some()).cloned()
}

/// The checksum a GET or HEAD returns: only when asked, and only when it reads the whole
/// object, the only read the full-object checksum describes.
pub fn on_read(item: &Item, mode: &Option<ChecksumMode>, ranged: bool, part: bool) -> Option<Sum> {
    let asked = mode.as_ref().is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
    if asked && !ranged && !part { of_item(item) } else { None }
}

enum Source {
    Header(Vec<u8>),
    Trailer(TrailingHeaders),
}

/// What the client asked to have verified: one algorithm and where its value comes from.
pub struct Wanted {
    algorithm: Algorithm,
    source: Source,
}

impl Wanted {
    /// Reads the request: at most one checksum, as a header or announced in `x-amz-trailer`.
    pub fn of_request(
        values: Values<'_>,
        headers: &http::HeaderMap,
        trailers: Option<TrailingHeaders>,
    ) -> S3Result<Option<Wanted>> {
        let mut found = Vec::new();
        for (a, v) in Algorithm::ALL.into_iter().zip(values) {
            if let Some(v) = v {
                // A header value that is no checksum of this algorithm cannot match the body:
                // BadDigest, as s3-tests (RGW) expects; AWS says InvalidRequest.
                let digest = a.decode(v).ok_or_else(|| bad_digest(a))?;
                found.push(Wanted { algorithm: a, source: Source::Header(digest) });
            }
        }
        let announced =
            headers.get_all("x-amz-trailer").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        for a in announced.filter_map(|n| Algorithm::from_header(n.trim())) {
            let t = trailers.clone().ok_or_else(|| {
                s3_error!(InvalidRequest, "x-amz-trailer needs an aws-chunked body that has trailers")
            })?;
            found.push(Wanted { algorithm: a, source: Source::Trailer(t) });
        }
        if found.len() > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }
        Ok(found.pop())
    }

    /// The checksum to keep with the object when its value is known before the body (a
    /// header): it is only committed if the body matches it.
    pub fn known(&self) -> Option<Sum> {
        match &self.source {
            Source::Header(d) => Some(Sum { algorithm: self.algorithm, value: self.algorithm.encode(d) }),
            Source::Trailer(_) => None,
        }
    }

    /// For a body announced empty and not read (a folder key): a header value is checked
    /// against the empty body's; a trailer's would have to be, so the empty value is returned.
    pub fn check_empty(&self) -> S3Result<Sum> {
        let empty = self.algorithm.of_empty();
        if let Source::Header(d) = &self.source
            && *d != empty
        {
            return Err(bad_digest(self.algorithm));
        }
        Ok(Sum { algorithm: self.algorithm, value: self.algorithm.encode(&empty) })
    }

    /// The value to compare with, once the body has ended.
    fn expected(&self) -> Result<Vec<u8>, S3Error> {
        match &self.source {
            Source::Header(d) => Ok(d.clone()),
            Source::Trailer(t) => {
                let name = self.algorithm.header();
                let v = t
                    .read(|h| h.get(name).map(|v| v.to_str().map(str::to_owned)))
                    .flatten()
                    .ok_or_else(|| s3_error!(InvalidRequest, "the body ended without its announced {name} trailer"))?
                    .map_err(|_| invalid_value(self.algorithm, "trailer"))?;
                self.algorithm.decode(&v).ok_or_else(|| invalid_value(self.algorithm, "trailer"))
            }
        }
    }
}

fn invalid_value(a: Algorithm, kind: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, format!("Value for {} {kind} is invalid.", a.header()))
}

fn bad_digest(a: Algorithm) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::BadDigest,
        format!("The {} you specified did not match the calculated checksum.", a.name()),
    )
}

enum Verdict {
    /// The body has not ended (yet, or at all: it broke off).
    Pending,
    Passed(Option<Sum>),
    Refused(S3Error),
}

/// The body with its checksum computed on the way through; see the module notes.
pub struct Verifying<S> {
    inner: S,
    check: Option<(Wanted, Hasher)>,
    verdict: Arc<Mutex<Verdict>>,
    ended: bool,
}

/// The other end of [`Verifying`]: how the body's check came out.
pub struct Outcome(Arc<Mutex<Verdict>>);

impl Outcome {
    /// A checksum only a trailer gives is known once the body has ended: the core asks for
    /// it when the write commits, so it is kept atomically with the content.
    /// The verified checksum, whichever way it came, once the body has ended (a part keeps
    /// it for ListParts and completion).
    pub fn verified(&self) -> LateHeaders {
        let verdict = self.0.clone();
        LateHeaders(Arc::new(move || match &*lock(&verdict) {
            Verdict::Passed(Some(sum)) => vec![sum.header()],
            _ => Vec::new(),
        }))
    }

    pub fn trailer_header(&self, from_trailer: bool) -> Option<LateHeaders> {
        let verdict = self.0.clone();
        from_trailer.then(|| {
            LateHeaders(Arc::new(move || match &*lock(&verdict) {
                Verdict::Passed(Some(sum)) => vec![sum.header()],
                _ => Vec::new(),
            }))
        })
    }
}

pub fn verify<S>(inner: S, wanted: Option<Wanted>) -> (Verifying<S>, Outcome) {
    let verdict = Arc::new(Mutex::new(Verdict::Pending));
    let check = wanted.map(|w| {
        let h = w.algorithm.hasher();
        (w, h)
    });
    (Verifying { inner, check, verdict: verdict.clone(), ended: false }, Outcome(verdict))
}

impl<S> Verifying<S> {
    fn conclude(&mut self) -> Verdict {
        let Some((wanted, hasher)) = self.check.take() else {
            return Verdict::Passed(None);
        };
        let computed = hasher.finish();
        match wanted.expected() {
            Err(e) => Verdict::Refused(e),
            Ok(expected) if expected != computed => Verdict::Refused(bad_digest(wanted.algorithm)),
            Ok(_) => {
                Verdict::Passed(Some(Sum { algorithm: wanted.algorithm, value: wanted.algorithm.encode(&computed) }))
            }
        }
    }
}

impl<S> Stream for Verifying<S>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some((_, h)) = &mut self.check {
                    h.update(&b);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                let verdict = self.conclude();
                let refused = matches!(verdict, Verdict::Refused(_));
                *lock(&self.verdict) = verdict;
                if refused {
                    Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, "the body failed its checksum"))))
                } else {
                    Poll::Ready(None)
                }
            }
            other => other,
        }
    }
}

fn lock(v: &Mutex<Verdict>) -> std::sync::MutexGuard<'_, Verdict> {
    v.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outcome {
    /// The answer to a core call that read the verified body: a checksum refusal comes first,
    /// since the core's own error is then only its echo (a body that broke off); the core's
    /// refusal is answered as `refusal` maps it.
    pub fn settle<T>(
        self,
        r: davit_storage::Result<T>,
        refusal: impl FnOnce(davit_storage::Error) -> S3Error,
    ) -> S3Result<(T, Option<Sum>)> {
        let verdict = std::mem::replace(&mut *lock(&self.0), Verdict::Pending);
        match (r, verdict) {
            (_, Verdict::Refused(e)) => Err(e),
            (Err(e), _) => Err(refusal(e)),
            (Ok(t), Verdict::Passed(sum)) => Ok((t, sum)),
            // The core reads every body to its end before it commits, so this is not reached.
            (Ok(t), Verdict::Pending) => Ok((t, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: Algorithm, data: &[u8]) -> String {
        let mut h = a.hasher();
        h.update(data);
        a.encode(&h.finish())
    }

    #[test]
    fn parts_combine_into_the_whole_objects_crc_or_a_composite_digest() {
        let pieces: [&[u8]; 3] = [b"hello ", b"wide ", b"world"];
        let part = |n: usize, a: Algorithm| davit_storage::multipart::Part {
            number: n as u32 + 1,
            size: pieces[n].len() as u64,
            etag: String::new(),
            modified: 0,
            chunks: Vec::new(),
            checksum: Some((a.header().to_owned(), sum(a, pieces[n]))),
        };
        let composite = |a: Algorithm| {
            let mut inner = Vec::new();
            for p in pieces {
                inner.extend(B64.decode(sum(a, p)).unwrap());
            }
            vec![(a.header().to_owned(), format!("{}-3", sum(a, &inner)))]
        };
        let whole = |a: Algorithm| vec![(a.header().to_owned(), sum(a, b"hello wide world"))];
        for a in [Algorithm::Crc32, Algorithm::Crc32c] {
            let parts: Vec<_> = (0..3).map(|n| part(n, a)).collect();
            assert_eq!(combine_parts(&parts, Some(true)), whole(a), "{a:?} FULL_OBJECT when asked");
            assert_eq!(combine_parts(&parts, None), composite(a), "{a:?} COMPOSITE by default");
            assert_eq!(combine_parts(&parts, Some(false)), composite(a), "{a:?} COMPOSITE when asked");
        }
        let parts: Vec<_> = (0..3).map(|n| part(n, Algorithm::Crc64Nvme)).collect();
        assert_eq!(combine_parts(&parts, None), whole(Algorithm::Crc64Nvme), "CRC64NVME is FULL_OBJECT only");
        for a in [Algorithm::Sha1, Algorithm::Sha256] {
            let parts: Vec<_> = (0..3).map(|n| part(n, a)).collect();
            assert_eq!(combine_parts(&parts, None), composite(a), "{a:?}");
        }
        // Mixed or missing: no whole-object checksum.
        let mixed = vec![part(0, Algorithm::Crc32), part(1, Algorithm::Crc32c)];
        assert!(combine_parts(&mixed, None).is_empty());
        let mut missing = vec![part(0, Algorithm::Crc32), part(1, Algorithm::Crc32)];
        missing[1].checksum = None;
        assert!(combine_parts(&missing, Some(true)).is_empty());
    }

    #[test]
    fn known_values() {
        // Computed independently (zlib, hashlib and bitwise CRCs checked on "123456789").
        let d = b"hello world";
        assert_eq!(sum(Algorithm::Crc32, d), "DUoRhQ==");
        assert_eq!(sum(Algorithm::Crc32c, d), "yZRlqg==");
        assert_eq!(sum(Algorithm::Crc64Nvme, d), "jSnVw/bqjr4=");
        assert_eq!(sum(Algorithm::Sha1, d), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(sum(Algorithm::Sha256, d), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    }

    #[test]
    fn split_updates_match_one() {
        for a in Algorithm::ALL {
            let mut h = a.hasher();
            h.update(b"hello ");
            h.update(b"world");
            assert_eq!(a.encode(&h.finish()), sum(a, b"hello world"), "{a:?}");
        }
    }
}
