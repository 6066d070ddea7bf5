-- Issue 14: knowledge base, answer bot, corrections and classifier, customer profiles,
-- agents' feedback.

-- Knowledge-base articles: the database is the source of truth; the search index
-- (tantivy, under the state directory) is a cache rebuilt from this table.
CREATE TABLE kb_articles (
    id            INTEGER PRIMARY KEY,
    -- A stable name (the file name for `kb import`), unique when present.
    slug          TEXT UNIQUE,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,          -- Markdown
    language      TEXT NOT NULL,
    category      TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    links         TEXT NOT NULL DEFAULT '[]',   -- JSON array of URLs (videos, pages)
    status        TEXT NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'published', 'retired')),
    source_ticket INTEGER,                -- the ticket a `#kb propose` came from
    proposed_by   TEXT,                   -- agent name
    reviewed_by   TEXT,                   -- admin who approved or rejected
    review_note   TEXT,                   -- a rejection's reason
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX kb_articles_status ON kb_articles (status, language);

-- Files carried by an article (images, PDFs), stored beside it in the database.
CREATE TABLE kb_files (
    id           INTEGER PRIMARY KEY,
    article_id   INTEGER NOT NULL REFERENCES kb_articles (id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    data         BLOB NOT NULL,
    UNIQUE (article_id, name)
) STRICT;

-- `#kb request <topic>`: what agents looked for and did not find.
CREATE TABLE kb_requests (
    id         INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    topic_key  TEXT NOT NULL,             -- lowercased, whitespace folded: counts group by it
    ticket_id  INTEGER,
    agent      TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX kb_requests_key ON kb_requests (topic_key);

-- The bot's answer on a ticket: the article and its normalised score; `handoff` is the
-- reason a person took over (asked, not_helped, wrote_again, low_confidence, ...).
ALTER TABLE tickets ADD COLUMN bot_article INTEGER;
ALTER TABLE tickets ADD COLUMN bot_score REAL;
ALTER TABLE tickets ADD COLUMN bot_at TEXT;
ALTER TABLE tickets ADD COLUMN handoff TEXT;
ALTER TABLE tickets ADD COLUMN handoff_at TEXT;
-- The classifier's guess of the category for the ticket's first message.
ALTER TABLE tickets ADD COLUMN predicted_category TEXT;

-- `#wrong <category>`: an agent's correction, stored with the message it corrects.
CREATE TABLE corrections (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL,
    message_id INTEGER,
    agent      TEXT NOT NULL,
    predicted  TEXT,
    correct    TEXT NOT NULL,
    text       TEXT NOT NULL,             -- the customer text the classifier learns from
    language   TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX corrections_ticket ON corrections (ticket_id);

-- The naive Bayes model: token counts per category, and documents and tokens per category.
CREATE TABLE classifier_tokens (
    category TEXT NOT NULL,
    token    TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (category, token)
) STRICT, WITHOUT ROWID;
CREATE TABLE classifier_categories (
    category TEXT PRIMARY KEY,
    docs     INTEGER NOT NULL,
    tokens   INTEGER NOT NULL
) STRICT;

-- Customer profiles: imported attributes and agents' notes.
ALTER TABLE customers ADD COLUMN company TEXT;
ALTER TABLE customers ADD COLUMN plan TEXT;
ALTER TABLE customers ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';   -- custom fields, JSON
-- 'agent' or 'import' once a person set the language; detection no longer changes it.
ALTER TABLE customers ADD COLUMN language_source TEXT;
CREATE TABLE customer_notes (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    agent       TEXT NOT NULL,
    ticket_id   INTEGER,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX customer_notes_customer ON customer_notes (customer_id);

-- `#feedback <text>`: agents' pain points and ideas, with their context.
CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY,
    agent      TEXT NOT NULL,
    ticket_id  INTEGER,
    text       TEXT NOT NULL,
    theme      TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX feedback_created ON feedback (created_at);

-- Periodic reports sent (the monthly admin report), one per recipient and period.
CREATE TABLE reports_sent (
    kind      TEXT NOT NULL,
    recipient TEXT NOT NULL,
    period    TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (kind, recipient, period)
) STRICT;
