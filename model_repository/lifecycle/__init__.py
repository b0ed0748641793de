"""Model lifecycle, build side: versions with lineage (versions.py), the registry (registry.py, MLflow), the gate
(gate.py) and the operator commands (cli.py: ``mangaassist model ...``). The service side -- shadow, canary,
guards, feedback -- is server/rollout."""
