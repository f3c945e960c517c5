//! Routing quality floors: `switchyard-bench routing-eval --check` on the public intent sets
//! (docs/routing.md), run as a user runs it. With the encoder (`SWITCHYARD_ENCODER_DIR`, as
//! CI sets it) the default configuration is held to the encoder's floors; the lexical model
//! alone to its own on every set. The sets with every example and the encoder take minutes
//! each; docs/routing.md gives the command that checks them.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard-bench");

fn encoder_dir() -> Option<String> {
    let dir = std::env::var("SWITCHYARD_ENCODER_DIR").ok();
    assert!(
        dir.is_some() || std::env::var_os("SWITCHYARD_REQUIRE_ENCODER").is_none(),
        "SWITCHYARD_REQUIRE_ENCODER is set but SWITCHYARD_ENCODER_DIR is not"
    );
    dir
}

/// Runs `routing-eval --check` with `args`; returns its lines.
fn eval(args: &[&str], encoder: Option<&str>) -> Vec<String> {
    let mut command = Command::new(BIN);
    command.arg("routing-eval").arg("--check").args(args);
    command.env_remove("SWITCHYARD_ENCODER_DIR");
    if let Some(dir) = encoder {
        command.arg("--encoder-dir").arg(dir);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

fn lines_for<'a>(lines: &'a [String], mode: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| l.starts_with("routing-eval ") && l.ends_with(&format!("mode={mode}")))
        .collect()
}

#[test]
fn ten_shot_tenants_route_above_their_floors() {
    let encoder = encoder_dir();
    let lines = eval(&["--only=-10", "--variants", "default"], encoder.as_deref());
    let mode = if encoder.is_some() {
        "default"
    } else {
        "lexical"
    };
    let routed = lines_for(&lines, mode);
    assert_eq!(routed.len(), 3, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("checked ")).count(),
        3
    );
    for line in routed {
        for field in [
            "top1=",
            "routed_right=",
            "false_fallback=",
            "oos_at_ff3=",
            "ece=",
            "p50_us=",
            "p99_us=",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
    }
}

#[test]
fn the_lexical_model_alone_routes_above_its_floors_on_every_set() {
    let lines = eval(&["--variants", "lexical"], None);
    assert_eq!(lines_for(&lines, "lexical").len(), 6, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("checked ")).count(),
        6
    );
}

/// With examples of messages to refuse on the fallback agent (docs/routing.md, "Messages to
/// refuse"), the left-out messages like them are caught above their floors, and each set
/// says how many of the others were.
#[test]
fn refuse_examples_on_the_fallback_agent_catch_what_they_name() {
    let lines = eval(&["--variants", "lexical", "--refusals"], None);
    assert_eq!(lines_for(&lines, "lexical-refusals").len(), 6, "{lines:?}");
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("routing-eval-refusals "))
        .collect();
    assert_eq!(refusals.len(), 6, "{lines:?}");
    for line in refusals {
        for field in [
            "anticipated_caught=",
            "unanticipated_caught=",
            "anticipated_at_ff3=",
            "unanticipated_at_ff3=",
            "ff_at_ff3=",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("checked ") && l.ends_with("refusal floors"))
            .count(),
        6
    );
}

/// `embed` writes the whole encoder's vector of each line (what `bench/routing_baselines.py`
/// measures other classifiers on): one unit-length row per line, paraphrases closer than an
/// unrelated message.
#[test]
fn embed_writes_one_unit_vector_per_line() {
    let Some(dir) = encoder_dir() else {
        eprintln!("skipped: no SWITCHYARD_ENCODER_DIR");
        return;
    };
    let mut child = Command::new(BIN)
        .args(["embed", "--encoder-dir", &dir])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                b"my card has not arrived yet\nwhere is my new card\nset an alarm for seven\n",
            )
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let floats: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(out.stdout.len() % 4, 0);
    assert_eq!(floats.len(), 3 * 384, "all-MiniLM-L6-v2 has 384 dimensions");
    let rows: Vec<&[f32]> = floats.chunks_exact(384).collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for r in &rows {
        assert!(
            (dot(r, r) - 1.0).abs() < 1e-3,
            "not unit length: {}",
            dot(r, r)
        );
    }
    assert!(
        dot(rows[0], rows[1]) > dot(rows[0], rows[2]) + 0.2,
        "paraphrases {} vs unrelated {}",
        dot(rows[0], rows[1]),
        dot(rows[0], rows[2])
    );
}
