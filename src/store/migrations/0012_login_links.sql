-- Issue 16: one-time dashboard login links (`postdesk agent link NAME`): only the SHA-256
-- of the link's token is kept; a link works once, until it expires.
CREATE TABLE login_links (
    token_sha256 TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;
