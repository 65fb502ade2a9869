//! Receipts: the signed record of one effect call, and the host key that signs them.
//!
//! A receipt's signature is ed25519 over `"agentos.receipt.v1\0" || postcard(ReceiptBody)`
//! (see `docs/receipts.md`), so any ed25519 library can check it from the bytes that
//! `agentos-host receipts --json` prints. This module does no IO besides the key file.

use crate::entry::Digest;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Domain separation prefix of the signed bytes.
pub const RECEIPT_DOMAIN: &[u8] = b"agentos.receipt.v1\0";

/// The receipt body version this host writes: 2 from format 5 on (same layout as 1). A receipt
/// of version 2 shows that its world was written by a host that signs every entry, so a journal
/// relabelled as older to shed its checkpoints still carries the evidence.
pub const RECEIPT_VERSION: u8 = 2;

/// How an effect call ended, as recorded in its receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptStatus {
    Ok,
    Denied,
    Failed,
    BudgetExceeded,
    InDoubt,
    Timeout,
}

impl ReceiptStatus {
    /// Whether the call got as far as its adapter (and so used its grant's budget).
    pub fn reached_adapter(self) -> bool {
        matches!(self, ReceiptStatus::Ok | ReceiptStatus::Failed | ReceiptStatus::Timeout)
    }

    pub fn label(self) -> &'static str {
        match self {
            ReceiptStatus::Ok => "ok",
            ReceiptStatus::Denied => "denied",
            ReceiptStatus::Failed => "failed",
            ReceiptStatus::BudgetExceeded => "budget-exceeded",
            ReceiptStatus::InDoubt => "in-doubt",
            ReceiptStatus::Timeout => "timeout",
        }
    }
}

/// Resource use of one effect call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// What a receipt attests. Field order is part of the signed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Journal position: the step's ingress entry and the call's index within the step.
    pub ingress: u64,
    pub effect_index: u32,
    pub agent: String,
    pub effect: String,
    /// What the call addressed: `provider/model` (llm), `METHOD url` (http), the path (fs), the
    /// digest or size (blob), the target (emit), `schedule` / `cancel <id>` (timer), the
    /// language (compile), the level (log).
    pub subject: String,
    /// The capability that allowed (or the reason no capability allowed) the call.
    pub grant: Option<String>,
    pub request_digest: Digest,
    pub outcome_digest: Digest,
    pub status: ReceiptStatus,
    /// Host wall time around the adapter call, ms since the Unix epoch (not seen by the guest).
    pub started_ms: u64,
    pub finished_ms: u64,
    pub usage: Usage,
    /// First 8 bytes of sha256(public key) of the signing key.
    pub key_id: [u8; 8],
}

impl ReceiptBody {
    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(RECEIPT_DOMAIN, self)
    }
}

/// `domain ‖ postcard(body)`: the bytes a host signature covers (receipts, checkpoints, key
/// rotations each have their own domain).
pub fn domain_separated<T: Serialize>(domain: &[u8], body: &T) -> Vec<u8> {
    let mut bytes = domain.to_vec();
    bytes.extend(postcard::to_allocvec(body).expect("signed bodies always encode"));
    bytes
}

/// Why signed bytes are not the body they should hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedBytesError {
    #[error("the signed bytes do not start with {domain}")]
    WrongDomain { domain: String },
    #[error("the signed bytes are not a {domain} body: {reason}")]
    Malformed { domain: String, reason: String },
}

/// The body back from bytes made by [`domain_separated`]; the error says what they are not.
pub fn from_domain_separated<T: serde::de::DeserializeOwned>(
    domain: &[u8],
    bytes: &[u8],
) -> Result<T, SignedBytesError> {
    let domain_name = || String::from_utf8_lossy(domain.strip_suffix(b"\0").unwrap_or(domain)).into_owned();
    let body = bytes
        .strip_prefix(domain)
        .ok_or_else(|| SignedBytesError::WrongDomain { domain: domain_name() })?;
    postcard::from_bytes(body).map_err(|e| SignedBytesError::Malformed {
        domain: domain_name(),
        reason: e.to_string(),
    })
}

/// A receipt body with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    pub body: ReceiptBody,
    /// 64-byte ed25519 signature.
    pub signature: Vec<u8>,
}

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("signature is {0} bytes, not 64")]
    SignatureLength(usize),
    #[error("signed by key {found}, not by the expected host key {expected}")]
    UnknownKey { found: String, expected: String },
    #[error("signature does not verify under the world's host key")]
    BadSignature,
}

impl SignedReceipt {
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ReceiptError> {
        verify_signature(key, self.body.key_id, &self.body.signing_bytes(), &self.signature)
    }
}

/// Check `signature` over `signed_bytes` by `key`, whose id the signed body names as `claimed_key_id`.
pub fn verify_signature(
    key: &VerifyingKey,
    claimed_key_id: [u8; 8],
    signed_bytes: &[u8],
    signature: &[u8],
) -> Result<(), ReceiptError> {
    let expected = key_id(key);
    if claimed_key_id != expected {
        return Err(ReceiptError::UnknownKey {
            found: hex::encode(claimed_key_id),
            expected: hex::encode(expected),
        });
    }
    let bytes: [u8; 64] = signature
        .try_into()
        .map_err(|_| ReceiptError::SignatureLength(signature.len()))?;
    key.verify(signed_bytes, &Signature::from_bytes(&bytes))
        .map_err(|_| ReceiptError::BadSignature)
}

/// Short identifier of a public key.
pub fn key_id(key: &VerifyingKey) -> [u8; 8] {
    let digest = crate::entry::sha256(key.as_bytes());
    digest[..8].try_into().expect("8 bytes")
}

/// Errors reading or creating the host key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("host key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("host key {path} is {len} bytes; expected a 32-byte ed25519 secret key")]
    Malformed { path: PathBuf, len: usize },
    #[error("cannot draw randomness for a new key: {0}")]
    Random(String),
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
}

/// The world's ed25519 signing key.
pub struct HostKey {
    signing: SigningKey,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("public", &hex::encode(self.public().as_bytes()))
            .finish()
    }
}

impl HostKey {
    /// Load the key at `path`, creating it (mode 0600) if it does not exist. A key file that
    /// is a symbolic link, or not this user's, is refused (see [`crate::private::file`]).
    pub fn load_or_create(path: &Path) -> Result<HostKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        crate::private::file(path)?;
        match crate::private::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Malformed {
                    path: path.to_path_buf(),
                    len: bytes.len(),
                })?;
                Ok(HostKey {
                    signing: SigningKey::from_bytes(&secret),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = HostKey::ephemeral()?;
                crate::private::write_new(path, key.signing.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A fresh key that lives in memory only (for opening a world that will sign nothing).
    pub fn ephemeral() -> Result<HostKey, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(HostKey {
            signing: SigningKey::from_bytes(&secret),
        })
    }

    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn key_id(&self) -> [u8; 8] {
        key_id(&self.public())
    }

    pub fn sign(&self, body: ReceiptBody) -> SignedReceipt {
        SignedReceipt {
            signature: self.signature(&body.signing_bytes()),
            body,
        }
    }

    /// An ed25519 signature over `signed_bytes` (which must carry their own domain prefix).
    pub fn signature(&self, signed_bytes: &[u8]) -> Vec<u8> {
        self.signing.sign(signed_bytes).to_bytes().to_vec()
    }
}

/// Signs receipts on a thread of its own, so a step goes on (its next adapter call, its guest
/// code) while the receipts it has produced are being signed; the step's journal commit waits for
/// the signatures (see [`crate::Journal::append_deferred`]).
pub struct ReceiptSigner {
    key_id: [u8; 8],
    jobs: std::sync::mpsc::Sender<(ReceiptBody, std::sync::mpsc::SyncSender<SignedReceipt>)>,
}

/// A receipt handed to the signer; [`PendingReceipt::wait`] returns it signed.
pub struct PendingReceipt(std::sync::mpsc::Receiver<SignedReceipt>);

impl PendingReceipt {
    pub fn wait(self) -> SignedReceipt {
        self.0
            .recv()
            .expect("the receipt signer thread outlives every pending receipt")
    }
}

impl ReceiptSigner {
    /// Start the signing thread; it stops when the signer is dropped.
    pub fn spawn(key: std::sync::Arc<HostKey>) -> ReceiptSigner {
        let (jobs, queue) = std::sync::mpsc::channel::<(ReceiptBody, std::sync::mpsc::SyncSender<SignedReceipt>)>();
        let key_id = key.key_id();
        std::thread::Builder::new()
            .name("receipt-signer".into())
            .spawn(move || {
                for (body, reply) in queue {
                    // The receiver is gone only if its step was abandoned; nothing to deliver then.
                    let _ = reply.send(key.sign(body));
                }
            })
            .expect("spawn the receipt signer thread");
        ReceiptSigner { key_id, jobs }
    }

    pub fn key_id(&self) -> [u8; 8] {
        self.key_id
    }

    pub fn submit(&self, body: ReceiptBody) -> PendingReceipt {
        let (reply, receiver) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send((body, reply))
            .expect("the receipt signer thread runs as long as its signer");
        PendingReceipt(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &HostKey) -> ReceiptBody {
        ReceiptBody {
            version: 1,
            world_id: [7; 16],
            ingress: 3,
            effect_index: 0,
            agent: "hello".into(),
            effect: "http".into(),
            subject: "GET http://127.0.0.1/".into(),
            grant: Some("web".into()),
            request_digest: [1; 32],
            outcome_digest: [2; 32],
            status: ReceiptStatus::Ok,
            started_ms: 10,
            finished_ms: 12,
            usage: Usage::default(),
            key_id: key.key_id(),
        }
    }

    #[test]
    fn sign_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::load_or_create(&dir.path().join("k")).unwrap();
        let receipt = key.sign(body(&key));
        receipt.verify(&key.public()).unwrap();
        let mut tampered = receipt.clone();
        tampered.body.status = ReceiptStatus::Denied;
        assert_eq!(tampered.verify(&key.public()), Err(ReceiptError::BadSignature));
        let other = HostKey::load_or_create(&dir.path().join("other")).unwrap();
        assert!(matches!(
            receipt.verify(&other.public()),
            Err(ReceiptError::UnknownKey { .. })
        ));
    }

    /// The signed bytes are a public format (docs/journal.md): pin them byte for byte.
    #[test]
    fn signing_bytes_match_the_golden_file() {
        let mut body = body(&HostKey {
            signing: SigningKey::from_bytes(&[9; 32]),
        });
        body.usage = Usage {
            bytes_sent: 300,
            bytes_received: 5,
            tokens_in: 0,
            tokens_out: 1,
        };
        let actual = hex::encode(body.signing_bytes()) + "\n";
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/receipt-signing-bytes.hex");
        if std::env::var_os("AGENTOS_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(
            actual, expected,
            "receipt signing bytes changed; if intended, bump the receipt version and rerun with AGENTOS_BLESS=1"
        );
    }

    #[test]
    fn the_signer_thread_signs_what_the_key_signs() {
        let dir = tempfile::tempdir().unwrap();
        let key = std::sync::Arc::new(HostKey::load_or_create(&dir.path().join("k")).unwrap());
        let signer = ReceiptSigner::spawn(key.clone());
        let pending: Vec<_> = (0..10)
            .map(|i| {
                let mut body = body(&key);
                body.effect_index = i;
                signer.submit(body)
            })
            .collect();
        for (i, pending) in pending.into_iter().enumerate() {
            let receipt = pending.wait();
            assert_eq!(receipt.body.effect_index, i as u32);
            receipt.verify(&key.public()).unwrap();
            assert_eq!(
                receipt,
                key.sign(receipt.body.clone()),
                "ed25519 signatures are deterministic"
            );
        }
    }

    #[test]
    fn key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        let key = HostKey::load_or_create(&path).unwrap();
        let again = HostKey::load_or_create(&path).unwrap();
        assert_eq!(key.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
