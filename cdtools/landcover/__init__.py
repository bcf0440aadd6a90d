"""Land cover: the EuroSAT classes, patch DataLoaders, the classifier, from-to transitions."""
