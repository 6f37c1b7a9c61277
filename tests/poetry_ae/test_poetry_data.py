"""Document 002's data (lightning_modules/poetry_ae/data): vectors, poems, chunks, sequences, splits, refusals."""

from __future__ import annotations

import json
import re
from functools import partial

import numpy as np
import pytest
import torch

from lightning_modules.poetry_ae.data import (
    VECTOR_SOURCES,
    ChunkConfig,
    DataFileError,
    PoemArrays,
    PoetryDataModule,
    WordVectors,
    build_poem_arrays,
    chunk_tokens,
    embed_chunks,
    fortunes_poems,
    glove50_vectors,
    is_word,
    load_poems,
    load_vectors,
    minilm_vectors,
    read_glove_text,
    read_poems_json,
    read_poems_text,
    tokenize,
)
from projects.common.data_cache import cached_arrays


@pytest.fixture(scope="module")
def minilm() -> WordVectors:
    return minilm_vectors()


@pytest.fixture(scope="module")
def glove50() -> WordVectors:
    return glove50_vectors()


@pytest.fixture(scope="module")
def fortunes() -> list[str]:
    return fortunes_poems()


def _tiny_vectors() -> WordVectors:
    words = ("the", "night", "is", "dark", "love")
    return WordVectors("tiny", words, np.arange(len(words) * 3, dtype=np.float32).reshape(len(words), 3) + 1)


def _one_line(exc: pytest.ExceptionInfo, path) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message and "allowed:" in message


# --- word vectors ------------------------------------------------------------------------------

def test_minilm_table_is_384d_whole_words(minilm):
    assert minilm.dim == 384 and minilm.vectors.dtype == np.float32
    assert 20_000 < len(minilm) < 30_522
    for word in ("love", "night", "the"):
        assert word in minilm.index
    assert not any(w.startswith("##") or w.startswith("[") or not is_word(w) for w in minilm.words)
    x, found = minilm.lookup(["love", "##ing", "[CLS]"])
    assert found.tolist() == [True, False, False] and not x[1:].any()


def test_glove50_table_is_50d(glove50):
    assert glove50.dim == 50 and glove50.vectors.shape == (len(glove50), 50)
    assert glove50.words[0] == "the" and "," not in glove50.index and "night" in glove50.index


@pytest.mark.parametrize("table", ["minilm", "glove50"])
def test_nearest_of_own_vector_is_the_word(table, request):
    vectors: WordVectors = request.getfixturevalue(table)
    words = ["love", "night", "the", "moon", "river"]
    x, found = vectors.lookup(words)
    assert found.all()
    assert vectors.nearest(x) == words
    top = vectors.nearest(x, k=3)
    assert [t[0] for t in top] == words and all(len(t) == 3 for t in top)


def test_nearest_works_in_blocks_and_refuses_bad_shapes(monkeypatch):
    import lightning_modules.poetry_ae.data.vectors as module

    tiny = _tiny_vectors()
    x, _ = tiny.lookup(list(tiny.words))
    want = tiny.nearest(x)
    monkeypatch.setattr(module, "_NEAREST_BLOCK", 5)  # one row per block
    assert WordVectors("tiny", tiny.words, tiny.vectors).nearest(x) == want
    with pytest.raises(ValueError, match=r"vectors have shape \(5, 2\); allowed: \(n, 3\)"):
        tiny.nearest(x[:, :2])
    with pytest.raises(ValueError, match="k=0 is not allowed"):
        tiny.nearest(x, k=0)


def test_word_vectors_round_trip_and_refusals():
    tiny = _tiny_vectors()
    back = WordVectors.from_arrays(tiny.to_arrays())
    assert back.name == "tiny" and back.words == tiny.words and np.array_equal(back.vectors, tiny.vectors)
    with pytest.raises(ValueError, match="duplicate"):
        WordVectors("dup", ("a", "a"), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="float32"):
        WordVectors("bad", ("a",), np.zeros((1, 3)))


def test_read_glove_text(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 0.3\nnight -1 0 1e-3\n, 1 1 1\nlove 2 2 2\n")
    wv = read_glove_text(path)
    assert wv.words == ("the", "night", "love") and wv.dim == 3  # "," is not a word
    np.testing.assert_allclose(wv.vectors[1], [-1, 0, 1e-3])
    assert read_glove_text(path, max_words=2).words == ("the", "night")
    assert load_vectors("minilm", path).name == str(path)


@pytest.mark.parametrize("text, problem", [
    ("the 0.1 0.2 0.3\nnight 1 2\n", "line 2 has 3 values, expected 4"),
    ("the 0.1 0.2 0.3\nnight 1 two 3\n", "line 2: 'two' is not a number"),
    ("", "is empty"),
    ("the 1 2\n\nnight 3 4\n", "line 2 is empty"),
    ("the\n", "line 1 has 1 value"),
    ("the 1 nan\n", "line 1 has a non-finite value"),
    ("123 1 2\n", "no whole words"),
])
def test_read_glove_text_refuses_malformed_files(tmp_path, text, problem):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataFileError, match=re.escape(problem)) as exc:
        read_glove_text(path)
    _one_line(exc, path)


def test_read_glove_text_refuses_missing_and_binary(tmp_path):
    with pytest.raises(DataFileError, match="no such file") as exc:
        read_glove_text(tmp_path / "nope.txt")
    _one_line(exc, tmp_path / "nope.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00 1 2\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_glove_text(binary)


def test_load_vectors_refuses_unknown_source():
    assert VECTOR_SOURCES == ("minilm", "glove50")
    with pytest.raises(ValueError, match=r"source='glove300' is not allowed; allowed: minilm, glove50"):
        load_vectors("glove300")


# --- poems -------------------------------------------------------------------------------------

def test_read_poems_text_blank_lines_and_percent(tmp_path):
    blank = tmp_path / "poems.txt"
    blank.write_text("Roses are red\nviolets blue\n\n  \nThe night is dark\n\n\n")
    assert read_poems_text(blank) == ["Roses are red\nviolets blue", "The night is dark"]
    percent = tmp_path / "poems2.txt"
    percent.write_text("One verse\n\nstill the first\n%\nThe second\n%\n")
    assert read_poems_text(percent) == ["One verse\n\nstill the first", "The second"]
    assert load_poems(str(percent)) == read_poems_text(percent)


@pytest.mark.parametrize("data", [
    ["a poem", "another poem"],
    [{"text": "a poem"}, {"poem": "another poem", "title": "x"}],
    {"poems": ["a poem", "another poem"]},
    {"poems": [{"text": "a poem"}, {"text": "another poem"}]},
])
def test_read_poems_json_accepted_forms(tmp_path, data):
    path = tmp_path / "poems.json"
    path.write_text(json.dumps(data))
    assert read_poems_json(path) == ["a poem", "another poem"]
    assert load_poems(path) == ["a poem", "another poem"]


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "item 0 is 1"),
    ('[{"title": "x"}]', 'item 0 is {"title": "x"}'),
    ('{"verses": []}', 'no "poems"'),
    ('"a poem"', "holds a JSON str, not a list"),
    ("[\"a\",", "is not JSON"),
    ('["", "  "]', "holds no poems"),
    ("[]", "holds no poems"),
])
def test_read_poems_json_refusals(tmp_path, text, problem):
    path = tmp_path / "poems.json"
    path.write_text(text)
    with pytest.raises(DataFileError, match=re.escape(problem)) as exc:
        load_poems(path)
    _one_line(exc, path)


def test_read_poems_text_refusals(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n%\n")
    with pytest.raises(DataFileError, match="holds no poems") as exc:
        read_poems_text(empty)
    _one_line(exc, empty)
    with pytest.raises(DataFileError, match="no such file"):
        load_poems(tmp_path / "missing.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe poem")
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_poems_text(binary)


def test_fortunes_poems_without_attributions(fortunes):
    assert len(fortunes) == 720
    assert not any(re.search(r"^\s+--", p, re.M) for p in fortunes)
    assert not any("\x08" in p for p in fortunes)
    nash = next(p for p in fortunes if p.startswith("A bit of talcum"))
    assert nash == "A bit of talcum\nIs always walcum"
    genesis = next(p for p in fortunes if p.startswith("A salamander"))
    assert "Phil Collins" not in genesis and "Broadway" not in genesis and genesis.endswith("Ask Peter.")
    assert load_poems(None) == fortunes


def test_fortunes_missing_says_what_to_install(tmp_path):
    with pytest.raises(DataFileError, match="install the Debian package `fortunes`, or pass a poems file") as exc:
        fortunes_poems(tmp_path / "songs-poems")
    _one_line(exc, tmp_path / "songs-poems")


# --- tokens and chunks -------------------------------------------------------------------------

def test_tokenize():
    assert tokenize("O'er the hills, my love's Light-o'-love -- 1931! \u2018Tis DON\u2019T") == [
        "o'er", "the", "hills", "my", "love's", "light", "o", "love", "tis", "don't"]
    assert is_word("don't") and not is_word("##ing") and not is_word("Love") and not is_word("'s")


@pytest.mark.parametrize("kwargs, match", [
    ({"max_len": 0}, "max_len=0"),
    ({"max_len": 5, "overlap": 5}, r"overlap=5 is not allowed; allowed: an integer in \[0, max_len=5\)"),
    ({"overlap": -1}, "overlap=-1"),
    ({"min_len": 0}, "min_len=0"),
    ({"max_len": 4, "overlap": 1, "min_len": 5}, "min_len=5"),
    ({"max_len": True}, "max_len=True"),
])
def test_chunk_config_refusals(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChunkConfig(**kwargs)


def test_chunks_exact_windows_overlap_and_drop():
    poem = [f"w{i}" for i in range(12)]
    config = ChunkConfig(max_len=5, overlap=2, min_len=2)
    chunks, kept = chunk_tokens([poem], config)
    # full windows at 0, 3, 6; the remainder w11 (1 token < min_len) is dropped
    assert chunks == [poem[0:5], poem[3:8], poem[6:11]] and kept == 11 / 12
    longer = poem + ["w12"]  # remainder w11, w12 (2 >= min_len): one more chunk, sharing w9, w10
    chunks, kept = chunk_tokens([longer], config)
    assert chunks == [longer[0:5], longer[3:8], longer[6:11], longer[9:13]] and kept == 1.0
    chunks, kept = chunk_tokens([poem[:3], poem[:1], poem[:5]], config)  # short poems: one chunk, unless < min_len
    assert chunks == [poem[:3], poem[:5]] and kept == 8 / 9
    assert chunk_tokens([], config) == ([], 0.0)


def test_chunks_preservation_is_one_when_nothing_dropped():
    poem = list("abcdefghijkl")  # stride 3: full windows at 0, 3, 6 end at 10; remainder "kl"
    chunks, kept = chunk_tokens([poem], ChunkConfig(max_len=4, overlap=1, min_len=2))
    assert chunks == [list("abcd"), list("defg"), list("ghij"), list("jkl")] and kept == 1.0
    chunks, kept = chunk_tokens([poem], ChunkConfig(max_len=4, overlap=1, min_len=3))
    assert chunks == [list("abcd"), list("defg"), list("ghij")] and kept == 10 / 12


# --- sequences ---------------------------------------------------------------------------------

def test_embed_chunks_drops_unknown_words_and_reports_coverage():
    tiny = _tiny_vectors()
    chunks = [["the", "ghost", "night", "is"], ["dark", "zzz"], ["zzz", "yyy", "love"], ["love", "the"]]
    arrays = embed_chunks(chunks, tiny, max_len=4, preservation=0.9)
    assert arrays.coverage == 7 / 11 and arrays.preservation == 0.9
    assert arrays.tokens == (("the", "night", "is"), ("love", "the"))  # chunks 1 and 2 keep < 2 words
    assert arrays.lengths.tolist() == [3, 2] and arrays.lengths.dtype == np.int64
    assert arrays.mask.tolist() == [[True, True, True, False], [True, True, False, False]]
    assert arrays.x.shape == (2, 4, 3) and arrays.x.dtype == np.float32
    np.testing.assert_array_equal(arrays.x[0, :3], tiny.vectors[[0, 1, 2]])
    assert not arrays.x[~arrays.mask].any()
    assert tiny.nearest(arrays.x[arrays.mask]) == ["the", "night", "is", "love", "the"]


def test_embed_chunks_refusals():
    tiny = _tiny_vectors()
    with pytest.raises(ValueError, match="no usable tokens"):
        embed_chunks([["zzz", "the"], ["night"]], tiny, max_len=4)
    with pytest.raises(ValueError, match="chunk 0 has 5 tokens; allowed: at most max_len=4"):
        embed_chunks([["the"] * 5], tiny, max_len=4)
    with pytest.raises(ValueError, match="no usable tokens"):
        build_poem_arrays(["Zzz qqq.", "!!!"], tiny, ChunkConfig(max_len=4, overlap=1, min_len=1))


def test_build_poem_arrays_deterministic_and_cached(tmp_path, glove50, fortunes):
    poems = fortunes[:60]
    config = ChunkConfig(max_len=20, overlap=5)
    a, b = build_poem_arrays(poems, glove50, config), build_poem_arrays(poems, glove50, config)
    for name, value in a.to_arrays().items():
        assert np.array_equal(value, b.to_arrays()[name]), name
    assert a.tokens == b.tokens and a.x.shape[1:] == (20, 50) and (a.lengths >= 2).all()
    assert np.array_equal(a.mask.sum(axis=1), a.lengths) and 0.9 < a.coverage < 1 and 0.9 < a.preservation <= 1

    cache = partial(cached_arrays, cache_dir=tmp_path)
    first, second = (build_poem_arrays(poems, glove50, config, cache=cache) for _ in range(2))
    assert not first.from_cache and second.from_cache
    assert second.tokens == a.tokens and np.array_equal(second.x, a.x) and second.coverage == a.coverage
    edited = build_poem_arrays(poems[:-1] + [poems[-1] + " moon"], glove50, config, cache=cache)
    assert not edited.from_cache  # the key holds a digest of the poems
    back = PoemArrays.from_arrays(a.to_arrays())
    assert back.tokens == a.tokens and back.preservation == a.preservation


# --- data module -------------------------------------------------------------------------------

def _random_arrays(n: int = 50, t: int = 6, d: int = 4) -> PoemArrays:
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, t + 1, size=n).astype(np.int64)
    mask = np.arange(t)[None] < lengths[:, None]
    x = (rng.standard_normal((n, t, d)) * mask[..., None]).astype(np.float32)
    tokens = tuple(tuple(f"w{i}_{j}" for j in range(k)) for i, k in enumerate(lengths))
    return PoemArrays(x, mask, lengths, tokens, coverage=1.0, preservation=1.0)


def test_datamodule_splits_disjoint_complete_seeded():
    arrays = _random_arrays()
    dm = PoetryDataModule(arrays, batch_size=8, seed=3)
    split = dm.split_indices
    assert [len(split[s]) for s in ("train", "val", "test")] == [40, 5, 5]
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(50))
    again, other = PoetryDataModule(arrays, seed=3).split_indices, PoetryDataModule(arrays, seed=4).split_indices
    assert all(np.array_equal(split[s], again[s]) for s in split)
    assert not np.array_equal(split["val"], other["val"])
    assert dm.input_dim == 4 and dm.max_len == 6 and len(dm.tokens("val")) == 5


def test_datamodule_batches_and_resumable_shuffle():
    arrays = _random_arrays()
    dm = PoetryDataModule(arrays, batch_size=8, seed=0)
    x, mask, lengths = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 6, 4) and x.dtype == torch.float32
    assert mask.shape == (8, 6) and mask.dtype == torch.bool and lengths.dtype == torch.int64
    assert torch.equal(mask.sum(dim=1), lengths)
    val = list(dm.val_dataloader())
    assert torch.equal(val[0][0], torch.from_numpy(arrays.x[dm.split_indices["val"]]))
    assert sum(len(b[0]) for b in dm.test_dataloader()) == 5
    ex, emask, elengths = dm.example_input(2)
    assert ex.shape == (2, 6, 4) and np.array_equal(ex, arrays.x[dm.split_indices["train"][:2]])

    state = dm.state_dict()
    epoch = [b[2].tolist() for b in dm.train_dataloader()]
    resumed = PoetryDataModule(arrays, batch_size=8, seed=0)
    resumed.load_state_dict(state)
    assert [b[2].tolist() for b in resumed.train_dataloader()] == epoch


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size=0 is not allowed"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "out of range"),
])
def test_datamodule_refusals(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoetryDataModule(_random_arrays(), **kwargs)
    with pytest.raises(ValueError, match="too few"):
        PoetryDataModule(_random_arrays(n=2))
