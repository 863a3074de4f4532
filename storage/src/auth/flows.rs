//! The account flows the REST API offers: registration with a mailed code, login with an
//! optional mailed second factor, password reset, email change. The rules live here; the
//! front end only mails the codes these return.

use std::time::Duration;

use crate::auth::codes::Purpose;
use crate::auth::sessions::Tokens;
use crate::auth::throttle::ClientAddr;
use crate::error::{Error, Result};
use crate::meta::model::{Role, Status, User};
use crate::meta::names::{normalize_email, validate_username};
use crate::{NewUser, Storage};

const RESEND_EVERY: Duration = Duration::from_secs(60);

/// A mail an account flow asks the front end to send (the front end words it). The flows
/// answer the same whichever of these, if any, they return, so that nobody learns from the
/// answer whether an address or a username has an account.
#[derive(Debug)]
pub enum AccountMail {
    /// The code that confirms a new account, and the token of the one-click link that does
    /// the same (`verify_by_link`).
    Verify { to: String, code: String, link: String },
    /// A code that signs in without a password (`login_code_mail`).
    LoginCode { to: String, code: String },
    /// Someone registered with an address that already has an account.
    EmailTaken { to: String },
    /// Someone registered with a new address but a username that is taken.
    UsernameTaken { to: String, username: String },
    /// A password reset code.
    Reset { to: String, code: String },
    /// A password reset was asked for an address no account uses.
    NoAccount { to: String },
    /// The code that confirms a signed-in user's new address.
    EmailChange { to: String, code: String },
}

impl AccountMail {
    pub fn to(&self) -> &str {
        match self {
            AccountMail::Verify { to, .. }
            | AccountMail::LoginCode { to, .. }
            | AccountMail::EmailTaken { to }
            | AccountMail::UsernameTaken { to, .. }
            | AccountMail::Reset { to, .. }
            | AccountMail::NoAccount { to }
            | AccountMail::EmailChange { to, .. } => to,
        }
    }
}

/// A registration admitted by `Storage::admit_registration`, to complete.
pub struct Registration {
    username: String,
    email: String,
    password: String,
    addr: Option<ClientAddr>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Registrations completing at once at most; more are answered "retry shortly".
pub(crate) const REGISTRATIONS_AT_ONCE: usize = 64;

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
    /// Checks a registration's input and whether its client may register now. What is
    /// left, `complete_registration`, takes longer when the account is new than when the
    /// address or username is taken, however it is padded (a creation commits more pages), so
    /// a front end answers once this returns and completes the registration after.
    /// `None`: the client registered too often lately; answered alike, so the limit tells
    /// nothing about which accounts exist.
    pub fn admit_registration(
        &self,
        username: &str,
        email: &str,
        password: &str,
        addr: Option<ClientAddr>,
    ) -> Result<Option<Registration>> {
        validate_username(username)?;
        let email = normalize_email(email)?;
        crate::auth::users::check_password_rules(password)?;
        // Bounds the registrations completing at once, whatever number of clients send them.
        let Ok(permit) = self.core.registrations.clone().try_acquire_owned() else {
            return Err(Error::Throttled(5));
        };
        if !self.throttle().registration_allowed(addr) {
            tracing::info!(
                client = %addr.map_or_else(|| "unknown".to_owned(), |ClientAddr(ip)| ip.to_string()),
                "registration ignored: too many from this client lately"
            );
            return Ok(None);
        }
        Ok(Some(Registration {
            username: username.to_owned(),
            email,
            password: password.to_owned(),
            addr,
            _permit: permit,
        }))
    }

    /// Registers the pending account (when neither its address nor its username is taken)
    /// and returns the mail to send: a code, or a note saying which is taken.
    pub async fn complete_registration(&self, r: Registration) -> Result<Option<AccountMail>> {
        let Registration { username, email, password, addr, .. } = r;
        let (username, password) = (username.as_str(), password.as_str());
        let taken = if self.find_user(&email).await.is_ok() {
            Some(AccountMail::EmailTaken { to: email.clone() })
        } else if self.find_user(username).await.is_ok() {
            Some(AccountMail::UsernameTaken { to: email.clone(), username: username.to_owned() })
        } else {
            None
        };
        let mail = match taken {
            Some(mail) => {
                self.core.hasher.hash(password).await?;
                // Two commits, as the account and its code are, to keep the server's load alike.
                for _ in 0..2 {
                    self.core.db.write((), |ctx| ctx.txn.next_id("registrations_refused").map(drop)).await?;
                }
                mail
            }
            None => {
                let created = self
                    .create_user(NewUser {
                        username: username.to_owned(),
                        email: Some(email.clone()),
                        password: password.to_owned(),
                        role: Role::User,
                        status: Status::Pending,
                        quota: None,
                    })
                    .await;
                match created {
                    Ok(user) => {
                        let (code, link) = self.new_verification(user.id).await?;
                        AccountMail::Verify { to: email, code, link }
                    }
                    // Taken in the meantime by a concurrent registration.
                    Err(Error::AlreadyExists(m)) if m.contains("email") => AccountMail::EmailTaken { to: email },
                    Err(Error::AlreadyExists(_)) => {
                        AccountMail::UsernameTaken { to: email, username: username.to_owned() }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(self.mail_if_allowed(mail, addr))
    }

    /// `mail` if the limits on mail to its recipient and from this client allow it now;
    /// otherwise nothing is sent and only a tag of the address is logged.
    fn mail_if_allowed(&self, mail: AccountMail, addr: Option<ClientAddr>) -> Option<AccountMail> {
        if self.throttle().mail_allowed(mail.to(), addr) {
            return Some(mail);
        }
        tracing::info!(
            recipient = %self.mail_tag(mail.to()),
            "mail not sent: too many mails to this address or from this client lately"
        );
        None
    }

    /// An email address for logs: its domain and a keyed hash of the whole, enough to tell
    /// two log lines about one address apart from others without writing the address.
    pub fn mail_tag(&self, address: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.core.jwt_key);
        let msg = format!("davit/mail-tag/v1:{}", address.trim().to_lowercase());
        let tag = ring::hmac::sign(&key, msg.as_bytes());
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        format!("{}@{domain}", hex::encode(&tag.as_ref()[..6]))
    }

    pub async fn verify_account(&self, login: &str, code: &str) -> Result<User> {
        let user = self.find_user(login).await.map_err(|_| invalid_code())?;
        if user.status != Status::Pending {
            return Err(invalid_code());
        }
        self.take_code(user.id, Purpose::Verify, code).await?;
        self.forget_code(user.id, Purpose::VerifyLink).await?;
        self.activate(user.id).await
    }

    /// Activates a pending account with the token of the link mailed beside its code; the
    /// code is used up with it.
    pub async fn verify_by_link(&self, token: &str) -> Result<User> {
        let user = self.take_link_token(token, Purpose::VerifyLink).await?;
        self.forget_code(user, Purpose::Verify).await?;
        self.activate(user).await
    }

    async fn activate(&self, user: u64) -> Result<User> {
        let user = self
            .update_user(user, |u| {
                if u.status == Status::Pending {
                    u.status = Status::Active;
                }
                Ok(())
            })
            .await?;
        self.audit(crate::audit::Event::new("account_verified").by_user(&user)).await;
        Ok(user)
    }

    /// A new verification code for a pending account, when the mail limits allow one; None
    /// otherwise and when there is no such pending account (the caller answers the same).
    pub async fn resend_code(&self, login: &str, addr: Option<ClientAddr>) -> Result<Option<AccountMail>> {
        let Ok(user) = self.find_user(login).await else { return Ok(None) };
        let Some(to) = user.email.clone().filter(|_| user.status == Status::Pending) else { return Ok(None) };
        // Checked before a new code replaces the one already mailed.
        if !self.throttle().mail_allowed(&to, addr) {
            tracing::info!(recipient = %self.mail_tag(&to), "verification code not resent: too many mails lately");
            return Ok(None);
        }
        let (code, link) = self.new_verification(user.id).await?;
        Ok(Some(AccountMail::Verify { to, code, link }))
    }

    /// Whether signing in with a mailed code alone is on (`StorageConfig::login_by_code`).
    /// It is on by default: whoever reads the mailbox can already reset the password, so a
    /// code to that mailbox lets in nobody who could not get in already.
    pub fn login_by_code_allowed(&self) -> Result<()> {
        if self.core.config.login_by_code {
            Ok(())
        } else {
            Err(Error::Forbidden("signing in with a mailed code alone is turned off on this server".into()))
        }
    }

    /// The mail a sign-in by code asked for `login` sends: a code for a usable account with
    /// an address (completed by `login_otp`); nothing for an unknown, pending or disabled
    /// account, or past the mail limits. Run after the answer is sent, so that the answer and
    /// its timing are the same whichever it is.
    pub async fn login_code_mail(&self, login: &str, addr: Option<ClientAddr>) -> Result<Option<AccountMail>> {
        self.login_by_code_allowed()?;
        let user = self.find_user(login).await.ok().filter(|u| super::account_usable(u).is_ok());
        let Some((user, to)) = user.and_then(|u| u.email.clone().map(|e| (u, e))) else { return Ok(None) };
        // Checked before a new code replaces one already mailed.
        if !self.throttle().mail_allowed(&to, addr) {
            tracing::info!(recipient = %self.mail_tag(&to), "sign-in code not mailed: too many mails lately");
            return Ok(None);
        }
        let code = self.new_code(user.id, Purpose::Login, None).await?;
        Ok(Some(AccountMail::LoginCode { to, code }))
    }

    pub async fn login(&self, login: &str, password: &str, addr: Option<ClientAddr>) -> Result<LoginOutcome> {
        let attempt = self.throttle().gate(login, addr).await?;
        let user = match self.authenticate(login, password).await {
            Ok(u) => u,
            Err(e) => {
                if matches!(e, Error::Unauthenticated(_)) {
                    attempt.failed();
                    self.audit_failed_login(login, addr, "password").await;
                }
                return Err(e);
            }
        };
        if user.second_factor {
            let code = self.new_code(user.id, Purpose::Login, None).await?;
            self.audit(crate::audit::Event::new("login_code_sent").by_user(&user).from(addr)).await;
            return Ok(LoginOutcome::CodeRequired { user, code });
        }
        attempt.succeeded();
        let tokens = self.start_session(&user).await?;
        self.audit(crate::audit::Event::new("login").by_user(&user).from(addr).with("method", "password")).await;
        Ok(LoginOutcome::Signed { user, tokens })
    }

    pub async fn login_otp(&self, login: &str, code: &str, addr: Option<ClientAddr>) -> Result<(User, Tokens)> {
        let attempt = self.throttle().gate(login, addr).await?;
        let user = match self.find_user(login).await {
            Ok(u) if super::account_usable(&u).is_ok() => u,
            _ => {
                attempt.failed();
                self.audit_failed_login(login, addr, "second factor").await;
                return Err(invalid_code());
            }
        };
        if let Err(e) = self.take_code(user.id, Purpose::Login, code).await {
            attempt.failed();
            self.audit(
                crate::audit::Event::new("login_failed").by_user(&user).from(addr).with("method", "second factor"),
            )
            .await;
            return Err(e);
        }
        attempt.succeeded();
        let tokens = self.start_session(&user).await?;
        self.audit(crate::audit::Event::new("login").by_user(&user).from(addr).with("method", "second factor")).await;
        Ok((user, tokens))
    }

    /// The mail a password reset asked for `login` sends, if any: a code for an account
    /// with an address, a "no account here" note for an address without one, nothing for an
    /// unknown username or past the mail limits. Never a refusal: the answer is the same.
    pub async fn password_reset_mail(&self, login: &str, addr: Option<ClientAddr>) -> Result<Option<AccountMail>> {
        let user = self.find_user(login).await.ok().filter(|u| u.status != Status::Disabled);
        let to = match &user {
            Some(u) => u.email.clone(),
            None if login.contains('@') => normalize_email(login).ok(),
            None => None,
        };
        let Some(to) = to else { return Ok(None) };
        if !self.throttle().mail_allowed(&to, addr) {
            tracing::info!(recipient = %self.mail_tag(&to), "password reset not mailed: too many mails lately");
            return Ok(None);
        }
        Ok(Some(match user {
            Some(u) => AccountMail::Reset { to, code: self.new_code(u.id, Purpose::PasswordReset, None).await? },
            None => AccountMail::NoAccount { to },
        }))
    }

    /// Sets a new password with a reset code; every session ends.
    pub async fn password_reset_confirm(&self, login: &str, code: &str, new_password: &str) -> Result<User> {
        crate::auth::users::check_password_rules(new_password)?;
        let user = self.find_user(login).await.map_err(|_| invalid_code())?;
        self.take_code(user.id, Purpose::PasswordReset, code).await?;
        let user = self.set_password(user.id, new_password).await?;
        self.end_sessions(user.id, None).await?;
        self.audit(crate::audit::Event::new("password_reset").by_user(&user)).await;
        Ok(user)
    }

    /// Changes one's password given the current one; other sessions end, `keep` stays.
    pub async fn change_password(&self, user_id: u64, current: &str, new: &str, keep: Option<u64>) -> Result<User> {
        crate::auth::users::check_password_rules(new)?;
        let user = self.get_user(user_id).await?;
        let ok = self.core.hasher.verify(&user.password_hash, current).await?;
        if !ok {
            self.audit(crate::audit::Event::new("password_change_failed").by_user(&user)).await;
            return Err(Error::Forbidden("the current password is wrong".into()));
        }
        let user = self.set_password(user_id, new).await?;
        self.end_sessions(user_id, keep).await?;
        self.audit(crate::audit::Event::new("password_changed").by_user(&user)).await;
        Ok(user)
    }

    /// Starts an email change: checks the address and the rate (one a minute), and returns
    /// it normalised for `email_change_mail`.
    pub fn email_change_start(&self, user_id: u64, new_email: &str) -> Result<String> {
        let email = normalize_email(new_email)?;
        self.throttle().limit(&format!("email:{user_id}"), RESEND_EVERY)?;
        Ok(email)
    }

    /// The code for an email change, to the new address. An address that already has an
    /// account gets nothing (the confirmation would be refused anyway), and the caller
    /// answers the same: any signed-in user could otherwise ask who has an account.
    pub async fn email_change_mail(
        &self,
        user_id: u64,
        email: String,
        addr: Option<ClientAddr>,
    ) -> Result<Option<AccountMail>> {
        if self.find_user(&email).await.is_ok() {
            return Ok(None);
        }
        let code = self.new_code(user_id, Purpose::EmailChange, Some(email.clone())).await?;
        Ok(self.mail_if_allowed(AccountMail::EmailChange { to: email, code }, addr))
    }

    pub async fn email_change_confirm(&self, user_id: u64, code: &str) -> Result<User> {
        let email = self.take_code(user_id, Purpose::EmailChange, code).await?.ok_or_else(invalid_code)?;
        let user = self
            .update_user(user_id, move |u| {
                u.email = Some(email.clone());
                Ok(())
            })
            .await?;
        self.audit(
            crate::audit::Event::new("email_changed").by_user(&user).with("email", user.email.as_deref().unwrap_or("")),
        )
        .await;
        Ok(user)
    }

    pub async fn second_factor_code(&self, user_id: u64) -> Result<String> {
        self.throttle().limit(&format!("2fa:{user_id}"), Duration::from_secs(30))?;
        self.new_code(user_id, Purpose::SecondFactor, None).await
    }

    /// Turns the mailed second factor on or off, proven by a code sent to the address.
    pub async fn set_second_factor(&self, user_id: u64, code: &str, on: bool) -> Result<User> {
        self.take_code(user_id, Purpose::SecondFactor, code).await?;
        let user = self
            .update_user(user_id, move |u| {
                u.second_factor = on;
                // Cached Basic credentials stop working when the account password stops counting.
                u.auth_epoch += 1;
                Ok(())
            })
            .await?;
        self.audit(crate::audit::Event::new(if on { "second_factor_on" } else { "second_factor_off" }).by_user(&user))
            .await;
        Ok(user)
    }
}
