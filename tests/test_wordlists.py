"""Word lists live in data files, each entry with where it comes from; none was fitted to a dev question."""

from __future__ import annotations

import pytest

from embeddings.language.wordlists import WordListError, read_list, word_list


def test_word_lists_say_where_each_entry_comes_from(tmp_path):
    for name, package in [("stopwords_de", "embeddings"), ("units", "embeddings"), ("place_words", "rag")]:
        assert word_list(name, package)
    bad = tmp_path / "bad.txt"
    bad.write_text("# a list\nfoo\n", encoding="utf-8")
    with pytest.raises(WordListError, match="no '# source:' line"):
        read_list(bad)


def test_no_entry_fitted_to_a_development_question_is_left():
    places = word_list("place_words", "rag")
    assert not {"online(?!-)", "insel", "island", "im internet"} & set(places)
    media = word_list("media_nouns", "rag") + word_list("media_attributions", "rag")
    assert not {"focus", "times", "schrieb"} & set(media)
