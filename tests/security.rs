//! Security hardening: one test (or more) per defect of the hardening issue, each of which
//! failed before its fix. A module per area of the server they touch.

mod auth;
mod content;
mod dav;
