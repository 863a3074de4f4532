//! What an item is (stat of one path), and the size limit of a role.

use super::shared_folder;
use crate::Storage;
use crate::access::{Access, Place, resolve_place};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
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
