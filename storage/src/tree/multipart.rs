//! Multipart uploads (S3): each part is chunked on its own as it arrives and holds chunk
//! references (counted against the owner's quota) until the upload completes — when the
//! file takes the parts' references, copying no data — or is aborted or expires.

use std::time::Duration;

use crate::meta::kv::Readable;
use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};

use crate::access::{self, Place};
use crate::content::ingest::{Ingested, ingest};
use crate::error::{Error, Result, What};
use crate::meta::db::{self, PARTS, UPLOAD_TOKEN_OF, UPLOAD_TOKENS, UPLOADS, UPLOADS_DONE};
use crate::meta::model::{Item, Principal, now_nanos};
use crate::meta::names::DrivePath;
use crate::meta::txn::{self, FileContent, W};
use crate::meta::uploads::{drop_rows, drop_upload, forget_upload, parts_of, token_of};
// The stored upload types live with the other rows below the rules; kept here by name.
pub use crate::meta::uploads::{DoneUpload, Part, Upload};
use crate::tree::locks::{self, LockGuard};
use crate::tree::quota_error;
use crate::{Storage, WriteOptions};

/// Parts other than the last must be at least this large (as on S3).
pub const MIN_PART: u64 = 5 * 1024 * 1024;
pub const MAX_PARTS: u32 = 10_000;

/// Headers an object takes from the parts it is completed from.
#[derive(Clone)]
pub struct CombineParts(pub std::sync::Arc<CombineFn>);

type CombineFn = dyn Fn(&[Part]) -> Vec<(String, String)> + Send + Sync;

/// What an uploaded part is checked against, and what it keeps.
#[derive(Clone, Debug, Default)]
pub struct PartOptions {
    /// The announced length: a body that ends short (or runs long) is refused.
    pub expected_len: Option<u64>,
    /// Content-MD5: a body with another is refused.
    pub expected_md5: Option<[u8; 16]>,
    /// A verified checksum to keep with the part, known once the body has been read.
    pub checksum: Option<crate::LateHeaders>,
}

/// An upload just begun, with the id S3 clients know it by.
#[derive(Clone, Debug)]
pub struct Started {
    pub upload: Upload,
    /// 128 random bits (base64url): an upload id reveals nothing and cannot be guessed, as
    /// the counter behind it could.
    pub token: String,
}

fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>())
}

fn no_upload() -> Error {
    Error::missing(What::Upload, "no such upload")
}

fn load_upload(w: &W<'_>, id: u64, owner: u64) -> Result<Upload> {
    let uploads = w.txn.open_table(UPLOADS)?;
    let up: Upload = db::decode(uploads.get(id)?.ok_or_else(no_upload)?.value())?;
    if up.owner != owner {
        return Err(no_upload());
    }
    Ok(up)
}

/// How much later than an upload its bucket may seem to have been made and still be the one
/// it began in: the two times come from the clocks of the nodes that served each request,
/// which agree to well within this (NTP), so a bucket made just before an upload on another
/// node is never taken for a newer one.
const CLOCK_SLACK_NANOS: i64 = 60 * 1_000_000_000;

/// Refuses an upload whose bucket (the first folder of a drive, for a key in one) is not the
/// one it began in: removed or renamed since (completion makes the missing folders of a key,
/// but never its bucket), or made again after the upload began (a new bucket has none of the
/// old one's uploads, as in S3), once the clocks' slack has passed.
fn in_its_bucket(w: &W<'_>, place: &Place, up: &Upload) -> Result<()> {
    let names = place.rel.names();
    if place.depth != 0 || names.len() < 2 {
        return Ok(());
    }
    let bucket = w.resolve_folder(place.base, &DrivePath::from_names(vec![names[0].clone()])?)?;
    if bucket.created > up.created.saturating_add(CLOCK_SLACK_NANOS) {
        return Err(no_upload());
    }
    Ok(())
}

impl Storage {
    /// Starts an upload to `path`; the file appears only when it completes.
    pub async fn create_upload(&self, p: &Principal, path: &str, opts: WriteOptions) -> Result<Upload> {
        Ok(self.start_upload(p, path, opts).await?.upload)
    }

    /// [`Storage::create_upload`], answering the upload's S3 id too.
    pub async fn start_upload(&self, p: &Principal, path: &str, opts: WriteOptions) -> Result<Started> {
        let token = new_token();
        let place = self.change_target(p, path).await?;
        // Completion makes the missing folders of the key: their names are new too.
        place.rel.check_new(true)?;
        self.core.config.policy.check_file(
            p.role,
            place.path.name().unwrap_or_default(),
            opts.content_type.as_deref(),
        )?;
        let (owner, payer, now) = (p.user_id, place.owner, now_nanos());
        let path = place.path.to_string();
        let guard = LockGuard::of(p, false);
        if let Some(tags) = &opts.tags {
            super::tagging::check_object_tags(tags)?;
            if !tags.is_empty() {
                self.core.extras.seen();
            }
        }
        self.core
            .db
            .write((), move |ctx| {
                locks::check_in_txn(ctx.txn, &place, &guard)?;
                let id = ctx.txn.next_id("next_upload_id")?;
                let up = Upload {
                    id,
                    owner,
                    payer,
                    path: path.clone(),
                    created: now,
                    content_type: opts.content_type.clone(),
                    headers: opts.headers.clone(),
                    user_meta: opts.user_meta.clone(),
                };
                ctx.txn.open_table(UPLOADS)?.insert(id, db::encode(&up).as_slice())?;
                ctx.txn.open_table(UPLOAD_TOKENS)?.insert(token.as_str(), id)?;
                ctx.txn.open_table(UPLOAD_TOKEN_OF)?.insert(id, token.as_bytes())?;
                crate::meta::tags::set_upload(ctx.txn, id, opts.tags.as_deref().unwrap_or_default())?;
                Ok(Started { upload: up, token: token.clone() })
            })
            .await
    }

    /// The upload an S3 id names: its token, or the number of an upload begun before
    /// tokens (one that has a token answers only to it). Whose it is is checked by the call
    /// that uses it.
    pub async fn resolve_upload(&self, token: &str) -> Result<u64> {
        let token = token.to_owned();
        self.core
            .db
            .read(move |t| {
                if let Some(id) = t.open_table(UPLOAD_TOKENS)?.get(token.as_str())? {
                    return Ok(id.value());
                }
                match token.parse::<u64>() {
                    Ok(id) if t.open_table(UPLOAD_TOKEN_OF)?.get(id)?.is_none() => Ok(id),
                    _ => Err(no_upload()),
                }
            })
            .await
    }

    /// A completed upload of the caller's, as the completion answered (see [`DoneUpload`]).
    pub async fn completed_upload(&self, p: &Principal, id: u64) -> Result<DoneUpload> {
        let owner = p.user_id;
        self.core
            .db
            .read(move |t| {
                let done: DoneUpload = db::decode(t.open_table(UPLOADS_DONE)?.get(id)?.ok_or_else(no_upload)?.value())?;
                if done.owner != owner {
                    return Err(no_upload());
                }
                Ok(done)
            })
            .await
    }

    pub async fn get_upload(&self, p: &Principal, id: u64) -> Result<Upload> {
        let owner = p.user_id;
        self.core
            .db
            .read(move |t| {
                let up: Upload = db::decode(t.open_table(UPLOADS)?.get(id)?.ok_or_else(no_upload)?.value())?;
                if up.owner != owner {
                    return Err(no_upload());
                }
                Ok(up)
            })
            .await
    }

    /// Where an upload goes, resolved again for each use: a grant revoked since it began
    /// ends it, and so does its key now leading into another drive than the one it began
    /// in (an S3 bucket reached through another owner's policy that has ended, which the
    /// same name now finds in the caller's own drive), whose usage its parts are not in.
    async fn upload_target(&self, p: &Principal, up: &Upload) -> Result<Place> {
        let place = self.change_target(p, &up.path).await?;
        if place.owner != up.payer {
            return Err(no_upload());
        }
        Ok(place)
    }

    /// Stores one part from a stream (replacing a part with the same number).
    pub async fn upload_part<S>(&self, p: &Principal, id: u64, number: u32, body: S, opts: PartOptions) -> Result<Part>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(Error::InvalidInput(format!("part numbers are 1 to {MAX_PARTS}")));
        }
        let up = self.get_upload(p, id).await?;
        let place = self.upload_target(p, &up).await?;
        // Before the body is read; the commit checks again.
        self.check_unlocked(p, &place, false).await?;
        let usage = self.usage(up.payer).await?;
        let room = if usage.quota == 0 { u64::MAX } else { usage.quota.saturating_sub(usage.bytes) };
        // The file's size rule bounds each part (a larger part cannot be in a valid object),
        // and completion checks the sum of the parts it is made of.
        let limit = self.size_limit(p.role);
        if let (Some(limit), Some(len)) = (limit, opts.expected_len) {
            limit.check(len)?;
        }
        let max = limit.map_or(room, |l| l.bytes.min(room));
        let ingested = ingest(&self.core, body, max, || match limit {
            Some(l) if l.bytes <= room => l.refusal(None),
            _ => quota_error(room),
        })
        .await?;
        ingested.check_announced(opts.expected_len, opts.expected_md5, "part")?;
        let etag = ingested.etag();
        let Ingested { refs, size, inline, pins, commit_by, .. } = ingested;
        let checksum = opts.checksum.and_then(|c| (c.0)().into_iter().next());
        let part = Part { number, size, etag, modified: now_nanos(), chunks: refs, checksum };
        let (owner, payer) = (up.owner, up.payer);
        self.commit_at(place, LockGuard::of(p, false), pins, move |w, place| {
            in_its_bucket(w, place, &load_upload(w, id, owner)?)?;
            let old: Option<Part> =
                w.txn.open_table(PARTS)?.get((id, number))?.map(|v| db::decode(v.value())).transpose()?;
            let old_size = old.as_ref().map_or(0, |o| o.size);
            w.check_quota(payer, part.size as i128 - old_size as i128)?;
            w.add_refs(&part.chunks, inline.as_ref(), commit_by)?;
            if let Some(old) = &old {
                w.release_refs(&old.chunks)?;
            }
            w.add_usage(payer, part.size as i128 - old_size as i128, 0)?;
            w.txn.open_table(PARTS)?.insert((id, number), db::encode(&part).as_slice())?;
            Ok(part.clone())
        })
        .await
    }

    pub async fn list_parts(&self, p: &Principal, id: u64) -> Result<Vec<Part>> {
        let up = self.get_upload(p, id).await?;
        self.upload_target(p, &up).await?;
        self.core
            .db
            .read(move |t| {
                let parts = t.open_table(PARTS)?;
                let mut out = Vec::new();
                for e in parts.range((up.id, 0)..(up.id + 1, 0))? {
                    out.push(db::decode(e?.1.value())?);
                }
                Ok(out)
            })
            .await
    }

    /// The caller's unfinished uploads whose path starts with `path_prefix`.
    pub async fn list_uploads(&self, p: &Principal, path_prefix: &str) -> Result<Vec<Upload>> {
        Ok(self.list_uploads_with_tokens(p, path_prefix).await?.into_iter().map(|(u, _)| u).collect())
    }

    /// [`Storage::list_uploads`] with each upload's S3 id, by path, then by start.
    pub async fn list_uploads_with_tokens(&self, p: &Principal, path_prefix: &str) -> Result<Vec<(Upload, String)>> {
        let (owner, prefix) = (p.user_id, path_prefix.to_owned());
        self.core
            .db
            .read(move |t| {
                let tokens = t.open_table(UPLOAD_TOKEN_OF)?;
                let mut out = Vec::new();
                for e in t.open_table(UPLOADS)?.iter()? {
                    let up: Upload = db::decode(e?.1.value())?;
                    if up.owner == owner && up.path.starts_with(&prefix) {
                        let token = token_of(&tokens, up.id)?;
                        out.push((up, token));
                    }
                }
                out.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path).then(a.created.cmp(&b.created)).then(a.id.cmp(&b.id)));
                Ok(out)
            })
            .await
    }

    pub async fn abort_upload(&self, p: &Principal, id: u64) -> Result<()> {
        let owner = p.user_id;
        self.core
            .db
            .write((), move |ctx| {
                let mut w = W::open(ctx)?;
                let up = load_upload(&w, id, owner)?;
                drop_upload(&mut w, &up)
            })
            .await
    }

    /// Completes an upload from the listed parts (ascending numbers with their ETags): the
    /// file takes the parts' chunk references, so no data is copied. Its ETag is the MD5 of
    /// the parts' MD5s, then `-N`.
    pub async fn complete_upload(&self, p: &Principal, id: u64, listed: Vec<(u32, String)>) -> Result<Item> {
        self.complete_upload_with(p, id, listed, None, crate::VersionLock::default(), Default::default()).await
    }

    /// [`Storage::complete_upload`], keeping with the object the headers `combine` derives
    /// from the chosen parts (a whole-object checksum from the parts' ones), computed in the
    /// committing transaction so they describe exactly the parts the object is made of, and
    /// giving the object the `lock` its upload asked for (same transaction), if what is at
    /// its key meets `conditions` (`If-Match`, `If-None-Match`) as it commits.
    pub async fn complete_upload_with(
        &self,
        p: &Principal,
        id: u64,
        listed: Vec<(u32, String)>,
        combine: Option<CombineParts>,
        lock: crate::VersionLock,
        conditions: super::Conditions,
    ) -> Result<Item> {
        let up = self.get_upload(p, id).await?;
        let place = self.upload_target(p, &up).await?;
        // Checked at creation too; again here for uploads begun before the rule existed.
        place.rel.check_new(true)?;
        let (owner, now, limit) = (p.user_id, now_nanos(), self.size_limit(p.role));
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let up = load_upload(w, id, owner)?;
            in_its_bucket(w, place, &up)?;
            if listed.is_empty() {
                return Err(Error::InvalidPart("the upload lists no parts".into()));
            }
            let stored: std::collections::HashMap<u32, Part> =
                parts_of(w, id)?.into_iter().map(|p| (p.number, p)).collect();
            let mut chosen = Vec::new();
            let mut last = 0;
            for (n, tag) in &listed {
                if *n <= last {
                    return Err(Error::InvalidPartOrder("parts must be listed in ascending order".into()));
                }
                last = *n;
                let part = stored.get(n).ok_or_else(|| Error::InvalidPart(format!("part {n} was not uploaded")))?;
                if tag.trim_matches('"') != part.etag {
                    return Err(Error::InvalidPart(format!("part {n} has another ETag")));
                }
                chosen.push(part.clone());
            }
            for part in &chosen[..chosen.len() - 1] {
                if part.size < MIN_PART {
                    return Err(Error::TooSmall(format!(
                        "part {} is smaller than 5 MiB and not the last",
                        part.number
                    )));
                }
            }
            let mut md5 = Md5::new();
            let mut refs = Vec::new();
            let mut size = 0u64;
            for part in &chosen {
                md5.update(hex::decode(&part.etag).map_err(Error::internal)?);
                refs.extend(part.chunks.iter().copied());
                size += part.size;
            }
            if let Some(limit) = limit {
                limit.check(size)?;
            }
            let etag = format!("{}-{}", hex::encode(md5.finalize()), chosen.len());
            let (parent, name) = access::slot(w, place, true, now)?;
            let current = match txn::lookup_child(&w.children, parent.id, &name)? {
                Some(cid) => Some(w.get(cid)?),
                None => None,
            };
            if current.as_ref().is_some_and(Item::is_folder) {
                return Err(Error::Conflict(format!("{} is a folder", place.path)));
            }
            conditions.check(current.as_ref())?;
            // The file takes references first, then the upload lets all of its go; its S3 id
            // stays, with what this completion answers, for a repeated completion.
            w.add_refs(&refs, None, None)?;
            // S3's completion makes a new object: it has the upload's tags, or none.
            let tags = crate::meta::tags::of_upload(w.txn, up.id)?;
            drop_rows(w, &up)?;
            let old_size = current.as_ref().map_or(0, |c| c.size);
            w.check_quota(place.owner, size as i128 - old_size as i128)?;
            let mut headers = up.headers.clone();
            let combined = combine.as_ref().map(|c| (c.0)(&chosen)).unwrap_or_default();
            headers.extend(combined.iter().cloned());
            let done = DoneUpload {
                owner: up.owner,
                path: up.path.clone(),
                etag: etag.clone(),
                headers: combined,
                finished: now,
            };
            w.txn.open_table(UPLOADS_DONE)?.insert(id, db::encode(&done).as_slice())?;
            let content = FileContent {
                size,
                etag,
                chunks: refs,
                modified: now,
                content_type: up.content_type.clone(),
                headers,
                user_meta: up.user_meta.clone(),
                parts: chosen.iter().map(|p| p.size).collect(),
            };
            let item = w.place_file(place.owner, parent.id, &name, current, now, content)?;
            crate::meta::tags::set_item(w.txn, item.id, &tags)?;
            w.lock_written(place, &item, &lock)?;
            let sums = chosen.iter().map(|p| p.checksum.clone()).collect();
            crate::meta::tags::set_part_sums(w.txn, item.id, &item.etag, sums)?;
            Ok(item)
        })
        .await
    }

    /// Aborts uploads started longer ago than `max_age`; their chunks are freed.
    pub async fn expire_uploads(&self, max_age: Duration) -> Result<usize> {
        let cutoff = now_nanos() - max_age.as_nanos() as i64;
        self.core
            .db
            .write((), move |ctx| {
                let mut w = W::open(ctx)?;
                let old: Vec<Upload> = {
                    let uploads = w.txn.open_table(UPLOADS)?;
                    let mut v = Vec::new();
                    for e in uploads.iter()? {
                        let up: Upload = db::decode(e?.1.value())?;
                        if up.created < cutoff {
                            v.push(up);
                        }
                    }
                    v
                };
                for up in &old {
                    drop_upload(&mut w, up)?;
                }
                // Completions are remembered as long as an upload may last.
                let done: Vec<u64> = {
                    let t = w.txn.open_table(UPLOADS_DONE)?;
                    let mut v = Vec::new();
                    for e in t.iter()? {
                        let (k, d) = e?;
                        if db::decode::<DoneUpload>(d.value())?.finished < cutoff {
                            v.push(k.value());
                        }
                    }
                    v
                };
                for id in done {
                    forget_upload(&w, id)?;
                }
                Ok(old.len())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use std::time::Duration;

    use crate::access::policy::Rule;
    use crate::meta::model::{Principal, Role};
    use crate::{Error, PartOptions, Storage, WriteOptions};

    fn body(len: usize) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin + Send + 'static {
        let data = crate::tests::pseudo_random(len, len as u64);
        futures::stream::iter(data.chunks(100_003).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>())
    }

    async fn uploader(limit: u64) -> (tempfile::TempDir, Storage, Principal) {
        let f = crate::tests::open_with(|c| {
            c.policy.roles.insert(Role::Uploader, Rule { max_file_size: Some(limit), ..Default::default() });
        });
        let p = crate::tests::user(&f.storage, "ops", Role::Uploader, None).await;
        (f.dir, f.storage, p)
    }

    #[tokio::test]
    async fn multipart_obeys_the_role_size_limit_per_part_and_in_sum() {
        const MIB: usize = 1024 * 1024;
        let (_dir, s, p) = uploader(6 * MIB as u64).await;
        // A single write over the role's limit, as before.
        let e = s.write(&p, "/single.bin", body(7 * MIB), WriteOptions::default()).await.unwrap_err();
        assert!(matches!(&e, Error::TooLarge(m) if m.contains("uploader role")), "{e:?}");

        s.mkdir(&p, "/big").await.unwrap();
        let up = s.create_upload(&p, "/big/file.bin", WriteOptions::default()).await.unwrap();
        // A part over the limit is refused as it streams in, naming the role's rule.
        let e = s.upload_part(&p, up.id, 1, body(7 * MIB), PartOptions::default()).await.unwrap_err();
        assert!(matches!(&e, Error::TooLarge(m) if m.contains("uploader role")), "{e:?}");
        // An announced length over it is refused before a byte is read.
        let opts = PartOptions { expected_len: Some(7 * MIB as u64), ..Default::default() };
        assert!(matches!(s.upload_part(&p, up.id, 1, body(0), opts).await, Err(Error::TooLarge(_))));
        // Parts each under the limit whose sum is over it: completion refuses.
        let p1 = s.upload_part(&p, up.id, 1, body(5 * MIB), PartOptions::default()).await.unwrap();
        let p2 = s.upload_part(&p, up.id, 2, body(2 * MIB), PartOptions::default()).await.unwrap();
        let listed = vec![(1, p1.etag.clone()), (2, p2.etag.clone())];
        let e = s.complete_upload(&p, up.id, listed).await.unwrap_err();
        assert!(matches!(&e, Error::TooLarge(m) if m.contains("7340032") && m.contains("uploader role")), "{e:?}");
        assert!(matches!(s.stat(&p, "/big/file.bin").await, Err(Error::NotFound(_))), "nothing stored");
        // Within the limit the same upload completes.
        let item = s.complete_upload(&p, up.id, vec![(1, p1.etag)]).await.unwrap();
        assert_eq!(item.size, 5 * MIB as u64);
    }

    /// Upload ids are random tokens; a number names only an upload begun before them; a
    /// completion is remembered (for a repeated one) until the expiry forgets it with its
    /// token, and an abort forgets the token at once.
    #[tokio::test]
    async fn upload_tokens_resolve_and_completions_are_remembered() {
        let f = crate::tests::open_with(|_| {});
        let s = &f.storage;
        let p = crate::tests::user(s, "alice", Role::User, None).await;
        let bob = crate::tests::user(s, "bob", Role::User, None).await;
        s.mkdir(&p, "/b").await.unwrap();
        let a = s.start_upload(&p, "/b/a.bin", WriteOptions::default()).await.unwrap();
        let b = s.start_upload(&p, "/b/a.bin", WriteOptions::default()).await.unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.len() >= 22 && a.token.parse::<u64>().is_err(), "{}", a.token);
        assert_eq!(s.resolve_upload(&a.token).await.unwrap(), a.upload.id);
        // The counter behind a token names nothing.
        assert!(matches!(s.resolve_upload(&a.upload.id.to_string()).await, Err(Error::NotFound(_))));
        assert!(matches!(s.resolve_upload("AAAAAAAAAAAAAAAAAAAAAA").await, Err(Error::NotFound(_))));
        let listed = s.list_uploads_with_tokens(&p, "/b/").await.unwrap();
        assert_eq!(
            listed.iter().map(|(u, t)| (u.id, t.clone())).collect::<Vec<_>>(),
            vec![(a.upload.id, a.token.clone()), (b.upload.id, b.token.clone())]
        );

        let part = s.upload_part(&p, a.upload.id, 1, body(10), PartOptions::default()).await.unwrap();
        let item = s.complete_upload(&p, a.upload.id, vec![(1, part.etag)]).await.unwrap();
        let done = s.completed_upload(&p, s.resolve_upload(&a.token).await.unwrap()).await.unwrap();
        assert_eq!((done.etag.as_str(), done.path.as_str()), (item.etag.as_str(), "/b/a.bin"));
        assert!(matches!(s.completed_upload(&bob, a.upload.id).await, Err(Error::NotFound(_))), "only its owner's");
        s.abort_upload(&p, b.upload.id).await.unwrap();
        assert!(matches!(s.resolve_upload(&b.token).await, Err(Error::NotFound(_))), "an abort forgets the id");
        // The expiry forgets completions with their ids.
        s.expire_uploads(Duration::ZERO).await.unwrap();
        assert!(matches!(s.resolve_upload(&a.token).await, Err(Error::NotFound(_))));
        assert!(matches!(s.completed_upload(&p, a.upload.id).await, Err(Error::NotFound(_))));
    }

    /// An upload ends with its bucket: removed, renamed or made again since it began, the
    /// bucket takes no part of it and no completion, and none brings the bucket back; an abort
    /// still frees its parts.
    #[tokio::test]
    async fn an_upload_does_not_outlive_its_bucket() {
        #[track_caller]
        fn gone<T: std::fmt::Debug>(r: crate::Result<T>) {
            assert!(matches!(r, Err(Error::NotFound(_) | Error::ParentMissing(_))), "{r:?}");
        }
        let f = crate::tests::open_with(|_| {});
        let s = &f.storage;
        let p = crate::tests::user(s, "alice", Role::User, None).await;
        let part = |id| s.upload_part(&p, id, 1, body(10), PartOptions::default());

        s.mkdir(&p, "/b").await.unwrap();
        let up = s.create_upload(&p, "/b/sub/k.bin", WriteOptions::default()).await.unwrap();
        let tag = part(up.id).await.unwrap().etag;
        // Begun two minutes ago, past the clocks' slack.
        let id = up.id;
        s.core
            .db
            .write((), move |ctx| {
                let mut t = ctx.txn.open_table(crate::meta::db::UPLOADS)?;
                let mut up: crate::multipart::Upload =
                    crate::meta::db::decode(crate::meta::kv::Readable::get(&t, id)?.unwrap().value())?;
                up.created -= 2 * super::CLOCK_SLACK_NANOS;
                t.insert(id, crate::meta::db::encode(&up).as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        s.delete(&p, "/b", Default::default()).await.unwrap();
        gone(part(up.id).await);
        gone(s.complete_upload(&p, up.id, vec![(1, tag.clone())]).await);
        gone(s.stat(&p, "/b").await);
        // The same name made again is another bucket.
        s.mkdir(&p, "/b").await.unwrap();
        gone(part(up.id).await);
        gone(s.complete_upload(&p, up.id, vec![(1, tag)]).await);
        gone(s.stat(&p, "/b/sub").await);

        // Renamed: the key leads nowhere.
        let up = s.create_upload(&p, "/b/k.bin", WriteOptions::default()).await.unwrap();
        let tag = part(up.id).await.unwrap().etag;
        s.rename(&p, "/b", "/c", false).await.unwrap();
        gone(s.complete_upload(&p, up.id, vec![(1, tag)]).await);
        gone(s.stat(&p, "/b").await);
        s.abort_upload(&p, up.id).await.unwrap();
        assert_eq!(s.usage(p.user_id).await.unwrap().bytes, 10, "the first upload's part is still held");
    }

    /// An upload begun before tokens (no row) answers to its number.
    #[tokio::test]
    async fn uploads_of_a_running_store_keep_their_number() {
        let f = crate::tests::open_with(|_| {});
        let s = &f.storage;
        let p = crate::tests::user(s, "alice", Role::User, None).await;
        s.mkdir(&p, "/b").await.unwrap();
        let up = s.create_upload(&p, "/b/old.bin", WriteOptions::default()).await.unwrap();
        let id = up.id;
        // As a davit without the token tables left it.
        s.core
            .db
            .write((), move |ctx| {
                crate::meta::uploads::forget_upload(&crate::meta::txn::W::open(ctx)?, id)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(s.resolve_upload(&id.to_string()).await.unwrap(), id);
        let listed = s.list_uploads_with_tokens(&p, "/b/").await.unwrap();
        assert_eq!(listed[0].1, id.to_string());
    }

    crate::tests::also_on_postgres!(
        upload_tokens_resolve_and_completions_are_remembered,
        uploads_of_a_running_store_keep_their_number
    );
}
