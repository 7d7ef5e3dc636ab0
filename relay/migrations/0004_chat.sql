-- Each session's chat log: messages with their audience and status notes, in order.
CREATE TABLE chat_lines (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    line TEXT NOT NULL,
    UNIQUE (session, seq)
);
CREATE INDEX chat_lines_session ON chat_lines (session, seq);
