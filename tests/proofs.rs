//! The transparency log through the binary: every receipt proves into the latest checkpoint,
//! checkpoints prove consistent with each other, proofs check offline with only the public key,
//! and a journal cut back to before an older checkpoint fails `verify --checkpoint`.

use crate::common::*;

use agentos_journal::entry::{Entry, entry_hash};
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
        6,
        "one checkpoint per commit: genesis, then each event with its step"
    );

    // The proof files leave the world: move them away, then check with the key alone.
    let proofs = scratch.path().join("proofs");
    std::fs::create_dir(&proofs).unwrap();
    for seq in &receipts {
        let file = proofs.join(format!("receipt-{seq}.json"));
        ok(&["prove", s(&dir), &format!("#{seq}"), "-o", s(&file)]);
        let out = ok(&["verify-proof", s(&file), "--public-key", &key]);
        let step = log.iter().find(|e| e["seq"] == *seq).unwrap()["step"].as_u64().unwrap();
        assert!(
            out.contains(&format!("receipt of step #{step} call "))
                && out.contains("10-receipt log")
                && out.ends_with("signed by the trusted key\n"),
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
        error.contains("no checkpoint of this world has 3 receipts; checkpoint sizes: 0, 2, 4, 6, 8, 10"),
        "{error}"
    );

    // Any other entry proves in the journal log: its stored bytes are the leaf.
    for seq in seqs_of(&log, "ingress").into_iter().chain([0]) {
        let file = proofs.join(format!("entry-{seq}.json"));
        ok(&["prove", s(&dir), &seq.to_string(), "-o", s(&file)]);
        let out = ok(&["verify-proof", s(&file), "--public-key", &key]);
        assert!(
            out.contains(&format!("proof OK: entry #{seq} (")) && out.contains("-entry journal log of world"),
            "{out}"
        );
    }
    let file = proofs.join("entry-0.json");
    let mut proof: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // A forged genesis (one manifest byte changed) is not the leaf the checkpoint signed.
    let mut stored = hex::decode(proof["entry"]["stored_bytes"].as_str().unwrap()).unwrap();
    let at = stored.len() / 2;
    stored[at] ^= 0x01;
    proof["entry"]["stored_bytes"] = hex::encode(&stored).into();
    std::fs::write(&file, proof.to_string()).unwrap();
    let error = fails(&["verify-proof", s(&file), "--public-key", &key], 1);
    assert!(
        error.contains("audit path does not lead") || error.contains("does not decode"),
        "{error}"
    );
    let error = fails(&["prove", s(&dir), "9999"], 2);
    assert!(error.contains("the journal has no entry #9999"), "{error}");
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

    // Whoever holds the file cuts the journal back to the checkpoint the auditor kept first and
    // re-points the head: what is left verifies on its own, but not against the later
    // checkpoint an auditor kept.
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&early).unwrap()).unwrap();
    let cut_at = kept["entries"].as_u64().unwrap();
    let end = log_json(&dir).len() as u64;
    {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut journal = txn.open_table(JOURNAL).unwrap();
            let last = journal.last().unwrap().unwrap().0.value();
            for seq in cut_at + 1..=last {
                journal.remove(seq).unwrap();
            }
            let bytes = journal.get(cut_at).unwrap().unwrap().value().to_vec();
            assert_eq!(Entry::decode(&bytes).unwrap().seq, cut_at);
            let mut head = cut_at.to_le_bytes().to_vec();
            head.extend_from_slice(&entry_hash(&bytes));
            txn.open_table(META).unwrap().insert("head", head.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    ok(&["verify", s(&dir)]);
    ok(&["verify", s(&dir), "--checkpoint", s(&early)]);
    let error = fails(&["verify", s(&dir), "--checkpoint", s(&late)], 1);
    let late_covers =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&late).unwrap()).unwrap()["entries"]
            .as_u64()
            .unwrap();
    assert_eq!(late_covers, end - 1);
    assert!(
        error.contains(&format!(
            "entry #{}: the checkpoint kept in {} signs {late_covers} entries, but the journal ends at #{cut_at}: \
             entries #{} to #{} were removed (the journal was cut back)",
            cut_at + 1,
            late.display(),
            cut_at + 1,
            late_covers - 1
        )),
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

    // Receipts on both sides of the rotation prove from the genesis key alone; trusting only
    // the new key proves what it signed, not what the old key did.
    let receipts = seqs_of(&log_json(&dir), "effect-receipt");
    for (seq, new_key_signed) in [(receipts[0], false), (receipts[3], true)] {
        let file = scratch.path().join(format!("proof-{seq}.json"));
        ok(&["prove", s(&dir), &seq.to_string(), "-o", s(&file)]);
        let out = ok(&["verify-proof", s(&file), "--public-key", &genesis_key]);
        assert!(out.contains("proof OK"), "{out}");
        if new_key_signed {
            ok(&["verify-proof", s(&file), "--public-key", &new_key]);
        } else {
            let error = fails(&["verify-proof", s(&file), "--public-key", &new_key], 1);
            assert!(
                error.contains("the receipt is signed by key")
                    && error.contains("neither a trusted key nor one it handed over to"),
                "{error}"
            );
        }
    }
    // A stranger's key proves nothing.
    let (_other_scratch, other) = init("hello");
    ok(&["send", s(&other), "hello", r#"greet("ada")"#]);
    let file = scratch.path().join(format!("proof-{}.json", receipts[3]));
    let error = fails(&["verify-proof", s(&file), "--public-key", &public_key(&other)], 1);
    assert!(error.contains("key rotation 1: rotation names key"), "{error}");

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
