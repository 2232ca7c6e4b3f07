"""Data for tfcompress: the built-in synthetic shop, feature specs, ``tf.data`` pipelines, and loaders for
real public data (MovieLens, Fashion-MNIST, review CSVs) from any local path."""
from .images import FASHION_MNIST_CLASSES, check_images, load_fashion_mnist, read_idx, synthetic_images
from .movielens import Interactions, interactions_from_frame, leave_last_out, load_movielens
from .paths import find_dataset, missing_data_message, shared_data_dir
from .datasets import array_dataset, frame_to_inputs, labels_of, sample_inputs, to_dataset
from .reviews import TextData, load_reviews, titles_task
from .columns import Column, input_name, value_key
from .schema import Schema
from .spec import Feature, FeatureSpec
from .synthetic import EcommerceData, ecommerce_chunks, make_ecommerce, time_split
from .shards import SHARD_FORMATS, read_manifest, write_shop_shards
from .streaming import ShardStats, is_shard_source, sample_frame, scan_shards, shard_files
from .shard_dataset import shard_batches, shard_dataset
from .shard_log import HeldOut, ShardLog, open_shop_log, scanned_log
from .tables import Split, parse_time, read_table, sniff_format, split_table
from .text import (check_labels, check_texts, learn_vocabulary, load_tokenizer, make_tokenizer, save_vocabulary,
                   text_dataset, tokenize)

__all__ = ["Feature", "FeatureSpec", "EcommerceData", "make_ecommerce", "time_split", "to_dataset",
           "frame_to_inputs", "labels_of", "array_dataset", "sample_inputs", "Interactions", "load_movielens", "interactions_from_frame",
           "leave_last_out", "load_fashion_mnist", "read_idx", "synthetic_images", "check_images",
           "FASHION_MNIST_CLASSES", "load_reviews", "titles_task", "TextData", "shared_data_dir",
           "find_dataset", "missing_data_message", "learn_vocabulary", "make_tokenizer", "tokenize",
           "text_dataset", "save_vocabulary", "load_tokenizer", "check_texts", "check_labels",
           "read_table", "sniff_format", "split_table", "Split", "parse_time", "Schema", "Column",
           "value_key", "input_name", "ecommerce_chunks", "write_shop_shards", "read_manifest", "SHARD_FORMATS",
           "shard_files", "scan_shards", "ShardStats", "is_shard_source", "sample_frame", "shard_batches",
           "shard_dataset", "ShardLog", "HeldOut", "open_shop_log", "scanned_log"]
