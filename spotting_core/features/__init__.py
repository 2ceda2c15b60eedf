"""Frames -> features: backbones, streamed extraction with a cache, SoccerNet's own ResNet-152 + PCA, decoded frames, entities."""
