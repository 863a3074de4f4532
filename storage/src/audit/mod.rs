//! The audit trail: one event per security-relevant action (sign-ins, second factor,
//! password and address changes, keys and app passwords, shares and links, transfers, admin
//! actions), with who, from which address, what and when.
//!
//! Events are made by the core functions that do the action, so every protocol is covered
//! alike, and recorded twice: as a JSON line to the operator's audit log (a file or stderr,
//! see [`AuditLog`]) and as a row of the metadata store (`store`), where with several nodes
//! they page together and whence they expire after the retention period.
//!
//! An event never holds a secret: passwords, tokens, codes and key secrets are never given
//! to it; ids, names and paths are what it says. The client's address comes from the task
//! the request runs in ([`scope`]), set once by the listener, so no core function needs it
//! as a parameter.

mod sink;
mod store;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use sink::AuditLog;
pub(crate) use sink::Sink;
pub(crate) use store::start_expiry;
pub use store::{AuditPage, Cursor};

use crate::Storage;
use crate::meta::model::{Principal, User};

/// How long events are kept in the store by default: 180 days, enough to answer "who shared
/// this with whom" about the last half year, and a few hundred bytes per event.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(180 * 24 * 3600);

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// Runs `f` with `addr` as the client's address of every event it records.
pub async fn scope<F: std::future::Future>(addr: IpAddr, f: F) -> F::Output {
    CLIENT.scope(addr, f).await
}

fn client() -> Option<IpAddr> {
    CLIENT.try_with(|a| *a).ok()
}

/// One recorded action.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When, in nanoseconds since the Unix epoch; unique per node (see [`now_unique`]).
    pub at: u64,
    /// What happened: `login`, `login_failed`, `share_created`, … (README lists them).
    pub action: String,
    /// Who did it: the account acting (or the one a failed sign-in named, when it exists).
    pub user: Option<u64>,
    pub username: Option<String>,
    /// From which address.
    pub address: Option<IpAddr>,
    /// The other account concerned: a share's grantee, the account an admin changed.
    pub target: Option<u64>,
    /// What, in words and ids: never a secret.
    pub detail: Vec<(String, String)>,
}
crate::meta::db::stored!(Event = "audit event");

/// A clock that never gives the same nanosecond twice on a node: an event's time is its
/// key, beside the user's index.
fn now_unique() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::meta::txn::wall_nanos();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

impl Event {
    pub fn new(action: &str) -> Self {
        Event {
            at: now_unique(),
            action: action.to_owned(),
            user: None,
            username: None,
            address: client(),
            target: None,
            detail: Vec::new(),
        }
    }

    /// Done by a signed-in principal.
    pub fn by(mut self, p: &Principal) -> Self {
        self.user = Some(p.user_id);
        self.username = Some(p.username.clone());
        self
    }

    /// Done by (or, for a failed sign-in, in the name of) an account.
    pub fn by_user(mut self, u: &User) -> Self {
        self.user = Some(u.id);
        self.username = Some(u.username.clone());
        self
    }

    pub fn by_id(mut self, id: u64) -> Self {
        self.user = Some(id);
        self
    }

    pub fn target(mut self, id: u64) -> Self {
        self.target = Some(id);
        self
    }

    pub fn with(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.detail.push((key.to_owned(), value.to_string()));
        self
    }

    /// `with`, when there is a value.
    pub fn with_some(self, key: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// From an address the caller knows (sign-ins get it as a parameter).
    pub fn from(mut self, addr: Option<crate::ClientAddr>) -> Self {
        if let Some(a) = addr {
            self.address = Some(a.0);
        }
        self
    }

    /// The JSON line of the audit log (and of the API).
    pub fn json(&self) -> serde_json::Value {
        let time = std::time::UNIX_EPOCH + Duration::from_nanos(self.at);
        let detail: serde_json::Map<String, serde_json::Value> =
            self.detail.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        serde_json::json!({
            "time": humantime::format_rfc3339_micros(time).to_string(),
            "action": self.action,
            "user_id": self.user,
            "user": self.username,
            "address": self.address.map(|a| a.to_canonical().to_string()),
            "target_user_id": self.target,
            "detail": detail,
        })
    }
}

impl Storage {
    /// Records an event: the log line at once, the row in the store before returning. A
    /// failure to store it is logged, never the action's failure: the action has happened.
    /// The row is written by a task of its own, so a client that goes away right after the
    /// action (dropping the request's future) cannot keep it out of the store.
    pub(crate) async fn audit(&self, event: Event) {
        self.core.audit.line(&event);
        let db = self.core.db.clone();
        let stored = tokio::spawn(async move { db.write((), move |ctx| store::insert(ctx.txn, &event)).await });
        match stored.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "an audit event could not be stored"),
            Err(e) => tracing::warn!(error = %e, "an audit event could not be stored"),
        }
    }
}

impl Storage {
    /// Records an action of the operator at the machine: the offline `davit admin` on a
    /// stopped deployment, where nobody signs in. The event says so and names the operating
    /// system's account that ran it; its log line is written before this returns, since the
    /// tool exits right after.
    pub async fn audit_offline(&self, event: Event, os_user: &str) {
        self.audit(event.with("via", "offline davit admin").with("os_user", os_user)).await;
        // The line goes through a thread of its own: blocking until it is written.
        let core = self.core.clone();
        let _ = tokio::task::spawn_blocking(move || core.audit.flush()).await;
    }
}

impl Storage {
    /// A sign-in that failed. Names the account only when it exists: what was typed as a
    /// login name is sometimes a password, and must not reach the log.
    pub(crate) async fn audit_failed_login(&self, login: &str, addr: Option<crate::ClientAddr>, method: &str) {
        let event = Event::new("login_failed").from(addr).with("method", method);
        let event = match self.find_user(login).await {
            Ok(u) => event.by_user(&u),
            Err(_) => event,
        };
        self.audit(event).await;
    }
}
