use super::*;

fn overrides(lang: &str, key: &str, text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut table = BTreeMap::new();
    table.insert(key.to_string(), text.to_string());
    let mut all = BTreeMap::new();
    all.insert(lang.to_string(), table);
    all
}

#[test]
fn built_in_languages_have_every_sentence_with_valid_placeholders() {
    let prompts = Prompts::new("en", &BTreeMap::new()).unwrap();
    for lang in ["en", "nb"] {
        for key in PromptKey::ALL {
            let template = prompts.template(&Language::new(lang), key);
            assert!(!template.is_empty(), "{lang}.{}", key.name());
            check_template(lang, key, template).unwrap();
        }
    }
    // Every key is listed once, and names round-trip.
    for key in PromptKey::ALL {
        assert_eq!(PromptKey::from_name(key.name()), Some(key));
        assert_eq!(PromptKey::ALL.iter().filter(|k| **k == key).count(), 1);
    }
}

#[test]
fn an_unknown_placeholder_is_an_error_naming_the_key() {
    let err =
        Prompts::new("en", &overrides("en", "status_ticket", "Ticket {{ticketId}} is {status}"))
            .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ivr.prompts.en.status_ticket"), "{text}");
    assert!(text.contains("ticketId"), "{text}");
    let err = Prompts::new("en", &overrides("nb", "menu", "Trykk {key}")).unwrap_err();
    assert!(err.to_string().contains("ivr.prompts.nb.menu"), "{err}");
    let err = Prompts::new("en", &overrides("en", "menu", "Press {")).unwrap_err();
    assert!(matches!(err, PromptError::Malformed { .. }), "{err}");
    let err = Prompts::new("en", &overrides("en", "no_such_sentence", "x")).unwrap_err();
    assert!(err.to_string().contains("ivr.prompts.en.no_such_sentence"), "{err}");
    let err = Prompts::new("de", &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("ivr.default_language"), "{err}");
}

#[test]
fn overrides_replace_and_new_languages_start_from_the_default() {
    let mut all = overrides("en", "goodbye", "Bye now.");
    all.insert("sv".into(), [("menu".to_string(), "Tryck 1.".to_string())].into());
    let prompts = Prompts::new("en", &all).unwrap();
    assert_eq!(prompts.template(&Language::new("en"), PromptKey::Goodbye), "Bye now.");
    let sv = Language::new("sv");
    assert_eq!(prompts.template(&sv, PromptKey::Menu), "Tryck 1.");
    assert_eq!(prompts.template(&sv, PromptKey::Goodbye), "Bye now.");
}

#[test]
fn locales_map_to_languages() {
    let prompts = Prompts::new("en", &BTreeMap::new()).unwrap();
    for (locale, lang) in [
        (Some("nb"), "nb"),
        (Some("no"), "nb"),
        (Some("nn"), "nb"),
        (Some("nb-NO"), "nb"),
        (Some("en-US"), "en"),
        (Some("en_GB"), "en"),
        (Some("fr"), "en"),
        (None, "en"),
        (Some(""), "en"),
    ] {
        assert_eq!(prompts.language_for(locale).as_str(), lang, "{locale:?}");
    }
    let norwegian_default = Prompts::new("nb", &BTreeMap::new()).unwrap();
    assert_eq!(norwegian_default.language_for(Some("de")).as_str(), "nb");
}

#[test]
fn render_fills_placeholders_once() {
    let prompts = Prompts::new("en", &BTreeMap::new()).unwrap();
    let text = prompts.render(
        &Language::new("en"),
        PromptKey::StatusTicket,
        &[("id", "4 2"), ("subject", "{status}"), ("status", "on hold")],
    );
    assert_eq!(text, "Your ticket 4 2, about {status}, is on hold.");
}

#[test]
fn untrusted_text_is_cleaned() {
    assert_eq!(clean_text("Printer\r\nVia: evil", 80), "Printer Via: evil");
    assert_eq!(
        clean_text("<speak><prosody rate='x-fast'>Refund</prosody></speak> please", 80),
        "Refund please"
    );
    assert_eq!(clean_text("a\u{0}b\u{7}c\u{1b}[31m", 80), "a b c 31m");
    assert_eq!(clean_text("{status} & \"quoted\" `x`", 80), "status quoted x");
    assert_eq!(clean_text("   ", 80), "");
    // Cut at a word boundary.
    let long = "word ".repeat(40);
    let cut = clean_text(&long, 80);
    assert!(cut.chars().count() <= 80, "{cut}");
    assert!(cut.ends_with("word"), "{cut}");
    assert_eq!(clean_text("Supercalifragilistic", 5), "Super");
    assert_eq!(clean_text("Møte på kontoret – Æøå", 80), "Møte på kontoret – Æøå");
}

#[test]
fn ids_are_read_digit_by_digit_and_first_names_are_clean() {
    assert_eq!(digit_by_digit(102), "1 0 2");
    assert_eq!(digit_by_digit(7), "7");
    assert_eq!(first_name("Kari Nordmann"), "Kari");
    assert_eq!(first_name("<b>Ola</b>\r\n"), "Ola");
    assert_eq!(first_name(""), "");
}

#[test]
fn static_sentences_cover_every_language_without_placeholders() {
    let prompts = Prompts::new("en", &BTreeMap::new()).unwrap();
    let sentences = prompts.static_sentences();
    assert!(sentences.iter().any(|(l, t)| l.as_str() == "nb" && t.starts_with("Trykk 1")));
    assert!(sentences.iter().all(|(_, t)| !t.contains('{')));
    assert!(!sentences.iter().any(|(_, t)| t == "on hold"), "status words are not sentences");
}
