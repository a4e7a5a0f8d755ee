//! The demo's progress display: a line per participant, redrawn in place about once a second on
//! a terminal, or printed as plain timestamped lines when stdout is a pipe or a file.

use std::io::{IsTerminal, Write};

/// One participant's line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    /// Display name.
    pub(crate) name: String,
    /// "leader", "member", "joining", "left".
    pub(crate) role: String,
    /// Sender slot, once a key named it.
    pub(crate) slot: Option<u64>,
    /// mkSeqNum.
    pub(crate) mk_seq: u64,
    /// Rotations seen.
    pub(crate) rotations: u64,
    /// Packets sealed by its sidecar.
    pub(crate) sealed: u64,
    /// Packets opened by its sidecar.
    pub(crate) opened: u64,
    /// The leader's security code as this participant computed it.
    pub(crate) code: Option<String>,
    /// How its meeting key reached it: `hybrid`, `classical`, `leader` (it made it).
    pub(crate) key_box: Option<String>,
}

/// Draws rows, in place on a terminal.
#[derive(Debug)]
pub(crate) struct Display {
    terminal: bool,
    drawn: usize,
}

impl Display {
    /// A display on stdout.
    pub(crate) fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            drawn: 0,
        }
    }

    /// Draws the rows under a heading with the elapsed seconds.
    pub(crate) fn draw(&mut self, elapsed_s: u64, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        if self.terminal && self.drawn > 0 {
            // Back to the first line of the previous frame; each line is cleared as it is
            // rewritten.
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        let clear = if self.terminal { "\x1b[2K" } else { "" };
        let codes: Vec<&String> = rows.iter().filter_map(|r| r.code.as_ref()).collect();
        let agree = match codes.first() {
            Some(first) if codes.iter().all(|c| c == first) => "all equal",
            Some(_) => "DIFFER",
            None => "not yet",
        };
        let _ = writeln!(
            out,
            "{clear}t={elapsed_s:>3}s  participant  role     slot  mkSeqNum  rotations  key box      sealed    opened  security code ({agree})"
        );
        for row in rows {
            let slot = row.slot.map_or("-".to_owned(), |s| s.to_string());
            let code = row.code.as_deref().map_or("-".to_owned(), group_digits);
            let key_box = row.key_box.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "{clear}        {:<11}  {:<7} {:>5}  {:>8}  {:>9}  {:<9}  {:>8}  {:>8}  {code}",
                row.name,
                row.role,
                slot,
                row.mk_seq,
                row.rotations,
                key_box,
                row.sealed,
                row.opened
            );
        }
        if !self.terminal {
            let _ = writeln!(out);
        }
        let _ = out.flush();
        self.drawn = rows.len() + 1;
    }
}

/// `123456789...` as `12345 67890 ...`, as people read codes aloud.
pub(crate) fn group_digits(code: &str) -> String {
    code.as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
