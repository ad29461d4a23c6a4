"""Weights between the frameworks: the spec-derived torch <-> Keras mapping (``mapping``), copying
a model's weights into its twin (``copying``), converting checkpoint files (``convert``) and seeded
random weights that exercise every parameter and BatchNorm statistic (``randomise``)."""
