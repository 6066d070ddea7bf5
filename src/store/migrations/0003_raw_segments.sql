-- Raw bytes move out of the database into append-only segment files (store/rawstore.rs).
-- A row with `seg` set has its bytes at (seg, seg_offset, seg_len) and an empty `data`;
-- rows written before this migration keep their bytes in `data`.
ALTER TABLE raw_messages ADD COLUMN seg INTEGER;
ALTER TABLE raw_messages ADD COLUMN seg_offset INTEGER;
ALTER TABLE raw_messages ADD COLUMN seg_len INTEGER;

-- Two indexes no query uses, each updated at random places by every inserted row: content
-- dedup compares body_sha256 only among messages found by Message-ID, and participants
-- are always looked up by ticket.
DROP INDEX messages_body;
DROP INDEX participants_email;
