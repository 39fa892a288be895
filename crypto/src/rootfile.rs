use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{CryptoError, SecretKey};

/// The root key: 32 random bytes in a file outside the database, mode 0600.
/// It wraps every KEK and the signing key. Losing it loses the data.
#[derive(Debug)]
pub struct RootKey {
    key: SecretKey,
    path: PathBuf,
}

impl RootKey {
    /// Generates a new root key into `path` (hex, mode 0600). Refuses if `path` exists.
    pub fn create(path: &Path) -> Result<Self, CryptoError> {
        let key = SecretKey::generate()?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let io = |source| CryptoError::RootKeyIo { path: path.to_path_buf(), source };
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CryptoError::RootKeyExists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
        let mut text = Zeroizing::new(hex::encode(key.expose()));
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Self { key, path: path.to_path_buf() })
    }

    /// Loads the root key from `path`, refusing a file that group or others can read.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::RootKeyIo { path: path.to_path_buf(), source };
        let meta = fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::RootKeyMode { path: path.to_path_buf(), mode });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), raw.as_mut()).map_err(|_| CryptoError::RootKeyMalformed(path.to_path_buf()))?;
        Ok(Self { key: SecretKey::from_bytes(*raw), path: path.to_path_buf() })
    }

    /// Where it was loaded from (for messages; never the key itself).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key, for wrapping KEKs and the signing key.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_and_refuse() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let p = d.path().join("root.key");
        let k = RootKey::create(&p)?;
        assert_eq!(RootKey::load(&p)?.key().expose(), k.key().expose());
        assert!(matches!(RootKey::create(&p), Err(CryptoError::RootKeyExists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
            let err = RootKey::load(&p).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("chmod 600"), "{err}");
            assert!(!err.contains(&hex::encode(k.key().expose())));
        }
        let bad = d.path().join("bad.key");
        fs::write(&bad, "nothex")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&bad, fs::Permissions::from_mode(0o600))?;
        }
        assert!(matches!(RootKey::load(&bad), Err(CryptoError::RootKeyMalformed(_))));
        Ok(())
    }
}
