//! `kprof stat` output in Linux perf 6.1's three layouts (aligned text, `-x SEP` fields, `--json`
//! lines), with its derived metrics (CPUs utilized, GHz, IPC, miss ratios, rates).
//!
//! The rules are perf's (`tools/perf/util/stat-display.c` and `stat-shadow.c` of perf 6.1):
//! field order, widths, `<not counted>` / `<not supported>`, the running percentage, and which
//! metric goes with which counter. Numbers use the C locale (no thousands separators), as perf
//! prints them when `LC_NUMERIC` is unset.

use std::io::{self, Write};
use std::time::Duration;

use kprof_profiler::counting::{self, CounterResult, RunStats};
use kprof_profiler::events::{self, EventSpec};

/// Width of the count column (perf's `COUNTS_LEN`).
const COUNTS_LEN: usize = 18;
/// Width of the unit column (perf's default `unit_width`, `strlen("unit")`).
const UNIT_WIDTH: usize = 4;
/// Width of the event name column.
const EVNAME_LEN: usize = 32;
/// Width of the event name column on `<not counted>` / `<not supported>` lines (perf 6.1).
const EVNAME_LEN_BAD: usize = 25;
/// Width of the metric column (perf 6.1's `METRIC_LEN`).
const METRIC_LEN: usize = 35;
/// How many interval prints share one column header in the text layout (perf's `num_print_iv`).
const HEADER_EVERY: u32 = 26;

const NOT_COUNTED: &str = "<not counted>";
const NOT_SUPPORTED: &str = "<not supported>";

/// Which layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    /// perf stat's aligned text.
    Text,
    /// `-x SEP`: one line of separated fields per counter.
    Separated(String),
    /// `--json`: one JSON object per counter and line.
    Json,
}

/// One counter line: a single run's reading, or the mean over `-r` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The event name as printed.
    pub name: String,
    /// The event.
    pub spec: EventSpec,
    /// False for `<not supported>`.
    pub supported: bool,
    /// The (scaled) count; `None` for `<not counted>` (the counter never ran).
    pub value: Option<f64>,
    /// Time running, ns.
    pub running: u64,
    /// Time enabled, ns.
    pub enabled: u64,
    /// With `-r`: the standard deviation of the mean as a percentage of the mean.
    pub noise: Option<f64>,
}

impl Row {
    /// One run's counter.
    pub fn from_result(result: &CounterResult) -> Row {
        Row {
            name: result.counter.name.clone(),
            spec: result.counter.spec.clone(),
            supported: result.supported,
            value: if result.supported {
                result.reading.scaled()
            } else {
                None
            },
            running: result.reading.running,
            enabled: result.reading.enabled,
            noise: None,
        }
    }

    /// True for task-clock and cpu-clock, printed in msec.
    fn is_clock(&self) -> bool {
        counting::is_clock(&self.spec)
    }

    fn unit(&self) -> &'static str {
        if self.is_clock() { "msec" } else { "" }
    }

    /// The value in the printed unit (msec for clocks).
    fn display_value(&self) -> Option<f64> {
        let scale = if self.is_clock() { 1e-6 } else { 1.0 };
        self.value.map(|v| v * scale)
    }

    /// perf's running percentage: integer arithmetic on the times, 100 when not multiplexed.
    fn running_percent(&self) -> f64 {
        if self.running != self.enabled && self.enabled > 0 {
            (100u128 * u128::from(self.running) / u128::from(self.enabled)) as f64
        } else {
            100.0
        }
    }
}

/// The per-counter statistics of `-r` runs.
#[derive(Debug, Clone, Default)]
pub struct RowStats {
    value: RunStats,
    running: RunStats,
    enabled: RunStats,
    last: Option<Row>,
}

impl RowStats {
    /// Adds one run's counter.
    pub fn push(&mut self, row: Row) {
        self.value.push(row.value.unwrap_or(0.0));
        self.running.push(row.running as f64);
        self.enabled.push(row.enabled as f64);
        self.last = Some(row);
    }

    /// The mean row, with its noise when there were several runs.
    pub fn mean_row(&self) -> Option<Row> {
        let last = self.last.as_ref()?;
        let running = self.running.mean() as u64;
        let enabled = self.enabled.mean() as u64;
        Some(Row {
            value: (last.supported && running > 0 && enabled > 0).then(|| self.value.mean()),
            running,
            enabled,
            noise: (self.value.count() > 1).then(|| self.value.relative_percent()),
            ..last.clone()
        })
    }
}

/// A derived metric printed after a counter.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// None for this counter.
    None,
    /// One exists, but the counter it needs is missing: blank, with its unit in JSON.
    Missing(&'static str),
    /// A value printed `width.precision` followed by `suffix`, then the unit.
    Value {
        /// The value.
        value: f64,
        /// printf width.
        width: usize,
        /// printf precision.
        precision: usize,
        /// Printed right after the number (`%`, or a space as perf's `"%7.2f "`).
        suffix: &'static str,
        /// The unit, e.g. `CPUs utilized`, `K/sec`.
        unit: String,
    },
}

impl Metric {
    /// The value as perf prints it (`width.precision`, then the suffix) and its unit; `None`
    /// when there is no value to print.
    fn printed(&self) -> Option<(String, &str)> {
        match self {
            Metric::Value {
                value,
                width,
                precision,
                suffix,
                unit,
            } => Some((format!("{value:>width$.precision$}{suffix}"), unit)),
            Metric::None | Metric::Missing(_) => None,
        }
    }
}

/// True when `spec` counts the event `name` (any spelling or modifiers).
fn is_event(spec: &EventSpec, name: &str) -> bool {
    events::parse_event(name).is_ok_and(|e| e.kind == spec.kind)
}

/// The value of the first counted row matching `wanted`.
fn base_value(rows: &[Row], wanted: impl Fn(&Row) -> bool) -> Option<f64> {
    rows.iter()
        .find(|r| r.supported && r.value.is_some() && wanted(r))
        .and_then(|r| r.value)
}

/// The metric perf stat prints for `row`, given every row of the same print and the wall time
/// (ns) the clocks are compared to.
pub fn metric_for(row: &Row, rows: &[Row], walltime_ns: f64) -> Metric {
    let Some(value) = row.value else {
        return Metric::None;
    };
    let clock_ns = base_value(rows, Row::is_clock);
    let spec = &row.spec;
    let ratio = |value: f64, unit: &str, width, precision, suffix| Metric::Value {
        value,
        width,
        precision,
        suffix,
        unit: unit.to_owned(),
    };
    if is_event(spec, "instructions") {
        let cycles = base_value(rows, |r| is_event(&r.spec, "cycles"));
        return match cycles {
            Some(c) if c != 0.0 => ratio(value / c, "insn per cycle", 7, 2, " "),
            _ => Metric::Missing("insn per cycle"),
        };
    }
    if is_event(spec, "branch-misses") {
        let branches = base_value(rows, |r| is_event(&r.spec, "branches"));
        return match branches {
            Some(total) => ratio(percent(value, total), "of all branches", 7, 2, "%"),
            None => Metric::Missing("of all branches"),
        };
    }
    if is_event(spec, "cache-misses") {
        let references = base_value(rows, |r| is_event(&r.spec, "cache-references"));
        return match references {
            Some(total) => ratio(percent(value, total), "of all cache refs", 7, 2, "%"),
            None => Metric::Missing("of all cache refs"),
        };
    }
    if is_event(spec, "cycles") {
        return match clock_ns {
            Some(ns) if ns != 0.0 => ratio(value / ns, "GHz", 8, 3, ""),
            // perf 6.1 spells the missing one "Ghz".
            _ => Metric::Missing("Ghz"),
        };
    }
    if row.is_clock() {
        return if walltime_ns != 0.0 {
            ratio(value / walltime_ns, "CPUs utilized", 8, 3, "")
        } else {
            Metric::Missing("CPUs utilized")
        };
    }
    match clock_ns {
        Some(ns) => {
            let per_second = if ns != 0.0 { 1e9 * value / ns } else { 0.0 };
            let (scaled, prefix) = unit_prefix(per_second);
            ratio(scaled, &format!("{prefix}/sec"), 8, 3, "")
        }
        None => Metric::None,
    }
}

fn percent(part: f64, total: f64) -> f64 {
    if total != 0.0 {
        100.0 * part / total
    } else {
        0.0
    }
}

/// perf's `convert_unit_double`: K, M or G while above 1000.
fn unit_prefix(mut value: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for next in ["K", "M", "G"] {
        if value > 1000.0 {
            value /= 1000.0;
            prefix = next;
        }
    }
    (value, prefix)
}

/// Writes perf stat's output to `out` in one style.
#[derive(Debug)]
pub struct Printer {
    style: Style,
    cgroup: Option<String>,
    runs: u32,
    interval_prints: u32,
}

impl Printer {
    /// A printer for `runs` runs (`-r`), counting in `cgroup` when given.
    pub fn new(style: Style, cgroup: Option<String>, runs: u32) -> Self {
        Printer {
            style,
            cgroup,
            runs,
            interval_prints: 0,
        }
    }

    fn sep(&self) -> &str {
        match &self.style {
            Style::Separated(sep) => sep,
            _ => " ",
        }
    }

    /// The text layout's title: ` Performance counter stats for 'TARGET' (N runs):`.
    pub fn header(&self, out: &mut dyn Write, target: &str) -> io::Result<()> {
        if self.style != Style::Text {
            return Ok(());
        }
        write!(out, "\n Performance counter stats for {target}")?;
        if self.runs > 1 {
            write!(out, " ({} runs)", self.runs)?;
        }
        write!(out, ":\n\n")
    }

    /// One line per row. `prefix` starts every line (the interval time), `walltime_ns` is what
    /// clocks are divided by for "CPUs utilized".
    pub fn rows(
        &self,
        out: &mut dyn Write,
        prefix: &str,
        rows: &[Row],
        walltime_ns: f64,
    ) -> io::Result<()> {
        for row in rows {
            let metric = metric_for(row, rows, walltime_ns);
            let line = match &self.style {
                Style::Text => self.text_line(prefix, row, &metric),
                Style::Separated(sep) => self.separated_line(prefix, sep, row, &metric),
                Style::Json => self.json_line(prefix, row, &metric),
            };
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    fn bad_count(row: &Row) -> &'static str {
        if row.supported {
            NOT_COUNTED
        } else {
            NOT_SUPPORTED
        }
    }

    fn formatted_value(row: &Row, value: f64) -> String {
        if row.is_clock() {
            format!("{value:.2}")
        } else {
            format!("{value:.0}")
        }
    }

    fn text_line(&self, prefix: &str, row: &Row, metric: &Metric) -> String {
        let mut line = String::from(prefix);
        let cgroup = self
            .cgroup
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        match row.display_value() {
            Some(value) => {
                let text = Self::formatted_value(row, value);
                line.push_str(&format!(
                    "{text:>COUNTS_LEN$} {:<UNIT_WIDTH$} {:<EVNAME_LEN$}{cgroup}",
                    row.unit(),
                    row.name
                ));
                match metric.printed() {
                    Some((number, unit)) => {
                        let used = 3 + number.len();
                        let pad = METRIC_LEN.saturating_sub(used + 1);
                        line.push_str(&format!(" # {number} {unit:<pad$}"));
                    }
                    None => {
                        line.push_str(&" ".repeat(METRIC_LEN));
                    }
                }
            }
            None => {
                line.push_str(&format!(
                    "{:>COUNTS_LEN$} {:<UNIT_WIDTH$} {:<EVNAME_LEN_BAD$}{cgroup}{}",
                    Self::bad_count(row),
                    row.unit(),
                    row.name,
                    " ".repeat(METRIC_LEN)
                ));
            }
        }
        if let Some(noise) = row.noise.filter(|n| *n != 0.0) {
            line.push_str(&format!("  ( +-{noise:>6.2}% )"));
        }
        if row.running != row.enabled {
            line.push_str(&format!("  ({:.2}%)", row.running_percent()));
        }
        line
    }

    fn separated_line(&self, prefix: &str, sep: &str, row: &Row, metric: &Metric) -> String {
        let value = match row.display_value() {
            Some(v) => Self::formatted_value(row, v),
            None => Self::bad_count(row).to_owned(),
        };
        let mut fields = vec![value, row.unit().to_owned(), row.name.clone()];
        if let Some(cgroup) = &self.cgroup {
            fields.push(cgroup.clone());
        }
        if let Some(noise) = row.noise {
            fields.push(format!("{noise:.2}%"));
        }
        fields.push(row.running.to_string());
        fields.push(format!("{:.2}", row.running_percent()));
        match metric.printed() {
            Some((printed, unit)) => {
                // perf keeps the number's digits and dots only ("  12.34%" → "12.34").
                let number: String = printed
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                fields.push(number);
                fields.push(unit.trim_start().to_owned());
            }
            None => {
                fields.push(String::new());
                fields.push(String::new());
            }
        }
        let mut line = String::from(prefix);
        line.push_str(&fields.join(sep));
        line
    }

    fn json_line(&self, prefix: &str, row: &Row, metric: &Metric) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let value = match row.display_value() {
            Some(v) => format!("{v:.6}"),
            None => Self::bad_count(row).to_owned(),
        };
        let mut line = if prefix.is_empty() {
            String::from("{")
        } else {
            prefix.to_owned()
        };
        line.push_str(&format!(
            "\"counter-value\" : {}, \"unit\" : {}, \"event\" : {}, ",
            quote(&value),
            quote(row.unit()),
            quote(&row.name)
        ));
        if let Some(cgroup) = &self.cgroup {
            line.push_str(&format!("\"cgroup\" : {}, ", quote(cgroup)));
        }
        if let Some(noise) = row.noise {
            line.push_str(&format!("\"variance\" : {noise:.2}, "));
        }
        line.push_str(&format!(
            "\"event-runtime\" : {}, \"pcnt-running\" : {:.2}, ",
            row.running,
            row.running_percent()
        ));
        // perf 6.1 prints "(null)" as the unit of a counter without a metric; "" says the same.
        let (value, unit) = match metric {
            Metric::Value { value, unit, .. } => (*value, unit.as_str()),
            Metric::Missing(unit) => (0.0, *unit),
            Metric::None => (0.0, ""),
        };
        line.push_str(&format!(
            "\"metric-value\" : {value:.6}, \"metric-unit\" : {}}}",
            quote(unit)
        ));
        line
    }

    /// One `-I` interval: its rows, prefixed with the time, and the column header in the text
    /// layout every 26 prints. Clocks are compared to the interval length, as perf does.
    pub fn interval(
        &mut self,
        out: &mut dyn Write,
        elapsed: Duration,
        interval: Duration,
        rows: &[Row],
    ) -> io::Result<()> {
        let secs = elapsed.as_secs();
        let nanos = elapsed.subsec_nanos();
        let prefix = match &self.style {
            Style::Text => format!("{secs:6}.{nanos:09} "),
            Style::Separated(sep) => format!("{secs:6}.{nanos:09}{sep}"),
            Style::Json => format!("{{\"interval\" : {secs}.{nanos:09}, "),
        };
        if self.style == Style::Text && self.interval_prints % HEADER_EVERY == 0 {
            writeln!(
                out,
                "#{:>15} {:>COUNTS_LEN$} {:>UNIT_WIDTH$} events",
                "time", "counts", "unit"
            )?;
        }
        self.interval_prints = self.interval_prints.wrapping_add(1);
        self.rows(out, &prefix, rows, interval.as_nanos() as f64)
    }

    /// The text layout's closing lines: wall time (mean ± spread with `-r`), then the command's
    /// user and system time for a single run.
    pub fn footer(
        &self,
        out: &mut dyn Write,
        walltime: &RunStats,
        cpu_times: Option<(Duration, Duration)>,
    ) -> io::Result<()> {
        if self.style != Style::Text {
            return Ok(());
        }
        let sep = self.sep();
        debug_assert_eq!(sep, " ");
        let seconds = walltime.mean() / 1e9;
        writeln!(out)?;
        if self.runs <= 1 {
            write!(out, " {seconds:17.9} seconds time elapsed")?;
            if let Some((user, system)) = cpu_times {
                write!(out, "\n\n")?;
                writeln!(out, " {:17.9} seconds user", user.as_secs_f64())?;
                writeln!(out, " {:17.9} seconds sys", system.as_secs_f64())?;
            }
        } else {
            let spread = walltime.stddev_of_mean() / 1e9;
            // Two more digits than the spread's first significant one, as perf.
            let precision = precision_for(spread) + 2;
            write!(
                out,
                " {seconds:17.precision$} +- {spread:.precision$} seconds time elapsed"
            )?;
            let noise = walltime.relative_percent();
            if noise != 0.0 {
                write!(out, "  ( +-{noise:>6.2}% )")?;
            }
        }
        write!(out, "\n\n")
    }
}

/// perf's `get_precision`: 0 above 1, else the decimals down to the first significant digit.
fn precision_for(value: f64) -> usize {
    if value > 1.0 || value <= 0.0 {
        return 0;
    }
    let digits = (-value.log10()).ceil();
    if digits.is_finite() && digits > 0.0 {
        digits as usize
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprof_profiler::events::parse_event;

    fn row(name: &str, value: Option<f64>, run: u64, ena: u64) -> Row {
        Row {
            name: name.to_owned(),
            spec: parse_event(name).unwrap(),
            supported: true,
            value,
            running: run,
            enabled: ena,
            noise: None,
        }
    }

    fn unsupported(name: &str) -> Row {
        Row {
            supported: false,
            ..row(name, None, 0, 0)
        }
    }

    fn render(style: Style, rows: &[Row], wall: f64) -> Vec<String> {
        let mut out = Vec::new();
        Printer::new(style, None, 1)
            .rows(&mut out, "", rows, wall)
            .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Lines as perf 6.1 printed them for `perf stat -e task-clock,page-faults,instructions,cs --
    /// true` (values from that run).
    #[test]
    fn text_lines_match_perf_layout() {
        let rows = [
            row("task-clock", Some(848_500.0), 848_500, 848_500),
            row("page-faults", Some(49.0), 848_500, 848_500),
            unsupported("instructions"),
            row("cs", Some(0.0), 848_500, 848_500),
        ];
        let lines = render(Style::Text, &rows, 21_212_500.0);
        assert_eq!(
            lines[0],
            "              0.85 msec task-clock                       #    0.040 CPUs utilized          "
        );
        assert_eq!(
            lines[1],
            "                49      page-faults                      #   57.749 K/sec                  "
        );
        assert_eq!(
            lines[2],
            "   <not supported>      instructions                                                "
        );
        assert_eq!(
            lines[3],
            "                 0      cs                               #    0.000 /sec                   "
        );
        assert!(lines.iter().all(|l| l.len() == 91 || l.len() == 84));
    }

    #[test]
    fn separated_and_json_fields_in_perf_order() {
        let rows = [
            row("task-clock", Some(1_504_093.0), 1_504_093, 1_504_093),
            row("context-switches", Some(2.0), 1_504_093, 1_504_093),
            unsupported("cycles"),
        ];
        let csv = render(Style::Separated(",".into()), &rows, 167_121_444.0);
        assert_eq!(
            csv[0],
            "1.50,msec,task-clock,1504093,100.00,0.009,CPUs utilized"
        );
        assert_eq!(csv[1], "2,,context-switches,1504093,100.00,1.330,K/sec");
        assert_eq!(csv[2], "<not supported>,,cycles,0,100.00,,");
        let json = render(Style::Json, &rows, 167_121_444.0);
        assert_eq!(
            json[0],
            "{\"counter-value\" : \"1.504093\", \"unit\" : \"msec\", \"event\" : \"task-clock\", \
             \"event-runtime\" : 1504093, \"pcnt-running\" : 100.00, \"metric-value\" : 0.009000, \
             \"metric-unit\" : \"CPUs utilized\"}"
        );
        assert_eq!(
            json[2],
            "{\"counter-value\" : \"<not supported>\", \"unit\" : \"\", \"event\" : \"cycles\", \
             \"event-runtime\" : 0, \"pcnt-running\" : 100.00, \"metric-value\" : 0.000000, \
             \"metric-unit\" : \"\"}"
        );
        for line in &json {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn multiplexed_counters_show_their_running_share() {
        // Ran a third of the time it was enabled; the value is already scaled.
        let rows = [row("page-faults", Some(300.0), 100, 300)];
        let text = render(Style::Text, &rows, 1e9);
        assert!(text[0].ends_with("  (33.00%)"), "{}", text[0]);
        let csv = render(Style::Separated(";".into()), &rows, 1e9);
        assert_eq!(csv[0], "300;;page-faults;100;33.00;;");
    }

    #[test]
    fn derived_metrics_need_their_base_counters() {
        let rows = [
            row("task-clock", Some(2e9), 1, 1),
            row("cycles", Some(6e9), 1, 1),
            row("instructions", Some(12e9), 1, 1),
            row("branches", Some(1000.0), 1, 1),
            row("branch-misses", Some(25.0), 1, 1),
            row("cache-references", Some(200.0), 1, 1),
            row("cache-misses", Some(50.0), 1, 1),
        ];
        let unit = |i: usize| match metric_for(&rows[i], &rows, 1e9) {
            Metric::Value { value, unit, .. } => (unit, (value * 1000.0).round() / 1000.0),
            other => panic!("{other:?}"),
        };
        assert_eq!(unit(0), ("CPUs utilized".into(), 2.0));
        assert_eq!(unit(1), ("GHz".into(), 3.0));
        assert_eq!(unit(2), ("insn per cycle".into(), 2.0));
        assert_eq!(unit(3), ("/sec".into(), 500.0));
        assert_eq!(unit(4), ("of all branches".into(), 2.5));
        assert_eq!(unit(6), ("of all cache refs".into(), 25.0));
        let alone = [
            row("instructions", Some(5.0), 1, 1),
            row("branch-misses", Some(1.0), 1, 1),
        ];
        assert_eq!(
            metric_for(&alone[0], &alone, 1e9),
            Metric::Missing("insn per cycle")
        );
        assert_eq!(
            metric_for(&alone[1], &alone, 1e9),
            Metric::Missing("of all branches")
        );
        let no_clock = [row("page-faults", Some(5.0), 1, 1)];
        assert_eq!(metric_for(&no_clock[0], &no_clock, 1e9), Metric::None);
        assert_eq!(unit_prefix(2_500_000.0), (2.5, "M"));
        assert_eq!(unit_prefix(999.0), (999.0, ""));
    }

    #[test]
    fn repeated_runs_print_mean_and_noise() {
        let mut stats = RowStats::default();
        for v in [10.0, 20.0, 30.0] {
            stats.push(row("page-faults", Some(v), 90, 90));
        }
        let mean = stats.mean_row().unwrap();
        assert_eq!(mean.value, Some(20.0));
        // stddev 10, of the mean 10/√3, relative to 20.
        let expected = 100.0 * (10.0 / 3f64.sqrt()) / 20.0;
        assert!((mean.noise.unwrap() - expected).abs() < 1e-9);
        let text = render(Style::Text, std::slice::from_ref(&mean), 1e9);
        assert!(
            text[0].ends_with(&format!("  ( +-{expected:>6.2}% )")),
            "{}",
            text[0]
        );
        let csv = render(Style::Separated(",".into()), &[mean], 1e9);
        assert_eq!(
            csv[0],
            format!("20,,page-faults,{expected:.2}%,90,100.00,,")
        );
    }

    #[test]
    fn interval_prefixes_and_header() {
        let rows = [row("page-faults", Some(3.0), 5, 5)];
        let mut out = Vec::new();
        let mut p = Printer::new(Style::Text, None, 1);
        let every = Duration::from_millis(100);
        p.interval(&mut out, Duration::from_millis(100), every, &rows)
            .unwrap();
        p.interval(&mut out, Duration::from_millis(200), every, &rows)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#           time             counts unit events");
        assert!(lines[1].starts_with("     0.100000000                  3      page-faults"));
        assert!(lines[2].starts_with("     0.200000000 "));
        let mut out = Vec::new();
        Printer::new(Style::Separated(",".into()), None, 1)
            .interval(&mut out, Duration::from_millis(1500), every, &rows)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "     1.500000000,3,,page-faults,5,100.00,,\n"
        );
        let mut out = Vec::new();
        Printer::new(Style::Json, None, 1)
            .interval(&mut out, Duration::from_millis(1500), every, &rows)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["interval"], 1.5);
    }

    #[test]
    fn footer_like_perf() {
        let mut wall = RunStats::default();
        wall.push(21_400_593.0);
        let mut out = Vec::new();
        let cpu = (Duration::from_micros(1918), Duration::ZERO);
        Printer::new(Style::Text, None, 1)
            .footer(&mut out, &wall, Some(cpu))
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n       0.021400593 seconds time elapsed\n\n       0.001918000 seconds user\n       \
             0.000000000 seconds sys\n\n\n"
        );
        let mut runs = RunStats::default();
        for ns in [1e6, 2e6, 3e6] {
            runs.push(ns);
        }
        let mut out = Vec::new();
        Printer::new(Style::Text, None, 3)
            .footer(&mut out, &runs, None)
            .unwrap();
        // Mean 2 ms; stddev of the mean 1/√3 ms: precision ceil(-log10(0.000577)) + 2 = 6.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n          0.002000 +- 0.000577 seconds time elapsed  ( +- 28.87% )\n\n"
        );
        assert_eq!(precision_for(2.0), 0);
        assert_eq!(precision_for(0.05), 2);
    }
}
