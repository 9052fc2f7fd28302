//! Where each setting's value came from, so that a message names it the
//! way the user gave it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// An environment variable (its name).
    Env(String),
    /// A settings file.
    File(PathBuf),
    /// The default.
    Default,
}

/// The origin of every setting that has a value other than its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    by_key: HashMap<String, Origin>,
}

impl Origins {
    /// Origins read off a parsed command line: each argument given as a
    /// flag or through its environment variable. `command` is the
    /// (sub)command the matches belong to, for the variables' names.
    pub fn from_matches(matches: &clap::ArgMatches, command: &clap::Command) -> Origins {
        let mut by_key = HashMap::new();
        for id in matches.ids() {
            let key = id.as_str().to_string();
            let origin = match matches.value_source(id.as_str()) {
                Some(ValueSource::CommandLine) => Origin::Flag,
                Some(ValueSource::EnvVariable) => {
                    let var = command
                        .get_arguments()
                        .find(|a| a.get_id() == id)
                        .and_then(|a| a.get_env())
                        .map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_else(|| format!("SLUICE_{}", key.to_ascii_uppercase()));
                    Origin::Env(var)
                }
                _ => continue,
            };
            by_key.insert(key, origin);
        }
        Origins { by_key }
    }

    /// Records that `key` came from `origin`.
    pub fn set(&mut self, key: &str, origin: Origin) {
        self.by_key.insert(key.to_string(), origin);
    }

    /// Records that every key in `keys` not yet known came from `file`.
    pub fn fill_from_file(&mut self, keys: impl IntoIterator<Item = String>, file: &Path) {
        for key in keys {
            self.by_key
                .entry(key)
                .or_insert_with(|| Origin::File(file.to_path_buf()));
        }
    }

    /// Where `key` came from.
    pub fn of(&self, key: &str) -> Origin {
        self.by_key.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// `key` named as the user gave it: `--max-running-jobs`,
    /// `SLUICE_MAX_RUNNING_JOBS`, `max_running_jobs in sluice.toml`, or
    /// `the default max_running_jobs`.
    pub fn name(&self, key: &str) -> String {
        match self.of(key) {
            Origin::Flag => format!("--{}", key.replace('_', "-")),
            Origin::Env(var) => var,
            Origin::File(path) => format!("{key} in {}", path.display()),
            Origin::Default => format!("the default {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command, FromArgMatches};

    #[test]
    fn settings_are_named_as_they_were_given() {
        let command = crate::Settings::augment_args(Command::new("serve"));
        let matches = command
            .clone()
            .try_get_matches_from(["serve", "--workers", "0", "--listen", "127.0.0.1:9"])
            .unwrap();
        let settings = crate::Settings::from_arg_matches(&matches).unwrap();
        assert_eq!(settings.max_running_jobs, Some(0), "--workers is --max-running-jobs");
        let mut origins = Origins::from_matches(&matches, &command);
        assert_eq!(origins.name("max_running_jobs"), "--max-running-jobs");
        origins.set("store", Origin::Env("SLUICE_STORE".into()));
        assert_eq!(origins.name("store"), "SLUICE_STORE");
        origins.fill_from_file(
            ["log_format".to_string(), "store".to_string()],
            Path::new("/etc/sluice.toml"),
        );
        assert_eq!(origins.name("log_format"), "log_format in /etc/sluice.toml");
        assert_eq!(origins.name("store"), "SLUICE_STORE", "flags and environment win");
        assert_eq!(origins.name("db_min_connections"), "the default db_min_connections");
    }
}
