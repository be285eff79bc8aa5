"""Experiment sheets: rows of an xlsx workbook run as trials, results written back."""
