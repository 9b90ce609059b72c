//! Where kprof keeps inflated copies of compressed debug sections between runs (the
//! symbolizer's section cache): `$XDG_CACHE_HOME/kprof/sections`, else
//! `~/.cache/kprof/sections`; `KPROF_SECTION_CACHE=off` turns it off, any other value names
//! the directory.

use std::path::PathBuf;

/// The environment variable that moves or turns off the section cache.
pub const SECTION_CACHE_ENV: &str = "KPROF_SECTION_CACHE";

/// The section cache directory for this run; `None` when turned off or no home is known.
pub fn section_cache_dir() -> Option<PathBuf> {
    dir_from(
        std::env::var_os(SECTION_CACHE_ENV),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn dir_from(
    explicit: Option<std::ffi::OsString>,
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    match explicit {
        Some(value) if value == "off" => None,
        Some(value) if !value.is_empty() => Some(PathBuf::from(value)),
        _ => {
            // The XDG base directory rule: a relative XDG_CACHE_HOME is ignored.
            let base = xdg_cache_home
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| {
                    home.map(PathBuf::from)
                        .filter(|p| p.is_absolute())
                        .map(|h| h.join(".cache"))
                })?;
            Some(base.join("kprof").join("sections"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_xdg_rule_and_can_be_turned_off() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        assert_eq!(
            dir_from(None, s("/x/cache"), s("/home/u")),
            Some(PathBuf::from("/x/cache/kprof/sections"))
        );
        assert_eq!(
            dir_from(None, s("relative"), s("/home/u")),
            Some(PathBuf::from("/home/u/.cache/kprof/sections"))
        );
        assert_eq!(dir_from(None, None, None), None);
        assert_eq!(dir_from(s("off"), s("/x"), s("/home/u")), None);
        assert_eq!(
            dir_from(s("/tmp/c"), None, None),
            Some(PathBuf::from("/tmp/c"))
        );
    }
}
