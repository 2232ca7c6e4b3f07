"""Knowledge distillation: the :class:`Distiller` family, its losses and offline teacher caches.

* :class:`Distiller` — response distillation (binary, multiclass, regression).
* :class:`FeatureDistiller`, :class:`RelationalDistiller` — hint layers (FitNets), similarity / InfoNCE.
* :class:`RankingDistiller` + :func:`make_list_batches` — listwise, pairwise, top-K ranking distillation.
* :class:`MultiTeacherDistiller`, :class:`MultiTaskDistiller` — several teachers, several heads.
* :func:`cache_teacher_outputs`, :func:`cached_dataset`, :class:`OfflineDistiller` — train without the teacher.
"""
from .distiller import Distiller
from .feature import FeatureDistiller, RelationalDistiller
from .losses import (binary_label_loss, binary_soft_target_loss, huber_loss, listwise_loss, mse_loss,
                     pairwise_loss, softmax_kl_loss, sparse_softmax_label_loss, topk_loss)
from .multi import MultiTaskDistiller, MultiTeacherDistiller
from .offline import OfflineDistiller, cache_teacher_outputs, cached_dataset, read_manifest, teacher_function
from .ranking import RankingDistiller, make_list_batches

__all__ = ["Distiller", "FeatureDistiller", "RelationalDistiller", "RankingDistiller", "make_list_batches",
           "MultiTeacherDistiller", "MultiTaskDistiller", "OfflineDistiller", "cache_teacher_outputs",
           "cached_dataset", "read_manifest", "teacher_function",
           "binary_soft_target_loss", "softmax_kl_loss", "binary_label_loss", "sparse_softmax_label_loss",
           "mse_loss", "huber_loss", "listwise_loss", "pairwise_loss", "topk_loss"]
