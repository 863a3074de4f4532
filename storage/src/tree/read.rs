//! Reading a file, whole or a byte range.

use super::FileRead;
use crate::Storage;
use crate::access::resolve_place;
use crate::content::read::{open_range, read_inline, resolve_range};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
use crate::meta::model::{Principal, Scope};
use crate::versions::{LockState, lock_state_in};

impl Storage {
    /// Opens a byte range (inclusive `(first, last)` as in HTTP; `None` for all) of a file.
    pub async fn read(&self, p: &Principal, path: &str, range: Option<(u64, Option<u64>)>) -> Result<FileRead> {
        Ok(self.read_as(p, path, range, false).await?.0)
    }

    /// [`Storage::read`], with the retention and legal hold of what is read
    /// ([`Storage::lock_state`]) from the same snapshot: an S3 GET answers both, and on
    /// PostgreSQL the state's first read goes in the round trip of the file's bytes, not in a
    /// transaction of its own. A state that cannot be read is told as none (it only adds
    /// headers), as `lock_state`'s callers do.
    pub async fn read_with_lock_state(
        &self,
        p: &Principal,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(FileRead, LockState)> {
        let (read, lock) = self.read_as(p, path, range, true).await?;
        Ok((read, lock.unwrap_or_default()))
    }

    async fn read_as(
        &self,
        p: &Principal,
        path: &str,
        range: Option<(u64, Option<u64>)>,
        with_lock: bool,
    ) -> Result<(FileRead, Option<LockState>)> {
        let place = self.place(p, path).await?;
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        place.check_read(p)?;
        let core = self.core.clone();
        let read = tokio::task::spawn_blocking(move || {
            // A concurrent overwrite can free the chunks between the lookup and the pin;
            // the pin then finds them gone and the lookup runs again on the new version.
            for _ in 0..8 {
                let (item, start, end, small, version, lock) = core.db.read_sync(|t| {
                    let item = resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                        .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                    if item.is_folder() {
                        return Err(Error::Conflict(format!("{} is a folder", place.path)));
                    }
                    let (start, end) = resolve_range(item.size, range)?;
                    fetch_inline_and_version(t, &item, with_lock.then_some(place.owner))?;
                    let small = read_inline(&core, t, &item.chunks, start, end)?;
                    // In the same snapshot, so the id is the one of the bytes read.
                    let version = crate::versions::version_of(t, item.id)?;
                    let lock = with_lock.then(|| lock_state_in(t, &place, None).unwrap_or_default());
                    Ok((item, start, end, small, version, lock))
                })?;
                if let Some(body) = small {
                    return Ok((FileRead { item, start, end, body, version }, lock));
                }
                match open_range(&core, &item.chunks, start, end) {
                    Ok(body) => {
                        return Ok((FileRead { item, start, end, body, version }, lock));
                    }
                    Err(Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::internal("file kept changing while being opened"))
        })
        .await??;
        Ok((first_piece_read(read.0).await?, read.1))
    }

    /// Opens a file to be downloaded (a GET; a HEAD only [`Storage::read`]s). Through a link,
    /// a read from the first byte is one download, counted before a byte is sent; later
    /// ranges (resumes) are free.
    pub async fn download(
        &self,
        p: &Principal,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<crate::FileRead> {
        let read = self.read(p, path, range).await?;
        if let Scope::Link { link, .. } = p.scope
            && read.start == 0
        {
            self.count_download(link).await?;
        }
        Ok(read)
    }
}

/// The rows `read` reads after the item, in one round trip on PostgreSQL: a small file's
/// bytes (as `read_inline` looks them up), its version, and with `owner` whether the owner
/// has versioning anywhere (`lock_state_in` asks that first; the owner of the place, which
/// `versions::locate` asks about in the common case, a drive's own file).
fn fetch_inline_and_version(
    t: &crate::meta::db::ReadTxn,
    item: &crate::meta::model::Item,
    owner: Option<u64>,
) -> Result<()> {
    use crate::meta::db::{CHUNK_DATA, CURRENT_VERSIONS, Readable, VERSIONING};
    let small = match item.chunks.as_slice() {
        [r] if r.len as usize <= crate::INLINE_MAX => Some(r),
        _ => None,
    };
    if small.is_none() && owner.is_none() {
        return Ok(());
    }
    let (data, versions, versioning) =
        (t.open_table(CHUNK_DATA)?, t.open_table(CURRENT_VERSIONS)?, t.open_table(VERSIONING)?);
    crate::meta::kv::fetch_ahead([
        small.and_then(|r| data.ahead(&r.id)),
        versions.ahead(item.id),
        owner.and_then(|o| versioning.range_ahead((o, 0)..(o + 1, 0))),
    ])
}

/// Reads the first piece of the body before anything is answered, so that a chunk store out
/// of reach (or damage) is told as a status (503, 500) rather than as a body cut off after a
/// 200; later pieces can only cut the body. It costs nothing extra: the piece is sent first.
async fn first_piece_read(mut read: FileRead) -> Result<FileRead> {
    use futures::StreamExt;
    match read.body.next().await {
        Some(Ok(first)) => {
            read.body = Box::pin(futures::stream::once(async move { Ok(first) }).chain(read.body));
            Ok(read)
        }
        Some(Err(e)) => Err(e),
        None => Ok(read),
    }
}
