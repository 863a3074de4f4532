//! Sessions: a refresh token (stored hashed) and short-lived access tokens (JWT, HS256 with
//! a key kept in the metadata store) that name their session, so logging out or deleting
//! the session ends both at once, and a deleted or disabled account fails at once.
//!
//! Sessions and refresh tokens are rows (`SESSIONS`, `REFRESH`) and the signing key is in
//! META, so a token issued by one node verifies on every node of a deployment.

use crate::meta::kv::Readable;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::crypto::{Keys, random_bytes, sha256};
use crate::error::{Error, Result};
use crate::meta::db::{self, Db, META, REFRESH, SESSIONS};
use crate::meta::model::{User, now_nanos};

pub const ACCESS_TTL_SECS: u64 = 15 * 60;
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// Clock leeway for `nbf`/`iat`/`exp`.
const LEEWAY_SECS: u64 = 30;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Session {
    pub id: u64,
    pub user: u64,
    pub created: i64,
    /// When the refresh token expires (Unix nanoseconds).
    pub expires: i64,
    pub refresh_hash: [u8; 32],
}
crate::meta::db::stored!(Session = "session");

/// What login and refresh answer, as OAuth 2 clients expect.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub session_id: u64,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: u64,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// META key of the HS256 key of access tokens, sealed under the secrets key with this as its
/// label, as S3 secrets are: a copy of the store alone (a database backup) cannot forge
/// tokens. Link-password cookies and the mail tags of logs are keyed by it too (HMAC with
/// their own labels), so they are shared with it. Written once, never rewritten: the label's
/// key seals one key only (nodes racing to create it each seal a candidate, but only one
/// transaction commits; a rotation would take a new label).
const JWT_KEY: &str = "jwt_key";

/// The access-token key: read from META, or made there once. Two nodes starting at once on
/// a new store agree: each inserts only if absent, in a transaction, and uses what is there
/// after (the engine serializes the two, and the second finds the first's). A folder of an
/// earlier davit kept it in `jwt.key`: that key goes into META (so access tokens already
/// issued stay valid), and the file is removed once the key is committed.
pub(crate) fn load_jwt_key(db: &Db, keys: &Keys, legacy_file: &std::path::Path) -> Result<Vec<u8>> {
    let from_file = match std::fs::read_to_string(legacy_file) {
        Ok(text) => Some(
            hex::decode(text.trim())
                .map_err(|_| Error::Incompatible(format!("{} is not a hex secret", legacy_file.display())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let (key, _) = db.write_sync(|ctx| {
        let mut meta = ctx.txn.open_table(META)?;
        let stored = meta.get(JWT_KEY)?.map(|v| v.value().to_vec());
        if let Some(sealed) = stored {
            return keys.open_secret(JWT_KEY, &sealed);
        }
        let key = from_file.clone().unwrap_or_else(|| random_bytes::<32>().to_vec());
        meta.insert(JWT_KEY, keys.seal_secret(JWT_KEY, &key).as_slice())?;
        Ok(key)
    })?;
    if let Some(old) = from_file {
        if old != key {
            // Another node made the store's key first: this folder's access tokens end
            // (its sessions do not: a refresh gives new ones).
            tracing::info!(path = %legacy_file.display(), "the store has its own access-token key; this folder's is dropped");
        }
        std::fs::remove_file(legacy_file)?;
        tracing::info!(path = %legacy_file.display(), "moved the access-token key into the metadata store");
    }
    Ok(key)
}

fn validation() -> Validation {
    // One algorithm only: a token with `alg: none` or any other algorithm is refused.
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECS;
    v.set_required_spec_claims(&["exp", "nbf", "iat", "sub"]);
    v
}

fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn refresh_token() -> (String, [u8; 32]) {
    use base64::Engine;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = sha256(token.as_bytes());
    (token, hash)
}

impl Storage {
    fn access_token(&self, user: u64, sid: u64) -> Result<String> {
        let now = unix_now();
        let claims = Claims { sub: user.to_string(), sid, iat: now, nbf: now, exp: now + ACCESS_TTL_SECS };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&self.core.jwt_key))
            .map_err(Error::internal)
    }

    /// Starts a session for a user one of the core's sign-in flows let in (not public: a
    /// session is as good as a [`crate::Principal`]).
    pub(crate) async fn start_session(&self, user: &User) -> Result<Tokens> {
        let (refresh, hash) = refresh_token();
        let now = now_nanos();
        let user_id = user.id;
        let sid = self
            .core
            .db
            .write((), move |ctx| {
                let sid = ctx.txn.next_id("next_session_id")?;
                let s = Session {
                    id: sid,
                    user: user_id,
                    created: now,
                    expires: now + REFRESH_TTL_SECS * 1_000_000_000,
                    refresh_hash: hash,
                };
                ctx.txn.open_table(SESSIONS)?.insert(sid, db::encode(&s).as_slice())?;
                ctx.txn.open_table(REFRESH)?.insert(&hash, sid)?;
                Ok(sid)
            })
            .await?;
        Ok(Tokens {
            access_token: self.access_token(user_id, sid)?,
            refresh_token: refresh,
            expires_in: ACCESS_TTL_SECS,
            session_id: sid,
        })
    }

    /// Trades a refresh token for new tokens; the old refresh token stops working.
    pub async fn refresh_session(&self, refresh: &str) -> Result<(User, Tokens)> {
        let old = sha256(refresh.as_bytes());
        let (new_refresh, new_hash) = refresh_token();
        let now = now_nanos();
        let (sid, user_id) = self
            .core
            .db
            .write((), move |ctx| {
                let invalid = || Error::Unauthenticated("the refresh token is not valid".into());
                let mut refresh = ctx.txn.open_table(REFRESH)?;
                let sid = refresh.get(&old)?.map(|v| v.value()).ok_or_else(invalid)?;
                let mut sessions = ctx.txn.open_table(SESSIONS)?;
                let mut s: Session = db::decode(sessions.get(sid)?.ok_or_else(invalid)?.value())?;
                if s.expires < now {
                    return Err(Error::Unauthenticated("the session has expired; sign in again".into()));
                }
                refresh.remove(&old)?;
                refresh.insert(&new_hash, sid)?;
                s.refresh_hash = new_hash;
                sessions.insert(sid, db::encode(&s).as_slice())?;
                Ok((sid, s.user))
            })
            .await?;
        let user = self.active_user(user_id).await?;
        let access = self.access_token(user.id, sid)?;
        Ok((
            user,
            Tokens { access_token: access, refresh_token: new_refresh, expires_in: ACCESS_TTL_SECS, session_id: sid },
        ))
    }

    /// Checks an access token: signature, algorithm, times, the session, the account.
    pub async fn verify_access_token(&self, token: &str) -> Result<super::Authenticated> {
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.core.jwt_key), &validation())
            .map_err(token_refusal)?;
        let c = data.claims;
        if c.iat > unix_now() + LEEWAY_SECS {
            return Err(Error::Unauthenticated("invalid token: issued in the future".into()));
        }
        let user_id: u64 = c.sub.parse().map_err(|_| Error::Unauthenticated("invalid token subject".into()))?;
        let sid = c.sid;
        let live = self
            .core
            .db
            .read(move |t| t.open_table(SESSIONS)?.get(sid)?.map(|v| db::decode::<Session>(v.value())).transpose())
            .await?;
        match live {
            Some(s) if s.user == user_id => {}
            _ => return Err(Error::Unauthenticated("the session has ended".into())),
        }
        Ok(super::Authenticated::of(self.active_user(user_id).await?, Some(sid)))
    }

    async fn active_user(&self, id: u64) -> Result<User> {
        match self.get_user(id).await {
            // A token of an account shut since is no longer a sign-in: 401, sign in again.
            Ok(u) => super::account_usable(&u)
                .map(|()| u)
                .map_err(|_| Error::Unauthenticated("the account is not active".into())),
            Err(_) => Err(Error::Unauthenticated("the account no longer exists".into())),
        }
    }

    pub async fn end_session(&self, sid: u64) -> Result<()> {
        self.core.db.write((), move |ctx| remove_sessions(ctx.txn, |s| s.id == sid)).await
    }

    /// Ends every session of a user but `keep` (a password change keeps the caller's own).
    pub async fn end_sessions(&self, user: u64, keep: Option<u64>) -> Result<()> {
        self.core.db.write((), move |ctx| remove_sessions(ctx.txn, |s| s.user == user && Some(s.id) != keep)).await
    }
}

pub(crate) fn remove_sessions(txn: &crate::meta::kv::WriteTxn, pick: impl Fn(&Session) -> bool) -> Result<()> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut refresh = txn.open_table(REFRESH)?;
    let mut doomed = Vec::new();
    for e in sessions.iter()? {
        let s: Session = db::decode(e?.1.value())?;
        if pick(&s) {
            doomed.push(s);
        }
    }
    for s in doomed {
        sessions.remove(s.id)?;
        refresh.remove(&s.refresh_hash)?;
    }
    Ok(())
}

/// A token the library refused, told as what the client can act on (expired: refresh it),
/// never in the library's words (its parser's messages name JSON and base64 internals).
fn token_refusal(e: jsonwebtoken::errors::Error) -> Error {
    use jsonwebtoken::errors::ErrorKind;
    tracing::debug!(error = %e, "token refused");
    Error::Unauthenticated(
        match e.kind() {
            ErrorKind::ExpiredSignature => "the token has expired",
            ErrorKind::ImmatureSignature => "the token is not valid yet",
            _ => "invalid token",
        }
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::meta::model::Role;
    use crate::tests::{config, user};

    /// Opens the folder once the previous handle's threads let go of its database.
    async fn reopen<T>(mut open: impl FnMut() -> Result<T>) -> T {
        for _ in 0..50 {
            match open() {
                Err(Error::Incompatible(m)) if m.contains("another process") => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => return other.unwrap(),
            }
        }
        panic!("the data folder stayed open");
    }

    fn stored(db: &Db) -> Option<Vec<u8>> {
        db.read_sync(|t| Ok(t.open_table(META)?.get(JWT_KEY)?.map(|v| v.value().to_vec()))).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_with_a_jwt_key_file_keeps_its_tokens_and_the_key_moves_into_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwt.key");
        let (tokens, key) = {
            let s = crate::Storage::open(config(dir.path())).unwrap();
            assert!(!file.exists(), "a new folder keeps its key in the store only");
            let alice = user(&s, "alice", Role::User, None).await;
            let u = s.get_user(alice.user_id).await.unwrap();
            let tokens = s.start_session(&u).await.unwrap();
            let key = s.core.jwt_key.clone();
            s.close();
            (tokens, key)
        };
        // Make it a folder of an earlier davit: the key in jwt.key, none in META.
        {
            let db = reopen(|| Db::open(&dir.path().join(crate::meta::db::FILE), 1 << 20, |_| {})).await;
            let sealed = stored(&db).expect("the key is in META");
            assert!(!sealed.windows(key.len()).any(|w| w == key.as_slice()), "sealed, not in the clear");
            db.write_sync(|ctx| ctx.txn.open_table(META)?.remove(JWT_KEY)).unwrap();
            db.close();
        }
        std::fs::write(&file, hex::encode(&key)).unwrap();

        let s = reopen(|| crate::Storage::open(config(dir.path()))).await;
        let who = s.verify_access_token(&tokens.access_token).await.expect("a token issued before still verifies");
        assert_eq!(who.user.username, "alice");
        assert!(!file.exists(), "the file is removed once its key is in the store");
        let sealed = stored(&s.core.db).expect("moved into META");
        assert_eq!(s.core.keys.open_secret(JWT_KEY, &sealed).unwrap(), key);
        s.close();
        drop(s);

        // A folder whose file disagrees with the store (another node made the key first):
        // the store's key wins, so every node signs alike, and the file goes.
        std::fs::write(&file, hex::encode([9u8; 32])).unwrap();
        let s = reopen(|| crate::Storage::open(config(dir.path()))).await;
        assert_eq!(s.core.jwt_key, key);
        assert!(s.verify_access_token(&tokens.access_token).await.is_ok());
        assert!(!file.exists());
    }

    #[test]
    fn the_key_is_made_once_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.redb"), 1 << 20, |_| {}).unwrap();
        db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
        let keys = Keys::derive(&[1; 32]);
        let none = dir.path().join("absent.key");
        let first = load_jwt_key(&db, &keys, &none).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_jwt_key(&db, &keys, &none).unwrap(), first, "a second start (or node) reads the same key");
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not hex").unwrap();
        assert!(matches!(load_jwt_key(&db, &keys, &bad), Err(Error::Incompatible(_))));
        // Under another data key the stored key does not open: a node with a wrong key
        // never signs with garbage.
        assert!(load_jwt_key(&db, &Keys::derive(&[2; 32]), &none).is_err());
    }
}
