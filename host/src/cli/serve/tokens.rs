//! Bearer tokens of `serve`: a token file lists each token's name, the sha256 of the token and
//! its scopes. The token itself is shown once, when `agentos-host token new` makes it, and is
//! never stored; a request's token is hashed and looked up.

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// What a token may do; every endpoint needs one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read worlds: status, entries, the live stream, receipts, proofs, bundles, agents.
    Read,
    /// Send events to agents and plans.
    Send,
    /// Change worlds: proposals, verdicts, apply, revert, plan runs.
    Operate,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Operate => "operate",
        }
    }
}

/// One token as the file records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub name: String,
    /// sha256 of the token, hex.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenRecord>,
}

/// The tokens `serve` accepts, by hash.
#[derive(Debug, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], TokenRecord>,
}

/// Who made a request, as its token says.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Tokens {
    /// Read a token file; errors name the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Tokens> {
        let file = read_file(path)?;
        let mut by_hash = HashMap::new();
        for record in file.tokens {
            check_name(&record.name).with_context(|| path.display().to_string())?;
            let hash =
                parse_hash(&record.sha256).with_context(|| format!("{}: token `{}`", path.display(), record.name))?;
            if record.scopes.is_empty() {
                bail!("{}: token `{}` has no scopes", path.display(), record.name);
            }
            if let Some(other) = by_hash.insert(hash, record.clone()) {
                bail!(
                    "{}: tokens `{}` and `{}` have the same hash",
                    path.display(),
                    other.name,
                    record.name
                );
            }
        }
        Ok(Tokens { by_hash })
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The caller a presented token stands for.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let record = self.by_hash.get(&hash_of(token))?;
        Some(Caller {
            name: record.name.clone(),
            scopes: record.scopes.clone(),
        })
    }
}

fn hash_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text).context("`sha256` is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("`sha256` is not 32 bytes of hex"))
}

fn read_file(path: &Path) -> Result<TokenFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
        Err(error) => return Err(error).with_context(|| format!("cannot read token file {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("token file {}", path.display()))
}

/// A token's name: letters, digits, `-`, `_`, `.`, at most 64 of them.
fn check_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        bail!("token name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

/// Make a token named `name` with `scopes`, add its hash to the token file (created if
/// missing), and return the token.
pub fn new_token(path: &Path, name: &str, scopes: &[Scope]) -> Result<String> {
    check_name(name)?;
    if scopes.is_empty() {
        bail!("give the token at least one --scope (read, send, operate)");
    }
    let mut file = read_file(path)?;
    if file.tokens.iter().any(|t| t.name == name) {
        bail!(
            "{} already has a token named `{name}` (revoke it first to replace it)",
            path.display()
        );
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    let token = format!("aos_{}", hex::encode(secret));
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    file.tokens.push(TokenRecord {
        name: name.to_string(),
        sha256: hex::encode(hash_of(&token)),
        scopes,
    });
    write_file(path, &file)?;
    Ok(token)
}

/// Remove the token named `name` from the token file.
pub fn revoke(path: &Path, name: &str) -> Result<()> {
    let mut file = read_file(path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.name != name);
    if file.tokens.len() == before {
        bail!("{} has no token named `{name}`", path.display());
    }
    write_file(path, &file)
}

/// The tokens of a token file (names and scopes; hashes are all the file holds).
pub fn list(path: &Path) -> Result<Vec<TokenRecord>> {
    Ok(read_file(path)?.tokens)
}

fn write_file(path: &Path, file: &TokenFile) -> Result<()> {
    let text = format!(
        "# Bearer tokens of `agentos-host serve`: only each token's sha256 is kept.\n\n{}",
        toml::to_string(file).expect("a token file encodes")
    );
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("cannot write token file {}", path.display()))?;
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token, add its hash to FILE (created if missing) and print the token: it is shown
    /// only this once.
    New {
        file: std::path::PathBuf,
        /// A name for the token (who or what holds it); events it sends are journaled from
        /// `http:<name>`.
        #[arg(long)]
        name: String,
        /// What it may do; repeat or separate with commas.
        #[arg(long = "scope", value_enum, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,
        #[arg(long)]
        json: bool,
    },
    /// List the tokens of FILE: names and scopes.
    List {
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Remove the token named NAME from FILE (a running server reads FILE when it starts).
    Revoke { file: std::path::PathBuf, name: String },
}

pub fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::New {
            file,
            name,
            scopes,
            json,
        } => {
            let token = new_token(&file, &name, &scopes)?;
            if json {
                outln!("{}", serde_json::json!({ "name": name, "token": token }))?;
            } else {
                outln!("{token}")?;
                eprintln!(
                    "token `{name}` added to {}; it is shown only now: keep it in a secret store",
                    file.display()
                );
            }
        }
        TokenCommand::List { file, json } => {
            let tokens = list(&file)?;
            if json {
                outln!("{}", serde_json::to_string(&tokens)?)?;
            } else {
                for token in tokens {
                    let scopes: Vec<&str> = token.scopes.iter().map(|s| s.label()).collect();
                    outln!("{:<24} {}", token.name, scopes.join(","))?;
                }
            }
        }
        TokenCommand::Revoke { file, name } => {
            revoke(&file, &name)?;
            outln!("token `{name}` removed from {}", file.display())?;
        }
    }
    Ok(())
}
