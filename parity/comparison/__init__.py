"""How far apart a torch model and its Keras twin are: the figures and report (``compare``),
``python -m parity check`` (``check``), the summaries side by side (``sidebyside``), running on
each Keras backend (``backends``) and the error per spec node as a figure (``plot``)."""
