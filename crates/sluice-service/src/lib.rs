//! The sluice service core: everything a job, an upload or a tenant does,
//! with no HTTP in it. The native API (`sluice-server`), the S3 face and
//! the CLI's `serve`, `worker` and `admin` are thin faces over it: they
//! parse a request, call one [`Service`] method, and map its answer (or
//! its [`Error`]) in their own terms.
//!
//! - [`objects`]: uploads, stored containers, content and ranges, listing,
//!   deletion, verification;
//! - [`jobs`]: a job's life — submit, attempt, record (fenced), the
//!   dispatcher, uploads processed while they stream in, the reaper — and
//!   the one table of failures, [`JobError`];
//! - [`uploads`]: resumable sessions and their parts;
//! - [`tenants`]: limits (refusing with a [`Refusal`]) and administration;
//! - [`pipelines`], [`auth`] (a [`Caller`] from an API token or a JWT),
//!   [`status`] (overview, readiness), [`telemetry`] (metrics);
//! - [`settings`]: every setting, written once.
//!
//! One multi-thread Tokio runtime carries the faces, the background tasks
//! and the database pool; the engine's CPU work runs on its own pool,
//! never on the async workers. Downloads drive the engine's sans-I/O
//! chunk calls from async streams and hold no thread while a client is
//! slow ([`transfers`] caps them per tenant and per node). State
//! lives only in the database and the object store ([`sluice_store`]).

#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod buckets;
mod error;
pub mod jobs;
mod keys;
pub mod multipart;
pub mod objects;
pub mod pipelines;
mod refresh;
mod service;
pub mod settings;
pub mod status;
pub mod telemetry;
pub mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transfers;
pub mod uploads;

pub use auth::Caller;
pub use body::{Body, ByteStream};
pub use error::{Conflict, Error, Result};
pub use jobs::{Job, JobError, Page};
pub use service::{Background, Builder, InFlight, Service};
pub use settings::{Config, Settings, SettingsError};
pub use tenants::limits::Refusal;

/// The rows the service hands out, from the store.
pub use sluice_store::{
    new_id, Bucket, LimitsUpdate, Multipart, MultipartPart, ObjectInfo, Pipeline, Principal, Scope, TenantLimits,
    TokenInfo, Upload, UploadPart,
};
