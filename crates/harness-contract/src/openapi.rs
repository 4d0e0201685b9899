//! The OpenAPI 3.1 document of the harness API, generated from the route
//! table ([`ROUTES`]) and the request types: the harness serves it at
//! `GET /v1/openapi.json`, `floodgate catalog --write` commits it as
//! [`DOC_PATH`], and `catalog --check` fails when the two drift.
//!
//! Answers are described by their top-level fields (the route's `answer`),
//! not by a schema: the harness's answer types are not yet contract types
//! (docs/adr/0028-harness-api-contract.md says what remains).

use crate::routes::{Body, Method, Route, ROUTES};
use floodgate_contract::state::ErrorBody;
use floodgate_contract::GeneratedDoc;
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

/// Where `floodgate catalog --write` puts the document.
pub const DOC_PATH: &str = "docs/catalog/harness-openapi.json";

const SCHEMAS: &str = "/components/schemas";

fn generator() -> SchemaGenerator {
    let mut settings = SchemaSettings::draft2020_12().for_deserialize();
    settings.definitions_path = SCHEMAS.into();
    settings.into_generator()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#{SCHEMAS}/ErrorBody")}}},
    })
}

fn request_body(body: &Body, generator: &mut SchemaGenerator) -> Option<Value> {
    let (schema, required, description) = match body {
        Body::None => return None,
        Body::Json { schema, optional } => (
            schema(generator).to_value(),
            !optional,
            if *optional {
                "JSON; an empty body stands for the defaults."
            } else {
                "JSON."
            },
        ),
        Body::TicketFile => (
            json!({"type": "object", "required": ["ticket"], "description": "The ticket file format (docs/tickets.md): `ticket: {objective, acceptance, constraints, context}`; YAML or JSON, the inner object alone accepted."}),
            true,
            "A ticket file, YAML or JSON (sent as application/json; JSON is YAML).",
        ),
        Body::AlertmanagerWebhook => (
            json!({"type": "object", "required": ["version", "alerts"], "description": "Alertmanager's webhook payload, version 4."}),
            true,
            "Alertmanager webhook v4.",
        ),
        Body::JsonRpc => (
            json!({"type": "object", "description": "A JSON-RPC 2.0 message of MCP's streamable HTTP transport."}),
            true,
            "MCP.",
        ),
    };
    Some(json!({
        "required": required,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }))
}

fn operation(route: &Route, generator: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(route.query.iter().map(|param| {
        json!({"name": param.name, "in": "query", "required": false, "description": param.description, "schema": {"type": "string"}})
    }));
    let mut responses = Map::new();
    responses.insert(
        route.status.to_string(),
        json!({"description": route.answer, "content": {"application/json": {"schema": {"type": "object"}}}}),
    );
    for (status, description) in [
        ("400", "The request is invalid: the error names the field."),
        ("401", "A token is needed (access control on)."),
        ("403", "The token's scope does not grant this."),
        ("404", "No such ticket, proposal, notice or trajectory."),
        (
            "409",
            "The state does not allow it now (the error says why).",
        ),
    ] {
        responses.insert(status.to_owned(), error_response(description));
    }
    let mut value = json!({
        "operationId": format!("{:?}", route.operation),
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": [route.scope.as_str()]}],
        "x-floodgate-scope": route.scope.as_str(),
    });
    if let Some(body) = request_body(&route.body, generator) {
        value["requestBody"] = body;
    }
    value
}

/// The document.
pub fn document() -> Value {
    let mut generator = generator();
    let _ = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        let method = match route.method {
            Method::Get => "get",
            Method::Post => "post",
            Method::Delete => "delete",
        };
        item[method] = operation(route, &mut generator);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Floodgate harness API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Tickets, proposals, the pipeline, observation, trajectories, reflection and notices of a Floodgate harness.",
            "description": "Generated from the route table of crates/harness-contract (docs/adr/0028-harness-api-contract.md). Errors are `{\"error\": {\"kind\", \"field\", \"message\"}}` (ticket files add `line`). When the harness has tokens, every call needs `Authorization: Bearer TOKEN` with the scope named per operation; a route not listed needs admin. Without tokens it binds loopback only.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "http://127.0.0.1:8090", "description": "the default --http-addr"}],
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `floodgate harness serve --tokens-file`. Scopes: read (every GET), operate (read + the agent's calls and MCP), admin (everything), intake (filing tickets and notices only). admin ⊇ operate ⊇ read; admin includes intake.",
                }
            },
        },
    })
}

/// The document, as [`DOC_PATH`] holds it.
pub fn generated_doc() -> GeneratedDoc {
    let mut content = serde_json::to_string_pretty(&document()).unwrap_or_default();
    content.push('\n');
    GeneratedDoc {
        path: DOC_PATH.to_owned(),
        content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_with_its_scope_and_every_reference_resolves() {
        let document = document();
        for route in ROUTES {
            let method = route.method.as_str().to_ascii_lowercase();
            let operation = &document["paths"][route.path][&method];
            assert_eq!(
                operation["x-floodgate-scope"],
                route.scope.as_str(),
                "{method} {}",
                route.path
            );
        }
        let text = document.to_string();
        let schemas = &document["components"]["schemas"];
        let marker = "\"$ref\":\"#/components/schemas/";
        let mut rest = text.as_str();
        let mut count = 0;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let name = rest.split('"').next().unwrap_or_default();
            assert!(schemas.get(name).is_some(), "dangling $ref to {name}");
            count += 1;
        }
        assert!(count > 10, "{count} references");
        assert!(schemas.get("ProposalRequest").is_some());
    }
}
