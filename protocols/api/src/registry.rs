//! Every route goes through `Api::route`, which also records it for the OpenAPI document:
//! the document is generated from the same calls that build the router, so no route can be
//! served without being documented.
//!
//! Bodies are documented by their Rust types: an `Op` names the type it reads
//! ([`Op::takes`]) and the type it answers per status ([`Op::answers`]), and the document's
//! `components/schemas` are derived from those types with schemars (JSON Schema 2020-12, the
//! dialect of OpenAPI 3.1). Handlers answer the same types, so the schemas describe what is
//! really sent; the integration tests check every answer against them.

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::ApiState;

/// Where the document keeps its schemas.
const SCHEMAS: &str = "/components/schemas";

/// Gives the schema of a type (a `$ref` into the components for named types).
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What an answer's body is.
#[derive(Clone, Copy)]
enum Content {
    /// `application/json` of this type.
    Json(SchemaFn),
    /// One of davit's HTML pages.
    Html,
    /// A file's bytes, in the file's own media type.
    Bytes,
    /// No body (204).
    Empty,
    /// A `multipart/form-data` form whose file parts each become a file.
    Form,
}

/// One operation's documentation. Made by `op(…)` (summary, auth, example body, statuses);
/// the builder methods add the body types, and an `Op` without them still documents the
/// operation as before (statuses and example only).
pub struct Op {
    pub summary: &'static str,
    /// Whether a Bearer token, session cookie or Basic credentials are needed.
    pub auth: bool,
    /// Example of the JSON request body, if the operation takes one.
    pub body: Option<Value>,
    /// Status codes of success, then of the refusals it may answer.
    pub responses: &'static [(u16, &'static str)],
    request: Option<(&'static str, Content)>,
    /// Whether a request body may be left out.
    body_optional: bool,
    /// The query string's parameters, from the type the handler parses it into.
    query: Option<SchemaFn>,
    answers: Vec<(u16, Content)>,
}

impl Op {
    pub fn new(
        summary: &'static str,
        auth: bool,
        body: Option<Value>,
        responses: &'static [(u16, &'static str)],
    ) -> Self {
        Op { summary, auth, body, responses, request: None, body_optional: false, query: None, answers: Vec::new() }
    }

    /// The JSON request body is a `T`.
    pub fn takes<T: JsonSchema>(mut self) -> Self {
        self.request = Some(("application/json", Content::Json(schema_of::<T>)));
        self
    }

    /// The request body may be left out (its content then comes from elsewhere: a cookie).
    pub fn body_optional(mut self) -> Self {
        self.body_optional = true;
        self
    }

    /// The request body is raw bytes (`application/octet-stream` or the file's own type).
    pub fn takes_bytes(mut self) -> Self {
        self.request = Some(("application/octet-stream", Content::Bytes));
        self
    }

    /// The request body is a `multipart/form-data` form of files.
    pub fn takes_form(mut self) -> Self {
        self.request = Some(("multipart/form-data", Content::Form));
        self
    }

    /// The query string is parsed into a `T` (a struct of optional scalars).
    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(schema_of::<T>);
        self
    }

    /// Answers `status` with a JSON `T`.
    pub fn answers<T: JsonSchema>(mut self, status: u16) -> Self {
        self.answers.push((status, Content::Json(schema_of::<T>)));
        self
    }

    /// Answers `status` with an HTML page.
    pub fn answers_html(mut self, status: u16) -> Self {
        self.answers.push((status, Content::Html));
        self
    }

    /// Answers `status` with a file's bytes.
    pub fn answers_bytes(mut self, status: u16) -> Self {
        self.answers.push((status, Content::Bytes));
        self
    }

    /// Answers `status` with no body.
    pub fn answers_empty(mut self, status: u16) -> Self {
        self.answers.push((status, Content::Empty));
        self
    }
}

pub struct Api {
    router: Router<ApiState>,
    paths: Map<String, Value>,
    /// Request bodies are described as they are read (fields with defaults may be left
    /// out), answers as they are written (every field not skipped is there): two generators,
    /// one per direction, whose definitions are merged (a type is used in one direction).
    reads: SchemaGenerator,
    writes: SchemaGenerator,
}

fn method_name(m: MethodFilter) -> &'static str {
    if m == MethodFilter::GET {
        "get"
    } else if m == MethodFilter::POST {
        "post"
    } else if m == MethodFilter::PUT {
        "put"
    } else if m == MethodFilter::PATCH {
        "patch"
    } else if m == MethodFilter::DELETE {
        "delete"
    } else {
        "head"
    }
}

fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = SCHEMAS.into();
        s.meta_schema = None;
    })
}

fn content(g: &mut SchemaGenerator, media: &str, c: Content) -> Value {
    match c {
        Content::Json(f) => json!({ media: { "schema": f(g).to_value() } }),
        Content::Html => json!({ "text/html": { "schema": { "type": "string" } } }),
        Content::Bytes => json!({ media: { "schema": { "type": "string", "contentMediaType": media } } }),
        Content::Empty => json!({}),
        Content::Form => json!({ media: { "schema": {
            "type": "object",
            "description": "every part with a file name becomes a file of that name",
            "properties": { "file": { "type": "array", "items": { "type": "string", "contentMediaType": "application/octet-stream" } } }
        } } }),
    }
}

/// A query type's properties as OpenAPI query parameters.
fn query_parameters(g: &mut SchemaGenerator, f: SchemaFn) -> Vec<Value> {
    let schema = f(g).to_value();
    // A named type is a `$ref`: look its definition up.
    let schema = match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
        Some(name) => g.definitions().get(name).cloned().unwrap_or(schema),
        None => schema,
    };
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else { return Vec::new() };
    props
        .iter()
        .map(|(name, s)| {
            // An absent parameter is the `None` of an `Option`; a query string has no null.
            let mut s = s.clone();
            if let Some(types) = s.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    s["type"] = types[0].clone();
                }
            }
            let mut p =
                json!({ "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": s });
            if let Some(d) = s.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

impl Api {
    pub fn new() -> Self {
        Api {
            router: Router::new(),
            paths: Map::new(),
            reads: settings().for_deserialize().into_generator(),
            writes: settings().for_serialize().into_generator(),
        }
    }

    /// Adds one method of one path. `path` uses axum's syntax (`{id}`, `{*path}`).
    pub fn route<H, T>(mut self, path: &str, method: MethodFilter, handler: H, op: Op) -> Self
    where
        H: axum::handler::Handler<T, ApiState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(method, handler));
        self.document(path, method, op);
        self
    }

    /// For routes that need their own layers (body limits).
    pub fn route_with(mut self, path: &str, method: MethodFilter, mr: MethodRouter<ApiState>, op: Op) -> Self {
        self.router = self.router.route(path, mr);
        self.document(path, method, op);
        self
    }

    fn document(&mut self, path: &str, method: MethodFilter, op: Op) {
        let doc_path = path.replace("{*", "{");
        let mut params: Vec<Value> = doc_path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if let Some(q) = op.query {
            params.extend(query_parameters(&mut self.reads, q));
        }
        let mut responses = Map::new();
        // Named answers are the successes: a shared list's other successes are not this one's.
        let named = |code: u16| op.answers.iter().any(|(c, _)| *c == code);
        for (code, desc) in op.responses.iter().filter(|(c, _)| *c >= 300 || op.answers.is_empty() || named(*c)) {
            let mut r = json!({ "description": desc });
            if *code >= 400 {
                r["content"] = problem_content();
            }
            responses.insert(code.to_string(), r);
        }
        for (code, c) in &op.answers {
            let r = responses.entry(code.to_string()).or_insert_with(|| json!({ "description": success(*code) }));
            if matches!(c, Content::Empty) {
                continue;
            }
            let media = if matches!(c, Content::Bytes) { "application/octet-stream" } else { "application/json" };
            let add = content(&mut self.writes, media, *c);
            match r.get_mut("content").and_then(Value::as_object_mut) {
                Some(existing) => existing.extend(add.as_object().cloned().unwrap_or_default()),
                None => r["content"] = add,
            }
        }
        responses.insert(
            "default".into(),
            json!({ "description": "another refusal: see the problem's code", "content": problem_content() }),
        );
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}{}", method_name(method), doc_path.replace(['/', '{', '}', '-'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if op.auth {
            operation["security"] = json!([{ "bearer": [] }, { "cookie": [] }, { "basic": [] }]);
        }
        let request = match (op.request, &op.body) {
            (Some((media, c)), _) => Some(content(&mut self.reads, media, c)),
            (None, Some(_)) => Some(json!({ "application/json": {} })),
            (None, None) => None,
        };
        if let Some(mut content) = request {
            if let (Some(example), Some(media)) = (op.body, content.get_mut("application/json")) {
                media["example"] = example;
            }
            operation["requestBody"] = json!({ "required": !op.body_optional, "content": content });
        }
        let entry = self.paths.entry(doc_path).or_insert_with(|| json!({}));
        entry[method_name(method)] = operation;
    }

    pub fn finish(mut self) -> (Router<ApiState>, Value) {
        self.writes.subschema_for::<crate::answers::ProblemJson>();
        let mut schemas = self.reads.take_definitions(true);
        for (name, schema) in self.writes.take_definitions(true) {
            if let Some(other) = schemas.get(&name) {
                // A type used both ways must be described the same both ways.
                assert_eq!(other, &schema, "the schema {name} differs between requests and answers");
            }
            schemas.insert(name, schema);
        }
        let doc = json!({
            "openapi": "3.1.0",
            "info": { "title": "davit REST API", "version": env!("CARGO_PKG_VERSION") },
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "paths": self.paths,
            "components": {
                "securitySchemes": {
                    "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                    "cookie": { "type": "apiKey", "in": "cookie", "name": crate::auth::ACCESS_COOKIE },
                    "basic": { "type": "http", "scheme": "basic" }
                },
                "schemas": schemas,
            }
        });
        (self.router, doc)
    }
}

fn success(code: u16) -> &'static str {
    match code {
        201 => "created",
        202 => "accepted",
        204 => "done; no body",
        206 => "partial content",
        _ => "done",
    }
}

fn problem_content() -> Value {
    json!({ "application/problem+json": { "schema": { "$ref": format!("#{SCHEMAS}/Problem") } } })
}
