"""Language analysis shared by the index and the questions: safe from several threads at once."""

from __future__ import annotations

import random
import string
import threading
from pathlib import Path

from embeddings.language.analysis import german_stemmer, stem, words

ROOT = Path(__file__).resolve().parent.parent


def made_up_words(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    endings = ("ungen", "lichen", "ern", "en", "heit", "keit", "st", "e")
    return [
        "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(3, 9))) + rnd.choice(endings)
        for _ in range(n)
    ]


def test_stemming_from_several_threads_gives_each_word_its_own_stem():
    """The answer workers stem at the same time: one shared Snowball stemmer mixed their words up
    (IndexError in the chat under load, or a stem of another word)."""
    reference = german_stemmer(compiled=False)  # snowballstemmer's Python build: also the stems' reference
    batches = [made_up_words(seed, 3000) for seed in range(4)]
    expected = [[reference.stemWord(w) for w in batch] for batch in batches]
    got: list[list[str] | BaseException] = [[] for _ in batches]
    start = threading.Barrier(len(batches))

    def work(i: int) -> None:
        start.wait()
        try:
            got[i] = [stem(w) for w in batches[i]]
        except BaseException as exc:
            got[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(len(batches)):
        assert not isinstance(got[i], BaseException), got[i]
        assert got[i] == expected[i]


def test_the_compiled_stemmer_gives_the_stems_of_the_python_one():
    """The index's BM25 terms and the questions' must not depend on whether PyStemmer is installed: every word
    of the seeds and of the XQuAD articles, and random strings of German letters, get the same stem."""
    compiled, python = german_stemmer(), german_stemmer(compiled=False)
    assert type(compiled).__module__ != type(python).__module__  # PyStemmer is a dependency: really two stemmers
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "eval" / "xquad-dev").rglob("*.txt"))]
    vocabulary = sorted({w.casefold() for t in texts for w in words(t)})
    rnd = random.Random(11)
    vocabulary += [
        "".join(rnd.choice("aeiouäöüßbcdfghklmnrstz") for _ in range(rnd.randint(1, 16))) for _ in range(3000)
    ]
    assert len(vocabulary) > 9_000
    assert [compiled.stemWord(w) for w in vocabulary] == [python.stemWord(w) for w in vocabulary]


def test_folding_drops_exactly_the_combining_marks_of_the_decomposed_text():
    """The fast fold (ASCII shortcut, one lookup per distinct character) equals the character-by-character
    definition on random text from Latin, Greek, Cyrillic, CJK, ligatures and free combining marks."""
    import random
    import unicodedata

    from embeddings.language.analysis import fold

    def by_character(text: str) -> str:
        text = text.casefold().replace("ß", "ss")
        return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))

    rng = random.Random(1)
    blocks = [(32, 0x2FF), (0x300, 0x36F), (0x370, 0x52F), (0x1E00, 0x1EFF), (0x4E00, 0x4E50), (0xFB00, 0xFB06)]
    for _ in range(5000):
        text = "".join(chr(rng.randint(*rng.choice(blocks))) for _ in range(rng.randint(0, 20)))
        assert fold(text) == by_character(text)
    assert fold("Grüße, Ærø, ŉ") == by_character("Grüße, Ærø, ŉ")
