-- How far event retention (`storage.event_retention`) has pruned each organization's
-- events: a /v1/events client resuming from before `pruned_through` may have missed
-- events that are gone, and the stream tells it so. No index is needed for the pruning
-- itself: it walks `events` by seq and asks `outbox_once` (0002) whether a delivery
-- still holds each one.
CREATE TABLE event_horizon (
    organization    TEXT PRIMARY KEY,
    pruned_through  INTEGER NOT NULL,      -- the highest seq pruned
    updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
