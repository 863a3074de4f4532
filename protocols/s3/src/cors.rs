//! CORS over S3: Put/Get/DeleteBucketCors, the preflight (`OPTIONS`), and the
//! `Access-Control-*` headers of actual cross-origin requests. What is allowed is decided by
//! the core (`davit_storage::s3cfg::cors`); this maps requests and answers.

use davit_storage::Principal;
use davit_storage::s3cfg::cors::{self as rules, CorsAsk, CorsGrant, CorsRule};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::DavitS3;
use crate::errors::{bucket_error, s3_error as map};

fn to_core(r: CORSRule) -> CorsRule {
    CorsRule {
        id: r.id,
        allowed_origins: r.allowed_origins,
        allowed_methods: r.allowed_methods,
        allowed_headers: r.allowed_headers.unwrap_or_default(),
        expose_headers: r.expose_headers.unwrap_or_default(),
        max_age_seconds: r.max_age_seconds,
    }
}

fn to_s3(r: CorsRule) -> CORSRule {
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    CORSRule {
        id: r.id,
        allowed_origins: r.allowed_origins,
        allowed_methods: r.allowed_methods,
        allowed_headers: some(r.allowed_headers),
        expose_headers: some(r.expose_headers),
        max_age_seconds: r.max_age_seconds,
    }
}

/// A core refusal of a configuration is S3's InvalidRequest (an unsupported method, two
/// wildcards) or MalformedXML (no rule).
fn config_error(e: davit_storage::Error) -> S3Error {
    match e {
        davit_storage::Error::InvalidInput(m) if m.contains("1 to") => {
            S3Error::with_message(S3ErrorCode::MalformedXML, m)
        }
        davit_storage::Error::InvalidInput(m) => S3Error::with_message(S3ErrorCode::InvalidRequest, m),
        e => bucket_error(e),
    }
}

pub async fn put_bucket_cors(
    s3: &DavitS3,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let p = s3.principal(&req).await?;
    let input = req.input;
    s3.bucket(&p, &input.bucket).await?;
    let rules = input.cors_configuration.cors_rules.into_iter().map(to_core).collect();
    s3.storage.put_bucket_cors(&p, &input.bucket, rules).await.map_err(config_error)?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub async fn get_bucket_cors(
    s3: &DavitS3,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    match s3.storage.get_bucket_cors(&p, &req.input.bucket).await.map_err(bucket_error)? {
        Some(r) => Ok(S3Response::new(GetBucketCorsOutput { cors_rules: Some(r.into_iter().map(to_s3).collect()) })),
        None => Err(s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist")),
    }
}

pub async fn delete_bucket_cors(
    s3: &DavitS3,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let p = s3.principal(&req).await?;
    s3.bucket(&p, &req.input.bucket).await?;
    s3.storage.delete_bucket_cors(&p, &req.input.bucket).await.map_err(map)?;
    Ok(S3Response::new(DeleteBucketCorsOutput::default()))
}

/// What a request from a browser says about itself, read before the request is served.
pub struct Asked {
    bucket: Option<String>,
    origin: String,
    method: String,
    preflight: bool,
    /// A preflight's `Access-Control-Request-Headers`, as named.
    headers: Vec<String>,
    credentials: bool,
}

impl Asked {
    /// `None` for a request without `Origin` that is no preflight: not a cross-origin one.
    pub fn of(req: &http::Request<s3s::Body>, base_domain: Option<&str>) -> Option<Asked> {
        let h = req.headers();
        let preflight = req.method() == Method::OPTIONS;
        let origin = h.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if origin.is_none() && !preflight {
            return None;
        }
        let host =
            h.get(http::header::HOST).and_then(|v| v.to_str().ok()).or(req.uri().authority().map(|a| a.as_str()));
        let bucket = match (host, base_domain) {
            (Some(host), Some(d)) if davit_http::virtual_host_bucket(host, d).is_some() => {
                davit_http::virtual_host_bucket(host, d)
            }
            _ => {
                req.uri().path().trim_start_matches('/').split('/').next().filter(|b| !b.is_empty()).map(str::to_owned)
            }
        };
        // An actual request that names a method in Access-Control-Request-Method is decided
        // for that method, as RGW does (s3-tests' test_cors_origin_response expects it).
        let requested = h.get(http::header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| v.to_str().ok());
        let method = match requested {
            Some(m) => m.to_owned(),
            None if preflight => String::new(),
            None => req.method().as_str().to_owned(),
        };
        let headers = h
            .get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        let query = req.uri().query().unwrap_or("");
        let credentials = h.contains_key(http::header::AUTHORIZATION)
            || query.split('&').any(|kv| kv.starts_with("X-Amz-Credential=") || kv.starts_with("Signature="));
        Some(Asked { bucket, origin: origin.unwrap_or_default(), method, preflight, headers, credentials })
    }

    pub fn is_preflight(&self) -> bool {
        self.preflight
    }

    fn ask(&self) -> CorsAsk<'_> {
        CorsAsk {
            origin: &self.origin,
            method: &self.method,
            headers: if self.preflight { self.headers.clone() } else { Vec::new() },
            credentials: self.credentials,
        }
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> http::Response<s3s::Body> {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.to_owned().into()), message.to_owned());
    e.set_status_code(status);
    e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty()))
}

const NOT_ALLOWED: &str = "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/// Answers a preflight from the rules of the buckets of its name (see the core's notes).
pub async fn preflight(storage: &davit_storage::Storage, asked: &Asked) -> http::Response<s3s::Body> {
    if asked.origin.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        );
    }
    if Method::from_bytes(asked.method.as_bytes()).is_err() || asked.method.is_empty() {
        return refusal(StatusCode::BAD_REQUEST, "BadRequest", "Invalid Access-Control-Request-Method");
    }
    let Some(bucket) = &asked.bucket else {
        return refusal(StatusCode::FORBIDDEN, "CORSResponse", NOT_ALLOWED);
    };
    let configs = match storage.cors_rules_by_name(bucket).await {
        Ok(c) => c,
        Err(e) => return map(e).to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty())),
    };
    if configs.is_empty() {
        return refusal(StatusCode::FORBIDDEN, "CORSResponse", "CORS is not enabled for this bucket.");
    }
    match rules::grant_any(&configs, &asked.ask()) {
        None => refusal(StatusCode::FORBIDDEN, "CORSResponse", NOT_ALLOWED),
        Some(g) => {
            let mut r = http::Response::new(s3s::Body::empty());
            set_headers(r.headers_mut(), &g, true);
            vary(r.headers_mut(), true);
            r
        }
    }
}

/// Adds the `Access-Control-*` headers to the answer of an actual cross-origin request, from
/// the rules of the bucket its user reached (or, unsigned, of the buckets of its name).
pub async fn decorate(storage: &davit_storage::Storage, asked: &Asked, resp: &mut http::Response<s3s::Body>) {
    let Some(bucket) = &asked.bucket else { return };
    let configs = match resp.extensions().get::<Principal>() {
        Some(p) => storage.cors_rules_of(p, bucket).await.map(|c| c.into_iter().collect::<Vec<_>>()),
        None => storage.cors_rules_by_name(bucket).await,
    };
    // A failure to read the rules leaves the answer as it is: the browser then withholds it
    // from the page, which is the safe side.
    let Ok(configs) = configs else { return };
    if configs.is_empty() {
        return;
    }
    vary(resp.headers_mut(), false);
    if let Some(g) = rules::grant_any(&configs, &asked.ask()) {
        set_headers(resp.headers_mut(), &g, false);
    }
}

fn set_headers(h: &mut HeaderMap, g: &CorsGrant, preflight: bool) {
    let mut put = |name: http::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    };
    put(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, g.allow_origin.clone());
    put(http::header::ACCESS_CONTROL_ALLOW_METHODS, g.allow_methods.join(", "));
    if g.allow_credentials {
        put(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".into());
    }
    if !g.expose_headers.is_empty() {
        put(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, g.expose_headers.join(", "));
    }
    if preflight {
        if !g.allow_headers.is_empty() {
            put(http::header::ACCESS_CONTROL_ALLOW_HEADERS, g.allow_headers.join(", "));
        }
        if let Some(age) = g.max_age_seconds {
            put(http::header::ACCESS_CONTROL_MAX_AGE, age.to_string());
        }
    }
}

/// The answer depends on these request headers: caches must keep one per value.
fn vary(h: &mut HeaderMap, preflight: bool) {
    let v = if preflight { "Origin, Access-Control-Request-Headers, Access-Control-Request-Method" } else { "Origin" };
    h.append(http::header::VARY, HeaderValue::from_static(v));
}
