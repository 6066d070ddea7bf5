-- Issue 16: the web dashboard's logins.

-- An agent's dashboard password (`postdesk agent password NAME`), as an argon2id PHC string.
CREATE TABLE agent_passwords (
    agent  TEXT PRIMARY KEY,
    hash   TEXT NOT NULL,
    set_at TEXT NOT NULL
) STRICT;

-- Dashboard sessions: only the SHA-256 of the cookie's token is kept.
CREATE TABLE web_sessions (
    token_sha256 TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
