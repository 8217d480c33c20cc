//! The kernelspec: where Jupyter looks for kernels, and `kettle install` / `kettle uninstall`.
//!
//! A kernelspec is a directory `<data dir>/kernels/<name>/` holding `kernel.json` (how to start
//! the kernel) and optional logos; see
//! <https://jupyter-client.readthedocs.io/en/stable/kernels.html#kernel-specs>.
//! The data directories follow `jupyter --paths`
//! (<https://docs.jupyter.org/en/latest/use/jupyter-directories.html>).

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernelspec name used when `--name` is not given; notebooks record it in their metadata.
pub const DEFAULT_NAME: &str = "kettle";

/// The name shown in JupyterLab's launcher when `--display-name` is not given.
pub const DEFAULT_DISPLAY_NAME: &str = "Rust (kettle)";

/// 32x32 logo, drawn by `kernel/assets/make_logos.py` (committed so builds need no Python).
pub const LOGO_32: &[u8] = include_bytes!("../assets/logo-32x32.png");

/// 64x64 logo, drawn by `kernel/assets/make_logos.py`.
pub const LOGO_64: &[u8] = include_bytes!("../assets/logo-64x64.png");

/// Which Jupyter data directory a kernelspec goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The user's data dir: `$JUPYTER_DATA_DIR`, else `~/.local/share/jupyter` (Linux) or
    /// `~/Library/Jupyter` (macOS). Jupyter's `--user`.
    User,
    /// `<sys.prefix>/share/jupyter` of the active Python (a virtualenv when one is active).
    SysPrefix,
    /// `<DIR>/share/jupyter`.
    Prefix(PathBuf),
}

/// What to install and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    pub location: Location,
    /// Directory name under `kernels/`; Jupyter matches it case-insensitively, so keep it
    /// lowercase ASCII.
    pub name: String,
    pub display_name: String,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            location: Location::User,
            name: DEFAULT_NAME.into(),
            display_name: DEFAULT_DISPLAY_NAME.into(),
        }
    }
}

/// The contents of `kernel.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelSpec {
    /// Command line; Jupyter substitutes `{connection_file}`.
    pub argv: Vec<String>,
    pub display_name: String,
    pub language: String,
    /// "message": Jupyter sends `interrupt_request` on the control channel instead of SIGINT.
    /// The kernel runs user code in a child process, so a signal to the kernel would not reach
    /// it anyway, and messages also work on platforms without signals.
    pub interrupt_mode: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl KernelSpec {
    /// The spec that starts `exe` as a kernel. `exe` should be absolute: Jupyter starts kernels
    /// from the notebook's directory with its own `PATH`.
    pub fn for_executable(exe: &Path, display_name: &str) -> KernelSpec {
        KernelSpec {
            argv: vec![
                exe.to_string_lossy().into_owned(),
                "kernel".into(),
                "--connection-file".into(),
                "{connection_file}".into(),
                // A restarted kernel takes over a spare prepared while it was idle.
                "--spare".into(),
            ],
            display_name: display_name.into(),
            language: "rust".into(),
            interrupt_mode: "message".into(),
            metadata: serde_json::Map::new(),
        }
    }
}

/// The environment variables that decide where the user's data directory is. Split out so
/// tests can resolve paths without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct PathEnv {
    pub jupyter_data_dir: Option<OsString>,
    pub home: Option<OsString>,
    pub virtual_env: Option<OsString>,
}

impl PathEnv {
    /// Reads the variables of this process.
    pub fn from_process() -> PathEnv {
        PathEnv {
            jupyter_data_dir: non_empty_var("JUPYTER_DATA_DIR"),
            home: non_empty_var("HOME"),
            virtual_env: non_empty_var("VIRTUAL_ENV"),
        }
    }
}

fn non_empty_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The Jupyter data directory (the one that holds `kernels/`) for `location`.
pub fn data_dir(location: &Location, env: &PathEnv) -> Result<PathBuf> {
    match location {
        Location::User => user_data_dir(env),
        Location::SysPrefix => Ok(sys_prefix(env)?.join("share").join("jupyter")),
        Location::Prefix(dir) => Ok(absolute(dir)?.join("share").join("jupyter")),
    }
}

fn user_data_dir(env: &PathEnv) -> Result<PathBuf> {
    if let Some(dir) = &env.jupyter_data_dir {
        return absolute(Path::new(dir));
    }
    let home = env.home.as_ref().map(PathBuf::from).context(
        "cannot find the Jupyter data directory: neither JUPYTER_DATA_DIR nor HOME is set",
    )?;
    // Same per-OS defaults as jupyter_core.paths.jupyter_data_dir().
    if cfg!(target_os = "macos") {
        Ok(home.join("Library").join("Jupyter"))
    } else {
        Ok(home.join(".local").join("share").join("jupyter"))
    }
}

/// `sys.prefix` of the Python the user would run `jupyter` with.
fn sys_prefix(env: &PathEnv) -> Result<PathBuf> {
    // An activated virtualenv sets VIRTUAL_ENV, and its sys.prefix is that directory; this
    // also works when the venv has no `python3` on PATH yet.
    if let Some(venv) = &env.virtual_env {
        return absolute(Path::new(venv));
    }
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .context("--sys-prefix needs python3 to find sys.prefix, and it could not be started")?;
    if !output.status.success() {
        bail!(
            "python3 failed while asking for sys.prefix: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let prefix = String::from_utf8(output.stdout).context("sys.prefix is not UTF-8")?;
    let prefix = prefix.trim();
    if prefix.is_empty() {
        bail!("python3 printed an empty sys.prefix");
    }
    Ok(PathBuf::from(prefix))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Checks a kernelspec name: Jupyter accepts ASCII letters, digits, `.`, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "invalid kernel name {name:?}: use ASCII letters, digits, '.', '_' and '-' (Jupyter's rule)"
        );
    }
    Ok(())
}

/// Writes the kernelspec for `exe` under `data_dir/kernels/<name>` and returns that directory.
/// Idempotent: an existing spec of the same name is replaced.
pub fn install_into(
    data_dir: &Path,
    name: &str,
    display_name: &str,
    exe: &Path,
) -> Result<PathBuf> {
    validate_name(name)?;
    let dir = data_dir.join("kernels").join(name);
    // Remove first, so files a former version wrote do not linger next to the new ones.
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let spec = KernelSpec::for_executable(exe, display_name);
    let mut json = serde_json::to_string_pretty(&spec)?;
    json.push('\n');
    write(&dir.join("kernel.json"), json.as_bytes())?;
    write(&dir.join("logo-32x32.png"), LOGO_32)?;
    write(&dir.join("logo-64x64.png"), LOGO_64)?;
    Ok(dir)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Removes `data_dir/kernels/<name>`; returns it if it existed.
pub fn uninstall_from(data_dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    validate_name(name)?;
    let dir = data_dir.join("kernels").join(name);
    if !dir.exists() {
        return Ok(None);
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(Some(dir))
}

/// The absolute path of the running kettle binary, symlinks resolved, so the spec keeps
/// working whatever the current directory of whoever starts it.
pub fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the path of the kettle executable")?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

/// `kettle install`: installs the spec for the running binary; returns the spec directory.
pub fn install(options: &InstallOptions) -> Result<PathBuf> {
    let data_dir = data_dir(&options.location, &PathEnv::from_process())?;
    install_into(
        &data_dir,
        &options.name,
        &options.display_name,
        &current_exe()?,
    )
}

/// `kettle uninstall`: returns the removed directory, or `None` if nothing was installed.
pub fn uninstall(location: &Location, name: &str) -> Result<Option<PathBuf>> {
    let data_dir = data_dir(location, &PathEnv::from_process())?;
    uninstall_from(&data_dir, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop (std only, so the kernel
    /// needs no extra dev-dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("kettle-install-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read_json(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn kernel_json_has_absolute_argv_and_message_interrupts() {
        let tmp = TempDir::new("json");
        let dir = install_into(
            &tmp.0,
            "kettle",
            "Rust (kettle)",
            Path::new("/opt/bin/kettle"),
        )
        .unwrap();
        assert_eq!(dir, tmp.0.join("kernels").join("kettle"));
        let expected = serde_json::json!({
            "argv": ["/opt/bin/kettle", "kernel", "--connection-file", "{connection_file}", "--spare"],
            "display_name": "Rust (kettle)",
            "language": "rust",
            "interrupt_mode": "message",
            "metadata": {}
        });
        assert_eq!(read_json(&dir.join("kernel.json")), expected);
    }

    #[test]
    fn install_writes_both_logos_as_png() {
        let tmp = TempDir::new("logos");
        let dir = install_into(&tmp.0, "kettle", "Rust (kettle)", Path::new("/k")).unwrap();
        for (file, size) in [("logo-32x32.png", 32u32), ("logo-64x64.png", 64)] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{file} is not a PNG");
            // IHDR is the first chunk: width and height are big-endian u32 at offsets 16 and 20.
            let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
            assert_eq!((width, height), (size, size), "{file} has the wrong size");
        }
    }

    #[test]
    fn reinstall_overwrites_and_removes_stale_files() {
        let tmp = TempDir::new("reinstall");
        let dir = install_into(&tmp.0, "kettle", "Old", Path::new("/old/kettle")).unwrap();
        std::fs::write(dir.join("stale.txt"), "left from an older version").unwrap();
        let again = install_into(&tmp.0, "kettle", "New", Path::new("/new/kettle")).unwrap();
        assert_eq!(dir, again);
        let json = read_json(&dir.join("kernel.json"));
        assert_eq!(json["display_name"], "New");
        assert_eq!(json["argv"][0], "/new/kettle");
        assert!(!dir.join("stale.txt").exists());
    }

    #[test]
    fn uninstall_removes_only_the_named_spec() {
        let tmp = TempDir::new("uninstall");
        install_into(&tmp.0, "kettle", "A", Path::new("/k")).unwrap();
        install_into(&tmp.0, "kettle-dev", "B", Path::new("/k")).unwrap();
        let removed = uninstall_from(&tmp.0, "kettle").unwrap();
        assert_eq!(removed, Some(tmp.0.join("kernels").join("kettle")));
        assert!(
            tmp.0
                .join("kernels")
                .join("kettle-dev")
                .join("kernel.json")
                .exists()
        );
        assert_eq!(uninstall_from(&tmp.0, "kettle").unwrap(), None);
    }

    #[test]
    fn rejects_names_jupyter_would_not_find() {
        for bad in ["", "has space", "a/b", "../up", "ké"] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in ["kettle", "kettle-dev", "rust_1.95"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn user_location_prefers_jupyter_data_dir() {
        let env = PathEnv {
            jupyter_data_dir: Some("/data/jupyter".into()),
            home: Some("/home/u".into()),
            virtual_env: None,
        };
        assert_eq!(
            data_dir(&Location::User, &env).unwrap(),
            PathBuf::from("/data/jupyter")
        );
    }

    #[test]
    fn user_location_defaults_under_home() {
        let env = PathEnv {
            home: Some("/home/u".into()),
            ..PathEnv::default()
        };
        let expected = if cfg!(target_os = "macos") {
            "/home/u/Library/Jupyter"
        } else {
            "/home/u/.local/share/jupyter"
        };
        assert_eq!(
            data_dir(&Location::User, &env).unwrap(),
            PathBuf::from(expected)
        );
    }

    #[test]
    fn sys_prefix_uses_the_active_virtualenv() {
        let env = PathEnv {
            virtual_env: Some("/proj/.venv".into()),
            ..PathEnv::default()
        };
        assert_eq!(
            data_dir(&Location::SysPrefix, &env).unwrap(),
            PathBuf::from("/proj/.venv/share/jupyter")
        );
    }

    #[test]
    fn prefix_location_is_dir_share_jupyter() {
        let env = PathEnv::default();
        assert_eq!(
            data_dir(&Location::Prefix("/usr/local".into()), &env).unwrap(),
            PathBuf::from("/usr/local/share/jupyter")
        );
    }
}
