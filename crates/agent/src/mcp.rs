//! The MCP server (rmcp): the tool catalog ([`crate::tools::CATALOG`]),
//! exactly, to any MCP client.
//!
//! Each tool is listed with its title, description, input schema and the
//! annotations `readOnlyHint` / `destructiveHint` from the catalog's flags
//! (and `openWorldHint: false`: a tool reaches only the harness). A call is
//! forwarded through [`crate::tools::call`]: bad arguments and harness
//! refusals come back as a tool result with `isError: true` and the
//! `{"error": {"kind", "field", "message"}}` document, so the model sees
//! what to fix; an unknown tool is a JSON-RPC `invalid params` error.
//!
//! Two transports:
//! - [`serve_stdio`]: `floodgate mcp --harness URL` (desktop clients spawn
//!   it; the protocol owns stdout, so logs go to stderr);
//! - [`streamable_http_router`]: the streamable HTTP transport at
//!   [`MCP_PATH`], merged into the harness's router (loopback hosts only,
//!   rmcp's default protection against DNS rebinding).

use crate::client::HarnessClient;
use crate::tools::{self, ToolDef, ToolError, CATALOG};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::Value;
use std::sync::Arc;
pub use tokio_util::sync::CancellationToken;

/// Where the streamable HTTP transport is served on the harness.
pub const MCP_PATH: &str = "/mcp";

/// What the server tells clients about itself.
const INSTRUCTIONS: &str = "Floodgate's harness: work rate-limiter tickets. \
    Claim a ticket, read it and the evidence (SLOs, invariants, anomalies, series, \
    service state and events), then either propose a change (the pipeline tests, \
    canaries, deploys and verifies it, and rolls it back on failure) and follow it \
    with get_proposal, or escalate the ticket to a human with the reason.";

/// The MCP server over one harness client.
#[derive(Debug, Clone)]
pub struct FloodgateMcp {
    client: Arc<HarnessClient>,
}

impl FloodgateMcp {
    /// A server whose tool calls go through `client` (and act as its agent).
    pub fn new(client: HarnessClient) -> FloodgateMcp {
        FloodgateMcp {
            client: Arc::new(client),
        }
    }
}

/// The MCP form of a catalog entry.
pub fn mcp_tool(def: &ToolDef) -> Tool {
    let schema = match def.input_schema_json() {
        Value::Object(object) => object,
        // Every catalog schema is an object (a tools test says so).
        _ => serde_json::Map::new(),
    };
    let annotations = ToolAnnotations::with_title(def.title)
        .read_only(def.read_only)
        .destructive(def.destructive)
        .open_world(false);
    Tool::new(def.name, def.description, schema)
        .with_title(def.title)
        .with_annotations(annotations)
}

impl ServerHandler for FloodgateMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("floodgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            CATALOG.iter().map(mcp_tool).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::find(name).map(mcp_tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.map_or(Value::Null, Value::Object);
        match tools::call(&self.client, &request.name, args).await {
            Ok(answer) => Ok(result(answer, false).into()),
            Err(error @ ToolError::UnknownTool(_)) => Err(ErrorData::invalid_params(
                error.to_string(),
                Some(error.to_json()),
            )),
            Err(error) => Ok(result(error.to_json(), true).into()),
        }
    }
}

/// A tool result: the JSON as text, and as structured content when it is
/// an object (MCP's structured content is an object).
fn result(value: Value, is_error: bool) -> CallToolResult {
    match (value.is_object(), is_error) {
        (true, false) => CallToolResult::structured(value),
        (true, true) => CallToolResult::structured_error(value),
        (false, false) => {
            CallToolResult::success(vec![rmcp::model::ContentBlock::text(value.to_string())])
        }
        (false, true) => {
            CallToolResult::error(vec![rmcp::model::ContentBlock::text(value.to_string())])
        }
    }
}

/// Why the MCP server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The client never completed the MCP handshake.
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    /// The server task ended abnormally.
    #[error("MCP server stopped: {0}")]
    Stopped(String),
}

/// Serves MCP over stdin/stdout until the client closes the stream.
pub async fn serve_stdio(client: HarnessClient) -> Result<(), ServeError> {
    let running = FloodgateMcp::new(client)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| ServeError::Handshake(error.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|error| ServeError::Stopped(error.to_string()))?;
    Ok(())
}

/// The streamable HTTP transport at [`MCP_PATH`], to merge into the
/// harness's router. Streams stay open until their client leaves: use
/// [`streamable_http_router_with_shutdown`] where the server shuts down
/// gracefully.
pub fn streamable_http_router(client: HarnessClient) -> axum::Router {
    streamable_http_router_with_shutdown(client, CancellationToken::new())
}

/// [`streamable_http_router`], whose sessions and open streams end when
/// `shutdown` is cancelled (so a graceful shutdown does not wait on them).
pub fn streamable_http_router_with_shutdown(
    client: HarnessClient,
    shutdown: CancellationToken,
) -> axum::Router {
    let server = FloodgateMcp::new(client);
    let service: StreamableHttpService<FloodgateMcp, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::default(),
            StreamableHttpServerConfig::default().with_cancellation_token(shutdown),
        );
    axum::Router::new().route_service(MCP_PATH, service)
}
