//! A folder's children, a page at a time (S3's key listing is `listing`).

use super::shared_folder;
use crate::Storage;
use crate::access::{self, Access, resolve_place};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
use crate::meta::model::{Item, Principal};
use crate::meta::txn::{self};

impl Storage {
    /// A page of a folder's children in name order (folders sort as `name/`), after the
    /// child named `after` when given. The root also lists the virtual `shared` folder.
    pub async fn list(&self, p: &Principal, path: &str, after: Option<String>, limit: usize) -> Result<Vec<Item>> {
        let place = self.place(p, path).await?;
        if place.hides_names() {
            return Ok(Vec::new());
        }
        let shared = shared_folder(p);
        let user = p.user_id;
        self.core
            .db
            .read(move |t| {
                let start = after.unwrap_or_default();
                let page = |mut v: Vec<Item>| {
                    v.retain(|i| i.child_key() > start);
                    v.sort_by_key(Item::child_key);
                    v.truncate(limit);
                    v
                };
                match &place.access {
                    Access::SharedRoot => {
                        let grants = access::grants_to(t, user)?;
                        let mut owners: Vec<Item> = Vec::new();
                        for g in grants.top {
                            if owners.last().is_none_or(|o| o.name != g.owner_name) {
                                owners.push(Item::folder(0, g.share.owner, 0, &g.owner_name, 0));
                            }
                        }
                        return Ok(page(owners));
                    }
                    Access::SharedOwner { name } => {
                        let grants = access::grants_to(t, user)?;
                        let mine = grants
                            .top
                            .into_iter()
                            .filter(|g| &g.owner_name == name)
                            .map(|g| Item { name: g.shown_as, ..g.item })
                            .collect();
                        return Ok(page(mine));
                    }
                    _ => {}
                }
                let items = t.open_table(ITEMS)?;
                let children = t.open_table(CHILDREN)?;
                let folder = resolve_place(&items, &children, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                if !folder.is_folder() {
                    return Err(Error::Conflict(format!("{} is a file, not a folder", place.path)));
                }
                let mut out = Vec::new();
                let mut with_shared = place.access == Access::Own && place.rel.is_root();
                for entry in txn::children_from(&items, &children, folder.id, &start)? {
                    let child = entry?;
                    if child.key() == start {
                        continue;
                    }
                    if with_shared && child.key() > "shared/" && start.as_str() < "shared/" {
                        out.push(shared.clone());
                        with_shared = false;
                    }
                    if out.len() >= limit {
                        break;
                    }
                    out.push(child.item()?);
                }
                if with_shared && start.as_str() < "shared/" && out.len() < limit {
                    out.push(shared);
                }
                out.truncate(limit);
                Ok(out)
            })
            .await
    }
}
