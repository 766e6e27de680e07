-- As migrations/0006_hook_nonces.sql.
CREATE TABLE hook_nonces (
    service_id  TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX hook_nonces_value ON hook_nonces (service_id, nonce);
CREATE INDEX hook_nonces_expiry ON hook_nonces (service_id, expires_at);
