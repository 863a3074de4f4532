//! Object lock: CreateBucket with `x-amz-bucket-object-lock-enabled`, Put/Get
//! ObjectLockConfiguration, Put/GetObjectRetention, Put/GetObjectLegalHold, and the
//! `x-amz-object-lock-*` headers of writes and reads. The rules (who may shorten or destroy
//! what) are the core's (`davit_storage::Storage::set_retention`, `delete_version`); this
//! maps S3's shapes and error codes onto them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use davit_storage::{Error, LockMode, LockPeriod, LockState, ObjectLock, Principal, VersionLock};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::{bucket_error, s3_error as map};

/// S3 asks for an integrity header (Content-MD5 or an `x-amz-checksum-*`, possibly sent as a
/// trailer) on every request that sets a lock: a corrupted body would otherwise be kept,
/// or a corrupted date or mode applied, for a time no one can shorten.
pub(crate) fn has_integrity(headers: &http::HeaderMap) -> bool {
    let checksum = |name: &str| {
        name.strip_prefix("x-amz-checksum-").is_some_and(|alg| !matches!(alg, "type" | "mode" | "algorithm"))
    };
    headers.contains_key("content-md5")
        || headers.keys().any(|k| checksum(k.as_str()))
        || headers.get_all("x-amz-trailer").iter().any(|v| v.to_str().is_ok_and(|v| v.contains("x-amz-checksum-")))
}

/// Refuses, as S3 does, a request setting a lock without an integrity header (`what`: the
/// operation, as S3's message names it).
pub(crate) fn require_integrity(headers: &http::HeaderMap, what: &str) -> S3Result<()> {
    if has_integrity(headers) {
        return Ok(());
    }
    Err(S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        format!(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for {what} requests with Object Lock parameters"
        ),
    ))
}

fn missing_config() -> S3Error {
    s3_error!(InvalidRequest, "Bucket is missing ObjectLockConfiguration")
}

/// The core's refusal of a bucket without object lock is S3's InvalidRequest.
fn lock_error(e: Error) -> S3Error {
    match e {
        Error::InvalidInput(m) if m.contains("ObjectLockConfiguration") => missing_config(),
        Error::NotFound(m) if m.what == davit_storage::What::Version => {
            S3Error::with_message(S3ErrorCode::NoSuchVersion, m.to_string())
        }
        Error::NotFound(m) => S3Error::with_message(S3ErrorCode::NoSuchKey, m.to_string()),
        e => map(e),
    }
}

fn mode_of(s: &str) -> S3Result<LockMode> {
    match s {
        "GOVERNANCE" => Ok(LockMode::Governance),
        "COMPLIANCE" => Ok(LockMode::Compliance),
        _ => Err(s3_error!(MalformedXML, "the mode must be GOVERNANCE or COMPLIANCE")),
    }
}

fn mode_name(m: LockMode) -> &'static str {
    match m {
        LockMode::Governance => "GOVERNANCE",
        LockMode::Compliance => "COMPLIANCE",
    }
}

fn nanos_of(t: &Timestamp) -> i64 {
    let t = time::OffsetDateTime::from(t.clone());
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn timestamp(nanos: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

async fn config_of(s3: &DavitS3, p: &Principal, bucket: &str) -> S3Result<Option<ObjectLock>> {
    s3.bucket(p, bucket).await?;
    s3.storage.object_lock(p, &format!("/{bucket}")).await.map_err(bucket_error)
}

/// CreateBucket with object lock: the bucket just made gets it (and versioning).
pub(crate) async fn enable(s3: &DavitS3, p: &Principal, bucket: &str) -> S3Result<()> {
    s3.storage.enable_object_lock(p, &format!("/{bucket}")).await.map_err(bucket_error)
}

/// Whether versioning may be suspended on `bucket` (not with object lock: InvalidBucketState).
pub(crate) async fn check_suspend(s3: &DavitS3, p: &Principal, bucket: &str) -> S3Result<()> {
    if config_of(s3, p, bucket).await?.is_some() {
        return Err(s3_error!(InvalidBucketState, "versioning cannot be suspended on a bucket with object lock"));
    }
    Ok(())
}

pub async fn put_config(
    s3: &DavitS3,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let p = s3.principal(&req).await?;
    require_integrity(&req.headers, "Put Object Lock Configuration")?;
    let input = req.input;
    if config_of(s3, &p, &input.bucket).await?.is_none() {
        return Err(s3_error!(InvalidBucketState, "object lock is enabled only when a bucket is made"));
    }
    let cfg = input.object_lock_configuration.unwrap_or_default();
    if cfg.object_lock_enabled.as_ref().is_some_and(|e| e.as_str() != ObjectLockEnabled::ENABLED) {
        return Err(s3_error!(MalformedXML, "ObjectLockEnabled must be Enabled"));
    }
    let default = match cfg.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => {
            let mode = mode_of(d.mode.as_ref().map_or("", |m| m.as_str()))?;
            let period = match (d.days, d.years) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(s3_error!(MalformedXML, "a default retention has Days or Years"));
                }
                (Some(n), None) | (None, Some(n)) if n <= 0 => {
                    // s3s knows no such code; S3 answers it with 400.
                    let mut e = S3Error::with_message(
                        S3ErrorCode::Custom("InvalidRetentionPeriod".into()),
                        "the retention period must be a positive integer",
                    );
                    e.set_status_code(http::StatusCode::BAD_REQUEST);
                    return Err(e);
                }
                (Some(n), None) => LockPeriod::Days(n.unsigned_abs()),
                (None, Some(n)) => LockPeriod::Years(n.unsigned_abs()),
            };
            Some((mode, period))
        }
    };
    let path = format!("/{}", input.bucket);
    s3.storage.set_object_lock(&p, &path, ObjectLock { default }).await.map_err(bucket_error)?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_config(
    s3: &DavitS3,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let p = s3.principal(&req).await?;
    let Some(cfg) = config_of(s3, &p, &req.input.bucket).await? else {
        return Err(s3_error!(
            ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket"
        ));
    };
    let rule = cfg.default.map(|(mode, period)| {
        let (days, years) = match period {
            LockPeriod::Days(d) => (i32::try_from(d).ok(), None),
            LockPeriod::Years(y) => (None, i32::try_from(y).ok()),
        };
        let mode = Some(ObjectLockRetentionMode::from_static(mode_name(mode)));
        ObjectLockRule { default_retention: Some(DefaultRetention { days, mode, years }) }
    });
    let object_lock_enabled = Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED));
    let object_lock_configuration = Some(ObjectLockConfiguration { object_lock_enabled, rule });
    Ok(S3Response::new(GetObjectLockConfigurationOutput { object_lock_configuration }))
}

pub async fn put_retention(
    s3: &DavitS3,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let p = s3.principal(&req).await?;
    require_integrity(&req.headers, "Put Object Retention")?;
    let input = req.input;
    if config_of(s3, &p, &input.bucket).await?.is_none() {
        return Err(missing_config());
    }
    let r = input.retention.unwrap_or_default();
    let retention = match (r.mode, r.retain_until_date) {
        (None, None) => None,
        (Some(m), Some(d)) => Some((mode_of(m.as_str())?, nanos_of(&d))),
        _ => return Err(s3_error!(MalformedXML, "a retention has both Mode and RetainUntilDate")),
    };
    let path = crate::names::file_path(&input.bucket, &input.key)?;
    let bypass = input.bypass_governance_retention.unwrap_or(false);
    s3.storage.set_retention(&p, &path, input.version_id.as_deref(), retention, bypass).await.map_err(lock_error)?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

/// The retention and legal hold of one version, for GetObjectRetention and
/// GetObjectLegalHold: asked only of a bucket with object lock.
async fn state_of(s3: &DavitS3, p: &Principal, bucket: &str, key: &str, version: Option<&str>) -> S3Result<LockState> {
    if config_of(s3, p, bucket).await?.is_none() {
        return Err(missing_config());
    }
    let path = crate::names::file_path(bucket, key)?;
    s3.storage.lock_state(p, &path, version).await.map_err(lock_error)
}

pub async fn get_retention(
    s3: &DavitS3,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let st = state_of(s3, &p, &input.bucket, &input.key, input.version_id.as_deref()).await?;
    let Some(r) = st.retention else {
        return Err(s3_error!(NoSuchObjectLockConfiguration, "the object has no retention"));
    };
    let retention = Some(ObjectLockRetention {
        mode: Some(ObjectLockRetentionMode::from_static(mode_name(r.mode))),
        retain_until_date: Some(timestamp(r.until)),
    });
    Ok(S3Response::new(GetObjectRetentionOutput { retention }))
}

fn hold_of(s: &str) -> S3Result<bool> {
    match s {
        ObjectLockLegalHoldStatus::ON => Ok(true),
        ObjectLockLegalHoldStatus::OFF => Ok(false),
        _ => Err(s3_error!(MalformedXML, "the legal hold status must be ON or OFF")),
    }
}

pub async fn put_legal_hold(
    s3: &DavitS3,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let p = s3.principal(&req).await?;
    require_integrity(&req.headers, "Put Object Legal Hold")?;
    let input = req.input;
    if config_of(s3, &p, &input.bucket).await?.is_none() {
        return Err(missing_config());
    }
    let status = input.legal_hold.and_then(|h| h.status);
    let on = hold_of(status.as_ref().map_or("", |s| s.as_str()))?;
    let path = crate::names::file_path(&input.bucket, &input.key)?;
    s3.storage.set_legal_hold(&p, &path, input.version_id.as_deref(), on).await.map_err(lock_error)?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub async fn get_legal_hold(
    s3: &DavitS3,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    let st = state_of(s3, &p, &input.bucket, &input.key, input.version_id.as_deref()).await?;
    let s = if st.legal_hold { ObjectLockLegalHoldStatus::ON } else { ObjectLockLegalHoldStatus::OFF };
    let legal_hold = Some(ObjectLockLegalHold { status: Some(ObjectLockLegalHoldStatus::from_static(s)) });
    Ok(S3Response::new(GetObjectLegalHoldOutput { legal_hold }))
}

/// The lock a write asks for with its `x-amz-object-lock-*` headers: PutObject, CopyObject
/// and CreateMultipartUpload carry the same three fields.
macro_rules! asked_by {
    ($s3:expr, $p:expr, $input:expr) => {
        $crate::object_lock::asked(
            $s3,
            $p,
            &$input.bucket,
            $input.object_lock_mode.as_ref(),
            $input.object_lock_retain_until_date.as_ref(),
            $input.object_lock_legal_hold_status.as_ref(),
        )
    };
}
pub(crate) use asked_by;

/// Checks a write's lock headers before anything is written: mode and date go together, in
/// the future, and only in a bucket with object lock. The write hands the answer to the core,
/// which sets it in the write's own transaction.
pub(crate) async fn asked(
    s3: &DavitS3,
    p: &Principal,
    bucket: &str,
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<VersionLock> {
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok(VersionLock::default());
    }
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(d)) => {
            let until = nanos_of(d);
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            if i128::from(until) <= i128::try_from(now).unwrap_or(i128::MAX) {
                return Err(s3_error!(InvalidArgument, "The retain until date must be in the future!"));
            }
            Some((mode_of(m.as_str()).map_err(|_| s3_error!(InvalidArgument, "Unknown wormMode directive."))?, until))
        }
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
            ));
        }
    };
    let hold = match hold {
        None => None,
        Some(h) => Some(
            hold_of(h.as_str())
                .map_err(|_| s3_error!(InvalidArgument, "Legal Hold must be either of 'ON' or 'OFF'"))?,
        ),
    };
    if config_of(s3, p, bucket).await?.is_none() {
        return Err(missing_config());
    }
    Ok(VersionLock { retention, legal_hold: hold })
}

/// Sets a lock on the current version at `path`, for a write that makes no new version (a
/// copy onto itself).
pub(crate) async fn set_on_current(s3: &DavitS3, p: &Principal, path: &str, lock: VersionLock) -> S3Result<()> {
    if let Some(r) = lock.retention {
        s3.storage.set_retention(p, path, None, Some(r), false).await.map_err(lock_error)?;
    }
    if let Some(on) = lock.legal_hold {
        s3.storage.set_legal_hold(p, path, None, on).await.map_err(lock_error)?;
    }
    Ok(())
}

/// The `x-amz-object-lock-*` answers of GET and HEAD for version `id` (the current one when
/// `None`): (mode, retain-until, legal hold); nothing outside a bucket with object lock.
pub(crate) async fn answered(
    s3: &DavitS3,
    p: &Principal,
    path: &str,
    id: Option<&str>,
) -> (Option<ObjectLockMode>, Option<Timestamp>, Option<ObjectLockLegalHoldStatus>) {
    // A read is answered even when the lock state cannot be read (it only adds headers).
    answer(s3.storage.lock_state(p, path, id).await.unwrap_or_default())
}

/// A lock state as the three headers of a GET or HEAD.
pub(crate) fn answer(st: LockState) -> (Option<ObjectLockMode>, Option<Timestamp>, Option<ObjectLockLegalHoldStatus>) {
    let hold = st.legal_hold.then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON));
    match st.retention {
        Some(r) => (Some(ObjectLockMode::from_static(mode_name(r.mode))), Some(timestamp(r.until)), hold),
        None => (None, None, hold),
    }
}

/// The upload's headers that carry a CreateMultipartUpload's lock to its completion (the
/// upload keeps its headers until then, as it keeps `x-amz-checksum-type`).
const UPLOAD_MODE: &str = "x-amz-object-lock-mode";
const UPLOAD_UNTIL: &str = "x-amz-object-lock-retain-until-date";
const UPLOAD_HOLD: &str = "x-amz-object-lock-legal-hold";

/// A write's lock as upload headers.
pub(crate) fn upload_headers(lock: &VersionLock) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some((mode, until)) = lock.retention {
        out.push((UPLOAD_MODE.to_owned(), mode_name(mode).to_owned()));
        out.push((UPLOAD_UNTIL.to_owned(), until.to_string()));
    }
    if let Some(on) = lock.legal_hold {
        out.push((UPLOAD_HOLD.to_owned(), if on { "ON" } else { "OFF" }.to_owned()));
    }
    out
}

/// What [`upload_headers`] kept (an unreadable value is no lock asked: they are ours).
pub(crate) fn of_upload_headers(headers: &[(String, String)]) -> VersionLock {
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let retention = match (get(UPLOAD_MODE).map(mode_of), get(UPLOAD_UNTIL).and_then(|u| u.parse().ok())) {
        (Some(Ok(mode)), Some(until)) => Some((mode, until)),
        _ => None,
    };
    VersionLock { retention, legal_hold: get(UPLOAD_HOLD).map(|h| h == "ON") }
}
