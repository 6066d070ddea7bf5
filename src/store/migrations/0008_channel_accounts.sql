-- Issue 15: a channel account whose credentials the platform refused is disabled until
-- its token changes: the reason, when, and a fingerprint of the refused token.
ALTER TABLE channel_cursors ADD COLUMN disabled_at TEXT;
ALTER TABLE channel_cursors ADD COLUMN disabled_reason TEXT;
ALTER TABLE channel_cursors ADD COLUMN disabled_token TEXT;
