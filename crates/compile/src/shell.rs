//! POSIX shell scripts: every build is one `sh -c` script, run the same way
//! on the host and in the builder container.

use std::fmt;

/// One word of a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// A literal, quoted when written out.
    Lit(String),
    /// `PREFIX` followed by the value of a shell variable set earlier in the
    /// script (e.g. `-p:EmbedIcuDataPath=` + `$DP_ICU_DAT`).
    Var { prefix: String, var: &'static str },
    /// Shell text written as it is (e.g. `"$@"`), shown as `display`.
    Raw { shell: String, display: String },
}

impl Word {
    pub fn lit(s: impl Into<String>) -> Word {
        Word::Lit(s.into())
    }

    /// Shell form.
    pub fn to_shell(&self) -> String {
        match self {
            Word::Lit(s) => quote(s),
            Word::Var { prefix, var } => format!("{}\"${{{var}}}\"", quote_prefix(prefix)),
            Word::Raw { shell, .. } => shell.clone(),
        }
    }
}

impl fmt::Display for Word {
    /// Human form: literals as they are, variables as `$VAR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::Lit(s) => f.write_str(s),
            Word::Var { prefix, var } => write!(f, "{prefix}${var}"),
            Word::Raw { display, .. } => f.write_str(display),
        }
    }
}

fn quote_prefix(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        quote(s)
    }
}

/// Quotes one word for sh; plain words are left as they are.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A command: words, shell-quoted when written out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd(pub Vec<Word>);

impl Cmd {
    pub fn new<I, S>(words: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd(words.into_iter().map(|w| Word::Lit(w.into())).collect())
    }

    pub fn arg(mut self, w: impl Into<String>) -> Cmd {
        self.0.push(Word::Lit(w.into()));
        self
    }

    pub fn push(&mut self, w: impl Into<String>) {
        self.0.push(Word::Lit(w.into()));
    }

    pub fn to_shell(&self) -> String {
        self.0
            .iter()
            .map(Word::to_shell)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The literal words (variables shown as `$VAR`).
    pub fn words(&self) -> Vec<String> {
        self.0.iter().map(|w| w.to_string()).collect()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("-ldflags=-s -w"), "'-ldflags=-s -w'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
        let w = Word::Var {
            prefix: "-p:X=".into(),
            var: "DP_ICU",
        };
        assert_eq!(w.to_shell(), "-p:X=\"${DP_ICU}\"");
        assert_eq!(w.to_string(), "-p:X=$DP_ICU");
    }
}
