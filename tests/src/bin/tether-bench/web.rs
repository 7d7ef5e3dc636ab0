//! The `scroll-web` scenarios: a documentation page in a real browser (Chromium), with a sticky
//! header, a sidebar, proportional anti-aliased text, links, inline code and code blocks, paged
//! down with the Page Down key as a reader does; `scroll-web` has a photograph in every other
//! section, `scroll-web-text` none. `scroll-web-back` pages down the page with photographs and
//! back up to reread it, and measures the pages up.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::corpus;
use crate::measure::{Bench, Result_, summarize};
use crate::scenarios::{appeared, photo, still, xdotool};
use crate::{H, W};

/// Sections of the page; every other one has a figure (a photograph) or a code block.
const SECTIONS: usize = 48;
/// Size of the page's photographs, as an article's figures are.
const FIGURE: (usize, usize) = (720, 405);
/// Pages the scenario scrolls.
const PAGES: usize = 40;

/// Chromium in its own process group, killed with all its helpers on drop.
struct Browser {
    child: std::process::Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this child leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn browser(display: &str, page: &Path, profile: &Path) -> anyhow::Result<Browser> {
    use std::os::unix::process::CommandExt as _;
    let child = Command::new("chromium")
        .args([
            "--no-sandbox",
            "--test-type",
            "--no-first-run",
            "--disable-gpu",
            "--disable-smooth-scrolling",
            "--force-device-scale-factor=1",
            "--window-position=0,0",
            &format!("--window-size={W},{H}"),
            &format!("--user-data-dir={}", profile.display()),
            &format!("--app=file://{}", page.display()),
        ])
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("chromium is missing (apt-get install chromium)")?;
    Ok(Browser { child })
}

/// A 24-bit BMP of a `w`x`h` part of a BGRX screen-sized picture, from (`x`, `y`).
fn bmp(src: &[u8], x: usize, y: usize, (w, h): (usize, usize)) -> Vec<u8> {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(w as i32).to_le_bytes());
    out.extend_from_slice(&(h as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    let pitch = usize::from(W) * 4;
    // Rows bottom up, pixels as BGR.
    for r in (y..y + h).rev() {
        let start = out.len();
        for px in src[r * pitch + x * 4..r * pitch + (x + w) * 4].chunks_exact(4) {
            out.extend_from_slice(&px[..3]);
        }
        out.resize(start + row, 0);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes the page and its figures into `dir`; returns the page's path.
fn write_page(dir: &Path, photos: bool) -> anyhow::Result<std::path::PathBuf> {
    let prose = ["ARCHITECTURE.md", "README.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| corpus::read(f))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let words: Vec<&str> = prose
        .split_whitespace()
        .filter(|w| !w.starts_with('|') && !w.starts_with('#'))
        .collect();
    let code = corpus::read("protocol/src/screen/scroll.rs")?;
    let code: Vec<&str> = code.lines().collect();
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = words[at % words.len()..]
            .iter()
            .chain(words.iter())
            .take(n)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        at += n;
        escape(&s)
    };
    let pictures = if photos {
        vec![photo(4), photo(5)]
    } else {
        Vec::new()
    };
    let mut body = String::new();
    writeln!(body, "<h1>{}</h1>", take(7))?;
    for s in 0..SECTIONS {
        writeln!(body, "<h2>{}. {}</h2>", s + 1, take(5))?;
        for _ in 0..3 {
            writeln!(
                body,
                "<p>{} <a href=\"#\">{}</a> {} <code>{}</code> {}</p>",
                take(45),
                take(3),
                take(20),
                take(1),
                take(25)
            )?;
        }
        if s % 2 == 0 && photos {
            // Different parts of two photographs.
            let src = &pictures[s / 2 % 2];
            let k = s / 4;
            let (x, y) = (k * 131 % (1920 - FIGURE.0), k * 89 % (1080 - FIGURE.1));
            let name = format!("figure{s}.bmp");
            std::fs::write(dir.join(&name), bmp(src, x, y, FIGURE))?;
            writeln!(
                body,
                "<figure><img src=\"{name}\" width=\"{}\" height=\"{}\"><figcaption>Figure {}. {}</figcaption></figure>",
                FIGURE.0,
                FIGURE.1,
                s / 2 + 1,
                take(9)
            )?;
        } else {
            let from = s * 23 % code.len().saturating_sub(14).max(1);
            let lines: Vec<&str> = code.iter().skip(from).take(14).copied().collect();
            writeln!(body, "<pre>{}</pre>", escape(&lines.join("\n")))?;
        }
    }
    let mut side = String::new();
    for _ in 0..5 {
        writeln!(
            side,
            "<div class=card><b>{}</b><br>{}</div>",
            take(3),
            take(18)
        )?;
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=utf-8><style>
body{{margin:0;font-family:'DejaVu Sans',sans-serif;font-size:16px;line-height:1.5;color:#222;background:#fafafa}}
header{{position:sticky;top:0;background:#1f3a5f;color:#fff;padding:12px 32px;font-size:20px}}
header a{{color:#cfe3ff;margin-left:24px;font-size:15px;text-decoration:none}}
main{{display:flex;gap:32px;max-width:1240px;margin:24px auto}}
article{{flex:1;background:#fff;padding:24px 40px;border:1px solid #ddd;border-radius:6px}}
aside{{width:300px}}
.card{{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin-bottom:16px;font-size:14px}}
h2{{color:#1f3a5f}} a{{color:#0b63c5}} code{{background:#f0f0f0;color:#a03050}}
pre{{background:#f4f6f8;padding:12px;font-size:13px;color:#334}}
figcaption{{color:#666;font-size:14px}}
</style></head><body><header><b>Tether Docs</b><a href=#>Guide</a><a href=#>API</a><a href=#>Blog</a></header>
<main><article>{body}</article><aside>{side}</aside></main></body></html>"
    );
    let path = dir.join("page.html");
    std::fs::write(&path, page)?;
    Ok(path)
}

/// The page open in Chromium, with the keyboard, and the screen still: with photographs or not.
struct Open {
    _browser: Browser,
    _page: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

async fn open_page(b: &Bench, photos: bool) -> anyhow::Result<Open> {
    let dir = tempfile::tempdir()?;
    let page = write_page(dir.path(), photos)?;
    let profile = tempfile::tempdir()?;
    let display = b.x.display();
    let blank = b.read_screen()?;
    let browser = browser(&display, &page, profile.path())?;
    appeared(b, &blank, Duration::from_secs(30)).await?;
    // A click beside the article (on no link) gives the page the keyboard.
    xdotool(&display, &["mousemove", "150", "600", "click", "1"])?;
    still(b, Duration::from_secs(10)).await?;
    Ok(Open {
        _browser: browser,
        _page: dir,
        _profile: profile,
    })
}

/// The page in Chromium, [`PAGES`] times Page Down; with photographs or not.
pub(crate) async fn scroll_web(b: &Bench, photos: bool) -> anyhow::Result<Result_> {
    let _open = open_page(b, photos).await?;
    let display = b.x.display();
    let mut samples = Vec::new();
    for _ in 0..PAGES {
        if let Some(s) = b.event(|| xdotool(&display, &["key", "Next"])).await? {
            samples.push(s);
        }
    }
    let name = if photos {
        "scroll-web"
    } else {
        "scroll-web-text"
    };
    Ok(summarize(name, &samples))
}

/// Pages a reader goes down before going back up, in `scroll-web-back`.
const BACK_PAGES: usize = 4;
/// Times `scroll-web-back` goes down and back up.
const BACK_ROUNDS: usize = 4;

/// The page with photographs in Chromium, [`BACK_PAGES`] times Page Down, then as many times
/// Page Up to reread them, [`BACK_ROUNDS`] times, a little further down each time; only the
/// pages up are measured.
pub(crate) async fn scroll_web_back(b: &Bench) -> anyhow::Result<Result_> {
    let _open = open_page(b, true).await?;
    let display = b.x.display();
    let mut samples = Vec::new();
    for _ in 0..BACK_ROUNDS {
        for _ in 0..BACK_PAGES + 1 {
            b.event(|| xdotool(&display, &["key", "Next"])).await?;
        }
        for _ in 0..BACK_PAGES {
            if let Some(s) = b.event(|| xdotool(&display, &["key", "Prior"])).await? {
                samples.push(s);
            }
        }
    }
    Ok(summarize("scroll-web-back", &samples))
}
