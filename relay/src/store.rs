//! The relay's persistent store: SQLite through sqlx, in the data dir.
//!
//! It holds agents (argon2id password hashes), session keys (only an HMAC-SHA-256 of each PIN,
//! keyed with a secret kept owner-only in the data dir, so a copy of the database alone does not
//! reveal live PINs), the session history and the audit trail. Everything else the relay knows
//! lives in memory.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tether_protocol::msg::SessionId;
use tether_protocol::pairing::{self, KeyRecord, KeyState};

use crate::fsutil;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data dir could not be prepared.
    #[error("data dir: {0}")]
    Io(#[from] std::io::Error),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// No agent of that name.
    #[error("no agent named {0:?}")]
    NoSuchAgent(String),
    /// An agent of that name exists.
    #[error("an agent named {0:?} already exists")]
    AgentExists(String),
    /// The name is not acceptable.
    #[error("agent names are 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadName,
    /// The password is not acceptable.
    #[error("passwords must be 8 to 1024 characters")]
    BadPassword,
    /// The key lifetime is not acceptable.
    #[error("key lifetime must be between 1 minute and 7 days")]
    BadTtl,
    /// The agent has as many live keys as allowed.
    #[error("{agent} has {limit} live session keys already; use one or let them expire")]
    TooManyKeys {
        /// The agent.
        agent: String,
        /// The limit.
        limit: u32,
    },
}

/// A key found by its PIN.
#[derive(Debug, Clone)]
pub struct FoundKey {
    /// Row id.
    pub id: i64,
    /// The owning agent's name.
    pub agent: String,
    /// State and expiry.
    pub record: KeyRecord,
}

/// Who did something, in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An agent by name (for a refused login, the name given, cut and escaped).
    Agent(String),
    /// A customer's host, by address.
    Host(std::net::IpAddr),
    /// A peer not known yet, by address.
    Peer(std::net::IpAddr),
    /// The relay itself.
    Relay,
    /// The command line.
    Cli,
    /// A form this version does not write (older rows).
    Other(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Agent(name) => write!(f, "agent:{name}"),
            Actor::Host(ip) => write!(f, "host:{ip}"),
            Actor::Peer(ip) => write!(f, "peer:{ip}"),
            Actor::Relay => f.write_str("relay"),
            Actor::Cli => f.write_str("cli"),
            Actor::Other(s) => f.write_str(s),
        }
    }
}

impl Actor {
    /// Reads the stored form back.
    pub fn parse(s: &str) -> Actor {
        let ip = |v: &str| v.parse::<std::net::IpAddr>().ok();
        match s.split_once(':') {
            Some(("agent", name)) => Actor::Agent(name.to_string()),
            Some(("host", a)) if ip(a).is_some() => ip(a).map_or(Actor::Relay, Actor::Host),
            Some(("peer", a)) if ip(a).is_some() => ip(a).map_or(Actor::Relay, Actor::Peer),
            _ => match s {
                "relay" => Actor::Relay,
                "cli" => Actor::Cli,
                other => Actor::Other(other.to_string()),
            },
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The session concerned, if any.
    pub session: Option<SessionId>,
    /// Who.
    pub actor: Actor,
    /// What, as a dotted name such as `key.refused`.
    pub action: String,
    /// Details for people.
    pub detail: String,
    /// Source address, if from the network.
    pub source: Option<String>,
}

/// The relay's database.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    pin_key: [u8; 32],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The file holding the secret PINs are keyed with.
const PIN_SECRET_FILE: &str = "pin-secret";

/// Reads the PIN secret, making it on first use (the caller holds the data dir's lock).
fn pin_secret(data_dir: &Path) -> Result<[u8; 32], StoreError> {
    let path = data_dir.join(PIN_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => bytes.try_into().map_err(|_| {
            StoreError::Io(std::io::Error::other(format!(
                "{} is damaged",
                path.display()
            )))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
            fsutil::write_private(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// What is stored of a PIN: HMAC-SHA-256 keyed with the relay's secret.
fn pin_hash(key: &[u8; 32], pin: &str) -> Result<Vec<u8>, StoreError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| StoreError::Hash(e.to_string()))?;
    mac.update(pin.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, owner-only, and migrates it.
    ///
    /// Creation and migration run under the data dir's lock, so commands started at the same
    /// moment on a new data dir (say `serve` and `user add`) never migrate twice.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.to_path_buf();
        let _lock = tokio::task::spawn_blocking(move || fsutil::lock_dir(&dir))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))??;
        let pin_key = pin_secret(data_dir)?;
        let path = data_dir.join("relay.db");
        fsutil::private_file(&path)?;
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, pin_key })
    }

    /// Number of agents.
    pub async fn agent_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Adds an agent with an argon2id hash of `password`.
    pub async fn add_agent(&self, name: &str, password: &str, now: u64) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadName);
        }
        let hash = checked_hash(password).await?;
        let res =
            sqlx::query("INSERT INTO agents (name, password_hash, created_at) VALUES (?, ?, ?)")
                .bind(name)
                .bind(hash)
                .bind(now as i64)
                .execute(&self.pool)
                .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AgentExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces an agent's password.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        let hash = checked_hash(password).await?;
        let res = sqlx::query("UPDATE agents SET password_hash = ? WHERE name = ?")
            .bind(hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoSuchAgent(name.to_string()));
        }
        Ok(())
    }

    /// Checks an agent's password. `Ok(false)` for an unknown name or a wrong password; both take
    /// the time of a hash, so neither is told apart by timing.
    pub async fn verify_agent(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM agents WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let stored: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || match stored {
            Some(h) => PasswordHash::new(&h)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false),
            None => {
                let _ = hash_password(&password);
                false
            }
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))
    }

    async fn agent_id(&self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT id FROM agents WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(StoreError::NoSuchAgent(name.to_string())),
        }
    }

    /// Creates a key for `agent`, valid for `ttl`. Returns the PIN and the expiry.
    pub async fn create_key(
        &self,
        agent: &str,
        ttl: Duration,
        now: u64,
    ) -> Result<(String, u64), StoreError> {
        if ttl < Duration::from_secs(60) || ttl > pairing::MAX_KEY_TTL {
            return Err(StoreError::BadTtl);
        }
        let agent_id = self.agent_id(agent).await?;
        let expires_at = now + ttl.as_secs();
        loop {
            let pin = random_pin()?;
            let hash = pin_hash(&self.pin_key, &pin)?;
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
            // writes gets SQLITE_BUSY at once (no busy wait) when another process, such as the
            // `key create` CLI beside a running relay, wrote in between.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let live: i64 = sqlx::query(
                "SELECT COUNT(*) FROM session_keys WHERE agent_id = ? AND state = 'live' AND expires_at > ?",
            )
            .bind(agent_id)
            .bind(now as i64)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if live >= i64::from(pairing::MAX_LIVE_KEYS_PER_AGENT) {
                return Err(StoreError::TooManyKeys {
                    agent: agent.to_string(),
                    limit: pairing::MAX_LIVE_KEYS_PER_AGENT,
                });
            }
            let clash = sqlx::query(
                "SELECT 1 FROM session_keys WHERE pin_hash = ? AND state = 'live' AND expires_at > ?",
            )
            .bind(&hash)
            .bind(now as i64)
            .fetch_optional(&mut *tx)
            .await?;
            if clash.is_some() {
                continue;
            }
            sqlx::query(
                "INSERT INTO session_keys (pin_hash, agent_id, created_at, expires_at, state) \
                 VALUES (?, ?, ?, ?, 'live')",
            )
            .bind(&hash)
            .bind(agent_id)
            .bind(now as i64)
            .bind(expires_at as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok((pin, expires_at));
        }
    }

    /// Finds the newest key with this PIN.
    pub async fn find_key(&self, pin: &str) -> Result<Option<FoundKey>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, a.name, k.state, k.expires_at FROM session_keys k \
             JOIN agents a ON a.id = k.agent_id WHERE k.pin_hash = ? ORDER BY k.id DESC LIMIT 1",
        )
        .bind(pin_hash(&self.pin_key, pin)?)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get(2)?;
        let expires_at: i64 = row.try_get(3)?;
        Ok(Some(FoundKey {
            id: row.try_get(0)?,
            agent: row.try_get(1)?,
            record: KeyRecord {
                state: KeyState::parse(&state).unwrap_or(KeyState::Used),
                expires_at: expires_at.max(0) as u64,
            },
        }))
    }

    /// Marks a live, unexpired key used. Returns false if it was not (a race lost to another
    /// join, or a burn).
    pub async fn use_key(&self, id: i64, now: u64) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE session_keys SET state = 'used', used_at = ? \
             WHERE id = ? AND state = 'live' AND expires_at > ?",
        )
        .bind(now as i64)
        .bind(id)
        .bind(now as i64)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Records the start of a session.
    pub async fn session_started(
        &self,
        id: SessionId,
        agent: &str,
        key_id: Option<i64>,
        customer: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let agent_id = self.agent_id(agent).await?;
        sqlx::query(
            "INSERT INTO sessions (public_id, agent_id, key_id, customer, started_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(agent_id)
        .bind(key_id)
        .bind(customer)
        .bind(now as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the end of a session.
    pub async fn session_ended(
        &self,
        id: SessionId,
        reason: tether_protocol::msg::EndReason,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE public_id = ? AND ended_at IS NULL")
            .bind(now as i64)
            .bind(reason.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends an audit event.
    pub async fn audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, session, actor, action, detail, source) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at as i64)
        .bind(e.session.map(|s| s.to_string()))
        .bind(e.actor.to_string())
        .bind(&e.action)
        .bind(&e.detail)
        .bind(&e.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` audit events, oldest first.
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, session, actor, action, detail, source FROM \
             (SELECT * FROM audit_events ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let at: i64 = r.try_get(0)?;
                let session: Option<String> = r.try_get(1)?;
                Ok(AuditEvent {
                    at: at.max(0) as u64,
                    session: session
                        .and_then(|s| u64::from_str_radix(&s, 16).ok())
                        .map(SessionId),
                    actor: Actor::parse(&r.try_get::<String, _>(2)?),
                    action: r.try_get(3)?,
                    detail: r.try_get(4)?,
                    source: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Reads a setting.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Writes a setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks a new password's length and hashes it (argon2id, off the async threads).
async fn checked_hash(password: &str) -> Result<String, StoreError> {
    if !(8..=1024).contains(&password.chars().count()) {
        return Err(StoreError::BadPassword);
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?
}

fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// A PIN from the OS CSPRNG.
pub fn random_pin() -> Result<String, StoreError> {
    loop {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
        if let Some(pin) = pairing::pin_from_random(b) {
            return Ok(pin);
        }
    }
}

/// A random password of 20 letters and digits, from the OS CSPRNG.
pub fn random_password() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::new();
    while out.len() < 20 {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
        for x in b {
            // 57 symbols; reject the biased tail.
            if (x as usize) < ALPHABET.len() * 4 && out.len() < 20 {
                out.push(ALPHABET[x as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_found_by_their_pin_and_stored_only_as_an_hmac() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        store
            .add_agent("alice", "correct horse", 0)
            .await
            .expect("add");
        assert!(matches!(
            store.add_agent("alice", "correct horse", 0).await,
            Err(StoreError::AgentExists(_))
        ));
        assert!(
            store
                .verify_agent("alice", "correct horse")
                .await
                .expect("verify")
        );
        assert!(!store.verify_agent("alice", "wrong").await.expect("verify"));
        assert!(
            !store
                .verify_agent("bob", "correct horse")
                .await
                .expect("verify")
        );
        let (pin, exp) = store
            .create_key("alice", Duration::from_secs(600), 1000)
            .await
            .expect("key");
        assert_eq!(exp, 1600);
        let found = store.find_key(&pin).await.expect("find").expect("some");
        assert_eq!(found.agent, "alice");
        assert_eq!(found.record.state, KeyState::Live);
        // The database holds neither the PIN nor its bare SHA-256.
        let stored: Vec<u8> = sqlx::query("SELECT pin_hash FROM session_keys")
            .fetch_one(&store.pool)
            .await
            .expect("row")
            .try_get(0)
            .expect("column");
        use sha2::Digest as _;
        assert_ne!(stored, sha2::Sha256::digest(pin.as_bytes()).to_vec());
        assert_ne!(stored, pin.as_bytes());
        // The secret is owner-only and the same store reopened finds the key again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PIN_SECRET_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        store.close().await;
        let store = Store::open(dir.path()).await.expect("reopen");
        assert!(store.find_key(&pin).await.expect("find").is_some());
    }

    #[tokio::test]
    async fn an_agent_has_a_limited_number_of_live_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        store
            .add_agent("alice", "correct horse", 0)
            .await
            .expect("add");
        for _ in 0..pairing::MAX_LIVE_KEYS_PER_AGENT {
            store
                .create_key("alice", Duration::from_secs(600), 1000)
                .await
                .expect("key");
        }
        assert!(matches!(
            store
                .create_key("alice", Duration::from_secs(600), 1000)
                .await,
            Err(StoreError::TooManyKeys { .. })
        ));
        // Expired keys do not count.
        assert!(
            store
                .create_key("alice", Duration::from_secs(600), 1000 + 600)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_key_is_used_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        store
            .add_agent("alice", "correct horse", 0)
            .await
            .expect("add");
        let (pin, _) = store
            .create_key("alice", Duration::from_secs(600), 1000)
            .await
            .expect("key");
        let found = store.find_key(&pin).await.expect("find").expect("some");
        assert!(store.use_key(found.id, 1001).await.expect("use"));
        assert!(!store.use_key(found.id, 1001).await.expect("use twice"));
        assert!(
            store
                .create_key("nobody", Duration::from_secs(600), 0)
                .await
                .is_err()
        );
        assert!(matches!(
            store.create_key("alice", Duration::from_secs(1), 0).await,
            Err(StoreError::BadTtl)
        ));
    }

    #[test]
    fn actors_read_back_as_they_were_written() {
        for a in [
            Actor::Agent("alice".into()),
            Actor::Host("192.0.2.1".parse().expect("ip")),
            Actor::Peer("2001:db8::1".parse().expect("ip")),
            Actor::Relay,
            Actor::Cli,
        ] {
            assert_eq!(Actor::parse(&a.to_string()), a);
        }
        assert_eq!(
            Actor::parse("agent@1.2.3.4"),
            Actor::Other("agent@1.2.3.4".into())
        );
    }

    #[test]
    fn random_passwords_are_twenty_characters() {
        let p = random_password().expect("password");
        assert_eq!(p.len(), 20);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
