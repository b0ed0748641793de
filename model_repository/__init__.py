"""Build code for the models MangaAssist serves: generated data, training, ONNX export, Triton configs."""
