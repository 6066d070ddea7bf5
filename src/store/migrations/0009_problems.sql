-- Issue 15: similar issues shown together, and grouped under a problem ticket.

-- The analyzed terms of a ticket's opening message (`kb::similar::terms`, space-separated),
-- compared with those of new tickets of the same category.
CREATE TABLE ticket_terms (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    terms     TEXT NOT NULL
) STRICT;

-- `#problem N`: this ticket is one report of the problem that ticket N stands for.
CREATE TABLE problem_links (
    ticket_id  INTEGER PRIMARY KEY REFERENCES tickets(id),
    problem_id INTEGER NOT NULL REFERENCES tickets(id),
    agent      TEXT NOT NULL,
    linked_at  TEXT NOT NULL,
    CHECK (ticket_id <> problem_id)
) STRICT;
CREATE INDEX problem_links_problem ON problem_links (problem_id);

-- `#problem send M`: agent answer M of a problem ticket went to this linked ticket (once).
CREATE TABLE problem_sends (
    answer_id INTEGER NOT NULL REFERENCES messages(id),
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    agent     TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (answer_id, ticket_id)
) STRICT;

-- The similar-ticket pool is the tickets created within a window.
CREATE INDEX tickets_created ON tickets (created_at);

-- The channel's ids of our sent chat messages (Telegram `<chat>:<message>`, Matrix event
-- ids), recorded when the platform accepts them: a customer's reply to one of them joins
-- that ticket (the first rule of chat threading).
CREATE TABLE chat_sent (
    channel     TEXT NOT NULL,
    account     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    -- The conversation it was sent to: a reply from elsewhere naming it does not count.
    conversation TEXT NOT NULL,
    ticket_id   INTEGER REFERENCES tickets(id),
    outbox_id   INTEGER NOT NULL,
    PRIMARY KEY (channel, account, external_id)
) STRICT;

-- A chat sender's request to be linked to an email address: the one-time code mailed to
-- the address (kept as a SHA-256 of identity and code), tried at most a few times.
CREATE TABLE link_codes (
    id         INTEGER PRIMARY KEY,
    identity   TEXT NOT NULL,
    email      TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    ticket_id  INTEGER REFERENCES tickets(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    TEXT
) STRICT;
CREATE INDEX link_codes_identity ON link_codes (identity, created_at);
CREATE INDEX link_codes_email ON link_codes (email, created_at);

-- A phone number on a customer profile (digits with a leading +), and the number a chat
-- platform verified for the sender of a message (Telegram's own contact card): equal, they
-- link the chat identity to that customer.
ALTER TABLE customers ADD COLUMN phone TEXT;
CREATE INDEX customers_phone ON customers (phone);
ALTER TABLE messages ADD COLUMN verified_phone TEXT;
