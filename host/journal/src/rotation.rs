//! Key rotation: a world's host key is replaced by journaling a statement that introduces the
//! new key, signed by the key in force and countersigned by the new one. Verification follows
//! the chain of keys from the genesis key: every signature is checked against the key in force
//! at its entry. This module does no IO.

use crate::receipts::{HostKey, SignedBytesError, domain_separated, from_domain_separated, key_id};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separation prefix of a rotation statement's signed bytes.
pub const ROTATION_DOMAIN: &[u8] = b"agentos.key-rotation.v1\0";

/// What a rotation states. Field order is part of the signed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Id of the key in force, which signs this statement.
    pub old_key_id: [u8; 8],
    /// The key in force from this entry on.
    pub new_public_key: [u8; 32],
}

impl RotationBody {
    /// The bytes both signatures cover: the domain prefix, then postcard.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(ROTATION_DOMAIN, self)
    }

    pub fn from_signing_bytes(bytes: &[u8]) -> Result<RotationBody, SignedBytesError> {
        from_domain_separated(ROTATION_DOMAIN, bytes)
    }
}

/// Why a rotation statement does not hand over from the key in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    #[error("rotation names key {named} as the one in force, but the key in force is {in_force}")]
    NotFromKeyInForce { named: String, in_force: String },
    #[error("the new key is not a valid ed25519 public key: {0}")]
    NotAKey(String),
    #[error("{who}'s signature is not 64 bytes")]
    SignatureLength { who: &'static str },
    #[error("{who}'s signature does not verify")]
    BadSignature { who: &'static str },
}

/// A rotation statement with the old key's signature and the new key's countersignature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    pub body: RotationBody,
    pub old_signature: Vec<u8>,
    pub new_signature: Vec<u8>,
}

impl KeyRotation {
    pub fn new(world_id: [u8; 16], old: &HostKey, new: &HostKey) -> KeyRotation {
        let body = RotationBody {
            version: 1,
            world_id,
            old_key_id: old.key_id(),
            new_public_key: new.public().to_bytes(),
        };
        let bytes = body.signing_bytes();
        KeyRotation {
            old_signature: old.signature(&bytes),
            new_signature: new.signature(&bytes),
            body,
        }
    }

    /// Check the statement against the key in force; returns the key it puts in force.
    pub fn verify(&self, in_force: &VerifyingKey) -> Result<VerifyingKey, RotationError> {
        if self.body.old_key_id != key_id(in_force) {
            return Err(RotationError::NotFromKeyInForce {
                named: hex::encode(self.body.old_key_id),
                in_force: hex::encode(key_id(in_force)),
            });
        }
        let new =
            VerifyingKey::from_bytes(&self.body.new_public_key).map_err(|e| RotationError::NotAKey(e.to_string()))?;
        let bytes = self.body.signing_bytes();
        for (who, key, signature) in [
            ("the key in force", in_force, &self.old_signature),
            ("the new key", &new, &self.new_signature),
        ] {
            let signature = Signature::from_slice(signature).map_err(|_| RotationError::SignatureLength { who })?;
            key.verify(&bytes, &signature)
                .map_err(|_| RotationError::BadSignature { who })?;
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_verifies_under_the_old_key_only_and_puts_the_new_one_in_force() {
        let (old, new, stranger) = (
            HostKey::ephemeral().unwrap(),
            HostKey::ephemeral().unwrap(),
            HostKey::ephemeral().unwrap(),
        );
        let rotation = KeyRotation::new([1; 16], &old, &new);
        assert_eq!(rotation.verify(&old.public()), Ok(new.public()));
        assert!(matches!(
            rotation.verify(&stranger.public()),
            Err(RotationError::NotFromKeyInForce { .. })
        ));
        let mut forged = rotation.clone();
        forged.body.new_public_key = stranger.public().to_bytes();
        assert!(matches!(
            forged.verify(&old.public()),
            Err(RotationError::BadSignature { .. })
        ));
        assert_eq!(
            RotationBody::from_signing_bytes(&rotation.body.signing_bytes()),
            Ok(rotation.body)
        );
    }
}
