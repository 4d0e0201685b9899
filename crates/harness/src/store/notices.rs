//! The notices table: expected-change notices and their events (ADR 0011).

use crate::store::rows::{load_notice, parse_notice};
use crate::store::trajectories::record;
use crate::store::{next_number, to_sql_ms, to_text, to_value, Store, StoreError, MAX_LIST};
use crate::tickets::notices::{self, Notice, NoticeEvent, NoticeState, MAX_LIVE_NOTICES};
use rusqlite::{params, TransactionBehavior};

/// Which notices a list answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeFilter {
    /// Only notices in this state at the list's time (`None`: all).
    pub state: Option<NoticeState>,
    /// Only notices numbered above this (paging).
    pub after_number: u64,
    /// At most this many (capped at [`MAX_LIST`]; 0 means the cap).
    pub limit: usize,
}

/// Applies a notice event, appends its ledger entry and saves the row.
pub(crate) fn apply_notice(
    tx: &rusqlite::Transaction<'_>,
    notice: Notice,
    event: &NoticeEvent,
    now_ms: u64,
) -> Result<Notice, StoreError> {
    let id = notice.id.clone();
    let notice =
        notices::apply(Some(notice), event, now_ms).map_err(|message| StoreError::Conflict {
            field: "state",
            message,
        })?;
    record(tx, now_ms, &id, event.kind(), &to_value(event)?)?;
    let changed = tx.execute(
        "UPDATE notices SET end_ms = ?2, doc = ?3 WHERE id = ?1",
        params![id, to_sql_ms(notice.end_ms()), to_text(&notice)?],
    )?;
    if changed != 1 {
        return Err(StoreError::NoSuch { what: "notice", id });
    }
    Ok(notice)
}

impl Store {
    /// Stores a new notice (validated by [`crate::tickets::notices::NoticeDraft::validate`];
    /// its id assigned here) with its `notice.created` ledger entry, in one
    /// transaction. Refused when [`MAX_LIVE_NOTICES`] notices are not yet
    /// expired at `now_ms`.
    pub fn create_notice(&self, notice: &Notice, now_ms: u64) -> Result<Notice, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: i64 = tx.query_row(
            "SELECT COUNT(*) FROM notices WHERE end_ms > ?1",
            params![to_sql_ms(now_ms)],
            |row| row.get(0),
        )?;
        if live.max(0) as usize >= MAX_LIVE_NOTICES {
            return Err(StoreError::Conflict {
                field: "notices",
                message: format!(
                    "{MAX_LIVE_NOTICES} notices are not yet expired: expire one before announcing another"
                ),
            });
        }
        let number = next_number(&tx, "notices")?;
        let mut notice = notice.clone();
        notice.id = notices::notice_id(number);
        let event = NoticeEvent::Created {
            notice: Box::new(notice.clone()),
        };
        record(&tx, now_ms, &notice.id, event.kind(), &to_value(&event)?)?;
        tx.execute(
            "INSERT INTO notices (number, id, starts_ms, end_ms, created_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                number as i64,
                notice.id,
                to_sql_ms(notice.starts_ms),
                to_sql_ms(notice.end_ms()),
                to_sql_ms(notice.created_ms),
                to_text(&notice)?,
            ],
        )?;
        tx.commit()?;
        Ok(notice)
    }

    pub fn get_notice(&self, id: &str) -> Result<Option<Notice>, StoreError> {
        load_notice(&self.lock(), id)
    }

    /// Notices by number, filtered by their state at `now_ms`.
    pub fn list_notices(
        &self,
        filter: &NoticeFilter,
        now_ms: u64,
    ) -> Result<Vec<Notice>, StoreError> {
        let conn = self.lock();
        let limit = if filter.limit == 0 {
            MAX_LIST
        } else {
            filter.limit.min(MAX_LIST)
        };
        let now = to_sql_ms(now_ms);
        let condition = match filter.state {
            None => "1",
            Some(NoticeState::Pending) => "starts_ms > ?2 AND end_ms > ?2",
            Some(NoticeState::Active) => "starts_ms <= ?2 AND end_ms > ?2",
            Some(NoticeState::Expired) => "end_ms <= ?2",
        };
        let mut statement = conn.prepare(&format!(
            "SELECT doc FROM notices WHERE number > ?1 AND {condition} ORDER BY number LIMIT ?3"
        ))?;
        let rows = statement.query_map(
            params![
                filter.after_number.min(i64::MAX as u64) as i64,
                now,
                limit as i64
            ],
            |row| row.get::<_, String>(0),
        )?;
        rows.map(|doc| parse_notice(&doc?)).collect()
    }

    /// The notices not yet expired at `now_ms` (pending or active), oldest
    /// first, at most [`MAX_LIVE_NOTICES`]: what each tick matches.
    pub fn live_notices(&self, now_ms: u64) -> Result<Vec<Notice>, StoreError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT doc FROM notices WHERE end_ms > ?1 ORDER BY number LIMIT ?2")?;
        let rows = statement
            .query_map(params![to_sql_ms(now_ms), MAX_LIVE_NOTICES as i64], |row| {
                row.get::<_, String>(0)
            })?;
        rows.map(|doc| parse_notice(&doc?)).collect()
    }

    /// Expires a notice before its end (pending or active) with its
    /// `notice.expired` entry; a notice already expired is refused.
    pub fn expire_notice(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        let event = NoticeEvent::Expired {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        self.change_notice(id, &event, now_ms)
    }

    /// Records what a notice did to an anomaly episode
    /// ([`NoticeEvent::Suppressed`] or [`NoticeEvent::Exceeded`]): its
    /// ledger entry and counter, in one transaction.
    pub fn record_notice_event(
        &self,
        id: &str,
        event: &NoticeEvent,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        if !matches!(
            event,
            NoticeEvent::Suppressed { .. } | NoticeEvent::Exceeded { .. }
        ) {
            return Err(StoreError::Invalid {
                field: "event",
                message: format!("{} is not recorded this way", event.kind()),
            });
        }
        self.change_notice(id, event, now_ms)
    }

    /// Applies `event` to a notice with its ledger entry, in one
    /// transaction; an event that cannot happen (expiring an expired
    /// notice) is refused.
    fn change_notice(
        &self,
        id: &str,
        event: &NoticeEvent,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let notice = load_notice(&tx, id)?.ok_or_else(|| StoreError::NoSuch {
            what: "notice",
            id: id.to_owned(),
        })?;
        let notice = apply_notice(&tx, notice, event, now_ms)?;
        tx.commit()?;
        Ok(notice)
    }
}
