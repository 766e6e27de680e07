-- As migrations/0002: the once-per-(service, item) index led by the item.
CREATE UNIQUE INDEX outbox_once ON outbox (kind, ref_id, service_id);
