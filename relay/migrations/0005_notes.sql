-- The representatives' notes on a session, as last saved.
CREATE TABLE session_notes (
    session TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    by_agent TEXT NOT NULL,
    at INTEGER NOT NULL
);
