//! Per-bucket settings S3 clients make (a bucket is a top-level folder of its owner's drive)
//! and the rules that read them. Rows are keyed by the folder's id, so a setting follows the
//! folder through a rename and dies with it.

pub mod cors;
