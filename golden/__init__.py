"""golden: an executable reproduction of Jaeger's "The Golden Ratio of Learning and
Momentum".

The book's chapters import this package; every number they show is computed here.
"""
