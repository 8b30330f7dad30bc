//! The auth conformance suite.
