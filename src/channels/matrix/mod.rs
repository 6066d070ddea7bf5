//! # The Matrix bridge
//!
//! A Matrix account on a homeserver (client-server API,
//! <https://spec.matrix.org/latest/client-server-api/>) is a channel beside email, JSON
//! and Telegram: customers invite the account to a room (or write in one it is in), their
//! messages become tickets, and agents' answers go back into the room.
//!
//! **In** ([`source`]): log in with the password (a fixed device id per account, so
//! transaction ids stay scoped to one device across restarts), or use the access token as
//! given; then one long-poll `/sync` loop with `since` and a timeout. The first run
//! starts from now: its initial sync stores the `next_batch` token and takes no history.
//! Rooms the account is invited to are joined. A timeline that comes back `limited` is
//! backfilled with `/messages` (backwards from `prev_batch`, a few pages), so no message
//! in a gap is lost. The account's own events, `m.notice` messages (bots) and events
//! other than `m.room.message` are skipped. A sync's messages and its `next_batch` commit
//! in one transaction; a crash re-syncs from the stored token and the event id, the
//! dedup key, makes copies duplicates. A refused login or token (`M_FORBIDDEN`,
//! `M_UNKNOWN_TOKEN` with no password to log in again) disables the account and mails the
//! admins.
//!
//! **Out** ([`send`]): `PUT /rooms/{room}/send/m.room.message/{txn}` with the transaction
//! id `postdesk-<outbox id>-<part>`: the homeserver makes a retry with the same id the
//! same event, so a send that got no answer is simply retried (exactly once). The answer
//! quotes the customer's latest message (`m.relates_to.m.in_reply_to`). Sends are paced
//! per room (`per_room_per_minute`); `retry_after_ms` (429) is honoured.

pub mod client;
pub mod send;
pub mod source;
