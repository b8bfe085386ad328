"""The course's question bank: recall questions for every notebook, and the drills built on them.

The questions are data, one TOML file per notebook (``helpers/questions/NN.toml``), read by
both the questionnaire at the end of each notebook and the drills, so that the two never
disagree. Each question has an ``id`` (``"03.2"``), a ``kind``, a ``prompt``, an ``answer``,
an ``explanation`` and the ``section`` of its notebook that teaches it. The kinds:

- ``choice``: ``choices`` lists the options; the answer is one of them. A learner may answer
  with the option's text or its letter (``"b"``).
- ``number``: a whole number.
- ``text``: a short answer; ``answer`` lists every accepted spelling (case and surrounding
  spaces do not matter).
- ``predict``: "predict the output, then run the cell". ``setup`` is Python run against a
  real client with a fresh ``key``; the value of its last line is what the server answers,
  and a prediction is checked against *that*, not against the stored ``answer`` (which the
  tests compare with every backend's).

:func:`check_question` checks one answer and never raises; :func:`questionnaire_markdown`
renders a notebook's questions with folded answers; :class:`Drill` draws a short random
drill and scores it.
"""

from __future__ import annotations

import ast
import contextlib
import random
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from ..common import AnyClient, as_text
from ..exercises._common import CheckResult, as_whole_number, hint, passed

__all__ = [
    "Drill",
    "Question",
    "check_question",
    "load_questions",
    "questionnaire_markdown",
    "section_anchor",
]

KINDS = ("choice", "number", "text", "predict")
LETTERS = "abcdefgh"


@dataclass(frozen=True)
class Question:
    """One question of the bank."""

    id: str
    notebook: str
    kind: str
    prompt: str
    answer: Any
    explanation: str
    section: str
    choices: tuple[str, ...] = ()
    setup: str = ""

    @property
    def link(self) -> str:
        """The notebook section that teaches it, as a relative link."""
        return f"{self.notebook}#{section_anchor(self.section)}"

    def shown_answer(self) -> str:
        """The answer as a learner would write it."""
        if self.kind == "choice":
            return f"{LETTERS[self.choices.index(self.answer)]}) {self.answer}"
        if self.kind == "text":
            return str(self.answer[0])
        return str(self.answer)


def section_anchor(heading: str) -> str:
    """The anchor JupyterLab gives a markdown heading: its rendered text with spaces as hyphens."""
    return heading.strip().replace("`", "").replace("*", "").replace(" ", "-")


def _question(notebook: str, raw: Mapping[str, Any]) -> Question:
    kind = raw["kind"]
    if kind not in KINDS:
        raise ValueError(f"{raw.get('id')}: kind must be one of {KINDS}, not {kind!r}")
    return Question(
        id=str(raw["id"]),
        notebook=notebook,
        kind=kind,
        prompt=str(raw["prompt"]).strip(),
        answer=tuple(raw["answer"]) if kind == "text" else raw["answer"],
        explanation=str(raw["explanation"]).strip(),
        section=str(raw["section"]),
        choices=tuple(raw.get("choices", ())),
        setup=str(raw.get("setup", "")).strip(),
    )


@cache
def _bank() -> tuple[Question, ...]:
    questions: list[Question] = []
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            questions += [_question(data["notebook"], raw) for raw in data["questions"]]
    return tuple(questions)


def load_questions(notebooks: str | Iterable[str] | None = None) -> list[Question]:
    """The questions of one notebook (``"03"``), several, or all (None), in bank order."""
    if notebooks is None:
        return list(_bank())
    wanted = {notebooks} if isinstance(notebooks, str) else set(notebooks)
    return [question for question in _bank() if question.id.split(".")[0] in wanted]


def _by_id(question_id: Any) -> Question | None:
    if not isinstance(question_id, str):
        return None
    return next((question for question in _bank() if question.id == question_id.strip()), None)


def run_setup(question: Question, client: AnyClient) -> Any:
    """Run a ``predict`` question's setup on a fresh key and return the value of its last line."""
    key = f"course:question:{uuid.uuid4().hex[:8]}"
    tree = ast.parse(question.setup)
    *body, last = tree.body
    if not isinstance(last, ast.Expr):
        raise ValueError(f"{question.id}: the setup's last line must be an expression")
    namespace: dict[str, Any] = {"client": client, "key": key}
    try:
        exec(compile(ast.Module(body=body, type_ignores=[]), question.id, "exec"), namespace)
        return as_text(eval(compile(ast.Expression(last.value), question.id, "eval"), namespace))
    finally:
        leftovers = list(client.scan_iter(match=f"{key}*"))
        if leftovers:
            client.delete(*leftovers)


def _unquoted(text: str) -> str:
    """Drop one pair of quotes or backticks around an answer: `XADD`, 'always'."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1]
    return text


def _normalised(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    if isinstance(value, (list, tuple)):
        return [_normalised(item) for item in value]
    return value


def check_question(question_id: str, answer: Any, client: AnyClient | None = None) -> CheckResult:
    """Check one answer to one question of the bank. Never raises.

    For a ``predict`` question the setup runs on ``client`` (the course's server when None)
    and the prediction is compared with what the server answered.
    """
    question = _by_id(question_id)
    if question is None:
        return hint(
            "Question", f"there is no question {question_id!r:.40} in the bank (IDs look like '03.2')."
        )
    title = f"Question {question.id}"
    if answer is None:
        return hint(title, "answer is still None.")
    more = f" {question.explanation} (See [{question.section}]({question.link}).)"
    try:
        if question.kind == "choice":
            options = [_normalised(choice) for choice in question.choices]
            letters = list(LETTERS[: len(options)])
            text = None
            if isinstance(answer, (str, bytes)):
                raw = _normalised(as_text(answer))
                text = raw if raw in options else _normalised(_unquoted(as_text(answer)))
            if text is not None and re.fullmatch(r"[a-h]\)?", text):
                text = text.rstrip(")")
            if text in letters:
                text = options[letters.index(text)]
            if text not in options:
                return hint(
                    title, f"{answer!r:.40} is not one of the options: answer with a letter or a text."
                )
            right = text == _normalised(question.answer)
        elif question.kind == "number":
            number = as_whole_number(answer)
            if number is None and isinstance(answer, str):
                # "1700 ms", "5 seconds": the number, with the unit the prompt named
                spelled = re.fullmatch(r"\s*(-?\d+)(?:\.0+)?\s*[a-zA-Z ]*", answer)
                number = int(spelled.group(1)) if spelled else None
            if number is None:
                return hint(title, f"{answer!r:.40} is not a whole number.")
            right = number == question.answer
        elif question.kind == "text":
            accepted = _normalised(list(question.answer))
            right = isinstance(answer, (str, bytes)) and (
                _normalised(as_text(answer)) in accepted
                or _normalised(_unquoted(as_text(answer))) in accepted
            )
        else:
            if client is None:
                from ..connection import connect

                client = connect()
            actual = run_setup(question, client)
            right = _normalised(answer) == _normalised(actual) or (
                as_whole_number(answer) is not None and as_whole_number(answer) == as_whole_number(actual)
            )
            if not right and isinstance(answer, str):
                # "[0, 3]" typed as text: compare the value it spells
                with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
                    right = _normalised(ast.literal_eval(answer.strip())) == _normalised(actual)
                if not right and isinstance(actual, list) and all(isinstance(item, str) for item in actual):
                    # "2-0, 3-0" or "[2-0 3-0]": the same strings, however they were separated
                    parts = [part for part in re.split(r"[\s,\[\]'\"()]+", answer) if part]
                    right = _normalised(parts) == _normalised(actual)
            more = f" The server answered {actual!r}.{more}"
    except Exception as exc:  # a drill never crashes the notebook
        return hint(title, f"could not check that answer ({type(exc).__name__}: {exc}).")
    return passed(title, "right." + more) if right else hint(title, "not quite." + more)


def questionnaire_markdown(notebook: str) -> str:
    """A notebook's questions as markdown, answers folded away: the "Check yourself" section."""
    questions = load_questions(notebook)
    if not questions:
        raise ValueError(f"no questions for notebook {notebook!r}")
    lines = [
        "## Check yourself",
        "",
        "Answer from memory first, then unfold. The same questions come back in the random drills of "
        "[12 · Drills](12-drills.ipynb), which check and score your answers.",
        "",
    ]
    for number, question in enumerate(questions, 1):
        lines.append(f"{number}. {question.prompt}")
        if question.kind == "predict":
            code = "\n".join(f"   {line}" if line else "" for line in question.setup.splitlines())
            lines += ["", "   ```python", code, "   ```"]
        if question.choices:
            lines.append("")
        for letter, choice in zip(LETTERS, question.choices, strict=False):
            lines.append(f"   - {letter}) {choice}")
        lines += [
            "",
            "   <details><summary>Answer</summary>",
            "",
            f"   **{question.shown_answer()}**. {question.explanation}",
            f"   ([{question.section}]({question.link}))",
            "   </details>",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


class Drill:
    """A short random drill over the bank: the questions, then a score.

    ``Drill(size=10, seed=7)`` draws the same ten questions every time (a seed of None draws
    new ones); ``notebooks=["03", "04"]`` limits the draw. :meth:`markdown` shows them;
    :meth:`score` checks a dict of answers by question ID and returns a table.
    """

    def __init__(
        self, size: int = 10, *, seed: int | None = None, notebooks: Iterable[str] | None = None
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a whole number of at least 1, not {size!r}")
        pool = load_questions(None if notebooks is None else list(notebooks))
        if not pool:
            raise ValueError(f"no questions for notebooks {notebooks!r}")
        self.questions = random.Random(seed).sample(pool, min(size, len(pool)))

    def markdown(self) -> str:
        """The drill's questions, numbered by their IDs, without answers."""
        lines = []
        for question in self.questions:
            lines.append(f"- **{question.id}** {question.prompt}")
            if question.kind == "predict":
                lines.append(f"\n  ```python\n  {question.setup.replace(chr(10), chr(10) + '  ')}\n  ```")
            for letter, choice in zip(LETTERS, question.choices, strict=False):
                lines.append(f"  {letter}) {choice}")
        return "\n".join(lines) + "\n"

    def template(self) -> dict[str, None]:
        """A dict to fill in: every question ID of the drill, with None."""
        return {question.id: None for question in self.questions}

    def score(self, answers: Mapping[str, Any], client: AnyClient | None = None) -> pd.DataFrame:
        """One row per question: right or not, and why (with the section to reread).

        The frame's ``attrs["score"]`` is ``"7 / 10"``. Never raises for odd answers.
        """
        if not isinstance(answers, Mapping):
            answers = {}
        rows = []
        for question in self.questions:
            result = check_question(question.id, answers.get(question.id), client)
            rows.append({"question": question.id, "right": result.passed, "why": result.message})
        frame = pd.DataFrame(rows, columns=["question", "right", "why"])
        frame.attrs["score"] = f"{int(frame['right'].sum())} / {len(frame)}"
        return frame


def headings_of(notebook_source: Iterable[str]) -> set[str]:
    """The ``##`` and ``###`` headings of a notebook's markdown cells (for the tests' link check)."""
    found = set()
    for text in notebook_source:
        for line in text.splitlines():
            match = re.match(r"#{2,3} (.+)", line)
            if match:
                found.add(match.group(1).strip())
    return found
