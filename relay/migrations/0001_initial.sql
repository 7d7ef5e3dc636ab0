CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE session_keys (
    id INTEGER PRIMARY KEY,
    pin_hash BLOB NOT NULL,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('live', 'used', 'burnt')),
    wrong_guesses INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER
);
CREATE INDEX session_keys_pin ON session_keys(pin_hash);
CREATE INDEX session_keys_live ON session_keys(state, expires_at);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    key_id INTEGER REFERENCES session_keys(id),
    customer TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    end_reason TEXT
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    session TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT
);
CREATE INDEX audit_events_at ON audit_events(at);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
