//! `sluice verify`: authenticate whole containers, several at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Result;
use serde_json::json;
use sluice_engine::{CancelToken, Control, DecodeSummary, Engine};

use super::{display, name_error, open_input};
use crate::cli::{Global, VerifyArgs};
use crate::exit::{code_for, hint_for, usage, Code};
use crate::keys::keyring;

/// Runs the command. Files are verified concurrently (at most `--jobs` at
/// once) on the one shared CPU pool; results print in argument order.
pub fn run(args: &VerifyArgs, engine: &Engine, _global: &Global, cancel: CancelToken) -> Result<Code> {
    if args.jobs == 0 {
        return Err(usage("--jobs must be at least 1"));
    }
    let keys = keyring(&args.unlock)?;
    let n = args.inputs.len();
    let results: Vec<Mutex<Option<Result<DecodeSummary, anyhow::Error>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(n) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = args.inputs.get(i) else {
                    return;
                };
                let outcome = verify_one(path, engine, &keys, &cancel);
                if let Some(Ok(mut guard)) = results.get(i).map(Mutex::lock) {
                    *guard = Some(outcome);
                }
            });
        }
    });
    let mut first_failure: Option<Code> = None;
    let mut report = Vec::with_capacity(n);
    for (path, cell) in args.inputs.iter().zip(results) {
        let outcome = cell
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(anyhow::anyhow!("{}: not verified", display(path))));
        match outcome {
            Ok(s) => report.push(Ok((path, s))),
            Err(e) => {
                first_failure.get_or_insert(code_for(&e));
                report.push(Err((path, e)));
            }
        }
    }
    if args.json {
        let items: Vec<_> = report
            .iter()
            .map(|r| match r {
                Ok((p, s)) => json!({
                    "file": p.display().to_string(),
                    "ok": true,
                    "plaintext_len": s.plaintext_len,
                    "chunks": s.chunk_count,
                    "blake3": hex::encode(s.digest),
                }),
                Err((p, e)) => json!({
                    "file": p.display().to_string(),
                    "ok": false,
                    "error": format!("{e:#}"),
                    "hint": hint_for(e),
                    "exit_code": code_for(e) as u8,
                }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for r in &report {
            match r {
                Ok((p, s)) => println!(
                    "OK      {}  ({} bytes, blake3 {})",
                    p.display(),
                    s.plaintext_len,
                    hex::encode(s.digest)
                ),
                Err((_, e)) => {
                    println!("FAILED  {e:#}");
                    if let Some(hint) = hint_for(e) {
                        println!("        hint: {hint}");
                    }
                }
            }
        }
    }
    Ok(first_failure.unwrap_or(Code::Ok))
}

fn verify_one(
    path: &std::path::Path,
    engine: &Engine,
    keys: &sluice_engine::format::KeyRing,
    cancel: &CancelToken,
) -> Result<DecodeSummary> {
    let input = open_input(path).map_err(|e| e.context(display(path)))?;
    let ctl = Control {
        cancel: cancel.clone(),
        ..Control::new()
    };
    engine
        .verify(input.reader, keys, &ctl)
        .map_err(|e| name_error(e, path, path))
}
