//! S3 over real HTTP. (The real-client suite is conformance/s3/run.sh: aws CLI, rclone, s3cmd.)

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{self, Options};

/// `YYYYMMDDTHHMMSSZ` for now, without a date crate.
pub(crate) fn amz_date() -> (String, String) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let day = format!("{y:04}{m:02}{d:02}");
    (format!("{day}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60), day)
}

#[tokio::test]
async fn failed_signatures_are_throttled_like_logins() {
    let s = support::start(Options::default()).await;
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, _) = s.storage.create_access_key(alice.id).await.unwrap();
    let c = support::client();
    let (date, day) = amz_date();
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
        key.id,
        "0".repeat(64)
    );
    let mut codes = Vec::new();
    for _ in 0..8 {
        let r = c
            .get(s.url("/"))
            .header("Authorization", &auth)
            .header("x-amz-date", &date)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        let body = r.text().await.unwrap();
        let code = body.split("<Code>").nth(1).and_then(|b| b.split("</Code>").next()).unwrap_or("").to_owned();
        codes.push((status, code, retry));
    }
    assert!(codes[..5].iter().all(|(s, c, _)| *s == 403 && c == "SignatureDoesNotMatch"), "{codes:?}");
    let (status, code, retry) = codes.last().unwrap();
    assert_eq!((*status, code.as_str(), *retry), (503, "SlowDown", true), "{codes:?}");
    s.stop().await;
}
