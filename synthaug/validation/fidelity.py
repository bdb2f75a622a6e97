"""Fidelity metrics: SDMetrics quality report, detection AUC, train-synthetic-test-real (TSTR).

Features for the classifiers (detection, TSTR) come from `MixedEncoder` in its bounded
"frequency" mode (see `synthaug.validation.encoding`), plus:

- a cross-fitted target encoding of each high-cardinality column (sklearn `TargetEncoder`),
  fitted only on the rows a model trains on (for detection the training fold, for TSTR the
  side being trained: the synthetic model never sees an encoding learnt from real labels);
- for detection, one granularity probe per numeric column: the largest round step (..., 0.01,
  0.05, 0.1, 0.5, 1, 5, 10, 50, 100, ... for numbers; second, minute, hour, day for datetimes) that
  the value is a multiple of, as log10 of the step. Real money columns that sit on multiples
  of 100 and synthetic ones that do not are then one split apart, and the detector's top
  features name the probe ("amount granularity ...").

Detection encodes inside each cross-validation fold (encoder, frequencies and target encoding
fitted on the training fold only), so values that occur once cannot leak the fold's labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from synthaug.errors import BadInput
from synthaug.schema import Schema
from synthaug.validation.encoding import MixedEncoder, as_float, as_keys, modelled_columns

_SDTYPES = {
    "continuous": "numerical",
    "integer": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "id": "id",
}
_TABLE = "table"
# SDMetrics' own contingency subsample (sdmetrics.reports.utils.DEFAULT_NUM_ROWS_SUBSAMPLE).
QUALITY_MAX_ROWS = 50_000


def _one_openmp_thread():
    """Run HistGradientBoosting* on one OpenMP thread.

    Its OpenMP regions are per tree node; on validation-sized data (5k detection rows per
    side, TSTR on up to `metrics_rows` rows) a second thread saves little on an idle machine,
    and on a busy one (another job on the other core) the threads spin waiting for each
    other: on 2 shared cores, detection took 89-157 s with 2 threads vs 1 s with one, TSTR on
    100k rows 55 s vs 8 s (benchmarks/validation.py); the scores were identical. threadpoolctl
    comes with scikit-learn; the limit is undone on exit.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _subsample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), n, replace=False))]


def sdmetrics_metadata(schema: Schema) -> dict:
    """Single-table SDMetrics metadata from our schema (constant columns left out)."""
    return {"columns": {c.name: {"sdtype": _SDTYPES[c.kind]} for c in schema.columns if c.kind in _SDTYPES}}


def quality_report(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, seed: int = 0, max_rows: int | None = QUALITY_MAX_ROWS
) -> dict:
    """SDMetrics QualityReport: overall, Column Shapes, Column Pair Trends, per-column shape scores.

    Uses the unified `sdmetrics.reports.QualityReport` with a one-table metadata dict (the
    single_table class is deprecated in sdmetrics 0.32; the scores are the same properties).

    Every row is scored up to `max_rows` per side (default 50,000, SDMetrics' own cap for its
    contingency tables; None = no cap); larger sides are subsampled (seeded, without
    replacement). 5,000-row subsamples moved the score of a 28k-row table by up to +-0.012,
    enough to swap generator rankings. `sampling` in the result says what was used.
    """
    from sdmetrics.reports import QualityReport  # slow import; only needed here

    meta = sdmetrics_metadata(schema)
    cols = list(meta["columns"])
    rng = np.random.default_rng(seed)
    cap = max_rows if max_rows is not None else max(len(real), len(synthetic))
    real_s = _subsample(real[cols], cap, rng).reset_index(drop=True)
    syn_s = _subsample(synthetic[cols], cap, rng).reset_index(drop=True)
    report = QualityReport()
    report.generate({_TABLE: real_s}, {_TABLE: syn_s}, {"tables": {_TABLE: meta}}, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    return {
        "overall": _num(report.get_score()),
        "column_shapes": _num(props["Column Shapes"]),
        "column_pair_trends": _num(props["Column Pair Trends"]),
        "column_shape_scores": {str(r.Column): _num(r.Score) for r in shapes.itertuples()},
        "sampling": {
            "real_rows": len(real),
            "synthetic_rows": len(synthetic),
            "real_rows_used": len(real_s),
            "synthetic_rows_used": len(syn_s),
            "max_rows": max_rows,
            "method": "all rows" if len(real_s) == len(real) and len(syn_s) == len(synthetic) else "seeded subsample without replacement",
        },
    }


def _num(x: float) -> float | None:
    """JSON-safe float (NaN -> None)."""
    x = float(x)
    return None if np.isnan(x) else x


# ---------------------------------------------------------------------------- features

# Round steps for the granularity probes: 1e-6, 5e-6, ..., 1, 5, 10, 50, ..., 5e9.
_NUMBER_STEPS = np.array([m * 10.0**k for k in range(-6, 10) for m in (1, 5)])
_SECOND_STEPS = np.array([1e-3, 1.0, 60.0, 3600.0, 86400.0])  # datetimes: ms, second, minute, hour, day
_FINER = -7.0  # log10 level for values on none of the steps (and for nulls: the null indicator tells them apart)


def granularity(values: np.ndarray, kind: str) -> np.ndarray:
    """log10 of the largest round step each value is a multiple of (see the module docstring).

    Values on no step (finer than 1e-6, or NaN / inf) get -7. Zero is a multiple of every step.
    """
    v = np.asarray(values, dtype=np.float64)
    steps = _SECOND_STEPS if kind == "datetime" else _NUMBER_STEPS
    level = np.full(len(v), _FINER)
    todo = np.isfinite(v)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in steps[::-1]:  # coarse to fine: the first step that divides the value wins
            x = v[todo]
            q = x / step
            r = np.round(q)
            # On the step: q is a whole number (relative tolerance for float noise), and not a
            # tiny value rounding to 0 (0.05 is no multiple of 5e9) unless the value is 0.
            on = (np.abs(q - r) <= 1e-9 * np.maximum(1.0, np.abs(q))) & ((r != 0) | (x == 0))
            idx = np.flatnonzero(todo)[on]
            level[idx] = np.log10(step)
            todo[idx] = False
            if not todo.any():
                break
    return level


def _granularity_name(column: str) -> str:
    return f"{column} granularity (largest round step it is a multiple of)"


@dataclass
class _Design:
    """Encoder + granularity probes + target encoding: one feature matrix for a classifier."""

    encoder: MixedEncoder
    probes: list[tuple[str, str]] = field(default_factory=list)  # (column, kind)
    target: TargetEncoder | None = None

    @classmethod
    def fit(
        cls,
        schema: Schema,
        encoder_rows: pd.DataFrame,
        rows: pd.DataFrame,
        y: np.ndarray,
        *,
        exclude: tuple[str, ...] = (),
        probes: bool = False,
        target_type: str = "auto",
        seed: int = 0,
    ) -> tuple[_Design, np.ndarray]:
        """Fit on `encoder_rows` (the encoder) and `rows`, `y` (the target encoding); return the
        design and the cross-fitted feature matrix of `rows`."""
        enc = MixedEncoder(schema, exclude=exclude, high_cardinality="frequency", categorical="ordinal").fit(encoder_rows)
        numeric = [(c, schema.column(c).kind) for c in modelled_columns(schema, exclude)]
        design = cls(enc, [(c, k) for c, k in numeric if k in ("continuous", "integer", "datetime")] if probes else [])
        x_te = None
        if enc.high_cardinality_columns and len(np.unique(y)) > 1:
            design.target = TargetEncoder(target_type=target_type, random_state=seed)
            x_te = design.target.fit_transform(design._keys(rows), y)  # cross-fitted: no self-leak
        return design, design._matrix(rows, x_te)

    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        x_te = self.target.transform(self._keys(rows)) if self.target is not None else None
        return self._matrix(rows, x_te)

    def _keys(self, rows: pd.DataFrame) -> np.ndarray:
        return np.column_stack([as_keys(rows[c]).to_numpy(dtype=object) for c in self.encoder.high_cardinality_columns])

    def _matrix(self, rows: pd.DataFrame, x_te: np.ndarray | None) -> np.ndarray:
        parts = [self.encoder.transform(rows)]
        if self.probes:
            parts.append(np.column_stack([granularity(as_float(rows[c], k), k) for c, k in self.probes]).astype(np.float32))
        if x_te is not None:
            parts.append(np.asarray(x_te, dtype=np.float32))
        return np.hstack(parts)

    @property
    def categorical_features(self) -> np.ndarray:
        """Boolean mask of level-code columns, for HistGradientBoosting's native categorical splits."""
        extra = len(self.groups) - self.encoder.n_features  # probes and target encodings: numeric
        return np.r_[self.encoder.categorical_features, np.zeros(extra, dtype=bool)]

    @property
    def groups(self) -> list[str]:
        """Per feature, the readable group it belongs to (a column, its null indicator, a probe)."""
        names = []
        for name, col in zip(self.encoder.feature_names, self.encoder.feature_columns):
            names.append(name if name.endswith("(missing)") and name == f"{col} (missing)" else col)
        names += [_granularity_name(c) for c, _ in self.probes]
        if self.target is not None:
            per = len(self.target.classes_) if self.target.target_type_ == "multiclass" else 1
            names += [c for c in self.encoder.high_cardinality_columns for _ in range(per)]
        return names


# ---------------------------------------------------------------------------- detection

_MIN_IMPORTANCE = 1e-3  # AUC drops below this are shuffling noise, not a reason
_IMPORTANCE_ROWS = 1000  # held-out rows per fold that permutation importance scores


def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, seed: int = 0, folds: int = 3, max_rows: int = 5000
) -> float:
    """Cross-validated ROC AUC of a classifier telling real from synthetic (0.5 = indistinguishable).

    Both sides are subsampled to the same size (at most `max_rows`), so the classes balance.
    `detection_details` gives the same AUC plus the features the classifier relies on.
    """
    return detection_details(real, synthetic, schema, seed=seed, folds=folds, max_rows=max_rows, top=0)["auc"]


def detection_details(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    seed: int = 0,
    folds: int = 3,
    max_rows: int = 5000,
    top: int = 10,
) -> dict[str, Any]:
    """Detection AUC and why: the `top` features the classifier uses, by permutation importance.

    Returns ``{"auc", "fold_aucs", "rows_per_side", "n_features", "top_features": [{"feature",
    "importance", "detail"?}, ...]}``. Importance is the mean drop in held-out ROC AUC when one
    feature group is shuffled across rows (a column's value block; its null indicator; a
    granularity probe), on up to 1,000 held-out rows per fold, averaged over folds; only groups
    whose drop exceeds 0.001 are listed.
    Granularity probes carry a `detail` naming the step whose share differs most between real
    and synthetic values (e.g. "multiple of 100: real 90.0%, synthetic 1.2%").
    """
    for side, df in (("real", real), ("synthetic", synthetic)):
        missing = [c for c in schema.names if c not in df.columns]
        if missing:
            raise BadInput(f"the {side} data has no column {', '.join(map(repr, missing))}; columns there are: {', '.join(df.columns)}")
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), max_rows)
    real_s, syn_s = _subsample(real, n, rng), _subsample(synthetic, n, rng)
    rows = pd.concat([real_s[schema.names], syn_s[schema.names]], ignore_index=True)
    y = np.r_[np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs: list[float] = []
    drops: dict[str, list[float]] = {}
    width = 0
    with _one_openmp_thread():
        for k, (fit_idx, test_idx) in enumerate(cv.split(np.zeros(len(y)), y)):
            fit_rows, test_rows = rows.iloc[fit_idx], rows.iloc[test_idx]
            design, x_fit = _Design.fit(
                schema, fit_rows[y[fit_idx] == 0], fit_rows, y[fit_idx], probes=True, target_type="binary", seed=seed
            )
            x_test = design.transform(test_rows)
            width = x_fit.shape[1]
            model = HistGradientBoostingClassifier(max_iter=100, categorical_features=_mask(design), random_state=seed).fit(
                x_fit, y[fit_idx]
            )
            base = roc_auc_score(y[test_idx], model.predict_proba(x_test)[:, 1])
            aucs.append(float(base))
            if top > 0:
                # On at most _IMPORTANCE_ROWS held-out rows per fold (one predict per group).
                perm_rng = np.random.default_rng([seed, k])
                pick = np.sort(perm_rng.choice(len(x_test), min(len(x_test), _IMPORTANCE_ROWS), replace=False))
                x_imp, y_imp = x_test[pick], y[test_idx][pick]
                base_imp = roc_auc_score(y_imp, model.predict_proba(x_imp)[:, 1])
                groups = np.array(design.groups)
                for g in dict.fromkeys(groups):  # first-seen order
                    cols = np.flatnonzero(groups == g)
                    shuffled = x_imp.copy()
                    shuffled[:, cols] = x_imp[perm_rng.permutation(len(x_imp))][:, cols]
                    drop = base_imp - roc_auc_score(y_imp, model.predict_proba(shuffled)[:, 1])
                    drops.setdefault(g, []).append(float(drop))
    ranked = sorted(((g, float(np.mean(d))) for g, d in drops.items()), key=lambda t: -t[1])
    top_features = [{"feature": g, "importance": imp} for g, imp in ranked[:top] if imp > _MIN_IMPORTANCE]
    probes = {_granularity_name(c): c for c in schema.names}
    for item in top_features:
        column = probes.get(item["feature"])
        if column is not None:
            item["detail"] = _granularity_detail(real_s[column], syn_s[column], schema.column(column).kind)
    return {
        "auc": float(np.mean(aucs)),
        "fold_aucs": aucs,
        "rows_per_side": int(n),
        "n_features": int(width),
        "top_features": top_features,
    }


def _granularity_detail(real: pd.Series, synthetic: pd.Series, kind: str) -> str:
    """The round step whose share of values differs most between real and synthetic."""
    r, s = granularity(as_float(real, kind), kind), granularity(as_float(synthetic, kind), kind)
    steps = _SECOND_STEPS if kind == "datetime" else _NUMBER_STEPS
    # Coarse to fine, so of steps that differ equally (100 and 50 when every value on 50 is on
    # 100) the coarser one is named.
    best = max(steps[::-1], key=lambda st: abs((r >= np.log10(st)).mean() - (s >= np.log10(st)).mean()))
    lv = np.log10(best)
    label = {1e-3: "millisecond", 1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}.get(best) if kind == "datetime" else None
    what = f"whole {label}" if label else f"multiple of {best:g}"
    return f"{what}: real {(r >= lv).mean():.1%}, synthetic {(s >= lv).mean():.1%}"


# ---------------------------------------------------------------------------- TSTR


# Rows: per forest tree (bootstrap), and at most for TSTR's model selection (fit + validation).
_FOREST_ROWS = 10_000
_SELECTION_ROWS = 12_500
# A later (less robust) candidate must beat every earlier one by more than this to be chosen.
_SELECTION_TOLERANCE = 0.005


def _mask(design: _Design) -> np.ndarray | None:
    mask = design.categorical_features
    return mask if mask.any() else None


def _candidates(classify: bool, y: np.ndarray, mask: np.ndarray | None, seed: int) -> dict[str, Any]:
    """The model recipes TSTR chooses from (name -> unfitted estimator), most robust first.

    Gradient boosting splits level-code columns natively (`mask`) and early-stops on the
    validation rows (log loss is scale-free, so a fixed tolerance of 1e-3 works for every
    label; squared error is not, so regression keeps sklearn's). Trees and forests split the
    codes as numbers; each forest tree sees at most `_FOREST_ROWS` bootstrap rows, which bounds
    its cost on 100k synthetic rows. A single unpruned tree finds exact rules that boosting's
    histogram bins and minimum leaf sizes miss (a label that a 300-level code determines), but
    it also learns label noise, so it comes last. Classifiers weight classes "balanced" when
    the rarest class has under a tenth of the rows of the commonest.
    """
    boost = {
        "max_iter": 200,
        "learning_rate": 0.1,
        "early_stopping": True,
        "n_iter_no_change": 10,
        "categorical_features": mask,
        "random_state": seed,
    }
    rows = min(len(y), _FOREST_ROWS)
    if not classify:
        return {
            "gradient boosting": HistGradientBoostingRegressor(**boost),
            "random forest": RandomForestRegressor(
                n_estimators=50, min_samples_leaf=5, max_features=0.3, max_samples=rows, n_jobs=1, random_state=seed
            ),
            "decision tree": DecisionTreeRegressor(min_samples_leaf=5, random_state=seed),
        }
    _, counts = np.unique(y, return_counts=True)
    weight = "balanced" if counts.min() * 10 < counts.max() else None
    return {
        "gradient boosting": HistGradientBoostingClassifier(**boost, tol=1e-3, class_weight=weight),
        "random forest": RandomForestClassifier(n_estimators=100, max_samples=rows, class_weight=weight, n_jobs=1, random_state=seed),
        "decision tree": DecisionTreeClassifier(min_samples_leaf=1, class_weight=weight, random_state=seed),
    }


def _score(classify: bool, y_true: np.ndarray, pred: np.ndarray) -> float:
    return float(accuracy_score(y_true, pred)) if classify else float(r2_score(y_true, pred))


def _select_recipe(
    schema: Schema, enc_rows: pd.DataFrame, rows: pd.DataFrame, y: np.ndarray, classify: bool, target: str, seed: int
) -> dict[str, Any]:
    """Model selection on a validation split carved from the real training rows.

    Each candidate (`_candidates`) is fitted on 80 % of the rows and scored on the other 20 %
    (stratified when every class has two rows; at most `_SELECTION_ROWS` rows in all, a seeded
    subsample beyond); gradient boosting also early-stops on them and the recipe keeps its
    number of iterations. The first candidate (most robust first) within `_SELECTION_TOLERANCE`
    of the best validation score (accuracy / R^2) is chosen.
    """
    if len(y) > _SELECTION_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), _SELECTION_ROWS, replace=False))
        rows, y = rows.iloc[keep], y[keep]
    counts = pd.Series(y).value_counts()
    stratify = y if classify and counts.min() >= 2 and len(counts) > 1 else None
    idx_fit, idx_val = train_test_split(np.arange(len(y)), test_size=0.2, random_state=seed, stratify=stratify)
    if classify:  # a class with one row may land on the validation side only: no model can predict it
        idx_val = idx_val[np.isin(y[idx_val], y[idx_fit])]
    y_fit, y_val = y[idx_fit], y[idx_val]
    if classify and (len(np.unique(y_fit)) < 2 or len(y_val) == 0):
        return {"model": "majority class", "params": {}, "validation": {}}
    design, x_fit = _Design.fit(
        schema, enc_rows, rows.iloc[idx_fit], y_fit, exclude=(target,), target_type="auto" if classify else "continuous", seed=seed
    )
    x_val = design.transform(rows.iloc[idx_val])
    scores: dict[str, float] = {}
    params: dict[str, dict] = {}
    for name, model in _candidates(classify, y_fit, _mask(design), seed).items():
        if name == "gradient boosting":
            model.fit(x_fit, y_fit, X_val=x_val, y_val=y_val)
            params[name] = {"max_iter": int(model.n_iter_), "early_stopping": False}
        else:
            model.fit(x_fit, y_fit)
            params[name] = {}
        scores[name] = _score(classify, y_val, model.predict(x_val))
    best = max(scores.values())
    chosen = next(k for k, v in scores.items() if v >= best - _SELECTION_TOLERANCE)  # candidate order
    return {
        "model": chosen,
        "params": params[chosen],
        "validation": scores,
        "validation_rows": int(len(idx_val)),
        "selected_by": "accuracy" if classify else "r2",
    }


def _build(recipe: dict[str, Any], classify: bool, y: np.ndarray, design: _Design, seed: int):
    if classify and (len(np.unique(y)) < 2 or recipe["model"] == "majority class"):
        return DummyClassifier()  # a one-class target cannot train a booster; it predicts that class
    model = _candidates(classify, y, _mask(design), seed)[recipe["model"]]
    return model.set_params(**recipe["params"])


def tstr(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str, seed: int = 0) -> dict:
    """Train the same model recipe on real train and on synthetic; test both on real holdout.

    The recipe (model family and settings, see `_select_recipe`) is chosen on a validation
    split of the real training rows, so train-on-real is a strong reference, then used as is
    for train-on-synthetic (with its iteration count fixed, and its class weights computed on
    that side's labels). Categorical / boolean targets: accuracy and macro F1. Numeric targets: R^2.
    `gap` is real minus synthetic (positive = synthetic data is worse for this task); `recipe`
    says which model was used and its validation scores.
    """
    if target not in schema.names:
        raise BadInput(f"target '{target}' is not a column; columns are: {', '.join(schema.names)}")
    kind = schema.column(target).kind
    if kind in ("id", "constant"):
        raise BadInput(f"target '{target}' is an {kind} column; pick a categorical, boolean or numeric column")
    classify = kind in ("categorical", "boolean")
    target_type = "auto" if classify else "continuous"

    def labelled(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        df = df[df[target].notna()]
        y = as_keys(df[target]).to_numpy() if classify else pd.to_numeric(df[target]).to_numpy(dtype=float)
        return df, y

    holdout_rows, y_test = labelled(holdout)
    train_rows, y_train = labelled(train)
    scores: dict[str, dict] = {}
    with _one_openmp_thread():
        recipe = _select_recipe(schema, train, train_rows, y_train, classify, target, seed)
        for name, (rows, y) in (("real", (train_rows, y_train)), ("synthetic", labelled(synthetic))):
            # The encoder's scaling and levels come from real train (shared, unsupervised); the
            # target encoding is learnt from this side's own rows and labels.
            design, x = _Design.fit(schema, train, rows, y, exclude=(target,), target_type=target_type, seed=seed)
            model = _build(recipe, classify, y, design, seed).fit(x, y)
            pred = model.predict(design.transform(holdout_rows))
            if classify:
                scores[name] = {
                    "accuracy": float(accuracy_score(y_test, pred)),
                    "macro_f1": float(f1_score(y_test, pred, average="macro")),
                }
            else:
                scores[name] = {"r2": float(r2_score(y_test, pred))}
    gap = {m: scores["real"][m] - scores["synthetic"][m] for m in scores["real"]}
    return {"target": target, "task": "classification" if classify else "regression", **scores, "gap": gap, "recipe": recipe}
