-- postdesk schema, version 1. Never edit a released migration: add a new one.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT,
    language   TEXT,
    tier       TEXT NOT NULL DEFAULT 'standard',
    created_at TEXT NOT NULL
) STRICT;

-- Addresses known to bounce, from delivery status notifications.
CREATE TABLE address_status (
    email          TEXT PRIMARY KEY,
    bouncing       INTEGER NOT NULL DEFAULT 0,
    last_bounce_at TEXT,
    last_status    TEXT,
    bounce_count   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    subject          TEXT NOT NULL,
    subject_key      TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    priority         TEXT NOT NULL DEFAULT 'normal'
                     CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee         TEXT,
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    -- The customer reply token: support+<token>@domain routes replies to this ticket.
    token            TEXT NOT NULL UNIQUE,
    linked_ticket_id INTEGER REFERENCES tickets(id),
    -- Set when this ticket was merged into another (it is then closed); lookups follow it.
    merged_into      INTEGER REFERENCES tickets(id),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX tickets_status ON tickets(status);
CREATE INDEX tickets_customer_subject ON tickets(customer_id, subject_key);

CREATE TABLE ticket_tags (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    tag       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
) STRICT;

-- Everyone who took part in a ticket: the customer, people they copied, agents.
CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    email     TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (ticket_id, email)
) STRICT;
CREATE INDEX participants_email ON participants(email);

-- The raw bytes of every message, kept for ever, deduplicated by content hash.
CREATE TABLE raw_messages (
    id         INTEGER PRIMARY KEY,
    sha256     TEXT NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    truncated  INTEGER NOT NULL DEFAULT 0,
    data       BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER REFERENCES tickets(id),
    raw_id        INTEGER REFERENCES raw_messages(id),
    -- Normalised Message-ID (no angle brackets, lowercased); unique across all messages.
    message_id    TEXT NOT NULL UNIQUE,
    synthetic_id  INTEGER NOT NULL DEFAULT 0,
    body_sha256   TEXT NOT NULL DEFAULT '',
    direction     TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind          TEXT NOT NULL,
    from_addr     TEXT,
    from_name     TEXT,
    to_addrs      TEXT NOT NULL DEFAULT '[]',
    cc_addrs      TEXT NOT NULL DEFAULT '[]',
    subject       TEXT NOT NULL DEFAULT '',
    body_text     TEXT NOT NULL DEFAULT '',
    channel       TEXT NOT NULL DEFAULT 'email',
    match_reason  TEXT NOT NULL,
    -- Everything unusual about the message, as a JSON array of sentences.
    problems      TEXT NOT NULL DEFAULT '[]',
    attachments   TEXT NOT NULL DEFAULT '[]',
    date_header   INTEGER,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX messages_ticket ON messages(ticket_id, id);
CREATE INDEX messages_body ON messages(body_sha256);

-- Threading headers of every message: (message row, referenced Message-ID).
CREATE TABLE message_refs (
    message_row INTEGER NOT NULL REFERENCES messages(id),
    ref_id      TEXT NOT NULL,
    PRIMARY KEY (message_row, ref_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX message_refs_ref ON message_refs(ref_id);

-- Where each copy of a message was seen (a message may reach several mailboxes).
CREATE TABLE message_sources (
    mailbox     TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    message_row INTEGER NOT NULL REFERENCES messages(id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder, uidvalidity, uid)
) STRICT;

-- IMAP progress per folder: everything up to last_uid under this uidvalidity is stored.
CREATE TABLE folder_state (
    mailbox     TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder)
) STRICT;

-- Server-side actions (flag, move) owed for committed messages. Written in the same
-- transaction as the message, done after COMMIT, deleted once done: a crash in between
-- only means the action is done on the next start.
CREATE TABLE pending_actions (
    id          INTEGER PRIMARY KEY,
    mailbox     TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('flag', 'move')),
    argument    TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX pending_actions_folder ON pending_actions(mailbox, folder);

-- Outbound mail, written in the same transaction as its cause, sent by the outbox worker.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_row     INTEGER REFERENCES messages(id),
    ticket_id       INTEGER REFERENCES tickets(id),
    kind            TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    mail_from       TEXT NOT NULL,
    rcpt_to         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

-- Acknowledgements sent per recipient, for the per-sender cap that survives restarts.
CREATE TABLE autoreply_log (
    id         INTEGER PRIMARY KEY,
    recipient  TEXT NOT NULL,
    ticket_id  INTEGER REFERENCES tickets(id),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX autoreply_log_recipient ON autoreply_log(recipient, created_at);
