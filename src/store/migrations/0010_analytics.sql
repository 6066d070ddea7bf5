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

-- The SLA breaches of a period's tickets without a pass over all of them.
CREATE INDEX ticket_facts_breached ON ticket_facts (created_at) WHERE sla_breaches > 0;

-- Daily rollups of ticket_facts, per UTC day (unix seconds / 86400), for each of the
-- three sets a period counts (tickets created, resolved and reopened that day), per team
-- and per value of one grouping (`dim`: agent, category, channel or tier; "" for none).
-- Each ticket is counted once under every dim, so any one dim sums to the whole team. A
-- statistic reads whole days here and only the partial days at its ends from
-- ticket_facts. The follower recomputes every day a batch touched
-- (`store::analytics::roll_days`), so a rollup never drifts from the facts. The columns
-- are named after the sums they hold (see `store::analytics`); fr, nr and rs are the
-- comma-separated first-response, next-response and resolution times, so medians stay
-- exact.
CREATE TABLE stats_daily (
    cohort   TEXT NOT NULL CHECK (cohort IN ('created', 'resolved', 'reopened')),
    day      INTEGER NOT NULL,
    dim      TEXT NOT NULL CHECK (dim IN ('agent', 'category', 'channel', 'tier')),
    team     TEXT NOT NULL,
    value    TEXT NOT NULL,
    n        INTEGER NOT NULL DEFAULT 0,
    res      INTEGER NOT NULL DEFAULT 0,
    ever     INTEGER NOT NULL DEFAULT 0,
    reop     INTEGER NOT NULL DEFAULT 0,
    fr       TEXT,
    nr       TEXT,
    sla      INTEGER NOT NULL DEFAULT 0,
    slab     INTEGER NOT NULL DEFAULT 0,
    breaches INTEGER NOT NULL DEFAULT 0,
    ba       INTEGER NOT NULL DEFAULT 0,
    bd       INTEGER NOT NULL DEFAULT 0,
    bh       INTEGER NOT NULL DEFAULT 0,
    cor      INTEGER NOT NULL DEFAULT 0,
    r1       INTEGER NOT NULL DEFAULT 0,
    r2       INTEGER NOT NULL DEFAULT 0,
    r3       INTEGER NOT NULL DEFAULT 0,
    r4       INTEGER NOT NULL DEFAULT 0,
    r5       INTEGER NOT NULL DEFAULT 0,
    fcr      INTEGER NOT NULL DEFAULT 0,
    rs       TEXT,
    PRIMARY KEY (cohort, dim, day, team, value)
) STRICT, WITHOUT ROWID;

-- New tickets per quarter hour (unix seconds / 900) and team: the peak-hour heatmap.
CREATE TABLE stats_arrivals (
    q    INTEGER NOT NULL,
    team TEXT NOT NULL,
    n    INTEGER NOT NULL,
    PRIMARY KEY (q, team)
) STRICT, WITHOUT ROWID;

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
