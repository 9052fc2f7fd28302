//! Every setting's default: the fixed ones in `defaults.toml`, the few
//! computed from the machine or from other settings here. The help text
//! of the commands shows both ([`with_defaults_in_help`]).

use std::path::PathBuf;

use super::Settings;

/// The fixed defaults, as a `sluice.toml`.
pub const TABLE: &str = include_str!("defaults.toml");

/// Defaults computed from the machine or from other settings, as the
/// help text shows them.
pub const COMPUTED: &[(&str, &str)] = &[
    ("master_key", "DIR/master.key"),
    ("database", "sqlite://DIR/sluice.db"),
    ("store", "file://DIR/store"),
    ("runtime_threads", "cores"),
    ("threads", "cores"),
    ("max_running_jobs", "2 x cores, 2 to 16"),
    ("max_memory", "2 x 16 x (threads + 2)"),
];

/// The fixed defaults.
pub fn fixed() -> Settings {
    // The table is part of the program; a test parses it.
    Settings::from_toml(TABLE).unwrap_or_default()
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `given` (already layered over the fixed defaults) completed with the
/// computed defaults.
pub(crate) fn computed(given: &Settings) -> Settings {
    let cores = cores();
    let threads = given.threads.unwrap_or(cores);
    let data_dir = given.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    Settings {
        master_key: Some(data_dir.join("master.key")),
        runtime_threads: Some(cores),
        threads: Some(threads),
        // Small jobs wait on fsyncs more than on the CPU: twice the cores
        // keeps the disk busy; the shared engine budget bounds their memory.
        max_running_jobs: Some((2 * cores).clamp(2, 16)),
        // Two jobs' worth of the engine's default per-operation budget.
        max_memory: Some(2 * sluice_engine::default_memory_budget(threads) / (1 << 20)),
        ..Settings::default()
    }
}

/// How `key`'s default is shown, if it has one.
pub fn shown(key: &str) -> Option<String> {
    if let Some((_, shown)) = COMPUTED.iter().find(|(k, _)| *k == key) {
        return Some((*shown).to_string());
    }
    let table: toml::Table = toml::from_str(TABLE).ok()?;
    Some(match table.get(key)? {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Adds `[default: …]` to the help of every argument of `command` that is
/// a setting with a default.
pub fn with_defaults_in_help(mut command: clap::Command) -> clap::Command {
    let ids: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().as_str().to_string())
        .collect();
    for id in ids {
        if let Some(default) = shown(&id) {
            command = command.mut_arg(id.as_str(), |a| {
                let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                a.help(format!("{help} [default: {default}]"))
            });
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_every_setting_has_a_default_or_is_optional() {
        let fixed = Settings::from_toml(TABLE).expect("defaults.toml");
        let all = fixed.or(computed(&Settings::default()));
        let set = all.keys_set();
        // Settings that are off unless given.
        let optional = [
            "database",
            "store",
            "metrics_listen",
            "metrics_token_file",
            "s3_domain",
            "jwt_jwks_url",
            "jwt_issuer",
            "jwt_audience",
        ];
        let schema = serde_json::to_value(Settings::default()).unwrap();
        for key in schema.as_object().unwrap().keys() {
            assert!(
                set.contains(key) || optional.contains(&key.as_str()),
                "{key} has no default"
            );
            assert!(!(set.contains(key) && optional.contains(&key.as_str())), "{key}");
        }
        assert_eq!(shown("max_blocking_threads").as_deref(), Some("64"));
        assert_eq!(shown("listen").as_deref(), Some("127.0.0.1:8470"));
        assert_eq!(shown("threads").as_deref(), Some("cores"));
        assert_eq!(shown("jwt_issuer"), None);
    }

    #[test]
    fn help_shows_the_defaults() {
        use clap::Args;
        let command = with_defaults_in_help(Settings::augment_args(clap::Command::new("serve")));
        let help = command
            .get_arguments()
            .find(|a| a.get_id() == "max_blocking_threads")
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .unwrap();
        assert!(help.ends_with("[default: 64]"), "{help}");
    }
}
