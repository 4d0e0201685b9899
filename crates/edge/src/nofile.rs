//! The open-file limit: raised to the hard limit at start, so the
//! connection caps of the listeners (4,096 each) are reachable before the
//! process runs out of descriptors.

/// The soft limit on open files before and after [`raise`], and the hard
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub after: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the `rlimit` crate;
/// a no-op where the platform has no such limit) and says what it was and
/// is now.
pub fn raise() -> std::io::Result<NofileLimit> {
    let (before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let after = rlimit::increase_nofile_limit(hard)?;
    Ok(NofileLimit {
        before,
        after,
        hard,
    })
}

/// [`raise`], logged: the limits at info, a failure or a limit below what
/// `listeners` connection caps need as a warning. Returns the soft limit
/// now in force, if it could be read.
pub fn raise_and_log(connections_needed: u64) -> Option<u64> {
    match raise() {
        Ok(limit) => {
            tracing::info!(
                before = limit.before,
                after = limit.after,
                hard = limit.hard,
                "open-file limit (RLIMIT_NOFILE) raised to the hard limit"
            );
            if limit.after < connections_needed {
                tracing::warn!(
                    limit = limit.after,
                    needed = connections_needed,
                    "the open-file limit is below the connection caps: past it, accepts fail and \
                     the longest-idle connection is shed to make room"
                );
            }
            Some(limit.after)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit (RLIMIT_NOFILE)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise().expect("getrlimit and setrlimit work here");
        assert!(limit.before <= limit.hard);
        assert_eq!(limit.after, limit.hard);
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!((soft, hard), (limit.hard, limit.hard));
    }
}
