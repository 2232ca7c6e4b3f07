"""Model builders (teachers and students per task) and the custom layers they use."""
from .ctr import ctr_student, ctr_teacher, dcn, embedding_width
from .layers import Cross, CrossQuantizeConfig, EmbeddingQuantizeConfig, custom_objects
from .utils import check_functional, copy_model

__all__ = ["ctr_teacher", "ctr_student", "dcn", "embedding_width", "Cross", "CrossQuantizeConfig",
           "EmbeddingQuantizeConfig", "custom_objects", "copy_model", "check_functional"]
