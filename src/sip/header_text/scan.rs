//! The lexical core every SIP header reader shares: where a character of header text
//! stands (inside a quoted string, inside `<...>`, or plain), and splitting and finding
//! on that basis.
//!
//! Quoted strings follow RFC 3261 §25.1: they open and close with `"`, and inside them a
//! backslash escapes the next character. How `<...>` is read depends on the caller, see
//! [`Angles`]. Nothing here allocates or panics.

use std::str::CharIndices;

/// How `<` and `>` are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Angles {
    /// Ordinary characters (Via values, parameter lists).
    Ordinary,
    /// `<...>` encloses a URI; a quoted string inside it is still recognised, so a `>`
    /// inside quotes does not close it (list splitting).
    Enclose,
    /// `<...>` is read verbatim up to the first `>`; quotes inside it are ordinary.
    Verbatim,
}

/// Where one character stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Outside quoted strings and `<...>`: separators here mean something.
    Plain,
    /// Part of a quoted string, its quotes included.
    Quoted,
    /// Part of `<...>`, the brackets included.
    Angled,
}

/// What was left open at the end of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unclosed {
    #[error("unbalanced quotes")]
    Quote,
    #[error("unbalanced angle brackets")]
    Angle,
}

/// Reads header text one character at a time and says where each character stands.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    angles: Angles,
    in_quote: bool,
    escaped: bool,
    in_angle: bool,
}

impl Lexer {
    pub fn new(angles: Angles) -> Lexer {
        Lexer { angles, in_quote: false, escaped: false, in_angle: false }
    }

    /// Reads the next character and says where it stands.
    pub fn feed(&mut self, c: char) -> Region {
        if self.in_quote {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_quote = false;
            }
            return Region::Quoted;
        }
        if self.in_angle && self.angles == Angles::Verbatim {
            self.in_angle = c != '>';
            return Region::Angled;
        }
        match c {
            '"' => {
                self.in_quote = true;
                Region::Quoted
            }
            '<' | '>' if self.angles != Angles::Ordinary => {
                self.in_angle = c == '<';
                Region::Angled
            }
            _ if self.in_angle => Region::Angled,
            _ => Region::Plain,
        }
    }

    /// What is still open after the text read so far (a quote before an angle bracket).
    pub fn unclosed(&self) -> Option<Unclosed> {
        if self.in_quote {
            Some(Unclosed::Quote)
        } else if self.in_angle {
            Some(Unclosed::Angle)
        } else {
            None
        }
    }

    /// Fails with what is still open, if anything.
    pub fn check_closed(&self) -> Result<(), Unclosed> {
        self.unclosed().map_or(Ok(()), Err)
    }
}

/// The parts of `text` between plain occurrences of `sep`, untrimmed, in order (an empty
/// text gives one empty part). After the last part, [`Split::unclosed`] tells whether a
/// quote or angle bracket was left open.
pub fn split_outside(text: &str, sep: char, angles: Angles) -> Split<'_> {
    Split {
        text,
        sep,
        chars: text.char_indices(),
        lexer: Lexer::new(angles),
        start: 0,
        done: false,
    }
}

/// The iterator [`split_outside`] returns.
#[derive(Debug, Clone)]
pub struct Split<'a> {
    text: &'a str,
    sep: char,
    chars: CharIndices<'a>,
    lexer: Lexer,
    start: usize,
    done: bool,
}

impl Split<'_> {
    /// What was left open in the text read so far.
    pub fn unclosed(&self) -> Option<Unclosed> {
        self.lexer.unclosed()
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        for (i, c) in self.chars.by_ref() {
            if self.lexer.feed(c) == Region::Plain && c == self.sep {
                let part = self.text.get(self.start..i).unwrap_or_default();
                self.start = i + c.len_utf8();
                return Some(part);
            }
        }
        self.done = true;
        Some(self.text.get(self.start..).unwrap_or_default())
    }
}

/// The byte index of the first plain `wanted` in `text`.
pub fn find_outside(text: &str, wanted: char, angles: Angles) -> Option<usize> {
    let mut lexer = Lexer::new(angles);
    text.char_indices()
        .find_map(|(i, c)| (lexer.feed(c) == Region::Plain && c == wanted).then_some(i))
}

/// For text that starts with a quoted string, the byte index just past its closing quote.
/// `None` when the text does not start with `"` or the string is not closed.
pub fn quoted_string_end(text: &str) -> Option<usize> {
    if !text.starts_with('"') {
        return None;
    }
    let mut lexer = Lexer::new(Angles::Ordinary);
    lexer.feed('"');
    text.char_indices().skip(1).find_map(|(i, c)| {
        lexer.feed(c);
        (lexer.unclosed().is_none()).then_some(i + c.len_utf8())
    })
}

/// The byte index of the last plain `wanted` in `text`.
pub fn rfind_outside(text: &str, wanted: char, angles: Angles) -> Option<usize> {
    let mut lexer = Lexer::new(angles);
    text.char_indices()
        .filter(|&(_, c)| lexer.feed(c) == Region::Plain && c == wanted)
        .map(|(i, _)| i)
        .last()
}

/// For text that starts with `<`, the byte index of the `>` that closes it. Quoted strings
/// inside are honoured (a URI parameter written as a quoted string, `<sip:h;x="<a>">`), so
/// a `>` inside quotes does not close the brackets. `None` when nothing closes them.
pub fn angle_close(text: &str) -> Option<usize> {
    if !text.starts_with('<') {
        return None;
    }
    let mut lexer = Lexer::new(Angles::Ordinary);
    text.char_indices()
        .skip(1)
        .find_map(|(i, c)| (lexer.feed(c) == Region::Plain && c == '>').then_some(i))
}

/// The parts of a name-addr or addr-spec value (RFC 3261 §20.10, From/To/Contact/Route...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrParts<'a> {
    /// The text before `<`, untrimmed; `None` for an addr-spec.
    pub display: Option<&'a str>,
    /// The URI, without the angle brackets.
    pub uri: &'a str,
    /// The header parameters after the URI (`;tag=1;+sip.instance="<urn:...>"`), starting
    /// with `;` when there are any.
    pub params: &'a str,
}

/// Splits a name-addr (`"Bob" <sip:b@h;lr>;tag=1`) or an addr-spec (`sip:b@h;tag=1`, where
/// the parameters after the URI belong to the header). Quoted strings are honoured in the
/// display name, inside the brackets and in the parameters. `Err` on an unclosed quote or
/// bracket.
pub fn addr_parts(value: &str) -> Result<AddrParts<'_>, Unclosed> {
    match find_outside(value, '<', Angles::Ordinary) {
        Some(lt) => {
            let enclosed = &value[lt..];
            let gt = angle_close(enclosed).ok_or(Unclosed::Angle)?;
            let params = &enclosed[gt + 1..];
            let mut lexer = Lexer::new(Angles::Ordinary);
            params.chars().for_each(|c| {
                lexer.feed(c);
            });
            lexer.check_closed()?;
            Ok(AddrParts { display: Some(&value[..lt]), uri: &enclosed[1..gt], params })
        }
        None => {
            let mut lexer = Lexer::new(Angles::Ordinary);
            value.chars().for_each(|c| {
                lexer.feed(c);
            });
            lexer.check_closed()?;
            let (uri, params) = match value.find(';') {
                Some(i) => value.split_at(i),
                None => (value, ""),
            };
            Ok(AddrParts { display: None, uri, params })
        }
    }
}

/// The `name[=value]` parameters of `;a=1;b;c="x;y"` text, split at plain `;` only (a `;`,
/// `,`, `<`, `>` or `:` inside a quoted value splits nothing). Empty parts are skipped;
/// values keep their quotes.
pub fn params(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    split_outside(text, ';', Angles::Ordinary).filter(|p| !p.trim().is_empty()).map(param)
}

/// A parameter value without its quotes, when it is a quoted string (escapes kept as
/// written); other values as they are.
pub fn unquote(value: &str) -> &str {
    match quoted_string_end(value) {
        Some(end) if end == value.len() && end >= 2 => &value[1..end - 1],
        _ => value,
    }
}

/// One `name[=value]` parameter, name and value trimmed; `None` for a flag parameter.
pub fn param(part: &str) -> (&str, Option<&str>) {
    match part.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (part.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(text: &str, angles: Angles) -> String {
        let mut lexer = Lexer::new(angles);
        text.chars()
            .map(|c| match lexer.feed(c) {
                Region::Plain => 'p',
                Region::Quoted => 'q',
                Region::Angled => 'a',
            })
            .collect()
    }

    #[test]
    fn quoted_strings_honour_escapes() {
        assert_eq!(regions(r#"a"b\"c"d"#, Angles::Ordinary), "pqqqqqqp");
        assert_eq!(regions(r#""\\"x"#, Angles::Ordinary), "qqqqp");
    }

    #[test]
    fn angle_modes_differ_on_quotes_inside_brackets() {
        assert_eq!(regions("<a>b", Angles::Ordinary), "pppp");
        assert_eq!(regions("<a>b", Angles::Enclose), "aaap");
        assert_eq!(regions("<a>b", Angles::Verbatim), "aaap");
        // A quote inside <...>: recognised when enclosing, ordinary when verbatim.
        assert_eq!(regions(r#"<"">x"#, Angles::Enclose), "aqqap");
        assert_eq!(regions(r#"<">x"#, Angles::Verbatim), "aaap");
        let mut lexer = Lexer::new(Angles::Enclose);
        r#"<">"#.chars().for_each(|c| {
            lexer.feed(c);
        });
        assert_eq!(lexer.unclosed(), Some(Unclosed::Quote));
    }

    #[test]
    fn splits_only_at_plain_separators() {
        let text = r#""a,b" <sip:x,y>, c ,"#;
        let parts: Vec<&str> = split_outside(text, ',', Angles::Enclose).collect();
        assert_eq!(parts, vec![r#""a,b" <sip:x,y>"#, " c ", ""]);
        let parts: Vec<&str> = split_outside("<a,b>", ',', Angles::Ordinary).collect();
        assert_eq!(parts, vec!["<a", "b>"]);
        assert_eq!(split_outside("", ';', Angles::Ordinary).collect::<Vec<_>>(), vec![""]);
        let mut open = split_outside("x, <y", ',', Angles::Enclose);
        assert_eq!(open.by_ref().count(), 2);
        assert_eq!(open.unclosed(), Some(Unclosed::Angle));
        assert_eq!(open.next(), None);
    }

    #[test]
    fn finds_outside_quotes() {
        assert_eq!(find_outside(r#""<" <sip:a>"#, '<', Angles::Ordinary), Some(4));
        assert_eq!(find_outside(r#""\"<""#, '<', Angles::Ordinary), None);
        assert_eq!(find_outside("é;x", ';', Angles::Ordinary), Some(2));
    }

    #[test]
    fn quoted_string_ends() {
        assert_eq!(quoted_string_end(r#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_string_end(r#""""#), Some(2));
        assert_eq!(quoted_string_end(r#""open\""#), None);
        assert_eq!(quoted_string_end("bare"), None);
    }

    #[test]
    fn quoted_values_split_nothing() {
        let v = r#""A <x>; y" <sip:a@h;p="1;2,3<4>:5">;+sip.instance="<urn:uuid:f5a5;x,y>";tag=t"#;
        let parts = addr_parts(v).unwrap();
        assert_eq!(parts.display, Some(r#""A <x>; y" "#));
        assert_eq!(parts.uri, r#"sip:a@h;p="1;2,3<4>:5""#);
        assert_eq!(parts.params, r#";+sip.instance="<urn:uuid:f5a5;x,y>";tag=t"#);
        let p: Vec<_> = params(parts.params).collect();
        assert_eq!(
            p,
            vec![("+sip.instance", Some(r#""<urn:uuid:f5a5;x,y>""#)), ("tag", Some("t"))]
        );
        assert_eq!(unquote(r#""<urn:uuid:1>""#), "<urn:uuid:1>");
        assert_eq!(unquote("tok"), "tok");
        assert_eq!(unquote(r#"""#), r#"""#);
        let spec = addr_parts(r#"sip:a@h;tag=1;x="a;b""#).unwrap();
        assert_eq!((spec.display, spec.uri, spec.params), (None, "sip:a@h", r#";tag=1;x="a;b""#));
        assert_eq!(addr_parts(r#"<sip:a@h;x=">"#), Err(Unclosed::Angle));
        assert_eq!(addr_parts(r#"<sip:a@h>;x="open"#), Err(Unclosed::Quote));
        assert_eq!(angle_close(r#"<a;b=">">"#), Some(8));
        assert_eq!(rfind_outside(r#"sip:u@h;x="a@b""#, '@', Angles::Ordinary), Some(5));
    }

    #[test]
    fn params_are_trimmed() {
        assert_eq!(param(" branch = z9hG4bK1 "), ("branch", Some("z9hG4bK1")));
        assert_eq!(param(" lr "), ("lr", None));
        assert_eq!(param("a=b=c"), ("a", Some("b=c")));
    }
}
