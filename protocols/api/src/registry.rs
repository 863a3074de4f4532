//! Every route goes through `Api::route`, which also records it for the OpenAPI document:
//! the document is generated from the same calls that build the router, so no route can be
//! served without being documented.

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Map, Value, json};

use crate::ApiState;

pub struct Op {
    pub summary: &'static str,
    /// Whether a Bearer token, session cookie or Basic credentials are needed.
    pub auth: bool,
    /// Example of the JSON request body, if the operation takes one.
    pub body: Option<Value>,
    /// Status codes of success, then of the refusals it may answer.
    pub responses: &'static [(u16, &'static str)],
}

pub struct Api {
    router: Router<ApiState>,
    paths: Map<String, Value>,
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

impl Api {
    pub fn new() -> Self {
        Api { router: Router::new(), paths: Map::new() }
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
        let params: Vec<Value> = doc_path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut responses = Map::new();
        for (code, desc) in op.responses {
            let mut r = json!({ "description": desc });
            if *code >= 400 {
                r["content"] =
                    json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
            }
            responses.insert(code.to_string(), r);
        }
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}{}", method_name(method), doc_path.replace(['/', '{', '}', '-'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if op.auth {
            operation["security"] = json!([{ "bearer": [] }, { "cookie": [] }, { "basic": [] }]);
        }
        if let Some(example) = op.body {
            operation["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "example": example } } });
        }
        let entry = self.paths.entry(doc_path).or_insert_with(|| json!({}));
        entry[method_name(method)] = operation;
    }

    pub fn finish(self) -> (Router<ApiState>, Value) {
        let doc = json!({
            "openapi": "3.1.0",
            "info": { "title": "davit REST API", "version": env!("CARGO_PKG_VERSION") },
            "paths": self.paths,
            "components": {
                "securitySchemes": {
                    "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                    "cookie": { "type": "apiKey", "in": "cookie", "name": crate::auth::ACCESS_COOKIE },
                    "basic": { "type": "http", "scheme": "basic" }
                },
                "schemas": {
                    "Problem": {
                        "type": "object",
                        "properties": {
                            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                            "code": { "type": "string" }, "detail": { "type": "string" }
                        },
                        "required": ["status", "code", "detail"]
                    }
                }
            }
        });
        (self.router, doc)
    }
}
