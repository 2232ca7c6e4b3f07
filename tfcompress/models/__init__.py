"""Model builders (teachers and students per task) and the custom layers they use."""
from .ctr import ctr_student, ctr_teacher, dcn, embedding_width
from .layers import Cross
from .registry import custom_objects
from .embeddings import (EMBEDDING_KINDS, HashedEmbedding, LowRankEmbedding, MixedDimEmbedding, QREmbedding,
                         RowInt4Embedding, RowInt8Embedding, SafeEmbedding, make_embedding, quantize_tables,
                         tflite_embedding_bytes)
from .image import check_image_batch, image_dataset, image_student, image_teacher, scale_images
from .text import MaskedMean, PaddingMask, PositionEmbedding, hidden_states, text_custom_objects, text_student, text_teacher
from .ranking import list_ranking_model
from .retrieval import (MOVED_TO_EXPORT, TwoTower, evaluate_sampled, fit_retrieval, item_catalog,
                        moved_to_export, retrieval_student, retrieval_teacher, sampled_candidates)
from .utils import check_functional, copy_model
from .preprocessing import NumericNormalization, preprocessed_inputs, with_preprocessing

__all__ = ["ctr_teacher", "ctr_student", "dcn", "embedding_width", "Cross", "custom_objects",
           "copy_model", "check_functional",
           "text_teacher", "text_student", "hidden_states", "PositionEmbedding", "PaddingMask", "MaskedMean",
           "text_custom_objects", "image_teacher", "image_student", "image_dataset", "scale_images",
           "check_image_batch", "retrieval_teacher", "retrieval_student", "TwoTower",
           "item_catalog", "fit_retrieval", "evaluate_sampled", "sampled_candidates", "list_ranking_model",
           "QREmbedding", "HashedEmbedding", "MixedDimEmbedding", "LowRankEmbedding", "RowInt8Embedding",
           "RowInt4Embedding", "quantize_tables",
           "SafeEmbedding", "make_embedding", "tflite_embedding_bytes", "EMBEDDING_KINDS",
           "NumericNormalization", "preprocessed_inputs", "with_preprocessing"]


def __getattr__(name):  # CrossQuantizeConfig, EmbeddingQuantizeConfig: moved to tfcompress.quantize
    from .layers import _moved

    if name in MOVED_TO_EXPORT:  # export_retrieval_tflite: moved to tfcompress.export
        return moved_to_export(name, "tfcompress.models")
    return _moved(name, "tfcompress.models")
