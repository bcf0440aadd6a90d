"""Change without labels: classical unsupervised change detection on any aligned pair.

:func:`~cdtools.unsupervised.detect.detect_change` fits a change statistic (change vector
analysis, IR-MAD or PCA-k-means) on a regular-grid sample of a pair's valid pixels, picks
a threshold without any truth, and applies the statistic lazily chunk by chunk, giving
the same uint8 map as :func:`cdtools.predict_scene`.
"""
