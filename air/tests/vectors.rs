//! Canonical encoding test vectors: each `tests/vectors/*.toml` → canonical bytes (hex) → sha256,
//! pinned in `tests/vectors/expected.json`. An independent implementation of AIR checks itself
//! against these; a change to the canonical form shows here first. `AGENTOS_BLESS=1` rewrites the
//! expectations.

use agentos_air::Manifest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn vectors_encode_to_their_pinned_bytes_and_hashes_and_decode_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut actual = BTreeMap::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "vectors missing in {}", dir.display());
    for path in names {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let manifest = Manifest::parse_toml(&std::fs::read_to_string(&path).unwrap(), &name).unwrap();
        let canonical = manifest.canonical_bytes();
        assert_eq!(
            Manifest::from_canonical_bytes(&canonical, &name).unwrap(),
            manifest,
            "{name}"
        );
        assert_eq!(
            Manifest::parse_json(&manifest.to_json(), &name).unwrap(),
            manifest,
            "{name}"
        );
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(&canonical)),
            manifest.digest(),
            "{name}"
        );
        actual.insert(
            name,
            serde_json::json!({ "canonical": hex::encode(&canonical), "sha256": hex::encode(manifest.digest()) }),
        );
    }
    let expected_file = dir.join("expected.json");
    let actual = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("AGENTOS_BLESS").is_some() {
        std::fs::write(&expected_file, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "the canonical encoding changed; if intended, it changes every manifest's identity: rerun with AGENTOS_BLESS=1"
    );
}

#[test]
fn every_vector_manifest_round_trips_through_its_toml_form() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let manifest = Manifest::parse_toml(&std::fs::read_to_string(&path).unwrap(), "v").unwrap();
            let text = manifest.to_toml().unwrap();
            let again =
                Manifest::parse_toml(&text, "written").unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            assert_eq!(again.digest(), manifest.digest(), "{}", path.display());
        }
    }
}
