//! What an item is (stat of one path), and the size limit of a role.

use super::shared_folder;
use crate::Storage;
use crate::access::{Access, Place, resolve_place};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS, LOCKS, Readable};
use crate::meta::kv::fetch_with_next;
use crate::meta::model::{Item, Principal};

impl Storage {
    pub async fn stat(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place(p, path).await?;
        self.stat_place(p, place).await
    }

    /// [`Storage::stat`] of a file the caller is about to download: refused as the read
    /// would be (an uploader, an upload link), for front ends that must answer a status
    /// before they stream the first byte.
    pub async fn stat_readable(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place(p, path).await?;
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        place.check_read(p)?;
        self.stat_place(p, place).await
    }

    /// [`Storage::stat`], and whether no lock at all is stored, read in the same snapshot
    /// when that costs no round trip of its own (PostgreSQL: the first page of the locks goes
    /// with the path's query); `None` otherwise (redb, where a lock check is a local read, and
    /// paths answered without a read). For a front end whose next step in the same request is
    /// a lock check of its own (a WebDAV PUT: dav-server's, before the body): with no lock
    /// stored it has nothing to check. The core's own checks (before the body, at commit) read
    /// again whatever this said.
    pub async fn stat_noting_locks(&self, p: &Principal, path: &str) -> (Result<Item>, Option<bool>) {
        let place = match self.place(p, path).await {
            Ok(place) => place,
            Err(e) => return (Err(e), None),
        };
        if (place.access == Access::Own && place.path.is_shared_root()) || place.hides_names() {
            return (self.stat_place(p, place).await, None);
        }
        let found = self
            .core
            .db
            .read(move |t| {
                let locks = t.open_table(LOCKS)?;
                let noting = locks.on_postgres().is_some();
                if noting {
                    fetch_with_next([locks.range_ahead::<u64>(..)]);
                }
                let item = resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)));
                let none = if noting { Some(super::locks::none_stored(t)?) } else { None };
                Ok((item, none))
            })
            .await;
        match found {
            Ok((item, none)) => (item, none),
            Err(e) => (Err(e), None),
        }
    }

    async fn stat_place(&self, p: &Principal, place: Place) -> Result<Item> {
        if place.access == Access::Own && place.path.is_shared_root() {
            return Ok(shared_folder(p));
        }
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        self.core
            .db
            .read(move |t| {
                resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))
            })
            .await
    }
}
