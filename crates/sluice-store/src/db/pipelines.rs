//! The `pipelines` table: a tenant's named settings; `default` always exists.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Db;
use crate::error::{Error, Result};
use crate::model::Pipeline;
use crate::now_ms;

impl Db {
    /// A tenant's pipeline; `default` exists even if never stored.
    pub async fn pipeline(&self, tenant_id: &str, name: &str) -> Result<Pipeline> {
        let row = sqlx::query(
            "SELECT name, compress, encrypt, chunk_size, recipients FROM pipelines WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => pipeline_from(&row),
            None if name == "default" => Ok(Pipeline::default_named("default")),
            None => Err(Error::NotFound(format!("pipeline {name:?}"))),
        }
    }

    /// A tenant's pipelines, `default` included.
    pub async fn pipelines(&self, tenant_id: &str) -> Result<Vec<Pipeline>> {
        let rows = sqlx::query(
            "SELECT name, compress, encrypt, chunk_size, recipients FROM pipelines WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        let mut list: Vec<Pipeline> = rows.iter().map(pipeline_from).collect::<Result<_>>()?;
        if !list.iter().any(|p| p.name == "default") {
            list.insert(0, Pipeline::default_named("default"));
        }
        Ok(list)
    }

    /// Creates or replaces a pipeline.
    pub async fn put_pipeline(&self, tenant_id: &str, p: &Pipeline) -> Result<()> {
        let recipients = serde_json_list(&p.recipients);
        sqlx::query(
            "INSERT INTO pipelines (tenant_id, name, compress, encrypt, chunk_size, recipients, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             compress = excluded.compress, encrypt = excluded.encrypt, chunk_size = excluded.chunk_size, \
             recipients = excluded.recipients, updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(&p.name)
        .bind(&p.compress)
        .bind(&p.encrypt)
        .bind(&p.chunk_size)
        .bind(recipients)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a pipeline (deleting `default` restores its defaults).
    pub async fn delete_pipeline(&self, tenant_id: &str, name: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM pipelines WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 && name != "default" {
            return Err(Error::NotFound(format!("pipeline {name:?}")));
        }
        Ok(())
    }
}

fn pipeline_from(row: &AnyRow) -> Result<Pipeline> {
    let recipients: String = row.try_get("recipients")?;
    Ok(Pipeline {
        name: row.try_get("name")?,
        compress: row.try_get("compress")?,
        encrypt: row.try_get("encrypt")?,
        chunk_size: row.try_get("chunk_size")?,
        recipients: parse_json_list(&recipients)?,
    })
}

fn serde_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_json_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|_| Error::Corrupt(format!("recipient list {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_lists_round_trip() {
        for list in [vec![], vec!["sluice1abc".to_string()], vec!["a".into(), "b".into()]] {
            assert_eq!(parse_json_list(&serde_json_list(&list)).unwrap(), list);
        }
        assert!(parse_json_list("nope").is_err());
    }
}
