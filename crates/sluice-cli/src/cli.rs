//! Command-line definitions (clap). Flag names here are a contract that
//! scripts rely on: add, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
pub use sluice_service::Settings;

/// sluice: parallel, compressed, encrypted, tamper-evident containers.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 internal error, 2 usage, 3 I/O error, 4 integrity failure \
(corrupt, truncated or tampered), 5 wrong or missing key, 6 refused by a limit, 130 interrupted.\n\
See 'sluice help COMMAND' for examples."
)]
pub struct Cli {
    /// Command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Options every command accepts.
    #[command(flatten)]
    pub global: Global,
}

/// Options shared by all commands.
#[derive(Debug, Args)]
pub struct Global {
    /// Worker threads for compression, encryption and hashing [default: all cores]
    #[arg(
        short = 'j',
        long,
        global = true,
        env = "SLUICE_THREADS",
        value_name = "N",
        alias = "cpu-threads"
    )]
    pub threads: Option<usize>,
    /// Chunks in flight per file (bounds memory to about 2 x N x chunk size) [default: 2 x threads + 2]
    #[arg(
        long,
        global = true,
        env = "SLUICE_IN_FLIGHT",
        value_name = "N",
        hide_short_help = true
    )]
    pub in_flight: Option<usize>,
    /// Most MiB of chunk buffers per file (serve: shared by all running jobs); files with big chunks get fewer in flight [default: 16 x (threads + 2); serve: twice that]
    #[arg(
        long,
        global = true,
        env = "SLUICE_MAX_MEMORY",
        value_name = "MIB",
        hide_short_help = true,
        alias = "engine-memory-mib"
    )]
    pub max_memory: Option<usize>,
    /// No progress bar and no informational messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compress and encrypt a file into a sluice container.
    #[command(after_help = "Examples:\n  \
sluice process backup.tar -o backup.tar.sluice -r sluice1...\n  \
sluice process db.dump -p                       # prompts for a passphrase, writes db.dump.sluice\n  \
tar c dir | sluice process - -o - --key-file k.bin > dir.tar.sluice\n  \
sluice process logs.json --compress zstd:9 --encrypt none -o logs.sluice")]
    Process(ProcessArgs),
    /// Decrypt and decompress a container back to the original.
    #[command(after_help = "Examples:\n  \
sluice restore backup.tar.sluice -i me.key      # writes backup.tar\n  \
sluice restore db.dump.sluice -o db.dump -p\n  \
sluice restore big.sluice --range 1048576..2097152 -o part.bin --key-file k.bin\n  \
cat x.sluice | sluice restore - -o - -i me.key | tar x")]
    Restore(RestoreArgs),
    /// Authenticate containers completely without writing anything.
    #[command(after_help = "Examples:\n  \
sluice verify *.sluice -i me.key\n  \
sluice verify --json backup.sluice --key-file k.bin")]
    Verify(VerifyArgs),
    /// Describe a container without a key.
    #[command(after_help = "Examples:\n  sluice info backup.sluice\n  sluice info --json backup.sluice")]
    Info(InfoArgs),
    /// Generate an X25519 identity (or a raw key file) and print its recipient.
    #[command(after_help = "Examples:\n  \
sluice keygen -o me.key                # prints the recipient sluice1...\n  \
sluice keygen -y me.key                # prints the recipient of an existing identity\n  \
sluice keygen --raw -o k.bin           # a 32-byte key file for --key-file")]
    Keygen(KeygenArgs),
    /// Measure settings on your own data: speed and size for a grid of codecs and chunk sizes.
    #[command(after_help = "Examples:\n  \
sluice bench backup.tar                        # first 256 MiB of backup.tar\n  \
sluice bench                                   # a generated log-like sample\n  \
sluice bench db.dump --codecs zstd:3,zstd:9 --chunk-sizes 8MiB,16MiB --json\n\n\
Throughput is the engine's on this machine's cores (sample in memory, no disk\n\
I/O); restore includes full authentication. Compare with the same settings\n\
from `sluice process`.")]
    Bench(BenchArgs),
    /// Run the HTTP service: uploads become jobs, results are stored and served.
    #[command(after_help = "Examples:\n  \
sluice serve                                   # ./sluice-data, 127.0.0.1:8470\n  \
sluice serve --data-dir /srv/sluice --listen 0.0.0.0:8470 --config sluice.toml\n\n\
Every setting also comes from SLUICE_<NAME> (e.g. SLUICE_MAX_RUNNING_JOBS) or\n\
the config file (the same names with underscores); flags > env > file > default.")]
    Serve(Box<Settings>),
    /// Run jobs from a shared queue without serving HTTP (same settings as serve).
    #[command(after_help = "Examples:\n  \
sluice worker --database sqlite:///srv/sluice/sluice.db --store file:///srv/sluice/store \\\n    \
--master-key /srv/sluice/master.key --workers 4\n  \
sluice serve --workers 0 …                     # an API-only node beside workers\n\n\
Only /metrics is served, on --metrics-listen if given.")]
    Worker(Box<Settings>),
    /// Manage the service's tenants and tokens (works with or without a running server).
    Admin(Box<AdminArgs>),
    /// Upload a file to a server as a resumable upload, in parallel parts.
    #[command(after_help = "Examples:\n  \
SLUICE_TOKEN=sluice_… sluice push backup.tar --server http://127.0.0.1:8470\n  \
sluice push db.dump --server https://sluice.example --key dumps/db.dump --pipeline offsite\n\n\
Interrupted? Run the same command again: it sends only the parts the server lacks.\n\
The token comes from SLUICE_TOKEN.")]
    Push(PushArgs),
    /// Download an object's content (or a byte range of it) from a server.
    #[command(after_help = "Examples:\n  \
SLUICE_TOKEN=sluice_… sluice pull dumps/db.dump --server http://127.0.0.1:8470 -o db.dump\n  \
sluice pull logs/big.log --server URL --range 1048576..2097152 -o part.log\n  \
sluice pull dumps/db.dump --server URL -o - | pg_restore …\n\n\
The token comes from SLUICE_TOKEN.")]
    Pull(PullArgs),
}

/// `sluice push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The file to upload.
    pub file: PathBuf,
    /// The server, e.g. http://127.0.0.1:8470
    #[arg(long, env = "SLUICE_SERVER", value_name = "URL")]
    pub server: String,
    /// The object's key [default: the file's name]
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The pipeline to run it through [default: default]
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Bytes per part, 1MiB to 64MiB [default: 8MiB]
    #[arg(long, value_name = "SIZE")]
    pub part_size: Option<String>,
    /// Parts sent at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
    /// Print the job id once the upload is complete instead of waiting for the job
    #[arg(long)]
    pub no_wait: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
}

/// `sluice pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The object's key.
    pub key: String,
    /// The server, e.g. http://127.0.0.1:8470
    #[arg(long, env = "SLUICE_SERVER", value_name = "URL")]
    pub server: String,
    /// Output file, `-` for stdout [default: the key's last segment]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only bytes START..END (END exclusive) or START..
    #[arg(long, value_name = "A..B")]
    pub range: Option<String>,
    /// Ranges fetched at once for a whole object written to a file (1: one stream)
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
    /// Overwrite the output file if it exists
    #[arg(short, long)]
    pub force: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
    /// Durability (default: not synced, like restore: the object stays on the server).
    #[command(flatten)]
    pub durability: Durability,
}

/// `sluice admin`: the service's settings (only the database and the
/// master key matter to it) and what to manage.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The service's settings, as `serve` takes them.
    #[command(flatten)]
    pub settings: Settings,
    /// What to manage.
    #[command(subcommand)]
    pub what: AdminCommand,
}

/// `sluice admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// S3 access keys (the S3 face's credentials).
    #[command(subcommand, name = "s3-key")]
    S3Key(S3KeyCommand),
}

/// `sluice admin tenant …`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (prints its server-managed recipient).
    Create {
        /// Tenant name.
        name: String,
    },
    /// List tenants with their limits.
    List,
    /// Set a tenant's limits (each: a value, or `default` for the server's
    /// default); a running server applies them within a second.
    Set {
        /// Tenant name.
        name: String,
        /// Requests per token, e.g. 20/s, 600/min.
        #[arg(long, value_name = "N/s")]
        rate: Option<String>,
        /// Requests a token may send at once above the rate.
        #[arg(long, value_name = "N")]
        burst: Option<String>,
        /// Most stored bytes, e.g. 1GiB.
        #[arg(long, value_name = "BYTES")]
        quota: Option<String>,
        /// Most queued jobs.
        #[arg(long, value_name = "N")]
        max_queued: Option<String>,
    },
}

/// `sluice admin token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it alone on standard output, once.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// read, write or admin.
        #[arg(long, default_value = "write")]
        scope: String,
    },
    /// List a tenant's token ids (never the tokens).
    List {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `token list`).
        token_id: String,
    },
}

/// `sluice admin s3-key …`.
#[derive(Debug, Subcommand)]
pub enum S3KeyCommand {
    /// Create an access key; prints `ACCESS_KEY_ID SECRET_ACCESS_KEY` on one line, once.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// read, write or admin.
        #[arg(long, default_value = "write")]
        scope: String,
    },
    /// List a tenant's access key ids (never the secrets).
    List {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke an access key by id; running servers refuse it within a second.
    Revoke {
        /// Access key id.
        access_key_id: String,
    },
}

/// `sluice bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// File to sample (its first --sample bytes) [default: a generated log-like sample]
    pub input: Option<PathBuf>,
    /// Bytes of the input to measure on (held in memory).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub sample: String,
    /// Codecs to try, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "lz4,zstd:1,zstd:3,zstd:9")]
    pub codecs: String,
    /// Chunk sizes to try, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "1MiB,4MiB,8MiB,16MiB")]
    pub chunk_sizes: String,
    /// Cipher for every run.
    #[arg(long = "encrypt", value_name = "CIPHER", default_value = "aes256gcm")]
    pub encrypt: String,
    /// Runs of each setting (the fastest counts).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: u32,
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Ways to give the keys that open a file.
#[derive(Debug, Args, Default)]
pub struct UnlockArgs {
    /// Identity file with a SLUICE-SECRET-KEY-1... line (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Raw 32-byte key file (repeatable).
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
    /// Prompt for the passphrase on the terminal.
    #[arg(short = 'p', long)]
    pub passphrase: bool,
    /// Read the passphrase from the first line of FILE (or set SLUICE_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Most Argon2 memory a passphrase slot may ask for, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_kdf_memory: u32,
    /// Most Argon2 passes a passphrase slot may ask for.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_kdf_passes: u32,
    /// Most Argon2 lanes a passphrase slot may ask for.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_kdf_lanes: u32,
    /// Accept a file that is not encrypted even though a key was given.
    /// Without it such a file is refused: anyone can make one, so it could
    /// have replaced your encrypted file (files are accepted without this
    /// flag only when no key, passphrase or SLUICE_PASSPHRASE is given).
    #[arg(long)]
    pub allow_unencrypted: bool,
}

/// `sluice process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// File to read, or - for standard input.
    pub input: PathBuf,
    /// Container to write, or - for standard output [default: INPUT.sluice]
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
    /// Compression: zstd, zstd:LEVEL (levels -7..=22), lz4 or none.
    #[arg(long = "compress", value_name = "CODEC", default_value = "zstd:3")]
    pub compress: String,
    /// Cipher: aes256gcm, chacha20poly1305 or none (checksums only, no secrecy).
    #[arg(long = "encrypt", value_name = "CIPHER", default_value = "aes256gcm")]
    pub encrypt: String,
    /// Chunk size, a power of two from 4KiB to 64MiB; the unit of parallel work and of random access.
    #[arg(long, value_name = "SIZE", default_value = "8MiB")]
    pub chunk_size: String,
    /// Encrypt to this recipient (sluice1...; repeatable).
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to every recipient listed in FILE (repeatable).
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// Encrypt with a passphrase typed twice on the terminal.
    #[arg(short = 'p', long)]
    pub passphrase: bool,
    /// Encrypt with the passphrase on the first line of FILE (or set SLUICE_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Encrypt to a raw 32-byte key file (repeatable).
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
    /// Always run the compressor, even on chunks that look incompressible.
    #[arg(long)]
    pub no_adaptive: bool,
    /// Overwrite OUTPUT if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Durability (default: synced, since the original is often deleted next).
    #[command(flatten)]
    pub durability: Durability,
}

/// `sluice restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Container to read, or - for standard input.
    pub input: PathBuf,
    /// File to write, or - for standard output [default: INPUT without .sluice]
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
    /// Restore only bytes START..END of the original (END exclusive; START.. to the end).
    #[arg(long, value_name = "START..END")]
    pub range: Option<String>,
    /// Keys.
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Overwrite OUTPUT if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Durability (default: not synced, like tar x and zstd -d: the container stays).
    #[command(flatten)]
    pub durability: Durability,
}

/// `--sync` / `--no-sync` (and `SLUICE_SYNC`): whether a file output is
/// flushed to stable storage before it is renamed into place.
#[derive(Debug, Args)]
pub struct Durability {
    /// Flush the output file to disk before renaming it into place, then its directory (env SLUICE_SYNC=1).
    #[arg(long, overrides_with = "no_sync")]
    pub sync: bool,
    /// Leave the output in the page cache for the kernel to write later (env SLUICE_SYNC=0).
    #[arg(long, overrides_with = "sync")]
    pub no_sync: bool,
}

impl Durability {
    /// Whether to sync: the last of `--sync`/`--no-sync`, else `SLUICE_SYNC`,
    /// else `default`.
    pub fn resolve(&self, default: bool) -> anyhow::Result<bool> {
        if self.sync {
            return Ok(true);
        }
        if self.no_sync {
            return Ok(false);
        }
        match std::env::var("SLUICE_SYNC") {
            Ok(v) => parse_switch(&v).ok_or_else(|| {
                crate::exit::usage(format!("SLUICE_SYNC={v:?}: expected 1/0, yes/no, true/false or on/off"))
            }),
            Err(_) => Ok(default),
        }
    }
}

/// `1/0`, `yes/no`, `true/false`, `on/off` (any case).
fn parse_switch(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// `sluice verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Containers to verify.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Keys.
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Files verified at the same time [default: 4]
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

/// `sluice info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Container to describe, or - for standard input.
    pub input: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sluice keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the new key to FILE (mode 0600; never overwritten) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the recipients of an existing identity file instead.
    #[arg(short = 'y', value_name = "IDENTITY", conflicts_with_all = ["output", "raw"])]
    pub show_recipient: Option<PathBuf>,
    /// Generate a raw 32-byte key file (for --key-file) instead of an identity.
    #[arg(long, requires = "output")]
    pub raw: bool,
}

/// The command line, with every service setting's default in its help.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for name in ["serve", "worker", "admin"] {
        command = command.mut_subcommand(name, sluice_service::settings::defaults::with_defaults_in_help);
    }
    command
}

/// Where each service setting of the command line came from (a flag or
/// its environment variable), for messages that name it as it was given.
pub fn setting_origins(matches: &clap::ArgMatches, command: &clap::Command) -> sluice_service::settings::Origins {
    match matches.subcommand() {
        Some((name, sub)) => match command.find_subcommand(name) {
            Some(sub_command) => sluice_service::settings::Origins::from_matches(sub, sub_command),
            None => sluice_service::settings::Origins::default(),
        },
        None => sluice_service::settings::Origins::default(),
    }
}
