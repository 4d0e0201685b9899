//! The harness's agent API (docs/adr/0008-agents-and-pipeline.md, "The
//! agent API"): the harness contract's one typed client and its request
//! types (`floodgate_harness_contract`, docs/adr/0028-harness-api-contract.md),
//! named here for the agent's callers.

pub use floodgate_harness_contract::client::{
    ClientError, HarnessClient, Transport, DEFAULT_AGENT, DEFAULT_TIMEOUT,
};
pub use floodgate_harness_contract::types::{
    ActionCall, ClaimRequest, CommentRequest, Decision, LinkRequest, NoticeMatcher, NoticeRequest,
    Observation, ObservationResult, ProposalRequest, ServiceEventsQuery, Source, StepRequest,
    TicketQuery, ToolCall,
};
