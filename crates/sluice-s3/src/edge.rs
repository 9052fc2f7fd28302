//! What every S3 request passes before and after s3s: a request id (the
//! `x-amz-request-id` header, and the `RequestId` of an error's XML, so
//! that a client's report names the request in the server's log), and
//! presigned URLs' `X-Amz-Expires` held to S3's bounds (1 s to 7 days; a
//! URL outside them is refused as S3 does, `403 AccessDenied`); and a
//! refused request with a body closes its connection; a PUT body of
//! unknown length given a length (below); and the request metrics,
//! labelled `face="s3"`.
//!
//! A PUT sent with `Transfer-Encoding: chunked` and no `Content-Length`
//! (`curl -T -` of a pipe to a presigned URL, HTTP clients streaming a
//! body they cannot measure) is read whole, up to [`MAX_UNSIZED_BODY`], and
//! passed on with its length: s3s, like MinIO, refuses a body without one,
//! and a signed payload's SHA-256 is checked against a known length. A
//! longer one is refused with `MissingContentLength`, as MinIO refuses them
//! all. Such bodies are read before the request is authenticated, so all
//! of them together hold at most [`UNSIZED_BUDGET`] bytes; past it a
//! request gets `503 SlowDown`. (`aws-chunked` bodies say their length in
//! `x-amz-decoded-content-length` and stream as any other.)

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest presigned URL lifetime S3 allows.
const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// Error bodies larger than this are passed on unchanged.
const MAX_ERROR_BODY: usize = 64 << 10;

/// The longest PUT body of unknown length read whole to learn its length.
pub(crate) const MAX_UNSIZED_BODY: usize = 8 << 20;
/// Bytes of a refused body of unknown length read and dropped at most
/// before the answer.
const MAX_DRAINED: usize = 32 << 20;
/// Bytes all PUT bodies of unknown length being read hold at most.
pub(crate) const UNSIZED_BUDGET: usize = 64 << 20;

/// What the middleware shares between requests.
#[derive(Clone)]
pub(crate) struct Edge {
    /// [`UNSIZED_BUDGET`], one permit per byte.
    unsized_bodies: Arc<Semaphore>,
}

impl Edge {
    /// A fresh edge.
    pub(crate) fn new() -> Edge {
        Edge {
            unsized_bodies: Arc::new(Semaphore::new(UNSIZED_BUDGET)),
        }
    }
}

/// The middleware.
pub(crate) async fn edge(State(edge): State<Edge>, req: Request, next: Next) -> Response {
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
        None if is_unsized_put(&req) => match with_length(&edge, req).await {
            // The body's memory is held until the request is answered.
            Ok((req, _held)) => next.run(req).await,
            Err(refused) => refused,
        },
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

/// A PUT whose body's length nothing says.
fn is_unsized_put(req: &Request) -> bool {
    let h = req.headers();
    req.method() == Method::PUT
        && !h.contains_key(header::CONTENT_LENGTH)
        && !h.contains_key("x-amz-decoded-content-length")
        && h.get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("chunked")))
}

/// `req` with its body read whole and its `Content-Length` set, and the
/// body's share of the budget; or the answer that refuses it.
async fn with_length(edge: &Edge, req: Request) -> Result<(Request, OwnedSemaphorePermit), Response> {
    let Ok(held) = Arc::clone(&edge.unsized_bodies).try_acquire_many_owned(MAX_UNSIZED_BODY as u32) else {
        return Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "too many uploads without a Content-Length at once; send the length, or retry",
        ));
    };
    let (mut parts, body) = req.into_parts();
    let mut data = body.into_data_stream();
    let mut bytes = bytes::BytesMut::new();
    while let Some(piece) = data.next().await {
        let Ok(piece) = piece else {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "the body ended before its last chunk",
            ));
        };
        if bytes.len() + piece.len() > MAX_UNSIZED_BODY {
            // Read (and drop) a bounded rest first, so that a client still
            // sending sees the answer, not a reset connection.
            drop(bytes);
            drop(held);
            let mut drained = 0usize;
            while drained < MAX_DRAINED {
                match data.next().await {
                    Some(Ok(piece)) => drained += piece.len(),
                    _ => break,
                }
            }
            return Err(error_response(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "a body without Content-Length may be at most 8 MiB; send the length (or aws-chunked)",
            ));
        }
        bytes.extend_from_slice(&piece);
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok((Request::from_parts(parts, Body::from(bytes.freeze())), held))
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

    #[test]
    fn only_puts_whose_length_nothing_says_are_read_whole() {
        let req = |method: &str, headers: &[(&str, &str)]| {
            let mut b = Request::builder().method(method).uri("/b/k");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(Body::empty()).unwrap()
        };
        assert!(is_unsized_put(&req("PUT", &[("transfer-encoding", "chunked")])));
        assert!(is_unsized_put(&req("PUT", &[("transfer-encoding", "gzip, Chunked")])));
        assert!(!is_unsized_put(&req("PUT", &[("content-length", "3")])));
        assert!(!is_unsized_put(&req("PUT", &[])));
        assert!(!is_unsized_put(&req("POST", &[("transfer-encoding", "chunked")])));
        assert!(!is_unsized_put(&req(
            "PUT",
            &[("transfer-encoding", "chunked"), ("x-amz-decoded-content-length", "3")]
        )));
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_gets_one_or_is_refused_past_the_limit() {
        let edge = Edge::new();
        let chunked = |body: Vec<u8>| {
            Request::builder()
                .method("PUT")
                .uri("/b/k")
                .header("transfer-encoding", "chunked")
                .body(Body::from(body))
                .unwrap()
        };
        let (req, _held) = with_length(&edge, chunked(vec![1; 1000])).await.unwrap();
        assert_eq!(req.headers()[header::CONTENT_LENGTH], "1000");
        assert_eq!(
            edge.unsized_bodies.available_permits(),
            UNSIZED_BUDGET - MAX_UNSIZED_BODY
        );
        let refused = with_length(&edge, chunked(vec![1; MAX_UNSIZED_BODY + 1]))
            .await
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::LENGTH_REQUIRED);
        // The budget is shared: with it all held, the next waits its turn elsewhere.
        let all = Arc::clone(&edge.unsized_bodies)
            .try_acquire_many_owned((UNSIZED_BUDGET - MAX_UNSIZED_BODY) as u32)
            .unwrap();
        let busy = with_length(&edge, chunked(vec![1; 10])).await.unwrap_err();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(all);
    }

    #[tokio::test]
    async fn error_documents_carry_the_request_id() {
        let resp = error_response(StatusCode::NOT_FOUND, "NoSuchKey", "gone");
        let resp = with_request_id(resp, "abc").await;
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("<RequestId>abc</RequestId></Error>"));
    }
}
