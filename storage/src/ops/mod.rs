//! Running a deployment for years: changing the master key, live backups and their restore.

pub mod backup;
pub mod rotate;

pub use backup::{BACKUP_COMPLETE, BackupReport, restore};
pub use rotate::{Rotated, rotate_master_key};

#[cfg(test)]
mod tests;
