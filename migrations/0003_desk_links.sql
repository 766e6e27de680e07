-- Which desk conversation answers which of our conversations. A desk stores the link,
-- and waits for the commit, before it posts anything that depends on it: after a crash
-- or a retry it finds the link instead of opening a second desk conversation. A
-- conversation may be linked again (its desk conversation was resolved and a new one
-- opened); the latest link answers it, and older desk ids still find it.
CREATE TABLE desk_links (
    id                    INTEGER PRIMARY KEY,
    desk_id               TEXT NOT NULL,      -- the desk service
    conversation_id       INTEGER NOT NULL REFERENCES conversations (id),
    desk_conversation_id  TEXT NOT NULL,      -- the desk's id for the conversation
    desk_contact_id       TEXT,               -- the desk's id for its contact
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX desk_links_external ON desk_links (desk_id, desk_conversation_id);
CREATE INDEX desk_links_conversation ON desk_links (desk_id, conversation_id, id);
