"""python -m encore_training train --data DIR | --clickhouse URL [--out DIR --seed N --device cpu]
python -m encore_training import spotify|mssd|lastfm --input PATH... --out DIR"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from .dataset import load
from .sources import ClickHouseSource, FileSource, Source
from .spec import FeatureSpec, find_spec
from .train import TrainOptions, run


def train_command(args: argparse.Namespace) -> None:
    began = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    source: Source
    client = None
    if args.clickhouse:
        clickhouse = ClickHouseSource(args.clickhouse, args.database, args.user, args.password)
        source, client = clickhouse, clickhouse.client()
    else:
        source = FileSource(Path(args.data))
    spec = FeatureSpec.load(find_spec(None if args.clickhouse else Path(args.data)))
    data = load(source, spec, progress=not args.quiet)
    options = TrainOptions(out=Path(args.out), seed=args.seed, device=args.device, epochs=args.epochs,
                           tower_epochs=args.tower_epochs, test_days=args.test_days,
                           validation_days=args.validation_days, max_train_points=args.max_train_points,
                           progress=not args.quiet)
    result = run(data, options, client)
    d = result.metrics["disengagement"]
    t = result.metrics["two_tower"]
    print(f"version {result.version} in {time.monotonic() - began:.0f} s")
    for name, values in d.items():
        print(f"  disengagement  {name:42s} AUC {values['auc']:.4f}  PR-AUC {values['pr_auc']:.4f}")
    for name, values in t.items():
        print(f"  next song      {name:42s} Recall@100 {values['recall_at_100']:.4f}  MRR {values['mrr']:.4f}")
    print(f"models: {result.disengagement_dir}, {result.user_tower_dir}\nreport: {result.report_dir / 'report.md'}")


def import_command(args: argparse.Namespace) -> None:
    from .importers import IMPORTERS

    written = IMPORTERS[args.format]([Path(p) for p in args.input], Path(args.out))
    print(f"{args.format}: wrote {written.events} events, {written.songs} songs, {written.profiles} profiles "
          f"to {args.out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="encore_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train, evaluate and export both models")
    where = train.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="dataset directory (features.jsonl, labels.jsonl, songs.jsonl)")
    where.add_argument("--clickhouse", help="ClickHouse HTTP URL, e.g. http://127.0.0.1:8123")
    train.add_argument("--database", default="encore")
    train.add_argument("--user", default="default")
    train.add_argument("--password", default=os.environ.get("CLICKHOUSE_PASSWORD", ""),
                       help="default: $CLICKHOUSE_PASSWORD")
    train.add_argument("--out", default=".encore/models")
    train.add_argument("--seed", type=int, default=7)
    train.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1")
    train.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    train.add_argument("--tower-epochs", type=int, default=TrainOptions.tower_epochs)
    train.add_argument("--test-days", type=float, default=TrainOptions.test_days)
    train.add_argument("--validation-days", type=float, default=TrainOptions.validation_days)
    train.add_argument("--max-train-points", type=int, default=TrainOptions.max_train_points)
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: all cores)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=train_command)
    importer = commands.add_parser("import", help="a public listening format -> events/songs/profiles JSONL")
    importer.add_argument("format", choices=["spotify", "mssd", "lastfm"])
    importer.add_argument("--input", nargs="+", required=True, help="the format's files")
    importer.add_argument("--out", required=True)
    importer.set_defaults(handler=import_command)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
