//! Fault injection for tests: a small disk of its own (a tmpfs) and ballast files that fill it.

use std::path::{Path, PathBuf};

/// A tmpfs of a fixed size mounted on a fresh folder; unmounted when dropped. Needs root.
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes`; None (with the reason on stderr) where mounting is not
    /// allowed, so the caller can skip and say why.
    pub fn mount(bytes: u64) -> Option<SmallDisk> {
        let path = super::process::fresh_dir();
        std::fs::create_dir_all(&path).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            let _ = std::fs::remove_dir(&path);
            return None;
        }
        Some(SmallDisk { path })
    }

    /// Free bytes on the disk now.
    pub fn free(&self) -> u64 {
        fs4::available_space(&self.path).unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A file taking `bytes` of real disk space; removed when dropped (or by `remove`).
pub struct Ballast(PathBuf);

impl Ballast {
    pub fn new(path: &Path, bytes: u64) -> Ballast {
        let made = std::process::Command::new("fallocate")
            .args(["-l", &bytes.to_string()])
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(made, "fallocate is needed for this test (util-linux)");
        Ballast(path.to_path_buf())
    }

    pub fn remove(self) {}
}

impl Drop for Ballast {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
