#!/usr/bin/env bash
# The test command (README and CI): installs the real servers the tests need (Dovecot,
# aiosmtpd, Synapse, Chromium), then runs formatting, lint and every test (unit, integration, conformance).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
command -v cargo >/dev/null 2>&1 || { echo "test.sh: cargo not found (install Rust 1.95)" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The benchmark's 300-message smoke run and the doc examples first, so that the run ends
# with the summary of the main suites.
cargo test --bench ingest --locked
# The knowledge-base search benchmark, small: it builds and searches a real index.
BENCH_ARTICLES=2000 BENCH_QUERIES=200 cargo test --bench kb --locked
# Telegram through to tickets beside the same messages as mail, small.
cargo test --bench telegram --locked
# Statistics over a seeded desk (20,000 tickets, 100,000 messages), the follower and the
# timeline index, small.
cargo test --bench stats --locked
cargo test --doc --locked
cargo test --lib --bins --tests --locked
echo "test.sh: test artifacts (the dashboard's screenshot) are in ${POSTDESK_TEST_ARTIFACTS:-${CARGO_TARGET_DIR:-target}/test-artifacts}"
# The Debian package, installed, checked as the service sees it, and purged: it installs a
# system package, so it runs in CI (CI=true) or when asked (POSTDESK_PACKAGE_TEST=1).
if [ "${CI:-}" = true ] || [ "${POSTDESK_PACKAGE_TEST:-}" = 1 ]; then
    bash scripts/package-test.sh
else
    echo "test.sh: the package test (scripts/package-test.sh) runs with CI=true or POSTDESK_PACKAGE_TEST=1"
fi
