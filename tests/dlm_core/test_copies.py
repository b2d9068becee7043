"""Finishing words copied from the prompt only in part, on token ids (a hand-made vocabulary)."""

from __future__ import annotations

from dlm_core.constraints import Constraints
from dlm_core.copies import PromptWords, word_spans

TEXTS = [" My", " name", " is", " Mar", "ig", "old", ".", " You", "'re", ",", " of", " course", " ",
         "1", "2", "0", "3", " love", " lovely", ":", "5", " The", " result", " John", "son", "on", "ld",
         "gi", " Johnsons"]  # fmt: skip
ID = {t: i for i, t in enumerate(TEXTS)}


def ids(*tokens: str) -> list[int]:
    return [ID[t] for t in tokens]


def text(token_ids: list[int]) -> str:
    return "".join(TEXTS[i] for i in token_ids)


PROMPT = ids(" My", " name", " is", " Mar", "ig", "old", ".", " ", "1", "2", "0", " ", "1", "3", "3", ".",
             " John", "son", " lovely", " ", "2", ":", "0", "5")  # fmt: skip


def finish(*reply: str, open_end: bool = False) -> str:
    return text(PromptWords.of(PROMPT, TEXTS).finish(ids(*reply), TEXTS, open_end=open_end))


def test_words_are_runs_of_letters_and_digits() -> None:
    spans = word_spans(ids(" You", "'re", " Mar", "ig", ",", " ", "1", "2", ".", " ", ":"), TEXTS)
    assert spans == [(0, 1), (2, 4), (5, 8)]  # "'re", ",", ".", a lone space and ":" are no words


def test_a_cut_copy_is_finished() -> None:
    assert finish(" You", "'re", " Mar", "ig", ",", " of", " course", ".") == " You're Marigold, of course."
    assert finish(" John", ".") == " Johnson."


def test_numbers_are_finished_only_when_one_way_fits() -> None:
    assert finish(" The", " result", " is", " ", "1", "2", ".") == " The result is 120."
    # " 1" starts both 120 and 133: no guess.
    assert finish(" The", " result", " is", " ", "1", ".") == " The result is 1."
    # A whole prompt word stays as it is, also where it starts a longer one (0 of 05, 2 of 2:05).
    assert finish(" ", "2", ":", "0", "5", ".") == " 2:05."


def test_words_that_only_look_like_a_prefix_are_left_alone() -> None:
    # " love" is its own token, not the start of " lovely"'s tokens.
    assert finish(" My", " love", ".") == " My love."


def test_a_copy_that_runs_on_with_its_own_ending_is_cut_back() -> None:
    # Two positions copied the same last piece: "Marigoldold", "Johnsonon", "Johnsonsonson".
    assert finish(" My", " name", " is", " Mar", "ig", "old", "old", ".") == " My name is Marigold."
    assert finish(" John", "son", "on", ".") == " Johnson."
    assert finish(" John", "son", "son", "son", ",") == " Johnson,"
    assert finish(" Mar", "ig", "old", "ld") == " Marigold"
    # Anything else after a whole prompt word is not a run-on ("Marigoldgi"), nor a word of its own.
    assert finish(" Mar", "ig", "old", "gi") == " Marigoldgi"
    assert finish(" Johnsons") == " Johnsons"


def test_a_copied_word_said_twice_in_a_row_is_said_once() -> None:
    assert (
        finish(" My", " name", " is", " Mar", "ig", "old", " Mar", "ig", "old", ".")
        == " My name is Marigold."
    )
    assert finish(" John", "son", " John", "son", " John", "son", ",") == " Johnson,"
    assert finish(" Mar", "ig", " Mar", "ig", "old") == " Marigold"  # finished first, then said once
    # Only whole prompt words, only side by side, and an open end waits for its block to finish.
    assert finish(" The", " The", " result") == " The The result"
    assert finish(" John", "son", ",", " John", "son") == " Johnson, Johnson"
    assert finish(" John", "son", " John", "son", open_end=True) == " Johnson Johnson"


def test_the_last_word_of_an_unfinished_block_is_left_for_the_next() -> None:
    assert finish(" Mar", "ig", open_end=True) == " Marig"
    assert finish(" Mar", "ig", open_end=False) == " Marigold"


def test_the_constraint_merges_as_an_or() -> None:
    assert Constraints().merged(Constraints(finish_copies=True)).finish_copies
    assert not Constraints().merged(Constraints()).finish_copies
