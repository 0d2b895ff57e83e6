//! Mapping a request path to a file under the root, refusing anything
//! that would leave it: the path's relative form (no file system access)
//! and its real location (symlinks followed, for the opener threads).

use crate::status::Status;
use std::path::{Path, PathBuf};

/// The path `raw_path` (percent-encoded, starting with `/`) names,
/// relative to the root: empty and `.` segments dropped.
///
/// Any `..` segment, before or after percent-decoding, is refused with 403;
/// a malformed escape or a NUL with 400; a path that is not UTF-8 with 404.
pub fn relative(raw_path: &[u8]) -> Result<PathBuf, Status> {
    let decoded = percent_decode(raw_path).ok_or(Status::BadRequest)?;
    if decoded.contains(&0) {
        return Err(Status::BadRequest);
    }
    let text = std::str::from_utf8(&decoded).map_err(|_| Status::NotFound)?;
    let mut path = PathBuf::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(Status::Forbidden),
            s => path.push(s),
        }
    }
    Ok(path)
}

/// The real location of `relative` (from [`relative`]) under `root` (which
/// must be canonical), following symlinks, and whether it is a folder's
/// `index.html`. A path whose real location is outside the root is
/// refused with 403; a folder resolves to its `index.html`. Reads the
/// file system, so it may wait on the disk: the opener threads call it.
pub fn resolve(root: &Path, relative: &Path) -> Result<(PathBuf, bool), Status> {
    let mut real = root
        .join(relative)
        .canonicalize()
        .map_err(|e| io_status(&e))?;
    if !real.starts_with(root) {
        return Err(Status::Forbidden);
    }
    let index = real.is_dir();
    if index {
        real = real
            .join("index.html")
            .canonicalize()
            .map_err(|e| io_status(&e))?;
        if !real.starts_with(root) {
            return Err(Status::Forbidden);
        }
    }
    Ok((real, index))
}

/// The status for a failed open or lookup: 404 only when the file is
/// truly not there, 503 when the server is short of descriptors or memory
/// (a passing condition, which a cache must not keep as "not found"), 500
/// for anything else.
pub(crate) fn io_status(e: &std::io::Error) -> Status {
    if matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EAGAIN)
    ) {
        return Status::ServiceUnavailable;
    }
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Status::NotFound;
    }
    match e.kind() {
        std::io::ErrorKind::NotFound
        | std::io::ErrorKind::NotADirectory
        | std::io::ErrorKind::InvalidFilename => Status::NotFound,
        std::io::ErrorKind::PermissionDenied => Status::Forbidden,
        _ => Status::InternalError,
    }
}

/// `%XX` decoding; `None` on a malformed escape.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (PathBuf, PathBuf) {
        let base =
            gyre_testkit::scratch_root().join(format!("gyre-resolve-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a b.txt"), b"a").unwrap();
        std::fs::write(root.join("sub/index.html"), b"i").unwrap();
        std::fs::write(base.join("secret"), b"s").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("secret"), root.join("link"));
        (base.clone(), root.canonicalize().unwrap())
    }

    #[test]
    fn resolves_inside_and_refuses_outside() {
        let (base, root) = root();
        let full = |raw: &[u8]| relative(raw).and_then(|rel| resolve(&root, &rel));
        assert_eq!(full(b"/a%20b.txt").unwrap(), (root.join("a b.txt"), false));
        assert_eq!(
            full(b"/./sub/").unwrap(),
            (root.join("sub/index.html"), true)
        );
        assert_eq!(full(b"/sub").unwrap(), (root.join("sub/index.html"), true));
        for attack in [
            &b"/../secret"[..],
            b"/sub/../../secret",
            b"/%2e%2e/secret",
            b"/%2E%2E%2Fsecret",
            b"/sub/..%2f..%2fsecret",
            b"/link",
        ] {
            assert_eq!(
                full(attack),
                Err(Status::Forbidden),
                "{}",
                String::from_utf8_lossy(attack)
            );
        }
        assert_eq!(full(b"/missing"), Err(Status::NotFound));
        assert_eq!(full(b"/"), Err(Status::NotFound));
        assert_eq!(relative(b"/%zz"), Err(Status::BadRequest));
        assert_eq!(relative(b"/a%00"), Err(Status::BadRequest));
        assert_eq!(relative(b"//a/./b/").unwrap(), PathBuf::from("a/b"));
        let _ = std::fs::remove_dir_all(base);
    }
}
