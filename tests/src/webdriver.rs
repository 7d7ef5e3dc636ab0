//! A real browser for the portal's test: Debian's `chromium` driven by `chromedriver` through
//! the W3C WebDriver protocol (JSON over HTTP on loopback). The driver is a child of the test,
//! killed with it; the browser runs headless with its own temporary profile.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::ChildGuard;

/// The element key of the WebDriver protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session.
#[derive(Debug)]
pub struct Browser {
    port: u16,
    session: String,
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
    /// Where screenshots go.
    pub shots: PathBuf,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless chromium that accepts the relay's self-signed
    /// certificate (the pages are checked, not the certificate: the host pins that).
    pub fn start(shots: &Path) -> anyhow::Result<Browser> {
        let driver = find(&["chromedriver"])
            .context("chromedriver is not installed (apt install chromium chromium-driver)")?;
        let chromium = find(&["chromium", "chromium-browser"])
            .context("chromium is not installed (apt install chromium)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let driver = ChildGuard::new("chromedriver", child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while call(port, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not answer within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1000,1200",
                         format!("--user-data-dir={}", profile.path().display())],
            }
        }}});
        let v = call(port, "POST", "/session", Some(caps))?;
        let session = v["sessionId"]
            .as_str()
            .context("no session id")?
            .to_string();
        std::fs::create_dir_all(shots)?;
        Ok(Browser {
            port,
            session,
            _driver: driver,
            _profile: profile,
            shots: shots.to_path_buf(),
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        call(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    /// Opens an address.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    /// The address shown now.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .cmd("GET", "/url", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The page's visible text (asked again if the page changed under the question).
    pub fn text(&self) -> anyhow::Result<String> {
        let mut tries = 0;
        loop {
            let got = self
                .find("body")
                .and_then(|body| self.cmd("GET", &format!("/element/{body}/text"), None));
            match got {
                Ok(v) => return Ok(v.as_str().unwrap_or("").to_string()),
                Err(e) if tries < 50 && e.to_string().contains("stale element") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the address shown satisfies `f` (a form's answer has loaded), 20 s at most.
    pub fn wait_url(&self, what: &str, f: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url()?;
            if f(&url) {
                // The new document is the current one; wait until it has finished loading.
                let state = self.cmd(
                    "POST",
                    "/execute/sync",
                    Some(json!({"script": "return document.readyState", "args": []})),
                )?;
                if state.as_str() == Some("complete") {
                    return Ok(url);
                }
            }
            if Instant::now() > deadline {
                bail!("the browser did not reach {what} within 20 s (at {url})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v[ELEMENT]
            .as_str()
            .with_context(|| format!("no element {css}: {v}"))?
            .to_string())
    }

    /// Types into the element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css)?;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))?;
        Ok(())
    }

    /// An attribute of the element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> anyhow::Result<String> {
        let e = self.find(css)?;
        let v = self.cmd("GET", &format!("/element/{e}/attribute/{name}"), None)?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    /// Saves a screenshot as `NAME.png` in [`Browser::shots`]; returns its path.
    pub fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let png = decode_base64(v.as_str().context("no screenshot")?)?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// One WebDriver command; its `value`, or the driver's error.
fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: read the headers, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("{method} {path}: the driver closed the connection");
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut payload = raw[end + 4..].to_vec();
    match length {
        Some(len) => {
            while payload.len() < len {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                payload.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            s.read_to_end(&mut payload)?;
        }
    }
    if head.contains("transfer-encoding: chunked") {
        payload = crate::http::dechunk(&payload)?;
    }
    let v: Value =
        serde_json::from_slice(&payload).with_context(|| format!("{method} {path}: not JSON"))?;
    if let Some(err) = v["value"]["error"].as_str() {
        bail!(
            "{method} {path}: {err}: {}",
            v["value"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(v["value"].clone())
}

fn decode_base64(s: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHA: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = ALPHA.iter().position(|a| *a == c).context("not base64")? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
