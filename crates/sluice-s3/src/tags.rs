//! Object tags: S3's limits (10 tags, keys of 1 to 128 and values of at
//! most 256 characters, no key twice), and the `x-amz-tagging` header
//! (`k=v&k2=v2`, form-encoded).

use std::collections::BTreeMap;

use s3s::{s3_error, S3Result};

/// Most tags on one object.
const MAX_TAGS: usize = 10;

/// Checks `pairs` and makes them an object's tags.
pub(crate) fn checked(pairs: Vec<(String, String)>) -> S3Result<BTreeMap<String, String>> {
    if pairs.len() > MAX_TAGS {
        return Err(s3_error!(InvalidTag, "an object may have at most {MAX_TAGS} tags"));
    }
    let mut tags = BTreeMap::new();
    for (k, v) in pairs {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(s3_error!(InvalidTag, "a tag key is 1 to 128 characters"));
        }
        if v.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "a tag value is at most 256 characters"));
        }
        if tags.insert(k, v).is_some() {
            return Err(s3_error!(InvalidTag, "a tag key may appear only once"));
        }
    }
    Ok(tags)
}

/// The tags of an `x-amz-tagging` header.
pub(crate) fn from_header(header: &str) -> S3Result<BTreeMap<String, String>> {
    let mut pairs = Vec::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((form_decode(k)?, form_decode(v)?));
    }
    checked(pairs)
}

fn form_decode(s: &str) -> S3Result<String> {
    let bad = || s3_error!(InvalidArgument, "the x-amz-tagging header is not form-encoded");
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_decode_and_limits_hold() {
        let t = from_header("a=1&b%20c=x+y&empty=").unwrap();
        assert_eq!(t.get("b c").map(String::as_str), Some("x y"));
        assert_eq!(t.get("empty").map(String::as_str), Some(""));
        assert!(from_header("a=1&a=2").is_err());
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(from_header(&many.join("&")).is_err());
        assert!(checked(vec![("k".repeat(129), String::new())]).is_err());
        assert!(checked(vec![("k".into(), "v".repeat(257))]).is_err());
        assert!(from_header("bad=%zz").is_err());
    }
}
