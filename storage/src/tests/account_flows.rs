//! Sign-in by a mailed code alone, and the verification link mailed beside the code.

use super::open_with;
use crate::auth::flows::AccountMail;
use crate::meta::model::Status;
use crate::{Error, NewUser, Role};

async fn account(s: &crate::Storage, name: &str, status: Status) -> u64 {
    s.create_user(NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.test")),
        password: "password123".into(),
        role: Role::User,
        status,
        quota: None,
    })
    .await
    .unwrap()
    .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_code_alone_signs_in_an_active_account() {
    let f = open_with(|_| {});
    let s = &f.storage;
    account(s, "alice", Status::Active).await;
    account(s, "pat", Status::Pending).await;
    let Some(AccountMail::LoginCode { to, code }) = s.login_code_mail("alice@example.test", None).await.unwrap() else {
        panic!("no sign-in code for alice")
    };
    assert_eq!(to, "alice@example.test");
    // Nothing for an unknown name or an account not usable: the caller answers alike.
    assert!(s.login_code_mail("nobody", None).await.unwrap().is_none());
    assert!(s.login_code_mail("nobody@example.test", None).await.unwrap().is_none());
    assert!(s.login_code_mail("pat", None).await.unwrap().is_none());
    // A wrong code uses a try; the right one signs in once.
    assert!(matches!(s.login_otp("alice", "000000", None).await, Err(Error::InvalidCode(_))));
    let (user, tokens) = s.login_otp("alice", &code, None).await.unwrap();
    assert_eq!(user.username, "alice");
    assert!(s.verify_access_token(&tokens.access_token).await.is_ok());
    assert!(matches!(s.login_otp("alice", &code, None).await, Err(Error::InvalidCode(_))), "single use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_by_code_can_be_turned_off() {
    let f = open_with(|c| c.login_by_code = false);
    let s = &f.storage;
    account(s, "alice", Status::Active).await;
    assert!(matches!(s.login_by_code_allowed(), Err(Error::Forbidden(_))));
    assert!(matches!(s.login_code_mail("alice", None).await, Err(Error::Forbidden(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_link_and_code_are_one_single_use_proof() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let reg = s.admit_registration("carol", "carol@example.test", "password123", None).unwrap().unwrap();
    let Some(AccountMail::Verify { code, link, .. }) = s.complete_registration(reg).await.unwrap() else {
        panic!("no verification mail")
    };
    // A token of another user's id, or a changed secret, does nothing.
    let (id, secret) = link.split_once('.').unwrap();
    let other = format!("{}.{secret}", id.parse::<u64>().unwrap() + 1);
    assert!(matches!(s.verify_by_link(&other).await, Err(Error::InvalidCode(_))));
    assert!(matches!(s.verify_by_link(&format!("{id}.x{secret}")).await, Err(Error::InvalidCode(_))));
    assert!(matches!(s.verify_by_link("garbage").await, Err(Error::InvalidCode(_))));
    let user = s.verify_by_link(&link).await.unwrap();
    assert_eq!((user.username.as_str(), user.status), ("carol", Status::Active));
    assert!(matches!(s.verify_by_link(&link).await, Err(Error::InvalidCode(_))), "single use");
    assert!(matches!(s.verify_account("carol", &code).await, Err(Error::InvalidCode(_))), "the code went with it");

    // The other way round: the code used, the link is dead.
    let reg = s.admit_registration("dave", "dave@example.test", "password123", None).unwrap().unwrap();
    let Some(AccountMail::Verify { code, link, .. }) = s.complete_registration(reg).await.unwrap() else {
        panic!("no verification mail")
    };
    s.verify_account("dave", &code).await.unwrap();
    assert!(matches!(s.verify_by_link(&link).await, Err(Error::InvalidCode(_))));
    // A resend replaces both.
    let reg = s.admit_registration("erin", "erin@example.test", "password123", None).unwrap().unwrap();
    let Some(AccountMail::Verify { link: first, .. }) = s.complete_registration(reg).await.unwrap() else {
        panic!("no verification mail")
    };
    let Some(AccountMail::Verify { link: second, .. }) = s.resend_code("erin", None).await.unwrap() else {
        panic!("no second mail")
    };
    assert!(matches!(s.verify_by_link(&first).await, Err(Error::InvalidCode(_))));
    s.verify_by_link(&second).await.unwrap();
}

crate::tests::also_on_postgres!(
    a_mailed_code_alone_signs_in_an_active_account,
    the_verification_link_and_code_are_one_single_use_proof,
);

/// A new password (changed, reset or set by an admin, offline too) ends the codes a password
/// opens the way to, as it ends sessions: a code asked for by whoever held the old password
/// no longer signs in or changes the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_ends_the_codes_mailed_before() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let id = account(s, "alice", Status::Active).await;
    // As `login_code_mail` makes them, without its one-a-minute limit.
    let login_code = || s.new_code(id, crate::auth::codes::Purpose::Login, None);
    let code = login_code().await.unwrap();
    let email = s.new_code(id, crate::auth::codes::Purpose::EmailChange, Some("m@example.test".into())).await.unwrap();
    s.set_password(id, "another-password-1").await.unwrap();
    assert!(matches!(s.login_otp("alice", &code, None).await, Err(Error::InvalidCode(_))));
    assert!(matches!(s.email_change_confirm(id, &email).await, Err(Error::InvalidCode(_))));

    let code = login_code().await.unwrap();
    s.set_password_blocking("alice", "a-third-password-1").unwrap();
    assert!(matches!(s.login_otp("alice", &code, None).await, Err(Error::InvalidCode(_))));
    // A code asked for after the change works.
    let code = login_code().await.unwrap();
    assert!(s.login_otp("alice", &code, None).await.is_ok());
}
