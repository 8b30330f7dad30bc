//! `faas-platform`: an OpenWhisk-compatible Function-as-a-Service platform.
//!
//! Run with: `cargo run --release -p faas-platform -- standalone`
//! (or `controller --id C` and `invoker --id N`, any number of each, sharing a store and a bus;
//! `admin …` is the operator CLI).

use std::process::ExitCode;

use clap::Parser;
use faas_platform::config::{Cli, Command, NodeConfig, describe_bus, describe_store};
use faas_platform::standalone::{Adapters, GuestKey, start, start_controller, start_invoker};
use tracing_subscriber::EnvFilter;

/// mimalloc: measured to cut the platform's CPU per request by 10–15% against the system
/// allocator (see the `invoke` benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
        .init();
    let (mode, args) = match cli.command {
        Command::Admin(a) => return admin(a).await,
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
    let adapters = Adapters::default();
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
async fn admin(args: faas_platform::admin::AdminArgs) -> ExitCode {
    let outcome = faas_platform::admin::run(args, &Adapters::default()).await;
    for line in &outcome.out {
        println!("{line}");
    }
    for line in &outcome.err {
        eprintln!("[faas-platform admin] Error: {line}");
    }
    ExitCode::from(outcome.code)
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
