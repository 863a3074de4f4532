//! ACLs: Get/PutBucketAcl, Get/PutObjectAcl and the ACL of CreateBucket, over the core's
//! shares (`davit_storage::s3_grants`). A bucket ACL shows and sets the shares on the
//! bucket itself and who else may read it; an object ACL the shares on that object. The
//! core decides what an ACL means (`s3_policy::acl_grants`, `canned`); this maps shapes.

use davit_storage::Principal;
use davit_storage::s3_grants::{BucketSharing, Within};
use davit_storage::s3_policy::{
    ALL_USERS, AUTHENTICATED_USERS, AclWho, Asked, Audience, acl_grants, canned, check_owner_kept,
};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::bucket_error;
use crate::policy::{change_error, refusal};

fn grantee(type_: &str, id: Option<String>, name: Option<String>, uri: Option<String>) -> Grantee {
    Grantee { display_name: name, email_address: None, id, type_: Type::from(type_.to_owned()), uri }
}

fn grant(g: Grantee, permission: &str) -> Grant {
    Grant { grantee: Some(g), permission: Some(Permission::from(permission.to_owned())) }
}

/// The ACL S3 shows for a bucket's or object's sharing: the owner's FULL_CONTROL, READ
/// (and WRITE, for read-write) per share, READ for the group that may read the bucket.
fn acl_of(sharing: &BucketSharing) -> (Owner, Vec<Grant>) {
    let owner = Owner { display_name: Some(sharing.owner_name.clone()), id: Some(sharing.owner_id.clone()) };
    let mut grants = vec![grant(
        grantee(Type::CANONICAL_USER, owner.id.clone(), owner.display_name.clone(), None),
        Permission::FULL_CONTROL,
    )];
    for s in &sharing.shares {
        let who = grantee(Type::CANONICAL_USER, Some(s.grantee_id.clone()), Some(s.grantee.clone()), None);
        grants.push(grant(who.clone(), Permission::READ));
        if s.write {
            grants.push(grant(who, Permission::WRITE));
        }
    }
    let group = match sharing.audience {
        Audience::Private => None,
        Audience::Authenticated => Some(AUTHENTICATED_USERS),
        Audience::Public => Some(ALL_USERS),
    };
    if let Some(uri) = group {
        grants.push(grant(grantee(Type::GROUP, None, None, Some(uri.to_owned())), Permission::READ));
    }
    (owner, grants)
}

/// `x-amz-grant-*`: `id="…"`, `emailAddress="…"` or `uri="…"`, comma-separated.
fn header_grants(value: &str, permission: &str, out: &mut Vec<(AclWho, String)>) -> S3Result<()> {
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) =
            part.split_once('=').ok_or_else(|| s3_error!(InvalidArgument, "a grant is key=\"value\": {part}"))?;
        let v = v.trim().trim_matches('"').to_owned();
        let who = match k.trim().to_ascii_lowercase().as_str() {
            "id" => AclWho::Canonical(v),
            "emailaddress" => AclWho::Email(v),
            "uri" => AclWho::Group(v),
            other => return Err(s3_error!(InvalidArgument, "unknown grantee type {other}")),
        };
        out.push((who, permission.to_owned()));
    }
    Ok(())
}

/// The grants of a request's headers or body.
fn grants_of(
    headers: [(&Option<String>, &str); 5],
    body: Option<&AccessControlPolicy>,
) -> S3Result<Vec<(AclWho, String)>> {
    let mut out = Vec::new();
    for (value, permission) in headers {
        if let Some(v) = value {
            header_grants(v, permission, &mut out)?;
        }
    }
    if let Some(acp) = body {
        if !out.is_empty() {
            return Err(s3_error!(UnexpectedContent, "grants go in headers or in the body, not both"));
        }
        for g in acp.grants.iter().flatten() {
            let (Some(who), Some(perm)) = (&g.grantee, &g.permission) else {
                return Err(s3_error!(MalformedACLError, "a grant needs a grantee and a permission"));
            };
            let who = match who.type_.as_str() {
                Type::CANONICAL_USER => AclWho::Canonical(
                    who.id.clone().ok_or_else(|| s3_error!(MalformedACLError, "a CanonicalUser grantee has an ID"))?,
                ),
                Type::AMAZON_CUSTOMER_BY_EMAIL => AclWho::Email(
                    who.email_address.clone().ok_or_else(|| s3_error!(MalformedACLError, "no EmailAddress"))?,
                ),
                Type::GROUP => AclWho::Group(who.uri.clone().ok_or_else(|| s3_error!(MalformedACLError, "no URI"))?),
                other => return Err(s3_error!(MalformedACLError, "unknown grantee type {other}")),
            };
            out.push((who, perm.as_str().to_owned()));
        }
    }
    Ok(out)
}

/// Every grantee names a davit user, told as S3 tells it (before what a grant may say is
/// judged): an unknown id is InvalidArgument, an unknown address
/// UnresolvableGrantByEmailAddress.
async fn check_grantees(s3: &DavitS3, grants: &[(AclWho, String)]) -> S3Result<()> {
    for (who, _) in grants {
        match who {
            AclWho::Canonical(id) => {
                if s3.storage.user_by_canonical_id(id).await.is_err() {
                    return Err(s3_error!(InvalidArgument, "Invalid id: no user has the canonical id {id}"));
                }
            }
            AclWho::Email(e) => {
                if s3.storage.find_user(e).await.is_err() {
                    return Err(s3_error!(
                        UnresolvableGrantByEmailAddress,
                        "the address you gave does not match any account"
                    ));
                }
            }
            AclWho::Group(_) => {}
        }
    }
    Ok(())
}

/// A whole ACL in the body keeps the owner's FULL_CONTROL (`s3_policy::check_owner_kept`).
fn owner_kept(
    s3: &DavitS3,
    p: &Principal,
    body: Option<&AccessControlPolicy>,
    grants: &[(AclWho, String)],
) -> S3Result<()> {
    if body.is_some() {
        check_owner_kept(grants, &s3.storage.canonical_id(p.user_id()))
            .map_err(|r| refusal(r, S3ErrorCode::MalformedACLError))?;
    }
    Ok(())
}

/// What an ACL request asks for: a canned ACL, or grants (not both).
fn asked(
    s3: &DavitS3,
    p: &Principal,
    canned_acl: Option<&str>,
    grants: Vec<(AclWho, String)>,
    object: bool,
) -> S3Result<Asked> {
    match canned_acl {
        Some(_) if !grants.is_empty() => {
            Err(s3_error!(InvalidRequest, "a canned ACL and explicit grants cannot be given together"))
        }
        Some(name) => Ok(Asked {
            grants: Vec::new(),
            audience: canned(name, object).map_err(|r| refusal(r, S3ErrorCode::InvalidArgument))?,
        }),
        None => acl_grants(&grants, &s3.storage.canonical_id(p.user_id()), object)
            .map_err(|r| refusal(r, S3ErrorCode::MalformedACLError)),
    }
}

pub async fn get_bucket(s3: &DavitS3, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
    let p = s3.principal(&req).await?;
    let sharing = s3.storage.bucket_sharing(&p, &req.input.bucket, Within::Bucket).await.map_err(bucket_error)?;
    let (owner, grants) = acl_of(&sharing);
    Ok(S3Response::new(GetBucketAclOutput { grants: Some(grants), owner: Some(owner) }))
}

/// The grant headers of PutBucketAcl and PutObjectAcl (the same five fields), each with the
/// permission it names.
macro_rules! acl_grants {
    ($i:expr) => {
        [
            (&$i.grant_read, Permission::READ),
            (&$i.grant_write, Permission::WRITE),
            (&$i.grant_full_control, Permission::FULL_CONTROL),
            (&$i.grant_read_acp, Permission::READ_ACP),
            (&$i.grant_write_acp, Permission::WRITE_ACP),
        ]
    };
}

pub async fn put_bucket(s3: &DavitS3, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
    let p = s3.principal(&req).await?;
    let i = &req.input;
    let grants = grants_of(acl_grants!(i), i.access_control_policy.as_ref())?;
    if i.acl.is_none() && grants.is_empty() && i.access_control_policy.is_none() {
        return Err(s3_error!(MissingSecurityHeader, "give a canned ACL, grant headers or an AccessControlPolicy"));
    }
    check_grantees(s3, &grants).await?;
    owner_kept(s3, &p, i.access_control_policy.as_ref(), &grants)?;
    let asked = asked(s3, &p, i.acl.as_ref().map(|a| a.as_str()), grants, false)?;
    s3.storage
        .set_bucket_sharing(&p, &i.bucket, Within::Bucket, asked)
        .await
        .map_err(|e| change_error(e, S3ErrorCode::InvalidArgument))?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

/// The key an object ACL call names, as the core takes it (below the bucket).
fn object_key(bucket: &str, key: &str) -> S3Result<String> {
    let path = crate::names::file_path(bucket, key)?;
    Ok(path[bucket.len() + 2..].to_owned())
}

pub async fn get_object(s3: &DavitS3, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
    let p = s3.principal(&req).await?;
    let key = object_key(&req.input.bucket, &req.input.key)?;
    let sharing =
        s3.storage.bucket_sharing(&p, &req.input.bucket, Within::Object(key)).await.map_err(crate::errors::s3_error)?;
    let (owner, grants) = acl_of(&sharing);
    Ok(S3Response::new(GetObjectAclOutput { grants: Some(grants), owner: Some(owner), ..Default::default() }))
}

pub async fn put_object(s3: &DavitS3, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
    let p = s3.principal(&req).await?;
    let i = &req.input;
    let key = object_key(&i.bucket, &i.key)?;
    let grants = grants_of(acl_grants!(i), i.access_control_policy.as_ref())?;
    check_grantees(s3, &grants).await?;
    owner_kept(s3, &p, i.access_control_policy.as_ref(), &grants)?;
    let asked = asked(s3, &p, i.acl.as_ref().map(|a| a.as_str()), grants, true)?;
    s3.storage.set_bucket_sharing(&p, &i.bucket, Within::Object(key), asked).await.map_err(|e| match e {
        e @ davit_storage::Error::NotFound(_) => crate::errors::s3_error(e),
        e => change_error(e, S3ErrorCode::InvalidArgument),
    })?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

/// CreateBucket with an ACL: the ACL is checked first, so a refused one makes no bucket.
pub async fn create_bucket(
    s3: &DavitS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let i = &req.input;
    let grants = grants_of(
        [
            (&i.grant_read, Permission::READ),
            (&i.grant_write, Permission::WRITE),
            (&i.grant_full_control, Permission::FULL_CONTROL),
            (&i.grant_read_acp, Permission::READ_ACP),
            (&i.grant_write_acp, Permission::WRITE_ACP),
        ],
        None,
    )?;
    let canned_acl = i.acl.as_ref().map(|a| a.as_str().to_owned());
    if canned_acl.is_none() && grants.is_empty() {
        return crate::bucket::create(s3, req).await;
    }
    let p = s3.principal(&req).await?;
    check_grantees(s3, &grants).await?;
    let asked = asked(s3, &p, canned_acl.as_deref(), grants, false)?;
    if asked.audience == Audience::Public && !s3.storage.s3_public_read() {
        return Err(s3_error!(AccessDenied, "anonymous public read is off on this server (--s3-public-read)"));
    }
    let bucket = i.bucket.clone();
    let out = crate::bucket::create(s3, req).await?;
    s3.storage
        .set_bucket_sharing(&p, &bucket, Within::Bucket, asked)
        .await
        .map_err(|e| change_error(e, S3ErrorCode::InvalidArgument))?;
    Ok(out)
}

/// The grant headers of an input that writes a new object.
macro_rules! grants {
    ($input:expr) => {
        [&$input.grant_read, &$input.grant_full_control, &$input.grant_read_acp, &$input.grant_write_acp]
    };
}
pub(crate) use grants;

/// The ACL a PutObject, CopyObject or CreateMultipartUpload names: a new object is its
/// bucket owner's, so private (and the bucket-owner ACLs) says nothing new; anything else
/// is refused rather than ignored (grants of one object go through PutObjectAcl).
pub(crate) fn check_new_object(acl: Option<&ObjectCannedACL>, grants: [&Option<String>; 4]) -> S3Result<()> {
    if let Some(a) = acl {
        canned(a.as_str(), true).map_err(|r| refusal(r, S3ErrorCode::InvalidArgument))?;
    }
    if grants.iter().any(|g| g.is_some()) {
        return Err(s3_error!(NotImplemented, "grants with a new object: give them with PutObjectAcl once it exists"));
    }
    Ok(())
}
