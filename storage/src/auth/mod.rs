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
}

impl Authenticated {
    /// After [`account_usable`] said yes.
    pub(crate) fn of(user: User, session: Option<u64>) -> Self {
        Authenticated { principal: Principal::of(&user), user, session }
    }
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
        let result = self.basic_inner(login, password).await.map(|u| Authenticated::of(u, None));
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

    async fn basic_inner(&self, login: &str, password: &str) -> Result<User> {
        // Remembered credentials, app passwords first (see `cache`).
        let (user, app) = self.basic_cached(login, password).await?;
        if !app && user.second_factor {
            return Err(Error::Unauthenticated(
                "this account uses a second factor: sign in over Basic auth with an app password".into(),
            ));
        }
        Ok(user)
    }
}
