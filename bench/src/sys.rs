//! Process facts the scenarios need: the open-file limit, and another process's resident memory and open
//! descriptors.

use anyhow::{anyhow, Context};

/// Raises this process's open-file limit to at least `needed` where allowed (root may also raise the
/// hard limit); returns the soft limit now in force.
pub fn raise_fd_limit(needed: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= needed {
            return limit.rlim_cur;
        }
        let wanted = libc::rlimit {
            rlim_cur: needed,
            rlim_max: limit.rlim_max.max(needed),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return needed;
        }
        let capped = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &capped) == 0 {
            return limit.rlim_max;
        }
        limit.rlim_cur
    }
}

/// VmRSS of process `pid`, in KiB, from /proc/PID/status.
pub fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("{path} has no VmRSS line"))
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn open_fds(pid: u32) -> anyhow::Result<usize> {
    let path = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&path).with_context(|| format!("cannot list {path}"))?;
    Ok(entries.count())
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc/PID/stat (`None` reads
/// this process).
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name (which may contain spaces) start at "state"; utime and stime are
    // fields 14 and 15 of the whole line, so 12 and 13 of the rest.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| anyhow!("{path}: field {} missing", index + 3))
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) as f64 / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss() {
        assert!(vm_rss_kib(std::process::id()).expect("own status") > 0);
    }

    #[test]
    fn counts_open_descriptors() {
        // Other tests of this process may open or close a file meanwhile, hence the slack.
        let pid = std::process::id();
        let before = open_fds(pid).expect("own fd list") as i64;
        let files: Vec<_> = (0..64)
            .map(|_| std::fs::File::open("/proc/self/status").expect("open a file"))
            .collect();
        let during = open_fds(pid).expect("own fd list") as i64;
        drop(files);
        assert!(
            (56..=72).contains(&(during - before)),
            "{before} -> {during}"
        );
        assert!(open_fds(u32::MAX).is_err());
    }

    #[test]
    fn reads_own_cpu_time() {
        let mine = cpu_seconds(None).expect("own stat");
        let by_pid = cpu_seconds(Some(std::process::id())).expect("own stat by pid");
        assert!(mine >= 0.0 && by_pid >= mine);
    }
}
