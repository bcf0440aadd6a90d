"""Learning: the change detector, the learners' shared verbs, losses, metrics,
training callbacks, model packages.
"""
