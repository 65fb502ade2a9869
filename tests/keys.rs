//! `agentos-host keys`: people's ed25519 keys, created once, private to their owner, listed and
//! shown as public keys for a policy's approvers.

use crate::common::*;

fn keys(dir: &std::path::Path) -> assert_cmd::Command {
    let mut command = host();
    command.env("AGENTOS_KEYS_DIR", dir);
    command
}

#[test]
fn keys_are_created_once_private_and_shown_as_public_keys() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("keys");
    let created: serde_json::Value =
        serde_json::from_str(&ok_with(keys(&dir), &["keys", "new", "ada", "--json"])).unwrap();
    let public = created["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 64);
    ok_with(keys(&dir), &["keys", "new", "bob"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("ada.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        ok_with(keys(&dir), &["keys", "show", "ada"]).trim(),
        format!("ada  {public}")
    );
    let list = ok_with(keys(&dir), &["keys", "list"]);
    let names: Vec<&str> = list.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["ada", "bob"]);

    let secret = std::fs::read(dir.join("ada.key")).unwrap();
    let output = keys(&dir).args(["keys", "new", "ada"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("key `ada` already exists"));
    assert_eq!(std::fs::read(dir.join("ada.key")).unwrap(), secret, "never overwritten");
    for (args, expected) in [
        (&["keys", "show", "cy"][..], "no key `cy`"),
        (
            &["keys", "new", "../escape"][..],
            "key name `../escape`: use 1-64 letters",
        ),
    ] {
        let output = keys(&dir).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    // The public key is what a policy names.
    let manifest = format!("[world]\nname = \"w\"\n[policy]\napprovers = {{ ada = \"{public}\" }}\n");
    assert!(agentos_air::Manifest::parse_toml(&manifest, "w").is_ok());
}
