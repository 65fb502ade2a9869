//! `agentos-host keys …`: ed25519 keys for people (approvers of governed changes), one file per
//! key, readable by its owner only, under the user's configuration directory.
//!
//! The directory is `$AGENTOS_KEYS_DIR`, else `$XDG_CONFIG_HOME/agentos/keys`, else
//! `$HOME/.config/agentos/keys`. A key file holds the 32-byte secret; `keys show` prints the
//! public key to paste into a world's `[policy] approvers`.

use agentos_runtime::receipts::{HostKey, key_id};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new key NAME (refuses to overwrite one).
    New {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List the keys, with their public keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print the public key of NAME, for a policy's `approvers`.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn keys_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("AGENTOS_KEYS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            PathBuf::from(std::env::var_os("HOME").context("neither AGENTOS_KEYS_DIR nor HOME is set")?).join(".config")
        }
    };
    Ok(config.join("agentos/keys"))
}

fn key_path(name: &str) -> Result<PathBuf> {
    let valid =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("key name `{name}`: use 1-64 letters, digits, `-` or `_`");
    }
    Ok(keys_dir()?.join(format!("{name}.key")))
}

fn describe(name: &str, key: &HostKey, json: bool) -> String {
    let public = hex::encode(key.public().as_bytes());
    if json {
        serde_json::json!({ "name": name, "public_key": public, "key_id": hex::encode(key_id(&key.public())) })
            .to_string()
    } else {
        format!("{name}  {public}")
    }
}

/// A person's key by name.
pub fn load(name: &str) -> Result<HostKey> {
    let path = key_path(name)?;
    if !path.exists() {
        bail!(
            "no key `{name}` in {} (create it with `agentos-host keys new {name}`)",
            keys_dir()?.display()
        );
    }
    Ok(HostKey::load_or_create(&path)?)
}

pub fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::New { name, json } => {
            let path = key_path(&name)?;
            if path.exists() {
                bail!(
                    "key `{name}` already exists ({}); keys are never overwritten",
                    path.display()
                );
            }
            let dir = path.parent().expect("a key file has a directory");
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let key = HostKey::load_or_create(&path)?;
            outln!("{}", describe(&name, &key, json))?;
            if !json {
                eprintln!("secret key written to {} (readable by you only)", path.display());
            }
        }
        KeysCommand::Show { name, json } => outln!("{}", describe(&name, &load(&name)?, json))?,
        KeysCommand::List { json } => {
            let dir = keys_dir()?;
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".key").map(str::to_string))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
            };
            names.sort();
            for name in names {
                outln!(
                    "{}",
                    describe(&name, &HostKey::load_or_create(&key_path(&name)?)?, json)
                )?;
            }
        }
    }
    Ok(())
}
