//! Reading a running Nix's stdout and stderr until Nix exits.
//!
//! Nix's exit, not the end of its pipes, ends the reading: a process Nix leaves behind
//! holding them open (a wrapper's daemon, say) must not hold us too. What Nix wrote before
//! exiting is still in the pipes then, and is read without waiting for more. Nix is left
//! unreaped, so that its pid stays its own while signals are forwarded to it.

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::WaitPidFlag;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

/// Nix's exit is looked for when its pipes go quiet, and at least this often while they are
/// busy (something it left behind may keep writing to them).
const EXIT_CHECK: Duration = Duration::from_millis(100);
/// How much is read from a pipe before Nix's exit is looked for again: a writer faster than
/// we are must not keep us reading.
const BETWEEN_CHECKS: usize = 64 << 10;
/// How much Nix can have left in a pipe when it exits: what the largest pipe an unprivileged
/// process can make holds (`fs.pipe-max-size`, 1 MiB by default). Read FIFO, that much has
/// all of Nix's, whatever a process it left behind writes after it.
const LEFT_IN_PIPE: usize = 1 << 20;

/// Reads `child`'s piped stdout and stderr until it exits, handing each to its function as
/// it arrives. Past `deadline`, it is killed.
pub fn read_until_exit(
    child: &mut Child,
    deadline: Option<Instant>,
    on_stdout: &mut dyn FnMut(&[u8]),
    on_stderr: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let pid = child.id();
    let mut stdout = Pipe::new(child.stdout.take())?;
    let mut stderr = Pipe::new(child.stderr.take())?;

    let mut checked = Instant::now();
    loop {
        let mut fds: Vec<PollFd> = [&stdout, &stderr]
            .into_iter()
            .flatten()
            .filter(|pipe| pipe.open)
            .map(|pipe| PollFd::new(pipe.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            // Nix closed its end of the pipes, which it does on the way out.
            wait_for_exit(pid)?;
            break;
        }
        // A signal interrupting the wait is forwarded by its handler and needs nothing here.
        let ready = match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(ready) => ready,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        drop(fds);
        if let Some(pipe) = &mut stdout {
            pipe.drain(BETWEEN_CHECKS, &mut *on_stdout)?;
        }
        if let Some(pipe) = &mut stderr {
            pipe.drain(BETWEEN_CHECKS, &mut *on_stderr)?;
        }
        if ready == 0 || checked.elapsed() >= EXIT_CHECK {
            checked = Instant::now();
            if deadline.is_some_and(|deadline| checked >= deadline) {
                // Reaped only by the caller, so the pid is still the child's.
                let _ = child.kill();
            }
            if has_exited(pid, WaitPidFlag::WNOHANG)? {
                break;
            }
        }
    }
    // What Nix wrote before exiting is still in the pipes: read it, without waiting for more.
    if let Some(pipe) = &mut stdout {
        pipe.drain(LEFT_IN_PIPE, on_stdout)?;
    }
    if let Some(pipe) = &mut stderr {
        pipe.drain(LEFT_IN_PIPE, on_stderr)?;
    }
    Ok(())
}

/// Waits for a child to exit, leaving it unreaped.
pub fn wait_for_exit(pid: u32) -> io::Result<()> {
    has_exited(pid, WaitPidFlag::empty()).map(drop)
}

/// Whether a child has exited, leaving it unreaped (`WNOWAIT`); without `WNOHANG`, waits
/// for it to. libc's waitid, not the nix crate's, which fails on a real-time signal
/// (SIGRTMIN+N) it cannot name.
fn has_exited(pid: u32, flags: WaitPidFlag) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | flags;
    loop {
        // SAFETY: all zeros is a valid siginfo_t, which waitid only writes; it fills in the
        // pid once the child has exited, and under WNOHANG leaves it 0 until then.
        let exited = unsafe {
            let mut info: nix::libc::siginfo_t = std::mem::zeroed();
            match nix::libc::waitid(nix::libc::P_PID, pid, &mut info, flags.bits()) {
                0 => Some(info.si_pid() != 0),
                _ => None,
            }
        };
        if let Some(exited) = exited {
            return Ok(exited);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Our end of one of Nix's output pipes, read without blocking.
struct Pipe {
    fd: OwnedFd,
    open: bool,
}

impl Pipe {
    fn new(end: Option<impl Into<OwnedFd>>) -> io::Result<Option<Self>> {
        let Some(end) = end else {
            return Ok(None);
        };
        let fd = end.into();
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Some(Pipe { fd, open: true }))
    }

    /// Passes on what can be read now, up to `limit` bytes: until a short read, which says
    /// the pipe is empty for the moment (a pipe's read takes all it has, up to the buffer's
    /// size), saving a read that would fail.
    fn drain(&mut self, limit: usize, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let mut buf = [0; 8192];
        let mut read = 0;
        while self.open && read < limit {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    each(&buf[..n]);
                    read += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
