"""Build the claim check's labelled set from data, fit its decision, and report it on held-out articles.

    python scripts/claims_set.py --report-only     # build, cross-validate, print; write nothing
    python scripts/claims_set.py                   # ... and fit on all, write rag/models/claim_check.json
    python scripts/claims_set.py --dump set.jsonl  # also write the labelled set

Faithful claims (label 1), each one sentence cited as ``[1]`` against a German passage:

* ``de-de``: a sentence of a German paragraph of eval/xquad-dev, lightly reworded (a parenthesis
  dropped, a trailing clause cut, two coordinated words swapped), against its own paragraph;
* ``en-de``: the English translation of a German sentence, against a passage of four German
  sentences. The pairs are the whole-sentence entries of Debian's ``trans-de-en`` dictionary (human
  translations). eval/xquad-dev holds no English paragraphs (only English questions), so its
  English side cannot be used; the passages are made of unrelated dictionary sentences, four each.

Wrong claims (label 0) are made from the faithful ones: a number or date changed (``number``), a
name changed for another of the same article (``name``), two names swapped (``swap``), a negation
added or removed (``negation``), and a sentence of another paragraph of the same article cited
instead (``other-paragraph``). A change can leave a claim true by chance (swapping two names in
"A and B met"); such noise is in the figures.

Folds hold out whole articles (an xquad article; a block of dictionary passages). The decision
(rag.llm.claims.ClaimModel) is, per direction, one logistic model over the check's signals per kind of
wrong claim (each told from the faithful claims; the least of their probabilities decides) for claims
that pass its name, date and number gate, with the threshold chosen on inner held-out folds so that at
most ``--max-wrong`` of the wrong claims of each direction are kept. Every random choice takes ``--seed``.
Vectors are cached in .cache/claims/ by model and text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

XQUAD = ROOT / "eval" / "xquad-dev" / "corpus"
DICTIONARY = Path("/usr/share/trans/de-en")
CACHE = ROOT / ".cache" / "claims"
KINDS = ("faithful", "number", "name", "swap", "negation", "other-paragraph")


@dataclass(frozen=True)
class LabelledClaim:
    """One claim cited against one passage, and whether the passage supports it."""

    id: str
    group: str  # what a fold holds out whole: "<source>/<article>"
    direction: str  # "en-de": English claim, German passage; "de-de"
    kind: str  # "faithful", or how the wrong claim was made (KINDS)
    claim: str  # the sentence, with its citation
    passage: str
    title: str

    @property
    def label(self) -> int:
        return int(self.kind == "faithful")


# --- sources ---------------------------------------------------------------------------------------


def xquad_articles(folder: Path = XQUAD) -> list[tuple[str, str, list[str]]]:
    """(file name, title, paragraphs) of each article of the set folder."""
    out = []
    for path in sorted(folder.glob("*.txt")):
        head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        title = head.removeprefix("title:").strip()
        out.append((path.name, title, [p.strip() for p in body.split("\n\n") if p.strip()]))
    return out


def sentences(text: str) -> list[str]:
    from embeddings import split_sentences

    return [text[a:b].strip() for a, b in split_sentences(text) if text[a:b].strip()]


def dictionary_pairs(path: Path = DICTIONARY) -> list[tuple[str, str]]:
    """Whole-sentence (German, English) entries of the Ding dictionary: one sentence each side, no
    alternatives ("hallt/schallt") or notes."""
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            de_groups, en_groups = (x.split(" | ") for x in line.rstrip("\n").split(" :: ", 1))
            for de, en in zip(de_groups, en_groups):
                de, en = de.strip(), en.strip()
                if ";" in de or ";" in en or any(c in de + en for c in "/()[]{}<>…~"):
                    continue
                if not (re.fullmatch(r"[A-ZÄÖÜ][^.!?]*[.!]", de) and re.fullmatch(r"[A-Z][^.!?]*[.!]", en)):
                    continue
                if 7 <= len(de.split()) <= 30 and 6 <= len(en.split()) <= 30:
                    out.append((de, en))
    return list(dict.fromkeys(out))


# --- rewording and wrong claims ---------------------------------------------------------------------


def reword_de(sentence: str, rng: random.Random) -> tuple[str, str]:
    """A light rewording of a German sentence that says nothing it does not: (text, how)."""
    out = re.sub(r"\s*\([^()]*\)", "", sentence)
    if out != sentence and len(out.split()) >= 5:
        return out, "parenthesis dropped"
    head, comma, _ = sentence.partition(", ")
    if comma and len(head.split()) >= 6 and not re.search(r"\b(nicht|kein\w*|nie)\b", sentence[len(head) :]):
        return head.rstrip(".") + ".", "trailing clause cut"
    for m in re.finditer(r"\b([A-ZÄÖÜ]\w+) und ([A-ZÄÖÜ]\w+)\b", sentence):
        # Not a part of a longer name ("Johann Esch und Heinrich Voes"): swapping those would say another thing.
        before, after = sentence[: m.start()].split()[-1:], sentence[m.end() :].split()[:1]
        joined = [w for w in before if w[-1].isalnum()] + after  # "Kapitalismus, Aristokratie und ...": a list
        if not any(w[:1].isupper() for w in joined):
            swapped = f"{m.group(2)} und {m.group(1)}"
            return sentence[: m.start()] + swapped + sentence[m.end() :], "coordination swapped"
    return sentence, "verbatim"


def _number_spans(sentence: str) -> list[tuple[int, int, str]]:
    from rag.llm.claims import number_mentions

    spans = [(a, b, sentence[a:b]) for a, b, _ in number_mentions(sentence)]
    for m in re.finditer(r"\d+(?:[.,]\d+)*", sentence):
        if not any(a <= m.start() < b for a, b, _ in spans):
            spans.append((m.start(), m.end(), m.group(0)))
    return sorted(spans)


def change_number(sentence: str, language: str, rng: random.Random) -> str | None:
    """The sentence with one number (or year) changed to another value."""
    from embeddings.language.wordlists import word_values

    spans = _number_spans(sentence)
    if not spans:
        return None
    a, b, text = rng.choice(spans)
    if re.fullmatch(r"\d+", text):
        v = int(text)
        if 1000 <= v <= 2100:  # a year
            new = v + rng.randint(1, 30) * rng.choice([-1, 1])
        else:
            new = v * rng.choice([2, 3]) + rng.randint(1, 9)
        new_text = str(max(new, 0) if new != v else v + 1)
    elif re.fullmatch(r"\d+(?:[.,]\d+)+", text):
        digits = [m for m in re.finditer(r"\d", text)]
        d = digits[0]
        new_text = text[: d.start()] + str((int(d.group(0)) + rng.randint(1, 8)) % 10 or 1) + text[d.end() :]
    else:
        words = [w for w, n in word_values("number_words").items() if n <= 12]
        half = len(words) // 2  # the file lists German first, then English
        pool = words[:half] if language == "de" else words[half:]
        choices = [w for w in pool if w != text.casefold()]
        new_text = rng.choice(choices)
        if text[:1].isupper():
            new_text = new_text.capitalize()
    return sentence[:a] + new_text + sentence[b:]


def names_in(sentence: str, language: str, known: Sequence[str] = ()) -> list[str]:
    """The names of a sentence: in English its capitalised words but the first; in German those of
    ``known`` (the article's names, :func:`embeddings.language.entities.extract_names`)."""
    tokens = re.findall(r"[^\W\d_][\w'’-]*", sentence)
    if language == "de":
        allowed = set(known)
        return list(dict.fromkeys(t for t in tokens if t in allowed))
    return list(dict.fromkeys(t for t in tokens[1:] if t[0].isupper() and t not in ("I",) and len(t) > 1))


def change_name(sentence: str, names: Sequence[str], pool: Sequence[str], rng: random.Random) -> str | None:
    """The sentence with one of its names replaced by another name of ``pool`` (one it does not hold)."""
    others = [p for p in pool if p not in sentence]
    if not names or not others:
        return None
    old, new = rng.choice(list(names)), rng.choice(others)
    return re.sub(rf"\b{re.escape(old)}\b", new, sentence)


def swap_names(sentence: str, names: Sequence[str], rng: random.Random) -> str | None:
    """The sentence with two names that stand apart (not one name of two words) exchanged."""
    spots = []
    for n in names:
        m = re.search(rf"\b{re.escape(n)}\b", sentence)
        if m:
            spots.append((m.start(), m.end(), n))
    spots.sort()
    pairs = [(x, y) for i, x in enumerate(spots) for y in spots[i + 1 :]
             if sentence[x[1] : y[0]].strip() and len(sentence[x[1] : y[0]].split()) >= 2 and x[2] != y[2]]  # fmt: skip
    if not pairs:
        return None
    (a1, b1, n1), (a2, b2, n2) = rng.choice(pairs)
    return sentence[:a1] + n2 + sentence[b1:a2] + n1 + sentence[b2:]


# --- the set ---------------------------------------------------------------------------------------


def _cite(sentence: str) -> str:
    return re.sub(r"[.!]?$", " [1].", sentence.rstrip(), count=1)


def _wrong(base: LabelledClaim, text: str, language: str, names, pool, rng, other: str | None) -> list[LabelledClaim]:
    from rag.llm.claims import turn_negation

    made = {
        "number": change_number(text, language, rng),
        "name": change_name(text, names, pool, rng),
        "swap": swap_names(text, names, rng),
        "negation": turn_negation(text, language),
        "other-paragraph": other,
    }
    out = []
    for kind, changed in made.items():
        if changed and changed.strip() != text.strip():
            out.append(LabelledClaim(f"{base.id}-{kind}", base.group, base.direction, kind, _cite(changed),
                                     base.passage, base.title))  # fmt: skip
    return out


def build(seed: int = 13, dictionary_sentences: int = 1600, dictionary: Path = DICTIONARY) -> list[LabelledClaim]:
    """The labelled set (see the module doc); the same ``seed`` gives the same set."""
    from embeddings.language.entities import extract_names

    rng = random.Random(seed)
    out: list[LabelledClaim] = []
    for name, title, paragraphs in xquad_articles():
        article_names = list(extract_names(" ".join(paragraphs)))
        split = [sentences(p) for p in paragraphs]
        for i, (paragraph, sents) in enumerate(zip(paragraphs, split)):
            others = [s for j, ss in enumerate(split) if j != i for s in ss if len(s.split()) >= 5]
            for k, sentence in enumerate(sents):
                if len(sentence.split()) < 5:
                    continue
                text, _ = reword_de(sentence, rng)
                base = LabelledClaim(f"xquad/{name}/{i}/{k}", f"xquad/{name}", "de-de", "faithful", _cite(text),
                                     paragraph, title)  # fmt: skip
                names = names_in(text, "de", article_names)
                pool = [n for n in article_names if n not in names]
                other = rng.choice(others) if others else None
                out += [base, *_wrong(base, text, "de", names, pool, rng, other)]
    if dictionary.is_file() and dictionary_sentences:
        pairs = dictionary_pairs(dictionary)
        rng.shuffle(pairs)
        # Half of them with a digit or a name in the English side, so that numbers and names get changed.
        marked = [p for p in pairs if re.search(r"\d|\s[A-Z]", p[1])]
        plain = [p for p in pairs if p not in set(marked)]
        chosen = marked[: dictionary_sentences // 2]
        chosen += plain[: dictionary_sentences - len(chosen)]
        rng.shuffle(chosen)
        english_names = sorted({n for _, en in pairs for n in names_in(en, "en")})
        passages = [chosen[i : i + 4] for i in range(0, len(chosen) - 3, 4)]
        for p, group in enumerate(passages):
            article = f"ding/{p // 8}"  # eight passages make an "article"; folds hold them out together
            block = passages[(p // 8) * 8 : (p // 8) * 8 + 8]
            passage = " ".join(de for de, _ in group)
            for k, (_, en) in enumerate(group):
                base = LabelledClaim(f"ding/{p}/{k}", article, "en-de", "faithful", _cite(en), passage, "")
                names = names_in(en, "en")
                others = [e for g in block if g is not group for _, e in g]
                other = rng.choice(others) if others else None
                out += [base, *_wrong(base, en, "en", names, english_names, rng, other)]
    return out


# --- features with cached vectors ------------------------------------------------------------------


class VectorCache:
    """Query and passage vectors of texts, kept in .cache/claims/ by model and text (npz, no pickle)."""

    def __init__(self, embedder, model: str, folder: Path = CACHE) -> None:
        self.embedder = embedder
        self.path = folder / f"vectors-{hashlib.sha256(model.encode()).hexdigest()[:12]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False
        if self.path.is_file():
            data = np.load(self.path, allow_pickle=False)
            self.vectors = dict(zip((str(k) for k in data["keys"]), data["vectors"]))

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()[:24]

    def embed(self, kind: str, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self.key(kind, t) not in self.vectors))
        if missing:
            fn = self.embedder.embed_queries if kind == "query" else self.embedder.embed_documents
            for t, v in zip(missing, np.asarray(fn(missing)), strict=True):
                self.vectors[self.key(kind, t)] = v
            self.dirty = True
        return np.stack([self.vectors[self.key(kind, t)] for t in texts])

    def prefetch(self, kind: str, texts: Sequence[str], batch: int = 256) -> None:
        texts = list(dict.fromkeys(texts))
        todo = [t for t in texts if self.key(kind, t) not in self.vectors]
        for i in range(0, len(todo), batch):
            self.embed(kind, todo[i : i + batch])
            print(f"  embedded {kind} {min(i + batch, len(todo))}/{len(todo)}", file=sys.stderr)
            self.save()

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)
        self.dirty = False


def features(claims: Sequence[LabelledClaim], cache: VectorCache | None) -> tuple[np.ndarray, np.ndarray, list]:
    """Per claim, whether it passes the check's gate, its row of the decision's features (NaN if not), and
    the check (its reason when the gate removed it)."""
    from embeddings import split_sentences
    from rag.answering.text import detect_language
    from rag.llm.claims import CLAIM_FEATURES, ClaimChecker, strip_citations, turn_negation
    from rag.types import Citation

    embed = {}
    if cache is not None:
        texts = [strip_citations(c.claim) for c in claims]
        turned = (turn_negation(t, detect_language(t)) for t in texts)
        cache.prefetch("query", texts + [t for t in turned if t])
        passages = {c.passage for c in claims}
        cache.prefetch("passage", [c_[a:b] for c_ in passages for a, b in split_sentences(c_)])
        embed = {
            "embed_queries": lambda t: cache.embed("query", t),
            "embed_documents": lambda t: cache.embed("passage", t),
        }
    passed = np.zeros(len(claims), dtype=bool)
    rows = np.full((len(claims), len(CLAIM_FEATURES)), np.nan)
    checkers: dict[tuple[str, str], ClaimChecker] = {}
    keep_all = blank_model()  # every claim the gate passes gets its row; nothing is decided here
    checks = []
    for i, c in enumerate(claims):
        checker = checkers.get((c.title, c.passage))
        if checker is None:
            citation = Citation(1, "p.txt", c.title, c.passage, 0, len(c.passage), 1.0, None)
            checker = checkers[(c.title, c.passage)] = ClaimChecker([citation], model=keep_all, **embed)
        check, row = checker.assess(c.claim)
        checks.append(check)
        if row is not None:
            passed[i] = True
            rows[i] = row
        if i % 2000 == 0:
            print(f"  checked {i}/{len(claims)}", file=sys.stderr)
    if cache is not None:
        cache.save()
    return passed, rows, checks


def blank_model():
    """A decision that keeps every claim the gate passes (collecting the signals needs none)."""
    from rag.answering.scorer import Logistic
    from rag.llm.claims import CLAIM_FEATURES, DIRECTIONS, ClaimModel

    n = len(CLAIM_FEATURES)
    keep = Logistic(CLAIM_FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0)
    return ClaimModel({d: {"wrong": keep} for d in DIRECTIONS}, dict.fromkeys(DIRECTIONS, 0.0), {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--max-wrong", type=float, default=0.05, help="share of wrong claims kept allowed, per direction")
    ap.add_argument("--spread", type=float, default=1.0,
                    help="standard errors of the share kept the threshold stays below --max-wrong by")  # fmt: skip
    ap.add_argument("--dictionary-sentences", type=int, default=1600)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--dump", type=Path, help="write the labelled set here (JSONL)")
    ap.add_argument("--json", type=Path, help="write the held-out figures here")
    from rag.llm.claims import MODEL_FILE

    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    args = ap.parse_args(argv)

    from embeddings import DEFAULT_MODEL
    from embeddings.model.encoder import load_embedder
    from rag.fitting import claim_cross_validate, claim_figures, fit_claim_model
    from rag.llm.claims import CLAIM_FEATURES, ClaimModel, direction

    claims = build(args.seed, args.dictionary_sentences)
    if args.dump:
        lines = (json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in claims)
        args.dump.write_text("".join(lines), encoding="utf-8")
    counts: dict[str, int] = {}
    for c in claims:
        counts[f"{c.direction} {c.kind}"] = counts.get(f"{c.direction} {c.kind}", 0) + 1
    print("set: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    embedder = load_embedder(DEFAULT_MODEL)
    passed, rows, _ = features(claims, VectorCache(embedder, DEFAULT_MODEL))
    labels = np.array([c.label for c in claims])
    groups = [c.group for c in claims]
    # The decision's threshold per direction: "cross" for an English claim on a German passage, "same" else.
    slices = [direction(c.direction.split("-")[0] != c.direction.split("-")[1]) for c in claims]
    kinds = [c.kind for c in claims]
    kept, thresholds = claim_cross_validate(rows, passed, labels, groups, slices, args.folds, args.seed, args.l2,
                                            args.max_wrong, kinds, args.spread)  # fmt: skip
    report = claim_figures(claims, passed, kept)
    per_fold = "; ".join(", ".join(f"{k} {v:.3f}" for k, v in t.items()) for t in thresholds)
    lines = [f"held-out folds ({args.folds}, by article); thresholds per fold: {per_fold}"]
    lines += [f"  {name:<28} kept {f['kept']}/{f['n']} = {f['share']:.3f}  (gate passed {f['passed']})"
              for name, f in report.items()]  # fmt: skip
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.report_only:
        return 0
    models, chosen = fit_claim_model(rows, passed, labels, groups, slices, args.folds, args.seed + 1, args.l2,
                                       args.max_wrong, kinds, args.spread)  # fmt: skip
    provenance = {
        "script": "scripts/claims_set.py",
        "data": {"de-de": "eval/xquad-dev/corpus", "en-de": f"{DICTIONARY} (whole-sentence entries)"},
        "seed": args.seed,
        "folds": args.folds,
        "l2": args.l2,
        "dictionary_sentences": args.dictionary_sentences,
        "max_wrong": args.max_wrong,
        "spread": args.spread,
        "decision": "per direction, one logistic model per kind of wrong claim (at least as many as signals); "
        "the least",
        "threshold": "the lowest keeping at most max_wrong, less spread standard errors, of each direction's wrong "
        "claims on inner held-out folds",
        "fold_thresholds": [{k: round(v, 4) for k, v in t.items()} for t in thresholds],
        "held_out": report,
    }
    assert all(m.features == CLAIM_FEATURES for detectors in models.values() for m in detectors.values())
    ClaimModel(models, chosen, provenance).save(args.out)
    print(f"wrote {args.out} (thresholds {', '.join(f'{k} {v:.3f}' for k, v in chosen.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
