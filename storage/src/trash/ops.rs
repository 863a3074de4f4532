//! The trash as front ends call it: list, restore, purge one, empty.

use crate::Storage;
use crate::access::Place;
use crate::error::{Error, Result};
use crate::meta::db::{self, TRASH};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Kind, Principal, Scope, now_nanos};
use crate::meta::names::DrivePath;
use crate::meta::txn;
use crate::tree::locks::LockGuard;

use super::{TrashEntry, TrashRow};

impl Storage {
    /// How long an entry stays in the trash (0: deletes are final).
    pub fn trash_keep(&self) -> std::time::Duration {
        self.core.config.trash_day * self.core.config.trash_days
    }

    /// Only a signed-in user has a trash: a link's holder or an S3 view of another's bucket
    /// reaches none.
    fn trash_owner(p: &Principal) -> Result<u64> {
        if p.scope != Scope::Drive {
            return Err(Error::Forbidden("only a signed-in user has a trash".into()));
        }
        Ok(p.user_id)
    }

    /// The caller's trash, oldest first (the order it is collected in is by deletion time).
    pub async fn trash_list(&self, p: &Principal) -> Result<Vec<TrashEntry>> {
        let owner = Self::trash_owner(p)?;
        let keep = self.trash_keep().as_nanos().min(i64::MAX as u128) as i64;
        let mut list = self
            .core
            .db
            .read(move |t| {
                let mut out = Vec::new();
                let users = t.open_table(db::USERS)?;
                for e in t.open_table(TRASH)?.range((owner, 0)..(owner + 1, 0))? {
                    let (k, v) = e?;
                    let row: TrashRow = db::decode(v.value())?;
                    let by = match users.get(row.deleted_by)? {
                        Some(u) => Some(db::decode::<crate::meta::model::User>(u.value())?.username),
                        None => None,
                    };
                    out.push(TrashEntry {
                        id: k.value().1,
                        path: row.path,
                        kind: if row.folder { Kind::Folder } else { Kind::File },
                        size: row.size,
                        files: row.files,
                        deleted_at: row.deleted_at,
                        expires_at: row.deleted_at.saturating_add(keep),
                        deleted_by: row.deleted_by,
                        deleted_by_name: by,
                    });
                }
                Ok(out)
            })
            .await?;
        list.sort_by_key(|e| (e.deleted_at, e.id));
        Ok(list)
    }

    /// Puts trash entry `id` back: at `to` when given, else where it was (parent folders
    /// made again as needed). Something there now is a conflict. Grants and links it had
    /// are not restored.
    pub async fn trash_restore(&self, p: &Principal, id: u64, to: Option<&str>) -> Result<Item> {
        let owner = Self::trash_owner(p)?;
        let to = match to {
            Some(t) => t.to_owned(),
            None => {
                let row = self
                    .core
                    .db
                    .read(move |t| match t.open_table(TRASH)?.get((owner, id))? {
                        Some(v) => Ok(Some(db::decode::<TrashRow>(v.value())?)),
                        None => Ok(None),
                    })
                    .await?;
                row.ok_or_else(super::gone)?.path
            }
        };
        let path = DrivePath::parse(&to)?;
        if path.in_shared() {
            return Err(Error::Forbidden("a trash entry is restored into your own drive, not below /shared".into()));
        }
        path.check_new(true)?;
        let place = Place::own(p, path);
        place.check_write(p)?;
        let now = now_nanos();
        self.commit_at(place, LockGuard::of(p, true), (), move |w, place| {
            w.restore_trashed(owner, id, place.base, &place.rel, now)
        })
        .await
    }

    /// Removes trash entry `id` for good, freeing its bytes.
    pub async fn trash_purge(&self, p: &Principal, id: u64) -> Result<()> {
        let owner = Self::trash_owner(p)?;
        check_role(p)?;
        let swept = self.core.db.write((), move |ctx| txn::W::open(ctx)?.purge_trashed(owner, id)).await?;
        self.swept_later(swept);
        Ok(())
    }

    /// Empties the caller's trash; returns how many entries went.
    pub async fn trash_empty(&self, p: &Principal) -> Result<usize> {
        let owner = Self::trash_owner(p)?;
        check_role(p)?;
        let (n, swept) = self
            .core
            .db
            .write((), move |ctx| {
                let mut w = txn::W::open(ctx)?;
                let n = w.txn.open_table(TRASH)?.range((owner, 0)..(owner + 1, 0))?.count();
                Ok((n, w.purge_all_trash(owner)?))
            })
            .await?;
        self.swept_later(swept);
        Ok(n)
    }
}

/// Purging is a change of the drive: roles that cannot change files cannot purge.
fn check_role(p: &Principal) -> Result<()> {
    if p.role.writes() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("the {} role cannot change files", p.role.as_str())))
    }
}
