-- Issue 13: triage (category, team, forced-human, SLA), red alerts, agent availability.

-- What triage decided for a ticket. `forced_human` is the JSON {topic, term} of the first
-- sensitive match; once set it is never cleared, and no automatic answer goes out.
ALTER TABLE tickets ADD COLUMN category TEXT;
ALTER TABLE tickets ADD COLUMN team TEXT;
ALTER TABLE tickets ADD COLUMN forced_human TEXT;
ALTER TABLE tickets ADD COLUMN sla_policy TEXT;

-- Per message: the rules that fired (JSON array of names), the detected language and the
-- sentiment score in [-1, 1].
ALTER TABLE messages ADD COLUMN rules_fired TEXT;
ALTER TABLE messages ADD COLUMN language TEXT;
ALTER TABLE messages ADD COLUMN sentiment REAL;

-- `#away` / `#back`: an away agent gets no new tickets.
CREATE TABLE agent_state (
    name       TEXT PRIMARY KEY,
    away       INTEGER NOT NULL DEFAULT 0,
    changed_at TEXT NOT NULL
) STRICT;

-- Round robin: the member who got the team's last ticket.
CREATE TABLE team_cursors (
    team       TEXT PRIMARY KEY,
    last_agent TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- Red alerts: raised on a ticket, answered by a handling report (`#report`) before
-- `report_due`, escalated to the lead once when it is missing.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    ticket_id      INTEGER NOT NULL REFERENCES tickets(id),
    reason         TEXT NOT NULL,
    term           TEXT,
    raised_at      TEXT NOT NULL,
    report_due     TEXT NOT NULL,
    first_human_at TEXT,
    report_at      TEXT,
    report_by      TEXT,
    report         TEXT,
    escalated_at   TEXT
) STRICT;
CREATE INDEX alerts_ticket ON alerts(ticket_id);
CREATE INDEX alerts_open ON alerts(report_due) WHERE report_at IS NULL AND escalated_at IS NULL;

-- Every SLA warning and breach sent, once per ticket, target and cycle (the instant the
-- timer started): the scheduler inserts here in the transaction that queues the mail.
CREATE TABLE sla_notices (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    target    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    cycle     TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, target, kind, cycle)
) STRICT;

-- Daily digests sent, one per agent (or lead) and local day.
CREATE TABLE digests_sent (
    agent   TEXT NOT NULL,
    day     TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (agent, day)
) STRICT;
