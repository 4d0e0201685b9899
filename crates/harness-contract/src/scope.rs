//! What a harness token may do.
//!
//! | scope | may |
//! |---|---|
//! | `read` | every `GET` of the route table (health, SLOs, invariants, anomalies, tickets, criteria, ledger, proposals, pipeline, observe, notices, the OpenAPI document) |
//! | `operate` | `read`, and the agent calls: claim, renew, release, comment, escalate, link, propose, ask, record steps; MCP |
//! | `admin` | everything: approve / reject / revert proposals, pause / resume, reflect, cancel tickets, any route not in the table |
//! | `intake` | filing and announcing only: `POST /v1/tickets`, `POST /v1/alertmanager`, `POST /v1/notices`, `POST /v1/notices/{id}/expire` (no reading) |
//!
//! `admin ⊇ operate ⊇ read`; `intake` is separate (an Alertmanager's token
//! cannot read the queue; an agent's cannot file), and `admin` includes it.

use floodgate_contract::tokens::ScopeSet;
use std::fmt;

/// What a harness token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Operate,
    Admin,
    Intake,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Operate, Scope::Admin, Scope::Intake];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
            Scope::Intake => "intake",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub const fn grants(self, needed: Scope) -> bool {
        matches!(
            (self, needed),
            (Scope::Admin, _)
                | (Scope::Operate, Scope::Operate | Scope::Read)
                | (Scope::Read, Scope::Read)
                | (Scope::Intake, Scope::Intake)
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ScopeSet for Scope {
    const ALL: &'static [Scope] = &Scope::ALL;

    fn as_str(self) -> &'static str {
        Scope::as_str(self)
    }

    fn grants(self, needed: Scope) -> bool {
        Scope::grants(self, needed)
    }
}

/// The tokens a harness accepts.
pub type Tokens = floodgate_contract::tokens::Tokens<Scope>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_intake_is_separate() {
        use Scope::*;
        for (holder, needed, granted) in [
            (Admin, Intake, true),
            (Admin, Admin, true),
            (Operate, Read, true),
            (Operate, Admin, false),
            (Operate, Intake, false),
            (Read, Operate, false),
            (Intake, Read, false),
            (Intake, Intake, true),
        ] {
            assert_eq!(holder.grants(needed), granted, "{holder} for {needed}");
        }
    }

    #[test]
    fn a_tokens_file_names_the_harness_scopes() {
        let token = "t".repeat(20);
        let error = Tokens::parse_file("tokens.txt", &format!("check x {token}"))
            .expect_err("no check scope");
        assert_eq!(
            error.to_string(),
            "tokens.txt:1: unknown scope \"check\" (expected one of read, operate, admin, intake)"
        );
    }
}
