//! The embedded bus's one integration-test binary: the shared `Bus` conformance suite run
//! against a fresh bus file per test, plus the behaviour only this adapter has (inspection,
//! close, leases that run out for good, files of an earlier layout).

mod conformance;
mod layout;
mod operations;
