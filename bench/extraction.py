"""Extraction benchmark: our extractor against trafilatura and readability-lxml.

    python bench/extraction.py [--only ours,trafilatura,readability] [--sets scrapinghub,zh,en]
                               [--corpus DIR] [--worst N] [--repeat N]

Sets: the ScrapingHub article-extraction benchmark (181 pages, human ground
truth; scored like upstream: word 4-gram shingles, per-document normalised
TP/FP/FN, macro precision/recall, F1 from the means), the Chinese pages of
corpus/finance-zh with expected text (newspaper4k txt; scored on characters,
since `\\w+` makes a whole Chinese sentence one token) and the English
finance pages of corpus/finance-en/articles (newspaper4k text). Prints
precision, recall, F1, exact-match accuracy and median ms/page per tool per set
(with --repeat N, each page's time is the fastest of N runs: on a noisy
machine that compares the tools rather than the noise).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scraper.extractor import extract  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
_WORD = re.compile(r"\w+")
_CJK_CHAR = re.compile(r"[^\W\d_]|\d", re.U)


def tokens(text: str, chars: bool = False) -> list[str]:
    if chars:  # Chinese: every letter/digit character is a token
        return [c for c in text if c.isalnum()]
    return _WORD.findall(text)


def shingles(toks: list[str], n: int = 4) -> Counter:
    if not toks:
        return Counter()
    if len(toks) < n:
        return Counter([tuple(toks)])
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def doc_counts(truth: str, pred: str, chars: bool = False) -> tuple[float, float, float]:
    t, p = shingles(tokens(truth, chars)), shingles(tokens(pred, chars))
    tp = fp = fn = 0
    for key in t.keys() | p.keys():
        a, b = t.get(key, 0), p.get(key, 0)
        tp += min(a, b)
        fp += max(b - a, 0)
        fn += max(a - b, 0)
    total = tp + fp + fn
    if total == 0:
        return 0.0, 0.0, 0.0
    return tp / total, fp / total, fn / total


def score(pairs: list[tuple[str, str]], chars: bool = False) -> dict[str, float]:
    precisions, recalls, exact = [], [], 0
    for truth, pred in pairs:
        tp, fp, fn = doc_counts(truth, pred, chars)
        if tokens(truth, chars) == tokens(pred, chars):
            exact += 1
        if fp == 0 and fn == 0:
            precisions.append(1.0)
            recalls.append(1.0)
            continue
        if tp + fp > 0:
            precisions.append(tp / (tp + fp))
        if tp + fn > 0:
            recalls.append(tp / (tp + fn))
    p = statistics.mean(precisions) if precisions else 0.0
    r = statistics.mean(recalls) if recalls else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "accuracy": exact / max(len(pairs), 1)}


# ---------------------------------------------------------------------------
# data sets: lists of (name, html bytes, url, expected text, score on chars)

Item = tuple[str, bytes, str, str, bool]


def scrapinghub(corpus: Path) -> list[Item]:
    base = corpus / "article-extraction"
    truth = json.loads((base / "ground-truth.json").read_text("utf-8"))
    items = []
    for key, rec in sorted(truth.items()):
        page = gzip.decompress((base / "html" / f"{key}.html.gz").read_bytes())
        items.append((key[:10], page, rec.get("url", ""), rec["articleBody"], False))
    return items


def finance_zh(corpus: Path) -> list[Item]:
    base = corpus / "finance-zh" / "newspaper4k"
    items = []
    for txt in sorted((base / "txt").glob("*.txt")):
        html_file = base / "html" / f"{txt.stem}.html"
        meta_file = base / "metadata" / f"{txt.stem}.json"
        if not html_file.exists():
            continue
        url = ""
        if meta_file.exists():
            url = json.loads(meta_file.read_text("utf-8")).get("url", "")
        items.append((txt.stem, html_file.read_bytes(), url, txt.read_text("utf-8"), True))
    return items


def finance_en(corpus: Path) -> list[Item]:
    base = corpus / "finance-en" / "articles" / "newspaper4k"
    urls = {}
    tsv = base / "urls.tsv"
    if tsv.exists():
        for line in tsv.read_text("utf-8").splitlines():
            bits = line.split("\t")
            if len(bits) >= 2:
                urls[bits[0]] = bits[1]
    items = []
    for txt in sorted((base / "text").glob("*.txt")):
        html_file = base / "html" / f"{txt.stem}.html"
        expected = txt.read_text("utf-8", "replace")
        if not html_file.exists() or not expected.strip():
            continue  # fool.com2 is a block page with no expected text
        items.append((txt.stem, html_file.read_bytes(), urls.get(txt.stem, ""), expected, False))
    return items


SETS: dict[str, tuple[str, Callable[[Path], list[Item]]]] = {
    "scrapinghub": ("ScrapingHub (181)", scrapinghub),
    "zh": ("finance-zh newspaper4k (chars)", finance_zh),
    "en": ("finance-en newspaper4k", finance_en),
}


# ---------------------------------------------------------------------------
# tools: name -> callable(html bytes, url) -> text


def ours(page: bytes, url: str) -> str:
    return extract(page, url).text


def _trafilatura() -> Callable[[bytes, str], str] | None:
    try:
        import trafilatura
    except ImportError:
        return None

    def run(page: bytes, url: str) -> str:
        return trafilatura.extract(page, url=url, favor_precision=False) or ""

    return run


def _readability() -> Callable[[bytes, str], str] | None:
    try:
        import lxml.html
        from readability import Document
    except ImportError:
        return None

    def run(page: bytes, url: str) -> str:
        summary = Document(page, url=url).summary(html_partial=True)
        tree = lxml.html.fromstring(summary or "<div></div>")
        for br in tree.iter("br"):
            br.tail = "\n" + (br.tail or "")
        blocks = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre",
                  "blockquote", "td", "th"}
        for el in tree.iter():
            if isinstance(el.tag, str) and el.tag in blocks:
                el.tail = "\n" + (el.tail or "")
        return tree.text_content()

    return run


def tools(only: set[str] | None) -> dict[str, Callable[[bytes, str], str]]:
    found: dict[str, Callable[[bytes, str], str]] = {"ours": ours}
    for name, factory in (("trafilatura", _trafilatura), ("readability", _readability)):
        fn = factory()
        if fn is None:
            print(f"[skip] {name}: not installed (pip install {name}"
                  f"{'-lxml' if name == 'readability' else ''})", file=sys.stderr)
            continue
        found[name] = fn
    if only:
        found = {k: v for k, v in found.items() if k in only}
    return found


def timed(fn: Callable[[bytes, str], str], name: str, page: bytes, url: str,
          repeat: int) -> tuple[str, float]:
    """The tool's text for a page and its fastest time (ms) over `repeat` runs."""
    best, got = float("inf"), ""
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        try:
            got = fn(page, url)
        except Exception as exc:  # a crash scores as an empty prediction
            print(f"  ! {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            got = ""
        best = min(best, (time.perf_counter() - started) * 1000)
    return got, best


def run_set(items: list[Item], fn: Callable[[bytes, str], str],
            repeat: int = 1) -> tuple[dict, float, list]:
    pairs, times, per_doc = [], [], []
    for name, page, url, expected, chars in items:
        got, ms = timed(fn, name, page, url, repeat)
        times.append(ms)
        pairs.append((expected, got))
        tp, fp, fn_ = doc_counts(expected, got, chars)
        per_doc.append((name, tp, fp, fn_))
    chars = bool(items and items[0][4])
    return score(pairs, chars), statistics.median(times) if times else 0.0, per_doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--only", default="", help="comma-separated tools")
    parser.add_argument("--sets", default="scrapinghub,zh,en")
    parser.add_argument("--worst", type=int, default=0, help="list our N worst pages per set")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each page N times and keep the fastest")
    args = parser.parse_args(argv)
    only = {t for t in args.only.split(",") if t} or None
    selected = tools(only)
    rows = []
    for key in [s for s in args.sets.split(",") if s]:
        label, loader = SETS[key]
        try:
            items = loader(args.corpus)
        except FileNotFoundError as exc:
            print(f"[skip] {label}: {exc}", file=sys.stderr)
            continue
        for tool, fn in selected.items():
            result, ms, per_doc = run_set(items, fn, args.repeat)
            rows.append((label, len(items), tool, result, ms))
            if args.worst and tool == "ours":
                worst = sorted(per_doc, key=lambda d: d[1])[: args.worst]
                for name, tp, fp, fn_ in worst:
                    print(f"  worst {label}: {name} tp={tp:.2f} fp={fp:.2f} fn={fn_:.2f}",
                          file=sys.stderr)
    header = (f"{'set':32} {'n':>4} {'tool':12} {'P':>6} {'R':>6} {'F1':>6} {'acc':>6} "
              f"{'ms/page':>8}")
    print(header)
    print("-" * len(header))
    for label, n, tool, r, ms in rows:
        print(f"{label:32} {n:>4} {tool:12} {r['precision']:6.3f} {r['recall']:6.3f} "
              f"{r['f1']:6.3f} {r['accuracy']:6.3f} {ms:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
