"""Language analysis shared by the index and the questions: safe from several threads at once."""

from __future__ import annotations

import random
import string
import threading

from embeddings.language.analysis import stem


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
    import snowballstemmer

    reference = snowballstemmer.stemmer("german")
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
