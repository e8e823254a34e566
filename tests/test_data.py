import hashlib

import numpy as np
import pytest

from madutils import data


def test_mnist_shapes_labels_and_checksums():
    x, y = data.load_mnist("train")
    xt, yt = data.load_mnist("test")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert set(np.unique(y)) == set(range(10))
    assert 5000 < np.bincount(y).min() < np.bincount(y).max() < 7000
    assert x.max() == 255 and x.min() == 0
    # the canonical first labels of the MNIST training and test sets
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert yt[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]


def test_raw_files_are_the_canonical_mnist_files():
    root = data.ensure_mnist()
    md5 = {
        name: hashlib.md5((root / "MNIST" / "raw" / name).read_bytes()).hexdigest() for name in data.MNIST_RAW_SHA256
    }
    # the MD5s published for the uncompressed official files
    assert md5["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert md5["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"


def test_missing_mnist_offline_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MAD_OFFLINE", "1")
    with pytest.raises(data.DatasetError, match=r"MNIST/raw.*train-images-idx3-ubyte"):
        data.ensure_mnist(tmp_path)


def test_corrupted_mnist_file_is_reported(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = data.ensure_mnist() / "MNIST" / "raw"
    for name in data.MNIST_RAW_SHA256:
        (raw / name).write_bytes((src / name).read_bytes())
    blob = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    blob[100] = (blob[100] + 1) % 10
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(blob))
    with pytest.raises(data.DatasetError, match="t10k-labels-idx1-ubyte.*corrupted"):
        data.ensure_mnist(tmp_path)


def test_mnist_source_draws_random_subsets_and_pads():
    src = data.MnistSource(size=32)
    x, y = src.draw(100, seed=1)
    assert x.shape == (100, 1, 32, 32) and y.shape == (100,)
    assert np.all(x[:, :, :2] == 0) and np.all(x[:, :, -2:] == 0)
    x2, _ = src.draw(100, seed=1)
    np.testing.assert_array_equal(x, x2)
    x3, _ = src.draw(100, seed=2)
    assert not np.array_equal(x, x3)
    with pytest.raises(ValueError, match="60000"):
        src.draw(70000, 0)
