"""Fetchers of raw records, one module per upstream service.

``pubmed.PubMed`` and ``ctgov.ClinicalTrials`` hide paging, batching and each service's
quirks; they return raw records (already reshaped by ``littrack.normalize`` where the
parser streams) and never touch the store.
"""
