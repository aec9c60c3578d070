//! The snapshot file behind `memory://?snapshot=PATH`.

use std::io::Write;
use std::path::Path;

use crate::error::OpenError;

fn io(path: &Path, source: std::io::Error) -> OpenError {
    OpenError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The file's bytes, or `None` if it does not exist yet (a new store).
pub(crate) fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, OpenError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames
/// it over `path`: readers see the old file or the new one, never half.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OpenError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".to_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, e));
    }
    Ok(())
}
