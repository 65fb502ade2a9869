//! Tamper evidence: altering one journal entry in the redb file makes `verify` fail naming it,
//! and makes `replay` or a normal open refuse rather than run on altered history.

mod common;
use common::*;

use redb::ReadableTable as _;

const JOURNAL: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("journal");

fn rewrite_entry(dir: &std::path::Path, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(JOURNAL).unwrap();
        let mut bytes = table.get(seq).unwrap().unwrap().value().to_vec();
        edit(&mut bytes);
        table.insert(seq, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn flipping_one_byte_of_an_entry_makes_verify_name_it() {
    let (_scratch, dir) = init("hello");
    ok(&["send", s(&dir), "hello", r#"greet("ada")"#]);
    ok(&["send", s(&dir), "hello", r#"greet("bob")"#]);
    replay_and_verify(&dir);
    let log = log_json(&dir);
    let receipt = log.iter().find(|e| e["kind"] == "effect-receipt").unwrap()["seq"]
        .as_u64()
        .unwrap();
    let ingress = log.iter().filter(|e| e["kind"] == "ingress").nth(1).unwrap()["seq"]
        .as_u64()
        .unwrap();

    for seq in [ingress, receipt] {
        let (_scratch, copy) = init("counter");
        std::fs::remove_dir_all(&copy).unwrap();
        copy_dir(&dir, &copy);
        // Flip one byte in the middle of the entry (inside its body, past the header).
        rewrite_entry(&copy, seq, |bytes| {
            let at = bytes.len() - 3;
            bytes[at] ^= 0x01;
        });
        let error = fails(&["verify", s(&copy)], 1);
        assert!(error.contains(&format!("entry #{seq}")), "seq {seq}: {error}");
    }
}

#[test]
fn removing_the_last_entry_is_detected() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let last = log_json(&dir).last().unwrap()["seq"].as_u64().unwrap();
    {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(JOURNAL).unwrap().remove(last).unwrap();
        txn.commit().unwrap();
    }
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains("journal head") && error.contains(&format!("#{last}")),
        "{error}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn replay_names_the_exact_step_where_history_and_re_execution_diverge() {
    use agentos_host::journal::entry::{Entry, EntryBody};
    let (_scratch, dir) = init("counter");
    for n in 1..=3 {
        ok(&["send", s(&dir), "counter", &format!("increment({n})")]);
    }
    replay_and_verify(&dir);
    let log = log_json(&dir);
    let committed = log.iter().filter(|e| e["kind"] == "step-committed").nth(1).unwrap();
    let (seq, step) = (committed["seq"].as_u64().unwrap(), committed["step"].as_u64().unwrap());
    // Rewrite the second step's recorded state digest: history now claims a different state.
    rewrite_entry(&dir, seq, |bytes| {
        let mut entry = Entry::decode(bytes).unwrap();
        let EntryBody::StepCommitted(step) = &mut entry.body else {
            panic!("not a step entry")
        };
        step.state_digest = [0xab; 32];
        *bytes = entry.encode();
    });
    let error = fails(&["replay", s(&dir)], 1);
    assert!(
        error.contains(&format!("replay DIVERGED at step #{step} (agent `counter`)")),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "journal records committed with state sha256:{}",
            "ab".repeat(32)
        )),
        "{error}"
    );
    // A normal open refuses to run on history that does not replay.
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(error.contains("replaying the journal diverged"), "{error}");
    // And verify sees the rewritten entry through the hash chain.
    let error = fails(&["verify", s(&dir)], 1);
    assert!(error.contains(&format!("entry #{seq}")), "{error}");
}

// The tamper matrix: each alteration is caught by `verify`, which names the entry and the fault.

use agentos_host::journal::entry::{Entry, EntryBody};

const BLOBS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("blobs");

fn greeted_world(names: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let (scratch, dir) = init("hello");
    for name in names {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
    }
    (scratch, dir)
}

/// Sign a receipt entry's body with `key` instead of the host key.
fn resign_receipt(entry: &mut Entry, key: &agentos_host::receipts::HostKey) {
    let EntryBody::EffectReceipt(r) = &mut entry.body else {
        panic!("entry #{} is not a receipt", entry.seq)
    };
    r.receipt.body.key_id = key.key_id();
    r.receipt = key.sign(r.receipt.body.clone());
}

fn receipt_positions(entries: &[Entry]) -> Vec<usize> {
    (0..entries.len())
        .filter(|&i| matches!(entries[i].body, EntryBody::EffectReceipt(_)))
        .collect()
}

#[test]
fn a_deleted_or_swapped_entry_is_named() {
    let (_scratch, dir) = greeted_world(&["ada", "bob"]);
    let (_copy_scratch, copy) = init("counter");
    std::fs::remove_dir_all(&copy).unwrap();
    copy_dir(&dir, &copy);
    {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(JOURNAL).unwrap().remove(4).unwrap();
        txn.commit().unwrap();
    }
    let error = fails(&["verify", s(&dir)], 1);
    assert!(error.contains("entry #5: out of sequence: expected #4 here"), "{error}");

    let (a, b) = (read_entries(&copy)[3].encode(), read_entries(&copy)[4].encode());
    rewrite_entry(&copy, 3, |bytes| *bytes = b);
    rewrite_entry(&copy, 4, |bytes| *bytes = a);
    let error = fails(&["verify", s(&copy)], 1);
    assert!(
        error.contains("entry #3: is stored at #3 but says it is #4 (entries were swapped)"),
        "{error}"
    );
}

#[test]
fn a_receipt_removed_and_the_chain_rebuilt_is_caught_by_the_checkpoint_after_it() {
    let (_scratch, dir) = greeted_world(&["ada", "bob"]);
    let mut entries = read_entries(&dir);
    let removed = receipt_positions(&entries)[2];
    entries.remove(removed);
    forge_journal(&dir, entries);
    let checkpoint = read_entries(&dir)
        .iter()
        .filter(|e| matches!(e.body, EntryBody::Checkpoint(_)))
        .nth(1)
        .unwrap()
        .seq;
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!("entry #{checkpoint}: checkpoint states 4 receipts"))
            && error.contains("the receipts before it give 3")
            && error.contains("a receipt was removed, added or altered"),
        "{error}"
    );
}

#[test]
fn a_receipt_copied_from_another_world_or_signed_by_another_key_is_named() {
    let (_scratch, dir) = greeted_world(&["ada"]);
    let (_other_scratch, other) = greeted_world(&["ada"]);
    let mut entries = read_entries(&dir);
    let at = receipt_positions(&entries)[1];
    entries[at] = read_entries(&other)[at].clone();
    forge_journal(&dir, entries);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!("entry #{at}: receipt belongs to world ")),
        "{error}"
    );

    let (_scratch, dir) = greeted_world(&["ada"]);
    let mut entries = read_entries(&dir);
    let at = receipt_positions(&entries)[0];
    let scratch = tempfile::tempdir().unwrap();
    let stranger = agentos_host::receipts::HostKey::load_or_create(&scratch.path().join("stranger.key")).unwrap();
    resign_receipt(&mut entries[at], &stranger);
    forge_journal(&dir, entries);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!(
            "entry #{at}: receipt signed by key {}, not by the expected host key",
            hex::encode(stranger.key_id())
        )),
        "{error}"
    );
}

#[test]
fn a_blob_that_no_longer_matches_its_digest_is_named() {
    let (_scratch, dir) = greeted_world(&["ada"]);
    let digest = {
        let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let digest = {
            let mut blobs = txn.open_table(BLOBS).unwrap();
            let (digest, mut bytes): (Vec<u8>, Vec<u8>) = {
                let (k, v) = blobs.first().unwrap().unwrap();
                (k.value().to_vec(), v.value().to_vec())
            };
            let at = bytes.len() / 2;
            bytes[at] ^= 0x40;
            blobs.insert(digest.as_slice(), bytes.as_slice()).unwrap();
            digest
        };
        txn.commit().unwrap();
        digest
    };
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!(
            "blob sha256:{} no longer matches its digest",
            hex::encode(&digest)
        )),
        "{error}"
    );
}

#[test]
fn a_snapshot_that_does_not_match_replay_is_named() {
    let (_scratch, dir) = init("counter");
    append_to_manifest(&dir, "snapshot_every = 1\n");
    for n in 1..=3 {
        ok(&["send", s(&dir), "counter", &format!("increment({n})")]);
    }
    replay_and_verify(&dir);
    // Point the second snapshot at the first one's state (a real blob, just the wrong one).
    let mut entries = read_entries(&dir);
    let snapshots: Vec<usize> = (0..entries.len())
        .filter(|&i| matches!(entries[i].body, EntryBody::Snapshot(_)))
        .collect();
    let EntryBody::Snapshot(first) = entries[snapshots[0]].body.clone() else {
        unreachable!()
    };
    let EntryBody::Snapshot(second) = &mut entries[snapshots[1]].body else {
        unreachable!()
    };
    second.agents = first.agents.clone();
    let (seq, step) = (snapshots[1], second.after_step);
    forge_journal(&dir, entries);

    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!(
            "entry #{seq}: snapshot of agent `counter` is sha256:{}, but its last committed step recorded state",
            hex::encode(first.agents[0].1)
        )),
        "{error}"
    );
    let error = fails(&["replay", s(&dir), "--all"], 1);
    assert!(
        error.contains(&format!(
            "replay DIVERGED at step #{step} (agent `counter`): snapshot #{seq} records state sha256:{}, re-execution gave",
            hex::encode(first.agents[0].1)
        )),
        "{error}"
    );
}

#[test]
fn after_a_rotation_the_old_key_and_unknown_rotations_are_refused() {
    let (_scratch, dir) = greeted_world(&["ada"]);
    let old_key = agentos_host::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    ok(&["rotate-key", s(&dir)]);
    ok(&["send", s(&dir), "hello", r#"greet("bob")"#]);
    let entries = read_entries(&dir);

    // A receipt after the rotation, re-signed with the retired key.
    let mut forged = entries.clone();
    let at = *receipt_positions(&forged).last().unwrap();
    resign_receipt(&mut forged[at], &old_key);
    let (_copy_scratch, copy) = init("counter");
    std::fs::remove_dir_all(&copy).unwrap();
    copy_dir(&dir, &copy);
    forge_journal(&copy, forged);
    let error = fails(&["verify", s(&copy)], 1);
    assert!(
        error.contains(&format!(
            "entry #{at}: receipt signed by key {}, not by the expected host key",
            hex::encode(old_key.key_id())
        )),
        "{error}"
    );

    // A rotation to a key of someone else's choosing, signed by a stranger.
    let mut forged = entries;
    let at = (0..forged.len())
        .find(|&i| matches!(forged[i].body, EntryBody::KeyRotation(_)))
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let stranger = agentos_host::receipts::HostKey::load_or_create(&scratch.path().join("s.key")).unwrap();
    let EntryBody::KeyRotation(rotation) = &mut forged[at].body else {
        unreachable!()
    };
    *rotation = agentos_host::rotation::KeyRotation::new(rotation.body.world_id, &stranger, &stranger);
    forge_journal(&dir, forged);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!(
            "entry #{at}: key rotation: rotation names key {}",
            hex::encode(stranger.key_id())
        )),
        "{error}"
    );
}
