//! A small emulation of the parts of libpopt that ipvsadm relies on.
//!
//! ipvsadm's error behaviour is defined by popt's, so this reproduces it
//! instead of using clap: bundled short options (`-Ln`), short arguments
//! attached (`-p600`) or after `=` (`-s=rr`), `--long value` and
//! `--long=value`, long options spelled in full only, optional arguments
//! taken only when the next word does not start with `-`, `--` ending the
//! options, and non-option words collected as leftovers in order.

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    Required,
    /// Taken only when attached or when the next word does not start with `-`.
    Optional,
}

/// One entry of the option table.
#[derive(Debug, Clone, Copy)]
pub struct OptDef<T: Copy> {
    pub long: Option<&'static str>,
    pub short: Option<char>,
    pub arg: ArgKind,
    pub id: T,
}

/// A popt error, printed by the caller as `"<bad>: <message>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoptError {
    /// The argv word popt blames (`poptBadOption`): the word last consumed.
    pub bad: String,
    pub message: &'static str,
}

/// One option found on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub id: T,
    pub arg: Option<String>,
    /// The argv word last consumed (what popt would name in an error).
    pub word: String,
}

/// Iterator over the options of an argv (without argv[0]).
pub struct Popt<'a, T: Copy> {
    table: &'a [OptDef<T>],
    args: &'a [String],
    next: usize,
    /// Rest of a bundle of short options still to process.
    bundle: Option<String>,
    rest_leftover: bool,
    leftovers: Vec<String>,
}

impl<'a, T: Copy> Popt<'a, T> {
    pub fn new(table: &'a [OptDef<T>], args: &'a [String]) -> Self {
        Popt {
            table,
            args,
            next: 0,
            bundle: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    /// Non-option words seen so far, in order.
    pub fn leftovers(&self) -> &[String] {
        &self.leftovers
    }

    /// The words not yet looked at (used to peek past `-v`).
    pub fn remaining(&self) -> &'a [String] {
        &self.args[self.next.min(self.args.len())..]
    }

    fn last_word(&self) -> String {
        self.next
            .checked_sub(1)
            .and_then(|i| self.args.get(i))
            .cloned()
            .unwrap_or_default()
    }

    fn err(&self, message: &'static str) -> PoptError {
        PoptError {
            bad: self.last_word(),
            message,
        }
    }

    /// The next option, `None` at the end, or a popt error.
    pub fn next_opt(&mut self) -> Option<Result<Found<T>, PoptError>> {
        if let Some(rest) = self.bundle.take() {
            return Some(self.short(rest));
        }
        loop {
            let word = self.args.get(self.next)?.clone();
            self.next += 1;
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word);
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                return Some(self.long(long));
            }
            return Some(self.short(word[1..].to_string()));
        }
    }

    fn long(&mut self, text: &str) -> Result<Found<T>, PoptError> {
        let (name, attached) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (text, None),
        };
        let Some(def) = self.table.iter().find(|d| d.long == Some(name)).copied() else {
            return Err(self.err("unknown option"));
        };
        if def.arg == ArgKind::None {
            if attached.is_some() {
                return Err(self.err("option does not take an argument"));
            }
            return Ok(Found {
                id: def.id,
                arg: None,
                word: self.last_word(),
            });
        }
        let arg = match attached {
            Some(v) => Some(v),
            None => self.take_next(def.arg)?,
        };
        Ok(Found {
            id: def.id,
            arg,
            word: self.last_word(),
        })
    }

    /// Process the first character of `rest` (a bundle without its leading `-`).
    fn short(&mut self, rest: String) -> Result<Found<T>, PoptError> {
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return Err(self.err("unknown option"));
        };
        let Some(def) = self.table.iter().find(|d| d.short == Some(c)).copied() else {
            return Err(self.err("unknown option"));
        };
        let tail = chars.as_str();
        // popt skips one `=` right after a short option letter.
        let tail = tail.strip_prefix('=').unwrap_or(tail);
        if def.arg == ArgKind::None {
            if !tail.is_empty() {
                self.bundle = Some(tail.to_string());
            }
            return Ok(Found {
                id: def.id,
                arg: None,
                word: self.last_word(),
            });
        }
        let arg = if rest.len() > c.len_utf8() {
            Some(tail.to_string())
        } else {
            self.take_next(def.arg)?
        };
        Ok(Found {
            id: def.id,
            arg,
            word: self.last_word(),
        })
    }

    fn take_next(&mut self, kind: ArgKind) -> Result<Option<String>, PoptError> {
        match self.args.get(self.next) {
            None if kind == ArgKind::Optional => Ok(None),
            None => Err(self.err("missing argument")),
            Some(w) if kind == ArgKind::Optional && w.starts_with('-') => Ok(None),
            Some(w) => {
                self.next += 1;
                Ok(Some(w.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[OptDef<char>] = &[
        OptDef {
            long: Some("list"),
            short: Some('L'),
            arg: ArgKind::None,
            id: 'L',
        },
        OptDef {
            long: Some("numeric"),
            short: Some('n'),
            arg: ArgKind::None,
            id: 'n',
        },
        OptDef {
            long: Some("tcp-service"),
            short: Some('t'),
            arg: ArgKind::Required,
            id: 't',
        },
        OptDef {
            long: Some("persistent"),
            short: Some('p'),
            arg: ArgKind::Optional,
            id: 'p',
        },
    ];

    type Events = Vec<Result<(char, Option<String>), PoptError>>;

    fn run(args: &[&str]) -> (Events, Vec<String>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut p = Popt::new(T, &args);
        let mut out = Vec::new();
        while let Some(r) = p.next_opt() {
            let stop = r.is_err();
            out.push(r.map(|f| (f.id, f.arg)));
            if stop {
                break;
            }
        }
        (out, p.leftovers().to_vec())
    }

    #[test]
    fn bundles_and_attached() {
        let (o, _) = run(&["-Ln", "-t1.2.3.4:80", "-Lt", "x", "-p=5", "--tcp-service=y"]);
        let o: Vec<_> = o.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            o,
            vec![
                ('L', None),
                ('n', None),
                ('t', Some("1.2.3.4:80".into())),
                ('L', None),
                ('t', Some("x".into())),
                ('p', Some("5".into())),
                ('t', Some("y".into())),
            ]
        );
    }

    #[test]
    fn optional_argument() {
        let (o, l) = run(&["-p", "-n", "-p", "600", "--persistent", "foo"]);
        let o: Vec<_> = o.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            o,
            vec![
                ('p', None),
                ('n', None),
                ('p', Some("600".into())),
                ('p', Some("foo".into()))
            ]
        );
        assert!(l.is_empty());
    }

    #[test]
    fn errors() {
        let (o, _) = run(&["-L", "-q"]);
        assert_eq!(
            o[1],
            Err(PoptError {
                bad: "-q".into(),
                message: "unknown option"
            })
        );
        let (o, _) = run(&["-t"]);
        assert_eq!(
            o[0],
            Err(PoptError {
                bad: "-t".into(),
                message: "missing argument"
            })
        );
        let (o, _) = run(&["--list-x"]);
        assert_eq!(
            o[0],
            Err(PoptError {
                bad: "--list-x".into(),
                message: "unknown option"
            })
        );
        let (o, _) = run(&["--lis"]);
        assert!(o[0].is_err(), "no abbreviations");
        let (o, _) = run(&["--numeric=1"]);
        assert_eq!(
            o[0].as_ref().unwrap_err().message,
            "option does not take an argument"
        );
    }

    #[test]
    fn leftovers_and_double_dash() {
        let (o, l) = run(&["a", "-L", "-", "--", "-n", "b"]);
        assert_eq!(o.len(), 1);
        assert_eq!(l, vec!["a", "-", "-n", "b"]);
    }
}
