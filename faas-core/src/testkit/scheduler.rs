//! The scheduler conformance suite.
