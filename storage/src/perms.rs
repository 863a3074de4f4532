//! The data folder holds secrets (the master key, the database with password hashes and
//! key secrets, mailed codes in the outbox): only the user davit runs as may read any of it.
//! Folders are made 0700 and files 0600 whatever the process umask (the binary's `main` is
//! not the place: the admin commands and embedders open the storage too).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` (and missing parents) as a private folder; an existing one is left as is.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(DIR_MODE);
    b.create(path)
}

/// Creates the one private folder `path` unless it is there: unlike [`create_private_dir`],
/// its parent must exist (`NotFound` otherwise), so a caller learns that a level above is
/// missing (and must make it, and make its entry durable, itself).
pub fn make_private_dir(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    b.mode(DIR_MODE);
    match b.create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Removes group and other bits from `path` if it has any; returns the mode it had when it
/// changed it, so the caller can say so.
pub fn tighten(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(Some(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(None)
}

/// `create_private_dir`, then `tighten_logged` for a folder that already existed.
pub fn private_dir(path: &Path) -> io::Result<()> {
    create_private_dir(path)?;
    tighten_logged(path);
    Ok(())
}

/// `tighten`, saying in the log what it changed. A mode that cannot be changed (a folder of
/// another user, a file system without modes) is only warned about: the operator chose it.
pub fn tighten_logged(path: &Path) {
    match tighten(path) {
        Ok(Some(was)) => tracing::warn!(
            path = %path.display(),
            was = %format!("0{was:o}"),
            "was readable by other users: made it private (mode 0{:o})",
            was & 0o700
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not make it private (mode 0700/0600)"),
    }
}

/// Options that create a file readable by its owner only.
pub fn private_file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    o.mode(FILE_MODE);
    o
}

/// A new private file at `path` (truncated if it exists), for writing.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    private_file_options().write(true).create(true).truncate(true).open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn folders_0700_files_0600_whatever_the_umask_and_loose_ones_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let d = tmp.path().join("a/b");
        create_private_dir(&d).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&d)), (0o700, 0o700));
        let f = d.join("f");
        create_private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        let loose = tmp.path().join("loose");
        fs::create_dir(&loose).unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o700);
        assert_eq!(tighten(&loose).unwrap(), None, "nothing to change the second time");
        let g = loose.join("g");
        fs::write(&g, b"x").unwrap();
        fs::set_permissions(&g, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tighten(&g).unwrap(), Some(0o644));
        assert_eq!(mode(&g), 0o600);
    }
}
