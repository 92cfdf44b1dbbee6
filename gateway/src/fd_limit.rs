//! The open-file limit. Every connection is a file descriptor, and the usual soft limit (1,024) would lock
//! new clients out long before `[gateway] max_connections`; the hard limit is what the operator actually
//! granted, so the gateway raises its soft limit to it at start and logs both.

use std::io;

/// The soft `RLIMIT_NOFILE` before and after [`raise_to_hard_limit`], and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub after: u64,
    /// The hard limit (the most the soft limit may be raised to without privileges).
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit.
#[cfg(target_os = "linux")]
pub fn raise_to_hard_limit() -> io::Result<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit only reads the struct it is given, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(OpenFiles {
        before,
        after: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Raises the soft open-file limit to the hard limit (only implemented on Linux).
#[cfg(not(target_os = "linux"))]
pub fn raise_to_hard_limit() -> io::Result<OpenFiles> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "raising RLIMIT_NOFILE is only implemented on Linux",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit_and_stays_there() {
        let first = raise_to_hard_limit().expect("getrlimit/setrlimit");
        assert_eq!(first.after, first.hard);
        assert!(first.after >= first.before);
        let second = raise_to_hard_limit().expect("again");
        assert_eq!(second.before, first.after, "the raise persisted");
        assert_eq!(second.after, second.hard);
    }
}
