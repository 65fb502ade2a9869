//! Tamper evidence: altering one journal entry in the redb file makes `verify` fail naming it,
//! and makes `replay` or a normal open refuse rather than run on altered history.

use crate::common::*;

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
    // With the head re-pointed too, what the removed checkpoint signed is signed by nothing.
    let entries = read_entries(&dir);
    let unsigned = 1 + entries
        .iter()
        .rposition(|e| matches!(e.body, agentos_journal::entry::EntryBody::Checkpoint(_)))
        .unwrap();
    forge_journal(&dir, entries);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!(
            "entry #{unsigned}: it and the entries up to #{} come after the last checkpoint",
            last - 1
        )),
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
    use agentos_journal::entry::{Entry, EntryBody};
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
    // A normal open refuses to go on from history its checkpoints do not sign.
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(
        error.contains("cannot be trusted to write to") && error.contains("are not what checkpoint #"),
        "{error}"
    );
    // And verify sees the rewritten entry through the hash chain.
    let error = fails(&["verify", s(&dir)], 1);
    assert!(error.contains(&format!("entry #{seq}")), "{error}");
}

// The tamper matrix: each alteration is caught by `verify`, which names the entry and the fault.

use agentos_journal::entry::{Entry, EntryBody};

const BLOBS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("blobs");

fn greeted_world(names: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let (scratch, dir) = init("hello");
    for name in names {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
    }
    (scratch, dir)
}

/// Sign a receipt entry's body with `key` instead of the host key.
fn resign_receipt(entry: &mut Entry, key: &agentos_journal::receipts::HostKey) {
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
    let removed = receipt_positions(&entries)[2] as u64;
    entries.remove(removed as usize);
    forge_journal(&dir, entries);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(named(&error).contains(&removed), "{error}");
    assert!(
        error.contains("checkpoint states 4 receipts")
            && error.contains("the receipts before it give 3")
            && error.contains("a receipt was removed, added or altered"),
        "{error}"
    );
}

/// The entries `verify FAILED: …` names: `entry #N`, or `entries #A to #B`.
fn named(error: &str) -> std::ops::RangeInclusive<u64> {
    let text = error.trim_start_matches("verify FAILED: ");
    let number = |s: &str| -> u64 {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    if let Some(rest) = text.strip_prefix("entry #") {
        let n = number(rest);
        return n..=n;
    }
    let rest = text
        .strip_prefix("entries #")
        .unwrap_or_else(|| panic!("names no entry: {error}"));
    let (first, rest) = rest.split_once(" to #").unwrap();
    number(first)..=number(rest)
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
    let stranger = agentos_journal::receipts::HostKey::load_or_create(&scratch.path().join("stranger.key")).unwrap();
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
    let old_key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
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
    let stranger = agentos_journal::receipts::HostKey::load_or_create(&scratch.path().join("s.key")).unwrap();
    let EntryBody::KeyRotation(rotation) = &mut forged[at].body else {
        unreachable!()
    };
    *rotation = agentos_journal::rotation::KeyRotation::new(rotation.body.world_id, &stranger, &stranger);
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

// The forger's side: each forgery changes what a forger would change and repairs everything a
// holder of the file can repair (every hash re-chained, the head re-pointed, new blobs for
// changed contents). `verify` must still fail, naming the forged entry, alone, against a
// checkpoint the auditor kept before, and anchored to the world's public key.

use agentos_journal::entry::Digest;

/// The format-5 fixture world in a directory of its own, with the checkpoint an auditor kept
/// of it and its genesis key: the world the forgeries start from.
struct Audited {
    _scratch: tempfile::TempDir,
    dir: std::path::PathBuf,
    kept: std::path::PathBuf,
    key: String,
}

fn audited_fixture() -> Audited {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join(".agentos")).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format-v5");
    std::fs::copy(fixture.with_extension("agentos"), dir.join(".agentos/journal.redb")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.with_extension("json")).unwrap()).unwrap();
    let key = expected["verify"]["public_key"].as_str().unwrap().to_string();
    let kept = scratch.path().join("kept-checkpoint.json");
    std::fs::write(&kept, ok(&["checkpoint", s(&dir)])).unwrap();
    let out = ok(&["verify", s(&dir), "--public-key", &key, "--checkpoint", s(&kept)]);
    assert!(out.contains("anchored: the genesis key"), "{out}");
    Audited {
        _scratch: scratch,
        dir,
        kept,
        key,
    }
}

impl Audited {
    /// `verify` fails three ways, each naming `forged` (or a range of one commit's entries that
    /// holds it).
    fn assert_caught(&self, forged: u64) {
        let d = s(&self.dir);
        for args in [
            &["verify", d][..],
            &["verify", d, "--checkpoint", s(&self.kept)][..],
            &["verify", d, "--public-key", &self.key][..],
        ] {
            let error = fails(args, 1);
            assert!(
                named(&error).contains(&forged),
                "{args:?} should name #{forged}: {error}"
            );
        }
    }

    fn entry_of(&self, kind: &str, nth: usize) -> u64 {
        log_json(&self.dir)
            .iter()
            .filter(|e| e["kind"] == kind)
            .nth(nth)
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    }
}

fn put_blob(dir: &std::path::Path, bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    let digest: Digest = sha2::Sha256::digest(bytes).into();
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(BLOBS).unwrap().insert(digest.as_slice(), bytes).unwrap();
    txn.commit().unwrap();
    digest
}

fn blob(dir: &std::path::Path, digest: &Digest) -> Vec<u8> {
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    txn.open_table(BLOBS)
        .unwrap()
        .get(digest.as_slice())
        .unwrap()
        .unwrap()
        .value()
        .to_vec()
}

#[test]
fn a_forged_ingress_output_or_step_record_is_named_even_with_the_chain_rebuilt() {
    let world = audited_fixture();
    let greet = world.entry_of("ingress", 2);
    let output = world.entry_of("output", 1);
    let step = world.entry_of("step-committed", 0);
    let pristine = read_entries(&world.dir);
    type Forgery = fn(&mut EntryBody);
    let forgeries: [(u64, Forgery); 4] = [
        (greet, |body| {
            let EntryBody::Ingress(i) = body else {
                panic!("not an ingress")
            };
            assert_eq!(i.event, r#"greet("bob")"#);
            i.event = r#"greet("eve")"#.into();
        }),
        (greet, |body| {
            let EntryBody::Ingress(i) = body else {
                panic!("not an ingress")
            };
            i.source = "webhook".into();
            i.at_ms -= 86_400_000;
        }),
        (output, |body| {
            let EntryBody::Output(o) = body else {
                panic!("not an output")
            };
            assert_eq!(o.text, "greeted bob");
            o.text = "greeted eve".into();
        }),
        (step, |body| {
            let EntryBody::StepCommitted(c) = body else {
                panic!("not a step")
            };
            c.state_digest = [0xee; 32];
        }),
    ];
    for (at, forge) in forgeries {
        let mut entries = pristine.clone();
        forge(&mut entries[at as usize].body);
        forge_journal(&world.dir, entries);
        world.assert_caught(at);
    }
}

#[test]
fn a_forged_genesis_manifest_is_named_even_with_its_digest_recomputed() {
    let world = audited_fixture();
    let mut entries = read_entries(&world.dir);
    let EntryBody::Genesis(genesis) = &mut entries[0].body else {
        unreachable!()
    };
    // The data directory turned read-write, and the forger's key made an approver.
    let mut manifest: serde_json::Value = serde_json::from_str(&genesis.manifest_json).unwrap();
    assert_eq!(manifest["caps"]["data"]["mode"], "read-only");
    manifest["caps"]["data"]["mode"] = "read-write".into();
    let mallory = agentos_journal::receipts::HostKey::ephemeral().unwrap();
    manifest["policy"]["approvers"]["mallory"] = hex::encode(mallory.public().as_bytes()).into();
    let forged = agentos_air::Manifest::parse_json(&manifest.to_string(), "forged").unwrap();
    genesis.manifest_json = forged.to_json();
    genesis.manifest_digest = forged.digest();
    forge_journal(&world.dir, entries);
    world.assert_caught(0);
}

#[test]
fn a_forged_governance_entry_is_named() {
    let world = audited_fixture();
    let pristine = read_entries(&world.dir);
    let mut entries = pristine.clone();
    let shadow = world.entry_of("shadow-report", 0);
    let EntryBody::ShadowReport(report) = &mut entries[shadow as usize].body else {
        unreachable!()
    };
    report.summary = "clean — nothing to see".into();
    forge_journal(&world.dir, entries);
    world.assert_caught(shadow);

    let mut entries = pristine;
    let applied = world.entry_of("manifest-applied", 0);
    let EntryBody::ManifestApplied(change) = &mut entries[applied as usize].body else {
        unreachable!()
    };
    change.at_ms += 1;
    forge_journal(&world.dir, entries);
    world.assert_caught(applied);
}

#[test]
fn a_forged_snapshot_stepper_state_is_named() {
    let world = audited_fixture();
    let mut entries = read_entries(&world.dir);
    let at = world.entry_of("snapshot", 1);
    let EntryBody::Snapshot(snapshot) = &mut entries[at as usize].body else {
        unreachable!()
    };
    let mut state: agentos_runtime::kernel::KernelState =
        postcard::from_bytes(&blob(&world.dir, &snapshot.kernel)).unwrap();
    // Reopening from this snapshot would run an already processed input again.
    state.pending.push(snapshot.after_step);
    snapshot.kernel = put_blob(&world.dir, &postcard::to_allocvec(&state).unwrap());
    forge_journal(&world.dir, entries);
    world.assert_caught(at);
}

#[test]
fn a_dropped_tail_is_named_by_the_checkpoint_the_auditor_kept() {
    let world = audited_fixture();
    let pristine = read_entries(&world.dir);
    // Cut inside a commit: what is left ends unsigned.
    let cut = world.entry_of("output", 1) as usize;
    forge_journal(&world.dir, pristine[..cut].to_vec());
    let last_signed = pristine[..cut]
        .iter()
        .rposition(|e| matches!(e.body, EntryBody::Checkpoint(_)))
        .unwrap();
    world.assert_caught(last_signed as u64 + 1);

    // Cut at a checkpoint: what is left is a shorter history, signed as it is, which the file
    // alone cannot tell from the world at that time; the checkpoint kept later can.
    let checkpoint = pristine
        .iter()
        .rposition(|e| e.seq < 60 && matches!(e.body, EntryBody::Checkpoint(_)))
        .unwrap();
    forge_journal(&world.dir, pristine[..=checkpoint].to_vec());
    let out = ok(&["verify", s(&world.dir), "--public-key", &world.key]);
    assert!(
        out.starts_with(&format!("verify OK: {} entries", checkpoint + 1)),
        "{out}"
    );
    let error = fails(&["verify", s(&world.dir), "--checkpoint", s(&world.kept)], 1);
    assert!(named(&error).contains(&(checkpoint as u64 + 1)), "{error}");
    assert!(error.contains("the journal was cut back"), "{error}");
}

#[test]
fn a_world_re_keyed_and_re_signed_throughout_fails_against_the_key_and_the_kept_checkpoint() {
    let (scratch, dir) = greeted_world(&["ada", "bob"]);
    let genesis_key = {
        let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
        report["public_key"].as_str().unwrap().to_string()
    };
    let kept = scratch.path().join("kept.json");
    std::fs::write(&kept, ok(&["checkpoint", s(&dir)])).unwrap();
    let trusted = scratch.path().join("trusted-keys");
    std::fs::write(&trusted, format!("# the hosts we audit\n{genesis_key} production\n")).unwrap();
    ok(&["verify", s(&dir), "--trusted-keys", s(&trusted)]);

    // The forger rewrites the first greeting, then signs everything anew with a key of their own.
    let mut entries = read_entries(&dir);
    let greet = entries
        .iter()
        .position(|e| matches!(&e.body, EntryBody::Ingress(_)))
        .unwrap();
    let EntryBody::Ingress(ingress) = &mut entries[greet].body else {
        unreachable!()
    };
    ingress.event = r#"greet("eve")"#.into();
    let forger = agentos_journal::receipts::HostKey::load_or_create(&scratch.path().join("forger.key")).unwrap();
    rekey(&mut entries, &forger);
    forge_journal_with_key(&dir, entries, &forger);

    // Self-consistent, and said to be no more than that.
    let out = ok(&["verify", s(&dir)]);
    assert!(out.contains("NOT ANCHORED: self-consistent"), "{out}");
    for args in [
        &["verify", s(&dir), "--public-key", &genesis_key][..],
        &["verify", s(&dir), "--trusted-keys", s(&trusted)][..],
        &["verify", s(&dir), "--checkpoint", s(&kept)][..],
    ] {
        let error = fails(args, 1);
        assert!(named(&error) == (0..=0), "{args:?}: {error}");
        assert!(
            error.contains("is not a trusted key") || error.contains("which is not a key of this world"),
            "{error}"
        );
    }
}

// What a holder of the host key can sign is still checked against the history it claims to
// follow: a snapshot's stepper state must be what the entries before it imply.

#[test]
fn a_snapshot_whose_stepper_state_contradicts_history_is_named_even_when_signed() {
    let (_scratch, dir) = init("hello");
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "mode = \"read-only\"\n",
        "mode = \"read-only\"\nbudget = { calls = 100 }\n",
    );
    std::fs::write(&manifest, text + "snapshot_every = 1\n").unwrap();
    for name in ["ada", "bob", "cy"] {
        ok(&["send", s(&dir), "hello", &format!(r#"greet("{name}")"#)]);
    }
    replay_and_verify(&dir);
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    let pristine = read_entries(&dir);
    let at = pristine
        .iter()
        .rposition(|e| matches!(e.body, EntryBody::Snapshot(_)))
        .unwrap();
    type Lie = fn(&mut agentos_runtime::kernel::KernelState);
    let lies: [(Lie, &str); 3] = [
        (
            // Budget use forgotten: the agent would get its calls again.
            |state| state.budgets = Default::default(),
            "holds 0 budget use(s) of grant `data` by `hello`, but the receipts before it count 3",
        ),
        (|state| state.last_step = 2, "its state says #2"),
        (
            |state| state.pending.push(2),
            "it lists the inputs [2] as unprocessed, but the entries before it leave [] unprocessed",
        ),
    ];
    for (lie, expected) in lies {
        let mut entries = pristine.clone();
        let EntryBody::Snapshot(snapshot) = &mut entries[at].body else {
            unreachable!()
        };
        let mut state: agentos_runtime::kernel::KernelState =
            postcard::from_bytes(&blob(&dir, &snapshot.kernel)).unwrap();
        lie(&mut state);
        snapshot.kernel = put_blob(&dir, &postcard::to_allocvec(&state).unwrap());
        forge_journal_with_key(&dir, entries, &key);
        let error = fails(&["verify", s(&dir)], 1);
        assert!(
            error.contains(&format!("entry #{at}: snapshot's stepper state: ")) && error.contains(expected),
            "{error}"
        );
    }
    // Signed as it was, the world verifies again.
    forge_journal_with_key(&dir, pristine, &key);
    replay_and_verify(&dir);
}

/// A forger strips every checkpoint and relabels the world as format 1 (which had none), to
/// leave nothing that signs the entries they rewrote.
#[test]
fn a_world_relabelled_as_an_older_format_to_shed_its_checkpoints_is_caught() {
    fn relabel(dir: &std::path::Path) -> String {
        let key = {
            let report: serde_json::Value = serde_json::from_str(&ok(&["verify", s(dir), "--json"])).unwrap();
            report["public_key"].as_str().unwrap().to_string()
        };
        let mut entries: Vec<Entry> = read_entries(dir)
            .into_iter()
            .filter(|e| !matches!(e.body, EntryBody::Checkpoint(_)))
            .collect();
        let EntryBody::Genesis(genesis) = &mut entries[0].body else {
            unreachable!()
        };
        genesis.format_version = 1;
        forge_journal(dir, entries);
        key
    }
    // Its receipts were written by a host that signs every entry, and say so.
    let (_scratch, dir) = greeted_world(&["ada"]);
    let key = relabel(&dir);
    let error = fails(&["verify", s(&dir)], 1);
    assert!(error.contains("no signature covers them"), "{error}");
    let error = fails(&["verify", s(&dir), "--public-key", &key], 1);
    assert!(error.contains("no signature covers them"), "{error}");

    // Without receipts, nothing is left to tell; but nothing is signed either, so the key the
    // auditor trusts vouches for none of it.
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let key = relabel(&dir);
    let out = ok(&["verify", s(&dir)]);
    assert!(
        out.contains("NOT ANCHORED") && out.contains("receipts signed; other entries only hash-chained"),
        "{out}"
    );
    let error = fails(&["verify", s(&dir), "--public-key", &key], 1);
    assert!(
        error.contains("entry #0: nothing in this journal is signed (format 1, without receipts)"),
        "{error}"
    );
}

/// The host never signs what it did not write: an input appended after the last checkpoint, or
/// a cache in `meta` pointing it at other history, makes it refuse to write to the journal
/// (instead of processing the input and signing it into the next checkpoint).
#[test]
fn a_writer_refuses_to_sign_an_unsigned_tail_or_go_by_a_poisoned_cache() {
    use agentos_journal::entry::Ingress;
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let pristine = read_entries(&dir);
    let mut entries = pristine.clone();
    entries.push(Entry {
        seq: 0,
        prev_hash: [0; 32],
        body: EntryBody::Ingress(Ingress {
            agent: "counter".into(),
            event: "increment(1000000)".into(),
            at_ms: 1,
            source: "operator".into(),
        }),
    });
    forge_journal(&dir, entries);
    let forged = pristine.len() as u64;
    for args in [
        &["send", s(&dir), "counter", "increment(1)"][..],
        &["run", s(&dir)],
        &["rotate-key", s(&dir)],
    ] {
        let error = fails(args, 2);
        assert!(
            error.contains(&format!("its entry #{forged} comes after its last checkpoint")),
            "{args:?}: {error}"
        );
    }
    assert_eq!(read_entries(&dir).len() as u64, forged + 1, "something was journaled");
    let error = fails(&["verify", s(&dir)], 1);
    assert!(
        error.contains(&format!("entry #{forged}: it comes after the last checkpoint")),
        "{error}"
    );

    // The caches in `meta` steer what a writer reads. A writer that reads every entry rebuilds
    // them (and writes them back); one that reads from a snapshot checks what they say was in
    // force against what the checkpoint after the snapshot signs.
    forge_journal(&dir, pristine);
    poison_manifest_changes(&dir, 2);
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    ok(&["verify", s(&dir)]);

    let (_scratch, dir) = init("counter");
    append_to_manifest(&dir, "snapshot_every = 1\n");
    for n in 1..=2 {
        ok(&["send", s(&dir), "counter", &format!("increment({n})")]);
    }
    let before = read_entries(&dir).len();
    poison_manifest_changes(&dir, 2);
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(
        error.contains("entry #2 is listed as a manifest change but is not one"),
        "{error}"
    );
    assert_eq!(read_entries(&dir).len(), before, "something was journaled");
}

/// Overwrite the journal's cache of manifest changes with one that names entry `seq`.
fn poison_manifest_changes(dir: &std::path::Path, seq: u64) {
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    txn.open_table(meta)
        .unwrap()
        .insert(
            "manifest_changes",
            postcard::to_allocvec(&vec![seq]).unwrap().as_slice(),
        )
        .unwrap();
    txn.commit().unwrap();
}

/// A snapshot that leaves an agent out (so that reopening would start it from scratch) is named,
/// even signed by the host key.
#[test]
fn a_snapshot_leaving_an_agent_out_is_named_even_when_signed() {
    let (_scratch, dir) = init("counter");
    append_to_manifest(&dir, "snapshot_every = 1\n");
    for n in 1..=2 {
        ok(&["send", s(&dir), "counter", &format!("increment({n})")]);
    }
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    let mut entries = read_entries(&dir);
    let at = entries
        .iter()
        .rposition(|e| matches!(e.body, EntryBody::Snapshot(_)))
        .unwrap();
    let EntryBody::Snapshot(snapshot) = &mut entries[at].body else {
        unreachable!()
    };
    snapshot.agents.clear();
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!("entry #{at}: snapshot holds the states of none, but the manifest in force has counter"),
    );
}

/// Blame goes where the signatures put it: a forged snapshot whose next checkpoint was also
/// rewritten (its signature no longer checks) is reported as altered entries, not as something
/// the host signed.
#[test]
fn a_checkpoint_rewritten_to_cover_a_forgery_does_not_shift_the_blame_to_the_host() {
    let world = audited_fixture();
    let mut entries = read_entries(&world.dir);
    let at = world.entry_of("snapshot", 1);
    let EntryBody::Snapshot(snapshot) = &mut entries[at as usize].body else {
        unreachable!()
    };
    snapshot.after_step += 1;
    let next = (at as usize..entries.len())
        .find(|&i| matches!(entries[i].body, EntryBody::Checkpoint(_)))
        .unwrap();
    let EntryBody::Checkpoint(checkpoint) = &mut entries[next].body else {
        unreachable!()
    };
    checkpoint.body.entries_root = [0x5a; 32];
    forge_journal(&world.dir, entries);
    let error = fails(&["verify", s(&world.dir)], 1);
    assert!(
        error.contains(&format!("are not what checkpoint #{next} signed")),
        "{error}"
    );
    assert!(named(&error).contains(&at), "{error}");
}

/// Every earlier checkpoint is as genuine as the last, so signatures cannot tell a journal cut
/// back to one of them (to have what was journaled since done again) or stripped of them and
/// relabelled as an older format. The host that signed the journal here remembers how far.
#[test]
fn a_writer_refuses_a_journal_cut_back_or_stripped_of_its_checkpoints() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let journal = dir.join(".agentos/journal.redb");
    let earlier = std::fs::read(&journal).unwrap();
    let earlier_entries = read_entries(&dir).len();
    ok(&["send", s(&dir), "counter", "increment(2)"]);
    let signed = read_entries(&dir);

    std::fs::write(&journal, &earlier).unwrap();
    ok(&["verify", s(&dir)]); // Self-consistent: every checkpoint in it is genuine.
    for args in [
        &["send", s(&dir), "counter", "increment(3)"][..],
        &["run", s(&dir)],
        &["rotate-key", s(&dir)],
    ] {
        let error = fails(args, 2);
        assert!(error.contains("it was cut back"), "{args:?}: {error}");
        assert!(error.contains("if it is a copy restored on purpose, remove"), "{error}");
    }
    assert_eq!(read_entries(&dir).len(), earlier_entries, "something was journaled");

    // Stripped of its checkpoints and relabelled as a format that signed none.
    let mut stripped: Vec<Entry> = signed
        .iter()
        .filter(|e| !matches!(e.body, EntryBody::Checkpoint(_)))
        .cloned()
        .collect();
    let EntryBody::Genesis(genesis) = &mut stripped[0].body else {
        panic!("entry #0 is not genesis")
    };
    genesis.format_version = 4;
    forge_journal(&dir, stripped.clone());
    let error = fails(&["send", s(&dir), "counter", "increment(3)"], 2);
    assert!(error.contains("its checkpoints were removed"), "{error}");
    // ... and passed off as another world.
    let EntryBody::Genesis(genesis) = &mut stripped[0].body else {
        unreachable!()
    };
    genesis.world_id = [7; 16];
    forge_journal(&dir, stripped);
    let error = fails(&["send", s(&dir), "counter", "increment(3)"], 2);
    assert!(error.contains("and this journal names world 0707"), "{error}");

    // Re-keyed throughout and re-signed with a key of the forger's, put in as the host key.
    let forger = tempfile::tempdir().unwrap();
    let forger_key_file = forger.path().join("host.key");
    let mallory = agentos_journal::receipts::HostKey::load_or_create(&forger_key_file).unwrap();
    let mut rekeyed = signed.clone();
    rekey(&mut rekeyed, &mallory);
    forge_journal_with_key(&dir, rekeyed, &mallory);
    let key_file = dir.join(".agentos/host.key");
    let genuine_key = std::fs::read(&key_file).unwrap();
    std::fs::copy(&forger_key_file, &key_file).unwrap();
    let error = fails(&["send", s(&dir), "counter", "increment(3)"], 2);
    assert!(error.contains("its history was replaced"), "{error}");
    std::fs::write(&key_file, genuine_key).unwrap();
    assert_eq!(read_entries(&dir).len(), signed.len(), "something was journaled");

    // A restore on purpose: the operator removes the record the error names.
    std::fs::write(&journal, &earlier).unwrap();
    let error = fails(&["send", s(&dir), "counter", "increment(3)"], 2);
    let record = error
        .split("remove ")
        .nth(1)
        .and_then(|rest| rest.split(" to take it").next())
        .expect("the error names the record");
    std::fs::remove_file(record).unwrap();
    ok(&["send", s(&dir), "counter", "increment(3)"]);
    replay_and_verify(&dir);
}

/// The host reads and writes its private files only where they are: a link planted in their
/// place (to have the host sign with, or write into, a file of someone else's choosing) is
/// refused, and nothing is journaled.
#[test]
fn links_planted_for_the_journal_or_the_host_key_are_refused() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let before = read_entries(&dir).len();
    let elsewhere = tempfile::tempdir().unwrap();
    for file in ["journal.redb", "host.key"] {
        let path = dir.join(".agentos").join(file);
        let moved = elsewhere.path().join(file);
        std::fs::rename(&path, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &path).unwrap();
        let error = fails(&["send", s(&dir), "counter", "increment(2)"], 2);
        assert!(error.contains("is a symbolic link"), "{file}: {error}");
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&moved, &path).unwrap();
    }
    assert_eq!(read_entries(&dir).len(), before, "something was journaled");
    ok(&["send", s(&dir), "counter", "increment(2)"]);
    replay_and_verify(&dir);
}
