"""Airflow's local settings for the deploy profile (docs/deploy.md): `campaign-loop deploy` puts this folder on
the PYTHONPATH of every Airflow process it starts, and Airflow registers the cluster policy defined here.

The policy lives in campaign_loop.deploy, where it is tested; this file only names it for Airflow.
"""

from campaign_loop.deploy import task_policy

__all__ = ["task_policy"]
