//! The one enum of refusals. Every front end maps it to its protocol in exactly one table;
//! variants that carry an internal cause are logged there and answered with a generic reason.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What is missing is in [`Missing::what`]; the message names it as the caller asked.
    #[error("{0}")]
    NotFound(Missing),
    /// The caller is known but its role, grant or ownership does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    InvalidName(String),
    /// A request value other than a name is malformed (username rules, password length, ranges).
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotEmpty(String),
    /// The parent folder of a target does not exist (WebDAV answers 409 here).
    #[error("{0}")]
    ParentMissing(String),
    /// The target exists with the other kind (a file where a folder is needed, or the reverse).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    /// A link that existed and has ended: expired, revoked, used up, or its item deleted.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// The server's own disk (or the chunk store's) has no room left: no rule of the caller's
    /// was broken, and trying again later, once an operator made room, may work.
    #[error("{0}")]
    StorageFull(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    TypeNotAllowed(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// A multipart completion names a part that is missing or has another ETag.
    #[error("{0}")]
    InvalidPart(String),
    #[error("{0}")]
    InvalidPartOrder(String),
    /// A part other than the last is under the minimum size.
    #[error("{0}")]
    TooSmall(String),
    /// The body's digest is not the one the client announced (Content-MD5).
    #[error("{0}")]
    DigestMismatch(String),
    /// A mailed one-time code is wrong, expired or used up.
    #[error("{0}")]
    InvalidCode(String),
    /// Too many failed attempts; retry after the given number of seconds.
    #[error("too many attempts; retry in {0} s")]
    Throttled(u64),
    /// The body ended before its announced length, or the client went away.
    #[error("{0}")]
    Incomplete(String),
    /// Stored data failed authentication on read: never returned as content.
    #[error("stored data failed its integrity check")]
    Corrupt(#[source] Internal),
    /// The data folder was written by an incompatible version or with another master key.
    #[error("{0}")]
    Incompatible(String),
    /// Something the server needs is busy or out of reach for now (a chunk being deleted by
    /// another node's collector, an engine that does not answer); trying again later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A failure of the server itself. Its cause is the error's `source()`: front ends log
    /// it (with the request's id) and answer only "internal error"; the binary prints the
    /// whole chain when it cannot start.
    #[error("internal error")]
    Internal(#[source] Internal),
}

/// The kind of thing a [`Error::NotFound`] did not find, as the core knows it: a front end
/// names it in its own terms (S3's NoSuchUpload) from the error alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A file or folder at a path.
    Item,
    Folder,
    User,
    Link,
    Share,
    Upload,
    AccessKey,
    AppPassword,
    /// A version of an object (S3 `versionId`) that its key does not have.
    Version,
    /// A stored chunk of a file that exists.
    Content,
}

impl What {
    fn noun(self) -> &'static str {
        match self {
            What::Item => "item",
            What::Folder => "folder",
            What::User => "user",
            What::Link => "link",
            What::Share => "share",
            What::Upload => "upload",
            What::AccessKey => "access key",
            What::AppPassword => "app password",
            What::Version => "version",
            What::Content => "content",
        }
    }
}

#[derive(Debug)]
pub struct Missing {
    pub what: What,
    message: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An internal cause, kept for logs and never shown to clients: the error that happened,
/// with its own sources, and what the core was doing when it did.
pub struct Internal {
    context: Option<String>,
    cause: Cause,
}

impl Internal {
    fn new(context: Option<String>, cause: Cause) -> Self {
        Internal { context, cause }
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Some(c) => write!(f, "{c}: {}", self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

impl fmt::Debug for Internal {
    /// The whole chain, as a log line wants it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut next = self.cause.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Internal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.source()
    }
}

impl Error {
    /// An internal failure described in words (an invariant broken, a channel closed).
    pub fn internal(cause: impl fmt::Display) -> Self {
        Error::Internal(Internal::new(None, cause.to_string().into()))
    }

    /// An internal failure caused by `source`, kept whole (its own chain included).
    pub fn internal_from(context: impl fmt::Display, source: impl Into<Cause>) -> Self {
        let cause = source.into();
        if disk_full(&*cause) {
            // Not the caller's doing, and not secret: said as what it is (507), so that
            // clients stop re-sending (an S3 SDK retries a 500), with the cause logged.
            tracing::error!(error = %one_line(&*cause), "{context}: no space left");
            return Error::StorageFull("the server has no room left to store this; try again later".into());
        }
        Error::Internal(Internal::new(Some(context.to_string()), cause))
    }

    pub fn corrupt(cause: impl fmt::Display) -> Self {
        Error::Corrupt(Internal::new(None, cause.to_string().into()))
    }

    /// "<what> not found".
    pub fn not_found(what: What) -> Self {
        Error::NotFound(Missing { what, message: format!("{} not found", what.noun()) })
    }

    /// A `what` not found, said as `message` (naming the path or name the caller gave).
    pub fn missing(what: What, message: impl Into<String>) -> Self {
        Error::NotFound(Missing { what, message: message.into() })
    }

    /// The cause to log, when there is one beyond the public message (its `{:?}` is the
    /// whole chain).
    pub fn internal_cause(&self) -> Option<&Internal> {
        match self {
            Error::Internal(c) | Error::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

impl Error {
    /// One refusal of every variant, for the front ends' tests that pin their mapping to
    /// README's table of refusals. Adding a variant fails to compile here until it is
    /// listed, and then fails those tests until each front end maps it.
    #[doc(hidden)]
    pub fn one_of_each() -> Vec<Error> {
        let s = || "x".to_owned();
        let all = vec![
            Error::missing(What::Item, "x"),
            Error::Forbidden(s()),
            Error::Unauthenticated(s()),
            Error::InvalidName(s()),
            Error::InvalidInput(s()),
            Error::AlreadyExists(s()),
            Error::NotEmpty(s()),
            Error::ParentMissing(s()),
            Error::Conflict(s()),
            Error::PreconditionFailed(s()),
            Error::Gone(s()),
            Error::Locked(s()),
            Error::QuotaExceeded(s()),
            Error::StorageFull(s()),
            Error::TooLarge(s()),
            Error::TypeNotAllowed(s()),
            Error::RangeNotSatisfiable(s()),
            Error::InvalidPart(s()),
            Error::InvalidPartOrder(s()),
            Error::TooSmall(s()),
            Error::DigestMismatch(s()),
            Error::InvalidCode(s()),
            Error::Throttled(1),
            Error::Incomplete(s()),
            Error::corrupt("x"),
            Error::Incompatible(s()),
            Error::Unavailable(s()),
            Error::internal("x"),
        ];
        for e in &all {
            match e {
                Error::NotFound(_)
                | Error::Forbidden(_)
                | Error::Unauthenticated(_)
                | Error::InvalidName(_)
                | Error::InvalidInput(_)
                | Error::AlreadyExists(_)
                | Error::NotEmpty(_)
                | Error::ParentMissing(_)
                | Error::Conflict(_)
                | Error::PreconditionFailed(_)
                | Error::Gone(_)
                | Error::Locked(_)
                | Error::QuotaExceeded(_)
                | Error::StorageFull(_)
                | Error::TooLarge(_)
                | Error::TypeNotAllowed(_)
                | Error::RangeNotSatisfiable(_)
                | Error::InvalidPart(_)
                | Error::InvalidPartOrder(_)
                | Error::TooSmall(_)
                | Error::DigestMismatch(_)
                | Error::InvalidCode(_)
                | Error::Throttled(_)
                | Error::Incomplete(_)
                | Error::Corrupt(_)
                | Error::Incompatible(_)
                | Error::Unavailable(_)
                | Error::Internal(_) => {}
            }
        }
        all
    }

    /// The variant's name (`NotFound`), the key of the mapping tables.
    fn variant_name(&self) -> String {
        format!("{self:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_owned()
    }

    /// [`Self::one_of_each`], each with its row of a front end's mapping table, found by the
    /// variant's name (`name_of`): panics when the table misses a variant or has a row too many.
    #[doc(hidden)]
    pub fn each_with_row<R>(rows: &[R], name_of: impl Fn(&R) -> &str) -> Vec<(Error, &R)> {
        let all = Self::one_of_each();
        assert_eq!(all.len(), rows.len(), "one row per variant");
        all.into_iter()
            .map(|e| {
                let name = e.variant_name();
                let row =
                    rows.iter().find(|r| name_of(r) == name).unwrap_or_else(|| panic!("{name} is not in the table"));
                (e, row)
            })
            .collect()
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal_from("i/o", e)
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for $crate::error::Error {
            fn from(e: $t) -> Self {
                $crate::error::Error::internal_from(stringify!($t), e)
            }
        }
    )*};
}

// Also used where the metadata engine is, `meta::kv`, which converts its errors itself.
pub(crate) use internal_from;

internal_from!(tokio::task::JoinError);

/// Whether an error, or one of its causes, is a full disk (ENOSPC) or a filled disk quota.
fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    // Bounded: a cycle in a chain would otherwise never end.
    for _ in 0..16 {
        let Some(e) = next else { return false };
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes in one line ("dispatch failure: io error: ... refused"), for the
/// log and for messages to operators (engines' errors nest their causes several deep).
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    // Bounded: a cycle in a chain would otherwise never end.
    for _ in 0..8 {
        let Some(cause) = next else { break };
        let text = cause.to_string();
        // Some errors repeat their cause's text in their own.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_chain_but_shows_none() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "data folder not writable");
        let e = Error::from(io);
        assert_eq!(e.to_string(), "internal error", "the public message");
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "i/o: data folder not writable");
        assert_eq!(format!("{:?}", e.internal_cause().unwrap()), "i/o: data folder not writable");
        assert!(Error::not_found(What::User).internal_cause().is_none());
    }
}
