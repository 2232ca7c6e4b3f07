"""The ``tfcompress data`` command: ``data make`` writes the built-in shop as shards for the streaming path.

:func:`add_parser` adds the ``data`` subcommand (and its ``make`` action) to an ``argparse`` parser;
:func:`main` runs it on the parsed arguments (:func:`tfcompress.data.write_shop_shards`), prints one line
and returns the exit code. Bad input raises :class:`~tfcompress.errors.TFCompressError`; ``tfcompress.cli``
turns it into one line on stderr and exit code 2.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="tfcompress")
    >>> _ = add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["data", "make", "--events", "10_000_000", "--out", "shards"])
    >>> args.events, args.out, args.shard_rows, args.format
    (10000000, 'shards', 1000000, 'parquet')
"""
from .bench_command import seed_number, whole_number

__all__ = ["add_parser", "main"]

FORMATS = ("parquet", "csv", "tfrecord")


def add_parser(subparsers):
    """Add the ``data`` subcommand and its ``make`` action to ``subparsers``; returns the ``data`` parser."""
    p = subparsers.add_parser("data", help="write the built-in shop as Parquet, CSV or TFRecord shards",
                              description="Data for the streaming path: `data make` writes the built-in shop "
                                          "as shards plus a manifest (schema, rows per shard, seed, fingerprint); "
                                          "`tfcompress run --data DIR` then streams them.")
    actions = p.add_subparsers(dest="data_action", metavar="ACTION")
    actions.required = True
    make = actions.add_parser("make", help="write the built-in shop as shards into a new or empty folder")
    make.add_argument("--events", type=whole_number, required=True, help="impressions (1,000 to 10,000,000)")
    make.add_argument("--out", required=True, help="the folder for the shards (new or empty)")
    make.add_argument("--seed", type=seed_number, default=0, help="the shop's seed (default 0)")
    make.add_argument("--shard-rows", type=whole_number, default=1_000_000,
                      help="rows per shard (default 1,000,000; the rows are the same for any value)")
    make.add_argument("--format", choices=FORMATS, default="parquet", help="shard format (default parquet)")
    return p


def main(args):
    """Run ``tfcompress data ACTION`` on parsed ``args``; returns the exit code (0)."""
    from .data import write_shop_shards

    manifest = write_shop_shards(args.events, args.out, seed=args.seed, shard_rows=args.shard_rows,
                                 format=args.format)
    shards = manifest["shards"]
    print(f"wrote {manifest['events']:,} events (seed {manifest['seed']}) as {len(shards)} {manifest['format']} "
          f"shard{'s' if len(shards) > 1 else ''} to {args.out} (manifest.json, fingerprint "
          f"{manifest['fingerprint'][:12]})")
    return 0
