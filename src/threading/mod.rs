//! Pure threading logic: which ticket a message belongs to, and why. No I/O.
//!
//! `subject` normalises subjects (reply/forward prefixes in many languages, ticket tags);
//! `jwz` is an RFC 5256 / JWZ REFERENCES threader used for conformance checks;
//! `courtesy` recognises short "thanks" replies that must not reopen a ticket.

pub mod courtesy;
pub mod jwz;
pub mod subject;
