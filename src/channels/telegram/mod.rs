//! # The Telegram bridge
//!
//! A bot on the Telegram Bot API (<https://core.telegram.org/bots/api>) is a channel
//! beside email and JSON: customers write to the bot, their messages become tickets, and
//! agents' answers go back into the chat. Each bot is one `[[channel.telegram]]` account
//! (`config::TelegramChannelConfig`).
//!
//! **In** ([`source`]): one long-lived `getUpdates` loop per bot, with a long-poll
//! timeout and `allowed_updates = ["message"]`. The messages of a page, their links to
//! tickets and the cursor after them (the next offset) commit in one transaction; only
//! then is the offset sent to Telegram, which confirms the page there. A crash between
//! the two costs a re-poll, and the dedup key, the chat id plus the message id (message
//! ids are chat-scoped), makes the copies duplicates. The first poll of a process sends
//! no offset: Telegram then returns its oldest unconfirmed updates, so a stored cursor
//! that is ahead of the server's (a restored database, a new bot behind the same account
//! name) can never confirm, and so lose, updates postdesk has not stored. Documents and
//! photos (the largest size) are fetched through `getFile` and kept with the message.
//! Updates of other types, messages from bots (no loops with other bots) and messages of
//! an unreadable shape are skipped, each with a log line; the offset moves past them.
//!
//! **Webhook mode** ([`webhook`]): with `webhook_url`, the bot is not polled; the URL is
//! registered with `setWebhook` and a secret token, and each update Telegram POSTs to
//! the daemon's HTTP listener goes through the same [`source::store_updates`].
//!
//! **Out** ([`send`]): the outbound worker sends an agent's answer with `sendMessage`,
//! as a reply (`reply_to_message_id`) to the customer's latest message, split into parts
//! of at most 4096 characters; the parts already sent are recorded, so a retry continues
//! where it stopped. Sends are paced by governor: one limiter per bot
//! (`rate_per_second`) and one per chat (`per_chat_per_minute`).
//!
//! **Failures.** `retry_after` in an error body (429) is honoured, for polls and sends.
//! 5xx, refused connections and answers that are not the Bot API's JSON back off (2 s
//! doubling to 5 minutes for polls; the outbox's schedule for sends). 401 or 404 means
//! the token is wrong or revoked: the bot is disabled (`channel_cursors.disabled_*`) and
//! the admins are mailed once; it stays disabled until its configured token changes.
//! `sendMessage` takes no idempotency key, so a send that went out and got no answer (a
//! timeout, a connection lost mid-answer) is *parked*, not resent: the outbox row fails
//! with the reason and the ticket's agent is told to check the chat.

pub mod client;
pub mod send;
pub mod source;
pub mod webhook;
pub mod wire;
