//! The command line: clap parsing, then validation into a [`Config`] the library runs from.
//!
//! Options mean what the same options of `sos report` mean wherever sos has them (see
//! `docs/user-guide.md`); `--vmcore`, `--vmlinux`, `--debuginfo-dir`, `--force-vmlinux`,
//! `--debuginfod` and `--sha256-dump` are this tool's own.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::report::archive::{Compression, Encryption};
use crate::report::plugin::Plugin;
use crate::report::select::{self, OptionArg, SelectError, Selection};

/// What `--generate` prints: the man page or a shell's completion script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenerateArg {
    /// The man page (roff), for `man 1 vmcore-report`
    Man,
    /// bash completions
    CompleteBash,
    /// zsh completions
    CompleteZsh,
    /// fish completions
    CompleteFish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Auto,
    Xz,
    Gzip,
    None,
}

/// `--threads` by default (issue 14: measured on the 2-core lab machine, docs/performance.md).
pub const DEFAULT_THREADS: u32 = 1;

/// Turn an offline Linux kernel crash dump (vmcore) and its vmlinux into a sos-style triage
/// archive.
#[derive(Debug, Parser)]
#[command(name = "vmcore-report", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 complete, 1 internal error, 2 bad usage, 3 unreadable or \
unsupported dump, 4 debuginfo problem (no or mismatched vmlinux), 5 archive written but some \
plugins failed, timed out, came out empty or partial, 6 the archive could not be written, 7 \
archive written, only pages the dump's filtering left out are missing, 8 archive written from a \
damaged (truncated or incomplete) dump, 130/143 interrupted by SIGINT/SIGTERM (nothing left \
behind)."
)]
pub struct Cli {
    /// The dump to analyse; repeat for the pieces of a split dump (makedumpfile --split)
    #[arg(long, value_name = "PATH", required_unless_present_any = ["list_plugins", "generate"], action = ArgAction::Append)]
    pub vmcore: Vec<PathBuf>,

    /// The kernel image with DWARF debug info (default: searched by the dump's build-id and release)
    #[arg(long, value_name = "PATH")]
    pub vmlinux: Option<PathBuf>,

    /// A directory to search for the vmlinux (repeatable; searched before the standard paths)
    #[arg(long, value_name = "PATH", action = ArgAction::Append)]
    pub debuginfo_dir: Vec<PathBuf>,

    /// Use the given vmlinux even if it does not match the dump (build-id or release)
    #[arg(long)]
    pub force_vmlinux: bool,

    /// Do not look for a vmlinux: symbols and types from the dump alone (kallsyms, BTF)
    #[arg(long, conflicts_with_all = ["vmlinux", "force_vmlinux"])]
    pub dump_only: bool,

    /// Run only these plugins (comma-separated, repeatable); they are forced on
    #[arg(short = 'o', long = "only-plugins", value_name = "LIST", value_delimiter = ',', action = ArgAction::Append)]
    pub only_plugins: Vec<String>,

    /// Legacy alias of --only-plugins
    #[arg(long = "plugins", value_name = "LIST", value_delimiter = ',', action = ArgAction::Append, hide_short_help = true)]
    pub plugins: Vec<String>,

    /// Also run these optional, inactive or experimental plugins (comma-separated, repeatable)
    #[arg(short = 'e', long = "enable-plugins", value_name = "LIST", value_delimiter = ',', action = ArgAction::Append)]
    pub enable_plugins: Vec<String>,

    /// Skip these plugins (comma-separated, repeatable)
    #[arg(short = 'n', long = "skip-plugins", value_name = "LIST", value_delimiter = ',', action = ArgAction::Append)]
    pub skip_plugins: Vec<String>,

    /// Enable experimental plugins
    #[arg(long)]
    pub experimental: bool,

    /// List the plugins, whether each would run (on this dump, with --vmcore), and their options
    #[arg(short = 'l', long = "list-plugins")]
    pub list_plugins: bool,

    /// Set a plugin option: PLUGIN.OPTION[=VALUE] (no value means true; repeatable)
    #[arg(short = 'k', long = "plugin-option", value_name = "PLUG.OPT[=VAL]", action = ArgAction::Append)]
    pub plugin_option: Vec<String>,

    /// A label added to the archive name
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,

    /// Leave the archive's directory tree instead of packing it
    #[arg(long)]
    pub build: bool,

    /// Where to build and write the archive (default: $TMPDIR, else /var/tmp)
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,

    /// Compression of the archive; auto means xz
    #[arg(
        short = 'z',
        long = "compression-type",
        value_enum,
        default_value = "auto"
    )]
    pub compression_type: CompressionArg,

    /// Encrypt the archive for this gpg key (id or fingerprint)
    #[arg(long, value_name = "KEY", conflicts_with_all = ["encrypt_pass", "build"])]
    pub encrypt_key: Option<String>,

    /// Encrypt the archive with this passphrase (symmetric gpg)
    #[arg(long, value_name = "PASS", conflicts_with = "build")]
    pub encrypt_pass: Option<String>,

    /// Print only errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the man page or a shell's completion script to stdout and exit
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    pub generate: Option<GenerateArg>,

    /// More detail on the console and in sos.log (repeatable)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Seconds a plugin may run (0: no limit); -k PLUGIN.timeout=N overrides it per plugin
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub plugin_timeout: u64,

    /// Never prompt; take SOSENCRYPTKEY/SOSENCRYPTPASS from the environment
    #[arg(long)]
    pub batch: bool,

    /// When the run ends, print the summary (sos_reports/summary.json) on stdout, for pipelines
    #[arg(long)]
    pub json: bool,

    /// Record the SHA-256 of the dump file(s) in the manifest (reads the whole dump)
    #[arg(long)]
    pub sha256_dump: bool,

    // debuginfod (src/debuginfo/debuginfod.rs)
    /// A debuginfod server to fetch the vmlinux from by the dump's build-id when no local file
    /// matches (repeatable; asked before those in DEBUGINFOD_URLS)
    #[arg(long, value_name = "URL", action = ArgAction::Append)]
    pub debuginfod: Vec<String>,

    // ---- performance (issue 14) ----
    /// Keep the types a report looked up in DIR, per vmlinux build-id, and answer the next report
    /// on the same kernel from there (default: $XDG_CACHE_HOME/vmcore-report/index, else
    /// ~/.cache/vmcore-report/index)
    #[arg(long, value_name = "DIR", conflicts_with = "no_index_cache")]
    pub index_cache: Option<PathBuf>,

    /// Neither read nor write the persisted type index
    #[arg(long)]
    pub no_index_cache: bool,

    /// Run up to N plugins at once (as sos report's --threads); their files and manifest
    /// records keep the plan's order
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub vmcores: Vec<PathBuf>,
    pub vmlinux: Option<PathBuf>,
    pub debuginfo_dirs: Vec<PathBuf>,
    pub force_vmlinux: bool,
    pub dump_only: bool,
    pub selection: Selection,
    pub plugin_options: Vec<OptionArg>,
    /// `-k` as given, for the manifest's `tunables`.
    pub tunables: Vec<String>,
    pub list_plugins: bool,
    pub label: Option<String>,
    pub build: bool,
    pub tmp_dir: PathBuf,
    pub compression: Compression,
    pub encryption: Option<Encryption>,
    pub quiet: bool,
    pub verbosity: u8,
    /// `None`: no timeout.
    pub plugin_timeout: Option<Duration>,
    pub batch: bool,
    /// Print the summary JSON on stdout at the end.
    pub json: bool,
    pub sha256_dump: bool,
    /// debuginfod servers and client settings (`--debuginfod`, `DEBUGINFOD_*`); `None`: none.
    pub debuginfod: Option<crate::debuginfo::debuginfod::DebuginfodOptions>,
    /// The command line for the manifest, with any passphrase replaced by `********`.
    pub cmdline: String,

    // ---- performance (issue 14) ----
    /// Where the persisted type index lives; `None`: not used (`--no-index-cache`, or no cache
    /// directory known).
    pub index_cache: Option<PathBuf>,
    /// `--threads`: plugins run at once.
    pub threads: usize,
}

/// Errors found while validating the command line (all are usage errors, exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("--tmp-dir {0}: not an existing directory")]
    TmpDir(PathBuf),
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Select(e) => e.code(),
            ConfigError::TmpDir(_) => "bad-tmp-dir",
            ConfigError::Conflict(_) => "usage",
        }
    }
}

fn split_names(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The command line as recorded, hiding a passphrase given as `--encrypt-pass P` or
/// `--encrypt-pass=P`.
pub fn redacted_cmdline(args: &[OsString]) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    for a in args {
        let s = a.to_string_lossy();
        if hide_next {
            out.push("********".to_string());
            hide_next = false;
        } else if s == "--encrypt-pass" {
            out.push(s.into_owned());
            hide_next = true;
        } else if s.starts_with("--encrypt-pass=") {
            out.push("--encrypt-pass=********".to_string());
        } else {
            out.push(s.into_owned());
        }
    }
    out.join(" ")
}

impl Config {
    /// What [`crate::assemble::open_kernel`] needs of the configuration.
    pub fn open_options(&self) -> crate::assemble::OpenOptions {
        crate::assemble::OpenOptions {
            vmcores: self.vmcores.clone(),
            vmlinux: self.vmlinux.clone(),
            debuginfo_dirs: self.debuginfo_dirs.clone(),
            force_vmlinux: self.force_vmlinux,
            debuginfod: self.debuginfod.clone(),
            index_cache: self.index_cache.clone(),
            dump_only: self.dump_only,
        }
    }

    /// Validates the parsed command line against the plugins known to this build. Returns the
    /// configuration and warnings to show (unknown names given to `-n`).
    pub fn from_cli(
        cli: Cli,
        args: &[OsString],
        plugins: &[&dyn Plugin],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut only = split_names(&cli.only_plugins);
        only.extend(split_names(&cli.plugins));
        let selection = Selection {
            only,
            enable: split_names(&cli.enable_plugins),
            skip: split_names(&cli.skip_plugins),
            experimental: cli.experimental,
        };
        let known: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
        let warnings = select::check_names(&selection, &known)?;

        let plugin_options = cli
            .plugin_option
            .iter()
            .map(|a| select::parse_option_arg(a))
            .collect::<Result<Vec<_>, _>>()?;
        let plugin_timeout =
            (cli.plugin_timeout > 0).then(|| Duration::from_secs(cli.plugin_timeout));
        // an option of a known plugin is checked now, before the dump is read, so a typo costs
        // nothing; whether the plugin will run is decided later
        for p in plugins {
            if plugin_options.iter().any(|a| a.plugin == p.name()) {
                select::resolve_options(*p, &plugin_options, plugin_timeout)?;
            }
        }

        let tmp_dir = match cli.tmp_dir {
            Some(d) => d,
            None => env("TMPDIR")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/tmp")),
        };
        if !cli.list_plugins && !tmp_dir.is_dir() {
            return Err(ConfigError::TmpDir(tmp_dir));
        }

        let mut encryption = match (cli.encrypt_key, cli.encrypt_pass) {
            (Some(k), None) => Some(Encryption::Key(k)),
            (None, Some(p)) => Some(Encryption::Pass(p)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict(
                    "--encrypt-key and --encrypt-pass are mutually exclusive".into(),
                ));
            }
        };
        if encryption.is_none() && cli.batch {
            // sos reads these only in batch mode, where it cannot prompt
            let key = env("SOSENCRYPTKEY").filter(|s| !s.is_empty());
            let pass = env("SOSENCRYPTPASS").filter(|s| !s.is_empty());
            encryption = match (key, pass) {
                (Some(k), _) => Some(Encryption::Key(k)),
                (None, Some(p)) => Some(Encryption::Pass(p)),
                (None, None) => None,
            };
            if encryption.is_some() && cli.build {
                return Err(ConfigError::Conflict(
                    "SOSENCRYPTKEY/SOSENCRYPTPASS cannot be used with --build".into(),
                ));
            }
        }

        let debuginfod =
            crate::debuginfo::debuginfod::DebuginfodOptions::from_env(&cli.debuginfod, env);

        let compression = match cli.compression_type {
            CompressionArg::Auto | CompressionArg::Xz => Compression::Xz,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        };

        Ok((
            Config {
                vmcores: cli.vmcore,
                vmlinux: cli.vmlinux,
                debuginfo_dirs: cli.debuginfo_dir,
                force_vmlinux: cli.force_vmlinux,
                dump_only: cli.dump_only,
                selection,
                plugin_options,
                tunables: cli.plugin_option,
                list_plugins: cli.list_plugins,
                label: cli.label,
                build: cli.build,
                tmp_dir,
                compression,
                encryption,
                quiet: cli.quiet,
                verbosity: cli.verbose,
                plugin_timeout,
                batch: cli.batch,
                json: cli.json,
                sha256_dump: cli.sha256_dump,
                debuginfod,
                cmdline: redacted_cmdline(args),
                index_cache: if cli.no_index_cache {
                    None
                } else {
                    cli.index_cache
                        .or_else(crate::debuginfo::index_cache::default_dir)
                },
                threads: cli.threads as usize,
            },
            warnings,
        ))
    }
}

/// Writes what `--generate` asks for: the man page (clap_mangen) or a completion script
/// (clap_complete), from the same command definition `--help` prints.
pub fn generate(kind: GenerateArg, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match kind {
        GenerateArg::Man => return clap_mangen::Man::new(cmd).render(out),
        GenerateArg::CompleteBash => Shell::Bash,
        GenerateArg::CompleteZsh => Shell::Zsh,
        GenerateArg::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "vmcore-report", out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_redacted() {
        let args: Vec<OsString> = [
            "vmcore-report",
            "--vmcore",
            "x",
            "--encrypt-pass",
            "s3cret",
            "--encrypt-pass=other",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let c = redacted_cmdline(&args);
        assert!(!c.contains("s3cret") && !c.contains("other"), "{c}");
        assert_eq!(
            c,
            "vmcore-report --vmcore x --encrypt-pass ******** --encrypt-pass=********"
        );
    }
}
