//! How an S3 request reaches a bucket it names but the caller does not own. S3 clients of a
//! grantee name the owner's bucket by its name (`get_object(Bucket=alices-bucket)`), where
//! davit shows it under `shared/<owner>/…`; and anyone may read a public bucket unsigned.
//!
//! The rule: a bucket name is first the caller's own top-level folder. Else, if the grants
//! to the caller that lie inside buckets of that name come from exactly one owner, the name
//! reaches those grants (a grant on a prefix: the keys under it). Several owners: refused,
//! naming the `shared` bucket, where each has its own place. No grant: a bucket of that
//! name made readable to every user (authenticated-read), or to anyone where the server
//! allows it (`--s3-public-read`); such names are unique across the server (`s3_grants`).
//! Buckets reached this way are never listed by ListBuckets, which lists one's own.

use crate::meta::kv::{ReadTable, ReadTxn, Readable, WriteTable, WriteTxn};

use super::s3_policy::Audience;
use super::{Access, Place};
use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, ITEMS, S3_AUDIENCE, S3_AUDIENCE_NAMES, USERS};
use crate::meta::model::{Item, Principal, Role, Scope, User};
use crate::meta::names::{DrivePath, SHARED_ROOT};
use crate::meta::txn;

/// Where the paths in one bucket of an S3 request lead (`Scope::S3Bucket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRoute {
    pub(crate) bucket: String,
    pub(crate) to: RouteTo,
    /// The other buckets of other owners the same request names (a copy's source).
    pub(crate) more: Vec<BucketRoute>,
}

impl BucketRoute {
    fn new(bucket: &str, to: RouteTo) -> BucketRoute {
        BucketRoute { bucket: bucket.to_owned(), to, more: Vec::new() }
    }

    /// The route of `bucket`, if the request reaches it through one.
    pub(crate) fn find(&self, bucket: &str) -> Option<&BucketRoute> {
        std::iter::once(self).chain(&self.more).find(|r| r.bucket == bucket)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RouteTo {
    /// One owner's grants inside the bucket: the names from the bucket down to the granted
    /// item, and where the caller sees that item (`/shared/<owner>/<shown as>`).
    Grants(Vec<(Vec<String>, String)>),
    /// A bucket every user (or anyone) may read.
    Audience { item: u64, owner: u64 },
}

/// The tables that say who else may read a bucket, and where it is: opened by one of the
/// constructors, each table owned or borrowed from a change that has it open already.
pub(crate) struct AudienceTables<I, C, U, A, N> {
    items: I,
    children: C,
    users: U,
    audience: A,
    names: N,
}

type Read<K, V> = ReadTable<K, V>;
type Write<'t, K, V> = WriteTable<'t, K, V>;

impl
    AudienceTables<
        Read<u64, &'static [u8]>,
        Read<(u64, &'static str), u64>,
        Read<u64, &'static [u8]>,
        Read<u64, u64>,
        Read<&'static str, u64>,
    >
{
    /// In a read.
    pub(crate) fn read(t: &ReadTxn) -> Result<Self> {
        Ok(AudienceTables {
            items: t.open_table(ITEMS)?,
            children: t.open_table(CHILDREN)?,
            users: t.open_table(USERS)?,
            audience: t.open_table(S3_AUDIENCE)?,
            names: t.open_table(S3_AUDIENCE_NAMES)?,
        })
    }
}

impl<'t>
    AudienceTables<
        Write<'t, u64, &'static [u8]>,
        Write<'t, (u64, &'static str), u64>,
        Write<'t, u64, &'static [u8]>,
        Write<'t, u64, u64>,
        Write<'t, &'static str, u64>,
    >
{
    /// In a change that has none of the five open.
    pub(crate) fn write(t: &'t WriteTxn) -> Result<Self> {
        Ok(AudienceTables {
            items: t.open_table(ITEMS)?,
            children: t.open_table(CHILDREN)?,
            users: t.open_table(USERS)?,
            audience: t.open_table(S3_AUDIENCE)?,
            names: t.open_table(S3_AUDIENCE_NAMES)?,
        })
    }
}

impl<'w, 't>
    AudienceTables<
        &'w Write<'t, u64, &'static [u8]>,
        &'w Write<'t, (u64, &'static str), u64>,
        Write<'t, u64, &'static [u8]>,
        Write<'t, u64, u64>,
        Write<'t, &'static str, u64>,
    >
{
    /// In a change ([`txn::W`]), which has the items and children open.
    pub(crate) fn in_change(w: &'w txn::W<'t>) -> Result<Self> {
        Ok(AudienceTables {
            items: &w.items,
            children: &w.children,
            users: w.txn.open_table(USERS)?,
            audience: w.txn.open_table(S3_AUDIENCE)?,
            names: w.txn.open_table(S3_AUDIENCE_NAMES)?,
        })
    }
}

impl<I, C, U, A, N> AudienceTables<I, C, U, A, N>
where
    I: Readable<u64, &'static [u8]>,
    C: Readable<(u64, &'static str), u64>,
    U: Readable<u64, &'static [u8]>,
    A: Readable<u64, u64>,
    N: Readable<&'static str, u64>,
{
    /// The audience of a bucket's folder, if that folder is still its owner's top-level
    /// folder by the name it was made readable under: a renamed bucket loses it, and so does
    /// a deleted one at once (its rows may wait for the sweeper, its name is gone).
    pub(crate) fn audience_of(&self, item: u64, name: &str) -> Result<Option<(Item, Audience)>> {
        if self.names.get(name)?.map(|v| v.value()) != Some(item) {
            return Ok(None);
        }
        let Some(it) = txn::get_item(&self.items, item)? else { return Ok(None) };
        let Some(owner) = self.users.get(it.owner)? else { return Ok(None) };
        let owner: User = db::decode(owner.value())?;
        // A disabled owner's public bucket is private meanwhile, as their grants and links are.
        if !it.is_folder()
            || crate::auth::account_usable(&owner).is_err()
            || txn::lookup_child(&self.children, owner.root, name)? != Some(item)
        {
            return Ok(None);
        }
        let a = self.audience.get(item)?.map_or(Audience::Private, |v| Audience::from_code(v.value()));
        Ok((a != Audience::Private).then_some((it, a)))
    }

    /// The bucket readable to others under `name`, and to whom.
    pub(crate) fn readable_named(&self, name: &str) -> Result<Option<(Item, Audience)>> {
        match self.names.get(name)?.map(|v| v.value()) {
            Some(item) => self.audience_of(item, name),
            None => Ok(None),
        }
    }
}

/// Resolves a path of a principal with a bucket route: None for a path outside that bucket
/// (the caller's own drive).
pub(crate) fn place(t: &ReadTxn, p: &Principal, routes: &BucketRoute, path: &DrivePath) -> Result<Option<Place>> {
    let names = path.names();
    let Some(route) = names.first().and_then(|b| routes.find(b)) else {
        if p.user_id == 0 {
            return Err(Error::Forbidden("an unsigned request reaches only a public bucket".into()));
        }
        return Ok(None);
    };
    match &route.to {
        RouteTo::Audience { item, owner } => {
            let reach = AudienceTables::read(t)?.audience_of(*item, &route.bucket)?;
            if reach.is_none() {
                return Err(Error::Forbidden(format!("bucket {} is no longer readable to you", route.bucket)));
            }
            Ok(Some(Place {
                owner: *owner,
                base: *item,
                rel: path.skip(1),
                path: path.clone(),
                depth: 1,
                access: Access::Public { item: *item },
                shown_as: None,
            }))
        }
        RouteTo::Grants(grants) => {
            let below = &names[1..];
            let (prefix, shown) = grants
                .iter()
                .filter(|(prefix, _)| below.starts_with(prefix))
                .max_by_key(|(prefix, _)| prefix.len())
                .ok_or_else(|| {
                    Error::Forbidden(format!("only parts of bucket {} are shared with you", route.bucket))
                })?;
            let mut target = DrivePath::parse(shown)?;
            for n in &below[prefix.len()..] {
                target = target.join(n)?;
            }
            let drive = Principal { scope: Scope::Drive, ..p.clone() };
            let mut place = super::place(t, &drive, target)?;
            // The path stays as the caller named it (messages, the key of an upload begun
            // here); `/shared/<owner>/<shown>` stood for the bucket and the prefix.
            place.depth = place.depth - 3 + 1 + prefix.len();
            place.path = path.clone();
            Ok(Some(place))
        }
    }
}

/// The names from a top-level folder of its owner's drive down to `item`, top first.
fn names_from_top(items: &impl Readable<u64, &'static [u8]>, item: &Item) -> Result<Vec<String>> {
    let mut names = vec![item.name.clone()];
    let mut up = item.parent;
    for _ in 0..4096 {
        let Some(parent) = txn::get_item(items, up)? else { break };
        if parent.parent == 0 {
            break;
        }
        names.push(parent.name.clone());
        up = parent.parent;
    }
    names.reverse();
    Ok(names)
}

/// What a bucket name reaches for an S3 caller.
#[derive(Debug)]
pub enum S3Reach {
    /// The caller's own bucket (or their `shared` one).
    Own,
    /// Nothing: the request answers NoSuchBucket.
    Nothing,
    /// Another owner's bucket, through grants or its audience: act as this principal.
    Routed(Principal),
}

/// None: the caller's own bucket.
#[allow(clippy::type_complexity)] // Option<Option<_>>: own, nothing, or a route
fn route_in(
    t: &ReadTxn,
    p: Option<&Principal>,
    bucket: &str,
    public_allowed: bool,
) -> Result<Option<Option<BucketRoute>>> {
    if let Some(p) = p {
        if txn::lookup_child(&t.open_table(CHILDREN)?, p.root, bucket)?.is_some() {
            return Ok(None);
        }
        let items = t.open_table(ITEMS)?;
        let mut owners = Vec::new();
        let mut routes = Vec::new();
        for g in super::grants_to(t, p.user_id)?.top {
            let names = names_from_top(&items, &g.item)?;
            if names.first().map(String::as_str) != Some(bucket) {
                continue;
            }
            if !owners.contains(&g.owner_name) {
                owners.push(g.owner_name.clone());
            }
            routes.push((names[1..].to_vec(), format!("/{SHARED_ROOT}/{}/{}", g.owner_name, g.shown_as)));
        }
        match owners.len() {
            0 => {}
            1 => return Ok(Some(Some(BucketRoute::new(bucket, RouteTo::Grants(routes))))),
            _ => {
                return Err(Error::Forbidden(format!(
                    "{} each share a bucket named {bucket} with you: reach them in the shared bucket, as {}",
                    owners.join(", "),
                    owners.iter().map(|o| format!("{SHARED_ROOT}/{o}/…")).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    let reach = AudienceTables::read(t)?.readable_named(bucket)?;
    let open = match reach {
        Some((_, Audience::Public)) => public_allowed,
        Some((_, Audience::Authenticated)) => p.is_some(),
        _ => false,
    };
    Ok(Some(match reach {
        Some((it, _)) if open => Some(BucketRoute::new(bucket, RouteTo::Audience { item: it.id, owner: it.owner })),
        _ => None,
    }))
}

impl Storage {
    /// A listing of another owner's bucket of which only prefixes are shared with the
    /// caller: allowed when the listed prefix lies inside a granted one (`docs/` of a grant
    /// on `docs`), as a listing of that folder whose keys get the prefix back; refused with
    /// `refused` otherwise.
    pub(crate) async fn list_in_granted_prefix(
        &self,
        p: &Principal,
        folder: &str,
        q: crate::ListQuery<'_>,
        refused: String,
    ) -> Result<crate::KeyListing> {
        let Scope::S3Bucket(routes) = &p.scope else { return Err(Error::Forbidden(refused)) };
        let folder = DrivePath::parse(folder)?;
        let route = match folder.names() {
            [bucket] => routes.find(bucket),
            _ => None,
        };
        let Some(BucketRoute { to: RouteTo::Grants(grants), .. }) = route else {
            return Err(Error::Forbidden(refused));
        };
        let Some(granted) = grants
            .iter()
            .map(|(names, _)| format!("{}/", names.join("/")))
            .filter(|g| g.len() > 1 && q.prefix.starts_with(g.as_str()))
            .max_by_key(String::len)
        else {
            return Err(Error::Forbidden(refused));
        };
        let start_after = match q.start_after {
            Some(a) if a.starts_with(granted.as_str()) => Some(&a[granted.len()..]),
            // Before the granted prefix: from its start; after it: nothing is left.
            Some(a) if a < granted.as_str() => None,
            Some(_) => return Ok(crate::KeyListing::default()),
            None => None,
        };
        let inner = crate::ListQuery { prefix: &q.prefix[granted.len()..], start_after, ..q };
        let path = format!("{folder}/{}", granted.trim_end_matches('/'));
        let mut out = self.list_keys(p, &path, inner).await?;
        for (key, _) in &mut out.objects {
            key.insert_str(0, &granted);
        }
        for cp in &mut out.common_prefixes {
            cp.insert_str(0, &granted);
        }
        if let Some(next) = &mut out.next_after {
            next.insert_str(0, &granted);
        }
        Ok(out)
    }

    /// Whether this server lets anyone read a bucket made public (`--s3-public-read`).
    pub fn s3_public_read(&self) -> bool {
        self.core.config.s3_public_read
    }

    /// What an S3 request naming `bucket` reaches (see the module comment): with no `p`
    /// (unsigned), only a bucket anyone may read, else it is refused.
    ///
    /// A principal already reaching another bucket (the request's) can be given a second
    /// one (a copy's source) the same way.
    pub async fn s3_principal(&self, p: Option<&Principal>, bucket: &str) -> Result<S3Reach> {
        if bucket == SHARED_ROOT {
            return Ok(S3Reach::Own);
        }
        let mut routed = None;
        if let Some(p) = p {
            match &p.scope {
                Scope::Drive => {}
                Scope::S3Bucket(r) if r.find(bucket).is_some() => return Ok(S3Reach::Routed(p.clone())),
                Scope::S3Bucket(r) => routed = Some(r.clone()),
                Scope::Link { .. } => return Ok(S3Reach::Own),
            }
        }
        let owned = p.map(|p| Principal { scope: Scope::Drive, ..p.clone() });
        let (name, public) = (bucket.to_owned(), self.s3_public_read());
        let route = match self.core.db.read(move |t| route_in(t, owned.as_ref(), &name, public)).await? {
            None => return Ok(S3Reach::Own),
            Some(None) if p.is_some() => return Ok(S3Reach::Nothing),
            Some(None) => return Err(Error::Unauthenticated("anonymous access is not allowed".into())),
            Some(Some(route)) => route,
        };
        let scope = Scope::S3Bucket(match routed {
            Some(mut first) => {
                first.more.push(route);
                first
            }
            None => Box::new(route),
        });
        Ok(S3Reach::Routed(match p {
            Some(p) => Principal { scope, ..p.clone() },
            None => Principal {
                user_id: 0,
                username: "anonymous".into(),
                role: Role::Downloader,
                root: 0,
                lock_tokens: Vec::new(),
                scope,
            },
        }))
    }

    /// A stable opaque id of a user for S3 (Owner ID, ACL grantees): derived from the data
    /// key, so it reveals nothing of the account and cannot be made up.
    pub fn canonical_id(&self, user: u64) -> String {
        hex::encode(self.core.keys.canonical_user(user))
    }

    /// The user a canonical id names.
    pub async fn user_by_canonical_id(&self, id: &str) -> Result<User> {
        let id = id.to_ascii_lowercase();
        let s = self.clone();
        // A scan: canonical ids are keyed hashes, kept nowhere; a grant by id is rare.
        self.core
            .db
            .read(move |t| {
                for e in t.open_table(USERS)?.range(0..)? {
                    let (k, v) = e?;
                    if crate::crypto::ct_eq(s.canonical_id(k.value()).as_bytes(), id.as_bytes()) {
                        return db::decode::<User>(v.value());
                    }
                }
                Err(Error::missing(What::User, format!("no user has the canonical id {id}")))
            })
            .await
    }
}
