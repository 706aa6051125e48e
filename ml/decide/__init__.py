"""Design the next campaign from the models' predictions.

Given one row per eligible customer (consent, contact history, segment) and the models' outputs
(uplift per action, baseline purchase probability, expected spend, margin rate), choose at most one
action (offer x channel) per customer that maximises expected incremental margin under the budget,
then randomise a holdout sized by a power calculation and an exploration share so that the next cycle
can measure the campaign and keep learning every action. ``docs/decisioning.md`` explains the maths.

Entry point: :func:`design_campaign` (``customers`` DataFrame + :class:`DesignConfig` -> :class:`CampaignPlan`).

The names below are the package's interface, what the pipeline, the scorer's consumers, the baseline policies
and the evaluation import from ``ml.decide``; the steps live in its modules, lowest first:

* ``catalogue``: what decisioning adds to each action (uplift column, discount, send time, campaign id) and
  the input columns.
* ``config``: :class:`DesignConfig`, :class:`CampaignPlan` and the design's random streams.
* ``economics``: each customer x action's expected margin, revenue and cost.
* ``eligibility``: the contact rules (consent, bounces, unsubscribes, the cap, closed channels), rule by rule.
* ``optimise``: at most one action per customer within the budgets (Lagrangian relaxation, repair, fill).
* ``exploration``: epsilon's random actions, Thompson's draws, each planned row's assignment probability.
* ``holdout``: the power calculation and the stratified holdout.
* ``plan``: the plan's rows and summary, and why a plan reaches nobody.
* ``design``: :func:`design_campaign` and :func:`plan_from_choice`, wiring the steps.
* ``candidates``: plans a marketer makes from the measured lifts alone (best action, propensity with the best
  offer), which the loop weighs against its own design (``ml.policy_choice``).
"""

from ml.decide.catalogue import BASE_COLUMNS, action_catalogue, uplift_column
from ml.decide.config import CampaignPlan, DesignConfig
from ml.decide.design import design_campaign, plan_from_choice
from ml.decide.economics import action_economics

__all__ = [
    "BASE_COLUMNS",
    "CampaignPlan",
    "DesignConfig",
    "action_catalogue",
    "action_economics",
    "design_campaign",
    "plan_from_choice",
    "uplift_column",
]
