""" "Ask in your own chat": a tiny rule-based host bot that hands data questions to Toucan's MCP tool.

What a host with its own chat does, minus the LLM: the bot answers small talk
itself and routes anything about the data to ``ask_toucan_assistant`` through
``toucan.assistant()`` (the user's own token, so the same RLS as the
dashboards). The page renders Toucan's envelope with ``tc_result_renderer``.
A real host would hand ``assistant.tools()`` to its LLM instead of these rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask, render_template, request, session

from flask_toucan import Toucan, ToucanError
from flask_toucan import csrf as toucan_csrf
from flask_toucan.state import SESSION_ID

#: Where the chat keeps Toucan's threadId (the extension checks it belongs to the user anyway).
CHAT_THREAD = "demo_chat_thread"

#: Words that make a question a data question (the rest is the bot's own business).
DATA_WORDS = re.compile(
    r"\b(sales?|revenue|total|top|best|products?|regions?|months?|monthly|how much|sum|"
    r"emea|amer|apac|anvils?|rockets?|magnets?|springs?|gadgets?|widgets?|and)\b",
    re.IGNORECASE,
)
GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.IGNORECASE)
HELP = (
    'I am the portal\'s own chat bot. Ask me about your sales ("What are my total sales?", '
    '"Show sales by region", "top 3 products") and I will ask Toucan for you; follow-ups '
    'such as "and by month?" continue the conversation.'
)


def reply(toucan: Toucan, question: str, thread_id: str | None) -> dict[str, Any]:
    """One turn: ``{"by": "bot"|"toucan"|"error", "text", "envelope"?}``."""
    if GREETING.match(question):
        return {"by": "bot", "text": "Hello! " + HELP}
    if not DATA_WORDS.search(question):
        return {"by": "bot", "text": HELP}
    try:
        with toucan.assistant() as assistant:
            envelope = assistant.ask(question, thread_id)
    except ToucanError as exc:
        return {"by": "error", "text": exc.message, "code": getattr(exc, "upstream_code", None) or exc.code}
    return {"by": "toucan", "text": envelope["answer"], "envelope": envelope}


def csrf_ok(app: Flask) -> bool:
    """The chat form carries the same session-bound CSRF token as the logout form."""
    config = app.extensions["toucan"].config
    return toucan_csrf.check_token(
        app, request.form.get("csrf_token"), session.get(SESSION_ID), config.csrf_max_age
    )


def register(app: Flask, toucan: Toucan, login_required: Callable[[Any], Any]) -> None:
    """``/chat``: the page, one question and its answer per POST."""

    @app.route("/chat", methods=["GET", "POST"])
    @login_required
    def chat() -> str | tuple[str, int]:
        turn = None
        if request.method == "POST":
            if not csrf_ok(app):
                return render_template("error.html", message="the form expired; reload the page"), 403
            if request.form.get("action") == "new":
                session.pop(CHAT_THREAD, None)
            else:
                question = (request.form.get("question") or "").strip()[:500]
                if question:
                    turn = {"question": question, **reply(toucan, question, session.get(CHAT_THREAD))}
                    if turn.get("envelope"):
                        session[CHAT_THREAD] = turn["envelope"]["threadId"]
        return render_template("chat.html", turn=turn, in_thread=CHAT_THREAD in session)
