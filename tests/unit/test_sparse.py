from __future__ import annotations

from rag.sparse import Bm25Encoder, terms


def test_terms_are_stemmed_lowercased_and_without_stopwords() -> None:
    assert terms("The Robots are running") == terms("robot run")
    assert terms("the and of") == []
    assert terms("Version 2 of X") == terms("version 2")


def test_document_weights_saturate_with_term_frequency() -> None:
    encoder = Bm25Encoder()
    once = encoder.encode_document("warehouse robots")
    often = encoder.encode_document("warehouse " * 10 + "robots")
    weight = dict(zip(once.indices, once.values, strict=True))
    heavy = dict(zip(often.indices, often.values, strict=True))
    wid = terms("warehouse")[0]
    assert heavy[wid] > weight[wid]
    assert heavy[wid] < encoder.k1 + 1  # BM25 saturation bound
    assert once.indices == sorted(once.indices)


def test_query_vector_has_unit_weights_per_distinct_term() -> None:
    query = Bm25Encoder().encode_query("robots robots warehouse")
    assert len(query.indices) == 2 and query.values == [1.0, 1.0]
