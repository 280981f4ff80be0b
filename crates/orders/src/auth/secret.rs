//! The signing secret: configured, or generated once and kept in the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use uuid::Uuid;

/// Shortest configured secret accepted: HS256 keys shorter than the hash output are weak.
const MIN_SECRET_LEN: usize = 32;

/// File in the data directory that holds the generated secret.
pub const SECRET_FILE: &str = "jwt-secret";

/// The configured secret, or the one in `data_dir`, or `None` if neither exists. Never creates
/// anything: for `orders token` and `doctor`, which must not mint a secret the service would not
/// use.
pub fn load_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_LEN,
            "ORDERS_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes long; generate one with `openssl rand -hex 32`"
        );
        return Ok(Some(secret.as_bytes().to_vec()));
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_SECRET_LEN => {
            Ok(Some(secret.trim().as_bytes().to_vec()))
        }
        Ok(_) => anyhow::bail!(
            "{} is too short; delete it to have a new secret generated",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The configured secret, or the one in `data_dir` (generated on first use, mode 0600). Only the
/// service (`serve`) calls this.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = load_secret(configured, data_dir)? {
        return Ok(secret);
    }
    let path = data_dir.join(SECRET_FILE);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    // Two v4 UUIDs: 244 random bits from the OS generator, hex-encoded.
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(secret.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_secret(None, data_dir)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(None, dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create_secret(None, dir.path()).unwrap(), first);
    }

    #[test]
    fn loading_never_creates_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_secret(None, dir.path()).unwrap(), None);
        assert!(!dir.path().join(SECRET_FILE).exists());
        let created = load_or_create_secret(None, dir.path()).unwrap();
        assert_eq!(load_secret(None, dir.path()).unwrap(), Some(created));
    }

    #[test]
    fn a_short_configured_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_or_create_secret(Some("short"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
    }
}
