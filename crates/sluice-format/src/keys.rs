//! Keys a user holds: passphrases, X25519 identities and recipients, raw key
//! files, and the [`KeyRing`] that gathers them to open a file.
//!
//! Secrets are zeroized on drop and never printed by `Debug`.

use std::fmt;
use std::sync::Arc;

use bech32::{Bech32, Hrp};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kdf::{hkdf32, random_key, KdfLimits, KdfParams, SecretKey, KEY_LEN};

/// Human-readable prefix of a recipient (public key) string.
pub const RECIPIENT_HRP: &str = "sluice";
/// Human-readable prefix of an identity (secret key) string, printed upper-case.
pub const IDENTITY_HRP: &str = "sluice-secret-key-";

/// A passphrase, wiped from memory when dropped.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Wraps passphrase bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Passphrase(Zeroizing::new(bytes.into()))
    }

    /// The passphrase bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// An X25519 public key that files can be encrypted to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Recipient(pub(crate) [u8; KEY_LEN]);

impl Recipient {
    /// The raw public key bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    /// Parses a `sluice1...` recipient string.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let (hrp, data) = bech32::decode(s)
            .map_err(|e| Error::InvalidKey(format!("recipient {s:?} is not a valid sluice1... string ({e})")))?;
        if hrp.as_str() != RECIPIENT_HRP {
            return Err(Error::InvalidKey(format!(
                "recipient {s:?} has prefix {:?}, expected \"{RECIPIENT_HRP}1\"",
                hrp.as_str()
            )));
        }
        let bytes: [u8; KEY_LEN] = data
            .try_into()
            .map_err(|_| Error::InvalidKey(format!("recipient {s:?} does not hold a 32-byte key")))?;
        Ok(Recipient(bytes))
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse(RECIPIENT_HRP).map_err(|_| fmt::Error)?;
        let s = bech32::encode::<Bech32>(hrp, &self.0).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

/// An X25519 secret key (the content of an identity file).
#[derive(Clone)]
pub struct Identity {
    secret: x25519_dalek::StaticSecret,
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Result<Self> {
        let bytes = random_key()?;
        Ok(Identity {
            secret: x25519_dalek::StaticSecret::from(*bytes),
        })
    }

    /// An identity from 32 secret bytes (for fixtures and key derivation schemes).
    pub fn from_secret_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Identity {
            secret: x25519_dalek::StaticSecret::from(bytes),
        }
    }

    /// The recipient (public key) of this identity.
    pub fn recipient(&self) -> Recipient {
        Recipient(x25519_dalek::PublicKey::from(&self.secret).to_bytes())
    }

    /// A symmetric key derived from this identity's secret for `purpose`
    /// (HKDF-SHA256): for the identity's owner to seal files to itself in a
    /// key-file slot, which opens without an X25519 exchange per file.
    pub fn derive_raw_key(&self, purpose: &[u8]) -> RawKey {
        let secret = Zeroizing::new(self.secret.to_bytes());
        RawKey(hkdf32(secret.as_ref(), b"sluice v1 identity-derived key", purpose))
    }

    /// The `SLUICE-SECRET-KEY-1...` string; handle with care.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.secret.to_bytes());
        let encoded = Hrp::parse(IDENTITY_HRP)
            .ok()
            .and_then(|hrp| bech32::encode::<Bech32>(hrp, bytes.as_ref()).ok())
            .unwrap_or_default();
        Zeroizing::new(encoded.to_uppercase())
    }

    /// Parses one `SLUICE-SECRET-KEY-1...` string.
    pub fn parse(s: &str) -> Result<Self> {
        let (hrp, data) = bech32::decode(s.trim())
            .map_err(|_| Error::InvalidKey("identity is not a valid SLUICE-SECRET-KEY-1... string".into()))?;
        let data = Zeroizing::new(data);
        if !hrp.as_str().eq_ignore_ascii_case(IDENTITY_HRP) {
            return Err(Error::InvalidKey(
                "identity has the wrong prefix (expected SLUICE-SECRET-KEY-1...)".into(),
            ));
        }
        let bytes: [u8; KEY_LEN] = data
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidKey("identity does not hold a 32-byte key".into()))?;
        let bytes = Zeroizing::new(bytes);
        Ok(Identity {
            secret: x25519_dalek::StaticSecret::from(*bytes),
        })
    }

    /// Parses an identity file (`docs/FORMAT.md` §4): lines end in LF or
    /// CRLF; each line is trimmed of surrounding whitespace; blank lines and
    /// lines starting with `#` are ignored; every other line must be one
    /// `SLUICE-SECRET-KEY-1...` string, in upper or lower case (not mixed, as
    /// Bech32 requires). At least one identity is required.
    pub fn parse_file(text: &str) -> Result<Vec<Self>> {
        let ids = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Identity::parse)
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Err(Error::InvalidKey(
                "identity file holds no SLUICE-SECRET-KEY-1... line".into(),
            ));
        }
        Ok(ids)
    }

    /// X25519 of this secret with `public`; `None` for a low-order point.
    pub(crate) fn agree(&self, public: &[u8; KEY_LEN]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
        shared.was_contributory().then(|| Zeroizing::new(*shared.as_bytes()))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity(recipient: {})", self.recipient())
    }
}

/// Parses a recipients file: `#` comments, blank lines and one recipient per line.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Recipient::parse)
        .collect()
}

/// A raw 32-byte symmetric key (the content of a key file).
#[derive(Clone)]
pub struct RawKey(pub(crate) SecretKey);

impl RawKey {
    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKey(format!("key file must hold exactly 32 bytes, it holds {}", bytes.len())))?;
        Ok(RawKey(Zeroizing::new(arr)))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        Ok(RawKey(random_key()?))
    }

    /// The key bytes; handle with care.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

/// Who a new file is encrypted to; each becomes one key slot.
#[derive(Debug, Clone)]
pub enum SlotSpec {
    /// A passphrase (must be the file's only slot).
    Passphrase(Passphrase, KdfParams),
    /// An X25519 recipient.
    Recipient(Recipient),
    /// A raw key file.
    RawKey(RawKey),
}

/// Lazily supplies a passphrase (for example by prompting), only when a file
/// has a passphrase slot.
pub type PassphraseProvider = Arc<dyn Fn() -> std::result::Result<Passphrase, String> + Send + Sync>;

/// The keys available to open files, tried against every key slot, and
/// what the reader expects of the file.
#[derive(Clone, Default)]
pub struct KeyRing {
    /// X25519 identities.
    pub identities: Vec<Identity>,
    /// Raw key files.
    pub raw_keys: Vec<RawKey>,
    /// Source of a passphrase, asked only when needed.
    pub passphrase: Option<PassphraseProvider>,
    /// Caps on the Argon2 work a passphrase slot may ask for.
    pub kdf_limits: KdfLimits,
    /// Whether an unencrypted file is acceptable. Off by default: anyone can
    /// make a valid unencrypted file, so a reader that expects encryption
    /// must not accept one in its place (a downgrade). Set it only where the
    /// caller knows, or the user said, the file may be unencrypted.
    pub allow_unencrypted: bool,
}

impl KeyRing {
    /// An empty key ring that expects encryption: it opens nothing until keys
    /// are added, or unencrypted files after [`Self::allowing_unencrypted`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The same ring, also accepting files without encryption.
    pub fn allowing_unencrypted(mut self) -> Self {
        self.allow_unencrypted = true;
        self
    }

    /// Adds a fixed passphrase.
    pub fn with_passphrase(mut self, p: Passphrase) -> Self {
        self.passphrase = Some(Arc::new(move || Ok(p.clone())));
        self
    }

    /// Adds an identity.
    pub fn with_identity(mut self, id: Identity) -> Self {
        self.identities.push(id);
        self
    }

    /// Adds a raw key.
    pub fn with_raw_key(mut self, key: RawKey) -> Self {
        self.raw_keys.push(key);
        self
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("identities", &self.identities.len())
            .field("raw_keys", &self.raw_keys.len())
            .field("passphrase", &self.passphrase.is_some())
            .field("allow_unencrypted", &self.allow_unencrypted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_derived_from_an_identity_are_its_own_and_per_purpose() {
        let id = Identity::generate().unwrap();
        let again = Identity::parse(&id.to_secret_string()).unwrap();
        assert_eq!(id.derive_raw_key(b"a").expose(), again.derive_raw_key(b"a").expose());
        assert_ne!(id.derive_raw_key(b"a").expose(), id.derive_raw_key(b"b").expose());
        let other = Identity::generate().unwrap();
        assert_ne!(id.derive_raw_key(b"a").expose(), other.derive_raw_key(b"a").expose());
    }

    #[test]
    fn identity_and_recipient_strings_round_trip() {
        let id = Identity::generate().unwrap();
        let r = id.recipient();
        let s = r.to_string();
        assert!(s.starts_with("sluice1"), "{s}");
        assert_eq!(Recipient::parse(&s).unwrap(), r);
        let secret = id.to_secret_string();
        assert!(secret.starts_with("SLUICE-SECRET-KEY-1"), "{}", &*secret);
        let back = Identity::parse(&secret).unwrap();
        assert_eq!(back.recipient(), r);
        let file = format!("# comment\n\n{}\n", &*secret);
        assert_eq!(Identity::parse_file(&file).unwrap().len(), 1);
    }

    #[test]
    fn identity_file_syntax() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let (sa, sb) = (a.to_secret_string(), b.to_secret_string());
        let text = format!(
            "# created by a test\r\n\r\n   {}  \r\n\t{}\n#{}\n",
            &*sa,
            sb.to_lowercase(),
            &*sa
        );
        let ids = Identity::parse_file(&text).unwrap();
        assert_eq!(ids.len(), 2, "the commented-out third line is ignored");
        assert_eq!(ids[0].recipient(), a.recipient());
        assert_eq!(ids[1].recipient(), b.recipient());
        // Mixed case is not Bech32; a stray word is not an identity.
        let mixed = format!("{}{}", &sa[..20], sa[20..].to_lowercase());
        assert!(Identity::parse_file(&mixed).is_err());
        assert!(Identity::parse_file(&format!("{}\nnot-a-key\n", &*sa)).is_err());
        assert!(Identity::parse_file("\r\n\n").is_err());
    }

    #[test]
    fn bad_strings_are_rejected() {
        assert!(Recipient::parse("sluice1qqqq").is_err());
        assert!(Recipient::parse("age1xyz").is_err());
        let id = Identity::generate().unwrap();
        // A secret key string is not a recipient.
        assert!(Recipient::parse(&id.to_secret_string()).is_err());
        assert!(Identity::parse(&id.recipient().to_string()).is_err());
        assert!(Identity::parse_file("# only a comment\n").is_err());
        assert!(RawKey::from_bytes(&[0; 31]).is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let p = Passphrase::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let k = RawKey::from_bytes(&[0xAB; 32]).unwrap();
        assert!(!format!("{k:?}").to_lowercase().contains("ab"));
    }
}
