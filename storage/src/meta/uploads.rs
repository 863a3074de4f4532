//! The rows of S3 multipart uploads in progress: an upload and its parts, and how they are
//! dropped (an abort, a completion, or their user going), releasing chunk references and
//! the payer's quota share. The rules of uploading are in `tree::multipart`.

use crate::meta::kv::Readable;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::meta::db::{self, PARTS, UPLOAD_TOKEN_OF, UPLOAD_TOKENS, UPLOADS, UPLOADS_DONE};
use crate::meta::model::ChunkRef;
use crate::meta::txn::W;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Upload {
    pub id: u64,
    /// Who started it: only they see and use it.
    pub owner: u64,
    /// Whose quota holds the parts: the owner of the target's place (a share's owner).
    pub payer: u64,
    /// The target path as the uploader named it.
    pub path: String,
    pub created: i64,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Part {
    pub number: u32,
    pub size: u64,
    /// Hex MD5 of the part.
    pub etag: String,
    pub modified: i64,
    pub chunks: Vec<ChunkRef>,
    /// The checksum the client had verified for the part (header name, value), if any.
    pub checksum: Option<(String, String)>,
}
/// A completed upload, remembered so that completing it again answers the same (S3 does:
/// a client whose first answer was lost retries).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DoneUpload {
    pub owner: u64,
    /// The target path as the uploader named it.
    pub path: String,
    pub etag: String,
    /// The headers the completion derived from the parts (a whole-object checksum).
    pub headers: Vec<(String, String)>,
    pub finished: i64,
}
crate::meta::db::stored!(Upload = "multipart upload", Part = "part", DoneUpload = "completed upload");

/// The S3 id of an upload: its token, or for an upload begun before tokens, its number.
pub(crate) fn token_of(t: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<String> {
    Ok(match t.get(id)? {
        Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
        None => id.to_string(),
    })
}

/// Forgets upload `id` entirely: its S3 id and its completion.
pub(crate) fn forget_upload(w: &W<'_>, id: u64) -> Result<()> {
    let of = w.txn.open_table(UPLOAD_TOKEN_OF)?;
    let token = of.get(id)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    drop(of);
    if let Some(token) = token {
        w.txn.open_table(UPLOAD_TOKEN_OF)?.remove(id)?;
        w.txn.open_table(UPLOAD_TOKENS)?.remove(token.as_str())?;
    }
    w.txn.open_table(UPLOADS_DONE)?.remove(id)?;
    Ok(())
}

pub(crate) fn parts_of(w: &W<'_>, id: u64) -> Result<Vec<Part>> {
    let parts = w.txn.open_table(PARTS)?;
    let mut out = Vec::new();
    for e in parts.range((id, 0)..(id + 1, 0))? {
        out.push(db::decode(e?.1.value())?);
    }
    Ok(out)
}

/// Removes an upload, its parts and its S3 id, releasing their references and their quota
/// share.
pub(crate) fn drop_upload(w: &mut W<'_>, up: &Upload) -> Result<()> {
    drop_rows(w, up)?;
    forget_upload(w, up.id)
}

/// [`drop_upload`] keeping the S3 id, for a completion, which remembers it.
pub(crate) fn drop_rows(w: &mut W<'_>, up: &Upload) -> Result<()> {
    let parts = parts_of(w, up.id)?;
    let mut bytes = 0u64;
    for part in &parts {
        w.release_refs(&part.chunks)?;
        bytes += part.size;
        w.txn.open_table(PARTS)?.remove((up.id, part.number))?;
    }
    w.txn.open_table(UPLOADS)?.remove(up.id)?;
    crate::meta::tags::forget_upload(w.txn, up.id)?;
    w.add_usage(up.payer, -(bytes as i128), 0)
}

/// Drops the uploads a user started or whose parts they pay for (the user is going).
pub(crate) fn drop_uploads_of(w: &mut W<'_>, user: u64) -> Result<()> {
    let theirs: Vec<Upload> = {
        let uploads = w.txn.open_table(UPLOADS)?;
        let mut v = Vec::new();
        for e in uploads.iter()? {
            let up: Upload = db::decode(e?.1.value())?;
            if up.owner == user || up.payer == user {
                v.push(up);
            }
        }
        v
    };
    for up in &theirs {
        drop_upload(w, up)?;
    }
    let done: Vec<u64> = {
        let t = w.txn.open_table(UPLOADS_DONE)?;
        let mut v = Vec::new();
        for e in t.iter()? {
            let (k, v2) = e?;
            if db::decode::<DoneUpload>(v2.value())?.owner == user {
                v.push(k.value());
            }
        }
        v
    };
    for id in done {
        forget_upload(w, id)?;
    }
    Ok(())
}
