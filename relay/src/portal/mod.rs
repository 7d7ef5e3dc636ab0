//! The public portal: web pages the relay serves next to QUIC, where a customer enters the key
//! an agent gave them, submits an issue into a team's queue, or follows an agent's or a team's
//! help link, then downloads the host and runs it.
//!
//! - [`pages`]: the HTML (maud, escaped by construction, no JavaScript).
//! - [`listen`]: the HTTPS and plain HTTP listeners (a bounded number of connections, a TLS
//!   handshake deadline).
//!
//! Every page sets a strict Content-Security-Policy; every form carries a CSRF token bound to a
//! cookie (double submit, HMAC with a per-process secret). Key checks go through
//! [`Shared::admit_key`] with [`Use::Peek`], so the portal's guesses count against the same
//! per-source and guess-rate limits as the host's; tickets are limited per source.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tether_protocol::embed::{self, Embedded};
use tether_protocol::msg::{Denied, Refusal, Request};
use tether_protocol::pairing::{self, AttemptLimiter, KeyRef};
use tracing::warn;

use crate::core::KeyOwner;
use crate::server::{Admitted, Shared, Use};
use crate::store::{Actor, KeyFor, StoreError, Ticket};
use listen::PeerAddr;

pub mod listen;
mod pages;

/// Longest name on a form.
pub const MAX_NAME: usize = 100;
/// Longest description on a form.
pub const MAX_DESCRIPTION: usize = 2000;
/// Largest form body accepted.
const MAX_BODY: usize = 16 * 1024;
/// The CSRF cookie.
const CSRF_COOKIE: &str = "tether_csrf";
/// What every page may load: its own stylesheet and images, nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// How the portal looks and what it offers.
#[derive(Debug, Clone, Default)]
pub struct PortalConfig {
    /// HTTPS address (the relay's certificate, or the one given).
    pub listen: Option<SocketAddr>,
    /// Plain HTTP address, for a reverse proxy in front.
    pub listen_http: Option<SocketAddr>,
    /// The operator's name on every page.
    pub title: String,
    /// The operator's logo (PNG, JPEG or SVG).
    pub logo: Option<PathBuf>,
    /// Folder of host builds: `tether-host-linux-x86_64`, `tether-host-windows-x86_64.exe`, ...
    pub downloads: Option<PathBuf>,
}

/// A host build the portal offers.
#[derive(Debug, Clone)]
pub(crate) struct Download {
    /// `linux-x86_64`, as in the file name.
    pub(crate) platform: String,
    /// What people read: "Linux (x86_64)".
    pub(crate) label: String,
    /// `.exe` for Windows, empty otherwise.
    pub(crate) suffix: &'static str,
    /// The file with the relay's settings appended.
    bytes: Bytes,
}

impl Download {
    /// The operating system family, to match the browser's.
    fn os(&self) -> &str {
        self.platform.split('-').next().unwrap_or("")
    }
}

/// The portal's state, shared by its handlers.
pub(crate) struct Portal {
    shared: Arc<Shared>,
    title: String,
    assets: Arc<Assets>,
    /// `HOST:PORT` of the relay's QUIC listener, as customers reach it.
    relay_addr: String,
    fingerprint: String,
    csrf_key: [u8; 32],
    /// Tickets made per source.
    tickets: Mutex<AttemptLimiter>,
    /// Whether the connection came through a reverse proxy on this machine (plain HTTP
    /// listener): then the client's address is the last one the proxy added.
    https: bool,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("title", &self.title)
            .finish()
    }
}

/// What the portal needs from the relay besides its shared state.
pub(crate) struct PortalParts {
    pub(crate) relay_addr: String,
    pub(crate) fingerprint: String,
}

/// The files the portal serves, loaded once for all its listeners.
pub(crate) struct Assets {
    logo: Option<(Bytes, &'static str)>,
    downloads: Vec<Download>,
}

impl Assets {
    /// Loads the logo and the downloads (each with the relay's settings appended).
    pub(crate) fn load(cfg: &PortalConfig, parts: &PortalParts) -> anyhow::Result<Assets> {
        let logo = match &cfg.logo {
            Some(p) => Some(load_logo(p)?),
            None => None,
        };
        let settings = embed::trailer(&Embedded {
            relay: parts.relay_addr.clone(),
            fingerprint: parts.fingerprint.clone(),
        });
        let downloads = match &cfg.downloads {
            Some(dir) => load_downloads(dir, &settings)?,
            None => Vec::new(),
        };
        Ok(Assets { logo, downloads })
    }
}

impl Portal {
    /// A portal for one listener (`https` for the TLS one).
    pub(crate) fn new(
        shared: Arc<Shared>,
        cfg: &PortalConfig,
        assets: Arc<Assets>,
        parts: PortalParts,
        https: bool,
    ) -> anyhow::Result<Portal> {
        let mut csrf_key = [0u8; 32];
        getrandom::fill(&mut csrf_key).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        Ok(Portal {
            shared,
            title: if cfg.title.trim().is_empty() {
                "Tether remote support".into()
            } else {
                cfg.title.clone()
            },
            assets,
            relay_addr: parts.relay_addr,
            fingerprint: parts.fingerprint,
            csrf_key,
            tickets: Mutex::new(AttemptLimiter::default()),
            https,
        })
    }

    fn csrf_token(&self, cookie: &str) -> String {
        // HMAC takes keys of any length; `new_from_slice` cannot fail here.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.csrf_key) else {
            return String::new();
        };
        mac.update(cookie.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    fn public_url(&self) -> &str {
        self.shared.public_url()
    }
}

fn load_logo(p: &Path) -> anyhow::Result<(Bytes, &'static str)> {
    let kind = match p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
    {
        Some(e) if e == "png" => "image/png",
        Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
        Some(e) if e == "svg" => "image/svg+xml",
        _ => anyhow::bail!(
            "{}: the logo must be a .png, .jpg or .svg file",
            p.display()
        ),
    };
    let bytes = std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    anyhow::ensure!(
        bytes.len() <= 1024 * 1024,
        "{}: the logo must be at most 1 MiB",
        p.display()
    );
    Ok((Bytes::from(bytes), kind))
}

/// The host builds in `dir`, named `tether-host-OS-ARCH[.exe]`.
fn load_downloads(dir: &Path, settings: &[u8]) -> anyhow::Result<Vec<Download>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("tether-host-") else {
            continue;
        };
        let (platform, suffix) = match rest.strip_suffix(".exe") {
            Some(p) => (p.to_string(), ".exe"),
            None => (rest.to_string(), ""),
        };
        let Some((os, arch)) = platform.split_once('-') else {
            continue;
        };
        let label = match os {
            "linux" => "Linux",
            "windows" => "Windows",
            "macos" => "macOS",
            _ => continue,
        };
        let mut bytes = std::fs::read(entry.path())
            .map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?;
        bytes.extend_from_slice(settings);
        out.push(Download {
            label: format!("{label} ({arch})"),
            platform,
            suffix,
            bytes: Bytes::from(bytes),
        });
    }
    out.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(out)
}

/// The portal's routes.
pub(crate) fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/key", axum::routing::post(post_key))
        .route("/issue", axum::routing::post(post_issue))
        .route("/s/{pin}", get(key_page))
        .route("/k/{ticket}", get(ticket_page))
        .route("/a/{login}", get(agent_link).post(post_agent_link))
        .route("/t/{team}", get(team_link).post(post_team_link))
        .route("/download/{platform}", get(download_plain))
        .route("/download/{platform}/{key}", get(download_keyed))
        .route("/portal.css", get(css))
        .route("/logo", get(logo))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(portal)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The client's address: the peer's, or behind a reverse proxy on this machine (plain HTTP
/// from loopback), the last address it put in `X-Forwarded-For`.
fn client_ip(portal: &Portal, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    if portal.https || !peer.ip().is_loopback() {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .next_back()
        .map(|ip| SocketAddr::new(ip, 0))
        .unwrap_or(peer)
}

/// The CSRF cookie of a request, if it has a well-formed one.
fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A page with a form: the request's CSRF cookie (or a new one, set on the response) and the
/// token the form carries.
struct Csrf {
    token: String,
    set_cookie: Option<String>,
}

fn csrf_for(portal: &Portal, headers: &HeaderMap) -> Csrf {
    if let Some(c) = csrf_cookie(headers) {
        return Csrf {
            token: portal.csrf_token(&c),
            set_cookie: None,
        };
    }
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let c = hex::encode(b);
    let secure = if portal.https { "; Secure" } else { "" };
    Csrf {
        token: portal.csrf_token(&c),
        set_cookie: Some(format!(
            "{CSRF_COOKIE}={c}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )),
    }
}

fn csrf_ok(portal: &Portal, headers: &HeaderMap, token: &str) -> bool {
    let Some(c) = csrf_cookie(headers) else {
        return false;
    };
    let want = portal.csrf_token(&c);
    !want.is_empty() && pairing::same_secret(want.as_bytes(), token.as_bytes())
}

fn html(status: StatusCode, csrf: Option<Csrf>, body: maud::Markup) -> Response {
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response();
    if let Some(cookie) = csrf.and_then(|c| c.set_cookie)
        && let Ok(v) = HeaderValue::from_str(&cookie)
    {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

fn forbidden(portal: &Portal) -> Response {
    html(
        StatusCode::FORBIDDEN,
        None,
        pages::message(
            portal,
            "This form has expired",
            "Go back to the start page, reload it and send the form again.",
        ),
    )
}

async fn index(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let csrf = csrf_for(&p, &headers);
    let types = p.shared.store.issue_types().await.unwrap_or_else(|e| {
        warn!(error = %e, "cannot read issue types");
        Vec::new()
    });
    let body = pages::index(&p, &csrf.token, &types, None, &IssueForm::default());
    html(StatusCode::OK, Some(csrf), body)
}

async fn not_found(State(p): State<Arc<Portal>>) -> Response {
    html(
        StatusCode::NOT_FOUND,
        None,
        pages::message(
            &p,
            "Page not found",
            "Check the address, or start again from the portal's first page.",
        ),
    )
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

async fn post_key(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    if !csrf_ok(&p, &headers, &f.csrf) {
        return forbidden(&p);
    }
    match pairing::parse_ref(&f.key) {
        Ok(KeyRef::Pin(pin)) => Redirect::to(&format!("/s/{pin}")).into_response(),
        Ok(KeyRef::Ticket(t)) => Redirect::to(&format!("/k/{t}")).into_response(),
        Ok(KeyRef::Agent(_) | KeyRef::Team(_)) | Err(_) => {
            let csrf = csrf_for(&p, &headers);
            let types = p.shared.store.issue_types().await.unwrap_or_default();
            let why = "That is not a session key. A session key is 9 digits, like 123 456 789.";
            let body = pages::index(&p, &csrf.token, &types, Some(why), &IssueForm::default());
            html(StatusCode::BAD_REQUEST, Some(csrf), body)
        }
    }
}

/// The issue form and the help link forms.
#[derive(Deserialize, Default)]
pub(crate) struct IssueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) problem: Option<String>,
    #[serde(default)]
    pub(crate) description: String,
}

impl IssueForm {
    /// The customer's words, checked: a name, a description, both within their limits and
    /// without control characters (new lines are allowed in the description).
    fn check(&self) -> Result<(String, String), &'static str> {
        let name = self.name.trim();
        let description = self.description.trim();
        if name.is_empty() {
            return Err("Please give your name.");
        }
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err("Your name must be at most 100 characters, on one line.");
        }
        if description.chars().count() > MAX_DESCRIPTION
            || description
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("The description must be at most 2000 characters.");
        }
        Ok((name.to_string(), description.replace("\r\n", "\n")))
    }
}

async fn post_issue(
    State(p): State<Arc<Portal>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    Form(f): Form<IssueForm>,
) -> Response {
    if !csrf_ok(&p, &headers, &f.csrf) {
        return forbidden(&p);
    }
    let types = p.shared.store.issue_types().await.unwrap_or_default();
    let chosen = f
        .problem
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .and_then(|id| types.iter().find(|t| t.id == id));
    let checked = match (chosen, f.check()) {
        (Some(t), Ok(words)) => Ok((t.clone(), words)),
        (None, _) => Err("Please pick the kind of problem you have."),
        (_, Err(e)) => Err(e),
    };
    let (issue, (name, description)) = match checked {
        Ok(c) => c,
        Err(why) => {
            let csrf = csrf_for(&p, &headers);
            let body = pages::index(&p, &csrf.token, &types, Some(why), &f);
            return html(StatusCode::BAD_REQUEST, Some(csrf), body);
        }
    };
    let owner = KeyFor::Team {
        team: issue.team.clone(),
        by: None,
    };
    let ticket = Ticket {
        name,
        request: Request {
            problem: Some(issue.title.clone()),
            description,
        },
    };
    make_ticket(&p, client_ip(&p, peer, &headers), owner, ticket).await
}

/// Makes a ticket (within the source's limit) and sends the browser to its page.
async fn make_ticket(p: &Portal, client: SocketAddr, owner: KeyFor, ticket: Ticket) -> Response {
    let now = p.shared.now();
    {
        let mut limiter = p.tickets.lock().unwrap_or_else(|e| e.into_inner());
        limiter.prune(now.mono);
        if let Err(r) = limiter.check(client.ip(), now.mono) {
            return refusal_page(p, &r);
        }
        limiter.fail(client.ip(), now.mono);
    }
    let whose = match &owner {
        KeyFor::Agent(a) => format!("agent {a}"),
        KeyFor::Team { team, .. } => format!("team {team}"),
    };
    match p.shared.store.create_ticket(owner, ticket, now.unix).await {
        Ok((secret, _)) => {
            p.shared
                .audit(
                    None,
                    &Actor::Host(client.ip()),
                    "ticket.created",
                    &format!("a request for {whose} from the portal"),
                    Some(client),
                )
                .await;
            Redirect::to(&format!("/k/{secret}")).into_response()
        }
        Err(StoreError::TooManyTickets) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            pages::message(
                p,
                "Too many requests at the moment",
                "Please try again in a few minutes.",
            ),
        ),
        Err(e) => {
            warn!(error = %e, "cannot make a ticket");
            not_available(p)
        }
    }
}

fn not_available(p: &Portal) -> Response {
    html(
        StatusCode::NOT_FOUND,
        None,
        pages::message(
            p,
            "Nobody to help here",
            "This help link does not lead to anyone. Check the address with your support desk.",
        ),
    )
}

async fn key_page(
    State(p): State<Arc<Portal>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    UrlPath(pin): UrlPath<String>,
) -> Response {
    if !pairing::is_pin(&pin) {
        return refusal_page(&p, &Refusal::KeyMalformed);
    }
    start_page(&p, client_ip(&p, peer, &headers), &headers, &pin).await
}

async fn ticket_page(
    State(p): State<Arc<Portal>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    UrlPath(ticket): UrlPath<String>,
) -> Response {
    if !pairing::is_ticket(&ticket) {
        return refusal_page(&p, &Refusal::KeyMalformed);
    }
    start_page(&p, client_ip(&p, peer, &headers), &headers, &ticket).await
}

/// The page that says what to do with a key or ticket, once it is checked (and not used).
async fn start_page(p: &Portal, client: SocketAddr, headers: &HeaderMap, key: &str) -> Response {
    match p.shared.admit_key(client, key, Use::Peek).await {
        Ok(a) => {
            let ua = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let body = pages::start(p, key, &a, os_of(ua));
            html(StatusCode::OK, None, body)
        }
        Err(r) => refusal_page(p, &r),
    }
}

/// The operating system a browser runs on, as the downloads name it.
fn os_of(user_agent: &str) -> &'static str {
    if user_agent.contains("Windows") {
        "windows"
    } else if user_agent.contains("Mac OS") || user_agent.contains("Macintosh") {
        "macos"
    } else {
        "linux"
    }
}

fn refusal_page(p: &Portal, r: &Refusal) -> Response {
    let (status, title, advice) = match r {
        Refusal::KeyMalformed => (
            StatusCode::BAD_REQUEST,
            "That is not a session key".to_string(),
            "A session key is 9 digits, like 123 456 789. Check it with your support agent."
                .to_string(),
        ),
        Refusal::KeyWrong => (
            StatusCode::NOT_FOUND,
            "That session key is not valid".into(),
            "Check the 9 digits with your support agent and type them again.".into(),
        ),
        Refusal::KeyExpired => (
            StatusCode::GONE,
            "This session key has expired".into(),
            "Ask your support agent for a new key.".into(),
        ),
        Refusal::KeyUsed => (
            StatusCode::GONE,
            "This session key has already been used".into(),
            "Each key works once. Ask your support agent for a new key.".into(),
        ),
        Refusal::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts from your network".into(),
            format!(
                "Wait {} minutes and try again.",
                retry_after_secs.div_ceil(60).max(1)
            ),
        ),
        Refusal::NotAllowed(Denied::NoSuchAgent(_) | Denied::NoSuchTeam(_)) => {
            return not_available(p);
        }
        other => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The support server cannot take this request".into(),
            format!("{other}. Try again in a moment."),
        ),
    };
    html(status, None, pages::message(p, &title, &advice))
}

/// A help link's form: the customer's name and what they need.
async fn link_form(p: &Portal, headers: &HeaderMap, link: KeyRef) -> Response {
    let owner = p.shared.store.link_owner(link.clone()).await.ok().flatten();
    let Some(owner) = owner else {
        return not_available(p);
    };
    let csrf = csrf_for(p, headers);
    let body = pages::link_form(p, &csrf.token, &link, &owner, None, &IssueForm::default());
    html(StatusCode::OK, Some(csrf), body)
}

async fn post_link(
    p: &Portal,
    peer: SocketAddr,
    headers: &HeaderMap,
    link: KeyRef,
    f: IssueForm,
) -> Response {
    if !csrf_ok(p, headers, &f.csrf) {
        return forbidden(p);
    }
    let owner = p.shared.store.link_owner(link.clone()).await.ok().flatten();
    let Some(owner) = owner else {
        return not_available(p);
    };
    let (name, description) = match f.check() {
        Ok(w) => w,
        Err(why) => {
            let csrf = csrf_for(p, headers);
            let body = pages::link_form(p, &csrf.token, &link, &owner, Some(why), &f);
            return html(StatusCode::BAD_REQUEST, Some(csrf), body);
        }
    };
    let key_for = match owner {
        KeyOwner::Agent { login, .. } => KeyFor::Agent(login),
        KeyOwner::Team(team) => KeyFor::Team { team, by: None },
    };
    let ticket = Ticket {
        name,
        request: Request {
            problem: None,
            description,
        },
    };
    make_ticket(p, client_ip(p, peer, headers), key_for, ticket).await
}

async fn agent_link(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(login): UrlPath<String>,
) -> Response {
    match pairing::link_name(&login).ok() {
        Some(l) => link_form(&p, &headers, KeyRef::Agent(l)).await,
        None => not_available(&p),
    }
}

async fn team_link(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(team): UrlPath<String>,
) -> Response {
    match pairing::link_name(&team).ok() {
        Some(t) => link_form(&p, &headers, KeyRef::Team(t)).await,
        None => not_available(&p),
    }
}

async fn post_agent_link(
    State(p): State<Arc<Portal>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    UrlPath(login): UrlPath<String>,
    Form(f): Form<IssueForm>,
) -> Response {
    match pairing::link_name(&login).ok() {
        Some(l) => post_link(&p, peer, &headers, KeyRef::Agent(l), f).await,
        None => not_available(&p),
    }
}

async fn post_team_link(
    State(p): State<Arc<Portal>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    UrlPath(team): UrlPath<String>,
    Form(f): Form<IssueForm>,
) -> Response {
    match pairing::link_name(&team).ok() {
        Some(t) => post_link(&p, peer, &headers, KeyRef::Team(t), f).await,
        None => not_available(&p),
    }
}

fn download(p: &Portal, platform: &str, key: Option<&str>) -> Response {
    let Some(d) = p.assets.downloads.iter().find(|d| d.platform == platform) else {
        return html(
            StatusCode::NOT_FOUND,
            None,
            pages::message(
                p,
                "No download for this system",
                "Go back and pick one of the downloads offered.",
            ),
        );
    };
    // The key goes in the file name, so the program starts with it; it is not checked here
    // (the answer would tell a guesser whether a key exists), the relay checks it at join.
    let name = match key {
        Some(k) => format!("tether-host-{k}{}", d.suffix),
        None => format!("tether-host{}", d.suffix),
    };
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        d.bytes.clone(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

async fn download_plain(
    State(p): State<Arc<Portal>>,
    UrlPath(platform): UrlPath<String>,
) -> Response {
    download(&p, &platform, None)
}

async fn download_keyed(
    State(p): State<Arc<Portal>>,
    UrlPath((platform, key)): UrlPath<(String, String)>,
) -> Response {
    if !pairing::is_pin(&key) && !pairing::is_ticket(&key) {
        return refusal_page(&p, &Refusal::KeyMalformed);
    }
    download(&p, &platform, Some(&key))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn logo(State(p): State<Arc<Portal>>) -> Response {
    match &p.assets.logo {
        Some((bytes, kind)) => ([(header::CONTENT_TYPE, *kind)], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The queue a ticket or key leads to, as the customer reads it.
pub(crate) fn queue_words(owner: &KeyOwner) -> String {
    match owner {
        KeyOwner::Agent { display, .. } => display.clone(),
        KeyOwner::Team(t) => format!("the {t} team"),
    }
}

/// Downloads by whether they match the browser's system (matching first).
pub(crate) fn downloads_for<'a>(p: &'a Portal, os: &str) -> Vec<&'a Download> {
    let mut all: Vec<&Download> = p.assets.downloads.iter().collect();
    all.sort_by_key(|d| d.os() != os);
    all
}

/// The fields of the portal that pages show.
pub(crate) struct Shown<'a> {
    pub(crate) title: &'a str,
    pub(crate) has_logo: bool,
    pub(crate) relay_addr: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) public_url: &'a str,
}

impl Portal {
    pub(crate) fn shown(&self) -> Shown<'_> {
        Shown {
            title: &self.title,
            has_logo: self.assets.logo.is_some(),
            relay_addr: &self.relay_addr,
            fingerprint: &self.fingerprint,
            public_url: self.public_url(),
        }
    }
}

/// The admitted key's queue and request, for the start page.
pub(crate) fn admitted_words(a: &Admitted) -> (String, Option<&Ticket>) {
    (queue_words(&a.owner), a.ticket.as_ref())
}
