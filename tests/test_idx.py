"""Tests of the IDX reader/writer and the MNIST loader.

Every file is written here, into ``tmp_path``; no real data set is read.
"""

import gzip
import json
import os
import shutil

import numpy as np
import pytest

from refprune.data.idx import IdxFormatError, read_idx, write_idx
from refprune.data.mnist import MNIST_FILES, MnistFormatError, load_mnist

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def sample_array(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_round_trip(tmp_path, dtype, shape, suffix):
    a = sample_array(dtype, shape)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable
    with open(path, "rb") as fh:
        assert (fh.read(2) == b"\x1f\x8b") == (suffix == ".gz")


def test_round_trip_big_endian_input(tmp_path):
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "a", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)


def test_reads_hand_written_bytes(tmp_path):
    # Header bytes as the MNIST page specifies them: 00 00 <code> <ndim> <dims, big-endian>.
    (tmp_path / "lab").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03" + bytes([1, 2, 9]))
    np.testing.assert_array_equal(read_idx(tmp_path / "lab"), [1, 2, 9])
    # int16, big-endian: 0x0102 = 258, 0xFFFE = -2.
    (tmp_path / "s").write_bytes(b"\x00\x00\x0b\x01\x00\x00\x00\x02" + b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(tmp_path / "s"), [258, -2])
    # 2 x 3 unsigned bytes in C order.
    (tmp_path / "m").write_bytes(header(0x08, [2, 3]) + bytes(range(6)))
    np.testing.assert_array_equal(read_idx(tmp_path / "m"), [[0, 1, 2], [3, 4, 5]])


def test_writer_header_bytes(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 3), dtype=np.float32))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:12] == b"\x00\x00\x0d\x02\x00\x00\x00\x02\x00\x00\x00\x03"
    assert len(raw) == 12 + 2 * 3 * 4


def test_gzip_detected_by_magic_not_name(tmp_path):
    a = sample_array(np.uint8, (4, 3))
    write_idx(tmp_path / "a.gz", a)
    os.rename(tmp_path / "a.gz", tmp_path / "compressed_without_suffix")
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed_without_suffix"), a)
    write_idx(tmp_path / "raw", a)
    os.rename(tmp_path / "raw", tmp_path / "raw_named.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "raw_named.gz"), a)


@pytest.mark.parametrize("bad_dtype", [np.int64, bool, np.float16, np.complex128])
def test_write_rejects_unsupported_dtype(tmp_path, bad_dtype):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=bad_dtype))
    assert not (tmp_path / "x").exists()


def test_write_rejects_scalar(tmp_path):
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
        (b"PK\x03\x04\x00\x00\x00\x00", "bad magic number"),
        (header(0x07, [1]) + b"\x00", "unknown dtype code 0x07"),
        (b"\x00\x00\x08\x00", "number of dimensions is 0"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "truncated header"),
        (header(0x08, [3, 4]) + bytes(11), r"declares shape \(3, 4\) of unsigned byte, 12 bytes of data, but 11 "
                                           "bytes follow it: the file is truncated"),
        (header(0x0C, [5]) + bytes(20) + b"\x00", "trailing data"),
    ],
)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_malformed_files(tmp_path, content, message, suffix):
    path = tmp_path / f"bad-file-idx{suffix}"
    path.write_bytes(gzip.compress(content) if suffix else content)
    with pytest.raises(IdxFormatError, match=message) as err:
        read_idx(path)
    assert "bad-file-idx" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_truncated_message_format(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header(0x08, [60000, 28, 28]) + bytes(1000)))
    with pytest.raises(IdxFormatError) as err:
        read_idx(path)
    msg = str(err.value)
    assert msg.startswith(str(path) + ": its header declares shape (60000, 28, 28)")
    assert "47040000 bytes of data, but 1000 bytes follow it: the file is truncated" in msg


def test_corrupt_gzip_flipped_byte(tmp_path):
    path = tmp_path / "flipped-idx1-ubyte.gz"
    write_idx(path, sample_array(np.uint8, (200, 10)))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IdxFormatError, match="corrupt gzip") as err:
        read_idx(path)
    assert "flipped-idx1-ubyte.gz" in str(err.value)


def test_corrupt_gzip_truncated_stream(tmp_path):
    path = tmp_path / "cut-idx1-ubyte.gz"
    write_idx(path, sample_array(np.uint8, (200, 10)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IdxFormatError, match="corrupt gzip") as err:
        read_idx(path)
    assert "cut-idx1-ubyte.gz" in str(err.value)


def test_reading_a_missing_idx_file_names_it(tmp_path):
    with pytest.raises(ValueError, match="nothing-here: no such file"):
        read_idx(tmp_path / "nothing-here")


# ---------------------------------------------------------------- MNIST loader

N_TRAIN, N_TEST, ROWS, COLS = 50, 10, 4, 5


def fake_images(n, offset):
    """uint8 images whose pixel [0, 0] is the image's id (offset + position)."""
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, size=(n, ROWS, COLS), dtype=np.uint8)
    images[:, 0, 0] = offset + np.arange(n)
    return images


def fake_labels(n, offset):
    return ((offset + np.arange(n)) % 10).astype(np.uint8)


@pytest.fixture
def mnist_dir(tmp_path):
    """A tiny MNIST: 50 training and 10 test images of 4 x 5 pixels, mixed .gz/raw."""
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / (MNIST_FILES["train_images"] + ".gz"), fake_images(N_TRAIN, 0))
    write_idx(d / MNIST_FILES["train_labels"], fake_labels(N_TRAIN, 0))
    write_idx(d / (MNIST_FILES["test_images"] + ".gz"), fake_images(N_TEST, 100))
    write_idx(d / (MNIST_FILES["test_labels"] + ".gz"), fake_labels(N_TEST, 100))
    return d


def test_load_shapes_scaling_and_labels(mnist_dir):
    m = load_mnist(mnist_dir)
    assert m.x_train.shape == (40, ROWS * COLS) and m.y_train.shape == (40,)
    assert m.x_val.shape == (10, ROWS * COLS) and m.y_val.shape == (10,)
    assert m.x_test.shape == (N_TEST, ROWS * COLS) and m.y_test.shape == (N_TEST,)
    assert m.x_train.dtype == np.float32 and m.y_train.dtype == np.int64
    assert m.image_shape == (ROWS, COLS)
    train_images = fake_images(N_TRAIN, 0)
    expected = train_images.reshape(N_TRAIN, -1)[m.train_index].astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(m.x_train, expected)
    np.testing.assert_array_equal(
        m.x_test, fake_images(N_TEST, 100).reshape(N_TEST, -1).astype(np.float32) / 255
    )
    for x in (m.x_train, m.x_val, m.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    # Images and labels stay aligned through the split: label = id mod 10.
    for x, y in ((m.x_train, m.y_train), (m.x_val, m.y_val), (m.x_test, m.y_test)):
        ids = np.rint(x[:, 0] * 255).astype(np.int64)
        np.testing.assert_array_equal(y, ids % 10)


def test_split_disjoint_and_covering(mnist_dir):
    m = load_mnist(mnist_dir)
    ids = np.rint(np.concatenate([m.x_train, m.x_val])[:, 0] * 255).astype(int)
    np.testing.assert_array_equal(np.sort(ids), np.arange(N_TRAIN))
    np.testing.assert_array_equal(
        np.sort(np.concatenate([m.train_index, m.val_index])), np.arange(N_TRAIN)
    )


def test_split_matches_default_rng_permutation(mnist_dir):
    m = load_mnist(mnist_dir, seed=7)
    perm = np.random.default_rng(7).permutation(N_TRAIN)
    np.testing.assert_array_equal(m.val_index, perm[:10])
    np.testing.assert_array_equal(m.train_index, perm[10:])


def test_split_deterministic_per_seed(mnist_dir):
    a, b = load_mnist(mnist_dir, seed=3), load_mnist(mnist_dir, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    c = load_mnist(mnist_dir, seed=4)
    assert not np.array_equal(np.sort(a.val_index), np.sort(c.val_index))


def test_generator_seed_and_options(mnist_dir):
    m = load_mnist(mnist_dir, val_fraction=0.3, seed=np.random.default_rng(1), dtype=np.float64)
    assert m.x_train.shape == (35, 20) and m.x_val.shape == (15, 20)
    assert m.x_train.dtype == np.float64 and m.seed is None


def test_arrays_read_only(mnist_dir):
    m = load_mnist(mnist_dir)
    with pytest.raises(ValueError):
        m.x_train[0, 0] = 1.0


def test_prefers_gz_when_both_exist(mnist_dir):
    raw = mnist_dir / MNIST_FILES["train_images"]
    write_idx(raw, np.zeros((N_TRAIN, ROWS, COLS), dtype=np.uint8))
    m = load_mnist(mnist_dir)
    assert m.files[0].endswith(".gz") and m.x_train.max() > 0


def test_all_raw_files(mnist_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for name in MNIST_FILES.values():
        src = next(p for p in mnist_dir.iterdir() if p.name.startswith(name))
        (raw_dir / name).write_bytes(idx_raw_bytes(src))
    a, b = load_mnist(mnist_dir), load_mnist(raw_dir)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def idx_raw_bytes(path):
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@pytest.mark.parametrize(
    "bad", [dict(val_fraction=0.0), dict(val_fraction=1.0), dict(seed=-1), dict(dtype=np.int32)]
)
def test_bad_arguments(mnist_dir, bad):
    (name,) = bad
    with pytest.raises(ValueError, match=name):
        load_mnist(mnist_dir, **bad)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as err:
        load_mnist(tmp_path / "no-such-dir")
    assert "no-such-dir" in str(err.value)


def test_loading_mnist_with_a_missing_file(mnist_dir):
    os.remove(mnist_dir / MNIST_FILES["train_labels"])
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(mnist_dir)
    msg = str(err.value)
    assert str(mnist_dir) in msg and "missing MNIST file(s) train-labels-idx1-ubyte" in msg
    for name in MNIST_FILES.values():
        assert name in msg


def replace(mnist_dir, role, content):
    """Overwrite the file for ``role`` (whichever of .gz / raw exists) with ``content``."""
    for suffix in (".gz", ""):
        path = mnist_dir / (MNIST_FILES[role] + suffix)
        if path.exists():
            if isinstance(content, bytes):
                path.write_bytes(gzip.compress(content) if suffix else content)
            else:
                write_idx(path, content)
            return path.name
    raise AssertionError(role)  # the fixture always writes every file


def test_bad_magic(mnist_dir):
    name = replace(mnist_dir, "test_labels", b"\x08\x08\x08\x01\x00\x00\x00\x01\x01")
    with pytest.raises(IdxFormatError, match="bad magic number") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_wrong_image_dtype(mnist_dir):
    name = replace(mnist_dir, "train_images", fake_images(N_TRAIN, 0).astype(np.int16))
    with pytest.raises(MnistFormatError, match="0x0B") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_images_not_3d(mnist_dir):
    name = replace(mnist_dir, "test_images", fake_images(N_TEST, 100).reshape(N_TEST, -1))
    with pytest.raises(MnistFormatError, match="3-D") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_labels_not_1d(mnist_dir):
    name = replace(mnist_dir, "train_labels", fake_labels(N_TRAIN, 0).reshape(5, 10))
    with pytest.raises(MnistFormatError, match="1-D") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_truncated_payload(mnist_dir):
    content = header(0x08, [N_TRAIN, ROWS, COLS]) + bytes(N_TRAIN * ROWS * COLS - 1)
    name = replace(mnist_dir, "train_images", content)
    with pytest.raises(IdxFormatError, match="truncated") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_trailing_bytes(mnist_dir):
    content = header(0x08, [N_TRAIN]) + fake_labels(N_TRAIN, 0).tobytes() + b"\x00\x00"
    name = replace(mnist_dir, "train_labels", content)
    with pytest.raises(IdxFormatError, match="trailing data") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_corrupt_gzip(mnist_dir):
    path = mnist_dir / (MNIST_FILES["train_images"] + ".gz")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    path.write_bytes(bytes(raw))
    with pytest.raises(IdxFormatError, match="corrupt gzip") as err:
        load_mnist(mnist_dir)
    assert path.name in str(err.value)


def test_label_count_mismatch(mnist_dir):
    labels = replace(mnist_dir, "train_labels", fake_labels(N_TRAIN - 1, 0))
    with pytest.raises(MnistFormatError, match="50 images.*49 labels") as err:
        load_mnist(mnist_dir)
    assert labels in str(err.value)
    assert MNIST_FILES["train_images"] in str(err.value)


def test_label_value_10(mnist_dir):
    labels = fake_labels(N_TEST, 100)
    labels[3] = 10
    name = replace(mnist_dir, "test_labels", labels)
    with pytest.raises(MnistFormatError, match="found 10 at index 3") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value)


def test_image_size_mismatch(mnist_dir):
    name = replace(mnist_dir, "test_images", np.zeros((N_TEST, ROWS, COLS + 1), dtype=np.uint8))
    with pytest.raises(MnistFormatError, match=r"\(4, 6\)") as err:
        load_mnist(mnist_dir)
    assert name in str(err.value) and MNIST_FILES["train_images"] in str(err.value)


def test_directory_copy_independent_of_name(mnist_dir, tmp_path):
    # Fashion-MNIST uses the same file names: any directory with the four files works.
    other = tmp_path / "fashion"
    shutil.copytree(mnist_dir, other)
    np.testing.assert_array_equal(load_mnist(other).y_val, load_mnist(mnist_dir).y_val)


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_reads_the_same_four_names_and_keeps_its_class_names(mnist_dir):
    # The tiny files stand for Fashion-MNIST too: the data sets share names and format.
    m = load_mnist(mnist_dir, dataset="fashion-mnist")
    d = load_mnist(mnist_dir)
    np.testing.assert_array_equal(m.x_train, d.x_train)
    assert m.dataset == "fashion-mnist" and d.dataset == "mnist"
    assert m.class_names[0] == "T-shirt/top" and m.class_names[9] == "Ankle boot"
    assert d.class_names == tuple("0123456789")


def test_fashion_mnist_missing_file_error_names_the_data_set_and_the_file(mnist_dir):
    os.remove(mnist_dir / (MNIST_FILES["test_images"] + ".gz"))
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(mnist_dir, dataset="fashion-mnist")
    msg = str(err.value)
    assert "missing Fashion-MNIST file(s) t10k-images-idx3-ubyte[.gz]" in msg and str(mnist_dir) in msg


def test_unknown_data_set_name_is_a_value_error(mnist_dir):
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_mnist(mnist_dir, dataset="kmnist")


def test_train_cli_accepts_fashion_mnist(mnist_dir, tmp_path, capsys):
    from refprune.cli.main import main

    # 4 x 5 pixel images: the layers must be given (the default input is 784).
    code = main(["train", "--data", "fashion-mnist", "--data-dir", str(mnist_dir), "--method", "dense",
                 "--layers", "20,8,10", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data"] == "fashion-mnist"


def test_train_cli_fashion_mnist_missing_directory_is_a_one_line_error(tmp_path, capsys):
    from refprune.cli.main import main

    code = main(["train", "--data", "fashion-mnist", "--data-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "--data-dir" in err and "is not a directory" in err and len(err.strip().splitlines()) == 1
