-- switchboard's storage. Times are unix milliseconds (UTC). Ids are integers, shown to
-- clients as opaque strings. Idempotency lives in the unique indexes below.

-- Live state of every service switchboard has run. The definition (type, params) comes
-- from the config or the hub; this row keeps what the API and `switchboard services`
-- show when the daemon is down.
CREATE TABLE services (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    name          TEXT,
    status        TEXT NOT NULL,
    organization  TEXT NOT NULL,
    state         TEXT NOT NULL,           -- ConnState as JSON
    state_since   INTEGER NOT NULL,
    last_error    TEXT,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    service_id   TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    name         TEXT,
    email        TEXT,
    phone        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (service_id, external_id)
) STRICT;

CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    service_id       TEXT NOT NULL,
    organization     TEXT NOT NULL,
    contact_id       INTEGER NOT NULL REFERENCES contacts (id),
    external_id      TEXT,
    status           TEXT NOT NULL DEFAULT 'open',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_message_at  INTEGER
) STRICT;
-- A provider's thread id names one conversation per service.
CREATE UNIQUE INDEX conversations_external
    ON conversations (service_id, external_id) WHERE external_id IS NOT NULL;
-- Without a thread id, a contact has at most one open conversation.
CREATE UNIQUE INDEX conversations_open_per_contact
    ON conversations (contact_id) WHERE external_id IS NULL AND status = 'open';
CREATE INDEX conversations_org ON conversations (organization, id);

CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id),
    service_id       TEXT NOT NULL,
    direction        TEXT NOT NULL,         -- inbound | outbound
    external_id      TEXT,                  -- the provider's id
    idempotency_key  TEXT,                  -- the API client's key (outbound)
    text             TEXT,
    attachments      TEXT,                  -- JSON array; NULL when none
    author_type      TEXT NOT NULL,
    author_name      TEXT,
    status           TEXT NOT NULL,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
-- A provider's retry of an inbound message is a no-op: this is the dedupe key.
CREATE UNIQUE INDEX messages_external
    ON messages (service_id, direction, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency
    ON messages (conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_conversation ON messages (conversation_id, id);

-- The append-only event log; `seq` is the stream position.
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    type             TEXT NOT NULL,
    organization     TEXT NOT NULL,
    service_id       TEXT,
    conversation_id  INTEGER,
    created_at       INTEGER NOT NULL,
    data             TEXT NOT NULL          -- JSON
) STRICT;
CREATE INDEX events_org ON events (organization, seq);

-- Durable deliveries: outbound messages to their service's connector, events to webhook
-- services. Rows with the same queue_key go one at a time in id order: only the oldest
-- live row of a queue is `ready` (1); the rest are `queued` (0) behind it. Delivered rows
-- are deleted; dead ones (3) are kept for inspection.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    service_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,         -- message | event
    ref_id           INTEGER NOT NULL,      -- messages.id or events.seq
    queue_key        TEXT NOT NULL,
    state            INTEGER NOT NULL,      -- 0 queued, 1 ready, 3 dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    last_error       TEXT
) STRICT;
CREATE UNIQUE INDEX outbox_once ON outbox (service_id, kind, ref_id);
CREATE INDEX outbox_ready ON outbox (service_id, next_attempt_at) WHERE state = 1;
CREATE INDEX outbox_live ON outbox (service_id, queue_key, id) WHERE state < 2;

-- Receipts that arrived before the send that they confirm was recorded (a provider can
-- call back faster than we store its answer); applied when the external id is stored.
CREATE TABLE early_receipts (
    service_id   TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (service_id, external_id, status)
) STRICT, WITHOUT ROWID;

-- Per-service sync state: cursors, tokens.
CREATE TABLE sync_state (
    service_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (service_id, key)
) STRICT, WITHOUT ROWID;
