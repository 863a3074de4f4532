//! File bytes: chunk files and their backend, sealing on the way in (`ingest`), opening and
//! ranged reads on the way out (`read`), the sweep of unreferenced chunks, and `check`,
//! which compares the chunks with the metadata.

pub(crate) mod check;
pub mod chunks;
pub(crate) mod grace;
#[cfg(test)]
mod grace_tests;
pub(crate) mod ingest;
pub(crate) mod read;
