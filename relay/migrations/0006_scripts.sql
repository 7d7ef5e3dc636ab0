-- Canned messages and addresses, for a team or for one agent.
CREATE TABLE scripts (
    id INTEGER PRIMARY KEY,
    team TEXT,
    agent TEXT,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    CHECK ((team IS NULL) != (agent IS NULL))
);
