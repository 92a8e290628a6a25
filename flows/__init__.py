"""Prefect flows that orchestrate the DVC pipeline (dvc.yaml); they never re-implement a stage."""
