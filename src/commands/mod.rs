//! Reply-by-email commands from agents (issue 3, in progress): `parse` turns the new text
//! of an agent's reply into commands (pure), `token` makes and checks the per-agent,
//! per-ticket HMAC reply tokens, `authres` decides whether a message proves its sender
//! (Authentication-Results from a trusted server, or local DKIM/DMARC verification).
//! Wiring into the pipeline (notifications, applying commands, receipts) comes next.

pub mod apply;
pub mod parse;
