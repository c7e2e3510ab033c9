//! Starting our child processes, Nix and git, as Nix's own `startProcess` does: with a
//! parent-death signal.

use nix::sys::signal::Signal;
use nix::sys::wait::WaitPidFlag;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Starts `command`. The child gets SIGTERM should we die without passing a signal on
/// (SIGKILL), so that Nix stops its builders instead of building for nobody; the kernel
/// sends it when the thread that started the child ends, which is the main thread, so only
/// when the process does.
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: the hook runs in the forked child before exec and only makes two system
    // calls, which are async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // We may have died before that took effect, and then no signal will come.
            if nix::unistd::getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        })
    };
    command.spawn()
}

/// Whether a child has exited, leaving it unreaped (`WNOWAIT`) so that its pid stays ours
/// and no signal we forward can reach another process. Without `WNOHANG`, waits for it to.
///
/// libc's waitid, not the nix crate's, which fails on a real-time signal (SIGRTMIN+N) it
/// cannot name.
pub fn has_exited(pid: u32, flags: WaitPidFlag) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | flags;
    loop {
        // SAFETY: all zeros is a valid siginfo_t, which waitid only writes; it fills the
        // pid in when a child has exited, and leaves it 0 under WNOHANG when none has.
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
