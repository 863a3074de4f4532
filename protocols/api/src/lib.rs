//! davit's REST API under `/api/v1`. Errors are `application/problem+json` (RFC 9457).

mod auth;
mod files;
mod problem;

use axum::routing::get;
use davit_storage::Storage;

pub use auth::{Caller, parse_basic};
pub use axum::Router;
pub use axum::body::Body;
pub use problem::Problem;

#[derive(Clone)]
pub struct ApiState {
    pub storage: Storage,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/files", get(files::get))
        .route("/api/v1/files/", get(files::get))
        .route(
            "/api/v1/files/{*path}",
            get(files::get).put(files::put).delete(files::delete),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(auth::record_user))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn not_found() -> Problem {
    Problem::new(
        http::StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint",
    )
}
