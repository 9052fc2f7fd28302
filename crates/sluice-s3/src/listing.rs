//! ListObjects (v1 and v2) over the service's key-ordered listing of a
//! bucket's prefix: keys grouped by a delimiter into common prefixes (a
//! group is skipped over at once, not read through), `max-keys` counted
//! over both, and where the next page starts.

use sluice_service::{Caller, Service};

use crate::errors::to_s3;

/// The service's page size while listing.
const PAGE: u32 = 1000;

/// Past every key that starts with what it follows (in byte order).
const PAST: char = '\u{10FFFF}';

/// One page of a bucket's listing.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Objects: (key in the bucket, object).
    pub contents: Vec<(String, sluice_service::ObjectInfo)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// Where the next page starts after, if this one was cut at max-keys:
    /// the last key or common prefix returned.
    pub next_after: Option<String>,
}

impl Listing {
    /// Keys and prefixes as `encoding-type=url` asks.
    pub(crate) fn url_encoded(mut self) -> Listing {
        for (k, _) in &mut self.contents {
            *k = url_encode(k);
        }
        for p in &mut self.prefixes {
            *p = url_encode(p);
        }
        self
    }
}

/// A key as S3 sends it under `encoding-type=url`: unreserved characters
/// and `/` as they are, every other byte `%XX`.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether a listing asked for `encoding-type=url`.
pub(crate) fn wants_url(e: Option<&s3s::dto::EncodingType>) -> bool {
    e.is_some_and(|e| e.as_str().eq_ignore_ascii_case(s3s::dto::EncodingType::URL))
}

/// What to list.
pub(crate) struct Query<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Start after this key (in the bucket); a common prefix here means
    /// after every key under it.
    pub after: Option<&'a str>,
    pub max_keys: usize,
}

/// Lists a page of `q.bucket`.
pub(crate) async fn list(service: &Service, caller: &Caller, q: &Query<'_>) -> s3s::S3Result<Listing> {
    let base = format!("{}/", q.bucket);
    let full_prefix = format!("{base}{}", q.prefix);
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    let mut cursor: Option<String> = q.after.map(|a| {
        let mut c = format!("{base}{a}");
        if delimiter.is_some_and(|d| a.ends_with(d) && a.starts_with(q.prefix) && a.len() > q.prefix.len()) {
            c.push(PAST);
        }
        c
    });
    let mut out = Listing::default();
    let mut count = 0usize;
    if q.max_keys == 0 {
        return Ok(out);
    }
    'pages: loop {
        let page = service
            .objects(caller, &full_prefix, cursor.as_deref(), Some(PAGE))
            .await
            .map_err(to_s3)?;
        let last_page = page.next_cursor.is_none();
        for o in page.items {
            let Some(rel) = o.key.strip_prefix(&base).map(str::to_string) else {
                continue;
            };
            let group = delimiter.and_then(|d| {
                rel[q.prefix.len()..]
                    .find(d)
                    .map(|i| rel[..q.prefix.len() + i + d.len()].to_string())
            });
            if count == q.max_keys {
                out.next_after = out
                    .contents
                    .last()
                    .map(|(k, _)| k.clone())
                    .into_iter()
                    .chain(out.prefixes.last().cloned())
                    .max();
                return Ok(out);
            }
            count += 1;
            match group {
                Some(p) => {
                    // Skip the rest of the group in one step.
                    cursor = Some(format!("{base}{p}{PAST}"));
                    out.prefixes.push(p);
                    continue 'pages;
                }
                None => {
                    cursor = Some(o.key.clone());
                    out.contents.push((rel, o));
                }
            }
        }
        if last_page {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn url_encoding_is_s3s() {
        assert_eq!(url_encode("asdf+b"), "asdf%2Bb");
        assert_eq!(url_encode("a b/c%d"), "a%20b/c%25d");
        assert_eq!(url_encode("é"), "%C3%A9");
    }
}
