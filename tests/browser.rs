//! Issue #2, point 4: the flame graph works in a real browser (headless Chromium): search
//! highlights matches, a click zooms, and hostile or C++ names show as text, never as markup.
//!
//! The workload is a tiny JIT (`examples/workloads/jit.c`) whose `/tmp/perf-PID.map` names its
//! code `<script>alert(1)</script>` and `std::vector<int>::push_back`. The test injects a
//! driver script into kprof's SVG, lets Chromium run it (`--dump-dom`), and reads back what it
//! saw.

use crate::common::*;

/// Runs before anything else in the SVG: counts any alert() a name might smuggle in.
const TRAP: &str = r#"<script type="text/ecmascript"><![CDATA[
window.__alerts = 0; window.alert = function() { window.__alerts += 1; };
]]></script>"#;

/// Drives inferno's own functions the way a user's search and click do.
const DRIVER: &str = r#"<script type="text/ecmascript"><![CDATA[
window.addEventListener("load", function() { setTimeout(function() {
  var out = { names: [] };
  var groups = document.getElementById("frames").children;
  for (var i = 0; i < groups.length; i++) out.names.push(groups[i].querySelector("title").textContent);
  search("push_back");
  out.highlighted = 0;
  for (var i = 0; i < groups.length; i++) {
    if (groups[i].querySelector("rect").getAttribute("fill") == searchcolor) out.highlighted++;
  }
  out.matched = document.getElementById("matched").textContent;
  reset_search();
  var target = null;
  for (var i = 0; i < groups.length; i++) {
    if (groups[i].querySelector("title").textContent.indexOf("std::vector<int>") == 0) target = groups[i];
  }
  out.widthBefore = target ? target.querySelector("rect").getAttribute("width") : null;
  if (target) target.querySelector("rect").dispatchEvent(new MouseEvent("click", { bubbles: true }));
  out.widthAfter = target ? target.querySelector("rect").getAttribute("width") : null;
  out.unzoomHidden = document.getElementById("unzoom").classList.contains("hide");
  out.alerts = window.__alerts;
  var t = document.createElementNS("http://www.w3.org/2000/svg", "text");
  t.setAttribute("id", "kprof-test-result");
  t.textContent = JSON.stringify(out);
  document.documentElement.appendChild(t);
}, 200); });
]]></script>"#;

#[test]
fn svg_search_zoom_and_hostile_names_in_chromium() {
    if !cfg!(target_arch = "x86_64") || !perf_can_record() || !tool("chromium") {
        return;
    }
    let jit = c_workload("jit", &["-O2"]);
    let Recording {
        dir, file: data, ..
    } = Recording::by_perf(
        "browser",
        "jit.data",
        &["-F", "999", "-g"],
        &[jit.to_str().unwrap(), "0.5"],
    );
    let svg_path = dir.join("jit.svg");
    kprof_ok(&[
        "flame",
        "-i",
        data.to_str().unwrap(),
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // Names are escaped text: the only <script> elements are inferno's own.
    assert_eq!(
        svg.matches("<script").count(),
        1,
        "exactly one script element"
    );
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "hostile name present, escaped"
    );
    assert!(svg.contains("std::vector&lt;int&gt;::push_back"));

    // Trap first, driver last.
    let open_end = svg
        .find("<svg")
        .and_then(|i| svg[i..].find('>').map(|j| i + j + 1))
        .unwrap();
    let close = svg.rfind("</svg>").unwrap();
    let driven = format!(
        "{}{TRAP}{}{DRIVER}{}",
        &svg[..open_end],
        &svg[open_end..close],
        &svg[close..]
    );
    let result = chromium_result(&driven, &dir);

    let names: Vec<&str> = result["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("<script>alert(1)</script> (")),
        "hostile name reads back as text: {names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("std::vector<int>::push_back ("))
    );
    assert_eq!(result["alerts"], 0, "no script from a name ran");
    assert!(
        result["highlighted"].as_u64().unwrap() >= 1,
        "search highlighted a frame"
    );
    assert!(
        result["matched"].as_str().unwrap().starts_with("Matched: "),
        "{result}"
    );
    let before: f64 = result["widthBefore"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let after: f64 = result["widthAfter"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(
        before < 90.0 && after > 99.0,
        "click zoomed the frame to full width: {before} -> {after}"
    );
    assert_eq!(
        result["unzoomHidden"], false,
        "the reset-zoom button appeared"
    );
}
