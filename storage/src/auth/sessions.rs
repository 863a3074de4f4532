//! Sessions: a refresh token (stored hashed) and short-lived access tokens (JWT, HS256 with
//! a key kept in the data folder) that name their session, so logging out or deleting the
//! session ends both at once, and a deleted or disabled account fails at once.

use crate::meta::kv::Readable;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::crypto::{random_bytes, sha256};
use crate::error::{Error, Result};
use crate::meta::db::{self, REFRESH, SESSIONS};
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
            .map_err(|e| Error::Unauthenticated(format!("invalid token: {e}")))?;
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
