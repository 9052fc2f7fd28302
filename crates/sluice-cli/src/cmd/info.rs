//! `sluice info`: what can be told without a key.

use std::fs::File;

use anyhow::{Context, Result};
use serde_json::json;
use sluice_engine::format::Slot;
use sluice_engine::{inspect, inspect_stream, ContainerInfo};

use super::{display, is_stdio};
use crate::cli::InfoArgs;
use crate::exit::{usage, Code};

/// Runs the command.
pub fn run(args: &InfoArgs) -> Result<Code> {
    let info = if is_stdio(&args.input) {
        inspect_stream(std::io::stdin())
    } else {
        if args.input.is_dir() {
            return Err(usage(format!("{}: is a directory, not a file", args.input.display())));
        }
        let f = File::open(&args.input).with_context(|| format!("{}: cannot open", args.input.display()))?;
        inspect(f)
    }
    .map_err(|e| anyhow::Error::new(e).context(display(&args.input)))?;
    let h = &info.header;
    let slots: Vec<&str> = h.slots.iter().map(Slot::kind_name).collect();
    let kdf: Vec<_> = h
        .slots
        .iter()
        .filter_map(|s| match s {
            Slot::Passphrase { params, .. } => Some(params),
            _ => None,
        })
        .collect();
    if args.json {
        let v = json!({
            "file": display(&args.input),
            "format_version": sluice_engine::format::VERSION,
            "encryption": h.suite.name(),
            "compression": h.compression.to_string(),
            "chunk_size": h.chunk_size.bytes(),
            "chunks": info.chunk_count,
            "compressed_chunks": info.compressed_chunks,
            "plaintext_len": info.plaintext_len,
            "container_len": info.container_len,
            "key_slots": slots,
            "argon2": kdf.iter().map(|p| json!({"memory_kib": p.memory_kib, "passes": p.passes, "lanes": p.lanes})).collect::<Vec<_>>(),
            "authenticated": false,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_human(args, &info, &slots, &kdf);
    }
    Ok(Code::Ok)
}

fn print_human(args: &InfoArgs, info: &ContainerInfo, slots: &[&str], kdf: &[&sluice_engine::format::KdfParams]) {
    let h = &info.header;
    let ratio = if info.plaintext_len == 0 {
        1.0
    } else {
        info.container_len as f64 / info.plaintext_len as f64
    };
    println!("file:          {}", display(&args.input));
    println!("format:        sluice v{}", sluice_engine::format::VERSION);
    println!("encryption:    {}", h.suite.name());
    println!("compression:   {}", h.compression);
    println!("chunk size:    {} bytes", h.chunk_size.bytes());
    println!(
        "chunks:        {} ({} compressed)",
        info.chunk_count, info.compressed_chunks
    );
    println!("original size: {} bytes", info.plaintext_len);
    println!(
        "container:     {} bytes ({:.1}% of original)",
        info.container_len,
        ratio * 100.0
    );
    if slots.is_empty() {
        println!("key slots:     none (unencrypted: checksums only)");
    } else {
        println!("key slots:     {} ({})", slots.len(), slots.join(", "));
    }
    for p in kdf {
        println!(
            "argon2id:      {} MiB, {} passes, {} lanes",
            p.memory_kib / 1024,
            p.passes,
            p.lanes
        );
    }
    println!("note:          read without a key; sizes are not authenticated (use 'sluice verify')");
}
