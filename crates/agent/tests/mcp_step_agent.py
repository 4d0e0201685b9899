#!/usr/bin/env python3
"""One step of an external agent for Floodgate's lab (`floodgate scenarios
run --agent mcp --mcp-command ...`), using the official Python MCP SDK
(`pip install mcp`).

The lab runs it once a simulated tick while a ticket waits, with
FLOODGATE_MCP_URL naming the harness's MCP endpoint (streamable HTTP on
loopback); the simulated world stands still until it exits. It claims the
most urgent ticket; for a bad config push (`config:bad-push`) it proposes
rolling the config back to the version before the one the ticket names,
and for anything else it escalates to a human. It prints one JSON line and
exits 0, or 1 with {"error": ...}.
"""

import asyncio
import contextlib
import json
import os
import sys

from mcp import ClientSession

try:  # mcp >= 2
    from mcp.client.streamable_http import streamable_http_client as http_client
except ImportError:  # mcp 1.x
    from mcp.client.streamable_http import streamablehttp_client as http_client


class StepFailed(Exception):
    pass


def answer_of(result, tool):
    data = getattr(result, "structuredContent", None) or getattr(result, "structured_content", None)
    if data is None:
        for block in getattr(result, "content", None) or []:
            text = getattr(block, "text", None)
            if text is not None:
                data = json.loads(text)
                break
    if getattr(result, "isError", None) or getattr(result, "is_error", None):
        raise StepFailed(f"{tool}: {json.dumps(data)}")
    return data


async def call(session, tool, arguments):
    return answer_of(await session.call_tool(tool, arguments), tool)


async def step(session):
    claimed = await call(session, "claim_ticket", {})
    ticket = (claimed or {}).get("ticket")
    if not ticket:
        return {"claimed": None}
    shown = (await call(session, "get_ticket", {"ticket": ticket["id"]}))["ticket"]
    version = (shown.get("context") or {}).get("config_version")
    if shown.get("fingerprint") == "config:bad-push" and isinstance(version, int) and version > 1:
        proposed = await call(
            session,
            "propose_change",
            {
                "ticket": ticket["id"],
                "rationale": f"config version {version} is reported bad: roll back to {version - 1}",
                "actions": [{"action": "rollback_config", "params": {"to_version": version - 1}}],
            },
        )
        return {"claimed": ticket["id"], "proposed": proposed["proposal"]["id"]}
    await call(
        session,
        "escalate_ticket",
        {"ticket": ticket["id"], "reason": "this step agent only rolls back bad config pushes"},
    )
    return {"claimed": ticket["id"], "escalated": True}


async def main():
    url = os.environ.get("FLOODGATE_MCP_URL")
    if not url:
        raise StepFailed("FLOODGATE_MCP_URL is not set")
    async with contextlib.AsyncExitStack() as stack:
        streams = await stack.enter_async_context(http_client(url))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        return await step(session)


if __name__ == "__main__":
    try:
        print(json.dumps(asyncio.run(main())))
    except StepFailed as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(1)
