//! One module per command, plus the input/output plumbing they share.

pub mod admin;
pub mod bench;
pub mod info;
pub mod keygen;
pub mod process;
pub mod pull;
pub mod push;
pub mod restore;
pub mod serve;
pub mod verify;

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::usage;
use crate::output::AtomicFile;

/// Whether a path argument means standard input/output.
pub fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// The name of a path argument for messages.
pub fn display(p: &Path) -> String {
    if is_stdio(p) {
        "<stdin/stdout>".into()
    } else {
        p.display().to_string()
    }
}

/// An opened input and its size when known.
pub struct Input {
    /// The reader.
    pub reader: Box<dyn Read + Send>,
    /// Length in bytes, for regular files.
    pub size: Option<u64>,
}

/// Opens a file argument (or `-` for standard input) for reading.
pub fn open_input(path: &Path) -> Result<Input> {
    if is_stdio(path) {
        return Ok(Input {
            reader: Box::new(std::io::stdin()),
            size: None,
        });
    }
    if path.is_dir() {
        return Err(usage(format!("{}: is a directory, not a file", path.display())));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot read metadata", path.display()))?;
    let size = meta.is_file().then_some(meta.len());
    Ok(Input {
        reader: Box::new(file),
        size,
    })
}

/// Where output goes: standard output, or a file that appears only on success.
pub enum Sink {
    /// Standard output.
    Stdout(std::io::Stdout),
    /// An atomic file.
    File(AtomicFile),
}

impl Sink {
    /// Opens `target` (`-` for standard output). Refuses to overwrite without
    /// `force`, to write over the input, and to spray binary on a terminal.
    /// With `sync`, a file output is made durable before it is kept.
    pub fn open(target: &Path, input: &Path, force: bool, binary: bool, sync: bool) -> Result<Sink> {
        if is_stdio(target) {
            if binary && std::io::stdout().is_terminal() {
                return Err(usage(
                    "refusing to write a container to a terminal: use -o FILE or redirect standard output",
                ));
            }
            return Ok(Sink::Stdout(std::io::stdout()));
        }
        let input = (!is_stdio(input)).then_some(input);
        Ok(Sink::File(AtomicFile::create(target, input, force, sync)?))
    }

    /// Where the engine restores into: a file is written chunk by chunk at
    /// its offsets by the workers, standard output in order.
    pub fn target(&mut self) -> Result<sluice_engine::Target<'_>> {
        Ok(match self {
            Sink::Stdout(s) => sluice_engine::Target::Stream(s),
            Sink::File(f) => sluice_engine::Target::File(f.file()?),
        })
    }

    /// Makes the output final (renames the temporary file into place).
    pub fn commit(self) -> Result<()> {
        match self {
            Sink::Stdout(mut s) => s.flush().context("writing standard output"),
            Sink::File(f) => f.commit(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::File(f) => f.flush(),
        }
    }
}

/// Adds the right file name to an engine error: the output's for write
/// failures, the input's for everything else.
pub fn name_error(err: sluice_engine::Error, input: &Path, output: &Path) -> anyhow::Error {
    let who = match err {
        sluice_engine::Error::Write(_) => display(output),
        _ => display(input),
    };
    anyhow::Error::new(err).context(who)
}

/// Default output of `process`: the input name plus `.sluice`.
pub fn default_container_name(input: &Path) -> PathBuf {
    if is_stdio(input) {
        return PathBuf::from("-");
    }
    let mut s = input.as_os_str().to_owned();
    s.push(".sluice");
    PathBuf::from(s)
}
