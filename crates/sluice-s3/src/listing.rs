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
