//! The server master key and the tenants' identities.
//!
//! Each tenant has an X25519 identity the server uses to restore and verify
//! its objects. It is stored sealed under the master key — as a tiny sluice
//! container with one raw-key slot, so no new cryptography is written here —
//! and unsealed identities are kept in a bounded in-memory cache with a
//! time to live, emptied whenever tenants change (see `refresh.rs`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_engine::format::{FileParams, Identity, KeyRing, RawKey, SlotSpec};
use sluice_engine::{Control, EncodeOptions, Engine};
use zeroize::Zeroizing;

/// Most unsealed identities kept in memory.
const CACHE_LIMIT: u64 = 4096;
/// An unsealed identity is dropped after this long (and zeroized once the
/// last job using it is done).
const CACHE_TTL: Duration = Duration::from_secs(600);

/// What can go wrong with the master key or an identity.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The master key file cannot be read or written.
    #[error("{}: {what}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The master key file holds something else.
    #[error("{}: not a master key: {reason}", path.display())]
    NotAKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A tenant's identity cannot be unsealed or made.
    #[error("{0}")]
    Identity(String),
}

/// The master key and the identity cache.
pub struct Keys {
    master: RawKey,
    engine: Engine,
    cache: moka::sync::Cache<String, Arc<Identity>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

impl Keys {
    /// Loads the master key from `path`, creating it (mode 0600) if absent.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path, engine: Engine) -> Result<(Keys, bool), KeysError> {
        let file = |what: &'static str| {
            move |source| KeysError::File {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let (master, created) = match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let key = RawKey::from_bytes(&bytes).map_err(|e| KeysError::NotAKey {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                (key, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RawKey::generate().map_err(|e| KeysError::Identity(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(file("cannot create the master key's directory"))?;
                }
                let mut f = open_private(path).map_err(file("cannot create the master key"))?;
                f.write_all(key.expose()).map_err(file("cannot write the master key"))?;
                f.sync_all().map_err(file("cannot write the master key"))?;
                (key, true)
            }
            Err(e) => return Err(file("cannot read the master key")(e)),
        };
        Ok((
            Keys {
                master,
                engine,
                cache: moka::sync::Cache::builder()
                    .max_capacity(CACHE_LIMIT)
                    .time_to_live(CACHE_TTL)
                    .build(),
            },
            created,
        ))
    }

    /// A new identity, and its sealed form to store.
    pub fn new_identity(&self) -> Result<(Identity, Vec<u8>), KeysError> {
        let identity = Identity::generate().map_err(|e| KeysError::Identity(e.to_string()))?;
        let secret = identity.to_secret_string();
        let opts = EncodeOptions {
            params: FileParams::default(),
            slots: vec![SlotSpec::RawKey(self.master.clone())],
            adaptive: false,
        };
        let mut sealed = Vec::new();
        self.engine
            .encode(secret.as_bytes(), &mut sealed, &opts, &Control::new())
            .map_err(|e| KeysError::Identity(format!("cannot seal a new identity: {e}")))?;
        Ok((identity, sealed))
    }

    /// `secret` sealed under the master key (a tiny container), to store.
    pub fn seal(&self, secret: &[u8]) -> Result<Vec<u8>, KeysError> {
        let opts = EncodeOptions {
            params: FileParams::default(),
            slots: vec![SlotSpec::RawKey(self.master.clone())],
            adaptive: false,
        };
        let mut sealed = Vec::new();
        self.engine
            .encode(secret, &mut sealed, &opts, &Control::new())
            .map_err(|e| KeysError::Identity(format!("cannot seal a secret: {e}")))?;
        Ok(sealed)
    }

    /// What [`Keys::seal`] sealed.
    pub fn unseal(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeysError> {
        let keys = KeyRing::new().with_raw_key(self.master.clone());
        let mut secret = Zeroizing::new(Vec::new());
        self.engine
            .decode(sealed, &mut *secret, &keys, &Control::new())
            .map_err(|e| KeysError::Identity(format!("a secret cannot be unsealed (wrong master key?): {e}")))?;
        Ok(secret)
    }

    /// A tenant's identity, unsealed (cached).
    pub fn identity(&self, tenant_id: &str, sealed: &[u8]) -> Result<Arc<Identity>, KeysError> {
        if let Some(id) = self.cache.get(tenant_id) {
            return Ok(id);
        }
        let keys = KeyRing::new().with_raw_key(self.master.clone());
        let mut secret = Zeroizing::new(Vec::new());
        self.engine
            .decode(sealed, &mut *secret, &keys, &Control::new())
            .map_err(|e| KeysError::Identity(format!("tenant identity cannot be unsealed (wrong master key?): {e}")))?;
        let text =
            std::str::from_utf8(&secret).map_err(|_| KeysError::Identity("tenant identity is not text".into()))?;
        let identity =
            Arc::new(Identity::parse(text.trim()).map_err(|e| KeysError::Identity(format!("tenant identity: {e}")))?);
        self.cache.insert(tenant_id.to_string(), Arc::clone(&identity));
        Ok(identity)
    }

    /// A tenant's identity if it is cached (no database read needed).
    pub fn cached(&self, tenant_id: &str) -> Option<Arc<Identity>> {
        self.cache.get(tenant_id)
    }

    /// Drops every cached identity (tenants changed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::EngineConfig;

    #[test]
    fn secrets_seal_and_unseal_under_the_master_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let engine = || {
            Engine::new(EngineConfig {
                threads: Some(1),
                ..EngineConfig::default()
            })
            .unwrap()
        };
        let (keys, _) = Keys::load_or_create(&dir.path().join("a.key"), engine()).unwrap();
        let (other, _) = Keys::load_or_create(&dir.path().join("b.key"), engine()).unwrap();
        let sealed = keys.seal(b"wJalrXUtnFEMI/K7MDENG").unwrap();
        assert!(
            !sealed.windows(5).any(|w| w == b"wJalr"),
            "the secret is not stored in the clear"
        );
        assert_eq!(&keys.unseal(&sealed).unwrap()[..], b"wJalrXUtnFEMI/K7MDENG");
        assert!(other.unseal(&sealed).is_err());
    }

    #[test]
    fn identities_seal_and_unseal_under_the_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let engine = Engine::new(EngineConfig {
            threads: Some(1),
            ..Default::default()
        })
        .unwrap();
        let (keys, created) = Keys::load_or_create(&path, engine.clone()).unwrap();
        assert!(created);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (id, sealed) = keys.new_identity().unwrap();
        assert!(!sealed
            .windows(10)
            .any(|w| id.to_secret_string().as_bytes().starts_with(w)));
        let (again, created) = Keys::load_or_create(&path, engine.clone()).unwrap();
        assert!(!created);
        assert_eq!(again.identity("t", &sealed).unwrap().recipient(), id.recipient());
        std::fs::remove_file(&path).unwrap();
        let (other, _) = Keys::load_or_create(&path, engine).unwrap();
        assert!(
            other.identity("t", &sealed).is_err(),
            "another master key cannot unseal it"
        );
    }
}
