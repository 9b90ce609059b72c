//! Tracepoint names in `-e` lists checked against tracefs: globs (`syscalls:sys_enter_*`,
//! `block:*`) expanded to the tracepoints they match, and a name tracefs lacks answered with
//! the closest names it has.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tracing;

/// Expands the tracepoint globs of a comma-separated `-e` list and checks plain tracepoint
/// names against the mounted tracefs. Other events pass through unchanged (they are parsed
/// later). Without a readable tracefs nothing is checked here: opening the event says why.
pub fn expand_event_list(list: &str) -> Result<Vec<String>> {
    // A tracefs this user may not list is as good as none here.
    let root = tracing::tracefs_root().filter(|r| std::fs::read_dir(r.join("events")).is_ok());
    expand_event_list_at(list, root.as_deref())
}

fn expand_event_list_at(list: &str, root: Option<&Path>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Probes (`u:libc:malloc`, `usdt:...`) are not tracepoints: `crate::probe` reads them.
        if crate::probe::is_probe_spec(item) {
            out.push(item.to_owned());
            continue;
        }
        let Some((system, rest)) = item.split_once(':') else {
            out.push(item.to_owned());
            continue;
        };
        // `sys:name` or `sys:name:modifiers`.
        let (name, modifiers) = match rest.split_once(':') {
            Some((name, mods)) => (name, Some(mods)),
            None => (rest, None),
        };
        let suffix = modifiers.map(|m| format!(":{m}")).unwrap_or_default();
        let is_glob = |s: &str| s.contains(['*', '?']);
        let Some(root) = root else {
            if is_glob(system) || is_glob(name) {
                return Err(Error::EventUnavailable {
                    event: item.to_owned(),
                    reason: format!(
                        "a glob needs tracefs to list the tracepoints: {}",
                        crate::events::tracefs_unavailable(None)
                    ),
                });
            }
            out.push(item.to_owned());
            continue;
        };
        if is_glob(system) || is_glob(name) {
            let pattern = format!("{system}:{name}");
            let all = all_tracepoints(root)?;
            let matched: Vec<&String> = all
                .iter()
                .filter(|t| glob_match(pattern.as_bytes(), t.as_bytes()))
                .collect();
            if matched.is_empty() {
                return Err(Error::UnknownEvent {
                    name: pattern.clone(),
                    suggestions: closest(&pattern.replace(['*', '?'], ""), &all),
                });
            }
            out.extend(matched.into_iter().map(|t| format!("{t}{suffix}")));
            continue;
        }
        let dir = root.join("events").join(system).join(name);
        // Only names that could be tracepoints (not `r1a8`, not `cycles:u`) are checked.
        let plausible = !system.is_empty()
            && !name.is_empty()
            && [system, name].iter().all(|part| {
                part.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        // `cycles:u`, `r1a8:k`: an event with modifiers, not a tracepoint.
        let modifiers_only = modifiers.is_none()
            && name.len() <= 4
            && name.chars().all(|c| matches!(c, 'u' | 'k' | 'h' | 'p'));
        if plausible && !modifiers_only && !dir.join("id").exists() {
            let all = all_tracepoints(root)?;
            return Err(Error::UnknownEvent {
                name: format!("{system}:{name}"),
                suggestions: closest(&format!("{system}:{name}"), &all),
            });
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

/// Every `system:name` under `root/events`, sorted.
fn all_tracepoints(root: &Path) -> Result<Vec<String>> {
    Ok(crate::catalog::tracepoints(root, &|_| true)?
        .into_iter()
        .map(|t| format!("{}:{}", t.system, t.name))
        .collect())
}

/// Up to four names within a small edit distance of `wanted`, closest first.
fn closest(wanted: &str, names: &[String]) -> Vec<String> {
    let limit = (wanted.len() / 4).clamp(2, 3);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (strsim::levenshtein(wanted, n), n))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.into_iter().take(4).map(|(_, n)| n.clone()).collect()
}

/// `*` (any run) and `?` (one character) only. Hand-written: two wildcards do not need a
/// dependency such as globset.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
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

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (system, name) in [
            ("syscalls", "sys_enter_read"),
            ("syscalls", "sys_enter_write"),
            ("syscalls", "sys_exit_read"),
            ("block", "block_rq_issue"),
        ] {
            let event = dir.path().join("events").join(system).join(name);
            std::fs::create_dir_all(&event).unwrap();
            std::fs::write(event.join("id"), "1\n").unwrap();
        }
        dir
    }

    #[test]
    fn globs_expand_to_the_tracepoints_they_match() {
        let dir = tree();
        let root = Some(dir.path());
        assert_eq!(
            expand_event_list_at("syscalls:sys_enter_*,cpu-clock", root).unwrap(),
            [
                "syscalls:sys_enter_read",
                "syscalls:sys_enter_write",
                "cpu-clock"
            ]
        );
        assert_eq!(
            expand_event_list_at("block:*", root).unwrap(),
            ["block:block_rq_issue"]
        );
        assert_eq!(
            expand_event_list_at("syscalls:sys_exit_rea?", root).unwrap(),
            ["syscalls:sys_exit_read"]
        );
        assert!(matches!(
            expand_event_list_at("nosuch:*", root),
            Err(Error::UnknownEvent { .. })
        ));
    }

    #[test]
    fn a_missing_tracepoint_suggests_close_names() {
        let dir = tree();
        let Err(Error::UnknownEvent { name, suggestions }) =
            expand_event_list_at("syscalls:sys_enter_reed", Some(dir.path()))
        else {
            panic!("expected an unknown event");
        };
        assert_eq!(name, "syscalls:sys_enter_reed");
        assert_eq!(suggestions[0], "syscalls:sys_enter_read");
        // Present names, and names that are not tracepoints, pass.
        assert_eq!(
            expand_event_list_at("syscalls:sys_enter_read,cycles:u,r1a8", Some(dir.path()))
                .unwrap(),
            ["syscalls:sys_enter_read", "cycles:u", "r1a8"]
        );
    }

    #[test]
    fn glob_rules() {
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(!glob_match(b"a*d", b"abc"));
        assert!(glob_match(b"*_read", b"sys_enter_read"));
    }
}
