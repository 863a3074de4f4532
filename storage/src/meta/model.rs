//! The stored records and the caller's identity. Each is encoded with `db::encode`, which
//! prefixes the record's own version (`db::Stored`).

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;

crate::meta::db::stored!(Item = "item", User = "user", Share = "share", Link = "link", AccessKey = "access key");

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    File,
}

/// A file or folder. `id` is stable across rename, move and overwrite: grants, links and
/// locks attach to it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Item {
    pub id: u64,
    pub owner: u64,
    /// 0 for a drive's root.
    pub parent: u64,
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Unix time in nanoseconds.
    pub created: i64,
    pub modified: i64,
    /// Without quotes: hex MD5 of an S3 single-part write (or of any write of 64 KiB or less),
    /// `<md5>-N` after a multipart one, `<digest of the chunk ids>-<chunks>` for a larger file
    /// written over WebDAV or REST (no MD5 computed).
    pub etag: String,
    pub content_type: Option<String>,
    /// Standard headers kept with the content (Content-Disposition, -Encoding, -Language,
    /// Cache-Control, Expires), lower-case names.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` without the prefix, lower-case names.
    pub user_meta: Vec<(String, String)>,
    /// WebDAV dead properties: `{namespace}name` -> XML value.
    pub props: Vec<(String, Vec<u8>)>,
    pub chunks: Vec<ChunkRef>,
    /// The sizes of the parts of an S3 multipart object, in order (empty otherwise), so a
    /// GET by part number reads that part.
    pub parts: Vec<u64>,
}

impl Item {
    /// A new, empty folder.
    pub fn folder(id: u64, owner: u64, parent: u64, name: &str, now: i64) -> Item {
        Item {
            id,
            owner,
            parent,
            name: name.to_owned(),
            kind: Kind::Folder,
            size: 0,
            created: now,
            modified: now,
            etag: format!("d{now:x}"),
            content_type: None,
            headers: Vec::new(),
            user_meta: Vec::new(),
            props: Vec::new(),
            chunks: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// A new, empty file; callers add its content and metadata.
    pub fn file(id: u64, owner: u64, parent: u64, name: &str, now: i64) -> Item {
        Item { kind: Kind::File, etag: String::new(), ..Item::folder(id, owner, parent, name, now) }
    }

    pub fn is_folder(&self) -> bool {
        self.kind == Kind::Folder
    }

    /// The key of this item in the CHILDREN table: folders sort as `name/`.
    pub fn child_key(&self) -> String {
        child_key(&self.name, self.kind)
    }
}

pub fn child_key(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Folder => format!("{name}/"),
        Kind::File => name.to_owned(),
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    User,
    Uploader,
    Downloader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Uploader => "uploader",
            Role::Downloader => "downloader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "user" => Role::User,
            "uploader" => Role::Uploader,
            "downloader" => Role::Downloader,
            _ => return None,
        })
    }

    /// May download file contents from its own drive.
    pub fn reads_contents(self) -> bool {
        matches!(self, Role::Admin | Role::User)
    }

    /// May change its own drive (upload, overwrite, move, delete, make folders).
    pub fn writes(self) -> bool {
        !matches!(self, Role::Downloader)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub email: Option<String>,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    pub role: Role,
    pub status: Status,
    /// Logical bytes; 0 means unlimited.
    pub quota: u64,
    pub created: i64,
    /// The item id of the drive's root folder.
    pub root: u64,
    /// The mailed one-time code is required as a second factor at login.
    pub second_factor: bool,
    /// Bumped on password change and similar events: tokens issued under an older epoch fail.
    pub auth_epoch: u64,
}

/// Who is asking. Every decision in the core is made from this. Only the core's
/// authentication paths (password, app password, token, S3 key, link) make one, each after
/// [`crate::auth::account_usable`]: a front end cannot name itself someone.
#[derive(Clone, Debug)]
pub struct Principal {
    pub(crate) user_id: u64,
    pub(crate) username: String,
    pub(crate) role: Role,
    pub(crate) root: u64,
    /// Lock tokens the request presented (WebDAV `If`): proof of holding a lock.
    pub(crate) lock_tokens: Vec<String>,
    pub(crate) scope: Scope,
}

/// What a principal's paths mean.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// A signed-in user: `/` is their drive, `/shared/…` what others share with them.
    #[default]
    Drive,
    /// Someone holding a link: `/` is the linked item, read-only, or create-only for an
    /// upload link. Nothing else of the owner's drive is reachable.
    Link { link: u64, item: u64, owner: u64, upload: bool },
    /// An S3 request naming a bucket the caller does not own (`access::s3_view`): paths in
    /// that bucket reach what its owner granted or made public; other paths are the
    /// caller's own drive (nothing, for an anonymous caller).
    S3Bucket(Box<crate::access::s3_view::BucketRoute>),
}

impl Principal {
    /// For the core's authentication paths only, once the account was found usable.
    pub(crate) fn of(user: &User) -> Self {
        Principal {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role,
            root: user.root,
            lock_tokens: Vec::new(),
            scope: Scope::Drive,
        }
    }

    /// 0 for someone holding a link.
    pub fn user_id(&self) -> u64 {
        self.user_id
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn lock_tokens(&self) -> &[String] {
        &self.lock_tokens
    }

    /// The lock tokens this request presents (WebDAV `If`). They prove nothing by
    /// themselves: the core checks each against the locks it holds.
    pub fn set_lock_tokens(&mut self, tokens: Vec<String>) {
        self.lock_tokens = tokens;
    }
}

/// Access to an item (and everything below it) given by its owner to another user.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Share {
    pub id: u64,
    pub item: u64,
    pub owner: u64,
    pub grantee: u64,
    pub write: bool,
    pub created: i64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Active,
    Revoked,
    /// The item, or its owner, was deleted.
    Deleted,
}

/// An expiring link to an item: `/s/<token>`. Only the token's SHA-256 is stored.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Link {
    pub id: u64,
    pub owner: u64,
    pub item: u64,
    pub token_hash: [u8; 32],
    /// A drop folder: files can be added, nothing read.
    pub upload: bool,
    /// Unix nanoseconds.
    pub expires: i64,
    /// PHC string of the password's argon2id hash.
    pub password_hash: Option<String>,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
    pub created: i64,
    pub state: LinkState,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct AccessKey {
    pub id: String,
    pub user: u64,
    /// The secret, sealed under a key derived from the master key and this key's id.
    pub sealed_secret: Vec<u8>,
    pub created: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    /// 0 means unlimited.
    pub quota: u64,
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The row of a chunk: how many references point at it and where its bytes are.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ChunkRow {
    pub refs: u64,
    pub len: u32,
    /// Sealed bytes live in CHUNK_DATA instead of the backend.
    pub inline: bool,
}
crate::meta::db::stored!(ChunkRow = "chunk row");

/// A reference from a file to a chunk.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}
