"""The question bank (helpers/questions/*.toml): well formed, linked to real sections, true on every
backend (predict questions), in sync with each notebook's "Check yourself" cell; checks and drills."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis

import helpers
from helpers.questions import KINDS, LETTERS, Question, headings_of, load_questions, run_setup

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NUMBERS = [f"{n:02d}" for n in range(1, 12)]


def _notebook(question: Question) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads((NOTEBOOKS / question.notebook).read_text())
    return notebook


def _markdown(notebook: dict[str, Any]) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"]


def _right_answer(question: Question) -> Any:
    return question.answer[0] if question.kind == "text" else question.answer


@pytest.mark.parametrize("number", NUMBERS)
def test_each_notebook_has_five_to_eight_well_formed_questions(number: str) -> None:
    questions = load_questions(number)
    assert 5 <= len(questions) <= 8, (number, len(questions))
    assert len({q.id for q in questions}) == len(questions)
    (notebook_file,) = {q.notebook for q in questions}
    assert notebook_file.startswith(f"{number}-") and (NOTEBOOKS / notebook_file).exists()
    headings = headings_of(_markdown(_notebook(questions[0])))
    for question in questions:
        assert re.fullmatch(rf"{number}\.\d+", question.id), question.id
        assert question.kind in KINDS and question.prompt and question.explanation, question.id
        assert question.section in headings, (
            f"{question.id}: no section {question.section!r} in {notebook_file}"
        )
        if question.kind == "choice":
            assert 3 <= len(question.choices) <= len(LETTERS), question.id
            assert len(set(question.choices)) == len(question.choices) and question.answer in question.choices
        elif question.kind == "number":
            assert isinstance(question.answer, int) and not isinstance(question.answer, bool), question.id
        elif question.kind == "text":
            assert question.answer and all(isinstance(a, str) and a for a in question.answer), question.id
        else:
            assert question.setup, question.id


def test_the_bank_is_big_enough_for_drills() -> None:
    assert len(load_questions()) >= 55
    assert sum(q.kind == "predict" for q in load_questions()) >= 8


def test_every_predict_question_is_what_this_backend_answers(client: redis.Redis) -> None:
    for question in load_questions():
        if question.kind == "predict":
            actual = run_setup(question, client)
            assert helpers.check_question(question.id, question.answer, client).passed, (question.id, actual)
    assert not list(client.scan_iter(match="course:question:*"))


def test_right_answers_pass_and_wrong_ones_do_not() -> None:
    for question in load_questions():
        if question.kind == "predict":
            continue  # checked against a server above
        assert helpers.check_question(question.id, _right_answer(question)).passed, question.id
        wrong: Any = {"choice": None, "number": -12345, "text": "certainly not this"}[question.kind]
        if question.kind == "choice":
            wrong = next(choice for choice in question.choices if choice != question.answer)
            letter = LETTERS[question.choices.index(question.answer)]
            assert helpers.check_question(question.id, letter.upper()).passed, question.id
        result = helpers.check_question(question.id, wrong)
        assert not result.passed and question.link in result.message, question.id


def test_odd_answers_and_unknown_ids_get_hints(client: redis.Redis) -> None:
    for question_id, answer, words in [
        ("99.9", "a", "no question '99.9'"),
        (None, "a", "no question None"),
        ("01.1", None, "still None"),
        ("01.1", object(), ""),
        ("01.1", ["a"], ""),
    ]:
        result = helpers.check_question(question_id, answer, client)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (question_id, answer, result)


@pytest.mark.parametrize("number", NUMBERS)
def test_each_notebook_ends_with_its_questionnaire(number: str) -> None:
    (question, *_) = load_questions(number)
    cells = _notebook(question)["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    expected = helpers.questionnaire_markdown(number)
    assert expected.rstrip("\n") in [source.rstrip("\n") for source in sources], (
        f"{question.notebook}: its 'Check yourself' cell differs from the bank; regenerate it"
    )
    assert (
        sources.index(next(s for s in sources if s.rstrip("\n") == expected.rstrip("\n"))) >= len(cells) - 3
    )


def test_a_drill_is_reproducible_and_scores_itself() -> None:
    first, again = helpers.Drill(size=10, seed=7), helpers.Drill(size=10, seed=7)
    assert [q.id for q in first.questions] == [q.id for q in again.questions] and len(first.questions) == 10
    assert set(first.template()) == {q.id for q in first.questions}
    for question in first.questions:
        assert question.id in first.markdown()
    limited = helpers.Drill(size=100, seed=1, notebooks=["03"])
    assert {q.id.split(".")[0] for q in limited.questions} == {"03"}
    answers = {q.id: _right_answer(q) for q in limited.questions if q.kind != "predict"}
    frame = limited.score(answers)
    right = sum(q.kind != "predict" for q in limited.questions)
    assert frame.attrs["score"].startswith(f"{right} / ") or right == 0
    assert helpers.Drill(size=3, seed=2).score("nonsense").attrs["score"] == "0 / 3"  # type: ignore[arg-type]
    for bad in (0, -1, True, "10"):
        with pytest.raises(ValueError, match="size must be a whole number"):
            helpers.Drill(size=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no questions"):
        helpers.Drill(notebooks=["42"])


def test_answers_in_the_forms_learners_type_them() -> None:
    for question_id, answer in [
        ("02.6", "a)"),  # a choice as shown_answer prints it
        ("08.1", "'always'"),  # quoted, as the exercise wrote it
        ("05.2", "`MINID`"),
        ("01.4", "3400-1"),  # another right answer
        ("09.1", "1700 ms"),  # a number with its unit
        ("06.1", "2-0, 3-0"),  # a list of IDs, however separated
        ("06.1", "['2-0', '3-0']"),
    ]:
        assert helpers.check_question(question_id, answer).passed, (question_id, answer)
    for question_id, answer in [("09.1", "17 apples 3"), ("06.1", "2-0"), ("02.6", "z)")]:
        assert not helpers.check_question(question_id, answer).passed, (question_id, answer)
