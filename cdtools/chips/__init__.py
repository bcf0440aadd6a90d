"""Training chips: exporting them, reading a chips folder, labels, paired
augmentation, DataLoaders.
"""
