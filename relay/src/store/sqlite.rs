//! [`Store`] on SQLite through sqlx, in the data dir. The database file and the secret PINs are
//! keyed with are owner-only; a copy of the database alone does not reveal live PINs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tether_protocol::chat::{ChatEntry, Script};
use tether_protocol::msg::{EndReason, SessionId};
use tether_protocol::pairing::{self, KeyRecord, KeyRef, KeyState};

use super::{
    Actor, AgentRow, AuditEvent, FoundKey, IssueType, KeyFor, MAX_LIVE_TICKETS, NewAgent,
    NewScript, SessionRow, SessionStart, Store, StoreError, StoreFuture, TICKET_TTL, TeamRow,
    Ticket,
};
use crate::core::{AgentProfile, KeyOwner};
use crate::fsutil;

/// The relay's database.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    pin_key: [u8; 32],
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
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

fn valid_display(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && !name.chars().any(|c| c.is_control())
        && name.trim() == name
}

fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Db(e)
}

fn session_id(s: &str) -> Option<SessionId> {
    u64::from_str_radix(s, 16).ok().map(SessionId)
}

fn audit_event(r: &sqlx::sqlite::SqliteRow) -> Result<AuditEvent, StoreError> {
    let at: i64 = r.try_get(0)?;
    let session: Option<String> = r.try_get(1)?;
    Ok(AuditEvent {
        at: at.max(0) as u64,
        session: session.as_deref().and_then(session_id),
        actor: Actor::parse(&r.try_get::<String, _>(2)?),
        action: r.try_get(3)?,
        detail: r.try_get(4)?,
        source: r.try_get(5)?,
    })
}

fn session_row(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRow, StoreError> {
    let id: String = r.try_get(0)?;
    let started: i64 = r.try_get(3)?;
    let ended: Option<i64> = r.try_get(4)?;
    Ok(SessionRow {
        id: session_id(&id).unwrap_or(SessionId(0)),
        origin: r.try_get(1)?,
        customer: r.try_get(2)?,
        started_at: started.max(0) as u64,
        ended_at: ended.map(|e| e.max(0) as u64),
        end_reason: r.try_get(5)?,
    })
}

impl SqliteStore {
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

    async fn id_of(&self, table: &str, name: &str) -> Result<Option<i64>, StoreError> {
        let sql = match table {
            "agents" => "SELECT id FROM agents WHERE name = ?",
            _ => "SELECT id FROM teams WHERE name = ?",
        };
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn agent_id(&self, name: &str) -> Result<i64, StoreError> {
        self.id_of("agents", name)
            .await?
            .ok_or_else(|| StoreError::NoSuchAgent(name.to_string()))
    }

    async fn team_id(&self, name: &str) -> Result<i64, StoreError> {
        self.id_of("teams", name)
            .await?
            .ok_or_else(|| StoreError::NoSuchTeam(name.to_string()))
    }

    async fn agent_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn add_agent(&self, agent: NewAgent, now: u64) -> Result<(), StoreError> {
        if !valid_name(&agent.name) {
            return Err(StoreError::BadName);
        }
        if agent.display.as_deref().is_some_and(|d| !valid_display(d)) {
            return Err(StoreError::BadDisplayName);
        }
        let hash = checked_hash(&agent.password).await?;
        let res = sqlx::query(
            "INSERT INTO agents (name, display_name, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&agent.name)
        .bind(&agent.display)
        .bind(hash)
        .bind(now as i64)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AgentExists(agent.name))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn set_password(&self, name: String, password: String) -> Result<(), StoreError> {
        let hash = checked_hash(&password).await?;
        let res = sqlx::query("UPDATE agents SET password_hash = ? WHERE name = ?")
            .bind(hash)
            .bind(&name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoSuchAgent(name));
        }
        Ok(())
    }

    async fn set_disabled(&self, name: String, disabled: bool) -> Result<(), StoreError> {
        let res = sqlx::query("UPDATE agents SET disabled = ? WHERE name = ?")
            .bind(i64::from(disabled))
            .bind(&name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoSuchAgent(name));
        }
        Ok(())
    }

    async fn teams_of(&self, agent_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.name FROM teams t JOIN team_members m ON m.team_id = t.id \
             WHERE m.agent_id = ? ORDER BY t.name",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db_err)).collect()
    }

    async fn login(
        &self,
        name: String,
        password: String,
    ) -> Result<Option<AgentProfile>, StoreError> {
        let row = sqlx::query(
            "SELECT id, password_hash, COALESCE(display_name, name), disabled FROM agents WHERE name = ?",
        )
        .bind(&name)
        .fetch_optional(&self.pool)
        .await?;
        let found: Option<(i64, String, String, bool)> = row
            .map(|r| -> Result<_, sqlx::Error> {
                let disabled: i64 = r.try_get(3)?;
                Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, disabled != 0))
            })
            .transpose()?;
        let hash = found.as_ref().map(|f| f.1.clone());
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(h) => PasswordHash::new(&h)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false),
            None => {
                // As long as a real check, so an unknown name is not told apart by timing.
                let _ = hash_password(&password);
                false
            }
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?;
        let Some((id, _, display, disabled)) = found else {
            return Ok(None);
        };
        if !ok || disabled {
            return Ok(None);
        }
        Ok(Some(AgentProfile {
            login: name,
            display,
            teams: self.teams_of(id).await?.into_iter().collect(),
        }))
    }

    async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, COALESCE(display_name, name), disabled FROM agents ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let disabled: i64 = r.try_get(3)?;
            out.push(AgentRow {
                teams: self.teams_of(r.try_get(0)?).await?,
                name: r.try_get(1)?,
                display: r.try_get(2)?,
                disabled: disabled != 0,
            });
        }
        Ok(out)
    }

    async fn add_team(&self, name: String, now: u64) -> Result<(), StoreError> {
        if !valid_name(&name) {
            return Err(StoreError::BadName);
        }
        let res = sqlx::query("INSERT INTO teams (name, created_at) VALUES (?, ?)")
            .bind(&name)
            .bind(now as i64)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::TeamExists(name))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn add_script(&self, new: NewScript) -> Result<i64, StoreError> {
        if new.title.trim().is_empty() || new.title.chars().count() > 80 {
            return Err(StoreError::BadScript(
                "titles are 1 to 80 characters".into(),
            ));
        }
        let text = tether_protocol::chat::check_text(&new.text)
            .map_err(|e| StoreError::BadScript(e.to_string()))?;
        if let Some(u) = &new.url {
            tether_protocol::files::check_url(u)
                .map_err(|e| StoreError::BadScript(format!("address: {e}")))?;
        }
        let (team, agent) = match &new.owner {
            KeyFor::Team { team, .. } => {
                self.team_id(team).await?;
                (Some(team.clone()), None)
            }
            KeyFor::Agent(a) => {
                self.agent_id(a).await?;
                (None, Some(a.clone()))
            }
        };
        let id = sqlx::query(
            "INSERT INTO scripts (team, agent, title, text, url) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(team)
        .bind(agent)
        .bind(new.title.trim())
        .bind(text)
        .bind(new.url)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn remove_script(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM scripts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchScript(id));
        }
        Ok(())
    }

    async fn all_scripts(&self) -> Result<Vec<(i64, Script)>, StoreError> {
        let rows = sqlx::query("SELECT id, team, agent, title, text, url FROM scripts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(script_row).collect()
    }

    async fn scripts_for(
        &self,
        agent: String,
        teams: Vec<String>,
    ) -> Result<Vec<Script>, StoreError> {
        let all = self.all_scripts().await?;
        Ok(all
            .into_iter()
            .map(|(_, s)| s)
            .filter_map(|mut s| {
                if s.scope.strip_prefix("agent ") == Some(agent.as_str()) {
                    s.scope = "yours".into();
                    return Some(s);
                }
                let team = s.scope.strip_prefix("team ")?;
                teams.iter().any(|m| m == team).then_some(s)
            })
            .take(tether_protocol::chat::MAX_SCRIPTS)
            .collect())
    }

    async fn set_member(
        &self,
        team: String,
        agent: String,
        member: bool,
    ) -> Result<(), StoreError> {
        let team_id = self.team_id(&team).await?;
        let agent_id = self.agent_id(&agent).await?;
        let sql = if member {
            "INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?, ?)"
        } else {
            "DELETE FROM team_members WHERE team_id = ? AND agent_id = ?"
        };
        sqlx::query(sql)
            .bind(team_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.name, a.name FROM teams t LEFT JOIN team_members m ON m.team_id = t.id \
             LEFT JOIN agents a ON a.id = m.agent_id ORDER BY t.name, a.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<TeamRow> = Vec::new();
        for r in rows {
            let team: String = r.try_get(0)?;
            let member: Option<String> = r.try_get(1)?;
            if out.last().is_none_or(|t| t.name != team) {
                out.push(TeamRow {
                    name: team,
                    members: Vec::new(),
                });
            }
            if let (Some(m), Some(t)) = (member, out.last_mut()) {
                t.members.push(m);
            }
        }
        Ok(out)
    }

    async fn create_key(
        &self,
        owner: KeyFor,
        ttl: Duration,
        now: u64,
    ) -> Result<(String, u64), StoreError> {
        if ttl < Duration::from_secs(60) || ttl > pairing::MAX_KEY_TTL {
            return Err(StoreError::BadTtl);
        }
        let (agent_id, team_id, name) = match &owner {
            KeyFor::Agent(a) => (Some(self.agent_id(a).await?), None, a.clone()),
            KeyFor::Team { team, by } => {
                let by = match by {
                    Some(a) => Some(self.agent_id(a).await?),
                    None => None,
                };
                (by, Some(self.team_id(team).await?), format!("team {team}"))
            }
        };
        let expires_at = now + ttl.as_secs();
        loop {
            let pin = random_pin()?;
            let hash = pin_hash(&self.pin_key, &pin)?;
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
            // writes gets SQLITE_BUSY at once (no busy wait) when another process, such as the
            // `key create` CLI beside a running relay, wrote in between.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let live: i64 = match team_id {
                Some(t) => sqlx::query(
                    "SELECT COUNT(*) FROM session_keys WHERE team_id = ? AND ticket IS NULL \
                     AND state = 'live' AND expires_at > ?",
                )
                .bind(t),
                None => sqlx::query(
                    "SELECT COUNT(*) FROM session_keys WHERE agent_id = ? AND team_id IS NULL \
                     AND ticket IS NULL AND state = 'live' AND expires_at > ?",
                )
                .bind(agent_id),
            }
            .bind(now as i64)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let limit = if team_id.is_some() {
                pairing::MAX_LIVE_KEYS_PER_TEAM
            } else {
                pairing::MAX_LIVE_KEYS_PER_AGENT
            };
            if live >= i64::from(limit) {
                return Err(StoreError::TooManyKeys { owner: name, limit });
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
                "INSERT INTO session_keys (pin_hash, agent_id, team_id, created_at, expires_at, state) \
                 VALUES (?, ?, ?, ?, ?, 'live')",
            )
            .bind(&hash)
            .bind(agent_id)
            .bind(team_id)
            .bind(now as i64)
            .bind(expires_at as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok((pin, expires_at));
        }
    }

    async fn find_key(&self, pin: String) -> Result<Option<FoundKey>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.state, k.expires_at, t.name, a.name, COALESCE(a.display_name, a.name), \
                    COALESCE(a.disabled, 0), k.ticket \
             FROM session_keys k LEFT JOIN teams t ON t.id = k.team_id \
             LEFT JOIN agents a ON a.id = k.agent_id \
             WHERE k.pin_hash = ? ORDER BY k.id DESC LIMIT 1",
        )
        .bind(pin_hash(&self.pin_key, &pin)?)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get(1)?;
        let expires_at: i64 = row.try_get(2)?;
        let team: Option<String> = row.try_get(3)?;
        let login: Option<String> = row.try_get(4)?;
        let display: Option<String> = row.try_get(5)?;
        let disabled: i64 = row.try_get(6)?;
        let ticket: Option<String> = row.try_get(7)?;
        let ticket = match ticket {
            Some(t) => Some(
                serde_json::from_str::<Ticket>(&t)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            None => None,
        };
        let owner = match (team, login, display) {
            (Some(t), _, _) => KeyOwner::Team(t),
            (None, Some(login), Some(display)) => KeyOwner::Agent { login, display },
            _ => return Ok(None),
        };
        // A personal key of a disabled agent opens nothing: it reads as expired.
        let dead = disabled != 0 && matches!(owner, KeyOwner::Agent { .. });
        Ok(Some(FoundKey {
            id: row.try_get(0)?,
            owner,
            record: KeyRecord {
                state: KeyState::parse(&state).unwrap_or(KeyState::Used),
                expires_at: if dead { 0 } else { expires_at.max(0) as u64 },
            },
            ticket,
        }))
    }

    async fn add_issue_type(&self, team: String, title: String) -> Result<i64, StoreError> {
        let title = title.trim().to_string();
        if title.is_empty() || title.chars().count() > 80 || title.chars().any(char::is_control) {
            return Err(StoreError::BadIssueType(
                "problem types are 1 to 80 characters, without control characters".into(),
            ));
        }
        let team_id = self.team_id(&team).await?;
        let res = sqlx::query("INSERT INTO issue_types (team_id, title) VALUES (?, ?)")
            .bind(team_id)
            .bind(&title)
            .execute(&self.pool)
            .await;
        match res {
            Ok(r) => Ok(r.last_insert_rowid()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(
                StoreError::BadIssueType(format!("team {team} has {title:?} already")),
            ),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_issue_type(&self, id: i64) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM issue_types WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoSuchIssueType(id));
        }
        Ok(())
    }

    async fn issue_types(&self) -> Result<Vec<IssueType>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, t.name, i.title FROM issue_types i JOIN teams t ON t.id = i.team_id \
             ORDER BY t.name, i.title",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IssueType {
                    id: r.try_get(0)?,
                    team: r.try_get(1)?,
                    title: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn create_ticket(
        &self,
        owner: KeyFor,
        ticket: Ticket,
        now: u64,
    ) -> Result<(String, u64), StoreError> {
        let (agent_id, team_id) = match &owner {
            KeyFor::Agent(a) => (Some(self.agent_id(a).await?), None),
            KeyFor::Team { team, .. } => (None, Some(self.team_id(team).await?)),
        };
        let json =
            serde_json::to_string(&ticket).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let expires_at = now + TICKET_TTL.as_secs();
        let mut b = [0u8; pairing::TICKET_CHARS];
        getrandom::fill(&mut b)
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
        let secret = pairing::ticket_from_random(b);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) FROM session_keys WHERE ticket IS NOT NULL AND state = 'live' \
             AND expires_at > ?",
        )
        .bind(now as i64)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if live >= MAX_LIVE_TICKETS {
            return Err(StoreError::TooManyTickets);
        }
        sqlx::query(
            "INSERT INTO session_keys (pin_hash, agent_id, team_id, created_at, expires_at, state, ticket) \
             VALUES (?, ?, ?, ?, ?, 'live', ?)",
        )
        .bind(pin_hash(&self.pin_key, &secret)?)
        .bind(agent_id)
        .bind(team_id)
        .bind(now as i64)
        .bind(expires_at as i64)
        .bind(json)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((secret, expires_at))
    }

    async fn link_owner(&self, link: KeyRef) -> Result<Option<KeyOwner>, StoreError> {
        match link {
            KeyRef::Agent(login) => {
                let row = sqlx::query(
                    "SELECT name, COALESCE(display_name, name) FROM agents \
                     WHERE name = ? AND disabled = 0",
                )
                .bind(&login)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(r) => Some(KeyOwner::Agent {
                        login: r.try_get(0)?,
                        display: r.try_get(1)?,
                    }),
                    None => None,
                })
            }
            KeyRef::Team(team) => Ok(self
                .id_of("teams", &team)
                .await?
                .map(|_| KeyOwner::Team(team))),
            KeyRef::Pin(_) | KeyRef::Ticket(_) => Ok(None),
        }
    }

    async fn use_key(&self, id: i64, now: u64) -> Result<bool, StoreError> {
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

    async fn session_started(&self, s: SessionStart) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (public_id, origin, key_id, customer, started_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_string())
        .bind(s.origin)
        .bind(s.key_id)
        .bind(s.customer)
        .bind(s.at as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session_ended(
        &self,
        id: SessionId,
        reason: EndReason,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE public_id = ? AND ended_at IS NULL",
        )
        .bind(now as i64)
        .bind(reason.as_str())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sessions(&self, since: u64) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT public_id, origin, customer, started_at, ended_at, end_reason FROM sessions \
             WHERE started_at >= ? ORDER BY started_at, id",
        )
        .bind(since.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    async fn session(
        &self,
        id: SessionId,
    ) -> Result<Option<(SessionRow, Vec<AuditEvent>)>, StoreError> {
        let row = sqlx::query(
            "SELECT public_id, origin, customer, started_at, ended_at, end_reason FROM sessions \
             WHERE public_id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let events = sqlx::query(
            "SELECT at, session, actor, action, detail, source FROM audit_events \
             WHERE session = ? ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(Some((
            session_row(&row)?,
            events.iter().map(audit_event).collect::<Result<_, _>>()?,
        )))
    }

    async fn audit(&self, e: AuditEvent) -> Result<(), StoreError> {
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

    async fn chat_line(&self, session: SessionId, e: ChatEntry) -> Result<(), StoreError> {
        let line =
            serde_json::to_string(&e.line).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT OR IGNORE INTO chat_lines (session, seq, at, line) VALUES (?, ?, ?, ?)",
        )
        .bind(session.to_string())
        .bind(e.seq as i64)
        .bind(e.at as i64)
        .bind(line)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn chat(&self, session: SessionId) -> Result<Vec<ChatEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, at, line FROM chat_lines WHERE session = ? ORDER BY seq")
                .bind(session.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let line: String = r.try_get("line")?;
                Ok(ChatEntry {
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    at: r.try_get::<i64, _>("at")? as u64,
                    line: serde_json::from_str(&line)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    async fn set_notes(
        &self,
        session: SessionId,
        text: String,
        by: String,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_notes (session, text, by_agent, at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (session) DO UPDATE SET text = excluded.text, \
             by_agent = excluded.by_agent, at = excluded.at",
        )
        .bind(session.to_string())
        .bind(text)
        .bind(by)
        .bind(now as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn notes(&self, session: SessionId) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT text, by_agent FROM session_notes WHERE session = ?")
            .bind(session.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("text")?, r.try_get("by_agent")?)))
            .transpose()
    }

    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, session, actor, action, detail, source FROM \
             (SELECT * FROM audit_events ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_event).collect()
    }

    async fn setting(&self, name: String) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn set_setting(&self, name: String, value: String) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) \
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_setting(&self, name: String) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("DELETE FROM settings WHERE name = ? RETURNING value")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }
}

impl Store for SqliteStore {
    fn agent_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(SqliteStore::agent_count(self))
    }
    fn add_agent(&self, agent: NewAgent, now: u64) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::add_agent(self, agent, now))
    }
    fn set_password(&self, name: String, password: String) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::set_password(self, name, password))
    }
    fn set_disabled(&self, name: String, disabled: bool) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::set_disabled(self, name, disabled))
    }
    fn login(&self, name: String, password: String) -> StoreFuture<'_, Option<AgentProfile>> {
        Box::pin(SqliteStore::login(self, name, password))
    }
    fn agents(&self) -> StoreFuture<'_, Vec<AgentRow>> {
        Box::pin(SqliteStore::agents(self))
    }
    fn add_team(&self, name: String, now: u64) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::add_team(self, name, now))
    }
    fn set_member(&self, team: String, agent: String, member: bool) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::set_member(self, team, agent, member))
    }
    fn teams(&self) -> StoreFuture<'_, Vec<TeamRow>> {
        Box::pin(SqliteStore::teams(self))
    }
    fn create_key(&self, owner: KeyFor, ttl: Duration, now: u64) -> StoreFuture<'_, (String, u64)> {
        Box::pin(SqliteStore::create_key(self, owner, ttl, now))
    }
    fn find_key(&self, pin: String) -> StoreFuture<'_, Option<FoundKey>> {
        Box::pin(SqliteStore::find_key(self, pin))
    }
    fn use_key(&self, id: i64, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(SqliteStore::use_key(self, id, now))
    }
    fn session_started(&self, start: SessionStart) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::session_started(self, start))
    }
    fn session_ended(&self, id: SessionId, reason: EndReason, now: u64) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::session_ended(self, id, reason, now))
    }
    fn sessions(&self, since: u64) -> StoreFuture<'_, Vec<SessionRow>> {
        Box::pin(SqliteStore::sessions(self, since))
    }
    fn session(&self, id: SessionId) -> StoreFuture<'_, Option<(SessionRow, Vec<AuditEvent>)>> {
        Box::pin(SqliteStore::session(self, id))
    }
    fn audit(&self, event: AuditEvent) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::audit(self, event))
    }
    fn audit_events(&self, limit: u32) -> StoreFuture<'_, Vec<AuditEvent>> {
        Box::pin(SqliteStore::audit_events(self, limit))
    }
    fn chat_line(&self, session: SessionId, entry: ChatEntry) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::chat_line(self, session, entry))
    }
    fn chat(&self, session: SessionId) -> StoreFuture<'_, Vec<ChatEntry>> {
        Box::pin(SqliteStore::chat(self, session))
    }
    fn set_notes(
        &self,
        session: SessionId,
        text: String,
        by: String,
        now: u64,
    ) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::set_notes(self, session, text, by, now))
    }
    fn notes(&self, session: SessionId) -> StoreFuture<'_, Option<(String, String)>> {
        Box::pin(SqliteStore::notes(self, session))
    }
    fn add_script(&self, script: NewScript) -> StoreFuture<'_, i64> {
        Box::pin(SqliteStore::add_script(self, script))
    }
    fn remove_script(&self, id: i64) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::remove_script(self, id))
    }
    fn all_scripts(&self) -> StoreFuture<'_, Vec<(i64, Script)>> {
        Box::pin(SqliteStore::all_scripts(self))
    }
    fn scripts_for(&self, agent: String, teams: Vec<String>) -> StoreFuture<'_, Vec<Script>> {
        Box::pin(SqliteStore::scripts_for(self, agent, teams))
    }
    fn setting(&self, name: String) -> StoreFuture<'_, Option<String>> {
        Box::pin(SqliteStore::setting(self, name))
    }
    fn set_setting(&self, name: String, value: String) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::set_setting(self, name, value))
    }
    fn take_setting(&self, name: String) -> StoreFuture<'_, Option<String>> {
        Box::pin(SqliteStore::take_setting(self, name))
    }
    fn add_issue_type(&self, team: String, title: String) -> StoreFuture<'_, i64> {
        Box::pin(SqliteStore::add_issue_type(self, team, title))
    }
    fn remove_issue_type(&self, id: i64) -> StoreFuture<'_, ()> {
        Box::pin(SqliteStore::remove_issue_type(self, id))
    }
    fn issue_types(&self) -> StoreFuture<'_, Vec<IssueType>> {
        Box::pin(SqliteStore::issue_types(self))
    }
    fn create_ticket(
        &self,
        owner: KeyFor,
        ticket: Ticket,
        now: u64,
    ) -> StoreFuture<'_, (String, u64)> {
        Box::pin(SqliteStore::create_ticket(self, owner, ticket, now))
    }
    fn link_owner(&self, link: KeyRef) -> StoreFuture<'_, Option<KeyOwner>> {
        Box::pin(SqliteStore::link_owner(self, link))
    }
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }
}

/// A script row, scoped `team NAME` or `agent LOGIN`.
fn script_row(r: &sqlx::sqlite::SqliteRow) -> Result<(i64, Script), StoreError> {
    let team: Option<String> = r.try_get("team")?;
    let agent: Option<String> = r.try_get("agent")?;
    Ok((
        r.try_get("id")?,
        Script {
            title: r.try_get("title")?,
            text: r.try_get("text")?,
            url: r.try_get("url")?,
            scope: match (team, agent) {
                (Some(t), _) => format!("team {t}"),
                (None, Some(a)) => format!("agent {a}"),
                (None, None) => String::new(),
            },
        },
    ))
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

    async fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).await.expect("open");
        (dir, store)
    }

    fn agent(name: &str, display: Option<&str>) -> NewAgent {
        NewAgent {
            name: name.into(),
            display: display.map(Into::into),
            password: "correct horse".into(),
        }
    }

    #[tokio::test]
    async fn logins_return_the_profile_and_refuse_wrong_unknown_and_disabled() {
        let (_dir, store) = open().await;
        let s: &dyn Store = &store;
        s.add_agent(agent("alice", Some("Alice R.")), 0)
            .await
            .expect("add");
        assert!(matches!(
            s.add_agent(agent("alice", None), 0).await,
            Err(StoreError::AgentExists(_))
        ));
        assert!(matches!(
            s.add_agent(agent("bob", Some("Bob\n")), 0).await,
            Err(StoreError::BadDisplayName)
        ));
        s.add_team("support".into(), 0).await.expect("team");
        s.set_member("support".into(), "alice".into(), true)
            .await
            .expect("member");
        let p = s
            .login("alice".into(), "correct horse".into())
            .await
            .expect("login")
            .expect("profile");
        assert_eq!(p.display, "Alice R.");
        assert_eq!(p.teams.iter().collect::<Vec<_>>(), ["support"]);
        assert!(
            s.login("alice".into(), "wrong".into())
                .await
                .expect("login")
                .is_none()
        );
        assert!(
            s.login("zoe".into(), "correct horse".into())
                .await
                .expect("login")
                .is_none()
        );
        s.set_disabled("alice".into(), true).await.expect("disable");
        assert!(
            s.login("alice".into(), "correct horse".into())
                .await
                .expect("login")
                .is_none()
        );
        let rows = s.agents().await.expect("list");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].disabled);
        assert_eq!(rows[0].teams, ["support"]);
        s.set_member("support".into(), "alice".into(), false)
            .await
            .expect("remove");
        assert_eq!(
            s.teams().await.expect("teams"),
            [TeamRow {
                name: "support".into(),
                members: vec![]
            }]
        );
        assert!(matches!(
            s.set_member("nope".into(), "alice".into(), true).await,
            Err(StoreError::NoSuchTeam(_))
        ));
    }

    #[tokio::test]
    async fn keys_are_found_by_their_pin_and_stored_only_as_an_hmac() {
        let (dir, store) = open().await;
        let s: &dyn Store = &store;
        s.add_agent(agent("alice", None), 0).await.expect("add");
        let (pin, exp) = s
            .create_key(
                KeyFor::Agent("alice".into()),
                Duration::from_secs(600),
                1000,
            )
            .await
            .expect("key");
        assert_eq!(exp, 1600);
        let found = s.find_key(pin.clone()).await.expect("find").expect("some");
        assert_eq!(
            found.owner,
            KeyOwner::Agent {
                login: "alice".into(),
                display: "alice".into()
            }
        );
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
        s.close().await.expect("close");
        let again = SqliteStore::open(dir.path()).await.expect("reopen");
        let s: &dyn Store = &again;
        assert!(s.find_key(pin.clone()).await.expect("find").is_some());
        // A disabled agent's key opens nothing.
        s.set_disabled("alice".into(), true).await.expect("disable");
        let found = s.find_key(pin).await.expect("find").expect("some");
        assert!(pairing::check_key(Some(found.record), 1001).is_err());
    }

    #[tokio::test]
    async fn team_keys_lead_to_the_team_and_agents_have_a_limited_number_of_keys() {
        let (_dir, store) = open().await;
        let s: &dyn Store = &store;
        s.add_agent(agent("alice", None), 0).await.expect("add");
        assert!(matches!(
            s.create_key(
                KeyFor::Team {
                    team: "support".into(),
                    by: None
                },
                Duration::from_secs(600),
                1000
            )
            .await,
            Err(StoreError::NoSuchTeam(_))
        ));
        s.add_team("support".into(), 0).await.expect("team");
        let (pin, _) = s
            .create_key(
                KeyFor::Team {
                    team: "support".into(),
                    by: Some("alice".into()),
                },
                Duration::from_secs(600),
                1000,
            )
            .await
            .expect("team key");
        let found = s.find_key(pin).await.expect("find").expect("some");
        assert_eq!(found.owner, KeyOwner::Team("support".into()));
        // Team keys do not count against the agent's own.
        for _ in 0..pairing::MAX_LIVE_KEYS_PER_AGENT {
            s.create_key(
                KeyFor::Agent("alice".into()),
                Duration::from_secs(600),
                1000,
            )
            .await
            .expect("key");
        }
        assert!(matches!(
            s.create_key(
                KeyFor::Agent("alice".into()),
                Duration::from_secs(600),
                1000
            )
            .await,
            Err(StoreError::TooManyKeys { .. })
        ));
        // Expired keys do not count.
        assert!(
            s.create_key(
                KeyFor::Agent("alice".into()),
                Duration::from_secs(600),
                1600
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_key_is_used_once() {
        let (_dir, store) = open().await;
        let s: &dyn Store = &store;
        s.add_agent(agent("alice", None), 0).await.expect("add");
        let (pin, _) = s
            .create_key(
                KeyFor::Agent("alice".into()),
                Duration::from_secs(600),
                1000,
            )
            .await
            .expect("key");
        let found = s.find_key(pin).await.expect("find").expect("some");
        assert!(s.use_key(found.id, 1001).await.expect("use"));
        assert!(!s.use_key(found.id, 1001).await.expect("use twice"));
        assert!(
            s.create_key(KeyFor::Agent("nobody".into()), Duration::from_secs(600), 0)
                .await
                .is_err()
        );
        assert!(matches!(
            s.create_key(KeyFor::Agent("alice".into()), Duration::from_secs(1), 0)
                .await,
            Err(StoreError::BadTtl)
        ));
    }

    #[tokio::test]
    async fn the_history_keeps_sessions_and_their_events() {
        let (_dir, store) = open().await;
        let s: &dyn Store = &store;
        let id = SessionId(0xabc);
        s.session_started(SessionStart {
            id,
            origin: "team support".into(),
            key_id: None,
            customer: "Ann".into(),
            at: 100,
        })
        .await
        .expect("start");
        for (at, action) in [(101, "session.accepted"), (102, "session.transferred")] {
            s.audit(AuditEvent {
                at,
                session: Some(id),
                actor: Actor::Agent("alice".into()),
                action: action.into(),
                detail: String::new(),
                source: None,
            })
            .await
            .expect("audit");
        }
        s.session_ended(id, EndReason::AgentEnded, 200)
            .await
            .expect("end");
        let rows = s.sessions(50).await.expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].end_reason.as_deref(), Some("agent_ended"));
        assert!(s.sessions(101).await.expect("list").is_empty());
        let (row, events) = s.session(id).await.expect("show").expect("some");
        assert_eq!(row.origin, "team support");
        let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["session.accepted", "session.transferred"]);
        assert!(s.session(SessionId(1)).await.expect("show").is_none());
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
