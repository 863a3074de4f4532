//! dav-server's lock system, backed by the core's lock store: paths become chains of item
//! ids, so a lock binds the item whatever path reaches it. The locks are in the metadata
//! store, shared by every node; one is made per request.

use std::sync::Arc;
use std::time::Duration;

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use davit_storage::locks::{LockInfo, LockRefused, LockRequest};
use davit_storage::{Error, Principal, Storage};
use futures::FutureExt;
use xmltree::Element;

use crate::fs::drive_path;

#[derive(Clone)]
pub struct CoreLs {
    storage: Storage,
    principal: Principal,
    /// Whether the store held any lock when this request first asked: a PROPFIND asks for
    /// the lock discovery of every entry it lists, and with no lock stored none needs a
    /// read. Only discovery uses it (a report as of the request); every check reads.
    any: Arc<tokio::sync::OnceCell<bool>>,
    /// Whether the request's first look found no lock stored (`RequestCtx::no_locks`).
    no_locks: Arc<std::sync::OnceLock<bool>>,
}

impl CoreLs {
    pub fn new(storage: Storage, principal: Principal, no_locks: Arc<std::sync::OnceLock<bool>>) -> Self {
        CoreLs { storage, principal, any: Default::default(), no_locks }
    }
}

impl std::fmt::Debug for CoreLs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreLs")
    }
}

fn to_dav(l: &LockInfo) -> DavLock {
    let owner = l.owner_xml.as_ref().and_then(|x| Element::parse(x.as_slice()).ok()).map(Box::new);
    DavLock {
        token: l.token.clone(),
        path: Box::new(dav_path(&l.href)),
        principal: l.principal.clone(),
        owner,
        timeout_at: l.expires,
        timeout: l.timeout,
        shared: l.shared,
        deep: l.deep,
    }
}

/// Gives every element its own namespace declaration, so the owner element parses again
/// outside the request document its prefixes were declared in.
fn standalone(e: &mut Element) {
    if let Some(ns) = e.namespace.clone() {
        e.prefix = None;
        let mut decl = xmltree::Namespace::empty();
        decl.force_put("", ns);
        e.namespaces = Some(decl);
    }
    for child in e.children.iter_mut() {
        if let xmltree::XMLNode::Element(c) = child {
            standalone(c);
        }
    }
}

fn dav_path(href: &str) -> DavPath {
    let mut p = DavPath::new(href).unwrap_or_else(|_| DavPath::new("/").expect("root"));
    let _ = p.set_prefix(crate::PREFIX);
    p
}

/// A lock that conflicts with everything, for paths the core cannot name.
fn refusal(path: &DavPath) -> DavLock {
    DavLock {
        token: String::new(),
        path: Box::new(path.clone()),
        principal: None,
        owner: None,
        timeout_at: None,
        timeout: None,
        shared: false,
        deep: false,
    }
}

/// The answer dav-server expects from a lock the core took or refused.
fn answer(path: &DavPath, r: Result<LockInfo, LockRefused>) -> Result<DavLock, DavLock> {
    match r {
        Ok(l) => Ok(to_dav(&l)),
        Err(LockRefused::Held(l)) => Err(to_dav(&l)),
        Err(LockRefused::Denied(_)) => Err(refusal(path)),
    }
}

// Every decision (who may lock, which lock is in the way) is the core's; this only
// translates paths and answers.
impl DavLockSystem for CoreLs {
    fn lock(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let path = path.clone();
        let owner_xml = owner.map(|o| {
            let mut o = o.clone();
            standalone(&mut o);
            let mut v = Vec::new();
            let _ = o.write(&mut v);
            v
        });
        let req = LockRequest {
            href: path.with_prefix().as_url_string(),
            principal: principal.map(str::to_owned),
            owner_xml,
            timeout,
            shared,
            deep,
        };
        async move {
            let Ok(p) = drive_path(&path) else { return Err(refusal(&path)) };
            match self.storage.lock(&self.principal, &p, req.clone()).await {
                Err(LockRefused::Denied(Error::NotFound(_))) => {}
                r => return answer(&path, r),
            }
            // An unmapped URL: check the ancestors, make the empty file the lock will hold
            // (RFC 4918 §7.3), then lock it.
            if let Some(l) = self.storage.conflicting_lock(&self.principal, &p, None, true, false, &[]).await {
                return Err(to_dav(&l));
            }
            let opts = davit_storage::WriteOptions {
                conditions: davit_storage::Conditions { if_match: None, if_none_match: Some(vec!["*".into()]) },
                ..Default::default()
            };
            let empty = futures::stream::empty();
            if self.storage.write(&self.principal, &p, empty, opts).await.is_err() {
                return Err(refusal(&path));
            }
            answer(&path, self.storage.lock(&self.principal, &p, req).await)
        }
        .boxed()
    }

    fn unlock(&'_ self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            let p = drive_path(&path).map_err(|_| ())?;
            match self.storage.unlock(&self.principal, &p, &token).await {
                Ok(true) => Ok(()),
                _ => Err(()),
            }
        }
        .boxed()
    }

    fn refresh(&'_ self, path: &DavPath, token: &str, timeout: Option<Duration>) -> LsFuture<'_, Result<DavLock, ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            let p = drive_path(&path).map_err(|_| ())?;
            match self.storage.refresh_lock(&self.principal, &p, &token, timeout).await {
                Ok(Some(l)) => Ok(to_dav(&l)),
                _ => Err(()),
            }
        }
        .boxed()
    }

    fn check(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let path = path.clone();
        let principal = principal.map(str::to_owned);
        let tokens = submitted_tokens.to_vec();
        async move {
            let Ok(p) = drive_path(&path) else { return Ok(()) };
            // No lock was stored when this request first looked (its snapshot, moments ago):
            // none can be in the way. One taken since is found by the core's own checks.
            if self.no_locks.get() == Some(&true) {
                return Ok(());
            }
            match self
                .storage
                .conflicting_lock(&self.principal, &p, principal.as_deref(), ignore_principal, deep, &tokens)
                .await
            {
                Some(l) => Err(to_dav(&l)),
                None => Ok(()),
            }
        }
        .boxed()
    }

    fn discover(&'_ self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let path = path.clone();
        async move {
            let Ok(p) = drive_path(&path) else { return Vec::new() };
            let any = self.any.get_or_init(|| async { self.storage.any_locks().await.unwrap_or(true) }).await;
            if !*any {
                return Vec::new();
            }
            self.storage.discover_locks(&self.principal, &p).await.iter().map(to_dav).collect()
        }
        .boxed()
    }

    /// Nothing to do: the core drops an item's locks in the transaction that deletes or
    /// moves it.
    fn delete(&'_ self, _path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        futures::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_survives_storage_outside_its_document() {
        let doc = r#"<D:lockinfo xmlns:D="DAV:"><D:owner><D:href>mailto:a@b</D:href> litmus</D:owner></D:lockinfo>"#;
        let info = xmltree::Element::parse(doc.as_bytes()).unwrap();
        let mut owner = info.get_child("owner").unwrap().clone();
        super::standalone(&mut owner);
        let mut v = Vec::new();
        owner.write(&mut v).unwrap();
        let back = xmltree::Element::parse(v.as_slice()).unwrap();
        assert_eq!(back.name, "owner");
        assert_eq!(back.namespace.as_deref(), Some("DAV:"));
        assert_eq!(back.get_child("href").unwrap().get_text().unwrap(), "mailto:a@b");
    }
}
