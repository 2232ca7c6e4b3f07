"""On-device recommendation: two-tower retrieval (top-K) plus list ranking, teacher vs distilled int8 students.

``tfcompress run --task retrieval`` trains, on the positive interactions of the data (leave-last-out: each
user's last positive is the test item, the one before it the validation item the export chooses on):

=============  ==========================================================================================
stage          what it does
=============  ==========================================================================================
``teacher``    the large two-tower retrieval teacher (sampled softmax with in-batch + catalogue
               negatives), and the CTR ranking teacher (DCN-v2) on every interaction but the test ones
``baseline``   the small retrieval student alone, on the labels
``distill``    a fresh retrieval student distilled from the teacher (the teacher's scores over the batch's
               sampled candidates as soft targets), and the CTR ranking student distilled from its teacher
``compress``   the distilled student again with compressed embedding tables (``student["embedding"]``:
               ``qr`` by default; also ``hash``, ``mixed``, ``lowrank``) for every id feature with at
               least ``compress_min_vocab`` ids, distilled from the teacher; or (``int8row``,
               ``int4row``) the distilled student's own tables quantized per row, without retraining
``export``     float32 TFLite of the teachers and int8 TFLite of a student: every retrieval student as
               int8, scored on the validation users; the smallest file within the run's ``tolerance``
               (default 1 %) of the best validation NDCG@10 ships, and the report says which and why. A
               retrieval signature (the user's and context features → ``item_ids`` and ``scores`` of the
               top K, K = the list size) and a list-ranking signature (one user, N candidates → N
               ``scores``) for re-scoring
=============  ==========================================================================================

Quality: ``ndcg@10``/``hr@10`` rank the held-out item in the top 10 of the whole catalogue, after removing
the user's training items from the top K as the app would when the data never repeats a (user, item)
pair (MovieLens; the shop's users re-click items, so nothing is removed there) (the retrieval models; for
TFLite files, from the file's own top-K output); ``sampled_ndcg@10``/``sampled_hr@10`` rank
it among N − 1 sampled items the user never interacted with (retrieval Keras models and the ranking
models, Keras and TFLite). ``embedding_bytes``/``embedding_share``: Keras rows, bytes of embedding tables
vs all weights (4 bytes a value); TFLite rows, the tables read by GATHER plus the stored catalogue (item
vectors and ids) vs the file.

``--data``: none → the built-in shop; ``movielens`` or a path → as for the ctr task
(:func:`tfcompress.tasks.ctr.load_interactions`).

The stages live in :mod:`~tfcompress.tasks.recommendation_stages`, the data in
:mod:`~tfcompress.tasks.recommendation_data`, the latency, table and report sections in
:mod:`~tfcompress.tasks.recommendation_report`; this module declares the task.

Example:
    >>> [s.name for s in RetrievalTask().stages]
    ['teacher', 'baseline', 'distill', 'compress', 'export']
"""
from ..errors import TFCompressError
from ..models.retrieval import retrieval_student, retrieval_teacher
from .base import Task, check_builder_kwargs
from .recommendation_data import RecommendationData, check_recommendation_data, load_recommendation
from .recommendation_report import RECOMMENDATION_TABLE, PairSummary, RecommendationLatency, TopKParity
from .recommendation_stages import COMPRESS_OPTIONS, RECOMMENDATION_STAGES


class RetrievalTask(Task):
    """Two-tower retrieval teacher → distilled (and embedding-compressed) student, plus the CTR list ranker;
    NDCG@10 / HR@10 on leave-last-out positives. Declares its own stages, data, latency, table and report.

    Example:
        >>> from tfcompress.tasks import get_task
        >>> task = get_task("retrieval")
        >>> task.metric, [s.name for s in task.stages][-2:]
        ('ndcg@10', ['compress', 'export'])
    """

    name = "retrieval"
    objective = "binary"
    metric = "ndcg@10"
    teacher_builder = staticmethod(retrieval_teacher)
    student_builder = staticmethod(retrieval_student)
    data_args = ("spec",)
    data_class = RecommendationData
    stages = RECOMMENDATION_STAGES
    latency = RecommendationLatency()
    table = RECOMMENDATION_TABLE
    report_sections = (PairSummary(), TopKParity())

    def defaults(self, quick):
        if quick:
            return dict(events=20_000, batch_size=256, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=3e-3, student_learning_rate=1e-2, calibration_samples=100,
                        latency_runs=30)
        return dict(events=100_000, batch_size=512, teacher_epochs=5, student_epochs=5, prune_epochs=1,
                    qat_epochs=1, learning_rate=3e-3, student_learning_rate=1e-2, calibration_samples=300,
                    latency_runs=200)

    def teacher_kwargs(self, quick):
        return dict(embedding_dim=32, hidden=(64,), output_dim=32) if quick else {}

    def student_kwargs(self, quick):
        # d=8 towers: the int8 top-K file stores one 8-wide int8 vector per item (measured on MovieLens-small:
        # 44.6x smaller pair at 100 % of the teacher's sampled NDCG@10, benchmarks/recsys_table.py --quick)
        return {} if quick else dict(embedding_dim=8, output_dim=8)

    def ranking_kwargs(self, quick):
        """Builder options of the CTR ranking (teacher, student)."""
        if quick:
            return dict(embedding_dim=16, cross_layers=1, hidden=(64, 32)), dict(embedding_dim=4, cross_layers=1,
                                                                                 hidden=(16,))
        return {}, {}

    def list_size(self, quick):
        """N: candidates the ranking signature re-scores, the K of the retrieval top-K, and 1 + the sampled
        negatives of the evaluation."""
        return 50 if quick else 100

    def check_options(self, teacher, student):
        check_builder_kwargs(retrieval_teacher, teacher, "retrieval teacher", exclude=self.data_args)
        known = {k: v for k, v in student.items() if k not in COMPRESS_OPTIONS}
        check_builder_kwargs(retrieval_student, known, "retrieval student", exclude=self.data_args)
        kind = student.get("embedding", COMPRESS_OPTIONS["embedding"])
        from ..models.embeddings import EMBEDDING_KINDS

        if kind not in EMBEDDING_KINDS:
            raise TFCompressError(f"retrieval student embedding={kind!r} is not one of {list(EMBEDDING_KINDS)}")

    def model_args(self, data):
        return {"spec": data.spec}

    def check_data(self, data, config=None):
        """A bad ``--data`` fails before anything is written (``config``: the column roles and split)."""
        return check_recommendation_data(data, config)

    def resolve_data(self, config):
        """Called by ``RunConfig.validate``: :meth:`check_data` with the config's roles."""
        how = self.check_data(config.data, config)
        return {} if how is None else {"split": how}

    def load(self, config):
        return load_recommendation(config, self.list_size(config.quick))
