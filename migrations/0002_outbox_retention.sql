-- Event retention (`storage.event_retention`) asks, for each old event, whether an
-- outbox row still delivers it: lead the once-per-(service, item) index with the item,
-- so that question is one index lookup. Uniqueness is unchanged.
DROP INDEX outbox_once;
CREATE UNIQUE INDEX outbox_once ON outbox (kind, ref_id, service_id);
