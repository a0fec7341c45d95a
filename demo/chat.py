""" "Ask in your own chat": a tiny rule-based host bot that hands data questions to Toucan's MCP tool.

What a host with its own chat does, minus the LLM: the bot answers small talk
itself and routes anything about the data to ``ask_toucan_assistant`` through
``toucan.assistant()`` (the user's own token, so the same RLS as the
dashboards). The page renders Toucan's envelope with ``tc_result_renderer``.
A real host would hand ``assistant.tools()`` to its LLM instead of these rules.
"""

from __future__ import annotations

import re
from typing import Any

from flask_toucan import Toucan, ToucanError

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
