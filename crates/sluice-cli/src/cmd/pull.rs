//! `sluice pull KEY --server URL [-o OUT] [--range A..B]`: an object's
//! content (or a byte range of it, which the server restores from only the
//! chunks it needs), written atomically: a cut-off download leaves nothing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use reqwest::Method;

use crate::cli::PullArgs;
use crate::client::{object_path, Api};
use crate::cmd::restore::parse_range;
use crate::exit::{usage, Code};
use crate::output::AtomicFile;
use crate::progress::Bar;

/// Runs the command.
pub fn run(args: &PullArgs) -> Result<Code> {
    let api = Api::new(&args.server)?;
    let path = format!("{}/content", object_path(&args.key));
    let range = match &args.range {
        Some(spec) => {
            let (start, end) = parse_range(spec)?;
            if end == Some(start) {
                return Err(usage(format!("--range {spec:?} is empty")));
            }
            Some(match end {
                Some(e) => format!("bytes={start}-{}", e - 1),
                None => format!("bytes={start}-"),
            })
        }
        None => None,
    };
    let mut resp = api.send_retrying(|| {
        let req = api.request(Method::GET, &path);
        match &range {
            Some(r) => req.header(reqwest::header::RANGE, r),
            None => req,
        }
    })?;
    let total = resp.content_length();
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let target = match &args.output {
        Some(p) => p.clone(),
        None => PathBuf::from(
            args.key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| usage("give the output file with -o"))?,
        ),
    };
    let got = Arc::new(AtomicU64::new(0));
    let bar = {
        let got = Arc::clone(&got);
        Bar::following(move || got.load(Ordering::Relaxed), total, args.quiet || to_stdout)
    };
    let mut buf = vec![0u8; 1 << 20];
    let copy = |out: &mut dyn Write| -> Result<u64> {
        let mut n = 0u64;
        loop {
            let k = resp.read(&mut buf).context("the download was interrupted")?;
            if k == 0 {
                break;
            }
            out.write_all(&buf[..k]).context("write failed")?;
            n += k as u64;
            got.store(n, Ordering::Relaxed);
        }
        Ok(n)
    };
    let mut copy = copy;
    let written = if to_stdout {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        let n = copy(&mut lock)?;
        lock.flush()?;
        n
    } else {
        let mut out = AtomicFile::create(&target, None, args.force, true)?;
        let n = copy(out.file()?)?;
        if total.is_some_and(|t| t != n) {
            anyhow::bail!("the download ended after {n} of {} bytes", total.unwrap_or(0));
        }
        out.commit()?;
        n
    };
    drop(bar);
    if !to_stdout {
        eprintln!("{}: {written} bytes", target.display());
    }
    Ok(Code::Ok)
}
