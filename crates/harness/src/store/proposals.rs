//! The proposals table: a proposal's stages saved with their ledger entry
//! and its ticket's transition in one transaction.

use crate::change::proposal::Proposal;
use crate::store::rows::{load, parse_proposal, proposal_doc};
use crate::store::tickets::run_ticket_command;
use crate::store::trajectories::record;
use crate::store::{load_doc, next_number, Store, StoreError, MAX_LIST};
use crate::tickets::{Command, TransitionError};
use rusqlite::{params, TransactionBehavior};

impl Store {
    /// Stores a new proposal (its id assigned here), appends
    /// `proposal.created` to the ledger under the ticket, and runs
    /// `ticket_command` on the ticket, all in one transaction. A refused
    /// command refuses the whole call.
    pub fn create_proposal(
        &self,
        proposal: &Proposal,
        ticket_command: Option<&Command>,
        now_ms: u64,
    ) -> Result<Proposal, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if load(&tx, &proposal.ticket_id)?.is_none() {
            return Err(StoreError::NotFound(proposal.ticket_id.clone()));
        }
        let number = next_number(&tx, "proposals")?;
        let mut proposal = proposal.clone();
        proposal.id = format!("P-{number:04}");
        if let Some(command) = ticket_command {
            run_ticket_command(&tx, &proposal.ticket_id, command, now_ms)?;
        }
        let data = serde_json::json!({
            "proposal": proposal.id,
            "agent": proposal.agent,
            "rationale": proposal.rationale,
            "actions": proposal.actions,
        });
        record(&tx, now_ms, &proposal.ticket_id, "proposal.created", &data)?;
        tx.execute(
            "INSERT INTO proposals (number, id, ticket_id, stage, terminal, updated_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                number as i64,
                proposal.id,
                proposal.ticket_id,
                proposal.stage.as_str(),
                proposal.stage.is_terminal(),
                proposal.updated_ms as i64,
                proposal_doc(&proposal)?,
            ],
        )?;
        tx.commit()?;
        Ok(proposal)
    }

    /// Saves a proposal's new state with its ledger entry (`kind`, `data`,
    /// under the ticket) and, when given, a command on its ticket, in one
    /// transaction. A refused ticket command does not refuse the save: it
    /// is recorded in the ledger entry (`ticket_command_refused`) and
    /// answered, so the pipeline's record never stalls on a ticket a human
    /// moved meanwhile.
    pub fn save_proposal(
        &self,
        proposal: &Proposal,
        kind: &str,
        data: serde_json::Value,
        ticket_command: Option<&Command>,
        now_ms: u64,
    ) -> Result<Option<TransitionError>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut data = data;
        let mut refused = None;
        if let Some(command) = ticket_command {
            match run_ticket_command(&tx, &proposal.ticket_id, command, now_ms) {
                Ok(()) => {}
                Err(StoreError::Transition(error)) => {
                    if let serde_json::Value::Object(map) = &mut data {
                        map.insert(
                            "ticket_command_refused".into(),
                            serde_json::Value::String(error.to_string()),
                        );
                    }
                    refused = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        record(&tx, now_ms, &proposal.ticket_id, kind, &data)?;
        let changed = tx.execute(
            "UPDATE proposals SET stage = ?2, terminal = ?3, updated_ms = ?4, doc = ?5 WHERE id = ?1",
            params![
                proposal.id,
                proposal.stage.as_str(),
                proposal.stage.is_terminal(),
                proposal.updated_ms as i64,
                proposal_doc(proposal)?,
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::NotFound(proposal.id.clone()));
        }
        tx.commit()?;
        Ok(refused)
    }

    pub fn get_proposal(&self, id: &str) -> Result<Option<Proposal>, StoreError> {
        load_doc(
            &self.lock(),
            "SELECT doc FROM proposals WHERE id = ?1",
            id,
            parse_proposal,
        )
    }

    /// A ticket's proposals, oldest first.
    pub fn proposals_of(&self, ticket_id: &str) -> Result<Vec<Proposal>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT doc FROM proposals WHERE ticket_id = ?1 ORDER BY number LIMIT ?2")?;
        let rows = statement.query_map(params![ticket_id, MAX_LIST as i64], |row| {
            row.get::<_, String>(0)
        })?;
        rows.map(|doc| parse_proposal(&doc?)).collect()
    }

    /// Proposals not yet in a terminal stage, oldest first.
    pub fn active_proposals(&self) -> Result<Vec<Proposal>, StoreError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT doc FROM proposals WHERE terminal = 0 ORDER BY number LIMIT ?1")?;
        let rows = statement.query_map(params![MAX_LIST as i64], |row| row.get::<_, String>(0))?;
        rows.map(|doc| parse_proposal(&doc?)).collect()
    }
}
