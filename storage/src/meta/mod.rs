//! The metadata: the redb store and its tables, write transactions and the helpers rules
//! build on, the stored types, names and paths, and the on-disk format with its
//! migrations. Nothing here decides who may do what; every rule sits above and calls down.

pub mod db;
pub mod format;
pub(crate) mod kv;
pub(crate) mod grant_rows;
pub mod model;
pub mod names;
pub(crate) mod txn;
pub(crate) mod uploads;
