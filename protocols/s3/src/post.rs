//! POST object: a browser form uploads a file into a bucket, allowed by a policy document the
//! bucket's owner signed (SigV4 or SigV2) beforehand. Served here rather than by s3s, which
//! reads the whole file into memory: the fields before the file are read (small and bounded),
//! the policy and its signature checked, then the file streams into the core like a PutObject
//! body, `content-length-range` enforced as it passes. Fields after the file are ignored, as
//! S3 does.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use davit_storage::{Principal, Storage, WriteOptions};
use futures::{Stream, StreamExt};
use http::{HeaderValue, StatusCode};
use ring::hmac;
use s3s::post_policy::{PostPolicy, PostPolicyCondition};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use crate::errors::{bucket_error, s3_error as map};
use crate::list::encode;

/// The form fields before the file, in all: S3 allows 20 KB; a little more room, never more.
const MAX_FIELDS_BYTES: usize = 64 * 1024;
const MAX_FIELDS: usize = 100;

/// The bucket a request posts to, when it is a POST object: `multipart/form-data` to a
/// bucket's URL (not to a key).
pub fn target(req: &http::Request<s3s::Body>, base_domain: Option<&str>) -> Option<String> {
    if req.method() != http::Method::POST {
        return None;
    }
    let ct = req.headers().get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    let host = req.headers().get(http::header::HOST).and_then(|v| v.to_str().ok());
    let path = req.uri().path().trim_matches('/');
    match (host, base_domain) {
        (Some(h), Some(d)) if davit_http::virtual_host_bucket(h, d).is_some() => {
            path.is_empty().then(|| davit_http::virtual_host_bucket(h, d)).flatten()
        }
        _ => (!path.is_empty() && !path.contains('/')).then(|| path.to_owned()),
    }
}

fn denied(msg: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, msg.to_owned())
}

fn policy_failed(what: &str) -> S3Error {
    denied(&format!("Invalid according to Policy: Policy Condition failed: {what}"))
}

/// The form's fields before the file: lower-case names (S3 reads them regardless of case),
/// values as sent.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Serves a POST object; every refusal is answered as S3's error.
pub async fn handle(
    storage: &Storage,
    req: http::Request<s3s::Body>,
    bucket: String,
) -> Result<http::Response<s3s::Body>, S3Error> {
    let (parts, body) = req.into_parts();
    let ct = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = multer::parse_boundary(ct).map_err(|_| s3_error!(MalformedPOSTRequest, "no form boundary"))?;
    let mut form = multer::Multipart::new(body, boundary);
    let malformed = |e: multer::Error| {
        S3Error::with_message(
            S3ErrorCode::MalformedPOSTRequest,
            format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
        )
    };

    let mut fields = Vec::new();
    let mut size = 0usize;
    let file = loop {
        let Some(mut field) = form.next_field().await.map_err(malformed)? else {
            return Err(s3_error!(InvalidArgument, "POST requires exactly one file upload per request."));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            break field;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            size += chunk.len();
            if size > MAX_FIELDS_BYTES || fields.len() >= MAX_FIELDS {
                return Err(s3_error!(
                    MaxPostPreDataLengthExceededError,
                    "Your POST request fields preceeding the upload file was too large."
                ));
            }
            value.extend_from_slice(&chunk);
        }
        let value =
            String::from_utf8(value).map_err(|_| s3_error!(InvalidArgument, "form field {name} is not UTF-8"))?;
        fields.push((name, value));
    };
    let fields = Fields(fields);
    // Only the name after the last `/` or `\`, as S3 takes it: a browser may send the file's
    // path on the client (old ones a whole Windows path), which names nothing here.
    let file_name = file.file_name().unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default().to_owned();

    let p = authenticate(storage, &fields).await?;
    davit_http::PrincipalSlot::fill(&parts.extensions, &p);
    let key_field =
        fields.get("key").ok_or_else(|| s3_error!(InvalidArgument, "Bucket POST must contain a field named 'key'."))?;
    let policy_b64 = fields.get("policy").unwrap_or_default();
    let policy = PostPolicy::from_base64(policy_b64)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidPolicyDocument, format!("Invalid Policy: {e}")))?;
    if time::OffsetDateTime::now_utc() >= time::OffsetDateTime::from(policy.expiration.clone()) {
        return Err(denied("Invalid according to Policy: Policy expired."));
    }
    let range = check_conditions(&policy, &fields, &bucket)?;

    let key = key_field.replace("${filename}", &file_name);
    let path = crate::names::new_file_path(&bucket, &key)?;
    match storage.stat(&p, &format!("/{bucket}")).await {
        Ok(item) if item.is_folder() => {}
        Ok(_) => return Err(s3_error!(NoSuchBucket, "no such bucket")),
        Err(e) => return Err(bucket_error(e)),
    }
    if let Some(acl) = fields.get("acl").filter(|a| *a != "private") {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("the ACL {acl} on a POST object is not implemented: objects are private to their bucket"),
        ));
    }
    if fields.get("tagging").is_some() {
        return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "tags on a POST object are not implemented"));
    }
    match fields.get("x-amz-server-side-encryption") {
        None | Some("AES256") => {}
        Some("aws:kms" | "aws:kms:dsse") => {
            return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "SSE-KMS is not implemented"));
        }
        Some(_) => return Err(s3_error!(InvalidArgument, "The encryption method specified is not supported")),
    }
    if fields.0.iter().any(|(k, _)| k.starts_with("x-amz-server-side-encryption-customer")) {
        return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "SSE-C is not implemented"));
    }

    let header = |n: &str| fields.get(n).map(str::to_owned);
    let expires = header("expires");
    let opts = WriteOptions {
        content_type: header("content-type"),
        headers: crate::stored::headers_of(
            header("cache-control"),
            header("content-disposition"),
            header("content-encoding"),
            None,
            expires,
        ),
        user_meta: crate::put::user_meta(fields.0.iter().filter_map(|(k, v)| {
            k.strip_prefix("x-amz-meta-").filter(|m| !m.is_empty()).map(|m| (m.to_owned(), v.clone()))
        }))?,
        create_parents: true,
        // Browsers and SDKs compare a POST's ETag with the file's MD5, as a PUT's.
        md5_etag: true,
        ..Default::default()
    };
    let verdict = Arc::new(Mutex::new(None));
    let stream = Bounded { inner: file, size: 0, range, verdict: verdict.clone(), ended: false };
    let written = storage.write(&p, &path, stream.boxed(), opts).await;
    if let Some(e) = verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(e);
    }
    let item = written.map_err(map)?;
    Ok(success(&fields, &bucket, &key, &item.etag))
}

/// Whether a secret signed the policy as the form claims.
type SignatureCheck = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Who signed the policy: SigV4 (`x-amz-credential`, `x-amz-signature` over the policy) or
/// SigV2 (`AWSAccessKeyId`, `signature`). A form without either is anonymous, which davit
/// does not let write.
async fn authenticate(storage: &Storage, f: &Fields) -> S3Result<Principal> {
    let policy = f.get("policy");
    let (key_id, check): (&str, SignatureCheck) = if let Some(cred) = f.get("x-amz-credential") {
        let sig = f.get("x-amz-signature").ok_or_else(|| s3_error!(InvalidRequest, "missing x-amz-signature"))?;
        let policy = policy.ok_or_else(|| s3_error!(InvalidRequest, "a signed POST needs a policy"))?;
        if f.get("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(s3_error!(InvalidRequest, "x-amz-algorithm must be AWS4-HMAC-SHA256"));
        }
        let mut scope = cred.split('/');
        let (Some(key), Some(day), Some(region), Some(service), Some("aws4_request"), None) =
            (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
        else {
            return Err(s3_error!(InvalidRequest, "malformed x-amz-credential"));
        };
        if !f.get("x-amz-date").is_some_and(|d| d.starts_with(day)) {
            return Err(s3_error!(InvalidRequest, "x-amz-date does not match the credential's date"));
        }
        let (day, region, service, sig, policy) =
            (day.to_owned(), region.to_owned(), service.to_owned(), sig.to_owned(), policy.to_owned());
        (
            key,
            Box::new(move |secret: &str| {
                let mut k = hmac_sha256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
                for part in [region.as_str(), service.as_str(), "aws4_request"] {
                    k = hmac_sha256(&k, part.as_bytes());
                }
                ct_eq(hex(&hmac_sha256(&k, policy.as_bytes())).as_bytes(), sig.to_ascii_lowercase().as_bytes())
            }),
        )
    } else if let Some(key) = f.get("awsaccesskeyid") {
        let sig = f.get("signature").ok_or_else(|| s3_error!(InvalidRequest, "missing signature"))?;
        let policy = policy.ok_or_else(|| s3_error!(InvalidRequest, "a signed POST needs a policy"))?;
        let (sig, policy) = (sig.to_owned(), policy.to_owned());
        (
            key,
            Box::new(move |secret: &str| {
                let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
                ct_eq(B64.encode(hmac::sign(&k, policy.as_bytes())).as_bytes(), sig.as_bytes())
            }),
        )
    } else if policy.is_some() || f.get("x-amz-signature").is_some() || f.get("signature").is_some() {
        return Err(s3_error!(InvalidRequest, "a signed POST names its access key"));
    } else {
        return Err(denied("anonymous uploads are not allowed"));
    };
    let secret = match storage.access_key_secret(key_id).await {
        Ok(s) => s,
        Err(e @ (davit_storage::Error::Unavailable(_) | davit_storage::Error::Internal(_))) => return Err(map(e)),
        Err(_) => return Err(s3_error!(InvalidAccessKeyId, "the access key does not exist")),
    };
    if !check(&secret.secret) {
        return Err(s3_error!(SignatureDoesNotMatch, "the signature of the policy does not match"));
    }
    match secret.owner {
        Some(p) => Ok(p),
        None => storage.access_key_principal(key_id).await.map_err(|e| denied(&e.to_string())),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fields no condition needs to name (S3's list; SigV2's own fields too).
fn exempt(name: &str) -> bool {
    matches!(name, "x-amz-signature" | "signature" | "awsaccesskeyid" | "file" | "policy")
        || name.starts_with("x-ignore-")
}

/// Checks the form against the policy's conditions: every condition holds, and every field
/// the form sends is named by one. Answers the `content-length-range`, checked as the file
/// streams.
fn check_conditions(policy: &PostPolicy, f: &Fields, bucket: &str) -> S3Result<Option<(u64, u64)>> {
    let value = |field: &str| if field == "bucket" { Some(bucket) } else { f.get(field) };
    let mut range = None;
    for c in &policy.conditions {
        match c {
            PostPolicyCondition::Eq { field, value: want } => {
                if value(field) != Some(want.as_str()) {
                    return Err(policy_failed(&format!("[\"eq\", \"${field}\", \"{want}\"]")));
                }
            }
            PostPolicyCondition::StartsWith { field, prefix } => {
                // Content-Type may list several types, each of which must match.
                let ok = match value(field) {
                    Some(v) if field == "content-type" => v.split(',').all(|t| t.trim().starts_with(prefix.as_str())),
                    Some(v) => v.starts_with(prefix.as_str()),
                    None => false,
                };
                if !ok {
                    return Err(policy_failed(&format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")));
                }
            }
            PostPolicyCondition::ContentLengthRange { min, max } => range = Some((*min, *max)),
        }
    }
    let named = |name: &str| {
        policy.conditions.iter().any(|c| match c {
            PostPolicyCondition::Eq { field, .. } | PostPolicyCondition::StartsWith { field, .. } => field == name,
            PostPolicyCondition::ContentLengthRange { .. } => false,
        })
    };
    if let Some((name, _)) = f.0.iter().find(|(k, _)| !exempt(k) && !named(k)) {
        return Err(denied(&format!("Invalid according to Policy: Extra input fields: {name}")));
    }
    Ok(range)
}

/// The answer S3 gives: a redirect when asked for, else the status asked for (200, 201 with
/// an XML document, or 204, the default and what any other value gets).
fn success(f: &Fields, bucket: &str, key: &str, etag: &str) -> http::Response<s3s::Body> {
    let quoted = format!("\"{etag}\"");
    let redirect = f.get("success_action_redirect").or_else(|| f.get("redirect"));
    if let Some(url) = redirect.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let location = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            encode(bucket, true),
            encode(key, true),
            encode(&quoted, true)
        );
        let mut r = http::Response::new(s3s::Body::empty());
        *r.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        return with_etag(r, &quoted);
    }
    let r = match f.get("success_action_status") {
        Some("200") => http::Response::new(s3s::Body::empty()),
        Some("201") => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                xml_escape(bucket),
                xml_escape(&encode(key, true)),
                xml_escape(bucket),
                xml_escape(key),
                xml_escape(&quoted)
            );
            let mut r = http::Response::new(s3s::Body::from(Bytes::from(xml)));
            *r.status_mut() = StatusCode::CREATED;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            r
        }
        _ => {
            let mut r = http::Response::new(s3s::Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    };
    with_etag(r, &quoted)
}

fn with_etag(mut r: http::Response<s3s::Body>, quoted: &str) -> http::Response<s3s::Body> {
    if let Ok(v) = HeaderValue::from_str(quoted) {
        r.headers_mut().insert(http::header::ETAG, v);
    }
    r.headers_mut().insert("x-amz-server-side-encryption", HeaderValue::from_static("AES256"));
    r
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The file's bytes on their way to the core, counted against the policy's
/// `content-length-range`. A body out of range ends in an error, so the core stores
/// nothing, and the S3 refusal is recorded for the answer.
struct Bounded<S> {
    inner: S,
    size: u64,
    range: Option<(u64, u64)>,
    verdict: Arc<Mutex<Option<S3Error>>>,
    ended: bool,
}

impl<S> Bounded<S> {
    fn refuse(&mut self, e: S3Error) -> Poll<Option<std::io::Result<Bytes>>> {
        self.ended = true;
        *self.verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "outside the policy's range"))))
    }
}

impl<S> Stream for Bounded<S>
where
    S: Stream<Item = Result<Bytes, multer::Error>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.size += b.len() as u64;
                if self.range.is_some_and(|(_, max)| self.size > max) {
                    return self
                        .refuse(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = S3Error::with_message(S3ErrorCode::MalformedPOSTRequest, format!("the form broke off: {e}"));
                self.refuse(e)
            }
            Poll::Ready(None) => {
                if self.range.is_some_and(|(min, _)| self.size < min) {
                    return self.refuse(s3_error!(
                        EntityTooSmall,
                        "Your proposed upload is smaller than the minimum allowed size"
                    ));
                }
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
