//! CORS: which other web origins a browser lets read a bucket's answers, as S3 defines it
//! (PutBucketCors). The rules are stored with the bucket's folder; [`grant`] decides a
//! preflight or an actual cross-origin request from them, and the S3 front end only maps the
//! decision to headers.
//!
//! A preflight (`OPTIONS`) carries no credentials, so it names a bucket but no user, while
//! bucket names are per user here. It is decided by the rules of every bucket of that name
//! ([`Storage::cors_rules_by_name`]); what that lets through is only the browser's permission
//! to send the real request, which is signed and decided by its own user's rules. The answer
//! to a signed request uses the rules of the bucket it reached. CORS never applies to the REST
//! API or the session: the server sends these headers on S3 answers only.

use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::error::{Error, Result};
use crate::meta::db::{self, BUCKET_CORS, CORS_BY_NAME, ITEMS, USERS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Principal, User};
use crate::meta::txn;

/// One CORS rule, as S3's `CORSRule`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsRule {
    pub id: Option<String>,
    /// Origins, each with at most one `*` standing for any run of characters.
    pub allowed_origins: Vec<String>,
    /// GET, PUT, HEAD, POST, DELETE.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may name, each with at most one `*`; compared ignoring case.
    pub allowed_headers: Vec<String>,
    /// Answer headers the browser lets the page read.
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
}

/// A bucket's rules, in order: the first that matches decides.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketCors {
    pub rules: Vec<CorsRule>,
}
crate::meta::db::stored!(BucketCors = "bucket CORS configuration");

/// S3's limit on the rules of one bucket.
pub const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];
/// How many buckets of one name a preflight reads at most (one per user that has one).
const MAX_CANDIDATES: usize = 64;

/// Refuses a configuration S3 would refuse, with its reason.
pub fn validate(rules: &[CorsRule]) -> Result<()> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(Error::InvalidInput(format!("a CORS configuration has 1 to {MAX_RULES} rules")));
    }
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(Error::InvalidInput("a CORS rule needs an AllowedOrigin and an AllowedMethod".into()));
        }
        if let Some(m) = r.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(Error::InvalidInput(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        if let Some(o) = r.allowed_origins.iter().find(|o| o.matches('*').count() > 1) {
            return Err(Error::InvalidInput(format!("AllowedOrigin \"{o}\" can not have more than one wildcard.")));
        }
        if let Some(h) = r.allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
            return Err(Error::InvalidInput(format!("AllowedHeader \"{h}\" can not have more than one wildcard.")));
        }
        if r.id.as_ref().is_some_and(|id| id.len() > 255) {
            return Err(Error::InvalidInput("a CORS rule's ID is at most 255 characters".into()));
        }
        if r.max_age_seconds.is_some_and(|s| s < 0) {
            return Err(Error::InvalidInput("MaxAgeSeconds cannot be negative".into()));
        }
    }
    Ok(())
}

/// A cross-origin request as the browser describes it.
#[derive(Clone, Debug)]
pub struct CorsAsk<'a> {
    pub origin: &'a str,
    /// The actual request's method, or a preflight's `Access-Control-Request-Method`.
    pub method: &'a str,
    /// A preflight's `Access-Control-Request-Headers` (empty for an actual request: its
    /// headers were allowed by the preflight before it).
    pub headers: Vec<String>,
    /// Whether the request carries credentials (a signature): `*` is then answered with the
    /// origin itself, as browsers accept no `*` with credentials.
    pub credentials: bool,
}

/// What the matching rule allows, to be answered as `Access-Control-*` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsGrant {
    /// `*` or the request's origin.
    pub allow_origin: String,
    pub allow_methods: Vec<String>,
    /// The preflight's requested headers, as it named them.
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
    /// `Access-Control-Allow-Credentials: true` (whenever the origin is named, not `*`).
    pub allow_credentials: bool,
}

/// `pattern` with at most one `*` (any run of characters, the empty one too).
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.is_char_boundary(head.len())
                && value.is_char_boundary(value.len() - tail.len())
                && eq(&value[..head.len()], head)
                && eq(&value[value.len() - tail.len()..], tail)
        }
    }
}

/// The first rule that allows the request, as S3 picks it: its origin matches one of the
/// rule's, its method is one of the rule's, and every header it names matches one of the
/// rule's allowed headers.
pub fn grant(rules: &[CorsRule], ask: &CorsAsk<'_>) -> Option<CorsGrant> {
    let rule = rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, ask.origin, false))
            && r.allowed_methods.iter().any(|m| m == ask.method)
            && ask.headers.iter().all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    })?;
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let named = !any_origin || ask.credentials;
    Some(CorsGrant {
        allow_origin: if named { ask.origin.to_owned() } else { "*".to_owned() },
        allow_methods: rule.allowed_methods.clone(),
        allow_headers: ask.headers.clone(),
        expose_headers: rule.expose_headers.clone(),
        max_age_seconds: rule.max_age_seconds,
        allow_credentials: named,
    })
}

/// The first matching rule of several buckets' rules (the buckets of one name, for a
/// preflight).
pub fn grant_any(configs: &[BucketCors], ask: &CorsAsk<'_>) -> Option<CorsGrant> {
    configs.iter().find_map(|c| grant(&c.rules, ask))
}

/// The key of a bucket name in `cors_by_name`: the first 8 bytes of its SHA-256.
fn name_hash(bucket: &str) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, bucket.as_bytes());
    u64::from_be_bytes(d.as_ref()[..8].try_into().unwrap_or_default())
}

/// Whether `item` is a bucket: a folder at the top of its owner's drive.
fn is_bucket_of(item: &Item, owner: &User) -> bool {
    item.is_folder() && item.owner == owner.id && item.parent == owner.root
}

impl Storage {
    /// The caller's own bucket folder `bucket`, for a change of its settings: a bucket of
    /// theirs, which their role may change (the `shared` bucket and grants are not).
    async fn own_bucket(&self, p: &Principal, bucket: &str, change: bool) -> Result<Item> {
        let item = self.stat(p, &format!("/{bucket}")).await?;
        if !item.is_folder() || item.owner != p.user_id || item.parent != p.root {
            return Err(Error::Forbidden("bucket settings are made on one's own buckets only".into()));
        }
        if change && !p.role.writes() {
            return Err(Error::Forbidden("this role cannot change a bucket".into()));
        }
        Ok(item)
    }

    /// Sets the CORS rules of the caller's bucket, replacing any.
    pub async fn put_bucket_cors(&self, p: &Principal, bucket: &str, rules: Vec<CorsRule>) -> Result<()> {
        validate(&rules)?;
        let item = self.own_bucket(p, bucket, true).await?;
        let (id, owner, key) = (item.id, item.owner, (name_hash(bucket), item.id));
        let value = db::encode(&BucketCors { rules });
        self.core
            .db
            .write((), move |ctx| {
                // The folder may have gone since it was looked at.
                let items = ctx.txn.open_table(ITEMS)?;
                if txn::get_item(&items, id)?.is_none() {
                    return Err(Error::missing(crate::What::Folder, "no such bucket"));
                }
                drop(items);
                ctx.txn.open_table(BUCKET_CORS)?.insert(id, value.as_slice())?;
                ctx.txn.open_table(CORS_BY_NAME)?.insert(key, owner)?;
                Ok(())
            })
            .await
    }

    /// The CORS rules of the caller's bucket; `None` when it has none.
    pub async fn get_bucket_cors(&self, p: &Principal, bucket: &str) -> Result<Option<Vec<CorsRule>>> {
        let item = self.own_bucket(p, bucket, false).await?;
        self.core
            .db
            .read(move |t| {
                let table = t.open_table(BUCKET_CORS)?;
                let Some(v) = table.get(item.id)? else { return Ok(None) };
                Ok(Some(db::decode::<BucketCors>(v.value())?.rules))
            })
            .await
    }

    /// Removes the CORS rules of the caller's bucket (none is no error, as on S3).
    pub async fn delete_bucket_cors(&self, p: &Principal, bucket: &str) -> Result<()> {
        let item = self.own_bucket(p, bucket, true).await?;
        let (id, key) = (item.id, (name_hash(bucket), item.id));
        self.core
            .db
            .write((), move |ctx| {
                ctx.txn.open_table(BUCKET_CORS)?.remove(id)?;
                ctx.txn.open_table(CORS_BY_NAME)?.remove(key)?;
                Ok(())
            })
            .await
    }

    /// The CORS rules of the bucket a signed request reached (the caller's own bucket of
    /// that name), if any.
    pub async fn cors_rules_of(&self, p: &Principal, bucket: &str) -> Result<Option<BucketCors>> {
        let Ok(item) = self.own_bucket(p, bucket, false).await else { return Ok(None) };
        self.core
            .db
            .read(move |t| {
                let table = t.open_table(BUCKET_CORS)?;
                table.get(item.id)?.map(|v| db::decode(v.value())).transpose()
            })
            .await
    }

    /// The CORS rules of every bucket named `bucket` (one per user at most), for a request
    /// that names no user (see the module notes). Rows of folders renamed, moved or deleted
    /// since are passed over.
    pub async fn cors_rules_by_name(&self, bucket: &str) -> Result<Vec<BucketCors>> {
        let (h, bucket) = (name_hash(bucket), bucket.to_owned());
        self.core
            .db
            .read(move |t| {
                let (items, users, rules) = (t.open_table(ITEMS)?, t.open_table(USERS)?, t.open_table(BUCKET_CORS)?);
                let mut out = Vec::new();
                for e in t.open_table(CORS_BY_NAME)?.range((h, 0)..=(h, u64::MAX))?.take(MAX_CANDIDATES) {
                    let (k, owner) = e?;
                    let id = k.value().1;
                    let Some(item) = txn::get_item(&items, id)? else { continue };
                    let Some(u) = users.get(owner.value())? else { continue };
                    let user: User = db::decode(u.value())?;
                    if item.name != bucket || !is_bucket_of(&item, &user) || crate::auth::account_usable(&user).is_err()
                    {
                        continue;
                    }
                    if let Some(v) = rules.get(id)? {
                        out.push(db::decode(v.value())?);
                    }
                }
                Ok(out)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..Default::default()
        }
    }

    fn ask<'a>(origin: &'a str, method: &'a str, headers: &[&str]) -> CorsAsk<'a> {
        CorsAsk { origin, method, headers: headers.iter().map(|h| (*h).to_owned()).collect(), credentials: false }
    }

    /// s3-tests' test_cors_origin_response, test_cors_origin_wildcard and
    /// test_cors_header_option, decided from the rules alone.
    #[test]
    fn the_first_matching_rule_decides_as_on_s3() {
        let rules = vec![
            rule(&["http://www.example1.com"], &["PUT", "DELETE"], &["*"]),
            rule(&["*"], &["GET"], &["*"]),
            rule(&["http://www.example2.com", "http://www.example3.com"], &["DELETE"], &["*"]),
        ];
        let g = |o, m| grant(&rules, &ask(o, m, &[])).map(|g| (g.allow_origin, g.allow_methods.join(", ")));
        let s = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(g("http://www.example1.com", "GET"), s("*", "GET"));
        assert_eq!(g("http://www.example1.com", "PUT"), s("http://www.example1.com", "PUT, DELETE"));
        assert_eq!(g("http://www.example3.com", "PUT"), None);
        assert_eq!(g("http://www.example3.com", "DELETE"), s("http://www.example3.com", "DELETE"));
        assert_eq!(g("http://not.exists", "GET"), s("*", "GET"));
        assert_eq!(g("http://not.exists", "DELETE"), None);
        // With credentials a `*` origin is answered by name.
        let with = CorsAsk { credentials: true, ..ask("http://not.exists", "GET", &[]) };
        let got = grant(&rules, &with).unwrap();
        assert_eq!((got.allow_origin.as_str(), got.allow_credentials), ("http://not.exists", true));

        let wild = vec![
            rule(&["*suffix"], &["GET"], &[]),
            rule(&["start*end"], &["GET"], &[]),
            rule(&["prefix*"], &["GET"], &[]),
            rule(&["*.put"], &["PUT"], &[]),
        ];
        let o = |origin, m| grant(&wild, &ask(origin, m, &[])).map(|g| g.allow_origin);
        assert_eq!(o("foo.suffix", "GET").as_deref(), Some("foo.suffix"));
        assert_eq!(o("foo.bar", "GET"), None);
        assert_eq!(o("foo.suffix.get", "GET"), None);
        assert_eq!(o("startend", "GET").as_deref(), Some("startend"));
        assert_eq!(o("start1end", "GET").as_deref(), Some("start1end"));
        assert_eq!(o("start12end", "GET").as_deref(), Some("start12end"));
        assert_eq!(o("0start12end", "GET"), None);
        assert_eq!(o("prefix", "GET").as_deref(), Some("prefix"));
        assert_eq!(o("prefix.suffix", "GET").as_deref(), Some("prefix.suffix"));
        assert_eq!(o("bla.prefix", "GET"), None);
        assert_eq!(o("foo.put", "GET"), None);
        assert_eq!(o("foo.put", "PUT").as_deref(), Some("foo.put"));

        let headers = vec![
            rule(&["*"], &["GET"], &["x-amz-meta-header1"]),
            rule(&["http://www.example.com"], &["PUT"], &["x-amz-meta-header2", "x-amz-meta-header3"]),
            rule(&["http://www.example1.com"], &["DELETE"], &[]),
            rule(&["http://www.example2.com"], &["POST"], &["*"]),
        ];
        let h = |origin, m, hs: &[&str]| grant(&headers, &ask(origin, m, hs)).map(|g| g.allow_headers.join(","));
        assert_eq!(h("http://any.origin", "GET", &["x-amz-meta-header1"]).as_deref(), Some("x-amz-meta-header1"));
        assert_eq!(h("http://www.example.com", "PUT", &["x-amz-meta-header1"]), None);
        assert_eq!(h("http://www.example.com", "PUT", &["X-Amz-Meta-Header2"]).as_deref(), Some("X-Amz-Meta-Header2"));
        assert_eq!(h("http://www.example1.com", "DELETE", &["x-amz-meta-header1"]), None, "no header allowed");
        assert_eq!(h("http://www.example1.com", "DELETE", &[]).as_deref(), Some(""));
        assert_eq!(h("http://www.example2.com", "POST", &["a", "b"]).as_deref(), Some("a,b"));
    }

    #[test]
    fn configurations_s3_refuses() {
        let ok = rule(&["*"], &["GET"], &[]);
        assert!(validate(std::slice::from_ref(&ok)).is_ok());
        assert!(validate(&[]).is_err(), "no rule");
        assert!(validate(&vec![ok.clone(); MAX_RULES + 1]).is_err(), "too many rules");
        for bad in [
            rule(&["*"], &["PATCH"], &[]),
            rule(&["*.*"], &["GET"], &[]),
            rule(&["*"], &["GET"], &["x-*-*"]),
            rule(&[], &["GET"], &[]),
            rule(&["*"], &[], &[]),
            CorsRule { max_age_seconds: Some(-1), ..ok.clone() },
            CorsRule { id: Some("i".repeat(256)), ..ok.clone() },
        ] {
            assert!(matches!(validate(std::slice::from_ref(&bad)), Err(Error::InvalidInput(_))), "{bad:?}");
        }
    }

    /// The rules live with the bucket's folder: set, read and removed by its owner only; a
    /// preflight finds every bucket of the name; a renamed or deleted folder takes its rules
    /// away from the name, and a new bucket of the name starts without any.
    #[tokio::test]
    async fn rules_follow_the_bucket_folder() {
        use crate::meta::model::Role;
        let f = crate::tests::open_with(|_| {});
        let s = &f.storage;
        let alice = crate::tests::user(s, "alice", Role::User, None).await;
        let bob = crate::tests::user(s, "bob", Role::User, None).await;
        let reader = crate::tests::user(s, "dora", Role::Downloader, None).await;
        s.mkdir(&alice, "/web").await.unwrap();
        s.mkdir(&alice, "/web/inner").await.unwrap();
        let rules = vec![rule(&["https://app.example"], &["PUT"], &["*"])];
        assert_eq!(s.get_bucket_cors(&alice, "web").await.unwrap(), None);
        s.put_bucket_cors(&alice, "web", rules.clone()).await.unwrap();
        assert_eq!(s.get_bucket_cors(&alice, "web").await.unwrap(), Some(rules.clone()));
        assert_eq!(s.cors_rules_of(&alice, "web").await.unwrap().map(|c| c.rules), Some(rules.clone()));
        assert!(s.cors_rules_of(&bob, "web").await.unwrap().is_none(), "bob has no bucket web");
        assert_eq!(s.cors_rules_by_name("web").await.unwrap().len(), 1);
        // Only a bucket of one's own, by a role that writes.
        assert!(matches!(s.put_bucket_cors(&alice, "web/inner", rules.clone()).await, Err(Error::Forbidden(_))));
        assert!(s.put_bucket_cors(&alice, "shared", rules.clone()).await.is_err(), "the shared bucket is no one's");
        assert!(matches!(
            s.put_bucket_cors(&reader, "web", rules.clone()).await,
            Err(Error::Forbidden(_) | Error::NotFound(_))
        ));
        assert!(matches!(s.put_bucket_cors(&alice, "web", vec![]).await, Err(Error::InvalidInput(_))));
        // Bob's bucket of the same name answers preflights too.
        s.mkdir(&bob, "/web").await.unwrap();
        s.put_bucket_cors(&bob, "web", vec![rule(&["*"], &["GET"], &[])]).await.unwrap();
        assert_eq!(s.cors_rules_by_name("web").await.unwrap().len(), 2);
        s.delete_bucket_cors(&bob, "web").await.unwrap();
        assert_eq!(s.get_bucket_cors(&bob, "web").await.unwrap(), None);
        assert_eq!(s.cors_rules_by_name("web").await.unwrap().len(), 1);
        // A rename takes the rules along: the old name has none, the new one has them.
        s.rename(&alice, "/web", "/site", false).await.unwrap();
        assert!(s.cors_rules_by_name("web").await.unwrap().is_empty());
        assert_eq!(s.get_bucket_cors(&alice, "site").await.unwrap(), Some(rules.clone()));
        // Deleted: a new folder of the name starts without rules.
        s.delete(&alice, "/site", Default::default()).await.unwrap();
        s.mkdir(&alice, "/site").await.unwrap();
        assert_eq!(s.get_bucket_cors(&alice, "site").await.unwrap(), None);
        assert!(s.cors_rules_by_name("site").await.unwrap().is_empty());
    }

    crate::tests::also_on_postgres!(rules_follow_the_bucket_folder);
}
