//! A minimal SigV4 signer for S3 requests the tests build by hand (in headers, or as a
//! presigned URL; region us-east-1, paths and query values that need no encoding beyond what
//! the caller wrote).

use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;

/// `YYYYMMDDTHHMMSSZ` and `YYYYMMDD` for now, without a date crate.
pub fn amz_date() -> (String, String) {
    amz_date_at(SystemTime::now())
}

pub fn amz_date_at(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
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

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes()).as_ref().to_vec()
}

pub struct Signer {
    pub base: String,
    pub key: String,
    pub secret: String,
    pub client: reqwest::Client,
}

impl Signer {
    /// A signed request. `payload` is the `x-amz-content-sha256` value (`UNSIGNED-PAYLOAD`,
    /// a streaming mode, or the body's hex SHA-256); every header given is signed.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload: &str,
    ) -> reqwest::RequestBuilder {
        self.request_at(SystemTime::now(), method, path, query, headers, payload)
    }

    /// [`Signer::request`] as if signed at `at` (for clock skew).
    pub fn request_at(
        &self,
        at: SystemTime,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload: &str,
    ) -> reqwest::RequestBuilder {
        let (date, day) = amz_date_at(at);
        let host = self.base.split("://").nth(1).unwrap().to_owned();
        let mut signed: Vec<(String, String)> =
            headers.iter().map(|(k, v)| (k.to_lowercase(), v.trim().to_owned())).collect();
        signed.extend([
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload.into()),
            ("x-amz-date".into(), date.clone()),
        ]);
        signed.sort();
        let mut q: Vec<_> = query.to_vec();
        q.sort();
        let canonical_query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let names = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
        let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical = format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{names}\n{payload}");
        let scope = format!("{day}/us-east-1/s3/aws4_request");
        let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
        let signature = self.signature(&day, &to_sign);
        let auth =
            format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}", self.key);
        let url = if canonical_query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{canonical_query}", self.base)
        };
        let mut b = self
            .client
            .request(method, url)
            .header("authorization", auth)
            .header("x-amz-date", date)
            .header("x-amz-content-sha256", payload);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b
    }

    fn signature(&self, day: &str, to_sign: &str) -> String {
        let mut k = hmac(format!("AWS4{}", self.secret).as_bytes(), day);
        for part in ["us-east-1", "s3", "aws4_request"] {
            k = hmac(&k, part);
        }
        hex::encode(hmac(&k, to_sign))
    }

    /// A presigned URL (query-string authentication, only `host` signed) valid for
    /// `expires` seconds, whatever the number: for the limits a client library enforces.
    pub fn presign(&self, method: reqwest::Method, path: &str, expires: u64) -> String {
        let (date, day) = amz_date();
        let host = self.base.split("://").nth(1).unwrap();
        let scope = format!("{day}/us-east-1/s3/aws4_request");
        let credential = format!("{}%2F{}", self.key, scope.replace('/', "%2F"));
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={date}\
             &X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
        );
        let canonical = format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
        let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
        format!("{}{path}?{query}&X-Amz-Signature={}", self.base, self.signature(&day, &to_sign))
    }
}
