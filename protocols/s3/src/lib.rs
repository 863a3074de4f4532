//! davit's S3-compatible API, on the `s3s` crate, over the storage core: a user's buckets
//! are the top-level folders of their drive whose names are valid bucket names, and a key is
//! the path inside that folder, so an object is the same file over WebDAV and REST.
//! Operations not built yet answer NotImplemented (the trait's default), never a wrong
//! success.

mod acl;
mod attributes;
mod bucket;
mod checksum;
mod copy;
mod cors;
mod delete;
mod errors;
mod get;
mod lifecycle;
mod list;
mod multipart;
mod names;
mod object_lock;
mod policy;
mod post;
mod put;
mod reach;
mod request;
mod sse;
mod stored;
mod tagging;
mod versions;

use std::sync::Arc;

use davit_http::PrincipalSlot;
use davit_storage::{Principal, Storage};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use errors::bucket_error;

pub use s3s::Body as S3Body;

/// The S3 front end: the s3s service, with signature failures counted like failed logins.
pub struct S3Front {
    service: S3Service,
    storage: Storage,
    /// For CORS, which reads the bucket from Host before s3s does.
    base_domain: Option<String>,
}

/// Builds the S3 front end; `base_domain` enables virtual-host-style addressing.
/// `reserved` are the first path segments the router in front takes for other front ends:
/// no bucket may have those names, or its path-style URLs would never reach S3.
pub fn service(storage: Storage, base_domain: Option<&str>, reserved: &[&str]) -> Result<Arc<S3Front>, String> {
    let verified = Arc::new(Verified::default());
    let reserved = reserved.iter().map(|r| (*r).to_owned()).collect();
    let own = reach::OwnBuckets::default();
    let mut b = S3ServiceBuilder::new(DavitS3 { storage: storage.clone(), verified: verified.clone(), reserved, own });
    b.set_auth(KeyAuth { storage: storage.clone(), verified });
    b.set_access(reach::Gate { public_read: storage.s3_public_read() });
    if let Some(d) = base_domain {
        // Validated as s3s would; parsed by BaseDomain.
        s3s::host::SingleDomain::new(d).map_err(|e| format!("base domain {d}: {e}"))?;
        b.set_host(BaseDomain(d.to_ascii_lowercase()));
    }
    let base_domain = base_domain.map(str::to_ascii_lowercase);
    Ok(Arc::new(S3Front { service: b.build(), storage, base_domain }))
}

/// Virtual-host addressing under one base domain: `<bucket>.<domain>[:port]` names the
/// bucket, any other host (the domain itself, an IP address, another name) is path style;
/// the router in front reads Host with the same function. s3s's `SingleDomain` keeps the
/// port in the bucket name and takes any other host name for a bucket (CNAME style).
struct BaseDomain(String);

impl s3s::host::S3Host for BaseDomain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        let domain = self.0.as_str();
        let vh = s3s::host::VirtualHost::new(domain);
        Ok(match davit_http::virtual_host_bucket(host, domain) {
            Some(b) => vh.with_bucket(b),
            None => vh,
        })
    }
}

/// S3's longest presigned URL life: seven days.
const MAX_PRESIGNED_SECS: u64 = 7 * 24 * 3600;

fn query_value<'a>(req: &'a http::Request<s3s::Body>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Refuses a presigned URL that claims to live longer than S3 allows (s3s checks only that
/// it has not expired yet). SigV4 says how long (`X-Amz-Expires`); SigV2 says until when
/// (`Expires`, seconds since the epoch), which may be no later than seven days from now.
fn check_presigned_expiry(req: &http::Request<s3s::Body>) -> Result<(), s3s::S3Error> {
    // A negative lifetime (botocore signs what it is given) ended before it began.
    if query_value(req, "X-Amz-Expires").is_some_and(|v| v.parse::<i64>().is_ok_and(|s| s < 0)) {
        return Err(s3s::S3Error::with_message(s3s::S3ErrorCode::AccessDenied, "Request has expired"));
    }
    match query_value(req, "X-Amz-Expires").map(str::parse::<u64>) {
        Some(Ok(secs)) if secs > MAX_PRESIGNED_SECS => {
            let mut e = s3s::S3Error::with_message(
                s3s::S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
                "X-Amz-Expires must be less than a week (in seconds) that is; 604800",
            );
            // 403 as s3-tests (RGW) expects; AWS answers this code with 400.
            e.set_status_code(http::StatusCode::FORBIDDEN);
            return Err(e);
        }
        _ => {}
    }
    if query_value(req, "Signature").is_some()
        && let Some(expires) = query_value(req, "Expires")
    {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Unparsable values are s3s's to refuse.
        if expires.parse::<u64>().is_ok_and(|at| at > now.saturating_add(MAX_PRESIGNED_SECS)) {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::AccessDenied,
                "a presigned URL lives at most seven days: Expires is further ahead than that",
            ));
        }
    }
    Ok(())
}

fn slow_down(secs: u64) -> http::Response<s3s::Body> {
    let mut e = s3s::S3Error::with_message(s3s::S3ErrorCode::SlowDown, "too many failed signatures; retry later");
    e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty()));
    resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    resp
}

impl S3Front {
    /// Serves one S3 request. Signature failures count per client address only, at a
    /// threshold meant to protect the server: secrets are 40 random characters, so there is
    /// nothing to guess, and counting per access key id would let anyone who saw one in a
    /// presigned URL lock its owner out.
    /// `request_id` is the server's id of the request: S3 clients read it from
    /// `x-amz-request-id` and from an error's `RequestId`, to quote it in bug reports.
    pub async fn handle(
        &self,
        req: http::Request<s3s::Body>,
        request_id: &str,
    ) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        let mut req = req;
        // The access log names the user the request acted as, known only inside an operation.
        let slot = PrincipalSlot::install(req.extensions_mut());
        let asked = cors::Asked::of(&req, self.base_domain.as_deref());
        let mut resp = match &asked {
            Some(a) if a.is_preflight() => cors::preflight(&self.storage, a).await,
            _ => self.answer(req).await?,
        };
        slot.hand_over(resp.extensions_mut());
        if let Some(a) = asked.as_ref().filter(|a| !a.is_preflight()) {
            cors::decorate(&self.storage, a, &mut resp).await;
        }
        if let Ok(v) = http::HeaderValue::from_str(request_id) {
            resp.headers_mut().insert("x-amz-request-id", v);
        }
        if resp.status().as_u16() >= 400
            && let Some(body) = resp.body().bytes()
            && let Some(completed) = errors::complete_body(&body, request_id)
        {
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(completed.len()));
            *resp.body_mut() = s3s::Body::from(bytes::Bytes::from(completed));
        }
        Ok(resp)
    }

    async fn answer(&self, req: http::Request<s3s::Body>) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        let addr = req.extensions().get::<davit_storage::ClientAddr>().copied();
        if let Err(davit_storage::Error::Throttled(secs)) = self.storage.throttle().s3_check(addr) {
            return Ok(slow_down(secs));
        }
        if let Err(e) = check_presigned_expiry(&req) {
            return Ok(e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty())));
        }
        let mut req = req;
        if let Err(e) = request::prepare(&mut req) {
            return Ok(e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty())));
        }
        let resp = match post::target(&req, self.base_domain.as_deref()) {
            Some(bucket) => post::handle(&self.storage, req, bucket)
                .await
                .unwrap_or_else(|e| e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty()))),
            None => self.service.call(req).await?,
        };
        if resp.status() == http::StatusCode::FORBIDDEN {
            let body = resp.body().bytes().unwrap_or_default();
            let bad = [b"<Code>SignatureDoesNotMatch</Code>".as_slice(), b"<Code>InvalidAccessKeyId</Code>".as_slice()];
            if bad.iter().any(|c| body.windows(c.len()).any(|w| w == *c)) {
                self.storage.throttle().s3_failed(addr);
            }
        }
        Ok(resp)
    }
}

/// Access keys from the core: SigV4 needs the secret itself.
struct KeyAuth {
    storage: Storage,
    verified: Arc<Verified>,
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let asked = std::time::Instant::now();
        match self.storage.access_key_secret(access_key).await {
            Ok(key) => {
                match key.owner {
                    Some(owner) => self.verified.keep(access_key, owner, asked),
                    // An owner who may not act now (disabled since): the entry a request just
                    // before left must not stand in for this one's check.
                    None => self.verified.forget(access_key),
                }
                Ok(SecretKey::from(key.secret))
            }
            Err(e) => Err(key_lookup_error(e)),
        }
    }
}

/// A key that could not be looked up: unknown (or any refusal, told alike, so a key id
/// reveals nothing) unless the store itself failed, which the client must hear as that (503
/// when it is out of reach) rather than as a bad key it would stop retrying.
fn key_lookup_error(e: davit_storage::Error) -> s3s::S3Error {
    match e {
        e @ (davit_storage::Error::Unavailable(_) | davit_storage::Error::Internal(_)) => errors::s3_error(e),
        _ => s3_error!(InvalidAccessKeyId, "the access key does not exist"),
    }
}

/// Owners of access keys just read to verify a signature, handed on to the operation of the
/// same request so that it need not read them again (a thread hop each, on every request).
/// An entry is used only while it is younger than a request takes to be authenticated and
/// dispatched: a revocation or a disable is seen by the next signature check, which reads.
/// None: the owner could not act when last looked up (see [`Verified::forget`]).
#[derive(Default)]
struct Verified(std::sync::Mutex<std::collections::HashMap<String, (Option<Principal>, std::time::Instant)>>);

const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl Verified {
    /// `asked`: when the lookup that found `owner` began. One that began before a lookup that
    /// found the owner unable to act (disabled meanwhile) does not stand in for it.
    fn keep(&self, key: &str, owner: Principal, asked: std::time::Instant) {
        let mut m = self.0.lock().expect("verified keys");
        if m.len() > 1024 {
            m.retain(|_, (_, at)| at.elapsed() < VERIFIED_FOR);
        }
        if m.get(key).is_some_and(|(o, at)| o.is_none() && *at > asked) {
            return;
        }
        m.insert(key.to_owned(), (Some(owner), std::time::Instant::now()));
    }

    fn forget(&self, key: &str) {
        self.0.lock().expect("verified keys").insert(key.to_owned(), (None, std::time::Instant::now()));
    }

    fn recent(&self, key: &str) -> Option<Principal> {
        let m = self.0.lock().expect("verified keys");
        m.get(key).filter(|(_, at)| at.elapsed() < VERIFIED_FOR).and_then(|(u, _)| u.clone())
    }
}

pub(crate) struct DavitS3 {
    pub storage: Storage,
    verified: Arc<Verified>,
    /// Names the router takes for itself: never buckets.
    reserved: Vec<String>,
    /// Buckets recently found to be the caller's own.
    own: reach::OwnBuckets,
}

impl DavitS3 {
    /// Who the request acts as: the owner of its (already verified) access key, reaching
    /// the bucket it names as the core says (`Storage::s3_principal`: one's own, another
    /// owner's through grants, or a bucket readable to everyone); an unsigned request only
    /// a bucket anyone may read.
    pub(crate) async fn principal<T>(&self, req: &S3Request<T>) -> S3Result<Principal> {
        let bucket = req.extensions.get::<reach::RequestBucket>().map(|b| b.0.as_str());
        let p = match &req.credentials {
            Some(cred) => {
                let p = match self.verified.recent(&cred.access_key) {
                    Some(p) => p,
                    None => match self.storage.access_key_principal(&cred.access_key).await {
                        Ok(p) => p,
                        Err(davit_storage::Error::Forbidden(m)) => return Err(s3_error!(AccessDenied, "{m}")),
                        Err(e) => return Err(key_lookup_error(e)),
                    },
                };
                let mut p = match bucket {
                    Some(b) if !self.own.is_own(p.user_id(), b) => self.reach(Some(p), b).await?,
                    _ => p,
                };
                // A copy names a second bucket, its source: reached the same way.
                if let Some(src) = reach::copy_source_bucket(&req.headers)
                    && Some(src) != bucket
                    && !self.own.is_own(p.user_id(), src)
                {
                    p = self.reach(Some(p), src).await?;
                }
                p
            }
            None => {
                let b = bucket.ok_or_else(|| s3_error!(AccessDenied, "anonymous access is not allowed"))?;
                self.reach(None, b).await?
            }
        };
        PrincipalSlot::fill(&req.extensions, &p);
        Ok(p)
    }

    async fn reach(&self, p: Option<Principal>, bucket: &str) -> S3Result<Principal> {
        use davit_storage::s3_view::S3Reach;
        match self.storage.s3_principal(p.as_ref(), bucket).await {
            Ok(S3Reach::Routed(routed)) => Ok(routed),
            Ok(reach) => {
                let p = p.ok_or_else(|| s3_error!(AccessDenied, "anonymous access is not allowed"))?;
                if matches!(reach, S3Reach::Own) {
                    self.own.keep(p.user_id(), bucket);
                }
                Ok(p)
            }
            Err(e) => Err(errors::s3_error(e)),
        }
    }

    /// Refuses a bucket that does not exist (or is not a folder).
    pub(crate) async fn bucket(&self, p: &Principal, bucket: &str) -> S3Result<()> {
        if bucket == davit_storage::names::SHARED_ROOT {
            return Ok(());
        }
        match self.storage.stat(p, &format!("/{bucket}")).await {
            Ok(item) if item.is_folder() => Ok(()),
            Ok(_) => Err(s3_error!(NoSuchBucket, "no such bucket")),
            // Another owner's bucket of which prefixes are shared with the caller: it
            // exists for them; each key decides.
            Err(davit_storage::Error::Forbidden(_)) if matches!(p.scope(), davit_storage::Scope::S3Bucket(_)) => Ok(()),
            Err(e) => Err(bucket_error(e)),
        }
    }
}

/// Each operation davit builds, as `operation(Input) -> Output => module::function;`: the
/// trait method hands the request to that function, where the mapping onto the core lives.
/// Operations not listed answer NotImplemented (the trait's default).
macro_rules! delegate {
    ($($op:ident($input:ident) -> $output:ident => $($f:ident)::+;)*) => {
        #[async_trait::async_trait]
        impl S3 for DavitS3 {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    $($f)::+(self, req).await
                }
            )*
        }
    };
}

delegate! {
    list_buckets(ListBucketsInput) -> ListBucketsOutput => bucket::list;
    create_bucket(CreateBucketInput) -> CreateBucketOutput => acl::create_bucket;
    put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput => policy::put;
    get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput => policy::get;
    delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput => policy::delete;
    get_bucket_policy_status(GetBucketPolicyStatusInput) -> GetBucketPolicyStatusOutput => policy::status;
    get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput => acl::get_bucket;
    put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput => acl::put_bucket;
    get_object_acl(GetObjectAclInput) -> GetObjectAclOutput => acl::get_object;
    put_object_acl(PutObjectAclInput) -> PutObjectAclOutput => acl::put_object;
    head_bucket(HeadBucketInput) -> HeadBucketOutput => bucket::head;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput => bucket::delete;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput => bucket::location;
    get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput => versions::get_bucket_versioning;
    put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput => versions::put_bucket_versioning;
    list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput => versions::list_object_versions;
    put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput => object_lock::put_config;
    get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput => object_lock::get_config;
    put_object_retention(PutObjectRetentionInput) -> PutObjectRetentionOutput => object_lock::put_retention;
    get_object_retention(GetObjectRetentionInput) -> GetObjectRetentionOutput => object_lock::get_retention;
    put_object_legal_hold(PutObjectLegalHoldInput) -> PutObjectLegalHoldOutput => object_lock::put_legal_hold;
    get_object_legal_hold(GetObjectLegalHoldInput) -> GetObjectLegalHoldOutput => object_lock::get_legal_hold;
    put_object(PutObjectInput) -> PutObjectOutput => put::put_object;
    get_object(GetObjectInput) -> GetObjectOutput => get::get_object;
    head_object(HeadObjectInput) -> HeadObjectOutput => get::head_object;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput => delete::delete_object;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput => delete::delete_objects;
    copy_object(CopyObjectInput) -> CopyObjectOutput => copy::copy_object;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output => list::list_objects_v2;
    list_objects(ListObjectsInput) -> ListObjectsOutput => list::list_objects;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput => multipart::create;
    upload_part(UploadPartInput) -> UploadPartOutput => multipart::upload_part;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput => multipart::upload_part_copy;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput => multipart::complete;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput => multipart::abort;
    put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput => cors::put_bucket_cors;
    get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput => cors::get_bucket_cors;
    delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput => cors::delete_bucket_cors;
    get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput => sse::get_bucket_encryption;
    put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput => sse::put_bucket_encryption;
    delete_bucket_encryption(DeleteBucketEncryptionInput) -> DeleteBucketEncryptionOutput => sse::delete_bucket_encryption;
    list_parts(ListPartsInput) -> ListPartsOutput => multipart::list_parts;
    list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput => multipart::list_uploads;
    put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput => tagging::put_object_tagging;
    get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput => tagging::get_object_tagging;
    delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput => tagging::delete_object_tagging;
    put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput => tagging::put_bucket_tagging;
    get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput => tagging::get_bucket_tagging;
    delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput => tagging::delete_bucket_tagging;
    put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput => lifecycle::put;
    get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput => lifecycle::get;
    delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput => lifecycle::delete;
    get_object_attributes(GetObjectAttributesInput) -> GetObjectAttributesOutput => attributes::get_object_attributes;
}

#[cfg(test)]
mod tests {
    use s3s::host::S3Host;

    use super::BaseDomain;

    #[test]
    fn s3s_sees_the_bucket_of_a_virtual_host() {
        let d = BaseDomain("s3.example".into());
        let bucket = |host: &str| d.parse_host_header(host).unwrap().bucket().map(str::to_owned);
        assert_eq!(bucket("Photos.S3.Example:9000").as_deref(), Some("photos"));
        assert_eq!(bucket("s3.example:9000"), None);
    }
}
