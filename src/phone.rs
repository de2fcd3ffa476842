//! Phone-number normalisation to E.164, for caller IDs and Zendesk searches.
//!
//! Caller IDs arrive in many shapes: `+47 987 65 432`, `004798765432`, `98765432` (national,
//! read with the configured default region), `tel:+47-98765432`, `sip:+4798765432@host`.
//! [`normalise`] turns any of them into one [`PhoneNumber`], or says why it cannot.
//! Parsing and validation use the `phonenumber` crate (libphonenumber's metadata).

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, country};

/// Longest raw caller ID accepted, in bytes. Anything longer is not a phone number.
pub const MAX_RAW_LEN: usize = 128;

/// A phone number in the forms the data dip needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PhoneNumber {
    /// E.164 with the leading `+`, e.g. `+4798765432`.
    pub e164: String,
    /// The national significant number, e.g. `98765432` (Italian numbers keep their
    /// leading zero, as the number is dialled that way).
    pub national: String,
    /// The ISO 3166 region of the number, when the metadata knows it (e.g. `NO`).
    pub region: Option<String>,
}

impl PhoneNumber {
    /// The E.164 digits without the `+`, as Zendesk's `phone:` search wants them.
    pub fn e164_digits(&self) -> &str {
        self.e164.strip_prefix('+').unwrap_or(&self.e164)
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Why a raw caller ID is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty caller ID")]
    Empty,
    /// The caller withheld the number (`anonymous`, `private`, `restricted`, ...).
    #[error("caller ID withheld")]
    Withheld,
    #[error("caller ID longer than {MAX_RAW_LEN} bytes")]
    TooLong,
    /// Characters that have no place in a phone number.
    #[error("not a phone number: unexpected character {0:?}")]
    BadCharacter(char),
    /// The `phonenumber` parser rejected it (too short, too long, bad country code, ...).
    #[error("not a phone number: {0}")]
    Unparsable(String),
    /// It parses, but no such number exists in the numbering plan.
    #[error("not a valid number in its numbering plan")]
    Invalid,
    /// The default region given is not an ISO 3166 region code.
    #[error("unknown default region {0:?}")]
    UnknownRegion(String),
}

/// Names caller IDs use when the number is withheld.
const WITHHELD: &[&str] =
    &["anonymous", "anonymous.invalid", "private", "restricted", "unavailable", "unknown"];

/// Normalises a raw caller ID to E.164.
///
/// Reads `+47 987 65 432`, `004798765432`, `98765432` (national, with `default_region`),
/// `tel:+47-98765432` and `sip:+4798765432@host`, with visual separators (spaces, `-`, `.`,
/// `(`, `)`, `/`). Rejects withheld numbers, junk and numbers that do not exist in the
/// numbering plan.
pub fn normalise(raw: &str, default_region: &str) -> Result<PhoneNumber, PhoneError> {
    if raw.len() > MAX_RAW_LEN {
        return Err(PhoneError::TooLong);
    }
    let region: country::Id = default_region
        .trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| PhoneError::UnknownRegion(default_region.to_string()))?;
    let number = strip_uri(raw.trim());
    if number.is_empty() {
        return Err(PhoneError::Empty);
    }
    if WITHHELD.iter().any(|w| number.eq_ignore_ascii_case(w)) {
        return Err(PhoneError::Withheld);
    }
    let compact = compact_digits(number)?;
    match parse_valid(region, &compact) {
        Ok(number) => Ok(number),
        // "00" is the international prefix in most of the world; a caller ID written that
        // way from a region with another prefix (US: 011) is still international.
        Err(err) => match compact.strip_prefix("00") {
            Some(rest) if !rest.is_empty() => {
                parse_valid(region, &format!("+{rest}")).map_err(|_| err)
            }
            _ => Err(err),
        },
    }
}

/// Loads the numbering-plan metadata now (it is parsed lazily on first use, which takes a
/// noticeable fraction of a second). Call once at start-up, off the call path.
pub fn warm_up() {
    let _ = normalise("+4798765432", "NO");
}

/// Takes the number out of a `tel:`, `sip:` or `sips:` URI, dropping URI parameters.
fn strip_uri(raw: &str) -> &str {
    let lower_starts = |prefix: &str| {
        raw.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let rest = if lower_starts("tel:") {
        raw.get(4..)
    } else if lower_starts("sips:") {
        raw.get(5..).map(user_part)
    } else if lower_starts("sip:") {
        raw.get(4..).map(user_part)
    } else {
        return raw;
    };
    let rest = rest.unwrap_or_default();
    // URI parameters (`;phone-context=...`, `;ext=...`) and the closing angle bracket of a
    // name-addr are not part of the number.
    let rest = rest.split(';').next().unwrap_or(rest);
    rest.trim().trim_end_matches('>').trim()
}

fn user_part(uri: &str) -> &str {
    uri.split('@').next().unwrap_or(uri)
}

/// Keeps a leading `+` and the digits; drops visual separators; rejects anything else.
fn compact_digits(number: &str) -> Result<String, PhoneError> {
    let mut out = String::with_capacity(number.len());
    for (i, c) in number.chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            ' ' | '\t' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            other => return Err(PhoneError::BadCharacter(other)),
        }
    }
    if !out.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PhoneError::Empty);
    }
    Ok(out)
}

fn parse_valid(region: country::Id, compact: &str) -> Result<PhoneNumber, PhoneError> {
    let parsed = phonenumber::parse(Some(region), compact)
        .map_err(|err| PhoneError::Unparsable(err.to_string()))?;
    if !parsed.is_valid() {
        return Err(PhoneError::Invalid);
    }
    Ok(PhoneNumber {
        e164: parsed.format().mode(Mode::E164).to_string(),
        national: parsed.national().to_string(),
        region: region_of(&parsed),
    })
}

/// The region of a parsed number. `Country::id` misses numbers whose national number starts
/// with zeros (Italy), so those are looked up by country code and leading digits here.
fn region_of(parsed: &phonenumber::PhoneNumber) -> Option<String> {
    if let Some(id) = parsed.country().id() {
        return Some(id.as_ref().to_string());
    }
    let national = parsed.national().to_string();
    let regions = DATABASE.by_code(&parsed.code().value())?;
    let by_leading_digits = regions.iter().find(|meta| {
        meta.leading_digits()
            .and_then(|pattern| pattern.find(&national))
            .is_some_and(|found| found.start() == 0)
    });
    let main = || {
        regions.iter().find(|meta| {
            meta.is_main_country_for_code() && meta.descriptors().general().is_match(&national)
        })
    };
    let meta = by_leading_digits.or_else(main)?;
    (meta.id() != "001").then(|| meta.id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, region: &str) -> PhoneNumber {
        normalise(raw, region).unwrap_or_else(|err| panic!("{raw:?} in {region}: {err}"))
    }

    #[test]
    fn reads_the_usual_shapes_of_a_norwegian_number() {
        for raw in [
            "+47 987 65 432",
            "+4798765432",
            "004798765432",
            "98765432",
            "987 65 432",
            "tel:+47-98765432",
            "TEL:+47.987.65.432",
            "sip:+4798765432@trunk.example.net;user=phone",
            "<sip:+4798765432@10.0.0.1>",
            " +47 (987) 65-432 ",
        ] {
            let number = ok(raw.trim_start_matches('<'), "NO");
            assert_eq!(number.e164, "+4798765432", "{raw}");
            assert_eq!(number.national, "98765432", "{raw}");
            assert_eq!(number.region.as_deref(), Some("NO"), "{raw}");
            assert_eq!(number.e164_digits(), "4798765432");
        }
    }

    #[test]
    fn default_region_only_applies_to_national_numbers() {
        let us = ok("(202) 555-0143", "US");
        assert_eq!(us.e164, "+12025550143");
        assert_eq!(us.national, "2025550143");
        assert_eq!(us.region.as_deref(), Some("US"));
        // An international number keeps its own country whatever the default.
        let gb = ok("+44 20 7946 0018", "NO");
        assert_eq!(gb.e164, "+442079460018");
        assert_eq!(gb.region.as_deref(), Some("GB"));
        // "00" reads as international even where the dialling prefix is 011.
        assert_eq!(ok("004798765432", "US").e164, "+4798765432");
        assert_eq!(ok("01147 98765432", "US").e164, "+4798765432");
        // Lower-case region codes are fine.
        assert_eq!(ok("98765432", "no").e164, "+4798765432");
    }

    #[test]
    fn italian_numbers_keep_their_leading_zero() {
        let it = ok("+39 02 1234 5678", "NO");
        assert_eq!(it.e164, "+390212345678");
        assert_eq!(it.national, "0212345678");
        assert_eq!(it.region.as_deref(), Some("IT"));
    }

    #[test]
    fn rejects_junk_with_a_reason() {
        assert_eq!(normalise("", "NO"), Err(PhoneError::Empty));
        assert_eq!(normalise("   ", "NO"), Err(PhoneError::Empty));
        assert_eq!(normalise("tel:", "NO"), Err(PhoneError::Empty));
        assert_eq!(normalise("Anonymous", "NO"), Err(PhoneError::Withheld));
        assert_eq!(normalise("sip:anonymous@anonymous.invalid", "NO"), Err(PhoneError::Withheld));
        assert_eq!(normalise("abc", "NO"), Err(PhoneError::BadCharacter('a')));
        assert_eq!(normalise("98765432; DROP TABLE", "NO"), Err(PhoneError::BadCharacter(';')));
        assert_eq!(normalise("4798+765432", "NO"), Err(PhoneError::BadCharacter('+')));
        assert_eq!(normalise("9".repeat(200).as_str(), "NO"), Err(PhoneError::TooLong));
        assert_eq!(normalise("98765432", "XX"), Err(PhoneError::UnknownRegion("XX".into())));
        assert!(matches!(
            normalise("12", "NO"),
            Err(PhoneError::Unparsable(_) | PhoneError::Invalid)
        ));
        assert!(normalise("+999 123456789", "NO").is_err());
        assert!(normalise("+47 1234", "NO").is_err());
        assert!(normalise("+47 98765432 99999999", "NO").is_err());
        assert!(normalise("\u{0}\r\n", "NO").is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let samples =
            ["+", "++47", "00", "0", "+0", "tel:;ext=1", "sip:@", "ø", "+47 ٩٨٧", "()-./"];
        for raw in samples {
            let _ = normalise(raw, "NO");
        }
        // Every prefix of a valid number, including cuts inside multi-byte text.
        let text = "tel:+47-987 65 432;ext=ø";
        for end in 0..=text.len() {
            if let Some(prefix) = text.get(..end) {
                let _ = normalise(prefix, "NO");
            }
        }
    }
}
