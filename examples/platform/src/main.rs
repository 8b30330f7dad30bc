//! `faas-platform`: an OpenWhisk-compatible Function-as-a-Service platform.
//!
//! Run with: `cargo run --release -p faas-platform -- standalone`

use clap::Parser;
use faas_platform::config::{Cli, Command, StandaloneConfig};
use faas_platform::standalone::{Adapters, start};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Standalone(args) => {
            let config = match StandaloneConfig::resolve(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("faas-platform: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let mut running = match start(&config, &Adapters::default()).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("faas-platform: cannot start: {}", faas_core::Chain(&e));
                    return std::process::ExitCode::FAILURE;
                }
            };
            if config.guest_auth.is_none() {
                println!("guest auth (generated): {}", running.guest.compact());
            }
            println!("faas-platform listening on http://{}", running.addr);
            tokio::select! {
                r = running.wait() => {
                    if let Err(e) = r {
                        eprintln!("faas-platform: server failed: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                }
            }
            running.shutdown().await;
            std::process::ExitCode::SUCCESS
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
