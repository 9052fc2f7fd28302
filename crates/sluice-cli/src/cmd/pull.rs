//! `sluice pull KEY --server URL [-o OUT] [--range A..B]`: an object's
//! content (or a byte range of it, which the server restores from only the
//! chunks it needs), written atomically: a cut-off download leaves nothing.
//! A whole object written to a file is asked for as zstd frames
//! ([`frames`]: the compressed bytes cross the network and are
//! decompressed here on every core); a server that does not send them
//! gives it in chunk-aligned ranges over `--parallel` connections
//! ([`parallel`]). Anything else comes in one stream.

mod frames;
mod parallel;

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
    if args.parallel == 0 || args.parallel > 64 {
        return Err(usage(format!("--parallel {}: expected 1 to 64", args.parallel)));
    }
    let sync = args.durability.resolve(false)?;
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
    let whole_to_file = range.is_none() && !to_stdout;
    let mut resp = api.send_retrying(|| {
        let req = api.request(Method::GET, &path);
        match &range {
            Some(r) => req.header(reqwest::header::RANGE, r),
            None if whole_to_file => req.header(reqwest::header::ACCEPT_ENCODING, "zstd"),
            None => req,
        }
    })?;
    let zstd = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"));
    if whole_to_file && zstd {
        let plan = parallel::Plan::from_headers(&resp)
            .context("the server sent zstd frames without the object's size, chunk size and digest")?;
        // Zstd frames, decoded on every core.
        return pull_whole(&plan, &target, args, sync, |out, got| {
            frames::fetch(resp, &plan, out, sluice_engine::available_cores(), got)
        });
    }
    if zstd {
        anyhow::bail!("the server sent zstd frames, which were not asked for");
    }
    if whole_to_file && args.parallel > 1 {
        if let Some(plan) = parallel::Plan::from_head(&resp) {
            // This one stream is given up for several.
            drop(resp);
            // Ranges on `--parallel` connections.
            return pull_whole(&plan, &target, args, sync, |out, got| {
                parallel::fetch(&api, &path, &plan, out, args.parallel, got)
            });
        }
    }
    let total = resp.content_length();
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
        let mut out = AtomicFile::create(&target, None, args.force, sync)?;
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

/// Writes the whole object (`plan.size` bytes) to `target` atomically,
/// with a progress bar: `fill` writes it into the file, counting bytes on
/// its counter.
fn pull_whole(
    plan: &parallel::Plan,
    target: &std::path::Path,
    args: &PullArgs,
    sync: bool,
    fill: impl FnOnce(&mut sluice_engine::OutputFile, &AtomicU64) -> Result<()>,
) -> Result<Code> {
    let mut out = AtomicFile::create(target, None, args.force, sync)?;
    let got = Arc::new(AtomicU64::new(0));
    let bar = {
        let got = Arc::clone(&got);
        Bar::following(move || got.load(Ordering::Relaxed), Some(plan.size), args.quiet)
    };
    fill(out.file()?, &got)?;
    out.commit()?;
    drop(bar);
    eprintln!("{}: {} bytes", target.display(), plan.size);
    Ok(Code::Ok)
}
