//! Virtual-hosted-style addressing: with `--s3-domain DOMAIN`, a request
//! to `BUCKET.DOMAIN` names its bucket in the host. Every other host (the
//! domain itself, an IP address, `localhost`) is path style, so clients
//! that address the listener by its address keep working.

use std::borrow::Cow;

use s3s::host::{S3Host, VirtualHost};
use s3s::S3Result;

/// Finds the bucket of a request in its `Host` under one domain.
pub(crate) struct Domain {
    /// Lower case, without a port or a final dot.
    name: String,
}

impl Domain {
    /// Addressing under `name` (checked by the settings).
    pub(crate) fn new(name: &str) -> Domain {
        Domain {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

/// `host` without its port (`[::1]:8471` → `[::1]`).
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = without_port(host).trim_end_matches('.').to_ascii_lowercase();
        let bucket = name
            .strip_suffix(self.name.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string);
        Ok(match bucket {
            Some(b) => VirtualHost::new(self.name.as_str()).with_bucket(Cow::Owned(b)),
            None => VirtualHost::new(Cow::Owned(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_subdomains_and_other_hosts_are_path_style() {
        let d = Domain::new("s3.example.test");
        let bucket = |h: &str| d.parse_host_header(h).ok().and_then(|v| v.bucket().map(str::to_string));
        assert_eq!(bucket("photos.s3.example.test"), Some("photos".into()));
        assert_eq!(bucket("Photos.S3.Example.Test:8471"), Some("photos".into()));
        assert_eq!(bucket("a.b.s3.example.test"), Some("a.b".into()));
        assert_eq!(bucket("s3.example.test:8471"), None);
        assert_eq!(bucket("127.0.0.1:8471"), None);
        assert_eq!(bucket("[::1]:8471"), None);
        assert_eq!(bucket("localhost"), None);
        assert_eq!(bucket("xs3.example.test"), None);
        assert_eq!(without_port("[::1]"), "[::1]");
    }
}
