//! Every system call kprof makes that needs `unsafe`: perf_event_open, its ioctls, the ring mapping
//! (with Acquire/Release access to `data_head`/`data_tail`), poll, signals, fork/exec, kill and waitpid.
//!
//! Everything here is a thin, checked wrapper; policy lives in `session`, `target` and `events`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use perf_event_open_sys::bindings::{self, perf_event_attr, perf_event_mmap_page};

use crate::ring::RingMemory;

// The ring's control page layout is part of the kernel ABI (include/uapi/linux/perf_event.h).
const _: () = assert!(size_of::<perf_event_mmap_page>() == 1088);
// perf_event_attr is a sequence of naturally aligned integers with explicit reserved fields and no
// implicit padding: its size is the sum of its fields (checked here for the prefix we pass).
const _: () = assert!(size_of::<perf_event_attr>() >= ATTR_SIZE);

/// The `perf_event_attr` size kprof passes to the kernel and stores in perf.data
/// (`PERF_ATTR_SIZE_VER7`, the newest version perf 6.1 reads).
pub const ATTR_SIZE: usize = bindings::PERF_ATTR_SIZE_VER7 as usize;

/// The first `ATTR_SIZE` bytes of `kernel`, in native byte order: what the perf.data attrs
/// section stores.
pub(crate) fn encode_attr(kernel: &perf_event_attr) -> Vec<u8> {
    // SAFETY: `kernel` is a live, initialised `perf_event_attr`, at least ATTR_SIZE bytes long (asserted
    // above). Its fields are plain integers laid out without implicit padding (the UAPI struct in
    // include/uapi/linux/perf_event.h uses explicit `__reserved` fields), and `Default` zero-fills it,
    // so every byte read is initialised. The slice does not outlive `kernel`.
    let bytes =
        unsafe { std::slice::from_raw_parts(std::ptr::from_ref(kernel).cast::<u8>(), ATTR_SIZE) };
    bytes.to_vec()
}

/// An open perf event file descriptor.
#[derive(Debug)]
pub struct PerfEventFd {
    file: File,
}

impl PerfEventFd {
    /// Reads the counter (`read(2)` of the event fd) into `buf`; returns the bytes read.
    pub fn read_values(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }
}

impl AsFd for PerfEventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// `perf_event_open(2)` with `PERF_FLAG_FD_CLOEXEC`, for `pid` (-1: all) on `cpu` (-1: any).
pub(crate) fn perf_event_open(
    attr: &perf_event_attr,
    pid: i32,
    cpu: i32,
) -> io::Result<PerfEventFd> {
    perf_event_open_in(attr, EventScope::Task(pid), cpu, None)
}

/// Whom an event watches.
#[derive(Debug, Clone, Copy)]
pub enum EventScope<'a> {
    /// A task id (0: the caller, -1: every task on the CPU).
    Task(i32),
    /// Every task in the cgroup whose directory this is (`PERF_FLAG_PID_CGROUP`; needs a CPU).
    Cgroup(BorrowedFd<'a>),
}

/// `perf_event_open(2)` with `PERF_FLAG_FD_CLOEXEC` for `scope` on `cpu` (-1: any), as a member
/// of `group`'s group when given (the kernel schedules a group's events together).
pub(crate) fn perf_event_open_in(
    attr: &perf_event_attr,
    scope: EventScope<'_>,
    cpu: i32,
    group: Option<&PerfEventFd>,
) -> io::Result<PerfEventFd> {
    let mut kernel = *attr;
    let mut flags = libc::c_ulong::from(bindings::PERF_FLAG_FD_CLOEXEC);
    let pid = match scope {
        EventScope::Task(pid) => pid,
        EventScope::Cgroup(dir) => {
            flags |= libc::c_ulong::from(bindings::PERF_FLAG_PID_CGROUP);
            dir.as_raw_fd()
        }
    };
    let group_fd = group.map_or(-1, |g| g.file.as_raw_fd());
    // SAFETY: `kernel` is a fully initialised perf_event_attr whose `size` field (ATTR_SIZE) is no
    // larger than the struct, so the kernel reads only memory we own; it may write back `size`
    // (E2BIG), which is why it is passed as *mut. `group_fd` is -1 or a live perf event fd
    // borrowed for the call, and with PERF_FLAG_PID_CGROUP `pid` is a live cgroup directory fd
    // borrowed for the call, as perf_event_open(2) requires. For a probe, `config1` holds the
    // address of a NUL-terminated string owned by the caller's `EventAttr`, which outlives this
    // call (`to_kernel` borrows it); the kernel copies the string during the call
    // (perf_uprobe_init/perf_kprobe_init use strndup_user).
    let fd =
        unsafe { perf_event_open_sys::perf_event_open(&raw mut kernel, pid, cpu, group_fd, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returned a new file descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(PerfEventFd {
        file: File::from(owned),
    })
}

/// User and system CPU time of every reaped child so far (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_cpu_times() -> io::Result<(Duration, Duration)> {
    // SAFETY: a zeroed rusage is valid storage (plain integers) for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call.
    check(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) })?;
    let time = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    Ok((time(usage.ru_utime), time(usage.ru_stime)))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `PERF_EVENT_IOC_ENABLE`.
pub fn enable(fd: &PerfEventFd) -> io::Result<()> {
    // SAFETY: the fd is a live perf event fd (owned by `fd`); ENABLE takes an integer argument.
    check(unsafe { perf_event_open_sys::ioctls::ENABLE(fd.file.as_raw_fd(), 0) }).map(drop)
}

/// `PERF_EVENT_IOC_DISABLE`.
pub fn disable(fd: &PerfEventFd) -> io::Result<()> {
    // SAFETY: the fd is a live perf event fd (owned by `fd`); DISABLE takes an integer argument.
    check(unsafe { perf_event_open_sys::ioctls::DISABLE(fd.file.as_raw_fd(), 0) }).map(drop)
}

/// `PERF_EVENT_IOC_SET_OUTPUT`: send `fd`'s records to `target`'s ring (same CPU).
pub fn set_output(fd: &PerfEventFd, target: &PerfEventFd) -> io::Result<()> {
    // SAFETY: both fds are live perf event fds; SET_OUTPUT takes the target fd as an integer.
    check(unsafe {
        perf_event_open_sys::ioctls::SET_OUTPUT(fd.file.as_raw_fd(), target.file.as_raw_fd())
    })
    .map(drop)
}

/// `PERF_EVENT_IOC_SET_FILTER`: a tracepoint filter (`count > 4096 && fd == 3`) the kernel
/// applies before the event reaches the ring. The kernel answers a bad filter with EINVAL only.
pub fn set_filter(fd: &PerfEventFd, filter: &CStr) -> io::Result<()> {
    // SAFETY: the fd is a live perf event fd; SET_FILTER takes a pointer to a NUL-terminated
    // string that the kernel only reads (it copies it with strndup_user, perf_event_open(2)),
    // and `filter` is borrowed for the whole call. The `*mut` is the binding's type only.
    check(unsafe {
        perf_event_open_sys::ioctls::SET_FILTER(fd.file.as_raw_fd(), filter.as_ptr().cast_mut())
    })
    .map(drop)
}

/// `PERF_EVENT_IOC_ID`: the kernel's id for this event (what `PERF_SAMPLE_ID[ENTIFIER]` reports).
pub fn event_id(fd: &PerfEventFd) -> io::Result<u64> {
    let mut id = 0u64;
    // SAFETY: the fd is a live perf event fd and `id` is a valid, writable u64 for the call.
    check(unsafe { perf_event_open_sys::ioctls::ID(fd.file.as_raw_fd(), &raw mut id) })?;
    Ok(id)
}

/// The system page size (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// A perf ring buffer mapped from an event fd: one metadata page, then 2^n data pages.
/// Unmapped on drop.
#[derive(Debug)]
pub struct RingMapping {
    base: NonNull<u8>,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; all access through `&self` is
// either atomic (head/tail) or reads of [tail, head), which the kernel does not write while we hold
// it (perf_event_mmap_page comment), so moving the owner to another thread is sound.
unsafe impl Send for RingMapping {}

impl RingMapping {
    /// Maps `data_pages` (a power of two) data pages plus the control page of `fd`.
    pub fn new(fd: &PerfEventFd, data_pages: usize) -> io::Result<Self> {
        if !data_pages.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring size must be a power of two pages",
            ));
        }
        let page = page_size();
        let map_len = data_pages
            .checked_add(1)
            .and_then(|p| p.checked_mul(page))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "ring size overflows"))?;
        // SAFETY: a fresh shared mapping of a perf event fd, at an address the kernel chooses;
        // length and fd are valid per perf_event_open(2) ("mmap size should be 1+2^n pages").
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        let mut ring = RingMapping {
            base,
            map_len,
            data_offset: page,
            data_size: map_len - page,
        };
        // Kernels since 4.1 publish the data area's place; older ones leave 0 (one page in).
        let page_ptr = ring.control_page();
        // SAFETY: the control page is mapped (first page of the mapping) and these two fields are
        // written once by the kernel at mmap time, before we read them.
        let (offset, size) = unsafe { ((*page_ptr).data_offset, (*page_ptr).data_size) };
        if let (Ok(offset), Ok(size)) = (usize::try_from(offset), usize::try_from(size)) {
            if offset != 0
                && size.is_power_of_two()
                && offset.checked_add(size).is_some_and(|end| end <= map_len)
            {
                ring.data_offset = offset;
                ring.data_size = size;
            }
        }
        Ok(ring)
    }

    fn control_page(&self) -> *mut perf_event_mmap_page {
        self.base.as_ptr().cast::<perf_event_mmap_page>()
    }
}

impl RingMemory for RingMapping {
    fn data_size(&self) -> usize {
        self.data_size
    }

    fn load_head(&self) -> u64 {
        // SAFETY: the control page is mapped for the lifetime of `self`; data_head is an aligned u64
        // the kernel updates concurrently, so it is accessed atomically. Acquire pairs with the
        // kernel's smp_store_release so record bytes before head are visible (perf_event.h).
        unsafe { AtomicU64::from_ptr(&raw mut (*self.control_page()).data_head) }
            .load(Ordering::Acquire)
    }

    fn load_tail(&self) -> u64 {
        // SAFETY: as for load_head; data_tail is only written by us.
        unsafe { AtomicU64::from_ptr(&raw mut (*self.control_page()).data_tail) }
            .load(Ordering::Relaxed)
    }

    fn store_tail(&mut self, tail: u64) {
        // SAFETY: as for load_head. Release orders our reads of [old tail, tail) before the kernel
        // may reuse that space (perf_event.h: "smp_mb(); WRITE tail").
        unsafe { AtomicU64::from_ptr(&raw mut (*self.control_page()).data_tail) }
            .store(tail, Ordering::Release);
    }

    fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        let end = offset.saturating_add(len);
        if end > self.data_size {
            return &[];
        }
        // SAFETY: [data_offset + offset, + len) lies inside the mapping (checked above; data area
        // validated in `new`). Callers (ring.rs) only ask for bytes in [tail, head), which the kernel
        // does not write until we advance data_tail, and store_tail takes &mut self, so no slice
        // handed out here can be alive when the kernel is allowed to reuse it.
        unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(self.data_offset + offset), len)
        }
    }
}

impl Drop for RingMapping {
    fn drop(&mut self) {
        // SAFETY: base/map_len are exactly what mmap returned/was given; nothing borrows the
        // mapping any more (we are being dropped).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}

/// Result of [`poll`]: which of the passed fds are readable or hung up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReady {
    /// Indexes of fds with POLLIN.
    pub readable: Vec<usize>,
    /// Indexes of fds with POLLHUP or POLLERR.
    pub hung_up: Vec<usize>,
}

/// `poll(2)` for POLLIN on `fds`; `None` waits forever. EINTR counts as a timeout.
pub fn poll(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<PollReady> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout_ms = match timeout {
        None => -1,
        Some(t) => i32::try_from(t.as_millis()).unwrap_or(i32::MAX),
    };
    let nfds = libc::nfds_t::try_from(pollfds.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many fds"))?;
    // SAFETY: `pollfds` is a valid, writable array of `nfds` pollfd structs for the call.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), nfds, timeout_ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(PollReady::default());
        }
        return Err(err);
    }
    let mut ready = PollReady::default();
    for (i, p) in pollfds.iter().enumerate() {
        if p.revents & libc::POLLIN != 0 {
            ready.readable.push(i);
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            ready.hung_up.push(i);
        }
    }
    Ok(ready)
}

static SIGNAL_PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = SIGNAL_PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = u8::try_from(signo).unwrap_or(0);
        let saved = errno();
        // SAFETY: write(2) is async-signal-safe; `byte` is a valid one-byte buffer. A full pipe
        // (EAGAIN, non-blocking) just drops the wakeup, which is harmless.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
        set_errno(saved);
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_errno(value: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe {
        *libc::__errno_location() = value;
    }
}

/// Clears `O_NONBLOCK` on `fd` (a FIFO opened non-blocking to see whether it has a reader).
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl(2) F_GETFL/F_SETFL on a valid borrowed fd; no pointers involved.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) })
        .map(drop)
}

fn pipe_cloexec(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
    // SAFETY: `fds` is a writable array of two ints as pipe2(2) requires.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    // SAFETY: pipe2 succeeded, so both are fresh fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Catches SIGINT, SIGTERM and SIGCHLD into a self-pipe while alive; restores the previous
/// dispositions on drop. Only one may exist at a time.
#[derive(Debug)]
pub struct SignalPipe {
    read: File,
    _write: OwnedFd,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

/// Signals that end a recording the way Ctrl-C does: the file is finished, not lost. SIGHUP
/// comes when the terminal or SSH session closes; the others from `kill`, `timeout` and job
/// control scripts. (SIGKILL cannot be caught: the output's header checkpoints cover it.)
pub const STOP_SIGNALS: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
];

impl SignalPipe {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        let (read, write) = pipe_cloexec(true)?;
        if SIGNAL_PIPE_WRITE
            .compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::other(
                "signal handlers already installed by another recording",
            ));
        }
        let mut pipe = SignalPipe {
            read: File::from(read),
            _write: write,
            previous: Vec::new(),
        };
        // The self-pipe catches the stop signals and SIGCHLD.
        for sig in STOP_SIGNALS.into_iter().chain([libc::SIGCHLD]) {
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value that we then fill.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
            unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
            // SAFETY: a zeroed sigaction is valid storage for the previous disposition.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are valid sigaction structs; the handler only calls
            // async-signal-safe functions (write).
            check(unsafe { libc::sigaction(sig, &raw const action, &raw mut old) })?;
            pipe.previous.push((sig, old));
        }
        Ok(pipe)
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Reads the pending signal numbers (non-blocking).
    pub fn drain(&self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = (&self.read).read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf.iter().take(n).map(|&b| i32::from(b)));
        }
        out
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (sig, old) in self.previous.drain(..) {
            // SAFETY: restores a disposition previously returned by sigaction.
            unsafe {
                libc::sigaction(sig, &raw const old, std::ptr::null_mut());
            }
        }
        SIGNAL_PIPE_WRITE.store(-1, Ordering::SeqCst);
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by signal.
    Signaled(i32),
}

impl ChildExit {
    /// The shell convention: the exit code, or 128 + signal number.
    pub fn code(self) -> i32 {
        match self {
            ChildExit::Exited(code) => code,
            ChildExit::Signaled(sig) => 128 + sig,
        }
    }
}

/// `waitpid(pid)`, non-blocking when `block` is false; `Ok(None)` while the child runs.
pub fn wait_child(pid: i32, block: bool) -> io::Result<Option<ChildExit>> {
    loop {
        let mut status = 0;
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: `status` is a valid, writable int.
        let rc = unsafe { libc::waitpid(pid, &raw mut status, flags) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some(ChildExit::Exited(libc::WEXITSTATUS(status))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(ChildExit::Signaled(libc::WTERMSIG(status))));
        }
        // Stopped/continued: keep waiting only when blocking.
        if !block {
            return Ok(None);
        }
    }
}

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// A forked child blocked before `exec`, waiting for [`StoppedChild::release`].
#[derive(Debug)]
pub struct StoppedChild {
    /// The child's pid.
    pub pid: i32,
    go: Option<File>,
    exec_error: File,
}

impl StoppedChild {
    /// Lets the child exec. Returns the exec error if exec failed (the child then exits 127).
    pub fn release(&mut self) -> io::Result<Option<io::Error>> {
        if let Some(mut go) = self.go.take() {
            std::io::Write::write_all(&mut go, b"G")?;
        }
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            match (&self.exec_error).read(buf.get_mut(got..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == buf.len() {
            Ok(Some(io::Error::from_raw_os_error(i32::from_ne_bytes(buf))))
        } else {
            Ok(None)
        }
    }
}

/// Forks a child that waits on a pipe, then `execv(program, argv)` with the current environment.
/// `program` must already be resolved against PATH (no allocation happens after fork). With
/// `stdout_to_stderr` the child's standard output is its standard error (as perf does when the
/// recording itself goes to standard output).
pub fn spawn_stopped(
    program: &CStr,
    argv: &[CString],
    stdout_to_stderr: bool,
) -> io::Result<StoppedChild> {
    let (go_read, go_write) = pipe_cloexec(false)?;
    let (err_read, err_write) = pipe_cloexec(false)?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let go_fd = go_read.as_raw_fd();
    let err_fd = err_write.as_raw_fd();
    let go_write_fd = go_write.as_raw_fd();
    let err_read_fd = err_read.as_raw_fd();
    // SAFETY: fork(2). The child only calls async-signal-safe functions (close, read, execv,
    // write, _exit) on data prepared before the fork, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: close our copies of the parent's ends, wait for the go byte (EOF
        // means the parent gave up: exit), maybe dup2 stderr onto stdout, exec, report errno on
        // failure and _exit without running any destructors or atexit handlers. All pointers
        // were built before fork and stay valid.
        unsafe {
            libc::close(go_write_fd);
            libc::close(err_read_fd);
            let mut byte = 0u8;
            loop {
                let n = libc::read(go_fd, (&raw mut byte).cast(), 1);
                if n == 1 {
                    break;
                }
                if n == 0 || *libc::__errno_location() != libc::EINTR {
                    libc::_exit(127);
                }
            }
            if stdout_to_stderr && libc::dup2(2, 1) < 0 {
                libc::_exit(127);
            }
            libc::execv(program.as_ptr(), argv_ptrs.as_ptr());
            let code = (*libc::__errno_location()).to_ne_bytes();
            libc::write(err_fd, code.as_ptr().cast(), code.len());
            libc::_exit(127);
        }
    }
    drop(go_read);
    drop(err_write);
    Ok(StoppedChild {
        pid,
        go: Some(File::from(go_write)),
        exec_error: File::from(err_read),
    })
}

/// Mounts tracefs at /sys/kernel/tracing (needed to look up tracepoint ids).
pub fn mount_tracefs() -> io::Result<()> {
    let source = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: all string arguments are valid NUL-terminated C strings; data is NULL as allowed.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ChildExit::Exited(3).code(), 3);
        assert_eq!(ChildExit::Signaled(libc::SIGINT).code(), 130);
    }
}
