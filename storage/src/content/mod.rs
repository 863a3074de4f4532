//! File bytes: chunk files and their backends (a local folder, or an S3-compatible cluster
//! behind a local read cache), sealing on the way in (`ingest`), opening and
//! ranged reads on the way out (`read`), the sweep of unreferenced chunks, and `check`,
//! which compares the chunks with the metadata.

pub mod cache;
mod cdc;
pub(crate) mod check;
pub mod chunks;
pub mod costs;
pub(crate) mod direct;
pub(crate) mod grace;
#[cfg(test)]
mod grace_tests;
pub(crate) mod ingest;
pub(crate) mod read;
pub mod s3;
#[cfg(test)]
pub(crate) mod s3_tests;
