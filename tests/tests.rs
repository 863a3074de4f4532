//! davit's integration tests: one binary, a module per area. Every test talks HTTP to a real
//! server on 127.0.0.1, started in-process on port 0 or as the real `davit` process.

mod api;
mod files;
mod format;
mod migrate;
mod ops;
mod ops_metrics;
mod process;
mod s3;
mod s3_sdk;
mod s3_sign;
mod security;
mod seeds;
mod server;
mod sharing;
mod smtp;
mod support;
mod trash;
mod versions;
mod webdav;
