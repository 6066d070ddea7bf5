-- postdesk schema, version 4 (issue 10). Never edit a released migration: add a new one.

-- Messages that were in flight when the process died twice (ingest::inflight): stored as
-- unprocessable with their raw bytes, and skipped by every later sync of their folder.
CREATE TABLE quarantine (
    mailbox     TEXT NOT NULL,
    folder      TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    message_row INTEGER REFERENCES messages(id),
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder, uidvalidity, uid)
) STRICT;

-- Tickets of different customers that one message's threading headers connect. They are
-- never merged automatically (a stranger could otherwise pull a victim's ticket into
-- their own); an agent sees the link and decides. One row per pair, lower id first.
CREATE TABLE ticket_links (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    linked_id   INTEGER NOT NULL REFERENCES tickets(id),
    reason      TEXT NOT NULL,
    message_row INTEGER REFERENCES messages(id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (ticket_id, linked_id),
    CHECK (ticket_id < linked_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX ticket_links_linked ON ticket_links(linked_id);

-- Held notices are capped per agent and hour; this finds an agent's recent ones without
-- scanning every message.
CREATE INDEX messages_held_notices ON messages(to_addrs, created_at) WHERE kind = 'held_notice';

-- A held message some held notice has told its agent about (the hourly cap defers the
-- rest to one digest).
ALTER TABLE messages ADD COLUMN held_announced INTEGER NOT NULL DEFAULT 0;

-- No schema change: from this version on, autoreply_log.recipient holds the mailbox key
-- (ingest::address::mailbox_key: no +subaddress, no dots for Gmail), so that the per-sender
-- acknowledgement cap counts mailboxes, not spellings.
