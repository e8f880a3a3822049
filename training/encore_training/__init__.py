"""Encore's trainer: reads what the stream computed (features, labels, songs), trains the disengagement
model and the two-tower recommender in PyTorch, and exports them to ONNX for the TypeScript job."""
