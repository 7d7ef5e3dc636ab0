//! The public portal end to end: a relay serving its pages, the issue form and a help link making
//! tickets, the key page, the host downloaded from the portal and run with no arguments (its
//! file name carries the ticket, its tail the relay), and the request reaching the right queue
//! with the customer's words; then the same in a real headless browser over HTTPS.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::AgentClient;
use tether_protocol::desk::{QueueEntry, QueueId};
use tether_protocol::msg::ServerMsg;
use tether_tests::http::{self, form};
use tether_tests::webdriver::Browser;
use tether_tests::{ChildGuard, RelayProc, TEST_PASSWORD, Xvfb};

/// A relay with its portal (HTTPS and plain HTTP) offering the host build, a team with a
/// problem type, and an agent in it. The build is `tether-run`, which `cargo test` builds and
/// which runs as the host under a `tether-host…` name.
fn portal_relay(downloads: &std::path::Path) -> anyhow::Result<RelayProc> {
    std::fs::copy(
        tether_tests::bin("tether-run"),
        downloads.join("tether-host-linux-x86_64"),
    )?;
    let relay = RelayProc::start_args(&[
        "--portal-listen",
        "127.0.0.1:0",
        "--portal-listen-http",
        "127.0.0.1:0",
        "--portal-title",
        "Acme Help Desk",
        "--downloads",
        downloads.to_str().context("path")?,
    ])?;
    let pw = format!("{TEST_PASSWORD}\n");
    relay.cli(
        &["user", "add", "alice", "--display", "Alice A."],
        Some(&pw),
    )?;
    relay.cli(&["team", "add", "Printing"], None)?;
    relay.cli(&["team", "member", "add", "Printing", "alice"], None)?;
    relay.cli(&["issue-type", "add", "Printing", "Printer problems"], None)?;
    Ok(relay)
}

/// The portal's address over `scheme` (`http` or `https`).
fn portal_url(relay: &RelayProc, scheme: &str) -> anyhow::Result<String> {
    relay
        .portal
        .iter()
        .find(|u| u.starts_with(&format!("{scheme}://")))
        .cloned()
        .with_context(|| format!("no {scheme} portal"))
}

async fn login(relay: &RelayProc, who: &str) -> anyhow::Result<AgentClient> {
    Ok(AgentClient::login(&relay.addr, relay.fingerprint_bytes(), who, TEST_PASSWORD).await?)
}

/// The next queue entry that `f` picks, within 30 s.
async fn entry(
    agent: &mut AgentClient,
    f: impl Fn(&QueueEntry) -> bool,
) -> anyhow::Result<QueueEntry> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let ServerMsg::Queue { entries } = agent.next_event().await?
                && let Some(e) = entries.into_iter().find(|e| f(e))
            {
                return anyhow::Ok(e);
            }
        }
    })
    .await
    .context("the request did not reach the queue within 30 s")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_form_ticket_and_the_downloaded_host_reach_the_team_queue() -> anyhow::Result<()> {
    let x = Xvfb::start(640, 480)?;
    let downloads = tempfile::tempdir()?;
    let relay = portal_relay(downloads.path())?;
    let web = portal_url(&relay, "http")?;
    let mut alice = login(&relay, "alice").await?;

    // The first page offers the key field and the team's problem type, with a CSRF token.
    let page = http::request(&web, "GET", "/", None, None).await?;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Printer problems"));
    let cookie = page.cookie().context("no CSRF cookie")?;
    let token = page.csrf().context("no CSRF field")?;

    // The form makes a ticket and sends the browser to its page, which escapes the words.
    let body = form(&[
        ("csrf", &token),
        ("name", "Carol <b>Customer</b>"),
        ("problem", "1"),
        (
            "description",
            "The printer says <script>PC LOAD LETTER</script>",
        ),
    ]);
    let sent = http::request(&web, "POST", "/issue", Some(&cookie), Some(&body)).await?;
    assert_eq!(sent.status, 303, "{}", sent.text());
    let ticket_path = sent.header("location").context("no redirect")?.to_string();
    let ticket = ticket_path.strip_prefix("/k/").context("not a ticket")?;
    let page = http::request(&web, "GET", &ticket_path, None, None).await?;
    let text = page.text();
    assert_eq!(page.status, 200);
    assert!(text.contains("the Printing team"), "{text}");
    assert!(text.contains("Carol &lt;b&gt;Customer&lt;/b&gt;") && !text.contains("<script>"));
    assert!(text.contains(&relay.fingerprint) && text.contains(&relay.addr));
    let href = format!("/download/linux-x86_64/{ticket}");
    assert!(text.contains(&href));

    // The download is named after the ticket and carries the relay.
    let dl = http::request(&web, "GET", &href, None, None).await?;
    assert_eq!(dl.status, 200);
    let name = format!("tether-host-{ticket}");
    assert_eq!(
        dl.header("content-disposition"),
        Some(format!("attachment; filename=\"{name}\"").as_str())
    );
    let file = downloads.path().join(&name);
    std::fs::write(&file, &dl.body)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;

    // Run with no arguments but --headless: it finds its ticket and its relay by itself.
    let (log, err) = ChildGuard::log_file()?;
    let _host = ChildGuard::with_log(
        "tether-host (downloaded)",
        std::process::Command::new(&file)
            .arg("--headless")
            .env("DISPLAY", x.display())
            .env("TETHER_LANG", "en")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()?,
        log,
    );
    let team = QueueId::Team("Printing".into());
    let e = entry(&mut alice, |e| e.queue == team).await?;
    assert_eq!(e.customer.name, "Carol <b>Customer</b>");
    assert_eq!(
        e.kind,
        tether_protocol::desk::EntryKind::Waiting {
            via: tether_protocol::desk::Via::Portal("Printing".into())
        }
    );
    let request = e.customer.request.context("no request")?;
    assert_eq!(request.problem.as_deref(), Some("Printer problems"));
    assert_eq!(
        request.description,
        "The printer says <script>PC LOAD LETTER</script>"
    );

    // The ticket worked once: its page now says so.
    let again = http::request(&web, "GET", &ticket_path, None, None).await?;
    assert_eq!(again.status, 410);
    assert!(again.text().contains("already been used"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_uses_the_key_page_a_help_link_and_the_issue_form() -> anyhow::Result<()> {
    let downloads = tempfile::tempdir()?;
    let relay = portal_relay(downloads.path())?;
    let site = portal_url(&relay, "https")?;
    let mut alice = login(&relay, "alice").await?;
    let shots = std::env::temp_dir().join(format!("tether-portal-shots-{}", std::process::id()));
    let browser = Browser::start(&shots)?;
    let result = browse(&browser, &site, &relay, &mut alice).await;
    if result.is_err() {
        let shot = browser.screenshot("failure");
        eprintln!("screenshot of the page at the failure: {shot:?}");
    } else {
        let _ = std::fs::remove_dir_all(&shots);
    }
    result
}

async fn browse(
    b: &Browser,
    site: &str,
    relay: &RelayProc,
    alice: &mut AgentClient,
) -> anyhow::Result<()> {
    // A key typed on the first page leads to its page: the download and the command.
    let key = relay.cli(&["key", "create", "--agent", "alice"], None)?;
    let pin = key.lines().next().context("no PIN")?.to_string();
    b.goto(&format!("{site}/"))?;
    b.type_into("#key", &pin)?;
    b.click("form[action='/key'] button")?;
    b.wait_url("the key page", |u| u.ends_with(&format!("/s/{pin}")))?;
    let text = b.text()?;
    anyhow::ensure!(text.contains("Start your support session"), "{text}");
    anyhow::ensure!(text.contains("Alice A.") && text.contains(&relay.fingerprint));
    let href = b.attribute("a.button", "href")?;
    anyhow::ensure!(
        href.ends_with(&format!("/download/linux-x86_64/{pin}")),
        "download link {href}"
    );
    b.screenshot("key-page")?;

    // A help link asks for a name and the need, and makes a ticket into the agent's queue.
    b.goto(&format!("{site}/a/alice"))?;
    anyhow::ensure!(b.text()?.contains("Get help from Alice A."));
    b.type_into("#name", "Dan Driver")?;
    b.type_into("#description", "My mouse is stuck")?;
    b.click("form button")?;
    b.wait_url("the ticket page", |u| u.contains("/k/"))?;
    anyhow::ensure!(b.text()?.contains("My mouse is stuck"));

    // The issue form: a name, the problem type, a description.
    b.goto(&format!("{site}/"))?;
    b.type_into("#name", "Erin Example")?;
    b.click("#problem option[value='1']")?;
    b.type_into("#description", "Paper jam on floor 3")?;
    b.click("form[action='/issue'] button")?;
    let url = b.wait_url("the ticket page", |u| u.contains("/k/"))?;
    let ticket = url.rsplit('/').next().context("no ticket")?.to_string();
    let text = b.text()?;
    anyhow::ensure!(text.contains("the Printing team") && text.contains("Paper jam on floor 3"));
    b.screenshot("ticket-page")?;

    // The team's agent sees the request once the customer runs the host with the ticket.
    let x = Xvfb::start(640, 480)?;
    let _host = tether_tests::spawn_host(&x.display(), &ticket, &relay.addr, &relay.fingerprint)?;
    let team = QueueId::Team("Printing".into());
    let e = entry(alice, |e| e.queue == team).await?;
    anyhow::ensure!(e.customer.name == "Erin Example", "{e:?}");
    let r = e.customer.request.context("no request")?;
    anyhow::ensure!(r.description == "Paper jam on floor 3", "{r:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_portal_route_answers_bad_input_with_a_clear_page() -> anyhow::Result<()> {
    let downloads = tempfile::tempdir()?;
    let relay = portal_relay(downloads.path())?;
    let web = portal_url(&relay, "http")?;
    let get = |path: &'static str| http::request(&web, "GET", path, None, None);

    // Every page: a strict policy, no sniffing, no framing.
    let first = get("/").await?;
    let csp = first.header("content-security-policy").context("no CSP")?;
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    assert_eq!(first.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(first.header("x-frame-options"), Some("DENY"));
    let set = first.header("set-cookie").context("no cookie")?;
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    let cookie = first.cookie().context("cookie")?;
    let token = first.csrf().context("token")?;
    assert_eq!(get("/portal.css").await?.status, 200);
    assert_eq!(get("/nowhere").await?.status, 404);
    assert_eq!(get("/logo").await?.status, 404);

    // Forms without the cookie, with another token, or with none are refused.
    let key = |t: &str| form(&[("csrf", t), ("key", "123456789")]);
    let post = |path: &'static str, cookie: Option<String>, body: String| {
        let web = web.clone();
        async move { http::request(&web, "POST", path, cookie.as_deref(), Some(&body)).await }
    };
    assert_eq!(post("/key", None, key(&token)).await?.status, 403);
    assert_eq!(
        post("/key", Some(cookie.clone()), key("00")).await?.status,
        403
    );
    assert_eq!(
        post("/key", Some(cookie.clone()), form(&[("key", "1")]))
            .await?
            .status,
        403
    );
    let ok = post("/key", Some(cookie.clone()), key(&token)).await?;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/s/123456789"));
    let bad = post(
        "/key",
        Some(cookie.clone()),
        form(&[("csrf", &token), ("key", "<b>12</b>")]),
    )
    .await?;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("not a session key") && !bad.text().contains("<b>12"));

    // Issue forms: a missing problem type, an oversized name, a huge body.
    let issue = |name: &str, problem: &str| {
        form(&[
            ("csrf", &token),
            ("name", name),
            ("problem", problem),
            ("description", "x"),
        ])
    };
    let r = post("/issue", Some(cookie.clone()), issue("Carol", "99")).await?;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("pick the kind of problem"));
    let long = "n".repeat(101);
    let r = post("/issue", Some(cookie.clone()), issue(&long, "1")).await?;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at most 100 characters"));
    let huge = form(&[("csrf", &token), ("description", &"d".repeat(40_000))]);
    assert_eq!(
        post("/issue", Some(cookie.clone()), huge).await?.status,
        413
    );

    // Keys: malformed, unknown, and a real one that the page does not use up.
    assert_eq!(get("/s/12345").await?.status, 400);
    assert_eq!(get("/k/not-a-ticket").await?.status, 400);
    let wrong = get("/s/000000001").await?;
    assert_eq!(wrong.status, 404);
    assert!(wrong.text().contains("not valid"));
    let made = relay.cli(&["key", "create", "--agent", "alice"], None)?;
    let pin = made.lines().next().context("PIN")?.to_string();
    let path = format!("/s/{pin}");
    for _ in 0..2 {
        let page = http::request(&web, "GET", &path, None, None).await?;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("Alice A."));
    }

    // Help links: unknown names and names with markup lead nowhere, safely.
    assert_eq!(get("/a/nobody").await?.status, 404);
    let r = get("/t/%3Cscript%3E").await?;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("<script>"));
    let r = get("/t/Printing").await?;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Get help from the Printing team"));

    // Downloads: unknown systems and malformed keys are refused; a plain download is offered.
    assert_eq!(get("/download/amiga-m68k").await?.status, 404);
    assert_eq!(
        get("/download/linux-x86_64/..%2F..%2Fetc").await?.status,
        400
    );
    let plain = get("/download/linux-x86_64").await?;
    assert_eq!(
        plain.header("content-disposition"),
        Some("attachment; filename=\"tether-host\"")
    );
    assert!(plain.body.ends_with(b"TETHERCF"));

    // Wrong keys count against the source like the host's: the 20th wrong guess in ten
    // minutes locks the source out, even for the right key.
    let mut limited = false;
    for i in 0..25 {
        let path = format!("/s/{:09}", 100 + i);
        let r = http::request(&web, "GET", &path, None, None).await?;
        if r.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "wrong keys were never limited");
    let page = http::request(&web, "GET", &format!("/s/{pin}"), None, None).await?;
    assert_eq!(page.status, 429);
    assert!(page.text().contains("Too many attempts"));
    Ok(())
}

/// The next invitation answer or refusal on `agent`.
async fn invitation(agent: &mut AgentClient) -> anyhow::Result<ServerMsg> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let m = agent.next_event().await?;
            if matches!(m, ServerMsg::Invitation { .. } | ServerMsg::Refused(_)) {
                return anyhow::Ok(m);
            }
        }
    })
    .await
    .context("no answer to the invitation within 30 s")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_invitations_go_to_one_recipient_through_the_mail_server() -> anyhow::Result<()> {
    use tether_protocol::msg::{Denied, Refusal};
    let (smtp, mut inbox) = tether_tests::smtp::start().await?;
    let relay = RelayProc::start_args(&[
        "--smtp-url",
        &smtp,
        "--smtp-from",
        "Acme Support <support@acme.example>",
    ])?;
    let pw = format!("{TEST_PASSWORD}\n");
    relay.cli(
        &["user", "add", "alice", "--display", "Alice A."],
        Some(&pw),
    )?;
    relay.cli(&["user", "add", "bob"], Some(&pw))?;
    let mut alice = login(&relay, "alice").await?;
    let mut bob = login(&relay, "bob").await?;
    alice.create_key(None, None).await?;
    let key = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let ServerMsg::KeyCreated(k) = alice.next_event().await? {
                return anyhow::Ok(k);
            }
        }
    })
    .await??;

    alice
        .email_invite(key.pin.clone(), "carol@example.com".into())
        .await?;
    let ServerMsg::Invitation { to, sent, .. } = invitation(&mut alice).await? else {
        anyhow::bail!("refused");
    };
    assert_eq!((to.as_str(), sent), ("carol@example.com", true));
    let mail = tokio::time::timeout(Duration::from_secs(15), inbox.recv())
        .await?
        .context("no mail")?;
    assert_eq!(mail.to, ["carol@example.com"]);
    assert!(
        mail.data
            .contains("Alice A. invites you to a remote support session")
    );
    assert!(mail.data.contains(&key.url));
    assert!(
        mail.data
            .contains(&tether_protocol::pairing::display_pin(&key.pin))
    );

    // Several recipients, or a header smuggled in, are not an address; another agent's key is
    // not theirs to send.
    for bad in [
        "a@example.com, b@example.com",
        "a@example.com\r\nBcc: b@example.com",
    ] {
        alice.email_invite(key.pin.clone(), bad.into()).await?;
        let m = invitation(&mut alice).await?;
        assert_eq!(m, ServerMsg::Refused(Refusal::NotAllowed(Denied::BadEmail)));
    }
    bob.email_invite(key.pin.clone(), "dan@example.com".into())
        .await?;
    let m = invitation(&mut bob).await?;
    assert_eq!(
        m,
        ServerMsg::Refused(Refusal::NotAllowed(Denied::NotYourKey))
    );
    assert!(inbox.try_recv().is_err(), "a refused invitation was mailed");
    Ok(())
}

/// A certificate authority, and a certificate for `localhost` it issued (PEM files in `dir`).
fn authority_and_certificate(dir: &std::path::Path, name: &str) -> anyhow::Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca_cert.pem())?;
    std::fs::write(dir.join(format!("{name}-cert.pem")), cert.pem())?;
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_a_ca_issued_certificate_is_verified_by_its_authority() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let pki = tempfile::tempdir()?;
    authority_and_certificate(pki.path(), "good")?;
    authority_and_certificate(pki.path(), "other")?;
    let path = |f: &str| pki.path().join(f).display().to_string();
    let relay = RelayProc::start_args(&[
        "--tls-cert",
        &path("good-cert.pem"),
        "--tls-key",
        &path("good-key.pem"),
    ])?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let mut alice = login(&relay, "alice").await?;
    let port = relay.addr.rsplit(':').next().context("port")?;
    let by_name = format!("localhost:{port}");
    let host = |ca: &str| {
        let (pin, _) = relay.create_key("alice")?;
        let (log, err) = ChildGuard::log_file()?;
        anyhow::Ok(ChildGuard::with_log(
            "tether-host",
            tether_tests::Program::host()
                .command()
                .args([
                    &pin,
                    "--relay",
                    &by_name,
                    "--relay-ca",
                    &path(ca),
                    "--headless",
                ])
                .env("DISPLAY", x.display())
                .env("TETHER_LANG", "en")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(err)
                .spawn()?,
            log,
        ))
    };

    // Another authority does not vouch for the relay: a hard error, nothing joins.
    let mut stranger = host("other-ca.pem")?;
    let status = stranger.wait_exit(Duration::from_secs(30))?;
    assert_ne!(status.code(), Some(0));
    assert!(
        stranger
            .stderr_text()
            .contains("did not prove its identity"),
        "{}",
        stranger.stderr_text()
    );

    // Its own authority does.
    let _host = host("good-ca.pem")?;
    let e = entry(&mut alice, |e| e.queue == QueueId::Personal("alice".into())).await?;
    assert!(!e.customer.name.is_empty());
    Ok(())
}
