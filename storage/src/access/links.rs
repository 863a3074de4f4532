//! Expiring links: `/s/<token>` reaches one item of its owner's drive, read-only, or, for
//! an upload link on a folder, create-only (a drop box). Only the token's SHA-256 is kept;
//! a link ends when it expires, is revoked, is used up, or its item or owner is deleted,
//! and then answers 410 Gone.

use std::time::Duration;

use crate::meta::kv::Readable;
use base64::Engine;

use crate::Storage;
use crate::access::link_usable;
use crate::access::reshare::{check_made_link_read, check_made_link_write, link_target};
use crate::access::sharing::path_of;
use crate::auth::throttle::ClientAddr;
use crate::error::{Error, Result, What};
use crate::meta::db::{
    self, ITEMS, LINK_MAKERS, LINK_TOKENS, LINKS, LINKS_BY_ITEM, LINKS_BY_MAKER, LINKS_BY_OWNER, USERS,
};
use crate::meta::kv::ReadTxn;
use crate::meta::model::{Kind, Link, LinkState, Principal, Scope, User, now_nanos};
use crate::meta::names::DrivePath;
use crate::meta::txn;

/// What a new link allows and how long it lives.
#[derive(Clone, Debug, Default)]
pub struct NewLink {
    /// Seconds from now; with neither this nor `expires_at`, the server's maximum.
    pub expires_in: Option<u64>,
    /// Unix nanoseconds.
    pub expires_at: Option<i64>,
    pub password: Option<String>,
    pub max_downloads: Option<u64>,
    pub upload: bool,
}

#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub link: Link,
    /// The item's path as the viewer sees it (in the owner's drive, or under `/shared` for
    /// the grantee who made the link), while it exists.
    pub path: Option<String>,
    pub kind: Option<Kind>,
    /// The grantee who made it through a grant (`access::reshare`); None: the owner.
    pub made_by: Option<String>,
    /// Made through a grant that no longer allows it.
    pub grant_ended: bool,
}

/// How a link's password is proven: typed in, or by the cookie a typed password earned.
pub enum LinkProof<'a> {
    None,
    Password(&'a str),
    Cookie(&'a str),
}

/// A link opened for one request.
#[derive(Clone, Debug)]
pub struct OpenLink {
    pub link: Link,
    pub principal: Principal,
    pub kind: Kind,
    pub name: String,
}

fn token_hash(token: &str) -> [u8; 32] {
    crate::crypto::sha256(token.as_bytes())
}

fn state_name(l: &Link) -> &'static str {
    if link_usable(l).is_ok() {
        return "active";
    }
    match l.state {
        LinkState::Revoked => "revoked",
        LinkState::Deleted => "deleted",
        LinkState::Active if l.expires <= now_nanos() => "expired",
        LinkState::Active => "used up",
    }
}

impl LinkInfo {
    pub fn state(&self) -> &'static str {
        match state_name(&self.link) {
            "active" if self.grant_ended => "grant ended",
            s => s,
        }
    }
}

/// Where `viewer` sees an item: its path in their drive when it is theirs, else under
/// `/shared/<owner>/…` through their grants (None when no grant reaches it any more).
fn shown_path(t: &ReadTxn, viewer: u64, link: &Link) -> Result<Option<String>> {
    let items = t.open_table(ITEMS)?;
    if link.owner == viewer {
        return path_of(&items, link.item).map(Some);
    }
    let grants = crate::access::grants_to(t, viewer)?;
    let mut names = Vec::new();
    let mut cur = txn::get_item(&items, link.item)?;
    while let Some(it) = cur {
        if let Some(g) = grants.top.iter().find(|g| g.item.id == it.id) {
            names.push(g.shown_as.clone());
            names.push(g.owner_name.clone());
            names.push(crate::meta::names::SHARED_ROOT.to_owned());
            names.reverse();
            return Ok(Some(format!("/{}", names.join("/"))));
        }
        if it.parent == 0 || names.len() > 4096 {
            break;
        }
        names.push(it.name.clone());
        cur = txn::get_item(&items, it.parent)?;
    }
    Ok(None)
}

/// A link as `viewer` sees it.
fn link_info(t: &ReadTxn, viewer: u64, link: Link) -> Result<LinkInfo> {
    let items = t.open_table(ITEMS)?;
    let item = if link.state == LinkState::Deleted { None } else { txn::get_item(&items, link.item)? };
    let path = match &item {
        Some(_) => shown_path(t, viewer, &link)?,
        None => None,
    };
    let maker = t.open_table(LINK_MAKERS)?.get(link.id)?.map(|v| v.value());
    let made_by = match maker {
        Some(m) => Some(
            t.open_table(USERS)?
                .get(m)?
                .map(|v| db::decode::<User>(v.value()))
                .transpose()?
                .map_or_else(|| format!("#{m}"), |u| u.username),
        ),
        None => None,
    };
    let grant_ended = matches!(check_made_link_read(t, &link), Err(Error::Gone(_)));
    Ok(LinkInfo { kind: item.map(|i| i.kind), path, made_by, grant_ended, link })
}

impl Storage {
    /// Makes a link to the item at `path` of the caller's drive, or, when a grant allows it
    /// (`access::reshare`), a download link to an item shared with the caller; returns it and
    /// its token (shown once).
    pub async fn create_link(&self, p: &Principal, path: &str, new: NewLink) -> Result<(LinkInfo, String)> {
        let path = DrivePath::parse(path)?;
        let now = now_nanos();
        let max = self.core.config.link_max_lifetime;
        let cap = now.saturating_add(max.as_nanos().min(i64::MAX as u128) as i64);
        let expires = match (new.expires_at, new.expires_in) {
            (Some(_), Some(_)) => return Err(Error::InvalidInput("give expires_in or expires_at, not both".into())),
            (Some(at), None) => at,
            (None, Some(secs)) => now.saturating_add(Duration::from_secs(secs).as_nanos().min(i64::MAX as u128) as i64),
            (None, None) => cap,
        };
        if expires <= now {
            return Err(Error::InvalidInput("a link must expire in the future".into()));
        }
        let expires = expires.min(cap);
        if new.max_downloads == Some(0) {
            return Err(Error::InvalidInput("a download limit is at least 1".into()));
        }
        if new.upload && !p.role.writes() {
            return Err(Error::Forbidden(format!("the {} role cannot make upload links", p.role.as_str())));
        }
        let password_hash = match new.password.as_deref().filter(|s| !s.is_empty()) {
            Some(pw) => Some(self.core.hasher.hash(pw).await?),
            None => None,
        };
        let p2 = p.clone();
        let (item, owner, maker) = self.core.db.read(move |t| link_target(t, &p2, &path, new.upload)).await?;
        if new.upload && !item.is_folder() {
            return Err(Error::InvalidInput("an upload link needs a folder".into()));
        }
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>());
        let hash = token_hash(&token);
        let (item_id, upload, max_downloads) = (item.id, new.upload, new.max_downloads);
        let link = self
            .core
            .db
            .write((), move |ctx| {
                let txn = ctx.txn;
                txn.open_table(ITEMS)?.get(item_id)?.ok_or_else(|| Error::not_found(What::Item))?;
                let link = Link {
                    id: txn.next_id("next_link_id")?,
                    owner,
                    item: item_id,
                    token_hash: hash,
                    upload,
                    expires,
                    password_hash: password_hash.clone(),
                    max_downloads,
                    downloads: 0,
                    created: now,
                    state: LinkState::Active,
                };
                txn.open_table(LINKS)?.insert(link.id, db::encode(&link).as_slice())?;
                txn.open_table(LINK_TOKENS)?.insert(&hash, link.id)?;
                txn.open_table(LINKS_BY_OWNER)?.insert((owner, link.id), item_id)?;
                txn.open_table(LINKS_BY_ITEM)?.insert((item_id, link.id), owner)?;
                if let Some(maker) = maker {
                    txn.open_table(LINK_MAKERS)?.insert(link.id, maker)?;
                    txn.open_table(LINKS_BY_MAKER)?.insert((maker, link.id), item_id)?;
                    // The grant may have been revoked or narrowed since it was read.
                    check_made_link_write(txn, &txn.open_table(ITEMS)?, &link)
                        .map_err(|_| Error::Forbidden("the grant no longer allows links to this item".into()))?;
                }
                Ok(link)
            })
            .await?;
        let viewer = p.user_id;
        let info = self.core.db.read(move |t| link_info(t, viewer, link)).await?;
        let mut event =
            crate::audit::Event::new("link_created").by(p).with("link", info.link.id).with("upload", upload);
        if let Some(path) = &info.path {
            event = event.with("path", path);
        }
        self.audit(event).await;
        Ok((info, token))
    }

    /// The caller's links, ended ones included (with their state): those of their items,
    /// whoever made them, and those they made through grants.
    pub async fn list_links(&self, p: &Principal) -> Result<Vec<LinkInfo>> {
        let me = p.user_id;
        self.core
            .db
            .read(move |t| {
                let links = t.open_table(LINKS)?;
                let mut ids = Vec::new();
                for e in t.open_table(LINKS_BY_OWNER)?.range((me, 0)..(me + 1, 0))? {
                    ids.push(e?.0.value().1);
                }
                for e in t.open_table(LINKS_BY_MAKER)?.range((me, 0)..(me + 1, 0))? {
                    ids.push(e?.0.value().1);
                }
                ids.sort_unstable();
                ids.dedup();
                let mut out = Vec::new();
                for id in ids {
                    let Some(v) = links.get(id)? else { continue };
                    out.push(link_info(t, me, db::decode(v.value())?)?);
                }
                Ok(out)
            })
            .await
    }

    /// Revokes a link of the caller's, or one they made through a grant: its URL answers
    /// 410 Gone from now on.
    pub async fn revoke_link(&self, p: &Principal, id: u64) -> Result<()> {
        let me = p.user_id;
        self.core
            .db
            .write((), move |ctx| {
                let maker = ctx.txn.open_table(LINK_MAKERS)?.get(id)?.map(|v| v.value());
                let mut links = ctx.txn.open_table(LINKS)?;
                let link = links.get(id)?.map(|v| db::decode::<Link>(v.value())).transpose()?;
                let mine = |l: &Link| me != 0 && (l.owner == me || maker == Some(me));
                let mut link = link.filter(mine).ok_or_else(|| Error::not_found(What::Link))?;
                if link.state == LinkState::Active {
                    link.state = LinkState::Revoked;
                    links.insert(id, db::encode(&link).as_slice())?;
                }
                Ok(())
            })
            .await?;
        self.audit(crate::audit::Event::new("link_revoked").by(p).with("link", id)).await;
        Ok(())
    }

    /// Opens a link for one request: unknown tokens are NotFound, ended links Gone, and a
    /// missing or wrong password Unauthenticated (wrong ones throttled like logins).
    pub async fn open_link(&self, token: &str, proof: LinkProof<'_>, addr: Option<ClientAddr>) -> Result<OpenLink> {
        let hash = token_hash(token);
        let (link, owner, item) = self
            .core
            .db
            .read(move |t| {
                let id = t.open_table(LINK_TOKENS)?.get(&hash)?.map(|v| v.value());
                let id = id.ok_or_else(|| Error::missing(What::Link, "no such link"))?;
                let link: Link = db::decode(
                    t.open_table(LINKS)?.get(id)?.ok_or_else(|| Error::missing(What::Link, "no such link"))?.value(),
                )?;
                if !crate::crypto::ct_eq(&link.token_hash, &hash) {
                    return Err(Error::missing(What::Link, "no such link"));
                }
                link_usable(&link)?;
                check_made_link_read(t, &link)?;
                let owner: User = db::decode(
                    t.open_table(USERS)?
                        .get(link.owner)?
                        .ok_or_else(|| Error::Gone("this link's owner is gone".into()))?
                        .value(),
                )?;
                let item = txn::get_item(&t.open_table(ITEMS)?, link.item)?
                    .ok_or_else(|| Error::Gone("what this link pointed to was deleted".into()))?;
                Ok((link, owner, item))
            })
            .await?;
        if crate::auth::account_usable(&owner).is_err() {
            return Err(Error::Gone("this link is not available".into()));
        }
        if let Some(hash) = &link.password_hash {
            let account = format!("link:{}", link.id);
            match proof {
                LinkProof::Cookie(c) if crate::crypto::ct_eq(c.as_bytes(), self.link_cookie(&link).as_bytes()) => {}
                LinkProof::Password(pw) => {
                    // Per (link, address) and per address, like a login's password.
                    let attempt = self.core.throttle.gate(&account, addr).await?;
                    let ok = self.core.hasher.verify(hash, pw).await?;
                    if !ok {
                        attempt.failed();
                        self.audit(
                            crate::audit::Event::new("link_password_failed")
                                .from(addr)
                                .target(link.owner)
                                .with("link", link.id),
                        )
                        .await;
                        return Err(Error::Unauthenticated("wrong password for this link".into()));
                    }
                    attempt.succeeded();
                }
                _ => return Err(Error::Unauthenticated("this link needs a password".into())),
            }
        }
        let principal = Principal {
            user_id: 0,
            username: format!("link:{}", link.id),
            role: owner.role,
            root: 0,
            lock_tokens: Vec::new(),
            scope: Scope::Link { link: link.id, item: link.item, owner: link.owner, upload: link.upload },
        };
        Ok(OpenLink { principal, kind: item.kind, name: item.name, link })
    }

    /// The cookie that proves a link's password was given: it changes with the password
    /// and means nothing for another link.
    pub fn link_cookie(&self, link: &Link) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.core.jwt_key);
        let msg = format!("davit/link-cookie/v1:{}:{}", link.id, link.password_hash.as_deref().unwrap_or(""));
        hex::encode(ring::hmac::sign(&key, msg.as_bytes()).as_ref())
    }

    /// Counts one download of a link, atomically: past its limit, the link is used up.
    pub async fn count_download(&self, link_id: u64) -> Result<()> {
        let owner = self
            .core
            .db
            .write((), move |ctx| {
                let mut links = ctx.txn.open_table(LINKS)?;
                let mut link: Link = db::decode(
                    links.get(link_id)?.ok_or_else(|| Error::Gone("this link was removed".into()))?.value(),
                )?;
                link_usable(&link)?;
                check_made_link_write(ctx.txn, &ctx.txn.open_table(ITEMS)?, &link)?;
                link.downloads += 1;
                links.insert(link_id, db::encode(&link).as_slice())?;
                Ok(link.owner)
            })
            .await?;
        self.audit(crate::audit::Event::new("link_used").target(owner).with("link", link_id)).await;
        Ok(())
    }
}
