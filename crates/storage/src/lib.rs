//! Storage adapters over sqlx: one `Db` handle that is either SQLite (embedded mode) or
//! PostgreSQL (distributed mode), migrations, and the outbox, inbox and idempotency tables every
//! service shares. Queries are written once with `$n` placeholders; the two backends differ only
//! where a dialect forces it, in the smallest place possible.

pub mod consume;
mod db;
mod group_commit;
pub mod idempotency;
pub mod inbox;
mod migrate;
pub mod outbox;
mod repo;

pub use consume::{Transactional, TxCounts, TxHandler};
pub use db::{is_unavailable, is_unique_violation, Arg, Backend, Db, StorageError, Tx, TxConn};
pub use group_commit::{GroupCommit, GroupCommitError};
pub use migrate::{migrate, Migration};
pub use repo::RepoError;

/// Runs `$body` with `$conn` bound to the backend-specific connection (or pool) of a `Db` or
/// `Tx`: the same SQL text and binds type-check once per backend.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite { writer: $conn, .. } => $body,
            $crate::Db::Postgres($conn) => $body,
        }
    };
}

/// Like [`with_db!`] but reads from SQLite's reader pool, so queries never wait for the writer.
#[macro_export]
macro_rules! with_reader {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite { reader: $conn, .. } => $body,
            $crate::Db::Postgres($conn) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the open transaction's connection.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut ($tx).conn {
            $crate::TxConn::Sqlite(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::TxConn::Postgres(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
        }
    };
}

/// `sql` with every `$n` placeholder outside quoted text raised by `offset`. SQLite runs a
/// query of several statements in one trip to the connection's thread and binds `$n` to the
/// n-th argument in every one of them, so statements written with their own `$1…` are joined
/// by moving each one's placeholders past the arguments of those before it.
pub fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    push_renumbered(&mut out, sql, offset);
    out
}

/// [`renumbered`] appended to `out`. Scans bytes and copies the text between placeholders
/// whole: every byte it looks for (`$`, quotes, digits) is ASCII, which never occurs inside a
/// multi-byte UTF-8 character, so the slices it copies are whole characters.
fn push_renumbered(out: &mut String, sql: &str, offset: usize) {
    use std::fmt::Write as _;
    let bytes = sql.as_bytes();
    let mut copied = 0;
    let mut quote: Option<u8> = None;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        at += 1;
        match quote {
            // A doubled quote inside a literal closes and reopens it: the same as staying in.
            Some(open) if b == open => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && bytes.get(at).is_some_and(u8::is_ascii_digit) => {
                out.push_str(&sql[copied..at]);
                let mut n = 0usize;
                while let Some(digit) = bytes.get(at).filter(|d| d.is_ascii_digit()) {
                    n = n * 10 + usize::from(digit - b'0');
                    at += 1;
                }
                write!(out, "{}", n + offset).expect("writing to a String cannot fail");
                copied = at;
            }
            None => {}
        }
    }
    out.push_str(&sql[copied..]);
}

/// Statements written with their own `$1…`, each `(sql, params)`, as one query: each one's
/// placeholders are moved past the arguments of those before it (see [`renumbered`]).
pub fn joined<'a>(statements: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    let mut sql = String::new();
    let mut params = 0;
    for (statement, count) in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        push_renumbered(&mut sql, statement, params);
        params += count;
    }
    sql
}

/// The condition "`column` is one of the ids of a [`hex_list`] of one id per row bound at
/// `$param`": a batch's ids travel as one bound JSON text instead of one placeholder each.
/// On PostgreSQL the list is made an array first (`= ANY (ARRAY(…))`), which the planner
/// estimates at ten ids and looks up in the column's index; as `IN (SELECT … FROM
/// jsonb_array_elements(…))` it estimated a hundred and, below some tens of thousands of rows,
/// read the whole table once per batch instead (BENCHMARKS.md, eleventh run), and under an
/// `OR` it always does.
pub fn id_among(backend: Backend, column: &str, param: usize) -> String {
    match backend {
        Backend::Sqlite => {
            format!("{column} IN (SELECT unhex(value ->> 0) FROM json_each(${param}))")
        }
        Backend::Postgres => format!(
            "{column} = ANY (ARRAY(SELECT (value ->> 0)::uuid FROM jsonb_array_elements(${param}::jsonb)))"
        ),
    }
}

/// How the keys of a JSON list bound as a parameter are read: `[[hex], …]` uuids
/// ([`hex_list`]) or `[[text], …]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedKey {
    Uuid,
    Text,
}

/// `SELECT {select} FROM {table} WHERE {key}` is one of the keys listed at `$param` (and
/// `also`, when given), for a `key` unique in `table` (among the rows `also` keeps): a batch's
/// lookup of the rows it names.
///
/// On PostgreSQL each listed key is its own index probe (a lateral subquery with `LIMIT 1`,
/// aliased `{table}` so that `select` reads as if from the table), whatever the table's
/// statistics say. As one condition over the list ([`id_among`]), a prepared statement's
/// generic plan — made after its fifth run, while the tables of a new deployment are still a
/// few pages — read the whole table for every batch until autovacuum next analyzed it, by then
/// thousands of rows per lookup (BENCHMARKS.md, thirteenth run). On SQLite the list is the
/// right side of an `IN`, which is looked up in the key's index.
pub fn select_by_unique_keys(
    backend: Backend,
    select: &str,
    table: &str,
    key: &str,
    listed: ListedKey,
    param: usize,
    also: Option<&str>,
) -> String {
    let also = also
        .map(|condition| format!(" AND {condition}"))
        .unwrap_or_default();
    match backend {
        Backend::Sqlite => {
            let value = match listed {
                ListedKey::Uuid => "unhex(value ->> 0)",
                ListedKey::Text => "value ->> 0",
            };
            format!(
                "SELECT {select} FROM {table} \
                 WHERE {key} IN (SELECT {value} FROM json_each(${param})){also}"
            )
        }
        Backend::Postgres => {
            let cast = match listed {
                ListedKey::Uuid => "::uuid",
                ListedKey::Text => "",
            };
            format!(
                "SELECT {select} FROM jsonb_array_elements(${param}::jsonb) AS listed_key \
                 CROSS JOIN LATERAL (SELECT * FROM {table} \
                 WHERE {key} = (listed_key.value ->> 0){cast}{also} LIMIT 1) AS {table}"
            )
        }
    }
}

/// What a batch looked up by id: every id it asked about, with what was found for it (`None`:
/// nothing), so that "found nothing" is told apart from "did not ask".
pub fn looked_up(
    asked: &[uuid::Uuid],
    found: impl IntoIterator<Item = (uuid::Uuid, uuid::Uuid)>,
) -> std::collections::HashMap<uuid::Uuid, Option<uuid::Uuid>> {
    let mut looked_up: std::collections::HashMap<_, _> =
        asked.iter().map(|id| (*id, None)).collect();
    for (id, value) in found {
        looked_up.insert(id, Some(value));
    }
    looked_up
}

/// `[[hex, …], …]`: ids as bare hex, which SQLite turns into its 16-byte blobs (`unhex`) and
/// PostgreSQL parses as uuids.
pub fn hex_list<const N: usize>(rows: impl Iterator<Item = [uuid::Uuid; N]>) -> String {
    let rows: Vec<Vec<String>> = rows
        .map(|ids| ids.iter().map(|id| id.simple().to_string()).collect())
        .collect();
    serde_json::to_string(&rows).expect("strings serialize to JSON")
}

/// An id in a JSON list of rows, as bare hex: SQLite stores it as its 16-byte blob
/// (`unhex`), PostgreSQL parses it as a uuid. Serialized without a `String` of its own.
pub struct Hex(pub uuid::Uuid);

impl serde::Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(
            self.0
                .simple()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        )
    }
}

/// A time in a JSON list of rows, as the text sqlx writes for a `DateTime<Utc>` on SQLite, so
/// that a row written from a list reads back, and compares as text, like one written with a
/// bound time (SQLite keeps times as text); PostgreSQL parses it.
pub struct Stamp(pub chrono::DateTime<chrono::Utc>);

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
    }
}

/// The long texts of a list's rows (envelopes), bound as one BLOB beside the JSON list that
/// names them: a row carries its text's 1-based byte offset and length in place of the text,
/// and the statement cuts it out (SQLite `CAST(substr($n, offset, length) AS TEXT)`,
/// PostgreSQL `convert_from(substring($n FROM offset FOR length), 'UTF8')`). Inside the JSON
/// list every quote of an envelope was escaped on the way in and the database parsed,
/// re-rendered and unescaped the text again, row by row and hop by hop: that was ~7% of the
/// platform's instructions a saga, and a fifth of them under a backlog (BENCHMARKS.md,
/// eighteenth run).
#[derive(Debug, Default)]
pub struct Texts {
    bytes: Vec<u8>,
}

impl Texts {
    /// Adds the text `write` writes (serialized straight into the BLOB, with no `String` of
    /// its own) and returns where its row finds it: `(offset, length)`.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> (usize, usize) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        (start + 1, self.bytes.len() - start)
    }

    /// The BLOB to bind.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Rows as one JSON list, bound as one parameter: a batch's writes as statements of fixed
/// text. On SQLite each list is read as `WITH listed AS MATERIALIZED (SELECT key, jsonb(value)
/// AS r FROM json_each($n))`: `json_each` hands out an object as text, which every `value ->>
/// …` would rebuild from the whole row and parse again; made JSONB once, each read is a
/// look-up (BENCHMARKS.md, fourteenth run).
pub fn json_list<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::{joined, renumbered};

    #[test]
    fn placeholders_move_and_quoted_text_stays() {
        assert_eq!(
            renumbered(
                "SELECT $1, json_extract(v, '$[0]'), \"$2\", $10 FROM t WHERE a = $2 AND b = 'it''s $3'",
                11
            ),
            "SELECT $12, json_extract(v, '$[0]'), \"$2\", $21 FROM t WHERE a = $13 AND b = 'it''s $3'"
        );
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumbered("SELECT 1 -- $ alone", 4), "SELECT 1 -- $ alone");
        // Text around the placeholders is copied whole, multi-byte characters included.
        assert_eq!(
            renumbered("SELECT 'año $1', $1||$9 AS ñandú, $1$2 -- é$", 9),
            "SELECT 'año $1', $10||$18 AS ñandú, $10$11 -- é$"
        );
    }

    #[test]
    fn joined_statements_take_their_arguments_in_turn() {
        assert_eq!(
            joined([("INSERT INTO t VALUES ($1, $2)", 2), ("UPDATE u SET a = $1", 1), ("DELETE FROM v WHERE b = $2 OR c = $1", 2)]),
            "INSERT INTO t VALUES ($1, $2);\nUPDATE u SET a = $3;\nDELETE FROM v WHERE b = $5 OR c = $4"
        );
        assert_eq!(joined([]), "");
    }
}
