//! What every S3 request passes before and after s3s: a request id (the
//! `x-amz-request-id` header, and the `RequestId` of an error's XML, so
//! that a client's report names the request in the server's log), and
//! presigned URLs' `X-Amz-Expires` held to S3's bounds (1 s to 7 days; a
//! URL outside them is refused as S3 does, `403 AccessDenied`); and a
//! refused request with a body closes its connection; and the request
//! metrics, labelled `face="s3"`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest presigned URL lifetime S3 allows.
const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// Error bodies larger than this are passed on unchanged.
const MAX_ERROR_BODY: usize = 64 << 10;

/// The middleware.
pub(crate) async fn edge(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let id = sluice_service::new_id().unwrap_or_else(|_| "0".into());
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|n| n != "0");
    let attributes = req.method() == axum::http::Method::GET
        && req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "attributes" || kv.starts_with("attributes="))
        });
    let mut resp = match presigned_refusal(&req) {
        Some(why) => error_response(StatusCode::FORBIDDEN, "AccessDenied", why),
        None => next.run(req).await,
    };
    if resp.status().is_client_error() || resp.status().is_server_error() {
        resp = with_request_id(resp, &id).await;
        // A refused upload's body may be partly unread: the connection
        // cannot carry another request after it.
        if has_body {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    if attributes && resp.status().is_success() {
        resp = unquoted_etag(resp).await;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    // The native API's request metrics, for this face (its operations are
    // not routes: one route label).
    metrics::histogram!("sluice_http_request_duration_seconds", "face" => "s3", "method" => method.clone(), "route" => "s3")
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "sluice_http_requests_total",
        "face" => "s3",
        "method" => method,
        "route" => "s3",
        "status" => resp.status().as_str().to_string()
    )
    .increment(1);
    resp
}

/// Why a presigned URL is refused before its signature is checked.
fn presigned_refusal(req: &Request) -> Option<&'static str> {
    let query = req.uri().query()?;
    let expires = query.split('&').find_map(|kv| kv.strip_prefix("X-Amz-Expires="))?;
    match expires.parse::<i64>() {
        Ok(secs) if (1..=MAX_PRESIGNED_SECS).contains(&secs) => None,
        Ok(secs) if secs > MAX_PRESIGNED_SECS => Some("X-Amz-Expires must be at most 604800 seconds (7 days)"),
        _ => Some("Request has expired"),
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp
}

/// `resp` with `<RequestId>` in its XML error, if it has one and lacks it.
async fn with_request_id(resp: Response, id: &str) -> Response {
    let is_xml = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("xml"));
    if !is_xml {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        // Too large to be an error document: cut off rather than passed half.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = if text.contains("<RequestId>") || !text.contains("</Error>") {
        bytes.to_vec()
    } else {
        text.replacen("</Error>", &format!("<RequestId>{id}</RequestId></Error>"), 1)
            .into_bytes()
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// GetObjectAttributes gives its ETag unquoted (unlike every other
/// answer, which s3s quotes): its document, rewritten so.
async fn unquoted_etag(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let fixed = match (text.find("<ETag>&quot;"), text.find("&quot;</ETag>")) {
        (Some(a), Some(b)) if a < b => format!(
            "{}<ETag>{}</ETag>{}",
            &text[..a],
            &text[a + "<ETag>&quot;".len()..b],
            &text[b + "&quot;</ETag>".len()..]
        ),
        _ => match (text.find("<ETag>\""), text.find("\"</ETag>")) {
            (Some(a), Some(b)) if a < b => format!(
                "{}<ETag>{}</ETag>{}",
                &text[..a],
                &text[a + "<ETag>\"".len()..b],
                &text[b + "\"</ETag>".len()..]
            ),
            _ => text.into_owned(),
        },
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        Request::builder().uri(uri).body(Body::empty()).unwrap()
    }

    #[test]
    fn presigned_lifetimes_are_bounded() {
        assert_eq!(presigned_refusal(&request("/b/k")), None);
        assert_eq!(
            presigned_refusal(&request("/b/k?X-Amz-Expires=3600&X-Amz-Date=x")),
            None
        );
        assert!(presigned_refusal(&request("/b/k?X-Amz-Expires=604801")).is_some());
        assert!(presigned_refusal(&request("/b/k?X-Amz-Expires=-7")).is_some());
        assert!(presigned_refusal(&request("/b/k?X-Amz-Expires=0")).is_some());
    }

    #[tokio::test]
    async fn error_documents_carry_the_request_id() {
        let resp = error_response(StatusCode::NOT_FOUND, "NoSuchKey", "gone");
        let resp = with_request_id(resp, "abc").await;
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("<RequestId>abc</RequestId></Error>"));
    }
}
