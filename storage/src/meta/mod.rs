//! The metadata: the store and its tables, write transactions and the helpers rules
//! build on, the stored types, names and paths, and the on-disk format with its
//! migrations. Nothing here decides who may do what; every rule sits above and calls down.
//!
//! The engine (redb) is named in `kv` alone: every table access, here and in the rules,
//! goes through its transaction and table types, so another engine fits below `kv`.

pub(crate) mod copy;
pub mod db;
pub mod format;
pub(crate) mod grant_rows;
pub(crate) mod kv;
pub mod model;
pub mod names;
pub(crate) mod subtree;
pub(crate) mod tags;
pub(crate) mod txn;
pub(crate) mod uploads;
