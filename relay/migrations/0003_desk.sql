-- The support desk: display names, disabled agents, teams, team keys, and sessions that start in
-- a queue with no agent yet.
ALTER TABLE agents ADD COLUMN display_name TEXT;
ALTER TABLE agents ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    PRIMARY KEY (team_id, agent_id)
);

-- A key sends its customer to an agent's queue or to a team's; the agent who made a team key,
-- if an agent did, is kept. Tables are rebuilt child first so foreign keys hold throughout.
CREATE TABLE session_keys_new (
    id INTEGER PRIMARY KEY,
    pin_hash BLOB NOT NULL,
    agent_id INTEGER REFERENCES agents(id),
    team_id INTEGER REFERENCES teams(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('live', 'used')),
    used_at INTEGER,
    CHECK (agent_id IS NOT NULL OR team_id IS NOT NULL)
);
INSERT INTO session_keys_new (id, pin_hash, agent_id, created_at, expires_at, state, used_at)
    SELECT id, pin_hash, agent_id, created_at, expires_at,
           CASE state WHEN 'live' THEN 'live' ELSE 'used' END, used_at
    FROM session_keys;

CREATE TABLE sessions_new (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    key_id INTEGER REFERENCES session_keys_new(id),
    customer TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    end_reason TEXT
);
INSERT INTO sessions_new (id, public_id, origin, key_id, customer, started_at, ended_at, end_reason)
    SELECT s.id, s.public_id, 'personal queue of ' || a.name, s.key_id, s.customer, s.started_at,
           s.ended_at, s.end_reason
    FROM sessions s JOIN agents a ON a.id = s.agent_id;

DROP TABLE sessions;
DROP TABLE session_keys;
ALTER TABLE session_keys_new RENAME TO session_keys;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX session_keys_pin ON session_keys(pin_hash);
CREATE INDEX session_keys_live ON session_keys(state, expires_at);
CREATE INDEX session_keys_agent_live ON session_keys(agent_id, state, expires_at);
CREATE INDEX session_keys_team_live ON session_keys(team_id, state, expires_at);
CREATE INDEX sessions_started ON sessions(started_at);
CREATE INDEX audit_events_session ON audit_events(session);
