//! Channels: one folder per way customers reach us. Each speaks its own protocol and
//! nothing else: it turns what arrives into messages for `intake`, keeps its own durable
//! cursor (an IMAP UID watermark, a feed cursor), and owns the transport that carries a
//! reply back out (`outbound` dispatches to it). Deciding tickets is not a channel's job.
//!
//! `email` is IMAP (IDLE), Maildir and mbox in, MIME parsing, quote stripping, loop
//! signals, RFC 5322 composition and SMTP out. `json` is the generic relay channel: signed
//! pushes and a polled feed in, signed deliveries or a pulled outbox out. `telegram` is a
//! bot on the Bot API: `getUpdates` in, `sendMessage` out. `matrix` is an account on a
//! homeserver: `/sync` in, `m.room.message` out. `chat` is what the chat
//! channels share on the way into intake.

pub mod chat;
pub mod email;
pub mod json;
pub mod matrix;
pub mod telegram;
