//! `sluice keygen`: new X25519 identities and raw key files.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use sluice_engine::format::{Identity, RawKey};
use zeroize::Zeroizing;

use crate::cli::KeygenArgs;
use crate::exit::{usage, Code};

/// Runs the command.
pub fn run(args: &KeygenArgs) -> Result<Code> {
    if let Some(path) = &args.show_recipient {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read identity file", path.display()))?,
        );
        for id in Identity::parse_file(&text).with_context(|| path.display().to_string())? {
            println!("{}", id.recipient());
        }
        return Ok(Code::Ok);
    }
    if args.raw {
        let path = args.output.as_deref().ok_or_else(|| usage("--raw needs -o FILE"))?;
        let key = RawKey::generate()?;
        write_secret(path, key.expose())?;
        return Ok(Code::Ok);
    }
    let id = Identity::generate()?;
    let recipient = id.recipient();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let body = Zeroizing::new(format!(
        "# created: {created} (unix time)\n# public key: {recipient}\n{}\n",
        &*id.to_secret_string()
    ));
    match &args.output {
        Some(path) => {
            write_secret(path, body.as_bytes())?;
            println!("{recipient}");
        }
        None => {
            print!("{}", &*body);
            eprintln!("Public key: {recipient}");
        }
    }
    Ok(Code::Ok)
}

/// Creates `path` with mode 0600, refusing to overwrite anything.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => usage(format!(
                "{}: already exists (keygen never overwrites a key)",
                path.display()
            )),
            _ => anyhow::Error::new(e).context(format!("{}: cannot create", path.display())),
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}
