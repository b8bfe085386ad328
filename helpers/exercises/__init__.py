"""Self-checking exercises, one module per notebook.

Each ``check_*`` function looks at a learner's answer (a value, a function, or
the state it left in Redis) and returns a :class:`CheckResult`. In a notebook
the result shows itself as one line: a pass, or a hint that says what to look
at next. Tests use ``result.passed``. A check never raises, whatever it is given.
"""

from __future__ import annotations

from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07
from ._common import CheckResult
from .nb00 import *  # noqa: F403
from .nb01 import *  # noqa: F403
from .nb02 import *  # noqa: F403
from .nb03 import *  # noqa: F403
from .nb04 import *  # noqa: F403
from .nb05 import *  # noqa: F403
from .nb06 import *  # noqa: F403
from .nb07 import *  # noqa: F403

__all__ = ["CheckResult"]
__all__ += nb00.__all__
__all__ += nb01.__all__
__all__ += nb02.__all__
__all__ += nb03.__all__
__all__ += nb04.__all__
__all__ += nb05.__all__
__all__ += nb06.__all__
__all__ += nb07.__all__
