"""One cycle's retraining: churn, propensity, CLV and uplift, each an MLflow run, registered and gated.

:func:`train_cycle` is what the DAG's training task calls once the cycle's marts are built and
validated. Per model it: reads its frame (``ml/features.py``), splits off the evaluation holdout
(a fixed 20 % of customers, never trained on in any cycle), trains, evaluates the challenger and the
current champion on the *same* holdout rows, logs one run in experiment ``campaign-loop`` (params,
lineage tags, metrics, plots, the model with signature and input example), registers the version as
``challenger`` and applies the gate of ``ml/registry.py``. Too little data skips the model: nothing is
registered and the champion stays.

Models (registered names, what their ``predict`` returns):

* ``churn``: P(no purchase in the 28 days from the as-of date), LightGBM.
* ``propensity``: P(purchase in the next cycle), LightGBM; the ``p_buy`` of decisioning.
* ``clv``: BG/NBD + Gamma-Gamma parameters (``ml/clv.py``), scored in closed form: ``p_alive``,
  expected purchases next cycle and over a year, expected spend per purchase, 52-week CLV.
* ``uplift``: per action ``uplift__<offer>__<channel>`` (conversion) and ``uplift_margin__...``
  (``ml/uplift.py``).

The package's interface is what the pipeline, the policies, the benchmarks and the tests import from
``ml.train``; the steps live in its modules, lowest first:

* ``config``: :class:`TrainConfig` and the names the cycle trains and logs under.
* ``predictors``: the model objects MLflow stores for churn, propensity and CLV.
* ``trained``: what a trainer returns (``Trained``) or raises (``Skip``).
* ``classifiers``, ``clv``, ``uplift``: one trainer per model kind.
* ``registration``: the model's MLflow run, its registration as ``challenger`` and the gate.
* ``cycle``: :func:`train_cycle` and its :class:`TrainReport`.
"""

from ml.train.config import TrainConfig
from ml.train.cycle import TrainReport, train_cycle

# Registered versions logged before ml/train.py became this package pickled these classes by reference as
# ml.train.ProbabilityModel and ml.train.ClvPredictor: a home's champions load only while these names resolve.
from ml.train.predictors import ClvPredictor, ProbabilityModel

__all__ = ["ClvPredictor", "ProbabilityModel", "TrainConfig", "TrainReport", "train_cycle"]
