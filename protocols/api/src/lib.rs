//! davit's REST API under `/api/v1`. Errors are `application/problem+json` (RFC 9457).

mod problem;

pub use axum::Router;
use axum::routing::get;
use davit_storage::Storage;

pub use axum::body::Body;
pub use problem::Problem;

#[derive(Clone)]
pub struct ApiState {
    pub storage: Storage,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .fallback(not_found)
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
