//! faas-bus
