//! What davit checks or mends in an S3 request before s3s reads it: refusals s3s would give
//! in another form, and one spelling of SigV4 it does not take.

use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

/// MinIO's snowball extension: a tar archive unpacked into many objects on upload. davit
/// does not build it, and storing the archive as one object would not be what the client
/// meant.
const SNOWBALL: &str = "x-amz-meta-snowball-auto-extract";

/// Refuses or mends the request's headers (see the module notes).
pub fn prepare(req: &mut http::Request<s3s::Body>) -> S3Result<()> {
    let method = req.method().clone();
    let h = req.headers_mut();
    // An empty Authorization header is a request that claims a signature and brings none:
    // S3 refuses it as AccessDenied (s3s would answer 400 for the unparsable header).
    if h.get(http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace)) {
        return Err(s3_error!(AccessDenied, "the Authorization header is empty"));
    }
    if h.contains_key(SNOWBALL) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "MinIO's snowball auto-extract is not implemented: the archive would be stored as one object",
        ));
    }
    crate::sse::check_headers(&method, h)?;
    date_for_sigv4(h);
    latin1_metadata(h);
    Ok(())
}

/// SigV4 dates a request by `x-amz-date` or, when that is absent, by `Date` (an HTTP date),
/// as botocore signs whenever the caller set `Date`. s3s reads only `x-amz-date`: the same
/// instant is added in its form. The header is not among the signed ones (the client signed
/// `date`), so the canonical request is unchanged.
fn date_for_sigv4(h: &mut http::HeaderMap) {
    let sigv4 = h.get(http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"));
    if !sigv4 || h.contains_key("x-amz-date") {
        return;
    }
    let Some(date) = h.get(http::header::DATE).and_then(|v| v.to_str().ok()) else { return };
    let Ok(t) = s3s::dto::Timestamp::parse(s3s::dto::TimestampFormat::HttpDate, date.trim()) else { return };
    let t = time::OffsetDateTime::from(t);
    let amz = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if let Ok(v) = http::HeaderValue::from_str(&amz) {
        h.insert("x-amz-date", v);
    }
}

/// User metadata whose value is not UTF-8 came as ISO-8859-1 (what HTTP/1.1 clients such
/// as Python's send for characters past ASCII): it is read as such and handed on as an RFC
/// 2047 word, which s3s decodes. Values are kept as Unicode and answered RFC 2047-encoded
/// when they are not plain ASCII, as S3 documents, so every client reads back what it sent.
fn latin1_metadata(h: &mut http::HeaderMap) {
    let names: Vec<http::HeaderName> = h
        .iter()
        .filter(|(k, v)| k.as_str().starts_with("x-amz-meta-") && std::str::from_utf8(v.as_bytes()).is_err())
        .map(|(k, _)| k.clone())
        .collect();
    for name in names {
        let Some(v) = h.get(&name) else { continue };
        let text: String = v.as_bytes().iter().map(|b| char::from(*b)).collect();
        use base64::Engine;
        let word = format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
        if let Ok(v) = http::HeaderValue::from_str(&word) {
            h.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &[u8])]) -> http::Request<s3s::Body> {
        let mut r = http::Request::new(s3s::Body::empty());
        *r.method_mut() = http::Method::PUT;
        for (k, v) in headers {
            r.headers_mut()
                .insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_bytes(v).unwrap());
        }
        r
    }

    #[test]
    fn date_stands_for_x_amz_date_under_sigv4_only() {
        let mut r =
            req(&[("authorization", b"AWS4-HMAC-SHA256 Credential=x"), ("date", b"Tue, 01 Dec 2026 00:05:09 GMT")]);
        prepare(&mut r).unwrap();
        assert_eq!(r.headers()["x-amz-date"], "20261201T000509Z");
        // An x-amz-date of the client's stays; SigV2 dates by Date itself.
        let mut r = req(&[
            ("authorization", b"AWS4-HMAC-SHA256 Credential=x"),
            ("date", b"Tue, 01 Dec 2026 00:05:09 GMT"),
            ("x-amz-date", b"20261201T000000Z"),
        ]);
        prepare(&mut r).unwrap();
        assert_eq!(r.headers()["x-amz-date"], "20261201T000000Z");
        let mut r = req(&[("authorization", b"AWS key:sig"), ("date", b"Tue, 01 Dec 2026 00:05:09 GMT")]);
        prepare(&mut r).unwrap();
        assert!(r.headers().get("x-amz-date").is_none());
    }

    #[test]
    fn refusals() {
        let code = |h: &[(&str, &[u8])]| prepare(&mut req(h)).unwrap_err().code().as_str().to_owned();
        assert_eq!(code(&[("authorization", b"")]), "AccessDenied");
        assert_eq!(code(&[("authorization", b"  ")]), "AccessDenied");
        assert_eq!(code(&[(SNOWBALL, b"true")]), "NotImplemented");
        assert_eq!(code(&[("x-amz-server-side-encryption", b"aws:kms")]), "NotImplemented");
        assert_eq!(code(&[("x-amz-server-side-encryption", b"AES512")]), "InvalidArgument");
        assert_eq!(code(&[("x-amz-server-side-encryption-customer-algorithm", b"AES256")]), "NotImplemented");
        let mut put = req(&[("x-amz-server-side-encryption", b"AES256")]);
        *put.method_mut() = http::Method::PUT;
        assert!(prepare(&mut put).is_ok());
        let mut head = req(&[("x-amz-server-side-encryption", b"AES256")]);
        *head.method_mut() = http::Method::HEAD;
        assert_eq!(prepare(&mut head).unwrap_err().code().as_str(), "InvalidArgument");
    }

    #[test]
    fn latin1_metadata_becomes_an_rfc2047_word() {
        let mut r = req(&[("x-amz-meta-meta1", b"Hello World\xe9"), ("x-amz-meta-plain", b"abc")]);
        prepare(&mut r).unwrap();
        let v = r.headers()["x-amz-meta-meta1"].to_str().unwrap();
        let b64 = v.strip_prefix("=?UTF-8?B?").and_then(|v| v.strip_suffix("?=")).unwrap();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "Hello World\u{e9}");
        assert_eq!(r.headers()["x-amz-meta-plain"], "abc");
    }
}
