"""Training, evaluation and prediction for compiled netspec models."""
