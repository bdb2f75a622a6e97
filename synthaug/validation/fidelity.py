"""Fidelity metrics: SDMetrics quality report, detection AUC, train-synthetic-test-real (TSTR)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from synthaug.errors import BadInput
from synthaug.schema import Schema
from synthaug.validation.encoding import MixedEncoder, as_keys

_SDTYPES = {
    "continuous": "numerical",
    "integer": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "id": "id",
}
_TABLE = "table"


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
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, seed: int = 0, max_rows: int = 5000
) -> dict:
    """SDMetrics QualityReport: overall, Column Shapes, Column Pair Trends, per-column shape scores.

    Uses the unified `sdmetrics.reports.QualityReport` with a one-table metadata dict (the
    single_table class is deprecated in sdmetrics 0.32; the scores are the same properties).
    """
    from sdmetrics.reports import QualityReport  # slow import; only needed here

    meta = sdmetrics_metadata(schema)
    cols = list(meta["columns"])
    rng = np.random.default_rng(seed)
    real_s = _subsample(real[cols], max_rows, rng).reset_index(drop=True)
    syn_s = _subsample(synthetic[cols], max_rows, rng).reset_index(drop=True)
    report = QualityReport()
    report.generate({_TABLE: real_s}, {_TABLE: syn_s}, {"tables": {_TABLE: meta}}, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    return {
        "overall": _num(report.get_score()),
        "column_shapes": _num(props["Column Shapes"]),
        "column_pair_trends": _num(props["Column Pair Trends"]),
        "column_shape_scores": {str(r.Column): _num(r.Score) for r in shapes.itertuples()},
    }


def _num(x: float) -> float | None:
    """JSON-safe float (NaN -> None)."""
    x = float(x)
    return None if np.isnan(x) else x


def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, seed: int = 0, folds: int = 3, max_rows: int = 5000
) -> float:
    """Cross-validated ROC AUC of a classifier telling real from synthetic (0.5 = indistinguishable).

    Both sides are subsampled to the same size (at most `max_rows`), so the classes balance.
    """
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), max_rows)
    real_s, syn_s = _subsample(real, n, rng), _subsample(synthetic, n, rng)
    enc = MixedEncoder(schema).fit(real_s)
    x = np.vstack([enc.transform(real_s), enc.transform(syn_s)])
    y = np.r_[np.zeros(len(real_s)), np.ones(len(syn_s))]
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with _one_openmp_thread():
        return float(np.mean(cross_val_score(model, x, y, cv=cv, scoring="roc_auc")))


def tstr(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str, seed: int = 0
) -> dict:
    """Train the same model on real train and on synthetic; test both on real holdout.

    Categorical / boolean targets: accuracy and macro F1. Numeric targets: R^2.
    `gap` is real minus synthetic (positive = synthetic data is worse for this task).
    """
    if target not in schema.names:
        raise BadInput(f"target '{target}' is not a column; columns are: {', '.join(schema.names)}")
    kind = schema.column(target).kind
    if kind in ("id", "constant"):
        raise BadInput(f"target '{target}' is an {kind} column; pick a categorical, boolean or numeric column")
    classify = kind in ("categorical", "boolean")
    enc = MixedEncoder(schema, exclude=(target,)).fit(train)

    def labelled(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        df = df[df[target].notna()]
        y = as_keys(df[target]).to_numpy() if classify else pd.to_numeric(df[target]).to_numpy(dtype=float)
        return enc.transform(df), y

    x_test, y_test = labelled(holdout)
    scores = {}
    with _one_openmp_thread():
        for name, df in (("real", train), ("synthetic", synthetic)):
            x, y = labelled(df)
            if classify:
                # A one-class synthetic target cannot train a booster; it predicts that class.
                many = len(np.unique(y)) > 1
                model = HistGradientBoostingClassifier(max_iter=100, random_state=seed) if many else DummyClassifier()
                model.fit(x, y)
                pred = model.predict(x_test)
                scores[name] = {
                    "accuracy": float(accuracy_score(y_test, pred)),
                    "macro_f1": float(f1_score(y_test, pred, average="macro")),
                }
            else:
                model = HistGradientBoostingRegressor(max_iter=100, random_state=seed).fit(x, y)
                scores[name] = {"r2": float(r2_score(y_test, model.predict(x_test)))}
    gap = {m: scores["real"][m] - scores["synthetic"][m] for m in scores["real"]}
    return {"target": target, "task": "classification" if classify else "regression", **scores, "gap": gap}
