//! S3's words for davit's shares: a bucket policy or an ACL that grants a davit user read or
//! read-write on a bucket, a prefix (a folder) or an object IS a share, and a share IS a
//! statement of the bucket's policy (and a grant of its ACL when it is on the bucket
//! itself). This module only translates, both ways, and refuses what a share cannot say;
//! `s3_grants` applies the result to the share rows, so there is one truth.
//!
//! A davit share is read (list and download) or read-write (also upload, overwrite,
//! delete). So a policy grants, per principal and resource:
//! - read: `s3:GetObject` with `s3:ListBucket` (on a bucket or a `prefix/*`), or
//!   `s3:GetObject` alone on one object;
//! - read-write: those with `s3:PutObject` and `s3:DeleteObject`.
//!
//! Anything else (`s3:ListBucket` alone, `s3:PutObject` alone, another action) would have to
//! be widened to become a share, and is refused: never widened, never silently narrowed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Who a statement or an ACL grant names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// A davit user by username (or email, in an ACL's `EmailAddress`).
    User(String),
    /// A davit user by canonical id (`Storage::canonical_id`).
    Canonical(String),
}

/// Who else may read a whole bucket, besides its grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Audience {
    #[default]
    Private,
    /// Every signed-in davit user (S3's `authenticated-read`).
    Authenticated,
    /// Anyone, unsigned too; only where the server allows it (`--s3-public-read`).
    Public,
}

impl Audience {
    /// Stored in `S3_AUDIENCE`.
    pub(crate) fn code(self) -> u64 {
        match self {
            Audience::Private => 0,
            Audience::Authenticated => 1,
            Audience::Public => 2,
        }
    }

    pub(crate) fn from_code(c: u64) -> Audience {
        match c {
            1 => Audience::Authenticated,
            2 => Audience::Public,
            _ => Audience::Private,
        }
    }
}

/// One grant asked for: `path` is below the bucket ("" for the bucket itself); `object`
/// says the resource named one object rather than a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub who: Who,
    pub path: String,
    pub object: bool,
    pub write: bool,
}

/// What a policy or ACL asks for, as shares and an audience.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub grants: Vec<Wanted>,
    pub audience: Audience,
}

/// Why a policy or ACL was refused: S3 says MalformedPolicy (or MalformedACLError /
/// InvalidArgument) for what is not a valid document, NotImplemented for what is valid S3
/// but cannot be a davit share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    Unsupported(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(m) | Refusal::Unsupported(m) => f.write_str(m),
        }
    }
}

const GET: &str = "s3:GetObject";
const LIST: &str = "s3:ListBucket";
const PUT: &str = "s3:PutObject";
const DELETE: &str = "s3:DeleteObject";

/// `arn:aws:iam:::user/*`: every signed-in davit user (authenticated-read).
pub const EVERY_USER: &str = "arn:aws:iam:::user/*";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Principal {
    Anyone,
    EveryUser,
    One(Who),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Bucket,
    Prefix(String),
    Object(String),
}

fn malformed(m: impl Into<String>) -> Refusal {
    Refusal::Malformed(m.into())
}

fn unsupported(m: impl Into<String>) -> Refusal {
    Refusal::Unsupported(m.into())
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, Refusal> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| malformed(format!("{what} must be strings"))))
            .collect(),
        _ => Err(malformed(format!("{what} must be a string or a list of strings"))),
    }
}

fn principals(v: &Value) -> Result<Vec<Principal>, Refusal> {
    let aws = |s: &str| -> Result<Principal, Refusal> {
        if s == "*" {
            return Ok(Principal::Anyone);
        }
        if s == EVERY_USER {
            return Ok(Principal::EveryUser);
        }
        if let Some(rest) = s.strip_prefix("arn:aws:iam::") {
            // arn:aws:iam::<account>:user/<name>; davit has one account.
            let name = rest.split_once(':').and_then(|(_, r)| r.strip_prefix("user/"));
            return match name {
                Some(n) if !n.is_empty() && !n.contains(['*', '/']) => Ok(Principal::One(Who::User(n.to_owned()))),
                _ => Err(unsupported(format!("principal {s}: davit names users as arn:aws:iam:::user/<name>"))),
            };
        }
        if s.is_empty() || s.contains(['*', ':', '/']) {
            return Err(malformed(format!("Invalid principal in policy: {s}")));
        }
        Ok(Principal::One(Who::User(s.to_owned())))
    };
    match v {
        Value::String(s) if s == "*" => Ok(vec![Principal::Anyone]),
        Value::Object(m) if !m.is_empty() => {
            let mut out = Vec::new();
            for (k, v) in m {
                match k.as_str() {
                    "AWS" => {
                        for s in strings(v, "Principal.AWS")? {
                            out.push(aws(&s)?);
                        }
                    }
                    "CanonicalUser" => {
                        for s in strings(v, "Principal.CanonicalUser")? {
                            out.push(Principal::One(Who::Canonical(s)));
                        }
                    }
                    other => return Err(unsupported(format!("principals of type {other} are not davit users"))),
                }
            }
            Ok(out)
        }
        _ => Err(malformed("Invalid principal in policy")),
    }
}

fn scope_of(bucket: &str, resource: &str) -> Result<Scope, Refusal> {
    let bad = || malformed(format!("Policy has invalid resource: {resource}"));
    let rest = resource.strip_prefix("arn:aws:s3:::").ok_or_else(bad)?;
    let (b, key) = match rest.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (rest, None),
    };
    if b != bucket {
        // S3 refuses a resource outside the bucket the policy is put on.
        return Err(bad());
    }
    let Some(key) = key else { return Ok(Scope::Bucket) };
    if key == "*" {
        return Ok(Scope::Bucket);
    }
    if let Some(prefix) = key.strip_suffix("/*")
        && !prefix.is_empty()
        && !prefix.contains(['*', '?'])
    {
        return Ok(Scope::Prefix(prefix.to_owned()));
    }
    if key.contains(['*', '?']) {
        return Err(unsupported(format!(
            "resource {resource}: davit shares a bucket, a folder (prefix/*) or one object, not a pattern"
        )));
    }
    if key.is_empty() || key.ends_with('/') {
        return Err(bad());
    }
    Ok(Scope::Object(key.to_owned()))
}

fn action(a: &str) -> Result<&'static str, Refusal> {
    // Action names are case-insensitive in IAM.
    for known in [GET, LIST, PUT, DELETE] {
        if a.eq_ignore_ascii_case(known) {
            return Ok(known);
        }
    }
    Err(unsupported(format!(
        "action {a}: davit shares grant only s3:GetObject, s3:ListBucket, s3:PutObject and s3:DeleteObject"
    )))
}

/// Reads a bucket policy document into the shares and the audience it asks for.
pub fn parse_policy(bucket: &str, text: &str) -> Result<Asked, Refusal> {
    let doc: Value = serde_json::from_str(text).map_err(|e| malformed(format!("Policies must be valid JSON: {e}")))?;
    let doc = doc.as_object().ok_or_else(|| malformed("a policy is a JSON object"))?;
    for k in doc.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(format!("Unknown field {k}")));
        }
    }
    if let Some(v) = doc.get("Version")
        && !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(malformed("Version must be 2012-10-17 or 2008-10-17"));
    }
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(malformed("Missing required field Statement")),
    };
    let mut actions: BTreeMap<(Principal, Scope), BTreeSet<&'static str>> = BTreeMap::new();
    for st in &statements {
        let st = st.as_object().ok_or_else(|| malformed("a statement is a JSON object"))?;
        for k in st.keys() {
            match k.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" => {}
                "NotPrincipal" if st.get("Effect").and_then(Value::as_str) == Some("Allow") => {
                    return Err(malformed("NotPrincipal is only valid with Effect Deny"));
                }
                "Condition" | "NotPrincipal" | "NotAction" | "NotResource" => {
                    return Err(unsupported(format!("{k}: davit shares have no such terms")));
                }
                other => return Err(malformed(format!("Unknown field {other}"))),
            }
        }
        match st.get("Effect").and_then(Value::as_str) {
            Some("Allow") => {}
            Some("Deny") => return Err(unsupported("Deny: a davit share only allows; revoke the share instead")),
            _ => return Err(malformed("Effect must be Allow or Deny")),
        }
        let who = principals(st.get("Principal").ok_or_else(|| malformed("Missing required field Principal"))?)?;
        let acts = strings(st.get("Action").ok_or_else(|| malformed("Missing required field Action"))?, "Action")?
            .iter()
            .map(|a| action(a))
            .collect::<Result<Vec<_>, _>>()?;
        let scopes =
            strings(st.get("Resource").ok_or_else(|| malformed("Missing required field Resource"))?, "Resource")?
                .iter()
                .map(|r| scope_of(bucket, r))
                .collect::<Result<Vec<_>, _>>()?;
        for w in &who {
            for s in &scopes {
                actions.entry((w.clone(), s.clone())).or_default().extend(acts.iter().copied());
            }
        }
    }
    let mut asked = Asked::default();
    for ((who, scope), acts) in actions {
        let has = |a: &[&str]| a.len() == acts.len() && a.iter().all(|x| acts.contains(x));
        let write = match &scope {
            Scope::Object(_) if acts.contains(LIST) => {
                return Err(malformed(
                    "Action does not apply to any resource(s) in statement: s3:ListBucket on an object",
                ));
            }
            Scope::Object(_) if has(&[GET]) => false,
            Scope::Object(_) if has(&[GET, PUT, DELETE]) => true,
            _ if has(&[GET, LIST]) => false,
            _ if has(&[GET, LIST, PUT, DELETE]) => true,
            _ => {
                return Err(unsupported(format!(
                    "{} on {}: a davit share is read (s3:GetObject with s3:ListBucket) or read-write (also \
                     s3:PutObject and s3:DeleteObject); this grant cannot be made one without widening it",
                    acts.iter().copied().collect::<Vec<_>>().join(", "),
                    describe(&scope),
                )));
            }
        };
        match who {
            Principal::One(w) => {
                let (path, object) = match scope {
                    Scope::Bucket => (String::new(), false),
                    Scope::Prefix(p) => (p, false),
                    Scope::Object(k) => (k, true),
                };
                asked.grants.push(Wanted { who: w, path, object, write });
            }
            Principal::Anyone | Principal::EveryUser if write || scope != Scope::Bucket => {
                return Err(unsupported(
                    "anyone or every user may only be given read of a whole bucket (public-read, authenticated-read)",
                ));
            }
            Principal::Anyone => asked.audience = Audience::Public,
            Principal::EveryUser if asked.audience == Audience::Public => {}
            Principal::EveryUser => asked.audience = Audience::Authenticated,
        }
    }
    Ok(asked)
}

fn describe(scope: &Scope) -> String {
    match scope {
        Scope::Bucket => "the bucket".into(),
        Scope::Prefix(p) => format!("{p}/*"),
        Scope::Object(k) => k.clone(),
    }
}

/// One existing share as a policy shows it.
#[derive(Clone, Debug)]
pub struct Shown {
    pub share: u64,
    /// The grantee's username.
    pub grantee: String,
    /// Below the bucket; "" for the bucket itself.
    pub path: String,
    pub folder: bool,
    pub write: bool,
}

/// The policy document of a bucket's shares and audience; None when there is nothing
/// (S3's NoSuchBucketPolicy).
pub fn policy_document(bucket: &str, shares: &[Shown], audience: Audience) -> Option<String> {
    let read_acts = |folder: bool, write: bool| {
        let mut a = vec![GET];
        if folder {
            a.push(LIST);
        }
        if write {
            a.extend([PUT, DELETE]);
        }
        a
    };
    let resources = |path: &str, folder: bool| -> Vec<String> {
        match (path, folder) {
            ("", _) => vec![format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            (p, true) => vec![format!("arn:aws:s3:::{bucket}/{p}/*")],
            (p, false) => vec![format!("arn:aws:s3:::{bucket}/{p}")],
        }
    };
    let mut statements = Vec::new();
    for s in shares {
        statements.push(json!({
            "Sid": format!("davit-share-{}", s.share),
            "Effect": "Allow",
            "Principal": {"AWS": [format!("arn:aws:iam:::user/{}", s.grantee)]},
            "Action": read_acts(s.folder, s.write),
            "Resource": resources(&s.path, s.folder),
        }));
    }
    let everyone = match audience {
        Audience::Private => None,
        Audience::Authenticated => Some(json!({"AWS": [EVERY_USER]})),
        Audience::Public => Some(json!("*")),
    };
    if let Some(principal) = everyone {
        statements.push(json!({
            "Sid": "davit-bucket-audience",
            "Effect": "Allow",
            "Principal": principal,
            "Action": read_acts(true, false),
            "Resource": resources("", true),
        }));
    }
    if statements.is_empty() {
        return None;
    }
    Some(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

/// An ACL grantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclWho {
    Canonical(String),
    Email(String),
    /// A group by its URI (`http://acs.amazonaws.com/groups/global/AllUsers`…).
    Group(String),
}

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// An ACL permission, by S3's name (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL).
pub type AclPermission = String;

/// A canned ACL as an audience. `object`: on an object, where only private (and the
/// bucket-owner ones, which davit always is) can be said.
pub fn canned(name: &str, object: bool) -> Result<Audience, Refusal> {
    match (name, object) {
        ("private", _) | ("bucket-owner-read" | "bucket-owner-full-control", true) => Ok(Audience::Private),
        ("public-read", false) => Ok(Audience::Public),
        ("authenticated-read", false) => Ok(Audience::Authenticated),
        ("public-read" | "authenticated-read", true) => Err(unsupported(format!(
            "canned ACL {name} on an object: davit makes whole buckets readable, not single objects; put it on the bucket"
        ))),
        ("public-read-write", _) => {
            Err(unsupported("public-read-write: davit never lets anyone write without signing in"))
        }
        _ => Err(unsupported(format!("canned ACL {name} is not one davit can express"))),
    }
}

/// An AccessControlPolicy replaces the whole ACL: one without the owner's FULL_CONTROL asks
/// to take the owner's rights away, which davit never does (the owner always has them), so
/// it is refused rather than half applied.
pub fn check_owner_kept(grants: &[(AclWho, AclPermission)], owner_id: &str) -> Result<(), Refusal> {
    let owner = AclWho::Canonical(owner_id.to_owned());
    if grants.iter().any(|(who, perm)| *who == owner && perm == "FULL_CONTROL") {
        return Ok(());
    }
    Err(unsupported("an ACL without the owner's FULL_CONTROL: the owner always has it in davit"))
}

/// The shares and audience an ACL's grants ask for. `owner_id` is the owner's canonical
/// id: their own grant (FULL_CONTROL, as every ACL read back shows it) says nothing new.
/// On a bucket: READ is read, READ with WRITE read-write; on an object, READ only.
pub fn acl_grants(grants: &[(AclWho, AclPermission)], owner_id: &str, object: bool) -> Result<Asked, Refusal> {
    let mut by_who: Vec<(AclWho, BTreeSet<&str>)> = Vec::new();
    for (who, perm) in grants {
        let perm = match perm.as_str() {
            p @ ("READ" | "WRITE" | "READ_ACP" | "WRITE_ACP" | "FULL_CONTROL") => p,
            other => return Err(malformed(format!("unknown permission {other}"))),
        };
        match by_who.iter_mut().find(|(w, _)| w == who) {
            Some((_, set)) => {
                set.insert(perm);
            }
            None => by_who.push((who.clone(), BTreeSet::from([perm]))),
        }
    }
    let mut asked = Asked::default();
    for (who, perms) in by_who {
        if who == AclWho::Canonical(owner_id.to_owned()) {
            // The owner's own grant, as read back; an owner always has every right.
            if perms.contains("FULL_CONTROL") {
                continue;
            }
            return Err(unsupported("the owner always has FULL_CONTROL in davit; it cannot be narrowed"));
        }
        let list = perms.iter().copied().collect::<Vec<_>>().join(", ");
        let write = match perms.iter().copied().collect::<Vec<_>>().as_slice() {
            ["READ"] => false,
            ["READ", "WRITE"] if !object => true,
            _ => {
                return Err(unsupported(format!(
                    "{list}: a davit share is READ, or READ with WRITE on a bucket; only the owner manages ACLs \
                     (READ_ACP, WRITE_ACP, FULL_CONTROL), and write without read cannot be expressed"
                )));
            }
        };
        match who {
            AclWho::Canonical(id) => {
                asked.grants.push(Wanted { who: Who::Canonical(id), path: String::new(), object, write })
            }
            AclWho::Email(e) => asked.grants.push(Wanted { who: Who::User(e), path: String::new(), object, write }),
            AclWho::Group(g) if object || write => {
                return Err(unsupported(format!("group {g}: only read of a whole bucket can be given to a group")));
            }
            AclWho::Group(g) if g == ALL_USERS => asked.audience = Audience::Public,
            AclWho::Group(g) if g == AUTHENTICATED_USERS => {
                if asked.audience != Audience::Public {
                    asked.audience = Audience::Authenticated;
                }
            }
            AclWho::Group(g) => return Err(unsupported(format!("group {g} is not one davit has"))),
        }
    }
    Ok(asked)
}
