"""Expected failures without tracebacks on the terminal: a helper of the run and demo commands.

Why: when a flow fails on purpose (a TkeflowError: missing credentials, a refused pre-flight, an
approval needed, a failed validation), Prefect's flow engine logs "Encountered exception during
execution" with ``logger.exception``, and its console handler prints the whole traceback before the
CLI's one clear line. The traceback says nothing the message does not, and makes an expected answer
look like a crash.

How: a filter on the root logger's console handlers (Prefect attaches its console handler to the
root logger; flow and task run loggers propagate to it) drops the traceback of a record whose
exception is a TkeflowError, and keeps the record's line. Anything else (a real bug: KeyError,
AttributeError, an SDK exception that escaped the client boundary) keeps its traceback. Only the
terminal is affected: the API log handler sits on ``prefect.flow_runs`` and has formatted the record
(traceback included, for the UI) before the root's handlers see it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from tkeflow.errors import TkeflowError


class ExpectedErrorTracebacks(logging.Filter):
    """Strips the traceback of records about an expected (TkeflowError) failure; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TkeflowError):
            record.exc_info = None
            record.exc_text = None
        return True


@contextlib.contextmanager
def no_tracebacks_for_expected_errors() -> Iterator[None]:
    """While a flow runs from the CLI: expected failures print their line, not their traceback."""
    quiet = ExpectedErrorTracebacks()
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    for handler in consoles:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in consoles:
            handler.removeFilter(quiet)
