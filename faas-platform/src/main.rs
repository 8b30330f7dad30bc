//! `faas-platform`: an OpenWhisk-compatible Function-as-a-Service platform.
//!
//! Run with: `cargo run --release -p faas-platform -- standalone`
//! (or `controller --id C` and `invoker --id N`, any number of each, sharing a store and a bus;
//! `admin …` is the operator CLI). Everything but the allocator is [`faas_platform::run`]: a
//! platform of your own with extra adapters is this file with your registrations added.

use std::process::ExitCode;

/// mimalloc: measured to cut the platform's CPU per request by 10–15% against the system
/// allocator (see the `invoke` benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    faas_platform::run(faas_platform::Adapters::default()).await
}
