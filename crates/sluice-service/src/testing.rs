//! Helpers for the faces' tests (feature `testing`): a [`TestService`] on a
//! temporary SQLite database and an in-memory object store whose writes
//! can be made to fail ([`Faults`]), with its dispatcher running.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};
use sluice_store::{Objects, Scope};
use tokio::sync::OwnedSemaphorePermit;

use crate::settings::{Config, Origins, Settings};
use crate::{Background, Caller, Service};

/// Failures to inject into the test store.
#[derive(Debug, Default)]
pub struct Faults {
    /// Writes under this prefix fail (`None`: none do).
    prefix: Mutex<Option<String>>,
    /// Writes that failed.
    failed: AtomicUsize,
}

impl Faults {
    /// Makes every write (put, multipart upload) under `prefix` fail from
    /// now on, as a store that lost its disk would.
    pub fn fail_writes_under(&self, prefix: &str) {
        if let Ok(mut p) = self.prefix.lock() {
            *p = Some(prefix.to_string());
        }
    }

    /// Writes that failed so far.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        let failing = self
            .prefix
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .is_some_and(|p| location.as_ref().starts_with(&p));
        if failing {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: Box::new(std::io::Error::other("injected write failure")),
            });
        }
        Ok(())
    }
}

/// An in-memory store with [`Faults`].
#[derive(Debug)]
struct FaultyStore {
    inner: InMemory,
    faults: Arc<Faults>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultyStore")
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> object_store::Result<PutResult> {
        self.faults.check(l)?;
        self.inner.put_opts(l, p, o).await
    }

    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.faults.check(l)?;
        self.inner.put_multipart_opts(l, o).await
    }

    async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(l, o).await
    }

    fn delete_stream(
        &self,
        l: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(l)
    }

    fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(p)
    }

    async fn list_with_delimiter(&self, p: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(p).await
    }

    async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
        self.faults.check(t)?;
        self.inner.copy_opts(f, t, o).await
    }
}

/// A service for tests: its data in a temporary directory (removed when
/// dropped), its objects in memory, its background tasks running.
pub struct TestService {
    /// The service.
    pub service: Service,
    /// Failures to inject into its object store.
    pub faults: Arc<Faults>,
    background: Option<Background>,
    _dir: tempfile::TempDir,
}

impl TestService {
    /// Starts a service with `settings` over the defaults (its data
    /// directory is made here; its database is SQLite there, or a fresh
    /// database on the PostgreSQL server `SLUICE_TEST_POSTGRES` names).
    pub async fn start(settings: Settings) -> TestService {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = std::env::var("SLUICE_TEST_POSTGRES").ok().map(|base| {
            let name = format!("t_{}", sluice_store::new_id().expect("an id"));
            format!("{}/{name}", base.trim_end_matches('/'))
        });
        let given = Settings {
            data_dir: Some(dir.path().to_path_buf()),
            database: settings.database.clone().or(database),
            ..settings
        };
        let config = Config::resolve(given, Origins::default()).expect("test settings");
        let faults = Arc::new(Faults::default());
        let store = Arc::new(FaultyStore {
            inner: InMemory::new(),
            faults: Arc::clone(&faults),
        });
        let objects = Objects::new(store, config.store);
        let service = Service::builder(config)
            .objects(objects)
            .open()
            .await
            .expect("the test service opens");
        let background = service.start().await.expect("the test service starts");
        TestService {
            service,
            faults,
            background: Some(background),
            _dir: dir,
        }
    }

    /// Creates tenant `name` and a token of `scope` for it; returns the
    /// token.
    pub async fn tenant(&self, name: &str, scope: Scope) -> String {
        let admin = crate::tenants::admin::Admin::for_tests(&self.service);
        if admin.tenants().await.expect("tenants").iter().all(|(n, _)| n != name) {
            admin.create_tenant(name).await.expect("a tenant");
        }
        admin
            .create_token(name, scope)
            .await
            .expect("a token")
            .token
            .to_string()
    }

    /// Administration of this service (as `sluice admin` does it).
    pub fn admin(&self) -> crate::tenants::admin::Admin {
        crate::tenants::admin::Admin::for_tests(&self.service)
    }

    /// The caller a token stands for.
    pub async fn caller(&self, token: &str) -> Caller {
        self.service.authenticate(token).await.expect("a valid token")
    }

    /// Takes every free job slot of the node (until the permit is
    /// dropped), so that waiting uploads take the queued path.
    pub fn hold_job_slots(&self) -> Option<OwnedSemaphorePermit> {
        let free = self.service.job_slots.available_permits();
        u32::try_from(free)
            .ok()
            .and_then(|n| Arc::clone(&self.service.job_slots).try_acquire_many_owned(n).ok())
    }

    /// Runs a statement on the database as it is (to plant a damaged row).
    pub async fn sql(&self, statement: &str) -> u64 {
        self.service
            .db
            .execute_for_tests(statement)
            .await
            .expect("the statement runs")
    }

    /// Stops the background tasks.
    pub async fn stop(mut self) {
        self.service.begin_shutdown();
        if let Some(b) = self.background.take() {
            b.stop(&self.service, std::time::Duration::from_secs(5)).await;
        }
    }
}
