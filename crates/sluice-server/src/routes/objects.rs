//! `/v1/objects`: uploads (which become jobs), stored containers, restored
//! content (whole or by byte range), listing, deletion, verification.
//!
//! Keys may contain `/`, so one wildcard route serves `{key}`,
//! `{key}/content` and `{key}/verify`; a key may therefore not end in a
//! `content` or `verify` segment.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde::Deserialize;
use sluice_service::objects::{BodyEncoding, ByteRange, Put, Stored};
use sluice_service::{ObjectInfo, Service};

use super::job_response;
use crate::api::{ObjectBody, ObjectList};
use crate::extract::{Authed, Query};
use crate::problem::{ApiResult, Problem};

/// Header carrying the BLAKE3 (hex) the uploaded original must have.
pub const DIGEST_HEADER: &str = "x-sluice-blake3";

/// Query of `PUT /v1/objects/{key}`.
#[derive(Debug, Deserialize)]
pub struct PutQuery {
    /// Pipeline name (default `default`).
    pub pipeline: Option<String>,
    /// Answer only once the job finished.
    pub wait: Option<bool>,
}

/// Query of `GET /v1/objects`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Most objects (1..=1000, default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What a wildcard path names.
enum Target<'a> {
    Object(&'a str),
    Content(&'a str),
    Verify(&'a str),
}

fn target(path: &str) -> Target<'_> {
    if let Some(k) = path.strip_suffix("/content") {
        Target::Content(k)
    } else if let Some(k) = path.strip_suffix("/verify") {
        Target::Verify(k)
    } else {
        Target::Object(path)
    }
}

/// A request body as the service reads it.
pub(crate) fn body_stream(body: Body) -> sluice_service::Body {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// The `Content-Length` a request announced.
pub(crate) fn declared_len(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Every method on `/v1/objects/{*path}`.
pub async fn dispatch(
    State(st): State<Service>,
    Authed(caller): Authed,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let caller = &caller;
    match (method, target(&path)) {
        (Method::PUT, Target::Object(key)) => {
            sluice_service::objects::check_native_key(key)?;
            let put = Put {
                key: key.to_string(),
                pipeline: query.pipeline,
                wait: query.wait.unwrap_or(false),
                expected_blake3: match headers.get(DIGEST_HEADER) {
                    Some(v) => Some(
                        v.to_str()
                            .map_err(|_| {
                                Problem::bad_request(format!("{DIGEST_HEADER} must be 64 hex digits (BLAKE3)"))
                            })?
                            .to_string(),
                    ),
                    None => None,
                },
                declared_len: declared_len(&headers),
                meta: Default::default(),
                md5: false,
                expected_md5: None,
                late_checksum: None,
            };
            Ok(match st.put_object(caller, put, body_stream(body)).await? {
                Stored::Now(job) => job_response(&st, StatusCode::CREATED, &job),
                Stored::Queued(job) => job_response(&st, StatusCode::ACCEPTED, &job),
            })
        }
        (Method::GET, Target::Object(key)) => {
            let (o, stream, size) = st.container(caller, key).await?;
            let mut resp = Response::new(Body::from_stream(stream));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.sluice"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            describe(&mut resp, &o);
            Ok(resp)
        }
        (Method::HEAD, Target::Object(key)) => {
            let o = st.object(caller, key).await?;
            let mut resp = Response::new(Body::empty());
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(o.container_len));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.sluice"));
            describe(&mut resp, &o);
            Ok(resp)
        }
        (Method::DELETE, Target::Object(key)) => {
            st.delete_object(caller, key).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET, Target::Content(key)) => content(&st, caller, key, &headers).await,
        (Method::POST, Target::Verify(key)) => {
            let job = st.verify_object(caller, key).await?;
            Ok(job_response(&st, StatusCode::ACCEPTED, &job))
        }
        _ => Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )),
    }
}

fn describe(resp: &mut Response, o: &ObjectInfo) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-sluice-size", o.plaintext_len.to_string()),
        ("x-sluice-blake3", o.digest.clone()),
        ("x-sluice-pipeline", o.pipeline.clone()),
        ("etag", format!("\"{}\"", o.digest)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    // What a client fetching ranges in parallel aligns them to.
    if let Some(size) = o.chunk_size() {
        h.insert("x-sluice-chunk-size", HeaderValue::from(size));
    }
}

/// Parses a single `Range: bytes=…`: `Ok(None)` for none we serve (no
/// `bytes=` unit, or several ranges: the whole content is sent), `Err`
/// for one that cannot be satisfied as written.
pub fn parse_range(value: &str) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    Ok(Some(if a.is_empty() {
        ByteRange::Suffix(b.parse().map_err(|_| ())?)
    } else {
        let first: u64 = a.parse().map_err(|_| ())?;
        if b.is_empty() {
            ByteRange::From(first)
        } else {
            let last: u64 = b.parse().map_err(|_| ())?;
            if last < first {
                return Err(());
            }
            ByteRange::Span { first, last }
        }
    }))
}

/// 416 for a range outside content of `len` bytes.
fn unsatisfiable(len: u64) -> Response {
    let mut resp = Problem::from(sluice_service::Error::RangeNotSatisfiable { len }).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

async fn content(st: &Service, caller: &sluice_service::Caller, key: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => match parse_range(v) {
            Ok(r) => r,
            Err(()) => {
                let o = st.object(caller, key).await?;
                return Ok(unsatisfiable(o.plaintext_len as u64));
            }
        },
        None => None,
    };
    let content = match st.content_accepting(caller, key, range, accepts_zstd(headers)).await {
        Ok(c) => c,
        Err(sluice_service::Error::RangeNotSatisfiable { len }) => return Ok(unsatisfiable(len)),
        Err(e) => return Err(e.into()),
    };
    let len = content.object.plaintext_len as u64;
    // The type it was stored with (through S3), else bytes.
    let content_type = sluice_service::objects::meta::ObjectMeta::from_row(content.object.meta.as_deref())
        .content_type
        .and_then(|t| HeaderValue::from_str(&t).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut resp = Response::new(Body::from_stream(content.body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match content.range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        None if content.encoding == BodyEncoding::Zstd => {
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        }
        None => {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    describe(&mut resp, &content.object);
    let h = resp.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if content.encoding == BodyEncoding::Zstd {
        // The same content in another representation: a weak validator.
        if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", content.object.digest)) {
            h.insert(header::ETAG, v);
        }
    }
    Ok(resp)
}

/// Whether `Accept-Encoding` names `zstd` (with a non-zero weight). A
/// wildcard is not taken for it: the zstd body is a choice a client makes.
pub fn accepts_zstd(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            coding.eq_ignore_ascii_case("zstd") && weight.is_some_and(|q| q > 0.0)
        })
}

/// `GET /v1/objects`.
pub async fn list(
    State(st): State<Service>,
    Authed(caller): Authed,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let page = st
        .objects(&caller, q.prefix.as_deref().unwrap_or(""), q.cursor.as_deref(), q.limit)
        .await?;
    Ok(axum::Json(ObjectList {
        objects: page.items.iter().map(ObjectBody::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_names_zstd_or_not() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_zstd(&h)
        };
        assert!(with("zstd"));
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("gzip;q=1.0, ZSTD;q=0.5"));
        assert!(!with("gzip, deflate"));
        assert!(!with("*"));
        assert!(!with("zstd;q=0"));
        assert!(!with("zstd; q=0.000"));
        assert!(!with("zstd;q=bad"));
        assert!(!with("zstdx"));
        assert!(!accepts_zstd(&HeaderMap::new()));
    }

    #[test]
    fn range_headers() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Ok(Some(ByteRange::Span { first: 0, last: 9 }))
        );
        assert_eq!(parse_range("bytes=90-"), Ok(Some(ByteRange::From(90))));
        assert_eq!(parse_range("bytes=-10"), Ok(Some(ByteRange::Suffix(10))));
        assert_eq!(parse_range("bytes=0-1,5-6"), Ok(None));
        assert_eq!(parse_range("items=0-1"), Ok(None));
        assert_eq!(parse_range("bytes=5-2"), Err(()));
        assert_eq!(parse_range("bytes=x-2"), Err(()));
        // Satisfiable as written; the service judges it against the length.
        assert_eq!(parse_range("bytes=-0"), Ok(Some(ByteRange::Suffix(0))));
    }
}
