//! Where the sluice service keeps its state: metadata (tenants, tokens,
//! pipelines, the job queue, object rows) in a SQL database through `sqlx`
//! ([`Db`], SQLite by default, PostgreSQL for several nodes), and containers
//! and staged uploads in an object store ([`Objects`]: a local directory by
//! default; with the `remote` feature, any `object_store` store, and with
//! `s3` an S3-compatible bucket). Nothing here knows the engine, and without
//! `remote` nothing here knows HTTP either.

#![forbid(unsafe_code)]

pub mod blocking;
mod db;
mod error;
mod model;
mod objects;

pub use db::{
    db_acquires, Backend, BucketDelete, CommitConnection, Db, DbConfig, Fenced, Multipart, MultipartPart, NewJob,
    NewUpload, Placed, PoolStats, Success, Upload, UploadPart, UploadState, IN_USE_BATCH,
};
pub use error::{Error, Result};
pub use model::{
    Bucket, Job, JobKind, JobProgress, JobState, LimitsUpdate, ObjectInfo, Pipeline, Principal, S3Key, S3KeyInfo,
    Scope, Tenant, TenantLimits, TokenInfo,
};
pub use objects::blob::{BlobError, BlobStore, ByteStream, Listed, ObjectReader, ObjectWrite, ObjectWriter};
pub use objects::guard::{BreakerState, Resilience};
pub use objects::local::commit_file;
pub use objects::{Marker, Objects, StoreLocation, S3_MIN_PART, STREAM_BUFFER};

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new id: 12 hex digits of milliseconds then 16 random hex digits, so
/// ids sort by creation time (the job list's cursor relies on it).
pub fn new_id() -> Result<String> {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Random)?;
    Ok(format!("{:012x}{}", now_ms(), hex::encode(random)))
}

/// A new secret token (`sluice_` + 64 hex digits, 256 random bits) and the
/// hash under which it is stored.
pub fn new_token() -> Result<(String, String)> {
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Random)?;
    let token = format!("sluice_{}", hex::encode(random));
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// A new S3 access key: its id (`SLU` + 17 of `A-Z2-7`, 20 characters like
/// AWS's) and its secret (40 characters of the base64 alphabet, 240 random
/// bits, like AWS's).
pub fn new_s3_key() -> Result<(String, zeroize::Zeroizing<String>)> {
    const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut random = zeroize::Zeroizing::new([0u8; 57]);
    aws_lc_rs::rand::fill(&mut random[..]).map_err(|_| Error::Random)?;
    let mut id = String::from("SLU");
    id.extend(random[..17].iter().map(|b| ID_ALPHABET[usize::from(b % 32)] as char));
    let mut secret = zeroize::Zeroizing::new(String::with_capacity(40));
    secret.extend(
        random[17..]
            .iter()
            .map(|b| SECRET_ALPHABET[usize::from(b % 64)] as char),
    );
    Ok((id, secret))
}

/// The stored form of a token: BLAKE3 of it, hex. Tokens are 256-bit random,
/// so a fast hash is enough (nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_tokens_hash() {
        let a = new_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id().unwrap();
        assert!(a < b && a.len() == 28);
        let (t, h) = new_token().unwrap();
        assert!(t.starts_with("sluice_") && t.len() == 71);
        assert_eq!(h, token_hash(&t));
        assert_ne!(new_token().unwrap().0, t);
    }
}
