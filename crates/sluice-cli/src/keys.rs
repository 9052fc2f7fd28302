//! Key sources on the command line: recipients, identities, key files and
//! passphrases (prompt, file or SLUICE_PASSPHRASE; never a flag value).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sluice_engine::format::{
    parse_recipients_file, Identity, KdfLimits, KdfParams, KeyRing, Passphrase, RawKey, Recipient, SlotSpec,
};
use zeroize::Zeroizing;

use crate::cli::{ProcessArgs, UnlockArgs};
use crate::exit::usage;

/// Environment variable holding a passphrase.
pub const PASSPHRASE_ENV: &str = "SLUICE_PASSPHRASE";

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read {what}", path.display()))?;
    Ok(Zeroizing::new(bytes))
}

/// The passphrase on the first line of a file (without its line ending).
fn passphrase_from_file(path: &Path) -> Result<Passphrase> {
    let bytes = read_secret_file(path, "passphrase file")?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(usage(format!("{}: passphrase file is empty", path.display())));
    }
    Ok(Passphrase::new(line.to_vec()))
}

fn passphrase_from_env() -> Option<Passphrase> {
    let v = std::env::var_os(PASSPHRASE_ENV)?;
    let bytes = v.into_encoded_bytes();
    (!bytes.is_empty()).then(|| Passphrase::new(bytes))
}

fn prompt(confirm: bool) -> Result<Passphrase, String> {
    if !std::io::stderr().is_terminal() && !std::io::stdin().is_terminal() {
        return Err(format!(
            "cannot prompt for a passphrase without a terminal; use --passphrase-file or {PASSPHRASE_ENV}"
        ));
    }
    let first = Zeroizing::new(rpassword::prompt_password("Passphrase: ").map_err(|e| format!("prompt failed: {e}"))?);
    if first.is_empty() {
        return Err("the passphrase is empty".into());
    }
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Confirm passphrase: ").map_err(|e| format!("prompt failed: {e}"))?,
        );
        if *first != *again {
            return Err("the passphrases do not match".into());
        }
    }
    Ok(Passphrase::new(first.as_bytes().to_vec()))
}

/// Reads one raw key file.
pub fn load_key_file(path: &Path) -> Result<RawKey> {
    let bytes = read_secret_file(path, "key file")?;
    RawKey::from_bytes(&bytes).with_context(|| path.display().to_string())
}

/// The key slots for `sluice process`.
pub fn slots_for_process(args: &ProcessArgs, encrypted: bool) -> Result<Vec<SlotSpec>> {
    let mut slots = Vec::new();
    for r in &args.recipients {
        slots.push(SlotSpec::Recipient(Recipient::parse(r)?));
    }
    for path in &args.recipients_files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read recipients file", path.display()))?;
        let list = parse_recipients_file(&text).with_context(|| path.display().to_string())?;
        if list.is_empty() {
            return Err(usage(format!("{}: recipients file lists no recipient", path.display())));
        }
        slots.extend(list.into_iter().map(SlotSpec::Recipient));
    }
    for path in &args.key_files {
        slots.push(SlotSpec::RawKey(load_key_file(path)?));
    }
    let explicit = args.passphrase || args.passphrase_file.is_some();
    let passphrase = if let Some(path) = &args.passphrase_file {
        Some(passphrase_from_file(path)?)
    } else if args.passphrase {
        Some(prompt(true).map_err(usage)?)
    } else if slots.is_empty() && encrypted {
        passphrase_from_env()
    } else {
        None
    };
    if !encrypted {
        if !slots.is_empty() || explicit {
            return Err(usage("--encrypt none takes no recipients, key files or passphrase"));
        }
        return Ok(slots);
    }
    if let Some(p) = passphrase {
        if !slots.is_empty() {
            return Err(usage(
                "a passphrase cannot be combined with recipients or key files (a passphrase slot stands alone)",
            ));
        }
        slots.push(SlotSpec::Passphrase(p, KdfParams::default()));
    }
    if slots.is_empty() {
        return Err(usage(format!(
            "no key given: use -r/--recipient, -R/--recipients-file, --key-file, -p/--passphrase, --passphrase-file or {PASSPHRASE_ENV} (or --encrypt none)"
        )));
    }
    Ok(slots)
}

/// The key ring for `restore` and `verify`. A passphrase is asked for only
/// if the file has a passphrase slot, and at most once per run.
pub fn keyring(args: &UnlockArgs) -> Result<KeyRing> {
    let mut ring = KeyRing::new();
    for path in &args.identities {
        let text = read_secret_file(path, "identity file")?;
        let text =
            std::str::from_utf8(&text).map_err(|_| usage(format!("{}: identity file is not text", path.display())))?;
        ring.identities
            .extend(Identity::parse_file(text).with_context(|| path.display().to_string())?);
    }
    for path in &args.key_files {
        ring.raw_keys.push(load_key_file(path)?);
    }
    let fixed = match &args.passphrase_file {
        Some(path) => Some(passphrase_from_file(path)?),
        None => None,
    };
    // A user who gave any key expects an encrypted file: an unencrypted one
    // in its place is refused unless they said otherwise (see FORMAT.md §8).
    let gave_a_key = !ring.identities.is_empty()
        || !ring.raw_keys.is_empty()
        || args.passphrase
        || fixed.is_some()
        || std::env::var_os(PASSPHRASE_ENV).is_some_and(|v| !v.is_empty());
    ring.allow_unencrypted = args.allow_unencrypted || !gave_a_key;
    let prompt_allowed = args.passphrase || (ring.identities.is_empty() && ring.raw_keys.is_empty());
    let cache: Arc<Mutex<Option<Passphrase>>> = Arc::new(Mutex::new(fixed));
    let explicit_prompt = args.passphrase;
    ring.passphrase = Some(Arc::new(move || {
        let mut guard = cache.lock().map_err(|_| "passphrase cache poisoned".to_string())?;
        if let Some(p) = guard.as_ref() {
            return Ok(p.clone());
        }
        let p = match (explicit_prompt, passphrase_from_env()) {
            (false, Some(p)) => p,
            _ if prompt_allowed => prompt(false)?,
            _ => {
                return Err(format!(
                    "file is passphrase-protected: use -p, --passphrase-file or {PASSPHRASE_ENV}"
                ))
            }
        };
        *guard = Some(p.clone());
        Ok(p)
    }));
    ring.kdf_limits = KdfLimits {
        max_memory_kib: args.max_kdf_memory.saturating_mul(1024),
        max_passes: args.max_kdf_passes,
        max_lanes: args.max_kdf_lanes,
    };
    Ok(ring)
}
