//! One-time codes mailed to users: 6 digits, 10 minutes, single use, at most 5 wrong tries
//! (then a new code is needed). Only a hash is stored; comparison is constant-time.

use crate::meta::kv::Readable;
use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::crypto::{ct_eq, random_string, sha256};
use crate::error::{Error, Result};
use crate::meta::db::{self, CODES};
use crate::meta::model::now_nanos;

const CODE_TTL_NANOS: i64 = 10 * 60 * 1_000_000_000;
const MAX_TRIES: u8 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Activates a new account.
    Verify,
    /// The second factor at login.
    Login,
    PasswordReset,
    /// Confirms a new email address (the payload).
    EmailChange,
    /// Turns the mailed second factor on or off.
    SecondFactor,
    /// The one-click link beside the `Verify` code: the same lifetime, and using either
    /// uses both up.
    VerifyLink,
}

impl Purpose {
    fn key(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Login => "login",
            Purpose::PasswordReset => "reset",
            Purpose::EmailChange => "email",
            Purpose::SecondFactor => "2fa",
            Purpose::VerifyLink => "verify-link",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CodeRecord {
    hash: [u8; 32],
    expires: i64,
    tries_left: u8,
    payload: Option<String>,
}
crate::meta::db::stored!(CodeRecord = "one-time code");

enum Taken {
    Ok(Option<String>),
    Wrong,
}

impl Storage {
    /// Makes a new code for `user` (replacing any earlier one of the same purpose).
    pub async fn new_code(&self, user: u64, purpose: Purpose, payload: Option<String>) -> Result<String> {
        let code = random_string(b"0123456789", 6);
        let rec = CodeRecord {
            hash: sha256(code.as_bytes()),
            expires: now_nanos() + CODE_TTL_NANOS,
            tries_left: MAX_TRIES,
            payload,
        };
        let bytes = db::encode(&rec);
        self.core
            .db
            .write((), move |ctx| {
                ctx.txn.open_table(CODES)?.insert((user, purpose.key()), bytes.as_slice())?;
                Ok(())
            })
            .await?;
        Ok(code)
    }

    /// A new account's verification code and the token of the link mailed beside it, written
    /// in one commit: a registration's work must not grow for a new account only, or its
    /// timing would tell that the account is new. The token is `<user id>.<256 random bits>`,
    /// kept like a code (its hash, the code's lifetime and tries): the id only finds the
    /// record; the random part is the secret.
    pub async fn new_verification(&self, user: u64) -> Result<(String, String)> {
        use base64::Engine;
        let code = random_string(b"0123456789", 6);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>());
        let expires = now_nanos() + CODE_TTL_NANOS;
        let rec = |s: &str| {
            db::encode(&CodeRecord { hash: sha256(s.as_bytes()), expires, tries_left: MAX_TRIES, payload: None })
        };
        let (code_rec, link_rec) = (rec(&code), rec(&secret));
        self.core
            .db
            .write((), move |ctx| {
                let mut codes = ctx.txn.open_table(CODES)?;
                codes.insert((user, Purpose::Verify.key()), code_rec.as_slice())?;
                codes.insert((user, Purpose::VerifyLink.key()), link_rec.as_slice())?;
                Ok(())
            })
            .await?;
        Ok((code, format!("{user}.{secret}")))
    }

    /// Uses a link token made by [`Storage::new_verification`]: the user it was made for.
    pub async fn take_link_token(&self, token: &str, purpose: Purpose) -> Result<u64> {
        let wrong = || Error::InvalidCode("this link is wrong, expired or used already; ask for a new one".into());
        let (user, secret) = token.split_once('.').ok_or_else(wrong)?;
        let user: u64 = user.parse().map_err(|_| wrong())?;
        self.take_code(user, purpose, secret).await.map_err(|_| wrong())?;
        Ok(user)
    }

    /// Removes a code not used (its twin was).
    pub(crate) async fn forget_code(&self, user: u64, purpose: Purpose) -> Result<()> {
        self.core
            .db
            .write((), move |ctx| {
                ctx.txn.open_table(CODES)?.remove((user, purpose.key()))?;
                Ok(())
            })
            .await
    }

    /// Removes every code of `user` that a password opens the way to (signing in, a reset,
    /// an email change, the second factor), in `txn`: a new password (changed, reset, set by
    /// an admin) ends them with the sessions, or a code asked for by whoever held the old one
    /// would still sign in.
    pub(crate) fn forget_account_codes(ctx: &mut db::WriteCtx<'_>, user: u64) -> Result<()> {
        let mut codes = ctx.txn.open_table(CODES)?;
        for purpose in [Purpose::Login, Purpose::PasswordReset, Purpose::EmailChange, Purpose::SecondFactor] {
            codes.remove((user, purpose.key()))?;
        }
        Ok(())
    }

    /// Uses a code: on success it is gone and its payload returned; a wrong one uses up a
    /// try (kept even though the call fails).
    pub async fn take_code(&self, user: u64, purpose: Purpose, code: &str) -> Result<Option<String>> {
        let hash = sha256(code.trim().as_bytes());
        let now = now_nanos();
        let taken = self
            .core
            .db
            .write((), move |ctx| {
                let mut codes = ctx.txn.open_table(CODES)?;
                let key = (user, purpose.key());
                let Some(rec) = codes.get(key)?.map(|v| db::decode::<CodeRecord>(v.value())).transpose()? else {
                    return Ok(Taken::Wrong);
                };
                if rec.expires < now {
                    codes.remove(key)?;
                    return Ok(Taken::Wrong);
                }
                if ct_eq(&rec.hash, &hash) {
                    codes.remove(key)?;
                    return Ok(Taken::Ok(rec.payload));
                }
                if rec.tries_left <= 1 {
                    codes.remove(key)?;
                } else {
                    let rec = CodeRecord { tries_left: rec.tries_left - 1, ..rec };
                    codes.insert(key, db::encode(&rec).as_slice())?;
                }
                Ok(Taken::Wrong)
            })
            .await?;
        match taken {
            Taken::Ok(p) => Ok(p),
            Taken::Wrong => Err(Error::InvalidCode("the code is wrong, expired or used up; ask for a new one".into())),
        }
    }
}
