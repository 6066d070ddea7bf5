//! # The generic JSON channel
//!
//! Lets any relay (an SMS gateway, a chat bridge, a web form) bring conversations into
//! postdesk and carry replies back, over HTTP with JSON bodies signed by a shared secret.
//! Each relay is one `[[channel.json]]` account in the configuration (see
//! `config::JsonChannelConfig`):
//!
//! ```toml
//! [[channel.json]]
//! account = "sms"                               # [a-z0-9_-]{1,32}, unique
//! secret_file = "/etc/postdesk/sms.secret"      # or secret / secret_env / secret_credential
//! deliver_url = "http://127.0.0.1:9000/out"     # omit: the relay pulls from the outbox
//! # feed_url = "http://127.0.0.1:9000/feed"     # set: postdesk polls the relay instead of a push
//! max_body_mb = 10                              # largest request body accepted, 1-100
//! poll_interval_secs = 5                        # how often an idle feed is polled
//! ```
//!
//! Inbound, the relay either **pushes** messages to postdesk or postdesk **polls** the
//! relay's feed (`feed_url`). Outbound, postdesk either **POSTs** each reply to
//! `deliver_url` or the relay **pulls** them from the outbox. The endpoints are served by
//! the daemon's HTTP listener (`[http] listen`, by default `127.0.0.1:8025` as soon as a
//! JSON channel is configured). They speak plain HTTP: put a TLS-terminating proxy in front
//! of them for a relay on another host.
//!
//! Modules: [`wire`] (the JSON shapes and their limits), [`sign`] (the signature),
//! [`http`] (the endpoints, over a `JsonBackend` the daemon implements on the store),
//! [`client`] (delivering to `deliver_url`, polling `feed_url`).
//!
//! ## Signatures
//!
//! Every request, both ways, carries two headers:
//!
//! ```text
//! X-Postdesk-Timestamp: 1700000000                 (Unix seconds, when it was signed)
//! X-Postdesk-Signature: sha256=<64 lowercase hex>  (HMAC-SHA256 of "<timestamp>.<body>")
//! ```
//!
//! The HMAC key is the account's secret, the message the timestamp in decimal, a full
//! stop, and the exact body bytes (nothing for a GET). A request whose timestamp is more
//! than 300 s from the receiver's clock, either way, is refused, and so is a request whose
//! signature postdesk has already seen within that window (a replay) on a request that
//! changes something (a push, an acknowledgement): a relay that retries signs the retry
//! anew, with the current time. Reading the outbox changes nothing and may be repeated.
//! The comparison is constant-time.
//!
//! From a shell (`printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`
//! prints `49f24e53...411686`, the vector in `sign`'s tests):
//!
//! ```sh
//! SECRET=$(cat /etc/postdesk/sms.secret)
//! BODY='{"messages":[{"external_id":"sms-1","conversation_id":"+15550001","sender":{"id":"+15550001","name":"Ann"},"text":"Hello"}]}'
//! TS=$(date +%s)
//! SIG=$(printf '%s' "$TS.$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')
//! curl -sS http://127.0.0.1:8025/channels/json/sms/messages \
//!   -H 'Content-Type: application/json' \
//!   -H "X-Postdesk-Timestamp: $TS" -H "X-Postdesk-Signature: sha256=$SIG" \
//!   --data-binary "$BODY"
//! ```
//!
//! What the signature does not cover: the method, the path and the query string. The
//! secret is per account, so a signature is good for one account only, and the replay
//! check refuses a captured push or acknowledgement sent again; but a captured outbox
//! listing can be repeated within the window, so on an untrusted network use HTTPS.
//! Because two pushes with the same body signed in the same second have the same
//! signature, the second is refused as a replay (409).
//!
//! ## Messages (relay to postdesk)
//!
//! ```json
//! {"messages": [{
//!     "external_id": "sms-1",                       // the relay's id for this message
//!     "conversation_id": "+15550001",               // the relay's id for the conversation
//!     "sender": {"id": "+15550001", "name": "Ann", "email": "ann@example.com"},
//!     "text": "Hello",
//!     "html": "<p>Hello</p>",                       // optional
//!     "sent_at": "2024-05-01T12:00:00Z",            // optional; RFC 3339 or Unix seconds
//!     "attachments": [                              // optional
//!         {"name": "photo.jpg", "content_type": "image/jpeg", "data_base64": "/9j/4AAQ..."}
//!     ]
//! }]}
//! ```
//!
//! `sender.email` is optional. Unknown fields are refused (a misspelt optional field would
//! otherwise be lost without a word). Limits: 1 to 100 messages per push; `external_id`,
//! `conversation_id` and `sender.id` not empty and at most 256 bytes (`sender.name`,
//! `sender.email`, attachment names and content types at most 256 bytes too); `text` and
//! `html` at most 1 MiB each; at most 20 attachments and 10 MiB decoded per message
//! (standard base64, padding optional). A push is idempotent per (account, `external_id`):
//! sending a message again changes nothing and reports it as a duplicate.
//!
//! **Push**: `POST /channels/json/{account}/messages` with that body answers 200 and one
//! result per message, in order:
//!
//! ```json
//! {"results": [{"external_id": "sms-1", "ticket_id": 42, "duplicate": false}]}
//! ```
//!
//! **Pull (feed)**: with `feed_url` set, postdesk polls `GET <feed_url>` (first without a
//! query, then with `?cursor=<the last cursor>` added), signed over the empty body. The
//! relay answers 2xx with
//!
//! ```json
//! {"messages": [ ...message objects as above... ], "cursor": "<opaque next cursor>"}
//! ```
//!
//! 0 to 100 messages per page, checked by the same rules; an empty `messages` list means
//! nothing new (postdesk waits `poll_interval_secs`). `cursor` is at most 1024 bytes; when
//! it is absent or null, the previous cursor is kept. The answer itself is not signed:
//! use HTTPS to a relay on another host.
//!
//! ## Replies (postdesk to relay)
//!
//! A delivery:
//!
//! ```json
//! {"id": 17, "idempotency_key": "postdesk-outbox-17", "ticket_id": 42,
//!  "conversation_id": "+15550001", "recipient": "+15550001", "text": "Hello Ann, ..."}
//! ```
//!
//! `id` is the outbox row's id (ascending); `idempotency_key` is `postdesk-outbox-<id>`,
//! the same on every attempt, so a relay can drop a repeat that crossed a lost answer.
//!
//! **Push (deliver_url)**: postdesk POSTs each delivery to `deliver_url`, signed, with
//! `Content-Type: application/json` and the key also in an `Idempotency-Key` header.
//! 2xx is delivered; 5xx, 429, 408, timeouts (10 s to connect, 30 s in all) and
//! connection errors are retried later (honouring `Retry-After`); any other answer,
//! redirects included (they are not followed), fails the delivery for good.
//!
//! **Pull (outbox)**: `GET /channels/json/{account}/outbox?after=N&limit=M`, signed over
//! the empty body, answers `{"deliveries": [...]}`: up to M (1-100, default 100)
//! unacknowledged deliveries with id > N (default 0), by ascending id. Then
//! `POST /channels/json/{account}/outbox/ack` with `{"up_to": N}`, signed, marks every
//! delivery with id <= N done and answers `{"acknowledged": <how many were newly>}`.
//! The outbox endpoints answer for every account, with or without `deliver_url`: an
//! account that has one sees there what is still queued for it.
//!
//! ## Health
//!
//! `GET /healthz` (not signed) answers 200 with
//! `{"status": "ok", "database_ok": true, "sources": {"<name>": "<last successful poll, RFC 3339>" or null}}`,
//! or 503 with `"status": "unavailable"` when the database cannot be reached.
//!
//! ## Statuses
//!
//! Every error answer is JSON: `{"error": "<what is wrong, in words>", "field": "<path>"}`,
//! `field` naming the place in the body (like `messages[0].sender.id`) or null. Checks run
//! in this order, and the first that fails answers:
//!
//! | status | when |
//! | --- | --- |
//! | 404 | no such account (or no such endpoint) |
//! | 413 | the body is over the account's `max_body_mb` (refused before reading past it) |
//! | 401 | a signature header is missing or malformed, the timestamp is out of the window, or the signature does not match |
//! | 409 | the same signature was already received (a replay); sign a retry anew |
//! | 429 | too many signatures inside the window to remember (65 536); `Retry-After` says when to retry |
//! | 400 | the body is not UTF-8 (the offset is given), not JSON (line and column), misses a field or has one of the wrong type or unknown; or a bad `after`/`limit` |
//! | 422 | well-formed, but a value breaks a limit above (empty id, too long, too many, bad base64) |
//! | 500 | postdesk could not store or read (details in its log); the very same request may be sent again |
//! | 405 | the endpoint does not take that method |

pub mod client;
pub mod http;
pub mod sign;
pub mod source;
pub mod wire;
