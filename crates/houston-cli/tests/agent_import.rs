//! `houston agent import|export|list` on the eight Houston agent definitions in the shared
//! fixtures (read in place), plus a malformed definition.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn houston(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_houston")).args(args).output().unwrap()
}

fn definitions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/houston-agents")
}

/// Returns false, with a visible message, when the fixtures are absent (a clone outside
/// this project's CI has no shared fixtures folder).
fn fixtures_present() -> bool {
    let present = definitions().is_dir();
    if !present {
        eprintln!("skipping: {} is absent", definitions().display());
    }
    present
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const AGENTS: [&str; 8] = ["bookkeeping", "legal", "marketing", "operations", "outbound", "people", "sales", "support"];

#[test]
fn agent_import_all_eight_definitions() {
    if !fixtures_present() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    for name in AGENTS {
        let source = definitions().join(name);
        let target = home.path().join(name);
        let output = houston(&["agent", "import", source.to_str().unwrap(), "--into", target.to_str().unwrap()]);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        assert!(text(&output.stdout).starts_with(&format!("imported {name} (")), "{}", text(&output.stdout));

        let definition: Value = serde_json::from_str(&std::fs::read_to_string(source.join("houston.json")).unwrap()).unwrap();
        for (seed, content) in definition["agentSeeds"].as_object().unwrap() {
            let written = std::fs::read_to_string(target.join(seed)).unwrap_or_else(|_| panic!("{name}: seed {seed} missing"));
            assert_eq!(written, content.as_str().unwrap(), "{name}: seed {seed}");
        }
        assert!(target.join("CLAUDE.md").is_file());
        assert!(target.join(".agents/skills").is_dir());
        assert!(target.join(".houston/agent.json").is_file());
    }

    let listing = houston(&["agent", "list", home.path().to_str().unwrap()]);
    assert!(listing.status.success());
    let lines: Vec<String> = text(&listing.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert!(lines.iter().any(|line| line.starts_with("people\tHead of Talent\t")), "{lines:?}");
}

#[test]
fn agent_export_round_trips_definition() {
    if !fixtures_present() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let agent = home.path().join("people");
    let source = definitions().join("people");
    assert!(houston(&["agent", "import", source.to_str().unwrap(), "--into", agent.to_str().unwrap()]).status.success());
    std::fs::create_dir_all(agent.join(".houston/sessions/juan")).unwrap();
    std::fs::write(agent.join(".houston/sessions/juan/s1.jsonl"), "{}\n").unwrap();

    let exported = home.path().join("exported");
    let output = houston(&["agent", "export", agent.to_str().unwrap(), "--to", exported.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let original: Value = serde_json::from_str(&std::fs::read_to_string(source.join("houston.json")).unwrap()).unwrap();
    let again: Value = serde_json::from_str(&std::fs::read_to_string(exported.join("houston.json")).unwrap()).unwrap();
    assert_eq!(again, original);
    assert!(!exported.join(".houston").exists(), "sessions never leave with an export");
}

#[test]
fn agent_import_reports_malformed_field() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("broken");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("houston.json"), r#"{"id": "x", "name": "X", "agentSeeds": {"../../etc/cron.d/x": "boom"}}"#).unwrap();
    let target = home.path().join("target");
    let output = houston(&["agent", "import", source.to_str().unwrap(), "--into", target.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("houston.json"), "{stderr}");
    assert!(stderr.contains("agentSeeds.../../etc/cron.d/x"), "{stderr}");
    assert!(!target.exists(), "nothing is written for a rejected definition");

    std::fs::write(source.join("houston.json"), r#"{"id": "x", "name": ["X"]}"#).unwrap();
    let output = houston(&["agent", "import", source.to_str().unwrap(), "--into", target.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("field `name`: invalid type"), "{stderr}");
}
