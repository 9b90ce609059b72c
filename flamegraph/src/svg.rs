//! SVG flame graphs: [`SvgOptions`], [`Palette`] and [`render_svg`], rendered by inferno.
//!
//! # How frame kinds are coloured
//! With [`Palette::Kind`], kernel, JIT and inlined frames get inferno's annotation suffixes
//! (`_[k]`, `_[j]`, `_[i]`); inferno hides these suffixes from the visible name and the tooltip
//! (its `deannotate`), so the SVG shows the plain name. Instead of relying on a palette's
//! name heuristics (inferno's java palette, for one, paints any capitalised user function green
//! like JIT code), every distinct annotated name is given a colour up front in an inferno
//! [`PaletteMap`]: user frames yellow, kernel orange, JIT green, inlined aqua, unknown red, each
//! shaded by a hash of the name. The java, js and perl palettes also receive the annotations,
//! since they read them; the other palettes do not, so there a name is one frame whatever its
//! kind. Frame names can never end like an annotation by themselves ([`crate::sanitize`]).
//!
//! # Stack order
//! Stacks reach inferno in *frame* order (`;` before any name character), not bytewise, so
//! `P;foo`, `P;foo;bar` and `P;foo.cold` draw one `foo` box instead of two; inferno's
//! flame-chart input path is used for that because it keeps the given order (see
//! `run_inferno`). Colours are deterministic: equal input gives byte-identical SVGs.

use std::cmp::Ordering;
use std::fmt;
use std::io::{BufWriter, Write};
use std::str::FromStr;

use inferno::flamegraph::color::{BasicPalette, MultiPalette, PaletteMap, SearchColor};
use inferno::flamegraph::{self as inferno_fg, Direction};

use crate::error::{Error, Result};
use crate::folder::{Folder, FrameKind, RankedStacks};
use crate::sanitize;

/// The image width used when [`SvgOptions::width`] is `None` (fluid width) for pixel maths.
pub const DEFAULT_WIDTH: usize = 1200;
/// The smallest image width accepted; smaller values are raised to it.
pub const MIN_IMAGE_WIDTH: usize = 100;

/// Colour scheme of the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Palette {
    /// Red/orange/yellow, the classic CPU flame graph.
    #[default]
    Hot,
    /// Green/blue for memory profiles.
    Mem,
    /// Blue/purple for I/O profiles.
    Io,
    /// Red shades.
    Red,
    /// Green shades.
    Green,
    /// Blue shades.
    Blue,
    /// Aqua shades.
    Aqua,
    /// Yellow shades.
    Yellow,
    /// Purple shades.
    Purple,
    /// Orange shades.
    Orange,
    /// inferno's java palette (reads kind annotations, else guesses from names).
    Java,
    /// inferno's js palette (reads kernel and JIT annotations).
    Js,
    /// inferno's perl palette (reads kernel annotations).
    Perl,
    /// inferno's python palette.
    Python,
    /// inferno's rust palette.
    Rust,
    /// inferno's wakeup palette.
    Wakeup,
    /// By [`FrameKind`]: user yellow, kernel orange, JIT green, inlined aqua, unknown red,
    /// off-CPU blue.
    Kind,
}

impl Palette {
    /// Every palette name [`FromStr`] accepts, in [`Display`](fmt::Display) spelling.
    pub const NAMES: &'static [&'static str] = &[
        "hot", "mem", "io", "red", "green", "blue", "aqua", "yellow", "purple", "orange", "java",
        "js", "perl", "python", "rust", "wakeup", "kind",
    ];

    const ALL: [Palette; 17] = [
        Palette::Hot,
        Palette::Mem,
        Palette::Io,
        Palette::Red,
        Palette::Green,
        Palette::Blue,
        Palette::Aqua,
        Palette::Yellow,
        Palette::Purple,
        Palette::Orange,
        Palette::Java,
        Palette::Js,
        Palette::Perl,
        Palette::Python,
        Palette::Rust,
        Palette::Wakeup,
        Palette::Kind,
    ];

    /// Whether frames get kind annotations for this palette (see the module docs).
    fn reads_kind_annotations(self) -> bool {
        matches!(
            self,
            Palette::Kind | Palette::Java | Palette::Js | Palette::Perl
        )
    }

    fn to_inferno(self) -> inferno_fg::Palette {
        use inferno_fg::Palette as P;
        match self {
            Palette::Hot => P::Basic(BasicPalette::Hot),
            Palette::Mem => P::Basic(BasicPalette::Mem),
            Palette::Io => P::Basic(BasicPalette::Io),
            Palette::Red => P::Basic(BasicPalette::Red),
            Palette::Green => P::Basic(BasicPalette::Green),
            Palette::Blue => P::Basic(BasicPalette::Blue),
            Palette::Aqua => P::Basic(BasicPalette::Aqua),
            Palette::Yellow => P::Basic(BasicPalette::Yellow),
            Palette::Purple => P::Basic(BasicPalette::Purple),
            Palette::Orange => P::Basic(BasicPalette::Orange),
            Palette::Java | Palette::Kind => P::Multi(MultiPalette::Java),
            Palette::Js => P::Multi(MultiPalette::Js),
            Palette::Perl => P::Multi(MultiPalette::Perl),
            Palette::Python => P::Multi(MultiPalette::Python),
            Palette::Rust => P::Multi(MultiPalette::Rust),
            Palette::Wakeup => P::Multi(MultiPalette::Wakeup),
        }
    }
}

impl fmt::Display for Palette {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = Self::ALL.iter().position(|p| p == self).unwrap_or(0);
        f.write_str(Self::NAMES.get(index).copied().unwrap_or("hot"))
    }
}

impl FromStr for Palette {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::NAMES
            .iter()
            .position(|name| *name == s)
            .and_then(|index| Self::ALL.get(index).copied())
            .ok_or_else(|| Error::InvalidOption {
                option: "colors",
                value: s.to_owned(),
                reason: "unknown palette",
            })
    }
}

/// Options for [`render_svg`] (and [`crate::diff::Diff::render_svg`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SvgOptions {
    /// Title at the top. Default `"Flame Graph"`; an empty profile gets `" (no samples)"` appended.
    pub title: String,
    /// Second line under the title. Default `None`.
    pub subtitle: Option<String>,
    /// Image width in pixels, at least [`MIN_IMAGE_WIDTH`]. Default `Some(1200)`; `None` makes
    /// the drawing fluid (100% of the viewer, 1200 px before its script runs).
    pub width: Option<usize>,
    /// Frames narrower than this many pixels are left out. Default `0.1`.
    pub min_width: f64,
    /// Icicle graph: root at the top, stacks grow down. Default `false`.
    pub reverse: bool,
    /// Reverse each stack (leaf becomes root): callers of hot leaves. Default `false`.
    pub inverted: bool,
    /// Colour scheme. Default [`Palette::Hot`].
    pub colors: Palette,
    /// What a sample is called in tooltips. Default `"samples"`.
    pub count_name: String,
    /// What a frame is called in the details line. Default `"Function:"`.
    pub name_type: String,
    /// Text put in an XML comment at the top of the file. Default `None`.
    pub notes: Option<String>,
    /// Colour of search matches, `#rrggbb`. Default `"#e600e6"`.
    pub search_color: String,
    /// Colour by a hash of the name that keeps similar names similar (inferno `--hash`).
    /// Default `false`, which still colours deterministically (inferno `--deterministic`), so
    /// equal inputs give byte-identical SVGs.
    pub hash: bool,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions {
            title: "Flame Graph".to_owned(),
            subtitle: None,
            width: Some(DEFAULT_WIDTH),
            min_width: 0.1,
            reverse: false,
            inverted: false,
            colors: Palette::Hot,
            count_name: "samples".to_owned(),
            name_type: "Function:".to_owned(),
            notes: None,
            search_color: "#e600e6".to_owned(),
            hash: false,
        }
    }
}

/// Text made safe for an XML comment: no `--` and no trailing `-`.
fn comment_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut previous = ' ';
    for c in sanitize::text(raw).chars() {
        if c == '-' && previous == '-' {
            out.push(' ');
        }
        out.push(c);
        previous = c;
    }
    if out.ends_with('-') {
        out.push(' ');
    }
    out
}

/// Text made safe for inferno's CDATA JavaScript string (it escapes quotes and backslashes).
fn script_text(raw: &str) -> String {
    sanitize::text(raw).replace("]]>", "]] >")
}

/// Minimal XML text escaping for the hand-written empty-profile SVG.
fn xml_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in sanitize::text(raw).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The inferno options for `opts`; `palette_map` pre-assigns colours (kind palette).
pub(crate) fn inferno_options<'a>(
    opts: &SvgOptions,
    palette_map: Option<&'a mut PaletteMap>,
) -> Result<inferno_fg::Options<'a>> {
    let search_color =
        SearchColor::from_str(&opts.search_color).map_err(|_| Error::InvalidOption {
            option: "search_color",
            value: opts.search_color.clone(),
            reason: "expected #rrggbb",
        })?;
    let width = opts.width.map(|w| w.max(MIN_IMAGE_WIDTH));
    let width_px = width.unwrap_or(DEFAULT_WIDTH) as f64;
    let min_width_px = if opts.min_width.is_finite() && opts.min_width > 0.0 {
        opts.min_width
    } else {
        0.0
    };
    let mut options = inferno_fg::Options::default();
    options.colors = opts.colors.to_inferno();
    options.hash = opts.hash;
    options.deterministic = !opts.hash;
    options.palette_map = palette_map;
    options.direction = if opts.reverse {
        Direction::Inverted
    } else {
        Direction::Straight
    };
    options.search_color = search_color;
    options.title = sanitize::text(&opts.title).into_owned();
    options.subtitle = opts
        .subtitle
        .as_deref()
        .map(|s| sanitize::text(s).into_owned());
    options.image_width = width;
    // inferno's min_width is a percentage of the image width.
    options.min_width = min_width_px / width_px * 100.0;
    options.count_name = sanitize::text(&opts.count_name).into_owned();
    options.name_type = script_text(&opts.name_type);
    options.notes = opts.notes.as_deref().map(comment_text).unwrap_or_default();
    Ok(options)
}

/// Orders folded stacks frame by frame: `;` sorts before every character a sanitised name can
/// hold, so all stacks through one frame are adjacent and inferno merges them into one box.
/// Bytewise order would put `P;foo.cold` between `P;foo` and `P;foo;bar` and split `foo`.
pub(crate) fn frame_order(a: &str, b: &str) -> Ordering {
    let key = |byte: u8| if byte == b';' { 0 } else { byte };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// Renders `lines` (`stack count [count]`, already in [`frame_order`]) with inferno.
pub(crate) fn run_inferno(
    options: &mut inferno_fg::Options<'_>,
    mut lines: Vec<String>,
    w: impl Write,
) -> Result<()> {
    // inferno's flame-chart path is the one that merges adjacent stacks in the order given
    // (its other paths demand bytewise order). It reverses the lines first, so hand them over
    // reversed; it changes nothing else.
    lines.reverse();
    options.flame_chart = true;
    let mut w = BufWriter::new(w);
    inferno_fg::from_lines(options, lines.iter().map(String::as_str), &mut w)?;
    w.flush()?;
    Ok(())
}

/// FNV-1a of `name` as a shade in `[0, 1]`.
fn name_shade(name: &str) -> f32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 40) as f32 / (1u64 << 24) as f32
}

/// The colour of a frame of `kind` named `name` under [`Palette::Kind`].
pub fn kind_color(kind: FrameKind, name: &str) -> [u8; 3] {
    let v = name_shade(name);
    let shade = |base: u8, span: f32| base.saturating_add((span * v) as u8);
    match kind {
        FrameKind::User => [shade(195, 55.0), shade(195, 55.0), shade(40, 30.0)],
        FrameKind::Kernel => [shade(215, 40.0), shade(110, 50.0), 0],
        FrameKind::Jit => [shade(40, 50.0), shade(180, 60.0), shade(40, 50.0)],
        FrameKind::Inlined => [shade(40, 50.0), shade(170, 60.0), shade(200, 55.0)],
        FrameKind::Unknown => [shade(200, 55.0), shade(40, 60.0), shade(40, 60.0)],
        // Blues, as off-CPU flame graphs are drawn.
        FrameKind::OffCpu => [shade(40, 60.0), shade(90, 80.0), shade(200, 55.0)],
    }
}

/// The palette map giving each frame of `stacks` that inferno may draw (`ranks`) its kind
/// colour, by its annotated text. Frames cut from the lines are never drawn, so never looked
/// up: most frames of a big profile are.
fn kind_palette_map(stacks: &RankedStacks, ranks: &[u32]) -> PaletteMap {
    let mut map = PaletteMap::default();
    for (text, kind) in ranks.iter().filter_map(|&rank| stacks.frame(rank)) {
        let [r, g, b] = kind_color(kind, text);
        map.insert(text, inferno_fg::color::Color { r, g, b });
    }
    map
}

/// Writes the small, valid SVG used for a profile without samples.
fn write_empty_svg(opts: &SvgOptions, w: impl Write) -> Result<()> {
    let mut w = BufWriter::new(w);
    let width = opts.width.unwrap_or(DEFAULT_WIDTH).max(MIN_IMAGE_WIDTH);
    let title = xml_escape(&format!("{} (no samples)", opts.title));
    write!(
        w,
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"{width}\" height=\"60\" viewBox=\"0 0 {width} 60\" \
         xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"100%\" height=\"60\" fill=\"#eeeeee\"/>\
         <text id=\"title\" x=\"50%\" y=\"34\" text-anchor=\"middle\" \
         style=\"font-family:monospace;font-size:17px\">{title}</text></svg>\n"
    )?;
    w.flush()?;
    Ok(())
}

/// Renders `folder` as an interactive SVG flame graph.
///
/// Names are sanitised as in folded output ([`crate::sanitize`]), so the SVG is valid XML
/// whatever the names hold, and its only `<script>` element is inferno's. An empty profile
/// renders a small valid SVG titled `"<title> (no samples)"`. Frames narrower than
/// [`SvgOptions::min_width`] pixels are dropped, which bounds the size of huge profiles.
/// Colours are chosen deterministically (see [`SvgOptions::hash`]), so equal inputs and options
/// give byte-identical SVGs.
pub fn render_svg(folder: &Folder, opts: &SvgOptions, w: impl Write) -> Result<()> {
    if folder.is_empty() {
        return write_empty_svg(opts, w);
    }
    // The kind palette reads the annotations that kinds put on frame texts.
    let annotate = opts.colors.reads_kind_annotations();
    let stacks = folder.frame_ordered_stacks(annotate, opts.inverted);
    let min_width = inferno_options(opts, None)?.min_width;
    let visible = crate::visible::visible_lines(&stacks, min_width);
    let mut palette_map =
        (opts.colors == Palette::Kind).then(|| kind_palette_map(&stacks, &visible.ranks));
    let mut options = inferno_options(opts, palette_map.as_mut())?;
    options.factor = visible.divisor as f64;
    run_inferno(&mut options, visible.lines, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_xml::{self, Frame};

    fn render(folder: &Folder, opts: &SvgOptions) -> String {
        let mut out = Vec::new();
        render_svg(folder, opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const HOSTILE: &[&str] = &[
        "</script><script>alert(1)</script>",
        "]]>",
        "-->",
        "<!--",
        "&amp;",
        "\"'",
        "std::vector<int>",
        "esc\u{1b}[31mred",
        "nul\0byte",
        "a;b",
        "line\nbreak",
        "<![CDATA[x]]>",
        "x 12",
        "k_[k]",
    ];

    #[test]
    fn hostile_names_read_back_from_a_strict_parse() {
        let mut folder = Folder::new();
        for (i, name) in HOSTILE.iter().enumerate() {
            folder.add(&["main", name], 10 + i as u64);
        }
        let big = "N".repeat(1 << 20);
        folder.add(&["main", &big], 50);
        let svg = render(&folder, &SvgOptions::default());
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.script_elements, 1, "exactly one <script>");
        for name in HOSTILE.iter().chain(std::iter::once(&big.as_str())) {
            let expected = sanitize::frame_name(name);
            assert!(
                doc.frames.iter().any(|f| f.name == expected),
                "frame {expected:?} not found"
            );
        }
        let main = doc.frames.iter().find(|f| f.name == "main").unwrap();
        assert_eq!(main.samples, folder.total());
        test_xml::xmllint(&svg);
    }

    #[test]
    fn hostile_names_survive_every_palette_and_layout() {
        let mut folder = Folder::new();
        for (i, name) in HOSTILE.iter().enumerate() {
            let kind = [
                FrameKind::User,
                FrameKind::Kernel,
                FrameKind::Jit,
                FrameKind::Inlined,
            ][i % 4];
            folder.add_with_kinds(&[("main", FrameKind::User), (name, kind)], 10);
        }
        for colors in [Palette::Hot, Palette::Kind, Palette::Java, Palette::Js] {
            for (inverted, reverse) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let opts = SvgOptions {
                    colors,
                    inverted,
                    reverse,
                    ..SvgOptions::default()
                };
                let doc = test_xml::parse(&render(&folder, &opts));
                assert_eq!(doc.script_elements, 1);
                for name in HOSTILE {
                    let expected = sanitize::frame_name(name);
                    assert!(
                        doc.frames.iter().any(|f| f.name == expected),
                        "{colors} inverted={inverted} reverse={reverse}: {expected:?} missing"
                    );
                }
            }
        }
    }

    #[test]
    fn hostile_options_stay_valid_xml() {
        let mut folder = Folder::new();
        folder.add(&["a"], 1);
        let opts = SvgOptions {
            title: "</title><script>x</script>\u{1b}".into(),
            subtitle: Some("]]> -->".into()),
            notes: Some("-- --> - <!-- \0".into()),
            name_type: "]]></script>'\"\\\n".into(),
            count_name: "<b>&".into(),
            ..SvgOptions::default()
        };
        let svg = render(&folder, &opts);
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.script_elements, 1);
        assert_eq!(doc.title, "</title><script>x</script>\\x1b");
        test_xml::xmllint(&svg);
    }

    #[test]
    fn empty_profile_renders_a_valid_no_samples_svg() {
        let svg = render(&Folder::new(), &SvgOptions::default());
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.title, "Flame Graph (no samples)");
        assert!(doc.frames.is_empty());
        test_xml::xmllint(&svg);
    }

    #[test]
    fn many_distinct_stacks_render_valid_and_pruned() {
        let mut folder = Folder::new();
        for i in 0..200_000u32 {
            let a = format!("mod{}", i % 97);
            let b = format!("fn{}", i % 1009);
            let c = format!("leaf{i}");
            folder.add(&["main", &a, &b, &c], 1 + u64::from(i % 3));
        }
        assert_eq!(folder.len(), 200_000);
        let svg = render(&folder, &SvgOptions::default());
        let doc = test_xml::parse(&svg);
        assert_eq!(doc.script_elements, 1);
        // Pruning by min_width keeps at most (width / min_width) frames per level.
        assert!(doc.frames.len() < 50_000, "{} frames", doc.frames.len());
        assert!(doc.frames.iter().any(|f| f.name == "main"));
    }

    #[test]
    fn kind_palette_colours_kinds_apart_and_hides_suffixes() {
        let mut folder = Folder::new();
        folder.add_with_kinds(
            &[
                ("main", FrameKind::User),
                ("Worker", FrameKind::User),
                ("sys_write", FrameKind::Kernel),
            ],
            3,
        );
        folder.add_with_kinds(
            &[
                ("main", FrameKind::User),
                ("Lfoo", FrameKind::Jit),
                ("inl", FrameKind::Inlined),
            ],
            2,
        );
        let opts = SvgOptions {
            colors: Palette::Kind,
            ..SvgOptions::default()
        };
        let svg = render(&folder, &opts);
        let doc = test_xml::parse(&svg);
        let find = |name: &str| -> &Frame {
            doc.frames
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(
            find("sys_write").fill,
            kind_color(FrameKind::Kernel, "sys_write_[k]")
        );
        assert_eq!(find("Lfoo").fill, kind_color(FrameKind::Jit, "Lfoo_[j]"));
        assert_eq!(find("inl").fill, kind_color(FrameKind::Inlined, "inl_[i]"));
        assert_eq!(find("Worker").fill, kind_color(FrameKind::User, "Worker"));
        // Kernel frames are orange (no blue), JIT green-dominant, inlined blue-ish.
        let [r, g, b] = find("sys_write").fill;
        assert!(r > g && b == 0);
        let [r, g, b] = find("Lfoo").fill;
        assert!(g > r && g > b);
        let [r, _, b] = find("inl").fill;
        assert!(b > r);
        // inferno hides the annotation suffixes from tooltips and labels.
        assert!(doc.frames.iter().all(|f| !f.name.ends_with(']')));
        assert!(doc.texts.iter().all(|t| !t.contains("_[")));
    }

    #[test]
    fn inverted_and_reverse_change_the_layout() {
        let mut folder = Folder::new();
        folder.add(&["root", "mid", "leaf"], 5);
        let doc = test_xml::parse(&render(
            &folder,
            &SvgOptions {
                inverted: true,
                ..SvgOptions::default()
            },
        ));
        let leaf = doc.frames.iter().find(|f| f.name == "leaf").unwrap();
        let root = doc.frames.iter().find(|f| f.name == "root").unwrap();
        // Leaf-first: the leaf is the bottom (largest y) frame.
        assert!(leaf.y > root.y);
        let doc = test_xml::parse(&render(
            &folder,
            &SvgOptions {
                reverse: true,
                ..SvgOptions::default()
            },
        ));
        let leaf = doc.frames.iter().find(|f| f.name == "leaf").unwrap();
        let root = doc.frames.iter().find(|f| f.name == "root").unwrap();
        // Icicle: root on top.
        assert!(leaf.y > root.y);
        let doc = test_xml::parse(&render(&folder, &SvgOptions::default()));
        let leaf = doc.frames.iter().find(|f| f.name == "leaf").unwrap();
        let root = doc.frames.iter().find(|f| f.name == "root").unwrap();
        assert!(leaf.y < root.y);
    }

    #[test]
    fn a_frame_is_one_box_even_when_a_sibling_extends_its_name() {
        let mut folder = Folder::new();
        folder.add(&["P", "foo"], 1);
        folder.add(&["P", "foo.cold", "z"], 2);
        folder.add(&["P", "foo", "bar"], 4);
        folder.add(&["P", "foo(int)"], 8);
        let doc = test_xml::parse(&render(&folder, &SvgOptions::default()));
        let foos: Vec<&Frame> = doc.frames.iter().filter(|f| f.name == "foo").collect();
        assert_eq!(foos.len(), 1, "{foos:?}");
        assert_eq!(foos[0].samples, 5);
        assert!(frame_order("P;foo;bar", "P;foo.cold") == Ordering::Less);
    }

    #[test]
    fn rendering_is_deterministic() {
        let mut folder = Folder::new();
        for i in 0..50 {
            folder.add(&["main", &format!("f{i}")], i + 1);
        }
        let opts = SvgOptions::default();
        assert_eq!(render(&folder, &opts), render(&folder, &opts));
    }

    #[test]
    fn huge_totals_are_scaled_not_overflowed() {
        let mut folder = Folder::new();
        folder.add(&["a"], u64::MAX);
        folder.add(&["b"], u64::MAX / 2);
        let doc = test_xml::parse(&render(&folder, &SvgOptions::default()));
        assert!(doc.frames.iter().any(|f| f.name == "a"));
    }

    #[test]
    fn bad_options_are_errors_and_palettes_parse() {
        let mut folder = Folder::new();
        folder.add(&["a"], 1);
        let opts = SvgOptions {
            search_color: "pink".into(),
            ..SvgOptions::default()
        };
        assert!(matches!(
            render_svg(&folder, &opts, Vec::new()),
            Err(Error::InvalidOption {
                option: "search_color",
                ..
            })
        ));
        for name in Palette::NAMES {
            let palette: Palette = name.parse().unwrap();
            assert_eq!(palette.to_string(), *name);
            let opts = SvgOptions {
                colors: palette,
                width: Some(3),
                ..SvgOptions::default()
            };
            test_xml::parse(&render(&folder, &opts));
        }
        assert!("nope".parse::<Palette>().is_err());
    }

    #[test]
    fn comment_and_script_text_are_safe() {
        assert!(!comment_text("a--b---").contains("--"));
        assert!(!comment_text("x-").ends_with('-'));
        assert!(!script_text("]]>").contains("]]>"));
    }

    const KINDS: [FrameKind; 4] = [
        FrameKind::User,
        FrameKind::Kernel,
        FrameKind::Inlined,
        FrameKind::Unknown,
    ];

    /// Many narrow stacks under a few wide ones, of several kinds.
    fn narrow_and_wide_stacks() -> Folder {
        let mut next = crate::folder::test_random(0x2545_f491_4f6c_dd1d);
        let mut folder = Folder::new();
        for _ in 0..4000 {
            let depth = 1 + (next() % 9) as usize;
            let names: Vec<String> = (0..depth)
                .map(|d| format!("f{}", next() % (2 + 3 * d as u64)))
                .collect();
            let stack: Vec<(&str, FrameKind)> = names
                .iter()
                .map(|n| (n.as_str(), KINDS[(next() % 4) as usize]))
                .collect();
            let weight = if next() % 50 == 0 {
                5000
            } else {
                1 + next() % 3
            };
            folder.add_with_kinds(&stack, weight);
        }
        folder
    }

    fn svg_of_lines(
        lines: Vec<String>,
        divisor: u64,
        opts: &SvgOptions,
        palette_map: Option<&mut PaletteMap>,
    ) -> Vec<u8> {
        let mut options = inferno_options(opts, palette_map).unwrap();
        options.factor = divisor as f64;
        let mut out = Vec::new();
        run_inferno(&mut options, lines, &mut out).unwrap();
        out
    }

    // See: issue #13 point 1 (byte-identical output)
    #[test]
    fn cut_lines_draw_the_same_svg_as_whole_ones() {
        let folder = narrow_and_wide_stacks();
        let mut cut_some = false;
        for min_width in [0.0, 0.1, 1.0, 7.5] {
            for (colors, leaf_first) in [
                (Palette::Hot, false),
                (Palette::Java, true),
                (Palette::Kind, false),
            ] {
                let opts = SvgOptions {
                    min_width,
                    inverted: leaf_first,
                    colors,
                    ..SvgOptions::default()
                };
                let stacks =
                    folder.frame_ordered_stacks(colors.reads_kind_annotations(), leaf_first);
                let whole = crate::visible::visible_lines(&stacks, 0.0);
                let pct = inferno_options(&opts, None).unwrap().min_width;
                let cut = crate::visible::visible_lines(&stacks, pct);
                assert_eq!(whole.divisor, cut.divisor);
                let length = |lines: &[String]| lines.iter().map(String::len).sum::<usize>();
                cut_some |= length(&cut.lines) < length(&whole.lines) / 2;
                // The whole lines with every frame's colour, the cut ones with the colours
                // of what they keep.
                let kind = colors == Palette::Kind;
                let mut every_colour = kind.then(|| kind_palette_map(&stacks, &whole.ranks));
                let mut kept_colours = kind.then(|| kind_palette_map(&stacks, &cut.ranks));
                assert_eq!(
                    svg_of_lines(whole.lines, whole.divisor, &opts, every_colour.as_mut()),
                    svg_of_lines(cut.lines, cut.divisor, &opts, kept_colours.as_mut()),
                    "min_width={min_width} colors={colors:?} leaf_first={leaf_first}"
                );
            }
        }
        assert!(cut_some, "no width cut the lines by half");
    }
}
