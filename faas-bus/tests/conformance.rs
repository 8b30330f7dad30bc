//! The `MessageBus` conformance suite against [`InProcessBus`].

use std::sync::Arc;

use faas_bus::InProcessBus;
use faas_core::MessageBus;

async fn setup() -> Option<Arc<dyn MessageBus>> {
    Some(Arc::new(InProcessBus::new()))
}

faas_core::bus_conformance!(setup);

/// The metrics wrapper keeps the contract (its consumers included).
mod instrumented {
    use std::sync::Arc;

    use faas_bus::inproc::InProcessBus;
    use faas_core::metrics::{Event, InstrumentedBus, MetricSource, Metrics, MetricsRecorder};

    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicU64);

    impl MetricsRecorder for Counting {
        fn record(&self, event: &Event<'_>) {
            assert!(
                matches!(
                    event,
                    Event::BusPublish { .. }
                        | Event::BusConsume { .. }
                        | Event::BusDelivered { .. }
                ),
                "{event:?}"
            );
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn add_source(&self, _source: Arc<dyn MetricSource>) {}
    }

    async fn setup() -> Option<Arc<dyn faas_core::MessageBus>> {
        let metrics = Metrics::new(Arc::new(Counting::default()));
        Some(Arc::new(InstrumentedBus::new(
            Arc::new(InProcessBus::new()),
            metrics,
        )))
    }
    faas_core::bus_conformance!(setup);
}
