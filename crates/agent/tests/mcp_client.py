#!/usr/bin/env python3
"""An MCP client for Floodgate's tool catalog, using the official Python SDK
(`pip install mcp`).

It connects over stdio (spawning a command such as `floodgate mcp --harness
URL`) or streamable HTTP (a URL such as http://127.0.0.1:8090/mcp), lists the
tools and checks their annotations (reading tools `readOnlyHint: true`,
`propose_change` `destructiveHint: true`), and then, unless --list-only:
claims a ticket, reads it, proposes the change given as JSON on the command
line, and polls get_proposal until the proposal reaches a terminal stage. It
prints one JSON document on stdout and exits 0 when every step worked (the
proposal's final stage is in the output, whatever it is), 1 otherwise with
{"error": ...}.

    mcp_client.py stdio "floodgate mcp --harness http://127.0.0.1:8090" --list-only
    mcp_client.py http http://127.0.0.1:8090/mcp \\
        --change '{"rationale": "...", "actions": [{"action": "set_limit", "params": {...}}]}'
"""

import argparse
import asyncio
import contextlib
import json
import shlex
import sys
import time

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

try:  # mcp >= 2
    from mcp.client.streamable_http import streamable_http_client as http_client
except ImportError:  # mcp 1.x
    from mcp.client.streamable_http import streamablehttp_client as http_client

# The proposal stages that end its pipeline (the harness's `Stage`).
TERMINAL = {"succeeded", "failed", "error", "rejected", "rolled_back"}
# Tools that only read: named get_*, list_* or observe_*.
READ_PREFIXES = ("get_", "list_", "observe_")


class StepFailed(Exception):
    """A step of the scenario failed; the message says which and why."""


def field(obj, *names):
    """The first attribute present (the SDK's names changed across versions)."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def answer_of(result, tool):
    """A tool result's JSON: the structured content, else the first text."""
    data = field(result, "structuredContent", "structured_content")
    if data is None:
        for block in field(result, "content") or []:
            text = getattr(block, "text", None)
            if text is not None:
                data = json.loads(text)
                break
    if field(result, "isError", "is_error"):
        raise StepFailed(f"{tool}: {json.dumps(data)}")
    return data


async def call(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    return answer_of(result, tool)


def check_annotations(tools):
    """Reading tools are read-only; propose_change is destructive."""
    names = {tool["name"] for tool in tools}
    for needed in ("claim_ticket", "get_ticket", "propose_change", "get_proposal"):
        if needed not in names:
            raise StepFailed(f"list_tools: no {needed} among {sorted(names)}")
    for tool in tools:
        name = tool["name"]
        if name.startswith(READ_PREFIXES):
            if tool["readOnlyHint"] is not True or tool["destructiveHint"] is True:
                raise StepFailed(f"list_tools: {name} should be read-only: {tool}")
        elif tool["readOnlyHint"] is True:
            raise StepFailed(f"list_tools: {name} changes things but claims readOnlyHint: {tool}")
        if name == "propose_change" and tool["destructiveHint"] is not True:
            raise StepFailed(f"list_tools: propose_change should be destructive: {tool}")


async def scenario(session, args):
    await session.initialize()
    listed = await session.list_tools()
    tools = []
    for tool in listed.tools:
        annotations = tool.annotations
        tools.append(
            {
                "name": tool.name,
                "readOnlyHint": field(annotations, "readOnlyHint", "read_only_hint"),
                "destructiveHint": field(annotations, "destructiveHint", "destructive_hint"),
            }
        )
    check_annotations(tools)
    output = {"tools": tools}
    if args.list_only:
        return output

    claim_args = {"ticket": args.ticket} if args.ticket else {}
    claimed = await call(session, "claim_ticket", claim_args)
    ticket = (claimed or {}).get("ticket")
    if not ticket:
        raise StepFailed("claim_ticket: no ticket to claim")
    ticket_id = ticket["id"]
    output["ticket"] = await call(session, "get_ticket", {"ticket": ticket_id})

    change = dict(args.change)
    change["ticket"] = ticket_id
    proposed = await call(session, "propose_change", change)
    proposal = proposed["proposal"]
    stages = [proposal.get("stage")]
    deadline = time.monotonic() + args.timeout
    while proposal.get("stage") not in TERMINAL:
        if time.monotonic() > deadline:
            raise StepFailed(
                f"get_proposal: {proposal.get('id')} still {proposal.get('stage')!r} "
                f"after {args.timeout} s (stages seen: {stages})"
            )
        # The pipeline moves on the harness's observe ticks: poll.
        await asyncio.sleep(args.poll)
        proposal = (await call(session, "get_proposal", {"proposal": proposal["id"]}))["proposal"]
        if proposal.get("stage") != stages[-1]:
            stages.append(proposal.get("stage"))
    output["proposal"] = proposal
    output["stages"] = stages
    return output


async def main(args):
    async with contextlib.AsyncExitStack() as stack:
        if args.transport == "stdio":
            words = shlex.split(args.target)
            if not words:
                raise StepFailed("target: an empty command")
            params = StdioServerParameters(command=words[0], args=words[1:])
            streams = await stack.enter_async_context(stdio_client(params))
        else:
            streams = await stack.enter_async_context(http_client(args.target))
        # mcp 1.x's HTTP client yields a third item (the session id getter).
        read, write = streams[0], streams[1]
        session = await stack.enter_async_context(ClientSession(read, write))
        return await scenario(session, args)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument(
        "target", help="stdio: the server command line; http: the MCP URL (…/mcp)"
    )
    parser.add_argument("--list-only", action="store_true", help="only list the tools")
    parser.add_argument("--ticket", help="claim this ticket rather than the most urgent")
    parser.add_argument(
        "--change",
        help='the change as JSON: {"rationale": "...", "actions": [{"action": "...", "params": {...}}]}',
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a terminal state")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between get_proposal calls")
    args = parser.parse_args(argv)
    if not args.list_only:
        if not args.change:
            parser.error("--change: required unless --list-only")
        try:
            args.change = json.loads(args.change)
        except json.JSONDecodeError as error:
            parser.error(f"--change: not JSON: {error}")
        if not isinstance(args.change, dict):
            parser.error("--change: must be a JSON object")
    return args


def step_failed(error):
    """The StepFailed in an error: the SDK's task groups wrap what the
    scenario raises in exception groups (`.exceptions`)."""
    if isinstance(error, StepFailed):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = step_failed(inner)
        if found is not None:
            return found
    return None


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    try:
        result = asyncio.run(main(arguments))
    except Exception as error:
        failed = step_failed(error)
        if failed is None:
            raise
        print(json.dumps({"error": str(failed)}))
        sys.exit(1)
    print(json.dumps(result, indent=2))
