-- Desks (issue 16). A conversation remembers the desk its messages were last routed to
-- (the channel's `desk`, which a reload may change); `/v1` shows it with the desk's id
-- for it, the latest desk link's. A link ends when the desk resolves its conversation:
-- the desk then opens a new one for the next message instead of reusing it.
ALTER TABLE conversations ADD COLUMN desk_id TEXT;
ALTER TABLE desk_links ADD COLUMN ended_at INTEGER;
