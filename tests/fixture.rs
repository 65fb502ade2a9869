//! The committed fixture world: an audit bundle written by format version 2 (two agents,
//! receipts, checkpoints, snapshots, a key rotation). Every later host must open, verify and
//! replay it, or refuse it naming both versions. `AGENTOS_BLESS=1` writes a new fixture.

mod common;
use common::*;

use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format-v2.agentos")
}

fn expected_file() -> PathBuf {
    fixture().with_extension("json")
}

/// Build the fixture world and export it (only with `AGENTOS_BLESS=1`).
fn bless() {
    let (scratch, dir) = init("hello");
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "[agents.hello]",
        "[modules.counter]\ncomponent = \"modules/counter.wasm\"\n\n[agents.counter]\nmodule = \"counter\"\nsnapshot_every = 2\n\n[agents.hello]",
    );
    std::fs::write(&manifest, text + "snapshot_every = 2\n").unwrap();
    std::fs::copy(
        agentos_host::components::ensure_built("counter").unwrap(),
        dir.join("modules/counter.wasm"),
    )
    .unwrap();
    for name in ["ada", "bob"] {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
        ok(&["send", s(&dir), "counter", "increment(2)"]);
    }
    ok(&["rotate-key", s(&dir)]);
    ok(&["send", s(&dir), "hello", r#"greet("cy")"#]);
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
    let bundle = scratch.path().join("bundle");
    ok(&["export", s(&dir), s(&bundle)]);
    std::fs::create_dir_all(fixture().parent().unwrap()).unwrap();
    std::fs::copy(&bundle, fixture()).unwrap();
    let replay: serde_json::Value = serde_json::from_str(&ok(&["replay", s(&dir), "--json"])).unwrap();
    let expected = serde_json::json!({ "verify": report, "agent_states": replay["agent_states"] });
    std::fs::write(expected_file(), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
}

#[test]
fn the_format_2_fixture_world_opens_verifies_and_replays() {
    if std::env::var_os("AGENTOS_BLESS").is_some() {
        bless();
    }
    let fixture = fixture();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(expected_file()).unwrap()).unwrap();
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&fixture), "--json"])).unwrap();
    // Later hosts report more (governance counts): what the fixture's host reported must match,
    // and a format-2 world has none of the rest.
    for (field, value) in report.as_object().unwrap() {
        let expected = expected["verify"].get(field).cloned().unwrap_or(0.into());
        assert_eq!(*value, expected, "verify report field `{field}`");
    }
    assert_eq!(report["key_rotations"], 1);
    assert!(report["snapshots"].as_u64().unwrap() >= 2, "{report}");
    for from in [&[][..], &["--from", "latest"][..]] {
        let mut args = vec!["replay", s(&fixture), "--json"];
        args.extend_from_slice(from);
        let replay: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert!(replay["divergence"].is_null(), "{replay}");
        assert_eq!(replay["agent_states"], expected["agent_states"]);
    }
    // A receipt from before the key rotation proves from the genesis key alone.
    let scratch = tempfile::tempdir().unwrap();
    let proof = scratch.path().join("proof.json");
    let receipt = log_json(&fixture)
        .iter()
        .find(|e| e["kind"] == "effect-receipt")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    ok(&["prove", s(&fixture), &receipt.to_string(), "-o", s(&proof)]);
    ok(&[
        "verify-proof",
        s(&proof),
        "--public-key",
        expected["verify"]["public_key"].as_str().unwrap(),
    ]);
}

#[test]
fn a_journal_from_a_later_format_is_refused_naming_both_versions() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        txn.open_table(meta)
            .unwrap()
            .insert("format_version", 99u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    for args in [
        &["verify", s(&dir)][..],
        &["send", s(&dir), "counter", "increment(1)"][..],
    ] {
        let error = fails(args, 2);
        assert!(
            error.contains("has format version 99, this host reads versions 1 to 3"),
            "{error}"
        );
    }
}
