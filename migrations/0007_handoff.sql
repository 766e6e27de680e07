-- Handoffs (issue 17). A bot desk hands a conversation on to another desk (or to our
-- own agents): the conversation then keeps that desk whatever its channel's `desk`
-- says (`handed_off`), until it closes. `handoff_due_at` is the `handoff_after` timer,
-- stored so that it survives a restart: set by a contact message the desk has not
-- answered, cleared by the desk's answer, fired by housekeeping.
ALTER TABLE conversations ADD COLUMN handed_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN handoff_due_at INTEGER;
CREATE INDEX conversations_handoff_due ON conversations (handoff_due_at)
    WHERE handoff_due_at IS NOT NULL;
CREATE TABLE handoffs (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id),
    from_desk        TEXT,              -- null: switchboard's own agents
    to_desk          TEXT,              -- null: switchboard's own agents
    reason           TEXT NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX handoffs_conversation ON handoffs (conversation_id, id);
