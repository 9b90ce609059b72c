//! kprof-flamegraph: weighted name stacks in, folded stacks, SVG flame graphs, perf-report-like
//! tables and differential profiles out.
//!
//! # What it owns
//! - [`Folder`]: sums weighted stacks (root first) of frame names, optionally tagged with a
//!   [`FrameKind`]; mergeable in any order (rayon `fold`/`reduce`) with byte-identical output;
//!   writes inferno's folded format ([`Folder::write_folded`]).
//! - [`render_svg`]: interactive SVG flame graphs through inferno, with [`SvgOptions`] and a
//!   [`Palette`] that can colour kernel, user, JIT and inlined frames apart.
//! - [`report`]: a `perf report --stdio`-like table (children/self shares per key).
//! - [`diff`]: base-vs-new differential profiles: ranked changes, noise-aware regressions,
//!   differential folded output and SVG, markdown and text summaries.
//! - [`sanitize`]: how hostile frame names (`;`, newlines, NUL, ESC, markup) are made safe.
//!
//! # What the caller provides
//! Frame names (already symbolised and demangled), weights (sample counts or periods) and,
//! optionally, frame kinds. This crate knows nothing of perf, ELF or processes.
//!
//! # What it won't do
//! Symbolise, unwind or read perf.data; draw flame *charts* (time-ordered); keep names that
//! contain control characters byte-exact in its outputs (they are escaped, see [`sanitize`]).
//!
//! # Example
//! ```
//! use kprof_flamegraph::{Folder, FrameKind, SvgOptions, render_svg};
//!
//! let mut folder = Folder::new();
//! folder.add(&["main", "parse", "read"], 3);
//! folder.add_with_kinds(&[("main", FrameKind::User), ("sys_read", FrameKind::Kernel)], 2);
//!
//! let mut folded = Vec::new();
//! folder.write_folded(&mut folded)?;
//! assert_eq!(String::from_utf8(folded).unwrap(), "main;parse;read 3\nmain;sys_read 2\n");
//!
//! let mut svg = Vec::new();
//! render_svg(&folder, &SvgOptions::default(), &mut svg)?;
//! assert!(String::from_utf8(svg).unwrap().contains("parse"));
//! # Ok::<(), kprof_flamegraph::Error>(())
//! ```
#![deny(missing_docs)]

pub mod diff;
mod error;
mod folder;
mod rank_sort;
pub mod report;
pub mod sanitize;
mod svg;
#[cfg(test)]
mod test_xml;
mod visible;

pub use error::{Error, Result};
pub use folder::{Folder, FrameKind, NameId};
pub use svg::{DEFAULT_WIDTH, MIN_IMAGE_WIDTH, Palette, SvgOptions, kind_color, render_svg};
