//! `-R`: read ipvsadm command lines from stdin and turn them into one
//! atomic `Request::Batch`.
//!
//! Tokenizing follows ipvsadm (ipvsadm's “`-R` (restore) input format”): split on blanks, tabs and CRs, drop
//! every `ipvsadm` token, skip empty lines. Unlike ipvsadm, lines starting
//! with `#` are skipped (as the `ipvsadm-restore` wrapper does), and the
//! whole input is validated before anything is sent: any error means no
//! change at all.

use rvs::ctl::proto::Request;

use crate::request::{parse, try_help, Action, CliError, Command};

/// One accepted input line and the request it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreLine {
    /// 1-based line number in the input.
    pub number: usize,
    /// The line as read (without its line terminator).
    pub text: String,
    pub request: Request,
}

/// An input line that was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub number: usize,
    pub text: String,
    pub error: CliError,
}

impl LineError {
    /// `line N: <text>: <message>`.
    pub fn message(&self) -> String {
        crate::output::visible(&format!(
            "line {}: {}: {}",
            self.number, self.text, self.error.message
        ))
    }
}

/// Split one line into argv words the way ipvsadm's restore does: on
/// blanks, tabs and CRs, dropping every `ipvsadm` token. rvs addition: a word
/// that starts with `"` runs to the closing `"`, so that `-S` can save
/// health-check values with blanks. Inside it `\n`, `\r`, `\t`, `\xHH` and
/// `\u{HHHH}` stand for that character (how `-S` writes control characters
/// that an older table may hold), and a backslash before anything else
/// stands for that thing (`\"`, `\\`).
pub fn tokenize(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.extend(unescape(&mut chars)),
                    c => word.push(c),
                }
            }
            words.push(word);
            continue;
        }
        while let Some(&c) = chars.peek() {
            if matches!(c, ' ' | '\t' | '\r' | '\n') {
                break;
            }
            word.push(c);
            chars.next();
        }
        if word != "ipvsadm" {
            words.push(word);
        }
    }
    words
}

/// The character a backslash inside quotes stands for, `chars` being just
/// after the backslash.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
    let c = chars.next()?;
    let hex = |digits: &str| {
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
    };
    // At most `{` + 6 digits + `}` are looked at.
    let rest = chars.clone().take(8).collect::<String>();
    let (code, used) = match c {
        'n' => return Some('\n'),
        'r' => return Some('\r'),
        't' => return Some('\t'),
        'x' => match rest
            .get(..2)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()))
        {
            Some(d) => (hex(d), 2),
            None => (None, 0),
        },
        'u' => match rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            Some((d, _))
                if (1..=6).contains(&d.len()) && d.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                (hex(d), d.len() + 2)
            }
            _ => (None, 0),
        },
        _ => (None, 0),
    };
    match code {
        Some(decoded) => {
            for _ in 0..used {
                chars.next();
            }
            Some(decoded)
        }
        None => Some(c),
    }
}

/// Parse the whole restore input; `prog` is used as argv[0] of each line.
pub fn parse_input(prog: &str, input: &str) -> Result<Vec<RestoreLine>, LineError> {
    let mut out = Vec::new();
    for (i, raw) in input.split('\n').enumerate() {
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        if text.trim_start_matches([' ', '\t', '\r']).starts_with('#') {
            continue;
        }
        let words = tokenize(text);
        if words.is_empty() {
            continue;
        }
        let line_err = |error| LineError {
            number: i + 1,
            text: text.to_string(),
            error,
        };
        let mut argv = Vec::with_capacity(words.len() + 1);
        argv.push(prog.to_string());
        argv.extend(words);
        let request = parse(&argv)
            .and_then(|cmd| line_request(prog, cmd))
            .map_err(line_err)?;
        out.push(RestoreLine {
            number: i + 1,
            text: text.to_string(),
            request,
        });
    }
    Ok(out)
}

/// Only table changes are allowed inside restore input.
fn line_request(prog: &str, cmd: Command) -> Result<Request, CliError> {
    let not_allowed = || CliError {
        status: 2,
        message: "only -A -E -D -C -a -e -d -Z --set are allowed in restore input".to_string(),
    };
    let Command::Run(inv) = cmd else {
        return Err(not_allowed());
    };
    if inv.socket.is_some() {
        return Err(CliError {
            status: 2,
            message: "--socket is not allowed in restore input".to_string(),
        });
    }
    match inv.action {
        // ipvsadm: a nested -R prints the "Try" line and exits 255.
        Action::Restore => Err(try_help(prog)),
        Action::List { .. }
        | Action::ListConnections { .. }
        | Action::ListTimeouts
        | Action::Save { .. } => Err(not_allowed()),
        action => Ok(action.request().expect("table changes have a request")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer() {
        assert_eq!(
            tokenize("ipvsadm -A\t-t 1.2.3.4:80\r"),
            vec!["-A", "-t", "1.2.3.4:80"]
        );
        assert_eq!(tokenize("-a ipvsadm -t x"), vec!["-a", "-t", "x"]);
        assert!(tokenize("  \t ").is_empty());
        assert!(tokenize("ipvsadm").is_empty());
    }

    #[test]
    fn whole_input() {
        let input = "# saved\n\n-A -t 1.2.3.4:80 -s rr\nipvsadm -a -t 1.2.3.4:80 -r 10.0.0.1:80 -m -w 1\r\n  # x\n-Z\n--set 0 0 0";
        let lines = parse_input("rvsadm", input).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![3, 4, 6, 7]
        );
        assert!(matches!(lines[0].request, Request::AddService(_)));
        assert!(matches!(lines[1].request, Request::AddServer { .. }));
        assert_eq!(
            lines[1].text,
            "ipvsadm -a -t 1.2.3.4:80 -r 10.0.0.1:80 -m -w 1"
        );
        assert_eq!(lines[2].request, Request::Zero(None));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_input("rvsadm", "-C\n-A -t 1.2.3.4:80 -s rr # web\n").unwrap_err();
        assert_eq!(
            e.message(),
            "line 2: -A -t 1.2.3.4:80 -s rr # web: unexpected argument #"
        );
        assert_eq!(e.error.status, 2);
        let e = parse_input("rvsadm", "-R\n").unwrap_err();
        assert_eq!(e.error.status, 255);
        assert_eq!(
            e.message(),
            "line 1: -R: Try `rvsadm -h' or 'rvsadm --help' for more information."
        );
        let e = parse_input("rvsadm", "-L -n\n").unwrap_err();
        assert_eq!(e.error.status, 2);
        let e = parse_input("rvsadm", "-A -t 1.2.3.4:80 --bogus\n").unwrap_err();
        assert_eq!(
            e.message(),
            "line 1: -A -t 1.2.3.4:80 --bogus: --bogus: unknown option"
        );
        assert_eq!(e.error.status, 255);
        let e = parse_input("rvsadm", "-a -t 1.2.3.4:80 -r 10.0.0.1 -g\n").unwrap_err();
        assert!(e.error.message.starts_with("not supported by rvs yet: -g"));
    }

    #[test]
    fn quoted_words_read_escapes_back() {
        assert_eq!(
            tokenize(r#"-x "a\nb\r\tc\x1b[0m\x00\u{9b}\u{1F600}" "q\"\\" "\q\x4" "\u{zz}""#),
            vec![
                "-x",
                "a\nb\r\tc\x1b[0m\0\u{9b}\u{1F600}",
                "q\"\\",
                "qx4",
                "u{zz}"
            ]
        );
        // A saved line with escapes is one line, and errors show no raw control character.
        let e = parse_input("rvsadm", "-A -t 1.2.3.4:80 --check-exec \"a\\x1bb\"\n").unwrap_err();
        assert_eq!(e.number, 1);
        assert!(
            e.message()
                .contains("control character U+001B at character 2"),
            "{}",
            e.message()
        );
        let e = parse_input("rvsadm", "-A -t 1.2.3.4:80 --bogus\x1b[2J\n").unwrap_err();
        assert_eq!(
            e.message(),
            "line 1: -A -t 1.2.3.4:80 --bogus\\x1b[2J: --bogus\\x1b[2J: unknown option"
        );
    }
}
