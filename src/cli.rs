//! The command line: every subcommand's flags, parsed by clap and validated at the edge.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kprof_profiler::CallGraph;

pub mod offcpu;
mod target;
pub mod trace;
pub use target::{ResolvedTarget, TargetArgs};

const TOP_EXAMPLES: &str = "\
EXAMPLES:
  kprof record -F 999 -g -- ./my-program arg      profile a command (writes kprof.data)
  kprof record -e cycles -a -g -- sleep 10        the whole system for 10 s
  kprof flame > flame.svg                          flame graph of kprof.data (or perf.data)
  kprof report --no-children --sort sym            top functions, like perf report
  kprof diff base.data new.data > diff.svg         what got slower
  kprof stat -- ./my-program                        count events, like perf stat
  perf record -g -o - -- ./prog | kprof flame -i - > out.svg";

/// kprof: a Linux sampling profiler. Record with perf_event_open, read any perf.data, draw flame graphs.
#[derive(Debug, Parser)]
#[command(name = "kprof", version, about, after_help = TOP_EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample a command, processes or the whole system into a perf.data file.
    Record(RecordArgs),
    /// Render an interactive SVG flame graph (or folded stacks) from a perf.data file.
    Flame(FlameArgs),
    /// Print the hottest functions, like `perf report --stdio`.
    Report(ReportArgs),
    /// Print every sample with its stack, like `perf script`.
    Script(ScriptArgs),
    /// Compare two profiles (or two sets of runs): differential flame graph, top changes, CI gate.
    Diff(DiffArgs),
    /// Convert a profile for pprof, speedscope or the Firefox Profiler.
    Export(ExportArgs),
    /// Count events while a command runs (or system-wide), like `perf stat`.
    Stat(StatArgs),
    /// List the events this machine can count, and tracepoints with their fields.
    List(ListArgs),
    /// Trace tracepoint events: one line each with its fields, or counts and histograms.
    Trace(trace::TraceArgs),
}

const RECORD_EXAMPLES: &str = "\
EXAMPLES:
  kprof record -- ./my-program                      default event (cycles, or cpu-clock without a PMU)
  kprof record -F 999 -g -- cargo bench             follow cargo into every benchmark process
  kprof record --call-graph dwarf -- ./release-bin   full stacks without frame pointers
  kprof record -e cpu-clock,page-faults -p 1234     attach to a running process until Ctrl-C
  kprof record -e sched:sched_switch -a -g -- sleep 5
  kprof record --off-cpu -g -- ./server              also where threads wait (flame --off-cpu, --wall)
  kprof record -a -C 0-1 -o sys.data -- sleep 3
  kprof record -o - -- ./prog | kprof flame -i - > out.svg";

/// `kprof record`.
#[derive(Debug, Args)]
#[command(after_help = RECORD_EXAMPLES)]
pub struct RecordArgs {
    /// Events to sample, comma-separated or repeated: cycles, instructions, cpu-clock, task-clock,
    /// page-faults, context-switches, sys:tracepoint, rNNNN; `:u`/`:k` restrict to user/kernel.
    #[arg(short = 'e', long = "event", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Sampling frequency in Hz (default 4000).
    #[arg(short = 'F', long = "freq", conflicts_with = "count", value_parser = clap::value_parser!(u64).range(1..))]
    pub freq: Option<u64>,
    /// Sample every PERIOD events instead of at a frequency.
    #[arg(short = 'c', long = "count", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Record call stacks by frame pointers (same as --call-graph fp).
    #[arg(short = 'g')]
    pub call_graph_fp: bool,
    /// Call stack mode: `fp`, or `dwarf[,SIZE]` to copy SIZE bytes of user stack (default 8192, max 65528).
    #[arg(long = "call-graph", value_name = "MODE", value_parser = CallGraph::parse)]
    pub call_graph: Option<CallGraph>,
    #[command(flatten)]
    /// Whom to profile.
    pub target: TargetArgs,
    /// Output file: an existing regular file is kept as FILE.old; a FIFO or character device is
    /// written through (pipe format); `-` is standard output (pipe format).
    #[arg(short = 'o', long = "output", default_value = "kprof.data")]
    pub output: PathBuf,
    /// Ring buffer size per CPU in pages (a power of two).
    #[arg(short = 'm', long = "mmap-pages", value_name = "PAGES")]
    pub mmap_pages: Option<usize>,
    /// Stop after this many seconds (without a command: default is until Ctrl-C).
    #[arg(long = "duration", value_name = "SECS")]
    pub duration: Option<f64>,
    /// Record each sample's cgroup, with the cgroups' names (for `report --sort cgroup`,
    /// `flame --per-cgroup`), as perf's --all-cgroups.
    #[arg(long = "all-cgroups")]
    pub all_cgroups: bool,
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[command(flatten)]
    /// Off-CPU recording.
    pub off_cpu: offcpu::OffCpuRecordArgs,
}

const STAT_EXAMPLES: &str = "\
EXAMPLES:
  kprof stat -- ./my-program                        perf stat's default counters
  kprof stat -e task-clock,page-faults,sched:sched_switch -- make -j2
  kprof stat -r 5 -- ./bench                        mean and spread (+- %) over 5 runs
  kprof stat -I 1000 -a                             whole system, every second, until Ctrl-C
  kprof stat -x, -e '{cs,page-faults}:u' -- ./prog  perf stat's CSV fields (value,unit,event,...)
  kprof stat --json -p 1234                         attach until Ctrl-C or exit, JSON lines
  kprof stat -G mygroup -e cpu-clock -- sleep 5     only the tasks of one cgroup

Counts go to standard error, as perf stat's do (-o FILE writes them to a file).";

/// `kprof stat`.
#[derive(Debug, Args)]
#[command(after_help = STAT_EXAMPLES)]
pub struct StatArgs {
    /// Events to count (repeatable): comma-separated names, sys:tracepoint, rNNNN, `{a,b}`
    /// groups counted together; `:u`/`:k` restrict to user/kernel. Default: perf stat's set.
    #[arg(short = 'e', long = "event", value_name = "EVENTS")]
    pub events: Vec<String>,
    #[command(flatten)]
    /// Whom to count.
    pub target: TargetArgs,
    /// Run the command N times; print the mean and its spread.
    #[arg(short = 'r', long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Print the counts of every interval of MS milliseconds (at least 10).
    #[arg(short = 'I', long = "interval-print", value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..), conflicts_with = "repeat")]
    pub interval: Option<u64>,
    /// Print one line of fields per counter separated by SEP, in perf stat's order.
    #[arg(
        short = 'x',
        long = "field-separator",
        value_name = "SEP",
        conflicts_with = "json"
    )]
    pub separator: Option<String>,
    /// Print one JSON object per counter and line, as perf stat --json.
    #[arg(short = 'j', long = "json")]
    pub json: bool,
    /// Write the counts to FILE instead of standard error.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print nothing but the counts and errors (no notes).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `kprof list`.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLES:\n  kprof list                      every event, tracepoints with their fields\n  kprof list sched                events whose name contains `sched`\n  kprof list 'syscalls:sys_enter_*'   a glob\n  kprof list u:libc 'mall*'       functions of libc a uprobe can go into\n  kprof list usdt:./app           USDT probes of ./app, with arguments and semaphores"
)]
pub struct ListArgs {
    /// Only events whose name contains PATTERN, or matches it as a glob (`*`, `?`). `u:PATH`
    /// lists the functions of PATH (a file or a library name), `usdt:PATH` its USDT probes.
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// With `u:PATH` or `usdt:PATH`: only names matching this (substring or glob).
    #[arg(value_name = "NAME_PATTERN")]
    pub name_pattern: Option<String>,
}

/// Where the profile comes from.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Input perf.data (file or pipe format, any perf version). `-` reads standard input.
    /// Default: kprof.data, or perf.data when there is no kprof.data.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Read a file owned by another user.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// How addresses become names.
#[derive(Debug, Args, Clone)]
pub struct SymbolArgs {
    /// Do not show inlined functions as frames of their own.
    #[arg(long = "no-inline")]
    pub no_inline: bool,
    /// Add file:line to frame names (from DWARF line tables).
    #[arg(long = "lines")]
    pub lines: bool,
    /// Show mangled symbol names.
    #[arg(long = "no-demangle")]
    pub no_demangle: bool,
    /// Kernel symbols from FILE, in /proc/kallsyms format: a copy of the recording machine's
    /// /proc/kallsyms names the kernel frames of a recording made on another kernel.
    #[arg(long = "kallsyms", value_name = "FILE")]
    pub kallsyms: Option<PathBuf>,
    /// Look for binaries under this directory (like perf's --symfs).
    #[arg(long = "symfs", value_name = "DIR")]
    pub symfs: Option<PathBuf>,
}

/// Which samples count, and how much.
#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only samples of these commands (comma-separated process or thread names).
    #[arg(long = "comm", value_delimiter = ',', value_name = "COMM")]
    pub comms: Vec<String>,
    /// Only samples of these processes.
    #[arg(long = "pid", value_delimiter = ',', value_name = "PID")]
    pub pids: Vec<u32>,
    /// Only samples of these threads.
    #[arg(long = "tid", value_delimiter = ',', value_name = "TID")]
    pub tids: Vec<u32>,
    /// Only samples of this event, when the file has several (default: the first).
    #[arg(long = "event", value_name = "NAME")]
    pub event: Option<String>,
    /// Weigh samples by their period (like perf report) or count them.
    #[arg(long = "count", value_enum, default_value_t = CountMode::Period)]
    pub count: CountMode,
}

/// How to weigh samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CountMode {
    /// Sum of sample periods (nanoseconds for cpu-clock), like perf report.
    Period,
    /// One per sample.
    Samples,
}

/// Flame graph look.
#[derive(Debug, Args, Clone)]
pub struct SvgArgs {
    /// Title at the top of the SVG.
    #[arg(long = "title")]
    pub title: Option<String>,
    /// Second line under the title.
    #[arg(long = "subtitle")]
    pub subtitle: Option<String>,
    /// Image width in pixels.
    #[arg(long = "width", default_value_t = 1200)]
    pub width: usize,
    /// Omit frames narrower than this many pixels (keeps huge profiles small).
    #[arg(long = "minwidth", default_value_t = 0.1)]
    pub min_width: f64,
    /// Icicle graph: roots at the top.
    #[arg(long = "reverse")]
    pub reverse: bool,
    /// Leaf functions at the root (merge by callee).
    #[arg(long = "inverted")]
    pub inverted: bool,
    /// Colour scheme: kind (kernel/user/JIT/inline apart), hot, mem, io, java, js, red, green, blue, aqua, yellow, purple, orange.
    #[arg(long = "colors", default_value = "kind")]
    pub colors: String,
}

const FLAME_EXAMPLES: &str = "\
EXAMPLES:
  kprof flame > flame.svg                          kprof.data (or perf.data) to SVG
  kprof flame -i perf.data --title 'My run' -o out.svg
  kprof flame --folded > out.folded                collapsed stacks for inferno/flamegraph.pl/speedscope
  kprof flame --per-thread --comm my-bench > t.svg
  kprof flame --off-cpu > off.svg                  blocked time of a `record --off-cpu` recording
  kprof flame --wall > wall.svg                    per thread: on-CPU plus off-CPU time
  kprof flame --lines --reverse > icicle.svg";

/// `kprof flame`.
#[derive(Debug, Args)]
#[command(after_help = FLAME_EXAMPLES)]
pub struct FlameArgs {
    #[command(flatten)]
    /// Input.
    pub input: InputArgs,
    #[command(flatten)]
    /// Symbols.
    pub symbols: SymbolArgs,
    #[command(flatten)]
    /// Filters.
    pub filter: FilterArgs,
    #[command(flatten)]
    /// Looks.
    pub svg: SvgArgs,
    #[command(flatten)]
    /// Off-CPU views.
    pub offcpu: offcpu::OffCpuFlameArgs,
    /// Write folded stacks (`a;b;c 42`) instead of SVG.
    #[arg(long = "folded")]
    pub folded: bool,
    /// Weigh tracepoint samples by this field (`--weight count` of syscalls:sys_enter_write:
    /// who writes the bytes) instead of one per event.
    #[arg(long = "weight", value_name = "FIELD", conflicts_with = "count")]
    pub weight: Option<String>,
    /// One root per thread (`comm-tid`) instead of per process name.
    #[arg(long = "per-thread", conflicts_with_all = ["per_process", "per_cgroup"])]
    pub per_thread: bool,
    /// One root per process (`comm-pid`).
    #[arg(long = "per-process", conflicts_with = "per_cgroup")]
    pub per_process: bool,
    /// One root per cgroup path (recorded with --all-cgroups or -G), the command name under it.
    #[arg(long = "per-cgroup")]
    pub per_cgroup: bool,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const REPORT_EXAMPLES: &str = "\
EXAMPLES:
  kprof report                                     like perf report --stdio
  kprof report --no-children --sort sym
  kprof report --sort comm,dso --percent-limit 1
  kprof report --header                            recording facts, then the table
  kprof report --format json > summary.json        for CI artifacts";

/// `kprof report`.
#[derive(Debug, Args)]
#[command(after_help = REPORT_EXAMPLES)]
pub struct ReportArgs {
    #[command(flatten)]
    /// Input.
    pub input: InputArgs,
    #[command(flatten)]
    /// Symbols.
    pub symbols: SymbolArgs,
    #[command(flatten)]
    /// Filters.
    pub filter: FilterArgs,
    #[command(flatten)]
    /// Off-CPU report.
    pub offcpu: offcpu::OffCpuReportArgs,
    /// Columns to group by: comm, pid, tid, dso, sym, cgroup (comma-separated).
    #[arg(
        short = 's',
        long = "sort",
        value_delimiter = ',',
        default_value = "comm,dso,sym"
    )]
    pub sort: Vec<SortKey>,
    /// Add a Children column (time in callees included); the default, like perf with -g.
    #[arg(long = "children", overrides_with = "no_children")]
    pub children: bool,
    /// Only self time.
    #[arg(long = "no-children")]
    pub no_children: bool,
    /// Hide rows below this percentage.
    #[arg(long = "percent-limit", default_value_t = 0.0)]
    pub percent_limit: f64,
    /// Print the recording facts (perf version, host, arch, events, features, lost samples) first.
    #[arg(long = "header")]
    pub header: bool,
    /// Print only the recording facts.
    #[arg(long = "header-only")]
    pub header_only: bool,
    /// Output format.
    #[arg(long = "format", value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Print at most this many rows (0: all).
    #[arg(long = "top", default_value_t = 0)]
    pub top: usize,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A report column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Command (thread name).
    Comm,
    /// Process id.
    Pid,
    /// Thread id.
    Tid,
    /// Shared object.
    Dso,
    /// Symbol.
    Sym,
    /// Cgroup path (recorded with --all-cgroups or -G).
    Cgroup,
}

/// `kprof report --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned text like perf report --stdio.
    Text,
    /// Stable machine-readable JSON.
    Json,
}

/// `kprof script`.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLES:\n  kprof script | inferno-collapse-perf | inferno-flamegraph > out.svg\n  kprof script -i perf.data --comm myprog"
)]
pub struct ScriptArgs {
    #[command(flatten)]
    /// Input.
    pub input: InputArgs,
    #[command(flatten)]
    /// Symbols.
    pub symbols: SymbolArgs,
    #[command(flatten)]
    /// Filters.
    pub filter: FilterArgs,
}

const DIFF_EXAMPLES: &str = "\
COMPARISON:
  A benchmark that does a fixed amount of work takes longer when a function gets slower: compare
  time (the sum of periods per run, averaged over runs, in % of BASE's mean). One that runs for
  a fixed duration gives the slower function's extra time to it and takes it from all others:
  compare shares of each run's total. By default (--compare auto) kprof looks at how much the
  median function changed: by about as much as the run's total (shares) or not at all (time).
  The output says which comparison it used. Functions that grew are listed first; inlined
  frames count toward the function they were inlined into; a root frame (the process or thread
  name) is never a regression.

EXAMPLES:
  kprof diff base.data new.data > diff.svg          red grew, blue shrank
  kprof diff --top 5 base.data new.data             functions that grew most first
  kprof diff --fail-on-regression 5 base.data new.data    exit 1 if a function grew > 5 points
  kprof diff --compare time --top 5 base.data new.data    runs did a fixed amount of work
  kprof diff --base b1.data --base b2.data --new n1.data --new n2.data --format markdown";

/// `kprof diff`.
#[derive(Debug, Args)]
#[command(after_help = DIFF_EXAMPLES)]
pub struct DiffArgs {
    /// The baseline profile and the new profile.
    #[arg(num_args = 0..=2, value_name = "BASE NEW")]
    pub files: Vec<PathBuf>,
    /// Extra baseline runs (repeatable): changes within the run-to-run spread are not regressions.
    #[arg(long = "base", value_name = "FILE")]
    pub base: Vec<PathBuf>,
    /// Extra new runs (repeatable).
    #[arg(long = "new", value_name = "FILE")]
    pub new: Vec<PathBuf>,
    #[command(flatten)]
    /// Symbols.
    pub symbols: SymbolArgs,
    #[command(flatten)]
    /// Filters.
    pub filter: FilterArgs,
    #[command(flatten)]
    /// Looks.
    pub svg: SvgArgs,
    #[command(flatten)]
    /// Off-CPU profiles.
    pub offcpu: offcpu::OffCpuProfileArgs,
    /// Write two-column folded stacks (`stack base new`) instead of SVG.
    #[arg(long = "folded")]
    pub folded: bool,
    /// Print the N functions whose self value changed most, those that grew first.
    #[arg(long = "top", value_name = "N")]
    pub top: Option<usize>,
    /// Exit 1 when any function's total (inclusive) value grew by more than PCT percentage
    /// points, its run-to-run spread and its sampling noise (3 standard errors; never for a
    /// root frame).
    #[arg(long = "fail-on-regression", value_name = "PCT")]
    pub fail_on_regression: Option<f64>,
    /// What to compare: `time` (runs did a fixed amount of work), `share` (runs lasted a
    /// fixed time), or `auto` to choose from the data (see COMPARISON below).
    #[arg(long = "compare", value_enum, default_value_t = CompareArg::Auto)]
    pub compare: CompareArg,
    /// Output format (svg, text, markdown).
    #[arg(long = "format", value_enum)]
    pub format: Option<DiffFormat>,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `kprof diff --compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareArg {
    /// Choose from the data.
    Auto,
    /// Time per run, in % of BASE's mean total.
    Time,
    /// Share of each run's total.
    Share,
}

/// `kprof diff --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Differential flame graph.
    Svg,
    /// Plain text table.
    Text,
    /// Markdown table for a pull-request comment.
    Markdown,
}

/// `kprof export`.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLES:\n  kprof export --format pprof -o cpu.pb.gz && go tool pprof -top cpu.pb.gz\n  kprof export --format speedscope -i perf.data -o profile.speedscope.json\n  kprof export --format firefox -o profile.json"
)]
pub struct ExportArgs {
    #[command(flatten)]
    /// Input.
    pub input: InputArgs,
    #[command(flatten)]
    /// Symbols.
    pub symbols: SymbolArgs,
    #[command(flatten)]
    /// Filters.
    pub filter: FilterArgs,
    #[command(flatten)]
    /// Off-CPU profiles.
    pub offcpu: offcpu::OffCpuProfileArgs,
    /// Output format.
    #[arg(long = "format", value_enum)]
    pub format: ExportFormatArg,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `kprof export --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// Gzipped pprof protobuf (go tool pprof, Pyroscope, Parca).
    Pprof,
    /// speedscope JSON.
    Speedscope,
    /// Firefox Profiler processed format.
    Firefox,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::ffi::OsString;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    // See: issue #12 point 4
    #[test]
    fn call_graph_is_parsed_once_by_the_profiler() {
        let parse = |mode: &str| {
            Cli::try_parse_from(["kprof", "record", "--call-graph", mode, "--", "true"]).map(
                |cli| match cli.command {
                    Command::Record(args) => args.call_graph,
                    _ => None,
                },
            )
        };
        assert_eq!(parse("fp").unwrap(), Some(CallGraph::Fp));
        assert_eq!(
            parse("dwarf").unwrap(),
            Some(CallGraph::Dwarf { stack_size: 8192 })
        );
        assert_eq!(
            parse("dwarf,16384").unwrap(),
            Some(CallGraph::Dwarf { stack_size: 16384 })
        );
        // Sizes are rounded up to a multiple of 8, as the profiler records them.
        assert_eq!(
            parse("dwarf,13").unwrap(),
            Some(CallGraph::Dwarf { stack_size: 16 })
        );
        assert_eq!(
            parse("dwarf,65521").unwrap(),
            Some(CallGraph::Dwarf { stack_size: 65528 })
        );
        for bad in ["dwarf,65529", "dwarf,0", "dwarf,x", "lbr", "fp,8"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("--call-graph"), "{bad}: {err}");
        }
    }

    #[test]
    fn record_takes_the_command_after_dashes() {
        let cli =
            Cli::try_parse_from(["kprof", "record", "-F", "999", "-g", "--", "ls", "-l"]).unwrap();
        let Command::Record(args) = cli.command else {
            panic!("not record")
        };
        assert_eq!(args.freq, Some(999));
        assert!(args.call_graph_fp);
        assert_eq!(
            args.target.command,
            vec![OsString::from("ls"), OsString::from("-l")]
        );
    }

    #[test]
    fn stat_keeps_commas_inside_groups_and_takes_the_command() {
        let cli = Cli::try_parse_from([
            "kprof",
            "stat",
            "-x,",
            "-e",
            "{cs,page-faults}:u",
            "-r",
            "3",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("not stat")
        };
        assert_eq!(args.events, ["{cs,page-faults}:u"]);
        assert_eq!(args.separator.as_deref(), Some(","));
        assert_eq!(args.repeat, 3);
        assert_eq!(args.target.command.len(), 2);
        let cli = Cli::try_parse_from(["kprof", "stat", "-x;", "ls", "-l", "-x"]).unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("not stat")
        };
        assert_eq!(args.separator.as_deref(), Some(";"));
        assert_eq!(args.target.command, ["ls", "-l", "-x"]);
        assert!(Cli::try_parse_from(["kprof", "stat", "-I", "5", "true"]).is_err());
        assert!(Cli::try_parse_from(["kprof", "stat", "-x,", "--json", "true"]).is_err());
        assert!(Cli::try_parse_from(["kprof", "stat", "-r", "0", "true"]).is_err());
    }
}
