//! DELETE, and COPY of a folder, as one core operation each. dav-server would walk a
//! folder member by member (a request per member to the core, each its own transaction);
//! the core deletes a folder by detaching it in one transaction and copies a whole subtree
//! by reference in one, so both are answered here, before dav-server. RFC 4918 §9.6 and
//! §9.8: DELETE answers 204; COPY 201 when the destination was new, 204 when it was
//! replaced, 412 when it exists and `Overwrite: F`.

use davit_storage::{Conditions, Error, Principal};
use http::{HeaderMap, StatusCode};

use crate::headers::{self, Depth};
use crate::{Body, WebDav, plain, refusal};

/// An entity-tag list header as the core takes it: tags without quotes, or `*`.
fn etag_list(headers: &HeaderMap, name: http::HeaderName) -> Option<Vec<String>> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    (!values.is_empty()).then_some(values)
}

fn no_content(status: StatusCode) -> http::Response<Body> {
    let mut r = http::Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

impl WebDav {
    /// DELETE of anything: a file, or a folder with all it holds, atomically.
    pub(crate) async fn delete(
        &self,
        p: &Principal,
        path: &str,
        headers: &HeaderMap,
        depth: Option<Depth>,
    ) -> http::Response<Body> {
        if matches!(depth, Some(Depth::Zero | Depth::One))
            && self.storage.stat(p, path).await.is_ok_and(|i| i.is_folder())
        {
            // §9.6.1: a collection is deleted as a whole, Depth infinity.
            return plain(StatusCode::BAD_REQUEST, "Depth: a folder is deleted with Depth: infinity\n".into());
        }
        let conditions = Conditions {
            if_match: etag_list(headers, http::header::IF_MATCH),
            if_none_match: etag_list(headers, http::header::IF_NONE_MATCH),
        };
        match self.storage.delete_to_trash(p, path, conditions).await {
            Ok(()) => no_content(StatusCode::NO_CONTENT),
            Err(e) => refusal(&e),
        }
    }

    /// COPY of a folder with Depth infinity (or none, which means it); `None` when the
    /// source is not a folder or Depth is 0 or 1, which dav-server answers (one core call).
    pub(crate) async fn copy_folder(
        &self,
        p: &Principal,
        path: &str,
        headers: &HeaderMap,
        depth: Option<Depth>,
        prefix: &str,
    ) -> Option<http::Response<Body>> {
        if !matches!(depth, None | Some(Depth::Infinity)) {
            return None;
        }
        if !self.storage.stat(p, path).await.is_ok_and(|i| i.is_folder()) {
            return None;
        }
        // Checked and made a path by `headers::check_request`.
        let to =
            headers.get("destination").and_then(|v| v.to_str().ok()).and_then(|d| headers::drive_path_below(d, prefix));
        let Some(to) = to else {
            return Some(plain(StatusCode::BAD_REQUEST, "Destination: missing or not below this drive\n".into()));
        };
        let overwrite = headers.get("overwrite").is_none_or(|v| v.as_bytes() != b"F");
        Some(match self.storage.copy(p, path, &to, overwrite).await {
            Ok((_, true)) => no_content(StatusCode::CREATED),
            Ok((_, false)) => no_content(StatusCode::NO_CONTENT),
            // §9.8.5: the destination exists and Overwrite is F.
            Err(Error::AlreadyExists(m)) => plain(StatusCode::PRECONDITION_FAILED, format!("{m}\n")),
            Err(e) => refusal(&e),
        })
    }
}
