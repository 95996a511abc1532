"""Rebeca training toolkit: demo world, x0 prior training, ONNX export, evaluation."""
