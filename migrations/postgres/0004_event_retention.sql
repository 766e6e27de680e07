-- As migrations/0004_event_retention.sql.
CREATE TABLE event_horizon (
    organization    TEXT PRIMARY KEY,
    pruned_through  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
