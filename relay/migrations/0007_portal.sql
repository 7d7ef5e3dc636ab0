-- The portal: problem types per team for the issue form, and tickets. A ticket is a key row
-- whose secret is 20 base32 characters; `ticket` holds what the customer wrote (JSON).
CREATE TABLE issue_types (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    UNIQUE (team_id, title)
);
ALTER TABLE session_keys ADD COLUMN ticket TEXT;
CREATE INDEX session_keys_tickets_live ON session_keys(state, expires_at) WHERE ticket IS NOT NULL;
