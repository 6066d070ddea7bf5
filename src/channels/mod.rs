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

/// The HTTP client settings every channel shares: rustls with the ring provider and the
/// system roots, 10 s to connect, redirects not followed (a request goes where it was
/// configured to, or nowhere), postdesk's user agent. Each channel adds its timeouts.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Installed once per process; a second call finds it there, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("postdesk/", env!("CARGO_PKG_VERSION")))
}

pub mod chat;
pub mod email;
pub mod json;
pub mod link;
pub mod matrix;
pub mod telegram;
