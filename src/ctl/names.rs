//! Words for protocol values that rvsadm and rvstop both show, defined once.
//!
//! Server states are [`HealthState::name`](super::proto::HealthState::name)
//! (UP, DOWN, DRAIN: rvsd decides the state and sends it, clients only print
//! it). Scheduler flags are named here, as ipvsadm names them in `-L`, `-S`
//! and `-b`.

use super::proto::{SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_3};

/// Every scheduler flag word: its bit and the one scheduler it belongs to
/// (`None`: any scheduler), in the order listings print them.
pub const SCHED_FLAG_WORDS: &[(u32, &str, Option<&str>)] = &[
    (SCHED_FLAG_1, "flag-1", None),
    (SCHED_FLAG_2, "flag-2", None),
    (SCHED_FLAG_3, "flag-3", None),
    (SCHED_FLAG_1, "sh-fallback", Some("sh")),
    (SCHED_FLAG_2, "sh-port", Some("sh")),
    (SCHED_FLAG_1, "mh-fallback", Some("mh")),
    (SCHED_FLAG_2, "mh-port", Some("mh")),
];

/// The words of [`SCHED_FLAG_WORDS`] alone (for help texts and completions).
pub const SCHED_FLAG_WORD_LIST: [&str; SCHED_FLAG_WORDS.len()] = {
    let mut out = [""; SCHED_FLAG_WORDS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = SCHED_FLAG_WORDS[i].1;
        i += 1;
    }
    out
};

/// The set scheduler flags of a service as ipvsadm prints them: `sh` and `mh`
/// by their own words (their `flag-3` is not printed), any other scheduler
/// as `flag-N`.
pub fn sched_flag_names(sched: &str, flags: u32) -> Vec<&'static str> {
    let own = matches!(sched, "sh" | "mh");
    SCHED_FLAG_WORDS
        .iter()
        .filter(|(bit, _, only)| {
            flags & bit != 0
                && match only {
                    Some(s) => own && *s == sched,
                    None => !own,
                }
        })
        .map(|&(_, word, _)| word)
        .collect()
}

/// The bit of a scheduler flag word and the one scheduler it belongs to.
pub fn sched_flag_by_name(word: &str) -> Option<(u32, Option<&'static str>)> {
    SCHED_FLAG_WORDS
        .iter()
        .find(|(_, w, _)| *w == word)
        .map(|&(bit, _, only)| (bit, only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named_as_ipvsadm_lists_them() {
        assert_eq!(
            sched_flag_names("sh", SCHED_FLAG_1 | SCHED_FLAG_2 | SCHED_FLAG_3),
            ["sh-fallback", "sh-port"]
        );
        assert_eq!(sched_flag_names("mh", SCHED_FLAG_2), ["mh-port"]);
        assert_eq!(
            sched_flag_names("wlc", SCHED_FLAG_1 | SCHED_FLAG_3),
            ["flag-1", "flag-3"]
        );
        assert!(sched_flag_names("rr", 0).is_empty());
    }

    #[test]
    fn every_word_parses_back_to_its_bit() {
        for &(bit, word, only) in SCHED_FLAG_WORDS {
            assert_eq!(sched_flag_by_name(word), Some((bit, only)));
            let sched = only.unwrap_or("wlc");
            assert_eq!(sched_flag_names(sched, bit), [word]);
        }
        assert_eq!(sched_flag_by_name("f1"), None);
    }
}
