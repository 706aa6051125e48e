"""Airflow's local settings for the deploy profile (docs/deploy.md): `campaign-loop deploy` puts this folder on
the PYTHONPATH of every Airflow process it starts, and Airflow registers the cluster policy defined here.

The policy lives in campaign_loop.deploy, where it is tested; this file only names it for Airflow.
"""

from celery.signals import worker_init

from campaign_loop.deploy import preload_dag_imports, task_policy

# Only `airflow celery worker` sends it; in the other processes the connection is inert.
worker_init.connect(preload_dag_imports, weak=False)

__all__ = ["task_policy"]
