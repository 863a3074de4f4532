//! What an item is: stat of one path, and the usage and size limit of an account.

use super::shared_folder;
use crate::Storage;
use crate::access::policy::SizeLimit;
use crate::access::{Access, Place, resolve_place};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS, USAGE};
use crate::meta::model::{Item, Principal, Role, Usage};
use crate::meta::txn::{self};

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

    /// The size rule of `role`'s writes, whole files and multipart uploads alike (see
    /// [`crate::access::policy::Policy::size_limit`]).
    pub fn size_limit(&self, role: Role) -> Option<SizeLimit> {
        self.core.config.policy.size_limit(role, self.core.config.max_file_size)
    }

    pub async fn usage(&self, user_id: u64) -> Result<Usage> {
        self.core
            .db
            .read(move |t| {
                let user = txn::load_user(t, user_id)?;
                let (bytes, files) = t.open_table(USAGE)?.get(user_id)?.map_or((0, 0), |v| v.value());
                Ok(Usage { bytes, files, quota: user.quota })
            })
            .await
    }
}
