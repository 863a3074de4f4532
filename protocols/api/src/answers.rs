//! The JSON bodies the API answers, as types: handlers build them, and the OpenAPI document's
//! schemas are derived from them (`registry`), so what is served and what is documented
//! cannot drift apart. Field names and values are the wire format; change them only with
//! the clients in mind.

use davit_storage::{AccessKey, AppPassword, CheckReport, LinkInfo, ShareInfo, Stats, Tokens, Usage, User};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::files::{ItemJson, rfc3339};

/// `file` or `folder`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    File,
    Folder,
}

impl From<davit_storage::Kind> for ItemKind {
    fn from(k: davit_storage::Kind) -> Self {
        if k == davit_storage::Kind::Folder { ItemKind::Folder } else { ItemKind::File }
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// A request taken; what follows arrives by mail.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
    pub detail: String,
}

/// A change made, in words.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Done {
    pub status: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UsageJson {
    /// Bytes used (the logical size of the files).
    pub bytes: u64,
    pub files: u64,
    /// Bytes allowed; 0: unlimited.
    pub quota: u64,
}

impl From<Usage> for UsageJson {
    fn from(u: Usage) -> Self {
        UsageJson { bytes: u.bytes, files: u.files, quota: u.quota }
    }
}

/// An account.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UserJson {
    pub id: u64,
    pub username: String,
    pub email: Option<String>,
    #[schemars(extend("enum" = ["admin", "user", "uploader", "downloader"]))]
    pub role: String,
    #[schemars(extend("enum" = ["pending", "active", "disabled"]))]
    pub status: String,
    /// Bytes allowed; 0: unlimited.
    pub quota: u64,
    /// Sign-in asks for a mailed code too.
    pub second_factor: bool,
    /// RFC 3339.
    pub created: String,
    /// Present where the answer says so (`/me`, the admin's views).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage: Option<UsageJson>,
}

impl UserJson {
    pub fn new(u: &User, usage: Option<Usage>) -> Self {
        UserJson {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role.as_str().to_owned(),
            status: u.status.as_str().to_owned(),
            quota: u.quota,
            second_factor: u.second_factor,
            created: rfc3339(u.created),
            usage: usage.map(UsageJson::from),
        }
    }
}

/// An account just confirmed.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Verified {
    /// Always `active`.
    pub status: String,
    pub user: UserJson,
}

/// A session's tokens (also set as HttpOnly cookies).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TokensJson {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lasts.
    pub expires_in: u64,
}

impl From<&Tokens> for TokensJson {
    fn from(t: &Tokens) -> Self {
        TokensJson {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
        }
    }
}

/// The password was right and a mailed code is needed too: send it to `/auth/login/otp`.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct OtpRequired {
    /// Always true.
    pub otp_required: bool,
    pub detail: String,
}

/// What a sign-in answers: tokens, or that a mailed code is needed.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Signed(TokensJson),
    OtpRequired(OtpRequired),
}

/// An S3 access key (its secret is never shown again).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct KeyJson {
    pub access_key_id: String,
    pub created: String,
}

impl From<&AccessKey> for KeyJson {
    fn from(k: &AccessKey) -> Self {
        KeyJson { access_key_id: k.id.clone(), created: rfc3339(k.created) }
    }
}

/// A new S3 access key, its secret shown this once.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct KeyCreated {
    pub access_key_id: String,
    pub created: String,
    pub secret_access_key: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    pub items: Vec<KeyJson>,
}

/// An app password (its secret is never shown again).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct AppPasswordJson {
    pub id: u64,
    pub name: String,
    pub created: String,
}

impl From<&AppPassword> for AppPasswordJson {
    fn from(a: &AppPassword) -> Self {
        AppPasswordJson { id: a.id, name: a.name.clone(), created: rfc3339(a.created) }
    }
}

/// A new app password, shown this once.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct AppPasswordCreated {
    pub id: u64,
    pub name: String,
    pub created: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct AppPasswordList {
    pub items: Vec<AppPasswordJson>,
}

/// A page of users and where the next begins (`after`); null on the last page.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UserPage {
    pub items: Vec<UserJson>,
    pub next_after: Option<u64>,
}

/// A page of a folder; `next` is the `after` of the next page, null on the last.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    pub path: String,
    pub items: Vec<ItemJson>,
    pub next: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ItemList {
    pub items: Vec<ItemJson>,
}

/// A grant of one item to one user.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ShareJson {
    pub id: u64,
    /// The item's path as the caller sees it.
    pub path: String,
    pub kind: ItemKind,
    pub owner: String,
    /// The grantee.
    pub user: String,
    #[schemars(extend("enum" = ["read", "read-write"]))]
    pub permission: String,
    /// The grantee may make download links.
    pub reshare: bool,
    /// When the grant ends by itself (RFC 3339); null: never.
    pub expires_at: Option<String>,
    pub expired: bool,
    pub created: String,
    /// For "who has access": the folder whose grant reaches the asked item.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inherited_from: Option<String>,
}

impl From<&ShareInfo> for ShareJson {
    fn from(s: &ShareInfo) -> Self {
        ShareJson {
            id: s.share.id,
            path: s.path.clone(),
            kind: s.kind.into(),
            owner: s.owner_name.clone(),
            user: s.grantee_name.clone(),
            permission: if s.share.write { "read-write" } else { "read" }.into(),
            reshare: s.reshare,
            expires_at: s.expires.map(rfc3339),
            expired: s.expires.is_some_and(|t| t <= davit_storage::model::now_nanos()),
            created: rfc3339(s.share.created),
            inherited_from: s.inherited_from.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ShareLists {
    pub mine: Vec<ShareJson>,
    pub shared_with_me: Vec<ShareJson>,
}

/// Who has access to an item.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PathAccess {
    pub path: String,
    pub access: Vec<ShareJson>,
}

/// An item given away: where it now is in the receiver's drive.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Transferred {
    pub user: String,
    pub path: String,
    pub item: ItemJson,
}

/// A link and its state.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct LinkJson {
    pub id: u64,
    /// The item's path as the caller sees it; null once it is gone.
    pub path: Option<String>,
    pub kind: Option<ItemKind>,
    #[schemars(extend("enum" = ["download", "upload"]))]
    pub permission: String,
    pub expires_at: String,
    pub created: String,
    /// Whether a password guards it.
    pub password: bool,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
    #[schemars(extend("enum" = ["active", "revoked", "deleted", "expired", "used up", "grant ended"]))]
    pub state: String,
    /// The grantee who made it through a grant; null: the owner.
    pub made_by: Option<String>,
}

impl From<&LinkInfo> for LinkJson {
    fn from(l: &LinkInfo) -> Self {
        LinkJson {
            id: l.link.id,
            path: l.path.clone(),
            kind: l.kind.map(ItemKind::from),
            permission: if l.link.upload { "upload" } else { "download" }.into(),
            expires_at: rfc3339(l.link.expires),
            created: rfc3339(l.link.created),
            password: l.link.password_hash.is_some(),
            max_downloads: l.link.max_downloads,
            downloads: l.link.downloads,
            state: l.state().into(),
            made_by: l.made_by.clone(),
        }
    }
}

/// A new link: its URL and token are shown this once.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct LinkCreated {
    #[serde(flatten)]
    pub link: LinkJson,
    pub url: String,
    pub token: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct LinkList {
    pub links: Vec<LinkJson>,
}

/// The server's figures.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct StatsJson {
    pub users: u64,
    pub files: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Logical over stored bytes, two decimals.
    pub dedup_ratio: f64,
}

impl From<&Stats> for StatsJson {
    fn from(s: &Stats) -> Self {
        let ratio = if s.stored_bytes == 0 { 1.0 } else { s.logical_bytes as f64 / s.stored_bytes as f64 };
        StatsJson {
            users: s.users,
            files: s.files,
            logical_bytes: s.logical_bytes,
            stored_bytes: s.stored_bytes,
            dedup_ratio: (ratio * 100.0).round() / 100.0,
        }
    }
}

/// A consistency check's report.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct CheckJson {
    pub consistent: bool,
    pub items: u64,
    pub chunks: u64,
    pub chunk_files: u64,
    pub orphans: u64,
    pub waiting: u64,
    /// One line per inconsistency.
    pub problems: Vec<String>,
}

impl From<&CheckReport> for CheckJson {
    fn from(r: &CheckReport) -> Self {
        CheckJson {
            consistent: r.problems.is_empty(),
            items: r.items,
            chunks: r.chunks,
            chunk_files: r.chunk_files,
            orphans: r.orphans,
            waiting: r.waiting,
            problems: r.problems.clone(),
        }
    }
}

/// A finished backup.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct BackupJson {
    pub format_version: u32,
    pub snapshot_unix: u64,
    pub tables: u64,
    pub rows: u64,
    pub chunks_referenced: u64,
    pub chunks_copied: u64,
    pub chunks_present: u64,
    pub chunk_bytes: u64,
    pub chunks_removed: u64,
}

impl From<&davit_storage::ops::BackupReport> for BackupJson {
    fn from(r: &davit_storage::ops::BackupReport) -> Self {
        BackupJson {
            format_version: r.format_version,
            snapshot_unix: r.snapshot_unix,
            tables: r.tables as u64,
            rows: r.rows,
            chunks_referenced: r.chunks_referenced,
            chunks_copied: r.chunks_copied,
            chunks_present: r.chunks_present,
            chunk_bytes: r.chunk_bytes,
            chunks_removed: r.chunks_removed,
        }
    }
}

/// One audit event: never a secret.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEventJson {
    /// RFC 3339, microseconds.
    pub time: String,
    /// `login`, `login_failed`, `share_created`, …
    pub action: String,
    pub user_id: Option<u64>,
    pub user: Option<String>,
    pub address: Option<String>,
    pub target_user_id: Option<u64>,
    pub detail: std::collections::BTreeMap<String, String>,
}

/// A page of audit events, newest first; `next` is the cursor of the next page.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct AuditPageJson {
    pub items: Vec<AuditEventJson>,
    pub next: Option<String>,
}

/// An RFC 9457 problem: every refusal.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Problem")]
pub struct ProblemJson {
    /// `https://davit.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    /// Stable and machine-readable (README's table of refusals).
    pub code: String,
    /// In words, for people.
    pub detail: String,
}
