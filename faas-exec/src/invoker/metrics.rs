//! The container pool's gauges and counters, read at scrape time.

use faas_core::metrics::{MetricSource, Sample};

use crate::pool::ContainerPool;

/// The pool's state, read at scrape time (OpenWhisk's `containerPool` markers:
/// `activeCount`, `prewarmCount`, `idlesCount`, `prewarmColdstart`, …).
#[derive(Debug)]
pub(super) struct PoolSource(pub(super) ContainerPool);

impl MetricSource for PoolSource {
    fn collect(&self, out: &mut Vec<Sample>) {
        let s = self.0.stats();
        let containers = "Containers of the pool, by state";
        for (state, n) in [
            ("busy", s.in_use),
            ("warm", s.idle.saturating_sub(s.paused)),
            ("paused", s.paused),
            ("prewarmed", s.prewarmed),
            ("starting", s.starting),
        ] {
            out.push(
                Sample::gauge("faas_pool_containers", containers, n as f64)
                    .with_label("state", state),
            );
        }
        out.push(Sample::gauge(
            "faas_pool_queue_length",
            "Activations waiting for a container",
            s.waiting as f64,
        ));
        let mb = |v: u64| (v * 1024 * 1024) as f64;
        out.push(Sample::gauge(
            "faas_pool_memory_used_bytes",
            "Memory accounted to the pool's containers",
            mb(s.used_mb),
        ));
        out.push(Sample::gauge(
            "faas_pool_memory_free_bytes",
            "User memory not accounted to any container",
            mb(s.free_mb),
        ));
        let acquires = "Containers handed to activations, by how they were found";
        for (how, n) in [
            ("warm", s.warm_hits),
            ("prewarmed", s.prewarm_hits),
            ("cold", s.cold_starts),
        ] {
            out.push(
                Sample::counter("faas_pool_acquires_total", acquires, n as f64)
                    .with_label("how", how),
            );
        }
        out.push(Sample::counter(
            "faas_pool_evictions_total",
            "Idle containers removed to make room",
            s.evictions as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_idle_removed_total",
            "Idle containers removed by the reaper",
            s.idle_removed as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_queued_total",
            "Activations that had to wait for a container",
            s.queued as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_create_failures_total",
            "Container creations that failed",
            s.create_failures as f64,
        ));
    }
}
