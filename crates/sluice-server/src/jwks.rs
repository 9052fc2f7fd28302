//! Fetching a JWT issuer's keys (JWKS) over HTTP(S) for the service's
//! verifier, which speaks no HTTP itself.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sluice_service::auth::jwt::JwksFetch;

/// Fetches JWKS documents with `reqwest` (rustls).
pub struct HttpJwks {
    client: reqwest::Client,
}

impl HttpJwks {
    /// A fetcher whose connections time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<HttpJwks, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot start the HTTP client for the JWKS: {e}"))?;
        Ok(HttpJwks { client })
    }
}

impl JwksFetch for HttpJwks {
    fn fetch(&self, url: &str, timeout: Duration) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>> {
        let request = self.client.get(url).timeout(timeout);
        Box::pin(async move {
            let resp = request.send().await.map_err(|e| e.to_string())?;
            let resp = resp.error_for_status().map_err(|e| e.to_string())?;
            Ok(resp.bytes().await.map_err(|e| e.to_string())?.to_vec())
        })
    }
}
