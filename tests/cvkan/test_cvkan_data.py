"""Document 003's data (lightning_modules/cvkan/data): shapes, dtypes, seeds, splits, loaders, refusals, cache."""

from __future__ import annotations

import shutil
import wave
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules.cvkan.data import (
    ETT_COLUMNS,
    ArraySplits,
    CVKANDataModule,
    DataFileError,
    ForecastConfig,
    SignalNoiseConfig,
    SpokenDigitsConfig,
    StftConfig,
    audio_feature_data,
    cifar10_splits,
    digits_splits,
    forecast_splits,
    generate_signal_noise,
    goog_series,
    image_tokens,
    make_windows,
    precomputed_stft,
    read_cifar10_bin,
    read_ett_csv,
    read_wav,
    signal_noise_splits,
    speech_commands_splits,
    spoken_digits_splits,
    stft_features,
    stratified_split,
    time_feature_modes,
)
from projects.common.data_cache import cached_arrays

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _same(a: ArraySplits, b: ArraySplits) -> bool:
    return all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a.arrays().values(), b.arrays().values()))


def _refused(call, *needles: str) -> str:
    """The one-line message of the DataFileError `call()` raises; it must contain every needle."""
    with pytest.raises(DataFileError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "allowed" in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


# ---------------------------------------------------------------- splits and the data module

def test_stratified_split_is_a_seeded_partition_balanced_per_class() -> None:
    y = np.repeat(np.arange(4), 50)
    tr, va, te = stratified_split(y, seed=3, val_fraction=0.2, test_fraction=0.1)
    assert len(np.intersect1d(tr, va)) == len(np.intersect1d(tr, te)) == len(np.intersect1d(va, te)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(200))
    assert np.bincount(y[va]).tolist() == [10] * 4 and np.bincount(y[te]).tolist() == [5] * 4
    again, other = stratified_split(y, seed=3, val_fraction=0.2, test_fraction=0.1), stratified_split(y, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(other[1], stratified_split(y, seed=3)[1])
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(y, seed=0, val_fraction=0.6, test_fraction=0.5)


def test_data_module_serves_seeded_batches_of_every_split() -> None:
    splits = signal_noise_splits(SignalNoiseConfig(n_samples=100, n_features=8))
    first = [next(iter(CVKANDataModule(splits, batch_size=16, seed=5).train_dataloader()))[1] for _ in range(2)]
    other = next(iter(CVKANDataModule(splits, batch_size=16, seed=6).train_dataloader()))[1]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], other)
    dm = CVKANDataModule(splits, batch_size=16)
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and tuple(x.shape) == (15, 16, 8)
    assert sum(len(b[0]) for b in dm.test_dataloader()) == len(splits.x_test)
    dm.load_state_dict(dm.state_dict())  # round trip of the shuffle generator
    with pytest.raises(ValueError, match="batch_size"):
        CVKANDataModule(splits, batch_size=0)


# ---------------------------------------------------------------- images

def test_digits_tokens_rows_and_patches() -> None:
    rows, patches = digits_splits(tokens="rows"), digits_splits(tokens="patches", patch=2)
    assert rows.token_shape == (8, 8) and patches.token_shape == (16, 4) and rows.n_classes == 10
    for s in (rows, patches):
        assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
        assert 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
    assert len(rows.x_train) + len(rows.x_val) + len(rows.x_test) == 1797
    assert _same(rows, digits_splits(tokens="rows")) and not _same(rows, digits_splits(tokens="rows", seed=1))
    assert set(np.unique(rows.y_test)) == set(range(10))


def test_patch_tokens_hold_each_patch_row_major() -> None:
    images = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    tokens = image_tokens(images, "patches", 2)
    assert tokens.shape == (2, 4, 12)
    assert np.array_equal(tokens[1, 1], images[1, 0:2, 2:4].reshape(-1))  # top-right patch of image 1
    assert np.array_equal(image_tokens(images, "rows")[0, 3], images[0, 3].reshape(-1))
    with pytest.raises(ValueError, match="patch=3"):
        image_tokens(images, "patches", 3)


def _cifar_file(path: Path, labels: list[int], extra: bytes = b"") -> np.ndarray:
    """A CIFAR-10 binary file: record i's pixels are (i + channel * 7 + pixel) % 256."""
    pixels = (np.arange(3072)[None, :] + np.arange(len(labels))[:, None]
              + 7 * (np.arange(3072) // 1024)[None, :]) % 256
    records = np.concatenate([np.array(labels)[:, None], pixels], axis=1).astype(np.uint8)
    path.write_bytes(records.tobytes() + extra)
    return pixels


def test_cifar10_binary_files_load_as_tokens(tmp_path: Path) -> None:
    pixels = _cifar_file(tmp_path / "data_batch_1.bin", [i % 10 for i in range(40)])
    _cifar_file(tmp_path / "test_batch.bin", [9 - i % 10 for i in range(10)])
    images, labels = read_cifar10_bin(tmp_path / "data_batch_1.bin")
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert images[3, 0, 1, 2] == pixels[3, 2048 + 1]  # blue plane, row 0, column 1
    splits = cifar10_splits(tmp_path, tokens="patches", patch=4, val_fraction=0.25)
    assert splits.token_shape == (64, 48) and splits.x_train.dtype == np.float32
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (30, 10, 10)
    assert np.array_equal(splits.y_test, [9 - i % 10 for i in range(10)])
    assert not _rows(splits.x_train) & _rows(splits.x_val)


def test_cifar10_malformed_files_are_refused_in_one_line(tmp_path: Path) -> None:
    _cifar_file(tmp_path / "data_batch_1.bin", [1, 2, 3], extra=b"\x00" * 100)
    _refused(lambda: read_cifar10_bin(tmp_path / "data_batch_1.bin"), "data_batch_1.bin", "3073")
    _cifar_file(tmp_path / "data_batch_1.bin", [1, 12, 3])
    _refused(lambda: read_cifar10_bin(tmp_path / "data_batch_1.bin"), "record 1 has label 12")
    _cifar_file(tmp_path / "data_batch_1.bin", [1, 2, 3])
    _refused(lambda: cifar10_splits(tmp_path), "test_batch.bin", "no such file")


# ---------------------------------------------------------------- audio: WAV folders

def _write_wav(path: Path, samples: np.ndarray, rate: int = 8000, width: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        dtype = "<i2" if width == 2 else np.uint8
        wav.writeframes(samples.astype(dtype).tobytes())


def _speech_folder(root: Path, per_class: int = 5) -> None:
    rng = np.random.default_rng(0)
    for label, freq in (("no", 300.0), ("yes", 700.0)):
        for i in range(per_class):
            n = 4000 + 500 * i  # 0.5 to 1 s at 8 kHz
            tone = 12000 * np.sin(2 * np.pi * freq * np.arange(n) / 8000) + rng.normal(0, 300, n)
            _write_wav(root / label / f"spk{i}_nohash_0.wav", tone)
    _write_wav(root / "_background_noise_" / "noise.wav", rng.normal(0, 1000, 8000))


def test_speech_commands_folder_loads_resampled_fixed_length_clips(tmp_path: Path) -> None:
    _speech_folder(tmp_path)
    splits = speech_commands_splits(tmp_path, val_fraction=0.2, test_fraction=0.2)
    assert splits.meta["classes"] == ["no", "yes"] and splits.n_classes == 2
    assert splits.x_train.shape == (6, 16000, 1) and splits.x_train.dtype == np.float32
    assert (len(splits.y_val), len(splits.y_test)) == (2, 2) and splits.y_val.tolist() == [0, 1]
    clip = read_wav(tmp_path / "no" / "spk0_nohash_0.wav")[0]
    assert len(clip) == 4000 and abs(float(np.abs(clip).max()) - 12000 / 32768) < 0.05
    assert not _rows(splits.x_train) & (_rows(splits.x_val) | _rows(splits.x_test))
    (tmp_path / "validation_list.txt").write_text("no/spk1_nohash_0.wav\nyes/spk1_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/spk4_nohash_0.wav\n")
    listed = speech_commands_splits(tmp_path)
    assert (len(listed.y_train), len(listed.y_val), len(listed.y_test)) == (7, 2, 1)
    assert listed.y_test.tolist() == [1]


def test_malformed_wavs_are_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"definitely not RIFF data")
    _refused(lambda: read_wav(tmp_path / "junk.wav"), "junk.wav", "16-bit PCM")
    _write_wav(tmp_path / "eight.wav", np.full(100, 128), width=1)
    _refused(lambda: read_wav(tmp_path / "eight.wav"), "eight.wav", "8-bit")
    _write_wav(tmp_path / "cut.wav", np.zeros(1000))
    data = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-600])
    _refused(lambda: read_wav(tmp_path / "cut.wav"), "cut.wav", "truncated")
    _speech_folder(tmp_path / "sc", per_class=3)
    (tmp_path / "sc" / "yes" / "bad.wav").write_bytes(b"RIFF\x00\x00")
    _refused(lambda: speech_commands_splits(tmp_path / "sc"), "bad.wav")


# ---------------------------------------------------------------- audio: spoken digits and STFT

@needs_espeak
def test_spoken_digits_are_deterministic_speaker_disjoint_and_cached(tmp_path: Path) -> None:
    config = SpokenDigitsConfig(n_per_class=3, seed=0)
    cache = partial(cached_arrays, cache_dir=tmp_path)
    first = spoken_digits_splits(config, cache=cache)
    second = spoken_digits_splits(config, cache=cache)
    assert not first.from_cache and second.from_cache and _same(first, second)
    assert _same(first, spoken_digits_splits(config))  # synthesised again, not read: identical
    other = spoken_digits_splits(SpokenDigitsConfig(n_per_class=3, seed=1))
    assert not np.array_equal(first.x_train, other.x_train)
    assert first.x_train.shape == (10, 16000, 1) and first.x_train.dtype == np.float32
    assert first.y_test.dtype == np.int64 and sorted(first.y_test.tolist()) == list(range(10))
    speakers = first.meta["speakers"]
    assert not set(speakers["train"]) & (set(speakers["val"]) | set(speakers["test"]))
    assert not set(speakers["val"]) & set(speakers["test"])
    peaks = np.abs(first.x_train[:, :, 0]).max(axis=1)
    assert (peaks > 0.2).all() and (peaks < 1.0).all()


def test_stft_matches_torch_and_both_modes_serve_the_same_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    waves = rng.normal(size=(3, 4000)).astype(np.float32)
    tokens = stft_features(waves, StftConfig(kind="complex"))
    reference = torch.stft(torch.from_numpy(waves), 512, 256, window=torch.hann_window(512), center=True,
                           pad_mode="reflect", return_complex=True).transpose(1, 2).numpy()
    assert tokens.shape == (3, 16, 257) and tokens.dtype == np.complex64
    assert np.allclose(tokens, reference, atol=1e-3)
    assert np.array_equal(stft_features(waves[:, :, None]), np.abs(tokens))
    y = np.repeat(np.arange(2), 6)
    splits = ArraySplits(*(a for _ in range(3) for a in (rng.normal(size=(12, 4000, 1)).astype(np.float32), y)),
                         n_classes=2)
    for kind in ("magnitude", "complex"):
        pre = audio_feature_data(splits, StftConfig(kind=kind), precompute=True, batch_size=5)
        raw = audio_feature_data(splits, StftConfig(kind=kind), precompute=False, batch_size=5)
        for a, b in zip(pre.val_dataloader(), raw.val_dataloader()):
            assert a[0].shape == (5, 16, 257) or a[0].shape == (2, 16, 257)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    cache = partial(cached_arrays, cache_dir=tmp_path)
    key = {"data": "noise", "seed": 0}
    built, read = (precomputed_stft(splits, cache=cache, source_key=key) for _ in range(2))
    assert not built.from_cache and read.from_cache and _same(built, read)
    timing = time_feature_modes(splits, batch_size=4, epochs=1)
    assert timing.precompute_s > 0 and timing.per_batch_epoch_s > 0 and timing.n_train == 12
    with pytest.raises(ValueError, match="kind"):
        StftConfig(kind="power")


# ---------------------------------------------------------------- time series

def test_goog_default_windows_are_chronological_and_train_normalized() -> None:
    values, columns = goog_series()
    assert values.shape == (1047, 5) and columns[-1] == "close" and np.isfinite(values).all()
    config = ForecastConfig(input_len=32, horizon=8)
    splits = forecast_splits(values, config, columns=columns)
    assert splits.x_train.shape[1:] == (32, 5) and splits.y_train.shape[1:] == (8, 5)
    assert splits.x_train.dtype == splits.y_train.dtype == np.float32 and splits.n_classes is None
    (s0, e0), (s1, e1), (s2, e2) = splits.meta["borders"]
    assert e0 <= s1 + 32 and e1 <= s2 + 32 and e2 == 1047  # targets never overlap between segments
    assert np.allclose(splits.meta["mean"], values[:e0].mean(axis=0))
    restored = splits.y_test[-1, -1] * splits.meta["std"] + splits.meta["mean"]
    assert np.allclose(restored, values[-1], rtol=1e-5)
    assert _same(splits, forecast_splits(values, config, columns=columns))
    last = forecast_splits(values, ForecastConfig(input_len=32, horizon=8, target="last"))
    assert last.y_val.shape[1:] == (8, 1)


def test_make_windows_pairs_each_input_with_its_future() -> None:
    series = np.arange(20, dtype=np.float64).reshape(10, 2)
    x, y = make_windows(series, 3, 2)
    assert x.shape == (6, 3, 2) and y.shape == (6, 2, 2)
    assert np.array_equal(x[4], series[4:7]) and np.array_equal(y[4], series[7:9])


def _ett_csv(path: Path, rows: int = 200, bad: tuple[int, str, str] | None = None,
             columns: tuple[str, ...] = ETT_COLUMNS) -> None:
    lines = [",".join(columns)]
    for r in range(rows):
        cells = {c: f"{np.sin(r / 5 + i):.4f}" for i, c in enumerate(ETT_COLUMNS)}
        cells["date"] = f"2016-07-{1 + r // 24:02d} {r % 24:02d}:00:00"
        if bad and bad[0] == r + 2:  # file row numbers count the header as row 1
            cells[bad[1]] = bad[2]
        lines.append(",".join(cells[c] for c in columns))
    path.write_text("\n".join(lines) + "\n")


def test_ett_csv_loads_in_column_order(tmp_path: Path) -> None:
    _ett_csv(tmp_path / "ETTh1.csv")
    values, names, dates = read_ett_csv(tmp_path / "ETTh1.csv")
    assert values.shape == (200, 7) and names == ETT_COLUMNS[1:] and values.dtype == np.float64
    assert np.isclose(values[10, 6], np.sin(10 / 5 + 7), atol=1e-4) and dates[25] > dates[24]
    splits = forecast_splits(values, ForecastConfig(input_len=24, horizon=6), ett=True)
    assert splits.x_val.shape[1:] == (24, 7) and len(splits.x_test) == 40 - 6 + 1


def test_malformed_ett_csvs_are_refused_naming_file_row_and_column(tmp_path: Path) -> None:
    _ett_csv(tmp_path / "a.csv", columns=ETT_COLUMNS[:-1])
    _refused(lambda: read_ett_csv(tmp_path / "a.csv"), "a.csv", "OT", "row 1")
    _ett_csv(tmp_path / "b.csv", bad=(5, "HULL", "n/a"))
    _refused(lambda: read_ett_csv(tmp_path / "b.csv"), "b.csv", "row 5", "column HULL", "'n/a'")
    _ett_csv(tmp_path / "c.csv", bad=(9, "date", "yesterday"))
    _refused(lambda: read_ett_csv(tmp_path / "c.csv"), "c.csv", "row 9", "column date")
    _ett_csv(tmp_path / "d.csv", bad=(3, "OT", "inf"))
    _refused(lambda: read_ett_csv(tmp_path / "d.csv"), "row 3", "column OT")


# ---------------------------------------------------------------- signal/noise sequences

def test_signal_noise_sequences_are_balanced_seeded_and_hide_the_pattern() -> None:
    config = SignalNoiseConfig(n_samples=400, seed=2)
    x, y, start = generate_signal_noise(config)
    assert x.shape == (400, 16, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [200, 200]
    assert ((start == -1) == (y == 0)).all() and start.max() <= 16 - config.pattern_len
    same, other = generate_signal_noise(config), generate_signal_noise(SignalNoiseConfig(n_samples=400, seed=3))
    assert np.array_equal(x, same[0]) and not np.array_equal(x, other[0])
    i, j = np.flatnonzero(y == 1)[:2]  # the same pattern sits at each signal sequence's start
    a, b = x[i, start[i]:start[i] + 4].ravel(), x[j, start[j]:start[j] + 4].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.5
    norms = np.linalg.norm(x, axis=-1)
    assert abs(norms[y == 1].mean() - norms[y == 0].mean()) < 0.2  # magnitude alone does not tell
    splits = signal_noise_splits(config)
    assert not _rows(splits.x_train) & (_rows(splits.x_val) | _rows(splits.x_test))
    assert np.bincount(splits.y_val).tolist() == [30, 30]
