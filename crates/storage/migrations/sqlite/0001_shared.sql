-- Outbox: events written in the same transaction as the state change that caused them.
CREATE TABLE outbox (
    outbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BLOB NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    claimed_by BLOB,
    claimed_until TEXT
);

-- Inbox: ids of events a consumer group has handled, written with the handler's effects.
CREATE TABLE inbox (
    group_name TEXT NOT NULL,
    event_id BLOB NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (group_name, event_id)
);

-- Responses of writes made with an Idempotency-Key, replayed for a retry with the same key.
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
