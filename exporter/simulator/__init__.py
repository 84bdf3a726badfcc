"""A bank SMS gateway and a POS acquirer that serve realistic, seeded traffic with injected faults.

The simulator never imports the pipeline, the classifier or the store: its ground truth comes
from what it generated and injected, so the exactness tests compare two independent accounts.
"""
