"""Bring your own chat: Toucan's assistant over MCP, from your backend, as the logged-in user.

Run a sandbox (``python -m flask_toucan.sandbox``, it prints its API key), then::

    TOUCAN_API_KEY=<key> flask --app docs/examples/own_chat.py run

Two ways, both with the user's own token (same attributes, same RLS as the dashboards):

* ``POST /ask`` — direct: the question goes to Toucan's ``ask_toucan_assistant`` tool and
  the ``toucan-mcp-v1`` envelope comes back (``answer``, ``visualizations``, ``threadId``);
* ``POST /llm-chat`` — with your LLM: hand it ``assistant.tools()`` and the ``tool-usage``
  prompt, and run the tool calls it makes with ``assistant.call()``. ``my_llm`` below is a
  stand-in for your LLM SDK's call (it always uses the tool); replace it with yours.

The ready-made ``POST /toucan/assistant/ask`` route (``TOUCAN_ASSISTANT_ROUTE = True``)
does what ``/ask`` does, CSRF-protected and rate-limited, for a browser chat.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask, jsonify, request

from flask_toucan import Toucan

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
    TOUCAN_BASE_URL=os.environ.get("TOUCAN_BASE_URL", "http://127.0.0.1:5100"),
    TOUCAN_API_KEY=os.environ.get("TOUCAN_API_KEY", "set-me"),
    TOUCAN_ASSISTANT_ROUTE=True,
)
toucan = Toucan(app)


@toucan.attribute("organization_id")
def organization(user):
    return user["org"]


@toucan.permissions
def permissions(user):
    # The assistant needs ai.can_query: without it toucan.assistant() raises PermissionDenied
    # and no token is minted.
    return {"dashboard": {"can_view": True}, "ai": {"can_query": True}}


@app.post("/my-login")  # your own login (see own_login.py)
def my_login():
    toucan.login_user({"sub": request.form["username"], "iss": "https://my-app.example", "org": "acme"})
    return jsonify(ok=True)


@app.post("/ask")
def ask():
    body = request.get_json(force=True)
    with toucan.assistant() as assistant:
        # thread_id: only ids Toucan gave this user before are accepted (checked server-side).
        envelope = assistant.ask(body["question"], thread_id=body.get("thread_id"))
    return jsonify(envelope)


def my_llm(system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Stand-in for your LLM: asks for the first tool with the user's question, then relays it."""
    last = messages[-1]
    if last["role"] == "tool":
        return {"text": last["content"]}
    return {"tool_call": {"name": tools[0]["name"], "arguments": {"question": last["content"]}}}


@app.post("/llm-chat")
def llm_chat():
    question = request.get_json(force=True)["question"]
    with toucan.assistant() as assistant:
        system = "You are the portal's assistant.\n" + assistant.prompt("tool-usage")
        tools = assistant.tools()  # name, description, input_schema: what LLM SDKs take
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        for _ in range(4):  # a bounded tool loop
            step = my_llm(system, messages, tools)
            if "tool_call" not in step:
                return jsonify(answer=step["text"])
            result = assistant.call(step["tool_call"]["name"], step["tool_call"]["arguments"])
            messages.append({"role": "tool", "content": result["text"]})
    return jsonify(answer=None)
