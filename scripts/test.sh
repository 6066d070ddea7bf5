#!/usr/bin/env bash
# The test command (README and CI): installs the real servers the tests need (Dovecot,
# aiosmtpd), then runs formatting, lint and every test (unit, integration, conformance).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
command -v cargo >/dev/null 2>&1 || { echo "test.sh: cargo not found (install Rust 1.95)" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The benchmark's 300-message smoke run and the doc examples first, so that the run ends
# with the summary of the main suites.
cargo test --bench ingest --locked
cargo test --doc --locked
cargo test --lib --bins --tests --locked
