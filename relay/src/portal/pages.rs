//! The portal's pages. maud escapes every value it inserts, so a customer's words (a name with
//! HTML in it) show as text; there is no script, and the stylesheet is the portal's own.

use maud::{DOCTYPE, Markup, html};
use tether_protocol::pairing::{self, KeyRef};

use super::{IssueForm, MAX_DESCRIPTION, MAX_NAME, Portal, admitted_words, downloads_for};
use crate::core::KeyOwner;
use crate::server::Admitted;
use crate::store::IssueType;

/// The stylesheet: readable on a phone, no external fonts or images.
pub(super) const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1d2733;background:#f4f6f8}\
header{display:flex;align-items:center;gap:12px;padding:12px 20px;background:#1f4e79;color:#fff}\
header img{max-height:40px;max-width:160px}\
header h1{font-size:1.2rem;margin:0}\
main{max-width:720px;margin:0 auto;padding:16px}\
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px #0002}\
h2{font-size:1.15rem;margin-top:0}\
label{display:block;margin:10px 0 4px;font-weight:600}\
input,select,textarea{width:100%;padding:10px;font:inherit;border:1px solid #9aa5b1;border-radius:6px}\
textarea{min-height:7em}\
button,.button{display:inline-block;margin-top:12px;padding:10px 18px;font:inherit;font-weight:600;\
color:#fff;background:#1f7a3a;border:0;border-radius:6px;text-decoration:none;cursor:pointer}\
.button.other{background:#51606f}\
.error{color:#a4161a;font-weight:600}\
code,pre{font-family:ui-monospace,monospace;background:#eef1f4;border-radius:4px;word-break:break-all}\
pre{padding:10px;white-space:pre-wrap;word-break:break-all}\
ol li{margin:8px 0}\
.request{white-space:pre-wrap;border-left:3px solid #9aa5b1;padding-left:10px}\
footer{color:#51606f;font-size:.85rem;text-align:center;padding:20px}";

fn layout(p: &Portal, title: &str, body: Markup) -> Markup {
    let shown = p.shown();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (shown.title) }
                link rel="stylesheet" href="/portal.css";
            }
            body {
                header {
                    @if shown.has_logo { img src="/logo" alt=""; }
                    h1 { (shown.title) }
                }
                main { (body) }
                footer { "Remote support by Tether. Nothing is shared until you run the program and allow it." }
            }
        }
    }
}

/// A page that says one thing: what happened and what to do.
pub(super) fn message(p: &Portal, title: &str, advice: &str) -> Markup {
    layout(
        p,
        title,
        html! {
            section {
                h2 { (title) }
                p { (advice) }
                p { a href="/" { "Back to the start page" } }
            }
        },
    )
}

/// `/`: the key form and the issue form.
pub(super) fn index(
    p: &Portal,
    csrf: &str,
    types: &[IssueType],
    error: Option<&str>,
    form: &IssueForm,
) -> Markup {
    layout(
        p,
        "Get help",
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            section {
                h2 { "I have a session key" }
                p { "Your support agent gave you 9 digits. Type them here." }
                form method="post" action="/key" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="key" { "Session key" }
                    input id="key" name="key" inputmode="numeric" autocomplete="off"
                        placeholder="123 456 789" maxlength="200" required;
                    button type="submit" { "Continue" }
                }
            }
            @if !types.is_empty() {
                section {
                    h2 { "Ask for help" }
                    p { "Tell us what is wrong; a representative of the right team takes your request." }
                    form method="post" action="/issue" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="name" { "Your name" }
                        input id="name" name="name" value=(form.name) maxlength=(MAX_NAME) required;
                        label for="problem" { "Problem type" }
                        select id="problem" name="problem" required {
                            option value="" { "Choose one…" }
                            @for t in types {
                                @let picked = form.problem.as_deref() == Some(t.id.to_string().as_str());
                                option value=(t.id) selected[picked] { (t.title) }
                            }
                        }
                        label for="description" { "Describe the problem" }
                        textarea id="description" name="description" maxlength=(MAX_DESCRIPTION) { (form.description) }
                        button type="submit" { "Send my request" }
                    }
                }
            }
        },
    )
}

/// `/a/LOGIN` and `/t/TEAM`: the help link's form.
pub(super) fn link_form(
    p: &Portal,
    csrf: &str,
    link: &KeyRef,
    owner: &KeyOwner,
    error: Option<&str>,
    form: &IssueForm,
) -> Markup {
    let (action, whom) = match (link, owner) {
        (KeyRef::Agent(l), KeyOwner::Agent { display, .. }) => {
            (format!("/a/{}", path_segment(l)), display.clone())
        }
        (KeyRef::Team(t), _) => (format!("/t/{}", path_segment(t)), format!("the {t} team")),
        _ => ("/".to_string(), String::new()),
    };
    layout(
        p,
        "Get help",
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            section {
                h2 { "Get help from " (whom) }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="name" { "Your name" }
                    input id="name" name="name" value=(form.name) maxlength=(MAX_NAME) required;
                    label for="description" { "What do you need help with?" }
                    textarea id="description" name="description" maxlength=(MAX_DESCRIPTION) { (form.description) }
                    button type="submit" { "Continue" }
                }
            }
        },
    )
}

/// A name as a URL path segment: everything but letters, digits and `-._~` escaped.
fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/s/PIN` and `/k/TICKET`: what to do next, with the download and the command.
pub(super) fn start(p: &Portal, key: &str, admitted: &Admitted, os: &str) -> Markup {
    let shown = p.shown();
    let (queue, ticket) = admitted_words(admitted);
    let downloads = downloads_for(p, os);
    let file = |suffix: &str| format!("tether-host-{key}{suffix}");
    let first = downloads.first();
    let file_name = file(first.map(|d| d.suffix).unwrap_or(""));
    let unix_command = format!(
        "chmod +x ~/Downloads/{file_name} && ~/Downloads/{file_name} --relay {} --relay-fingerprint {} {key}",
        shown.relay_addr, shown.fingerprint
    );
    let windows_command = format!(
        "%USERPROFILE%\\Downloads\\{file_name} --relay {} --relay-fingerprint {} {key}",
        shown.relay_addr, shown.fingerprint
    );
    let shown_key = if pairing::is_pin(key) {
        pairing::display_pin(key)
    } else {
        key.to_string()
    };
    layout(
        p,
        "Start your support session",
        html! {
            section {
                h2 { "Start your support session" }
                p { "Your request goes to " strong { (queue) } "." }
                @if let Some(t) = ticket {
                    p { "Name: " strong { (t.name) } }
                    @if let Some(problem) = &t.request.problem { p { "Problem: " (problem) } }
                    @if !t.request.description.is_empty() { p.request { (t.request.description) } }
                }
                ol {
                    li {
                        "Download the support program."
                        br;
                        @if downloads.is_empty() {
                            span.error { "No download is offered here; ask your support agent for the program." }
                        }
                        @for (i, d) in downloads.iter().enumerate() {
                            a.button.other[i > 0] href=(format!("/download/{}/{key}", d.platform)) download=(file(d.suffix)) {
                                "Download for " (d.label)
                            }
                            " "
                        }
                    }
                    li {
                        "Run it. It knows this session: it connects to the support server and shows a small window."
                        @if os == "windows" {
                            " Or run this command:"
                            pre { code { (windows_command) } }
                        } @else {
                            " Or run this command in a terminal:"
                            pre { code { (unix_command) } }
                        }
                    }
                    li {
                        "A representative sees your request and joins. They see your screen; they control it, "
                        "receive files or open pages only if you allow it in the window, and you can stop at any time."
                    }
                }
                p { "Your session key: " code { (shown_key) } ". It works once." }
                p { "Support server: " code { (shown.relay_addr) } ", certificate " code { (shown.fingerprint) } }
                p { "This page: " code { (shown.public_url) } }
            }
        },
    )
}
