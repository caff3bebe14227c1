"""`evaluate --model` is read as `--models`, the spelling loadtest and infer take (session 50): it was refused as
"ambiguous option: --model could match --models, --model-version"."""

from __future__ import annotations

import argparse

from quantserve.cli.commands import evaluate


def test_evaluate_takes_loadtest_s_model_flag() -> None:
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    argv = ["evaluate", "--model", "m_int8,m_fp32", "--reference", "m_fp32", "--data", "d.npz", "--out", "o"]
    args = parser.parse_args(argv)
    assert args.models == "m_int8,m_fp32"
