-- PINs are now stored as an HMAC with a secret kept in the data dir, not a bare SHA-256: keys
-- made before cannot be found any more, so they are dropped. Keys are no longer burnt by wrong
-- guesses (a wrong PIN names no key); keys disabled that way count as used.
DELETE FROM session_keys WHERE state = 'live' AND id NOT IN (SELECT key_id FROM sessions WHERE key_id IS NOT NULL);
UPDATE session_keys SET state = 'used' WHERE state = 'burnt';
CREATE INDEX session_keys_agent_live ON session_keys(agent_id, state, expires_at);
