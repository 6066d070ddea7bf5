-- Issue 16: analytics.

-- One row of figures per ticket, kept by the analytics event follower
-- (`analytics::follower`) from the ticket's timeline. Times are unix seconds; durations
-- are business seconds where the ticket's SLA policy has a calendar. A ticket merged
-- into another has no row: it counts in the one it joined.
CREATE TABLE ticket_facts (
    ticket_id        INTEGER PRIMARY KEY,
    created_at       INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    category         TEXT,
    team             TEXT,
    agent            TEXT,
    tier             TEXT NOT NULL,
    status           TEXT NOT NULL,
    first_response_s INTEGER,
    -- Each later customer message's wait for an answer, comma-separated.
    next_response_s  TEXT NOT NULL DEFAULT '',
    resolved_at      INTEGER,
    resolution_s     INTEGER,
    ever_resolved    INTEGER NOT NULL DEFAULT 0,
    reopens          INTEGER NOT NULL DEFAULT 0,
    last_reopened_at INTEGER,
    agent_replies    INTEGER NOT NULL DEFAULT 0,
    fcr              INTEGER NOT NULL DEFAULT 0,
    has_sla          INTEGER NOT NULL DEFAULT 0,
    sla_breaches     INTEGER NOT NULL DEFAULT 0,
    bot_answered     INTEGER NOT NULL DEFAULT 0,
    bot_deflected    INTEGER NOT NULL DEFAULT 0,
    bot_handoff      INTEGER NOT NULL DEFAULT 0,
    corrected        INTEGER NOT NULL DEFAULT 0,
    rating           INTEGER
) STRICT;
-- A period's new tickets, resolutions and reopenings are index ranges.
CREATE INDEX ticket_facts_created ON ticket_facts (created_at);
CREATE INDEX ticket_facts_resolved ON ticket_facts (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX ticket_facts_reopened ON ticket_facts (last_reopened_at)
    WHERE last_reopened_at IS NOT NULL;

-- A ticket's timeline (SLA timers, analytics) without a scan of the whole log.
CREATE INDEX events_ticket ON events (ticket_id, id) WHERE ticket_id IS NOT NULL;

-- Customers' satisfaction ratings: the latest per ticket counts.
CREATE TABLE ratings (
    ticket_id  INTEGER PRIMARY KEY REFERENCES tickets (id),
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    -- 'reply' (a reply beginning with the digit) or 'link' (a signed /rate/ link).
    source     TEXT NOT NULL,
    comment    TEXT,
    rated_at   TEXT NOT NULL
) STRICT;
