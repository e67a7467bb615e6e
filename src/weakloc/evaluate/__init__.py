"""Predictions -> metrics -> reports."""
