"""Training parity: do the two models take the same optimizer steps (``steps``), and the short
fine-tuning run whose two loss curves ``python -m parity train-curve`` draws (``curve``)."""
