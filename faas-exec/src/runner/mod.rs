//! What the process and Docker executors share about talking to a runner: the action-proxy
//! client ([`client::Endpoint`], `/init` and `/run` over a Unix socket) and log capture
//! ([`logs::LogBuffer`], cut at OpenWhisk's sentinel lines).

pub(crate) mod client;
pub(crate) mod logs;
