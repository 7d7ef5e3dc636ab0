//! `tether-i18n`: the words of the console and the customer's window, in English and French,
//! through Fluent. Resources live in `assets/i18n/{en,fr}/*.ftl` and are built in.
//!
//! The language is chosen once at start ([`set_lang`], from `--lang`, a setting or the system
//! locale with [`Lang::from_env`]); [`tr`] and the [`t!`] macro look words up in it. A missing
//! message falls back to English, then to its id, so a gap shows, never crashes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub use fluent_bundle::FluentValue as Value;

/// A language Tether speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every language.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// `en` or `fr` (a region such as `fr_CA.UTF-8` is accepted).
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("fr") {
            Some(Lang::Fr)
        } else if s.starts_with("en") || s == "c" || s.starts_with("c.") || s == "posix" {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The system's language from `LC_ALL`, `LC_MESSAGES` or `LANG` (English when none is one
    /// Tether speaks).
    pub fn from_env() -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .and_then(|v| Lang::parse(&v))
            .unwrap_or(Lang::En)
    }

    /// The language's code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    fn sources(self) -> &'static [&'static str] {
        match self {
            Lang::En => &[
                include_str!("../../assets/i18n/en/console.ftl"),
                include_str!("../../assets/i18n/en/host.ftl"),
            ],
            Lang::Fr => &[
                include_str!("../../assets/i18n/fr/console.ftl"),
                include_str!("../../assets/i18n/fr/host.ftl"),
            ],
        }
    }
}

static LANG: AtomicU8 = AtomicU8::new(0);

/// Chooses the language for every later lookup.
pub fn set_lang(lang: Lang) {
    LANG.store(lang as u8, Ordering::Relaxed);
}

thread_local! {
    static THREAD_LANG: std::cell::Cell<Option<Lang>> = const { std::cell::Cell::new(None) };
}

/// Chooses the language for this thread only (tests that render in one language while others
/// run beside them); `None` follows [`set_lang`] again.
pub fn set_thread_lang(lang: Option<Lang>) {
    THREAD_LANG.with(|l| l.set(lang));
}

/// The language in use.
pub fn lang() -> Lang {
    if let Some(l) = THREAD_LANG.with(|l| l.get()) {
        return l;
    }
    match LANG.load(Ordering::Relaxed) {
        1 => Lang::Fr,
        _ => Lang::En,
    }
}

fn bundle(lang: Lang) -> &'static FluentBundle<FluentResource> {
    static EN: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    static FR: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    let cell = match lang {
        Lang::En => &EN,
        Lang::Fr => &FR,
    };
    cell.get_or_init(|| {
        let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
        let mut b = FluentBundle::new_concurrent(vec![id]);
        // Words go into egui labels: no bidi isolation marks around arguments.
        b.set_use_isolating(false);
        for src in lang.sources() {
            let res = FluentResource::try_new((*src).to_string()).unwrap_or_else(|(r, _)| r);
            let _ = b.add_resource(res);
        }
        b
    })
}

fn format_in(lang: Lang, id: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
    let b = bundle(lang);
    let msg = b.get_message(id)?;
    let pattern = msg.value()?;
    let mut errors = Vec::new();
    Some(b.format_pattern(pattern, args, &mut errors).into_owned())
}

/// The words for `id` in the current language (English if missing there, the id if missing
/// everywhere).
pub fn tr(id: &str) -> String {
    tr_args(id, &[])
}

/// [`tr`] with arguments.
pub fn tr_args(id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let mut fa = FluentArgs::new();
    for (k, v) in args {
        fa.set(*k, v.clone());
    }
    let fa = (!args.is_empty()).then_some(&fa);
    format_in(lang(), id, fa)
        .or_else(|| format_in(Lang::En, id, fa))
        .unwrap_or_else(|| id.to_string())
}

/// Looks up words: `t!("id")` or `t!("id", name = value, …)` (values: strings or numbers).
#[macro_export]
macro_rules! t {
    ($id:expr) => {
        $crate::tr($id)
    };
    ($id:expr, $($k:ident = $v:expr),+ $(,)?) => {
        $crate::tr_args($id, &[$((stringify!($k), $crate::Value::from($v))),+])
    };
}

/// The message ids of a language's resources, sorted.
pub fn message_ids(lang: Lang) -> Vec<String> {
    let mut ids: Vec<String> = lang
        .sources()
        .iter()
        .filter_map(|src| FluentResource::try_new((*src).to_string()).ok())
        .flat_map(|r| {
            r.entries()
                .filter_map(|e| match e {
                    fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_exists_in_every_language_and_parses() {
        for lang in Lang::ALL {
            for src in lang.sources() {
                assert!(
                    FluentResource::try_new((*src).to_string()).is_ok(),
                    "a {} resource does not parse",
                    lang.code()
                );
            }
        }
        let en = message_ids(Lang::En);
        let fr = message_ids(Lang::Fr);
        let only_en: Vec<_> = en.iter().filter(|i| !fr.contains(i)).collect();
        let only_fr: Vec<_> = fr.iter().filter(|i| !en.contains(i)).collect();
        assert!(
            only_en.is_empty() && only_fr.is_empty(),
            "only in English: {only_en:?}; only in French: {only_fr:?}"
        );
        let mut dedup = en.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), en.len(), "a message id is defined twice");
    }

    #[test]
    fn languages_come_from_the_locale() {
        assert_eq!(Lang::parse("fr_FR.UTF-8"), Some(Lang::Fr));
        assert_eq!(Lang::parse("en_GB"), Some(Lang::En));
        assert_eq!(Lang::parse("C.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::parse("de_DE"), None);
    }
}
