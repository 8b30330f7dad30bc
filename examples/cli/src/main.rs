//! `faas`: the command-line client of the faas platform. It speaks OpenWhisk's REST API and
//! behaves like OpenWhisk's own CLI, `wsk`: the same commands, flags, messages, list tables,
//! configuration file (`~/.wskprops`) and exit codes, so OpenWhisk tutorials work with `wsk`
//! replaced by `faas`.
//!
//! ```text
//! faas property set --apihost http://127.0.0.1:3233 --auth "$AUTH"
//! faas action create myDemo demo.js
//! faas action invoke myDemo --result
//! faas activation list
//! faas activation logs --last
//! ```
//!
//! Install with `cargo install --path examples/cli`. `faas completion bash|zsh|fish` prints a
//! completion script. `--json` prints only the JSON the platform answered, for scripts.
//!
//! Where this client differs from `wsk`, and why, is written in the repository's
//! `DESIGN-NOTES.md` (section "The faas CLI").
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | `cli` | the command line (clap derive): every command, flag and short option of `wsk` |
//! | `config` | the properties file, `WSK_CONFIG_FILE`, `WHISK_*`, flag precedence, the API base URL |
//! | `client` | requests (reqwest over rustls) and `wsk`'s reading of answers, "not served" detection |
//! | `names`, `params` | entity names and `KEY VALUE` parameters as `wsk` reads them |
//! | `output`, `progress` | `ok:` lines, JSON in `wsk`'s field order, tables, the spinner |
//! | `error` | the one-line error and its exit code |
//! | `commands::*` | one module per command family |

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod names;
mod output;
mod params;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, PropertyCmd};
use crate::client::Client;
use crate::config::{FlagUse, Settings};
use crate::error::{CliError, Result, exit};
use crate::names::QualifiedName;
use crate::output::Out;

/// What every command needs: the settings and the output.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The resolved settings.
    pub(crate) settings: Settings,
    /// Where to print.
    pub(crate) out: Out,
    /// Whether spinners may be drawn.
    pub(crate) progress: bool,
}

impl Ctx {
    /// A client for the configured API host.
    pub(crate) fn client(&self) -> Result<Client> {
        Client::new(&self.settings)
    }

    /// The namespace names resolve against.
    pub(crate) fn ns(&self) -> &str {
        &self.settings.namespace
    }

    /// Parses an entity name from the command line.
    pub(crate) fn qname(&self, input: &str) -> Result<QualifiedName> {
        QualifiedName::parse(input, self.ns())
    }
}

/// Reports a command-line parse error. `-p KEY` without a value gets `wsk`'s words; the rest
/// are clap's, with the usage (exit 2).
fn parse_error(e: &clap::Error) -> u8 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::WrongNumberOfValues {
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => s.clone(),
            _ => String::new(),
        };
        let flag = arg.split_whitespace().next().unwrap_or("").to_string();
        let noun = match flag.as_str() {
            "--param" | "-p" => Some("parameter"),
            "--annotation" | "-a" => Some("annotation"),
            "--feed-param" | "-F" => Some("feed parameter"),
            "--trigger-param" | "-T" => Some("trigger parameter"),
            _ => None,
        };
        if let Some(noun) = noun {
            eprintln!(
                "error: Failed to parse arguments: The {noun} arguments are invalid: Arguments for '{flag}' must be a key/value pair"
            );
            return exit::GENERAL;
        }
    }
    let _ = e.print();
    if e.use_stderr() { exit::USAGE } else { 0 }
}

fn report(err: &CliError, json: bool) {
    if !err.display {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    if json {
        let _ = writeln!(stderr, "{}", err.to_json());
    } else {
        let _ = writeln!(stderr, "error: {}", err.message);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let flags = match &cli.command {
        Command::Property(PropertyCmd::Get(_) | PropertyCmd::Unset(_)) => FlagUse::PropertyNames,
        _ => FlagUse::Connection,
    };
    let settings = Settings::load(&cli.global, flags)?;
    let json = settings.json;
    let ctx = Ctx {
        settings,
        out: Out::new(json),
        progress: progress::enabled(json),
    };
    commands::run(&ctx, &cli.global, cli.command).await
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(parse_error(&e)),
    };
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::GENERAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, json);
            ExitCode::from(err.exit_code)
        }
    }
}
