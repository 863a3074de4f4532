//! Server-side encryption as S3 clients ask for it. Every object is encrypted at rest by the
//! core (AES-256-GCM under keys derived from the master key), whatever the request says, so
//! the one mode davit has is what S3 calls SSE-S3: `AES256` is accepted and reported on every
//! object, and a bucket's default encryption is always `AES256`. Keys held by a KMS
//! (`aws:kms`, `aws:kms:dsse`) or by the client (SSE-C) are not built: such requests are
//! refused before anything is stored, never silently written under another scheme.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;

/// What every object answer reports.
pub fn aes256() -> Option<ServerSideEncryption> {
    Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256))
}

fn not_implemented(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!(
            "A header you provided implies functionality that is not implemented: {what}; \
             every object is encrypted at rest with the server's keys (AES256)"
        ),
    )
}

/// Checks the encryption headers of any S3 request before s3s parses it, so that PutObject,
/// CopyObject, CreateMultipartUpload, UploadPart and reads refuse alike.
pub fn check_headers(method: &http::Method, h: &http::HeaderMap) -> S3Result<()> {
    // A read names no encryption for what it reads (S3 refuses it; s3-tests'
    // test_sse_s3_default_method_head expects so).
    if (method == http::Method::GET || method == http::Method::HEAD) && h.contains_key("x-amz-server-side-encryption") {
        return Err(s3_error!(InvalidArgument, "x-amz-server-side-encryption is not taken by a read"));
    }
    for name in ["x-amz-server-side-encryption", "x-amz-copy-source-server-side-encryption"] {
        if let Some(v) = h.get(name) {
            match v.to_str().unwrap_or_default() {
                "AES256" => {}
                "aws:kms" | "aws:kms:dsse" => return Err(not_implemented("SSE-KMS")),
                _ => {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The encryption method specified is not supported (only AES256)"
                    ));
                }
            }
        }
    }
    if h.contains_key("x-amz-server-side-encryption-aws-kms-key-id")
        || h.contains_key("x-amz-server-side-encryption-context")
    {
        return Err(not_implemented("SSE-KMS"));
    }
    let customer = [
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-customer-key-md5",
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        "x-amz-copy-source-server-side-encryption-customer-key",
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
    ];
    if customer.iter().any(|n| h.contains_key(*n)) {
        return Err(not_implemented("SSE-C (customer-provided keys)"));
    }
    Ok(())
}

/// The one configuration a bucket has.
fn configuration() -> ServerSideEncryptionConfiguration {
    ServerSideEncryptionConfiguration {
        rules: vec![ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                sse_algorithm: ServerSideEncryption::from_static(ServerSideEncryption::AES256),
                kms_master_key_id: None,
            }),
            bucket_key_enabled: Some(false),
        }],
    }
}

pub async fn get_bucket_encryption(
    s3: &DavitS3,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    Ok(S3Response::new(GetBucketEncryptionOutput { server_side_encryption_configuration: Some(configuration()) }))
}

/// Accepts only what the bucket already is: AES256 by default.
pub async fn put_bucket_encryption(
    s3: &DavitS3,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    let rules = &req.input.server_side_encryption_configuration.rules;
    if rules.is_empty() {
        return Err(s3_error!(MalformedXML, "the configuration has no rule"));
    }
    for rule in rules {
        if let Some(d) = &rule.apply_server_side_encryption_by_default {
            match d.sse_algorithm.as_str() {
                ServerSideEncryption::AES256 if d.kms_master_key_id.is_none() => {}
                ServerSideEncryption::AES256 => {
                    return Err(s3_error!(InvalidArgument, "a KMS key id goes only with aws:kms"));
                }
                "aws:kms" | "aws:kms:dsse" => return Err(not_implemented("SSE-KMS")),
                _ => return Err(s3_error!(MalformedXML, "unknown SSEAlgorithm")),
            }
        }
    }
    Ok(S3Response::new(PutBucketEncryptionOutput::default()))
}

/// Nothing to remove: the bucket stays encrypted with AES256, as S3 buckets now do.
pub async fn delete_bucket_encryption(
    s3: &DavitS3,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
}
