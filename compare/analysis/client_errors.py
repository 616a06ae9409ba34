"""A server that answers HTTP 200 with something other than an OpenAI API response (an HTML login page, plain
text, broken JSON) breaks inside the OpenAI client with an AttributeError or a JSONDecodeError. Such an
exception is the server's fault, not a bug to show as a traceback: it becomes a message naming the fix.
Kept apart from llm.py so the CLI can use it without importing LangChain."""

from __future__ import annotations

from types import TracebackType

from compare.errors import ModelError

#: Packages of the OpenAI client. Not httpx itself: a Chroma server is reached through it too.
LLM_CLIENT_MODULES = ("openai", "langchain_openai")


def raised_in_llm_client(trace: TracebackType | None) -> bool:
    while trace is not None:
        module = str(trace.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in LLM_CLIENT_MODULES:
            return True
        trace = trace.tb_next
    return False


def foreign_reply(exc: BaseException, where: str = "the model server") -> ModelError:
    lines = str(exc).strip().splitlines()
    first = lines[0][:200] if lines else "no message"
    return ModelError(
        f"{where} answered with something that is not an OpenAI-compatible API response "
        f"({type(exc).__name__}: {first})",
        hint="check that the backend URL is the server's API root (e.g. http://host:port/v1) and that no proxy "
        "or login page answers in its place; `curl URL/models` should print JSON",
    )
