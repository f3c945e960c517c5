//! `switchyard serve` and the sentence encoder: the start line says whether routing uses it,
//! and a model directory that cannot be used stops the start with one line naming the
//! setting and the file — nothing half-loaded serves. The cases that need the real model
//! (`SWITCHYARD_ENCODER_DIR`) say so and pass without it, unless `SWITCHYARD_REQUIRE_ENCODER`
//! is set (as CI sets it).

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("SWITCHYARD_ENCODER_DIR") {
        Some(dir) => Some(dir.into()),
        None => {
            assert!(
                std::env::var_os("SWITCHYARD_REQUIRE_ENCODER").is_none(),
                "SWITCHYARD_REQUIRE_ENCODER is set but SWITCHYARD_ENCODER_DIR is not"
            );
            eprintln!("skipped: set SWITCHYARD_ENCODER_DIR=$(scripts/fetch-encoder) to run");
            None
        }
    }
}

fn serve(encoder: Option<&Path>) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "SWITCHYARD_DATABASE_URL",
            format!(
                "sqlite://{}",
                switchyard_store::testing::sqlite_path().display()
            ),
        )
        .env("SWITCHYARD_BIND", "127.0.0.1:0");
    // The static table distilled from the model is cached where the developer's is.
    for var in ["HOME", "XDG_CACHE_HOME", "SWITCHYARD_ENCODER_CACHE_DIR"] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    if let Some(dir) = encoder {
        command.env("SWITCHYARD_ENCODER_DIR", dir);
    }
    command
}

/// Starts the server and returns its log up to the routing line, then stops it.
fn routing_line(encoder: Option<&Path>) -> String {
    let mut child = serve(encoder)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let found = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break None;
        }
        if line.contains("routing:") {
            break Some(line.clone());
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    found.unwrap_or_else(|| panic!("the server never said how it routes"))
}

/// Starts the server, which must refuse; returns its one line of error.
fn refused(dir: &Path) -> String {
    let out = serve(Some(dir)).output().unwrap();
    assert!(
        !out.status.success(),
        "the server started with {}",
        dir.display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("SWITCHYARD_ENCODER_DIR"), "{stderr}");
    lines[0].to_owned()
}

#[test]
fn the_start_line_says_whether_routing_uses_the_encoder() {
    let lexical = routing_line(None);
    assert!(lexical.contains("lexical only"), "{lexical}");
    let Some(dir) = model_dir() else { return };
    let line = routing_line(Some(&dir));
    assert!(
        line.contains("in-process encoder") && line.contains("384 dimensions"),
        "{line}"
    );
}

#[test]
fn a_model_directory_that_cannot_be_used_stops_the_start() {
    let line = refused(Path::new("/nonexistent/model"));
    assert!(line.contains("/nonexistent/model"), "{line}");
    let Some(model) = model_dir() else { return };
    // Another architecture: the line names config.json.
    let dir = switchyard_store::testing::sqlite_path().with_extension("model");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["tokenizer.json", "model.safetensors"] {
        std::os::unix::fs::symlink(model.join(file), dir.join(file)).unwrap();
    }
    let config = std::fs::read_to_string(model.join("config.json"))
        .unwrap()
        .replace("\"bert\"", "\"gpt2\"")
        .replace("\"BertModel\"", "\"GPT2Model\"");
    std::fs::write(dir.join("config.json"), config).unwrap();
    let line = refused(&dir);
    assert!(
        line.contains("config.json") && line.contains("not a BERT-family model"),
        "{line}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
