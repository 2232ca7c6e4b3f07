"""Knowledge distillation: one composable :class:`Distiller`, its loss objects, conveniences and offline caches.

* :class:`Distiller` — ``Distiller(student, teachers, losses=[...])``: a student, one or more frozen
  teachers and the terms to match, e.g. ``losses=[LogitsDistillation(), FeatureDistillation("h", "h")]``.
* Loss objects: :class:`LogitsDistillation` (soft targets: binary, multiclass, regression; several
  teachers), :class:`FeatureDistillation` (hints), :class:`RelationalDistillation` (similarity / InfoNCE),
  :class:`RankingDistillation` (listwise, pairwise, top-K) — base :class:`DistillationLoss`.
* Conveniences (a Distiller with a ready loss list): :class:`FeatureDistiller`,
  :class:`RelationalDistiller`, :class:`RankingDistiller` + :func:`make_list_batches`,
  :class:`MultiTeacherDistiller`, :class:`MultiTaskDistiller`.
* :func:`cache_teacher_outputs`, :func:`cached_dataset`, :class:`OfflineDistiller` — train without the teacher;
  sharded caches (parts written in parallel or by several workers): :func:`finish_cache`, :func:`worker_shard`,
  :func:`check_cache` (teacher and data fingerprints).
"""
from .distillation_losses import DistillationLoss, LogitsDistillation, RankingDistillation
from .distiller import Distiller
from .feature import FeatureDistillation, FeatureDistiller, RelationalDistillation, RelationalDistiller
from .losses import (binary_label_loss, binary_soft_target_loss, huber_loss, listwise_loss, mse_loss,
                     pairwise_loss, softmax_kl_loss, sparse_softmax_label_loss, topk_loss)
from .multi import MultiTaskDistiller, MultiTeacherDistiller
from .offline import (OfflineDistiller, cache_teacher_outputs, cached_dataset, check_cache, finish_cache, read_manifest,
                      teacher_function, worker_shard)
from .ranking import RankingDistiller, make_list_batches

__all__ = ["Distiller", "DistillationLoss", "LogitsDistillation", "FeatureDistillation", "RelationalDistillation",
           "RankingDistillation", "FeatureDistiller", "RelationalDistiller", "RankingDistiller", "make_list_batches",
           "MultiTeacherDistiller", "MultiTaskDistiller", "OfflineDistiller", "cache_teacher_outputs",
           "cached_dataset", "read_manifest", "teacher_function", "check_cache", "finish_cache", "worker_shard",
           "binary_soft_target_loss", "softmax_kl_loss", "binary_label_loss", "sparse_softmax_label_loss",
           "mse_loss", "huber_loss", "listwise_loss", "pairwise_loss", "topk_loss"]
