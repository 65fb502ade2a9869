//! The README's first command: the demo worlds run end to end, offline, and stay replayable.

mod common;
use common::*;

#[test]
fn the_demo_runs_end_to_end_offline() {
    let scratch = tempfile::tempdir().unwrap();
    let out = ok(&["demo", s(scratch.path())]);
    assert_eq!(out.matches("replay OK").count(), 2, "{out}");
    assert_eq!(out.matches("verify OK").count(), 2, "{out}");
    assert!(out.contains("DENIED: no http grant of agent `hello`"), "{out}");
    assert!(out.contains("(emit:summarizer"), "{out}");
    assert!(out.contains("reminder: summary sha256:"), "{out}");
    for world in ["basics", "pipeline"] {
        replay_and_verify(&scratch.path().join(world));
    }
}
