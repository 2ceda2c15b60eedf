"""Training and inference: games and splits, the clip sampler, the training loop, whole-half scores + nms(), spot, the metric."""
