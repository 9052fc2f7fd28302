//! Pipelines: a tenant's named processing settings (compression, cipher,
//! chunk size, extra recipients). `default` always exists.

use sluice_engine::format::{ChunkSize, Compression, Recipient, Suite};
use sluice_store::{Pipeline, Scope};

use crate::auth::Caller;
use crate::{Error, Result, Service};

/// Most extra recipients per pipeline.
pub const MAX_RECIPIENTS: usize = 64;

/// A pipeline's settings as given (anything left out takes the default's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineChange {
    /// e.g. `zstd:3`, `lz4`, `none`.
    pub compress: Option<String>,
    /// `aes256gcm`, `chacha20poly1305` or `none`.
    pub encrypt: Option<String>,
    /// e.g. `8MiB`.
    pub chunk_size: Option<String>,
    /// Extra recipients (`sluice1…`).
    pub recipients: Option<Vec<String>>,
}

/// How long a pipeline's engine settings are kept in memory: a change made
/// on another node applies within this long (one made here, at once).
pub const OPTIONS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks a pipeline name: 1 to 64 of `a-z 0-9 - _`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(
            "pipeline names are 1 to 64 of a-z, 0-9, '-' and '_'".into(),
        ))
    }
}

/// Checks a pipeline's settings the way a job will use them.
pub fn validate(p: &Pipeline) -> Result<()> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::InvalidPipeline(format!("{what}: {e}"));
    Compression::parse(&p.compress).map_err(|e| bad("compress", &e))?;
    Suite::from_name(&p.encrypt).map_err(|e| bad("encrypt", &e))?;
    ChunkSize::parse(&p.chunk_size).map_err(|e| bad("chunk_size", &e))?;
    if p.recipients.len() > MAX_RECIPIENTS {
        return Err(bad("recipients", &format!("at most {MAX_RECIPIENTS}")));
    }
    for r in &p.recipients {
        Recipient::parse(r).map_err(|e| bad("recipients", &e))?;
    }
    if !p.recipients.is_empty() && p.encrypt == "none" {
        return Err(bad("recipients", &"an unencrypted pipeline cannot have recipients"));
    }
    Ok(())
}

impl Service {
    /// Creates or replaces one of the caller's pipelines.
    pub async fn put_pipeline(&self, caller: &Caller, name: &str, change: PipelineChange) -> Result<Pipeline> {
        let who = caller.require(Scope::Write)?;
        check_name(name)?;
        let d = Pipeline::default_named(name);
        let p = Pipeline {
            name: name.to_string(),
            compress: change.compress.unwrap_or(d.compress),
            encrypt: change.encrypt.unwrap_or(d.encrypt),
            chunk_size: change.chunk_size.unwrap_or(d.chunk_size),
            recipients: change.recipients.unwrap_or_default(),
        };
        validate(&p)?;
        self.db.put_pipeline(&who.tenant_id, &p).await?;
        self.options.invalidate_all();
        Ok(p)
    }

    /// One of the caller's pipelines.
    pub async fn pipeline(&self, caller: &Caller, name: &str) -> Result<Pipeline> {
        let who = caller.require(Scope::Read)?;
        Ok(self.db.pipeline(&who.tenant_id, name).await?)
    }

    /// Deletes one of the caller's pipelines (deleting `default` restores
    /// its defaults).
    pub async fn delete_pipeline(&self, caller: &Caller, name: &str) -> Result<()> {
        let who = caller.require(Scope::Write)?;
        self.db.delete_pipeline(&who.tenant_id, name).await?;
        self.options.invalidate_all();
        Ok(())
    }

    /// The caller's pipelines, `default` included.
    pub async fn pipelines(&self, caller: &Caller) -> Result<Vec<Pipeline>> {
        let who = caller.require(Scope::Read)?;
        Ok(self.db.pipelines(&who.tenant_id).await?)
    }
}
