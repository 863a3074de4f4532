//! The account flows the REST API offers: registration with a mailed code, login with an
//! optional mailed second factor, password reset, email change. The rules live here; the
//! front end only mails the codes these return.

use std::time::Duration;

use crate::auth::codes::Purpose;
use crate::auth::sessions::Tokens;
use crate::auth::throttle::ClientAddr;
use crate::error::{Error, Result};
use crate::model::{Role, Status, User};
use crate::names::normalize_email;
use crate::{NewUser, Storage};

const RESEND_EVERY: Duration = Duration::from_secs(60);

pub enum Registration {
    /// A pending account; mail it this code.
    Created { user: User, code: String },
    /// The address already has an account: tell its owner, answer as if created.
    EmailTaken { email: String },
}

pub enum LoginOutcome {
    Signed {
        user: User,
        tokens: Tokens,
    },
    /// The account has the mailed second factor on: mail this code, then `login_otp`.
    CodeRequired {
        user: User,
        code: String,
    },
}

fn invalid_code() -> Error {
    Error::InvalidCode("the code is wrong, expired or used up; ask for a new one".into())
}

impl Storage {
    pub async fn register(&self, username: &str, email: &str, password: &str) -> Result<Registration> {
        let email = normalize_email(email)?;
        if self.find_user(&email).await.is_ok() {
            return Ok(Registration::EmailTaken { email });
        }
        let user = self
            .create_user(NewUser {
                username: username.to_owned(),
                email: Some(email.clone()),
                password: password.to_owned(),
                role: Role::User,
                status: Status::Pending,
                quota: None,
            })
            .await
            .map_err(|e| match e {
                Error::AlreadyExists(m) if m.contains("email") => {
                    Error::AlreadyExists("the account could not be created".into())
                }
                e => e,
            })?;
        let code = self.new_code(user.id, Purpose::Verify, None).await?;
        Ok(Registration::Created { user, code })
    }

    pub async fn verify_account(&self, login: &str, code: &str) -> Result<User> {
        let user = self.find_user(login).await.map_err(|_| invalid_code())?;
        if user.status != Status::Pending {
            return Err(invalid_code());
        }
        self.take_code(user.id, Purpose::Verify, code).await?;
        self.update_user(user.id, |u| {
            if u.status == Status::Pending {
                u.status = Status::Active;
            }
            Ok(())
        })
        .await
    }

    /// A new verification code for a pending account (at most one a minute); None when
    /// there is no such pending account (the caller answers the same either way).
    pub async fn resend_code(&self, login: &str) -> Result<Option<(User, String)>> {
        let Ok(user) = self.find_user(login).await else { return Ok(None) };
        if user.status != Status::Pending {
            return Ok(None);
        }
        self.throttle().limit(&format!("resend:{}", user.id), RESEND_EVERY)?;
        let code = self.new_code(user.id, Purpose::Verify, None).await?;
        Ok(Some((user, code)))
    }

    pub async fn login(&self, login: &str, password: &str, addr: Option<ClientAddr>) -> Result<LoginOutcome> {
        self.throttle().check(login, addr)?;
        let user = match self.authenticate(login, password).await {
            Ok(u) => u,
            Err(e) => {
                if matches!(e, Error::Unauthenticated(_)) {
                    self.throttle().failed(login, addr);
                }
                return Err(e);
            }
        };
        if user.second_factor {
            let code = self.new_code(user.id, Purpose::Login, None).await?;
            return Ok(LoginOutcome::CodeRequired { user, code });
        }
        self.throttle().succeeded(login, addr);
        let tokens = self.start_session(&user).await?;
        Ok(LoginOutcome::Signed { user, tokens })
    }

    pub async fn login_otp(&self, login: &str, code: &str, addr: Option<ClientAddr>) -> Result<(User, Tokens)> {
        self.throttle().check(login, addr)?;
        let user = match self.find_user(login).await {
            Ok(u) if u.status == Status::Active => u,
            _ => {
                self.throttle().failed(login, addr);
                return Err(invalid_code());
            }
        };
        if let Err(e) = self.take_code(user.id, Purpose::Login, code).await {
            self.throttle().failed(login, addr);
            return Err(e);
        }
        self.throttle().succeeded(login, addr);
        let tokens = self.start_session(&user).await?;
        Ok((user, tokens))
    }

    /// A reset code for the account, if there is one (answer the same either way).
    pub async fn password_reset_code(&self, login: &str) -> Result<Option<(User, String)>> {
        let Ok(user) = self.find_user(login).await else { return Ok(None) };
        if user.status == Status::Disabled || user.email.is_none() {
            return Ok(None);
        }
        self.throttle().limit(&format!("reset:{}", user.id), RESEND_EVERY)?;
        let code = self.new_code(user.id, Purpose::PasswordReset, None).await?;
        Ok(Some((user, code)))
    }

    /// Sets a new password with a reset code; every session ends.
    pub async fn password_reset_confirm(&self, login: &str, code: &str, new_password: &str) -> Result<User> {
        crate::users::check_password_rules(new_password)?;
        let user = self.find_user(login).await.map_err(|_| invalid_code())?;
        self.take_code(user.id, Purpose::PasswordReset, code).await?;
        let user = self.set_password(user.id, new_password).await?;
        self.end_sessions(user.id, None).await?;
        Ok(user)
    }

    /// Changes one's password given the current one; other sessions end, `keep` stays.
    pub async fn change_password(&self, user_id: u64, current: &str, new: &str, keep: Option<u64>) -> Result<User> {
        crate::users::check_password_rules(new)?;
        let user = self.get_user(user_id).await?;
        let hash = user.password_hash.clone();
        let current = current.to_owned();
        let ok = tokio::task::spawn_blocking(move || crate::users::verify_password(&hash, &current)).await?;
        if !ok {
            return Err(Error::Forbidden("the current password is wrong".into()));
        }
        let user = self.set_password(user_id, new).await?;
        self.end_sessions(user_id, keep).await?;
        Ok(user)
    }

    /// Starts an email change: the code goes to the new address.
    pub async fn email_change_code(&self, user_id: u64, new_email: &str) -> Result<(String, String)> {
        let email = normalize_email(new_email)?;
        if self.find_user(&email).await.is_ok() {
            return Err(Error::AlreadyExists("that email address is already in use".into()));
        }
        self.throttle().limit(&format!("email:{user_id}"), RESEND_EVERY)?;
        let code = self.new_code(user_id, Purpose::EmailChange, Some(email.clone())).await?;
        Ok((email, code))
    }

    pub async fn email_change_confirm(&self, user_id: u64, code: &str) -> Result<User> {
        let email = self.take_code(user_id, Purpose::EmailChange, code).await?.ok_or_else(invalid_code)?;
        self.update_user(user_id, move |u| {
            u.email = Some(email.clone());
            Ok(())
        })
        .await
    }

    pub async fn second_factor_code(&self, user_id: u64) -> Result<String> {
        self.throttle().limit(&format!("2fa:{user_id}"), Duration::from_secs(30))?;
        self.new_code(user_id, Purpose::SecondFactor, None).await
    }

    /// Turns the mailed second factor on or off, proven by a code sent to the address.
    pub async fn set_second_factor(&self, user_id: u64, code: &str, on: bool) -> Result<User> {
        self.take_code(user_id, Purpose::SecondFactor, code).await?;
        self.update_user(user_id, move |u| {
            u.second_factor = on;
            // Cached Basic credentials stop working when the account password stops counting.
            u.auth_epoch += 1;
            Ok(())
        })
        .await
    }
}
