//! The master key: configured (`ORDERS_MASTER_KEY`), or generated once into the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{KeyInit, OsRng};
use sha2::{Digest, Sha256};

/// File in the data directory that holds the generated master key (base64, mode 0600).
pub const MASTER_KEY_FILE: &str = "master-key";

/// The key that wraps every customer's data key. Back it up apart from the database: without it
/// no personal data can be read.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A master key from its base64 text (32 bytes once decoded).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            anyhow::anyhow!(
                "the master key is not base64; generate one with `openssl rand -base64 32`"
            )
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!(
                "the master key must be 32 bytes; generate one with `openssl rand -base64 32`"
            )
        })?;
        Ok(Self::from_bytes(key))
    }

    /// A master key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        // The fingerprint names the key in `customer_keys.master_key_id` without revealing it.
        let digest = Sha256::new()
            .chain_update(b"orders/v1/master-key-id/")
            .chain_update(key)
            .finalize();
        let id = hex::encode(&digest[..8]);
        Self { key, id }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key's fingerprint (16 hex digits): safe to store and log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's base64 text (for writing it out; never log it).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key.into())
    }

    /// The configured key, or the one in `data_dir` (generated on first use, mode 0600).
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(key) = Self::load(configured, data_dir)? {
            return Ok(key);
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let key = Self::generate();
        match write_new(&data_dir.join(MASTER_KEY_FILE), &key.to_base64()) {
            Ok(()) => Ok(key),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(None, data_dir)
            }
            Err(e) => Err(e).with_context(|| {
                format!("cannot create {}", data_dir.join(MASTER_KEY_FILE).display())
            }),
        }
    }

    /// The configured key, or the one in `data_dir`, or `None`. Never creates one.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Option<Self>> {
        if let Some(text) = configured {
            return Self::from_base64(text)
                .context("ORDERS_MASTER_KEY is not a usable key")
                .map(Some);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text)
                .with_context(|| format!("{} does not hold a usable key", path.display()))
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Writes `text` to a new file readable by its owner only; fails if the file exists.
pub(super) fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(MasterKey::load(None, dir.path()).unwrap().is_none());
        let first = MasterKey::load_or_create(None, dir.path()).unwrap();
        let again = MasterKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(first.id(), again.id());
        assert_eq!(first.id().len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_wins_and_a_bad_one_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let loaded = MasterKey::load_or_create(Some(&key.to_base64()), dir.path()).unwrap();
        assert_eq!(loaded.id(), key.id());
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
        let short = STANDARD.encode([7u8; 16]);
        let error = format!(
            "{:#}",
            MasterKey::load(Some(&short), dir.path()).unwrap_err()
        );
        assert!(error.contains("32 bytes"), "{error}");
        assert!(!error.contains(&short), "{error}");
        let error = format!(
            "{:#}",
            MasterKey::load(Some("not base64!"), dir.path()).unwrap_err()
        );
        assert!(error.contains("not base64"), "{error}");
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
