//! Everything about proving who one is: sessions and tokens, mailed codes, app passwords,
//! throttling, and the Basic-auth rule that ties them together.

pub(crate) mod admin;
pub mod app_passwords;
pub(crate) mod cache;
pub mod codes;
pub mod flows;
pub(crate) mod keys;
pub mod sessions;
pub mod throttle;
pub(crate) mod users;

use crate::Storage;
use crate::error::{Error, Result};
use crate::meta::model::{Principal, Status, User};
use throttle::ClientAddr;

/// The one rule of who may be let in, on every path (password, app password, token, S3 key,
/// a link's owner): an active account. A pending one has not proved its address yet; a
/// disabled one was shut by an admin.
pub(crate) fn account_usable(user: &User) -> Result<()> {
    match user.status {
        Status::Active => Ok(()),
        Status::Pending => Err(Error::Forbidden("the account's email address is not verified yet".into())),
        Status::Disabled => Err(Error::Forbidden("the account is disabled".into())),
    }
}

/// What a request's credentials proved: the only way a front end gets a [`Principal`].
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub user: User,
    /// The session a token belongs to; none for Basic credentials.
    pub session: Option<u64>,
    /// Proved with an app password (Basic), not with the account's own password or a
    /// session it opened.
    pub app_password: bool,
}

impl Authenticated {
    /// After [`account_usable`] said yes.
    pub(crate) fn of(user: User, session: Option<u64>) -> Self {
        Authenticated { principal: Principal::of(&user), user, session, app_password: false }
    }
}

/// Whether credentials may change how the account is reached: its email address (where
/// password resets go), its app passwords and S3 keys, its second factor. An app password
/// may not (`app_password`: it proved the caller): it is handed to devices and scripts, and
/// one that leaked would otherwise take the whole account (a new address, then a reset) or
/// mint credentials that outlive its own revocation. The account's password, or a session
/// opened with it, may (the password itself changes only with the current one, whatever
/// signed in).
pub fn may_manage_account(app_password: bool) -> Result<()> {
    if app_password {
        return Err(Error::Forbidden(
            "an app password cannot change the account's email address, app passwords, keys or second factor: \
             sign in with the account's password"
                .into(),
        ));
    }
    Ok(())
}

impl Storage {
    pub fn throttle(&self) -> &throttle::Throttle {
        &self.core.throttle
    }

    /// HTTP Basic (WebDAV, scripts): an app password, or the account password unless the
    /// account has the mailed second factor on. Throttled like a login (see `throttle`).
    pub async fn authenticate_basic(
        &self,
        login: &str,
        password: &str,
        addr: Option<ClientAddr>,
    ) -> Result<Authenticated> {
        let attempt = self.core.throttle.gate(login, addr).await?;
        let result = self
            .basic_inner(login, password)
            .await
            .map(|(u, app_password)| Authenticated { app_password, ..Authenticated::of(u, None) });
        match &result {
            Ok(_) => attempt.succeeded(),
            Err(Error::Unauthenticated(_)) => {
                attempt.failed();
                // Successes are not events: Basic credentials come with every request.
                self.audit_failed_login(login, addr, "basic").await;
            }
            Err(_) => {}
        }
        result
    }

    /// The user, and whether an app password proved it.
    async fn basic_inner(&self, login: &str, password: &str) -> Result<(User, bool)> {
        // Remembered credentials, app passwords first (see `cache`).
        let (user, app) = self.basic_cached(login, password).await?;
        if !app && user.second_factor {
            return Err(Error::Unauthenticated(
                "this account uses a second factor: sign in over Basic auth with an app password".into(),
            ));
        }
        Ok((user, app))
    }
}
