//! Man pages and shell completions generated from the clap definitions
//! (`--generate man|complete-bash|complete-zsh|complete-fish` on every binary).
//!
//! Generic over the binary: each one passes its own `clap::Command` and the
//! hand-written roff sections clap cannot know about ([`ManExtra`]).

use clap_complete::Shell;
use clap_mangen::Man;

/// What `--generate` accepts.
pub const TARGETS: &[&str] = &["man", "complete-bash", "complete-zsh", "complete-fish"];

/// One extra man page section: `.SH <title>` followed by raw roff.
#[derive(Debug, Clone, Default)]
pub struct ManSection {
    pub title: String,
    /// roff source (man(7) macros); must end with a newline.
    pub roff: String,
}

impl ManSection {
    pub fn new(title: impl Into<String>, roff: impl Into<String>) -> ManSection {
        ManSection {
            title: title.into(),
            roff: roff.into(),
        }
    }
}

/// Man page metadata and sections supplied by the binary.
#[derive(Debug, Clone, Default)]
pub struct ManExtra {
    /// Manual section, e.g. "8" (default "1").
    pub section: String,
    /// `.TH` date; fixed so that generated pages are reproducible.
    pub date: String,
    /// `.TH` manual name, e.g. "System Manager's Manual".
    pub manual: String,
    /// Replaces clap's generated SYNOPSIS body when set (raw roff).
    pub synopsis: Option<String>,
    /// Sections appended after OPTIONS, in order.
    pub sections: Vec<ManSection>,
}

/// Render `what` (one of [`TARGETS`]) for `cmd`.
pub fn generate(cmd: clap::Command, what: &str, man: &ManExtra) -> Result<Vec<u8>, String> {
    let shell = match what {
        "man" => {
            return render_man(cmd, man).map_err(|e| format!("could not render man page: {e}"))
        }
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        other => {
            return Err(format!(
                "unknown --generate target `{other}' (expected one of: {})",
                TARGETS.join(", ")
            ));
        }
    };
    let mut cmd = cmd;
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    Ok(out)
}

fn render_man(cmd: clap::Command, extra: &ManExtra) -> std::io::Result<Vec<u8>> {
    let title = cmd.get_name().to_uppercase();
    let mut page = Man::new(cmd).title(title);
    if !extra.section.is_empty() {
        page = page.section(extra.section.clone());
    }
    if !extra.date.is_empty() {
        page = page.date(extra.date.clone());
    }
    if !extra.manual.is_empty() {
        page = page.manual(extra.manual.clone());
    }
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    match &extra.synopsis {
        Some(roff) => {
            out.extend_from_slice(b".SH SYNOPSIS\n");
            out.extend_from_slice(roff.as_bytes());
        }
        None => page.render_synopsis_section(&mut out)?,
    }
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    for s in &extra.sections {
        out.extend_from_slice(format!(".SH \"{}\"\n", s.title).as_bytes());
        out.extend_from_slice(s.roff.as_bytes());
        if !s.roff.ends_with('\n') {
            out.push(b'\n');
        }
    }
    Ok(tidy_roff(&String::from_utf8_lossy(&out)).into_bytes())
}

/// Text lines are wrapped below mandoc's 80-byte limit, with room for
/// multi-byte characters that mandoc counts as escapes.
const WRAP: usize = 72;

/// Make clap's roff lint-clean for `mandoc -T lint`: no trailing blanks,
/// and filled text lines broken at spaces to at most [`WRAP`] bytes (macro
/// lines and no-fill blocks are left alone).
pub fn tidy_roff(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 16);
    let mut nofill = false;
    for line in src.lines() {
        let line = line.trim_end();
        if line.starts_with(".nf") {
            nofill = true;
        } else if line.starts_with(".fi") {
            nofill = false;
        }
        if nofill || line.starts_with('.') || line.starts_with('\'') || line.len() <= WRAP {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut cur = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !cur.is_empty() && cur.len() + 1 + word.len() > WRAP {
                out.push_str(&cur);
                out.push('\n');
                cur.clear();
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push_str(&cur);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("demo").about("a demo").arg(
            clap::Arg::new("x")
                .short('x')
                .long("ex")
                .help("an option")
                .action(clap::ArgAction::SetTrue),
        )
    }

    #[test]
    fn man_has_sections() {
        let extra = ManExtra {
            section: "8".into(),
            sections: vec![ManSection::new("EXIT STATUS", ".TP\n.B 0\nok\n")],
            ..ManExtra::default()
        };
        let text = String::from_utf8(generate(cmd(), "man", &extra).unwrap()).unwrap();
        assert!(text.contains("\n.TH DEMO 8"));
        for s in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "\"EXIT STATUS\"",
        ] {
            assert!(text.contains(&format!(".SH {s}")), "{s} missing:\n{text}");
        }
    }

    #[test]
    fn completions_and_unknown() {
        for t in &TARGETS[1..] {
            assert!(!generate(cmd(), t, &ManExtra::default()).unwrap().is_empty());
        }
        assert!(generate(cmd(), "pdf", &ManExtra::default()).is_err());
    }
}
