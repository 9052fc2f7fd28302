//! Exit codes and the mapping from errors to them.

use sluice_engine::format::ErrorClass;

/// Documented exit codes (also in `sluice --help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Everything worked.
    Ok = 0,
    /// A bug or an unexpected failure.
    Internal = 1,
    /// Bad flags or arguments.
    Usage = 2,
    /// Reading or writing a file failed.
    Io = 3,
    /// The input is corrupt, truncated, tampered with or not a sluice file.
    Integrity = 4,
    /// The key is wrong or missing.
    Key = 5,
    /// The input asks for more than a configured limit allows.
    Limit = 6,
    /// Interrupted by a signal.
    Interrupted = 130,
}

/// The exit code for an error, found by walking its cause chain.
pub fn code_for(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return Code::Usage;
        }
        if let Some(e) = cause.downcast_ref::<sluice_engine::Error>() {
            return from_class(e.class());
        }
        if let Some(e) = cause.downcast_ref::<sluice_engine::format::Error>() {
            return from_class(e.class());
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Code::Io;
        }
    }
    Code::Internal
}

fn from_class(class: ErrorClass) -> Code {
    match class {
        ErrorClass::Usage => Code::Usage,
        ErrorClass::Integrity => Code::Integrity,
        ErrorClass::Key => Code::Key,
        ErrorClass::Limit => Code::Limit,
        ErrorClass::Io => Code::Io,
        ErrorClass::Cancelled => Code::Interrupted,
        _ => Code::Internal,
    }
}

/// An error in how the command was invoked (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for returning a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// A line of advice for errors the user can act on (the flag to use), or
/// `None`. The libraries' messages never name flags; this is where the CLI
/// adds them.
pub fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    use sluice_engine::format::{Error as F, KdfCost};
    err.chain().find_map(|c| {
        let f = c
            .downcast_ref::<F>()
            .or_else(|| match c.downcast_ref::<sluice_engine::Error>() {
                Some(sluice_engine::Error::Format(f)) => Some(f),
                _ => None,
            })?;
        match f {
            F::MissingKey { .. } => Some(
                "give -i/--identity FILE, --key-file FILE, or a passphrase (-p, --passphrase-file, SLUICE_PASSPHRASE)",
            ),
            F::NotSluice => Some("is this the original file rather than the .sluice container?"),
            F::NotEncrypted => {
                Some("if you know this file was made with --encrypt none, accept it with --allow-unencrypted")
            }
            F::KdfCostTooHigh { cost, .. } => Some(match cost {
                KdfCost::MemoryKib => "if you trust this file, raise the limit with --max-kdf-memory MIB",
                KdfCost::Passes => "if you trust this file, raise the limit with --max-kdf-passes N",
                KdfCost::Lanes => "if you trust this file, raise the limit with --max-kdf-lanes N",
            }),
            _ => None,
        }
    })
}
