//! Durable state in SQLite: rooms, peers (with token hashes) and per-recipient message queues.
//!
//! Every public function is one transaction. Functions that enqueue messages return the
//! `(recipient, seq)` pairs so the caller can wake long-polls after the commit.

use std::sync::{Mutex, MutexGuard};

use callroom_protocol::{HostReset, LeaveReason, MessageKind, PeerInfo, PeerLeft, Role, Topology};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// What the store refuses, or fails with. Handlers turn it into an `StoreError` with `?`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The recipient is not a peer of the sender's room.
    #[error("no peer `{0}` in this room")]
    PeerNotFound(String),
    /// The recipient has too many unacknowledged messages (this many at most), or bytes.
    #[error("the recipient is {0} messages behind")]
    RecipientBacklog(u64),
    /// The database holds this many bytes, the server's storage budget.
    #[error("the server's message storage is full ({0} bytes)")]
    StorageFull(u64),
    /// The topology does not link sender and recipient.
    #[error(
        "in a {} room, a {} may not message a {}",
        topology.as_str(),
        from.as_str(),
        to.as_str()
    )]
    NotLinked {
        /// The room's topology.
        topology: Topology,
        /// The sender's role.
        from: Role,
        /// The recipient's role.
        to: Role,
    },
    /// The role does not fit the room's topology.
    #[error("room `{room}` is a {} room; role `{}` cannot join it", topology.as_str(), role.as_str())]
    RoleMismatch {
        /// Room id.
        room: String,
        /// The room's topology.
        topology: Topology,
        /// The requested role.
        role: Role,
    },
    /// The room exists with another topology than the join asked for (or its role implies).
    #[error(
        "room `{room}` is a {} room; join it with topology `{}`",
        topology.as_str(),
        topology.as_str()
    )]
    TopologyMismatch {
        /// Room id.
        room: String,
        /// The room's topology.
        topology: Topology,
    },
    /// The room is at capacity.
    #[error("room is full ({0} peers)")]
    RoomFull(u32),
    /// A live host holds the hub's seat and the join brought no proof to take it.
    #[error("this hub has a live host")]
    HostTaken,
    /// Messages after `since` expired unread.
    #[error("messages after cursor {0} expired unread; join again")]
    CursorExpired(u64),
    /// `since` is ahead of anything sent to this peer.
    #[error("cursor {since} is ahead of the last message {last}")]
    CursorAhead {
        /// Requested cursor.
        since: u64,
        /// Last sequence number issued.
        last: u64,
    },
    /// SQLite failed, or holds something this version cannot read.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// An event could not be encoded.
    #[error("encoding event: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Who to wake after a commit: recipient peer id and the seq it now has.
pub type Wake = (String, u64);

/// Messages returned by one poll at most; the cursor lets the client fetch the rest.
pub const POLL_BATCH: u32 = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rooms (
    id            TEXT PRIMARY KEY,
    topology      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    -- A hub's current host reclaim key (hashed): proof to take its seat while it is held.
    host_key_hash BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replaced_tokens (
    token_hash BLOB PRIMARY KEY,
    until      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS peers (
    id         TEXT PRIMARY KEY,
    room       TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    joined_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS peers_by_room ON peers(room);
CREATE TABLE IF NOT EXISTS messages (
    recipient  TEXT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    sender     TEXT,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (recipient, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_age ON messages(created_at);
CREATE TABLE IF NOT EXISTS used_tickets (
    jti_hash   BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Bumped when the schema changes; an older database's signaling state is dropped (it is
/// short-lived by nature: peers time out in seconds).
const SCHEMA_VERSION: i64 = 2;

/// The SQLite settings in force, for logs and the benchmark.
pub const PRAGMAS: &[(&str, &str)] = &[
    ("journal_mode", "WAL"),
    // With WAL, NORMAL keeps every committed message across a process crash or restart;
    // only an OS crash or power loss can drop the last commits.
    ("synchronous", "NORMAL"),
    ("foreign_keys", "ON"),
    ("busy_timeout", "5000"),
    // Checkpoints (which fsync) run on a background connection every second; this high mark
    // is only a safety net so they stay out of request paths.
    ("wal_autocheckpoint", "10000"),
    // After a flood, the WAL goes back to at most this size once checkpointed.
    ("journal_size_limit", "16777216"),
];

/// Free pages given back to the file system per checkpoint tick (8 MiB of 4 KiB pages), so a
/// database a flood grew shrinks back within minutes, in steps of [`VACUUM_STEP_PAGES`] with
/// requests let in between.
const VACUUM_PAGES_PER_TICK: u32 = 2048;
const VACUUM_STEP_PAGES: u32 = 256;

/// The database, one connection behind a mutex. Each operation is a short transaction
/// (tens of microseconds; no fsync per commit under WAL + NORMAL), so holding the lock
/// on an async worker is cheaper than hopping to a blocking thread.
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection for WAL checkpoints, which then never block requests
    /// (`None` for an in-memory database, which has no WAL).
    checkpointer: Option<Mutex<Connection>>,
    /// Write transactions so far (a sweep's batches show here).
    transactions: std::sync::atomic::AtomicU64,
}

/// Most rows one sweep transaction removes: the lock is given up between batches, so
/// requests wait at most one batch (a few milliseconds) whatever a sweep has to do.
pub const SWEEP_BATCH: usize = 100;

/// An authenticated peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Peer id.
    pub id: String,
    /// Its room.
    pub room: String,
    /// Its role.
    pub role: Role,
    /// The room's topology.
    pub topology: Topology,
}

/// How far behind a recipient may fall, and how large the database may grow, before relays
/// are refused. Counted from the database, so it holds across restarts and for recipients
/// that never polled.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    /// The recipient's last acknowledged cursor, if known in this process (what it has
    /// acknowledged is deleted soon; until then it does not count).
    pub acknowledged: Option<u64>,
    /// Most unacknowledged messages allowed.
    pub max: u64,
    /// Most bytes of unacknowledged payloads allowed.
    pub max_bytes: u64,
    /// Most bytes the database may hold (its used pages) for a relay to be stored.
    pub max_storage: u64,
}

/// What a host join brings to take a hub's seat while a live host holds it, and what it
/// leaves behind.
#[derive(Debug, Clone, Copy)]
pub struct HostClaim<'a> {
    /// The join carried a valid ticket for the host role.
    pub ticket: bool,
    /// The hash of the reclaim key it brought, if any.
    pub key_hash: Option<&'a [u8]>,
    /// The hash of the new reclaim key handed to this host.
    pub new_key_hash: &'a [u8],
    /// Until when a replaced host's token is answered `replaced` (unix ms).
    pub replaced_until: i64,
}

/// Who in a room gets a server event.
#[derive(Debug, Clone, Copy)]
pub enum Recipients<'a> {
    /// Everyone but this peer.
    AllBut(&'a str),
    /// Only this peer.
    Only(&'a str),
}

/// A hub host that a newer host replaced.
#[derive(Debug)]
pub struct Replaced {
    /// Its peer id.
    pub peer_id: String,
    /// The hash of its token, so its next call can be told why it no longer works.
    pub token_hash: Vec<u8>,
}

/// What a join produced.
#[derive(Debug)]
pub struct Joined {
    /// The new peer.
    pub peer: PeerInfo,
    /// The room's topology.
    pub topology: Topology,
    /// Everyone else in the room.
    pub others: Vec<PeerInfo>,
    /// The host this join replaced, if a hub host rejoined.
    pub replaced: Option<Replaced>,
    /// A host join proved its seat with the current reclaim key, which stays in force.
    pub key_kept: bool,
    /// Recipients of `peer-joined` / `host-reset`.
    pub wake: Vec<Wake>,
}

/// One stored message, payload kept as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Per-recipient sequence number.
    pub seq: u64,
    /// Message type.
    pub kind: String,
    /// Sender, `None` for server events.
    pub from: Option<String>,
    /// JSON text.
    pub payload: String,
}

/// What a sweep removed.
#[derive(Debug, Default)]
pub struct Swept {
    /// Peers removed for silence.
    pub timed_out: Vec<String>,
    /// Recipients of the resulting `peer-left` events.
    pub wake: Vec<Wake>,
    /// Messages dropped for age.
    pub expired_messages: usize,
}

/// Reads column `i` as one of the protocol's words; a word this version does not know is a
/// database error, never a silent default.
fn word<T>(row: &rusqlite::Row<'_>, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown word `{text}`").into(),
        )
    })
}

/// Between two sweep batches: a request waiting for the lock gets it (a released mutex may
/// otherwise go straight back to the thread that released it).
fn yield_to_requests() {
    std::thread::sleep(std::time::Duration::from_millis(1));
}

/// Bytes in the database's pages that hold data (free pages not counted).
fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        [],
        |r| r.get(0),
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

impl Store {
    /// Opens (or creates) the database at `path`; `:memory:` gives a throwaway one.
    pub fn open(path: &str) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        // Free pages can go back to the file system (`incremental_vacuum` at each checkpoint);
        // set before any table exists, or converted once by a VACUUM.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
        if conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? != 2 {
            conn.execute_batch("VACUUM")?;
        }
        for (name, value) in PRAGMAS {
            // journal_mode answers with a row; the others with none.
            conn.query_row(&format!("PRAGMA {name} = {value}"), [], |_| Ok(()))
                .optional()?;
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(
                "DROP TABLE IF EXISTS messages; DROP TABLE IF EXISTS peers; DROP TABLE IF EXISTS rooms;
                 DROP TABLE IF EXISTS replaced_tokens;",
            )?;
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        let checkpointer = if path == ":memory:" {
            None
        } else {
            let conn = Connection::open(path)?;
            // Its vacuum writes wait for a request's short transaction rather than failing.
            conn.pragma_update(None, "busy_timeout", 1000)?;
            conn.pragma_update(None, "journal_size_limit", 16_777_216)?;
            Some(Mutex::new(conn))
        };
        Ok(Self {
            conn: Mutex::new(conn),
            checkpointer,
            transactions: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Moves the WAL into the database file without blocking readers or writers.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        if let Some(conn) = &self.checkpointer {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            for _ in 0..VACUUM_PAGES_PER_TICK / VACUUM_STEP_PAGES {
                let free: u32 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                if free == 0 {
                    break;
                }
                // Each row frees one page: run the statement to its end.
                let mut vacuum =
                    conn.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
                let mut rows = vacuum.query([])?;
                while rows.next()?.is_some() {}
                drop(rows);
                drop(vacuum);
                yield_to_requests();
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (rusqlite rolls back
        // on drop), so the connection is still consistent.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        self.transactions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Write transactions run so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `sql` (a `DELETE` of at most `?2` rows, `?1` bound to `bound`) batch after batch
    /// until it deletes fewer; the total.
    fn delete_in_batches(&self, sql: &str, bound: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.write(|tx| Ok(tx.execute(sql, params![bound, SWEEP_BATCH])?))?;
            total += deleted;
            if deleted < SWEEP_BATCH {
                return Ok(total);
            }
            yield_to_requests();
        }
    }

    /// Adds a peer to `room`, creating the room with `topology` if needed.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &self,
        peer_id: &str,
        token_hash: &[u8],
        room: &str,
        topology: Topology,
        role: Role,
        name: &str,
        capacity: u32,
        host: HostClaim<'_>,
        now: i64,
    ) -> Result<Joined, StoreError> {
        self.write(|tx| {
            let existing: Option<Topology> = tx
                .query_row("SELECT topology FROM rooms WHERE id = ?1", [room], |r| {
                    word(r, 0, Topology::parse)
                })
                .optional()?;
            let requested = topology;
            let topology = match existing {
                Some(t) => t,
                None => {
                    tx.execute(
                        "INSERT INTO rooms (id, topology, created_at) VALUES (?1, ?2, ?3)",
                        params![room, topology.as_str(), now],
                    )?;
                    topology
                }
            };
            if !topology.admits(role) {
                return Err(StoreError::RoleMismatch {
                    room: room.to_owned(),
                    topology,
                    role,
                });
            }
            // A client that expects another topology would join and never see media.
            if topology != requested {
                return Err(StoreError::TopologyMismatch {
                    room: room.to_owned(),
                    topology,
                });
            }

            let mut wake = Vec::new();
            let mut replaced = None;
            let mut key_kept = false;
            if role == Role::Host {
                let old: Option<Replaced> = tx
                    .query_row(
                        "SELECT id, token_hash FROM peers WHERE room = ?1 AND role = 'host'",
                        [room],
                        |r| {
                            Ok(Replaced {
                                peer_id: r.get(0)?,
                                token_hash: r.get(1)?,
                            })
                        },
                    )
                    .optional()?;
                let key: Option<Vec<u8>> = tx.query_row(
                    "SELECT host_key_hash FROM rooms WHERE id = ?1",
                    [room],
                    |r| r.get(0),
                )?;
                key_kept = host.key_hash.is_some_and(|k| key.as_deref() == Some(k));
                if let Some(old) = old {
                    if !host.ticket && !key_kept {
                        return Err(StoreError::HostTaken);
                    }
                    // Cascades to the old host's undelivered messages.
                    tx.execute("DELETE FROM peers WHERE id = ?1", [&old.peer_id])?;
                    // Its next call is told why its token stopped working, also after a
                    // restart, so it does not take the seat back.
                    tx.execute(
                        "INSERT OR REPLACE INTO replaced_tokens (token_hash, until) VALUES (?1, ?2)",
                        params![old.token_hash, host.replaced_until],
                    )?;
                    replaced = Some(old);
                }
                // The key that proved the seat stays valid (an answer lost on the way must not
                // lock its host out); otherwise the new host gets a new one.
                if !key_kept {
                    tx.execute(
                        "UPDATE rooms SET host_key_hash = ?2 WHERE id = ?1",
                        params![room, host.new_key_hash],
                    )?;
                }
            }

            let count: u32 =
                tx.query_row("SELECT COUNT(*) FROM peers WHERE room = ?1", [room], |r| {
                    r.get(0)
                })?;
            if count >= capacity {
                return Err(StoreError::RoomFull(capacity));
            }
            tx.execute(
                "INSERT INTO peers (id, room, role, name, token_hash, last_seq, joined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                params![peer_id, room, role.as_str(), name, token_hash, now],
            )?;
            let peer = PeerInfo {
                peer_id: peer_id.to_owned(),
                role,
                name: name.to_owned(),
            };
            let others = room_peers(tx, room, Some(peer_id))?;
            let (kind, payload) = match &replaced {
                Some(old) => (
                    MessageKind::HostReset,
                    to_json(&HostReset {
                        host: peer.clone(),
                        previous_peer_id: old.peer_id.clone(),
                    })?,
                ),
                None => (MessageKind::PeerJoined, to_json(&peer)?),
            };
            for other in &others {
                wake.push(enqueue(
                    tx,
                    &other.peer_id,
                    kind.as_str(),
                    None,
                    &payload,
                    now,
                )?);
            }
            Ok(Joined {
                peer,
                topology,
                others,
                replaced,
                key_kept,
                wake,
            })
        })
    }

    /// The peer holding the token with this hash. (Polls, not every call, are heartbeats.)
    pub fn authenticate(&self, token_hash: &[u8]) -> Result<Option<Peer>, StoreError> {
        let conn = self.lock();
        let peer = conn
            .prepare_cached(
                "SELECT peers.id, peers.room, peers.role, rooms.topology
                 FROM peers JOIN rooms ON rooms.id = peers.room WHERE token_hash = ?1",
            )?
            .query_row(params![token_hash], |r| {
                Ok(Peer {
                    id: r.get(0)?,
                    room: r.get(1)?,
                    role: word(r, 2, Role::parse)?,
                    topology: word(r, 3, Topology::parse)?,
                })
            })
            .optional()?;
        Ok(peer)
    }

    /// Queues a message from `from` to `to`, who must be in the same room and not too far
    /// behind (`backlog`).
    pub fn relay(
        &self,
        from: &Peer,
        to: &str,
        kind: &str,
        payload: &str,
        backlog: Backlog,
        now: i64,
    ) -> Result<Wake, StoreError> {
        self.write(|tx| {
            let recipient: Option<Role> = tx
                .prepare_cached("SELECT role FROM peers WHERE id = ?1 AND room = ?2")?
                .query_row(params![to, from.room], |r| word(r, 0, Role::parse))
                .optional()?;
            let Some(recipient_role) = recipient else {
                return Err(StoreError::PeerNotFound(to.to_owned()));
            };
            // A range of the primary key: as long as the backlog, which is capped.
            let (count, bytes): (u64, u64) = tx
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(octet_length(payload)), 0)
                     FROM messages WHERE recipient = ?1 AND seq > ?2",
                )?
                .query_row(params![to, backlog.acknowledged.unwrap_or(0)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if count >= backlog.max || bytes + payload.len() as u64 > backlog.max_bytes {
                return Err(StoreError::RecipientBacklog(backlog.max));
            }
            let used = used_bytes(tx)?;
            if used + payload.len() as u64 > backlog.max_storage {
                return Err(StoreError::StorageFull(backlog.max_storage));
            }
            if !from.topology.links(from.role, recipient_role) {
                return Err(StoreError::NotLinked {
                    topology: from.topology,
                    from: from.role,
                    to: recipient_role,
                });
            }
            enqueue(tx, to, kind, Some(&from.id), payload, now)
        })
    }

    /// Queues a server event (`from` is `null`) for peers of `room`: everyone but `except`,
    /// or only `only` when given.
    pub fn announce(
        &self,
        room: &str,
        recipients: Recipients<'_>,
        kind: MessageKind,
        payload: &str,
        now: i64,
    ) -> Result<Vec<Wake>, StoreError> {
        self.write(|tx| {
            let mut wake = Vec::new();
            for peer in room_peers(tx, room, None)? {
                let chosen = match recipients {
                    Recipients::AllBut(except) => peer.peer_id != except,
                    Recipients::Only(only) => peer.peer_id == only,
                };
                if chosen {
                    wake.push(enqueue(
                        tx,
                        &peer.peer_id,
                        kind.as_str(),
                        None,
                        payload,
                        now,
                    )?);
                }
            }
            Ok(wake)
        })
    }

    /// Removes a peer and tells the rest of its room why.
    pub fn leave(
        &self,
        peer_id: &str,
        reason: LeaveReason,
        now: i64,
    ) -> Result<Vec<Wake>, StoreError> {
        self.write(|tx| remove_peer(tx, peer_id, reason, now))
    }

    /// The messages after `since`, in order: a pure read. (Acknowledged messages are
    /// deleted later, in batches, by [`Store::delete_acknowledged`].)
    ///
    /// `Ok(None)` means the peer no longer exists.
    pub fn read(
        &self,
        peer_id: &str,
        since: u64,
        acknowledged: u64,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let conn = self.lock();
        let last: Option<u64> = conn
            .prepare_cached("SELECT last_seq FROM peers WHERE id = ?1")?
            .query_row([peer_id], |r| r.get(0))
            .optional()?;
        let Some(last) = last else { return Ok(None) };
        if since > last {
            return Err(StoreError::CursorAhead { since, last });
        }
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, sender, payload FROM messages
             WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![peer_id, since, POLL_BATCH], |r| {
            Ok(StoredMessage {
                seq: r.get(0)?,
                kind: r.get(1)?,
                from: r.get(2)?,
                payload: r.get(3)?,
            })
        })?;
        let messages = rows.collect::<Result<Vec<_>, _>>()?;
        // Sequence numbers have no holes, and what was acknowledged is deleted: a missing
        // next message expired unread.
        let from = since.max(acknowledged).min(last);
        if from < last && messages.first().is_none_or(|m| m.seq > from + 1) {
            return Err(StoreError::CursorExpired(since));
        }
        Ok(Some(messages))
    }

    /// True when this token belonged to a hub host that a newer one replaced, until its
    /// memory runs out.
    pub fn was_replaced(&self, token_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let conn = self.lock();
        let found = conn
            .prepare_cached("SELECT 1 FROM replaced_tokens WHERE token_hash = ?1 AND until > ?2")?
            .query_row(params![token_hash, now], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// Marks a single-use ticket (the hash of its `jti`) used until `expires_at` (unix ms);
    /// false if it was used already.
    pub fn use_ticket(&self, jti_hash: &[u8], expires_at: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO used_tickets (jti_hash, expires_at) VALUES (?1, ?2)",
                params![jti_hash, expires_at],
            )?;
            Ok(added == 1)
        })
    }

    /// Deletes, per recipient, every message up to the cursor it has acknowledged.
    pub fn delete_acknowledged(&self, acks: &[(String, u64)]) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for batch in acks.chunks(SWEEP_BATCH) {
            deleted += self.write(|tx| {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM messages WHERE recipient = ?1 AND seq <= ?2")?;
                let mut deleted = 0;
                for (peer, upto) in batch {
                    deleted += stmt.execute(params![peer, upto])?;
                }
                Ok(deleted)
            })?;
        }
        Ok(deleted)
    }

    /// Removes the peers `is_silent` picks (telling their rooms), messages older than
    /// `now - message_ttl_ms`, empty rooms and expired tickets, [`SWEEP_BATCH`] rows per
    /// transaction.
    pub fn sweep(
        &self,
        now: i64,
        message_ttl_ms: i64,
        is_silent: impl Fn(&str) -> bool,
    ) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        let ids: Vec<String> = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached("SELECT id FROM peers")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let silent: Vec<String> = ids.into_iter().filter(|id| is_silent(id)).collect();
        for batch in silent.chunks(SWEEP_BATCH) {
            let removed = self.write(|tx| {
                let mut wake = Vec::new();
                for id in batch {
                    wake.extend(remove_peer(tx, id, LeaveReason::Timeout, now)?);
                }
                Ok(wake)
            });
            match removed {
                Ok(wake) => {
                    swept.wake.extend(wake);
                    swept.timed_out.extend_from_slice(batch);
                }
                // What earlier batches removed is still reported (so those peers are
                // forgotten and their rooms told); the rest waits for the next sweep.
                Err(err) => {
                    tracing::warn!(%err, "a sweep batch failed");
                    return Ok(swept);
                }
            }
            yield_to_requests();
        }
        swept.expired_messages = self.delete_in_batches(
            "DELETE FROM messages WHERE (recipient, seq) IN
             (SELECT recipient, seq FROM messages WHERE created_at < ?1 LIMIT ?2)",
            now - message_ttl_ms,
        )?;
        self.delete_in_batches(
            "DELETE FROM rooms WHERE id IN (SELECT id FROM rooms WHERE created_at <= ?1 AND
             NOT EXISTS (SELECT 1 FROM peers WHERE peers.room = rooms.id) LIMIT ?2)",
            now,
        )?;
        self.delete_in_batches(
            "DELETE FROM replaced_tokens WHERE token_hash IN
             (SELECT token_hash FROM replaced_tokens WHERE until <= ?1 LIMIT ?2)",
            now,
        )?;
        // An expired ticket is refused anyway: no need to remember it was used.
        self.delete_in_batches(
            "DELETE FROM used_tickets WHERE jti_hash IN
             (SELECT jti_hash FROM used_tickets WHERE expires_at < ?1 LIMIT ?2)",
            now,
        )?;
        Ok(swept)
    }

    /// Peers of a room, for tests and diagnostics.
    pub fn room_peers(&self, room: &str) -> Result<Vec<PeerInfo>, StoreError> {
        let conn = self.lock();
        room_peers(&conn, room, None)
    }
}

fn room_peers(
    conn: &Connection,
    room: &str,
    except: Option<&str>,
) -> Result<Vec<PeerInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, role, name FROM peers WHERE room = ?1 AND id != ?2 ORDER BY joined_at, id",
    )?;
    let rows = stmt.query_map(params![room, except.unwrap_or("")], |r| {
        Ok(PeerInfo {
            peer_id: r.get(0)?,
            role: word(r, 1, Role::parse)?,
            name: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn enqueue(
    tx: &Transaction<'_>,
    recipient: &str,
    kind: &str,
    from: Option<&str>,
    payload: &str,
    now: i64,
) -> Result<Wake, StoreError> {
    let seq: u64 = tx
        .prepare_cached(
            "UPDATE peers SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row([recipient], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO messages (recipient, seq, kind, sender, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![recipient, seq, kind, from, payload, now])?;
    Ok((recipient.to_owned(), seq))
}

fn remove_peer(
    tx: &Transaction<'_>,
    peer_id: &str,
    reason: LeaveReason,
    now: i64,
) -> Result<Vec<Wake>, StoreError> {
    let room: Option<String> = tx
        .query_row(
            "DELETE FROM peers WHERE id = ?1 RETURNING room",
            [peer_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(room) = room else {
        return Ok(Vec::new());
    };
    let payload = to_json(&PeerLeft {
        peer_id: peer_id.to_owned(),
        reason,
    })?;
    let mut wake = Vec::new();
    for other in room_peers(tx, &room, None)? {
        wake.push(enqueue(
            tx,
            &other.peer_id,
            MessageKind::PeerLeft.as_str(),
            None,
            &payload,
            now,
        )?);
    }
    if wake.is_empty() {
        tx.execute("DELETE FROM rooms WHERE id = ?1", [&room])?;
    }
    Ok(wake)
}
