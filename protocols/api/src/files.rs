//! Files over REST, for clients that speak neither WebDAV nor S3: list, upload (streamed, raw
//! or as a form), download (ranges), make folders, move, copy, delete, usage.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use davit_storage::{FileRead, Item, Kind, WriteOptions};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::answers::{ItemKind, ItemList, Listing, UsageJson};
use crate::auth::Caller;
use crate::json::JsonBody;
use crate::{ApiState, Problem};

/// A file or folder.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ItemJson {
    pub id: u64,
    pub name: String,
    pub kind: ItemKind,
    /// Bytes; 0 for folders.
    pub size: u64,
    /// RFC 3339.
    pub modified: String,
    /// Files only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_type: Option<String>,
}

pub fn rfc3339(nanos: i64) -> String {
    humantime::format_rfc3339_seconds(davit_http::system_time(nanos)).to_string()
}

impl From<&Item> for ItemJson {
    fn from(i: &Item) -> Self {
        ItemJson {
            id: i.id,
            name: i.name.clone(),
            kind: i.kind.into(),
            size: i.size,
            modified: rfc3339(i.modified),
            etag: (i.kind == Kind::File).then(|| i.etag.clone()),
            content_type: i.content_type.clone(),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many (1 to 1000; default 1000).
    limit: Option<usize>,
}

fn drive_path(p: Option<Path<String>>) -> String {
    p.map_or_else(|| "/".to_owned(), |Path(p)| format!("/{p}"))
}

/// A folder: a page of its children. A file: its content (Range honoured).
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    path: Option<Path<String>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let path = drive_path(path);
    let item = state.storage.stat(&caller.principal, &path).await?;
    if item.kind == Kind::Folder {
        let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
        let items = state.storage.list(&caller.principal, &path, q.after, limit).await?;
        let next = (items.len() == limit).then(|| items.last().map(|i| i.child_key())).flatten();
        let items: Vec<ItemJson> = items.iter().map(ItemJson::from).collect();
        return Ok(axum::Json(Listing { path, items, next }).into_response());
    }
    let range = asked_range(&headers, &item)?;
    let read = state.storage.read(&caller.principal, &path, range).await?;
    Ok(file_response(read, range.is_some()))
}

/// A file's bytes with its headers: length, type, ETag, time, attachment name, range.
pub(crate) fn file_response(read: FileRead, partial: bool) -> Response {
    let mut resp = Response::new(Body::from_stream(read.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(read.end - read.start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let ct = read.item.content_type.as_deref().unwrap_or("application/octet-stream");
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", read.item.etag)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&davit_http::http_date(read.item.modified)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&read.item.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let v = format!("bytes {}-{}/{}", read.start, read.end - 1, read.item.size);
        resp.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
    }
    resp
}

/// `attachment` with an RFC 5987 UTF-8 file name and an ASCII fallback.
pub fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The range a download of `item` answers: the request's Range, unless an If-Range names
/// another version of it (then the whole file, see `davit_http::if_range_holds`).
pub(crate) fn asked_range(headers: &HeaderMap, item: &Item) -> Result<Option<(u64, Option<u64>)>, Problem> {
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if davit_http::if_range_holds(headers, &item.etag, item.modified) => parse_range(r, item.size),
        _ => Ok(None),
    }
}

/// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`; multiple ranges are answered whole.
pub(crate) fn parse_range(value: &str, size: u64) -> Result<Option<(u64, Option<u64>)>, Problem> {
    let bad = || {
        Problem::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("cannot satisfy Range: {value}"),
        )
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad())?;
        if n == 0 || size == 0 {
            return Err(bad());
        }
        return Ok(Some((size.saturating_sub(n), None)));
    }
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end = if b.is_empty() { None } else { Some(b.parse::<u64>().map_err(|_| bad())?) };
    if end.is_some_and(|e| e < start) {
        return Ok(None);
    }
    Ok(Some((start, end)))
}

/// Uploads the raw body as the file at the path (created or replaced atomically).
pub async fn put(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let path = format!("/{path}");
    let current = state.storage.stat(&caller.principal, &path).await.ok();
    let existed = current.is_some();
    let opts = WriteOptions {
        content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        expected_len: headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
        conditions: davit_http::write_conditions(&headers, current.as_ref())?,
        ..Default::default()
    };
    let stream = body.into_data_stream().map(|r| r.map_err(std::io::Error::other)).boxed();
    let item = state.storage.write(&caller.principal, &path, stream, opts).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(ItemJson::from(&item))).into_response())
}

pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let path = format!("/{path}");
    let current = state.storage.stat(&caller.principal, &path).await.ok();
    let conditions = davit_http::write_conditions(&headers, current.as_ref())?;
    state.storage.delete_to_trash(&caller.principal, &path, conditions).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathReq {
    path: String,
}

pub async fn mkdir(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<PathReq>,
) -> Result<Response, Problem> {
    let item = state.storage.mkdir(&caller.principal, &req.path).await?;
    Ok((StatusCode::CREATED, axum::Json(ItemJson::from(&item))).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveReq {
    from: String,
    to: String,
    #[serde(default)]
    overwrite: bool,
}

pub async fn rename(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<MoveReq>,
) -> Result<Response, Problem> {
    let (item, created) = state.storage.rename(&caller.principal, &req.from, &req.to, req.overwrite).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(ItemJson::from(&item))).into_response())
}

pub async fn copy(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<MoveReq>,
) -> Result<Response, Problem> {
    let (item, created) = state.storage.copy(&caller.principal, &req.from, &req.to, req.overwrite).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(ItemJson::from(&item))).into_response())
}

pub async fn usage(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let u = state.storage.usage(caller.user.id).await?;
    Ok(axum::Json(UsageJson::from(u)).into_response())
}

/// `multipart/form-data` upload into the folder at the path: each file part becomes a file
/// named by its filename, streamed to the core as it arrives.
pub async fn upload_form(
    State(state): State<ApiState>,
    caller: Caller,
    path: Option<Path<String>>,
    mut form: axum::extract::Multipart,
) -> Result<Response, Problem> {
    let folder = drive_path(path);
    let items: Vec<ItemJson> = store_form_files(&state.storage, &caller.principal, &folder, &mut form)
        .await?
        .iter()
        .map(ItemJson::from)
        .collect();
    if items.is_empty() {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "invalid_input", "the form has no file part"));
    }
    Ok((StatusCode::CREATED, axum::Json(ItemList { items })).into_response())
}

/// Stores each file part of a form in `folder`, streamed as it arrives, named by its
/// filename (the core decides what a clash means: replaced, or renamed for drop boxes).
pub(crate) async fn store_form_files(
    storage: &davit_storage::Storage,
    p: &davit_storage::Principal,
    folder: &str,
    form: &mut axum::extract::Multipart,
) -> Result<Vec<Item>, davit_storage::Error> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        davit_storage::Error::InvalidInput(format!("malformed multipart body: {e}"))
    };
    let mut items = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        // Some browsers send the whole local path: the name is its last part.
        let Some(name) = field.file_name().and_then(|n| n.rsplit(['/', '\\']).next()).map(str::to_owned) else {
            continue;
        };
        if name.is_empty() {
            return Err(davit_storage::Error::InvalidName("a file part has no file name".into()));
        }
        let content_type = field.content_type().map(str::to_owned);
        let target = format!("{}/{}", folder.trim_end_matches('/'), name);
        let stream = futures::stream::unfold(field, |mut f| async move {
            match f.chunk().await {
                Ok(Some(b)) => Some((Ok(b), f)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), f)),
            }
        })
        .boxed();
        let opts = WriteOptions { content_type, ..Default::default() };
        items.push(storage.write(p, &target, stream, opts).await?);
    }
    Ok(items)
}
