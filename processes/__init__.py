"""Clusters, query models built from engine records, the importer, operator actions and the REST API."""
