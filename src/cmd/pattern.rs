//! Name patterns of `kprof list`: a glob when the text has `*` or `?`, otherwise a substring.

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
            glob_match(self.text.as_bytes(), name.as_bytes())
        } else {
            name.contains(&self.text)
        }
    }
}

/// `*` and `?` only (no classes): a crate such as globset would be a whole dependency for
/// matching a few thousand event names once.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
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
