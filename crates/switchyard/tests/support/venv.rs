//! A Python virtual environment under `target/`, made on first use with the pinned
//! requirements of a test (tools from PyPI that are not written here: the OpenAI client, an
//! OpenAPI validator).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The python of `target/<name>`, in which `import` works, made from `requirements` (relative
/// to this crate) if missing; `None` if it cannot be made (no Python, no package index).
pub fn python(name: &str, import: &str, requirements: &str) -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = here.join("../../target").join(name);
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", &format!("import {import}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(here.join(requirements))
            .status()
            .is_ok_and(|s| s.success());
    (made && ok(&python)).then_some(python)
}
