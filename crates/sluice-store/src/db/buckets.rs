//! The `buckets` table: globally named buckets of the S3 face, each owned
//! by one tenant. A bucket's objects are its tenant's objects whose keys
//! start with `NAME/`, so the native API sees the same objects.

use sqlx::Row;

use super::Db;
use crate::error::{Error, Result};
use crate::model::Bucket;
use crate::now_ms;

/// Why a bucket could not be deleted.
#[derive(Debug, PartialEq, Eq)]
pub enum BucketDelete {
    /// It was deleted.
    Deleted,
    /// No bucket of that tenant has that name.
    NotFound,
    /// It still holds objects.
    NotEmpty,
}

const BUCKET_COLUMNS: &str = "b.name, b.tenant_id, n.name AS tenant_name, b.pipeline, b.created_at";

impl Db {
    /// Creates bucket `name` for `tenant_id`; a conflict if the name is
    /// taken (by this tenant or another).
    pub async fn create_bucket(&self, name: &str, tenant_id: &str, pipeline: Option<&str>) -> Result<()> {
        let r = sqlx::query("INSERT INTO buckets (name, tenant_id, pipeline, created_at) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(tenant_id)
            .bind(pipeline)
            .bind(now_ms())
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("bucket {name:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Bucket `name`, whoever owns it.
    pub async fn bucket(&self, name: &str) -> Result<Option<Bucket>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUCKET_COLUMNS} FROM buckets b JOIN tenants n ON n.id = b.tenant_id WHERE b.name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(bucket_from).transpose()
    }

    /// A tenant's buckets, by name.
    pub async fn buckets(&self, tenant_id: &str) -> Result<Vec<Bucket>> {
        let c = self.bytewise();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUCKET_COLUMNS} FROM buckets b JOIN tenants n ON n.id = b.tenant_id \
             WHERE b.tenant_id = $1 ORDER BY b.name{c}"
        )))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bucket_from).collect()
    }

    /// Sets the pipeline a tenant's bucket stores new objects through
    /// (`None`: the tenant's default); not found if it has no such bucket.
    pub async fn set_bucket_pipeline(&self, name: &str, tenant_id: &str, pipeline: Option<&str>) -> Result<()> {
        let r = sqlx::query("UPDATE buckets SET pipeline = $1 WHERE name = $2 AND tenant_id = $3")
            .bind(pipeline)
            .bind(name)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound(format!("bucket {name:?}")));
        }
        Ok(())
    }

    /// Deletes a tenant's bucket if it holds no object, in one statement
    /// (an object stored meanwhile either lands first and keeps the
    /// bucket, or finds it gone).
    pub async fn delete_bucket(&self, name: &str, tenant_id: &str) -> Result<BucketDelete> {
        let prefix = format!("{name}/");
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "DELETE FROM buckets WHERE name = $1 AND tenant_id = $2 AND NOT EXISTS \
             (SELECT 1 FROM objects WHERE tenant_id = $2 AND substr(key, 1, length($3)) = $3)",
        )
        .bind(name)
        .bind(tenant_id)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
        let outcome = if r.rows_affected() == 1 {
            BucketDelete::Deleted
        } else {
            let exists = sqlx::query("SELECT 1 AS one FROM buckets WHERE name = $1 AND tenant_id = $2")
                .bind(name)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                BucketDelete::NotEmpty
            } else {
                BucketDelete::NotFound
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

fn bucket_from(r: &sqlx::any::AnyRow) -> Result<Bucket> {
    Ok(Bucket {
        name: r.try_get("name")?,
        tenant_id: r.try_get("tenant_id")?,
        tenant_name: r.try_get("tenant_name")?,
        pipeline: r.try_get("pipeline")?,
        created_at: r.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::BucketDelete;
    use crate::db::test_dbs;
    use crate::Error;

    async fn object(db: &crate::Db, tenant_id: &str, key: &str) {
        sqlx::query(
            "INSERT INTO objects (tenant_id, key, location, pipeline, encrypted, container_len, plaintext_len, \
             chunk_count, digest, job_id, created_at) VALUES ($1, $2, $2, 'default', 1, 1, 1, 1, '', '', 0)",
        )
        .bind(tenant_id)
        .bind(key)
        .execute(&db.pool)
        .await
        .unwrap();
    }

    /// S3 lists keys and buckets in byte order, whatever the database's
    /// collation. On PostgreSQL the columns are given a locale's collation
    /// (ICU's en-US: punctuation and case compare last) to stand for a
    /// database created with such a locale.
    #[tokio::test]
    async fn listings_are_in_byte_order_whatever_the_collation() {
        for (db, _guard) in test_dbs().await {
            if db.backend() == crate::Backend::Postgres {
                for sql in [
                    "CREATE COLLATION IF NOT EXISTS en_us_icu (provider = icu, locale = 'en-US')",
                    "ALTER TABLE objects ALTER COLUMN key TYPE TEXT COLLATE en_us_icu",
                    "ALTER TABLE buckets ALTER COLUMN name TYPE TEXT COLLATE en_us_icu",
                    "ALTER TABLE multipart_uploads ALTER COLUMN object_key TYPE TEXT COLLATE en_us_icu",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&db.pool).await.unwrap();
                }
            }
            let t = db.create_tenant("a", b"s", "sluice1a").await.unwrap();
            let names = ["a-c", "a.b", "ab", "b"];
            for n in names.iter().rev() {
                db.create_bucket(n, &t.id, None).await.unwrap();
            }
            let listed: Vec<String> = db.buckets(&t.id).await.unwrap().into_iter().map(|b| b.name).collect();
            assert_eq!(listed, names, "{:?}", db.backend());
            let keys = ["k/B", "k/a", "k/a-b", "k/a.b", "k/ab", "k/\u{e9}"];
            for k in keys.iter().rev() {
                object(&db, &t.id, k).await;
                db.create_multipart(&t.id, k, "default", None).await.unwrap();
            }
            let listed: Vec<String> = db
                .objects(&t.id, "k/", None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect();
            assert_eq!(listed, keys, "{:?}", db.backend());
            let after: Vec<String> = db
                .objects(&t.id, "k/", Some("k/a-b"), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect();
            assert_eq!(after, keys[3..], "{:?}", db.backend());
            let uploads: Vec<String> = db
                .open_multiparts(&t.id, "k/", Some(("k/a", "")), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.object_key)
                .collect();
            assert_eq!(uploads, keys[1..], "{:?}", db.backend());
        }
    }

    #[tokio::test]
    async fn names_are_global_and_only_an_empty_bucket_is_deleted() {
        for (db, _guard) in test_dbs().await {
            let a = db.create_tenant("a", b"s", "sluice1a").await.unwrap();
            let b = db.create_tenant("b", b"s", "sluice1b").await.unwrap();
            db.create_bucket("photos", &a.id, None).await.unwrap();
            assert!(matches!(
                db.create_bucket("photos", &b.id, None).await,
                Err(Error::Conflict(_))
            ));
            let got = db.bucket("photos").await.unwrap().unwrap();
            assert_eq!((got.tenant_name.as_str(), got.pipeline), ("a", None));
            db.set_bucket_pipeline("photos", &a.id, Some("fast")).await.unwrap();
            assert!(matches!(
                db.set_bucket_pipeline("photos", &b.id, None).await,
                Err(Error::NotFound(_))
            ));
            assert_eq!(db.buckets(&a.id).await.unwrap()[0].pipeline.as_deref(), Some("fast"));
            assert!(db.buckets(&b.id).await.unwrap().is_empty());
            // Another tenant's bucket is not theirs to delete.
            assert_eq!(db.delete_bucket("photos", &b.id).await.unwrap(), BucketDelete::NotFound);
            object(&db, &a.id, "photos/cat.jpg").await;
            // "photosx/..." is not in it.
            object(&db, &a.id, "photosx/dog.jpg").await;
            assert_eq!(db.delete_bucket("photos", &a.id).await.unwrap(), BucketDelete::NotEmpty);
            db.delete_object(&a.id, "photos/cat.jpg").await.unwrap();
            assert_eq!(db.delete_bucket("photos", &a.id).await.unwrap(), BucketDelete::Deleted);
            assert!(db.bucket("photos").await.unwrap().is_none());
        }
    }
}
