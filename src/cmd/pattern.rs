//! Name patterns of `kprof list`: a glob when the text has `*` or `?`, otherwise a substring.

use kprof_profiler::tracefs_names;

/// A `kprof list` pattern: a glob when it has `*` or `?`, otherwise a substring; both ignore
/// case, as perf list.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    glob: bool,
}

impl Pattern {
    /// Parses `text`.
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_ascii_lowercase(),
            glob: text.contains(['*', '?']),
        }
    }

    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        if self.glob {
            tracefs_names::glob_match(self.text.as_bytes(), name.as_bytes())
        } else {
            name.contains(&self.text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let glob = Pattern::new("sched:sched_*");
        assert!(glob.matches("sched:sched_switch"));
        assert!(!glob.matches("irq:irq_handler_entry"));
        assert!(Pattern::new("SWITCH").matches("sched:sched_switch"));
        assert!(Pattern::new("*:sys_enter_rea?").matches("syscalls:sys_enter_read"));
        assert!(!Pattern::new("*:sys_enter_rea?").matches("syscalls:sys_enter_readv"));
        assert!(Pattern::new("*").matches(""));
        assert!(!Pattern::new("a*b").matches("acbd"));
        assert!(Pattern::new("a*b*").matches("acbd"));
    }
}
