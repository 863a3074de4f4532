//! Every REST answer of the tests is checked against the OpenAPI document: the in-process
//! test server's API router gets a layer ([`layer`]) that reads each answer and validates
//! it with the `jsonschema` crate against the operation's schema for its status and media
//! type. Checked at the server, it covers every request however a test makes it (its own
//! reqwest calls, hand-built requests, the S3 or WebDAV suites' side trips into the API).
//!
//! The document is the one the server serves. The check is stricter than the document in
//! one way: an object may not carry a field its schema does not name, so an answer that
//! grows an undocumented field fails here rather than reaching clients unannounced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

/// JSON bodies are small: a larger answer is a failure of its own.
const MAX_CHECKED: usize = 16 << 20;

/// Every answer checked in this test process, for the run's total.
pub static CHECKED_TOTAL: AtomicUsize = AtomicUsize::new(0);

struct Route {
    method: String,
    /// The document's path, e.g. `/api/v1/shares/{id}`.
    path: String,
    segments: Vec<String>,
}

pub struct OpenApiCheck {
    doc: Value,
    /// The components' schemas, closed to undocumented fields.
    schemas: Value,
    routes: Vec<Route>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// JSON answers that matched their schema.
    pub checked: AtomicUsize,
    /// JSON requests the server accepted that matched their documented schema.
    pub requests_checked: AtomicUsize,
    /// Answers that did not, one line each.
    pub failures: Mutex<Vec<String>>,
}

/// Adds `"additionalProperties": false` to every object schema with properties that says
/// nothing of other fields.
fn close(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            m.values_mut().for_each(close);
        }
        Value::Array(a) => a.iter_mut().for_each(close),
        _ => {}
    }
}

fn essence(content_type: Option<&str>) -> String {
    content_type.and_then(|c| c.split(';').next()).unwrap_or("").trim().to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

impl OpenApiCheck {
    pub fn new(doc: Value) -> Self {
        let mut schemas = doc["components"]["schemas"].clone();
        close(&mut schemas);
        let mut routes = Vec::new();
        for (path, ops) in doc["paths"].as_object().expect("the document has paths") {
            for method in ops.as_object().expect("a path has operations").keys() {
                let segments = path.split('/').map(str::to_owned).collect();
                routes.push(Route { method: method.to_ascii_uppercase(), path: path.clone(), segments });
            }
        }
        OpenApiCheck {
            doc,
            schemas,
            routes,
            validators: Mutex::new(HashMap::new()),
            checked: AtomicUsize::new(0),
            requests_checked: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// The documented operation of a request: the template with the most literal segments
    /// among those matching; a trailing parameter (`{path}`, axum's `{*path}`) may hold
    /// slashes.
    fn route(&self, method: &str, path: &str) -> Option<&Route> {
        let segs: Vec<&str> = path.split('/').collect();
        let param = |s: &str| s.starts_with('{') && s.ends_with('}');
        self.routes
            .iter()
            .filter(|r| r.method == method)
            .filter_map(|r| {
                let n = r.segments.len();
                let fits = if segs.len() == n {
                    r.segments.iter().zip(&segs).all(|(t, s)| param(t) || t == s)
                } else {
                    segs.len() > n
                        && param(&r.segments[n - 1])
                        && r.segments[..n - 1].iter().zip(&segs).all(|(t, s)| param(t) || t == s)
                };
                let literals = r.segments.iter().filter(|t| !param(t)).count();
                // An exact segment count beats a wildcard's absorbing the rest.
                fits.then_some((literals * 2 + usize::from(segs.len() == n), r))
            })
            .max_by_key(|(score, _)| *score)
            .map(|(_, r)| r)
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(key) {
            return Ok(v.clone());
        }
        // The operation's schema refers into the components: they travel with it, at the
        // same place as in the document, so `#/components/schemas/…` resolves.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": { "schemas": self.schemas },
            "allOf": [schema],
        });
        let v = Arc::new(jsonschema::draft202012::new(&root).map_err(|e| format!("{key}: bad schema: {e}"))?);
        cache.insert(key.to_owned(), v.clone());
        Ok(v)
    }

    /// Checks one answer. `Ok(true)`: a JSON body that matched its schema; `Ok(false)`: a
    /// body the document describes as bytes or a page, or none.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        attachment: bool,
        body: &[u8],
    ) -> Result<bool, String> {
        let media = essence(content_type);
        let what = format!("{method} {path} -> {status} {media}");
        // HEAD is served by each GET route, and answers its headers only.
        let head = method == "HEAD";
        let Some(route) = self.route(if head { "GET" } else { method }, path) else {
            // The router's own refusals (no such endpoint, wrong method) are problems too.
            if status >= 400 && !head {
                return self.validate(
                    &what,
                    "problem",
                    &json!({ "$ref": "#/components/schemas/Problem" }),
                    &media,
                    body,
                );
            }
            if path == "/api/v1/openapi.json" || head {
                return Ok(false);
            }
            return Err(format!("{what}: no operation of the document serves this"));
        };
        let responses = &self.doc["paths"][&route.path][route.method.to_ascii_lowercase()]["responses"];
        let response = match (responses.get(status.to_string()), status >= 400) {
            (Some(r), _) => r,
            (None, true) => &responses["default"],
            (None, false) => return Err(format!("{what}: the document lists no {status} for {}", route.path)),
        };
        let content = response.get("content").and_then(Value::as_object);
        if head {
            return Ok(false);
        }
        if body.is_empty() {
            return match content {
                Some(c) if c.keys().any(|m| is_json(m)) && !c.keys().any(|m| !is_json(m)) => {
                    Err(format!("{what}: no body where the document says JSON"))
                }
                _ => Ok(false),
            };
        }
        let Some(content) = content else {
            return Err(format!("{what}: a body where the document says none"));
        };
        if attachment || !is_json(&media) {
            // A file's bytes (in the file's own type, even a JSON one) or one of the pages.
            let documented = if attachment {
                content.contains_key("application/octet-stream")
            } else {
                content.contains_key(media.as_str())
            };
            return if documented { Ok(false) } else { Err(format!("{what}: the document has no such body here")) };
        }
        let Some(schema) = content.get(media.as_str()).and_then(|m| m.get("schema")) else {
            return Err(format!("{what}: the document has no {media} schema for {status}"));
        };
        let key = format!("{} {} {status} {media}", route.method, route.path);
        self.validate(&what, &key, schema, &media, body)
    }

    fn validate(&self, what: &str, key: &str, schema: &Value, media: &str, body: &[u8]) -> Result<bool, String> {
        if !is_json(media) {
            return Err(format!("{what}: expected a JSON body"));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{what}: not JSON ({e})"))?;
        let validator = self.validator(key, schema)?;
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        if !errors.is_empty() {
            return Err(format!(
                "{what}: the answer does not match its schema: {}; answer: {value}",
                errors.join("; ")
            ));
        }
        self.checked.fetch_add(1, Ordering::Relaxed);
        CHECKED_TOTAL.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Checks a JSON request body the server accepted (answered 2xx) against the
    /// operation's request schema: a schema stricter than the server would refuse clients
    /// that work. `Ok(false)`: the operation documents no JSON body.
    pub fn check_request(&self, method: &str, path: &str, body: &[u8]) -> Result<bool, String> {
        let what = format!("{method} {path} (request)");
        let Some(route) = self.route(method, path) else { return Ok(false) };
        let op = &self.doc["paths"][&route.path][route.method.to_ascii_lowercase()];
        // An operation that takes no body ignores one (the tests' helpers send `{}` alike).
        let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else { return Ok(false) };
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{what}: not JSON ({e})"))?;
        let key = format!("request {} {}", route.method, route.path);
        // Not closed like the answers: a request schema says itself which fields it refuses.
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            match cache.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let root = json!({
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "components": self.doc["components"],
                        "allOf": [schema],
                    });
                    let v =
                        Arc::new(jsonschema::draft202012::new(&root).map_err(|e| format!("{what}: bad schema: {e}"))?);
                    cache.insert(key, v.clone());
                    v
                }
            }
        };
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        if !errors.is_empty() {
            return Err(format!(
                "{what}: accepted, but does not match its schema: {}; body: {value}",
                errors.join("; ")
            ));
        }
        self.requests_checked.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// What went wrong so far, drained.
    pub fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *self.failures.lock().unwrap())
    }
}

fn header_of(resp: &Response, name: header::HeaderName) -> Option<String> {
    resp.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned)
}

/// The layer's function: passes the answer on unchanged, after checking it.
pub async fn layer(State(check): State<Arc<OpenApiCheck>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    // A JSON request body is kept to be checked once the server accepted it.
    let sent_json = is_json(&essence(req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())));
    let (req, sent) = if sent_json {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_CHECKED).await {
            Ok(b) => (Request::from_parts(parts, Body::from(b.clone())), Some(b)),
            Err(_) => (Request::from_parts(parts, Body::empty()), None),
        }
    } else {
        (req, None)
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if let Some(sent) = sent.filter(|b| !b.is_empty() && (200..300).contains(&status))
        && let Err(e) = check.check_request(&method, &path, &sent)
    {
        eprintln!("OpenAPI mismatch: {e}");
        check.failures.lock().unwrap().push(e);
    }
    let content_type = header_of(&resp, header::CONTENT_TYPE);
    let disposition = header_of(&resp, header::CONTENT_DISPOSITION);
    let attachment = disposition.is_some_and(|d| d.starts_with("attachment"));
    let empty = status == 204 || status == 304 || HttpBody::size_hint(resp.body()).exact() == Some(0);
    // JSON is read whole (answers are small); a file's bytes stream on untouched, the check
    // needs only their headers.
    let (resp, result) = if is_json(&essence(content_type.as_deref())) && !attachment {
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, MAX_CHECKED).await {
            Ok(bytes) => {
                let r = check.check(&method, &path, status, content_type.as_deref(), false, &bytes);
                (Response::from_parts(parts, Body::from(bytes)), r)
            }
            Err(e) => {
                (Response::from_parts(parts, Body::empty()), Err(format!("{method} {path}: reading the answer: {e}")))
            }
        }
    } else {
        // Not read: a one-byte stand-in says that there is a body.
        let stand_in: &[u8] = if empty { b"" } else { b"-" };
        let r = check.check(&method, &path, status, content_type.as_deref(), attachment, stand_in);
        (resp, r)
    };
    if let Err(e) = result {
        eprintln!("OpenAPI mismatch: {e}");
        check.failures.lock().unwrap().push(e);
    }
    resp
}
