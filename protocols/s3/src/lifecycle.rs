//! Put/Get/DeleteBucketLifecycleConfiguration: S3's XML form of the core's rules
//! (`davit_storage::lifecycle`). What is malformed as XML is refused here (MalformedXML);
//! what the rules allow is the core's to say (InvalidArgument). Transitions are refused:
//! davit has one storage class.

use std::time::{Duration, UNIX_EPOCH};

use davit_storage::lifecycle::{Expiration, Filter, FilterForm, Lifecycle, NoncurrentExpiration, Rule};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::bucket_error;
use crate::tagging::{pairs, tag_set};

fn days(d: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    match d {
        None => Ok(None),
        Some(n) if n > 0 => Ok(Some(n as u32)),
        Some(_) => Err(s3_error!(InvalidArgument, "{what} must be a positive integer")),
    }
}

fn size(s: Option<i64>) -> S3Result<Option<u64>> {
    s.map(|n| u64::try_from(n).map_err(|_| s3_error!(InvalidArgument, "an object size cannot be negative"))).transpose()
}

fn filter(rule_prefix: Option<String>, f: Option<LifecycleRuleFilter>) -> S3Result<Filter> {
    let f = match (rule_prefix, f) {
        (Some(_), Some(_)) => return Err(s3_error!(MalformedXML, "a rule has either a Prefix or a Filter, not both")),
        (Some(prefix), None) => return Ok(Filter { form: FilterForm::RulePrefix, prefix, ..Default::default() }),
        (None, None) => return Ok(Filter::default()),
        (None, Some(f)) => f,
    };
    let given = [
        f.prefix.is_some(),
        f.tag.is_some(),
        f.and.is_some(),
        f.object_size_greater_than.is_some(),
        f.object_size_less_than.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(s3_error!(MalformedXML, "a Filter holds one condition; several go in And"));
    }
    let mut out = Filter {
        size_greater: size(f.object_size_greater_than)?,
        size_less: size(f.object_size_less_than)?,
        ..Default::default()
    };
    out.form = if let Some(p) = f.prefix {
        out.prefix = p;
        FilterForm::Prefix
    } else if let Some(t) = f.tag {
        out.tags = pairs(vec![t])?;
        FilterForm::Tag
    } else if let Some(and) = f.and {
        out.prefix = and.prefix.unwrap_or_default();
        out.tags = pairs(and.tags.unwrap_or_default())?;
        out.size_greater = size(and.object_size_greater_than)?;
        out.size_less = size(and.object_size_less_than)?;
        FilterForm::And
    } else if out.size_greater.is_some() {
        FilterForm::SizeGreater
    } else if out.size_less.is_some() {
        FilterForm::SizeLess
    } else {
        FilterForm::Empty
    };
    Ok(out)
}

fn unix_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn rule(r: LifecycleRule) -> S3Result<Rule> {
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => return Err(s3_error!(MalformedXML, "a rule's Status is Enabled or Disabled")),
    };
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions.as_ref().is_some_and(|t| !t.is_empty())
    {
        return Err(s3_error!(InvalidStorageClass, "davit has one storage class: transitions are not supported"));
    }
    let expiration = r
        .expiration
        .map(|e| -> S3Result<Expiration> {
            Ok(Expiration {
                days: days(e.days, "Days")?,
                date: e.date.as_ref().map(unix_secs),
                expired_object_delete_marker: e.expired_object_delete_marker,
            })
        })
        .transpose()?;
    let noncurrent = r
        .noncurrent_version_expiration
        .map(|n| -> S3Result<NoncurrentExpiration> {
            Ok(NoncurrentExpiration {
                days: days(n.noncurrent_days, "NoncurrentDays")?,
                newer_versions: days(n.newer_noncurrent_versions, "NewerNoncurrentVersions")?,
            })
        })
        .transpose()?;
    let abort_upload_days = match r.abort_incomplete_multipart_upload {
        Some(a) => Some(
            days(a.days_after_initiation, "DaysAfterInitiation")?
                .ok_or_else(|| s3_error!(MalformedXML, "AbortIncompleteMultipartUpload needs DaysAfterInitiation"))?,
        ),
        None => None,
    };
    Ok(Rule {
        id: r.id.unwrap_or_default(),
        enabled,
        filter: filter(r.prefix, r.filter)?,
        expiration,
        abort_upload_days,
        noncurrent,
    })
}

fn to_tag((key, value): (String, String)) -> Tag {
    Tag { key: Some(key), value: Some(value) }
}

fn shown_filter(f: Filter) -> (Option<String>, Option<LifecycleRuleFilter>) {
    let size = |s: Option<u64>| s.map(|n| n as i64);
    let out = match f.form {
        FilterForm::RulePrefix => return (Some(f.prefix), None),
        FilterForm::Empty => LifecycleRuleFilter::default(),
        FilterForm::Prefix => LifecycleRuleFilter { prefix: Some(f.prefix), ..Default::default() },
        FilterForm::Tag => LifecycleRuleFilter { tag: f.tags.into_iter().next().map(to_tag), ..Default::default() },
        FilterForm::SizeGreater => {
            LifecycleRuleFilter { object_size_greater_than: size(f.size_greater), ..Default::default() }
        }
        FilterForm::SizeLess => LifecycleRuleFilter { object_size_less_than: size(f.size_less), ..Default::default() },
        FilterForm::And => LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some(f.prefix).filter(|p| !p.is_empty()),
                tags: Some(tag_set(f.tags)).filter(|t| !t.is_empty()),
                object_size_greater_than: size(f.size_greater),
                object_size_less_than: size(f.size_less),
            }),
            ..Default::default()
        },
    };
    (None, Some(out))
}

fn shown_rule(r: Rule) -> LifecycleRule {
    let (prefix, filter) = shown_filter(r.filter);
    LifecycleRule {
        id: Some(r.id),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        prefix,
        filter,
        expiration: r.expiration.map(|e| LifecycleExpiration {
            days: e.days.map(|d| d as i32),
            date: e.date.map(|s| Timestamp::from(UNIX_EPOCH + Duration::from_secs(s.max(0) as u64))),
            expired_object_delete_marker: e.expired_object_delete_marker,
        }),
        abort_incomplete_multipart_upload: r
            .abort_upload_days
            .map(|d| AbortIncompleteMultipartUpload { days_after_initiation: Some(d as i32) }),
        noncurrent_version_expiration: r.noncurrent.map(|n| NoncurrentVersionExpiration {
            noncurrent_days: n.days.map(|d| d as i32),
            newer_noncurrent_versions: n.newer_versions.map(|d| d as i32),
        }),
        noncurrent_version_transitions: None,
        transitions: None,
    }
}

pub async fn put(
    s3: &DavitS3,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let config =
        input.lifecycle_configuration.ok_or_else(|| s3_error!(MalformedXML, "no LifecycleConfiguration was sent"))?;
    if config.rules.len() > davit_storage::lifecycle::MAX_RULES {
        return Err(s3_error!(MalformedXML, "a lifecycle configuration has at most 1000 rules"));
    }
    let rules = config.rules.into_iter().map(rule).collect::<S3Result<Vec<_>>>()?;
    let path = format!("/{}", input.bucket);
    s3.storage.set_lifecycle(&p, &path, Lifecycle { rules }).await.map_err(bucket_error)?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
}

pub async fn get(
    s3: &DavitS3,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let config = s3.storage.lifecycle(&p, &format!("/{}", input.bucket)).await.map_err(bucket_error)?;
    let config = config.ok_or_else(|| s3_error!(NoSuchLifecycleConfiguration, "the bucket has no lifecycle"))?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(config.rules.into_iter().map(shown_rule).collect()),
        ..Default::default()
    }))
}

pub async fn delete(
    s3: &DavitS3,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    s3.storage.delete_lifecycle(&p, &format!("/{}", input.bucket)).await.map_err(bucket_error)?;
    Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
}
