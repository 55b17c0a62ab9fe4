//! Erlang terms in text, as the JMS client writes a compiled selector into the
//! `rjms_erlang_selector` binding argument (`{'=',{'ident',<<"colour">>},<<"red">>}.`).
//!
//! RabbitMQ's plugin reads that text with Erlang's own scanner and `erl_parse:parse_term`, so
//! any term is accepted: this reader takes the subset a selector can be written in (atoms,
//! integers, floats, binaries, strings, tuples, lists), and refuses the rest (variables, maps,
//! pids, funs) as that parse would refuse an unknown token. The final `.` is required.

/// An Erlang term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Atom(String),
    /// Integers beyond i128 are refused (no client writes them).
    Int(i128),
    Float(f64),
    Binary(Vec<u8>),
    Tuple(Vec<Term>),
    /// A list; a string literal `"ab"` is the list of its character codes.
    List(Vec<Term>),
}

/// Parses the text of one term followed by `.`; the error says what was wrong, for the log.
pub fn parse(text: &[u8]) -> Result<Term, String> {
    let mut p = Parser {
        s: text,
        at: 0,
        depth: 0,
    };
    let term = p.term()?;
    p.skip_space();
    if p.peek() != Some(b'.') {
        return Err(p.error("expected '.' after the term"));
    }
    p.at += 1;
    p.skip_space();
    if p.at != p.s.len() {
        return Err(p.error("text after the final '.'"));
    }
    Ok(term)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    /// Tuples and lists open around the current position.
    depth: usize,
}

/// Deeper nesting is refused: compiling, evaluating and dropping a term recurse, and a
/// selector from the network must not exhaust the stack (the client never nests this deep).
const MAX_DEPTH: usize = 256;

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.at + offset).copied()
    }

    fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_whitespace() => self.at += 1,
                // A comment runs to the end of the line (Erlang's scanner skips it).
                Some(b'%') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.at += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", byte as char)))
        }
    }

    fn term(&mut self) -> Result<Term, String> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        self.depth += 1;
        let term = self.term_inside();
        self.depth -= 1;
        term
    }

    fn term_inside(&mut self) -> Result<Term, String> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                Ok(Term::Tuple(self.sequence(b'}')?))
            }
            Some(b'[') => {
                self.at += 1;
                Ok(Term::List(self.sequence(b']')?))
            }
            Some(b'<') if self.peek_at(1) == Some(b'<') => {
                self.at += 2;
                self.binary()
            }
            Some(b'\'') => {
                self.at += 1;
                Ok(Term::Atom(
                    self.quoted(b'\'')?.into_iter().map(char::from).collect(),
                ))
            }
            Some(b'"') => {
                self.at += 1;
                let bytes = self.quoted(b'"')?;
                Ok(Term::List(
                    bytes.into_iter().map(|b| Term::Int(b.into())).collect(),
                ))
            }
            Some(b'-' | b'+') => {
                // A signed number literal (parse_term folds the sign into the literal).
                let negative = self.peek() == Some(b'-');
                self.at += 1;
                self.skip_space();
                match self.number()? {
                    Term::Int(n) if negative => Ok(Term::Int(-n)),
                    Term::Float(f) if negative => Ok(Term::Float(-f)),
                    other => Ok(other),
                }
            }
            Some(b'0'..=b'9') => self.number(),
            Some(b'$') => {
                // A character literal: $a is 97.
                self.at += 1;
                Ok(Term::Int(self.char_in_quotes()?.into()))
            }
            Some(b'a'..=b'z') => Ok(Term::Atom(self.bare_atom())),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end")),
        }
    }

    /// Comma-separated terms up to `close` (the opening bracket is consumed).
    fn sequence(&mut self, close: u8) -> Result<Vec<Term>, String> {
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.term()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(items);
                }
                _ => return Err(self.error(&format!("expected ',' or '{}'", close as char))),
            }
        }
    }

    /// `<<"text">>`, `<<1,2,3>>`, `<<"a",98>>` or `<<>>` (the `<<` is consumed).
    fn binary(&mut self) -> Result<Term, String> {
        let mut bytes = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'>') {
            self.expect(b'>')?;
            self.expect(b'>')?;
            return Ok(Term::Binary(bytes));
        }
        loop {
            self.skip_space();
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    bytes.extend(self.quoted(b'"')?);
                }
                Some(b'0'..=b'9') => match self.number()? {
                    // A segment is 8 bits: larger values are cut, as Erlang does.
                    Term::Int(n) => bytes.push((n & 0xff) as u8),
                    _ => return Err(self.error("a float in a binary")),
                },
                _ => return Err(self.error("expected a string or a byte in a binary")),
            }
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'>') if self.peek_at(1) == Some(b'>') => {
                    self.at += 2;
                    return Ok(Term::Binary(bytes));
                }
                _ => return Err(self.error("expected ',' or '>>'")),
            }
        }
    }

    fn bare_atom(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'@')
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    /// An unsigned integer or float; `1.` is the integer 1 followed by the end dot.
    fn number(&mut self) -> Result<Term, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.peek().is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                p.at += 1;
            }
            p.at > from
        };
        if !digits(self) {
            return Err(self.error("expected a number"));
        }
        let mut float = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            float = true;
            self.at += 1;
            digits(self);
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.at += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.at += 1;
                }
                if !digits(self) {
                    return Err(self.error("expected an exponent"));
                }
            }
        }
        let text: String = self.s[start..self.at]
            .iter()
            .filter(|&&b| b != b'_')
            .map(|&b| char::from(b))
            .collect();
        if float {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Term::Float)
                .ok_or_else(|| self.error("bad float"))
        } else {
            text.parse::<i128>()
                .map(Term::Int)
                .map_err(|_| self.error("integer too large"))
        }
    }

    /// The bytes of a quoted atom or string up to `close` (the opening quote is consumed).
    fn quoted(&mut self, close: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quote")),
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(_) => {
                    let c = self.char_in_quotes()?;
                    // A code point above 255 does not fit a byte; Erlang keeps its low byte
                    // in a binary. Selector text carries raw UTF-8 bytes, never such escapes.
                    out.push((c & 0xff) as u8);
                }
            }
        }
    }

    /// One character of a quoted text or a `$` literal, with Erlang's escapes.
    fn char_in_quotes(&mut self) -> Result<u32, String> {
        let b = self.peek().ok_or_else(|| self.error("unexpected end"))?;
        self.at += 1;
        if b != b'\\' {
            return Ok(b.into());
        }
        let e = self.peek().ok_or_else(|| self.error("unexpected end"))?;
        self.at += 1;
        Ok(match e {
            b'n' => 10,
            b'r' => 13,
            b't' => 9,
            b'v' => 11,
            b'b' => 8,
            b'f' => 12,
            b'e' => 27,
            b's' => 32,
            b'd' => 127,
            b'0'..=b'7' => {
                let mut n = u32::from(e - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            n = n * 8 + u32::from(d - b'0');
                            self.at += 1;
                        }
                        _ => break,
                    }
                }
                n
            }
            b'x' => self.hex_escape()?,
            b'^' => {
                let c = self.peek().ok_or_else(|| self.error("unexpected end"))?;
                self.at += 1;
                u32::from(c) & 31
            }
            other => other.into(),
        })
    }

    /// `\xHH` or `\x{H...}` (the `\x` is consumed).
    fn hex_escape(&mut self) -> Result<u32, String> {
        let braced = self.peek() == Some(b'{');
        if braced {
            self.at += 1;
        }
        let mut n: u32 = 0;
        let mut count = 0;
        while let Some(d) = self.peek().and_then(|b| (b as char).to_digit(16)) {
            if !braced && count == 2 {
                break;
            }
            n = n
                .checked_mul(16)
                .ok_or_else(|| self.error("escape too large"))?
                + d;
            self.at += 1;
            count += 1;
        }
        if count == 0 {
            return Err(self.error("bad \\x escape"));
        }
        if braced {
            self.expect(b'}')?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(a: &str) -> Term {
        Term::Atom(a.into())
    }
    fn bin(b: &str) -> Term {
        Term::Binary(b.as_bytes().to_vec())
    }

    #[test]
    fn reads_what_the_jms_client_writes() {
        let t = parse(br#"{'and',{'>',{'ident',<<"JMSPriority">>},4},{'=',{'ident',<<"JMSType">>},<<"car">>}}."#).unwrap();
        assert_eq!(
            t,
            Term::Tuple(vec![
                atom("and"),
                Term::Tuple(vec![
                    atom(">"),
                    Term::Tuple(vec![atom("ident"), bin("JMSPriority")]),
                    Term::Int(4)
                ]),
                Term::Tuple(vec![
                    atom("="),
                    Term::Tuple(vec![atom("ident"), bin("JMSType")]),
                    bin("car")
                ]),
            ])
        );
    }

    #[test]
    fn numbers_strings_and_lists() {
        assert_eq!(parse(b"1.57E12.").unwrap(), Term::Float(1.57e12));
        assert_eq!(parse(b"1.0e-5.").unwrap(), Term::Float(1.0e-5));
        assert_eq!(parse(b"-42 .").unwrap(), Term::Int(-42));
        assert_eq!(parse(b"7.").unwrap(), Term::Int(7));
        assert_eq!(
            parse(br#"[<<"a">>,<<"b'c">>,<<"d\"e\\f">>]."#).unwrap(),
            Term::List(vec![bin("a"), bin("b'c"), bin("d\"e\\f")])
        );
        assert_eq!(
            parse("<<\"h\u{e9}llo\">>.".as_bytes()).unwrap(),
            bin("h\u{e9}llo")
        );
        assert_eq!(parse(b"<<97,98>>.").unwrap(), bin("ab"));
        assert_eq!(parse(b"<<>>.").unwrap(), bin(""));
        assert_eq!(
            parse(b"{ident, <<\"x\">>}.").unwrap(),
            Term::Tuple(vec![atom("ident"), bin("x")])
        );
        assert_eq!(
            parse(b"\"ab\".").unwrap(),
            Term::List(vec![Term::Int(97), Term::Int(98)])
        );
        assert_eq!(parse(b"'a\\'b'.").unwrap(), atom("a'b"));
    }

    #[test]
    fn refuses_what_erlang_would_not_parse() {
        for bad in [
            &b"not a term"[..],
            b"{'=',{'ident',<<\"a\">>},1}",
            b"{'=',{'ident',<<\"e3\">>},Infinity}.",
            b"{1,2.",
            b"<<\"a\".",
            b"",
            b".",
            b"1. 2.",
            b"#{}.",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}.", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
        let ok = format!("{}1{}.", "{".repeat(100), "}".repeat(100));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let text = br#"{'like',{'ident',<<"s">>},<<"a\x{41}%">>,<<"!">>}."#;
        assert!(parse(text).is_ok());
        for cut in 0..text.len() {
            assert!(parse(&text[..cut]).is_err());
        }
    }
}
