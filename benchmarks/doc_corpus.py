"""A real benchmark corpus: technical documentation from Debian -doc packages, chunked the
way `shared.rag.migrate_vectors` chunks, with queries written from held-out sentences.

    .venv/bin/python benchmarks/doc_corpus.py --out .state/corpus [--target 100000]

Downloads (`apt-get download`, no install) and unpacks the Debian documentation packages
in `PACKAGES` (Python 3.11, PostgreSQL 15, the Linux kernel, Django, SQLAlchemy,
scikit-learn, Git, the Debian handbook, pandas, Rust; then, for bigger corpora, SciPy,
statsmodels, Astropy, SymPy, Dask, CMake, more Python libraries, LLVM/Clang, GIMP, Octave,
gnuplot, Wireshark, zsh, Exim, Debian's policy and references, Erlang, Racket, GHC,
SageMath, Node.js, Qt 5, Boost, libstdc++, cppreference, GLib, GTK 4, FFmpeg, wxWidgets,
Groovy and the JDK 17 API) into `<out>/debs`, reads every HTML page's prose (paragraphs and
list items under their section headings; code, tables and navigation dropped), makes
one source node per section, and splits each with `shared.rag.knowledge_base.chunk_node`
(<= 180 words, one sentence of overlap). Topics are (package, top-level folder), e.g.
`python3.11:library` or `linux-doc-6.1:networking`.

Queries: for `--queries` chunks picked at random (seeded), one sentence from the middle
of the chunk (never its first or last, which the overlap may repeat in a neighbour) is
removed from the chunk and becomes the query, so the chunk that answers it is known and
the query is not a verbatim substring of anything stored.

Writes `<out>/nodes.json` (the `{"topics": [...], "nodes": [...]}` file
`migrate_vectors --json` reads) and `<out>/queries.json`. Nothing is committed: the
corpus is rebuilt from the packages by this command. Embeddings are cached beside it
by `corpus_embeddings.py` (`<out>/embeddings.npy`).

Packages are read in `PACKAGES` order until the target, so a bigger corpus starts with
the smaller one's records (only the chunks that lost a held-out query sentence differ,
the queries being drawn anew), and new packages go at the end of the list, never
before, or every existing corpus would change. The 300k corpus (~301.7k chunks
available; the last package, the JDK API, is cut at the target), beside the 100k one
and reusing its packages and vectors:

    mkdir -p .state/corpus300k && cp -al .state/corpus/debs/. .state/corpus300k/debs  # or let it download
    nice -n 19 .venv/bin/python benchmarks/doc_corpus.py --out .state/corpus300k --target 300000   # ~10 min
    ONNX_THREADS=1 nice -n 19 .venv/bin/python benchmarks/corpus_embeddings.py \
        --corpus .state/corpus300k --reuse-from .state/corpus --checkpoint 8192     # ~1 h: ~190k to encode

Documentation repeats itself: 7% of the 300k chunks (9% of the 100k) have the title
and text of another chunk (page footers; Rust's std re-exporting core and alloc with
their docs; Exim's chapters under two file names; Node's all.html). A query held out
of one of them has a twin that still contains the query sentence, so retrieval quality
is measured slightly low on those; latency is unaffected.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.rag.knowledge_base import SourceNode, chunk_node  # noqa: E402

PACKAGES = {
    # package -> folder of its HTML inside the unpacked tree; read in this order until
    # the target is reached (prose-heavy manuals first, API references last)
    "python3.11-doc": "usr/share/doc/python3.11/html",
    "postgresql-doc-15": "usr/share/doc/postgresql-doc-15/html",
    "linux-doc-6.1": "usr/share/doc/linux-doc-6.1/html",
    "python-django-doc": "usr/share/doc/python-django-doc/html",
    "python-sqlalchemy-doc": "usr/share/doc/python-sqlalchemy-doc/html",
    "python-sklearn-doc": "usr/share/doc/python-sklearn-doc/html",
    "git-doc": "usr/share/doc/git-doc",
    "debian-handbook": "usr/share/doc/debian-handbook/html/en-US",
    "python-pandas-doc": "usr/share/doc/python-pandas-doc/html",
    "rust-doc": "usr/share/doc/rust-doc/html",
    # added for the 300k corpus (issue 14), after the 100k corpus' packages so that a
    # `--target 100000` build is unchanged; again manuals first, API references last.
    # Each folder is one package's alone (a folder shared by two packages would be read twice).
    "python-scipy-doc": "usr/share/doc/python-scipy-doc/html",
    "python-statsmodels-doc": "usr/share/doc/python-statsmodels-doc/html",
    "python-astropy-doc": "usr/share/doc/python-astropy-doc/html",
    "python-sympy-doc": "usr/share/doc/python-sympy-doc/html",
    "python-dask-doc": "usr/share/doc/python-dask-doc/html",
    "cmake-doc": "usr/share/doc/cmake-data/html",
    "sphinx-doc": "usr/share/doc/sphinx-doc/html",
    "python-pytest-doc": "usr/share/doc/python-pytest-doc/html",
    "python-skimage-doc": "usr/share/doc/python-skimage-doc/html",
    "python-ipython-doc": "usr/share/doc/python-ipython-doc/html",
    "python-xarray-doc": "usr/share/doc/python-xarray-doc/html",
    "python-celery-doc": "usr/share/doc/python-celery-doc/html",
    "python-lxml-doc": "usr/share/doc/python-lxml/html",
    "python-pil-doc": "usr/share/doc/python-pil-doc/html",
    "python-cryptography-doc": "usr/share/doc/python-cryptography-doc/html",
    "llvm-15-doc": "usr/share/doc/llvm-15-doc/html",
    "clang-15-doc": "usr/share/doc/clang-15/html",
    "gimp-help-en": "usr/share/gimp/2.0/help/en",
    "octave-doc": "usr/share/doc/octave/octave.html",
    "gnuplot-doc": "usr/share/doc/gnuplot/htmldocs",
    "wireshark-doc": "usr/share/doc/wireshark",
    "zsh-doc": "usr/share/doc/zsh-common/html",
    "exim4-doc-html": "usr/share/doc/exim4-doc-html",
    "abs-guide": "usr/share/doc/abs-guide/html",
    "debian-policy": "usr/share/doc/debian-policy",
    "debian-reference-en": "usr/share/doc/debian-reference-en/docs",
    "developers-reference": "usr/share/doc/developers-reference/docs",
    "erlang-doc": "usr/share/doc/erlang-doc",
    "racket-doc": "usr/share/doc/racket",
    "ghc-doc": "usr/share/doc/ghc-doc/html",
    "sagemath-doc": "usr/share/doc/sagemath/html/en",
    "nodejs-doc": "usr/share/doc/nodejs/api",
    "qtbase5-doc-html": "usr/share/qt5/doc",
    "libboost1.81-doc": "usr/share/doc/libboost1.81-doc/doc",
    "libstdc++-12-doc": "usr/share/doc/gcc-12-base/libstdc++",
    "cppreference-doc-en-html": "usr/share/cppreference/doc/html/en",
    "libglib2.0-doc": "usr/share/gtk-doc/html",
    "libgtk-4-doc": "usr/share/doc/libgtk-4-doc",
    "ffmpeg-doc": "usr/share/doc/ffmpeg",
    "wx3.2-doc": "usr/share/doc/wx3.2-doc/html",
    "groovy-doc": "usr/share/doc/groovy/gapi",
    "openjdk-17-doc": "usr/share/doc/openjdk-17-jre-headless/api",
}
MIN_SECTION_WORDS = 25  # shorter sections are headings with a line of text: noise as nodes
MIN_QUERY_WORDS = 8
MAX_QUERY_WORDS = 30
_BLOCK_TAGS = {"p", "li", "dd", "dt", "blockquote"}
_SKIP_TAGS = {"pre", "script", "style", "table", "code"}
_SKIP_CLASSES = re.compile(r"\b(sphinxsidebar|related|footer|navheader|navfooter|toc|highlight|headerlink)\b")
_HEADINGS = {"h1", "h2", "h3"}
_SPACE = re.compile(r"\s+")
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.paragraphs)


class ProseParser(HTMLParser):
    """The prose of one documentation page, as sections (heading + paragraphs).

    Code (`pre`, `code` blocks), tables, navigation and sidebars are skipped: what stays
    is the explanatory text a student would be pointed to. Inline `code` inside a
    paragraph is kept (it is how docs name identifiers), only code *blocks* are dropped.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = [Section("")]
        self._stack: list[tuple[str, bool]] = []  # (tag, skipping starts here)
        self._skip = 0
        self._heading: list[str] | None = None
        self._block: list[str] | None = None
        self._block_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        inline_code = tag == "code" and self._block is not None
        skip = (tag in _SKIP_TAGS and not inline_code) or bool(_SKIP_CLASSES.search(classes))
        self._stack.append((tag, skip))
        if skip:
            self._skip += 1
        if self._skip:
            return
        if tag in _HEADINGS:
            self._flush_block()
            self._heading = []
        elif tag in _BLOCK_TAGS:
            if self._block is None:
                self._block = []
                self._block_depth = len(self._stack)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(t == tag for t, _ in self._stack):
            return
        while self._stack:
            open_tag, skip = self._stack.pop()
            if skip:
                self._skip -= 1
            if self._block is not None and len(self._stack) < self._block_depth:
                self._flush_block()
            if open_tag in _HEADINGS and self._heading is not None:
                title = _clean(" ".join(self._heading))
                self.sections.append(Section(title))
                self._heading = None
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._heading is not None:
            self._heading.append(data)
        elif self._block is not None:
            self._block.append(data)

    def _flush_block(self) -> None:
        if self._block is not None:
            text = _clean("".join(self._block))
            if text:
                self.sections[-1].paragraphs.append(text)
        self._block = None
        self._block_depth = 0


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text.replace("¶", "")).strip()


def page_sections(html: str) -> list[Section]:
    """The sections of a page with enough prose to be a knowledge node."""
    parser = ProseParser()
    parser.feed(html)
    parser.close()
    return [s for s in parser.sections if s.title and len(s.text.split()) >= MIN_SECTION_WORDS]


def _read(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return raw.decode("utf-8", errors="replace")


def package_nodes(package: str, html_root: Path) -> Iterator[dict]:
    """Source nodes (the migrate_vectors JSON shape) of one package, in path order."""
    pages = sorted(p for p in html_root.rglob("*") if p.name.endswith((".html", ".html.gz")) and p.is_file())
    for page in pages:
        rel = page.relative_to(html_root).as_posix().removesuffix(".gz")
        if rel.startswith(("_", "genindex", "search", "py-modindex")) or "/_" in rel:
            continue
        folder = rel.split("/")[0] if "/" in rel else "main"
        topic = f"{package.removesuffix('-doc')}:{folder}"
        for i, section in enumerate(page_sections(_read(page))):
            yield {
                "id": f"{package}/{rel}/{i}",
                "title": section.title[:200],
                "content": section.text,
                "topic_id": topic,
                "kind": "explanation",
                "url": rel,
            }


def chunk_records(nodes: Iterable[dict]) -> Iterator[dict]:
    """Each source node split as migrate_vectors splits it; one record per chunk, whose
    content is short enough that migrate_vectors keeps it as one chunk with this id."""
    for node in nodes:
        source = SourceNode(node["id"], node["title"], node["content"], node["topic_id"], node["kind"])
        for chunk in chunk_node(source):
            yield {**node, "id": chunk.id, "content": chunk.content}


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(`'\"])")  # as shared.rag.knowledge_base splits


def hold_out(record: dict, rng: random.Random) -> tuple[dict, str] | None:
    """(the chunk without one middle sentence, that sentence as a query), or None when
    the chunk has no middle sentence of a usable length."""
    sentences = [s.strip() for s in _SENTENCE.split(record["content"]) if s.strip()]
    middle = [
        i for i in range(1, len(sentences) - 1) if MIN_QUERY_WORDS <= len(sentences[i].split()) <= MAX_QUERY_WORDS
    ]
    if not middle:
        return None
    i = rng.choice(middle)
    query = sentences[i]
    content = " ".join(sentences[:i] + sentences[i + 1 :])
    return {**record, "content": content}, query


def build(
    roots: dict[str, Path], target: int, n_queries: int, seed: int = 0
) -> tuple[list[dict], list[dict], list[dict]]:
    """(topics, chunk records, queries): packages in order until `target` chunks."""
    records: list[dict] = []
    for package, root in roots.items():
        for record in chunk_records(package_nodes(package, root)):
            records.append(record)
            if len(records) >= target:
                break
        if len(records) >= target:
            break
    rng = random.Random(seed)
    queries: list[dict] = []
    for index in rng.sample(range(len(records)), k=len(records)):
        if len(queries) >= n_queries:
            break
        held = hold_out(records[index], rng)
        if held is None:
            continue
        records[index], query = held
        queries.append({"query": query, "node_id": records[index]["id"], "topic_id": records[index]["topic_id"]})
    topics = sorted({r["topic_id"] for r in records})
    return [{"id": t, "title": t} for t in topics], records, queries


def fetch_packages(debs: Path) -> dict[str, Path]:
    """Download and unpack the packages once (`apt-get download` needs no root install)."""
    unpacked = debs / "root"
    for package, html in PACKAGES.items():
        if (unpacked / html).is_dir():
            continue
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        for deb in sorted(debs.glob(f"{package}_*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    return {package: unpacked / html for package, html in PACKAGES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / ".state" / "corpus")
    parser.add_argument("--debs", type=Path, help="where packages are downloaded (default <out>/debs)")
    parser.add_argument("--target", type=int, default=100_000, help="chunks in the corpus")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    roots = fetch_packages(args.debs or args.out / "debs")
    topics, records, queries = build(roots, args.target, args.queries, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nodes.json").write_text(json.dumps({"topics": topics, "nodes": records}), encoding="utf-8")
    (args.out / "queries.json").write_text(json.dumps(queries, indent=1), encoding="utf-8")
    words = sum(len(r["content"].split()) for r in records)
    print(
        json.dumps(
            {
                "chunks": len(records),
                "topics": len(topics),
                "queries": len(queries),
                "words": words,
                "out": str(args.out),
            }
        )
    )
    return 0 if len(records) >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
