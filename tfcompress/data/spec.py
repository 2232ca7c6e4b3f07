"""Feature specs: what a model builder needs to know about the data.

A :class:`FeatureSpec` names every model input (its kind, vocabulary size and dtype), the label and the
task. Data loaders produce one; model builders read it; exporters turn it into input signatures.

Categorical ids are integers in ``[0, vocab_size)``; id 0 is reserved for "unknown / out of vocabulary".

Example:
    >>> spec = FeatureSpec([Feature("user_id", "categorical", vocab_size=101, group="user"),
    ...                     Feature("price", "numeric")], label="click")
    >>> spec.names
    ['user_id', 'price']
    >>> FeatureSpec.from_dict(spec.to_dict()) == spec
    True
"""
from dataclasses import asdict, dataclass, field

from ..errors import TFCompressError

KINDS = ("categorical", "numeric")
TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Feature:
    """One model input: ``kind`` is ``"categorical"`` (int32 ids) or ``"numeric"`` (float32)."""

    name: str
    kind: str
    vocab_size: int = 0
    group: str = "context"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TFCompressError(f"feature {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "categorical" and self.vocab_size < 2:
            raise TFCompressError(
                f"feature {self.name!r}: a categorical feature needs vocab_size >= 2, got {self.vocab_size}"
            )

    @property
    def dtype(self):
        return "int32" if self.kind == "categorical" else "float32"


@dataclass(frozen=True)
class FeatureSpec:
    """The inputs, label and task of a dataset (``task`` in ``binary``, ``multiclass``, ``regression``)."""

    features: tuple
    label: str = "click"
    task: str = "binary"
    num_classes: int = 1
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        if self.task not in TASKS:
            raise TFCompressError(f"task {self.task!r} is not one of {TASKS}")
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TFCompressError(f"feature names must be unique; repeated: {dup}")
        if not names:
            raise TFCompressError("a FeatureSpec needs at least one feature")

    @property
    def names(self):
        return [f.name for f in self.features]

    @property
    def categorical(self):
        return [f for f in self.features if f.kind == "categorical"]

    @property
    def numeric(self):
        return [f for f in self.features if f.kind == "numeric"]

    def __getitem__(self, name):
        for f in self.features:
            if f.name == name:
                return f
        raise TFCompressError(f"no feature named {name!r}; the spec has {self.names}")

    def to_dict(self):
        return {
            "features": [asdict(f) for f in self.features],
            "label": self.label,
            "task": self.task,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            features=[Feature(**f) for f in d["features"]],
            label=d.get("label", "click"),
            task=d.get("task", "binary"),
            num_classes=d.get("num_classes", 1),
        )

    def check_frame(self, df, *, need_label=True):
        """Raise a clear error if DataFrame ``df`` lacks a feature (or the label) or has ids out of range."""
        cols = set(df.columns)
        missing = [n for n in self.names if n not in cols]
        if need_label and self.label not in cols:
            missing.append(self.label)
        if missing:
            raise TFCompressError(f"data is missing columns {missing}; it has {sorted(cols)}")
        for f in self.categorical:
            col = df[f.name]
            if len(col) and (col.min() < 0 or col.max() >= f.vocab_size):
                raise TFCompressError(
                    f"feature {f.name!r} has ids outside [0, {f.vocab_size}): min {col.min()}, max {col.max()}"
                )
