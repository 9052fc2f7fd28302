//! The store's errors.

/// What can go wrong keeping state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The object store failed.
    #[error("object store: {0}")]
    Objects(#[from] crate::BlobError),
    /// Something named does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// A name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value cannot be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Randomness was unavailable.
    #[error("no randomness available")]
    Random,
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Db(_) | Error::Objects(_))
    }
}

/// Results of the store.
pub type Result<T> = std::result::Result<T, Error>;
