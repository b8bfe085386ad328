"""Self-checking exercises, one module per notebook (``nb00`` ... ``nb07``).

Each ``check_*`` function looks at a learner's answer (a value, a function, or
the state it left in Redis) and returns a :class:`CheckResult`. In a notebook
the result shows itself as one line: a pass, or a hint that says what to look
at next. Tests use ``result.passed``. A check never raises, whatever it is given.

The checkers are used as ``helpers.check_*``: ``helpers/__init__.py`` re-exports each
module's ``__all__``, the one list of its public names.
"""

from __future__ import annotations

from ._common import CheckResult

__all__ = ["CheckResult"]
