-- One-time values that authenticate a provider's request (Mailgun's `token`): a request
-- whose nonce is here is a replay. Recorded in the same transaction as what the request
-- stores, so two concurrent deliveries cannot both pass and a failed one leaves its
-- nonce free for the provider's retry. Rows past `expires_at` (the signature's window)
-- are pruned on the next insert of the same service.
CREATE TABLE hook_nonces (
    service_id  TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL      -- unix ms
) STRICT;
CREATE UNIQUE INDEX hook_nonces_value ON hook_nonces (service_id, nonce);
CREATE INDEX hook_nonces_expiry ON hook_nonces (service_id, expires_at);
