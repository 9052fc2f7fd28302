//! Buckets: globally named groups of one tenant's objects, for the S3 face
//! (and the native `/v1/buckets`). Bucket `B`'s object `K` is the tenant's
//! object `B/K`, so both APIs and the dashboard see the same objects. A
//! bucket may name the pipeline its new objects are stored through.

use sluice_store::{Bucket, BucketDelete, Scope};

use crate::auth::Caller;
use crate::error::Conflict;
use crate::{Error, Result, Service};

/// Checks a bucket name against S3's rules for new buckets: 3 to 63 of
/// `a-z 0-9 . -`, starting and ending with a letter or digit, no `..`, not
/// an IPv4 address, none of the prefixes and suffixes AWS reserves.
pub fn check_bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidName(format!("bucket name {name:?}: {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only a-z, 0-9, '.' and '-' are allowed");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !name.bytes().next().is_some_and(edge) || !name.bytes().last().is_some_and(edge) {
        return bad("must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("no two adjacent periods, nor a period next to a hyphen");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return bad(&format!("the prefix {prefix:?} is reserved"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return bad(&format!("the suffix {suffix:?} is reserved"));
        }
    }
    Ok(())
}

/// How long a bucket (its owner and pipeline) is kept in memory once read:
/// a bucket created, deleted or given another pipeline on another node
/// is seen here within this long (on this node, at once). S3 itself
/// documents bucket operations as eventually consistent; objects are not
/// affected (every object read and write goes to the database).
pub const BUCKET_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The tenant's object key of `key` in bucket `bucket`.
pub fn object_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

impl Service {
    /// Creates bucket `name` for the caller's tenant.
    pub async fn create_bucket(&self, caller: &Caller, name: &str) -> Result<Bucket> {
        let who = caller.require(Scope::Write)?;
        check_bucket_name(name)?;
        match self.db.create_bucket(name, &who.tenant_id, None).await {
            Ok(()) => self.buckets.invalidate(name),
            Err(sluice_store::Error::Conflict(_)) => {
                let owned = self
                    .db
                    .bucket(name)
                    .await?
                    .is_some_and(|b| b.tenant_id == who.tenant_id);
                return Err(Error::Conflict {
                    kind: if owned {
                        Conflict::BucketOwned
                    } else {
                        Conflict::BucketTaken
                    },
                    detail: if owned {
                        format!("you already own bucket {name:?}")
                    } else {
                        format!("bucket name {name:?} is taken")
                    },
                });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(tenant = %who.tenant_name, bucket = %name, "bucket created");
        self.bucket(caller, name).await
    }

    /// Bucket `name`: not found if it does not exist, forbidden if
    /// another tenant owns it.
    pub async fn bucket(&self, caller: &Caller, name: &str) -> Result<Bucket> {
        let who = caller.require(Scope::Read)?;
        // Only buckets found are kept: one created elsewhere is seen at once.
        let found = match self.buckets.get(name) {
            Some(b) => Some(b),
            None => {
                let b = self.db.bucket(name).await?;
                if let Some(b) = &b {
                    self.buckets.insert(name.to_string(), b.clone());
                }
                b
            }
        };
        match found {
            Some(b) if b.tenant_id == who.tenant_id => Ok(b),
            Some(_) => Err(Error::Forbidden(format!("bucket {name:?} belongs to another tenant"))),
            None => Err(Error::NotFound(format!("bucket {name:?}"))),
        }
    }

    /// The caller's buckets, by name.
    pub async fn buckets(&self, caller: &Caller) -> Result<Vec<Bucket>> {
        let who = caller.require(Scope::Read)?;
        Ok(self.db.buckets(&who.tenant_id).await?)
    }

    /// Sets (or with `None` clears) the pipeline a bucket stores new
    /// objects through; the pipeline must exist.
    pub async fn set_bucket_pipeline(&self, caller: &Caller, name: &str, pipeline: Option<&str>) -> Result<Bucket> {
        let who = caller.require(Scope::Write)?;
        self.bucket(caller, name).await?;
        if let Some(p) = pipeline {
            self.db.pipeline(&who.tenant_id, p).await?;
        }
        self.db.set_bucket_pipeline(name, &who.tenant_id, pipeline).await?;
        self.buckets.invalidate(name);
        self.bucket(caller, name).await
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, caller: &Caller, name: &str) -> Result<()> {
        let who = caller.require(Scope::Write)?;
        self.bucket(caller, name).await?;
        let deleted = self.db.delete_bucket(name, &who.tenant_id).await;
        self.buckets.invalidate(name);
        match deleted? {
            BucketDelete::Deleted => {
                tracing::info!(tenant = %who.tenant_name, bucket = %name, "bucket deleted");
                Ok(())
            }
            BucketDelete::NotFound => Err(Error::NotFound(format!("bucket {name:?}"))),
            BucketDelete::NotEmpty => Err(Error::Conflict {
                kind: Conflict::BucketNotEmpty,
                detail: format!("bucket {name:?} is not empty"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_store::Scope;

    use super::*;
    use crate::testing::TestService;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.2026", "a1b", &"a".repeat(63)] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "name-s3alias",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_bucket_is_its_owners_alone() {
        let t = TestService::start(crate::Settings::default()).await;
        let a = t.caller(&t.tenant("a", Scope::Write).await).await;
        let b = t.caller(&t.tenant("b", Scope::Write).await).await;
        let reader = t.caller(&t.tenant("a", Scope::Read).await).await;
        t.service.create_bucket(&a, "photos").await.unwrap();
        assert!(matches!(
            t.service.create_bucket(&a, "photos").await,
            Err(Error::Conflict {
                kind: Conflict::BucketOwned,
                ..
            })
        ));
        assert!(matches!(
            t.service.create_bucket(&b, "photos").await,
            Err(Error::Conflict {
                kind: Conflict::BucketTaken,
                ..
            })
        ));
        assert!(matches!(
            t.service.create_bucket(&reader, "other").await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(t.service.bucket(&b, "photos").await, Err(Error::Forbidden(_))));
        assert!(matches!(
            t.service.delete_bucket(&b, "photos").await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(t.service.bucket(&a, "nope").await, Err(Error::NotFound(_))));
        assert!(matches!(
            t.service.set_bucket_pipeline(&a, "photos", Some("missing")).await,
            Err(Error::NotFound(_))
        ));
        let set = t
            .service
            .set_bucket_pipeline(&a, "photos", Some("default"))
            .await
            .unwrap();
        assert_eq!(set.pipeline.as_deref(), Some("default"));
        assert_eq!(t.service.buckets(&a).await.unwrap().len(), 1);
        assert!(t.service.buckets(&b).await.unwrap().is_empty());
        t.service.delete_bucket(&a, "photos").await.unwrap();
        assert!(matches!(t.service.bucket(&a, "photos").await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn a_bucket_changed_elsewhere_is_seen_within_its_time_to_live() {
        let t = TestService::start(crate::Settings::default()).await;
        let a = t.caller(&t.tenant("a", Scope::Write).await).await;
        let b = t.caller(&t.tenant("b", Scope::Write).await).await;
        // Created by another node: seen at once (a missing bucket is not kept).
        assert!(matches!(t.service.bucket(&a, "logs").await, Err(Error::NotFound(_))));
        t.service.db.create_bucket("logs", a.tenant(), None).await.unwrap();
        assert_eq!(t.service.bucket(&a, "logs").await.unwrap().name, "logs");
        // Deleted there and made another tenant's: seen within the TTL.
        t.service.db.delete_bucket("logs", a.tenant()).await.unwrap();
        t.service.db.create_bucket("logs", b.tenant(), None).await.unwrap();
        tokio::time::sleep(BUCKET_TTL + std::time::Duration::from_millis(200)).await;
        assert!(matches!(t.service.bucket(&a, "logs").await, Err(Error::Forbidden(_))));
        assert_eq!(t.service.bucket(&b, "logs").await.unwrap().name, "logs");
        // Changed here: at once.
        t.service
            .set_bucket_pipeline(&b, "logs", Some("default"))
            .await
            .unwrap();
        assert_eq!(
            t.service.bucket(&b, "logs").await.unwrap().pipeline.as_deref(),
            Some("default")
        );
        t.service.delete_bucket(&b, "logs").await.unwrap();
        assert!(matches!(t.service.bucket(&b, "logs").await, Err(Error::NotFound(_))));
    }
}
