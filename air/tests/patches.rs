//! Patches: `apply(diff(a, b), a) == b` for generated manifests, round trips through TOML and
//! JSON, and clear refusals for a wrong base, a stale pre-image and a result that is invalid.

use agentos_air::{DefKind, Manifest, Patch, PatchError, apply, diff};
use proptest::prelude::*;

const BASE: &str = r#"
    [world]
    name = "w"
    [modules.counter]
    component = "modules/counter.wasm"
    [modules.hello]
    component = "modules/hello.wasm"
    [caps.web]
    effect = "http"
    urls = ["https://example.com/**"]
    [caps.data]
    effect = "fs"
    dir = "data"
    [agents.counter]
    module = "counter"
    [agents.hello]
    module = "hello"
    grants = ["web", "data"]
    config = { greeting = "hi" }
"#;

fn base() -> Manifest {
    Manifest::parse_toml(BASE, "base.toml").unwrap()
}

/// A valid manifest: some modules, some caps, agents using them.
fn manifests() -> impl Strategy<Value = Manifest> {
    let modules = prop::collection::btree_set("[a-d]", 1..4);
    let caps = prop::collection::btree_map("[p-s]", (0u8..3, 1u64..5), 0..4);
    let agents = prop::collection::btree_map("[w-z]", (any::<prop::sample::Index>(), any::<u16>(), 0usize..3), 0..4);
    ("[a-c]{1,3}", modules, caps, agents, 0u32..3).prop_map(|(world, modules, caps, agents, quorum)| {
        let mut text = format!("[world]\nname = \"{world}\"\n");
        if quorum > 0 {
            let keys: Vec<String> = (0..quorum)
                .map(|n| format!("k{n} = \"{}\"", format!("{n:02x}").repeat(32)))
                .collect();
            text += &format!("[policy]\napprovers = {{ {} }}\nquorum = {quorum}\n", keys.join(", "));
        }
        let modules: Vec<String> = modules.into_iter().collect();
        for m in &modules {
            text += &format!("[modules.{m}]\ncomponent = \"modules/{m}.wasm\"\n");
        }
        for (name, (kind, n)) in &caps {
            text += &match kind {
                0 => format!("[caps.{name}]\neffect = \"http\"\nurls = [\"https://h{n}.example/**\"]\n"),
                1 => format!("[caps.{name}]\neffect = \"fs\"\ndir = \"d{n}\"\n"),
                _ => format!("[caps.{name}]\neffect = \"blob\"\nmax_bytes = {n}000\n"),
            };
        }
        for (name, (module, config, grants)) in &agents {
            let grants: Vec<String> = caps.keys().take(*grants).map(|c| format!("\"{c}\"")).collect();
            text += &format!(
                "[agents.{name}]\nmodule = \"{}\"\nconfig = {{ n = {config} }}\ngrants = [{}]\n",
                module.get(&modules),
                grants.join(", ")
            );
        }
        Manifest::parse_toml(&text, "generated.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn applying_the_diff_of_two_manifests_gives_the_second(a in manifests(), b in manifests()) {
        let patch = diff(&a, &b);
        prop_assert_eq!(&apply(&patch, &a).unwrap(), &b);
        // The same through both authored forms.
        prop_assert_eq!(&Patch::parse_toml(&patch.to_toml().unwrap(), "patch.toml").unwrap(), &patch);
        prop_assert_eq!(&Patch::parse_json(&patch.to_json(), "patch.json").unwrap(), &patch);
        prop_assert!(diff(&a, &a).changes.is_empty());
    }
}

#[test]
fn a_patch_names_what_it_changes_and_round_trips() {
    let old = base();
    let new = Manifest::parse_toml(
        &BASE
            .replace("config = { greeting = \"hi\" }", "config = { greeting = \"hello\" }")
            .replace("[agents.counter]\n    module = \"counter\"\n", ""),
        "new.toml",
    )
    .unwrap();
    let patch = diff(&old, &new);
    assert_eq!(patch.summary(), ["- agent counter", "~ agent hello"]);
    let text = patch.to_toml().unwrap();
    assert!(
        text.contains("op = \"replace\"") && text.contains("greeting = \"hello\""),
        "{text}"
    );
    assert_eq!(apply(&Patch::parse_toml(&text, "p.toml").unwrap(), &old).unwrap(), new);
}

#[test]
fn a_patch_for_another_base_or_a_changed_definition_is_refused() {
    let old = base();
    let new = Manifest::parse_toml(&BASE.replace("name = \"w\"", "name = \"v\""), "new.toml").unwrap();
    let patch = diff(&old, &new);
    let error = apply(&patch, &new).unwrap_err().to_string();
    assert!(
        error.starts_with("the patch was made against manifest sha256:"),
        "{error}"
    );

    // Rebased by hand onto a manifest where its target changed since: the pre-image is stale.
    let mut rebased = patch.clone();
    let moved = Manifest::parse_toml(&BASE.replace("name = \"w\"", "name = \"x\""), "moved.toml").unwrap();
    rebased.base = moved.digest();
    let error = apply(&rebased, &moved).unwrap_err();
    assert!(matches!(error, PatchError::Stale { kind: "world", .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("world `world` changed since the patch was made"),
        "{error}"
    );
}

#[test]
fn a_patch_that_leaves_a_dangling_reference_is_refused_by_validation() {
    let old = base();
    let text = format!(
        "base = \"{}\"\n[[changes]]\nop = \"remove\"\nkind = \"cap\"\nname = \"web\"\npre_image = \"{}\"\n",
        hex::encode(old.digest()),
        hex::encode(old.definitions()[&(DefKind::Cap, "web".to_string())].digest("web"))
    );
    let error = apply(&Patch::parse_toml(&text, "p.toml").unwrap(), &old)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the patched manifest is not valid") && error.contains("web"),
        "{error}"
    );
}

#[test]
fn malformed_patches_name_the_change_and_the_problem() {
    let base = hex::encode(base().digest());
    for (change, expected) in [
        (
            "op = \"add\"\nkind = \"agent\"\nname = \"a\"",
            "change 1 (agent `a`): Add needs a definition",
        ),
        (
            "op = \"remove\"\nkind = \"cap\"\nname = \"web\"",
            "change 1 (cap `web`): Remove needs the pre_image hash",
        ),
        (
            "op = \"remove\"\nkind = \"cap\"\nname = \"web\"\npre_image = \"abc\"",
            "pre_image `abc` is not a hex sha256",
        ),
        (
            "op = \"add\"\nkind = \"agent\"\nname = \"a\"\ndefinition = { modul = \"m\" }",
            "unknown field `modul`",
        ),
        (
            "op = \"rename\"\nkind = \"agent\"\nname = \"a\"",
            "unknown variant `rename`",
        ),
    ] {
        let text = format!("base = \"{base}\"\n[[changes]]\n{change}\n");
        let error = Patch::parse_toml(&text, "p.toml").unwrap_err().to_string();
        assert!(
            error.starts_with("p.toml") && error.contains(expected),
            "{expected}: {error}"
        );
    }
}

#[test]
fn a_json_patch_without_hashes_is_anchored_to_the_manifest_it_was_written_against() {
    let current = Manifest::parse_toml(
        "[world]\nname = \"w\"\n[modules.m]\ncomponent = \"m.wasm\"\n[agents.a]\nmodule = \"m\"\n",
        "w.toml",
    )
    .unwrap();
    let text = r#"{"changes": [
        {"op": "replace", "kind": "module", "name": "m", "definition": {"component": "n.wasm"}},
        {"op": "add", "kind": "module", "name": "spare", "definition": {"component": "s.wasm"}}
    ]}"#;
    let patch = Patch::parse_json_against(text, "agent", &current).unwrap();
    assert_eq!(patch.base, current.digest());
    let patched = agentos_air::apply(&patch, &current).unwrap();
    assert_eq!(patched.modules["m"].component, "n.wasm");
    assert_eq!(patched.modules["spare"].component, "s.wasm");
    // Given hashes are kept, so a stale one is still refused.
    let stale = text.replacen(
        "\"op\": \"replace\"",
        &format!("\"pre_image\": \"{}\", \"op\": \"replace\"", "00".repeat(32)),
        1,
    );
    let patch = Patch::parse_json_against(&stale, "agent", &current).unwrap();
    assert!(
        agentos_air::apply(&patch, &current)
            .unwrap_err()
            .to_string()
            .contains("changed since the patch was made")
    );
}
