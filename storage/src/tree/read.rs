//! Reading a file, whole or a byte range.

use super::FileRead;
use crate::Storage;
use crate::access::resolve_place;
use crate::content::read::{open_range, read_inline, resolve_range};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
use crate::meta::model::{Principal, Scope};

impl Storage {
    /// Opens a byte range (inclusive `(first, last)` as in HTTP; `None` for all) of a file.
    pub async fn read(&self, p: &Principal, path: &str, range: Option<(u64, Option<u64>)>) -> Result<FileRead> {
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
                let (item, start, end, small, version) = core.db.read_sync(|t| {
                    let item = resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                        .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                    if item.is_folder() {
                        return Err(Error::Conflict(format!("{} is a folder", place.path)));
                    }
                    let (start, end) = resolve_range(item.size, range)?;
                    fetch_inline_and_version(t, &item)?;
                    let small = read_inline(&core, t, &item.chunks, start, end)?;
                    // In the same snapshot, so the id is the one of the bytes read.
                    let version = crate::versions::version_of(t, item.id)?;
                    Ok((item, start, end, small, version))
                })?;
                if let Some(body) = small {
                    return Ok(FileRead { item, start, end, body, version });
                }
                match open_range(&core, &item.chunks, start, end) {
                    Ok(body) => {
                        return Ok(FileRead { item, start, end, body, version });
                    }
                    Err(Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::internal("file kept changing while being opened"))
        })
        .await??;
        first_piece_read(read).await
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

/// The two rows `read` reads after the item, in one round trip on PostgreSQL: a small
/// file's bytes (as `read_inline` looks them up) and its version.
fn fetch_inline_and_version(t: &crate::meta::db::ReadTxn, item: &crate::meta::model::Item) -> Result<()> {
    use crate::meta::db::{CHUNK_DATA, CURRENT_VERSIONS, Readable};
    let [r] = item.chunks.as_slice() else { return Ok(()) };
    if r.len as usize > crate::INLINE_MAX {
        return Ok(());
    }
    let (data, versions) = (t.open_table(CHUNK_DATA)?, t.open_table(CURRENT_VERSIONS)?);
    crate::meta::kv::fetch_ahead([data.ahead(&r.id), versions.ahead(item.id)])
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
