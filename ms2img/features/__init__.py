"""Aligned feature tables for the feature-table baselines (``rf-cosine``, ``rf-entropy``).

* :mod:`~ms2img.features.table`: per-accession spectra -> one merged ``accessions x features`` table.
* :mod:`~ms2img.features.merge`: the leader-clustering rule (MS1, RT and MS/MS similarity) that merges them.
* :mod:`~ms2img.features.match`: that same rule applied to new spectra against a model's training features.
"""
