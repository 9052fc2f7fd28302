//! `sluice serve` and `sluice worker`: settings in, service running (all of
//! it in `sluice-service`, the HTTP face in `sluice-server`).

use anyhow::Result;
use sluice_service::settings::Origins;
use sluice_service::{Config, Settings};

use crate::cli::Global;
use crate::exit::{usage, Code};

/// Runs `sluice serve`.
pub fn run(settings: Settings, global: &Global, origins: Origins) -> Result<Code> {
    let config = config(settings, global, origins)?;
    sluice_server::init_logging(config.log_format);
    sluice_server::serve(config)?;
    Ok(Code::Ok)
}

/// Runs `sluice worker`.
pub fn run_worker(settings: Settings, global: &Global, origins: Origins) -> Result<Code> {
    let config = config(settings, global, origins)?;
    sluice_server::init_logging(config.log_format);
    sluice_server::work(config).map_err(|e| match e {
        sluice_server::ServeError::Settings(e) => usage(e.to_string()),
        e => e.into(),
    })?;
    Ok(Code::Ok)
}

/// The effective configuration: the command line's settings (with the
/// global engine knobs, `-j/--threads` and `--max-memory`) over the config
/// file over the defaults.
pub fn config(settings: Settings, global: &Global, origins: Origins) -> Result<Config> {
    let given = Settings {
        threads: global.threads,
        max_memory: global.max_memory,
        ..settings
    };
    Config::resolve(given, origins).map_err(|e| usage(e.to_string()))
}
