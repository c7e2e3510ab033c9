//! Starting and reaping our child processes, Nix and git: as `posix_spawn` does, plus a
//! parent-death signal.
//!
//! The child shares our memory until it calls exec (`CLONE_VM | CLONE_VFORK`), so nothing
//! of ours is copied for it. `std::process::Command` does the same, but only without a
//! `pre_exec` hook, and the parent-death signal needs one; with the hook it forks, which
//! copied our page tables and cost our process a tenth of its CPU per run (BENCHMARKS.md).
//!
//! Between clone and exec the child runs on its own small stack, in our memory, with all
//! signals blocked: it makes system calls only, and allocates nothing. Keep it so: an
//! allocation, a panic or a formatted message there would act on memory we share.

use crate::error::Status;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;
use std::ffi::{CString, OsString, c_char, c_void};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, PoisonError};

/// A started child: stdout is a pipe, stdin and stderr as asked.
pub struct Child {
    pub pid: Pid,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
}

/// The child's stack: mapped, not allocated, so only the pages it touches are ever made,
/// above a guard page that may not be touched, so that overflowing the stack faults
/// instead of writing over whatever of ours lies below. Unmapped when dropped.
struct Stack {
    mapping: NonNull<c_void>,
    size: usize,
    page: usize,
}

/// The last child's stack, kept for the next child rather than unmapped: unmapping it costs
/// a TLB shootdown on every CPU the child ran on, and a new one for git would fault in its
/// pages again; together a tenth of our process's CPU (BENCHMARKS.md). The kernel frees it
/// with the rest of our memory when we exit.
static STACK: Mutex<Option<Stack>> = Mutex::new(None);

// SAFETY: a `Stack` is memory of ours, which any thread may use.
unsafe impl Send for Stack {}

impl Stack {
    /// Room for the child's few frames and for `execvp`, which builds each candidate path
    /// on the stack, and to run a program without `#!` through /bin/sh copies the argument
    /// pointers there too; so the stack grows with them, as glibc sizes posix_spawn's.
    fn room(args: usize) -> usize {
        64 * 1024 + (args + 2) * size_of::<*const c_char>()
    }

    fn fits(&self, args: usize) -> bool {
        self.size - self.page >= Stack::room(args)
    }

    fn new(args: usize) -> io::Result<Stack> {
        // SAFETY: sysconf only reads a system setting.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            size if size > 0 => size as usize,
            _ => 4096,
        };
        let size = page + Stack::room(args).div_ceil(page) * page;
        // SAFETY: a fresh private mapping, ours alone.
        let mapping = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                NonZeroUsize::new(size).expect("a stack has pages"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK,
            )
        }?;
        let stack = Stack {
            mapping,
            size,
            page,
        };
        // SAFETY: the lowest page of the mapping just made, which nothing uses.
        unsafe { nix::sys::mman::mprotect(mapping, page, ProtFlags::PROT_NONE) }?;
        Ok(stack)
    }

    /// The part above the guard page.
    fn usable(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `size` bytes, readable and writable above its first page,
        // and borrowed mutably with `self`.
        unsafe {
            let above = self.mapping.as_ptr().cast::<u8>().add(self.page);
            std::slice::from_raw_parts_mut(above, self.size - self.page)
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps our own mapping, once nothing runs on it.
        let _ = unsafe { nix::sys::mman::munmap(self.mapping, self.size) };
    }
}

/// Where the child's stderr goes.
#[derive(Clone, Copy)]
pub enum Stderr {
    /// To ours, so that Nix's build log streams live.
    Ours,
    /// To a pipe, returned in `Child::stderr`.
    Pipe,
    /// To /dev/null.
    Null,
}

/// Starts `program` (looked up on PATH) with `args`, reading `stdin` (or /dev/null). The
/// child gets SIGTERM should we die without passing a signal on (SIGKILL), so that Nix stops
/// its builders instead of building for nobody; the kernel sends it when the thread that
/// started the child ends, which is the main thread, so only when the process does.
pub fn spawn(
    program: &str,
    args: &[OsString],
    stdin: Option<&OwnedFd>,
    stderr: Stderr,
) -> io::Result<Child> {
    let c_string = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an argument contains a NUL byte",
            )
        })
    };
    let program = c_string(program.as_bytes())?;
    let args = args
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let argv: Vec<*const c_char> = std::iter::once(program.as_ptr())
        .chain(args.iter().map(|arg| arg.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    let (stdout, stdout_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_pipe, stderr_end) = match stderr {
        Stderr::Pipe => nix::unistd::pipe2(OFlag::O_CLOEXEC).map(|(r, w)| (Some(r), Some(w)))?,
        Stderr::Ours | Stderr::Null => (None, None),
    };
    let stderr_to = match stderr {
        Stderr::Ours => None,
        Stderr::Pipe => stderr_end.as_ref(),
        Stderr::Null => Some(&null),
    };
    let parent = nix::unistd::getpid();
    // What failed in the child, as an errno; the child writes it before it exits, and we
    // read it only after, so ordering is given by the vfork.
    let failure = AtomicI32::new(0);

    let mut in_child = || -> isize {
        let result = (|| -> nix::Result<()> {
            let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            // Our handlers go back to the default before a signal can arrive here, as a
            // handler run in the child would act in our memory.
            for signal in crate::signals::FORWARDED {
                // SAFETY: queries, then sets the default: no handler of ours runs here.
                let old = unsafe { signal::sigaction(signal, &default) }?;
                if matches!(old.handler(), SigHandler::SigIgn) {
                    // Ignored when we started: it stays ignored for Nix (`crate::signals`).
                    // SAFETY: as above.
                    unsafe { signal::sigaction(signal, &old) }?;
                }
            }
            // std ignores SIGPIPE in our process; the child should not inherit that.
            // SAFETY: as above.
            unsafe { signal::sigaction(Signal::SIGPIPE, &default) }?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // We may have died before the line above took effect, and then none will come.
            if nix::unistd::getppid() != parent {
                return Err(Errno::ESRCH);
            }
            nix::unistd::dup2_stdin(stdin.unwrap_or(&null))?;
            nix::unistd::dup2_stdout(&stdout_end)?;
            if let Some(fd) = stderr_to {
                nix::unistd::dup2_stderr(fd)?;
            }
            // As std does for what it starts: no signal blocked.
            signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            // SAFETY: `argv` is a NULL-terminated array of C strings that outlive the call.
            unsafe { libc::execvp(program.as_ptr(), argv.as_ptr()) };
            Err(Errno::last())
        })();
        if let Err(errno) = result {
            failure.store(errno as i32, Ordering::Relaxed);
        }
        127
    };

    let mut kept = STACK.lock().unwrap_or_else(PoisonError::into_inner);
    let stack = match &mut *kept {
        Some(stack) if stack.fits(argv.len()) => stack,
        slot => slot.insert(Stack::new(argv.len())?),
    };
    let mut blocked = SigSet::empty();
    signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut blocked),
    )?;
    // SAFETY: the child runs `in_child` on `stack` until exec, makes only system calls
    // there, allocates nothing, and receives no signal before its handlers are the
    // default; CLONE_VFORK suspends us until then, so no memory is touched by both.
    let started = unsafe {
        nix::sched::clone(
            Box::new(&mut in_child),
            stack.usable(),
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(Signal::SIGCHLD as i32),
        )
    };
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked), None);
    // The child has exec'd or exited, so nothing runs on the stack any more.
    drop(kept);
    let pid = started?;

    match failure.load(Ordering::Relaxed) {
        0 => Ok(Child {
            pid,
            stdout,
            stderr: stderr_pipe,
        }),
        errno => {
            let _ = nix::sys::wait::waitpid(pid, None);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// Reaps a child, once it has exited, for its status.
///
/// This and `has_exited` call libc's wait functions, not the nix crate's: those fail on a
/// real-time signal (SIGRTMIN+N), which they cannot name, and the status would be lost.
pub fn reap(pid: Pid) -> io::Result<Status> {
    let mut status = 0;
    // SAFETY: waitpid writes only `status`.
    while unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) } == -1 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        Status::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Status::Signal(libc::WTERMSIG(status))
    } else {
        // Stopped or continued: not reported without WUNTRACED; a failure if ever seen.
        Status::Code(1)
    })
}

/// Whether a child has exited, leaving it unreaped (`WNOWAIT`) so that its pid stays ours.
/// Without `WNOHANG`, waits for it to.
pub fn has_exited(pid: Pid, flags: WaitPidFlag) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | flags;
    loop {
        // SAFETY: all zeros is a valid siginfo_t, and waitid writes only `info`.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let id = pid.as_raw() as libc::id_t;
        if unsafe { libc::waitid(libc::P_PID, id, &mut info, flags.bits()) } == 0 {
            // With WNOHANG and the child still running, waitid returns with no pid filled in.
            // SAFETY: waitid filled `info` for SIGCHLD, whose fields include the pid.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
