//! Benchmark corpus generator (being written).
