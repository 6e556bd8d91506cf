//! A small JSON reader that keeps what the importer needs and `serde_json::Value` drops: the
//! position of every value and the order of an object's keys (XState reads document order from
//! it). Syntax errors name their line and column.

use super::{ImportError, Lines, Position};

/// A JSON value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Json {
    pub pos: Position,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in document order, each key with its position.
    Object(Vec<(String, Position, Json)>),
}

impl Json {
    /// What the value is, for messages: `a string`, `an object`.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn members(&self) -> Option<&[(String, Position, Json)]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.members()?.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v)
    }
}

/// Parses a whole document.
pub(super) fn parse(text: &str) -> Result<Json, ImportError> {
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
        source: text,
        lines: Lines::new(text),
    };
    reader.space();
    let value = reader.value(0)?;
    reader.space();
    if reader.at < reader.text.len() {
        return Err(reader.error("bad JSON: text after the document's end"));
    }
    Ok(value)
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    source: &'a str,
    lines: Lines<'a>,
}

impl Reader<'_> {
    fn position(&self) -> Position {
        self.lines.position(self.at)
    }

    fn error(&self, message: &str) -> ImportError {
        ImportError::new(self.position(), message.to_string())
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ImportError> {
        if depth > MAX_DEPTH {
            return Err(self.error("bad JSON: nested too deeply"));
        }
        let pos = self.position();
        let value = match self.text.get(self.at) {
            None => return Err(self.error("bad JSON: unexpected end of the document")),
            Some(b'{') => {
                self.at += 1;
                let mut members: Vec<(String, Position, Json)> = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b'}') {
                    self.at += 1;
                } else {
                    loop {
                        self.space();
                        let key_pos = self.position();
                        match self.text.get(self.at) {
                            Some(b'"') => {}
                            Some(b'}') => {
                                return Err(self.error("bad JSON: a comma before `}` (JSON has no trailing commas)"))
                            }
                            _ => return Err(self.error("bad JSON: expected a key in double quotes")),
                        }
                        let key = self.string()?;
                        if members.iter().any(|(k, _, _)| *k == key) {
                            return Err(ImportError::new(key_pos, format!("bad JSON: duplicate key \"{key}\"")));
                        }
                        self.space();
                        if self.text.get(self.at) != Some(&b':') {
                            return Err(self.error("bad JSON: expected `:` after a key"));
                        }
                        self.at += 1;
                        self.space();
                        let value = self.value(depth + 1)?;
                        members.push((key, key_pos, value));
                        self.space();
                        match self.text.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b'}') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(self.error("bad JSON: expected `,` or `}`")),
                        }
                    }
                }
                Value::Object(members)
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b']') {
                    self.at += 1;
                } else {
                    loop {
                        self.space();
                        if self.text.get(self.at) == Some(&b']') {
                            return Err(self.error("bad JSON: a comma before `]` (JSON has no trailing commas)"));
                        }
                        items.push(self.value(depth + 1)?);
                        self.space();
                        match self.text.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(self.error("bad JSON: expected `,` or `]`")),
                        }
                    }
                }
                Value::Array(items)
            }
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.text.get(self.at) {
                    self.at += 1;
                }
                let number = &self.source[start..self.at];
                if number.parse::<f64>().is_err() || number.starts_with('+') {
                    return Err(ImportError::new(pos, format!("bad JSON: `{number}` is not a number")));
                }
                Value::Number(number.to_string())
            }
            Some(_) => return Err(self.error("bad JSON: expected a value")),
        };
        Ok(Json { pos, value })
    }

    fn word(&mut self, word: &str, value: Value) -> Result<Value, ImportError> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("bad JSON: expected a value"))
        }
    }

    /// A string literal, the reader on its opening quote.
    fn string(&mut self) -> Result<String, ImportError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.text.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // Both ends are ASCII bytes, so they are character boundaries.
            out.push_str(&self.source[start..self.at]);
            match self.text.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = match self.text.get(self.at) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let code = self
                                .source
                                .get(self.at + 1..self.at + 5)
                                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                                .ok_or_else(|| self.error("bad JSON: `\\u` needs four hex digits"))?;
                            self.at += 4;
                            // Surrogate pairs are not names anyone gives a state.
                            char::from_u32(code).ok_or_else(|| self.error("bad JSON: unpaired surrogate"))?
                        }
                        _ => return Err(self.error("bad JSON: unknown escape")),
                    };
                    self.at += 1;
                    out.push(escaped);
                }
                Some(_) => return Err(self.error("bad JSON: control character in a string")),
                None => return Err(self.error("bad JSON: unterminated string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_positions() {
        let doc = parse("{\n  \"b\": [1, -2.5e3],\n  \"a\": {\"x\": \"\\u0041\\n\"}, \"c\": null\n}").unwrap();
        let keys: Vec<&str> = doc.members().unwrap().iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        let (_, key_pos, _) = &doc.members().unwrap()[1];
        assert_eq!((key_pos.line, key_pos.column), (3, 3));
        assert_eq!(doc.get("a").unwrap().get("x").unwrap().as_str(), Some("A\n"));
        assert_eq!(doc.get("b").unwrap().kind(), "an array");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        for (text, line, column, message) in [
            ("{\"a\": }", 1, 7, "bad JSON: expected a value"),
            ("{\n  \"a\": 1,\n  \"a\": 2}", 3, 3, "bad JSON: duplicate key \"a\""),
            ("[1 2]", 1, 4, "bad JSON: expected `,` or `]`"),
            ("\"abc", 1, 5, "bad JSON: unterminated string"),
            ("{} x", 1, 4, "bad JSON: text after the document's end"),
            ("", 1, 1, "bad JSON: unexpected end of the document"),
            ("{\"a\": 1.2.3}", 1, 7, "bad JSON: `1.2.3` is not a number"),
            ("{a: 1}", 1, 2, "bad JSON: expected a key in double quotes"),
            (
                "{\"a\": 1,\n}",
                2,
                1,
                "bad JSON: a comma before `}` (JSON has no trailing commas)",
            ),
            (
                "[1,]",
                1,
                4,
                "bad JSON: a comma before `]` (JSON has no trailing commas)",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(
                (error.position.line, error.position.column, error.message.as_str()),
                (line, column, message),
                "{text:?}"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep).unwrap_err().message, "bad JSON: nested too deeply");
    }
}
