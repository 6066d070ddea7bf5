-- Issue 12: messages and replies that are not mail, and post-commit events.

-- Where a message came from beyond email: the channel account, the channel's own id for
-- the message (a retry with the same id is the same message) and its conversation.
ALTER TABLE messages ADD COLUMN account TEXT;
ALTER TABLE messages ADD COLUMN external_id TEXT;
ALTER TABLE messages ADD COLUMN conversation TEXT;
CREATE UNIQUE INDEX messages_external ON messages(channel, account, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages(channel, account, conversation, id)
    WHERE conversation IS NOT NULL;

-- A chat identity's customers.email is `channel:account:sender`; the email address the
-- relay says the sender has is kept here, and never used to merge identities.
ALTER TABLE customers ADD COLUMN given_email TEXT;

-- Outbox rows name their channel; `raw`/`rcpt_to` are the email transport's payload,
-- `payload` (JSON) that of every other channel.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE outbox ADD COLUMN account TEXT;
ALTER TABLE outbox ADD COLUMN payload TEXT;
CREATE INDEX outbox_channel ON outbox(channel, account, id) WHERE channel <> 'email';

-- What happened, written in the transaction that made it happen; workers follow it by
-- cursor (event_cursors), so a crash never loses or repeats an event for them.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    ticket_id   INTEGER,
    message_row INTEGER,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE event_cursors (
    name       TEXT PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- A channel source's durable cursor (a relay feed's opaque cursor) and its last good poll.
CREATE TABLE channel_cursors (
    channel         TEXT NOT NULL,
    account         TEXT NOT NULL,
    cursor          TEXT,
    last_ok_at      TEXT,
    last_error      TEXT,
    PRIMARY KEY (channel, account)
) STRICT;
