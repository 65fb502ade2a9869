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
