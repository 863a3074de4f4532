//! Who may ask: unknown and revoked keys, wrong secrets, anonymous requests, skewed clocks.

use std::time::{Duration, SystemTime};

use reqwest::Method;

use super::*;
use crate::s3_sign::Signer;

#[tokio::test]
async fn unknown_revoked_and_wrongly_signed_keys_are_refused() {
    let Sdk { s, c, key, secret } = start().await;
    c.list_buckets().send().await.unwrap();

    let stranger = client(&s.base, "AKNOSUCHKEY000000000", "no-secret", false);
    assert_eq!(refusal(stranger.list_buckets().send().await), (403, "InvalidAccessKeyId".into()));

    let wrong = client(&s.base, &key, &format!("{secret}x"), false);
    let r = wrong.get_object().bucket("bkt").key("k").send().await;
    // With S3's message: s3s sends none of its own, and the aws CLI then printed "Unknown".
    let message = r.as_ref().err().and_then(|e| e.message()).map(str::to_owned);
    assert_eq!(refusal(r), (403, "SignatureDoesNotMatch".into()));
    assert!(message.as_deref().is_some_and(|m| m.contains("signature you provided")), "{message:?}");
    let signer =
        Signer { base: s.base.clone(), key: key.clone(), secret: secret.clone(), client: support::tls_client() };
    let r = signer.request(Method::GET, "/Bad_Bucket/k", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Code>InvalidBucketName</Code><Message>") && xml.contains("<RequestId>"), "{xml}");

    let (bob_key, bob_secret) = key_of(&s, "bob").await;
    let bob = client(&s.base, &bob_key, &bob_secret, false);
    bob.list_buckets().send().await.unwrap();
    s.storage.revoke_access_key(&s.principal("bob").await, &bob_key).await.unwrap();
    assert_eq!(refusal(bob.list_buckets().send().await), (403, "InvalidAccessKeyId".into()), "revoked at once");
    // alice's key is another key.
    c.list_buckets().send().await.unwrap();

    let r = support::tls_client().get(s.url("/bkt/k")).send().await.unwrap();
    assert_eq!(xml_code(r).await, (403, "AccessDenied".into()), "anonymous");
    s.stop().await;
}

#[tokio::test]
async fn a_request_signed_twenty_minutes_off_is_too_skewed() {
    let Sdk { s, key, secret, .. } = start().await;
    let signer = Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let send = |at: SystemTime| signer.request_at(at, Method::GET, "/bkt", &[], &[], "UNSIGNED-PAYLOAD").send();
    let now = SystemTime::now();
    let twenty = Duration::from_secs(20 * 60);
    assert_eq!(xml_code(send(now - twenty).await.unwrap()).await, (403, "RequestTimeTooSkewed".into()));
    assert_eq!(xml_code(send(now + twenty).await.unwrap()).await, (403, "RequestTimeTooSkewed".into()));
    // S3 allows 15 minutes either way.
    let five = Duration::from_secs(5 * 60);
    assert_eq!(send(now - five).await.unwrap().status(), 200);
    assert_eq!(send(now + five).await.unwrap().status(), 200);
    s.stop().await;
}

/// Disabling an account refuses its keys from the next request on: the owner a request just
/// before left for its own operation does not stand in for the next one's check.
#[tokio::test]
async fn a_disabled_account_keys_are_refused_at_once() {
    let Sdk { s, c, .. } = start().await;
    let put = |k: &'static str| {
        c.put_object().bucket("bkt").key(k).body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
    };
    put("before").send().await.unwrap();
    let alice = s.storage.find_user("alice").await.unwrap();
    s.storage.set_status(alice.id, davit_storage::Status::Disabled).await.unwrap();
    assert_eq!(refusal(put("after").send().await).0, 403);
    assert_eq!(refusal(c.list_buckets().send().await).0, 403);
    s.storage.set_status(alice.id, davit_storage::Status::Active).await.unwrap();
    put("again").send().await.unwrap();
    s.stop().await;
}
