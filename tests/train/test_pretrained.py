"""The shipped-model folder: a clear error without a model, and installing a finished run."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from msmd_builder.core.cache import sha256_file  # noqa: E402
from msmd_builder.core.errors import ConfigError  # noqa: E402
from msmd_builder.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from msmd_builder.train.models import build_model  # noqa: E402
from msmd_builder.train.pretrained import (  # noqa: E402
    CARD_FILE,
    MIN_TRAIN_PIECES,
    PRETRAINED_DIR,
    install_pretrained,
    pretrained_checkpoint,
)


def _finished_run(folder, n_pieces, finished=True):
    folder.mkdir()
    model = build_model("2018", 42, maps=(4, 4, 4, 4))
    save_checkpoint(folder / "refined.pt", model, {"epoch": 3})
    metrics = {
        "checkpoint": "refined.pt",
        "settings": {"model": "2018", "context_frames": 42},
        "train_pieces": [f"P{i}" for i in range(n_pieces)],
        "train_soundfonts": {"fluidr3-yamaha-grand": n_pieces},
        "best_epoch": 2,
        "best_valid": {"valid_mrr": 0.5},
        "throughput": {"train_pairs": 1000, "pairs_seen": 3000},
        "history": [{"epoch": e, "seconds": 10.0 * e} for e in (1, 2, 3)],
        "finished": finished,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return model


def test_no_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no pretrained model ships with this installation"):
        pretrained_checkpoint(tmp_path)
    assert PRETRAINED_DIR.name == "pretrained" and (PRETRAINED_DIR / "__init__.py").is_file()


def test_installing_a_run(tmp_path):
    small = tmp_path / "examples-run"
    _finished_run(small, 12)
    with pytest.raises(ConfigError, match=f"trained on 12 pieces, fewer than {MIN_TRAIN_PIECES}"):
        install_pretrained(small, folder=tmp_path / "ship")
    assert not (tmp_path / "ship").exists()
    with pytest.raises(ConfigError, match="no metrics.json"):
        install_pretrained(tmp_path, folder=tmp_path / "ship")

    unfinished = tmp_path / "unfinished-run"
    _finished_run(unfinished, MIN_TRAIN_PIECES, finished=False)
    with pytest.raises(ConfigError, match="has not finished training"):
        install_pretrained(unfinished, folder=tmp_path / "ship")

    corpus = tmp_path / "corpus-run"
    model = _finished_run(corpus, MIN_TRAIN_PIECES)
    path = install_pretrained(corpus, folder=tmp_path / "ship")
    assert path == pretrained_checkpoint(tmp_path / "ship")
    loaded, info = load_checkpoint(path)
    assert info == {"epoch": 3}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    card = json.loads((tmp_path / "ship" / CARD_FILE).read_text())
    assert card["sha256"] == sha256_file(path)
    assert (card["train_pieces"], card["epochs"], card["training_seconds"]) == (100, 3, 30.0)
    assert card["settings"] == {"model": "2018", "context_frames": 42}
    assert card["best_valid"] == {"valid_mrr": 0.5}
