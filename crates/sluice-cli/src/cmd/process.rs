//! `sluice process`: plaintext in, container out.

use std::io::IsTerminal;

use anyhow::Result;
use sluice_engine::format::{ChunkSize, Compression, FileParams, Suite};
use sluice_engine::{CancelToken, Control, EncodeOptions, Engine};

use super::{default_container_name, display, name_error, open_input, Sink};
use crate::cli::{Global, ProcessArgs};
use crate::exit::{usage, Code};
use crate::keys::slots_for_process;
use crate::progress::Bar;

/// Runs the command.
pub fn run(args: &ProcessArgs, engine: &Engine, global: &Global, cancel: CancelToken) -> Result<Code> {
    let suite = Suite::from_name(&args.encrypt).map_err(|e| usage(e.to_string()))?;
    let compression = Compression::parse(&args.compress).map_err(|e| usage(e.to_string()))?;
    let chunk_size = ChunkSize::parse(&args.chunk_size).map_err(|e| usage(e.to_string()))?;
    let slots = slots_for_process(args, suite.is_encrypted())?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_container_name(&args.input));
    let input = open_input(&args.input)?;
    let sync = args.durability.resolve(true)?;
    let mut sink = Sink::open(&output, &args.input, args.force, true, sync)?;
    let opts = EncodeOptions {
        params: FileParams {
            suite,
            compression,
            chunk_size,
        },
        slots,
        adaptive: !args.no_adaptive,
    };
    let ctl = Control {
        cancel,
        ..Control::new()
    };
    let bar = Bar::start(ctl.progress.clone(), input.size, global.quiet);
    let summary = engine
        .encode(input.reader, &mut sink, &opts, &ctl)
        .map_err(|e| name_error(e, &args.input, &output))?;
    drop(bar);
    // A regular file that shrank while it was read was cut by someone else:
    // the container would silently hold less than the user asked for.
    if let Some(expected) = input.size {
        if summary.plaintext_len < expected {
            return Err(anyhow::Error::new(std::io::Error::other(format!(
                "input shrank while it was read ({expected} bytes at open, {} read); nothing written",
                summary.plaintext_len
            )))
            .context(display(&args.input)));
        }
    }
    sink.commit()?;
    if !global.quiet && std::io::stderr().is_terminal() {
        let ratio = if summary.plaintext_len == 0 {
            1.0
        } else {
            summary.container_len as f64 / summary.plaintext_len as f64
        };
        eprintln!(
            "{} -> {}: {} -> {} bytes ({:.2}%), {} chunks",
            display(&args.input),
            display(&output),
            summary.plaintext_len,
            summary.container_len,
            ratio * 100.0,
            summary.chunk_count
        );
    }
    Ok(Code::Ok)
}
