//! The transparency log through the binary: every receipt proves into the latest checkpoint,
//! checkpoints prove consistent with each other, proofs check offline with only the public key,
//! and a journal cut back to before an older checkpoint fails `verify --checkpoint`.

mod common;
use common::*;

use agentos_host::journal::entry::{Entry, entry_hash};
use redb::ReadableTable as _;

const JOURNAL: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("journal");
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

fn public_key(dir: &std::path::Path) -> String {
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(dir), "--json"])).unwrap();
    report["public_key"].as_str().unwrap().to_string()
}

fn seqs_of(log: &[serde_json::Value], kind: &str) -> Vec<u64> {
    log.iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_receipt_proves_offline_and_checkpoints_are_consistent() {
    let (scratch, dir) = init("hello");
    for name in ["ada", "bob", "cy", "dee", "eve"] {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
    }
    let key = public_key(&dir);
    let log = log_json(&dir);
    let receipts = seqs_of(&log, "effect-receipt");
    assert_eq!(receipts.len(), 10);
    assert_eq!(
        count_kind(&log, "checkpoint"),
        5,
        "one checkpoint per commit that added receipts"
    );

    // The proof files leave the world: move them away, then check with the key alone.
    let proofs = scratch.path().join("proofs");
    std::fs::create_dir(&proofs).unwrap();
    for seq in &receipts {
        let file = proofs.join(format!("receipt-{seq}.json"));
        ok(&["prove", s(&dir), &format!("#{seq}"), "-o", s(&file)]);
        let out = ok(&["verify-proof", s(&file), "--public-key", &key]);
        assert!(
            out.contains(&format!("receipt #{seq} ")) && out.contains("10-receipt log"),
            "{out}"
        );
    }
    for (old, new) in [(2, 10), (4, 6), (2, 2), (8, 10)] {
        let file = proofs.join(format!("consistency-{old}-{new}.json"));
        ok(&[
            "prove",
            s(&dir),
            "--consistency",
            &old.to_string(),
            &new.to_string(),
            "-o",
            s(&file),
        ]);
        ok(&["verify-proof", s(&file), "--public-key", &key]);
    }

    // Altered proofs, a wrong key and unknown sizes fail, naming the problem.
    let file = proofs.join(format!("receipt-{}.json", receipts[3]));
    let mut proof: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    proof["leaf_index"] = serde_json::json!(4);
    std::fs::write(&file, proof.to_string()).unwrap();
    let error = fails(&["verify-proof", s(&file), "--public-key", &key], 1);
    assert!(error.contains("audit path does not lead"), "{error}");
    let (_other_scratch, other) = init("hello");
    ok(&["send", s(&other), "hello", r#"greet("ada")"#]);
    let error = fails(
        &[
            "verify-proof",
            s(&proofs.join("consistency-2-10.json")),
            "--public-key",
            &public_key(&other),
        ],
        1,
    );
    assert!(error.contains("checkpoint signed by key"), "{error}");
    let error = fails(&["prove", s(&dir), "--consistency", "3", "10"], 2);
    assert!(
        error.contains("no checkpoint of this world has 3 receipts; checkpoint sizes: 2, 4, 6, 8, 10"),
        "{error}"
    );
    let error = fails(&["prove", s(&dir), &log[0]["seq"].to_string()], 2);
    assert!(error.contains("is not an effect receipt"), "{error}");
    replay_and_verify(&dir);
}

#[test]
fn a_journal_cut_back_before_an_older_checkpoint_fails_against_it() {
    let (scratch, dir) = init("hello");
    ok(&["send", s(&dir), "hello", r#"greet("ada")"#]);
    let early = scratch.path().join("early-checkpoint.json");
    std::fs::write(&early, ok(&["checkpoint", s(&dir)])).unwrap();
    ok(&["send", s(&dir), "hello", r#"greet("bob")"#]);
    let late = scratch.path().join("late-checkpoint.json");
    std::fs::write(&late, ok(&["checkpoint", s(&dir)])).unwrap();
    ok(&["verify", s(&dir), "--checkpoint", s(&early)]);
    ok(&["verify", s(&dir), "--checkpoint", s(&late)]);

    // Whoever holds the file cuts the journal back to its first checkpoint and re-points the
    // head: the chain alone still verifies, but not against the later checkpoint an auditor kept.
    let first_checkpoint = seqs_of(&log_json(&dir), "checkpoint")[0];
    {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut journal = txn.open_table(JOURNAL).unwrap();
            let last = journal.last().unwrap().unwrap().0.value();
            for seq in first_checkpoint + 1..=last {
                journal.remove(seq).unwrap();
            }
            let bytes = journal.get(first_checkpoint).unwrap().unwrap().value().to_vec();
            assert_eq!(Entry::decode(&bytes).unwrap().seq, first_checkpoint);
            let mut head = first_checkpoint.to_le_bytes().to_vec();
            head.extend_from_slice(&entry_hash(&bytes));
            txn.open_table(META).unwrap().insert("head", head.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    ok(&["verify", s(&dir)]);
    ok(&["verify", s(&dir), "--checkpoint", s(&early)]);
    let error = fails(&["verify", s(&dir), "--checkpoint", s(&late)], 1);
    assert!(
        error.contains("older checkpoint attests 4 receipts, the newer log holds only 2: the log was truncated"),
        "{error}"
    );
    // What is left is a consistent, shorter history: it replays and verifies on its own.
    replay_and_verify(&dir);
}

#[test]
fn an_audit_bundle_verifies_replays_and_proves_without_the_world() {
    let (scratch, dir) = init("hello");
    append_to_manifest(&dir, "snapshot_every = 2\n");
    for name in ["ada", "bob", "cy"] {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
    }
    let key = public_key(&dir);
    let receipt = seqs_of(&log_json(&dir), "effect-receipt")[3];
    let bundle = scratch.path().join("audit.agentos");
    let out = ok(&["export", s(&dir), s(&bundle)]);
    assert!(out.contains("exported") && out.contains("blobs"), "{out}");
    let error = fails(&["export", s(&dir), s(&bundle)], 2);
    assert!(error.contains("already exists"), "{error}");
    let original_log = ok(&["log", s(&dir)]);
    // The auditor has the bundle and the public key, nothing else.
    std::fs::remove_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&bundle).unwrap();

    let out = ok(&["verify", s(&bundle)]);
    assert!(
        out.contains("6 receipts") && out.contains(&key) && out.contains("3 steps"),
        "{out}"
    );
    let out = ok(&["replay", s(&bundle)]);
    assert!(
        out.contains("replay OK from genesis: 3 steps re-executed") && out.contains("1 snapshots matched"),
        "{out}"
    );
    let out = ok(&["replay", s(&bundle), "--from", "latest"]);
    assert!(out.contains("replay OK from snapshot #"), "{out}");
    assert_eq!(ok(&["log", s(&bundle)]), original_log);
    let proof = scratch.path().join("proof.json");
    ok(&["prove", s(&bundle), &receipt.to_string(), "-o", s(&proof)]);
    ok(&["verify-proof", s(&proof), "--public-key", &key]);
    assert_eq!(
        std::fs::read(&bundle).unwrap(),
        bytes,
        "reading a bundle never changes it"
    );

    // A journal file that is not a bundle is named as such.
    let (_other_scratch, other) = init("counter");
    ok(&["send", s(&other), "counter", "increment(1)"]);
    let error = fails(&["verify", s(&other.join(".agentos/journal.redb"))], 2);
    assert!(error.contains("is a journal file but not an audit bundle"), "{error}");
}

#[test]
fn a_rotated_key_signs_from_its_entry_on_and_proofs_follow_the_chain() {
    let (scratch, dir) = init("hello");
    ok(&["send", s(&dir), "hello", r#"greet("ada")"#]);
    let genesis_key = public_key(&dir);
    let before = scratch.path().join("before.json");
    std::fs::write(&before, ok(&["checkpoint", s(&dir)])).unwrap();
    let old_key_file = std::fs::read(dir.join(".agentos/host.key")).unwrap();

    let rotated: serde_json::Value = serde_json::from_str(&ok(&["rotate-key", s(&dir), "--json"])).unwrap();
    assert_eq!(rotated["old_public_key"], genesis_key.as_str());
    let new_key = rotated["new_public_key"].as_str().unwrap().to_string();
    assert_ne!(std::fs::read(dir.join(".agentos/host.key")).unwrap(), old_key_file);
    ok(&["send", s(&dir), "hello", r#"greet("bob")"#]);

    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
    assert_eq!(report["key_rotations"], 1);
    assert_eq!(report["key_in_force"], new_key.as_str());
    assert_eq!(report["public_key"], genesis_key.as_str());
    ok(&["verify", s(&dir), "--checkpoint", s(&before)]);

    // Receipts on both sides of the rotation prove from the genesis key alone.
    let receipts = seqs_of(&log_json(&dir), "effect-receipt");
    for seq in [receipts[0], receipts[3]] {
        let file = scratch.path().join(format!("proof-{seq}.json"));
        ok(&["prove", s(&dir), &seq.to_string(), "-o", s(&file)]);
        let out = ok(&["verify-proof", s(&file), "--public-key", &genesis_key]);
        assert!(out.contains("proof OK"), "{out}");
        // Trusting only the new key, the chain does not start where the file says it does.
        let error = fails(&["verify-proof", s(&file), "--public-key", &new_key], 1);
        assert!(error.contains("key rotation 1: rotation names key"), "{error}");
    }

    // A rotation that stopped after journaling, before installing the new key file, is
    // completed by the next open.
    let state = dir.join(".agentos");
    std::fs::rename(state.join("host.key"), state.join("host.key.next")).unwrap();
    std::fs::write(state.join("host.key"), &old_key_file).unwrap();
    ok(&["send", s(&dir), "hello", r#"greet("cy")"#]);
    assert!(!state.join("host.key.next").exists());
    let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
    assert_eq!(report["receipts"], 6);
    // A key file that is neither the key in force nor a pending rotation is refused.
    std::fs::write(state.join("host.key"), &old_key_file).unwrap();
    let error = fails(&["send", s(&dir), "hello", r#"greet("eve")"#], 2);
    assert!(
        error.contains(&format!(
            "does not hold the host key in force for this world (public key {new_key})"
        )),
        "{error}"
    );
    replay_and_verify(&dir);
}
