//! The single integration-test binary. Servers (Dovecot, an SMTP sink) are real and run on
//! 127.0.0.1; see `support/`. `harness` wraps them with a config file, a database and the
//! real `postdesk` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod agentday;
mod agents;
mod analytics;
// The unit tests of the benchmark's corpus generator, which the benchmark target, having
// no test harness, cannot run.
#[path = "../../benches/corpus/tests.rs"]
mod bench_corpus;
mod cli;
mod conformance;
mod dashboard;
mod demo;
mod forgery;
mod harness;
mod hijack;
mod hostile;
mod hygiene;
mod ingest;
mod jsonchannel;
mod kb;
mod layout;
mod leaks;
mod matrix;
mod mimekit;
mod poison;
mod profiles;
mod realmail;
mod resilience;
mod spoofing;
mod support;
mod support_smoke;
mod telegram;
mod templates;
mod tls;
mod triage;
