//! DELETE, MOVE and COPY (of a folder with Depth infinity, or of a file), as one core
//! operation each. dav-server would walk a folder member by member (a request per member to
//! the core, each its own transaction), and before a MOVE or COPY that overwrites it deletes
//! the destination member by member: refused only at the destination's root (a grantee may
//! empty a granted folder but not replace it), that emptied an owner's folder and then
//! reported the MOVE refused. The core deletes a folder by detaching it in one transaction,
//! and moves or copies onto a destination in one, refusing before anything changes.
//! RFC 4918 §9.6, §9.8 and §9.9: DELETE answers 204; COPY and MOVE 201 when the destination
//! was new, 204 when it was replaced, 412 when it exists and `Overwrite: F`.

use davit_storage::{Error, Principal};
use http::{HeaderMap, StatusCode};

use crate::headers::{self, Depth};
use crate::{Body, WebDav, plain, refusal};

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
        // Only a date needs what is there now (see `write_conditions`).
        let current = match headers.contains_key(http::header::IF_UNMODIFIED_SINCE) {
            true => self.storage.stat(p, path).await.ok(),
            false => None,
        };
        let conditions = match davit_http::write_conditions(headers, current.as_ref()) {
            Ok(c) => c,
            Err(e) => return refusal(&e),
        };
        match self.storage.delete_to_trash(p, path, conditions).await {
            Ok(()) => no_content(StatusCode::NO_CONTENT),
            Err(e) => refusal(&e),
        }
    }

    /// COPY or MOVE (`is_move`): of a file, or of a folder with Depth infinity (or none,
    /// which means it), or a COPY of a folder with Depth 0 (an empty folder with its
    /// properties, which dav-server made by merging into an existing destination). The
    /// request's conditions are the source's, checked just before.
    pub(crate) async fn relocate(
        &self,
        p: &Principal,
        path: &str,
        headers: &HeaderMap,
        depth: Option<Depth>,
        prefix: &str,
        is_move: bool,
    ) -> http::Response<Body> {
        let source = self.storage.stat(p, path).await;
        let folder = source.as_ref().is_ok_and(|i| i.is_folder());
        match depth {
            // §9.9.2: a folder moves whole.
            Some(Depth::Zero | Depth::One) if folder && is_move => {
                return plain(StatusCode::BAD_REQUEST, "Depth: a folder is moved with Depth: infinity\n".into());
            }
            // §9.8.3: a folder is copied with Depth 0 or infinity.
            Some(Depth::One) if folder => {
                return plain(StatusCode::BAD_REQUEST, "Depth: a folder is copied with Depth: 0 or infinity\n".into());
            }
            _ => {}
        }
        // A source the caller cannot see is the core's to refuse, as it refuses the move.
        if let Ok(source) = &source {
            let unchanged = davit_http::write_conditions(headers, Some(source)).and_then(|c| c.check(Some(source)));
            if let Err(e) = unchanged {
                return refusal(&e);
            }
        }
        let Some(to) = destination(headers, prefix) else {
            return plain(StatusCode::BAD_REQUEST, "Destination: missing or not below this drive\n".into());
        };
        let overwrite = overwrite(headers);
        let done = if is_move {
            self.storage.rename(p, path, &to, overwrite).await
        } else if folder && depth == Some(Depth::Zero) {
            self.storage.copy_folder_alone(p, path, &to, overwrite).await
        } else {
            self.storage.copy(p, path, &to, overwrite).await
        };
        match done {
            Ok((_, true)) => no_content(StatusCode::CREATED),
            Ok((_, false)) => no_content(StatusCode::NO_CONTENT),
            // §9.8.5: the destination exists and Overwrite is F.
            Err(Error::AlreadyExists(m)) => plain(StatusCode::PRECONDITION_FAILED, format!("{m}\n")),
            Err(e) => refusal(&e),
        }
    }
}

/// The Destination's drive path (checked and made a path by `headers::check_request`).
fn destination(headers: &HeaderMap, prefix: &str) -> Option<String> {
    headers.get("destination").and_then(|v| v.to_str().ok()).and_then(|d| headers::drive_path_below(d, prefix))
}

fn overwrite(headers: &HeaderMap) -> bool {
    headers.get("overwrite").is_none_or(|v| v.as_bytes() != b"F")
}
