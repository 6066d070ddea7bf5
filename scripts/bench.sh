#!/usr/bin/env bash
# The ingest benchmark (benches/ingest.rs): installs the real Dovecot it measures against,
# then runs it. Knobs (environment): BENCH_MESSAGES (default 20000), BENCH_SEED, BENCH_BATCH,
# BENCH_AFTER_INGEST (keep|flag), BENCH_WRAP (profiler prefix), BENCH_KEEP=1; the corpus's
# shape: BENCH_SHAPE, BENCH_NEW_SHARE, BENCH_THREAD_DEPTH, BENCH_SIZE_MIX, and BENCH_SHAPES=all
# (the Maildir import of every shape). See benches/ingest.rs.
# Run it on a quiet machine: the figures are wall-clock rates.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
exec cargo bench --bench ingest "$@"
