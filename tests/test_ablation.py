"""benchmarks/ablation.py: trains every (variant, seed), prints the table, and
reads finished runs back instead of training them again."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import ablation  # noqa: E402


def test_ablation_table_and_read_back(tmp_path, capsys, monkeypatch):
    argv = ["--epochs", "1", "--seeds", "0", "1", "--variants", "plain", "wsd_static",
            "--jobs", "1", "--out", str(tmp_path)]
    table = ablation.main(argv)
    assert set(table) == {"plain", "wsd_static"} and all(len(v) == 2 for v in table.values())
    assert all(10.0 < a <= 100.0 for v in table.values() for a in v)  # one digits epoch beats chance
    assert (tmp_path / "plain-s1" / "log.csv").is_file()
    out = capsys.readouterr().out
    assert "| plain BNN |" in out and "| +WSD +static ASD |" in out and "+0.00 |" in out

    def no_training(**kw):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr("quant_models.train.train", no_training)
    assert ablation.main(argv) == table
