//! `sluice restore`: container in, original (or a byte range of it) out.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sluice_engine::{Archive, CancelToken, Control, Engine};

use super::{display, is_stdio, name_error, open_input, Sink};
use crate::cli::{Global, RestoreArgs};
use crate::exit::{usage, Code};
use crate::keys::keyring;
use crate::progress::Bar;

/// Runs the command.
pub fn run(args: &RestoreArgs, engine: &Engine, global: &Global, cancel: CancelToken) -> Result<Code> {
    let keys = keyring(&args.unlock)?;
    let sync = args.durability.resolve(false)?;
    let output = match &args.output {
        Some(o) => o.clone(),
        None => default_output(&args.input)?,
    };
    let ctl = Control {
        cancel,
        ..Control::new()
    };
    if let Some(spec) = &args.range {
        let (start, end) = parse_range(spec)?;
        if is_stdio(&args.input) {
            return Err(usage("--range needs a seekable file, not standard input (a pipe)"));
        }
        let file = File::open(&args.input).with_context(|| format!("{}: cannot open", args.input.display()))?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(usage(format!(
                "{}: --range needs a regular, seekable file",
                args.input.display()
            )));
        }
        let archive = Archive::open(file, &keys).map_err(|e| name_error(e, &args.input, &output))?;
        let len = archive.plaintext_len();
        let range: Range<u64> = start..end.unwrap_or(len);
        let mut sink = Sink::open(&output, &args.input, args.force, false, sync)?;
        let bar = Bar::start(
            ctl.progress.clone(),
            Some(archive.input_len_of(range.clone())),
            global.quiet,
        );
        archive
            .restore_range(engine, range, sink.target()?, &ctl)
            .map_err(|e| name_error(e, &args.input, &output))?;
        drop(bar);
        sink.commit()?;
        return Ok(Code::Ok);
    }
    let input = open_input(&args.input)?;
    let mut sink = Sink::open(&output, &args.input, args.force, false, sync)?;
    let bar = Bar::start(ctl.progress.clone(), input.size, global.quiet);
    engine
        .restore(input.reader, sink.target()?, &keys, &ctl)
        .map_err(|e| name_error(e, &args.input, &output))?;
    drop(bar);
    sink.commit()?;
    Ok(Code::Ok)
}

fn default_output(input: &Path) -> Result<PathBuf> {
    if is_stdio(input) {
        return Ok(PathBuf::from("-"));
    }
    match input.to_str().and_then(|s| s.strip_suffix(".sluice")) {
        Some(stem) if !stem.is_empty() && !stem.ends_with('/') => Ok(PathBuf::from(stem)),
        _ => Err(usage(format!(
            "{}: cannot guess the output name (no .sluice suffix): use -o OUTPUT",
            display(input)
        ))),
    }
}

/// Parses `START..END` (END exclusive) or `START..`.
pub fn parse_range(spec: &str) -> Result<(u64, Option<u64>)> {
    let bad = || {
        usage(format!(
            "invalid --range {spec:?}: expected START..END or START.. (bytes, END exclusive)"
        ))
    };
    let (a, b) = spec.split_once("..").ok_or_else(bad)?;
    let start: u64 = if a.trim().is_empty() {
        0
    } else {
        a.trim().parse().map_err(|_| bad())?
    };
    let end = if b.trim().is_empty() {
        None
    } else {
        Some(b.trim().parse::<u64>().map_err(|_| bad())?)
    };
    if end.is_some_and(|e| e < start) {
        return Err(usage(format!("invalid --range {spec:?}: END is before START")));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("10..20").unwrap(), (10, Some(20)));
        assert_eq!(parse_range("10..").unwrap(), (10, None));
        assert_eq!(parse_range("..5").unwrap(), (0, Some(5)));
        assert!(parse_range("20..10").is_err());
        assert!(parse_range("a..b").is_err());
        assert!(parse_range("10").is_err());
    }

    #[test]
    fn default_names() {
        assert_eq!(
            default_output(Path::new("a/b.tar.sluice")).unwrap(),
            PathBuf::from("a/b.tar")
        );
        assert!(default_output(Path::new("b.tar")).is_err());
        assert!(default_output(Path::new(".sluice")).is_err());
    }
}
