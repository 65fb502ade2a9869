//! The committed fixture worlds: audit bundles written by format version 2 (two agents, receipts,
//! checkpoints, snapshots, a key rotation), version 3 (the same, plus governance: proposals by
//! a person and by an agent, a shadow run, approvals, a rejection, manifest changes) and version 4
//! (the same, plus a plan and its run), version 5 (the same, every entry signed by the
//! checkpoint that ends its commit) and version 6 (the same). Every later host must open, verify
//! and replay them, or refuse them naming both versions, and must say which guarantee each one
//! has. `AGENTOS_BLESS=1` writes a new fixture of the current format (older ones stay as
//! written).

use crate::common::*;

use std::path::PathBuf;

fn fixture(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/format-v{version}.agentos"))
}

fn expected_file(version: u32) -> PathBuf {
    fixture(version).with_extension("json")
}

/// The current format's fixture world, built and exported (only with `AGENTOS_BLESS=1`).
fn bless() {
    let (scratch, dir) = init("hello");
    let keys = scratch.path().join("keys");
    let person = |args: &[&str]| {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", &keys);
        ok_with(command, args)
    };
    let created: serde_json::Value = serde_json::from_str(&person(&["keys", "new", "ada", "--json"])).unwrap();
    let ada = created["public_key"].as_str().unwrap().to_string();
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "[agents.hello]",
        "[modules.counter]\ncomponent = \"modules/counter.wasm\"\n\n[agents.counter]\nmodule = \"counter\"\nsnapshot_every = 2\n\n\
         [modules.reviewer]\ncomponent = \"modules/reviewer.wasm\"\n\n[caps.review]\neffect = \"governance\"\nmay_propose = true\n\n\
         [agents.reviewer]\nmodule = \"reviewer\"\ngrants = [\"review\"]\n\n[agents.hello]",
    );
    let plan = "\n[caps.plan-store]\neffect = \"blob\"\n\n[plans.stamp]\ntrigger = \"manual\"\ngrants = [\"plan-store\"]\n\
                [plans.stamp.steps.keep]\ndo = \"blob-put\"\nwith = { contents = \"stamped\" }\n\
                [plans.stamp.steps.check]\ndo = \"blob-get\"\nwith = { digest = { from = \"keep.digest\" } }\n";
    std::fs::write(
        &manifest,
        text + &format!("snapshot_every = 2\n\n[policy]\napprovers = {{ ada = \"{ada}\" }}\n{plan}"),
    )
    .unwrap();
    for component in ["counter", "reviewer"] {
        std::fs::copy(
            agentos_effects::components::ensure_built(component).unwrap(),
            dir.join(format!("modules/{component}.wasm")),
        )
        .unwrap();
    }
    for name in ["ada", "bob"] {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
        ok(&["send", s(&dir), "counter", "increment(2)"]);
    }
    ok(&["plan", "run", s(&dir), "stamp"]);
    ok(&["rotate-key", s(&dir)]);
    ok(&["send", s(&dir), "hello", r#"greet("cy")"#]);
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    // Governance: an agent's proposal, shadow-run, approved by ada and applied; ada's own
    // proposal, rejected.
    let fuel = r#"{"changes": [{"op": "replace", "kind": "agent", "name": "counter", "definition": {"module": "counter", "fuel_per_step": 2000000, "snapshot_every": 2}}]}"#;
    ok(&["send", s(&dir), "reviewer", &format!("propose({fuel:?})")]);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", s(&dir), "--json"])).unwrap();
    let proposal = history["proposals"][0]["proposal"].as_u64().unwrap().to_string();
    ok(&["shadow", s(&dir), &proposal]);
    person(&["approve", s(&dir), &proposal, "--key", "ada"]);
    person(&["apply", s(&dir), &proposal]);
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let renamed = dir.join("renamed.toml");
    std::fs::write(
        &renamed,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("name = \"world\"", "name = \"renamed\""),
    )
    .unwrap();
    let out = person(&["propose", s(&dir), "--from", s(&renamed), "--key", "ada"]);
    let rejected = number(&out);
    person(&["reject", s(&dir), &rejected, "--key", "ada"]);
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
    let bundle = scratch.path().join("bundle");
    ok(&["export", s(&dir), s(&bundle)]);
    let current = agentos_journal::entry::FORMAT_VERSION;
    std::fs::create_dir_all(fixture(current).parent().unwrap()).unwrap();
    std::fs::copy(&bundle, fixture(current)).unwrap();
    let replay: serde_json::Value = serde_json::from_str(&ok(&["replay", s(&dir), "--json"])).unwrap();
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", s(&dir), "--json"])).unwrap();
    let runs: serde_json::Value = serde_json::from_str(&ok(&["plan", "runs", s(&dir), "--json"])).unwrap();
    let expected = serde_json::json!({ "verify": report, "agent_states": replay["agent_states"], "history": history, "plan_runs": runs });
    std::fs::write(
        expected_file(current),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn the_format_2_fixture_world_opens_verifies_and_replays() {
    check_fixture(2);
}

#[test]
fn the_format_3_fixture_world_with_its_governance_history_opens_verifies_and_replays() {
    let expected = check_fixture(3);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", s(&fixture(3)), "--json"])).unwrap();
    assert_contains(&history, &expected["history"]);
    assert_eq!(history["manifests"].as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history["proposals"][0]["agent_authored"], true);
    assert_eq!(history["proposals"][1]["status"], "rejected");
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&fixture(3)), "--json"])).unwrap();
    assert_eq!(
        (report["governance"].as_u64(), report["manifest_changes"].as_u64()),
        (Some(4), Some(1))
    );
}

#[test]
fn the_format_4_fixture_world_with_a_plan_run_opens_verifies_and_replays() {
    let expected = check_fixture(4);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", s(&fixture(4)), "--json"])).unwrap();
    assert_contains(&history, &expected["history"]);
    let runs: serde_json::Value = serde_json::from_str(&ok(&["plan", "runs", s(&fixture(4)), "--json"])).unwrap();
    assert_contains(&runs, &expected["plan_runs"]);
    assert_eq!(runs[0]["status"], "completed", "{runs:#}");
    assert_eq!(runs[0]["steps"][1]["output"]["contents"], "stamped", "{runs:#}");
}

#[test]
fn the_format_5_fixture_world_signs_every_entry() {
    check_signed_fixture(5);
}

#[test]
fn the_format_6_fixture_world_signs_every_entry() {
    if std::env::var_os("AGENTOS_BLESS").is_some() {
        bless();
    }
    check_signed_fixture(6);
}

/// The checks of a fixture from a format that signs every entry (5 on).
fn check_signed_fixture(version: u32) {
    let expected = check_fixture(version);
    let fixture = fixture(version);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", s(&fixture), "--json"])).unwrap();
    assert_contains(&history, &expected["history"]);
    let runs: serde_json::Value = serde_json::from_str(&ok(&["plan", "runs", s(&fixture), "--json"])).unwrap();
    assert_contains(&runs, &expected["plan_runs"]);
    // Any entry of it, not only a receipt, proves offline: here the genesis manifest.
    let scratch = tempfile::tempdir().unwrap();
    let proof = scratch.path().join("genesis.json");
    ok(&["prove", s(&fixture), "0", "-o", s(&proof)]);
    let key = expected["verify"]["public_key"].as_str().unwrap();
    let out = ok(&["verify-proof", s(&proof), "--public-key", key]);
    assert!(
        out.starts_with("proof OK: entry #0 (genesis) is leaf 0 of the "),
        "{out}"
    );
}

/// Every field `expected` has, `actual` has with the same value (later hosts may report more).
fn assert_contains(actual: &serde_json::Value, expected: &serde_json::Value) {
    match (actual, expected) {
        (serde_json::Value::Object(actual), serde_json::Value::Object(expected)) => {
            for (key, value) in expected {
                assert_contains(actual.get(key).unwrap_or(&serde_json::Value::Null), value);
            }
        }
        (serde_json::Value::Array(actual), serde_json::Value::Array(expected)) => {
            assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
            for (actual, expected) in actual.iter().zip(expected) {
                assert_contains(actual, expected);
            }
        }
        _ => assert_eq!(actual, expected),
    }
}

/// Verify and replay the fixture of format `version` against its expectations; returns them.
fn check_fixture(version: u32) -> serde_json::Value {
    let fixture = fixture(version);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(expected_file(version)).unwrap()).unwrap();
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&fixture), "--json"])).unwrap();
    // Later hosts may report more: what the fixture's host reported must match, the counts it
    // did not report are of what an older world cannot have, and the guarantee is the one its
    // format gives.
    let signed = version >= agentos_journal::entry::SIGNED_JOURNAL_FORMAT;
    for (field, value) in report.as_object().unwrap() {
        match field.as_str() {
            "format_version" => assert_eq!(value.as_u64(), Some(u64::from(version))),
            "coverage" => {
                let kind = if signed { "every-entry" } else { "receipts-only" };
                assert_eq!(value["kind"], kind, "{report}");
            }
            "anchor" => assert!(value.is_null(), "no key was given: {report}"),
            _ => {
                let expected = expected["verify"].get(field).cloned().unwrap_or(0.into());
                assert_eq!(*value, expected, "verify report field `{field}`");
            }
        }
    }
    // Given the key its owner would hand an auditor, it is anchored.
    let genesis_key = expected["verify"]["public_key"].as_str().unwrap();
    let anchored = ok(&["verify", s(&fixture), "--public-key", genesis_key]);
    let signed = if signed { "every entry" } else { "its " };
    assert!(
        anchored.contains(&format!(
            "anchored: the genesis key {genesis_key}, which you trust, signed {signed}"
        )),
        "{anchored}"
    );
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
    expected
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
        let current = agentos_journal::entry::FORMAT_VERSION;
        assert!(
            error.contains(&format!(
                "has format version 99, this host reads versions 1 to {current}"
            )),
            "{error}"
        );
    }
}
