//! One folder per channel: each speaks its own protocol and hands channel-neutral values
//! to the rest of the daemon. Nothing here writes to the database itself.

pub mod json;
