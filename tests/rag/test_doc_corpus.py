"""The benchmark corpus builder (benchmarks/doc_corpus.py) and its embedding cache
(benchmarks/corpus_embeddings.py), on small hand-written pages: the real corpus is
built from Debian packages by the benchmark, never in the suite."""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

import numpy as np

from shared.rag.knowledge_base import MAX_CHUNK_WORDS, SourceNode, chunk_node
from tests.fakes import CountingEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import corpus_embeddings
import doc_corpus

PROSE = " ".join(f"Sentence {i} says how the garbage collector frees object number {i}." for i in range(40))

SPHINX_PAGE = f"""<html><body>
<div class="related"><ul><li><a href="x">Navigation text that is not prose</a></li></ul></div>
<div class="body" role="main">
<h1>The gc module<a class="headerlink" href="#gc">¶</a></h1>
<p>This module provides an interface to the optional <code class="docutils">gc</code> garbage collector.
It lets you disable the collector and tune the collection frequency of every generation.</p>
<div class="highlight"><pre>import gc
gc.collect()  # code is not prose</pre></div>
<h2>Functions</h2>
<dl><dt>gc.collect()</dt><dd><p>{PROSE}</p></dd></dl>
<table><tr><td>a table cell that is not prose either, however long it may be in words</td></tr></table>
<h2>Tiny</h2><p>Too short.</p>
</div>
<div class="footer">Copyright footer</div>
</body></html>"""

DOCBOOK_PAGE = """<html><body><div class="navheader">Prev Next</div>
<div class="sect1"><h2 class="title">9.1. Logical Operators</h2>
<p>The usual logical operators are available: AND, OR and NOT. SQL uses a three-valued logic system
with true, false, and null, which represents unknown. Observe the following truth tables carefully.</p>
<ul><li><p>Operators AND and OR are commutative, that is, you can switch the left and right operands
without affecting the result, but the evaluation order of subexpressions is not defined.</p></li></ul>
</div><div class="navfooter">Prev Up Next</div></body></html>"""


def test_prose_is_read_under_its_headings_without_code_tables_or_navigation():
    sections = doc_corpus.page_sections(SPHINX_PAGE)
    assert [s.title for s in sections] == ["The gc module", "Functions"]  # "Tiny" is too short
    intro = sections[0].text
    assert intro.startswith("This module provides an interface to the optional gc garbage collector.")
    text = " ".join(s.text for s in sections)
    for absent in ("gc.collect()  #", "Navigation text", "table cell", "Copyright", "¶"):
        assert absent not in text
    docbook = doc_corpus.page_sections(DOCBOOK_PAGE)
    assert [s.title for s in docbook] == ["9.1. Logical Operators"]
    assert "three-valued logic" in docbook[0].text and "commutative" in docbook[0].text
    assert "Prev" not in docbook[0].text


def test_records_are_migrate_vectors_chunks_and_stay_whole_when_loaded(tmp_path):
    root = tmp_path / "html"
    (root / "library").mkdir(parents=True)
    (root / "library" / "gc.html").write_text(SPHINX_PAGE)
    (root / "sql.html.gz").write_bytes(gzip.compress(DOCBOOK_PAGE.encode()))
    (root / "_static").mkdir()
    (root / "_static" / "skip.html").write_text(SPHINX_PAGE)
    nodes = list(doc_corpus.package_nodes("demo-doc", root))
    assert {n["topic_id"] for n in nodes} == {"demo:library", "demo:main"}
    records = list(doc_corpus.chunk_records(nodes))
    functions = next(n for n in nodes if n["title"] == "Functions")
    expected = chunk_node(SourceNode(functions["id"], functions["title"], functions["content"]))
    got = [r for r in records if r["id"].startswith(functions["id"])]
    assert [r["content"] for r in got] == [c.content for c in expected] and len(got) > 1
    assert all(len(r["content"].split()) <= MAX_CHUNK_WORDS for r in got)


def test_a_query_is_a_held_out_middle_sentence_of_its_chunk():
    record = {"id": "x", "content": PROSE, "topic_id": "t", "title": "T"}
    held = doc_corpus.hold_out(record, random.Random(0))
    assert held is not None
    rest, query = held
    sentences = PROSE.split(". ")
    assert query not in rest["content"] and query.rstrip(".") in PROSE
    assert not PROSE.startswith(query) and not PROSE.endswith(query)  # never the overlap sentences
    assert len(rest["content"]) < len(PROSE) and len(sentences) == 40
    assert doc_corpus.hold_out({**record, "content": "One sentence only."}, random.Random(0)) is None


def test_build_stops_at_the_target_and_every_query_points_at_its_chunk(tmp_path):
    root = tmp_path / "html"
    root.mkdir()
    for i in range(6):
        (root / f"p{i}.html").write_text(SPHINX_PAGE)
    topics, records, queries = doc_corpus.build({"demo-doc": root}, target=10, n_queries=4)
    assert len(records) == 10 and topics == [{"id": "demo:main", "title": "demo:main"}]
    by_id = {r["id"]: r for r in records}
    assert len(queries) == 4 and len({q["node_id"] for q in queries}) == 4
    for q in queries:
        assert q["query"] not in by_id[q["node_id"]]["content"]


def test_embedding_cache_resumes_and_is_never_paired_with_other_texts(tmp_path):
    texts = [f"text number {i}" for i in range(10)]
    crashing = CountingEmbedder(fail_on_call=3)
    try:
        corpus_embeddings.cached_embeddings(tmp_path, texts, crashing, "m", batch=2, checkpoint=2)
    except RuntimeError:
        pass
    indices, partial = corpus_embeddings.load_embeddings(tmp_path, texts)
    assert len(partial) == 4  # two checkpointed batches survive the crash
    resumed = CountingEmbedder()
    vectors = corpus_embeddings.cached_embeddings(tmp_path, texts, resumed, "m", batch=2, checkpoint=2)
    assert len(resumed.texts) == 6 and vectors.shape == (10, 384)
    order = corpus_embeddings.embedding_order(10)
    assert sorted(order.tolist()) == list(range(10))
    assert np.allclose(vectors, CountingEmbedder()([texts[i] for i in order]))
    indices, cached = corpus_embeddings.load_embeddings(tmp_path, texts)
    assert len(cached) == 10 and indices.tolist() == order.tolist()
    assert len(corpus_embeddings.load_embeddings(tmp_path, [*texts[:9], "changed"])[1]) == 0
    assert len(corpus_embeddings.load_embeddings(tmp_path, texts, "another-model")[1]) == 0


def _write_nodes(folder: Path, contents: list[str]) -> list[str]:
    """A corpus folder's nodes.json of these contents; their embedded texts."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        {"id": f"n{i}", "title": "T", "content": c, "topic_id": "t", "kind": "explanation"}
        for i, c in enumerate(contents)
    ]
    (folder / "nodes.json").write_text(json.dumps({"topics": [], "nodes": nodes}))
    return corpus_embeddings.corpus_texts(nodes)


def test_a_bigger_corpus_reuses_the_vectors_of_identical_texts_and_still_resumes(tmp_path):
    small = _write_nodes(tmp_path / "small", [f"chunk {i}" for i in range(8)])
    corpus_embeddings.cached_embeddings(tmp_path / "small", small, CountingEmbedder(), "m")
    # the bigger build: the same records first (one lost a held-out sentence), then new ones
    contents = [f"chunk {i}" for i in range(8)]
    contents[3] = "chunk 3 without its query"
    contents += [f"new chunk {i}" for i in range(6)] + ["a page footer"] * 4
    big = _write_nodes(tmp_path / "big", contents)
    reuse = corpus_embeddings.reusable_vectors(tmp_path / "small", big, "m")
    assert set(reuse) == set(small) - {small[3]}
    assert corpus_embeddings.reusable_vectors(tmp_path / "small", big, "another-model") == {}
    new = set(big) - set(small)
    crashing = CountingEmbedder(fail_on_call=2)
    try:
        corpus_embeddings.cached_embeddings(tmp_path / "big", big, crashing, "m", batch=2, checkpoint=2, reuse=reuse)
    except RuntimeError:
        pass
    assert 0 < len(corpus_embeddings.load_embeddings(tmp_path / "big", big)[1]) < len(big)
    resumed = CountingEmbedder()
    vectors = corpus_embeddings.cached_embeddings(
        tmp_path / "big", big, resumed, "m", batch=2, checkpoint=2, reuse=reuse
    )
    assert set(resumed.texts) <= new and set(crashing.texts) | set(resumed.texts) == new  # reused: never encoded
    assert len(resumed.texts) == len(set(resumed.texts))  # a repeated text is encoded once
    order = corpus_embeddings.embedding_order(len(big))
    assert vectors.dtype == np.float32
    assert np.allclose(vectors, CountingEmbedder()([big[i] for i in order]))  # as if all were embedded here
