"""Feature specs: what a model builder needs to know about the data.

A :class:`FeatureSpec` names every model input (its kind, vocabulary size and dtype), the label and the
objective (the kind of model output). Data loaders and :meth:`tfcompress.data.Schema.to_feature_spec`
produce one; model builders read it; exporters turn it into input signatures.

Categorical ids are integers in ``[0, vocab_size)``; id 0 is reserved for "unknown / out of vocabulary".
A numeric feature may carry its missing-value ``fill`` and normalization ``mean``/``std`` (defaults: no
fill, no scaling), which :func:`tfcompress.models.with_preprocessing` puts inside the model.

Example:
    >>> spec = FeatureSpec([Feature("user_id", "categorical", vocab_size=101, group="user"),
    ...                     Feature("price", "numeric")], label="click")
    >>> spec.names
    ['user_id', 'price']
    >>> FeatureSpec.from_dict(spec.to_dict()) == spec
    True
"""
import math
import warnings
from dataclasses import asdict, dataclass, field

from ..errors import TFCompressError
from ..objectives import LABEL_OBJECTIVES

KINDS = ("categorical", "numeric")
OBJECTIVES = LABEL_OBJECTIVES
TASKS = OBJECTIVES  # the old name
_IDENTITY = {"mean": 0.0, "std": 1.0, "fill": 0.0}


@dataclass(frozen=True)
class Feature:
    """One model input: ``kind`` is ``"categorical"`` (int32 ids) or ``"numeric"`` (float32). A numeric
    feature's ``fill`` replaces missing values and ``(x - mean) / std`` normalizes it (defaults: identity).

    Example:
        >>> Feature("price", "numeric", mean=20.0, std=5.0).normalized
        True
    """

    name: str
    kind: str
    vocab_size: int = 0
    group: str = "context"
    mean: float = 0.0
    std: float = 1.0
    fill: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TFCompressError(f"feature {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "categorical" and self.vocab_size < 2:
            raise TFCompressError(
                f"feature {self.name!r}: a categorical feature needs vocab_size >= 2, got {self.vocab_size}"
            )
        stats = (self.mean, self.std, self.fill)
        if not all(math.isfinite(float(v)) for v in stats) or float(self.std) <= 0:
            raise TFCompressError(f"feature {self.name!r}: mean/std/fill must be finite and std > 0, "
                                  f"got mean={self.mean}, std={self.std}, fill={self.fill}")

    @property
    def dtype(self):
        return "int32" if self.kind == "categorical" else "float32"

    @property
    def normalized(self):
        """True when the feature has a fill value or normalization statistics other than the identity."""
        return self.kind == "numeric" and any(float(getattr(self, k)) != v for k, v in _IDENTITY.items())

    def to_dict(self):
        """JSON-safe dict; the statistics only when not the identity (older readers stay happy)."""
        d = asdict(self)
        if not self.normalized:
            for k in _IDENTITY:
                d.pop(k)
        return d


@dataclass(frozen=True, init=False)
class FeatureSpec:
    """The inputs, label and objective of a dataset (``objective`` in ``binary``, ``multiclass``,
    ``regression``). ``task=`` is the old name of ``objective`` (deprecated; ``spec.task`` still reads it).

    Example:
        >>> spec = FeatureSpec([Feature("x", "numeric")], label="y", objective="regression")
        >>> spec.objective, spec.task
        ('regression', 'regression')
    """

    features: tuple
    label: str = "click"
    objective: str = "binary"
    num_classes: int = 1
    metadata: dict = field(default_factory=dict, compare=False)

    def __init__(self, features, label="click", objective=None, num_classes=1, metadata=None, *, task=None):
        if task is not None:
            warnings.warn("FeatureSpec(task=) is deprecated: use objective=", DeprecationWarning, stacklevel=2)
            if objective is not None and objective != task:
                raise TFCompressError(f"FeatureSpec got objective={objective!r} and task={task!r}: pass only "
                                      "objective=")
        for k, v in (("features", tuple(features)), ("label", label), ("objective", objective or task or "binary"),
                     ("num_classes", num_classes), ("metadata", dict(metadata or {}))):
            object.__setattr__(self, k, v)
        self.__post_init__()

    @property
    def task(self):
        """The old name of :attr:`objective` (read-only)."""
        return self.objective

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise TFCompressError(f"objective {self.objective!r} is not one of {OBJECTIVES}")
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
            "features": [f.to_dict() for f in self.features],
            "label": self.label,
            "objective": self.objective,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            features=[Feature(**f) for f in d["features"]],
            label=d.get("label", "click"),
            objective=d.get("objective", d.get("task", "binary")),
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
