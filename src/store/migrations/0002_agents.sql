-- postdesk schema, version 2: agents act on tickets by replying with command lines
-- (issue 3). Never edit a released migration: add a new one.

-- One row per applied command set (one agent reply that changed something). `undo` holds
-- what #undo needs to revert it (store::agent::UndoState as JSON); `undone_at` is set once
-- it was reverted. Rows stay on the ticket the commands were applied to, also after that
-- ticket is merged into another.
CREATE TABLE command_log (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    -- The configured name of the authenticated agent who sent the reply.
    agent       TEXT NOT NULL,
    -- The agent's message, when it was stored.
    message_row INTEGER REFERENCES messages(id),
    -- JSON array of the applied commands, one string each (`#status pending`).
    commands    TEXT NOT NULL,
    undo        TEXT NOT NULL,
    undone_at   TEXT,
    created_at  TEXT NOT NULL
) STRICT;
-- #undo: the agent's newest set on a ticket.
CREATE INDEX command_log_ticket_agent ON command_log(ticket_id, agent, id);

-- Internal collaborators (#invite): they get the thread and may reply with notes. Never
-- customer-side addresses, so internal notes cannot reach a customer.
CREATE TABLE ticket_collaborators (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    email      TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, email)
) STRICT;

-- Extra customer addresses copied on replies to the customer (#cc). Each is also in
-- `participants` (role 'cc'), so threading treats their mail as part of the ticket.
CREATE TABLE ticket_cc (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    email      TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, email)
) STRICT;

-- Nullable rather than NOT NULL DEFAULT '': NULL means "not held" and "not from an agent",
-- which no sentinel string says as plainly.
-- Why a message that claimed to come from an agent was held (it failed authentication).
ALTER TABLE messages ADD COLUMN held_reason TEXT;
-- The configured agent name of agent_reply and note messages.
ALTER TABLE messages ADD COLUMN agent TEXT;
-- Held messages are few; the partial index lists them without scanning every message.
CREATE INDEX messages_held ON messages(id) WHERE held_reason IS NOT NULL;

-- #undo looks at the sets of tickets merged into this one (to refuse undoing across a
-- merge); merges are rare, so a partial index keeps this cheap.
CREATE INDEX tickets_merged_into ON tickets(merged_into) WHERE merged_into IS NOT NULL;

-- A replayed Message-ID needs nothing here: messages.message_id is already UNIQUE.
