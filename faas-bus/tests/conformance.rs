//! The `MessageBus` conformance suite against [`InProcessBus`].

use std::sync::Arc;

use faas_bus::InProcessBus;
use faas_core::MessageBus;

async fn setup() -> Option<Arc<dyn MessageBus>> {
    Some(Arc::new(InProcessBus::new()))
}

faas_core::bus_conformance!(setup);
