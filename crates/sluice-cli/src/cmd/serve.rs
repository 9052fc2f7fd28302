//! `sluice serve` and `sluice worker`: configuration in, service running
//! (all of it in `sluice-server`).

use anyhow::Result;
use sluice_server::{Config, Settings};

use crate::cli::ServeArgs;
use crate::exit::{usage, Code};

/// Runs `sluice serve`.
pub fn run(args: ServeArgs) -> Result<Code> {
    let config = config(args)?;
    sluice_server::init_logging(config.log_format);
    sluice_server::serve(config)?;
    Ok(Code::Ok)
}

/// Runs `sluice worker`.
pub fn run_worker(args: ServeArgs) -> Result<Code> {
    let config = config(args)?;
    sluice_server::init_logging(config.log_format);
    sluice_server::work(config).map_err(|e| usage(format!("{e:#}")))?;
    Ok(Code::Ok)
}

fn config(args: ServeArgs) -> Result<Config> {
    let flags = Settings {
        data_dir: args.data_dir,
        database: args.database,
        store: args.store,
        workers: args.workers,
        listen: args.listen,
        master_key: args.master_key,
        runtime_threads: args.runtime_threads,
        max_blocking_threads: args.max_blocking_threads,
        thread_stack_size: args.thread_stack_size,
        cpu_threads: args.cpu_threads,
        max_running_jobs: args.max_running_jobs,
        busy_requests: args.busy_requests,
        engine_memory_mib: args.engine_memory_mib,
        index_cache_mib: args.index_cache_mib,
        job_max_attempts: args.job_max_attempts,
        job_lease_secs: args.job_lease_secs,
        max_upload_bytes: args.max_upload_bytes,
        shutdown_grace_secs: args.shutdown_grace_secs,
        reaper_interval_secs: args.reaper_interval_secs,
        reaper_min_age_secs: args.reaper_min_age_secs,
        reaper_multipart_age_secs: args.reaper_multipart_age_secs,
        upload_ttl_secs: args.upload_ttl_secs,
        part_buffer_mib: args.part_buffer_mib,
        db_max_connections: args.db_max_connections,
        db_min_connections: args.db_min_connections,
        db_acquire_timeout_secs: args.db_acquire_timeout_secs,
        db_idle_timeout_secs: args.db_idle_timeout_secs,
        db_max_lifetime_secs: args.db_max_lifetime_secs,
        log_format: args.log_format,
        default_rate: args.default_rate,
        default_burst: args.default_burst,
        default_quota: args.default_quota,
        default_max_queued: args.default_max_queued,
        max_queue_depth: args.max_queue_depth,
        max_in_flight: args.max_in_flight,
        max_connections: args.max_connections,
        header_timeout_secs: args.header_timeout_secs,
        idle_body_timeout_secs: args.idle_body_timeout_secs,
        request_timeout_secs: args.request_timeout_secs,
        max_header_bytes: args.max_header_bytes,
        max_json_bytes: args.max_json_bytes,
        max_uri_bytes: args.max_uri_bytes,
        metrics_listen: args.metrics_listen,
        metrics_token_file: args.metrics_token_file,
        store_timeout_secs: args.store_timeout_secs,
        store_retries: args.store_retries,
        breaker_failures: args.breaker_failures,
        breaker_open_secs: args.breaker_open_secs,
        jwt_jwks_url: args.jwt_jwks_url,
        jwt_issuer: args.jwt_issuer,
        jwt_audience: args.jwt_audience,
        jwt_tenant_claim: args.jwt_tenant_claim,
        jwt_scope_claim: args.jwt_scope_claim,
        jwt_leeway_secs: args.jwt_leeway_secs,
        jwks_refresh_secs: args.jwks_refresh_secs,
        jwks_timeout_secs: args.jwks_timeout_secs,
    };
    Config::resolve(flags, args.config.as_deref()).map_err(|e| usage(format!("{e:#}")))
}
