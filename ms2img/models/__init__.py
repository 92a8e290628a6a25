"""Models: the paper's CNN (Keras 3, backend-neutral) and the baselines (RF, PCA, OPLS-DA)."""
