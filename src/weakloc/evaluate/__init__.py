"""Predictions -> metrics (``metrics``), scored on a dataset's test split (``scoring``), written out (``report``)."""
