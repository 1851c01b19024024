//! Configuration errors, and how they find their key and line.
//!
//! The TOML reader reports a byte span; the semantic checks report a key
//! path. Each is turned into the other with the spanned document tree that
//! `toml` parses (`DeTable`): a span finds the deepest key whose name or
//! value covers it, a key path finds that key's value in the file.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not TOML.
    Syntax,
    /// TOML, but not our schema: an unknown key, a wrong type, a value
    /// that does not read (an address, a duration), a missing key.
    Schema,
    /// Well-formed values that do not make sense together or alone (zero
    /// intervals, overlapping pools, ...).
    Invalid,
    /// A file could not be read.
    Io,
    /// The users file did not parse or refers to something unknown.
    Users,
}

/// A configuration mistake: where it is, which key, and what is wrong.
///
/// Displays as `FILE:LINE:COL: key: message`, leaving out what is not
/// known (the file for text parsed from memory, the line for a key that
/// only has its default value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What kind of mistake.
    pub kind: ErrorKind,
    /// The file the line refers to (the config file, or the users file for
    /// [`ErrorKind::Users`]); `None` for text parsed from memory.
    pub file: Option<PathBuf>,
    /// 1-based line, when the mistake is in the text.
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    /// The key path, e.g. `ppp.echo_interval` or `pool[1].ranges[0]`;
    /// empty when the text is not TOML far enough to tell.
    pub key: String,
    /// What is wrong, for the operator.
    pub message: String,
}

impl ConfigError {
    /// An error about `key` that no line of a file shows (a default value,
    /// or a config built in code).
    pub fn unplaced(kind: ErrorKind, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            kind,
            file: None,
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
            if let Some(column) = self.column {
                write!(f, "{column}:")?;
            }
        }
        if self.file.is_some() || self.line.is_some() {
            f.write_str(" ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of byte `offset` in `text`. An
/// offset past the end, or inside a character, is pulled back to a
/// character boundary, so the answer always lies within the text (or just
/// after its last character).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..char_floor(text, offset)];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The largest character boundary of `text` at or below `offset`.
fn char_floor(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Splits `pool[1].ranges[0]` into steps. Our keys never hold `.` or `[`.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next() {
            if !key.is_empty() {
                out.push(Step::Key(key.to_string()));
            }
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// A key or list element found in the document, with its spans.
#[derive(Debug)]
struct Entry {
    path: Vec<Step>,
    /// The key's own span (none for list elements).
    key: Option<Range<usize>>,
    /// The value's span; for a `[table]` or `[[table]]` it is the header.
    value: Range<usize>,
}

fn collect(table: &DeTable<'_>, path: &mut Vec<Step>, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        path.push(Step::Key(key.get_ref().to_string()));
        out.push(Entry {
            path: path.clone(),
            key: Some(key.span()),
            value: value.span(),
        });
        collect_value(value, path, out);
        path.pop();
    }
}

fn collect_value(value: &Spanned<DeValue<'_>>, path: &mut Vec<Step>, out: &mut Vec<Entry>) {
    match value.get_ref() {
        DeValue::Table(table) => collect(table, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                out.push(Entry {
                    path: path.clone(),
                    key: None,
                    value: item.span(),
                });
                collect_value(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The document's keys, for turning spans into keys and keys into spans.
#[derive(Debug)]
pub(crate) struct Located<'a> {
    text: &'a str,
    entries: Vec<Entry>,
}

impl<'a> Located<'a> {
    /// Index a (possibly partial) parsed document.
    pub fn new(text: &'a str, root: &DeTable<'_>) -> Self {
        let mut entries = Vec::new();
        collect(root, &mut Vec::new(), &mut entries);
        Located { text, entries }
    }

    /// The key path of the thing at byte `offset`: the deepest key or
    /// element whose name or value covers it; else the last key that
    /// starts before it on the same line (a broken value after `key =`);
    /// else the table whose header comes last before it.
    pub fn key_at(&self, offset: usize) -> String {
        let covers = |r: &Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        if let Some(e) = self
            .entries
            .iter()
            .filter(|e| covers(&e.value) || e.key.as_ref().is_some_and(covers))
            .max_by_key(|e| e.path.len())
        {
            return render(&e.path);
        }
        let line_of = |at: usize| line_col(self.text, at).0;
        let line = line_of(offset);
        if let Some(e) = self
            .entries
            .iter()
            .filter_map(|e| e.key.as_ref().map(|k| (k.start, e)))
            .filter(|(start, _)| *start <= offset && line_of(*start) == line)
            .max_by_key(|(start, _)| *start)
        {
            return render(&e.1.path);
        }
        let table = self
            .entries
            .iter()
            .filter(|e| self.is_header(e))
            .filter(|e| e.value.start <= offset)
            .max_by_key(|e| e.value.start)
            .map(|e| render(&e.path))
            .unwrap_or_default();
        // A key the partial tree dropped (a duplicate, say): read it off
        // the line itself, inside the table the line belongs to.
        let start = self.text[..char_floor(self.text, offset)]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_text = self.text[start..].lines().next().unwrap_or("");
        let bare = line_text
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
        match bare {
            Some(k) if table.is_empty() => k.to_string(),
            Some(k) => format!("{table}.{k}"),
            None => table,
        }
    }

    /// Whether an entry is a `[table]` header (a value span that starts
    /// with `[` and holds the key) or a `[[table]]` element.
    fn is_header(&self, e: &Entry) -> bool {
        let text = self.text.get(e.value.clone()).unwrap_or("");
        match &e.key {
            Some(k) => text.starts_with('[') && e.value.start <= k.start && k.end <= e.value.end,
            None => text.starts_with("[["),
        }
    }

    /// The span of `path`'s value if the file sets it.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let want = steps(path);
        self.entries
            .iter()
            .find(|e| e.path == want)
            .map(|e| e.value.clone())
    }

    /// An error at `path`, placed on its line when the file sets it, else
    /// on its nearest ancestor that the file does set (a section header).
    pub fn error_at(&self, kind: ErrorKind, path: &str, message: impl Into<String>) -> ConfigError {
        let mut error = ConfigError::unplaced(kind, path, message);
        let mut want = steps(path);
        while !want.is_empty() {
            if let Some(e) = self.entries.iter().find(|e| e.path == want) {
                let (line, column) = line_col(self.text, e.value.start);
                error.line = Some(line);
                error.column = Some(column);
                break;
            }
            want.pop();
        }
        error
    }

    /// An error at byte span `span` (from the TOML reader), keyed by what
    /// lies there.
    pub fn error_at_span(
        &self,
        kind: ErrorKind,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        let mut error = ConfigError::unplaced(kind, "", message);
        if let Some(span) = span {
            let (line, column) = line_col(self.text, span.start);
            error.line = Some(line);
            error.column = Some(column);
            error.key = self.key_at(span.start);
        }
        error
    }
}

/// Rewords serde's schema messages for operators: "key" rather than
/// "field", and for a misspelt key the closest known one.
pub fn reword(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((unknown, expected)) = rest.split_once('`') {
            let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let close = known
                .iter()
                .map(|k| (edit_distance(unknown, k), *k))
                .filter(|(d, k)| *d <= (k.len() / 3).max(2))
                .min();
            let list = known.join(", ");
            return match close {
                Some((_, k)) => {
                    format!("unknown key `{unknown}`, did you mean `{k}`? (known keys: {list})")
                }
                None => format!("unknown key `{unknown}` (known keys: {list})"),
            };
        }
    }
    message.replacen("missing field", "missing key", 1)
}

/// Levenshtein distance, for suggesting a key.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes; the column after it is 3.
        assert_eq!(line_col(text, 9), (2, 3));
        // Inside 'é': pulled back to its start.
        assert_eq!(line_col(text, 8), (2, 2));
        assert_eq!(line_col(text, 1000), (3, 1));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn key_paths_round_trip() {
        for path in [
            "ppp.echo_interval",
            "pool[1].ranges[0]",
            "l2tp.peer[0].secret",
            "pool",
        ] {
            assert_eq!(render(&steps(path)), path);
        }
    }

    #[test]
    fn misspelt_keys_get_a_suggestion() {
        let m = reword("unknown field `echo_intervl`, expected one of `echo_interval`, `mru`");
        assert_eq!(
            m,
            "unknown key `echo_intervl`, did you mean `echo_interval`? (known keys: \
             echo_interval, mru)"
        );
        let m = reword("unknown field `zzz`, expected `mru` or `auth`");
        assert_eq!(m, "unknown key `zzz` (known keys: mru, auth)");
        assert_eq!(reword("missing field `name`"), "missing key `name`");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let mut e = ConfigError::unplaced(ErrorKind::Invalid, "ppp.mru", "too small");
        assert_eq!(e.to_string(), "ppp.mru: too small");
        e.line = Some(3);
        e.column = Some(7);
        assert_eq!(e.to_string(), "3:7: ppp.mru: too small");
        e.file = Some("lns.toml".into());
        assert_eq!(e.to_string(), "lns.toml:3:7: ppp.mru: too small");
        e.key.clear();
        assert_eq!(e.to_string(), "lns.toml:3:7: too small");
    }
}
