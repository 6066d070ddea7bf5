-- Issue 15: a channel account whose credentials the platform refused is disabled until
-- its token changes: the reason, when, and a fingerprint of the refused token.
ALTER TABLE channel_cursors ADD COLUMN disabled_at TEXT;
ALTER TABLE channel_cursors ADD COLUMN disabled_reason TEXT;
ALTER TABLE channel_cursors ADD COLUMN disabled_token TEXT;

-- A chat identity (`telegram:shop_bot:42`) linked to the customer it was verified to be,
-- by an agent's #link, a mailed code, or a platform-verified phone number. Intake takes
-- a linked identity's messages as that customer's.
CREATE TABLE customer_links (
    identity    TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    signal      TEXT NOT NULL CHECK (signal IN ('agent', 'code', 'phone')),
    linked_by   TEXT,
    ticket_id   INTEGER,
    linked_at   TEXT NOT NULL
) STRICT;
CREATE INDEX customer_links_customer ON customer_links (customer_id);
