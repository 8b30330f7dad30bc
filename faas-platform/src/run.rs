//! [`run`]: the `faas-platform` binary in one call, over the adapters it is given.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::adapters::Adapters;
use crate::config::{Cli, Command, NodeConfig, describe_bus, describe_store};
use crate::standalone::{GuestKey, start, start_controller, start_invoker};

/// The `faas-platform` binary over `adapters`: parses the command line (flags, `FAAS_*`
/// environment variables, `--config` file), sets up logging to stderr (`RUST_LOG`), runs the
/// command until SIGTERM or Ctrl-C and returns its exit code (`2`: bad flags or settings).
///
/// Every adapter URL (`--store`, `--bus`, `--executor`) is made by `adapters`: a scheme
/// registered there is accepted on the command line like a built-in one.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     let adapters = faas_platform::Adapters::default(); // + your own schemes
///     faas_platform::run(adapters).await
/// }
/// ```
pub async fn run(adapters: Adapters) -> ExitCode {
    run_with(Cli::parse(), adapters).await
}

/// As [`run`], with a command line already parsed (for example from
/// `Cli::try_parse_from`). Logging is set up here unless a global subscriber already is.
pub async fn run_with(cli: Cli, adapters: Adapters) -> ExitCode {
    // The operator CLI prints results: only warnings go to its stderr unless RUST_LOG says more.
    let default_level = if matches!(cli.command, Command::Admin(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .ok();
    let (mode, args) = match cli.command {
        Command::Admin(a) => return admin(a, &adapters).await,
        Command::Standalone(ref a) => ("standalone", a),
        Command::Controller(ref a) => ("controller", a),
        Command::Invoker(ref a) => ("invoker", a),
    };
    let resolved = if mode != "standalone" {
        NodeConfig::resolve_distributed(args)
    } else {
        NodeConfig::resolve(args)
    };
    let config = match resolved {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faas-platform: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = known_schemes(&config, &adapters) {
        eprintln!("faas-platform: {e}");
        return ExitCode::from(2);
    }
    println!("store: {}", describe_store(&config.store));
    if mode == "standalone" {
        println!("bus: {}", describe_bus(&config.bus));
    }
    match cli.command {
        Command::Invoker(_) => {
            // Listen for SIGTERM before starting: one that arrives while containers are being
            // created then shuts down cleanly (removing them) once the start is complete.
            let mut stop = tokio::spawn(shutdown_signal());
            let node = match start_invoker(&config, &adapters).await {
                Ok(i) => i,
                Err(e) => return cannot_start(&e),
            };
            println!("faas-platform invoker {} running", config.id);
            if let Some(m) = &node.metrics_server {
                println!("metrics at http://{}/metrics", m.addr);
            }
            let _ = (&mut stop).await;
            tracing::info!("shutting down");
            node.invoker.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Admin(_) => ExitCode::from(2),
        Command::Standalone(_) | Command::Controller(_) => {
            let mut stop = tokio::spawn(shutdown_signal());
            let started = if mode == "standalone" {
                start(&config, &adapters).await
            } else {
                start_controller(&config, &adapters).await
            };
            let mut running = match started {
                Ok(r) => r,
                Err(e) => return cannot_start(&e),
            };
            match running.guest_key {
                GuestKey::Given => {}
                GuestKey::Kept => {
                    println!(
                        "guest auth (kept from the store): {}",
                        running.guest.compact()
                    )
                }
                GuestKey::Generated => {
                    println!("guest auth (generated): {}", running.guest.compact())
                }
            }
            println!("faas-platform {mode} listening on http://{}", running.addr);
            if let Some(addr) = running.metrics_addr() {
                println!("metrics at http://{addr}/metrics");
            }
            tokio::select! {
                r = running.wait() => {
                    if let Err(e) = r {
                        eprintln!("faas-platform: server failed: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                _ = &mut stop => {
                    tracing::info!("shutting down");
                }
            }
            let report = running.shutdown().await;
            if report.activations + report.compositions > 0 {
                println!(
                    "shutdown: {} activations and {} sequences or compositions did not complete; their records say so",
                    report.activations, report.compositions
                );
            }
            ExitCode::SUCCESS
        }
    }
}

/// `faas-platform admin …`: prints what the command printed, exits with its code.
async fn admin(args: crate::admin::AdminArgs, adapters: &Adapters) -> ExitCode {
    let outcome = crate::admin::run(args, adapters).await;
    for line in &outcome.out {
        println!("{line}");
    }
    for line in &outcome.err {
        eprintln!("[faas-platform admin] Error: {line}");
    }
    ExitCode::from(outcome.code)
}

/// Refuses, before anything starts, an adapter URL whose scheme no factory knows (the error
/// lists the known ones).
fn known_schemes(config: &NodeConfig, adapters: &Adapters) -> faas_core::Result<()> {
    adapters.stores.check(&config.store)?;
    adapters.buses.check(&config.bus)?;
    adapters.executors.check(&config.executor)?;
    Ok(())
}

fn cannot_start(e: &faas_core::Error) -> ExitCode {
    eprintln!("faas-platform: cannot start: {}", faas_core::Chain(e));
    ExitCode::FAILURE
}

/// Resolves on SIGTERM or Ctrl-C. SIGTERM is listened for from the call on (not from the
/// first poll), so that a signal during start-up is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn adapters_with_counting() -> Adapters {
        let mut adapters = Adapters::default();
        adapters.stores.register("counting", |_u| async {
            Ok(Arc::new(faas_store::MemoryStore::new()) as Arc<dyn faas_core::Store>)
        });
        adapters
    }

    fn config(store: &str) -> NodeConfig {
        NodeConfig {
            store: store.into(),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn a_registered_scheme_is_accepted_on_the_command_line_and_an_unknown_one_refused() {
        let adapters = adapters_with_counting();
        known_schemes(&config("counting:"), &adapters).unwrap();
        known_schemes(&config("memory:"), &adapters).unwrap();
        let e = known_schemes(&config("redis://h/"), &adapters).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.to_string().contains("unknown store 'redis:'") && e.to_string().contains("counting:"),
            "{e}"
        );
        // Without the registration the scheme is unknown.
        assert!(known_schemes(&config("counting:"), &Adapters::default()).is_err());
    }

    #[tokio::test]
    async fn an_unknown_scheme_exits_2_before_anything_starts() {
        let cli = Cli::try_parse_from([
            "faas-platform",
            "standalone",
            "--store",
            "redis://127.0.0.1:1/",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        let code = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_with(cli, adapters_with_counting()),
        )
        .await
        .unwrap();
        assert_eq!(code, ExitCode::from(2));
    }
}
