//! `sluice bench`: measures a grid of codecs and chunk sizes on a sample of
//! the user's own data (or a generated one), prints speed and size for each
//! and recommends settings.
//!
//! The sample is held in memory and the container is written to memory, so
//! the figures are the engine's on this machine's cores, free of the disk's
//! noise; `docs/PERFORMANCE.md` has the on-disk comparison with other tools.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_engine::format::{parse_size, ChunkSize, Compression, FileParams, KeyRing, RawKey, SlotSpec, Suite};
use sluice_engine::{Control, EncodeOptions, Engine};

use super::display;
use crate::cli::{BenchArgs, Global};
use crate::exit::{usage, Code};

/// Largest sample accepted (it is held in memory twice: input and output).
const MAX_SAMPLE: u64 = 4 << 30;
/// Largest generated sample: enough for every chunk size to repeat.
const MAX_GENERATED: usize = 128 << 20;
/// Settings within this fraction of the default's speed count as "as fast".
const SPEED_SLACK: f64 = 0.05;

/// One measured setting.
#[derive(Debug, Clone)]
struct Measured {
    compression: Compression,
    chunk_size: ChunkSize,
    process: Duration,
    restore: Duration,
    output_len: u64,
}

impl Measured {
    fn flags(&self) -> String {
        format!("--compress {} --chunk-size {}", self.compression, self.chunk_size)
    }
}

/// Runs the command.
pub fn run(args: &BenchArgs, engine: &Engine, global: &Global) -> Result<Code> {
    let sample_cap = parse_size(&args.sample).map_err(|e| usage(format!("--sample {:?}: {e}", args.sample)))?;
    if sample_cap == 0 || sample_cap > MAX_SAMPLE {
        return Err(usage(format!(
            "--sample must be from 1 byte to 4GiB, got {}",
            args.sample
        )));
    }
    let codecs = parse_list(&args.codecs, "--codecs", |s| {
        Compression::parse(s).map_err(|e| e.to_string())
    })?;
    let chunks = parse_list(&args.chunk_sizes, "--chunk-sizes", |s| {
        ChunkSize::parse(s).map_err(|e| e.to_string())
    })?;
    let suite = Suite::from_name(&args.encrypt).map_err(|e| usage(e.to_string()))?;
    if args.runs == 0 || args.runs > 100 {
        return Err(usage("--runs must be 1..=100"));
    }
    let (sample, source) = load_sample(args, sample_cap)?;
    if sample.is_empty() {
        return Err(usage(format!("{source}: empty, nothing to measure")));
    }

    let key = RawKey::generate()?;
    let keys = KeyRing::new().with_raw_key(key.clone()).allowing_unencrypted();
    let slots = if suite.is_encrypted() {
        vec![SlotSpec::RawKey(key)]
    } else {
        Vec::new()
    };
    let grid: Vec<(Compression, ChunkSize)> = codecs
        .iter()
        .flat_map(|c| chunks.iter().map(move |k| (*c, *k)))
        .collect();
    let bar = progress_bar(grid.len() as u64 * u64::from(args.runs), global.quiet);
    let mut results = Vec::with_capacity(grid.len());
    let mut container = Vec::new();
    for (compression, chunk_size) in grid {
        let opts = EncodeOptions {
            params: FileParams {
                suite,
                compression,
                chunk_size,
            },
            slots: slots.clone(),
            adaptive: true,
        };
        bar.set_message(format!("{compression} {chunk_size}"));
        let mut best: Option<Measured> = None;
        for _ in 0..args.runs {
            container.clear();
            let started = Instant::now();
            engine.encode(&sample[..], &mut container, &opts, &Control::new())?;
            let process = started.elapsed();
            let started = Instant::now();
            let summary = engine.verify(&container[..], &keys, &Control::new())?;
            let restore = started.elapsed();
            if summary.plaintext_len != sample.len() as u64 {
                return Err(anyhow::anyhow!("round trip lost data with {compression} {chunk_size}"));
            }
            let run = Measured {
                compression,
                chunk_size,
                process,
                restore,
                output_len: container.len() as u64,
            };
            best = Some(match best {
                Some(b) => Measured {
                    process: b.process.min(run.process),
                    restore: b.restore.min(run.restore),
                    ..run
                },
                None => run,
            });
            bar.inc(1);
        }
        results.extend(best);
    }
    bar.finish_and_clear();
    let picks = recommend(&results);
    if args.json {
        print_json(&results, &picks, sample.len(), &source, engine)?;
    } else {
        print_table(&results, &picks, sample.len(), &source, engine);
    }
    Ok(Code::Ok)
}

fn parse_list<T>(spec: &str, flag: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>> {
    let items: Vec<T> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse(s).map_err(|e| usage(format!("{flag}: {e}"))))
        .collect::<Result<_>>()?;
    if items.is_empty() || items.len() > 32 {
        return Err(usage(format!("{flag}: give 1 to 32 comma-separated values")));
    }
    Ok(items)
}

fn load_sample(args: &BenchArgs, cap: u64) -> Result<(Vec<u8>, String)> {
    let Some(path) = &args.input else {
        let len = usize::try_from(cap).unwrap_or(MAX_GENERATED).min(MAX_GENERATED);
        return Ok((
            generated_logs(len),
            format!("generated log-like sample ({} MiB)", len >> 20),
        ));
    };
    if super::is_stdio(path) {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(cap)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        return Ok((buf, "<stdin>".into()));
    }
    if path.is_dir() {
        return Err(usage(format!(
            "{}: is a directory (give a file, e.g. a tar of it)",
            path.display()
        )));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut buf = Vec::new();
    file.take(cap)
        .read_to_end(&mut buf)
        .with_context(|| format!("{}: read failed", path.display()))?;
    let name = display(path);
    Ok((buf, name))
}

/// Deterministic JSON log lines: timestamps, services, paths, latencies and
/// free text, about as compressible as real application logs.
fn generated_logs(len: usize) -> Vec<u8> {
    const SERVICES: [&str; 8] = [
        "auth", "billing", "catalog", "checkout", "search", "gateway", "ledger", "profile",
    ];
    const LEVELS: [&str; 6] = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
    const WORDS: [&str; 16] = [
        "request",
        "completed",
        "user",
        "session",
        "cache",
        "miss",
        "retry",
        "timeout",
        "upstream",
        "order",
        "created",
        "payment",
        "declined",
        "token",
        "refreshed",
        "queue",
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(len + 512);
    let mut ts = 1_700_000_000_000u64;
    while out.len() < len {
        let r = next();
        ts += r % 50;
        let pick = |n: usize, shift: u32| (r >> shift) as usize % n;
        let words: Vec<&str> = (0..3 + pick(4, 40))
            .map(|i| WORDS[pick(16, 8 + 4 * i as u32)])
            .collect();
        let line = format!(
            "{{\"ts\":{ts},\"level\":\"{}\",\"service\":\"{}\",\"path\":\"/v1/{}/{}\",\"status\":{},\"latency_ms\":{},\"user\":\"u{:06}\",\"msg\":\"{}\"}}\n",
            LEVELS[pick(6, 3)],
            SERVICES[pick(8, 6)],
            WORDS[pick(16, 12)],
            (r >> 20) % 100_000,
            [200, 200, 200, 201, 404, 500][pick(6, 30)],
            (r >> 33) % 2000,
            (r >> 44) % 1_000_000,
            words.join(" "),
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// The recommendations: (label, index into results).
struct Picks {
    balanced: Option<usize>,
    fastest: Option<usize>,
    smallest: Option<usize>,
}

/// - balanced: the smallest output among settings at least as fast (within
///   5%) as sluice's defaults, or as the fastest zstd setting measured when
///   the defaults were not in the grid;
/// - fastest: the highest process throughput;
/// - smallest: the smallest output.
fn recommend(results: &[Measured]) -> Picks {
    let fastest = (0..results.len()).min_by_key(|&i| results[i].process);
    let smallest = (0..results.len()).min_by_key(|&i| (results[i].output_len, results[i].process));
    let default = (Compression::default(), ChunkSize::default());
    let reference = results
        .iter()
        .position(|m| (m.compression, m.chunk_size) == default)
        .or(fastest);
    let balanced = reference.and_then(|r| {
        let limit = results[r].process.as_secs_f64() * (1.0 + SPEED_SLACK);
        (0..results.len())
            .filter(|&i| results[i].process.as_secs_f64() <= limit)
            .min_by_key(|&i| results[i].output_len)
    });
    Picks {
        balanced,
        fastest,
        smallest,
    }
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9)
}

fn print_table(results: &[Measured], picks: &Picks, sample_len: usize, source: &str, engine: &Engine) {
    println!(
        "sample: {source}, {:.1} MiB; {} threads; process = compress + encrypt + hash, restore = full authentication",
        sample_len as f64 / (1 << 20) as f64,
        engine.threads()
    );
    println!(
        "{:<9} {:>7} {:>13} {:>13} {:>14} {:>7}",
        "codec", "chunk", "process MiB/s", "restore MiB/s", "output bytes", "ratio"
    );
    for m in results {
        println!(
            "{:<9} {:>7} {:>13.0} {:>13.0} {:>14} {:>6.2}%",
            m.compression.to_string(),
            m.chunk_size.to_string(),
            mib_per_s(sample_len, m.process),
            mib_per_s(sample_len, m.restore),
            m.output_len,
            100.0 * m.output_len as f64 / sample_len as f64
        );
    }
    println!();
    for (label, pick) in [
        (
            "recommended (smallest output at least as fast as the defaults)",
            picks.balanced,
        ),
        ("fastest", picks.fastest),
        ("smallest", picks.smallest),
    ] {
        if let Some(m) = pick.and_then(|i| results.get(i)) {
            println!("{label}: sluice process {}", m.flags());
        }
    }
}

fn print_json(results: &[Measured], picks: &Picks, sample_len: usize, source: &str, engine: &Engine) -> Result<()> {
    let row = |m: &Measured| {
        serde_json::json!({
            "compression": m.compression.to_string(),
            "chunk_size": m.chunk_size.to_string(),
            "process_mib_s": mib_per_s(sample_len, m.process),
            "restore_mib_s": mib_per_s(sample_len, m.restore),
            "output_bytes": m.output_len,
            "ratio": m.output_len as f64 / sample_len as f64,
            "flags": m.flags(),
        })
    };
    let pick = |p: Option<usize>| p.and_then(|i| results.get(i)).map(row);
    let doc = serde_json::json!({
        "sample": source,
        "sample_bytes": sample_len,
        "threads": engine.threads(),
        "results": results.iter().map(row).collect::<Vec<_>>(),
        "recommended": pick(picks.balanced),
        "fastest": pick(picks.fastest),
        "smallest": pick(picks.smallest),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

fn progress_bar(steps: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} settings, now {msg} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(codec: &str, chunk: &str, ms: u64, len: u64) -> Measured {
        Measured {
            compression: Compression::parse(codec).unwrap(),
            chunk_size: ChunkSize::parse(chunk).unwrap(),
            process: Duration::from_millis(ms),
            restore: Duration::from_millis(ms / 2),
            output_len: len,
        }
    }

    #[test]
    fn recommendations() {
        let r = vec![
            m("lz4", "8MiB", 100, 900),
            m("zstd:3", "8MiB", 400, 500),
            m("zstd:3", "16MiB", 410, 480),
            m("zstd:1", "8MiB", 300, 520),
            m("zstd:9", "8MiB", 2000, 400),
        ];
        let p = recommend(&r);
        assert_eq!(p.fastest, Some(0));
        assert_eq!(p.smallest, Some(4));
        // 16MiB is within 5% of the default's time and smaller.
        assert_eq!(p.balanced, Some(2));
    }

    #[test]
    fn generated_sample_is_deterministic_and_compressible() {
        let a = generated_logs(1 << 20);
        assert_eq!(a.len(), 1 << 20);
        assert_eq!(a, generated_logs(1 << 20));
        let packed = zstd_len(&a);
        assert!(packed < a.len() / 3, "{packed}");
        assert!(packed > a.len() / 40, "{packed}: too repetitive to stand for logs");
    }

    fn zstd_len(data: &[u8]) -> usize {
        let mut c =
            sluice_engine::format::Compressor::new(Compression::default(), ChunkSize::default(), false).unwrap();
        let mut out = Vec::new();
        c.compress(data, &mut out).unwrap_or(data.len())
    }
}
