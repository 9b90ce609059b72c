//! Test support: a strict parse of rendered SVGs into what the tests check.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One frame (`<g>` with `<title>` and `<rect>`) of a flame graph.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The name from the tooltip title (suffix ` (N samples, P%)` removed).
    pub(crate) name: String,
    /// The sample count from the tooltip title.
    pub(crate) samples: u64,
    /// The rect's fill colour.
    pub(crate) fill: [u8; 3],
    /// The rect's `y`.
    pub(crate) y: f64,
}

/// What a parse of an SVG found.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    pub(crate) script_elements: usize,
    pub(crate) title: String,
    pub(crate) frames: Vec<Frame>,
    /// The text of every `<text>` element.
    pub(crate) texts: Vec<String>,
}

/// Whether `c` is an XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

fn parse_fill(value: &str) -> [u8; 3] {
    let inner = value
        .strip_prefix("rgb(")
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or_else(|| panic!("fill {value:?}"));
    let parts: Vec<u8> = inner
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();
    [parts[0], parts[1], parts[2]]
}

/// Splits `name (1,234 samples, 5.00%)` (or the differential form) into name and count.
fn parse_title(title: &str) -> (String, u64) {
    let open = title
        .rfind(" (")
        .unwrap_or_else(|| panic!("title {title:?}"));
    let count = title[open + 2..]
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "");
    (title[..open].to_owned(), count.parse().unwrap())
}

/// Parses `svg` strictly (well-formed, matched end tags, no `--` in comments, only XML chars)
/// and collects the frames. Panics on any violation.
pub(crate) fn parse(svg: &str) -> Doc {
    if let Some(bad) = svg.chars().find(|c| !is_xml_char(*c)) {
        panic!("character {bad:?} is not allowed in XML");
    }
    let mut reader = Reader::from_str(svg);
    reader.config_mut().check_comments = true;
    reader.config_mut().check_end_names = true;
    let mut doc = Doc::default();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut frame_title: Option<String> = None;
    let mut roots = 0;
    let mut pending: Option<(String, u64)> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("XML error at {}: {e}", reader.buffer_position()));
        match event {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if stack.is_empty() {
                    roots += 1;
                }
                if name == "script" {
                    doc.script_elements += 1;
                }
                for attr in e.attributes() {
                    attr.unwrap()
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap();
                }
                stack.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "script" {
                    doc.script_elements += 1;
                }
                let mut fill = None;
                let mut y = 0.0;
                for attr in e.attributes() {
                    let attr = attr.unwrap();
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap();
                    match attr.key.as_ref() {
                        b"fill" => fill = Some(value.into_owned()),
                        b"y" => y = value.parse().unwrap_or(0.0),
                        _ => {}
                    }
                }
                if name == "rect" {
                    if let Some((frame_name, samples)) = pending.take() {
                        let fill = parse_fill(&fill.unwrap());
                        doc.frames.push(Frame {
                            name: frame_name,
                            samples,
                            fill,
                            y,
                        });
                    }
                }
            }
            Event::Text(e) => text.push_str(&e.decode().unwrap()),
            Event::GeneralRef(r) => {
                let entity = format!("&{};", r.decode().unwrap());
                text.push_str(&quick_xml::escape::unescape(&entity).unwrap());
            }
            Event::CData(e) => text.push_str(&e.decode().unwrap()),
            Event::End(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()));
                match name.as_str() {
                    "title" => frame_title = Some(std::mem::take(&mut text)),
                    "text" => {
                        if doc.title.is_empty() && doc.texts.is_empty() {
                            doc.title = text.clone();
                        }
                        doc.texts.push(std::mem::take(&mut text));
                    }
                    _ => {}
                }
                if name == "title" {
                    if let Some(title) = frame_title.take() {
                        if !title.starts_with("all (") {
                            pending = Some(parse_title(&title));
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
    doc
}

/// Runs `xmllint --noout` on `svg` when xmllint is installed (skips with a message otherwise).
pub(crate) fn xmllint(svg: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("xmllint")
        .args(["--noout", "--nonet", "--huge", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("xmllint not installed; skipping the xmllint check");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(svg.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
