-- As migrations/0005_desks.sql.
ALTER TABLE conversations ADD COLUMN desk_id TEXT;
ALTER TABLE desk_links ADD COLUMN ended_at BIGINT;
